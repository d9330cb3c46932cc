"""Training's commands: one frozen dataclass per verb, the target ids, what the caller sent, the
optional `version` (the aggregate version the caller saw; a stale one is refused with 412) and, on
the operations that create something, the optional `idempotency_key` (the raw header value; the
handler scopes it to the caller). The HTTP layer builds them from the validated body; handlers take
`(command, caller, stores)`.

`body()` is what the domain's deciders and the Idempotency-Key fingerprint see: the fields the
caller sent, without the path ids, the version and the key, and without what was not sent (None).
It equals the marshmallow-loaded body the handlers took before, so a retry fingerprints the same.
Reads are plain arguments (ids and the parsed query) with caller and stores last."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from . import domain

__all__ = ["AssessCompletion", "CancelClass", "CloseClass", "Command", "EnrolMember", "HeadCount", "OpenClass",
           "PlanClass", "RecordAttendance", "RecordDissemination", "RegisterCourse", "RetireCourse", "StartClass",
           "WithdrawEnrolment"]

# Never part of the body: who is acted on (the path), the caller's version, the key.
_NOT_BODY = ("version", "idempotency_key")


class Command:
    """What every command shares: `body()` (see the module docstring)."""
    PATH: ClassVar[tuple[str, ...]] = ()  # the target ids taken from the URL, not from the body

    def body(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name in self.PATH or f.name in _NOT_BODY or value is None:
                continue
            out[f.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    """Nested dataclasses as dicts, tuples as lists: what the domain and the fingerprint expect."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- courses

@dataclass(frozen=True)
class RegisterCourse(Command):
    code: str
    name: str
    topic: str
    audience: str
    duration_days: int
    owner_unit_id: str
    description: str | None = None
    format: str = "in_person"
    min_attendance_percent: int = domain.DEFAULT_MIN_ATTENDANCE_PERCENT
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RetireCourse(Command):
    PATH: ClassVar[tuple[str, ...]] = ("course_id",)
    course_id: str
    version: int | None = None


# ---------------------------------------------------------------- classes

@dataclass(frozen=True)
class PlanClass(Command):
    course_id: str
    code: str
    organising_unit_id: str
    start_date: date
    capacity: int
    name: str | None = None
    days: tuple[date, ...] | None = None
    format: str | None = None
    location: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class OpenClass(Command):
    PATH: ClassVar[tuple[str, ...]] = ("class_id",)
    class_id: str
    version: int | None = None


@dataclass(frozen=True)
class StartClass(Command):
    PATH: ClassVar[tuple[str, ...]] = ("class_id",)
    class_id: str
    version: int | None = None


@dataclass(frozen=True)
class CloseClass(Command):
    PATH: ClassVar[tuple[str, ...]] = ("class_id",)
    class_id: str
    on: date | None = None  # default: today
    version: int | None = None


@dataclass(frozen=True)
class CancelClass(Command):
    PATH: ClassVar[tuple[str, ...]] = ("class_id",)
    class_id: str
    reason: str
    on: date | None = None
    version: int | None = None


# ---------------------------------------------------------------- enrolments, attendance, completion

@dataclass(frozen=True)
class EnrolMember(Command):
    PATH: ClassVar[tuple[str, ...]] = ("class_id",)
    class_id: str
    member_id: str  # in the body (POST /classes/{id}/enrolments)
    on: date | None = None
    version: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class WithdrawEnrolment(Command):
    PATH: ClassVar[tuple[str, ...]] = ("class_id", "member_id")
    class_id: str
    member_id: str
    reason: str | None = None
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class RecordAttendance(Command):
    PATH: ClassVar[tuple[str, ...]] = ("class_id",)
    class_id: str
    date: date
    present: tuple[str, ...]
    version: int | None = None


@dataclass(frozen=True)
class AssessCompletion(Command):
    PATH: ClassVar[tuple[str, ...]] = ("class_id", "member_id")
    class_id: str
    member_id: str
    score: float
    on: date | None = None
    version: int | None = None
    idempotency_key: str | None = None


# ---------------------------------------------------------------- dissemination sessions

@dataclass(frozen=True)
class HeadCount:
    """Attendees of one unit not identified by member id."""
    unit_id: str
    members_reached: int


@dataclass(frozen=True)
class RecordDissemination(Command):
    organising_unit_id: str
    topic: str
    held_on: date
    document_ref: str | None = None
    format: str = "in_person"
    audience: str = "members"
    member_ids: tuple[str, ...] = ()
    reached: tuple[HeadCount, ...] = field(default=())
    idempotency_key: str | None = None

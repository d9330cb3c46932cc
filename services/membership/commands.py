"""The commands of membership: one frozen dataclass per verb, the input a handler (service.py)
takes once the HTTP layer (api.py) has validated the request. Plain data: the ids of what they
act on, the caller-sent `version` (a stale one is a 412) and, where the operation takes one, the
client's `idempotency_key` (unscoped: the handler scopes it by caller and operation). Dates are
`date`s; a date left None means "today in Vietnam", decided by the handler. Reads are plain
arguments of their handlers."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any


def fields_of(command: Any, *leave_out: str) -> dict[str, Any]:
    """The command as the dict the rules (domain.py) and the request fingerprints take."""
    return {k: v for k, v in asdict(command).items() if k not in leave_out}


# ---------------------------------------------------------------- units
@dataclass(frozen=True)
class CreateUnit:
    name: str
    code: str
    kind: str
    level: int
    parent_id: str | None = None
    sector: str | None = None
    effective_date: date | None = None
    founding: dict[str, Any] | None = None  # a CĐCS's founding record (method, decision, group...)
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RenameUnit:
    unit_id: str
    name: str
    effective_date: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class MoveUnit:
    unit_id: str
    parent_id: str
    effective_date: date | None = None  # after today: scheduled, applied on the day
    version: int | None = None


@dataclass(frozen=True)
class MergeUnit:
    unit_id: str
    into_unit_id: str
    effective_date: date | None = None  # after today: scheduled, applied on the day
    version: int | None = None


@dataclass(frozen=True)
class DissolveUnit:
    unit_id: str
    effective_date: date | None = None  # after today: scheduled, applied on the day
    version: int | None = None


@dataclass(frozen=True)
class CancelScheduledChange:
    unit_id: str
    change_id: str
    version: int | None = None


@dataclass(frozen=True)
class ConsolidateCommittee:
    unit_id: str
    term: str
    date: date
    positions: tuple[dict[str, Any], ...]  # {"member_id", "position"}
    version: int | None = None


@dataclass(frozen=True)
class ProposeRating:
    unit_id: str
    year: int
    rating: str
    version: int | None = None


@dataclass(frozen=True)
class ConfirmRating:
    unit_id: str
    year: int
    rating: str | None = None  # the level above may change the proposed rating
    version: int | None = None


# ---------------------------------------------------------------- members
@dataclass(frozen=True)
class AdmitMember:
    unit_id: str
    full_name: str
    citizen_id: str
    date_of_birth: date
    gender: str
    phone: str | None = None
    employer: str | None = None
    is_official: bool = False
    admitted_on: date | None = None
    method: str = "individual"  # "group": a row of an import
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ApproveMember:
    member_id: str
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class RefuseAdmission:
    member_id: str
    reason: str | None = None
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class IssueCard:
    member_id: str
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class TransferMember:
    """Inside the caller's subtree: the member moves now; outside it: a transfer request."""
    member_id: str
    to_unit_id: str
    on: date | None = None
    letter_no: str | None = None
    letter_date: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class AcceptTransfer:
    unit_id: str  # the unit the request is addressed to (or one above it)
    member_id: str
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class RefuseTransfer:
    unit_id: str
    member_id: str
    reason: str | None = None
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class CancelTransfer:
    member_id: str
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class RecordLeaving:
    member_id: str
    reason: str  # domain.LEAVE_REASONS
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class ReinstateMember:
    member_id: str
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class UpdateProfile:
    member_id: str
    # only the fields sent (a field sent as None clears it): full_name, gender, phone, employer,
    # is_official, date_of_birth
    changes: dict[str, Any] = field(default_factory=dict)
    on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class RecordDues:
    member_id: str
    month: str  # YYYY-MM
    salary: int
    paid: int = 0
    on_social_insurance_benefits: bool = False
    unpaid_leave_months: int = 0


# ---------------------------------------------------------------- batches (each item as one by one)
@dataclass(frozen=True)
class ImportMembers:
    unit_id: str
    filename: str
    content: bytes
    idempotency_key: str | None = None


@dataclass(frozen=True)
class DecideAdmissions:
    items: tuple[Any, ...]  # raw items, each validated on its own (a bad one fails alone)
    on: date | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class IssueCards:
    items: tuple[Any, ...]
    on: date | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RecordRatings:
    items: tuple[Any, ...]
    idempotency_key: str | None = None

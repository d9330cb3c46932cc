"""Training's adapter to its database: `Stores(db)` holds the repositories of courses and classes,
the dissemination sessions, and the local membership view the handlers read; `stores()` is the one
of this process (api, jobs, consumer). Handlers (service.py) reach the database only through it.

Courses and classes are saved through platformkit/repository.py (each change is a change document
inserted into `<collection>_events`, the aggregate document a materialised copy: see there why).
What training adds (`AggregateStore`): its deciders return the whole new state and what they
raised, and a class's enrolments are a list whose entries are only appended or replaced in place
(`list_field`), so the change committed is their diff: `diff` writes it compactly (changed
top-level fields, and `<list>@` = the changed entries by position) and `to_ops` turns it into the
repository's operators."""
from __future__ import annotations

from typing import Any, Callable

from platformkit import idempotency, mongo, period_lists
from platformkit.envelope import Envelope
from platformkit.errors import NotFound as Missing
from platformkit.membership_view import INDEXES as VIEW_INDEXES
from platformkit.membership_view import MEMBERS, UNITS
from platformkit.outbox import OUTBOX_INDEX
from platformkit.repository import (FIRST_ANSWER, NOT_STATE, STAMP_FIELDS, KeyTaken, Ops, Repository, apply_ops,
                                    change_id, op)

SERVICE = "training"
COURSES = "courses"
CLASSES = "classes"
SESSIONS = "dissemination_sessions"
HIDDEN = {k: 0 for k in ("outbox", "outbox_pending", "rev", *STAMP_FIELDS, period_lists.FIELD)}
__all__ = ["AggregateStore", "CLASSES", "COURSES", "FIRST_ANSWER", "HIDDEN", "INDEXES", "KeyTaken", "MEMBERS",
           "NOT_STATE", "SERVICE", "SESSIONS", "Stores", "UNITS", "apply", "change_id", "diff", "stores", "to_ops"]
_MISSING = object()


def diff(old: dict, new: dict, list_field: str | None) -> dict[str, Any]:
    change = {k: v for k, v in new.items()
              if k not in NOT_STATE and k != list_field and old.get(k, _MISSING) != v}
    if list_field:
        before, after = old.get(list_field) or [], new.get(list_field) or []
        if len(after) < len(before):
            raise ValueError(f"{list_field}: entries may only be appended or replaced")
        changed = {str(i): e for i, e in enumerate(after) if i >= len(before) or before[i] != e}
        if changed:
            change[f"{list_field}@"] = changed
    return change


def to_ops(change: dict[str, Any], list_field: str | None) -> Ops:
    ops: Ops = [op("set", k, v) for k, v in change.items() if not k.endswith("@")]
    if list_field and f"{list_field}@" in change:
        ops.append(op("push_all", list_field, []))  # makes the list if it is missing
        ops.extend(op("set", f"{list_field}.{i}", e)
                   for i, e in sorted(change[f"{list_field}@"].items(), key=lambda kv: int(kv[0])))
    return ops


def apply(state: dict, change: dict, version: int, list_field: str | None) -> dict:
    return {**apply_ops(state, to_ops(change, list_field)), "version": version}


def scope_of(unit_id: str, ancestors: list[str]) -> list[str]:
    """The units whose subtree holds `unit_id`: its ancestors and itself. Stored with each course,
    class and session, so that "in the subtree of U" is ONE equality on an array field
    (`{organising_scope: U}`), which FerretDB pushes down to a GIN index, instead of
    `$or: [{organising_unit_id: U}, {organising_ancestors: U}]`, which it scans."""
    return [*ancestors, unit_id]


def course_index_fields(course: dict) -> dict:
    return {"owner_scope": scope_of(course["owner_unit_id"], course.get("owner_ancestors") or [])}


def class_index_fields(cls: dict) -> dict:
    """Derived from the state on every change (not business state: kept out of events): the
    organiser's scope, and the members and certificate numbers of the enrolments, so that a
    member's history and a certificate look-up are top-level equalities, not dotted paths."""
    enrolments = cls.get("enrolments") or []
    scope = scope_of(cls["organising_unit_id"], cls.get("organising_ancestors") or [])
    return {"organising_scope": scope,
            "enrolled_member_ids": [e["member_id"] for e in enrolments],
            "certificate_nos": [e["certificate_no"] for e in enrolments if e.get("certificate_no")],
            # the class list, newest first (platformkit/period_lists.py)
            period_lists.FIELD: period_lists.scope_periods(scope, cls.get("start_date"), cls["_id"], CLASS_ID_CHARS)}


# A class id is a random uuid (service.new_id): a province's day of classes is cut into 256 parts
# by its first two hex digits (platformkit/period_lists.py). Two, not one: a campaign day can
# plan thousands of classes and dissemination sessions at once (the bench's 2.5M province had
# 4,500 on one day, 280 a part with one digit: 68 ms to read a part whole); a day of a few classes
# has as many parts either way. CLASS_LIST_ROUND counts the cuts the stored classes went through.
CLASS_ID_CHARS = 2
CLASS_LIST_ROUND = 2


def class_markers(cls: dict) -> list[dict]:
    scope = scope_of(cls["organising_unit_id"], cls.get("organising_ancestors") or [])
    return period_lists.markers(CLASSES, scope, cls.get("start_date"), cls["_id"], CLASS_ID_CHARS)


def mark_class(db: Any, cls: dict) -> None:
    """The list periods a class needs before it is stored (period_lists.mark)."""
    period_lists.ensure_markers(db, class_markers(cls))


def session_index_fields(session: dict) -> dict:
    return {"organising_scope": scope_of(session["organising_unit_id"], session.get("organising_ancestors") or [])}


class AggregateStore(Repository):
    def __init__(self, db, collection: str, what: str, list_field: str | None = None,
                 derived: Callable[[dict], dict] | None = None, marks: Callable[[dict], None] | None = None):
        super().__init__(db, collection, what, list_field=list_field,
                         missing=lambda _id: Missing(f"{what} {_id} not found"), derived=derived, marks=marks)

    def _commit(self, aggregate_id: str, seq: int, ops: Ops | dict, *args: Any, **kwargs: Any) -> None:
        if isinstance(ops, dict):  # a change written by `diff`
            ops = to_ops(ops, self.list_field)
        super()._commit(aggregate_id, seq, ops, *args, **kwargs)

    def command(self, aggregate_id: str, check: Callable[[dict], Any],  # type: ignore[override]
                decide: Callable[[dict], tuple[dict, list]], events_for: Callable[[int, list], list[Envelope]],
                stamp: Callable[[dict], dict] | None = None, expected_version: int | None = None) -> dict:
        def decide_ops(doc: dict):
            new, raised = decide(doc)
            return to_ops(diff(doc, new, self.list_field), self.list_field), events_for(doc["version"] + 1, raised)
        return Repository.command(self, aggregate_id, decide_ops, check=check, stamp=stamp,
                                  expected_version=expected_version)


INDEXES = {
    COURSES: [([("owner_unit_id", 1), ("code", 1)], {"name": "owner_code", "unique": True}),
              ("owner_scope", {"name": "owner_scope"}), idempotency.index()],
    CLASSES: [("code", {"name": "code", "unique": True}), idempotency.index(),
              ("organising_scope", {"name": "organiser_scope"}),
              ("enrolled_member_ids", {"name": "enrolled_member"}),
              ("certificate_nos", {"name": "certificate_no"}), (period_lists.FIELD, {"name": "scope_periods"})],
    SESSIONS: [("organising_scope", {"name": "organiser_scope"}), *OUTBOX_INDEX, idempotency.index()],
    **AggregateStore.indexes(COURSES),
    **AggregateStore.indexes(CLASSES),
    **VIEW_INDEXES, **period_lists.INDEXES,
}


class Stores:
    """Everything of training's database the handlers use. `db`: a pymongo Database, or
    platformkit.memory_store's MemoryDatabase in handler tests."""
    INDEXES = INDEXES

    def __init__(self, db: Any):
        self.db = db
        self.courses = AggregateStore(db, COURSES, "course", derived=course_index_fields)
        self.classes = AggregateStore(db, CLASSES, "class", list_field="enrolments", derived=class_index_fields,
                                      marks=lambda cls: mark_class(db, cls))
        self.sessions = db[SESSIONS]  # only ever inserted (insert_with_events), never changed
        # the local membership view (view.py keeps it from membership.events)
        self.units = db[UNITS]
        self.members = db[MEMBERS]

    def unit_ancestors(self, unit_id: str) -> list[str] | None:
        """The unit's ancestors (root first), or None if training has not heard of the unit."""
        doc = self.units.find_one({"_id": unit_id}, {"ancestors": 1})
        return None if doc is None else doc["ancestors"]

    def member_with_ancestors(self, member_id: str) -> tuple[dict[str, Any] | None, list[str] | None]:
        """The member as the view knows it, and its unit's ancestors: the unit's current ones (they
        follow later unit moves), else those the member's newest event stated (view.py)."""
        member = self.members.find_one({"_id": member_id})
        if member is None:
            return None, None
        ancestors = self.unit_ancestors(member["unit_id"])
        if ancestors is None:
            ancestors = member.get("ancestors")
        return member, ancestors




def stores() -> Stores:
    """This process's stores (platformkit.mongo.adapter: per process, client and database)."""
    return mongo.adapter(SERVICE, Stores)

"""Where welfare's handlers read and write: the programme and case repositories, the insert-only
budget ledger, the one-time step claims and the local membership view, built from one pymongo-like
database (`Stores(db)`: the service's Mongo database, or platformkit.memory_store's MemoryDatabase
in handler tests). Also the index declaration the runner prepares the store with."""
from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING

from platformkit import membership_view, mongo, period_lists
from platformkit.repository import Repository

SERVICE = "welfare"
PROGRAMMES = "programmes"
CASES = "cases"
LEDGER = "budget_ledger"
CLAIMS = "claims"

INDEXES: dict[str, list[tuple]] = {
    PROGRAMMES: [("unit_id", {"name": "unit"}), ("scope", {"name": "scope"}),
                 ([("year", ASCENDING), ("kind", ASCENDING)], {"name": "year_kind"}),
                 # Idempotency-Key of the POST that created it (sparse unique: see CASES)
                 ("idempotency_key", {"name": "idempotency_key", "unique": True, "sparse": True})],
    CASES: [("unit_id", {"name": "unit"}), ("scope", {"name": "scope"}),
            ("programme_id", {"name": "programme"}), ("member_id", {"name": "member"}),
            ("status", {"name": "status"}), (period_lists.FIELD, {"name": "scope_periods"}),
            # Idempotency-Key of the POST that created the case / paid it: a retry finds the first
            # result, and two racing retries cannot both insert. Sparse: most documents have none
            # (a unique non-sparse index would treat every missing key as the same null on MongoDB).
            ("idempotency_key", {"name": "idempotency_key", "unique": True, "sparse": True}),
            ("disbursement_key", {"name": "disbursement_key", "unique": True, "sparse": True})],
    # The budget ledger: one entry per reservation, `_id` = programme id + sequence number, so two
    # appends after the same tail cannot both land (service.reserve_disbursement); `entry_key`
    # reserves a case once.
    LEDGER: [([("programme_id", ASCENDING), ("seq", DESCENDING)], {"name": "tail"}),
             ("entry_key", {"name": "entry_key", "unique": True, "sparse": True})],
    **membership_view.INDEXES, **period_lists.INDEXES,
    # the change documents (and outboxes) of programmes and cases: platformkit/repository.py
    **Repository.indexes(PROGRAMMES), **Repository.indexes(CASES),
}
# The relay publishes the change documents (the only documents that carry events): description.py
OUTBOX_COLLECTIONS = (f"{PROGRAMMES}_events", f"{CASES}_events")


def scope_of(doc: dict[str, Any]) -> list[str]:
    """The units whose subtree holds a programme or case: its unit's ancestors and the unit itself.
    Stored with each (`scope`), so that "in the subtree of U" is ONE equality on an array field
    (`{scope: U}`), which FerretDB pushes down to an index, instead of
    `$or: [{unit_id: U}, {ancestors: U}]`, which it answers by reading the whole collection."""
    return [*(doc.get("ancestors") or []), doc["unit_id"]]


# A case id is "case-" and 32 random hex digits (service.request_case): a province's day of cases
# is cut into 16 parts by the first of them (platformkit/period_lists.py).
CASE_ID_CHARS = len("case-") + 1


def case_fields(case: dict[str, Any]) -> dict[str, Any]:
    """A case's derived fields: its scope, and the periods it is listed under newest first
    (platformkit/period_lists.py: by `requested_on`)."""
    scope = scope_of(case)
    return {"scope": scope, period_lists.FIELD: period_lists.scope_periods(scope, case.get("requested_on"),
                                                                          case["_id"], CASE_ID_CHARS)}


def case_markers(case: dict[str, Any]) -> list[dict]:
    return period_lists.markers(CASES, scope_of(case), case.get("requested_on"), case["_id"], CASE_ID_CHARS)


def mark_case(db: Any, case: dict[str, Any]) -> None:
    """The list periods a case needs before it is stored (period_lists.mark)."""
    period_lists.ensure_markers(db, case_markers(case))


class Stores:
    def __init__(self, db: Any):
        self.db = db  # membership_view's helpers take the database itself
        # `scope` (scope_of) and a case's `scope_periods` (case_fields) are derived at every write
        # (Repository's `derived`): not business state, never in events, hidden from answers
        # (service.HIDDEN); older documents: service.backfill_scope, backfill_case_periods
        self.programmes = Repository(db, PROGRAMMES, "programme", derived=lambda s: {"scope": scope_of(s)})
        self.cases = Repository(db, CASES, "case", derived=case_fields, marks=lambda s: mark_case(db, s))
        # the materialised copies, for queries other than by id (lists, look-ups by key)
        self.programme_docs = db[PROGRAMMES]
        self.case_docs = db[CASES]
        self.ledger = db[LEDGER]
        self.claims = db[CLAIMS]
        self.units = db[membership_view.UNITS]
        self.members = db[membership_view.MEMBERS]

    def repository(self, collection: str) -> Repository:
        return {PROGRAMMES: self.programmes, CASES: self.cases}[collection]

    @staticmethod
    def insert_new(collection: Any, doc: dict[str, Any]) -> bool:
        """Insert `doc`; False when a unique index (its `_id`) already holds one: the only write
        FerretDB applies atomically, used by the ledger and the claims as a compare-and-set."""
        try:
            collection.insert_one(doc)
            return True
        except Exception as exc:  # pymongo's DuplicateKeyError, or FerretDB's spelling of it
            if mongo.is_duplicate_key(exc):
                return False
            raise




def stores() -> Stores:
    """This process's stores (platformkit.mongo.adapter: per process, client and database)."""
    return mongo.adapter(SERVICE, Stores)

"""The adapter between membership's handlers (service.py) and its database: `Stores(db)` holds the
repositories of the aggregates (platformkit/repository.py) and the collections the handlers
query, over any pymongo-like Database (the service's real one, or platformkit.memory_store's for
handler tests). `stores()` is the process's own, what api.py, the jobs and the runner pass."""
from __future__ import annotations

from typing import Any

from platformkit import mongo
from platformkit.repository import Repository, next_number

SERVICE = "membership"
# The Idempotency-Key of the POST that created a unit or a member (caller-scoped, see
# service._idempotency_key) is stored with the document it created, under a unique index: two
# racing retries cannot both insert. Sparse: most documents have none (a unique non-sparse index
# would treat every missing key as the same null on MongoDB).
IDEMPOTENCY_INDEX = ("idempotency_key", {"unique": True, "sparse": True, "name": "idempotency_key"})
INDEXES = {
    "units": [("code", {"unique": True, "name": "code"}), ("parent_id", {"name": "parent"}),
              ("has_scheduled", {"name": "has_scheduled"}),  # apply_due's query
              ("ancestors", {"name": "ancestors"}), ("paths_dirty", {"name": "paths_dirty"}), IDEMPOTENCY_INDEX],
    "members": [("active_citizen_id", {"unique": True, "sparse": True, "name": "active_citizen_id"}),
                ("member_number", {"unique": True, "sparse": True, "name": "member_number"}),
                ("citizen_id", {"name": "citizen_id"}),  # the lookup of a person's former records
                ("unit_path", {"name": "unit_path"}), ("unit_id", {"name": "unit"}),
                ("name_terms", {"name": "name_terms"}), IDEMPOTENCY_INDEX,
                ("pending_transfer_path", {"name": "pending_transfer_path"})],  # incoming transfer requests
    "dues": [("member_id", {"name": "member"})],
    # the change documents (and outboxes) of each: platformkit/repository.py
    **Repository.indexes("units"), **Repository.indexes("members"), **Repository.indexes("dues"),
    **Repository.indexes("batches"),
    # batches: _id is the caller-scoped Idempotency-Key of a batch (services/membership/batch.py)
}
# The relay publishes the change documents (the only documents that carry events): description.py
OUTBOX_COLLECTIONS = ("units_events", "members_events", "dues_events")


class Stores:
    """What membership's handlers read and write. Writes go through the repositories only (one
    change document per change, with its events); the collections behind them (`units.coll`,
    `members.coll`, `dues.coll`) are what the lists, look-ups and counts query."""

    def __init__(self, db: Any):
        self.db = db
        self.units = Repository(db, "units", "unit")
        self.members = Repository(db, "members", "member")
        self.dues = Repository(db, "dues", "dues")
        # a batch's progress and answer (batch.py): saved like an aggregate, no events, not relayed
        self.batches = Repository(db, "batches", "batch", relayed=False)

    def next_number(self, name: str) -> int:
        """A never-repeating number of the sequence `name` (card numbers; the `sequences` collection)."""
        return next_number(self.db, name)




def stores() -> Stores:
    """This process's stores (platformkit.mongo.adapter: per process, client and database)."""
    return mongo.adapter(SERVICE, Stores)

"""Where reporting's command handlers read and write, built from one pymongo-like database
(`Stores(db)`: reporting's Mongo database, or platformkit.memory_store's MemoryDatabase in handler
tests): the targets (through the repository), the live generation of the views (read: the
hierarchy, the computed figures) and the database the periodic report store (periodic/store.py)
keeps its reports, steps and settings in."""
from __future__ import annotations

from typing import Any

from platformkit import mongo
from platformkit.repository import Repository

from .generations.hierarchy_reads import SharedHierarchy
from .store import Generation, active_generation

SERVICE = "reporting"
TARGETS = "targets"

TARGET_INDEXES: dict[str, list[tuple]] = {
    # a unit's targets of a year; its siblings' too, by the parent they had when set (views.TargetBook)
    TARGETS: [([("unit", 1), ("year", 1)], {"name": "unit_year"}), ([("parent_id", 1), ("year", 1)], {"name": "parent_year"})],
    "meta": [], **Repository.indexes(TARGETS)}


class Stores:
    def __init__(self, db: Any):
        self.db = db  # periodic/store.py's functions take the database
        # targets raise no events (nothing consumes them): the relay has nothing to publish
        self.targets = Repository(db, TARGETS, "target", relayed=False)
        self.target_docs = db[TARGETS]
        self.hierarchy = SharedHierarchy()  # the units this process's requests read, while unchanged

    def live(self) -> Generation:
        """The generation of the views the projector keeps current (a rebuild flips it)."""
        return Generation(self.db, active_generation(self.db), self.hierarchy)




def stores() -> Stores:
    """This process's stores (platformkit.mongo.adapter: per process, client and database)."""
    return mongo.adapter(SERVICE, Stores)

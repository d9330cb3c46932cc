"""The hierarchy as the API's views read it: units by `_id` and a unit's children, kept by each API
process while the generation's hierarchy stamp is unchanged.

Why: FerretDB 1.24 reads every document a query returns whole and converts it in Go, about 0.2 ms
a unit. The province view of the 2.5M-member province read its 150 communes' unit documents on every
request (32 of its 58 ms, docs/benchmarks.md), though the hierarchy changes a few times a day.

How it stays correct. Every write of unit documents (`MongoGeneration._apply_ops`, the rebuild's
`write`) is followed by a new random stamp in `meta` (`stamp_id`); dropping a generation deletes
it. A request reads the stamp once (one `_id` look-up) and uses what this process holds only if it
was read under that same stamp:
- a reader that read the stamp before a unit write and the units after it holds newer documents
  under the older stamp: the next request sees the new stamp and reads again;
- what a reader read is kept only if the stamp it validated with is still the current one, so
  documents read before a write are never kept under the stamp written after it;
- a random stamp (not a counter) because FerretDB's updates are read-modify-write: two writers'
  increments could collapse into one value, two random values cannot.
A killed projector replays its journal at start (`replay_journals` -> `_apply_ops`), which stamps
again. Bounded: past MAX_UNITS documents held, everything is dropped and read again.
"""
from __future__ import annotations

import threading
import uuid
from typing import Any

from pymongo.errors import DuplicateKeyError

MAX_UNITS = 50_000  # a few tens of MB per process at most

# what the views read of a child (views.py): its name and place, its closing, its parents (sole_parent)
CHILD_FIELDS = {"name": 1, "code": 1, "kind": 1, "sector": 1, "ancestors": 1, "status": 1, "closed_on": 1,
                "merged_into": 1, "predecessors": 1, "successors": 1, "parent_id": 1,
                "parents_seen": 1, "parents": 1}


def stamp_id(number: int) -> str:
    return f"g{number}_hierarchy"


def stamp(db: Any, number: int) -> None:
    """A new stamp for generation `number`'s hierarchy: call after its unit documents were written."""
    value = {"$set": {"stamp": uuid.uuid4().hex}}
    try:
        db.meta.update_one({"_id": stamp_id(number)}, value, upsert=True)
    except DuplicateKeyError:  # two first stamps at once: the document exists now
        db.meta.update_one({"_id": stamp_id(number)}, value)


def current_stamp(db: Any, number: int) -> str | None:
    doc = db.meta.find_one({"_id": stamp_id(number)})
    return doc.get("stamp") if doc else None


class SharedHierarchy:
    """One process's copy of the units its requests read (see the module's docstring)."""

    def __init__(self, limit: int = MAX_UNITS):
        self.limit = limit
        self.lock = threading.Lock()
        self.key: tuple | None = None
        self.units: dict[str, dict | None] = {}
        self.kids: dict[str, list[dict]] = {}
        self.held = 0

    def _keep(self, key: tuple, table: dict, name: str, value: Any, size: int) -> None:
        with self.lock:
            if key != self.key:
                return  # read under another stamp than the current one: not kept
            if self.held >= self.limit:
                self.units.clear()
                self.kids.clear()
                self.held = 0
            table[name] = value
            self.held += size

    def _valid(self, key: tuple) -> None:
        with self.lock:
            if key != self.key:
                self.key = key
                self.units.clear()
                self.kids.clear()
                self.held = 0

    def unit(self, gen, unit_id: str) -> dict | None:
        key = gen.hierarchy_key()
        self._valid(key)
        if unit_id in self.units:
            doc = self.units[unit_id]
        else:
            doc = gen.units.find_one({"_id": unit_id})
            self._keep(key, self.units, unit_id, doc, 1)
        return dict(doc) if doc is not None else None

    def children(self, gen, parent_id: str) -> list[dict]:
        key = gen.hierarchy_key()
        self._valid(key)
        kids = self.kids.get(parent_id)
        if kids is None:
            kids = list(gen.units.find({"parent_id": parent_id}, CHILD_FIELDS))
            self._keep(key, self.kids, parent_id, kids, max(1, len(kids)))
        return [dict(k) for k in kids]

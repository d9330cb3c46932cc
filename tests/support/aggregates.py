"""A database as the tests look at it: an aggregate document with `outbox` = the events of its
change documents not yet published (platformkit/repository.py keeps them in
`<collection>_events`, one change document per committed change), in commit order. That is what
the aggregate document's own outbox held before the repository; every other read and write goes
to the real collections unchanged."""
from __future__ import annotations

from platformkit.repository import change_id


class _Aggregates:
    def __init__(self, database, name: str):
        self._db, self._coll = database, database[name]

    def _changes(self):
        return self._db[f"{self._coll.name}_events"]

    def _with_outbox(self, doc, changes=None):
        if doc is None:
            return None
        if changes is None:  # one aggregate: its change documents by _id (FerretDB scans for anything else)
            changes, n = [], 1
            while (c := self._changes().find_one({"_id": change_id(doc["_id"], n)}, {"outbox": 1})) is not None:
                changes.append(c)
                n += 1
        return {**doc, "outbox": [e for c in sorted(changes, key=lambda c: c["_id"]) for e in c.get("outbox") or []]}

    def find_one(self, *args, **kwargs):
        return self._with_outbox(self._coll.find_one(*args, **kwargs))

    def find(self, *args, **kwargs):
        by_aggregate: dict = {}
        for c in self._changes().find({}, {"outbox": 1, "aggregate_id": 1}):  # one pass for many documents
            by_aggregate.setdefault(c["aggregate_id"], []).append(c)
        return [self._with_outbox(d, by_aggregate.get(d["_id"], [])) for d in self._coll.find(*args, **kwargs)]

    def __getattr__(self, name):
        return getattr(self._coll, name)


class WithOutboxes:
    def __init__(self, database, aggregates: tuple[str, ...]):
        self._db, self._aggregates = database, aggregates

    def __getitem__(self, name):
        return _Aggregates(self._db, name) if name in self._aggregates else self._db[name]

    def __getattr__(self, name):
        return self[name] if name in self._aggregates else getattr(self._db, name)

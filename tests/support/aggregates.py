"""A database as the tests look at it: an aggregate document with `outbox` = the events of its
change documents not yet published (platformkit/repository.py keeps them in
`<collection>_events`, one change document per committed change), in commit order. That is what
the aggregate document's own outbox held before the repository; every other read and write goes
to the real collections unchanged."""
from __future__ import annotations


class _Aggregates:
    def __init__(self, database, name: str):
        self._db, self._coll = database, database[name]

    def _with_outbox(self, doc):
        if doc is None:
            return None
        changes = self._db[f"{self._coll.name}_events"].find({"aggregate_id": doc["_id"]}, {"outbox": 1})
        return {**doc, "outbox": [e for c in sorted(changes, key=lambda c: c["_id"]) for e in c.get("outbox") or []]}

    def find_one(self, *args, **kwargs):
        return self._with_outbox(self._coll.find_one(*args, **kwargs))

    def find(self, *args, **kwargs):
        return [self._with_outbox(d) for d in self._coll.find(*args, **kwargs)]

    def __getattr__(self, name):
        return getattr(self._coll, name)


class WithOutboxes:
    def __init__(self, database, aggregates: tuple[str, ...]):
        self._db, self._aggregates = database, aggregates

    def __getitem__(self, name):
        return _Aggregates(self._db, name) if name in self._aggregates else self._db[name]

    def __getattr__(self, name):
        return self[name] if name in self._aggregates else getattr(self._db, name)

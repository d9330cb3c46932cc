"""Generation N held in memory: the same primitives as MongoGeneration, answered from dicts (the
hierarchy, every unit|month document with its `v` and `applied` maps, the per-aggregate states),
with the same effects as the collections would have after the same journal operations.

The rebuild folds the topics into one and then inserts its `documents()` (rebuild.py); unit tests
drive the projector's handler over one as a fake of the database."""
from __future__ import annotations

import sys
from collections import defaultdict
from typing import Iterable, Iterator

from .base import AGG_BUCKETS, STATE_BUCKETS, BaseGeneration, agg_id, bucket

_KEYS: dict[tuple, tuple] = {}


def _freeze(state: dict) -> tuple:
    """A state document as (shared key tuple, *values): a third of a dict's size; lists become
    tuples and short repeated strings (unit ids, statuses) are shared."""
    keys = tuple(k for k in state if k != "_id")
    keys = _KEYS.setdefault(keys, keys)
    values = []
    for k in keys:
        v = state[k]
        if type(v) is list:
            v = tuple(v)
        elif type(v) is str and k != "ids":
            v = sys.intern(v)
        values.append(v)
    return (keys, *values)


def _thaw(frozen: tuple) -> dict:
    keys = frozen[0]
    return {k: (list(v) if type(v) is tuple else v) for k, v in zip(keys, frozen[1:])}


class MemoryGeneration(BaseGeneration):
    def __init__(self, number: int = 0):
        super().__init__(number)
        # self.known_units IS the hierarchy here: never forgotten
        self.aggs: dict[str, dict[str, tuple[dict, dict]]] = {}  # unit -> month -> (v, applied)
        self.states: dict[str, tuple] = {}

    def unit(self, unit_id: str) -> dict | None:
        return self.known_units.get(unit_id)

    def units(self) -> list[dict]:
        return list(self.known_units.values())

    def descendants(self, unit_id: str) -> list[dict]:
        return [{"_id": uid, "ancestors": u["ancestors"]} for uid, u in self.known_units.items()
                if unit_id in u.get("ancestors", ())]

    def agg_docs(self, unit_ids: list[str], last_month: str | None = None) -> list[dict]:
        out = []
        for u in unit_ids:
            for month, (v, _applied) in self.aggs.get(u, {}).items():
                if last_month is None or month <= last_month:
                    out.append({"_id": agg_id(u, month), "unit": u, "month": month, "v": dict(v)})
        return out

    def applied_offsets(self, docs: list[tuple[str, str]]) -> dict[str, dict]:
        out = {}
        for doc_id, unit in docs:
            months = self.aggs.get(unit)
            if months:
                doc = months.get(doc_id[len(unit) + 1:])
                if doc is not None:
                    out[doc_id] = doc[1]
        return out

    def run_journal(self, ops: list[dict]) -> None:
        """What MongoGeneration's journal does to the collections: units upserted with $set, agg
        documents created when new, then `$inc v.*` + `$set applied.p` where applied.p < off."""
        units = self.known_units
        for o in ops:
            if o["k"] == "unit":
                old = units.get(o["id"])
                units[o["id"]] = {**old, **o["set"]} if old is not None else {"_id": o["id"], **o["set"]}
        for o in ops:
            if o["k"] != "agg":
                continue
            months = self.aggs.get(o["unit"])
            if months is None:
                months = self.aggs[sys.intern(o["unit"])] = {}
            doc = months.get(o["month"])
            if doc is None:
                doc = months[sys.intern(o["month"])] = ({}, {})
            v, applied = doc
            p, off = o["p"], o["off"]
            if applied.get(p, -1) < off:
                for field, n in o["inc"].items():
                    v[field] = v.get(field, 0) + n
                applied[p] = off

    def load_states(self, keys: Iterable[str]) -> dict[str, dict]:
        states = self.states
        return {k: _thaw(states[k]) for k in set(keys) if k in states}

    def save_states(self, states: dict[str, dict]) -> None:
        # $set semantics: fields of the stored document that the new state lacks are kept
        for k, v in states.items():
            old = self.states.get(k)
            if old is not None and not set(old[0]) <= v.keys():
                v = {**_thaw(old), **v}
            self.states[k] = _freeze(v)

    def counts(self) -> dict[str, int]:
        return {"units": len(self.known_units), "agg": sum(len(m) for m in self.aggs.values()),
                "state": len(self.states)}

    # ------------------------------------------------------------ the documents, once
    def documents(self) -> Iterator[tuple[str, str, Iterator[dict], int]]:
        """(kind, collection, documents, count) of every collection of the generation."""
        prefix = f"g{self.number}_"
        units = list(self.known_units.values())
        yield "units", prefix + "units", iter(units), len(units)
        by_bucket: dict[str, list[str]] = defaultdict(list)
        for unit in self.aggs:
            by_bucket[bucket(unit, AGG_BUCKETS)].append(unit)
        for b in sorted(by_bucket):
            count = sum(len(self.aggs[u]) for u in by_bucket[b])
            docs = ({"_id": agg_id(u, m), "unit": u, "month": m, "v": v, "applied": applied}
                    for u in by_bucket[b] for m, (v, applied) in self.aggs[u].items())
            yield "agg", f"{prefix}agg_{b}", docs, count
        keys_by_bucket: dict[str, list[str]] = defaultdict(list)
        for key in self.states:
            keys_by_bucket[bucket(key, STATE_BUCKETS)].append(key)
        for b in sorted(keys_by_bucket):
            keys = keys_by_bucket[b]
            docs = ({"_id": k, **_thaw(self.states[k])} for k in keys)
            yield "state", f"{prefix}state_{b}", docs, len(keys)

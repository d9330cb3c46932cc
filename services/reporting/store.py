"""Reporting's Mongo adapter: the rolled-up fact documents, the hierarchy, the projector's memory,
and the journal that makes each batch's writes complete even after a SIGKILL.

Collections of one generation `g<N>_...` (a rebuild fills generation N+1, then flips `meta`):
  agg_<bb> {_id: "unit|month", unit, month, v: {"members:active": 12, ...}, applied: {"m3": 1207}}
           one document per unit and month holding every indicator (dots written as ':'); each
           value is the sum over the unit's whole subtree. `applied` holds, per source partition,
           the offset of the last event included: the guard that makes redelivery count nothing.
           Spread over AGG_BUCKETS collections by unit (see `bucket`).
  units    {_id, parent_id, ancestors, name, code, kind, level, sector, status, v}
  state_<bb> {_id: "member:m-1" | "dues:..." | ..., v, ...}: what later events' meaning depends on
  journal  {_id, ops: [...]}: the writes of one flush, written first and deleted last; replayed
           (idempotently) at start-up, so that a flush is never left half-done
Outside generations: `meta` (the active generation) and `targets` (entered through the API).

Each agg document is written by the one projector process only; within it writes are sequential,
so FerretDB's non-atomic updates are not a concern here (see platformkit/repository.py).

Why buckets: FerretDB 1.24 (SQLite) executes every update and every non-`_id` query as a scan of
the whole collection (measured: 4.5 ms per update_one at 2,000 documents, 39 ms at 20,000), while
`find_one({_id})` and inserts stay under a millisecond. Spreading documents over many small
collections keeps each scan short; on MongoDB the buckets cost nothing.
"""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict
import os
import zlib
from dataclasses import dataclass
from typing import Any, Iterable

from pymongo import ASCENDING, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from .projection import Delta, HierarchyChange

log = logging.getLogger(__name__)

TOPIC_KEYS = {"membership.events": "m", "training.events": "t", "welfare.events": "w"}


def partition_key(topic: str, partition: int) -> str:
    """'t3f.membership.events', 2 -> 'm2' (a field name without dots, stable across prefixes)."""
    for name, short in TOPIC_KEYS.items():
        if topic.endswith(name):
            return f"{short}{partition}"
    return "x" + "".join(ch for ch in topic if ch.isalnum())[-20:] + str(partition)


AGG_BUCKETS = int(os.environ.get("REPORTING_AGG_BUCKETS", "32"))
STATE_BUCKETS = int(os.environ.get("REPORTING_STATE_BUCKETS", "64"))


def bucket(key: str, n: int) -> str:
    return f"{zlib.crc32(key.encode('utf-8')) % n:02x}"


def agg_id(unit: str, month: str) -> str:
    return f"{unit}|{month}"


def field_of(indicator: str) -> str:
    """Indicator codes contain dots, which Mongo reads as paths: store them with ':'."""
    return indicator.replace(".", ":")


def indicator_of(field: str) -> str:
    return field.replace(":", ".")


@dataclass
class PlacedDelta:
    """A delta with where it came from (the guard) and every unit it counts for."""
    pkey: str
    offset: int
    delta: Delta


class Generation:
    def __init__(self, db: Database, number: int):
        self.db = db
        self.number = number
        self.units = db[f"g{number}_units"]
        self.journal = db[f"g{number}_journal"]
        self._unit_cache: dict[str, dict] = {}

    def agg_for(self, unit: str):
        return self.db[f"g{self.number}_agg_{bucket(unit, AGG_BUCKETS)}"]

    def state_for(self, key: str):
        return self.db[f"g{self.number}_state_{bucket(key, STATE_BUCKETS)}"]

    def setup(self) -> None:
        self.units.create_index("parent_id", name="parent")
        self.units.create_index("ancestors", name="ancestors")

    def drop(self) -> None:
        prefix = f"g{self.number}_"
        for name in self.db.list_collection_names():
            if name.startswith(prefix):
                self.db[name].drop()

    def agg_docs(self, unit_ids: list[str], last_month: str | None = None) -> list[dict]:
        """Every monthly document of these units (up to last_month), from their buckets."""
        by_bucket: dict[str, list[str]] = defaultdict(list)
        for u in unit_ids:
            by_bucket[bucket(u, AGG_BUCKETS)].append(u)
        out = []
        for b, ids in by_bucket.items():
            query: dict[str, Any] = {"unit": ids[0] if len(ids) == 1 else {"$in": ids}}
            if last_month:
                query["month"] = {"$lte": last_month}
            out.extend(self.db[f"g{self.number}_agg_{b}"].find(query, {"unit": 1, "month": 1, "v": 1}))
        return out

    # ------------------------------------------------------------ hierarchy
    def unit(self, unit_id: str) -> dict | None:
        if unit_id not in self._unit_cache:
            doc = self.units.find_one({"_id": unit_id})
            if doc is None:
                return None
            self._unit_cache[unit_id] = doc
        return self._unit_cache[unit_id]

    def forget_cache(self) -> None:
        self._unit_cache.clear()

    def _path_of(self, unit_id: str) -> list[str]:
        u = self.unit(unit_id)
        return (u["ancestors"] + [unit_id]) if u else [unit_id]

    def provisional_ops(self, unit_id: str, ancestors_hint: list[str]) -> list[dict]:
        """Register units only known from an event's ancestors (their own events may come later
        on another partition). The nearest known ancestor's CURRENT path is trusted over the
        hint, so a unit moved meanwhile places its newcomers right."""
        if self.unit(unit_id) is not None:
            return []
        chain = list(ancestors_hint) + [unit_id]
        ops: list[dict] = []
        known_upto = -1
        for i in range(len(chain) - 1, -1, -1):
            if self.unit(chain[i]) is not None:
                known_upto = i
                break
        base = self._path_of(chain[known_upto])[:-1] if known_upto >= 0 else []
        path = base + ([chain[known_upto]] if known_upto >= 0 else [])
        for uid in chain[known_upto + 1:]:
            doc = {"_id": uid, "parent_id": path[-1] if path else None, "ancestors": list(path),
                   "status": "active", "provisional": True, "v": 0}
            ops.append({"k": "unit", "id": uid, "set": doc})
            self._unit_cache[uid] = doc
            path = path + [uid]
        return ops

    # ------------------------------------------------------------ journal
    def run_journal(self, ops: list[dict]) -> None:
        if not ops:
            return
        jid = uuid.uuid4().hex
        self.journal.insert_one({"_id": jid, "ops": ops})
        self._apply_ops(ops)
        self.journal.delete_one({"_id": jid})

    def replay_journals(self) -> int:
        n = 0
        for j in self.journal.find().sort("_id", ASCENDING):
            self._apply_ops(j["ops"])
            self.journal.delete_one({"_id": j["_id"]})
            n += 1
        if n:
            log.warning("completed %d interrupted flush(es)", n)
        self.forget_cache()
        return n

    def _apply_ops(self, ops: list[dict]) -> None:
        unit_ops = [UpdateOne({"_id": o["id"]}, {"$set": o["set"]}, upsert=True) for o in ops if o["k"] == "unit"]
        if unit_ops:
            self.units.bulk_write(unit_ops, ordered=True)
        agg_ops = [o for o in ops if o["k"] == "agg"]
        if not agg_ops:
            return
        # Create missing documents first (plain inserts; a duplicate means it exists), then apply
        # guarded increments without upsert: FerretDB answers an upsert that hits a duplicate
        # key inside a bulk with a reply pymongo cannot read.
        fresh: dict[str, list[dict]] = defaultdict(list)
        writes: dict[str, list[UpdateOne]] = defaultdict(list)
        for o in agg_ops:
            b = bucket(o["unit"], AGG_BUCKETS)
            if o.get("new"):
                fresh[b].append({"_id": o["id"], "unit": o["unit"], "month": o["month"], "v": {}, "applied": {}})
            p, off = o["p"], o["off"]
            guard = {"_id": o["id"], "$or": [{f"applied.{p}": {"$lt": off}}, {f"applied.{p}": {"$exists": False}}]}
            inc = {f"v.{field}": n for field, n in o["inc"].items()}
            writes[b].append(UpdateOne(guard, {"$inc": inc, "$set": {f"applied.{p}": off}}))
        for b, docs in fresh.items():
            unique = list({d["_id"]: d for d in docs}.values())
            try:
                self.db[f"g{self.number}_agg_{b}"].insert_many(unique, ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        for b, ws in writes.items():
            for i in range(0, len(ws), 500):
                self.db[f"g{self.number}_agg_{b}"].bulk_write(ws[i:i + 500], ordered=False)

    # ------------------------------------------------------------ facts
    def fact_ops(self, placed: list[PlacedDelta]) -> list[dict]:
        """Turn leaf deltas into guarded increments of every unit on the path (one write per unit,
        month and source partition), dropping what a document already includes (its applied
        offset for that partition is not older)."""
        events: dict[tuple[str, str], list[tuple[int, str, int]]] = defaultdict(list)
        meta: dict[str, tuple[str, str]] = {}
        for pd in placed:
            d = pd.delta
            for unit in self._path_of(d.unit_id):
                doc_id = agg_id(unit, d.month)
                meta[doc_id] = (unit, d.month)
                events[(doc_id, pd.pkey)].append((pd.offset, d.indicator, d.amount))
        existing = self._applied([(doc_id, unit) for doc_id, (unit, _) in meta.items()])
        ops = []
        for (doc_id, pkey), evs in events.items():
            already = existing.get(doc_id, {}).get(pkey, -1)
            inc: dict[str, int] = defaultdict(int)
            top = -1
            for off, ind, amount in evs:
                if off > already:
                    inc[field_of(ind)] += amount
                    top = max(top, off)
            if top < 0:
                continue
            unit, month = meta[doc_id]
            ops.append({"k": "agg", "id": doc_id, "p": pkey, "off": top, "inc": dict(inc), "unit": unit,
                        "month": month, "new": doc_id not in existing})
        return ops

    def _applied(self, docs: list[tuple[str, str]]) -> dict[str, dict]:
        """{doc_id: applied offsets} of the documents that exist; one `_id` look-up each (the one
        query FerretDB answers without a scan)."""
        out = {}
        for doc_id, unit in docs:
            doc = self.agg_for(unit).find_one({"_id": doc_id}, {"applied": 1})
            if doc is not None:
                out[doc_id] = doc.get("applied") or {}
        return out

    # ------------------------------------------------------------ hierarchy changes
    def hierarchy_ops(self, change: HierarchyChange, pkey: str, offset: int, version: int) -> list[dict]:
        """Apply a unit event. When its place changes (created somewhere else than a fact
        suggested, moved, ...), its subtree totals leave the old ancestors and join the new ones."""
        ops: list[dict] = []
        current = self.unit(change.unit_id)
        if current is not None and current.get("v", 0) >= version:
            return []  # already applied (its units document was written last)
        if change.parent_id is not None:
            ops += self.provisional_ops(change.parent_id, change.ancestors_hint[:-1] if change.ancestors_hint
                                        and change.ancestors_hint[-1] == change.parent_id else change.ancestors_hint)
            new_ancestors = self._path_of(change.parent_id)
        elif current is not None:
            new_ancestors = current["ancestors"]
        else:
            ops += self.provisional_ops(change.unit_id, change.ancestors_hint)
            current = self.unit(change.unit_id)
            new_ancestors = current["ancestors"]
        old_ancestors = current["ancestors"] if current is not None else new_ancestors
        if current is not None and old_ancestors != new_ancestors:
            ops += self._move_totals(change.unit_id, old_ancestors, new_ancestors, pkey, offset)
            for desc in self.descendants(change.unit_id):
                tail = desc["ancestors"][desc["ancestors"].index(change.unit_id) + 1:]
                ops.append({"k": "unit", "id": desc["_id"],
                            "set": {"ancestors": new_ancestors + [change.unit_id] + tail}})
        doc = {**(current or {}), **change.fields, "_id": change.unit_id, "ancestors": new_ancestors,
               "parent_id": new_ancestors[-1] if new_ancestors else None, "v": version, "provisional": False}
        ops.append({"k": "unit", "id": change.unit_id, "set": doc})
        self.forget_cache()
        return ops

    def descendants(self, unit_id: str) -> list[dict]:
        """{_id, ancestors} of every unit below this one (the rebuild's in-memory generation
        answers from memory)."""
        return list(self.units.find({"ancestors": unit_id}, {"ancestors": 1}))

    def _move_totals(self, unit_id: str, old: list[str], new: list[str], pkey: str, offset: int) -> list[dict]:
        leaving = [a for a in old if a not in new]
        joining = [a for a in new if a not in old]
        totals = self.agg_docs([unit_id])
        targets = [(a, -1) for a in leaving] + [(a, +1) for a in joining]
        existing = self._applied([(agg_id(a, t["month"]), a) for a, _ in targets for t in totals])
        ops: list[dict] = []
        for ancestor, sign in targets:
            for t in totals:
                inc = {f: sign * v for f, v in (t.get("v") or {}).items() if v}
                doc_id = agg_id(ancestor, t["month"])
                if not inc or existing.get(doc_id, {}).get(pkey, -1) >= offset:
                    continue
                ops.append({"k": "agg", "id": doc_id, "p": pkey, "off": offset, "inc": inc, "unit": ancestor,
                            "month": t["month"], "new": doc_id not in existing})
        return ops

    # ------------------------------------------------------------ projector memory
    def load_states(self, keys: Iterable[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for key in set(keys):
            doc = self.state_for(key).find_one({"_id": key})
            if doc is not None:
                out[key] = doc
        return out

    def save_states(self, states: dict[str, dict]) -> None:
        by_bucket: dict[str, list[UpdateOne]] = defaultdict(list)
        for k, v in states.items():
            by_bucket[bucket(k, STATE_BUCKETS)].append(
                UpdateOne({"_id": k}, {"$set": {kk: vv for kk, vv in v.items() if kk != "_id"}}, upsert=True))
        for b, writes in by_bucket.items():
            self.db[f"g{self.number}_state_{b}"].bulk_write(writes, ordered=False)


def active_generation(db: Database) -> int:
    doc = db.meta.find_one({"_id": "generation"})
    return doc["active"] if doc else 0


def set_active_generation(db: Database, number: int) -> None:
    db.meta.update_one({"_id": "generation"}, {"$set": {"active": number}}, upsert=True)

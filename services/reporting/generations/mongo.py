"""Reporting's Mongo adapter: the rolled-up fact documents, the hierarchy, the projector's memory,
and the journal that makes each batch's writes complete even after a SIGKILL.

Collections of one generation `g<N>_...` (a rebuild fills generation N+1, then flips `meta`):
  agg_<bb> {_id: "unit|month", unit, month, v: {"members:active": 12, ...}, applied: {"m3": 1207}}
           one document per unit and month holding every indicator (dots written as ':'); each
           value is the sum over the unit's whole subtree. `applied` holds, per source partition,
           the offset of the last event included: the guard that makes redelivery count nothing.
           Spread over AGG_BUCKETS collections by unit (see `bucket`).
  units    {_id, parent_id, ancestors, name, code, kind, level, sector, status, v}; a closed unit
           also `closed_on`, `merged_into` and `successors`, a successor `predecessors`, a unit
           children moved out of `handed_to` ({unit: date}): see base.py
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
from typing import Any, Iterable

from pymongo import ASCENDING, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from platformkit import mongo

from .base import AGG_BUCKETS, STATE_BUCKETS, BaseGeneration, bucket

log = logging.getLogger(__name__)


class MongoGeneration(BaseGeneration):
    """Generation N in its collections (the live views, the projector's target)."""

    def __init__(self, db: Database, number: int):
        super().__init__(number)
        self.db = db
        self.units = db[f"g{number}_units"]
        self.journal = db[f"g{number}_journal"]

    def agg_for(self, unit: str):
        return self.db[f"g{self.number}_agg_{bucket(unit, AGG_BUCKETS)}"]

    def state_for(self, key: str):
        return self.db[f"g{self.number}_state_{bucket(key, STATE_BUCKETS)}"]

    def indexes(self) -> dict[str, list[tuple]]:
        return {self.units.name: [("parent_id", {"name": "parent"}), ("ancestors", {"name": "ancestors"}),
                                  ("is_root", {"name": "is_root"})]}

    def hot_fields(self) -> dict[str, list[str]]:
        """What the generation's queries filter on besides `_id` (every bucket is created up front
        on the local store, so that its GIN indexes exist before the projector writes)."""
        hot: dict[str, list[str]] = {f"g{self.number}_agg_{bucket_no:02x}": ["unit"] for bucket_no in range(AGG_BUCKETS)}
        hot.update({f"g{self.number}_state_{bucket_no:02x}": [] for bucket_no in range(STATE_BUCKETS)})
        hot[self.journal.name] = []
        return hot

    def setup(self) -> None:
        mongo.ensure_indexes(self.db, self.indexes(), hot=self.hot_fields())

    def drop(self) -> None:
        prefix = f"g{self.number}_"
        for name in self.db.list_collection_names():
            if name.startswith(prefix):
                self.db[name].drop()

    def agg_docs(self, unit_ids: list[str], last_month: str | None = None) -> list[dict]:
        """Every monthly document of these units (up to last_month), from their buckets: one
        equality query per unit, the filter FerretDB sends to PostgreSQL and its GIN index on
        `unit` serves (`$in` is not pushed down: it would read the whole bucket); `month` is
        checked on the unit's few documents."""
        out = []
        for u in dict.fromkeys(unit_ids):
            docs = self.agg_for(u).find({"unit": u}, {"unit": 1, "month": 1, "v": 1})
            out.extend(d for d in docs if not last_month or d["month"] <= last_month)
        return out

    # ------------------------------------------------------------ hierarchy
    def unit(self, unit_id: str) -> dict | None:
        if unit_id not in self.known_units:
            doc = self.units.find_one({"_id": unit_id})
            if doc is None:
                return None
            self.known_units[unit_id] = doc
        return self.known_units[unit_id]

    def forget_cache(self) -> None:
        self.known_units.clear()

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
            mongo.bounded_bulk_write(self.units, unit_ops, ordered=True)
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
            mongo.bounded_bulk_write(self.db[f"g{self.number}_agg_{b}"], ws, ordered=False)

    def applied_offsets(self, docs: list[tuple[str, str]]) -> dict[str, dict]:
        """{doc_id: applied offsets} of the documents that exist; one `_id` look-up each (the one
        query FerretDB answers without a scan)."""
        out = {}
        for doc_id, unit in docs:
            doc = self.agg_for(unit).find_one({"_id": doc_id}, {"applied": 1})
            if doc is not None:
                out[doc_id] = doc.get("applied") or {}
        return out

    def descendants(self, unit_id: str) -> list[dict]:
        """{_id, ancestors} of every unit below this one (the rebuild's in-memory generation
        answers from memory)."""
        return list(self.units.find({"ancestors": unit_id}, {"ancestors": 1}))

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
            mongo.bounded_bulk_write(self.db[f"g{self.number}_state_{b}"], writes, ordered=False)


def active_generation(db: Database) -> int:
    doc = db.meta.find_one({"_id": "generation"})
    return doc["active"] if doc else 0


def set_active_generation(db: Database, number: int) -> None:
    db.meta.update_one({"_id": "generation"}, {"$set": {"active": number}}, upsert=True)


Generation = MongoGeneration  # the name the views, the service and older code use

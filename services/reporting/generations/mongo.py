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

Each agg document is written by the one projector process only (deploy pins it to one instance per
consumer group, docs/design.md "Known limits"); within it each document's writes are sequential, so
FerretDB's non-atomic updates are not a concern here (see platformkit/repository.py).

What this process remembers of its own writes (`ProjectorMemory`): being the only writer, it knows
the applied offsets of the agg documents and the states it read or wrote without asking the store
again. The memory is bounded, dropped when the consumer's partitions are revoked or assigned (another
instance may have written meanwhile) and after any failed batch (a write may or may not have
happened). It saves the store round trips that dominated the projector (docs/benchmarks.md): the
ancestors' agg documents are touched by every batch, a member's state by each step of its lifecycle.
Reads it still needs (keys it has not seen) go out in parallel (`mongo.in_parallel`); states it knows to be
absent are inserted in one command per bucket instead of one upsert each.

Why buckets: FerretDB 1.24 (SQLite) executes every update and every non-`_id` query as a scan of
the whole collection (measured: 4.5 ms per update_one at 2,000 documents, 39 ms at 20,000), while
`find_one({_id})` and inserts stay under a millisecond. Spreading documents over many small
collections keeps each scan short; on MongoDB the buckets cost nothing.
"""
from __future__ import annotations

import logging
import uuid
from collections import OrderedDict, defaultdict
from typing import Any, Iterable

from pymongo import ASCENDING, UpdateOne
from pymongo.database import Database

from platformkit import mongo

from . import hierarchy_reads
from .base import AGG_BUCKETS, STATE_BUCKETS, BaseGeneration, bucket

log = logging.getLogger(__name__)

# bulk commands in flight: each statement of a bulk holds one of FerretDB's pooled connections until
# the command ends (MAX_BULK_STATEMENTS x WRITE_THREADS stays far below FERRETDB_POOL).
WRITE_THREADS = 2
MEMORY_ENTRIES = 300_000  # per kind (states, agg documents): ~100 MB at most
_UNKNOWN = object()


class ProjectorMemory:
    """A bounded map key -> document (None: known to be absent), least recently used dropped."""

    def __init__(self, limit: int = MEMORY_ENTRIES):
        self.limit = limit
        self.entries: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any:
        value = self.entries.get(key, _UNKNOWN)
        if value is not _UNKNOWN:
            self.entries.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.limit:
            self.entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()


class MongoGeneration(BaseGeneration):
    """Generation N in its collections (the live views, the projector's target)."""

    def __init__(self, db: Database, number: int, shared: hierarchy_reads.SharedHierarchy | None = None):
        super().__init__(number)
        self.db = db
        self.units = db[f"g{number}_units"]
        self.journal = db[f"g{number}_journal"]
        self.known_states = ProjectorMemory()
        self.known_applied = ProjectorMemory()
        self.shared = shared  # an API process's hierarchy reads (hierarchy_reads.py); None: read the store
        self._hierarchy_key: tuple | None = None

    def drop_memory(self) -> None:
        """Forget everything this process knows of the store (see the module's docstring)."""
        self.known_states.clear()
        self.known_applied.clear()
        self.forget_cache()

    def _bulk_writes(self, kind: str, by_bucket: dict[str, list]) -> None:
        """Each bucket's statements as bounded bulks, WRITE_THREADS buckets at a time."""
        mongo.in_parallel(lambda item: mongo.bounded_bulk_write(self.db[f"g{self.number}_{kind}_{item[0]}"],
                                                                item[1], ordered=False),
                          list(by_bucket.items()), threads=WRITE_THREADS)

    @staticmethod
    def _recall(memory: ProjectorMemory, keys: list, read) -> dict:
        """{key: what the store holds (None: nothing)} for these keys: from the memory, and for the
        keys it does not know from `read(key)` in parallel (then remembered)."""
        out, unknown = {}, []
        for key in dict.fromkeys(keys):
            value = memory.get(key)
            if value is _UNKNOWN:
                unknown.append(key)
            else:
                out[key] = value
        for key, value in zip(unknown, mongo.in_parallel(read, unknown)):
            memory.put(key, value)
            out[key] = value
        return out

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
        self.db.meta.delete_one({"_id": hierarchy_reads.stamp_id(self.number)})

    def stamp_hierarchy(self) -> None:
        hierarchy_reads.stamp(self.db, self.number)

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
        """The unit's document. An API generation (`shared` set) answers a copy from what its
        process holds (hierarchy_reads.py); the projector's remembers what it read."""
        if self.shared is not None:
            return self.shared.unit(self, unit_id)
        if unit_id not in self.known_units:
            doc = self.units.find_one({"_id": unit_id})
            if doc is None:
                return None
            self.known_units[unit_id] = doc
        return self.known_units[unit_id]

    def forget_cache(self) -> None:
        self.known_units.clear()

    # ------------------------------------------------------------ the views' reads of the hierarchy
    def hierarchy_key(self) -> tuple:
        """(generation, stamp), read once per generation object (the API makes one per request)."""
        if self._hierarchy_key is None:
            self._hierarchy_key = (self.number, hierarchy_reads.current_stamp(self.db, self.number))
        return self._hierarchy_key

    def children(self, parent_id: str) -> list[dict]:
        """The unit's children, hierarchy_reads.CHILD_FIELDS of each, in no particular order."""
        if self.shared is None:
            return list(self.units.find({"parent_id": parent_id}, hierarchy_reads.CHILD_FIELDS))
        return self.shared.children(self, parent_id)

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
        self.drop_memory()
        return n

    def _apply_ops(self, ops: list[dict]) -> None:
        unit_ops = [UpdateOne({"_id": o["id"]}, {"$set": o["set"]}, upsert=True) for o in ops if o["k"] == "unit"]
        if unit_ops:
            mongo.bounded_bulk_write(self.units, unit_ops, ordered=True)
            self.stamp_hierarchy()  # after the write: the API processes read the units again
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
        for b, docs in fresh.items():  # a duplicate: the document exists
            mongo.insert_new(self.db[f"g{self.number}_agg_{b}"], list({d["_id"]: d for d in docs}.values()))
        self._bulk_writes("agg", writes)
        for o in agg_ops:  # what the guarded update left: applied.p = max(before, off)
            applied = self.known_applied.get(o["id"])
            if applied is _UNKNOWN:
                continue
            applied = dict(applied or {})
            applied[o["p"]] = max(applied.get(o["p"], -1), o["off"])
            self.known_applied.put(o["id"], applied)

    def applied_offsets(self, docs: list[tuple[str, str]]) -> dict[str, dict]:
        """{doc_id: applied offsets} of the documents that exist; one `_id` look-up each (the one
        query FerretDB answers without a scan)."""
        units = dict(docs)

        def read(doc_id: str) -> dict | None:
            doc = self.agg_for(units[doc_id]).find_one({"_id": doc_id}, {"applied": 1})
            return (doc.get("applied") or {}) if doc is not None else None
        known = self._recall(self.known_applied, list(units), read)
        return {doc_id: applied for doc_id, applied in known.items() if applied is not None}

    def descendants(self, unit_id: str) -> list[dict]:
        """{_id, ancestors} of every unit below this one (the rebuild's in-memory generation
        answers from memory)."""
        return list(self.units.find({"ancestors": unit_id}, {"ancestors": 1}))

    # ------------------------------------------------------------ projector memory
    def load_states(self, keys: Iterable[str]) -> dict[str, dict]:
        known = self._recall(self.known_states, list(keys), lambda k: self.state_for(k).find_one({"_id": k}))
        return {key: doc for key, doc in known.items() if doc is not None}

    def save_states(self, states: dict[str, dict]) -> None:
        """States known to be absent are inserted (one command per bucket: FerretDB turns it into one
        INSERT), the others upserted one statement each; an insert that finds the key taken (the
        memory was wrong) is upserted after all."""
        fields = {k: {kk: vv for kk, vv in v.items() if kk != "_id"} for k, v in states.items()}
        inserts: dict[str, list[dict]] = defaultdict(list)
        upserts: dict[str, list[str]] = defaultdict(list)
        for k in fields:
            if self.known_states.get(k) is None:  # known absent (a key it does not know is _UNKNOWN)
                inserts[bucket(k, STATE_BUCKETS)].append({"_id": k, **fields[k]})
            else:
                upserts[bucket(k, STATE_BUCKETS)].append(k)
        for b, new in inserts.items():
            upserts[b] += sorted(mongo.insert_new(self.db[f"g{self.number}_state_{b}"], new))
        self._bulk_writes("state", {b: [UpdateOne({"_id": k}, {"$set": fields[k]}, upsert=True) for k in keys]
                                    for b, keys in upserts.items()})
        for k, f in fields.items():
            self.known_states.put(k, {"_id": k, **f})


def active_generation(db: Database) -> int:
    doc = db.meta.find_one({"_id": "generation"})
    return doc["active"] if doc else 0


def set_active_generation(db: Database, number: int) -> None:
    db.meta.update_one({"_id": "generation"}, {"$set": {"active": number}}, upsert=True)


Generation = MongoGeneration  # the name the views, the service and older code use

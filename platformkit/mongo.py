"""Mongo client factory. A client is created lazily per process (after gunicorn forks: pymongo
clients must not cross a fork) and shared by the threads of that process."""
from __future__ import annotations

import os
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure
from pymongo.results import BulkWriteResult

from . import config, settings, store_prep

T = TypeVar("T")

log = logging.getLogger(__name__)
_lock = threading.Lock()
_client: MongoClient | None = None
_client_pid: int | None = None


def client() -> MongoClient:
    global _client, _client_pid
    with _lock:
        if _client is None or _client_pid != os.getpid():
            # socketTimeoutMS: FerretDB 1.24 (SQLite) was seen holding an update and a find on one
            # database for minutes (until that database was dropped); without a timeout the request
            # waits forever, with it the client drops the connection, the API answers 503 and the
            # consumer retries its batch.
            _client = MongoClient(config.mongo_url(), serverSelectionTimeoutMS=5000,
                                  connectTimeoutMS=5000, tz_aware=False,
                                  socketTimeoutMS=settings.current().mongo_socket_timeout_ms)
            _client_pid = os.getpid()
        return _client


def database(service: str) -> Database:
    return client()[config.db_name(service)]


_adapters_lock = threading.Lock()
_adapters: dict[tuple, Any] = {}


def adapter(service: str, make: Callable[[Database], T]) -> T:
    """This process's adapter of a service's database (a service's `Stores`): made once per process,
    client and database name, so that a client never crosses a fork (gunicorn's workers) and tests
    that switch databases (DB_PREFIX) get theirs. Bounded: tests make a database per test."""
    db = database(service)
    key = (os.getpid(), id(db.client), db.name, make)
    with _adapters_lock:
        found = _adapters.get(key)
        if found is None:
            if len(_adapters) > 64:
                _adapters.clear()
            found = _adapters[key] = make(db)
        return found


UPKEEP = "upkeep"  # one document per one-off repair that has finished (its name as _id)


def run_once(db: Any, name: str, work: Callable[[], int]) -> int:
    """A one-off repair (a field every document must get once), skipped once it has finished:
    `work()` (idempotent: processes starting together may both run it) returns how many documents it
    changed, then a mark `<name>` in `upkeep` is inserted (a duplicate: another process finished it
    too). Returns `work()`'s count, 0 when skipped."""
    if db[UPKEEP].find_one({"_id": name}) is not None:
        return 0
    n = work()
    try:
        db[UPKEEP].insert_one({"_id": name, "documents": n})
    except Exception as exc:
        if not is_duplicate_key(exc):
            raise
    return n


def ensure_indexes(db: Database, spec: dict[str, list[tuple]],
                   hot: dict[str, list[str]] | None = None) -> None:
    """spec: collection -> [(keys, options)], keys a field name or a list of (field, direction).

    The fields of these indexes are also the fields the collection's hot queries filter on
    (top-level equality, conventions.md); `hot` adds any that have no Mongo index. On the local
    store (FerretDB on PostgreSQL) each gets the GIN index FerretDB's filters need
    (platformkit/store_prep.py); on MongoDB only the Mongo indexes are made."""
    for coll, indexes in spec.items():
        for keys, options in indexes:
            if isinstance(keys, str):
                keys = [(keys, ASCENDING)]
            db[coll].create_index(keys, **options)
    # The sequences (repository.next_number: card numbers) are read and written by `_id`.
    try:
        store_prep.prepare(db, store_prep.merge(store_prep.hot_fields(spec), hot or {}, {"sequences": []}))
    except store_prep.StorePrepError as exc:
        # The GIN indexes make the local store fast, not correct: a process must still start (and
        # stop cleanly) when preparing fails, e.g. its psql killed by the SIGTERM of a process
        # group stopping during boot (seen in the fault matrix: the API's worker then failed to
        # boot and gunicorn exited 1). The next process start prepares again (idempotent).
        log.error("store preparation failed, queries on %s scan until a later start prepares it: %s",
                  db.name, exc)


# FerretDB 1.24 runs each statement of a bulk command on a pooled PostgreSQL connection of its own
# while holding others: one command of ~100 matching updates deadlocked it (pool of 50; ping hung,
# SIGTERM ignored). Every bulk command of updates, upserts or deletes the platform sends goes through
# bounded_bulk_write. insert_many is not bounded: FerretDB inserts a command's documents in one
# transaction on one connection (internal/backends/postgresql/collection.go, InsertAll).
MAX_BULK_STATEMENTS = 40


def bounded_bulk_write(coll: Collection, ops: Sequence[Any], ordered: bool = True) -> BulkWriteResult:
    """`coll.bulk_write(ops, ordered)` sent as commands of at most MAX_BULK_STATEMENTS statements,
    with the same meaning: ordered stops at the first error (later chunks are not sent); unordered
    sends every chunk. Errors come back as ONE BulkWriteError whose writeErrors `index` refers to
    `ops`, as if it had been one command; the result sums the chunks."""
    totals: dict[str, Any] = {"writeErrors": [], "writeConcernErrors": [], "nInserted": 0, "nUpserted": 0,
                              "nMatched": 0, "nModified": 0, "nRemoved": 0, "upserted": []}

    def add(details: dict[str, Any], offset: int) -> None:
        for key in ("nInserted", "nUpserted", "nMatched", "nModified", "nRemoved"):
            totals[key] += details.get(key, 0)
        totals["upserted"] += [{**u, "index": u["index"] + offset} for u in details.get("upserted", [])]
        totals["writeErrors"] += [{**e, "index": e["index"] + offset} for e in details.get("writeErrors", [])]
        totals["writeConcernErrors"] += details.get("writeConcernErrors", [])

    for start in range(0, len(ops), MAX_BULK_STATEMENTS):
        try:
            add(coll.bulk_write(list(ops[start:start + MAX_BULK_STATEMENTS]), ordered=ordered).bulk_api_result, start)
        except BulkWriteError as exc:
            add(exc.details, start)
            if ordered:
                break
    if totals["writeErrors"] or totals["writeConcernErrors"]:
        raise BulkWriteError(totals)
    return BulkWriteResult(totals, acknowledged=True)


# Equality look-ups in flight per call of `in_parallel`. Each costs ~1.7 ms, mostly the CPU of
# FerretDB and PostgreSQL: on 2 cores a few in parallel hide the round trips, more only queue.
READ_THREADS = 6
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}  # (pid, threads) -> pool


def in_parallel(fn: Callable[[Any], T], items: Sequence[Any], threads: int = READ_THREADS) -> list[T]:
    """[fn(item) for item in items], the calls (store commands) spread over `threads` threads of
    this process. Why: FerretDB pushes neither `$in` nor `$or` down, so many documents are read by
    many equality queries (one per id, per unit); sent one after another, their round trips add up
    (a province view's 150 communes' targets, a projector batch's unknown states)."""
    items = list(items)
    if len(items) < 2:
        return [fn(i) for i in items]
    with _lock:
        key = (os.getpid(), threads)  # threads do not survive a fork: a child makes its own pool
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix=f"store-{threads}")
    return list(pool.map(fn, items))


def insert_new(coll: Collection, docs: list[dict]) -> set:
    """insert_many, unordered: the `_id`s already taken (a unique index refused them, the others were
    inserted); any other error is raised."""
    try:
        coll.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        return {docs[e["index"]]["_id"] for e in errors}
    return set()


def find_by_ids(coll: Any, ids: Sequence[Any], projection: dict | None = None) -> dict[Any, dict]:
    """{_id: document} of the documents with these ids, one look-up by `_id` each (`in_parallel`):
    FerretDB pushes no `$in` down to its backend (an `{_id: {$in: [...]}}` reads the whole
    collection: a 2.5M-member view for a session's 50 members), while each `{_id: x}` is an index
    look-up (2.6 ms at 200k documents). Callers bound `ids` (a session's members:
    MAX_MEMBERS_PER_SESSION)."""
    unique = list(dict.fromkeys(ids))
    docs = in_parallel(lambda _id: coll.find_one({"_id": _id}, projection), unique)
    return {_id: doc for _id, doc in zip(unique, docs) if doc is not None}


def is_duplicate_key(exc: Exception) -> bool:
    """A unique index refused the write. MongoDB says code 11000 (DuplicateKeyError); FerretDB 1.24
    says so for inserts, but for findAndModify it answers InternalError with its backend's message
    (SQLite: "UNIQUE constraint failed"; PostgreSQL: "duplicate key value ... (SQLSTATE 23505)")."""
    if isinstance(exc, DuplicateKeyError):
        return True
    return isinstance(exc, OperationFailure) and (
        exc.code == 11000 or "UNIQUE constraint failed" in str(exc) or "SQLSTATE 23505" in str(exc))


def ping(db: Database) -> bool:
    try:
        db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness answers a yes/no question
        return False

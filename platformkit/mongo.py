"""Mongo client factory. A client is created lazily per process (after gunicorn forks: pymongo
clients must not cross a fork) and shared by the threads of that process."""
from __future__ import annotations

import os
import threading

from pymongo import ASCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from . import config, store_prep

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
                                  socketTimeoutMS=int(os.environ.get("MONGO_SOCKET_TIMEOUT_MS", "30000")))
            _client_pid = os.getpid()
        return _client


def database(service: str) -> Database:
    return client()[config.db_name(service)]


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
    store_prep.prepare(db, store_prep.merge(store_prep.hot_fields(spec), hot or {}))


def is_duplicate_key(exc: Exception) -> bool:
    """A unique index refused the write. MongoDB says code 11000 (DuplicateKeyError); FerretDB 1.24
    says so for inserts, but for findAndModify it answers InternalError with SQLite's message."""
    if isinstance(exc, DuplicateKeyError):
        return True
    return isinstance(exc, OperationFailure) and (
        exc.code == 11000 or "UNIQUE constraint failed" in str(exc))


def ping(db: Database) -> bool:
    try:
        db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness answers a yes/no question
        return False

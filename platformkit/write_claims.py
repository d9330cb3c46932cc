"""Serialising writers of one document on a store that does not apply conditional updates
atomically.

FerretDB 1.24 (SQLite backend) reads a document, applies the update and writes it back without a
lock: two concurrent `update_one`s can both match `{"version": 3}` and the later write silently
overwrites the earlier one (measured: 10 concurrent `$inc` of one field gave +3). Inserts ARE
atomic against a unique `_id`. So every writer of an aggregate first inserts a claim
`<collection>:<id>@<rev+1>` into `write_claims`; only the writer whose insert succeeded may write
revision rev+1, filtering on `rev` as well. A claim whose writer died is taken over after
CLAIM_TTL seconds. On MongoDB the claim is redundant (its updates are atomic) and can be switched
off with WRITE_CLAIMS=off.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from . import settings

REV = "rev"
CLAIMS = "write_claims"
_enabled_cache: dict[int, bool] = {}


def _enabled(db: Database) -> bool:
    mode = settings.current().write_claims
    if mode in ("on", "off"):
        return mode == "on"
    key = id(db.client)
    if key not in _enabled_cache:
        try:
            info = db.client.admin.command("buildInfo")
            _enabled_cache[key] = any("ferretdb" in k.lower() for k in info)
        except Exception:  # noqa: BLE001 - unknown server: be safe
            _enabled_cache[key] = True
    return _enabled_cache[key]


def rev_filter(rev: int) -> dict[str, Any]:
    return {REV: rev} if rev else {"$or": [{REV: 0}, {REV: {"$exists": False}}]}


def claim_revision(coll: Collection, _id: Any, rev: int) -> bool:
    """True if this writer may write revision `rev` of the document."""
    if not _enabled(coll.database):
        return True
    claims = coll.database[CLAIMS]
    key = f"{coll.name}:{_id}@{rev}"
    now = datetime.now(timezone.utc)
    try:
        claims.insert_one({"_id": key, "at": now})
        return True
    except DuplicateKeyError:
        pass
    held = claims.find_one({"_id": key})
    if held and held["at"].replace(tzinfo=timezone.utc) < now - timedelta(seconds=settings.current().write_claim_ttl_seconds):
        # the writer that claimed it died before writing: take over (one taker wins the re-insert)
        claims.delete_one({"_id": key, "at": held["at"]})
        try:
            claims.insert_one({"_id": key, "at": now})
            return True
        except DuplicateKeyError:
            return False
    return False


def claim_revisions(coll: Collection, wanted: dict[Any, int]) -> set[Any]:
    """claim_revision for many documents in one round trip ({_id: rev} -> the _ids claimed). A
    claim already held is simply not taken here: the caller falls back to the one-by-one path,
    which also takes over claims whose writer died."""
    if not wanted:
        return set()
    if not _enabled(coll.database):
        return set(wanted)
    now = datetime.now(timezone.utc)
    keys = {f"{coll.name}:{_id}@{rev}": _id for _id, rev in wanted.items()}
    try:
        coll.database[CLAIMS].insert_many([{"_id": k, "at": now} for k in keys], ordered=False)
        return set(wanted)
    except BulkWriteError as exc:
        failed = {keys[e["op"]["_id"]] for e in exc.details.get("writeErrors", []) if "op" in e}
        if len(failed) != len(exc.details.get("writeErrors", [])):
            return set()  # cannot tell which failed: claim nothing, the slow path decides
        return set(wanted) - failed
    except OperationFailure:
        return set()  # a server that reports it otherwise: the one-by-one path decides


def claimed_update(coll: Collection, _id: Any, update_for, attempts: int = 50) -> bool:
    """Read-claim-write loop for a write that is not a versioned command (a re-path after a move,
    a counter). `update_for(doc)` returns the update document (or None for nothing to do).
    Returns False if the document does not exist."""
    for _ in range(attempts):
        doc = coll.find_one({"_id": _id})
        if doc is None:
            return False
        update = update_for(doc)
        if not update:
            return True
        rev = doc.get(REV, 0)
        if not claim_revision(coll, _id, rev + 1):
            time.sleep(0.005)
            continue
        update.setdefault("$set", {})[REV] = rev + 1
        if coll.update_one({"_id": _id, **rev_filter(rev)}, update).matched_count:
            return True
    raise RuntimeError(f"{coll.name}:{_id}: too much contention")


def clear_empty_flag(coll: Collection, _id: Any) -> None:
    claimed_update(coll, _id, lambda d: None if d.get("outbox") else {"$set": {"outbox_pending": False}})


def next_sequence(db: Database, name: str) -> int:
    """A gap-tolerant, never-repeating sequence (card numbers): a unique insert per number."""
    seqs = db["sequences"]
    start = (seqs.find_one({"_id": name}) or {}).get("seq", 0)
    n = start + 1
    while True:
        try:
            db[CLAIMS].insert_one({"_id": f"seq:{name}:{n}", "at": datetime.now(timezone.utc), "keep": True})
            break
        except DuplicateKeyError:
            n += 1
    seqs.update_one({"_id": name}, {"$max": {"seq": n}}, upsert=True)
    return n


def prune_claims(db: Database, older_than_seconds: float = 600) -> int:
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_seconds)
    return db[CLAIMS].delete_many({"at": {"$lt": cutoff}, "keep": {"$exists": False}}).deleted_count

"""Batches: many commands in one request. Each item goes through the same service function as the
one-item endpoint (same rules, same scope check, same single-document write with the same events)
and gets its own result: the status and body, or the error body, the one-item endpoint would have
answered. A bad item never stops the others; nothing is rolled back (each item is its own write).

Idempotency of a whole batch (`Idempotency-Key`): the batch is recorded in `batches` under the
caller-scoped key; inserting that document is the atomic guard (a unique `_id`, which FerretDB
enforces on insert too), so two requests with the same key never both run it. The document holds
the fingerprint of the request, the results so far (saved every SAVE_EVERY items or SAVE_SECONDS,
which is also the run's heartbeat) and, once done, the answer. A retry with the same key:
  - done: the stored answer, as it was (nothing is applied again, no event is written);
  - running, with a recent heartbeat: 409 (another request is running it; retry shortly);
  - running, no heartbeat for STALE_SECONDS (its request died: a crash, a lost database): the
    retry takes it over and goes on from the results saved; items the dead run applied after its
    last save are then answered as the one-item endpoint would answer them now (e.g. 422
    "already approved"), never applied twice;
  - a different request under the same key: 422 naming the header.
Without a key, a retry is still safe item by item (an approved member is not approved again, a
card is not issued twice, the same rating proposed again changes nothing), but the answer is
today's, not the first one's.

`python -m services.membership.batch --prune-days 30` deletes finished batches older than that
(a retry after that runs the batch again, item by item as above)."""
from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from marshmallow import ValidationError

from platformkit import idempotency
from platformkit.auth import Caller
from platformkit.errors import AlreadyExists, Conflict, RuleViolated
from platformkit.errors import Refusal as DomainError
from platformkit.repository import Repository

SAVE_EVERY = 25
SAVE_SECONDS = 5.0
STALE_SECONDS = 60.0

Result = dict[str, Any]


class InProgress(Conflict):
    """Another request with the same Idempotency-Key is running this batch (HTTP 409)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def scoped_key(caller: Caller, operation: str, key: str) -> str:
    """Keys are chosen by clients: scoped by the token's subject and unit, and the operation. As a
    JSON list, so that no subject or key containing a separator can make another caller's key."""
    return json.dumps([caller.subject, caller.unit_id, operation, key], ensure_ascii=False, separators=(",", ":"))


def error_of(exc: Exception) -> dict[str, Any] | None:
    """The API's error body (platformkit.web's handlers) for an item's refusal; None for an
    exception that is not about the item (the database is down: the whole request fails)."""
    if isinstance(exc, ValidationError):
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return {"status": 400, "code": "invalid_input", "message": "invalid input", "errors": messages}
    if isinstance(exc, DomainError):  # every refusal (platformkit.errors) carries its status and text
        body = {"status": exc.status, "code": exc.code, "message": exc.message}
        if exc.field:
            body["errors"] = {exc.field: [exc.message]}
        return body
    return None


def failed_item(index: int, _item: Any, error: dict[str, Any]) -> Result:
    return {"index": index, "status": error["status"], "error": error}


def counted(results: list[Result]) -> dict[str, Any]:
    ok = sum(1 for r in results if 200 <= r["status"] < 300)
    return {"total": len(results), "succeeded": ok, "failed": len(results) - ok, "results": results}


def _apply_one(index: int, item: Any, handle: Callable[[int, Any], Result],
               failure: Callable[[int, Any, dict], Result]) -> Result:
    try:
        return handle(index, item)
    except Exception as exc:  # noqa: BLE001 - classified below; anything else is not the item's fault
        error = error_of(exc)
        if error is None:
            raise
        return failure(index, item, error)


def run(batches: Repository, caller: Caller, operation: str, key: str | None, request: Any, items: list[Any],
        handle: Callable[[int, Any], Result], failure: Callable[[int, Any, dict], Result] = failed_item,
        finish: Callable[[list[Result]], dict] = counted) -> tuple[dict, bool]:
    """Apply `handle(index, item)` to every item in order; a refusal becomes `failure(index, item,
    error body)`. Returns (answer, replayed): `finish(results)`, or with a key already used for
    this request, the answer stored by the first run (replayed=True). `request` is what the key
    must always stand for (its fingerprint is compared). `batches`: the repository of the batch
    documents (stores.Stores.batches). A batch document is saved through the repository like an
    aggregate (no events): its progress saves and a take-over by a retry are changes committed by
    unique inserts, so a save of a run that was taken over can never erase the new owner's
    (FerretDB's updates are not atomic)."""
    if not key:
        return finish([_apply_one(i, item, handle, failure) for i, item in enumerate(items)]), False
    coll = batches
    _id = scoped_key(caller, operation, key)
    fingerprint = idempotency.fingerprint_of(request)
    owner = uuid.uuid4().hex
    try:
        coll.create({"_id": _id, "operation": operation, "fingerprint": fingerprint, "state": "running",
                     "owner": owner, "heartbeat": _now(), "results": "[]", "created_at": _now(),
                     "subject": caller.subject, "unit_id": caller.unit_id, "items": len(items)}, [])
        results: list[Result] = []
    except AlreadyExists:
        stored = _existing(coll, _id, fingerprint, owner)
        if isinstance(stored, dict):
            return stored, True
        results = stored
    last_save = time.monotonic()
    for index in range(len(results), len(items)):
        results.append(_apply_one(index, items[index], handle, failure))
        if (index + 1) % SAVE_EVERY == 0 or time.monotonic() - last_save > SAVE_SECONDS:
            _save(coll, _id, owner, {"results": json.dumps(results), "heartbeat": _now()})
            last_save = time.monotonic()
    answer = finish(results)
    _save(coll, _id, owner, {"state": "done", "answer": json.dumps(answer), "results": None,
                             "finished_at": _now(), "heartbeat": _now()})
    return answer, False


def _existing(coll: Repository, _id: str, fingerprint: str, owner: str) -> dict | list[Result]:
    """The stored answer (dict) of a finished batch, or the results saved by a dead run that
    this request has just taken over (list)."""
    doc = coll.get(_id)
    if doc is None and (half := coll.coll.find_one({"_id": _id})) is not None:
        # inserted by a request that died (or is) between its two inserts: commit it for it
        doc = coll.finish_create(half, [])
    if doc is None:  # pruned between the insert and this read: run it as new
        raise InProgress("this batch was just pruned; retry", field="Idempotency-Key")
    if doc.get("fingerprint") != fingerprint:
        raise RuleViolated("this Idempotency-Key was used for a different request", field="Idempotency-Key")
    if doc.get("state") == "done":
        return json.loads(doc["answer"])

    def take_over(current: dict):
        if current.get("state") != "running" or not _stale(current.get("heartbeat")):
            return None
        return {"$set": {"owner": owner, "heartbeat": _now()}}, []
    doc = coll.command(_id, take_over)  # a change like the running request's saves: one of them wins
    if doc.get("state") == "done":
        return json.loads(doc["answer"])
    if doc.get("owner") != owner:
        raise InProgress("a request with this Idempotency-Key is running this batch; retry in a few seconds",
                         field="Idempotency-Key")
    return json.loads(doc.get("results") or "[]")


def _stale(heartbeat: datetime | None) -> bool:
    if heartbeat is None:
        return True
    return heartbeat.replace(tzinfo=timezone.utc) < _now() - timedelta(seconds=STALE_SECONDS)


def _save(coll: Repository, _id: str, owner: str, fields: dict[str, Any]) -> None:
    """Save progress (or the answer) while this request still runs the batch."""
    mine = []

    def update(current: dict):
        mine.append(current.get("owner") == owner)
        return ({"$set": fields}, []) if mine[-1] else None
    coll.command(_id, update)
    if not mine or not mine[-1]:
        raise InProgress("a retry with the same Idempotency-Key took this batch over (this request seemed "
                         "dead); retry to get its answer", field="Idempotency-Key")


def prune(days: float, batches: Repository) -> int:
    """Delete finished batches older than `days` (an operator's daily job; not on a request path)."""
    cutoff = _now() - timedelta(days=days)
    # a range, so a scan of the batches on FerretDB: fine for a daily job (tests/unit/test_hot_queries.py)
    done = [d["_id"] for d in batches.coll.find({"state": "done", "finished_at": {"$lt": cutoff}}, {"_id": 1})]
    for _id in done:  # its changes first, so that no change outlives its batch document
        batches.changes.delete_many({"aggregate_id": _id})
        batches.coll.delete_one({"_id": _id})
    return len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description="Delete finished membership batches (their Idempotency-Keys).")
    parser.add_argument("--prune-days", type=float, required=True)
    args = parser.parse_args()
    from .stores import stores
    print(f"deleted {prune(args.prune_days, stores().batches)} finished batches older than {args.prune_days:g} days")


if __name__ == "__main__":
    main()

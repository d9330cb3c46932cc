"""The transactional outbox without transactions.

A command changes ONE document: its new state and the events it raises go in the same
`insert_one`/`update_one` (field `outbox`, plus `outbox_pending: true` which the relay's index
finds). The relay publishes each pending document's events in order (Kafka key = aggregate id, so
one aggregate's events stay ordered on one partition), waits for acks=all, and only then pulls the
published ids out of the document. A crash between publish and pull re-publishes the same
envelopes (same ids) on restart: at least once, never lost.

Optimistic concurrency: every aggregate carries `version`; an update matches on the version the
command read, so two racing commands cannot both win.
"""
from __future__ import annotations

import logging
import signal
import time
from datetime import datetime, timezone
from typing import Any, Iterable

from pymongo import ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure

from . import metrics
from .envelope import Envelope, from_dict
from .errors import AlreadyExists, StaleVersion
from .errors import DocumentNotFound as NotFound
from .faults import crash_point
from .kafka_io import EventPublisher
from .mongo import bounded_bulk_write, is_duplicate_key
from .write_claims import REV, claim_revision, claim_revisions, clear_empty_flag, prune_claims, rev_filter

log = logging.getLogger(__name__)

OUTBOX = "outbox"
PENDING = "outbox_pending"
OUTBOX_INDEX = [(PENDING, {"name": "outbox_pending", "sparse": False})]


def _outbox_entries(events: Iterable[Envelope]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


def insert_with_events(coll: Collection, doc: dict[str, Any], events: list[Envelope]) -> None:
    """Insert a new aggregate (version 1) with its events, in one write."""
    doc = dict(doc)
    doc.setdefault("version", 1)
    doc[REV] = 0
    doc[OUTBOX] = _outbox_entries(events)
    doc[PENDING] = bool(events)
    try:
        coll.insert_one(doc)
    except OperationFailure as exc:
        if is_duplicate_key(exc):
            raise AlreadyExists(str(exc.details.get("keyValue") if exc.details else exc)) from exc
        raise


def update_with_events(coll: Collection, _id: Any, expected_version: int, set_fields: dict[str, Any],
                       events: list[Envelope], extra_ops: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply `$set` (and other operators) to one aggregate at `expected_version`, bump its version
    and append events to its outbox, all in one single-document write. Returns the new document.
    The write is serialised with every other writer of the document by a revision claim
    (see write_claims.py): FerretDB 1.24 does not apply a conditional update atomically."""
    update: dict[str, Any] = {"$set": {**set_fields, "version": expected_version + 1}}
    for op, fields_ in (extra_ops or {}).items():
        update.setdefault(op, {}).update(fields_)
    if events:
        update["$set"][PENDING] = True
        update.setdefault("$push", {})[OUTBOX] = {"$each": _outbox_entries(events)}
    # The relay also writes the document (it bumps `rev`, never `version`): losing the claim to it
    # is not a stale version, so retry; only a changed `version` is the caller's 412.
    for attempt in range(50):
        current = coll.find_one({"_id": _id}, {"version": 1, REV: 1})
        if current is None:
            raise NotFound(str(_id))
        if current.get("version") != expected_version:
            raise StaleVersion(str(_id))
        rev = current.get(REV, 0)
        if not claim_revision(coll, _id, rev + 1):
            time.sleep(0.002 * (attempt + 1))
            continue
        update["$set"][REV] = rev + 1
        try:
            new = coll.find_one_and_update({"_id": _id, "version": expected_version, **rev_filter(rev)}, update,
                                           return_document=ReturnDocument.AFTER)
        except OperationFailure as exc:
            if is_duplicate_key(exc):
                raise AlreadyExists(str(exc.details.get("keyValue") if exc.details else exc)) from exc
            raise
        if new is not None:
            return new
    raise StaleVersion(str(_id))


def _mark_published(coll: Collection, doc_id: Any, entries: list[dict], attempts: int = 20) -> None:
    """Pull the published entries out of the outbox, as a claimed write so that a command writing
    the same document at the same moment cannot be overwritten (nor overwrite this)."""
    for _ in range(attempts):
        current = coll.find_one({"_id": doc_id}, {REV: 1, OUTBOX: 1})
        if current is None:
            return
        still = [e for e in entries if e in (current.get(OUTBOX) or [])]
        if not still:
            return
        rev = current.get(REV, 0)
        if not claim_revision(coll, doc_id, rev + 1):
            time.sleep(0.01)
            continue
        remaining = [e for e in current.get(OUTBOX) or [] if e not in still]
        res = coll.update_one({"_id": doc_id, **rev_filter(rev)},
                              {"$set": {OUTBOX: remaining, PENDING: bool(remaining), REV: rev + 1}})
        if res.matched_count:
            return
    raise RuntimeError(f"could not mark {doc_id} published after {attempts} attempts")


# FerretDB answers a bulk of a few dozen updates in about the time of two single ones, but a bulk
# of 200 took it longer than 200 single updates (measured): mark in chunks.
MARK_CHUNK = 25


def _mark_all_published(coll: Collection, docs: list[dict], stopping=lambda: False) -> None:
    """Mark a pass's documents published in two round trips (one claims insert, one bulk update)
    instead of three per document: on FerretDB every write is its own SQLite commit, and the
    relay's throughput was that of its marking. A document written since it was read (its `rev`
    moved on) or whose claim is held elsewhere goes through `_mark_published`, which keeps any
    event added meanwhile."""
    claimed = claim_revisions(coll, {d["_id"]: d.get(REV, 0) + 1 for d in docs})
    ops = [UpdateOne({"_id": d["_id"], **rev_filter(d.get(REV, 0))},
                     {"$set": {OUTBOX: [], PENDING: False, REV: d.get(REV, 0) + 1}})
           for d in docs if d["_id"] in claimed]
    matched = bounded_bulk_write(coll, ops, ordered=False).matched_count if ops else 0
    if matched == len(docs):
        return
    for d in docs:  # some were not marked: the careful path re-reads each (a no-op for those done)
        if stopping():
            return  # SIGTERM: what is left unmarked is published again by the next relay (same ids)
        try:
            # a claim we could not take is most likely held by a dead relay: one try (which takes
            # it over once its TTL has passed), not a loop that would hold up the whole pass
            _mark_published(coll, d["_id"], d.get(OUTBOX) or [], attempts=5 if d["_id"] in claimed else 1)
        except RuntimeError:
            # its revision is claimed by a writer that died (a relay killed between claim and
            # update): it stays pending and is published again after the claim's TTL; the others
            # of the pass are not held up by it
            log.warning("could not mark %s:%s published yet; retried later", coll.name, d["_id"])


class OutboxRelay:
    """Publishes pending outbox events of the given collections to their topics."""

    def __init__(self, service: str, db: Database, routes: dict[str, str],
                 publisher: EventPublisher | None = None, batch_docs: int = 200,
                 idle_sleep: float = 0.2):
        self.service = service
        self.db = db
        self.routes = routes  # collection name -> topic
        self.publisher = publisher or EventPublisher()
        self.batch_docs = batch_docs
        self.idle_sleep = idle_sleep
        self._stopping = False

    def stop(self, *_args) -> None:
        self._stopping = True

    def run_once(self) -> int:
        """One pass over every routed collection; returns the number of events published."""
        published = 0
        pending_docs = 0
        oldest: str | None = None
        for coll_name, topic in self.routes.items():
            if self._stopping:
                break
            coll = self.db[coll_name]
            docs = list(coll.find({PENDING: True}, {OUTBOX: 1, REV: 1}).limit(self.batch_docs))
            pending_docs += len(docs)
            to_send: list[Envelope] = []
            for doc in docs:
                entries = doc.get(OUTBOX) or []
                if entries and (oldest is None or entries[0]["time"] < oldest):
                    oldest = entries[0]["time"]
                to_send.extend(from_dict(e) for e in entries)
            if not to_send:
                for doc in docs:  # flag left on with an empty outbox: clear it (claimed write)
                    clear_empty_flag(coll, doc["_id"])
                continue
            crash_point("relay.before_publish")
            self.publisher.publish(topic, to_send)
            crash_point("relay.after_publish")
            marked = [d for d in docs if d.get(OUTBOX)]
            for i in range(0, len(marked), MARK_CHUNK):
                if self._stopping:
                    break
                _mark_all_published(coll, marked[i:i + MARK_CHUNK], lambda: self._stopping)
            published += len(to_send)
            metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(to_send))
        metrics.OUTBOX_PENDING.labels(self.service).set(pending_docs)
        age = 0.0
        if oldest:
            try:
                t = datetime.fromisoformat(oldest.replace("Z", "+00:00"))
                age = max(0.0, (datetime.now(timezone.utc) - t).total_seconds())
            except ValueError:
                pass
        metrics.OUTBOX_OLDEST_SECONDS.labels(self.service).set(age)
        return published

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        log.info("outbox relay for %s started: %s", self.service, self.routes)
        last_prune = 0.0
        while not self._stopping:
            try:
                if self.run_once() == 0:
                    time.sleep(self.idle_sleep)
                if time.monotonic() - last_prune > 60:
                    prune_claims(self.db)
                    last_prune = time.monotonic()
            except Exception:  # noqa: BLE001 - keep relaying; nothing is marked until acked
                log.exception("relay pass failed; retrying")
                time.sleep(1)
        self.publisher.close()
        log.info("outbox relay for %s stopped", self.service)

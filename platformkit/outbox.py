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
from .faults import crash_point
from .kafka_io import EventPublisher
from .mongo import is_duplicate_key

log = logging.getLogger(__name__)

OUTBOX = "outbox"
PENDING = "outbox_pending"
OUTBOX_INDEX = [(PENDING, {"name": "outbox_pending", "sparse": False})]


class StaleVersion(Exception):
    """The document changed since the caller read it (HTTP 412)."""


class NotFound(Exception):
    pass


class AlreadyExists(Exception):
    pass


def _outbox_entries(events: Iterable[Envelope]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


def insert_with_events(coll: Collection, doc: dict[str, Any], events: list[Envelope]) -> None:
    """Insert a new aggregate (version 1) with its events, in one write."""
    doc = dict(doc)
    doc.setdefault("version", 1)
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
    and append events to its outbox, all in one single-document write. Returns the new document."""
    update: dict[str, Any] = {"$set": {**set_fields, "version": expected_version + 1}}
    for op, fields_ in (extra_ops or {}).items():
        update.setdefault(op, {}).update(fields_)
    if events:
        update["$set"][PENDING] = True
        update.setdefault("$push", {})[OUTBOX] = {"$each": _outbox_entries(events)}
    try:
        new = coll.find_one_and_update({"_id": _id, "version": expected_version}, update,
                                       return_document=ReturnDocument.AFTER)
    except OperationFailure as exc:
        if is_duplicate_key(exc):
            raise AlreadyExists(str(exc.details.get("keyValue") if exc.details else exc)) from exc
        raise
    if new is None:
        if coll.count_documents({"_id": _id}, limit=1) == 0:
            raise NotFound(str(_id))
        raise StaleVersion(str(_id))
    return new


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
            coll = self.db[coll_name]
            docs = list(coll.find({PENDING: True}, {OUTBOX: 1}).limit(self.batch_docs))
            pending_docs += len(docs)
            to_send: list[Envelope] = []
            for doc in docs:
                entries = doc.get(OUTBOX) or []
                if entries and (oldest is None or entries[0]["time"] < oldest):
                    oldest = entries[0]["time"]
                to_send.extend(from_dict(e) for e in entries)
            if not to_send:
                for doc in docs:  # flag left on by a crash after the pull: clear it
                    coll.update_one({"_id": doc["_id"], OUTBOX: {"$size": 0}}, {"$set": {PENDING: False}})
                continue
            crash_point("relay.before_publish")
            self.publisher.publish(topic, to_send)
            crash_point("relay.after_publish")
            # $pull each published entry by the whole entry as read: FerretDB 1.24 matches $pull
            # values by exact equality only (no {"id": ...} or $in condition), MongoDB matches it
            # too. One bulk round trip for the whole batch.
            ops: list[UpdateOne] = []
            for doc in docs:
                entries = doc.get(OUTBOX) or []
                ops.extend(UpdateOne({"_id": doc["_id"]}, {"$pull": {OUTBOX: e}}) for e in entries)
                # Events appended by a command meanwhile keep the flag set.
                ops.append(UpdateOne({"_id": doc["_id"], OUTBOX: {"$size": 0}}, {"$set": {PENDING: False}}))
            coll.bulk_write(ops, ordered=True)
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
        while not self._stopping:
            try:
                if self.run_once() == 0:
                    time.sleep(self.idle_sleep)
            except Exception:  # noqa: BLE001 - keep relaying; nothing is marked until acked
                log.exception("relay pass failed; retrying")
                time.sleep(1)
        self.publisher.close()
        log.info("outbox relay for %s stopped", self.service)

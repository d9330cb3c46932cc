"""The transactional outbox without transactions.

A write and the events it raises go in ONE single-document insert (field `outbox`, plus
`outbox_pending: true` which the relay's index finds). The documents routed to the relay are only
ever inserted by commands: the change documents of platformkit/repository.py (every aggregate
change) and insert-only records (e.g. training's dissemination sessions). The relay publishes each
pending document's events in order (Kafka key = aggregate id, so one aggregate's events stay
ordered on one partition), waits for acks=all, and only then empties the document's outbox. A
crash between publish and marking re-publishes the same envelopes (same ids) on restart: at least
once, never lost. Because the relay is the only writer of a routed document after its insert, its
marking cannot erase a command's write on a store whose updates are not atomic (FerretDB 1.24).

Concurrency of aggregates (versions, compare-and-set): platformkit/repository.py.
"""
from __future__ import annotations

import logging
import signal
import time
from datetime import datetime, timezone
from typing import Any, Iterable

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure

from . import contract, metrics, settings
from .envelope import Envelope, from_dict
from .errors import AlreadyExists, Contended, StaleVersion  # noqa: F401 (importable from here)
from .errors import DocumentNotFound as NotFound
from .faults import crash_point
from .kafka_io import EventPublisher
from .mongo import bounded_bulk_write, in_parallel, is_duplicate_key

log = logging.getLogger(__name__)

OUTBOX = "outbox"
PENDING = "outbox_pending"
OUTBOX_INDEX = [(PENDING, {"name": "outbox_pending", "sparse": False})]


def _outbox_entries(events: Iterable[Envelope]) -> list[dict[str, Any]]:
    events = list(events)
    if settings.current().contract_check:
        contract.check_events(events)  # every test run: each committed event against the contract
    return [e.to_dict() for e in events]


def insert_with_events(coll: Collection, doc: dict[str, Any], events: list[Envelope],
                       pending: bool | None = None) -> None:
    """Insert a document with its events, in one write (AlreadyExists on a unique index).
    `pending`: for the relay to visit even without events (default: only with events)."""
    doc = dict(doc)
    doc.setdefault("version", 1)
    doc[OUTBOX] = _outbox_entries(events)
    doc[PENDING] = bool(events) if pending is None else pending
    try:
        coll.insert_one(doc)
    except OperationFailure as exc:
        if is_duplicate_key(exc):
            raise AlreadyExists(str(exc.details.get("keyValue") if exc.details else exc)) from exc
        raise


# FerretDB answers a bulk of a few dozen updates in about the time of two single ones, but a bulk
# of 200 took it longer than 200 single updates (measured): mark in chunks.
MARK_CHUNK = 25


def _mark_all_published(coll: Collection, docs: list[dict]) -> None:
    """Empty the outbox of documents whose events are published, in one bulk update. The routed
    documents are change documents (platformkit/repository.py) or documents that are only ever
    inserted: after its insert nobody but the relay writes one, so a plain update cannot erase a
    command's write (nor be erased by one). Two relays racing publish twice (same ids): at least
    once."""
    ops = [UpdateOne({"_id": d["_id"]}, {"$set": {OUTBOX: [], PENDING: False}}) for d in docs]
    if ops:
        bounded_bulk_write(coll, ops, ordered=False)


def predecessor(doc_id: Any) -> str | None:
    """The id of the change before this one of the same aggregate ('m-1@000000003' ->
    'm-1@000000002'; a periodic report's step 'p|u@000004' -> 'p|u@000003'), None for a document
    that is not one of a numbered series (a dissemination session) and for the first of one: both
    series start at 1 (a repository's change 0 is the aggregate's own insert, never a change
    document), so looking for change 0 would be a store round trip per creation for nothing."""
    head, sep, number = str(doc_id).rpartition("@")
    if not sep or not number.isdigit() or int(number) <= 1:
        return None
    return f"{head}@{int(number) - 1:0{len(number)}d}"


def in_publication_order(docs: list[dict], pending_by_id) -> list[dict]:
    """A pass's pending documents in the order their events must reach the topic: one aggregate's
    changes by number. The relay's query returns pending documents in no particular order and cut
    at the pass size, so a pass could hold change @3 without @2 (or before it): the projector and
    the read models keep only the newest version of an aggregate and would drop @2 as old. Every
    earlier change still pending is fetched by `_id` (`pending_by_id(id)` -> the document or None)
    and published first, so the first pending change of each aggregate always goes out."""
    by_id = {d["_id"]: d for d in docs}
    asked: set = set()
    wanted = [p for p in dict.fromkeys(predecessor(d["_id"]) for d in docs) if p is not None and p not in by_id]
    while wanted:  # one round of look-ups per step back, each round's in parallel
        asked.update(wanted)
        found = [doc for doc in in_parallel(pending_by_id, wanted) if doc is not None]
        for doc in found:
            by_id[doc["_id"]] = doc
        wanted = [p for p in dict.fromkeys(predecessor(doc["_id"]) for doc in found)
                  if p is not None and p not in by_id and p not in asked]
    return sorted(by_id.values(), key=lambda d: str(d["_id"]))


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
            docs = list(coll.find({PENDING: True}, {OUTBOX: 1, "aggregate_id": 1}).limit(self.batch_docs))
            docs = in_publication_order(
                docs, lambda _id: coll.find_one({"_id": _id, PENDING: True}, {OUTBOX: 1, "aggregate_id": 1}))
            pending_docs += len(docs)
            to_send: list[Envelope] = []
            for doc in docs:
                entries = doc.get(OUTBOX) or []
                if entries and (oldest is None or entries[0]["time"] < oldest):
                    oldest = entries[0]["time"]
                to_send.extend(from_dict(e) for e in entries)
            if not to_send:
                self._roll_forward(coll_name, docs)
                _mark_all_published(coll, docs)  # changes without events, or a flag left on: clear it
                continue
            crash_point("relay.before_publish")
            self.publisher.publish(topic, to_send)
            crash_point("relay.after_publish")
            self._roll_forward(coll_name, docs)  # before marking: a relay killed here redoes it
            marked = [d for d in docs if d.get(OUTBOX)]
            for i in range(0, len(marked), MARK_CHUNK):
                if self._stopping:
                    break
                _mark_all_published(coll, marked[i:i + MARK_CHUNK])
            _mark_all_published(coll, [d for d in docs if not d.get(OUTBOX)])
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

    def _roll_forward(self, coll_name: str, docs: list[dict]) -> None:
        """Change documents (platformkit/repository.py): make sure each aggregate's copy has been
        rolled forward past them, so that a writer that died between its commit and its copy
        write leaves no copy behind for queries (loads by id never needed this)."""
        from .repository import CHANGES, Repository  # repository imports this module
        if not coll_name.endswith(CHANGES):
            return
        base = coll_name[:-len(CHANGES)]
        repo = Repository(self.db, base, base)
        in_parallel(lambda aggregate_id: None if self._stopping else repo.get(aggregate_id),
                    list(dict.fromkeys(d["aggregate_id"] for d in docs if "aggregate_id" in d)))

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

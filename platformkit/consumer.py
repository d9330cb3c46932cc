"""A consumer as small composed steps (after getsentry/arroyo):

    poll a bounded batch -> decode -> process (the handler writes) -> dead-letter -> commit offset+1

Each step is a public piece that other readers of the topics reuse (the reporting rebuild reads
with its own assigned consumer but decodes and dead-letters with `decode_records` and
`DeadLetters`); `ConsumerLoop` only composes them and adds signals, metrics and lag.

* Offsets are committed only after the handler's writes returned, so a crash (SIGKILL anywhere)
  means redelivery, never loss. The handler must therefore be idempotent (envelope id or
  aggregate version recorded in the same document it changes).
* A message that cannot be decoded, or that the handler rejects, is sent with its original bytes
  and the error to the dead-letter topic BEFORE its offset is committed; the loop goes on.
* ... unless dead letters come too thick (`DeadLetterLimit`: too many in a row, or too large a
  share of a window of records): a bad deploy whose handler rejects every record would otherwise
  move a whole topic into dead letters. The consumer then commits only the records before the one
  that crossed the limit, logs one line and exits non-zero (EXIT_DEAD_LETTER_LIMIT); a fixed
  build consumes that record and everything after it again.
* If the handler raises (database down, ...), nothing is committed: the loop seeks back to the
  batch's first offsets and retries after a pause.
* SIGTERM finishes the batch in hand, commits, and leaves the group. Partition revocation happens
  inside poll(), after the previous batch was committed, so there is never uncommitted work to lose.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from . import config, contract, metrics, settings
from .envelope import DecodeError, Envelope, decode
from .faults import crash_point
from .kafka_io import EventPublisher

log = logging.getLogger(__name__)

EXIT_DEAD_LETTER_LIMIT = 3  # the process's exit status when the dead-letter limit stopped it


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    envelope: Envelope | None = None


class Rejected(Exception):
    """Raised (or returned) by a handler for one event it can never process: goes to dead letters."""


class BatchHandler(Protocol):
    def __call__(self, records: list[Record]) -> dict[int, str]:
        """Write the effect of these decoded records idempotently. Return {index: error} for
        records that cannot be processed (they go to dead letters); raise to retry the batch."""


# ---------------------------------------------------------------------------- step 1: records
def records_of(polled: dict, ends: dict[TopicPartition, int] | None = None) -> list[Record]:
    """The records of a poll() answer, partition by partition in offset order; with `ends`, only
    those before each partition's end offset."""
    out = []
    for tp, msgs in polled.items():
        end = ends.get(tp) if ends is not None else None
        for m in msgs:
            if end is not None and m.offset >= end:
                break
            out.append(Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp))
    return out


# ---------------------------------------------------------------------------- step 2: decode
def decode_records(records: list[Record]) -> tuple[list[Record], list[tuple[Record, str]]]:
    """(records with their envelope, [(record, error)] of those that are no envelope)."""
    decoded: list[Record] = []
    dead: list[tuple[Record, str]] = []
    for rec in records:
        try:
            rec.envelope = decode(rec.value)
            decoded.append(rec)
        except DecodeError as exc:
            dead.append((rec, f"decode: {exc}"))
    return decoded, dead


# ---------------------------------------------------------------------------- step 3: process
def process_records(handler: BatchHandler, decoded: list[Record], group_id: str,
                    stopping: Callable[[], bool], pause: float = 2.0) -> list[tuple[Record, str]] | None:
    """Run the handler until it returns: [(record, error)] of the records it rejected; None when a
    stop was asked while it kept failing (nothing may be committed then)."""
    while True:
        try:
            failures = handler(decoded) if decoded else {}
            return [(decoded[i], f"process: {error}") for i, error in sorted(failures.items())]
        except Exception:  # noqa: BLE001 - any failure: keep the offsets, retry the batch
            log.exception("batch of %d failed; retrying without committing", len(decoded))
            metrics.CONSUMER_RETRIES.labels(group_id).inc()
            if stopping():
                return None  # nothing committed: the batch is redelivered to whoever comes next
            time.sleep(pause)


# ---------------------------------------------------------------------------- step 4: dead letters
@dataclass
class DeadLetterLimit:
    """When dead letters stop being the odd bad record and become a broken consumer: more than
    `consecutive` records in a row, or more than `ratio` of the last `window` records (once that
    many were seen). Set by DEAD_LETTER_MAX_CONSECUTIVE (100), DEAD_LETTER_MAX_RATIO (0.5),
    DEAD_LETTER_WINDOW (1000); 0 switches a rule off."""
    consecutive: int = 100
    ratio: float = 0.5
    window: int = 1000
    _run: int = 0
    _recent: deque = field(default_factory=deque)
    _dead_in_window: int = 0

    @classmethod
    def from_env(cls) -> "DeadLetterLimit":
        now = settings.current()
        return cls(consecutive=now.dead_letter_max_consecutive, ratio=now.dead_letter_max_ratio,
                   window=now.dead_letter_window)

    def crossed_by(self, dead: bool) -> str | None:
        """Count one record (dead-lettered or not); the rule it breaks, if it is one too many."""
        self._run = self._run + 1 if dead else 0
        if self.window:
            self._recent.append(dead)
            self._dead_in_window += dead
            if len(self._recent) > self.window:
                self._dead_in_window -= self._recent.popleft()
        if self.consecutive and self._run > self.consecutive:
            return f"more than {self.consecutive} dead letters in a row"
        if (self.window and self.ratio and len(self._recent) >= self.window
                and self._dead_in_window > self.ratio * self.window):
            return f"{self._dead_in_window} dead letters in the last {self.window} records (limit {self.ratio:.0%})"
        return None


class DeadLetterLimitExceeded(Exception):
    def __init__(self, rule: str, record: Record):
        super().__init__(rule)
        self.rule, self.record = rule, record


class DeadLetters:
    """The dead-letter topic of one consumer group: each record with its original bytes and where
    it came from and why in the headers."""

    def __init__(self, group_id: str, publisher: EventPublisher | None = None):
        self.group_id = contract.group(group_id)
        self.topic = contract.dead_letter_topic(group_id)  # prefixed once, by contract.topic
        self.publisher = publisher or EventPublisher()

    def send(self, rec: Record, error: str) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, error)
        headers = [
            ("error", error[:2000].encode("utf-8")),
            ("original_topic", rec.topic.encode()),
            ("original_partition", str(rec.partition).encode()),
            ("original_offset", str(rec.offset).encode()),
            ("consumer_group", self.group_id.encode()),
        ]
        self.publisher.send_raw(self.topic, rec.key, rec.value, headers)
        metrics.DEAD_LETTERS.labels(self.group_id).inc()

    def close(self) -> None:
        self.publisher.close()


def route_dead_letters(records: list[Record], dead: Iterable[tuple[Record, str]], letters: DeadLetters,
                       limit: DeadLetterLimit | None) -> tuple[list[Record], DeadLetterLimitExceeded | None]:
    """Send the dead records of a batch to dead letters, in the batch's order, counting every record
    against the limit. Returns the records whose offsets may be committed, and None; or, when the
    limit is crossed, the records before the one that crossed it (nothing from it on is
    dead-lettered) and why."""
    errors = {id(rec): error for rec, error in dead}
    for i, rec in enumerate(records):
        error = errors.get(id(rec))
        rule = limit.crossed_by(error is not None) if limit is not None else None
        if rule:
            return records[:i], DeadLetterLimitExceeded(rule, rec)
        if error is not None:
            letters.send(rec, error)
    return records, None


# ---------------------------------------------------------------------------- step 5: commit
def commit_records(consumer: KafkaConsumer, records: list[Record]) -> None:
    """Commit, per partition, the offset after the last of these records."""
    last: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        last[tp] = max(last.get(tp, -1), rec.offset)
    if last:
        consumer.commit({tp: OffsetAndMetadata(off + 1, "", -1) for tp, off in last.items()})


# ---------------------------------------------------------------------------- the loop
class _Revocations(ConsumerRebalanceListener):
    def __init__(self, changed: Callable[[], None] | None = None):
        self.changed = changed

    def on_partitions_revoked(self, revoked):
        log.info("partitions revoked: %s", revoked)
        if self.changed:
            self.changed()

    def on_partitions_assigned(self, assigned):
        log.info("partitions assigned: %s", assigned)
        if self.changed:
            self.changed()


class ConsumerLoop:
    def __init__(self, group_id: str, topics: list[str], handler: BatchHandler, *,
                 max_batch: int | None = None, poll_timeout_ms: int = 500,
                 publisher: EventPublisher | None = None, auto_offset_reset: str = "earliest",
                 on_idle: Callable[[], None] | None = None,
                 after_batch: Callable[[], None] | None = None,
                 dead_letter_limit: DeadLetterLimit | None = None,
                 on_partitions_changed: Callable[[], None] | None = None):
        # TOPIC_PREFIX (tests, side-by-side demos) also names the group: groups of different runs on
        # one broker must never rebalance against each other.
        self.group_id = contract.group(group_id)
        self.topics = topics
        self.handler = handler
        # A batch in hand is finished before a SIGTERM is honoured: on FerretDB (tens of ms per
        # update under load) 500 records could outlast the pod's termination grace; 100 do not.
        self.max_batch = max_batch or settings.current().consumer_batch
        self.poll_timeout_ms = poll_timeout_ms
        self.dead_letters = DeadLetters(group_id, publisher)
        self.dead_letter_topic = self.dead_letters.topic
        self.publisher = self.dead_letters.publisher
        self.dead_letter_limit = dead_letter_limit or DeadLetterLimit.from_env()
        self.auto_offset_reset = auto_offset_reset
        self.on_idle = on_idle
        self.after_batch = after_batch
        # a handler that remembers what it wrote forgets it when partitions change hands (called
        # inside poll, between batches)
        self.on_partitions_changed = on_partitions_changed
        self._stopping = False
        self._busy = False  # a batch is being processed (written, dead-lettered, committed)
        self.consumer: KafkaConsumer | None = None

    def stop(self, *_args) -> None:
        self._stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)

    def _on_stop_signal(self, *_args) -> None:
        """Stop after the batch in hand (commit included). A poll can block far longer than its
        timeout while the consumer (re)joins its group behind a member that was killed; if the loop
        has not stopped after STOP_GRACE_SECONDS and no batch is in hand, exit 0 there: nothing is
        in flight, and the offsets of everything written are already committed."""
        self.stop()
        signal.signal(signal.SIGALRM, self._on_grace_over)
        signal.alarm(max(1, int(settings.current().stop_grace_seconds)))

    def _on_grace_over(self, *_args) -> None:
        if self._busy:
            signal.alarm(5)  # a batch is being written: let it finish and commit
            return
        log.warning("consumer %s not stopped within its grace period (blocked joining its group?): "
                    "exiting with nothing in flight", self.group_id)
        logging.shutdown()
        os._exit(0)

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=config.kafka_bootstrap(),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.auto_offset_reset,
            max_poll_records=self.max_batch,
            isolation_level="read_committed",
            session_timeout_ms=10000,
            heartbeat_interval_ms=3000,
            max_poll_interval_ms=300000,
        )
        consumer.subscribe(self.topics, listener=_Revocations(self.on_partitions_changed))
        return consumer

    def run(self) -> None:
        """Consume until stopped. Exits the process with EXIT_DEAD_LETTER_LIMIT (SystemExit) when
        the dead-letter limit stopped it."""
        from .metrics import serve_metrics
        serve_metrics(settings.current().metrics_port)
        self.consumer = self._connect()
        log.info("consumer %s started on %s", self.group_id, self.topics)
        exceeded: DeadLetterLimitExceeded | None = None
        try:
            while not self._stopping:
                polled = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_batch)
                records = records_of(polled)
                if not records:
                    if self.on_idle:
                        self.on_idle()
                    continue
                self._busy = True
                try:
                    self.process_batch(records)
                    if self.after_batch:
                        self.after_batch()
                finally:
                    self._busy = False
        except DeadLetterLimitExceeded as exc:
            exceeded = exc
        finally:
            self.consumer.close(autocommit=False)
            self.dead_letters.close()
            if exceeded is None:
                log.info("consumer %s stopped", self.group_id)
        if exceeded is not None:
            rec = exceeded.record
            log.error("consumer %s STOPPED by its dead-letter limit: %s; nothing from %s[%d]@%d on was "
                      "committed: fix the handler and start it again (its dead letters: %s)", self.group_id,
                      exceeded.rule, rec.topic, rec.partition, rec.offset, self.dead_letter_topic)
            logging.shutdown()
            raise SystemExit(EXIT_DEAD_LETTER_LIMIT)

    def process_batch(self, records: list[Record]) -> None:
        """decode -> process -> dead-letter -> commit. Raises DeadLetterLimitExceeded (after
        committing the records before the one that crossed the limit)."""
        started = time.monotonic()
        decoded, dead = decode_records(records)
        rejected = process_records(self.handler, decoded, self.group_id, lambda: self._stopping)
        if rejected is None:
            return
        crash_point("consumer.after_write")
        committable, exceeded = route_dead_letters(records, dead + rejected, self.dead_letters,
                                                   self.dead_letter_limit)
        crash_point("consumer.before_commit")
        commit_records(self.consumer, committable)
        if exceeded is not None:
            raise exceeded
        metrics.CONSUMER_BATCH.labels(self.group_id).observe(len(records))
        metrics.CONSUMER_BATCH_SECONDS.labels(self.group_id).observe(time.monotonic() - started)
        metrics.CONSUMER_RECORDS.labels(self.group_id).inc(len(records))
        self._record_lag()
        now_ms = time.time() * 1000
        metrics.CONSUMER_LAG_SECONDS.labels(self.group_id).set(
            max(0.0, (now_ms - records[-1].timestamp_ms) / 1000.0))

    def _record_lag(self) -> None:
        """Records behind, from the high watermarks the fetches already brought (no extra request)."""
        if self.consumer is None:
            return
        lag = 0
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None:
                lag += max(0, high - self.consumer.position(tp))
        metrics.CONSUMER_LAG_RECORDS.labels(self.group_id).set(lag)

"""A consumer as a small pipeline (after getsentry/arroyo):

    poll a bounded batch -> decode -> process (the handler writes) -> dead-letter -> commit offset+1

* Offsets are committed only after the handler's writes returned, so a crash (SIGKILL anywhere)
  means redelivery, never loss. The handler must therefore be idempotent (envelope id or
  aggregate version recorded in the same document it changes).
* A message that cannot be decoded, or that the handler rejects, is sent with its original bytes
  and the error to the dead-letter topic BEFORE its offset is committed; the loop goes on.
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
from dataclasses import dataclass
from typing import Callable, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from . import config, contract, metrics, settings
from .envelope import DecodeError, Envelope, decode
from .faults import crash_point
from .kafka_io import EventPublisher

log = logging.getLogger(__name__)


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


class _Revocations(ConsumerRebalanceListener):
    def __init__(self, loop: "ConsumerLoop"):
        self.loop = loop

    def on_partitions_revoked(self, revoked):
        log.info("partitions revoked: %s", revoked)

    def on_partitions_assigned(self, assigned):
        log.info("partitions assigned: %s", assigned)


class ConsumerLoop:
    def __init__(self, group_id: str, topics: list[str], handler: BatchHandler, *,
                 max_batch: int | None = None, poll_timeout_ms: int = 500,
                 publisher: EventPublisher | None = None, auto_offset_reset: str = "earliest",
                 on_idle: Callable[[], None] | None = None,
                 after_batch: Callable[[], None] | None = None):
        # TOPIC_PREFIX (tests, side-by-side demos) also names the group: groups of different runs on
        # one broker must never rebalance against each other.
        self.group_id = contract.group(group_id)
        self.topics = topics
        self.handler = handler
        # A batch in hand is finished before a SIGTERM is honoured: on FerretDB (tens of ms per
        # update under load) 500 records could outlast the pod's termination grace; 100 do not.
        self.max_batch = max_batch or settings.current().consumer_batch
        self.poll_timeout_ms = poll_timeout_ms
        self.dead_letter_topic = contract.dead_letter_topic(group_id)  # prefixed once, by contract.topic
        self.publisher = publisher or EventPublisher()
        self.auto_offset_reset = auto_offset_reset
        self.on_idle = on_idle
        self.after_batch = after_batch
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
        consumer.subscribe(self.topics, listener=_Revocations(self))
        return consumer

    def run(self) -> None:
        from .metrics import serve_metrics
        serve_metrics(settings.current().metrics_port)
        self.consumer = self._connect()
        log.info("consumer %s started on %s", self.group_id, self.topics)
        try:
            while not self._stopping:
                polled = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_batch)
                records = [Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                           for batch in polled.values() for m in batch]
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
        finally:
            self.consumer.close(autocommit=False)
            self.publisher.close()
            log.info("consumer %s stopped", self.group_id)

    def process_batch(self, records: list[Record]) -> None:
        started = time.monotonic()
        dead: list[tuple[Record, str]] = []
        decoded: list[Record] = []
        for rec in records:
            try:
                rec.envelope = decode(rec.value)
                decoded.append(rec)
            except DecodeError as exc:
                dead.append((rec, f"decode: {exc}"))
        while True:
            try:
                failures = self.handler(decoded) if decoded else {}
                break
            except Exception:  # noqa: BLE001 - any failure: keep the offsets, retry the batch
                log.exception("batch of %d failed; retrying without committing", len(decoded))
                metrics.CONSUMER_RETRIES.labels(self.group_id).inc()
                if self._stopping:
                    return  # nothing committed: the batch is redelivered to whoever comes next
                time.sleep(2)
        for index, error in failures.items():
            dead.append((decoded[index], f"process: {error}"))
        crash_point("consumer.after_write")
        for rec, error in dead:
            self._dead_letter(rec, error)
        crash_point("consumer.before_commit")
        self._commit(records)
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

    def _dead_letter(self, rec: Record, error: str) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, error)
        headers = [
            ("error", error[:2000].encode("utf-8")),
            ("original_topic", rec.topic.encode()),
            ("original_partition", str(rec.partition).encode()),
            ("original_offset", str(rec.offset).encode()),
            ("consumer_group", self.group_id.encode()),
        ]
        self.publisher.send_raw(self.dead_letter_topic, rec.key, rec.value, headers)
        metrics.DEAD_LETTERS.labels(self.group_id).inc()

    def _commit(self, records: list[Record]) -> None:
        last: dict[TopicPartition, int] = {}
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            last[tp] = max(last.get(tp, -1), rec.offset)
        self.consumer.commit({tp: OffsetAndMetadata(off + 1, "", -1) for tp, off in last.items()})

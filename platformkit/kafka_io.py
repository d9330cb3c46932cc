"""Kafka producer and topic administration.

The producer is idempotent with acks=all, so a retry inside the client never duplicates a message
on the broker; duplicates that come from the outbox relay re-publishing after a crash keep their
envelope id and consumers drop them. It is created lazily per process (after gunicorn forks).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Iterable

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from . import config, settings
from .envelope import Envelope, encode

log = logging.getLogger(__name__)



class EventPublisher:
    def __init__(self, bootstrap: list[str] | None = None):
        self._bootstrap = bootstrap
        self._producer: KafkaProducer | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None or self._pid != os.getpid():
                self._producer = KafkaProducer(
                    bootstrap_servers=self._bootstrap or config.kafka_bootstrap(),
                    acks="all",
                    enable_idempotence=True,
                    retries=2**31 - 1,
                    linger_ms=5,
                    max_in_flight_requests_per_connection=5,
                    compression_type=None,
                    request_timeout_ms=15000,
                )
                self._pid = os.getpid()
            return self._producer

    def publish(self, topic: str, envelopes: Iterable[Envelope], timeout: float = 30.0) -> None:
        """Send and wait for every acknowledgement; raises if any send failed."""
        producer = self._get()
        futures = [producer.send(topic, key=e.subject.encode("utf-8"), value=encode(e))
                   for e in envelopes]
        producer.flush(timeout)
        for f in futures:
            f.get(timeout=timeout)

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None,
                 headers: list[tuple[str, bytes]] | None = None, timeout: float = 30.0) -> None:
        producer = self._get()
        producer.send(topic, key=key, value=value, headers=headers or []).get(timeout=timeout)

    def close(self) -> None:
        if self._producer is not None and self._pid == os.getpid():
            self._producer.close(timeout=10)
        self._producer = None


def ensure_topics(names: Iterable[str], partitions: int | None = None,
                  wait_seconds: float = 60.0) -> None:
    """Create topics (broker names; idempotent), waiting for the broker to be ready to answer.
    Partitions: TOPIC_PARTITIONS unless given."""
    partitions = partitions or settings.current().topic_partitions
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=config.kafka_bootstrap(),
                                     request_timeout_ms=10000)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise
            log.info("waiting for kafka: %s", exc)
            time.sleep(1)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(name=n, num_partitions=partitions, replication_factor=1,
                        topic_configs={"retention.ms": "-1"})
               for n in names if n not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


_ready_cache: dict[str, float] = {}


def kafka_ready(timeout_ms: int = 3000, cache_seconds: float = 5.0) -> bool:
    """Can we reach the brokers (metadata answered)? A success is cached a few seconds so that a
    busy readiness probe does not open an admin connection per call."""
    if time.monotonic() - _ready_cache.get("ok", -1e9) < cache_seconds:
        return True
    try:
        admin = KafkaAdminClient(bootstrap_servers=config.kafka_bootstrap(), request_timeout_ms=timeout_ms)
        admin.list_topics()
        admin.close()
        _ready_cache["ok"] = time.monotonic()
        return True
    except Exception:  # noqa: BLE001 - readiness answers a yes/no question
        log.warning("kafka not reachable for readiness", exc_info=True)
        return False


def main() -> None:
    """`python -m platformkit.kafka_io`: the `topics` job (platformkit.run topics), kept for scripts."""
    from .run import main as run_main
    run_main(["topics"])


if __name__ == "__main__":
    main()

"""Reporting tests: real Kafka, real database, the projector as a real process."""
import pytest

from platformkit import config
from platformkit.kafka_io import EventPublisher, ensure_topics

SOURCES = ("membership.events", "training.events", "welfare.events")


@pytest.fixture
def topics(isolated):
    ensure_topics([config.topic(t) for t in SOURCES], partitions=3)
    return {t: config.topic(t) for t in SOURCES}


@pytest.fixture
def publish(topics):
    publisher = EventPublisher()

    def send(envelopes):
        by_topic = {}
        for e in envelopes:
            by_topic.setdefault(topics[f"{e.source}.events"], []).append(e)
        for topic, evs in by_topic.items():
            for i in range(0, len(evs), 2000):
                publisher.publish(topic, evs[i:i + 2000])
    yield send
    publisher.close()

"""The dead-letter limit against the real broker: a consumer whose handler rejects every record
(a bad deploy) stops after the limit instead of moving the whole topic into dead letters, exits
non-zero with one clear log line, and commits nothing past the limit, so that a fixed consumer of
the same group consumes every record after it again."""
import pytest
from kafka import KafkaConsumer, TopicPartition

from platformkit import config, contract, mongo
from platformkit.consumer import EXIT_DEAD_LETTER_LIMIT
from platformkit.envelope import decode, new_event
from platformkit.kafka_io import EventPublisher, ensure_topics
from tests.support.infra import read_topic, wait_until

pytestmark = pytest.mark.integration

TOPIC = "things.events"
GROUP = "limit-group"


def committed(group: str, topic: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=contract.group(group),
                             enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close(autocommit=False)


@pytest.mark.parametrize("limit_env, crossing", [
    ({"DEAD_LETTER_MAX_CONSECUTIVE": "7", "DEAD_LETTER_WINDOW": "0"}, 7),
    ({"DEAD_LETTER_MAX_CONSECUTIVE": "0", "DEAD_LETTER_WINDOW": "10", "DEAD_LETTER_MAX_RATIO": "0.6"}, 9),  # once the window is full
])
def test_a_handler_rejecting_every_record_stops_at_the_limit_and_a_fixed_one_takes_over(isolated, procs, limit_env,
                                                                                      crossing):
    topic = config.topic(TOPIC)
    ensure_topics([topic], partitions=1)
    events = [new_event("things", "things.thing.created.v1", f"t-{i}", {"n": i}, 1) for i in range(40)]
    publisher = EventPublisher()
    publisher.publish(topic, events)
    publisher.close()
    in_order = [decode(m.value).id for m in read_topic(topic, min_count=40, timeout=30)]  # the topic's order
    assert sorted(in_order) == sorted(e.id for e in events)

    broken = procs(["-m", "tests.support.recording_consumer", GROUP, TOPIC], "broken",
                   {"RECORDER_BROKEN": "1", "CONSUMER_BATCH": "15", **limit_env})
    assert broken.wait_exit(90) == EXIT_DEAD_LETTER_LIMIT
    stopped = [line for line in broken.output().splitlines() if "STOPPED by its dead-letter limit" in line]
    assert len(stopped) == 1, broken.output()[-3000:]
    # exactly the records under the limit went to dead letters, the first `crossing` of the topic
    dead = read_topic(config.dead_letter_topic(GROUP), min_count=crossing, timeout=30)
    assert sorted(decode(m.value).id for m in dead) == sorted(in_order[:crossing])  # over its partitions
    # ... and nothing past them is committed
    assert committed(GROUP, topic) == crossing
    db = mongo.database("recorder")
    assert db.applied.count_documents({}) == 0

    db.deliveries.delete_many({})
    fixed = procs(["-m", "tests.support.recording_consumer", GROUP, TOPIC], "fixed")
    wait_until(lambda: db.applied.count_documents({}) == 40 - crossing, 90, message="the rest applied by the fix")
    assert sorted(d["_id"] for d in db.applied.find()) == sorted(in_order[crossing:])
    assert min(d["offset"] for d in db.deliveries.find()) == crossing
    wait_until(lambda: committed(GROUP, topic) == 40, 30, message="the fixed consumer committed everything")
    assert len(read_topic(config.dead_letter_topic(GROUP), min_count=crossing, timeout=5)) == crossing
    fixed.stop()
    assert fixed.wait_exit(30) == 0

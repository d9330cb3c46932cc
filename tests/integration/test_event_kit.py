"""The foundation against the real broker and database: outbox -> relay -> Kafka -> consumer -> DB,
and the crashes that must lose nothing."""
import json
import signal

import pytest

from platformkit import config, mongo
from platformkit.envelope import decode, new_event
from platformkit.kafka_io import EventPublisher, ensure_topics
from platformkit.outbox import PENDING, insert_with_events
from platformkit.repository import Repository
from tests.support.infra import read_topic, wait_until

pytestmark = pytest.mark.integration

TOPIC = "things.events"


def relay_args():
    return ["-m", "platformkit.relay", "--service", "things", "--route", f"things={TOPIC}",
            "--route", f"things_events={TOPIC}"]


def consumer_args(group="recorder"):
    return ["-m", "tests.support.recording_consumer", group, TOPIC]


def write_thing(n: int) -> list[str]:
    """A 'command': n aggregates, each inserted with one event in a single write."""
    coll = mongo.database("things").things
    ids = []
    for i in range(n):
        ev = new_event("things", "things.thing.created.v1", f"thing-{i}", {"n": i, "tên": "Nguyễn Thị Hà"}, 1)
        insert_with_events(coll, {"_id": f"thing-{i}", "n": i}, [ev])
        ids.append(ev.id)
    return ids


def topic_ids(min_count: int):
    return [decode(m.value).id for m in read_topic(config.topic(TOPIC), min_count=min_count, timeout=30)]


def test_event_flows_from_outbox_through_kafka_into_the_database(isolated, procs):
    ensure_topics([config.topic(TOPIC)], partitions=3)
    ids = write_thing(5)
    procs(relay_args(), "relay")
    procs(consumer_args(), "consumer")
    applied = mongo.database("recorder").applied
    wait_until(lambda: applied.count_documents({}) == 5, 60, message="5 applied events")
    assert sorted(d["_id"] for d in applied.find()) == sorted(ids)
    doc = applied.find_one({"_id": ids[0]})
    assert doc["data"]["tên"] == "Nguyễn Thị Hà"  # diacritics survive the trip
    # the relay cleared every outbox once published
    things = mongo.database("things").things
    wait_until(lambda: things.count_documents({PENDING: True}) == 0, 30, message="outbox drained")
    assert all(d["outbox"] == [] for d in things.find())


def test_events_of_one_aggregate_keep_their_order(isolated, procs):
    ensure_topics([config.topic(TOPIC)], partitions=3)
    things = Repository(mongo.database("things"), "things", "thing")
    first = new_event("things", "things.thing.created.v1", "agg", {"step": 0}, 1)
    things.create({"_id": "agg", "n": 0}, [first])
    for step in range(1, 6):
        ev = new_event("things", "things.thing.changed.v1", "agg", {"step": step}, step + 1)
        things.command("agg", lambda _doc, step=step, ev=ev: ({"$set": {"n": step}}, [ev]), expected_version=step)
    procs(relay_args(), "relay")
    msgs = read_topic(config.topic(TOPIC), min_count=6, timeout=30)
    steps = [decode(m.value).data["step"] for m in msgs]
    assert steps == [0, 1, 2, 3, 4, 5]
    assert len({m.partition for m in msgs}) == 1


@pytest.mark.parametrize("point", ["relay.before_publish", "relay.after_publish"])
def test_relay_killed_between_write_and_mark_loses_nothing(isolated, procs, point):
    ensure_topics([config.topic(TOPIC)], partitions=3)
    ids = write_thing(3)
    crashed = procs(relay_args(), "relay-crash", {"FAULT_POINT": point})
    assert crashed.wait_exit(60) == -signal.SIGKILL
    things = mongo.database("things").things
    assert things.count_documents({PENDING: True}) == 3, "nothing was marked published"
    procs(relay_args(), "relay")
    expected = 6 if point == "relay.after_publish" else 3
    wait_until(lambda: things.count_documents({PENDING: True}) == 0, 60, message="outbox drained")
    published = topic_ids(expected)
    if point == "relay.after_publish":
        # published twice, recognisable by the same envelope ids
        assert sorted(published) == sorted(ids + ids)
    else:
        assert sorted(published) == sorted(ids)


def test_consumer_killed_before_commit_gets_redelivery_with_same_id(isolated, procs):
    ensure_topics([config.topic(TOPIC)], partitions=3)
    ids = write_thing(4)
    procs(relay_args(), "relay")
    topic_ids(4)
    crashed = procs(consumer_args(), "consumer-crash", {"FAULT_POINT": "consumer.before_commit"})
    assert crashed.wait_exit(60) == -signal.SIGKILL
    db = mongo.database("recorder")
    first_round = db.deliveries.count_documents({})
    assert first_round >= 1
    procs(consumer_args(), "consumer")
    # the killed member is evicted after its session timeout, then the batch comes again
    wait_until(lambda: db.deliveries.count_documents({}) >= 2 * first_round, 90, message="redelivery")
    wait_until(lambda: db.applied.count_documents({}) == 4, 60, message="4 applied")
    # every event delivered in the first round came again, with the same envelope id ...
    redelivered = [d["_id"] for d in db.deliveries.aggregate(
        [{"$group": {"_id": "$event_id", "n": {"$sum": 1}}}]) if d["n"] >= 2]
    assert len(redelivered) == first_round
    # ... and was applied once
    assert sorted(d["_id"] for d in db.applied.find()) == sorted(ids)


def test_malformed_and_unprocessable_messages_go_to_dead_letters_and_consumer_goes_on(isolated, procs):
    topic = config.topic(TOPIC)
    ensure_topics([topic], partitions=1)
    publisher = EventPublisher()
    garbage = [b"\xff\xfe not utf-8", b"{\"json\": \"but not an envelope\"}", b"[1,2"]
    for raw in garbage:
        publisher.send_raw(topic, b"k", raw)
    poison = new_event("things", "things.thing.created.v1", "p", {"poison": True}, 1)
    good = new_event("things", "things.thing.created.v1", "g", {"n": 1}, 1)
    publisher.publish(topic, [poison, good])
    publisher.close()
    consumer = procs(consumer_args("dl-group"), "consumer")
    db = mongo.database("recorder")
    wait_until(lambda: db.applied.count_documents({}) == 1, 60, message="the good event applied")
    assert db.applied.find_one()["_id"] == good.id
    dead = read_topic(config.dead_letter_topic("dl-group"), min_count=4, timeout=30)
    assert [m.value for m in dead[:3]] == garbage  # original bytes kept
    assert json.loads(dead[3].value)["id"] == poison.id
    headers = dict(dead[0].headers)
    assert headers["error"].startswith(b"decode:") and headers["original_topic"] == topic.encode()
    assert dict(dead[3].headers)["error"].startswith(b"process:")
    assert consumer.alive(), "the consumer keeps going"
    consumer.stop()
    assert consumer.wait_exit(30) == 0, "SIGTERM stops it cleanly"


def test_concurrent_commands_and_relay_never_lose_a_write(isolated, procs):
    """FerretDB 1.24 applies conditional updates non-atomically; the repository's change documents
    (a unique insert per change) must make every acknowledged command survive, while the relay
    marks published events at the same time."""
    import threading

    ensure_topics([config.topic(TOPIC)], partitions=3)
    things = Repository(mongo.database("things"), "things", "thing")
    coll = things.coll
    things.create({"_id": "counter", "n": 0, "done": []},
                  [new_event("things", "things.thing.created.v1", "counter", {}, 1)])
    procs(relay_args(), "relay")
    acknowledged: list[int] = []

    def command(i: int):
        def decide(doc):
            ev = new_event("things", "things.thing.counted.v1", "counter", {"i": i}, doc["version"] + 1)
            return {"$set": {"n": doc["n"] + 1}, "$push": {"done": i}}, [ev]
        things.command("counter", decide)  # no version sent: a lost race is decided again
        acknowledged.append(i)

    threads = [threading.Thread(target=command, args=(i,)) for i in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    final = coll.find_one({"_id": "counter"})
    assert sorted(acknowledged) == list(range(12))
    assert final["n"] == 12 and sorted(final["done"]) == list(range(12)) and final["version"] == 13
    wait_until(lambda: things.changes.count_documents({PENDING: True}) == 0, 30, message="outbox drained")
    published = {decode(m.value).data.get("i") for m in read_topic(config.topic(TOPIC), min_count=13)}
    assert set(range(12)) <= published

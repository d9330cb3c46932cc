"""/metrics of running processes: the outbox and consumer figures move while events flow."""
import re

import pytest
import requests

from platformkit import config, contract, mongo
from platformkit.envelope import new_event
from platformkit.kafka_io import ensure_topics
from platformkit.outbox import insert_with_events
from tests.support.infra import free_port, wait_http, wait_until

pytestmark = pytest.mark.integration
TOPIC = "things.events"


def GROUP() -> str:  # noqa: N802 - the consumer names its group with the run's prefix
    return contract.group("metrics-group")


def metric(port: int, name: str, **labels) -> float | None:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            return float(m.group(2))
    return None


def write(n: int, start: int) -> None:
    coll = mongo.database("things").things
    for i in range(start, start + n):
        insert_with_events(coll, {"_id": f"t{i}"}, [new_event("things", "things.thing.created.v1", f"t{i}", {"i": i}, 1)])


def test_outbox_and_consumer_metrics_move_while_events_flow(isolated, procs):
    ensure_topics([config.topic(TOPIC)], partitions=3)
    relay_port, consumer_port = free_port(), free_port()
    procs(["-m", "platformkit.relay", "--service", "things", "--route", f"things={TOPIC}"], "relay",
          {"METRICS_PORT": str(relay_port)})
    procs(["-m", "tests.support.recording_consumer", "metrics-group", TOPIC], "consumer",
          {"METRICS_PORT": str(consumer_port)})
    wait_http(f"http://127.0.0.1:{relay_port}/metrics", 30)
    wait_http(f"http://127.0.0.1:{consumer_port}/metrics", 30)
    write(20, 0)
    wait_until(lambda: (metric(relay_port, "outbox_published_events_total", service="things") or 0) >= 20, 30,
               message="relay published 20")
    wait_until(lambda: (metric(consumer_port, "consumer_records_total", group=GROUP()) or 0) >= 20, 60,
               message="consumer consumed 20")
    first_pub = metric(relay_port, "outbox_published_events_total", service="things")
    first_cons = metric(consumer_port, "consumer_records_total", group=GROUP())
    assert metric(relay_port, "outbox_pending_documents", service="things") is not None
    assert metric(consumer_port, "consumer_lag_seconds", group=GROUP()) is not None
    assert metric(consumer_port, "consumer_lag_records", group=GROUP()) is not None
    write(15, 100)
    wait_until(lambda: metric(relay_port, "outbox_published_events_total", service="things") >= first_pub + 15, 30,
               message="relay figure moved")
    wait_until(lambda: metric(consumer_port, "consumer_records_total", group=GROUP()) >= first_cons + 15, 60,
               message="consumer figure moved")
    assert metric(relay_port, "outbox_pending_documents", service="things") == 0
    assert metric(consumer_port, "dead_letters_total", group=GROUP()) in (None, 0.0)

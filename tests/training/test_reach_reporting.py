"""Dissemination reach end to end on the real broker and database: sessions recorded through the
training API (with Idempotency-Keys, one retried), published by the relay process, projected by the
reporting projector process; the distinct members and CĐCS reached and their shares equal an
independent recount and the hand count, a redelivery of every session event counts nothing, and a
rebuild reproduces the same views and memory."""
import io

import pytest
from kafka import KafkaConsumer, TopicPartition

from platformkit import config, contract, mongo
from platformkit.envelope import decode, new_event
from platformkit.kafka_io import EventPublisher, ensure_topics
from services.reporting import views
from services.reporting.periods import parse
from services.reporting.rebuild import rebuild
from services.reporting.store import AGG_BUCKETS, STATE_BUCKETS, Generation, active_generation
from tests.reporting.recount import recount
from tests.support.infra import read_topic, wait_until
from tests.training.conftest import MEMBERS
from tests.training.support import TREE, active_member, left_member, member_event, token, unit_created

pytestmark = pytest.mark.integration

SOURCES = ("membership.events", "training.events", "welfare.events")
REACH = ["training.members_reached", "training.members_reached_distinct", "training.cdcs_reached",
         "members.active", "cdcs.active"]


def membership_events():
    """What the training fixture put in training's view, as membership publishes it, plus the
    founding of the three CĐCS (reporting's cdcs.active)."""
    events = [unit_created(u) for u in TREE]
    for unit in ("C1", "C2", "C3"):
        events.append(new_event("membership", "membership.cdcs.founded.v1", unit, {
            "unit_id": unit, "ancestors": TREE[unit][1], "sector": "non_state", "method": "standard",
            "founding_member_count": 5, "decision_no": f"QĐ-{unit}", "decision_date": "2024-01-01",
            "effective_date": "2024-01-01"}, 2))
    for mid, (unit, official) in MEMBERS.items():
        events += active_member(mid, unit, official, full_name=f"Nguyễn Văn {mid}")
    events.append(left_member("gone", "C1"))
    events.append(member_event("admitted", "newbie", "C1", 1, admitted_on="2025-09-01",
                               date_of_birth="2000-01-01", method="individual"))
    return events


def live() -> Generation:
    db = mongo.database("reporting")
    return Generation(db, active_generation(db))


def figures(unit, period, codes=REACH):
    sums = views.period_sums(live(), [unit], parse(period))[unit]
    return {k: sums.get(k, 0) for k in codes}


def recounted(envs, unit, period, codes=REACH):
    p = parse(period)
    got = recount(envs, p.first, p.last).get(unit, {})
    return {k: got.get(k, 0) for k in codes}


def projector_caught_up() -> bool:
    """The projector's group has committed every message of every source topic."""
    group = contract.group(contract.projector_group(active_generation(mongo.database("reporting"))))
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(config.topic(t), p) for t in SOURCES
               for p in (consumer.partitions_for_topic(config.topic(t)) or [])]
        ends = consumer.end_offsets(tps)
        return all((consumer.committed(tp) or 0) >= ends[tp] for tp in tps)
    finally:
        consumer.close()


def snapshot(number: int) -> dict:
    db = mongo.database("reporting")
    agg = {}
    for b in range(AGG_BUCKETS):
        for doc in db[f"g{number}_agg_{b:02x}"].find({}, {"v": 1}):
            values = {k: v for k, v in (doc.get("v") or {}).items() if v}
            if values:
                agg[doc["_id"]] = values
    states = {d["_id"]: {k: v for k, v in d.items() if k != "_id"}
              for b in range(STATE_BUCKETS) for d in db[f"g{number}_state_{b:02x}"].find()
              if d["_id"].startswith(("reached", "trained"))}
    return {"agg": agg, "states": states}


def test_members_and_cdcs_reached_count_once_a_year_and_shares_equal_the_recount(training, procs):
    t = training
    ensure_topics([config.topic(s) for s in SOURCES], partitions=3)
    members = membership_events()
    publisher = EventPublisher()
    publisher.publish(config.topic("membership.events"), members)

    def session(key, body, unit="HCM"):
        r = t.client.post("/api/v1/dissemination-sessions", json=body,
                          headers={**token(unit), "Idempotency-Key": key})
        assert r.status_code == 201, r.json
        return r.json

    # recorded in this order; held on other days: the earliest session of the year is what counts
    a = session("A", {"organising_unit_id": "HCM", "topic": "NQ 02", "held_on": "2025-10-20",
                      "member_ids": ["m1", "m9"]})
    body_b = {"organising_unit_id": "P1", "topic": "NQ 02", "held_on": "2025-09-15",
              "member_ids": ["m1", "m1", "m2", "m3"], "reached": [{"unit_id": "C1", "members_reached": 5}]}
    b = session("B", body_b, unit="P1")
    assert session("B", body_b, unit="P1")["id"] == b["id"]  # a retried POST: the same session, once
    session("C", {"organising_unit_id": "P1", "topic": "NQ 02", "held_on": "2025-08-28", "member_ids": ["m2"]},
            unit="P1")
    session("D", {"organising_unit_id": "P1", "topic": "NQ 03", "held_on": "2026-01-15", "member_ids": ["m1"]},
            unit="P1")
    assert t.db["dissemination_sessions"].count_documents({}) == 4
    assert (a["members_identified"], b["members_identified"], b["members_reached"]) == (2, 3, 8)

    procs(["-m", "platformkit.run", "relay", "training"], "training-relay")
    # 4 recorded; member_reached: A 2, B 3, C 1, D 1; cdcs_reached: A 2 (C1, C3), B 2 (C1, C2), C 1, D 1
    expected = 4 + 7 + 6
    training_events = [decode(m.value) for m in read_topic(config.topic("training.events"), expected, 60)]
    assert len(training_events) == expected
    envs = members + training_events
    procs(["-m", "platformkit.run", "consumer", "reporting", "projector"], "projector")
    wait_until(lambda: projector_caught_up() and figures("HCM", "2025") == recounted(envs, "HCM", "2025"), 120,
               interval=0.5, message="projector caught up")

    # by hand: m1 twice in B and again in A counts once (September, B); m2 in August (C, recorded
    # last); m3 September; m9 October (A). lượt counts every member of every session and head counts.
    assert figures("HCM", "2025") == {"training.members_reached": 11, "training.members_reached_distinct": 4,
                                      "training.cdcs_reached": 3, "members.active": 8, "cdcs.active": 3}
    assert figures("HCM", "2025-08")["training.members_reached_distinct"] == 1
    assert figures("HCM", "2025-09")["training.members_reached_distinct"] == 2
    assert figures("P1", "2025")["training.members_reached_distinct"] == 3  # m1, m2, m3 (m9 is P2's)
    assert figures("C1", "2025")["training.cdcs_reached"] == 1 and figures("C1", "2025-08")["training.cdcs_reached"] == 1
    assert figures("HCM", "2026")["training.members_reached_distinct"] == 1  # a new year counts again
    periods = ("2025", "2025-08", "2025-09", "2025-Q3", "2025-Q4", "2026", "2025-SY")
    units = list(TREE)
    for unit in units:
        for period in periods:
            assert figures(unit, period) == recounted(envs, unit, period), (unit, period)

    # the shares, as the views answer them: distinct reached / active, at every level
    db = mongo.database("reporting")
    for unit in ("HCM", "P1", "P2", "C1"):
        rows = {r["indicator"]: r["actual"] for r in views.unit_view(
            live(), db.targets, unit, parse("2025"),
            ["training.members_reached_pct", "training.cdcs_reached_pct"])["rows"]}
        expect = recounted(envs, unit, "2025")
        assert rows["training.members_reached_pct"] == views.ratio(
            expect["training.members_reached_distinct"], expect["members.active"]), unit
        assert rows["training.cdcs_reached_pct"] == views.ratio(
            expect["training.cdcs_reached"], expect["cdcs.active"]), unit
    assert views.ratio(4, 8) == 50.0

    # redelivery: every session event published again (same ids, new offsets) counts nothing
    before = {(u, p): figures(u, p) for u in units for p in periods}
    for e in training_events:
        publisher.publish(config.topic("training.events"), [e])
    publisher.close()
    wait_until(projector_caught_up, 60, interval=0.5, message="redelivery consumed")
    assert {(u, p): figures(u, p) for u in units for p in periods} == before

    # a rebuild (every topic replayed into a fresh generation) reproduces the views and the memory
    incremental = snapshot(0)
    assert any(k.startswith("reached:m1:2025") for k in incremental["states"])
    number = rebuild(out=io.StringIO())
    assert number == 1 and active_generation(mongo.database("reporting")) == 1
    assert snapshot(1) == incremental

"""Training with the real broker: membership events reach the local view through the consumer
process, and training events reach training.events through the relay process."""
from collections import defaultdict

import pytest

from platformkit import config
from platformkit.envelope import decode
from platformkit.kafka_io import EventPublisher, ensure_topics
from platformkit.membership_view import MEMBERS, UNITS
from platformkit.outbox import PENDING
from tests.support.infra import read_topic, wait_until
from tests.training.support import COURSE, TREE, active_member, left_member, member_event, token, unit_created

pytestmark = pytest.mark.integration


def _api(app):
    client = app.test_client()

    def call(method, path, unit="HCM", json=None):
        return client.open("/api/v1" + path, method=method, json=json, headers=token(unit))
    return call


def test_membership_events_make_members_enrollable_and_redelivery_changes_nothing(isolated, procs):
    from services.training.app import create_app
    from services.training.stores import stores
    topic = config.topic("membership.events")
    dead_letters = config.dead_letter_topic("training-membership-view")
    ensure_topics([topic, dead_letters], partitions=1)  # one partition: a marker published last is consumed last
    units = [unit_created(u) for u in TREE]
    k1 = active_member("k1", "C1", is_official=True, full_name="Lê Thị Thu")
    k2 = active_member("k2", "C2")
    publisher = EventPublisher()
    publisher.publish(topic, units + k1 + k2)
    consumer = procs(["-m", "platformkit.run", "consumer", "training", "membership-view"], "training-consumer")
    app = create_app()
    call = _api(app)
    db = stores().db
    wait_until(lambda: db[MEMBERS].count_documents({"status": "active"}) == 2, 60, message="k1, k2 active")
    assert db[UNITS].find_one({"_id": "C1"})["ancestors"] == ["VN", "HCM", "P1"]
    course = call("POST", "/courses", json=COURSE).json["id"]
    class_id = call("POST", "/classes", json={"course_id": course, "code": "K-01", "organising_unit_id": "P1",
                                              "start_date": "2025-10-06", "capacity": 10}).json["id"]
    call("POST", f"/classes/{class_id}/open")
    r = call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "k1"})
    assert r.status_code == 201 and r.json["unit_id"] == "C1" and r.json["is_official"] is True
    assert r.json["ancestors"] == ["VN", "HCM", "P1"] and r.json["full_name"] == "Lê Thị Thu"

    # k2 leaves: enrolment is refused once the consumer applied it
    publisher.publish(topic, [left_member("k2", "C2", version=3)])
    wait_until(lambda: db[MEMBERS].find_one({"_id": "k2"})["status"] == "left", 30, message="k2 left")
    r = call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "k2"})
    assert r.status_code == 422 and list(r.json["errors"]) == ["member_id"] and "left" in r.json["message"]

    # redeliver everything (same envelopes, same ids and versions): the view does not move
    view_before = (sorted(db[UNITS].find(), key=lambda d: d["_id"]), sorted(db[MEMBERS].find(), key=lambda d: d["_id"]))
    publisher.publish(topic, units + k1 + k2)  # k2's approved (v2) again after its left (v3)
    marker = member_event("admitted", "marker", "C1", 1, admitted_on="2025-10-01", date_of_birth="1999-09-09",
                          method="individual")
    publisher.publish(topic, [marker])
    wait_until(lambda: db[MEMBERS].find_one({"_id": "marker"}), 30, message="marker consumed")
    view_after = (sorted(db[UNITS].find(), key=lambda d: d["_id"]),
                  sorted(db[MEMBERS].find({"_id": {"$ne": "marker"}}), key=lambda d: d["_id"]))
    assert view_after == view_before
    assert db[MEMBERS].find_one({"_id": "k2"})["v"] == 3
    assert call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "k2"}).status_code == 422
    # admitted but not approved yet: not enrollable either
    r = call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "marker"})
    assert r.status_code == 422 and "not an active member" in r.json["message"]
    publisher.close()
    assert consumer.alive()
    assert read_topic(dead_letters, timeout=2) == []


def test_relay_publishes_training_events_with_the_facts_reporting_needs(training, procs):
    t = training
    course = t.call("POST", "/courses", json={**COURSE, "duration_days": 1}).json["id"]
    class_id = t.call("POST", "/classes", json={"course_id": course, "code": "R-01", "organising_unit_id": "P1",
                                                "start_date": "2025-10-06", "capacity": 10}).json["id"]
    t.call("POST", f"/classes/{class_id}/open")
    for m in ("m1", "m2", "m3"):
        assert t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": m}).status_code == 201
    t.call("POST", f"/classes/{class_id}/start")
    t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-10-06", "present": ["m1", "m3"]})
    assert t.call("POST", f"/classes/{class_id}/enrolments/m1/completion", json={"score": 9.2}).status_code == 200
    t.call("POST", f"/classes/{class_id}/enrolments/m2/completion", json={"score": 9.2})
    t.call("POST", f"/classes/{class_id}/enrolments/m3/completion", json={"score": 7})
    t.call("POST", f"/classes/{class_id}/close", json={"on": "2025-10-07"})
    session = t.call("POST", "/dissemination-sessions", json={
        "organising_unit_id": "P1", "topic": "Nghị quyết 18-NQ/TW", "held_on": "2025-10-01",
        "reached": [{"unit_id": "C1", "members_reached": 55}, {"unit_id": "C2", "members_reached": 30}]}).json["id"]
    expected = 1 + 13 + 1  # course registered; class: 11 commands, two of them raise 2 events; a session

    ensure_topics([config.topic("training.events")], partitions=3)
    procs(["-m", "platformkit.run", "relay", "training"], "training-relay")
    msgs = read_topic(config.topic("training.events"), min_count=expected, timeout=45)
    events = [decode(m.value) for m in msgs]
    assert len(events) == expected and len({e.id for e in events}) == expected
    assert all(e.source == "training" for e in events)
    assert all(m.key.decode() == e.subject for m, e in zip(msgs, events))
    by_subject = defaultdict(list)
    for e in events:
        by_subject[e.subject].append(e)
    # one class's events arrive in the order they happened
    assert [e.aggregateversion for e in by_subject[class_id]] == [1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 10, 10, 11]
    types = [e.type for e in by_subject[class_id]]
    assert types[0] == "training.class.planned.v1" and types[-1] == "training.class.closed.v1"

    cert = [e for e in events if e.type == "training.certificate.issued.v1"]
    assert [c.data["member_id"] for c in cert] == ["m1", "m3"]
    c = cert[0].data
    assert c["certificate_no"] == "R-01-0001" and c["grade"] == "excellent"
    assert (c["unit_id"], c["ancestors"], c["is_official"]) == ("C1", ["VN", "HCM", "P1"], True)
    assert (c["class_id"], c["course_id"], c["topic"], c["audience"]) == (class_id, course, "osh", "full_time_officials")
    assert (c["organising_unit_id"], c["organising_ancestors"]) == ("P1", ["VN", "HCM"])
    assert c["start_date"] == "2025-10-06" and c["issued_on"]
    done = [e.data for e in events if e.type == "training.enrolment.completed.v1"]
    assert [d["member_id"] for d in done] == ["m1", "m3"] and done[1]["unit_id"] == "C2"
    failed = [e.data for e in events if e.type == "training.enrolment.not_completed.v1"]
    assert [(d["member_id"], d["reason"], d["attended_days"], d["required_days"]) for d in failed] == [
        ("m2", "attendance", 0, 1)]
    closed = next(e.data for e in events if e.type == "training.class.closed.v1")
    assert (closed["enrolled"], closed["completed"], closed["certificates_issued"]) == (3, 2, 2)
    dis = next(e for e in events if e.type == "training.dissemination.recorded.v1")
    assert dis.subject == session and dis.data["members_reached"] == 85
    assert dis.data["reached"] == [
        {"unit_id": "C1", "ancestors": ["VN", "HCM", "P1"], "members_reached": 55, "identified": 0, "unidentified": 55},
        {"unit_id": "C2", "ancestors": ["VN", "HCM", "P1"], "members_reached": 30, "identified": 0, "unidentified": 30}]
    assert dis.data["organising_ancestors"] == ["VN", "HCM"] and dis.data["held_on"] == "2025-10-01"
    # the relay emptied every outbox
    for coll in ("classes_events", "courses_events", "dissemination_sessions"):
        wait_until(lambda: t.db[coll].count_documents({PENDING: True}) == 0, 30, message=f"{coll} drained")

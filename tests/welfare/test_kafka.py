"""Through the real broker: membership events -> welfare consumer process -> local view -> API
refusals; welfare outbox -> relay process -> welfare.events with the facts reporting needs."""
import pytest

from platformkit import config
from platformkit.envelope import decode
from platformkit.kafka_io import EventPublisher, ensure_topics
from services.welfare.stores import stores
from tests.support.infra import read_topic, wait_until
from tests.welfare.conftest import member_event, token, tree_events
from tests.welfare.test_api import case_body, create_programme

pytestmark = pytest.mark.integration

ANC = ["central", "prov", "commune"]


def test_member_events_reach_the_view_and_a_leaver_is_refused_then_events_flow_out(client, db, procs):
    membership, welfare = config.topic("membership.events"), config.topic("welfare.events")
    ensure_topics([membership, welfare], partitions=3)
    publisher = EventPublisher()
    publisher.publish(membership, tree_events() + [
        member_event("admitted", "m-k", "cdcs", ANC, 1, admitted_on="2024-05-01", date_of_birth="1995-01-01",
                     method="individual"),
        member_event("approved", "m-k", "cdcs", ANC, 2, approved_on="2024-05-10", approved_by_unit_id="commune")])
    consumer = procs(["-m", "platformkit.run", "consumer", "welfare", "membership-view"], "welfare-consumer")
    members = db["view_members"]
    wait_until(lambda: (members.find_one({"_id": "m-k"}) or {}).get("status") == "active", 60,
               message="m-k active in welfare's view")
    wait_until(lambda: db["view_units"].count_documents({}) == 7, 30, message="7 units in the view")

    prog = create_programme(client)
    first = client.post("/api/v1/cases", headers=token("cdcs"), json=case_body(prog["id"], member="m-k"))
    assert first.status_code == 201, first.json

    publisher.publish(membership, [member_event("left", "m-k", "cdcs", ANC, 3, left_on="2025-03-10",
                                                reason="resigned")])
    wait_until(lambda: members.find_one({"_id": "m-k"})["status"] == "left", 60, message="m-k left")
    cases_before = db.cases.count_documents({})
    refused = client.post("/api/v1/cases", headers=token("cdcs"), json=case_body(prog["id"], member="m-k"))
    assert refused.status_code == 422 and "member_id" in refused.json["errors"]
    assert db.cases.count_documents({}) == cases_before
    # a redelivered old event does not bring the member back
    publisher.publish(membership, [member_event("approved", "m-k", "cdcs", ANC, 2, approved_on="2024-05-10",
                                                approved_by_unit_id="commune")])
    publisher.close()

    approved = client.post(f"/api/v1/cases/{first.json['id']}/approve", headers=token("commune"),
                           json={"approved_on": "2025-03-02"})
    assert approved.status_code == 200
    procs(["-m", "platformkit.run", "relay", "welfare"], "welfare-relay")
    msgs = read_topic(welfare, min_count=3, timeout=60)
    events = [decode(m.value) for m in msgs]
    by_type = {e.type: e for e in events}
    assert set(by_type) == {"welfare.programme.created.v1", "welfare.case.requested.v1",
                            "welfare.case.approved.v1"}
    assert all(e.source == "welfare" for e in events)
    ok = by_type["welfare.case.approved.v1"]
    assert ok.subject == first.json["id"] and ok.aggregateversion == 2
    assert {k: ok.data[k] for k in ("programme_id", "programme_kind", "amount", "member_id", "unit_id",
                                    "ancestors", "approved_by_unit_id", "approved_level", "approved_on")} == {
        "programme_id": prog["id"], "programme_kind": "hardship_visit", "amount": 2_000_000, "member_id": "m-k",
        "unit_id": "cdcs", "ancestors": ANC, "approved_by_unit_id": "commune", "approved_level": 3,
        "approved_on": "2025-03-02"}
    assert by_type["welfare.programme.created.v1"].data["budget"] == 10_000_000
    # one case's events share a partition (key = case id), in order
    case_msgs = [m for m in msgs if m.key == first.json["id"].encode()]
    assert [decode(m.value).type for m in case_msgs] == ["welfare.case.requested.v1", "welfare.case.approved.v1"]
    wait_until(lambda: db.cases.count_documents({"outbox_pending": True}) == 0, 30, message="outbox drained")
    assert db["view_members"].find_one({"_id": "m-k"})["status"] == "left"
    assert consumer.alive()


def test_a_unit_move_carries_cases_into_the_new_subtree(client, db, procs):
    """Scope and subtree lists follow today's tree after membership.unit.moved."""
    from platformkit.envelope import new_event
    membership = config.topic("membership.events")
    ensure_topics([membership], partitions=3)
    publisher = EventPublisher()
    publisher.publish(membership, tree_events())
    procs(["-m", "platformkit.run", "consumer", "welfare", "membership-view"], "welfare-consumer")
    wait_until(lambda: (db["view_members"].find_one({"_id": "m-active"}) or {}).get("status") == "active", 60,
               message="view seeded")
    prog = create_programme(client, unit="central")
    case = client.post("/api/v1/cases", headers=token("cdcs"), json=case_body(prog["id"])).json
    assert client.get("/api/v1/cases", headers=token("prov2")).json["items"] == []
    publisher.publish(membership, [new_event("membership", "membership.unit.moved.v1", "commune", {
        "unit_id": "commune", "old_parent_id": "prov", "parent_id": "prov2", "old_ancestors": ["central", "prov"],
        "ancestors": ["central", "prov2"], "effective_date": "2025-07-01"}, 2)])
    publisher.close()
    wait_until(lambda: db.cases.find_one({"_id": case["id"]})["ancestors"] == ["central", "prov2", "commune"], 60,
               message="case ancestors follow the move")
    assert [c["id"] for c in client.get("/api/v1/cases", headers=token("prov2")).json["items"]] == [case["id"]]
    assert client.get(f"/api/v1/cases/{case['id']}", headers=token("prov")).status_code == 403
    assert stores().db.name == db.name

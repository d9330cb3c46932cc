"""Membership as real processes: gunicorn API + outbox relay -> Kafka. Consumers learn everything
they need from the events, including a unit moving with its members under a new parent."""
import pytest
import requests

from platformkit import config
from platformkit.auth import mint
from platformkit.envelope import decode
from platformkit.kafka_io import ensure_topics
from tests.support.infra import free_port, gunicorn_args, read_topic, wait_http, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_events_reach_kafka_and_tell_consumers_of_a_move(isolated, procs):
    topic = config.topic("membership.events")
    ensure_topics([topic], partitions=3)
    port = free_port()
    procs(gunicorn_args('platformkit.run:app("membership")', port), "membership-api")
    procs(["-m", "platformkit.run", "relay", "membership"], "membership-relay")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/readyz", 60)
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + mint("e2e", "*", ["admin"])

    def post(path, body):
        r = s.post(base + "/api/v1" + path, json=body, timeout=10)
        assert r.status_code in (200, 201), r.text
        return r.json()

    vn = post("/units", {"name": "TLĐ", "code": "TLD", "kind": "central", "level": 1})
    hcm = post("/units", {"name": "LĐLĐ TP.HCM", "code": "HCM", "kind": "province", "level": 2, "parent_id": vn["id"]})
    hn = post("/units", {"name": "LĐLĐ Hà Nội", "code": "HN", "kind": "province", "level": 2, "parent_id": vn["id"]})
    commune = post("/units", {"name": "CĐ phường Sài Gòn", "code": "SG", "kind": "commune", "level": 3,
                              "parent_id": hcm["id"]})
    cdcs = post("/units", {"name": "CĐCS May Việt", "code": "SG1", "kind": "cdcs", "level": 4, "sector": "non_state",
                           "parent_id": commune["id"], "founding": {
                               "method": "new_method", "founding_member_count": 6, "founding_group": ["A", "B", "C"],
                               "decision_no": "01/QĐ", "decision_date": "2025-01-10"}})
    members = [post(f"/units/{cdcs['id']}/members", {"full_name": f"Đoàn viên {i}", "citizen_id": f"07919000010{i}",
                                                      "date_of_birth": "1990-01-01", "gender": "female"})
               for i in range(3)]
    post(f"/units/{commune['id']}/move", {"parent_id": hn["id"], "effective_date": "2025-07-01"})
    expected = 5 + 1 + 3 + 1  # 5 unit.created, cdcs.founded, 3 admitted, 1 moved

    def events():
        return [decode(m.value) for m in read_topic(topic, min_count=expected, timeout=20)]
    evs = wait_until(lambda: (lambda e: e if len(e) >= expected else None)(events()), 60, message="events on Kafka")
    types = sorted(e.type for e in evs)
    assert types.count("membership.member.admitted.v1") == 3
    assert "membership.cdcs.founded.v1" in types
    moved = [e for e in evs if e.type == "membership.unit.moved.v1"]
    assert len(moved) == 1 and moved[0].subject == commune["id"]
    assert moved[0].data["old_ancestors"] == [vn["id"], hcm["id"]]
    assert moved[0].data["ancestors"] == [vn["id"], hn["id"]]
    admitted = [e for e in evs if e.type == "membership.member.admitted.v1"]
    # each member event names its CĐCS and the ancestors at that moment: a consumer that knows
    # the CĐCS is below the moved commune rewrites its path; the members need no events of their own
    assert {e.data["unit_id"] for e in admitted} == {cdcs["id"]}
    assert all(e.data["ancestors"] == [vn["id"], hcm["id"], commune["id"]] for e in admitted)
    assert {e.subject for e in admitted} == {m["id"] for m in members}
    # unique ids; envelopes keyed by aggregate
    assert len({e.id for e in evs}) == len(evs)

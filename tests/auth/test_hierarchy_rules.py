"""The attacks of one CĐCS officer's token on the hierarchy (membership and welfare, real database):
founding a CĐCS under its own CĐCS to become "the level above", restructuring its own unit,
transferring a member out of its subtree, deciding on its own cases. Every one is refused and
writes nothing; the same act by the level above passes (the positive control)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.auth.test_authorisation_matrix import differences, snapshot
from tests.support.seed_all import SEEDERS, bearer, founding, make_app, seed_membership

pytestmark = pytest.mark.integration
API = "/api/v1"


@pytest.fixture
def world(isolated):
    s = SimpleNamespace()
    seed_membership(s)
    s.client = make_app("membership").test_client()
    return s


def call(s, method, path, token, body=None):
    return s.client.open(API + path, method=method, json=body, headers=token)


def refused(s, method, path, token, body, statuses=(403, 422), service="membership"):
    before = snapshot(service)
    resp = call(s, method, path, token, body)
    assert resp.status_code in statuses, (method, path, resp.status_code, resp.get_json())
    assert not differences(before, snapshot(service)), f"{method} {path} wrote despite {resp.status_code}"
    return resp


def cdcs_body(code, parent):
    return {"name": f"CĐCS {code}", "code": code, "kind": "cdcs", "level": 5, "parent_id": parent,
            "sector": "non_state", "effective_date": "2024-01-01", "founding": founding(code)}


def test_a_cdcs_cannot_be_founded_under_a_cdcs_by_anyone(world):
    s = world
    cdcs_officer = bearer(s.sa, ("officer",))
    cdcs_admin = bearer(s.sa, ("admin", "officer"))
    operator = bearer("*", ("admin",))
    refused(s, "POST", "/units", cdcs_officer, cdcs_body("A-1-001-X", s.sa), statuses=(403,))  # no structure role
    r = refused(s, "POST", "/units", cdcs_admin, cdcs_body("A-1-001-Y", s.sa), statuses=(422,))
    assert "parent_id" in r.get_json()["errors"]
    refused(s, "POST", "/units", operator, cdcs_body("A-1-001-Z", s.sa), statuses=(422,))  # a rule, not a role
    # what a CĐCS may hold: a section (công đoàn bộ phận), which approves nothing
    section = call(s, "POST", "/units", cdcs_admin, {"name": "Công đoàn bộ phận Xưởng May", "code": "A-1-001-BP1",
                                                     "kind": "department", "level": 5, "parent_id": s.sa,
                                                     "effective_date": "2024-01-01"})
    assert section.status_code == 201, section.get_json()
    # and the commune (the level above) founds CĐCS
    ok = call(s, "POST", "/units", bearer(s.ca, ("admin",)), {**cdcs_body("A-1-009", s.ca), "level": 4})
    assert ok.status_code == 201, ok.get_json()


def test_a_cdcs_officer_cannot_approve_card_or_confirm_for_its_own_cdcs(world):
    s = world
    own = bearer(s.sa, ("admin", "officer"))
    refused(s, "POST", f"/members/{s.m_admitted}/approve", own, {}, statuses=(422,))
    refused(s, "POST", f"/members/{s.ma}/card", own, {}, statuses=(422,))
    assert call(s, "POST", f"/members/{s.m_admitted}/approve", bearer(s.ca, ("officer",)), {}).status_code == 200


@pytest.mark.parametrize("action, body", [
    ("dissolve", {}), ("rename", {"name": "<img src=x onerror=alert(1)>"}),
    ("move", "parent"), ("merge", "into"),
])
def test_no_unit_restructures_itself(world, action, body):
    s = world
    if body == "parent":
        body = {"parent_id": s.ca2}
    elif body == "into":
        body = {"into_unit_id": s.sa2}
    # the CĐCS's own admin holds the structure role and its unit is in scope, and is still refused
    # (422 by the rule; 403 where the destination also lies outside its subtree)
    self_refusal = (422,) if action in ("dissolve", "rename") else (403, 422)
    refused(s, "POST", f"/units/{s.sd}/{action}", bearer(s.sd, ("admin", "officer")), body, statuses=self_refusal)
    # a commune restructuring itself: refused too
    commune_body = {"parent_id": s.pa} if action == "move" else ({"into_unit_id": s.ca2} if action == "merge" else body)
    refused(s, "POST", f"/units/{s.ca}/{action}", bearer(s.ca, ("admin",)), commune_body, statuses=self_refusal)
    # an officer (no structure role) of the level above: 403
    refused(s, "POST", f"/units/{s.sd}/{action}", bearer(s.ca, ("officer",)), body, statuses=(403,))


def test_the_level_above_restructures(world):
    s = world
    above = bearer(s.ca, ("admin",))
    assert call(s, "POST", f"/units/{s.sd}/dissolve", above, {}).status_code == 200
    r = call(s, "POST", f"/units/{s.smv}/rename", above, {"name": "CĐCS Chi nhánh mới A"})
    assert r.status_code == 200, r.get_json()


def test_a_transfer_out_of_the_callers_subtree_is_a_request_the_receiving_side_decides(world):
    s = world
    cdcs = bearer(s.sa, ("officer",))
    # sa2 is outside the CĐCS officer's subtree: a request, which needs the transfer letter
    r = refused(s, "POST", f"/members/{s.m_transfer}/transfer", cdcs, {"to_unit_id": s.sa2}, statuses=(400,))
    assert "letter_no" in r.get_json()["errors"]
    letter = {"letter_no": "12/GGT", "letter_date": "2025-10-01"}
    r = call(s, "POST", f"/members/{s.m_transfer}/transfer", cdcs, {"to_unit_id": s.sa2, **letter})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["unit_id"] == s.sa  # a request, not a move
    assert r.get_json()["pending_transfer"]["to_unit_id"] == s.sa2
    # the sender cannot accept its own request; another province's officer neither
    for outsider in (cdcs, bearer(s.pb, ("officer",))):
        refused(s, "POST", f"/units/{s.sa2}/transfer-requests/{s.m_transfer}/accept", outsider, {}, statuses=(403,))
    # while pending: no second transfer, no leaving (422 naming the field)
    above = bearer(s.ca, ("officer",))
    for path, body in ((f"/members/{s.m_transfer}/transfer", {"to_unit_id": s.smv}),
                       (f"/members/{s.m_transfer}/leave", {"reason": "resigned"})):
        r = refused(s, "POST", path, above, body, statuses=(422,))
        assert "pending_transfer" in r.get_json()["errors"]
    receiving = bearer(s.sa2, ("officer",))
    listed = call(s, "GET", f"/units/{s.sa2}/transfer-requests", receiving)
    assert [m["id"] for m in listed.get_json()["items"]] == [s.m_transfer]
    ok = call(s, "POST", f"/units/{s.sa2}/transfer-requests/{s.m_transfer}/accept", receiving, {"on": "2025-10-05"})
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["unit_id"] == s.sa2 and ok.get_json().get("pending_transfer") is None
    assert ok.get_json()["transfer_letter"]["letter_no"] == "12/GGT"
    # inside the caller's subtree a transfer stays immediate
    ok = call(s, "POST", f"/members/{s.m_transfer}/transfer", above, {"to_unit_id": s.smv})
    assert ok.status_code == 200 and ok.get_json()["unit_id"] == s.smv


def test_a_cdcs_cannot_decide_its_own_welfare_case(isolated):
    s = SimpleNamespace()
    seed_membership(s)
    app = SEEDERS["welfare"](s)
    client = app.test_client()
    before = snapshot("welfare")
    r = client.post(f"{API}/cases/{s.case_approve}/approve", json={}, headers=bearer(s.sa, ("admin", "officer")))
    assert r.status_code == 422 and s.sa not in r.get_data(as_text=True), r.get_json()
    assert not differences(before, snapshot("welfare"))

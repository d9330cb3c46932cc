"""Dissemination sessions that name the members they reached (the API on the real database):
each member once per session, per unit counts and the CĐCS reached derived from the members, head
counts of attendees not identified kept apart (lượt only), refusals naming `member_ids`."""
import pytest

from services.training.stores import SESSIONS

pytestmark = pytest.mark.integration

SESSION = {"organising_unit_id": "P1", "topic": "Quán triệt Nghị quyết 02-NQ/TW", "held_on": "2025-10-01"}


def test_a_session_names_its_members_and_derives_units_and_cdcs(training):
    t = training
    r = t.call("POST", "/dissemination-sessions", unit="P1", json={
        **SESSION, "member_ids": ["m1", "m3", "m2", "m1", "m5"],  # m1 twice: reached once
        "reached": [{"unit_id": "C1", "members_reached": 10}]})
    assert r.status_code == 201, r.json
    s = r.json
    assert s["member_ids"] == ["m1", "m2", "m3", "m5"] and s["members_identified"] == 4
    assert s["reached"] == [
        {"unit_id": "C1", "ancestors": ["VN", "HCM", "P1"], "members_reached": 12, "identified": 2, "unidentified": 10},
        {"unit_id": "C2", "ancestors": ["VN", "HCM", "P1"], "members_reached": 2, "identified": 2, "unidentified": 0}]
    assert (s["members_reached"], s["unidentified"], s["units_reached"]) == (14, 10, 2)
    assert s["cdcs_ids"] == ["C1", "C2"] and s["cdcs_reached"] == 2
    doc = t.db[SESSIONS].find_one({"_id": s["id"]})
    types = [e["type"] for e in doc["outbox"]]
    assert types == ["training.dissemination.recorded.v1"] + ["training.dissemination.member_reached.v1"] * 4 + \
        ["training.dissemination.cdcs_reached.v1"] * 2
    assert {e["subject"] for e in doc["outbox"]} == {s["id"]}
    assert {e["aggregateversion"] for e in doc["outbox"]} == {1}
    reached = [e["data"] for e in doc["outbox"] if e["type"].endswith("member_reached.v1")]
    assert [(d["member_id"], d["unit_id"], d["cdcs_id"], d["held_on"]) for d in reached] == [
        ("m1", "C1", "C1", "2025-10-01"), ("m2", "C1", "C1", "2025-10-01"), ("m3", "C2", "C2", "2025-10-01"),
        ("m5", "C2", "C2", "2025-10-01")]
    assert t.call("GET", f"/dissemination-sessions/{s['id']}", unit="C1").status_code == 403  # organiser's subtree


def test_only_active_members_of_the_organisers_subtree_are_reached_and_refusals_write_nothing(training):
    t = training
    r = t.call("POST", "/dissemination-sessions", unit="P1", json={
        **SESSION, "member_ids": ["m1", "ghost", "gone", "newbie", "m9"]})
    assert r.status_code == 422 and list(r.json["errors"]) == ["member_ids"], r.json
    msg = r.json["message"]
    assert msg == ("ghost: not known to training; gone: left the union; newbie: not an active member yet; "
                   "m9: outside the organising unit's subtree")
    assert "C3" not in msg and "P2" not in msg  # names only what the caller typed
    r = t.call("POST", "/dissemination-sessions", unit="P1", json={**SESSION, "member_ids": []})
    assert r.status_code == 400 and "member_ids" in r.json["errors"]
    r = t.call("POST", "/dissemination-sessions", unit="P1", json={**SESSION, "member_ids": [""]})
    assert r.status_code == 400 and "member_ids" in r.json["errors"]
    r = t.call("POST", "/dissemination-sessions", unit="P1", json={**SESSION, "member_ids": ["m1"] * 2001})
    assert r.status_code == 400 and "member_ids" in r.json["errors"]
    assert t.db[SESSIONS].count_documents({}) == 0
    # the province reaches members of both communes; the commune P2 only its own
    assert t.call("POST", "/dissemination-sessions", json={**SESSION, "organising_unit_id": "HCM",
                                                           "member_ids": ["m1", "m9"]}).status_code == 201
    assert t.call("POST", "/dissemination-sessions", unit="P2", json={**SESSION, "organising_unit_id": "P2",
                                                                       "member_ids": ["m9"]}).status_code == 201
    assert t.call("POST", "/dissemination-sessions", unit="P2", json={
        **SESSION, "organising_unit_id": "P2", "member_ids": ["m1"]}).status_code == 422


def test_head_counts_alone_still_record_a_session_that_identifies_nobody(training):
    t = training
    r = t.call("POST", "/dissemination-sessions", unit="P1", json={
        **SESSION, "reached": [{"unit_id": "C1", "members_reached": 40}]})
    assert r.status_code == 201
    assert (r.json["members_reached"], r.json["members_identified"], r.json["cdcs_reached"]) == (40, 0, 0)
    doc = t.db[SESSIONS].find_one({"_id": r.json["id"]})
    assert [e["type"] for e in doc["outbox"]] == ["training.dissemination.recorded.v1"]

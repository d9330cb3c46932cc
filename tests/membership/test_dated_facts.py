"""Every dated fact counted on its own date: a profile change effective on a day of its own, the
Vietnamese day as the default, and what reporting makes of a change and of a refused admission
(the pure projection, services/reporting/projection/membership.py)."""
from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from platformkit import mongo
from platformkit.envelope import new_event
from services.reporting.projection import Delta, project_membership

pytestmark = pytest.mark.integration


from tests.membership.aggregates import db  # noqa: E402 - aggregate documents with their outboxes


def test_a_profile_change_carries_its_effective_date(api, tree, monkeypatch):
    from services.membership import service
    m = api.ok(api.admit(tree["s1"], admitted_on="2025-01-06"))
    api.ok(api.post(f"/members/{m['id']}/approve", {"on": "2025-01-20"}, as_unit=tree["c1"]))
    api.ok(api.patch(f"/members/{m['id']}", {"is_official": True, "on": "2025-03-03"}))
    ev = db().members.find_one({"_id": m["id"]})["outbox"][-1]
    assert ev["data"]["effective_date"] == "2025-03-03" and ev["data"]["changed"] == ["is_official"]
    monkeypatch.setattr(service, "today", lambda: date(2025, 6, 1))
    api.ok(api.patch(f"/members/{m['id']}", {"phone": "0909000111"}))
    assert db().members.find_one({"_id": m["id"]})["outbox"][-1]["data"]["effective_date"] == "2025-06-01"
    before = db().members.find_one({"_id": m["id"]})
    r = api.patch(f"/members/{m['id']}", {"phone": "0909000222", "on": "2025-06-02"})  # tomorrow in Vietnam
    assert r.status_code == 400 and "on" in r.get_json()["errors"]
    r = api.patch(f"/members/{m['id']}", {"phone": "0909000222", "on": "01/06/2025"})
    assert r.status_code == 400 and "on" in r.get_json()["errors"]
    assert db().members.find_one({"_id": m["id"]}) == before


def test_the_default_day_is_the_vietnamese_day_whatever_the_server_zone(monkeypatch):
    from platformkit import clock
    from services.membership import service

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            utc = datetime(2025, 6, 30, 18, 30, tzinfo=timezone.utc)  # 01:30 on 1 July in Hà Nội
            return utc.astimezone(tz) if tz else utc.replace(tzinfo=None)
    monkeypatch.setattr(clock, "datetime", Clock)  # the platform's one clock (platformkit.clock)
    assert service.today() == date(2025, 7, 1)


ANCESTORS = ["vn", "hcm", "c1"]


def ev(kind, version, time, **data):
    facts = {"member_id": "m-1", "unit_id": "s1", "ancestors": ANCESTORS, "full_name": "Nguyễn Thị Hà",
             "gender": "female", "is_official": False}
    e = new_event("membership", f"membership.member.{kind}.v1", "m-1", {**facts, **data}, version)
    return replace(e, time=f"{time}T03:00:00.000Z")


def fold(events):
    state, deltas = None, []
    for e in events:
        fx = project_membership(e, state)
        deltas += fx.deltas
        state = fx.new_state if fx.new_state is not None else state
    return deltas, state


def test_reporting_counts_a_profile_change_in_the_month_it_took_effect():
    admitted = ev("admitted", 1, "2025-01-06", admitted_on="2025-01-06", date_of_birth="1990-05-17", method="individual")
    approved = ev("approved", 2, "2025-01-20", approved_on="2025-01-20", approved_by_unit_id="c1")
    official = ev("profile_updated", 3, "2025-05-14", is_official=True, changed=["is_official"],
                  effective_date="2025-03-03")  # written in May, effective in March
    deltas, _ = fold([admitted, approved, official])
    assert Delta("s1", "officials.total", "2025-03", 1) in deltas
    assert not [d for d in deltas if d.month == "2025-05"]
    # an event written before effective dates existed: the month it was written
    legacy = ev("profile_updated", 3, "2025-05-14", is_official=True, changed=["is_official"])
    assert Delta("s1", "officials.total", "2025-05", 1) in fold([admitted, approved, legacy])[0]
    # back-dated before the approval: counted from the month the member began to count
    early = ev("profile_updated", 3, "2025-05-14", is_official=True, changed=["is_official"],
               effective_date="2024-12-01")
    deltas, _ = fold([admitted, approved, early])
    assert Delta("s1", "officials.total", "2025-01", 1) in deltas and not [d for d in deltas if d.month == "2024-12"]


def test_reporting_reverses_the_admission_of_a_refused_member():
    admitted = ev("admitted", 1, "2025-02-03", admitted_on="2025-02-03", date_of_birth="1990-05-17", method="individual")
    refused = ev("refused", 2, "2025-04-01", admitted_on="2025-02-03", refused_on="2025-04-01", reason="Không đủ điều kiện",
                 refused_by_unit_id="c1")
    deltas, state = fold([admitted, refused])
    assert deltas == [Delta("s1", "members.admitted", "2025-02", 1), Delta("s1", "members.admitted", "2025-02", -1)]
    assert state["status"] == "refused"
    # never active: a later event (a profile correction) adds nothing to the stock
    fix = ev("profile_updated", 3, "2025-04-02", full_name="Nguyễn Thị Hà", changed=["full_name"], effective_date="2025-04-02")
    assert fold([admitted, refused, fix])[0] == deltas
    # redelivered: counted once
    fx = project_membership(refused, state)
    assert fx.deltas == []

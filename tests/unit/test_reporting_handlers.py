"""reporting's command handlers (targets, the periodic report workflow, deadlines) on the in-memory
store (platformkit/memory_store.py: the real Repository and the real periodic step store over it).
Reporting's hierarchy is written straight into the live generation's units, as the projector would.

    VN (central) > HCM (province) > HCM-Q1 (commune)        VN > HN (province)
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from platformkit.auth import Caller
from platformkit.errors import Forbidden, InvalidInput, NotFound, RuleViolated
from platformkit.memory_store import MemoryDatabase
from services.reporting import commands as c
from services.reporting import service
from services.reporting.periodic import service as periodic
from services.reporting.periodic import store as periodic_store
from services.reporting.stores import TARGET_INDEXES, Stores

UNITS = [  # id, parent, ancestors, kind, level
    ("VN", None, [], "central", 1), ("HCM", "VN", ["VN"], "province", 2),
    ("HCM-Q1", "HCM", ["VN", "HCM"], "commune", 3), ("HN", "VN", ["VN"], "province", 2)]


def officer(unit: str, roles=("officer",)) -> Caller:
    return Caller(subject=f"officer@{unit}", roles=tuple(roles), unit_id=unit)


VN, HCM, Q1, HN = (officer(u) for u in ("VN", "HCM", "HCM-Q1", "HN"))


@pytest.fixture
def stores() -> Stores:
    db = MemoryDatabase().with_indexes(TARGET_INDEXES)
    st = Stores(db)
    for uid, parent, ancestors, kind, level in UNITS:
        st.live().units.insert_one({"_id": uid, "parent_id": parent, "ancestors": ancestors, "kind": kind,
                                    "level": level, "name": f"Công đoàn {uid}", "code": uid, "status": "active"})
    periodic_store.setup(db)
    return st


def snapshot(stores: Stores) -> dict:
    names = ("targets", "targets_events", periodic_store.REPORTS, periodic_store.STEPS, periodic_store.SETTINGS)
    return {n: sorted(map(repr, stores.db[n].find())) for n in names}


def step_events(stores: Stores, report_id: str) -> list[str]:
    steps = sorted(stores.db[periodic_store.STEPS].find({"report": report_id}), key=lambda d: d["step_no"])
    return [e["type"] for s in steps for e in s.get("outbox") or []]


# ---------------------------------------------------------------- targets

def test_set_target_assigns_then_changes_through_the_repository(stores):
    first = service.set_target(c.SetTarget("HCM-Q1", "members.admitted", 2025, 40.0), HCM, stores)
    assert (first["unit"], first["value"], first["assigned_by"], first["version"]) == ("HCM-Q1", 40, "HCM", 1)
    assert isinstance(first["value"], int)  # a count's target is whole
    again = service.set_target(c.SetTarget("HCM-Q1", "members.admitted", 2025, 55.0), VN, stores)
    assert (again["value"], again["assigned_by"], again["version"]) == (55, "VN", 2)
    assert stores.targets.get("HCM-Q1|members.admitted|2025")["value"] == 55
    listed = service.list_targets("HCM", {"year": 2025, "limit": 10}, HCM, stores)["items"]
    assert [(t["unit"], t["indicator"], t["value"]) for t in listed] == [("HCM-Q1", "members.admitted", 55)]
    assert service.list_targets("HCM", {"year": 2024, "limit": 10}, HCM, stores)["items"] == []


def test_set_target_refusals_write_nothing(stores):
    before = snapshot(stores)
    with pytest.raises(Forbidden):  # a unit does not set its own target
        service.set_target(c.SetTarget("HCM-Q1", "members.admitted", 2025, 40), Q1, stores)
    with pytest.raises(Forbidden):  # outside the caller's subtree
        service.set_target(c.SetTarget("HCM-Q1", "members.admitted", 2025, 40), HN, stores)
    with pytest.raises(Forbidden):
        service.set_target(c.SetTarget("HCM-Q1", "members.admitted", 2025, 40), officer("HCM", ("viewer",)), stores)
    with pytest.raises(RuleViolated) as pct:
        service.set_target(c.SetTarget("HCM-Q1", "dues.collected_pct", 2025, 120), HCM, stores)
    assert pct.value.field == "value"
    with pytest.raises(NotFound):
        service.set_target(c.SetTarget("HCM-X9", "members.admitted", 2025, 40), HCM, stores)
    with pytest.raises(Forbidden):
        service.list_targets("HCM", {"year": 2025, "limit": 10}, HN, stores)
    assert snapshot(stores) == before


# ---------------------------------------------------------------- periodic reports

def test_a_report_is_saved_submitted_approved_and_reopened(stores):
    saved = periodic.save(c.SaveReport("HCM-Q1", "2025-H1", {"workforce": 100, "workforce_members": 60}), Q1, stores)
    assert (saved["status"], saved["step_no"], saved["frozen"]) == ("draft", 1, False)
    submitted = periodic.save(c.SubmitReport("HCM-Q1", "2025-H1", step_no=1), Q1, stores)
    assert (submitted["status"], submitted["step_no"], submitted["frozen"]) == ("submitted", 2, True)
    rows = {r["code"]: r for r in submitted["rows"]}
    assert (rows["workforce"]["own"], rows["workforce_members"]["value"]) == (100, 60)  # kept from the draft
    approved = periodic.decide(c.ApproveReport("HCM-Q1", "2025-H1"), HCM, stores)
    assert (approved["status"], approved["approved_by"]) == ("approved", "HCM")
    # the province's own report now sums its approved child's entered figures
    province = periodic.save(c.SaveReport("HCM", "2025-H1", {"workforce": 10}), HCM, stores)
    assert {r["code"]: r["value"] for r in province["rows"]}["workforce"] == 110
    reopened = periodic.decide(c.ReopenReport("HCM-Q1", "2025-H1", "sai số liệu"), VN, stores)
    assert (reopened["status"], reopened["returned_reason"]) == ("returned", "sai số liệu")
    assert step_events(stores, "2025-H1|HCM-Q1") == [
        "reporting.report.saved.v1", "reporting.report.submitted.v1", "reporting.report.approved.v1",
        "reporting.report.reopened.v1"]


def test_a_submitted_report_is_returned_with_a_reason(stores):
    periodic.save(c.SubmitReport("HCM-Q1", "2025-H1", {"initiatives": 3}), Q1, stores)
    before = snapshot(stores)
    with pytest.raises(InvalidInput) as no_reason:
        periodic.decide(c.ReturnReport("HCM-Q1", "2025-H1"), HCM, stores)
    assert no_reason.value.field == "reason" and snapshot(stores) == before
    returned = periodic.decide(c.ReturnReport("HCM-Q1", "2025-H1", " thiếu số liệu "), HCM, stores)
    assert (returned["status"], returned["returned_reason"]) == ("returned", "thiếu số liệu")
    assert step_events(stores, "2025-H1|HCM-Q1")[-1] == "reporting.report.returned.v1"
    again = periodic.save(c.SubmitReport("HCM-Q1", "2025-H1", {"initiatives": 4}, step_no=2), Q1, stores)
    assert again["status"] == "submitted"


def test_report_refusals_write_nothing(stores):
    periodic.save(c.SaveReport("HCM-Q1", "2025-H1", {"workforce": 100}), Q1, stores)
    before = snapshot(stores)
    with pytest.raises(RuleViolated) as stale:  # the step the caller read is not the report's
        periodic.save(c.SaveReport("HCM-Q1", "2025-H1", {"workforce": 90}, step_no=0), Q1, stores)
    assert stale.value.field == "step_no"
    with pytest.raises(Forbidden):  # outside the caller's subtree
        periodic.save(c.SaveReport("HCM-Q1", "2025-H1", {"workforce": 90}), HN, stores)
    with pytest.raises(Forbidden):  # a unit saves only its own report
        periodic.save(c.SaveReport("HCM-Q1", "2025-H1", {"workforce": 90}), HCM, stores)
    with pytest.raises(InvalidInput) as bad:  # more members among the workforce than the workforce
        periodic.save(c.SaveReport("HCM-Q1", "2025-H1", {"workforce": 10, "workforce_members": 11}), Q1, stores)
    assert bad.value.field.startswith("entered")
    with pytest.raises(InvalidInput):
        periodic.save(c.SaveReport("HCM-Q1", "2025-H3", {"workforce": 90}), Q1, stores)
    with pytest.raises(RuleViolated) as children:  # HCM-Q1's report is not approved yet
        periodic.save(c.SubmitReport("HCM", "2025-H1", {"workforce": 5}), HCM, stores)
    assert children.value.field == "children"
    with pytest.raises(RuleViolated):  # a draft is not approved
        periodic.decide(c.ApproveReport("HCM-Q1", "2025-H1"), HCM, stores)
    with pytest.raises(RuleViolated):  # nothing submitted
        periodic.decide(c.ApproveReport("HN", "2025-H1"), VN, stores)
    assert snapshot(stores) == before
    periodic.save(c.SubmitReport("HCM-Q1", "2025-H1"), Q1, stores)
    before = snapshot(stores)
    with pytest.raises(Forbidden):  # nobody approves their own report
        periodic.decide(c.ApproveReport("HCM-Q1", "2025-H1"), Q1, stores)
    with pytest.raises(Forbidden):
        periodic.decide(c.ApproveReport("HCM-Q1", "2025-H1"), HN, stores)
    assert snapshot(stores) == before


def test_set_deadlines(stores):
    days = {"half_year": {"3": 7}}
    out = periodic.set_deadlines(c.SetDeadlines("HCM", days), HCM, stores)
    assert out["own"] is True and out["due_days"]["half_year"]["3"] == 7
    assert stores.db[periodic_store.SETTINGS].find_one({"_id": "HCM"})["set_by"] == "officer@HCM"
    before = snapshot(stores)
    with pytest.raises(Forbidden):
        periodic.set_deadlines(c.SetDeadlines("HCM", days), HN, stores)
    with pytest.raises(InvalidInput):
        periodic.set_deadlines(c.SetDeadlines("HCM", {"weekly": {"3": 7}}), HCM, stores)
    assert snapshot(stores) == before
    # the commune's report is due 7 days after the half-year's cut-off, as its province set
    report = periodic.save(c.SaveReport("HCM-Q1", "2025-H1", {"workforce": 1}), Q1, stores)
    assert date.fromisoformat(report["due_date"]) == date.fromisoformat(report["cutoff"]) + timedelta(days=7)

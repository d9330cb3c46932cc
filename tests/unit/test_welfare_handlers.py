"""welfare's handlers on the in-memory store (platformkit/memory_store.py, running the real
Repository): every command's happy path with the events it committed, a rule refusal, a scope
refusal, a stale version and the idempotent replays, each refusal writing nothing. No broker, no
server. The org tree and members come from tests/welfare/conftest.py (applied to the local view):

    central > prov > commune > cdcs (m-active, m-left)      central > prov2 > commune2 > cdcs2
"""
from __future__ import annotations

from datetime import date

import pytest

from platformkit.auth import Caller
from platformkit.envelope import new_event
from platformkit.errors import Conflict, Forbidden, NotFound, RuleViolated, StaleVersion
from platformkit.memory_store import MemoryDatabase
from services.welfare import commands as c
from services.welfare import service
from services.welfare.stores import INDEXES, Stores
from tests.welfare.conftest import apply, tree_events


def officer(unit: str, roles=("officer",), subject: str | None = None) -> Caller:
    return Caller(subject=subject or f"officer@{unit}", roles=tuple(roles), unit_id=unit)


PROV, COMMUNE, CDCS, PROV2, CDCS2 = (officer(u) for u in ("prov", "commune", "cdcs", "prov2", "cdcs2"))


@pytest.fixture
def stores() -> Stores:
    db = MemoryDatabase().with_indexes(INDEXES)
    apply(db, tree_events())
    return Stores(db)


def snapshot(stores: Stores) -> dict:
    """Everything welfare writes, to prove a refusal wrote nothing."""
    names = ("programmes", "cases", "programmes_events", "cases_events", "budget_ledger", "claims")
    return {n: sorted(map(repr, stores.db[n].find())) for n in names}


def events(stores: Stores, coll: str, _id: str) -> list[str]:
    changes = sorted(stores.db[f"{coll}_events"].find({"aggregate_id": _id}), key=lambda d: d["_id"])
    return [e["type"] for ch in changes for e in ch.get("outbox") or []]


def create_programme(stores, caller=PROV, **kw) -> dict:
    fields = dict(unit_id="prov", name="Thăm hỏi đoàn viên khó khăn 2025", kind="hardship_visit", year=2025,
                  budget=10_000_000, funding_sources=("union_fund", "employer"))
    return service.create_programme(c.CreateProgramme(**{**fields, **kw}), caller, stores)


def request(programme_id: str, amount=2_000_000, **kw) -> c.RequestCase:
    fields = dict(programme_id=programme_id, member_id="m-active", hardship_type="illness", amount=amount,
                  form="cash", funding=(c.FundingLine("union_fund", amount),), requested_on=date(2025, 3, 1))
    return c.RequestCase(**{**fields, **kw})


def request_case(stores, programme_id, caller=CDCS, **kw) -> dict:
    case, created = service.request_case(request(programme_id, **kw), caller, stores)
    assert created
    return case


def approved_case(stores, **kw) -> dict:
    prog = create_programme(stores, **kw)
    case = request_case(stores, prog["id"])
    return service.approve_case(c.ApproveCase(case["id"], approved_on=date(2025, 3, 2)), COMMUNE, stores)


def disbursed_loan(stores) -> dict:
    prog = create_programme(stores, kind="micro_loan", funding_sources=("union_fund",), budget=50_000_000)
    case = request_case(stores, prog["id"], amount=12_000_000, loan_term_months=12)
    service.approve_case(c.ApproveCase(case["id"], approved_on=date(2025, 3, 2)), COMMUNE, stores)
    paid, _ = service.disburse_case(c.DisburseCase(case["id"], disbursed_on=date(2025, 3, 5)), CDCS, stores)
    return paid


# ---------------------------------------------------------------- programmes

def test_create_programme_commits_the_programme_and_its_event(stores):
    prog = create_programme(stores)
    assert (prog["unit_id"], prog["ancestors"], prog["remaining"], prog["version"]) == ("prov", ["central"],
                                                                                        10_000_000, 1)
    assert stores.programmes.get(prog["id"])["funding_sources"] == ["union_fund", "employer"]
    assert events(stores, "programmes", prog["id"]) == ["welfare.programme.created.v1"]
    assert service.get_programme(prog["id"], PROV, stores)["name"] == "Thăm hỏi đoàn viên khó khăn 2025"
    assert [p["id"] for p in service.list_programmes({"limit": 10}, COMMUNE, stores)["items"]] == []
    assert [p["id"] for p in service.list_programmes({"limit": 10}, PROV, stores)["items"]] == [prog["id"]]


def test_create_programme_refusals_write_nothing(stores):
    before = snapshot(stores)
    with pytest.raises(RuleViolated) as unknown:
        create_programme(stores, unit_id="nowhere")
    assert unknown.value.field == "unit_id"
    with pytest.raises(Forbidden):
        create_programme(stores, caller=PROV2)  # prov is outside prov2's subtree
    with pytest.raises(Forbidden):
        create_programme(stores, caller=officer("prov", roles=("viewer",)))
    with pytest.raises(Forbidden):
        service.get_programme(create_programme(stores)["id"], PROV2, stores)
    assert snapshot(stores) != before  # the last programme was created, the refusals wrote nothing
    assert len(list(stores.programme_docs.find())) == 1


def test_create_programme_replays_an_idempotency_key(stores):
    first = create_programme(stores, idempotency_key="k1")
    again = create_programme(stores, idempotency_key="k1")
    assert again["id"] == first["id"] and len(list(stores.programme_docs.find())) == 1
    assert events(stores, "programmes", first["id"]) == ["welfare.programme.created.v1"]
    before = snapshot(stores)
    with pytest.raises(RuleViolated) as reused:
        create_programme(stores, idempotency_key="k1", budget=9_000_000)
    assert reused.value.field == "Idempotency-Key" and snapshot(stores) == before
    # keys are the client's: another subject's k1 is another request
    other = create_programme(stores, caller=officer("prov", subject="someone-else"), idempotency_key="k1")
    assert other["id"] != first["id"]


# ---------------------------------------------------------------- cases

def test_request_case_commits_the_case_and_its_event(stores):
    prog = create_programme(stores)
    case = request_case(stores, prog["id"], note="<b>ốm</b>")
    assert (case["status"], case["unit_id"], case["version"], case["requested_by"]) == ("requested", "cdcs", 1,
                                                                                       "officer@cdcs")
    assert case["ancestors"] == ["central", "prov", "commune"] and case["note"] == "<b>ốm</b>"
    assert events(stores, "cases", case["id"]) == ["welfare.case.requested.v1"]
    assert service.get_case(case["id"], PROV, stores)["id"] == case["id"]
    assert [i["id"] for i in service.list_cases({"limit": 10}, COMMUNE, stores)["items"]] == [case["id"]]
    assert service.list_cases({"limit": 10}, PROV2, stores)["items"] == []


def test_request_case_refusals_write_nothing(stores):
    prog = create_programme(stores)
    before = snapshot(stores)
    with pytest.raises(RuleViolated) as left:
        request_case(stores, prog["id"], member_id="m-left")
    assert left.value.field == "member_id"
    with pytest.raises(RuleViolated) as no_programme:
        request_case(stores, "prg-none")
    assert no_programme.value.field == "programme_id"
    with pytest.raises(Forbidden):
        request_case(stores, prog["id"], caller=CDCS2)  # m-active's CĐCS is outside cdcs2's subtree
    with pytest.raises(Forbidden):
        request_case(stores, prog["id"], caller=officer("cdcs", roles=("viewer",)))
    assert snapshot(stores) == before


def test_request_case_replays_an_idempotency_key(stores):
    prog = create_programme(stores)
    first, created = service.request_case(request(prog["id"], idempotency_key="r1"), CDCS, stores)
    again, created_again = service.request_case(request(prog["id"], idempotency_key="r1"), CDCS, stores)
    assert (created, created_again) == (True, False) and again["id"] == first["id"]
    assert len(list(stores.case_docs.find())) == 1
    before = snapshot(stores)
    with pytest.raises(Conflict) as reused:
        service.request_case(request(prog["id"], amount=1_000_000, idempotency_key="r1"), CDCS, stores)
    assert reused.value.field == "Idempotency-Key" and snapshot(stores) == before


def test_approve_case_reserves_the_budget_and_commits_the_approval(stores):
    prog = create_programme(stores)
    case = request_case(stores, prog["id"])
    approved = service.approve_case(c.ApproveCase(case["id"], approved_on=date(2025, 3, 2), version=1),
                                    COMMUNE, stores)
    assert (approved["status"], approved["approved_by_unit_id"], approved["approved_level"],
            approved["version"]) == ("approved", "commune", 3, 2)
    assert events(stores, "cases", case["id"]) == ["welfare.case.requested.v1", "welfare.case.approved.v1"]
    assert service.get_programme(prog["id"], PROV, stores)["remaining"] == 8_000_000
    assert [e["case_id"] for e in stores.ledger.find({"programme_id": prog["id"]})] == [case["id"]]


def test_approve_case_refusals_write_nothing(stores):
    prog = create_programme(stores, budget=3_000_000)
    case = request_case(stores, prog["id"])
    big = request_case(stores, prog["id"], amount=1_500_000)
    service.approve_case(c.ApproveCase(case["id"]), COMMUNE, stores)
    before = snapshot(stores)
    with pytest.raises(RuleViolated):
        service.approve_case(c.ApproveCase(big["id"]), CDCS, stores)  # the CĐCS may not approve its own case
    with pytest.raises(RuleViolated):
        service.approve_case(c.ApproveCase(big["id"]), COMMUNE, stores)  # 1.5 M over the 1 M left
    with pytest.raises(Forbidden):
        service.approve_case(c.ApproveCase(big["id"]), PROV2, stores)
    with pytest.raises(StaleVersion):
        service.approve_case(c.ApproveCase(big["id"], version=7), COMMUNE, stores)
    with pytest.raises(Conflict):
        service.approve_case(c.ApproveCase(case["id"]), COMMUNE, stores)  # approved already
    with pytest.raises(NotFound):
        service.approve_case(c.ApproveCase("case-none"), COMMUNE, stores)
    assert snapshot(stores) == before  # the refused budget gave its decision claim back


def test_reject_case_commits_the_rejection(stores):
    prog = create_programme(stores)
    case = request_case(stores, prog["id"])
    before = snapshot(stores)
    with pytest.raises(StaleVersion):
        service.reject_case(c.RejectCase(case["id"], reason="trùng", version=2), COMMUNE, stores)
    with pytest.raises(Forbidden):
        service.reject_case(c.RejectCase(case["id"], reason="trùng"), PROV2, stores)
    with pytest.raises(RuleViolated):
        service.reject_case(c.RejectCase(case["id"], reason="trùng"), CDCS, stores)
    assert snapshot(stores) == before
    rejected = service.reject_case(c.RejectCase(case["id"], reason="trùng", rejected_on=date(2025, 3, 3),
                                                version=1), COMMUNE, stores)
    assert (rejected["status"], rejected["rejection_reason"], rejected["version"]) == ("rejected", "trùng", 2)
    assert events(stores, "cases", case["id"])[-1] == "welfare.case.rejected.v1"
    assert service.get_programme(prog["id"], PROV, stores)["remaining"] == 10_000_000
    with pytest.raises(Conflict):  # decided: approving it now is refused
        service.approve_case(c.ApproveCase(case["id"]), COMMUNE, stores)


def test_disburse_case_pays_once_per_key(stores):
    case = approved_case(stores)
    before = snapshot(stores)
    with pytest.raises(StaleVersion):
        service.disburse_case(c.DisburseCase(case["id"], version=1, idempotency_key="pay-1"), CDCS, stores)
    with pytest.raises(Forbidden):
        service.disburse_case(c.DisburseCase(case["id"], idempotency_key="pay-1"), CDCS2, stores)
    with pytest.raises(RuleViolated):
        service.disburse_case(c.DisburseCase(case["id"], disbursed_on=date(2025, 3, 1)), CDCS, stores)
    assert snapshot(stores) == before
    pay = c.DisburseCase(case["id"], disbursed_on=date(2025, 3, 5), version=2, idempotency_key="pay-1")
    paid, now = service.disburse_case(pay, CDCS, stores)
    assert (paid["status"], paid["disbursed_by_unit_id"], paid["version"], now) == ("disbursed", "cdcs", 3, True)
    assert events(stores, "cases", case["id"])[-1] == "welfare.case.disbursed.v1"
    again, now = service.disburse_case(pay, CDCS, stores)  # a retry: the first result, not paid twice
    assert (again["version"], now) == (3, False)
    assert len(events(stores, "cases", case["id"])) == 3
    with pytest.raises(Conflict):
        service.disburse_case(c.DisburseCase(case["id"], idempotency_key="pay-2"), CDCS, stores)


def test_a_requested_case_is_not_disbursed(stores):
    prog = create_programme(stores)
    case = request_case(stores, prog["id"])
    before = snapshot(stores)
    with pytest.raises(Conflict):
        service.disburse_case(c.DisburseCase(case["id"]), CDCS, stores)
    assert snapshot(stores) == before


# ---------------------------------------------------------------- loans

def test_record_repayment_settles_the_loan_once_per_key(stores):
    loan = disbursed_loan(stores)
    assert service.get_loan(loan["id"], date(2025, 3, 6), CDCS, stores)["outstanding"] == 12_000_000
    pay = c.RecordRepayment(loan["id"], amount=1_000_000, paid_on=date(2025, 4, 5), version=3,
                            idempotency_key="rp-1")
    view, now = service.record_repayment(pay, CDCS, stores)
    assert (view["repaid_total"], view["outstanding"], view["version"], now) == (1_000_000, 11_000_000, 4, True)
    assert events(stores, "cases", loan["id"])[-1] == "welfare.loan.repaid.v1"
    again, now = service.record_repayment(pay, CDCS, stores)
    assert (again["repaid_total"], now) == (1_000_000, False)
    assert [i["id"] for i in service.list_loans({"limit": 10}, PROV, stores)["items"]] == [loan["id"]]


def test_record_repayment_refusals_write_nothing(stores):
    loan = disbursed_loan(stores)
    service.record_repayment(c.RecordRepayment(loan["id"], amount=1_000_000, paid_on=date(2025, 4, 5),
                                               idempotency_key="rp-1"), CDCS, stores)
    before = snapshot(stores)
    with pytest.raises(Conflict):  # the same key for another repayment
        service.record_repayment(c.RecordRepayment(loan["id"], amount=2_000_000, paid_on=date(2025, 4, 5),
                                                   idempotency_key="rp-1"), CDCS, stores)
    with pytest.raises(RuleViolated):
        service.record_repayment(c.RecordRepayment(loan["id"], amount=11_000_001, paid_on=date(2025, 4, 6)),
                                 CDCS, stores)
    with pytest.raises(StaleVersion):
        service.record_repayment(c.RecordRepayment(loan["id"], amount=1, version=3), CDCS, stores)
    with pytest.raises(Forbidden):
        service.record_repayment(c.RecordRepayment(loan["id"], amount=1), CDCS2, stores)
    with pytest.raises(Forbidden):
        service.get_loan(loan["id"], None, PROV2, stores)
    assert snapshot(stores) == before


# ---------------------------------------------------------------- upkeep

def test_follow_unit_move_rewrites_ancestors_and_keeps_versions(stores):
    prog = create_programme(stores, unit_id="commune", caller=COMMUNE)
    case = request_case(stores, prog["id"])
    apply(stores.db, [new_event("membership", "membership.unit.moved.v1", "commune", {
        "unit_id": "commune", "old_parent_id": "prov", "parent_id": "prov2", "old_ancestors": ["central", "prov"],
        "ancestors": ["central", "prov2"], "effective_date": "2025-07-01"}, 2)])
    service.follow_unit_move(c.FollowUnitMove("commune"), stores)
    moved = stores.cases.get(case["id"])
    assert (moved["ancestors"], moved["version"]) == (["central", "prov2", "commune"], 1)
    assert stores.programmes.get(prog["id"])["ancestors"] == ["central", "prov2"]
    assert events(stores, "cases", case["id"]) == ["welfare.case.requested.v1"]  # upkeep raises no event
    assert [i["id"] for i in service.list_cases({"limit": 10}, PROV2, stores)["items"]] == [case["id"]]
    with pytest.raises(Forbidden):
        service.get_case(case["id"], PROV, stores)
    before = snapshot(stores)
    service.follow_unit_move(c.FollowUnitMove("commune"), stores)  # redelivered: nothing changes
    assert snapshot(stores) == before


def test_lists_ask_the_stored_scope_which_follows_a_move(stores):
    prog = create_programme(stores, unit_id="commune", caller=COMMUNE)
    case = request_case(stores, prog["id"])
    assert stores.case_docs.find_one({"_id": case["id"]})["scope"] == ["central", "prov", "commune", "cdcs"]
    assert "scope" not in case and "scope" not in service.get_case(case["id"], PROV, stores)  # not shown
    assert [i["id"] for i in service.list_cases({"limit": 10}, PROV, stores)["items"]] == [case["id"]]
    assert [i["id"] for i in service.list_programmes({"limit": 10}, COMMUNE, stores)["items"]] == [prog["id"]]
    assert service.list_programmes({"limit": 10}, CDCS, stores)["items"] == []  # the owner is above it
    apply(stores.db, [new_event("membership", "membership.unit.moved.v1", "commune", {
        "unit_id": "commune", "old_parent_id": "prov", "parent_id": "prov2", "old_ancestors": ["central", "prov"],
        "ancestors": ["central", "prov2"], "effective_date": "2025-07-01"}, 2)])
    service.follow_unit_move(c.FollowUnitMove("commune"), stores)
    assert stores.programme_docs.find_one({"_id": prog["id"]})["scope"] == ["central", "prov2", "commune"]
    assert service.list_cases({"limit": 10}, PROV, stores)["items"] == []
    assert [i["id"] for i in service.list_programmes({"limit": 10}, PROV2, stores)["items"]] == [prog["id"]]


def test_cases_stored_before_list_periods_get_them_once(stores):
    prog = create_programme(stores)
    case = request_case(stores, prog["id"])
    stores.case_docs.update_one({"_id": case["id"]}, {"$unset": {"scope_periods": ""}})  # as stored before
    stores.db["list_periods"].delete_many({})
    assert service.list_cases({"limit": 10}, PROV, stores)["items"] == []
    mine = service.list_cases({"limit": 10, "member_id": case["member_id"]}, PROV, stores)["items"]
    assert [i["id"] for i in mine] == [case["id"]]  # one member's cases: by that equality
    progress = []
    assert service.backfill_case_periods(stores, lambda done, total: progress.append((done, total))) == 1
    assert progress == [(1, 1)]
    assert [i["id"] for i in service.list_cases({"limit": 10}, PROV, stores)["items"]] == [case["id"]]
    assert stores.cases.get(case["id"])["version"] == 1  # upkeep: no caller's version goes stale
    assert events(stores, "cases", case["id"]) == ["welfare.case.requested.v1"]  # and no event
    assert service.backfill_case_periods(stores) == 0  # done once


def test_backfill_gives_documents_stored_before_scope_their_scope_once(stores):
    prog = create_programme(stores)
    case = request_case(stores, prog["id"])
    for docs, _id in ((stores.programme_docs, prog["id"]), (stores.case_docs, case["id"])):
        docs.update_one({"_id": _id}, {"$unset": {"scope": "", "scope_periods": ""}})  # as stored before
    stores.db["list_periods"].delete_many({})
    assert service.list_cases({"limit": 10}, PROV, stores)["items"] == []
    assert service.backfill_scope(stores) == 2  # a repository change re-derives every derived field
    assert [i["id"] for i in service.list_cases({"limit": 10}, PROV, stores)["items"]] == [case["id"]]
    assert [i["id"] for i in service.list_programmes({"limit": 10}, PROV, stores)["items"]] == [prog["id"]]
    assert stores.cases.get(case["id"])["version"] == 1  # upkeep: no caller's version goes stale
    assert events(stores, "cases", case["id"]) == ["welfare.case.requested.v1"]  # and no event
    stores.case_docs.update_one({"_id": case["id"]}, {"$unset": {"scope": ""}})
    assert service.backfill_scope(stores) == 0  # done once: later starts skip the scan

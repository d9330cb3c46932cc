"""Welfare rules, pure (no broker, no database)."""
from datetime import date

import pytest

from platformkit.errors import Conflict, InvalidInput, RuleViolated
from services.welfare import domain as d

PROVINCE = d.Unit("prov", ["central"], kind="province", level=2)
COMMUNE = d.Unit("commune", ["central", "prov"], kind="commune", level=3)
CDCS = d.Unit("cdcs", ["central", "prov", "commune"], kind="cdcs", level=4)
MEMBER = d.Member("m1", "cdcs", "active", "Nguyễn Thị Hà")


def programme(kind="hardship_visit", budget=10_000_000, sources=("union_fund", "employer")):
    state, events = d.create_programme("p1", PROVINCE, d.NewProgramme(
        name="Thăm hỏi 2025", kind=kind, year=2025, budget=budget, funding_sources=list(sources)))
    return d.with_budget_position(state, 0), events


def new_case(amount=2_000_000, funding=None, loan_term=None, form="cash", **kw):
    funding = funding if funding is not None else [d.FundingShare("union_fund", amount)]
    return d.NewCase(programme_id="p1", member_id="m1", hardship_type="illness", amount=amount, form=form,
                     funding=funding, requested_on=date(2025, 3, 1), loan_term_months=loan_term, **kw)


def requested(amount=2_000_000, kind="hardship_visit", loan_term=None):
    prog, _ = programme(kind=kind, budget=100_000_000)
    case, _ = d.request_case("c1", prog, MEMBER, CDCS, new_case(amount, loan_term=loan_term))
    return {**case, "version": 1}


def approver(unit=COMMUNE):
    return d.Approver(unit.unit_id, unit.level, "officer@" + unit.unit_id)


# ------------------------------------------------------------------ programmes

def test_programme_starts_with_its_whole_budget_and_announces_the_facts():
    state, events = programme()
    assert (state["remaining"], state["reserved"]) == (10_000_000, 0)
    assert d.with_budget_position(state, 7_000_000)["remaining"] == 3_000_000
    (ev,) = events
    assert ev.type == "welfare.programme.created.v1"
    assert ev.data == {"programme_id": "p1", "name": "Thăm hỏi 2025", "kind": "hardship_visit",
                       "year": 2025, "unit_id": "prov", "ancestors": ["central"], "budget": 10_000_000,
                       "funding_sources": ["union_fund", "employer"]}


@pytest.mark.parametrize("change, field", [
    ({"kind": "party"}, "kind"), ({"budget": 0}, "budget"), ({"funding_sources": []}, "funding_sources"),
    ({"funding_sources": ["union_fund", "union_fund"]}, "funding_sources"),
    ({"funding_sources": ["lottery"]}, "funding_sources")])
def test_programme_refuses_bad_input(change, field):
    cmd = dict(name="x", kind="tet_gift", year=2025, budget=1000, funding_sources=["union_fund"])
    with pytest.raises(InvalidInput) as err:
        d.create_programme("p", PROVINCE, d.NewProgramme(**{**cmd, **change}))
    assert err.value.field == field


def test_a_dissolved_unit_owns_no_new_programme():
    gone = d.Unit("old", ["central"], kind="district", level=3, status="dissolved")
    with pytest.raises(RuleViolated) as err:
        programme_cmd = d.NewProgramme("x", "tet_gift", 2025, 1000, ["union_fund"])
        d.create_programme("p", gone, programme_cmd)
    assert err.value.field == "unit_id"


# ------------------------------------------------------------------ funding split

def test_funding_split_must_add_up_exactly():
    prog, _ = programme()
    split = [d.FundingShare("union_fund", 1_500_000), d.FundingShare("employer", 499_999)]
    with pytest.raises(InvalidInput) as err:
        d.request_case("c1", prog, MEMBER, CDCS, new_case(2_000_000, split))
    assert err.value.field == "funding" and "1,999,999" in err.value.message
    split = [d.FundingShare("union_fund", 1_500_000), d.FundingShare("employer", 500_000)]
    case, events = d.request_case("c1", prog, MEMBER, CDCS, new_case(2_000_000, split))
    assert case["funding"] == [{"source": "union_fund", "amount": 1_500_000},
                               {"source": "employer", "amount": 500_000}]
    assert events[0].data["funding"] == case["funding"]


def test_funding_from_a_source_the_programme_does_not_have_is_a_rule_violation():
    prog, _ = programme(sources=("union_fund",))
    with pytest.raises(RuleViolated) as err:
        d.request_case("c1", prog, MEMBER, CDCS, new_case(1000, [d.FundingShare("sponsor", 1000)]))
    assert err.value.field == "funding"


def test_funding_names_each_source_once_with_positive_shares():
    prog, _ = programme()
    for split in ([d.FundingShare("union_fund", 500), d.FundingShare("union_fund", 500)],
                  [d.FundingShare("union_fund", 1500), d.FundingShare("employer", -500)], []):
        with pytest.raises(InvalidInput) as err:
            d.request_case("c1", prog, MEMBER, CDCS, new_case(1000, split))
        assert err.value.field == "funding"


# ------------------------------------------------------------------ requesting

def test_request_carries_the_facts_reporting_needs():
    prog, _ = programme()
    case, (ev,) = d.request_case("c1", prog, MEMBER, CDCS, new_case(2_000_000))
    assert case["status"] == "requested" and case["unit_id"] == "cdcs"
    assert ev.type == "welfare.case.requested.v1"
    for key, value in {"case_id": "c1", "programme_id": "p1", "programme_kind": "hardship_visit",
                       "programme_year": 2025, "member_id": "m1", "unit_id": "cdcs",
                       "ancestors": ["central", "prov", "commune"], "amount": 2_000_000, "form": "cash",
                       "hardship_type": "illness", "requested_on": "2025-03-01"}.items():
        assert ev.data[key] == value, key


@pytest.mark.parametrize("member, unit, field", [
    (None, CDCS, "member_id"),
    (d.Member("m1", "cdcs", "left"), CDCS, "member_id"),
    (MEMBER, None, "member_id"),
    (MEMBER, d.Unit("cdcs", ["central", "other-prov", "x"]), "programme_id"),
])
def test_request_refusals(member, unit, field):
    prog, _ = programme()
    with pytest.raises(RuleViolated) as err:
        d.request_case("c1", prog, member, unit, new_case())
    assert err.value.field == field


def test_request_over_the_remaining_budget_is_refused():
    prog, _ = programme(budget=3_000_000)
    prog = d.with_budget_position(prog, 2_000_000)
    with pytest.raises(RuleViolated) as err:
        d.request_case("c1", prog, MEMBER, CDCS, new_case(1_000_001))
    assert err.value.field == "amount"
    case, _ = d.request_case("c1", prog, MEMBER, CDCS, new_case(1_000_000))
    assert case["amount"] == 1_000_000


def test_micro_loan_needs_terms_cash_and_a_cap():
    prog, _ = programme(kind="micro_loan", budget=100_000_000)
    with pytest.raises(InvalidInput) as err:
        d.request_case("c1", prog, MEMBER, CDCS, new_case(10_000_000))
    assert err.value.field == "loan"
    with pytest.raises(RuleViolated) as err:
        d.request_case("c1", prog, MEMBER, CDCS, new_case(10_000_000, loan_term=12, form="gift"))
    assert err.value.field == "form"
    with pytest.raises(RuleViolated) as err:
        d.request_case("c1", prog, MEMBER, CDCS, new_case(d.MAX_LOAN_PRINCIPAL + 1, loan_term=12))
    assert err.value.field == "amount"
    other, _ = programme()
    with pytest.raises(InvalidInput):
        d.request_case("c1", other, MEMBER, CDCS, new_case(1000, loan_term=12))


# ------------------------------------------------------------------ state machine

def test_the_level_above_approves_then_it_is_disbursed():
    case = requested()
    approved, (ev,) = d.approve_case(case, approver(COMMUNE), date(2025, 3, 2))
    assert approved["status"] == "approved" and approved["approved_by_unit_id"] == "commune"
    assert ev.type == "welfare.case.approved.v1"
    assert ev.data["approved_by_unit_id"] == "commune" and ev.data["approved_level"] == 3
    assert ev.data["approved_on"] == "2025-03-02" and ev.data["amount"] == 2_000_000
    paid, (ev,) = d.disburse_case(approved, date(2025, 3, 5), "cdcs")
    assert paid["status"] == "disbursed" and ev.type == "welfare.case.disbursed.v1"
    assert ev.data["disbursed_on"] == "2025-03-05" and ev.data["approved_by_unit_id"] == "commune"


def test_a_higher_level_may_approve_too():
    approved, _ = d.approve_case(requested(), approver(PROVINCE), date(2025, 3, 2))
    assert approved["approved_level"] == 2


def test_the_cdcs_cannot_approve_or_reject_its_own_case():
    case = requested()
    with pytest.raises(RuleViolated) as err:
        d.approve_case(case, approver(CDCS), date(2025, 3, 2))
    assert err.value.field == "approver_unit_id"
    with pytest.raises(RuleViolated):
        d.reject_case(case, approver(CDCS), "no", date(2025, 3, 2))


def test_transitions_only_from_the_right_status():
    case = requested()
    with pytest.raises(Conflict):
        d.disburse_case(case, date(2025, 3, 5), "cdcs")  # not approved yet
    approved, _ = d.approve_case(case, approver(), date(2025, 3, 2))
    with pytest.raises(Conflict):
        d.approve_case(approved, approver(), date(2025, 3, 2))
    with pytest.raises(Conflict):
        d.reject_case(approved, approver(), "late", date(2025, 3, 2))
    rejected, (ev,) = d.reject_case(case, approver(), " không đủ điều kiện ", date(2025, 3, 2))
    assert rejected["status"] == "rejected" and ev.data["reason"] == "không đủ điều kiện"
    with pytest.raises(Conflict):
        d.approve_case(rejected, approver(), date(2025, 3, 3))
    paid, _ = d.disburse_case(approved, date(2025, 3, 5), "cdcs")
    with pytest.raises(Conflict):
        d.disburse_case(paid, date(2025, 3, 6), "cdcs")


def test_dates_cannot_go_backwards():
    case = requested()
    with pytest.raises(RuleViolated) as err:
        d.approve_case(case, approver(), date(2025, 2, 28))
    assert err.value.field == "approved_on"
    approved, _ = d.approve_case(case, approver(), date(2025, 3, 2))
    with pytest.raises(RuleViolated) as err:
        d.disburse_case(approved, date(2025, 3, 1), "cdcs")
    assert err.value.field == "disbursed_on"


def test_rejecting_needs_a_reason():
    with pytest.raises(InvalidInput) as err:
        d.reject_case(requested(), approver(), "  ", date(2025, 3, 2))
    assert err.value.field == "reason"


# ------------------------------------------------------------------ loans

def test_schedule_is_equal_whole_dong_instalments_with_the_remainder_last():
    sched = d.loan_schedule(10_000_000, 3, date(2025, 1, 31))
    assert [i["amount"] for i in sched] == [3_333_333, 3_333_333, 3_333_334]
    assert sum(i["amount"] for i in sched) == 10_000_000
    # one month after disbursement, clamped to the month's end
    assert [i["due_on"] for i in sched] == ["2025-02-28", "2025-03-31", "2025-04-30"]
    assert d.loan_schedule(30_000_000, 12, date(2025, 11, 15))[-1]["due_on"] == "2026-11-15"
    assert [i["amount"] for i in d.loan_schedule(7, 3, date(2025, 1, 1))] == [2, 2, 3]


def disbursed_loan(principal=12_000_000, term=12, on=date(2025, 1, 10)):
    case = {**requested(principal, kind="micro_loan", loan_term=term), "requested_on": "2025-01-02"}
    approved, _ = d.approve_case(case, approver(), date(2025, 1, 5))
    paid, (ev,) = d.disburse_case(approved, on, "cdcs")
    assert ev.data["principal"] == principal and ev.data["outstanding"] == principal
    return paid


def test_balance_through_partial_and_late_repayments():
    loan = disbursed_loan()  # 12 x 1,000,000 due on the 10th from Feb 2025
    pos = d.loan_position(loan["loan"], date(2025, 2, 10))
    assert (pos.status, pos.due_to_date, pos.overdue_amount, pos.next_due_on) == ("current", 1_000_000, 0, "2025-02-10")
    pos = d.loan_position(loan["loan"], date(2025, 2, 11))
    assert (pos.status, pos.overdue_amount, pos.days_overdue) == ("overdue", 1_000_000, 1)

    # a partial payment on time leaves the rest of the February instalment overdue afterwards
    loan, (ev,) = d.repay_loan(loan, 600_000, date(2025, 2, 10))
    assert ev.type == "welfare.loan.repaid.v1" and not ev.data["late"]
    assert (ev.data["outstanding"], ev.data["repaid_total"]) == (11_400_000, 600_000)
    pos = d.loan_position(loan["loan"], date(2025, 3, 20))
    assert pos.overdue_amount == 400_000 + 1_000_000 and pos.days_overdue == 38
    assert [i["status"] for i in pos.instalments[:3]] == ["overdue", "overdue", "pending"]

    # a late payment settles the oldest instalments first
    loan, (ev,) = d.repay_loan(loan, 1_900_000, date(2025, 3, 20))
    assert ev.data["late"] and ev.data["overdue_amount"] == 0
    assert ev.data["outstanding"] == 9_500_000 and ev.data["seq"] == 2
    pos = d.loan_position(loan["loan"], date(2025, 3, 20))
    assert [i["status"] for i in pos.instalments[:3]] == ["paid_late", "paid_late", "partially_paid"]
    assert pos.instalments[2]["paid"] == 500_000 and pos.next_due_amount == 500_000
    assert pos.status == "current"

    # the view as of an earlier day ignores later payments
    assert d.loan_position(loan["loan"], date(2025, 3, 1)).repaid_total == 600_000

    with pytest.raises(RuleViolated) as err:
        d.repay_loan(loan, 9_500_001, date(2025, 4, 1))
    assert err.value.field == "amount"
    loan, (ev,) = d.repay_loan(loan, 9_500_000, date(2025, 4, 1))
    assert ev.data["fully_repaid"] and ev.data["outstanding"] == 0
    pos = d.loan_position(loan["loan"], date(2026, 6, 1))
    assert pos.status == "repaid" and pos.outstanding == 0 and pos.overdue_amount == 0


def test_repayment_refusals():
    case = requested(5_000_000, kind="micro_loan", loan_term=5)
    with pytest.raises(Conflict):
        d.repay_loan(case, 1000, date(2025, 3, 2))  # not disbursed yet
    with pytest.raises(RuleViolated):
        d.repay_loan(requested(), 1000, date(2025, 3, 2))  # not a loan
    loan = disbursed_loan()
    with pytest.raises(RuleViolated) as err:
        d.repay_loan(loan, 1000, date(2025, 1, 9))
    assert err.value.field == "paid_on"
    with pytest.raises(InvalidInput):
        d.repay_loan(loan, 0, date(2025, 2, 1))

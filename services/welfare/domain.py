"""Welfare (chăm lo, phúc lợi) rules: programmes and their budgets, support cases, micro-loans.

Pure: no database, no Kafka, no clock. Every command function takes the current state (plain
dicts, as stored) and a command, and returns the new state and the events it raises (`Event`,
wrapped into envelopes by the service layer). Dates in state are ISO `YYYY-MM-DD` strings so that
they sort and compare as text in the database; functions take `datetime.date` for new dates.

Refusals are platformkit.errors' classes (no I/O in them): InvalidInput -> 400 when the
command contradicts itself whatever the state (a funding split that does not add up), RuleViolated
-> 422 when the state forbids it (over budget, beneficiary left, wrong approving level), Conflict
-> 409 when the case is not in a status that allows the transition (already approved, ...).

Budget and concurrency: the domain decides whether an amount fits `remaining`; the service makes
that decision atomic by appending to the programme's budget ledger with a unique sequence number
(see service.py: FerretDB does not apply a conditional update atomically, a unique insert it does).
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable

from platformkit.contract import Event
from platformkit.errors import Conflict, InvalidInput, RuleViolated

PROGRAMME_KINDS = ("tet_gift", "workers_month", "housing_new", "housing_repair", "hardship_visit",
                   "death_support", "micro_loan", "member_benefit")
FORMS = ("cash", "gift", "savings_book", "house")
FUNDING_SOURCES = ("union_fund", "employer", "sponsor", "state_budget", "other")
HARDSHIP_TYPES = ("poverty", "illness", "accident", "bereavement", "natural_disaster", "housing",
                  "job_loss", "tet", "other")
CASE_STATUSES = ("requested", "approved", "rejected", "disbursed")
# The workers' capital-support fund (Quỹ Trợ vốn) lends up to about 30M VND; interest-free here.
MAX_LOAN_PRINCIPAL = 30_000_000
MAX_LOAN_TERM_MONTHS = 60
# Unit kinds below grassroots: their members' cases still belong to a CĐCS above them.
BELOW_GRASSROOTS = ("cdcs_member", "department", "group")
GRASSROOTS_AND_BELOW = ("cdcs", *BELOW_GRASSROOTS)

SOURCE = "welfare"


@dataclass(frozen=True)
class Unit:
    """What welfare knows of an org unit, from its local membership view."""
    unit_id: str
    ancestors: list[str]
    kind: str | None = None
    level: int | None = None
    status: str = "active"

    def covers(self, unit_id: str, ancestors: Iterable[str]) -> bool:
        return unit_id == self.unit_id or self.unit_id in set(ancestors)


@dataclass(frozen=True)
class Member:
    member_id: str
    unit_id: str
    status: str | None
    full_name: str = ""


@dataclass(frozen=True)
class FundingShare:
    source: str
    amount: int


@dataclass(frozen=True)
class NewProgramme:
    name: str
    kind: str
    year: int
    budget: int
    funding_sources: list[str]
    description: str = ""


@dataclass(frozen=True)
class NewCase:
    programme_id: str
    member_id: str
    hardship_type: str
    amount: int
    form: str
    funding: list[FundingShare]
    requested_on: date
    note: str = ""
    loan_term_months: int | None = None


@dataclass(frozen=True)
class Approver:
    unit_id: str
    level: int | None
    subject: str
    kind: str | None = None  # the approving unit's kind, when welfare's view of units knows it


@dataclass
class LoanView:
    """A loan's position as of a date (computed, never stored)."""
    as_of: str
    principal: int
    term_months: int
    repaid_total: int
    outstanding: int
    due_to_date: int
    overdue_amount: int
    days_overdue: int
    status: str  # current | overdue | repaid
    next_due_on: str | None
    next_due_amount: int
    instalments: list[dict[str, Any]] = field(default_factory=list)


def iso(d: date) -> str:
    return d.isoformat()


def parse(d: str) -> date:
    return date.fromisoformat(d)


# ---------------------------------------------------------------- programmes

def create_programme(programme_id: str, owner: Unit, cmd: NewProgramme) -> tuple[dict, list[Event]]:
    if cmd.kind not in PROGRAMME_KINDS:
        raise InvalidInput(f"kind must be one of {PROGRAMME_KINDS}", field="kind")
    if not isinstance(cmd.budget, int) or cmd.budget <= 0:
        raise InvalidInput("budget is a whole number of đồng above 0", field="budget")
    sources = list(cmd.funding_sources)
    if not sources:
        raise InvalidInput("name at least one funding source", field="funding_sources")
    if len(set(sources)) != len(sources):
        raise InvalidInput("a funding source is listed twice", field="funding_sources")
    bad = [s for s in sources if s not in FUNDING_SOURCES]
    if bad:
        raise InvalidInput(f"unknown funding sources {bad}; known: {FUNDING_SOURCES}", field="funding_sources")
    if owner.status != "active":
        raise RuleViolated(f"unit {owner.unit_id} is {owner.status}", field="unit_id")
    if owner.kind in BELOW_GRASSROOTS:
        raise RuleViolated("a programme is owned by a CĐCS or a level above it", field="unit_id")
    state = {
        "_id": programme_id, "name": cmd.name, "kind": cmd.kind, "description": cmd.description,
        "unit_id": owner.unit_id, "ancestors": list(owner.ancestors), "unit_level": owner.level,
        "year": cmd.year, "budget": cmd.budget, "funding_sources": sources, "status": "open",
    }
    return state, [Event("welfare.programme.created.v1", {
        "programme_id": programme_id, "name": cmd.name, "kind": cmd.kind, "year": cmd.year,
        "unit_id": owner.unit_id, "ancestors": list(owner.ancestors), "budget": cmd.budget,
        "funding_sources": sources})]


def with_budget_position(programme: dict, reserved: int) -> dict:
    """The programme as callers see it: `reserved` is the sum of its approved cases' amounts
    (kept in the budget ledger), `remaining` what is left to approve."""
    return {**programme, "reserved": reserved, "remaining": programme["budget"] - reserved}


def check_budget(programme: dict, amount: int) -> None:
    if amount > programme["remaining"]:
        raise RuleViolated(f"amount {amount:,} đồng exceeds the {programme['remaining']:,} đồng left "
                           f"in programme {programme['_id']}", field="amount")


# ---------------------------------------------------------------- cases

def check_funding(amount: int, funding: list[FundingShare], allowed: Iterable[str]) -> None:
    """The split names each source once, every share is positive, and the shares add up exactly."""
    if not funding:
        raise InvalidInput("funding lists at least one source", field="funding")
    seen: set[str] = set()
    for share in funding:
        if share.source in seen:
            raise InvalidInput(f"source {share.source} appears twice", field="funding")
        seen.add(share.source)
        if not isinstance(share.amount, int) or share.amount <= 0:
            raise InvalidInput("every share is a whole number of đồng above 0", field="funding")
    total = sum(s.amount for s in funding)
    if total != amount:
        raise InvalidInput(f"funding shares add up to {total:,} đồng, the amount is {amount:,}",
                           field="funding")
    allowed = set(allowed)
    foreign = sorted(seen - allowed)
    if foreign:
        raise RuleViolated(f"the programme is not funded by {foreign}; its sources: {sorted(allowed)}",
                           field="funding")


def request_case(case_id: str, programme: dict, member: Member | None, unit: Unit | None,
                 cmd: NewCase) -> tuple[dict, list[Event]]:
    if not isinstance(cmd.amount, int) or cmd.amount <= 0:
        raise InvalidInput("amount is a whole number of đồng above 0", field="amount")
    if cmd.form not in FORMS:
        raise InvalidInput(f"form must be one of {FORMS}", field="form")
    if cmd.hardship_type not in HARDSHIP_TYPES:
        raise InvalidInput(f"hardship_type must be one of {HARDSHIP_TYPES}", field="hardship_type")
    if member is None:
        raise RuleViolated(f"member {cmd.member_id} is unknown here (not yet received from membership)",
                           field="member_id")
    if member.status == "left":
        raise RuleViolated(f"member {cmd.member_id} has left the union", field="member_id")
    if unit is None:
        raise RuleViolated("the member's unit is unknown here", field="member_id")
    if programme.get("status") != "open":
        raise RuleViolated(f"programme {programme['_id']} is {programme.get('status')}", field="programme_id")
    if not (programme["unit_id"] == unit.unit_id or programme["unit_id"] in unit.ancestors):
        # names neither unit: the programme's owner may lie outside the caller's subtree
        raise RuleViolated("the programme does not cover the member's unit", field="programme_id")
    check_funding(cmd.amount, cmd.funding, programme["funding_sources"])
    loan = None
    if programme["kind"] == "micro_loan":
        if cmd.loan_term_months is None:
            raise InvalidInput("a micro-loan needs loan.term_months", field="loan")
        if not 1 <= cmd.loan_term_months <= MAX_LOAN_TERM_MONTHS:
            raise InvalidInput(f"term_months is 1..{MAX_LOAN_TERM_MONTHS}", field="loan")
        if cmd.form != "cash":
            raise RuleViolated("a micro-loan is paid in cash", field="form")
        if cmd.amount > MAX_LOAN_PRINCIPAL:
            raise RuleViolated(f"a micro-loan is at most {MAX_LOAN_PRINCIPAL:,} đồng", field="amount")
        loan = {"principal": cmd.amount, "term_months": cmd.loan_term_months}
    elif cmd.loan_term_months is not None:
        raise InvalidInput("loan terms belong only to a micro_loan programme", field="loan")
    check_budget(programme, cmd.amount)
    state = {
        "_id": case_id, "programme_id": programme["_id"], "programme_kind": programme["kind"],
        "programme_year": programme["year"], "programme_unit_id": programme["unit_id"],
        "member_id": member.member_id, "member_name": member.full_name,
        "unit_id": unit.unit_id, "ancestors": list(unit.ancestors),
        "hardship_type": cmd.hardship_type, "amount": cmd.amount, "form": cmd.form,
        "funding": [{"source": s.source, "amount": s.amount} for s in cmd.funding],
        "note": cmd.note, "status": "requested", "requested_on": iso(cmd.requested_on),
        "loan": loan,
    }
    return state, [Event("welfare.case.requested.v1", {**_case_facts(state),
                                                       "requested_on": state["requested_on"]})]


def _case_facts(case: dict) -> dict[str, Any]:
    """The facts every case event carries, so reporting never has to ask."""
    facts = {
        "case_id": case["_id"], "programme_id": case["programme_id"],
        "programme_kind": case["programme_kind"], "programme_year": case["programme_year"],
        "member_id": case["member_id"], "unit_id": case["unit_id"], "ancestors": case["ancestors"],
        "hardship_type": case["hardship_type"], "amount": case["amount"], "form": case["form"],
        "funding": case["funding"],
    }
    if case.get("loan"):
        facts["principal"] = case["loan"]["principal"]
        facts["term_months"] = case["loan"]["term_months"]
    return facts


def _expect_status(case: dict, wanted: str, action: str) -> None:
    if case["status"] != wanted:
        raise Conflict(f"case {case['_id']} is {case['status']}; only a {wanted} case can be {action}",
                       field="status")


def check_approver(case: dict, approver: Approver, action: str = "approve") -> None:
    """The level above decides: the approver's unit must be a strict ancestor of the case's unit.
    A unit outside the subtree never gets here (403 at the API); the unit itself, or a unit below
    it, is in scope but may not decide on its own case: 422."""
    if approver.unit_id not in case["ancestors"] or approver.kind in GRASSROOTS_AND_BELOW:
        # a unit at or inside a CĐCS never decides, even on a CĐCS it founded below itself
        raise RuleViolated(f"this unit may not {action} the case: a level above the CĐCS decides",
                           field="approver_unit_id")


def approve_case(case: dict, approver: Approver, approved_on: date) -> tuple[dict, list[Event]]:
    _expect_status(case, "requested", "approved")
    check_approver(case, approver)
    if iso(approved_on) < case["requested_on"]:
        raise RuleViolated("approved_on is before the request", field="approved_on")
    new = {**case, "status": "approved", "approved_on": iso(approved_on),
           "approved_by_unit_id": approver.unit_id, "approved_level": approver.level,
           "approved_by": approver.subject}
    return new, [Event("welfare.case.approved.v1", {
        **_case_facts(new), "approved_on": new["approved_on"],
        "approved_by_unit_id": approver.unit_id, "approved_level": approver.level})]


def reject_case(case: dict, approver: Approver, reason: str, rejected_on: date) -> tuple[dict, list[Event]]:
    _expect_status(case, "requested", "rejected")
    check_approver(case, approver, "reject")
    if not reason or not reason.strip():
        raise InvalidInput("give the reason for rejecting", field="reason")
    if iso(rejected_on) < case["requested_on"]:
        raise RuleViolated("rejected_on is before the request", field="rejected_on")
    new = {**case, "status": "rejected", "rejected_on": iso(rejected_on), "rejection_reason": reason.strip(),
           "rejected_by_unit_id": approver.unit_id, "rejected_level": approver.level,
           "rejected_by": approver.subject}
    return new, [Event("welfare.case.rejected.v1", {
        **_case_facts(new), "rejected_on": new["rejected_on"], "reason": new["rejection_reason"],
        "rejected_by_unit_id": approver.unit_id, "rejected_level": approver.level})]


def disburse_case(case: dict, disbursed_on: date, by_unit_id: str,
                  idempotency_key: str | None = None) -> tuple[dict, list[Event]]:
    _expect_status(case, "approved", "disbursed")
    if iso(disbursed_on) < case["approved_on"]:
        raise RuleViolated("disbursed_on is before the approval", field="disbursed_on")
    new = {**case, "status": "disbursed", "disbursed_on": iso(disbursed_on),
           "disbursed_by_unit_id": by_unit_id}
    if idempotency_key:
        new["disbursement_key"] = idempotency_key
    data = {**_case_facts(new), "disbursed_on": new["disbursed_on"], "disbursed_by_unit_id": by_unit_id,
            "approved_by_unit_id": case["approved_by_unit_id"], "approved_level": case.get("approved_level")}
    if case.get("loan"):
        schedule = loan_schedule(case["loan"]["principal"], case["loan"]["term_months"], disbursed_on)
        new["loan"] = {**case["loan"], "disbursed_on": iso(disbursed_on), "schedule": schedule,
                       "repayments": [], "repaid_total": 0, "outstanding": case["loan"]["principal"]}
        data.update(outstanding=case["loan"]["principal"], first_due_on=schedule[0]["due_on"],
                    last_due_on=schedule[-1]["due_on"], instalment_amount=schedule[0]["amount"])
    return new, [Event("welfare.case.disbursed.v1", data)]


# ---------------------------------------------------------------- micro-loans

def add_months(d: date, months: int) -> date:
    """Same day of month `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def loan_schedule(principal: int, term_months: int, start: date) -> list[dict[str, Any]]:
    """Equal monthly instalments in whole đồng, the remainder on the last; the first falls due one
    month after disbursement."""
    if principal <= 0 or term_months <= 0:
        raise InvalidInput("principal and term_months are above 0", field="loan")
    base = principal // term_months
    amounts = [base] * (term_months - 1) + [principal - base * (term_months - 1)]
    return [{"no": i + 1, "due_on": iso(add_months(start, i + 1)), "amount": a}
            for i, a in enumerate(amounts)]


def loan_position(loan: dict, as_of: date) -> LoanView:
    """Where a disbursed loan stands on `as_of`, counting the repayments made up to that day.
    Repayments settle instalments oldest first; an instalment settled after its due day is
    `paid_late`; one still (partly) unpaid after its due day is `overdue`."""
    day = iso(as_of)
    paid = sorted((r for r in loan.get("repayments", []) if r["paid_on"] <= day),
                  key=lambda r: (r["paid_on"], r.get("seq", 0)))
    instalments = [{**i, "paid": 0, "settled_on": None} for i in loan["schedule"]]
    idx = 0
    for r in paid:
        left = r["amount"]
        while left > 0 and idx < len(instalments):
            inst = instalments[idx]
            take = min(left, inst["amount"] - inst["paid"])
            inst["paid"] += take
            left -= take
            if inst["paid"] == inst["amount"]:
                inst["settled_on"] = r["paid_on"]
                idx += 1
    overdue_amount = due_to_date = 0
    first_overdue: str | None = None
    next_due: dict | None = None
    for inst in instalments:
        unpaid = inst["amount"] - inst["paid"]
        if inst["due_on"] <= day:
            due_to_date += inst["amount"]
        if unpaid == 0:
            inst["status"] = "paid" if inst["settled_on"] <= inst["due_on"] else "paid_late"
        elif inst["due_on"] < day:
            inst["status"] = "overdue"
            overdue_amount += unpaid
            first_overdue = first_overdue or inst["due_on"]
        else:
            inst["status"] = "partially_paid" if inst["paid"] else "pending"
            if next_due is None:
                next_due = inst
        inst["unpaid"] = unpaid
    repaid = sum(r["amount"] for r in paid)
    outstanding = loan["principal"] - repaid
    status = "repaid" if outstanding == 0 else ("overdue" if overdue_amount else "current")
    return LoanView(
        as_of=day, principal=loan["principal"], term_months=loan["term_months"], repaid_total=repaid,
        outstanding=outstanding, due_to_date=due_to_date, overdue_amount=overdue_amount,
        days_overdue=(as_of - parse(first_overdue)).days if first_overdue else 0, status=status,
        next_due_on=next_due["due_on"] if next_due else None,
        next_due_amount=next_due["unpaid"] if next_due else 0, instalments=instalments)


def repay_loan(case: dict, amount: int, paid_on: date, idempotency_key: str | None = None
               ) -> tuple[dict, list[Event]]:
    if not case.get("loan"):
        raise RuleViolated(f"case {case['_id']} is not a micro-loan", field="loan")
    if case["status"] != "disbursed":
        raise Conflict(f"loan {case['_id']} is {case['status']}; repayments start after disbursement",
                       field="status")
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidInput("amount is a whole number of đồng above 0", field="amount")
    loan = case["loan"]
    if iso(paid_on) < loan["disbursed_on"]:
        raise RuleViolated("paid_on is before the disbursement", field="paid_on")
    if amount > loan["outstanding"]:
        raise RuleViolated(f"amount {amount:,} exceeds the outstanding {loan['outstanding']:,} đồng",
                           field="amount")
    before = loan_position(loan, paid_on)
    repayment = {"seq": len(loan["repayments"]) + 1, "amount": amount, "paid_on": iso(paid_on)}
    if idempotency_key:
        repayment["key"] = idempotency_key
    new_loan = {**loan, "repayments": [*loan["repayments"], repayment],
                "repaid_total": loan["repaid_total"] + amount, "outstanding": loan["outstanding"] - amount}
    after = loan_position(new_loan, paid_on)
    new = {**case, "loan": new_loan}
    if new_loan["outstanding"] == 0:
        new["loan"]["repaid_on"] = iso(paid_on)
    return new, [Event("welfare.loan.repaid.v1", {
        "loan_id": case["_id"], "case_id": case["_id"], "programme_id": case["programme_id"],
        "programme_kind": case["programme_kind"], "programme_year": case["programme_year"],
        "member_id": case["member_id"], "unit_id": case["unit_id"], "ancestors": case["ancestors"],
        "amount": amount, "paid_on": iso(paid_on), "seq": repayment["seq"],
        "principal": loan["principal"], "repaid_total": new_loan["repaid_total"],
        "outstanding": new_loan["outstanding"], "late": before.overdue_amount > 0,
        "overdue_amount": after.overdue_amount, "fully_repaid": new_loan["outstanding"] == 0})]

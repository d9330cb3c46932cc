"""The pure projection, event type by event type, for EVERY type listed in docs/events.md: each is
counted by its source's projector (with a test here that checks its effects) or explicitly ignored
(with a test here that it changes nothing). Then the projector's handler on the in-memory
generation (the database's fake): facts on leaf units summed at every level, hierarchy moves and
merges, dedupe."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from platformkit import contract

from platformkit.consumer import Record
from platformkit.envelope import new_event
from services.reporting.generations import MemoryGeneration
from services.reporting.periods import parse
from services.reporting.projection import PROJECTORS, projector_for
from services.reporting.projector import ProjectorHandler
from services.reporting.views import period_sums

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
ANC = ["VN", "P1", "D1"]
MEMBER = {"member_id": "m1", "unit_id": "C1", "ancestors": ANC, "full_name": "Nguyễn Thị Hà", "gender": "female",
          "is_official": True}
CLASS = {"class_id": "k1", "class_code": "K1", "course_id": "c1", "course_code": "C", "topic": "law",
         "audience": "members", "format": "in_person", "organising_unit_id": "D1", "organising_ancestors": ["VN", "P1"],
         "start_date": "2025-03-01", "end_date": "2025-03-03", "days_count": 3}
CASE = {"case_id": "w1", "programme_id": "p1", "programme_kind": "micro_loan", "programme_year": 2025, "member_id": "m1",
        "unit_id": "C1", "ancestors": ANC, "hardship_type": "illness", "amount": 5_000_000, "form": "cash",
        "funding": [{"source": "union_fund", "amount": 5_000_000}], "principal": 5_000_000, "term_months": 12}


def documented_types() -> set[str]:
    """Every event type of docs/events.md's tables of the topics the projector folds, without its
    version (reporting.events, the periodic reports' own lifecycle, is not a source of the views)."""
    sources = {t.split(".")[0] for t in contract.REPORTING_SOURCES}
    return {t.rsplit(".", 1)[0] for t in re.findall(r"^\| `([a-z_]+\.[a-z_.]+\.v\d+)`", DOCS.read_text(), re.M)
            if t.split(".")[0] in sources}


def ev(type_: str, data: dict, subject: str | None = None, version: int = 1):
    source = type_.split(".")[0]
    return new_event(source, type_ + ".v1", subject or data.get("unit_id") or "x", data, version)


def project(env, state=None):
    p = projector_for(env)
    return p.project(env, state)


def deltas(fx) -> set[tuple]:
    return {(d.unit_id, d.indicator, d.month, d.amount) for d in fx.deltas}


# --- one case per counted type: (event, state before, expected deltas, check of the rest) ---------
ACTIVE_MEMBER = {"status": "active", "unit_id": "C1", "gender": "female", "is_official": True, "v": 2, "since": "2025-02"}
STOCK = lambda unit, month, sign: {(unit, "members.active", month, sign), (unit, "members.active_female", month, sign),  # noqa: E731
                                   (unit, "officials.total", month, sign)}
CDCS = {"founded": True, "status": "active", "sector": "non_state", "eligible_from": "2024-06", "v": 2}
COUNTED = {
    "membership.unit.created": (
        ev("membership.unit.created", {"unit_id": "C9", "parent_id": "D1", "ancestors": ANC, "name": "CĐCS 9",
                                       "code": "C9", "kind": "cdcs", "level": 4, "sector": "non_state",
                                       "effective_date": "2025-01-02"}), None, set(),
        lambda fx: fx.hierarchy.parent_id == "D1" and fx.hierarchy.fields["status"] == "active"),
    "membership.unit.renamed": (
        ev("membership.unit.renamed", {"unit_id": "C1", "ancestors": ANC, "old_name": "a", "name": "b",
                                       "effective_date": "2025-01-02"}), None, set(),
        lambda fx: fx.hierarchy.fields == {"name": "b"}),
    "membership.unit.moved": (
        ev("membership.unit.moved", {"unit_id": "C1", "old_parent_id": "D1", "parent_id": "D2", "old_ancestors": ANC,
                                     "ancestors": ["VN", "P1", "D2"], "effective_date": "2025-07-01"}), None, set(),
        lambda fx: fx.hierarchy.parent_id == "D2" and fx.hierarchy.context == {"moved_on": "2025-07-01"}),
    "membership.unit.merged": (
        ev("membership.unit.merged", {"unit_id": "C1", "into_unit_id": "C2", "ancestors": ANC, "into_ancestors": ANC,
                                      "effective_date": "2025-07-01"}, version=3), CDCS,
        {("C1", "cdcs.active", "2025-07", -1), ("C1", "cdcs.rating_eligible", "2025-07", -1),
         ("C1", "cdcs.rating_eligible.non_state", "2025-07", -1)},
        lambda fx: fx.hierarchy.fields == {"status": "merged", "closed_on": "2025-07-01", "merged_into": "C2"}
        and fx.hierarchy.context == {"into_ancestors": ANC}),
    "membership.unit.dissolved": (
        ev("membership.unit.dissolved", {"unit_id": "C1", "ancestors": ANC, "effective_date": "2025-07-01"},
           version=3), CDCS,
        {("C1", "cdcs.active", "2025-07", -1), ("C1", "cdcs.rating_eligible", "2025-07", -1),
         ("C1", "cdcs.rating_eligible.non_state", "2025-07", -1)},
        lambda fx: fx.hierarchy.fields == {"status": "dissolved", "closed_on": "2025-07-01"}),
    "membership.cdcs.founded": (
        ev("membership.cdcs.founded", {"unit_id": "C1", "ancestors": ANC, "sector": "non_state", "method": "new_method",
                                       "founding_member_count": 12, "decision_no": "1", "decision_date": "2025-03-01",
                                       "effective_date": "2025-03-05"}, version=2), None,
        {("C1", "cdcs.founded", "2025-03", 1), ("C1", "cdcs.active", "2025-03", 1),
         ("C1", "cdcs.founded_new_method", "2025-03", 1), ("C1", "cdcs.rating_eligible", "2026-03", 1),
         ("C1", "cdcs.rating_eligible.non_state", "2026-03", 1)},
        lambda fx: fx.new_state["eligible_from"] == "2026-03"),
    "membership.cdcs.rated": (
        ev("membership.cdcs.rated", {"unit_id": "C1", "ancestors": ANC, "sector": "non_state", "year": 2025,
                                     "rating": "good", "status": "confirmed", "confirmed_by_unit_id": "D1"},
           version=3), CDCS,
        {("C1", "cdcs.rated", "2025-11", 1), ("C1", "cdcs.rated.good", "2025-11", 1),
         ("C1", "cdcs.rated.good_or_better", "2025-11", 1), ("C1", "cdcs.rated.non_state", "2025-11", 1),
         ("C1", "cdcs.rated.good.non_state", "2025-11", 1), ("C1", "cdcs.rated.good_or_better.non_state", "2025-11", 1)},
        lambda fx: fx.new_state["ratings"] == {"2025": "good"}),
    "membership.committee.consolidated": (
        ev("membership.committee.consolidated", {"unit_id": "C1", "ancestors": ANC, "term": "2025-2030",
                                                 "date": "2025-04-09", "positions": []}), None,
        {("C1", "committees.consolidated", "2025-04", 1)}, lambda fx: fx.new_state is None),
    "membership.dues.recorded": (
        ev("membership.dues.recorded", {"member_id": "m1", "unit_id": "C1", "ancestors": ANC, "month": "2025-05",
                                        "salary": 9_000_000, "rate_permille": 10, "due": 90_000, "paid": 90_000,
                                        "exempt_reason": None}, subject="m1:2025-05", version=2),
        {"paid": 40_000, "due": 90_000, "v": 1}, {("C1", "dues.collected", "2025-05", 50_000)},
        lambda fx: fx.new_state == {"paid": 90_000, "due": 90_000, "v": 2}),
    "membership.member.admitted": (
        ev("membership.member.admitted", {**MEMBER, "admitted_on": "2025-02-03", "date_of_birth": "1990-01-01",
                                          "method": "individual"}, subject="m1"), None,
        {("C1", "members.admitted", "2025-02", 1)}, lambda fx: fx.new_state["status"] == "admitted"),
    "membership.member.refused": (
        ev("membership.member.refused", {**MEMBER, "admitted_on": "2025-02-03", "refused_on": "2025-03-01",
                                         "reason": "x", "refused_by_unit_id": "D1"}, subject="m1", version=2),
        {"status": "admitted", "admission": ["C1", "2025-02"], "v": 1}, {("C1", "members.admitted", "2025-02", -1)},
        lambda fx: fx.new_state["status"] == "refused"),
    "membership.member.approved": (
        ev("membership.member.approved", {**MEMBER, "approved_on": "2025-02-10", "approved_by_unit_id": "D1"},
           subject="m1", version=2), {"status": "admitted", "v": 1}, STOCK("C1", "2025-02", 1),
        lambda fx: fx.new_state["status"] == "active"),
    "membership.member.transferred": (
        ev("membership.member.transferred", {**MEMBER, "unit_id": "C2", "from_unit_id": "C1", "from_ancestors": ANC,
                                             "transferred_on": "2025-06-01", "reason": "transfer"}, subject="m1",
           version=3), ACTIVE_MEMBER,
        {("C1", "members.transferred_out", "2025-06", 1), ("C2", "members.transferred_in", "2025-06", 1)}
        | STOCK("C1", "2025-06", -1) | STOCK("C2", "2025-06", 1), lambda fx: fx.new_state["since"] == "2025-06"),
    "membership.member.left": (
        ev("membership.member.left", {**MEMBER, "left_on": "2025-08-01", "reason": "resigned"}, subject="m1",
           version=3), ACTIVE_MEMBER, {("C1", "members.left", "2025-08", 1)} | STOCK("C1", "2025-08", -1),
        lambda fx: fx.new_state["status"] == "left"),
    "membership.member.reinstated": (
        ev("membership.member.reinstated", {**MEMBER, "reinstated_on": "2025-09-01"}, subject="m1", version=4),
        {**ACTIVE_MEMBER, "status": "left", "v": 3}, STOCK("C1", "2025-09", 1),
        lambda fx: fx.new_state["status"] == "active"),
    "membership.member.profile_updated": (
        ev("membership.member.profile_updated", {**MEMBER, "is_official": False, "changed": ["is_official"],
                                                 "effective_date": "2025-05-20"}, subject="m1", version=3),
        ACTIVE_MEMBER, {("C1", "officials.total", "2025-05", -1)},
        lambda fx: fx.new_state["is_official"] is False),
    "training.enrolment.completed": (
        ev("training.enrolment.completed", {**CLASS, **MEMBER, "attended_days": 3, "required_days": 3, "score": 9,
                                            "grade": "good", "completed_on": "2025-03-03", "certificate_no": "X"},
           subject="k1"), None, {("C1", "officials.trained", "2025-03", 1)},
        lambda fx: fx.state_key == "trained:m1:2025"),
    "training.certificate.issued": (
        ev("training.certificate.issued", {**CLASS, **MEMBER, "attended_days": 3, "required_days": 3, "score": 9,
                                           "grade": "good", "certificate_no": "X", "issued_on": "2025-03-04"},
           subject="k1"), None, {("C1", "training.certificates", "2025-03", 1)}, lambda fx: fx.new_state is None),
    "training.class.closed": (
        ev("training.class.closed", {**CLASS, "closed_on": "2025-03-04", "enrolled": 3, "completed": 2,
                                     "not_completed": 1, "certificates_issued": 2, "officials_enrolled": 1,
                                     "officials_completed": 1}, subject="k1"), None,
        {("D1", "training.classes_held", "2025-03", 1)}, lambda fx: fx.unit_hints == [("D1", ["VN", "P1"])]),
    "training.dissemination.recorded": (
        ev("training.dissemination.recorded", {"session_id": "s1", "organising_unit_id": "D1",
                                               "organising_ancestors": ["VN", "P1"], "topic": "t", "document_ref": "r",
                                               "held_on": "2025-04-02", "format": "in_person", "audience": "members",
                                               "reached": [{"unit_id": "C1", "ancestors": ANC, "members_reached": 7,
                                                            "identified": 5, "unidentified": 2}],
                                               "members_reached": 7, "members_identified": 5, "unidentified": 2,
                                               "units_reached": 1, "cdcs_reached": 1}, subject="s1"), None,
        {("C1", "training.members_reached", "2025-04", 7)}, lambda fx: True),
    "training.dissemination.member_reached": (
        ev("training.dissemination.member_reached", {"session_id": "s1", "organising_unit_id": "D1",
                                                     "held_on": "2025-04-02", "member_id": "m1", "unit_id": "C1",
                                                     "ancestors": ANC, "cdcs_id": "C1"}, subject="s1"), None,
        {("C1", "training.members_reached_distinct", "2025-04", 1)}, lambda fx: fx.state_key == "reached:m1:2025"),
    "training.dissemination.cdcs_reached": (
        ev("training.dissemination.cdcs_reached", {"session_id": "s1", "organising_unit_id": "D1",
                                                   "held_on": "2025-04-02", "unit_id": "C1", "ancestors": ANC,
                                                   "members_identified": 5}, subject="s1"), None,
        {("C1", "training.cdcs_reached", "2025-04", 1)}, lambda fx: fx.state_key == "reached-cdcs:C1:2025"),
    "welfare.case.disbursed": (
        ev("welfare.case.disbursed", {**CASE, "disbursed_on": "2025-05-06", "disbursed_by_unit_id": "D1",
                                      "approved_by_unit_id": "D1", "approved_level": 3, "outstanding": 5_000_000,
                                      "first_due_on": "2025-06-06", "last_due_on": "2026-05-06",
                                      "instalment_amount": 416_667}, subject="w1"), None,
        {("C1", "welfare.cases", "2025-05", 1), ("C1", "welfare.cases.micro_loan", "2025-05", 1),
         ("C1", "welfare.amount", "2025-05", 5_000_000), ("C1", "welfare.amount.micro_loan", "2025-05", 5_000_000),
         ("C1", "loans.outstanding", "2025-05", 5_000_000)}, lambda fx: fx.new_state is None),
    "welfare.loan.repaid": (
        ev("welfare.loan.repaid", {"loan_id": "w1", "case_id": "w1", "programme_id": "p1",
                                   "programme_kind": "micro_loan", "programme_year": 2025, "member_id": "m1",
                                   "unit_id": "C1", "ancestors": ANC, "amount": 416_667, "paid_on": "2025-06-06",
                                   "seq": 1, "principal": 5_000_000, "repaid_total": 416_667,
                                   "outstanding": 4_583_333, "late": False, "overdue_amount": 0,
                                   "fully_repaid": False}, subject="w1", version=2), None,
        {("C1", "loans.outstanding", "2025-06", -416_667)}, lambda fx: True),
}

IGNORED_DATA = {
    "membership.member.card_issued": {**MEMBER, "member_number": "0001", "issued_on": "2025-03-01"},
    "membership.member.transfer_requested": {**MEMBER, "to_unit_id": "S9", "to_ancestors": ["VN", "P2", "D2"],
                                             "letter_no": "1/GGT", "letter_date": "2025-03-01", "requested_by": "u",
                                             "requested_on": "2025-03-01"},
    "membership.member.transfer_refused": {**MEMBER, "to_unit_id": "S9", "letter_no": "1/GGT",
                                           "letter_date": "2025-03-01", "on": "2025-03-05", "by": "u", "reason": "x"},
    "membership.member.transfer_cancelled": {**MEMBER, "to_unit_id": "S9", "letter_no": "1/GGT",
                                             "letter_date": "2025-03-01", "on": "2025-03-05", "by": "u"},
    "membership.unit.change_scheduled": {"unit_id": "D1", "ancestors": ["VN", "P1"], "change_id": "sc-1",
                                         "kind": "move", "date": "2025-07-01", "params": {"parent_id": "P2"}},
    "membership.unit.change_cancelled": {"unit_id": "D1", "ancestors": ["VN", "P1"], "change_id": "sc-1",
                                         "kind": "move", "date": "2025-07-01", "by": "u"},
    "training.course.registered": {"course_id": "c1", "code": "C", "name": "n", "owner_unit_id": "P1",
                                   "owner_ancestors": ["VN"], "status": "active"},
    "training.course.retired": {"course_id": "c1", "code": "C", "name": "n", "owner_unit_id": "P1",
                                "owner_ancestors": ["VN"], "status": "retired"},
    "training.class.planned": {**CLASS, "capacity": 30, "location": "x"},
    "training.class.opened": {**CLASS, "capacity": 30},
    "training.class.started": {**CLASS, "enrolled": 3},
    "training.class.cancelled": {**CLASS, "cancelled_on": "2025-03-01", "reason": "x", "enrolled_member_ids": ["m1"]},
    "training.enrolment.created": {**CLASS, **MEMBER, "enrolled_on": "2025-02-01"},
    "training.enrolment.withdrawn": {**CLASS, **MEMBER, "withdrawn_on": "2025-02-02", "reason": "x"},
    "training.attendance.recorded": {**CLASS, "date": "2025-03-01", "present": ["m1"], "absent": [],
                                     "present_count": 1, "absent_count": 0},
    "training.enrolment.not_completed": {**CLASS, **MEMBER, "attended_days": 1, "required_days": 3, "score": 2,
                                         "assessed_on": "2025-03-04", "reason": "attendance"},
    "welfare.programme.created": {"programme_id": "p1", "name": "n", "kind": "micro_loan", "year": 2025,
                                  "unit_id": "D1", "ancestors": ["VN", "P1"], "budget": 1, "funding_sources": []},
    "welfare.case.requested": {**CASE, "requested_on": "2025-05-01"},
    "welfare.case.approved": {**CASE, "approved_on": "2025-05-02", "approved_by_unit_id": "D1", "approved_level": 3},
    "welfare.case.rejected": {**CASE, "rejected_on": "2025-05-02", "reason": "x", "rejected_by_unit_id": "D1",
                              "rejected_level": 3},
}


def test_every_documented_type_is_counted_or_ignored_by_exactly_one_projector_and_tested_here():
    documented = documented_types()
    assert len(documented) > 30  # the parse found the tables
    for t in documented:
        p = PROJECTORS[t.split(".")[0]]
        assert (t in p.counts) != (t in p.ignores), f"{t}: neither counted nor ignored (or both) by {p.source}"
    handled = {t for p in PROJECTORS.values() for t in set(p.counts) | set(p.ignores)}
    assert handled == documented, f"projected but not documented: {handled - documented}"
    assert set(COUNTED) == {t for p in PROJECTORS.values() for t in p.counts}, "a counted type without its test"
    assert set(IGNORED_DATA) == {t for p in PROJECTORS.values() for t in p.ignores}, "an ignored type without its test"


@pytest.mark.parametrize("type_", sorted(COUNTED))
def test_each_counted_type_projects_its_facts(type_):
    env, state, expected, check = COUNTED[type_]
    p = projector_for(env)
    assert type_ in p.counts
    key = p.state_key(env)
    fx = p.project(env, state)
    assert deltas(fx) == expected
    assert check(fx)
    if fx.new_state is not None:
        assert fx.state_key == key  # remembered under the key the handler loads it by
    # a redelivery of an event whose state was saved adds nothing (membership: version guard)
    if env.source == "membership" and fx.new_state is not None:
        assert not project(env, fx.new_state).deltas


@pytest.mark.parametrize("type_", sorted(IGNORED_DATA))
def test_each_ignored_type_changes_nothing(type_):
    env = ev(type_, IGNORED_DATA[type_], subject="s")
    p = projector_for(env)
    assert type_ in p.ignores and p.ignores[type_]
    fx = p.project(env, None)
    assert not fx.deltas and fx.hierarchy is None  # (a member event may refresh the member's memory)
    if type_.startswith("membership.member."):  # nor for a member who counts as active where it is
        fx = p.project(env, {"status": "active", "unit_id": env.data["unit_id"], "gender": "female", "v": 0})
        assert not fx.deltas and fx.hierarchy is None


def test_an_unknown_source_projects_nothing():
    assert projector_for(new_event("elsewhere", "elsewhere.thing.done.v1", "x", {}, 1)).project(
        new_event("elsewhere", "elsewhere.thing.done.v1", "x", {}, 1), None).empty


# ------------------------------------------------------------------ the handler on the in-memory fake
class Feed:
    """Records as the consumer hands them to the handler: one partition per source, offsets in order."""

    def __init__(self):
        self.offsets: dict[str, int] = {}

    def records(self, envs) -> list[Record]:
        out = []
        for env in envs:
            topic = f"{env.source}.events"
            off = self.offsets.get(topic, 0)
            self.offsets[topic] = off + 1
            out.append(Record(topic, 0, off, env.subject.encode(), b"", 0, env))
        return out


def unit_created(uid, parent, ancestors, kind="cdcs", version=1):
    return ev("membership.unit.created", {"unit_id": uid, "parent_id": parent, "ancestors": ancestors, "name": uid,
                                          "code": uid, "kind": kind, "level": len(ancestors) + 1, "sector": None,
                                          "effective_date": "2020-01-01"}, version=version)


def admitted(member, unit, ancestors, on):
    return ev("membership.member.admitted", {**MEMBER, "member_id": member, "unit_id": unit, "ancestors": ancestors,
                                             "admitted_on": on, "date_of_birth": "1990-01-01",
                                             "method": "individual"}, subject=member)


def figure(gen, unit, period, code="members.admitted"):
    return period_sums(gen, [unit], parse(period))[unit].get(code, 0)


def test_facts_count_at_every_level_once_even_when_delivered_twice():
    gen = MemoryGeneration()
    handler = ProjectorHandler(gen)
    feed = Feed()
    envs = [unit_created("P1", "VN", ["VN"], "province"), unit_created("D1", "P1", ["VN", "P1"], "district"),
            unit_created("C1", "D1", ANC), admitted("m1", "C1", ANC, "2020-03-01"),
            admitted("m2", "C1", ANC, "2020-04-01")]
    assert handler(feed.records(envs)) == {}
    assert handler(feed.records(envs[3:])) == {}  # re-published by a relay: same envelopes, new offsets
    assert [figure(gen, u, "2020") for u in ("C1", "D1", "P1")] == [2, 2, 2]


def test_an_event_lacking_its_facts_is_rejected_not_counted():
    gen = MemoryGeneration()
    bad = ev("membership.member.admitted", {"unit_id": "C1"}, subject="m1")
    assert list(ProjectorHandler(gen)(Feed().records([bad]))) == [0]


def test_a_moved_unit_carries_its_history_and_closed_units_name_their_successors():
    gen = MemoryGeneration()
    handler = ProjectorHandler(gen)
    feed = Feed()
    d1, d2 = ["VN", "P1", "D1"], ["VN", "P1", "D2"]
    handler(feed.records([
        unit_created("P1", "VN", ["VN"], "province"), unit_created("D1", "P1", ["VN", "P1"], "district"),
        unit_created("D2", "P1", ["VN", "P1"], "district"), unit_created("C1", "D1", d1), unit_created("C2", "D2", d2),
        unit_created("C3", "D1", d1), admitted("m1", "C1", d1, "2020-03-01"), admitted("m2", "C1", d1, "2020-03-02"),
        admitted("m3", "C2", d2, "2020-05-01")]))
    # C1 leaves D1 for D2 with its history; D1 is dissolved: D2 succeeds it
    handler(feed.records([
        ev("membership.unit.moved", {"unit_id": "C1", "old_parent_id": "D1", "parent_id": "D2", "old_ancestors": d1,
                                     "ancestors": d2, "effective_date": "2025-07-01"}, version=2),
        ev("membership.unit.moved", {"unit_id": "C3", "old_parent_id": "D1", "parent_id": "D2", "old_ancestors": d1,
                                     "ancestors": d2, "effective_date": "2025-07-01"}, version=2),
        ev("membership.unit.dissolved", {"unit_id": "D1", "ancestors": ["VN", "P1"], "effective_date": "2025-07-01"},
           version=2)]))
    assert [figure(gen, u, "2020") for u in ("C1", "D1", "D2", "P1")] == [2, 0, 3, 3]
    assert gen.unit("D1")["successors"] == ["D2"] and gen.unit("D2")["predecessors"] == ["D1"]
    # C1 merges into C2: its documents stay (the parent's figures never change), both name each other
    handler(feed.records([ev("membership.unit.merged", {"unit_id": "C1", "into_unit_id": "C2", "ancestors": d2,
                                                        "into_ancestors": d2, "effective_date": "2025-08-01"},
                             version=3)]))
    assert [figure(gen, u, "2020") for u in ("C1", "C2", "D2", "P1")] == [2, 1, 3, 3]
    assert gen.unit("C1")["successors"] == ["C2"] and gen.unit("C2")["predecessors"] == ["C1"]
    assert gen.unit("C1")["status"] == "merged" and gen.unit("C1")["closed_on"] == "2025-08-01"

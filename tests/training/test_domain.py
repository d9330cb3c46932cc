"""The training rules, pure (no broker, no database)."""
from datetime import date

import pytest

from platformkit.errors import Conflict, InvalidInput, NotFound, RuleViolated
from services.training import domain

D1 = date(2025, 10, 6)
ANC = {"HCM": ["VN"], "P1": ["VN", "HCM"], "P2": ["VN", "HCM"], "C1": ["VN", "HCM", "P1"],
       "C3": ["VN", "HCM", "P2"]}


def course(**over):
    cmd = {"code": "atvsld-2d", "name": "ATVSLĐ", "topic": "osh", "audience": "full_time_officials",
           "duration_days": 2, "owner_unit_id": "HCM", **over}
    c, events = domain.register_course("course-1", cmd, ANC["HCM"])
    return c


def member(mid="m1", unit="C1", status="active", official=True):
    return {"_id": mid, "unit_id": unit, "status": status, "is_official": official, "full_name": "Trần Văn Bình"}


def planned(capacity=3, duration_days=2, org="P1", **over):
    cls, _ = domain.plan_class("class-1", {"code": "HCM-ATVS-01", "organising_unit_id": org,
                                           "start_date": D1, "capacity": capacity, **over},
                               course(duration_days=duration_days), ANC[org])
    return cls


def running(members=("m1", "m2"), **kw):
    cls, _ = domain.open_class(planned(**kw))
    for m in members:
        cls, _ = domain.enrol(cls, member(m), ANC["C1"], m, D1)
    cls, _ = domain.start_class(cls)
    return cls


# ---------------------------------------------------------------- catalogue

def test_course_is_validated_and_normalised():
    c, events = domain.register_course("k", {"code": " atvsld-1 ", "name": " ATVSLĐ ", "topic": "osh",
                                             "audience": "members", "duration_days": 1, "owner_unit_id": "HCM"},
                                       ["VN"])
    assert c["code"] == "ATVSLD-1" and c["name"] == "ATVSLĐ" and c["min_attendance_percent"] == 80
    assert [e.type for e in events] == ["training.course.registered.v1"]
    assert events[0].data["owner_ancestors"] == ["VN"]


@pytest.mark.parametrize("over, field", [
    ({"duration_days": 0}, "duration_days"), ({"duration_days": 400}, "duration_days"),
    ({"duration_days": True}, "duration_days"), ({"topic": "cooking"}, "topic"),
    ({"audience": "x"}, "audience"), ({"code": "a b"}, "code"), ({"name": "  "}, "name"),
    ({"min_attendance_percent": 30}, "min_attendance_percent")])
def test_bad_course_is_refused_naming_the_field(over, field):
    with pytest.raises(InvalidInput) as exc:
        course(**over)
    assert exc.value.field == field


def test_course_of_unknown_owner_is_refused():
    with pytest.raises(RuleViolated) as exc:
        domain.register_course("k", {"owner_unit_id": "ZZ", "duration_days": 1}, None)
    assert exc.value.field == "owner_unit_id"


def test_retired_course_cannot_be_planned_or_retired_twice():
    retired, events = domain.retire_course(course())
    assert retired["status"] == "retired" and events[0].type == "training.course.retired.v1"
    with pytest.raises(RuleViolated):
        domain.retire_course(retired)
    with pytest.raises(RuleViolated) as exc:
        domain.plan_class("c", {"organising_unit_id": "P1", "code": "X1", "start_date": D1, "capacity": 5},
                          retired, ANC["P1"])
    assert exc.value.field == "course_id"


# ---------------------------------------------------------------- classes

def test_class_days_default_to_consecutive_days_and_events_carry_the_facts():
    cls, events = domain.plan_class("class-1", {"code": "hcm-01", "organising_unit_id": "P1", "start_date": D1,
                                                "capacity": 30}, course(), ANC["P1"])
    assert cls["days"] == ["2025-10-06", "2025-10-07"] and cls["end_date"] == "2025-10-07"
    assert cls["status"] == "planned" and cls["code"] == "HCM-01"
    e = events[0]
    assert e.type == "training.class.planned.v1"
    assert e.data["organising_unit_id"] == "P1" and e.data["organising_ancestors"] == ["VN", "HCM"]
    assert e.data["topic"] == "osh" and e.data["audience"] == "full_time_officials" and e.data["days_count"] == 2


def test_class_rules():
    cmd = {"code": "X1", "organising_unit_id": "P1", "start_date": D1, "capacity": 5}
    with pytest.raises(RuleViolated) as exc:  # 2-day course, 3 days given
        domain.plan_class("c", {**cmd, "days": [D1, date(2025, 10, 8), date(2025, 10, 9)]}, course(), ANC["P1"])
    assert exc.value.field == "days"
    with pytest.raises(InvalidInput) as exc:
        domain.plan_class("c", {**cmd, "days": [date(2025, 10, 8), date(2025, 10, 9)]}, course(), ANC["P1"])
    assert exc.value.field == "days"
    with pytest.raises(InvalidInput) as exc:
        domain.plan_class("c", {**cmd, "capacity": 501}, course(), ANC["P1"])
    assert exc.value.field == "capacity"
    # a province course is usable below the province, a commune course is not usable by the province
    p1_course = course(owner_unit_id="P1")
    with pytest.raises(RuleViolated) as exc:
        domain.plan_class("c", {**cmd, "organising_unit_id": "HCM"}, p1_course, ANC["HCM"])
    assert exc.value.field == "course_id"
    with pytest.raises(RuleViolated) as exc:
        domain.plan_class("c", {**cmd, "organising_unit_id": "P2"}, p1_course, ANC["P2"])
    assert exc.value.field == "course_id"
    with pytest.raises(RuleViolated) as exc:
        domain.plan_class("c", cmd, course(), None)
    assert exc.value.field == "organising_unit_id"


def test_state_machine():
    cls = planned()
    for step in (domain.start_class, lambda c: domain.close_class(c, D1)):
        with pytest.raises(RuleViolated) as exc:
            step(cls)
        assert exc.value.field == "status"
    cls, ev = domain.open_class(cls)
    assert cls["status"] == "open" and ev[0].type == "training.class.opened.v1"
    with pytest.raises(RuleViolated):
        domain.open_class(cls)
    cls, ev = domain.start_class(cls)
    assert cls["status"] == "running" and ev[0].type == "training.class.started.v1"
    cls, ev = domain.close_class(cls, D1)
    assert cls["status"] == "closed" and ev[0].type == "training.class.closed.v1"
    with pytest.raises(RuleViolated):
        domain.cancel_class(cls, D1, "late")


def test_cancel_lists_enrolled_members_and_is_refused_after_a_certificate():
    cls = running(members=("m1", "m2"))
    cancelled, ev = domain.cancel_class(cls, D1, "bão")
    assert cancelled["status"] == "cancelled" and ev[0].data["enrolled_member_ids"] == ["m1", "m2"]
    cls, _ = domain.record_attendance(cls, date(2025, 10, 6), ["m1"])
    cls, _ = domain.record_attendance(cls, date(2025, 10, 7), ["m1"])
    cls, _ = domain.assess_completion(cls, "m1", 8, D1)
    with pytest.raises(RuleViolated):
        domain.cancel_class(cls, D1, "bão")


# ---------------------------------------------------------------- enrolment

def test_enrolment_records_member_facts_from_the_view():
    cls, _ = domain.open_class(planned())
    cls, ev = domain.enrol(cls, member("m1", official=True), ANC["C1"], "m1", D1)
    assert cls["seats_taken"] == 1
    assert ev[0].type == "training.enrolment.created.v1"
    d = ev[0].data
    assert (d["member_id"], d["unit_id"], d["ancestors"], d["is_official"]) == ("m1", "C1", ANC["C1"], True)
    assert d["organising_unit_id"] == "P1" and d["class_id"] == "class-1" and d["topic"] == "osh"


@pytest.mark.parametrize("view, ancestors, error, field", [
    (None, None, RuleViolated, "member_id"),                                   # unknown
    (member(status="left"), ANC["C1"], RuleViolated, "member_id"),             # left
    (member(status="admitted"), ANC["C1"], RuleViolated, "member_id"),         # not approved yet
    (member(unit="C3"), ANC["C3"], RuleViolated, "member_id"),                 # outside the organiser P1
    (member(), None, RuleViolated, "member_id"),                               # unit unknown
])
def test_enrolment_refusals(view, ancestors, error, field):
    cls, _ = domain.open_class(planned())
    with pytest.raises(error) as exc:
        domain.enrol(cls, view, ancestors, "m1", D1)
    assert exc.value.field == field


def test_capacity_duplicate_withdraw_and_reenrol():
    cls, _ = domain.open_class(planned(capacity=2))
    cls, _ = domain.enrol(cls, member("m1"), ANC["C1"], "m1", D1)
    with pytest.raises(Conflict):
        domain.enrol(cls, member("m1"), ANC["C1"], "m1", D1)
    cls, _ = domain.enrol(cls, member("m2"), ANC["C1"], "m2", D1)
    with pytest.raises(RuleViolated) as exc:
        domain.enrol(cls, member("m3"), ANC["C1"], "m3", D1)
    assert exc.value.field == "capacity"
    cls, ev = domain.withdraw(cls, "m1", D1, "ốm")
    assert cls["seats_taken"] == 1 and ev[0].type == "training.enrolment.withdrawn.v1"
    cls, _ = domain.enrol(cls, member("m3"), ANC["C1"], "m3", D1)
    with pytest.raises(RuleViolated):  # full again
        domain.enrol(cls, member("m1"), ANC["C1"], "m1", D1)
    with pytest.raises(NotFound):
        domain.withdraw(cls, "m1", D1, None)
    assert [e["member_id"] for e in cls["enrolments"] if e["status"] == "enrolled"] == ["m2", "m3"]


def test_enrolment_only_while_open():
    with pytest.raises(RuleViolated) as exc:
        domain.enrol(planned(), member(), ANC["C1"], "m1", D1)
    assert exc.value.field == "status"


# ---------------------------------------------------------------- attendance and completion

def test_attendance_roll_call_replaces_the_day_and_refuses_strangers_and_other_days():
    cls = running()
    cls, ev = domain.record_attendance(cls, date(2025, 10, 6), ["m1", "m2", "m1"])
    assert ev[0].data["present"] == ["m1", "m2"] and ev[0].data["absent"] == []
    cls, ev = domain.record_attendance(cls, date(2025, 10, 6), ["m2"])
    assert domain.find_enrolment(cls, "m1")["attended"] == []
    assert domain.find_enrolment(cls, "m2")["attended"] == ["2025-10-06"]
    assert ev[0].data["absent"] == ["m1"]
    with pytest.raises(RuleViolated) as exc:
        domain.record_attendance(cls, date(2025, 10, 9), ["m1"])
    assert exc.value.field == "date"
    with pytest.raises(RuleViolated) as exc:
        domain.record_attendance(cls, date(2025, 10, 7), ["m1", "stranger"])
    assert exc.value.field == "present" and "stranger" in exc.value.message


@pytest.mark.parametrize("days, pct, need", [(1, 80, 1), (2, 80, 2), (5, 80, 4), (10, 80, 8), (3, 50, 2),
                                             (4, 75, 3)])
def test_required_days_round_up(days, pct, need):
    assert domain.required_days(days, pct) == need


@pytest.mark.parametrize("score, grade", [(10, "excellent"), (9, "excellent"), (8.9, "good"), (8, "good"),
                                          (6.5, "fair"), (6.4, "average"), (5, "average"), (4.9, "fail")])
def test_grades(score, grade):
    assert domain.grade_for(score) == grade


def test_completion_needs_the_attendance_share_and_a_pass_score():
    cls = running(members=("m1", "m2", "m3", "m4"), capacity=4)
    cls, _ = domain.record_attendance(cls, date(2025, 10, 6), ["m1", "m2", "m3"])
    cls, _ = domain.record_attendance(cls, date(2025, 10, 7), ["m1", "m3", "m4"])
    # m2 attended 1 of 2 days (< 80%): not completed, whatever the score
    cls, ev = domain.assess_completion(cls, "m2", 10, D1)
    assert domain.find_enrolment(cls, "m2")["status"] == "not_completed"
    assert [e.type for e in ev] == ["training.enrolment.not_completed.v1"]
    assert ev[0].data["reason"] == "attendance" and ev[0].data["attended_days"] == 1
    assert ev[0].data["required_days"] == 2
    cls, ev = domain.assess_completion(cls, "m3", 4.5, D1)
    assert ev[0].data["reason"] == "score" and cls["certificate_seq"] == 0
    cls, ev = domain.assess_completion(cls, "m1", 9.5, D1)
    assert [e.type for e in ev] == ["training.enrolment.completed.v1", "training.certificate.issued.v1"]
    assert ev[1].data["certificate_no"] == "HCM-ATVS-01-0001" and ev[1].data["grade"] == "excellent"
    assert ev[1].data["member_id"] == "m1" and ev[1].data["unit_id"] == "C1" and ev[1].data["is_official"]
    with pytest.raises(Conflict):
        domain.assess_completion(cls, "m1", 9.5, D1)
    with pytest.raises(RuleViolated) as exc:  # m4 not assessed yet
        domain.close_class(cls, D1)
    assert exc.value.field == "enrolments"
    cls, ev = domain.assess_completion(cls, "m4", 2, D1)
    assert ev[0].data["reason"] == "attendance"
    cls, _ = domain.record_attendance(cls, date(2025, 10, 7), [])  # assessed members are not touched
    assert domain.find_enrolment(cls, "m1")["attended"] == ["2025-10-06", "2025-10-07"]
    closed, ev = domain.close_class(cls, date(2025, 10, 8))
    assert ev[0].data["enrolled"] == 4 and ev[0].data["completed"] == 1 and ev[0].data["not_completed"] == 3
    assert ev[0].data["certificates_issued"] == 1 and ev[0].data["officials_completed"] == 1


def test_certificate_numbers_are_sequential_and_unique():
    cls = running(members=[f"m{i}" for i in range(1, 4)], capacity=5, duration_days=1)
    cls, _ = domain.record_attendance(cls, D1, ["m1", "m2", "m3"])
    numbers = []
    for m in ("m1", "m2", "m3"):
        cls, ev = domain.assess_completion(cls, m, 7, D1)
        numbers.append(ev[1].data["certificate_no"])
    assert numbers == ["HCM-ATVS-01-0001", "HCM-ATVS-01-0002", "HCM-ATVS-01-0003"]


def test_completion_refusals():
    cls = running()
    with pytest.raises(NotFound):
        domain.assess_completion(cls, "nobody", 7, D1)
    with pytest.raises(InvalidInput) as exc:
        domain.assess_completion(cls, "m1", 11, D1)
    assert exc.value.field == "score"
    with pytest.raises(RuleViolated):
        domain.assess_completion(domain.open_class(planned())[0], "m1", 7, D1)


# ---------------------------------------------------------------- dissemination

def test_dissemination_counts_members_reached_per_unit():
    cmd = {"organising_unit_id": "P1", "topic": "Nghị quyết Đại hội XIII Công đoàn Việt Nam",
           "held_on": D1, "reached": [{"unit_id": "C1", "members_reached": 40},
                                      {"unit_id": "P1", "members_reached": 5}]}
    s, ev = domain.record_dissemination("s1", cmd, ANC["P1"], {"C1": ANC["C1"], "P1": ANC["P1"]})
    assert s["members_reached"] == 45 and s["units_reached"] == 2
    assert ev[0].type == "training.dissemination.recorded.v1"
    assert ev[0].data["reached"][0] == {"unit_id": "C1", "ancestors": ANC["C1"], "members_reached": 40,
                                        "identified": 0, "unidentified": 40}
    assert [e.type for e in ev] == ["training.dissemination.recorded.v1"]  # head counts name nobody
    assert s["members_identified"] == 0 and s["cdcs_reached"] == 0 and s["unidentified"] == 45
    assert ev[0].data["organising_ancestors"] == ["VN", "HCM"]
    bad = {**cmd, "reached": [{"unit_id": "C3", "members_reached": 3}]}
    with pytest.raises(RuleViolated) as exc:
        domain.record_dissemination("s1", bad, ANC["P1"], {"C3": ANC["C3"]})
    assert exc.value.field == "reached"
    with pytest.raises(RuleViolated):
        domain.record_dissemination("s1", {**cmd, "reached": [{"unit_id": "ZZ", "members_reached": 3}]},
                                    ANC["P1"], {"ZZ": None})
    with pytest.raises(InvalidInput):
        domain.record_dissemination("s1", {**cmd, "reached": [{"unit_id": "C1", "members_reached": 0}]},
                                    ANC["P1"], {"C1": ANC["C1"]})


def reach(mid, unit="C1", status="active"):
    anc = ANC.get(unit, ["VN", "HCM", "P1"])
    return domain.Reach(member(mid, unit, status), anc, unit, anc)


def test_dissemination_of_identified_members_derives_units_and_cdcs_and_counts_each_member_once():
    cmd = {"organising_unit_id": "P1", "topic": "NQ", "held_on": D1,
           "member_ids": ["m2", "m1", "m2", "m3"], "reached": [{"unit_id": "C1", "members_reached": 4}]}
    facts = {"m1": reach("m1"), "m2": reach("m2"), "m3": reach("m3", "C2")}
    anc = {"C2": ["VN", "HCM", "P1"]}
    s, ev = domain.record_dissemination("s1", cmd, ANC["P1"], {"C1": ANC["C1"]}, facts)
    assert s["member_ids"] == ["m1", "m2", "m3"] and s["members_identified"] == 3  # m2 listed twice: once
    assert s["reached"] == [
        {"unit_id": "C1", "ancestors": ANC["C1"], "members_reached": 6, "identified": 2, "unidentified": 4},
        {"unit_id": "C2", "ancestors": anc["C2"], "members_reached": 1, "identified": 1, "unidentified": 0}]
    assert s["members_reached"] == 7 and s["unidentified"] == 4 and s["cdcs_ids"] == ["C1", "C2"]
    assert s["cdcs_reached"] == 2 and s["units_reached"] == 2
    types = [e.type.rsplit(".", 2)[1] for e in ev]
    assert types == ["recorded", "member_reached", "member_reached", "member_reached", "cdcs_reached", "cdcs_reached"]
    assert ev[1].data == {"session_id": "s1", "organising_unit_id": "P1", "held_on": "2025-10-06", "member_id": "m1",
                          "unit_id": "C1", "ancestors": ANC["C1"], "cdcs_id": "C1"}
    assert ev[4].data == {"session_id": "s1", "organising_unit_id": "P1", "held_on": "2025-10-06", "unit_id": "C1",
                          "ancestors": ANC["C1"], "members_identified": 2}
    assert ev[0].data["members_identified"] == 3 and ev[0].data["cdcs_reached"] == 2


def test_dissemination_refuses_unknown_left_inactive_and_outside_members_naming_them():
    cmd = {"organising_unit_id": "P1", "topic": "NQ", "held_on": D1,
           "member_ids": ["ghost", "gone", "new", "far", "ok"]}
    facts = {"ghost": domain.Reach(None, None), "gone": reach("gone", status="left"),
             "new": reach("new", status="admitted"), "far": reach("far", "C3"), "ok": reach("ok")}
    with pytest.raises(RuleViolated) as exc:
        domain.record_dissemination("s1", cmd, ANC["P1"], {}, facts)
    assert exc.value.field == "member_ids"
    msg = exc.value.message
    assert msg == ("ghost: not known to training; gone: left the union; new: not an active member yet; "
                   "far: outside the organising unit's subtree")
    with pytest.raises(InvalidInput) as exc:
        domain.record_dissemination("s1", {**cmd, "member_ids": []}, ANC["P1"], {}, {})
    assert exc.value.field == "member_ids"
    with pytest.raises(InvalidInput):
        too_many = [f"m{i}" for i in range(domain.MAX_MEMBERS_PER_SESSION + 1)]
        domain.record_dissemination("s1", {**cmd, "member_ids": too_many}, ANC["P1"], {}, {})

"""Training's handlers on the in-memory store (platformkit/memory_store.py runs the real Repository):
no broker, no server. Each command handler: the happy path (state and the events it committed, read
from the change documents' outboxes), a rule refusal, a scope refusal and a stale version (nothing
written), and the idempotent replay where the operation takes a key."""
from __future__ import annotations

import copy
from datetime import date

import pytest

from platformkit import paging
from platformkit.auth import Caller
from platformkit.errors import Conflict, Forbidden, NotFound, RuleViolated, StaleVersion
from platformkit.idempotency import KeyReused
from platformkit.memory_store import MemoryDatabase
from services.training import commands as c
from services.training import service
from services.training.stores import CLASSES, COURSES, INDEXES, SESSIONS, Stores
from services.training.view import apply_membership_batch
from tests.training.support import TREE, active_member, left_member, records, unit_created

HCM = Caller("officer-hcm", ("officer",), "HCM")
P1 = Caller("officer-p1", ("officer",), "P1")
P2 = Caller("officer-p2", ("officer",), "P2")  # a sibling subtree of P1
VIEWER = Caller("viewer-hcm", ("viewer",), "HCM")
COURSE = c.RegisterCourse(code="ATVSLD-2D", name="An toàn, vệ sinh lao động", topic="osh",
                          audience="full_time_officials", duration_days=2, owner_unit_id="HCM")
START = date(2025, 10, 6)


@pytest.fixture
def stores() -> Stores:
    s = Stores(MemoryDatabase().with_indexes(INDEXES))
    events = [unit_created(u) for u in TREE]
    for mid, unit in (("m1", "C1"), ("m2", "C1"), ("m3", "C3")):
        events += active_member(mid, unit, is_official=mid == "m1", full_name=f"Nguyễn Văn {mid}")
    events += active_member("gone", "C1") + [left_member("gone", "C1")]
    assert apply_membership_batch(records(events), s) == {}
    return s


def everything(s: Stores) -> dict:
    """Every document of every collection: what "nothing written" compares."""
    return {name: copy.deepcopy(coll.docs) for name, coll in s.db._collections.items() if coll.docs}


def committed(s: Stores, collection: str, aggregate_id: str) -> list[str]:
    """The types of the events the aggregate's change documents carry, oldest first."""
    changes = s.db[f"{collection}_events"].find({"aggregate_id": aggregate_id}).sort("_id", 1)
    return [e["type"] for ch in changes for e in ch.get("outbox") or []]


def refused(s: Stores, exc: type[Exception], handler, cmd, caller) -> Exception:
    before = everything(s)
    with pytest.raises(exc) as info:
        handler(cmd, caller, s)
    assert everything(s) == before, "a refused command wrote something"
    return info.value


def course(s: Stores, **kw) -> dict:
    return service.register_course(c.RegisterCourse(**{**vars(COURSE), **kw}), HCM, s)


def klass(s: Stores, *steps: str, code: str = "L-01", capacity: int = 5) -> dict:
    course_id = course(s, code=f"C-{code}")["_id"]
    cls = service.plan_class(c.PlanClass(course_id=course_id, code=code, organising_unit_id="P1",
                                         start_date=START, capacity=capacity), P1, s)
    for step in steps:
        if step == "open":
            service.open_class(c.OpenClass(class_id=cls["_id"]), P1, s)
        elif step == "start":
            service.start_class(c.StartClass(class_id=cls["_id"]), P1, s)
        else:  # enrol a member
            service.enrol(c.EnrolMember(class_id=cls["_id"], member_id=step), P1, s)
    return s.classes.load(cls["_id"])


# ---------------------------------------------------------------- courses

def test_register_course(stores):
    out = course(stores)
    assert out["status"] == "active" and out["owner_ancestors"] == ["VN"] and out["version"] == 1
    assert stores.courses.load(out["_id"])["code"] == "ATVSLD-2D"
    assert committed(stores, COURSES, out["_id"]) == ["training.course.registered.v1"]
    # rule: an owner training has not heard of; scope: a commune registering for its province
    refused(stores, RuleViolated, service.register_course, c.RegisterCourse(**{**vars(COURSE), "owner_unit_id": "X"}),
            Caller("root", ("admin",), "*"))
    refused(stores, Forbidden, service.register_course, COURSE, P1)
    refused(stores, Forbidden, service.register_course, COURSE, VIEWER)  # may read, not write
    refused(stores, Conflict, service.register_course, COURSE, HCM)  # the code is taken in HCM


def test_register_course_replays_a_retry_with_the_same_key(stores):
    keyed = c.RegisterCourse(**{**vars(COURSE), "idempotency_key": "k-1"})
    first = service.register_course(keyed, HCM, stores)
    again = service.register_course(keyed, HCM, stores)
    assert again == first
    assert stores.courses.coll.count_documents({}) == 1
    assert committed(stores, COURSES, first["_id"]) == ["training.course.registered.v1"]
    refused(stores, KeyReused, service.register_course, c.RegisterCourse(**{**vars(keyed), "name": "Khác"}), HCM)


def test_retire_course(stores):
    course_id = course(stores)["_id"]
    refused(stores, Forbidden, service.retire_course, c.RetireCourse(course_id=course_id), P1)
    refused(stores, StaleVersion, service.retire_course, c.RetireCourse(course_id=course_id, version=7), HCM)
    out = service.retire_course(c.RetireCourse(course_id=course_id, version=1), HCM, stores)
    assert out["status"] == "retired" and out["version"] == 2
    assert committed(stores, COURSES, course_id) == ["training.course.registered.v1", "training.course.retired.v1"]
    refused(stores, RuleViolated, service.retire_course, c.RetireCourse(course_id=course_id), HCM)


def test_course_reads_follow_the_catalogue_downward(stores):
    course_id = course(stores)["_id"]
    assert service.get_course(course_id, P1, stores)["_id"] == course_id  # owner above the caller
    assert [x["_id"] for x in service.list_courses({}, P2, stores)["items"]] == [course_id]
    with pytest.raises(Forbidden):
        service.get_course(course_id, Caller("other", ("officer",), "ELSEWHERE"), stores)


# ---------------------------------------------------------------- classes

def test_plan_class(stores):
    course_id = course(stores)["_id"]
    plan = c.PlanClass(course_id=course_id, code="L-01", organising_unit_id="P1", start_date=START, capacity=3,
                       days=(START, date(2025, 10, 8)))
    refused(stores, Forbidden, service.plan_class, plan, P2)
    refused(stores, RuleViolated, service.plan_class, c.PlanClass(**{**vars(plan), "course_id": "none"}), P1)
    out = service.plan_class(plan, P1, stores)
    assert out["status"] == "planned" and out["days"] == ["2025-10-06", "2025-10-08"]
    assert out["organising_ancestors"] == ["VN", "HCM"] and out["name"] == COURSE.name
    assert committed(stores, CLASSES, out["_id"]) == ["training.class.planned.v1"]
    refused(stores, Conflict, service.plan_class, plan, P1)  # the class code is taken


def test_plan_class_replays_a_retry_with_the_same_key(stores):
    course_id = course(stores)["_id"]
    plan = c.PlanClass(course_id=course_id, code="L-01", organising_unit_id="P1", start_date=START, capacity=3,
                       idempotency_key="k-1")
    first = service.plan_class(plan, P1, stores)
    assert service.plan_class(plan, P1, stores) == first
    assert stores.classes.coll.count_documents({}) == 1
    refused(stores, KeyReused, service.plan_class, c.PlanClass(**{**vars(plan), "capacity": 4}), P1)


@pytest.mark.parametrize("handler, command, before, after, event", [
    (service.open_class, c.OpenClass, (), "open", "training.class.opened.v1"),
    (service.start_class, c.StartClass, ("open",), "running", "training.class.started.v1"),
    (service.close_class, lambda class_id, **kw: c.CloseClass(class_id=class_id, on=date(2025, 10, 9), **kw),
     ("open", "start"), "closed", "training.class.closed.v1"),
    (service.cancel_class, lambda class_id, **kw: c.CancelClass(class_id=class_id, reason="bão", **kw),
     ("open",), "cancelled", "training.class.cancelled.v1"),
])
def test_class_transitions(stores, handler, command, before, after, event):
    cls = klass(stores, *before)
    refused(stores, Forbidden, handler, command(class_id=cls["_id"]), P2)
    refused(stores, StaleVersion, handler, command(class_id=cls["_id"], version=cls["version"] + 1), P1)
    out = handler(command(class_id=cls["_id"], version=cls["version"]), P1, stores)
    assert out["status"] == after and out["version"] == cls["version"] + 1
    assert committed(stores, CLASSES, cls["_id"])[-1] == event
    refused(stores, RuleViolated, handler, command(class_id=cls["_id"]), P1)  # not from `after` again


def test_close_is_refused_while_an_enrolment_is_not_assessed(stores):
    cls = klass(stores, "open", "m1", "start")
    refused(stores, RuleViolated, service.close_class, c.CloseClass(class_id=cls["_id"]), P1)


# ---------------------------------------------------------------- enrolments

def test_enrol(stores):
    cls = klass(stores, "open", capacity=1)
    out = service.enrol(c.EnrolMember(class_id=cls["_id"], member_id="m1", on=date(2025, 10, 1)), P1, stores)
    assert out == {**out, "class_id": cls["_id"], "unit_id": "C1", "ancestors": ["VN", "HCM", "P1"],
                   "is_official": True, "status": "enrolled", "enrolled_on": "2025-10-01"}
    assert stores.classes.load(cls["_id"])["seats_taken"] == 1
    assert committed(stores, CLASSES, cls["_id"])[-1] == "training.enrolment.created.v1"
    refused(stores, RuleViolated, service.enrol, c.EnrolMember(class_id=cls["_id"], member_id="m2"), P1)  # full
    refused(stores, Conflict, service.enrol, c.EnrolMember(class_id=cls["_id"], member_id="m1"), P1)
    refused(stores, Forbidden, service.enrol, c.EnrolMember(class_id=cls["_id"], member_id="m2"), P2)
    refused(stores, StaleVersion, service.enrol, c.EnrolMember(class_id=cls["_id"], member_id="m2", version=1), P1)


def test_enrol_refuses_members_who_left_or_live_outside_the_organiser(stores):
    cls = klass(stores, "open")
    refused(stores, RuleViolated, service.enrol, c.EnrolMember(class_id=cls["_id"], member_id="gone"), P1)
    refused(stores, RuleViolated, service.enrol, c.EnrolMember(class_id=cls["_id"], member_id="m3"), P1)  # in P2
    refused(stores, RuleViolated, service.enrol, c.EnrolMember(class_id=cls["_id"], member_id="nobody"), P1)


def test_enrol_replays_a_retry_with_the_same_key(stores):
    cls = klass(stores, "open")
    cmd = c.EnrolMember(class_id=cls["_id"], member_id="m1", idempotency_key="k-1")
    first = service.enrol(cmd, P1, stores)
    assert service.enrol(cmd, P1, stores) == first
    assert committed(stores, CLASSES, cls["_id"]).count("training.enrolment.created.v1") == 1
    assert stores.classes.load(cls["_id"])["seats_taken"] == 1
    refused(stores, KeyReused, service.enrol, c.EnrolMember(**{**vars(cmd), "member_id": "m2"}), P1)


def test_withdraw(stores):
    cls = klass(stores, "open", "m1")
    cmd = c.WithdrawEnrolment(class_id=cls["_id"], member_id="m1", reason="ốm")
    refused(stores, Forbidden, service.withdraw, cmd, P2)
    refused(stores, StaleVersion, service.withdraw, c.WithdrawEnrolment(**{**vars(cmd), "version": 1}), P1)
    out = service.withdraw(cmd, P1, stores)
    assert out["status"] == "withdrawn" and out["reason"] == "ốm"
    assert stores.classes.load(cls["_id"])["seats_taken"] == 0
    assert committed(stores, CLASSES, cls["_id"])[-1] == "training.enrolment.withdrawn.v1"
    refused(stores, NotFound, service.withdraw, cmd, P1)  # not enrolled any more


def test_enrolment_reads(stores):
    cls = klass(stores, "open", "m1")
    assert [e["member_id"] for e in service.list_enrolments(cls["_id"], P1, stores)] == ["m1"]
    assert [e["class_id"] for e in service.member_enrolments("m1", Caller("c1", ("viewer",), "C1"), stores)] \
        == [cls["_id"]]  # the member's own CĐCS sees its place in a commune's class
    assert service.member_enrolments("m1", P2, stores) == []
    with pytest.raises(Forbidden):
        service.list_enrolments(cls["_id"], P2, stores)


# ---------------------------------------------------------------- attendance and completion

def test_record_attendance(stores):
    cls = klass(stores, "open", "m1", "m2", "start")
    cmd = c.RecordAttendance(class_id=cls["_id"], date=START, present=("m1",))
    refused(stores, Forbidden, service.record_attendance, cmd, P2)
    refused(stores, StaleVersion, service.record_attendance, c.RecordAttendance(**{**vars(cmd), "version": 1}), P1)
    refused(stores, RuleViolated, service.record_attendance,
            c.RecordAttendance(class_id=cls["_id"], date=date(2025, 12, 1), present=("m1",)), P1)  # no class day
    out = service.record_attendance(cmd, P1, stores)
    assert out == {"class_id": cls["_id"], "date": "2025-10-06", "present": ["m1"], "absent": ["m2"],
                   "version": cls["version"] + 1}
    assert committed(stores, CLASSES, cls["_id"])[-1] == "training.attendance.recorded.v1"


def test_assess_completion_issues_one_certificate_and_replays_a_retry(stores):
    cls = klass(stores, "open", "m1", "m2", "start")
    for day in (START, date(2025, 10, 7)):
        service.record_attendance(c.RecordAttendance(class_id=cls["_id"], date=day, present=("m1",)), P1, stores)
    cmd = c.AssessCompletion(class_id=cls["_id"], member_id="m1", score=8.5, on=date(2025, 10, 8),
                             idempotency_key="k-1")
    refused(stores, Forbidden, service.assess_completion, cmd, P2)
    refused(stores, StaleVersion, service.assess_completion, c.AssessCompletion(**{**vars(cmd), "version": 1}), P1)
    out = service.assess_completion(cmd, P1, stores)
    assert out["status"] == "completed" and out["certificate_no"] == "L-01-0001"
    assert out["days_count"] == 2 and out["required_days"] == 2
    assert committed(stores, CLASSES, cls["_id"])[-2:] == ["training.enrolment.completed.v1",
                                                           "training.certificate.issued.v1"]
    assert service.assess_completion(cmd, P1, stores) == out  # the retry: the same answer, no second certificate
    assert stores.classes.load(cls["_id"])["certificate_seq"] == 1
    refused(stores, Conflict, service.assess_completion, c.AssessCompletion(class_id=cls["_id"], member_id="m1",
                                                                             score=9), P1)  # assessed already
    # m2 never attended: not completed, no certificate
    out2 = service.assess_completion(c.AssessCompletion(class_id=cls["_id"], member_id="m2", score=9), P1, stores)
    assert out2["status"] == "not_completed" and out2["reason"] == "attendance" and out2["certificate_no"] is None
    cert = service.get_certificate("L-01-0001", Caller("c1", ("viewer",), "C1"), stores)
    assert cert["member_id"] == "m1" and cert["class_code"] == "L-01"
    assert [x["certificate_no"] for x in service.class_certificates(cls["_id"], P1, stores)] == ["L-01-0001"]
    with pytest.raises(Forbidden):
        service.get_certificate("L-01-0001", P2, stores)


# ---------------------------------------------------------------- dissemination sessions

SESSION = c.RecordDissemination(organising_unit_id="P1", topic="Nghị quyết Đại hội XIII", held_on=START,
                                member_ids=("m1", "m2", "m1"), reached=(c.HeadCount("C2", 12),))


def test_record_dissemination(stores):
    refused(stores, Forbidden, service.record_dissemination, SESSION, P2)
    refused(stores, RuleViolated, service.record_dissemination,
            c.RecordDissemination(**{**vars(SESSION), "member_ids": ("m1", "gone")}), P1)
    out = service.record_dissemination(SESSION, P1, stores)
    assert out["member_ids"] == ["m1", "m2"] and out["members_reached"] == 14 and out["cdcs_ids"] == ["C1"]
    assert out["version"] == 1
    doc = stores.sessions.find_one({"_id": out["_id"]})
    assert [e["type"] for e in doc["outbox"]] == ["training.dissemination.recorded.v1"] + \
        ["training.dissemination.member_reached.v1"] * 2 + ["training.dissemination.cdcs_reached.v1"]
    assert service.get_dissemination(out["_id"], P1, stores)["topic"] == SESSION.topic
    assert [x["_id"] for x in service.list_dissemination({}, HCM, stores)["items"]] == [out["_id"]]
    assert service.list_dissemination({}, P2, stores)["items"] == []


def test_record_dissemination_replays_a_retry_with_the_same_key(stores):
    keyed = c.RecordDissemination(**{**vars(SESSION), "idempotency_key": "k-1"})
    first = service.record_dissemination(keyed, P1, stores)
    assert service.record_dissemination(keyed, P1, stores) == first
    assert stores.db[SESSIONS].count_documents({}) == 1
    refused(stores, KeyReused, service.record_dissemination, c.RecordDissemination(**{**vars(keyed), "topic": "Khác"}),
            P1)


def test_class_list_latest_start_first_and_classes_stored_before_get_their_periods_once(stores):
    course_id = course(stores)["_id"]
    ids = {}
    for code, start in (("L-a", date(2024, 3, 1)), ("L-b", date(2025, 10, 6)), ("L-c", date(2025, 1, 20))):
        ids[code] = service.plan_class(c.PlanClass(course_id=course_id, code=code, organising_unit_id="P1",
                                                   start_date=start, capacity=3), P1, stores)["_id"]
    newest_first = [ids["L-b"], ids["L-c"], ids["L-a"]]

    def listed(caller, limit=10, **query):
        out, after = [], None
        while True:
            page = service.list_classes({"limit": limit, "after": after, **query}, caller, stores)
            out += [i["_id"] for i in page["items"]]
            assert all("scope_periods" not in i for i in page["items"])  # internal
            if page["next_cursor"] is None:
                return out
            after = paging.decode(page["next_cursor"])
    assert listed(HCM) == listed(P1) == listed(HCM, limit=1) == newest_first
    assert listed(P2) == [] and listed(HCM, status="open") == []

    stores.classes.coll.update_many({}, {"$unset": {"scope_periods": ""}})  # as stored before
    stores.db["list_periods"].delete_many({})
    assert listed(HCM) == []
    versions = {d["_id"]: d["version"] for d in stores.classes.coll.find({})}
    progress = []
    assert service.backfill_class_periods(stores, lambda done, total: progress.append((done, total))) == 3
    assert progress == [(3, 3)] and listed(HCM, limit=2) == newest_first
    assert {d["_id"]: d["version"] for d in stores.classes.coll.find({})} == versions  # upkeep: no new version
    assert service.backfill_class_periods(stores) == 0  # once


def test_classes_cut_into_16_parts_before_are_cut_again_and_the_old_parts_removed(stores):
    """Round 2 of the class list (stores.CLASS_ID_CHARS 1 -> 2): the classes stored with one-digit
    parts get two-digit ones, and the one-digit markers go (each would cost a page a query)."""
    from platformkit import period_lists
    from services.training.stores import class_index_fields
    course_id = course(stores)["_id"]
    made = [service.plan_class(c.PlanClass(course_id=course_id, code=f"D-{i}", organising_unit_id="P1",
                                           start_date=date(2025, 11, 30), capacity=3), P1, stores)["_id"]
            for i in range(40)]
    assert service.backfill_class_periods(stores) == 0  # new classes: cut as they are now
    for doc in list(stores.classes.coll.find({})):  # as stored under round 1: one digit a part
        old = period_lists.scope_periods(["VN", "HCM", "P1"], doc["start_date"], doc["_id"], 1)
        stores.classes.coll.update_one({"_id": doc["_id"]}, {"$set": {period_lists.FIELD: old}})
        period_lists.write_markers(stores.db, period_lists.markers(CLASSES, ["VN", "HCM", "P1"], doc["start_date"],
                                                                   doc["_id"], 1))
    stores.db["upkeep"].delete_many({})

    def parts() -> set[int]:
        return {len(m["period"].partition("~")[2]) for m in stores.db["list_periods"].find({})
                if "~" in m.get("period", "")}
    assert parts() == {1, 2}
    assert service.backfill_class_periods(stores) == 40
    assert parts() == {2}
    assert all(d[period_lists.FIELD] == class_index_fields(d)[period_lists.FIELD] for d in stores.classes.coll.find({}))
    out, after = [], None
    while True:
        page = service.list_classes({"limit": 7, "after": after}, HCM, stores)
        out += [i["_id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        after = paging.decode(page["next_cursor"])
    assert out == sorted(made)  # one day: `_id` order, each once


def test_the_body_is_what_the_http_layer_loaded():
    """The fingerprint of an Idempotency-Key and the domain see the fields sent, not the path ids,
    the version or the key, and nothing not sent: the marshmallow-loaded body of before."""
    cmd = c.EnrolMember(class_id="k", member_id="m1", version=3, idempotency_key="x")
    assert cmd.body() == {"member_id": "m1"}
    assert c.WithdrawEnrolment(class_id="k", member_id="m1", on=START).body() == {"on": START}
    assert SESSION.body()["reached"] == [{"unit_id": "C2", "members_reached": 12}]
    assert SESSION.body()["member_ids"] == ["m1", "m2", "m1"]

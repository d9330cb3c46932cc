"""The training API through Flask's test client, against the real database (FerretDB)."""
import threading

import pytest

from services.training.stores import CLASSES, COURSES, SESSIONS
from tests.training.support import COURSE

pytestmark = pytest.mark.integration


def make_course(t, **over):
    r = t.call("POST", "/courses", json={**COURSE, **over})
    assert r.status_code == 201, r.json
    return r.json["id"]


def make_class(t, capacity=3, org="P1", code="P1-ATVS-2025-01", open_=True, **over):
    course_id = over.pop("course_id", None) or make_course(t)
    r = t.call("POST", "/classes", json={"course_id": course_id, "code": code, "organising_unit_id": org,
                                         "start_date": "2025-10-06", "capacity": capacity,
                                         "location": "Nhà văn hóa Lao động", **over})
    assert r.status_code == 201, r.json
    if open_:
        assert t.call("POST", f"/classes/{r.json['id']}/open").status_code == 200
    return r.json["id"]


def class_doc(t, class_id):
    return t.db[CLASSES].find_one({"_id": class_id})


def changes(t, class_id):
    """The committed change documents of a class (stores.py), oldest first, with their outboxes."""
    return list(t.db[CLASSES + "_events"].find({"aggregate_id": class_id}).sort("_id", 1))


def outbox_types(t, class_id):
    return [e["type"] for c in changes(t, class_id) for e in c["outbox"]]


def snapshot(t, class_id):
    """What a refused command must leave untouched: the class and its committed changes."""
    return class_doc(t, class_id), [c["_id"] for c in changes(t, class_id)]


def test_openapi_documents_every_endpoint_and_its_errors(training):
    spec = training.client.get("/openapi.json").json
    ops = [(p, m, op) for p, item in spec["paths"].items() for m, op in item.items() if m in ("get", "post", "put", "patch", "delete")]
    assert len(ops) >= 20
    for path, method, op in ops:
        codes = set(op["responses"])
        # the member history is filtered to what the caller may see, it never refuses
        assert {"401", "403"} - ({"403"} if path == "/api/v1/enrolments" else set()) <= codes, (path, method)
        if method == "post":
            assert {"400", "422"} & codes, (path, method)
    assert "requestBody" in spec["paths"]["/api/v1/classes/{class_id}/enrolments"]["post"]


def test_a_class_from_plan_to_close(training):
    t = training
    class_id = make_class(t, capacity=3)
    for m in ("m1", "m2", "m3"):
        r = t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": m, "on": "2025-09-20"})
        assert r.status_code == 201, r.json
    assert r.json["unit_id"] == "C2" and r.json["is_official"] is True and r.json["ancestors"] == ["VN", "HCM", "P1"]
    assert t.call("POST", f"/classes/{class_id}/start").json["status"] == "running"
    r = t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-10-06", "present": ["m1", "m2", "m3"]})
    assert r.status_code == 200 and r.json["absent"] == []
    r = t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-10-07", "present": ["m1", "m3"]})
    assert r.json["absent"] == ["m2"]
    r = t.call("POST", f"/classes/{class_id}/enrolments/m1/completion", json={"score": 8.5, "on": "2025-10-07"})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "completed" and r.json["grade"] == "good"
    assert r.json["certificate_no"] == "P1-ATVS-2025-01-0001" and r.json["required_days"] == 2
    r = t.call("POST", f"/classes/{class_id}/enrolments/m2/completion", json={"score": 9})
    assert r.json["status"] == "not_completed" and r.json["reason"] == "attendance" and r.json["certificate_no"] is None
    r = t.call("POST", f"/classes/{class_id}/close")
    assert r.status_code == 422 and r.json["errors"] == {"enrolments": [r.json["message"]]}
    t.call("POST", f"/classes/{class_id}/enrolments/m3/completion", json={"score": 6.5})
    r = t.call("POST", f"/classes/{class_id}/close", json={"on": "2025-10-08"})
    assert r.status_code == 200 and r.json["status"] == "closed" and r.json["certificates_issued"] == 2
    # the certificate can be looked up by its number, by the organiser and by the member's commune
    r = t.call("GET", "/certificates/P1-ATVS-2025-01-0002", unit="P1")
    assert r.status_code == 200 and r.json["member_id"] == "m3" and r.json["grade"] == "fair"
    assert r.json["full_name"] == "Nguyễn Văn m3"
    assert t.call("GET", "/certificates/P1-ATVS-2025-01-0009").status_code == 404
    certs = t.call("GET", f"/classes/{class_id}/certificates").json
    assert sorted(c["certificate_no"] for c in certs) == ["P1-ATVS-2025-01-0001", "P1-ATVS-2025-01-0002"]
    history = t.call("GET", "/enrolments?member_id=m1", unit="C1").json
    assert [(h["class_id"], h["status"]) for h in history] == [(class_id, "completed")]
    assert outbox_types(t, class_id) == [
        "training.class.planned.v1", "training.class.opened.v1"] + ["training.enrolment.created.v1"] * 3 + [
        "training.class.started.v1", "training.attendance.recorded.v1", "training.attendance.recorded.v1",
        "training.enrolment.completed.v1", "training.certificate.issued.v1", "training.enrolment.not_completed.v1",
        "training.enrolment.completed.v1", "training.certificate.issued.v1", "training.class.closed.v1"]
    assert class_doc(t, class_id)["version"] == 12
    assert [c["version"] for c in changes(t, class_id)] == list(range(1, 13))
    assert changes(t, class_id)[-1]["outbox"][-1]["aggregateversion"] == 12


def test_bad_input_is_400_naming_the_field_and_writes_nothing(training):
    t = training
    r = t.call("POST", "/courses", json={**COURSE, "duration_days": "two", "topic": "cooking"})
    assert r.status_code == 400 and {"duration_days", "topic"} <= set(r.json["errors"])
    r = t.call("POST", "/courses", json={**COURSE, "code": "có dấu"})
    assert r.status_code == 400 and "code" in r.json["errors"]
    assert t.db[COURSES].count_documents({}) == 0
    course_id = make_course(t)
    r = t.call("POST", "/courses", json=COURSE)  # same code in the same catalogue
    assert r.status_code == 409 and "code" in r.json["errors"]
    r = t.call("POST", "/classes", json={"course_id": course_id, "code": "X-1", "organising_unit_id": "P1",
                                         "start_date": "06/10/2025", "capacity": 0})
    assert r.status_code == 400 and {"start_date", "capacity"} <= set(r.json["errors"])
    r = t.call("POST", "/classes", json={"course_id": "nope", "code": "X-1", "organising_unit_id": "P1",
                                         "start_date": "2025-10-06", "capacity": 5})
    assert r.status_code == 422 and "course_id" in r.json["errors"]
    assert t.db[CLASSES].count_documents({}) == 0
    r = t.call("POST", "/dissemination-sessions", json={
        "organising_unit_id": "P1", "topic": "NQ", "held_on": "2025-10-01",
        "reached": [{"unit_id": "C1", "members_reached": 3}, {"unit_id": "C1", "members_reached": 4}]})
    assert r.status_code == 400 and "reached" in r.json["errors"]
    assert t.db[SESSIONS].count_documents({}) == 0
    class_id = make_class(t, course_id=course_id)
    before = snapshot(t, class_id)
    r = t.call("POST", f"/classes/{class_id}/enrolments", json={"member": "m1"})
    assert r.status_code == 400 and "member_id" in r.json["errors"]
    r = t.call("POST", f"/classes/{class_id}/enrolments/m1/completion", json={"score": 11})
    assert r.status_code == 400 and "score" in r.json["errors"]
    assert snapshot(t, class_id) == before


@pytest.mark.parametrize("member, why", [("ghost", "not known"), ("gone", "left"), ("newbie", "not an active"),
                                         ("m9", "outside")])
def test_enrolment_refused_for_unknown_left_unapproved_or_outside_members(training, member, why):
    t = training
    class_id = make_class(t)
    before = snapshot(t, class_id)
    r = t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": member})
    assert r.status_code == 422 and list(r.json["errors"]) == ["member_id"] and why in r.json["message"]
    assert snapshot(t, class_id) == before


def test_capacity_and_attendance_refusals_are_4xx_and_write_nothing(training):
    t = training
    class_id = make_class(t, capacity=1)
    assert t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m1"}).status_code == 201
    r = t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m1"})
    assert r.status_code == 409 and "member_id" in r.json["errors"]
    before = snapshot(t, class_id)
    r = t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m2"})
    assert r.status_code == 422 and "capacity" in r.json["errors"] and "full" in r.json["message"]
    assert snapshot(t, class_id) == before
    # attendance before the class runs, on a day that is not a class day, for a stranger
    r = t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-10-06", "present": ["m1"]})
    assert r.status_code == 422 and "status" in r.json["errors"]
    t.call("POST", f"/classes/{class_id}/start")
    before = snapshot(t, class_id)
    r = t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-10-09", "present": ["m1"]})
    assert r.status_code == 422 and "date" in r.json["errors"]
    r = t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-10-06", "present": ["m1", "m2"]})
    assert r.status_code == 422 and "present" in r.json["errors"] and "m2" in r.json["message"]
    r = t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-13-01", "present": ["m1"]})
    assert r.status_code == 400 and "date" in r.json["errors"]
    assert snapshot(t, class_id) == before
    r = t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m2"})
    assert r.status_code == 422 and "status" in r.json["errors"]  # enrolment closed once running


def test_concurrent_enrolment_for_the_last_seat_has_exactly_one_winner(training):
    t = training
    class_id = make_class(t, capacity=2)
    assert t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m1"}).status_code == 201
    contenders = ["m2", "m3", "m4", "m5", "m6", "m7"]
    barrier = threading.Barrier(len(contenders))
    results = {}

    def enrol(member):
        client = t.app.test_client()
        from tests.training.support import token
        barrier.wait()
        r = client.post(f"/api/v1/classes/{class_id}/enrolments", json={"member_id": member}, headers=token("P1"))
        results[member] = (r.status_code, r.json)

    threads = [threading.Thread(target=enrol, args=(m,)) for m in contenders]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    codes = sorted(code for code, _ in results.values())
    assert codes == [201] + [422] * (len(contenders) - 1), results
    assert all("capacity" in body["errors"] for code, body in results.values() if code == 422)
    doc = class_doc(t, class_id)
    winner = next(m for m, (code, _) in results.items() if code == 201)
    assert [e["member_id"] for e in doc["enrolments"]] == ["m1", winner]
    assert doc["seats_taken"] == 2
    assert outbox_types(t, class_id).count("training.enrolment.created.v1") == 2


def test_withdrawal_frees_the_seat(training):
    t = training
    class_id = make_class(t, capacity=1)
    t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m1"})
    assert t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m2"}).status_code == 422
    r = t.call("POST", f"/classes/{class_id}/enrolments/m1/withdraw", json={"reason": "bận công tác"})
    assert r.status_code == 200 and r.json["status"] == "withdrawn"
    assert t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m2"}).status_code == 201
    r = t.call("POST", f"/classes/{class_id}/enrolments/m1/withdraw")
    assert r.status_code == 404


def test_certificate_numbers_are_unique_across_classes(training):
    t = training
    course_id = make_course(t, duration_days=1)
    numbers = []
    for code in ("HCM-K1", "HCM-K2"):
        class_id = make_class(t, capacity=5, course_id=course_id, code=code, org="HCM")
        for m in ("m1", "m2", "m9"):
            t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": m})
        t.call("POST", f"/classes/{class_id}/start")
        t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-10-06", "present": ["m1", "m2", "m9"]})
        for m in ("m1", "m2", "m9"):
            r = t.call("POST", f"/classes/{class_id}/enrolments/{m}/completion", json={"score": 7})
            numbers.append(r.json["certificate_no"])
    assert len(set(numbers)) == 6 and numbers[:3] == ["HCM-K1-0001", "HCM-K1-0002", "HCM-K1-0003"]
    r = t.call("POST", "/classes", json={"course_id": course_id, "code": "hcm-k1", "organising_unit_id": "P1",
                                         "start_date": "2025-11-06", "capacity": 5})
    assert r.status_code == 409 and "code" in r.json["errors"]  # codes (hence numbers) never repeat


def test_dissemination_session_counts_members_reached(training):
    t = training
    r = t.call("POST", "/dissemination-sessions", unit="P1", json={
        "organising_unit_id": "P1", "topic": "Quán triệt Nghị quyết Đại hội XIII Công đoàn Việt Nam",
        "document_ref": "NQ-XIII", "held_on": "2025-10-01", "format": "blended",
        "reached": [{"unit_id": "C1", "members_reached": 120}, {"unit_id": "C2", "members_reached": 80}]})
    assert r.status_code == 201, r.json
    assert r.json["members_reached"] == 200 and r.json["units_reached"] == 2
    assert r.json["reached"][0]["ancestors"] == ["VN", "HCM", "P1"]
    r = t.call("POST", "/dissemination-sessions", unit="P1", json={
        "organising_unit_id": "P1", "topic": "NQ", "held_on": "2025-10-01",
        "reached": [{"unit_id": "C3", "members_reached": 10}]})
    assert r.status_code == 422 and "reached" in r.json["errors"]
    assert t.db[SESSIONS].count_documents({}) == 1
    assert len(t.call("GET", "/dissemination-sessions", unit="HCM").json["items"]) == 1
    assert t.call("GET", "/dissemination-sessions", unit="P2").json["items"] == []


def test_callers_outside_the_subtree_get_403_on_every_endpoint_kind(training):
    t = training
    course_id = make_course(t, owner_unit_id="P1", code="P1-COURSE")
    class_id = make_class(t, capacity=3, course_id=course_id)
    t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m1"})
    session = t.call("POST", "/dissemination-sessions", json={
        "organising_unit_id": "P1", "topic": "NQ", "held_on": "2025-10-01",
        "reached": [{"unit_id": "C1", "members_reached": 10}]}).json["id"]
    before = snapshot(t, class_id)
    outsider = "P2"
    calls = [
        ("POST", "/courses", {**COURSE, "owner_unit_id": "P1", "code": "OTHER"}),
        ("GET", f"/courses/{course_id}", None),
        ("POST", f"/courses/{course_id}/retire", None),
        ("POST", "/classes", {"course_id": course_id, "code": "P2-X", "organising_unit_id": "P1",
                              "start_date": "2025-10-06", "capacity": 3}),
        ("GET", f"/classes/{class_id}", None),
        ("POST", f"/classes/{class_id}/start", None),
        ("POST", f"/classes/{class_id}/cancel", {"reason": "x"}),
        ("POST", f"/classes/{class_id}/enrolments", {"member_id": "m2"}),
        ("GET", f"/classes/{class_id}/enrolments", None),
        ("POST", f"/classes/{class_id}/enrolments/m1/withdraw", {}),
        ("POST", f"/classes/{class_id}/attendance", {"date": "2025-10-06", "present": []}),
        ("POST", f"/classes/{class_id}/enrolments/m1/completion", {"score": 8}),
        ("GET", f"/classes/{class_id}/certificates", None),
        ("POST", "/dissemination-sessions", {"organising_unit_id": "P1", "topic": "NQ", "held_on": "2025-10-01",
                                             "reached": [{"unit_id": "C1", "members_reached": 1}]}),
        ("GET", f"/dissemination-sessions/{session}", None),
        ("GET", "/classes?unit_id=P1", None),
    ]
    for method, path, body in calls:
        r = t.call(method, path, unit=outsider, json=body)
        assert r.status_code == 403, (method, path, r.status_code, r.json)
        assert t.call(method, path, unit=None, json=body).status_code == 401, (method, path)
    # a viewer of the right subtree reads but does not write
    assert t.call("GET", f"/classes/{class_id}", unit="P1", roles=("viewer",)).status_code == 200
    assert t.call("POST", f"/classes/{class_id}/start", unit="P1", roles=("viewer",)).status_code == 403
    assert snapshot(t, class_id) == before
    assert t.db[COURSES].count_documents({}) == 1 and t.db[SESSIONS].count_documents({}) == 1
    # lists are filtered to the caller's subtree; the province sees both communes
    other = make_class(t, capacity=3, org="P2", code="P2-ATVS-01")
    assert [c["id"] for c in t.call("GET", "/classes", unit="P2").json["items"]] == [other]
    assert [c["id"] for c in t.call("GET", "/classes", unit="P1").json["items"]] == [class_id]
    assert sorted(c["id"] for c in t.call("GET", "/classes", unit="HCM").json["items"]) == sorted([class_id, other])
    assert t.call("GET", "/classes", unit="C1").json == {"items": [], "next_cursor": None}
    # pages of one: each class once, then no cursor; a cursor not from next_cursor is a 400
    first = t.call("GET", "/classes?limit=1", unit="HCM").json
    second = t.call("GET", f"/classes?limit=1&after={first['next_cursor']}", unit="HCM").json
    assert sorted(c["id"] for c in first["items"] + second["items"]) == sorted([class_id, other])
    assert second["next_cursor"] is None
    bad = t.call("GET", "/classes?after=bm9wZQ", unit="HCM")
    assert bad.status_code == 400 and "after" in bad.json["errors"]["query"], bad.json
    # a commune sees the province catalogue (usable below it) but not its sibling's
    courses_p2 = {c["code"] for c in t.call("GET", "/courses", unit="P2").json["items"]}
    assert "ATVSLD-2D" in courses_p2 and "P1-COURSE" not in courses_p2
    # the member's history shows to the member's own unit, not to the sibling commune
    assert len(t.call("GET", "/enrolments?member_id=m1", unit="C1").json) == 1
    assert t.call("GET", "/enrolments?member_id=m1", unit="P2").json == []

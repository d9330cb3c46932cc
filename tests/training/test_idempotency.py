"""Idempotency-Key on every POST of training that creates something (courses, classes, enrolments,
completions with their certificates, dissemination sessions), against the real database: a retry
with the same key answers the first answer (status, id, body) and writes nothing; the same key with
another request is 422 naming the header; keys of two callers never meet; racing retries create
one resource; a creation its first request left half-done is finished by the retry."""
import threading

import pytest

from services.training.stores import CLASSES, COURSES, SESSIONS
from services.training.stores import AggregateStore
from tests.training.support import COURSE, token

pytestmark = pytest.mark.integration

CREATING = [("/api/v1/courses", "post"), ("/api/v1/classes", "post"),
            ("/api/v1/classes/{class_id}/enrolments", "post"),
            ("/api/v1/classes/{class_id}/enrolments/{member_id}/completion", "post"),
            ("/api/v1/dissemination-sessions", "post")]


def keyed(t, method, path, body, key, unit="HCM", sub=None):
    headers = {**token(unit), "Idempotency-Key": key}
    if sub:
        from platformkit.auth import mint
        headers["Authorization"] = "Bearer " + mint(sub, unit, ["officer"])
    return t.client.open("/api/v1" + path, method=method, json=body, headers=headers)


def everything(t):
    """Every document training wrote (what a retry must leave as it was)."""
    return {c: sorted(t.db[c].find(), key=lambda d: d["_id"])
            for c in (COURSES, CLASSES, SESSIONS, f"{COURSES}_events", f"{CLASSES}_events")}


def make_class(t, code="IK-01", capacity=5, status=("open",)):
    course = t.call("POST", "/courses", json={**COURSE, "code": f"C-{code}", "duration_days": 1}).json["id"]
    class_id = t.call("POST", "/classes", json={"course_id": course, "code": code, "organising_unit_id": "P1",
                                                "start_date": "2025-10-06", "capacity": capacity}).json["id"]
    for step in status:
        assert t.call("POST", f"/classes/{class_id}/{step}").status_code == 200
    return course, class_id


def test_every_creating_post_documents_the_header(training):
    spec = training.client.get("/openapi.json").json
    for path, method in CREATING:
        params = spec["paths"][path][method].get("parameters", [])
        header = [p for p in params if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        assert header and header[0]["schema"]["type"] == "string", path
        assert "422" in spec["paths"][path][method]["responses"], path
    # and no other POST answers 201 without taking the key
    for path, item in spec["paths"].items():
        if "201" in item.get("post", {}).get("responses", {}):
            assert (path, "post") in CREATING, path


def _course(t):
    return "/courses", {**COURSE, "code": "IK-COURSE"}, None


def _class(t):
    course = t.call("POST", "/courses", json=COURSE).json["id"]
    return "/classes", {"course_id": course, "code": "IK-CLASS", "organising_unit_id": "P1",
                        "start_date": "2025-10-06", "capacity": 4}, None


def _enrolment(t):
    _, class_id = make_class(t)
    return f"/classes/{class_id}/enrolments", {"member_id": "m1", "on": "2025-10-01"}, class_id


def _completion(t):
    _, class_id = make_class(t)
    t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m1"})
    t.call("POST", f"/classes/{class_id}/start")
    t.call("POST", f"/classes/{class_id}/attendance", json={"date": "2025-10-06", "present": ["m1"]})
    return f"/classes/{class_id}/enrolments/m1/completion", {"score": 8, "on": "2025-10-06"}, class_id


def _session(t):
    return "/dissemination-sessions", {"organising_unit_id": "P1", "topic": "Nghị quyết 02", "held_on": "2025-10-01",
                                       "member_ids": ["m1", "m2", "m3"],
                                       "reached": [{"unit_id": "C1", "members_reached": 7}]}, None


def _change(body):
    out = dict(body)
    if "score" in out:
        out["score"] = 4
    elif "member_id" in out:
        out["member_id"] = "m2"
    elif "member_ids" in out:
        out["member_ids"] = ["m1"]
    else:
        out["code"] = out["code"] + "-2"
    return out


@pytest.mark.parametrize("make", [_course, _class, _enrolment, _completion, _session],
                         ids=["course", "class", "enrolment", "completion", "session"])
def test_a_retry_with_the_same_key_answers_the_first_answer_and_creates_nothing(training, make):
    t = training
    path, body, class_id = make(t)
    first = keyed(t, "POST", path, body, "key-1")
    assert first.status_code in (200, 201), first.json
    written = everything(t)
    for _ in range(2):
        again = keyed(t, "POST", path, body, "key-1")
        assert (again.status_code, again.json) == (first.status_code, first.json)
    assert everything(t) == written  # nothing created, no event raised again
    # the same key with another request: 422 naming the header, nothing written
    other = keyed(t, "POST", path, _change(body), "key-1")
    assert other.status_code == 422 and list(other.json["errors"]) == ["Idempotency-Key"], other.json
    assert everything(t) == written
    if class_id:  # one enrolment, one certificate
        cls = t.call("GET", f"/classes/{class_id}").json
        assert cls["seats_taken"] == 1 and cls["certificates_issued"] == (1 if "completion" in path else 0)


def test_keys_are_scoped_to_the_caller_and_sessions_count_once_per_key(training):
    t = training
    _, body, _ = _session(t)
    a = keyed(t, "POST", "/dissemination-sessions", body, "same", sub="officer-a")
    b = keyed(t, "POST", "/dissemination-sessions", body, "same", sub="officer-b")
    assert a.status_code == b.status_code == 201 and a.json["id"] != b.json["id"]
    assert keyed(t, "POST", "/dissemination-sessions", body, "same", sub="officer-a").json["id"] == a.json["id"]
    assert t.db[SESSIONS].count_documents({}) == 2
    # without a key every POST is a new session (the retry problem the key solves)
    t.call("POST", "/dissemination-sessions", json=body)
    assert t.db[SESSIONS].count_documents({}) == 3
    # the key stays inside: never in an answer
    got = t.call("GET", f"/dissemination-sessions/{a.json['id']}").json
    assert "idempotency_key" not in got and "request_fingerprint" not in got
    assert got["member_ids"] == ["m1", "m2", "m3"]
    listed = t.call("GET", "/dissemination-sessions").json["items"]
    assert all("member_ids" not in s and "idempotency_key" not in s for s in listed)


def race(n, fn):
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        barrier.wait()
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return out


@pytest.mark.parametrize("make", [_course, _enrolment, _session], ids=["course", "enrolment", "session"])
def test_racing_retries_with_the_same_key_create_one_resource(training, make):
    t = training
    path, body, class_id = make(t)
    headers = {**token("HCM"), "Idempotency-Key": "race-1"}
    results = race(5, lambda i: t.app.test_client().post("/api/v1" + path, json=body, headers=headers))
    assert [r.status_code for r in results] == [201] * 5, [r.json for r in results]
    assert len({str(r.json) for r in results}) == 1  # every one answers the same
    if class_id:
        assert t.call("GET", f"/classes/{class_id}").json["seats_taken"] == 1
        changes = list(t.db[f"{CLASSES}_events"].find({"aggregate_id": class_id}))
        assert sum(1 for c in changes for e in c["outbox"] if e["type"] == "training.enrolment.created.v1") == 1
    else:
        coll = COURSES if path == "/courses" else SESSIONS
        assert t.db[coll].count_documents({}) == 1


def test_a_creation_left_half_done_is_finished_by_its_retry(training, monkeypatch):
    """The first request inserted the course (version 0) and died before committing its change @1:
    the course is absent, and the retry with the same key completes it (one course, one event)."""
    t = training
    real = AggregateStore.finish_create
    calls = {"n": 0}

    def dies_once(self, state, events_for, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed between the two inserts")
        return real(self, state, events_for, *args, **kwargs)

    monkeypatch.setattr(AggregateStore, "finish_create", dies_once)
    body = {**COURSE, "code": "HALF"}
    assert keyed(t, "POST", "/courses", body, "half").status_code == 500
    doc = t.db[COURSES].find_one({"code": "HALF"})
    assert doc["version"] == 0 and t.call("GET", f"/courses/{doc['_id']}").status_code == 404
    retry = keyed(t, "POST", "/courses", body, "half")
    assert retry.status_code == 201 and retry.json["id"] == doc["_id"] and retry.json["version"] == 1
    assert t.call("GET", f"/courses/{doc['_id']}").json["status"] == "active"
    changes = list(t.db[f"{COURSES}_events"].find({"aggregate_id": doc["_id"]}))
    assert [c["version"] for c in changes] == [1]
    assert [e["type"] for e in changes[0]["outbox"]] == ["training.course.registered.v1"]
    assert keyed(t, "POST", "/courses", body, "half").json == retry.json

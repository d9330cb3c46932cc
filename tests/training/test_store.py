"""stores.py: the change document is the unit of commit; the aggregate document is a copy that any
reader rolls forward."""
import pytest

from services.training import stores as store


def test_diff_and_apply_round_trip_with_list_entries_by_position():
    old = {"_id": "c", "version": 3, "status": "open", "seats": 1,
           "enrolments": [{"m": "a", "s": "enrolled"}, {"m": "b", "s": "enrolled"}]}
    new = {**old, "status": "running", "seats": 2,
           "enrolments": [{"m": "a", "s": "enrolled"}, {"m": "b", "s": "withdrawn"}, {"m": "c", "s": "enrolled"}]}
    change = store.diff(old, new, "enrolments")
    assert change == {"status": "running", "seats": 2,
                      "enrolments@": {"1": {"m": "b", "s": "withdrawn"}, "2": {"m": "c", "s": "enrolled"}}}
    assert store.apply(old, change, 4, "enrolments") == {**new, "version": 4}
    with pytest.raises(ValueError):
        store.diff(new, old, "enrolments")  # entries are never removed


def test_change_ids_sort_by_version():
    ids = [store.change_id("x", v) for v in (1, 2, 10, 100)]
    assert ids == sorted(ids)


@pytest.mark.integration
def test_a_change_committed_by_a_command_that_crashed_is_rolled_forward_by_the_next_reader(training):
    from services.training.stores import stores
    from tests.training.support import COURSE
    t = training
    course = t.call("POST", "/courses", json=COURSE).json["id"]
    class_id = t.call("POST", "/classes", json={"course_id": course, "code": "RF-1", "organising_unit_id": "P1",
                                                "start_date": "2025-10-06", "capacity": 5}).json["id"]
    s = stores().classes
    doc = s.load(class_id)
    # the command committed version 2 (change + events) and died before writing the class copy
    s._commit(class_id, 2, store.diff(doc, {**doc, "status": "open"}, "enrolments"), [])
    assert t.db["classes"].find_one({"_id": class_id})["status"] == "planned"
    r = t.call("GET", f"/classes/{class_id}", unit="P1")
    assert r.json["status"] == "open" and r.json["version"] == 2
    assert t.db["classes"].find_one({"_id": class_id})["version"] == 2  # the copy was healed
    # and the next command decides on the rolled-forward state
    assert t.call("POST", f"/classes/{class_id}/enrolments", json={"member_id": "m1"}).status_code == 201
    assert s.load(class_id)["version"] == 3

"""The pure part of platformkit/repository.py: the changes services describe as Mongo update
operators, applied in memory exactly as MongoDB would apply them to the document."""
import pytest

from platformkit import idempotency
from platformkit.repository import FINGERPRINT, KEY, apply_ops, change_id, diff, op, ops_of


def test_set_unset_inc_push_as_mongo_applies_them():
    doc = {"_id": "m", "status": "admitted", "left_on": "2025-01-01", "n": 2, "history": [{"change": "admitted"}]}
    ops = ops_of({"$set": {"status": "active", "ratings.2025": {"rating": "good"}},
                  "$unset": {"left_on": "", "nothing_there": ""},
                  "$inc": {"n": 3, "fresh": 1},
                  "$push": {"history": {"change": "approved"}, "tags": {"$each": ["a", "b"]}}})
    new = apply_ops(doc, ops)
    assert new == {"_id": "m", "status": "active", "ratings": {"2025": {"rating": "good"}}, "n": 5, "fresh": 1,
                   "history": [{"change": "admitted"}, {"change": "approved"}], "tags": ["a", "b"]}
    assert doc["history"] == [{"change": "admitted"}] and "ratings" not in doc  # the input is untouched


def test_a_dotted_path_keeps_the_siblings_and_a_numeric_segment_indexes_a_list():
    doc = {"ratings": {"2024": {"rating": "fair"}}, "items": [{"s": "a"}, {"s": "b"}]}
    new = apply_ops(doc, [op("set", "ratings.2025", {"rating": "good"}), op("set", "items.1.s", "B"),
                          op("set", "items.2", {"s": "c"})])
    assert new == {"ratings": {"2024": {"rating": "fair"}, "2025": {"rating": "good"}},
                   "items": [{"s": "a"}, {"s": "B"}, {"s": "c"}]}


def test_values_are_copied_not_shared():
    value = {"k": [1]}
    new = apply_ops({}, [op("set", "a", value)])
    value["k"].append(2)
    assert new == {"a": {"k": [1]}}


def test_unknown_operators_are_refused():
    with pytest.raises(ValueError):
        ops_of({"$pull": {"history": {"change": "x"}}})
    with pytest.raises(ValueError):
        apply_ops({}, [op("rename", "a", "b")])
    with pytest.raises(ValueError):
        apply_ops({"h": 1}, [op("push", "h", 2)])  # $push to a field that is not a list


def test_stored_ops_hold_no_nested_array_and_no_dollar_key():
    """FerretDB refuses both in a stored document (the change document stores the ops)."""
    ops = ops_of({"$push": {"h": {"$each": [1, 2]}}, "$set": {"a": 1}})
    assert all(isinstance(o, dict) and not any(k.startswith("$") for k in o) for o in ops)
    assert not any(isinstance(o["value"], dict) and any(k.startswith("$") for k in o["value"]) for o in ops)


def test_diff_then_apply_gives_the_new_state():
    old = {"_id": "c", "version": 3, "status": "open", "gone": 1, "enrolments": [{"m": "a"}]}
    new = {"_id": "c", "version": 3, "status": "running", "enrolments": [{"m": "a", "s": "x"}, {"m": "b"}]}
    assert apply_ops(old, diff(old, new, "enrolments")) == new
    with pytest.raises(ValueError):
        diff(new, old, "enrolments")


def test_change_ids_sort_by_change_number_and_stamp_fields_match_idempotency():
    ids = [change_id("x", n) for n in (1, 2, 10, 100, 1000)]
    assert ids == sorted(ids)
    assert (KEY, FINGERPRINT) == idempotency.FIELDS

"""The in-memory store handler tests run on (platformkit/memory_store.py): the Mongo semantics the
repository and the services rely on, and its refusal of anything outside the platform's subset."""
import pytest
from pymongo.errors import DuplicateKeyError

from platformkit.contract import EVENT_DATA
from platformkit.envelope import new_event
from platformkit.errors import AlreadyExists, StaleVersion
from platformkit.memory_store import MemoryDatabase, OutsideSubset, matches
from platformkit.repository import KEY, KeyTaken, Repository


def test_filters_follow_mongo_semantics():
    doc = {"_id": "m1", "tags": ["a", "b"], "unit": {"path": ["p", "c"]}, "n": 5, "gone": None}
    assert matches(doc, {"tags": "a"}) and not matches(doc, {"tags": "z"})
    assert matches(doc, {"unit.path": "c"}) and matches(doc, {"n": {"$gte": 5, "$lt": 6}})
    assert not matches(doc, {"n": {"$gt": 5}}) and matches(doc, {"n": {"$in": [1, 5]}})
    assert matches(doc, {"missing": None}) and matches(doc, {"gone": None}) and not matches(doc, {"n": None})
    assert matches(doc, {"missing": {"$exists": False}}) and not matches(doc, {"n": {"$exists": False}})
    assert matches(doc, {"$or": [{"n": 1}, {"tags": "b"}]}) and not matches(doc, {"$or": [{"n": 1}, {"tags": "q"}]})
    assert matches(doc, {"n": {"$ne": 4}}) and not matches(doc, {"tags": {"$ne": "a"}})
    with pytest.raises(OutsideSubset):
        matches(doc, {"$expr": {"$gt": ["$n", 1]}})
    with pytest.raises(OutsideSubset):
        matches(doc, {"n": {"$elemMatch": {"$gt": 1}}})


def test_collection_reads_writes_and_unique_indexes():
    db = MemoryDatabase()
    coll = db["members"]
    coll.create_index("citizen", unique=True, sparse=True, name="citizen")
    coll.insert_one({"_id": 1, "citizen": "X", "n": 2})
    coll.insert_one({"_id": 2, "n": 1})
    coll.insert_one({"_id": 3, "n": 3})  # sparse: two documents without the field are fine
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": 4, "citizen": "X"})
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": 1})
    assert [d["_id"] for d in coll.find({}, {"n": 1}).sort("n", -1).limit(2)] == [3, 1]
    assert coll.find_one({"_id": 1}, {"n": 0}) == {"_id": 1, "citizen": "X"}
    coll.update_one({"_id": 2}, {"$set": {"a.b": 1}, "$inc": {"n": 4}, "$push": {"l": {"$each": [1, 2]}}})
    assert coll.find_one({"_id": 2}) == {"_id": 2, "n": 5, "a": {"b": 1}, "l": [1, 2]}
    coll.update_one({"_id": "h"}, {"$max": {"seq": 3}}, upsert=True)
    coll.update_one({"_id": "h"}, {"$max": {"seq": 2}})
    assert coll.find_one({"_id": "h"})["seq"] == 3
    assert coll.count_documents({"n": {"$gte": 3}}) == 2
    found = coll.find_one({"_id": 1})
    found["n"] = 99  # answers are copies, as from a server
    assert coll.find_one({"_id": 1})["n"] == 2
    with pytest.raises(OutsideSubset):
        coll.aggregate([{"$group": {"_id": None}}])
    with pytest.raises(OutsideSubset):
        coll.update_one({"_id": 1}, {"$addToSet": {"l": 1}})


def _created(n: int):
    data = {f: None for f in EVENT_DATA["membership.member.admitted.v1"]}
    return [new_event("test", "membership.member.admitted.v1", f"m{n}", {**data, "member_id": f"m{n}"}, 1)]


def test_the_real_repository_runs_on_it():
    db = MemoryDatabase().with_indexes({"members": [("citizen", {"unique": True, "sparse": True, "name": "c"})],
                                         **Repository.indexes("members")})
    repo = Repository(db, "members", "member")
    created = repo.create({"_id": "m1", "citizen": "X", "status": "pending"}, _created(1))
    assert created["version"] == 1 and repo.load("m1")["status"] == "pending"
    with pytest.raises(AlreadyExists):
        repo.create({"_id": "m2", "citizen": "X"}, _created(2))
    after = repo.command("m1", lambda doc: ({"$set": {"status": "active"}}, []), expected_version=1)
    assert after["version"] == 2 and db["members"].find_one({"_id": "m1"})["status"] == "active"
    with pytest.raises(StaleVersion):
        repo.command("m1", lambda doc: ({"$set": {"status": "left"}}, []), expected_version=1)
    repo.command("m1", lambda doc: ({"$set": {"name": "A"}}, []), stamp=lambda new: {KEY: "k1"})
    with pytest.raises(KeyTaken):
        repo.command("m1", lambda doc: ({"$set": {"name": "B"}}, []), stamp=lambda new: {KEY: "k1"})
    changes = list(db["members_events"].find({"aggregate_id": "m1"}).sort("_id"))
    assert [c["seq"] for c in changes] == [1, 2, 3]
    assert [e["type"] for e in changes[0]["outbox"]] == ["membership.member.admitted.v1"]

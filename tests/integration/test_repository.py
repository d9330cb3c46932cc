"""platformkit/repository.py on the real store: the change document is the commit, the copy
converges, lost races are decided again, only a caller's stale version is refused."""
import threading

import pytest

from platformkit import mongo
from platformkit.envelope import new_event
from platformkit.outbox import StaleVersion
from platformkit.repository import Repository

pytestmark = pytest.mark.integration


def things() -> Repository:
    return Repository(mongo.database("things"), "things", "thing")


def counted(doc, i):
    return {"$inc": {"n": 1}, "$push": {"done": i}}, [new_event("things", "things.thing.counted.v1", doc["_id"],
                                                                {"i": i}, doc["version"] + 1)]


def test_a_stale_copy_write_landing_after_a_newer_one_heals_in_the_same_command(isolated):
    repo = things()
    repo.create({"_id": "t", "n": 0, "done": []}, [])
    repo.command("t", lambda d: counted(d, 0))
    stale = repo.coll.find_one({"_id": "t"})  # the copy at change 2
    real = repo.coll.replace_one
    injected = []

    def racing_replace(flt, doc, *a, **kw):
        res = real(flt, doc, *a, **kw)
        if not injected:  # another writer's older copy lands right after ours (FerretDB's update does not re-check)
            injected.append(True)
            repo.coll.delete_one({"_id": "t"})
            repo.coll.insert_one(stale)
        return res
    repo.coll.replace_one = racing_replace
    new = repo.command("t", lambda d: counted(d, 1))
    copy = repo.coll.find_one({"_id": "t"})
    assert injected and new["version"] == 3
    assert (copy["seq"], copy["version"], copy["n"], copy["done"]) == (3, 3, 2, [0, 1])


def test_a_change_committed_by_a_writer_that_died_before_the_copy_is_rolled_forward_by_a_reader(isolated):
    repo = things()
    repo.create({"_id": "t", "n": 0}, [])
    repo._commit("t", 2, [{"op": "set", "path": "n", "value": 5}], [])  # committed, copy not written
    assert repo.coll.find_one({"_id": "t"})["n"] == 0
    assert repo.load("t")["n"] == 5
    assert repo.coll.find_one({"_id": "t"})["seq"] == 2


def test_racing_commands_without_a_version_all_commit_and_a_stale_version_is_refused(isolated):
    repo = things()
    repo.create({"_id": "t", "n": 0, "done": []}, [])
    errors = []

    def worker(t):
        try:
            for i in range(5):
                Repository(mongo.database("things"), "things", "thing").command("t", lambda d, v=t * 10 + i: counted(d, v))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    doc = repo.load("t")
    assert doc["n"] == 30 and sorted(doc["done"]) == sorted(t * 10 + i for t in range(6) for i in range(5))
    assert doc["version"] == 31 and repo.changes.count_documents({"aggregate_id": "t"}) == 31
    with pytest.raises(StaleVersion):
        repo.command("t", lambda d: counted(d, 99), expected_version=30)
    assert repo.load("t")["version"] == 31


def test_upkeep_keeps_the_version_callers_hold(isolated):
    repo = things()
    repo.create({"_id": "t", "path": ["a"]}, [])
    repo.command("t", lambda d: ({"$set": {"path": ["b"]}}, []), bump=False)
    doc = repo.command("t", lambda d: ({"$set": {"x": 1}}, []), expected_version=1)  # still version 1
    assert (doc["version"], doc["path"], doc["x"]) == (2, ["b"], 1)


def test_a_change_without_events_leaves_the_relay_nothing_once_its_copy_is_written(isolated):
    """An upkeep change (no event) whose copy is written is not flagged for the relay: a backfill of
    129,280 cases left the relay that many changes to work through (docs/benchmarks.md). A change
    with events stays flagged until the relay published them; one whose copy was not written (its
    writer died) stays flagged, for the relay's roll-forward."""
    repo = things()
    repo.create({"_id": "t", "n": 0, "done": []}, [])
    repo.command("t", lambda d: counted(d, 0))  # with an event
    repo.command("t", lambda d: ({"$set": {"note": "x"}}, []), bump=False)  # upkeep, no event
    flags = {c["seq"]: c.get("outbox_pending") for c in repo.changes.find({"aggregate_id": "t"})}
    assert flags == {1: True, 2: True, 3: False}
    repo._commit("t", 4, [{"op": "set", "path": "n", "value": 9}], [])  # a writer died before its copy
    assert repo.changes.find_one({"_id": "t@000000004"})["outbox_pending"] is True

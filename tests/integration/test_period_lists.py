"""Subtree lists read a period at a time (platformkit/period_lists.py), on the real database.

A small tree (a root, a province, two communes, their CĐCS) holds documents from 1950 to 2099,
many on the same days. Paging through any unit's list, with any page size, and with pages cut
short by the limit on periods read, gives exactly that unit's documents in (date descending, _id)
order, each once; a first page reads about a page of documents, not the subtree."""
from __future__ import annotations

import random

import pytest
from pymongo import monitoring

from platformkit import mongo, paging, period_lists

pytestmark = pytest.mark.integration

LIST = "things"
ID_CHARS = 3  # "t-" and the first of six random hex digits: a busy day in 16 parts
TREE = {"R": [], "P": ["R"], "C1": ["R", "P"], "C2": ["R", "P"],
        **{f"S{i}": ["R", "P", "C1" if i % 2 else "C2"] for i in range(6)}}


class CountingColl:
    """The real collection, counting the documents its finds return."""

    def __init__(self, coll):
        self.coll, self.returned, self.finds = coll, 0, 0

    def find(self, *args, **kwargs):
        self.finds += 1
        docs = list(self.coll.find(*args, **kwargs))
        self.returned += len(docs)
        return docs


@pytest.fixture
def stored(isolated):
    db = mongo.database("periodlists")
    mongo.ensure_indexes(db, {LIST: [(period_lists.FIELD, {"name": "periods"})], **period_lists.INDEXES})
    rng = random.Random(7)
    days = ["1950-03-01", "2099-12-31"] + [f"2025-{m:02d}-{d:02d}" for m in (1, 6, 11) for d in (1, 2, 15, 28)]
    docs, marked = [], set()
    for i in range(400):
        unit = rng.choice(sorted(TREE))
        scope = TREE[unit] + [unit]
        day = days[0] if i == 5 else days[1] if i == 6 else rng.choice(days[2:])
        doc_id = f"t-{rng.randrange(16 ** 6):06x}-{i}"
        doc = {"_id": doc_id, "unit": unit, "day": day, "status": rng.choice("ab"),
               period_lists.FIELD: period_lists.scope_periods(scope, day, doc_id, ID_CHARS), "scope": scope}
        if (unit, day, doc_id[:ID_CHARS]) not in marked:
            period_lists.mark(db, LIST, scope, day, doc_id, ID_CHARS)
            marked.add((unit, day, doc_id[:ID_CHARS]))
        docs.append(doc)
    db[LIST].insert_many(docs)
    return db, docs


def expected(docs, unit, status=None):
    mine = [d for d in docs if unit in d["scope"] and (status is None or d["status"] == status)]
    return [d["_id"] for d in sorted(sorted(mine, key=lambda d: d["_id"]), key=lambda d: d["day"], reverse=True)]


def walk(db, unit, limit, query=None, max_periods=period_lists.MAX_PERIODS_PER_PAGE):
    out, after, pages = [], None, 0
    while True:
        items, cursor = period_lists.page(db[LIST], db, LIST, query or {}, unit, "day", after, limit,
                                          max_periods=max_periods)
        assert len(items) <= limit
        out += [d["_id"] for d in items]
        pages += 1
        assert pages < 500
        if cursor is None:
            return out
        after = paging.decode(cursor)


@pytest.mark.parametrize("unit", ["R", "P", "C1", "S3"])
def test_every_page_size_lists_the_subtree_once_in_order(stored, unit):
    db, docs = stored
    want = expected(docs, unit)
    assert len(want) >= 10
    for limit in (1, 7, 50, 1000):
        assert walk(db, unit, limit) == want, limit
    assert walk(db, unit, 5, {"status": "a"}) == expected(docs, unit, "a")
    # pages cut short after 2 periods read still list everything, once
    assert walk(db, unit, 20, max_periods=2) == want


def test_a_first_page_reads_about_a_page_not_the_subtree(stored):
    db, docs = stored
    counting = CountingColl(db[LIST])
    items, cursor = period_lists.page(counting, db, LIST, {}, "P", "day", None, 10)
    assert [d["_id"] for d in items] == expected(docs, "P")[:10] and cursor is not None
    # the province's documents fall on 14 days, each cut in 16 parts by id: a page of 10 reads a few parts
    assert counting.returned < 60, counting.returned
    assert len(expected(docs, "P")) > 300


def test_the_oldest_and_newest_dates_are_listed(stored):
    db, docs = stored
    listed = walk(db, "R", 100)
    by_id = {d["_id"]: d for d in docs}
    assert (by_id[listed[0]]["day"], by_id[listed[-1]]["day"]) == ("2099-12-31", "1950-03-01")


def test_a_document_is_listed_once_its_markers_are_written(stored):
    db, _docs = stored
    scope = ["R", "P", "C1", "S9"]
    doc = {"_id": "t-new", "unit": "S9", "day": "2030-05-05", "status": "a",
           period_lists.FIELD: period_lists.scope_periods(scope, "2030-05-05", "t-new", ID_CHARS), "scope": scope}
    db[LIST].insert_one(doc)
    assert "t-new" not in walk(db, "P", 50)  # its periods are not marked: a list never looks there
    before = db[period_lists.MARKERS].count_documents({})
    period_lists.mark(db, LIST, scope, "2030-05-05", "t-new", ID_CHARS)
    period_lists.mark(db, LIST, scope, "2030-05-05", "t-new", ID_CHARS)  # idempotent
    assert "t-new" in walk(db, "P", 50) and walk(db, "S9", 50) == ["t-new"]
    # new: S9's year; C1's 2030 and 2030-05; P's and R's 2030, 2030-05, 2030-05-05 and its part "t-n"
    assert db[period_lists.MARKERS].count_documents({}) - before == 1 + 2 + 4 + 4


def test_periods_are_a_day_a_month_a_year_by_depth():
    assert period_lists.scope_periods(["VN", "HCM", "Q1", "S1", "X"], "2025-11-30") == [
        "VN|2025-11-30", "HCM|2025-11-30", "Q1|2025-11", "S1|2025", "X|2025"]
    assert period_lists.scope_periods(["VN", "HCM", "Q1"], "2025-11-30", "case-3fa9", 6) == [
        "VN|2025-11-30~case-3", "HCM|2025-11-30~case-3", "Q1|2025-11"]
    assert period_lists.scope_periods(["VN"], None) == []
    assert [period_lists.period_first_day(p) for p in ("2025", "2025-11", "2025-11-30")] == [
        "2025-01-01", "2025-11-01", "2025-11-30"]


def test_the_prepare_job_runs_the_backfills_before_any_worker(isolated):
    """`python -m platformkit.run job <service> prepare`: the indexes and the one-off backfills on
    their own (docs/operations.md), marked done for the workers that start after it."""
    from platformkit.run import run_job
    from services.training import service as training
    from services.training.stores import Stores

    assert run_job("training", "prepare", []) == 0
    db = mongo.database("training")
    assert db["upkeep"].find_one({"_id": "classes_periods_2"}) is not None
    assert "scope_periods" in db["classes"].index_information()
    assert training.backfill_class_periods(Stores(db)) == 0  # found done


class Inserts(monitoring.CommandListener):
    """The insert commands a client sends: [(collection, [the documents' `_id`s])]."""

    def __init__(self):
        self.sent: list[tuple[str, list]] = []

    def started(self, event):
        if event.command_name == "insert":
            self.sent.append((event.command["insert"], [d["_id"] for d in event.command.get("documents", [])]))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_only_the_paths_to_missing_periods_are_written_nodes_before_periods(isolated):
    """A document's markers: its periods are looked up, the paths to those missing written, every
    node before any period (so a period found means its nodes exist, whatever order a store
    inserts one command's documents in)."""
    from pymongo import MongoClient

    from platformkit import config
    inserts = Inserts()
    client = MongoClient(config.mongo_url(), event_listeners=[inserts], serverSelectionTimeoutMS=5000)
    try:
        db = client[config.db_name("periodlists")]
        scope = ["R", "P", "C1", "S1"]
        first = period_lists.markers(LIST, scope, "2025-06-15", "t-a00001", ID_CHARS)
        period_lists.write_markers(db, list(reversed(first)))  # periods first in the list asked
        periods = {m["_id"] for m in first if "period" in m}
        (c1, nodes), (c2, then) = inserts.sent  # every node, then (another command) the periods
        assert c1 == c2 == period_lists.MARKERS
        assert set(then) == periods and not set(nodes) & periods and len(nodes) + len(then) == len(first)

        inserts.sent.clear()
        period_lists.mark(db, LIST, scope, "2025-06-15", "t-a00002", ID_CHARS)  # the same periods
        assert inserts.sent == []
        period_lists.mark(db, LIST, scope, "2025-06-16", "t-a00003", ID_CHARS)  # a new day, same month
        written = [i for _, ids in inserts.sent for i in ids]
        # the paths to the province's and the root's new day part (their year and month refused as
        # there already); S1's year and C1's month were found: not sent
        assert sorted(written) == sorted(f"{LIST}|{u}|{p}" for u in ("R", "P")
                                         for p in ("2025", "2025/06", "2025/06/16", "2025/06/16/t-a"))
        assert [len(ids) for _, ids in inserts.sent] == [6, 2]  # the nodes, then the periods
        assert {m["_id"] for m in db[period_lists.MARKERS].find({})} >= set(written) | {m["_id"] for m in first}
    finally:
        client.close()

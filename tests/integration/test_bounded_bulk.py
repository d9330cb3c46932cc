"""Bulk commands stay within 40 statements (platformkit.mongo.bounded_bulk_write): FerretDB 1.24 on
PostgreSQL deadlocks on one command of ~100 matching updates (each statement holds a pooled
connection). Against the real database: the reporting store's flush with far more than 40 pending
writes per collection sends no command above 40 statements, and the store answers a ping
throughout; the chunked bulk means what one bulk means (errors, ordered, counts)."""
from __future__ import annotations

import threading
import time

import pytest
from pymongo import InsertOne, MongoClient, UpdateOne, monitoring
from pymongo.errors import BulkWriteError

from platformkit import config, mongo
from platformkit.mongo import MAX_BULK_STATEMENTS, bounded_bulk_write
from services.reporting import store
from services.reporting.generations import base as generations_base
from services.reporting.generations import mongo as generations_mongo
from services.reporting.store import Generation

pytestmark = pytest.mark.integration


class BulkSizes(monitoring.CommandListener):
    """The number of statements of every update/delete/insert command sent."""

    def __init__(self):
        self.sizes: list[tuple[str, int]] = []

    def started(self, event):
        field = {"update": "updates", "delete": "deletes", "insert": "documents"}.get(event.command_name)
        if field:
            self.sizes.append((event.command_name, len(event.command.get(field, []))))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


class Pinger(threading.Thread):
    """Pings the store on its own connection every 50 ms; the slowest answer."""

    def __init__(self):
        super().__init__(daemon=True)
        self.client = MongoClient(config.mongo_url(), serverSelectionTimeoutMS=5000, socketTimeoutMS=10000)
        self.stop = threading.Event()
        self.worst = 0.0
        self.count = 0
        self.error: Exception | None = None

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                self.client.admin.command("ping")
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.error = exc
                return
            self.worst = max(self.worst, time.monotonic() - t)
            self.count += 1
            time.sleep(0.05)


@pytest.fixture
def monitored(isolated):
    sizes = BulkSizes()
    client = MongoClient(config.mongo_url(), event_listeners=[sizes], serverSelectionTimeoutMS=5000,
                         socketTimeoutMS=60000)
    yield client[config.db_name("reporting")], sizes
    client.close()


def test_a_flush_with_hundreds_of_writes_per_collection_keeps_the_store_answering(monitored, monkeypatch):
    db, sizes = monitored
    # Two buckets: every unit's documents land in few collections, hundreds of writes in each.
    for module in (generations_base, generations_mongo):  # where the generation reads them
        monkeypatch.setattr(module, "AGG_BUCKETS", 2)
        monkeypatch.setattr(module, "STATE_BUCKETS", 2)
    gen = Generation(db, 0)
    gen.setup()
    units = [f"U{i:04d}" for i in range(150)]
    months = ["2025-01", "2025-02"]
    pinger = Pinger()
    pinger.start()
    try:
        # 300 documents created, then 300 guarded increments: ~150 statements per bucket and kind
        ops = [{"k": "agg", "id": store.agg_id(u, m), "p": "m0", "off": 10, "inc": {"members:active": 1},
                "unit": u, "month": m, "new": True} for u in units for m in months]
        gen.run_journal(ops)
        again = [{**o, "off": 11, "new": False} for o in ops]
        gen.run_journal(again)
        gen.save_states({f"member:{u}": {"v": 1, "unit_id": u} for u in units})
        gen.run_journal([{"k": "unit", "id": u, "set": {"_id": u, "parent_id": None, "ancestors": [], "v": 1}}
                         for u in units])
    finally:
        pinger.stop.set()
        pinger.join(15)
    assert pinger.error is None, pinger.error
    assert pinger.count > 0 and pinger.worst < 5.0, (pinger.count, pinger.worst)
    updates = [n for name, n in sizes.sizes if name in ("update", "delete")]
    assert sum(updates) >= 2 * len(ops) + len(units) * 2, sum(updates)  # the work went through these commands
    assert max(updates) <= MAX_BULK_STATEMENTS, sizes.sizes
    assert max(updates) == MAX_BULK_STATEMENTS  # and they are full: chunks, not one by one
    # ... and it all arrived: every document counted twice (offsets 10 and 11), states and units written
    docs = [d for b in ("00", "01") for d in db[f"g0_agg_{b}"].find({}, {"v": 1, "applied": 1})]
    assert len(docs) == len(ops)
    assert all(d["v"]["members:active"] == 2 and d["applied"]["m0"] == 11 for d in docs)
    assert sum(db[f"g0_state_{b}"].count_documents({}) for b in ("00", "01")) == len(units)
    assert db.g0_units.count_documents({}) == len(units)


def test_chunks_mean_one_bulk(isolated):
    coll = mongo.database("reporting").bulk
    coll.insert_many([{"_id": i, "n": 0} for i in range(100)])
    res = bounded_bulk_write(coll, [UpdateOne({"_id": i}, {"$inc": {"n": 1}}) for i in range(130)], ordered=False)
    assert (res.matched_count, res.modified_count) == (100, 100)
    # unordered: a duplicate in the first chunk does not stop the later chunks; indexes are of the whole list
    ops = [InsertOne({"_id": 1000 + i}) for i in range(90)]
    ops[5] = InsertOne({"_id": 3})
    with pytest.raises(BulkWriteError) as err:
        bounded_bulk_write(coll, ops, ordered=False)
    assert [e["index"] for e in err.value.details["writeErrors"]] == [5]
    assert err.value.details["nInserted"] == 89
    # ordered: stops at the first error, the chunks after it are not sent
    ops = [InsertOne({"_id": 2000 + i}) for i in range(90)]
    ops[45] = InsertOne({"_id": 3})
    with pytest.raises(BulkWriteError) as err:
        bounded_bulk_write(coll, ops, ordered=True)
    assert [e["index"] for e in err.value.details["writeErrors"]] == [45]
    assert coll.count_documents({"_id": {"$gte": 2000}}) == 45


def test_several_processes_sending_full_bulks_at_once_keep_the_store_answering(isolated):
    """The bound is per command; FerretDB's pool is shared by every client. Four writers (the
    projector, a rebuild, relays, a benchmark's loader: each its own client) sending full 40-statement
    bulks at the same time need 160 connections at once: with the pool at 60 this hung FerretDB for
    good (seen with a province benchmark and this suite); deploy/local/infra.sh sizes the pool for it."""
    coll_name = "bulk_many"
    seed = MongoClient(config.mongo_url(), serverSelectionTimeoutMS=5000)[config.db_name("reporting")][coll_name]
    seed.insert_many([{"_id": i, "n": 0} for i in range(400)])
    errors: list[Exception] = []

    def writer(w: int) -> None:
        client = MongoClient(config.mongo_url(), serverSelectionTimeoutMS=5000, socketTimeoutMS=60000)
        try:
            coll = client[config.db_name("reporting")][coll_name]
            for _ in range(5):
                bounded_bulk_write(coll, [UpdateOne({"_id": w * 100 + i}, {"$inc": {"n": 1}}) for i in range(100)],
                                   ordered=False)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            client.close()

    pinger = Pinger()
    pinger.start()
    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    pinger.stop.set()
    pinger.join(15)
    assert not any(t.is_alive() for t in threads), "a writer is stuck: the store hung"
    assert not errors, errors
    assert pinger.error is None and pinger.count > 0, (pinger.error, pinger.count)
    assert all(d["n"] == 5 for d in seed.find({}, {"n": 1})), "every increment arrived, once"

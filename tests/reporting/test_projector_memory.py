"""What the projector remembers of its own writes (generations/mongo.py ProjectorMemory), on the real
database: it saves the store round trips, and it is forgotten whenever it may be wrong (partitions
changing hands, a failed batch), so that nothing is counted twice."""
import pytest

from platformkit import mongo
from platformkit.consumer import _Revocations
from services.reporting.generations import mongo as generations_mongo
from services.reporting.projector import ProjectorHandler
from services.reporting.store import Generation
from tests.reporting.test_projection import Feed, admitted, figure, unit_created

pytestmark = pytest.mark.integration

ANC = ["VN", "P1", "D1"]
HIERARCHY = [unit_created("P1", "VN", ["VN"], "province"), unit_created("D1", "P1", ["VN", "P1"], "district"),
             unit_created("C1", "D1", ANC)]


def members(first: int, last: int):
    return [admitted(f"m{i}", "C1", ANC, "2020-03-01") for i in range(first, last)]


def dies_before_saving_its_memory(handler: ProjectorHandler, records) -> None:
    """The handler writes the batch's counts, then the process dies before the states are saved."""
    def die(states):
        raise SystemExit("killed")
    handler.gen.save_states = die
    with pytest.raises(SystemExit):
        handler(records)


def handed_back(forget: bool):
    """Instance A counts a batch; the partition moves to B, which counts the next records and dies
    before saving its memory or committing; the partition comes back to A, which gets those records
    again with two more. A's memory of the agg documents' applied offsets is older than the store."""
    db = mongo.database("reporting")
    a, b = ProjectorHandler(Generation(db, 0)), ProjectorHandler(Generation(db, 0))
    feed = Feed()
    assert a(feed.records(HIERARCHY + members(0, 5))) == {}
    later = feed.records(members(5, 11))
    dies_before_saving_its_memory(b, later[:4])
    assert figure(Generation(db, 0), "P1", "2020") == 9
    if forget:
        _Revocations(a.forget_store).on_partitions_assigned(set())  # the listener ConsumerLoop gives
    assert a(later) == {}
    return [figure(Generation(db, 0), u, "2020") for u in ("C1", "D1", "P1")]


def test_an_instance_that_gets_its_partition_back_forgets_what_it_knew(isolated):
    assert handed_back(forget=True) == [11, 11, 11]


def test_without_forgetting_the_same_redelivery_would_count_twice(isolated):
    """The check above can fail: the same sequence without the rebalance's forgetting."""
    assert handed_back(forget=False) == [15, 15, 15]  # B's 4 counted again: the memory was stale


def test_a_batch_failing_halfway_through_its_writes_counts_once_when_retried(isolated, monkeypatch):
    db = mongo.database("reporting")
    handler = ProjectorHandler(Generation(db, 0))
    feed = Feed()
    assert handler(feed.records(HIERARCHY + members(0, 3))) == {}
    batch = feed.records(members(3, 8))
    real = generations_mongo.mongo.bounded_bulk_write
    calls = {"n": 0}

    def fail_on_second(coll, ops, ordered=True):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("the store went away mid-batch")
        return real(coll, ops, ordered=ordered)

    monkeypatch.setattr(generations_mongo.mongo, "bounded_bulk_write", fail_on_second)
    with pytest.raises(ConnectionError):
        handler(batch)
    assert not handler.gen.known_applied.entries and not handler.gen.known_states.entries
    monkeypatch.setattr(generations_mongo.mongo, "bounded_bulk_write", real)
    assert handler(batch) == {}  # the consumer loop's retry
    assert handler(batch) == {}  # and a redelivery
    gen = Generation(db, 0)
    assert [figure(gen, u, "2020") for u in ("C1", "D1", "P1")] == [8, 8, 8]
    assert len(gen.load_states([f"member:m{i}" for i in range(8)])) == 8


def test_memory_saves_the_reads_of_documents_it_wrote(isolated):
    """A second batch into the same CĐCS reads no agg document (their applied offsets are known),
    only the memory of members it has not seen; a redelivered batch reads nothing."""
    db = mongo.database("reporting")
    gen = Generation(db, 0)
    handler = ProjectorHandler(gen)
    feed = Feed()
    handler(feed.records(HIERARCHY + members(0, 5)))
    reads = []
    real_agg, real_state = gen.agg_for, gen.state_for

    class Counting:
        def __init__(self, coll, kind):
            self.coll, self.kind = coll, kind

        def find_one(self, *args, **kwargs):
            reads.append(self.kind)
            return self.coll.find_one(*args, **kwargs)

    gen.agg_for = lambda unit: Counting(real_agg(unit), "agg")
    gen.state_for = lambda key: Counting(real_state(key), "state")
    batch = feed.records(members(5, 8))
    handler(batch)
    assert sorted(reads) == ["state"] * 6  # each new member's memory and seen record
    reads.clear()
    handler(batch)
    assert reads == []
    assert [figure(Generation(db, 0), u, "2020") for u in ("C1", "D1", "P1")] == [8, 8, 8]


def test_memory_is_bounded():
    memory = generations_mongo.ProjectorMemory(limit=3)
    for k in "abcd":
        memory.put(k, {"k": k})
    memory.get("b")  # used: kept
    memory.put("e", None)
    assert list(memory.entries) == ["d", "b", "e"]

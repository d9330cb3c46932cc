"""Rebuild: replay every topic from the beginning into a fresh generation (folded in memory, then
bulk-inserted), with progress, then swap it in; the rebuilt documents equal the incremental ones
exactly (values, `applied` offsets, hierarchy, the projector's memory), and the live projector goes
on in the new generation from the offsets the rebuild committed."""
import io
from datetime import date

import pytest

from platformkit import mongo
from services.reporting.rebuild import _batches, end_offsets, rebuild
from services.reporting.store import AGG_BUCKETS, STATE_BUCKETS, Generation, active_generation
from synthetic.province import Province
from tests.reporting import scenario
from tests.reporting.test_projector import PROJECTOR, caught_up
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration


def snapshot(number: int) -> dict:
    db = mongo.database("reporting")
    out = {}
    for b in range(AGG_BUCKETS):
        for doc in db[f"g{number}_agg_{b:02x}"].find({}, {"v": 1}):
            values = {k: v for k, v in (doc.get("v") or {}).items() if v}
            if values:
                out[doc["_id"]] = values
    units = {u["_id"]: (u.get("parent_id"), u.get("ancestors")) for u in Generation(db, number).units.find()}
    return {"agg": out, "units": units}


def documents(number: int) -> dict:
    """Every document of the generation, whole: agg (with `applied` and zero values), units, states."""
    db = mongo.database("reporting")
    agg = {d["_id"]: d for b in range(AGG_BUCKETS) for d in db[f"g{number}_agg_{b:02x}"].find()}
    states = {d["_id"]: d for b in range(STATE_BUCKETS) for d in db[f"g{number}_state_{b:02x}"].find()}
    units = {u["_id"]: u for u in db[f"g{number}_units"].find()}
    return {"agg": agg, "states": states, "units": units, "journal": list(db[f"g{number}_journal"].find())}


def test_rebuild_equals_incremental_and_the_projector_follows(publish, procs):
    province = Province(seed=31, communes=2, cdcs=6, members=400)
    # with CĐCS becoming eligible for rating, rated, dissolved and merged (the rating memory, the
    # eligibility stock and the units' closing dates are rebuilt too)
    envs = list(province.events()) + scenario.closures_and_edges(province)
    first, rest = envs[: len(envs) // 2], envs[len(envs) // 2:]
    publish(first)
    procs(PROJECTOR, "projector")
    wait_until(lambda: caught_up(first), 120, interval=0.5, message="incremental caught up")
    publish(rest)
    wait_until(lambda: caught_up(envs), 120, interval=0.5, message="incremental caught up on all")
    db = mongo.database("reporting")
    assert active_generation(db) == 0
    incremental = snapshot(0)
    out = io.StringIO()
    number = rebuild(out=out)
    log = out.getvalue()
    assert number == 1 and active_generation(db) == 1
    assert f"{len(envs):,} events to replay" in log and "events/s" in log and "now active" in log
    assert snapshot(1) == incremental  # exactly, document by document
    # ... and whole: zero values, `applied` offsets per source partition, units, the projector's memory
    before, after = documents(0), documents(1)
    assert after["agg"] == before["agg"]
    assert after["units"] == before["units"]
    # The projector saves its memory after the counts (projector.py): caught_up() can see the counts
    # a moment before the last batch's states are written (seen under load on the local store).
    wait_until(lambda: documents(0)["states"] == after["states"], 30, message="incremental states saved")
    assert after["journal"] == before["journal"] == []
    assert after["units"]["HCM-X000-E4"]["status"] == "merged" and after["units"]["HCM-X000-E4"]["closed_on"]
    assert any(s.get("ratings") for s in after["states"].values())
    assert "write phase" in log and "offsets committed" in log
    # the live projector notices the swap and continues in generation 1
    extra = province.move_commune("HCM-X001", "HN", __import__("datetime").date(2025, 11, 29))
    publish([extra])
    envs.append(extra)
    wait_until(lambda: caught_up(envs), 90, interval=0.5, message="projector continued in the new generation")


def test_rebuild_with_transfers_and_a_move_midstream_equals_incremental(publish, procs, topics):
    """A bigger province (transfers, departures, dues corrections, welfare, training) with a commune
    moved to another province in the middle of the stream, then more events after the rebuild."""
    province = Province(seed=42, communes=3, cdcs=12, members=1200)
    stream = province.events()
    envs = []
    for e in stream:
        envs.append(e)
        if e.type == "membership.member.admitted.v1" and e.data["admitted_on"] >= "2025-06-15":
            break
    moved = province.move_commune("HCM-X001", "HN", date(2025, 6, 15))
    envs.append(moved)
    envs += list(stream)
    assert sum(e.type == "membership.member.transferred.v1" for e in envs) >= 30
    # An official counts as trained once a year, in the month of the completion processed first:
    # two completions of one member (two classes, maybe two partitions) would make the month depend
    # on how partitions interleave, in the incremental run as in any replay. Not in this seed.
    trained = [(e.data["member_id"], e.data["completed_on"][:4]) for e in envs
               if e.type == "training.enrolment.completed.v1"]
    assert trained and len(set(trained)) == len(trained)
    cut = len(envs) * 3 // 4
    publish(envs[:cut])
    procs(PROJECTOR, "projector")
    wait_until(lambda: caught_up(envs[:cut]), 180, interval=0.5, message="incremental caught up")
    db = mongo.database("reporting")
    incremental = snapshot(0)
    out = io.StringIO()
    number = rebuild(out=out, batch=300, chunk=100)  # several batches and insert chunks
    assert number == 1 and active_generation(db) == 1
    rebuilt = snapshot(1)
    assert rebuilt == incremental
    assert rebuilt["units"]["HCM-X001"] == ("HN", ["VN", "HN"])
    before, after = documents(0), documents(1)
    assert after["units"] == before["units"] and after["states"] == before["states"]
    # `applied` and zero values are exact everywhere but on the two provinces the commune left and
    # joined: there they record which partitions' events were counted before the move and which
    # after, i.e. how the partitions happened to interleave around it (in the incremental run too).
    # There the values still agree, and no offset is beyond what the group committed.
    sides = {"HCM", "HN"}
    assert {k: d for k, d in after["agg"].items() if d["unit"] not in sides} == \
        {k: d for k, d in before["agg"].items() if d["unit"] not in sides}
    ends = {f"{short}{tp.partition}": end for tp, end in end_offsets(list(topics.values())).items()
            for name, short in (("membership", "m"), ("training", "t"), ("welfare", "w")) if name in tp.topic}
    for doc in after["agg"].values():
        assert all(off < ends[p] for p, off in doc["applied"].items()), doc
    # the projector goes on in generation 1 with the rest, from the committed offsets
    publish(envs[cut:])
    wait_until(lambda: caught_up(envs), 180, interval=0.5, message="projector continued in the new generation")


def test_a_killed_topic_reader_fails_the_fold_instead_of_ending_it_short(publish):
    """The fold's records come from a reader process (rebuild.read_topics). Killed, it must not look
    like the end of the topics: the fold raises, and a rebuild would swap nothing in."""
    import multiprocessing
    import os
    import signal
    import time

    from kafka import TopicPartition

    from platformkit import config

    province = Province(seed=7, communes=1, cdcs=2, members=30)
    envs = list(province.events())
    publish(envs)
    topic = config.topic("membership.events")
    ends = {tp: end for tp, end in end_offsets([topic]).items() if end > 0}
    assert sum(ends.values()) == sum(1 for e in envs if e.source == "membership")
    # one partition asked beyond its end: the reader keeps waiting for records that never come
    waiting = {**ends, TopicPartition(topic, next(iter(ends)).partition): 10 ** 9}
    batches = _batches(waiting, 5000, None)
    got = 0
    with pytest.raises(RuntimeError, match="reader ended"):
        deadline = time.monotonic() + 60
        for records in batches:
            got += len(records)
            readers = [p for p in multiprocessing.active_children() if p.name == "rebuild-reader"]
            if got >= sum(ends.values()) - max(ends.values()) and readers:
                os.kill(readers[0].pid, signal.SIGKILL)
            assert time.monotonic() < deadline, "the fold did not notice its reader was killed"
    assert not [p for p in multiprocessing.active_children() if p.name == "rebuild-reader"]

"""`python -m platformkit.deadletters` against the real broker and database: dead letters of real
consumers are listed, inspected and replayed after a fix, and the replayed events are counted once
by the real view (the reporting projector's rolled-up figures equal an independent recount), even
when the replay is killed between the broker's acknowledgement and the record of what was replayed,
and when it is run again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib

import pytest
from kafka import KafkaConsumer, TopicPartition

from platformkit import config, contract
from platformkit.deadletters import Replayed
from platformkit.envelope import encode, new_event
from platformkit.kafka_io import EventPublisher, ensure_topics
from synthetic.province import Province
from tests.reporting.projected import figures
from tests.reporting.recount import COMPARED, recount
from tests.support.infra import ROOT, read_topic, wait_until

pytestmark = pytest.mark.integration

SOURCES = ("membership.events", "training.events", "welfare.events")
PROJECTOR_GROUP = "reporting-projector-g0"  # generation 0: the first projector of a fresh database
VIEW_GROUP = "training-membership-view"

# The projector as it would be with a bug: every event of one member in five is rejected
# (process error -> dead letter). The fixed build is the real module, unpatched.
BROKEN_PROJECTOR = """
import zlib
from services.reporting import projector
from services.reporting.projection import PROJECTORS
real = PROJECTORS["membership"]

class Broken:
    source, counts, ignores = real.source, real.counts, real.ignores

    def state_key(self, env):
        return real.state_key(env)

    def project(self, env, state):
        if env.base_type.startswith("membership.member.") and zlib.crc32(env.subject.encode()) % 5 == 0:
            raise ValueError("cannot project this member yet (the bug the fix removes)")
        return real.project(env, state)

PROJECTORS["membership"] = Broken()
projector.main()
"""


def poisoned(env) -> bool:
    return env.base_type.startswith("membership.member.") and zlib.crc32(env.subject.encode()) % 5 == 0


def deadletters(*args: str, fault: str | None = None, expect: int | None = 0) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if fault:
        env["FAULT_POINT"] = fault
    done = subprocess.run([sys.executable, "-m", "platformkit.deadletters", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    if expect is not None:
        assert done.returncode == expect, done.stdout + done.stderr
    return done


def end_offsets(topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def all_units(envs) -> list[str]:
    return sorted({e.data["unit_id"] for e in envs if e.type == "membership.unit.created.v1"})


def view_differences(envs, units, period: str = "2025") -> dict[str, dict[str, tuple[int, int]]]:
    """{unit: {indicator: (in the live view, in the recount of envs)}} where they differ, at every
    level; empty when the view counts each event of envs exactly once."""
    counted = recount(envs, "2025-01", "2025-12")
    out = {}
    for u in units:
        got = figures(u, period)
        diff = {k: (got[k], counted.get(u, {}).get(k, 0)) for k in COMPARED if got[k] != counted.get(u, {}).get(k, 0)}
        if diff:
            out[u] = diff
    return out


def view_equals_recount(envs, units) -> bool:
    try:
        return not view_differences(envs, units)
    except Exception:  # noqa: BLE001 - the generation is being created: not yet
        return False


def wait_for_view(envs, units, message: str, timeout: float = 150) -> None:
    try:
        wait_until(lambda: view_equals_recount(envs, units), timeout, interval=0.5, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; differences (view, recount): {view_differences(envs, units)}") from None


def test_replay_after_a_fix_counts_each_dead_letter_once(isolated, procs):
    province = Province(seed=31, communes=2, cdcs=4, members=100)
    envs = list(province.events())
    bad = [e for e in envs if poisoned(e)]
    healthy = [e for e in envs if not poisoned(e)]
    units = all_units(envs)
    assert len(bad) >= 20 and len({e.subject for e in bad}) >= 10
    ensure_topics([config.topic(t) for t in SOURCES], partitions=3)
    publisher = EventPublisher()
    for source in ("membership", "training", "welfare"):
        publisher.publish(config.topic(f"{source}.events"), [e for e in envs if e.source == source])
    publisher.close()
    dlq = config.dead_letter_topic(PROJECTOR_GROUP)

    # 1. the broken build: the bad members' events are dead-lettered, everything else is counted
    broken = procs(["-c", BROKEN_PROJECTOR], "projector-broken")
    wait_for_view(healthy, units, "the broken projector counted everything but the rejected members")
    dead = read_topic(dlq, min_count=len(bad), timeout=60)
    assert len(dead) == len(bad)
    assert sorted(json.loads(m.value)["id"] for m in dead) == sorted(e.id for e in bad)
    assert not view_equals_recount(envs, units), "the rejected events are missing from the view"
    broken.stop()
    assert broken.wait_exit(30) == 0

    # 2. the fix is deployed (the real projector); it has nothing new to read
    procs(["-m", "platformkit.run", "consumer", "reporting", "projector"], "projector")
    listed = deadletters("list", "--group", PROJECTOR_GROUP).stdout
    assert f"{len(bad)} dead letters in {dlq}, 0 replayed, {len(bad)} pending" in listed

    # 3. one member's dead letters replayed by offset; the first run is killed after the broker
    #    acknowledged the records and before they were recorded: the second run sends them again
    member = bad[0].subject
    names = [f"{m.partition}:{m.offset}" for m in dead if json.loads(m.value)["subject"] == member]
    assert names
    killed = deadletters("replay", "--group", PROJECTOR_GROUP, "--offset", *names,
                         fault="deadletters.after_send", expect=None)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    again = deadletters("replay", "--group", PROJECTOR_GROUP, "--offset", *names).stdout
    assert f"-- {len(names)} replayed, 0 already replayed" in again
    listed = deadletters("list", "--group", PROJECTOR_GROUP, "--pending").stdout
    assert f"{len(names)} replayed, {len(bad) - len(names)} pending" in listed
    assert not any(name in line.split()[:1] for line in listed.splitlines() for name in names)

    # 4. the rest, all at once
    rest = deadletters("replay", "--group", PROJECTOR_GROUP, "--all").stdout
    assert f"-- {len(bad) - len(names)} replayed, 0 already replayed, 0 skipped" in rest
    wait_for_view(envs, units, "every replayed event counted, the twice-published member once")

    # the killed run's copies are on the topic twice, with the same envelope ids: counted once
    topic = config.topic("membership.events")
    replayed = [m for m in read_topic(topic, min_count=len(healthy)) if "replayed_from" in dict(m.headers)]
    assert len(replayed) == len(bad) + len(names)
    ids = [json.loads(m.value)["id"] for m in replayed]
    assert sorted(set(ids)) == sorted(e.id for e in bad)
    assert all(dict(m.headers)["replayed_from"].decode().startswith(dlq + ":") for m in replayed)
    assert not any(k in dict(m.headers) for m in replayed for k in ("error", "original_topic"))

    # 5. idempotent: a second replay republishes nothing; the figures stay exact
    ends = end_offsets(topic)
    second = deadletters("replay", "--group", PROJECTOR_GROUP, "--all").stdout
    assert "-- 0 replayed, 0 already replayed, 0 skipped" in second
    by_offset = deadletters("replay", "--group", PROJECTOR_GROUP, "--offset", names[0]).stdout
    assert f"{names[0]} already replayed: skipped" in by_offset and "-- 0 replayed, 1 already replayed" in by_offset
    assert end_offsets(topic) == ends
    time.sleep(3)
    assert view_differences(envs, units) == {}
    listed = deadletters("list", "--group", PROJECTOR_GROUP).stdout
    assert f"{len(bad)} dead letters in {dlq}, {len(bad)} replayed, 0 pending" in listed
    lines = [line for line in listed.splitlines() if not line.startswith("--")]
    assert len(lines) == len(bad) and all(" replayed " in line for line in lines)
    assert len(read_topic(dlq, min_count=len(bad), timeout=5)) == len(bad), "nothing dead-lettered again"


def test_list_and_inspect_show_where_each_dead_letter_came_from(isolated, procs):
    topic = config.topic("membership.events")
    ensure_topics([topic], partitions=3)
    unit = new_event("membership", "membership.unit.created.v1", "u-1", {
        "unit_id": "u-1", "parent_id": None, "ancestors": [], "name": "Công đoàn cơ sở Bến Thành",
        "code": "BT", "kind": "cdcs", "level": 4, "sector": None}, 1)
    nameless = new_event("membership", "membership.member.admitted.v1", "m-1", {
        "member_id": "m-1", "unit_id": "u-1", "ancestors": [], "gender": "female"}, 1)  # no full_name
    publisher = EventPublisher()
    publisher.publish(topic, [unit, nameless])
    publisher.send_raw(topic, b"m-2", b"\xff not json")
    publisher.close()
    originals = {(m.key, m.value): m for m in read_topic(topic, min_count=3)}
    consumer = procs(["-m", "platformkit.run", "consumer", "training", "membership-view"], "training-view")
    dlq = config.dead_letter_topic(VIEW_GROUP)
    dead = read_topic(dlq, min_count=2, timeout=60)
    assert len(dead) == 2 and consumer.alive()

    listed = deadletters("list", "--group", VIEW_GROUP).stdout
    for m in dead:
        src = originals[(m.key, m.value)]
        line = next(ln for ln in listed.splitlines() if ln.split()[0] == f"{m.partition}:{m.offset}")
        assert f"{topic}[{src.partition}]@{src.offset}" in line
        assert "pending" in line
    assert "key=m-1" in listed and f"membership.member.admitted.v1 id={nameless.id}" in listed
    assert "process: KeyError: 'full_name'" in listed
    assert "(not an envelope)" in listed and "decode: not UTF-8 JSON" in listed
    assert f"-- {VIEW_GROUP}: 2 dead letters in {dlq}, 0 replayed, 2 pending" in listed
    paged = deadletters("list", "--group", VIEW_GROUP, "--limit", "1").stdout
    assert "-- 1 shown; more from --from-offset" in paged

    by_error = {dict(m.headers)["error"][:7]: m for m in dead}
    env_dl, raw_dl = by_error[b"process"], by_error[b"decode:"]
    src = originals[(env_dl.key, env_dl.value)]
    shown = deadletters("inspect", "--group", VIEW_GROUP, "--offset", f"{env_dl.partition}:{env_dl.offset}").stdout
    for needle in (f"original_topic: {topic}", f"original_partition: {src.partition}",
                   f"original_offset: {src.offset}", "error: process: KeyError: 'full_name'",
                   f"consumer_group: {contract.group(VIEW_GROUP)}", "key: m-1",
                   f"envelope membership.member.admitted.v1 id={nameless.id}", "pending"):
        assert needle in shown, needle
    body = shown[shown.index("{"):]
    assert json.loads(body) == json.loads(encode(nameless))  # the original bytes, pretty-printed
    raw = deadletters("inspect", "--group", VIEW_GROUP, "--offset", f"{raw_dl.partition}:{raw_dl.offset}").stdout
    assert "not an envelope" in raw and "b'\\xff not json'" in raw and "error: decode: not UTF-8 JSON" in raw

    # a dry run prints and sends nothing; an undecodable record is never republished
    ends = end_offsets(topic)
    dry = deadletters("replay", "--group", VIEW_GROUP, "--all", "--dry-run").stdout
    assert f"-> {topic} key=m-1 membership.member.admitted.v1 id={nameless.id}" in dry
    assert "-- 1 would be replayed, 0 already replayed, 1 skipped" in dry
    refused = deadletters("replay", "--group", VIEW_GROUP, "--offset", f"{raw_dl.partition}:{raw_dl.offset}",
                          expect=1).stdout
    assert "skipped: not an envelope" in refused
    assert end_offsets(topic) == ends
    assert "0 replayed, 2 pending" in deadletters("list", "--group", VIEW_GROUP).stdout
    unknown = deadletters("inspect", "--group", VIEW_GROUP, "--offset", f"{env_dl.partition}:999", expect=2)
    assert "no dead letter" in unknown.stderr
    missing = deadletters("list", "--group", "no-such-group").stdout
    assert "does not exist" in missing and VIEW_GROUP in missing


def test_the_replay_record_keeps_offsets_above_the_committed_one():
    rec = Replayed()
    rec.add([3, 4, 7])
    assert rec.below == 0 and rec.extra == {3, 4, 7}
    assert list(rec.pending_ranges(0, 10)) == [(0, 3), (5, 7), (8, 10)]
    rec.add([0, 1, 2])
    assert rec.below == 5 and rec.extra == {7}  # the committed offset moves over what is replayed
    assert 4 in rec and 5 not in rec and 7 in rec and rec.count_in(0, 10) == 6
    assert json.loads(rec.metadata()) == {"v": 1, "replayed": "7"}
    other = Replayed(2, {9, 10, 11})
    rec.merge(other)
    assert rec.below == 5 and rec.extra == {7, 9, 10, 11} and json.loads(rec.metadata())["replayed"] == "7,9-11"
    from kafka.structs import OffsetAndMetadata
    back = Replayed.from_commit(OffsetAndMetadata(rec.below, rec.metadata(), -1))
    assert (back.below, back.extra) == (5, {7, 9, 10, 11})
    back.normalise(log_start=8)  # offsets below the log start are gone: nothing pending there
    assert back.below == 8 and back.extra == {9, 10, 11} and list(back.pending_ranges(0, 14)) == [(8, 9), (12, 14)]
    back.add([8])
    assert back.below == 12 and back.extra == set()
    assert Replayed.from_commit(None).below == 0
    assert Replayed.from_commit(OffsetAndMetadata(4, "not ours", -1)).extra == set()

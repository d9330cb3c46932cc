"""The fault matrix: while three writers drive membership, training and welfare through their HTTP
APIs, every process kind of deploy/Procfile is killed in turn with SIGKILL and with SIGTERM (and
one gunicorn worker of each API with SIGKILL), then the broker and the database themselves, each
restarted after a short outage as an orchestrator would. Afterwards:

- every write the platform acknowledged (2xx) is in its source database and its event is on the
  topic: nothing acknowledged is lost;
- every reporting view, at every unit of the hierarchy, equals an independent recount of the raw
  events on the topics: nothing is counted twice or missed;
- the same views equal a recount from the source databases themselves (active members, welfare
  cases and amounts, members reached by dissemination);
- every process stopped with SIGTERM exited 0 (a clean shutdown, not a crash).

The broker and the database are private to this test (their own ports and data folder), so killing
them disturbs no other test. Size: `make test` runs one round at a small pace (~4 min);
FAULT_MATRIX_ROUNDS=5 FAULT_MATRIX_PACE=0 (no pause between a writer's requests) runs the large one.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date

import pytest
import requests
from pymongo import MongoClient

from platformkit.auth import mint
from platformkit.envelope import decode
from tests.faults.harness import Load, Platform, PrivateInfra
from tests.reporting.recount import COMPARED, recount
from tests.support.infra import ROOT, read_topic, unique_prefix, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROUNDS = int(os.environ.get("FAULT_MATRIX_ROUNDS", "1"))
PACE = float(os.environ.get("FAULT_MATRIX_PACE", "0.05"))   # seconds between one writer's requests
GAP = float(os.environ.get("FAULT_MATRIX_GAP", "1.5"))      # seconds of load between two faults
OUTAGE = 1.0                                                # seconds a killed part stays down
TOPICS = ("membership.events", "training.events", "welfare.events")
DB_CHECKED = ("members.active", "welfare.cases", "welfare.amount", "training.members_reached")


@pytest.fixture(scope="module")
def infra(tmp_path_factory):
    inf = PrivateInfra(tmp_path_factory.mktemp("fault-infra"))
    inf.up()
    yield inf
    inf.down()


@pytest.fixture
def stack(infra, tmp_path):
    prefix = unique_prefix()
    env = {**infra.client_env(), "TOPIC_PREFIX": prefix + ".", "DB_PREFIX": prefix + "_", "TOPIC_PARTITIONS": "3"}
    subprocess.run([sys.executable, "-m", "platformkit.run", "topics"], env={**os.environ, **env}, cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    plat = Platform(tmp_path, env)
    try:
        plat.start()
        yield plat, prefix
    finally:
        plat.stop()


def _call(method: str, url: str, token: str, body=None, expect=(200, 201), timeout: float = 90):
    """One setup command, retried while the service has not yet heard of the unit from Kafka."""
    deadline = time.monotonic() + timeout
    while True:
        r = requests.request(method, url, json=body, headers={"Authorization": "Bearer " + token}, timeout=20)
        if r.status_code in expect:
            return r.json()
        if time.monotonic() > deadline or r.status_code not in (404, 409, 422, 503):
            raise AssertionError(f"{method} {url}: {r.status_code} {r.text}")
        time.sleep(0.3)


def build_tree(plat: Platform) -> tuple[dict[str, str], str]:
    admin = mint("fault-admin", "*", ["admin"])
    m = plat.url("membership") + "/api/v1"
    units: dict[str, str] = {}

    def unit(code, name, kind, level, parent, **extra):
        units[code] = _call("POST", f"{m}/units", admin, {
            "name": name, "code": code, "kind": kind, "level": level, "parent_id": units.get(parent),
            "effective_date": "2020-01-01", **extra})["id"]

    unit("FM", "Tổng Liên đoàn (fault matrix)", "central", 1, None)
    unit("FM-P", "LĐLĐ tỉnh Thử Nghiệm", "province", 2, "FM")
    for c in ("A", "B"):
        unit(f"FM-{c}", f"Công đoàn phường {c}", "commune", 3, "FM-P")
    for code, sector in (("FM-A-1", "non_state"), ("FM-A-2", "public_admin"), ("FM-B-1", "state_enterprise")):
        unit(code, f"CĐCS Công ty {code}", "cdcs", 4, code.rsplit("-", 1)[0], sector=sector,
             founding={"method": "standard", "founding_member_count": 9,
                       "founding_group": ["Lê Văn An", "Phạm Thị Bình", "Hoàng Công"],
                       "decision_no": f"QĐ-{code}", "decision_date": "2020-01-10"})
    province = mint("fault@FM-P", units["FM-P"], ["officer"])
    programme = _call("POST", plat.url("welfare") + "/api/v1/programmes", province, {
        "name": "Thăm hỏi đoàn viên (fault matrix)", "kind": "hardship_visit", "unit_id": units["FM-P"],
        "year": date.today().year, "budget": 10**13, "funding_sources": ["union_fund"]})["id"]
    return units, programme


def test_every_process_killed_nothing_lost_nothing_counted_twice(stack, infra, tmp_path):
    plat, prefix = stack
    year = date.today().year
    units, programme = build_tree(plat)
    load = Load(plat, units, programme, pause=PACE)
    load.start()
    try:
        wait_until(lambda: load.counts()["disbursed"] >= 1 and load.counts()["sessions"] >= 1, 90,
                   message="all three writers acknowledged at least one write")
    except AssertionError as exc:
        load.stop()
        raise AssertionError(f"{exc}: {load.counts()}, refused {dict(load.acked.refused)}, "
                             f"errors {dict(load.acked.errors)}") from None

    # ---- the matrix
    faults = []
    for _ in range(ROUNDS):
        for kind in plat.kinds:
            for sig in (signal.SIGKILL, signal.SIGTERM):
                faults.append((kind, sig))
            if kind.endswith("-api"):
                faults.append((kind, "worker"))
        for part in ("broker", "database"):
            if part == "database" and infra.external_db:
                continue  # MONGO_URL: the database is not ours to kill
            for sig in (signal.SIGKILL, signal.SIGTERM):
                faults.append((part, sig))
    log = []
    for target, how in faults:
        time.sleep(GAP)
        before = load.counts()
        t0 = time.monotonic()
        if how == "worker":
            seen = plat.kill_worker(target)
        elif target in ("broker", "database"):
            seen = infra.fault(target, how, OUTAGE)
        else:
            seen = plat.fault(target, how, OUTAGE)
        name = how if how == "worker" else signal.Signals(how).name
        log.append({"target": target, "signal": name, "seconds": round(time.monotonic() - t0, 1), **seen,
                    "acked_before": sum(before.values())})
        print(f"[faults] {target:22s} {name:8s} {seen} acked so far {load.counts()}", flush=True)
    time.sleep(GAP * 2)
    load.stop()
    acked = load.acked
    print(f"[faults] {len(faults)} faults; acknowledged {load.counts()}; refused {dict(acked.refused)}; "
          f"errors {dict(acked.errors)}", flush=True)
    (tmp_path / "faults.json").write_text(json.dumps(log, indent=1))

    # the load went on through the matrix: every writer kept being acknowledged after the first faults
    assert load.counts()["admitted"] > 2 * len(faults) // 3, load.counts()
    assert load.counts()["sessions"] > len(faults) // 3 and load.counts()["disbursed"] > len(faults) // 4, load.counts()
    # a SIGTERM is a clean shutdown for every kind (exit 0), never a crash
    terms = {e["target"]: e["exit"] for e in log if e["signal"] == "SIGTERM" and "exit" in e}
    assert terms and all(code == 0 for code in terms.values()), terms
    # while the database was down the APIs said 503 (retry), never 500
    assert not [k for k in acked.refused if k.endswith(" 500")], dict(acked.refused)

    db = MongoClient(infra.mongo_url, serverSelectionTimeoutMS=10000)
    mdb, tdb, wdb = (db[f"{prefix}_{s}"] for s in ("membership", "training", "welfare"))

    # ---- nothing acknowledged is missing from the source databases
    members = {d["_id"]: d for d in mdb.members.find({}, {"status": 1, "unit_id": 1, "unit_path": 1, "version": 1})}
    missing = [i for i in acked.admitted if i not in members]
    assert not missing, f"{len(missing)} acknowledged admissions not in the database: {missing[:5]}"
    not_active = [i for i in acked.approved if members[i]["status"] != "active"]
    assert not not_active, not_active[:5]
    # the second writer raced the approvals on the same members: its changes are all in too
    assert load.counts()["profiles"] > 0, load.counts()
    behind = {m: (members[m]["version"], max(v)) for m, v in acked.profiles.items() if members[m]["version"] < max(v)}
    assert not behind, f"members older than an acknowledged profile change: {behind}"
    sessions = {d["_id"]: d for d in tdb.dissemination_sessions.find({})}
    assert set(acked.sessions) <= set(sessions), set(acked.sessions) - set(sessions)
    cases = {d["_id"]: d for d in wdb.cases.find({})}
    assert set(acked.cases) <= set(cases)
    assert all(cases[c]["status"] == "disbursed" for c in acked.disbursed)

    # ---- every acknowledged write's event reached its topic (relays killed, broker killed)
    def backlog() -> dict[str, int]:
        return {f"{d.name}.{c}": d[c].count_documents({"outbox_pending": True})
                for d in (mdb, tdb, wdb) for c in d.list_collection_names()
                if d[c].find_one({"outbox_pending": {"$exists": True}}, {"_id": 1})}

    def relays_done():
        left = {k: v for k, v in backlog().items() if v}
        print(f"[faults] outbox backlog: {left or 'none'}", flush=True)
        return not left
    wait_until(relays_done, 600, interval=10, message="every outbox relayed")
    bootstrap = infra.bootstrap
    topics = [prefix + "." + t for t in TOPICS]
    state: dict = {}

    def all_relayed():
        envs, seen = [], set()
        for t in topics:
            for msg in read_topic(t, timeout=20, bootstrap=bootstrap):
                env = decode(msg.value)
                if env.id not in seen:
                    seen.add(env.id)
                    envs.append(env)
        state["envs"] = envs
        by_type = defaultdict(set)
        for e in envs:
            by_type[e.type].add(e.data.get("case_id") or e.data.get("session_id") or e.data.get("member_id")
                                or e.subject)
        state["gaps"] = {
            "admitted": set(acked.admitted) - by_type["membership.member.admitted.v1"],
            "approved": acked.approved - by_type["membership.member.approved.v1"],
            "sessions": set(acked.sessions) - by_type["training.dissemination.recorded.v1"],
            "disbursed": set(acked.disbursed) - by_type["welfare.case.disbursed.v1"],
            # every acknowledged profile change (member, version) has its event
            "profiles": {(m, v) for m, vs in acked.profiles.items() for v in vs}
                        - {(e.subject, e.aggregateversion) for e in envs
                           if e.type == "membership.member.profile_updated.v1"},
        }
        return not any(state["gaps"].values())

    try:
        wait_until(all_relayed, 60, interval=2, message="every acknowledged write's event on its topic")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: missing {({k: sorted(v)[:3] for k, v in state['gaps'].items()})}\n"
                             f"{plat.tail()}") from None

    # ---- views equal the recount of the topics, and the recount of the source databases
    operator = {"Authorization": "Bearer " + mint("fault-check", "*", ["admin"])}
    base = plat.url("reporting") + "/api/v1"
    indicators = sorted(set(COMPARED) | set(DB_CHECKED))

    def from_databases() -> dict[str, Counter]:
        out: dict[str, Counter] = defaultdict(Counter)
        for d in mdb.members.find({"status": "active"}, {"unit_path": 1}):
            for u in d["unit_path"]:
                out[u]["members.active"] += 1
        for d in wdb.cases.find({"status": "disbursed"}, {"unit_id": 1, "ancestors": 1, "amount": 1}):
            for u in [*d["ancestors"], d["unit_id"]]:
                out[u]["welfare.cases"] += 1
                out[u]["welfare.amount"] += d["amount"]
        for d in tdb.dissemination_sessions.find({}, {"reached": 1}):
            for r in d["reached"]:
                for u in [*r["ancestors"], r["unit_id"]]:
                    out[u]["training.members_reached"] += r["members_reached"]
        return out

    def views_equal():
        expected = recount(state["envs"], f"{year}-01", f"{year}-12")
        source = from_databases()
        bad = {}
        for code, uid in units.items():
            r = requests.get(f"{base}/views/{uid}", params={"period": str(year), "indicators": ",".join(indicators)},
                             headers=operator, timeout=20)
            if r.status_code != 200:
                bad[code] = r.status_code
                continue
            got = {row["indicator"]: row["actual"] for row in r.json()["rows"]}
            diff = {k: (got.get(k), expected.get(uid, {}).get(k, 0)) for k in COMPARED
                    if got.get(k) != expected.get(uid, {}).get(k, 0)}
            diff.update({f"db:{k}": (got.get(k), source[uid][k]) for k in DB_CHECKED if got.get(k) != source[uid][k]})
            if diff:
                bad[code] = diff
        state["bad"] = bad
        return not bad

    try:
        wait_until(views_equal, 120, interval=2, message="every view equal to both recounts")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: (view, recount) {json.dumps(state['bad'], ensure_ascii=False)}\n"
                             f"{plat.tail()}") from None
    top = requests.get(f"{base}/views/{units['FM']}", params={"period": str(year), "indicators": "members.active"},
                       headers=operator, timeout=20).json()["rows"][0]["actual"]
    assert top == len([m for m in members.values() if m["status"] == "active"]) >= len(acked.approved) > 0
    restarts = {n: p.restarts for n, p in plat.procs.items() if p.restarts}
    print(f"[faults] views equal both recounts at {len(units)} units; restarts by the supervisor: {restarts}")

"""Batch approvals against one-by-one approvals, in the same run, against membership under gunicorn.

    .venv/bin/python -m bench.batch_bench [--n 300] [--workers 2] [--threads 4]

membership's process kinds of deploy/Procfile run as real processes (tests.support.platform.Platform
with the other services' kinds left out: the API under gunicorn with deploy/gunicorn.conf.py,
gthread, --workers x --threads; its outbox relay publishing to Kafka), on this run's own
TOPIC_PREFIX/DB_PREFIX. Through the API: the tree TLD > province > commune > CĐCS (as bench.support's
Tree) and 4 x N distinct admissions into the CĐCS (imports of at most 500 rows), all made before any
approval. Then four rounds, each approving N of them as the commune's officer (the level above the
CĐCS):
  one-by-one   N requests `POST /members/{id}/approve`, one after the other on one keep-alive
               connection (an officer's client working through a list): the baseline;
  batch        one request `POST /members/approvals` with the N items (and an Idempotency-Key).
in the order one-by-one, batch, batch, one-by-one, round k on the admissions k, k+4, k+8, ...
FerretDB's cost of a write depends on where the document lies in the collection (it scans to it)
and on how much the documents before it have grown (each approval adds its event to the outbox
until the relay publishes it); the first version of this bench gave the N first admissions to
one-by-one and the next N to the batch, and measured the batch at 0.6x largely for that reason. So
both kinds meet the same positions and, on average, the same state of the collection.
After each round: the time until the relay has published every event of it (none pending), the
check in the database (the N members active, each at version 2: approved exactly once), and the
relay left to go quiet. Finally the first batch is sent again with its key (the replay: nothing
applied). The approvals/s of each kind (all its approvals over all its seconds) and the ratio batch
/ one-by-one are printed and appended to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.support import (Api, BenchError, Tree, admission, append_results, cpu_cores, delete_topics, drop_databases,
                           isolate, machine_line, now_utc, pct, wait_quiet)

IMPORT_ROWS = 500
ROUNDS = ("one-by-one", "batch", "batch", "one-by-one")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=300, help="approvals per round, the batch's size (default 300, max 500)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as gunicorn.conf.py)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    args = p.parse_args()
    if not 1 <= args.n <= 500:
        raise SystemExit("--n is the size of one batch: 1 to 500")
    prefix = isolate("bbatch")

    from platformkit import config, mongo
    from platformkit.kafka_io import ensure_topics
    from tests.support.platform import Platform

    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    plat = Platform(work, env={"WEB_WORKERS": str(args.workers), "WEB_THREADS": str(args.threads)})
    plat.kinds = {k: v for k, v in plat.kinds.items() if k.startswith("membership-")}
    plat.ports = {k: v for k, v in plat.ports.items() if k == "MEMBERSHIP_PORT"}
    loads = [os.getloadavg()[0]]
    t_start = time.monotonic()
    rows: list[dict] = []
    checks: list[str] = []
    wrong = 0
    try:
        ensure_topics([config.topic("membership.events")])
        print(f"[bench] starting {', '.join(plat.kinds)} (prefix {prefix}, logs in {work})", flush=True)
        plat.start()
        relay = [plat.procs["membership-relay"].pid]
        idle = cpu_cores(relay, 2.0)
        m = Api(plat.url("membership"))
        tree = build_tree(m)
        token = tree.token("BENCH-C1")  # the commune: the level above the CĐCS
        members = admit(m, tree, len(ROUNDS) * args.n)
        print(f"[bench] {len(members)} admissions in {time.monotonic() - t_start:.0f}s; relay quiet after "
              f"{wait_quiet(relay, idle):.0f}s", flush=True)
        db = mongo.database("membership")
        first_batch: tuple[list[str], dict] | None = None
        for k, kind in enumerate(ROUNDS):
            chosen = members[k::len(ROUNDS)][:args.n]
            t0 = time.monotonic()
            if kind == "batch":
                seconds, latencies, codes, answer = batch(m, token, chosen, key=f"bench-batch-{k}")
                first_batch = first_batch or (chosen, answer)
            else:
                seconds, latencies, codes = one_by_one(m, token, chosen)
            published = published_after(db, t0)
            once = sum(1 for mid in chosen if db.members.find_one({"_id": mid}, {"version": 1, "status": 1})
                       == {"_id": mid, "version": 2, "status": "active"})
            wrong += len(chosen) - once
            checks.append(f"round {k + 1} ({kind}): {once:,} of {len(chosen):,} members active at version 2 "
                          "(approved exactly once)")
            rows.append({"round": k + 1, "kind": kind, "n": len(chosen), "seconds": seconds, "latencies": latencies,
                         "codes": codes, "published": published})
            loads.append(os.getloadavg()[0])
            print(f"[bench] round {k + 1} {kind:10} {len(chosen)} approvals in {seconds:6.1f}s = "
                  f"{len(chosen) / seconds:5.1f}/s, all published after {published:.1f}s; codes {codes}; "
                  f"relay quiet after {wait_quiet(relay, idle):.0f}s", flush=True)
        assert first_batch is not None
        replay = replay_batch(m, token, *first_batch)
        wrong += not (replay["same"] and replay["unchanged"])
        checks.append(f"replay of round 2's batch with its Idempotency-Key: {replay['status']} in "
                      f"{replay['seconds'] * 1000:.0f} ms, Idempotent-Replayed: {replay['replayed']}, the same answer: "
                      f"{replay['same']}, the {args.n} member documents unchanged: {replay['unchanged']}")
        if plat.dead():
            raise BenchError("a process died:\n" + plat.tail())
    finally:
        plat.stop()
        drop_databases(prefix)
        delete_topics(prefix)
    loads.append(os.getloadavg()[0])
    report(rows, checks, args, loads, time.monotonic() - t_start)
    return 1 if wrong or any(set(r["codes"]) - {"200"} for r in rows) else 0


def build_tree(m: Api) -> Tree:
    """bench.support.Tree's units (TLD > BENCH > BENCH-C1 > BENCH-C1-001), each created by an admin of
    its parent (creating units takes `unit.structure`, which officers do not hold)."""
    tree = Tree(m)
    tree.ids["TLD"] = m.ok("POST", "/units", tree.operator, {
        "name": "Tổng Liên đoàn Lao động Việt Nam", "code": "TLD", "kind": "central", "level": 1,
        "effective_date": "1929-07-28"})["id"]
    for code, name, kind, level, parent, extra in (
            ("BENCH", "LĐLĐ Tỉnh Đo Tải", "province", 2, "TLD", {}),
            ("BENCH-C1", "Công đoàn phường Đo Tải", "commune", 3, "BENCH", {}),
            ("BENCH-C1-001", "CĐCS Công ty TNHH Đo Tải", "cdcs", 4, "BENCH-C1", {
                "sector": "non_state", "founding": {
                    "method": "standard", "founding_member_count": 10, "decision_no": "1/QĐ-BENCH",
                    "founding_group": ["Trần Thị Một", "Lê Văn Hai", "Phạm Thị Ba"], "decision_date": "2024-01-05"}})):
        tree.ids[code] = m.ok("POST", "/units", tree.token(parent, "admin"), {
            "name": name, "code": code, "kind": kind, "level": level, "parent_id": tree.ids[parent],
            "effective_date": "2024-01-01", **extra})["id"]
    return tree


def admit(m: Api, tree: Tree, n: int) -> list[str]:
    """n distinct admissions into the CĐCS through the import, in files of at most IMPORT_ROWS rows."""
    cdcs, token = tree.ids["BENCH-C1-001"], tree.token("BENCH-C1-001")
    out: list[str] = []
    columns = ("full_name", "citizen_id", "date_of_birth", "gender", "phone", "employer", "is_official", "admitted_on")
    for start in range(0, n, IMPORT_ROWS):
        rows = [admission(i) for i in range(start, min(n, start + IMPORT_ROWS))]
        csv = ",".join(columns) + "\n" + "".join(
            ",".join(str(r[c]).lower() if c == "is_official" else str(r[c]) for c in columns) + "\n" for r in rows)
        resp = m.session.post(f"{m.base}/api/v1/units/{cdcs}/members/import", timeout=900,
                              headers={"Authorization": f"Bearer {token}"},
                              files={"file": ("doan-vien.csv", csv.encode(), "text/csv")})
        if resp.status_code != 200 or resp.json()["admitted"] != len(rows):
            raise BenchError(f"import -> {resp.status_code} {resp.text[:500]}")
        out += [r["member_id"] for r in resp.json()["rows"]]
    return out


def one_by_one(m: Api, token: str, chosen: list[str]) -> tuple[float, list[float], dict]:
    codes: dict[str, int] = {}
    latencies = []
    t0 = time.monotonic()
    for mid in chosen:
        t = time.monotonic()
        r = m.call("POST", f"/members/{mid}/approve", token, {})
        latencies.append((time.monotonic() - t) * 1000)
        codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
    return time.monotonic() - t0, latencies, codes


def batch(m: Api, token: str, chosen: list[str], key: str) -> tuple[float, list[float], dict, dict]:
    body = {"items": [{"member_id": mid, "decision": "approve"} for mid in chosen]}
    t0 = time.monotonic()
    r = m.session.post(f"{m.base}/api/v1/members/approvals", json=body, timeout=1800,
                       headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
    seconds = time.monotonic() - t0
    if r.status_code != 200:
        raise BenchError(f"batch -> {r.status_code} {r.text[:500]}")
    codes: dict[str, int] = {}
    for item in r.json()["results"]:
        codes[str(item["status"])] = codes.get(str(item["status"]), 0) + 1
    return seconds, [seconds * 1000], codes, r.json()


def published_after(db, t0: float, timeout: float = 300.0) -> float:
    """Seconds from t0 until the relay has published every pending event (no member document
    with `outbox_pending`): the round's approvals are then on Kafka."""
    deadline = time.monotonic() + timeout
    while db.members.count_documents({"outbox_pending": True}, limit=1):
        if time.monotonic() > deadline:
            raise BenchError(f"the relay did not publish the round's events within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - t0


def replay_batch(m: Api, token: str, chosen: list[str], answer: dict) -> dict:
    from platformkit import mongo
    db = mongo.database("membership")
    projection = {"outbox": 0, "outbox_pending": 0, "rev": 0}
    before = [db.members.find_one({"_id": mid}, projection) for mid in chosen]
    body = {"items": [{"member_id": mid, "decision": "approve"} for mid in chosen]}
    t0 = time.monotonic()
    r = m.session.post(f"{m.base}/api/v1/members/approvals", json=body, timeout=600,
                       headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "bench-batch-1"})
    seconds = time.monotonic() - t0
    after = [db.members.find_one({"_id": mid}, projection) for mid in chosen]
    return {"status": r.status_code, "seconds": seconds, "replayed": r.headers.get("Idempotent-Replayed"),
            "same": r.status_code == 200 and r.json() == answer, "unchanged": before == after}


def report(rows: list[dict], checks: list[str], args, loads: list[float], total: float) -> None:
    cmd = f".venv/bin/python -m bench.batch_bench --n {args.n} --workers {args.workers} --threads {args.threads}"
    what = {"one-by-one": f"{args.n} x `POST /members/{{id}}/approve`, sequential, one keep-alive connection",
            "batch": f"1 x `POST /members/approvals` with {args.n} items (with an Idempotency-Key)"}
    kinds = {}
    for kind in ("one-by-one", "batch"):
        mine = [r for r in rows if r["kind"] == kind]
        n, seconds, published = sum(r["n"] for r in mine), sum(r["seconds"] for r in mine), sum(r["published"] for r in mine)
        kinds[kind] = {"n": n, "seconds": seconds, "rate": n / seconds, "published_rate": n / published}
    base = kinds["one-by-one"]
    lines = [
        f"\n## Batch run of {now_utc()} UTC (bench/batch_bench.py)",
        machine_line() + " Load average (1 min) at start / after each round / end: "
        f"{' / '.join(f'{x:.1f}' for x in loads)} (shared machine). Whole run {total:.0f} s.",
        f"Server: membership-api under gunicorn as in deploy/Procfile (`-c deploy/gunicorn.conf.py`: gthread, "
        f"{args.workers} workers x {args.threads} threads) and membership-relay, loopback (the other services' "
        f"process kinds not started). Data: {len(ROUNDS) * args.n:,} admissions into one CĐCS made before any "
        f"approval; rounds one-by-one, batch, batch, one-by-one, round k approving admissions k, k+4, k+8, ... "
        f"({args.n} each), as the commune's officer.",
        f"Command: `{cmd}`",
        "",
        "| round | kind | what | approvals | seconds | approvals/s | ms per approval (requests p50 / p99) "
        "| item statuses | all its events published after s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = r["latencies"]
        per = (f"{r['seconds'] / r['n'] * 1000:.0f} ({pct(lat, 50):.0f} / {pct(lat, 99):.0f})" if len(lat) > 1
               else f"{r['seconds'] / r['n'] * 1000:.0f} (one request of {lat[0] / 1000:.1f} s)")
        lines.append(f"| {r['round']} | {r['kind']} | {what[r['kind']]} | {r['n']:,} | {r['seconds']:.1f} | "
                     f"{r['n'] / r['seconds']:.1f} | {per} | {r['codes']} | {r['published']:.1f} |")
    lines += ["", "| kind | approvals | seconds | approvals/s | rate / one-by-one | approvals/s until published |",
              "|---|---|---|---|---|---|"]
    for kind, k in kinds.items():
        lines.append(f"| {kind} | {k['n']:,} | {k['seconds']:.1f} | {k['rate']:.1f} | **{k['rate'] / base['rate']:.2f}x** | "
                     f"{k['published_rate']:.1f} ({k['published_rate'] / base['published_rate']:.2f}x) |")
    lines += ["", "Checks (database):"] + [f"- {c}" for c in checks]
    append_results(lines)


if __name__ == "__main__":
    sys.exit(main())

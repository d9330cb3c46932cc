"""HTTP requests/s and latency per service under gunicorn, each beside the /healthz of the same
server measured in the same run (the framework floor).

    .venv/bin/python -m bench.http_bench [--seconds 10] [--concurrency 8] [--workers 2] [--threads 4]

Every process kind of deploy/Procfile runs (tests.support.platform.Platform: the real commands,
free loopback ports, this run's own TOPIC_PREFIX/DB_PREFIX): the APIs under gunicorn with
deploy/gunicorn.conf.py (gthread, --workers x --threads), and the relays, consumers and projector
as in production. The data the reads need is created through the APIs first. Then per service,
with vegeta (closed loop: --concurrency connections, keep-alive, --seconds per scenario):
  healthz  GET /healthz
  read     membership: a page of a CĐCS's members; training: the class list; welfare: the case
           list; reporting: the province view
  write    membership: admit distinct members (distinct citizen IDs) into the CĐCS; training:
           plan distinct classes; welfare: request distinct support cases; reporting: assign
           distinct targets (unit, indicator, year)
After each write scenario the new documents in the service's database are counted: they must
equal vegeta's count of 2xx answers. Between services the background processes (relays,
consumers, projector) are let to finish the events the writes produced. Results are appended to
docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

from bench.support import (VEGETA_VERSION, Api, BenchError, Tree, admission, append_results, attack, cpu_cores,
                           delete_topics, drop_databases, isolate, machine_line, now_utc, target, vegeta,
                           wait_quiet)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each scenario (default 10)")
    p.add_argument("--concurrency", type=int, default=8, help="vegeta connections, closed loop (default 8)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers per API (default 2, as gunicorn.conf.py)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    p.add_argument("--members", type=int, default=100, help="members admitted before the reads (default 100)")
    p.add_argument("--services", default="membership,training,welfare,reporting")
    args = p.parse_args()
    prefix = isolate("bhttp")
    vegeta()  # built before anything starts, if not cached yet

    from platformkit import mongo
    from tests.support.platform import Platform

    work = Path(tempfile.mkdtemp(prefix="http-bench-"))
    plat = Platform(work, env={"WEB_WORKERS": str(args.workers), "WEB_THREADS": str(args.threads)})
    rows: list[dict] = []
    checks: list[str] = []
    try:
        print(f"[bench] starting every process kind of deploy/Procfile (prefix {prefix}, logs in {work})", flush=True)
        plat.start()
        background = [pr.pid for name, pr in plat.procs.items() if not name.endswith("-api")]
        idle = cpu_cores(background, 2.0)
        print(f"[bench] background processes at rest: {idle:.2f} core", flush=True)
        ctx = prepare(plat, args.members)
        print(f"[bench] data prepared in {ctx['prep_s']:.0f}s; background quiet after "
              f"{wait_quiet(background, idle):.0f}s", flush=True)
        db = {s: mongo.database(s) for s in ("membership", "training", "welfare", "reporting")}
        for svc in args.services.split(","):
            base = plat.url(svc)
            for kind, (targets, lazy, count) in scenarios(svc, base, ctx, db, args).items():
                before = count() if count else None
                rep = attack(targets, args.seconds, args.concurrency, work, f"{svc}-{kind}", lazy)
                row = summarise(svc, kind, rep)
                if count:
                    time.sleep(0.5)
                    row["new_docs"] = count() - before
                    ok = "equal" if row["new_docs"] == row["ok"] else "DIFFERENT"
                    checks.append(f"{svc}: {row['ok']:,} writes answered 2xx, {row['new_docs']:,} new documents "
                                  f"({ok})")
                    if lazy and row["requests"] >= len(targets):
                        checks.append(f"{svc}: the {len(targets):,} distinct write targets ran out before "
                                      f"{args.seconds:.0f}s")
                rows.append(row)
                print(f"[bench] {svc:10} {kind:7} {row['rps']:8.1f} rps  p50 {row['p50']:7.1f} ms  "
                      f"p99 {row['p99']:7.1f} ms  non-2xx {row['bad']}  {row['codes']}", flush=True)
                if row["errors"]:
                    print(f"          errors: {row['errors'][:3]}", flush=True)
            waited = wait_quiet(background, idle)
            print(f"[bench] background quiet again after {waited:.0f}s", flush=True)
        if plat.dead():
            raise BenchError("a process died:\n" + plat.tail())
    finally:
        plat.stop()
        drop_databases(prefix)
        delete_topics(prefix)
    report(rows, checks, args)
    bad = sum(r["bad"] for r in rows) + sum("DIFFERENT" in c for c in checks)
    return 1 if bad else 0


def prepare(plat, members: int) -> dict:
    """Through the APIs: the tree, `members` members, a course and 40 classes, a programme and 40
    cases; then wait until reporting shows every admission in the province view."""
    t0 = time.monotonic()
    year = date.today().year
    m, t, w, r = (Api(plat.url(s)) for s in ("membership", "training", "welfare", "reporting"))
    tree = Tree(m).build()
    ids = tree.ids
    cdcs_tok = tree.token("BENCH-C1-001")
    with ThreadPoolExecutor(8) as pool:
        member_ids = list(pool.map(lambda i: m.ok("POST", f"/units/{ids['BENCH-C1-001']}/members", cdcs_tok,
                                                  admission(i))["id"], range(members)))
    prov_tok, commune_tok = tree.token("BENCH"), tree.token("BENCH-C1")
    course = t.ok("POST", "/courses", prov_tok, {
        "code": "BENCH-NVCD", "name": "Bồi dưỡng nghiệp vụ công đoàn", "topic": "union_work",
        "audience": "officials", "format": "in_person", "duration_days": 1, "owner_unit_id": ids["BENCH"]},
        wait=60)
    start = date.today() + timedelta(days=30)
    for i in range(40):
        t.ok("POST", "/classes", commune_tok, class_body(course["id"], ids["BENCH-C1"], f"BENCH-R-{i:04d}", start),
             wait=60)
    programme = w.ok("POST", "/programmes", prov_tok, {
        "name": f"Thăm hỏi đoàn viên khó khăn {year}", "kind": "hardship_visit", "unit_id": ids["BENCH"],
        "year": year, "budget": 10**12, "funding_sources": ["union_fund"]}, wait=60)
    for i in range(40):
        w.ok("POST", "/cases", cdcs_tok, case_body(programme["id"], member_ids[i % len(member_ids)], i), wait=60)

    def caught_up():
        res = r.call("GET", f"/views/{ids['BENCH']}?period={year}&indicators=members.admitted", prov_tok)
        return res.status_code == 200 and res.json()["rows"][0]["actual"] == members
    deadline = time.monotonic() + 120
    while not caught_up():
        if time.monotonic() > deadline:
            raise BenchError("reporting did not show the admissions within 120 s\n" + plat.tail(8))
        time.sleep(0.5)
    return {"ids": ids, "tree": tree, "members": member_ids, "course": course["id"], "programme": programme["id"],
            "year": year, "start": start, "prep_s": time.monotonic() - t0}


def class_body(course_id: str, unit_id: str, code: str, start: date) -> dict:
    return {"course_id": course_id, "code": code, "name": f"Lớp {code}", "organising_unit_id": unit_id,
            "start_date": start.isoformat(), "days": [start.isoformat()], "capacity": 40,
            "location": "Hội trường"}


def case_body(programme_id: str, member_id: str, i: int) -> dict:
    return {"programme_id": programme_id, "member_id": member_id, "hardship_type": "illness", "amount": 1_000_000,
            "form": "cash", "funding": [{"source": "union_fund", "amount": 1_000_000}], "note": f"bench case {i}"}


def scenarios(svc: str, base: str, ctx: dict, db: dict, args) -> dict:
    """kind -> (vegeta targets, used once each (lazy), count of the write's documents or None)."""
    ids, tree, year = ctx["ids"], ctx["tree"], ctx["year"]
    api = base + "/api/v1"
    # enough distinct writes for a server far faster than this one: 1,000 per second of the scenario
    n = int(1000 * args.seconds)
    health = ([target("GET", base + "/healthz", "")], False, None)
    if svc == "membership":
        tok = tree.token("BENCH-C1-001")
        cdcs = ids["BENCH-C1-001"]
        read = [target("GET", f"{api}/units/{cdcs}/members?limit=50", tok)]
        write = [target("POST", f"{api}/units/{cdcs}/members", tok, admission(100_000 + i)) for i in range(n)]
        count = lambda: db["membership"].members.count_documents({"unit_id": cdcs})  # noqa: E731
    elif svc == "training":
        tok = tree.token("BENCH-C1")
        read = [target("GET", f"{api}/classes?limit=50", tok)]
        write = [target("POST", f"{api}/classes", tok, class_body(ctx["course"], ids["BENCH-C1"], f"BENCH-W-{i:06d}",
                                                                  ctx["start"])) for i in range(n)]
        count = lambda: db["training"].classes.count_documents({"version": {"$gte": 1}})  # noqa: E731
    elif svc == "welfare":
        tok = tree.token("BENCH-C1-001")
        read = [target("GET", f"{api}/cases?limit=50", tree.token("BENCH"))]
        members = ctx["members"]
        write = [target("POST", f"{api}/cases", tok, case_body(ctx["programme"], members[i % len(members)], 1000 + i))
                 for i in range(n)]
        count = lambda: db["welfare"].cases.count_documents({})  # noqa: E731
    elif svc == "reporting":
        from services.reporting.indicators import CATALOGUE
        tok = tree.token("BENCH")
        read = [target("GET", f"{api}/views/{ids['BENCH']}?period={year}", tok)]
        # distinct (unit, indicator, year): a new target document each (assigned by the province)
        keys = [(u, ind, y) for y in range(2000, 2101) for u in ("BENCH-C1", "BENCH-C1-001") for ind in sorted(CATALOGUE)]
        write = [target("PUT", f"{api}/targets/{ids[u]}", tok, {"year": y, "indicator": ind, "value": 50})
                 for u, ind, y in keys[:n]]
        count = lambda: db["reporting"].targets.count_documents({})  # noqa: E731
    else:
        raise BenchError(f"unknown service {svc}")
    return {"healthz": health, "read": (read, False, None), "write": (write, True, count)}


def summarise(svc: str, kind: str, rep: dict) -> dict:
    codes = {k: v for k, v in (rep.get("status_codes") or {}).items()}
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    lat = rep["latencies"]
    return {"service": svc, "kind": kind, "requests": rep["requests"], "ok": ok, "bad": rep["requests"] - ok,
            "rps": rep["throughput"], "p50": lat["50th"] / 1e6, "p99": lat["99th"] / 1e6, "codes": codes,
            "errors": rep.get("errors") or [], "seconds": (rep["duration"] + rep["wait"]) / 1e9}


WHAT = {("membership", "read"): "GET a page of 50 members of the CĐCS",
        ("membership", "write"): "POST admit a distinct member into the CĐCS",
        ("training", "read"): "GET the class list (50)",
        ("training", "write"): "POST plan a distinct class",
        ("welfare", "read"): "GET the case list (50)",
        ("welfare", "write"): "POST request a distinct support case",
        ("reporting", "read"): "GET the province view (headline indicators)",
        ("reporting", "write"): "PUT a distinct target (unit, indicator, year)"}


def report(rows: list[dict], checks: list[str], args) -> None:
    health = {r["service"]: r["rps"] for r in rows if r["kind"] == "healthz"}
    cmd = (f".venv/bin/python -m bench.http_bench --seconds {args.seconds:g} --concurrency {args.concurrency} "
           f"--workers {args.workers} --threads {args.threads} --members {args.members}")
    if args.services != "membership,training,welfare,reporting":
        cmd += f" --services {args.services}"
    lines = [
        f"\n## HTTP run of {now_utc()} UTC (bench/http_bench.py)",
        machine_line(),
        f"Server: each API under gunicorn as in deploy/Procfile (`gunicorn -c deploy/gunicorn.conf.py`: gthread, "
        f"{args.workers} workers x {args.threads} threads), loopback; every other process kind of the Procfile "
        f"running too (relays, consumers, projector), as in production. Load: vegeta {VEGETA_VERSION}, closed loop, "
        f"{args.concurrency} keep-alive connections (`-rate=0 -max-workers={args.concurrency}`), "
        f"{args.seconds:g} s per scenario; every write request carries its own body (distinct documents).",
        f"Command: `{cmd}`",
        "",
        "| service | scenario | requests | 2xx/s | p50 ms | p99 ms | non-2xx | rps / rps(healthz) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        what = "GET /healthz (same gunicorn: the framework floor)" if r["kind"] == "healthz" else WHAT[(r["service"], r["kind"])]
        ratio = r["rps"] / health[r["service"]] if health.get(r["service"]) else float("nan")
        bad = str(r["bad"]) if not r["bad"] else f"**{r['bad']}** {r['codes']}"
        lines.append(f"| {r['service']} | {r['kind']}: {what} | {r['requests']:,} | {r['rps']:,.1f} | {r['p50']:.1f} | "
                     f"{r['p99']:.1f} | {bad} | {ratio:.3f} |")
    lines += ["", "Acknowledged writes are real (documents counted in the service's database after the scenario):"]
    lines += [f"- {c}" for c in checks]
    append_results(lines)


if __name__ == "__main__":
    sys.exit(main())

"""/healthz of the reporting API while eight clients send the heaviest reads the API allows, beside
/healthz of the same server at rest (same run). The proof asked for by the ranges cap (periods and
series span at most 120 months, platformkit.web's read time budget): loaded p99 within 2x of idle.

    .venv/bin/python -m bench.heavy_read_bench [--cdcs 3000] [--communes 100] [--members 60000]
        [--clients 8] [--probes 400] [--interval 0.15] [--max-seconds 120] [--workers 2] [--threads 4]
        [--keep] [--reuse PREFIX]

1. Views: a synthetic province (synthetic.province, seed 11) whose business dates run over ten years
   (2016-01 .. 2025-11 instead of one year), produced into this run's own topics (TOPIC_PREFIX) and
   folded into this run's own database (DB_PREFIX) by services.reporting.rebuild, i.e. the
   projector's own handler (the incremental projector, ~100-350 events/s here, would take too long).
2. The reporting API under gunicorn as in deploy/Procfile (deploy/gunicorn.conf.py: gthread,
   --workers x --threads, default 2 x 4 as in production), a real process on a free loopback port.
3. Each heavy request alone (three times each), and the old attack range
   (`series?first=0001-01&last=9999-12`, which never answered): 400 at once, timed.
4. Idle: --probes sequential GET /healthz, one every --interval seconds, a new connection each
   (like a kubelet probe).
5. Loaded: --clients threads (in a child process, so that their own work does not slow the probes
   down) send, closed loop, the heaviest allowed requests at the province in turn: the series of
   a ratio of two stocks over exactly 120 months (2016-01..2025-12), the drill-down
   (`children`) with every indicator of the catalogue over the same 120 months, and export.xlsx of
   the same; once all are in flight, the same probes again (at most --max-seconds).
6. A table (idle vs loaded /healthz p50/p99, ratio, the heavy requests' own figures) printed and
   appended to docs/benchmarks.md. Reports, never asserts.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import requests

from bench.support import append_results, delete_topics, drop_databases, isolate, machine_line, now_utc, pct

FIRST, LAST = "2016-01", "2025-12"  # exactly 120 months: the most a series or a period may span
SERIES_INDICATOR = "members.female_pct"  # a ratio of two stocks: the most work per document read
LIVENESS_TIMEOUT_S = 5.0  # deploy/k8s/base/reporting.yaml: livenessProbe timeoutSeconds
ATTACK = "first=0001-01&last=9999-12"


def history_province(seed: int, communes: int, cdcs: int, members: int, activity: float):
    """synthetic.province.Province whose business dates run from January 2016 to November 2025."""
    from synthetic.province import Province

    class History(Province):
        START = date(2016, 1, 5)

        def _day(self, progress: float) -> date:
            end = date(self.year, 11, 25)
            return self.START + timedelta(days=int(progress * (end - self.START).days))

    return History(seed=seed, communes=communes, cdcs=cdcs, members=members, activity=activity)


class Quiet:
    """rebuild()'s progress lines, one every ~10 s instead of every 2 s."""

    def __init__(self):
        self.last = 0.0

    def write(self, s: str) -> int:
        now = time.monotonic()
        if s.strip() and ("%" not in s or now - self.last > 10):
            self.last = now
            sys.stdout.write(s if s.endswith("\n") else s + "\n")
            sys.stdout.flush()
        return len(s)

    def flush(self) -> None:
        sys.stdout.flush()


def build_views(args) -> dict:
    """Produce the province's events and rebuild the views from them; sizes and seconds."""
    from services.reporting import rebuild
    from services.reporting.store import Generation, active_generation
    from services.reporting.projector import db
    from synthetic.province import produce

    t = time.monotonic()
    counts = produce(history_province(args.seed, args.communes, args.cdcs, args.members, args.activity),
                     kafka=True, partitions=6, log=Quiet())
    produce_s = time.monotonic() - t
    t = time.monotonic()
    timings: dict = {}
    rebuild.rebuild(out=Quiet(), timings=timings)
    rebuild_s = time.monotonic() - t
    gen = Generation(db(), active_generation(db()))
    prov_months = len(gen.agg_docs([args.province]))
    return {"events": sum(counts.values()), "produce_s": produce_s, "rebuild_s": rebuild_s,
            "agg_docs": timings.get("documents", {}).get("agg", 0),
            "units": timings.get("documents", {}).get("units", 0), "province_months": prov_months,
            "children": gen.units.count_documents({"parent_id": args.province})}


def heavy_targets(base: str, unit: str) -> dict[str, str]:
    from services.reporting.indicators import CATALOGUE
    every = ",".join(sorted(CATALOGUE))
    views = f"{base}/api/v1/views/{unit}"
    return {
        "series": f"{views}/series?indicator={SERIES_INDICATOR}&first={FIRST}&last={LAST}",
        "children": f"{views}/children?period={FIRST}..{LAST}&indicators={every}",
        "export.xlsx": f"{views}/export.xlsx?period={FIRST}..{LAST}&indicators={every}",
    }


# ---------------------------------------------------------------- the loaded phase's clients
def _client(i: int, targets: list[tuple[str, str]], token: str, stop, out: list) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    n = i  # each client starts at another kind, so the kinds stay mixed
    while not stop.is_set():
        kind, url = targets[n % len(targets)]
        n += 1
        t0 = time.monotonic()
        try:
            r = session.get(url, headers=headers, timeout=180)
            status, size = str(r.status_code), len(r.content)
        except requests.RequestException as exc:
            status, size = type(exc).__name__, 0
        out.append((kind, t0, time.monotonic() - t0, status, size))


def load(targets: list[tuple[str, str]], token: str, clients: int, stop, ready, results) -> None:
    """Child process: `clients` threads, closed loop, until `stop`; then every (kind, start,
    seconds, status, bytes) into `results`. `ready` is set a second after the clients started
    (every one of them then has a request in flight)."""
    out: list = []
    local_stop = threading.Event()
    threads = [threading.Thread(target=_client, args=(i, targets, token, local_stop, out), daemon=True)
               for i in range(clients)]
    for th in threads:
        th.start()
    time.sleep(1.0)  # all in flight
    ready.set()
    stop.wait()
    local_stop.set()
    for th in threads:
        th.join(200)
    results.put(out)


# ---------------------------------------------------------------- probes
def probe(url: str, n: int, interval: float, max_seconds: float, timeout: float = 30.0) -> dict:
    """n sequential GETs, one every `interval` seconds (or as soon as the previous one answered,
    when it took longer), a new connection each (no keep-alive, like a kubelet probe), for at most
    max_seconds; latencies in ms (a failed probe counts with its time until failure)."""
    lat, failed = [], 0
    t_start = time.monotonic()
    while len(lat) < n and time.monotonic() - t_start < max_seconds:
        due = t_start + len(lat) * interval
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        t0 = time.perf_counter()
        try:
            ok = requests.get(url, timeout=timeout, headers={"Connection": "close"}).status_code == 200
        except requests.RequestException:
            ok = False
        lat.append((time.perf_counter() - t0) * 1000)
        failed += not ok
    return {"n": len(lat), "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat), "failed": failed,
            "over_liveness": sum(v > LIVENESS_TIMEOUT_S * 1000 for v in lat),
            "seconds": time.monotonic() - t_start}


def timed_get(url: str, token: str, reps: int) -> dict:
    lat, codes = [], {}
    for _ in range(reps):
        t0 = time.perf_counter()
        r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=180)
        lat.append((time.perf_counter() - t0) * 1000)
        codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
        size = len(r.content)
    return {"p50": pct(lat, 50), "max": max(lat), "codes": codes, "bytes": size}


# ---------------------------------------------------------------- CPU
def _ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def _machine_busy() -> tuple[int, int]:
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def process_tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return out


def database_pids() -> list[int]:
    """The local database server's processes (FerretDB or mongod), shared with whoever else uses it."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if Path(f"/proc/{d}/comm").read_text().strip() in ("ferretdb", "mongod"):
                    out.append(int(d))
            except OSError:
                pass
    return out


class CpuWatch:
    """CPU (in cores) of the gunicorn processes, of the database server and of the whole machine
    between start and stop."""

    def __init__(self, pids: list[int]):
        self.pids, self.db_pids = pids, database_pids()

    def __enter__(self):
        self.t0, self.m0 = time.monotonic(), _machine_busy()
        self.ticks0, self.db0 = _ticks(self.pids), _ticks(self.db_pids)
        return self

    def __exit__(self, *exc):
        secs = time.monotonic() - self.t0
        hz = os.sysconf("SC_CLK_TCK")
        self.server = (_ticks(self.pids) - self.ticks0) / hz / secs
        self.database = (_ticks(self.db_pids) - self.db0) / hz / secs
        busy, total = (b - a for a, b in zip(self.m0, _machine_busy()))
        self.machine = os.cpu_count() * busy / max(total, 1)


# ---------------------------------------------------------------- main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cdcs", type=int, default=3000, help="CĐCS of the province (default 3000)")
    p.add_argument("--communes", type=int, default=100, help="communes: the province's children (default 100)")
    p.add_argument("--members", type=int, default=60_000, help="members admitted over the ten years (default 60000)")
    p.add_argument("--activity", type=float, default=2.0, help="synthetic.province activity (default 2.0)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--clients", type=int, default=8, help="concurrent heavy clients (default 8)")
    p.add_argument("--probes", type=int, default=400, help="sequential /healthz probes per phase (default 400)")
    p.add_argument("--interval", type=float, default=0.15,
                   help="seconds between probe starts (default 0.15: 400 probes sample a minute of load)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="time bound of the loaded probes (default 120)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as deploy/gunicorn.conf.py)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    p.add_argument("--reuse", metavar="PREFIX", help="views of an earlier --keep run instead of building them")
    p.add_argument("--keep", action="store_true", help="keep the topics and databases (for --reuse)")
    args = p.parse_args()
    args.province = "HCM"
    started = time.monotonic()
    if args.reuse:
        prefix = args.reuse
        os.environ["TOPIC_PREFIX"], os.environ["DB_PREFIX"] = prefix + ".", prefix + "_"
        from platformkit import settings
        settings.reload()  # the prefixes just set
    else:
        prefix = isolate("bheavy")

    from platformkit.auth import mint
    from tests.support.infra import Proc, free_port, gunicorn_args, wait_http

    load_avg = [os.getloadavg()[0]]
    work = Path(tempfile.mkdtemp(prefix="heavy-read-bench-"))
    server = None
    try:
        if args.reuse:
            from services.reporting.projector import db
            from services.reporting.store import Generation, active_generation
            gen = Generation(db(), active_generation(db()))
            size = {"events": 0, "produce_s": 0, "rebuild_s": 0, "agg_docs": sum(
                db()[c].estimated_document_count() for c in db().list_collection_names()
                if c.startswith(f"g{gen.number}_agg_")), "units": gen.units.estimated_document_count(),
                "province_months": len(gen.agg_docs([args.province])),
                "children": gen.units.count_documents({"parent_id": args.province})}
            print(f"[bench] reusing the views of {prefix}", flush=True)
        else:
            print(f"[bench] building the views (prefix {prefix}): {args.cdcs:,} CĐCS under {args.communes} communes, "
                  f"{args.members:,} members over 2016-01..2025-11", flush=True)
            size = build_views(args)
        setup_s = time.monotonic() - started
        print(f"[bench] views ready in {setup_s:.0f}s: {size['units']:,} units, {size['agg_docs']:,} unit-month "
              f"documents; the province has {size['province_months']} months and {size['children']} children", flush=True)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Proc(gunicorn_args('platformkit.run:app("reporting")', port, args.workers),
                      {"WEB_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1"}, "reporting-api", work).start()
        wait_http(base + "/healthz", timeout=60)
        deadline = time.monotonic() + 30
        while len(pids := process_tree(server.popen.pid)) < 1 + args.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"[bench] gunicorn processes {pids}, database processes {database_pids()}", flush=True)
        token = mint(f"bench@{args.province}", args.province, ["viewer"])
        targets = heavy_targets(base, args.province)

        alone = {}
        for kind, url in targets.items():
            alone[kind] = timed_get(url, token, 3)
            print(f"[bench] {kind:12} alone: p50 {alone[kind]['p50']:8.1f} ms  max {alone[kind]['max']:8.1f} ms  "
                  f"{alone[kind]['codes']}  {alone[kind]['bytes']:,} bytes", flush=True)
        attack = timed_get(f"{base}/api/v1/views/{args.province}/series?indicator=cdcs.active&{ATTACK}", token, 20)
        print(f"[bench] old attack range ({ATTACK}): {attack['codes']}, p50 {attack['p50']:.1f} ms, "
              f"max {attack['max']:.1f} ms", flush=True)

        with CpuWatch(pids) as idle_cpu:
            idle = probe(base + "/healthz", args.probes, args.interval, max_seconds=600)
        print(f"[bench] /healthz idle:   n {idle['n']}  p50 {idle['p50']:.1f} ms  p99 {idle['p99']:.1f} ms  "
              f"max {idle['max']:.1f} ms  failed {idle['failed']}", flush=True)

        ctx = mp.get_context("fork")
        stop, ready, results = ctx.Event(), ctx.Event(), ctx.Queue()
        child = ctx.Process(target=load, args=(list(targets.items()), token, args.clients, stop, ready, results))
        load_t0 = time.monotonic()
        child.start()
        ready.wait(30)
        load_avg.append(os.getloadavg()[0])
        with CpuWatch(pids) as load_cpu:
            loaded = probe(base + "/healthz", args.probes, args.interval, max_seconds=args.max_seconds)
        load_s = time.monotonic() - load_t0
        stop.set()
        heavy = results.get(timeout=300)
        child.join(30)
        load_avg.append(os.getloadavg()[0])
        print(f"[bench] /healthz loaded: n {loaded['n']}  p50 {loaded['p50']:.1f} ms  p99 {loaded['p99']:.1f} ms  "
              f"max {loaded['max']:.1f} ms  failed {loaded['failed']}  over {LIVENESS_TIMEOUT_S:g} s "
              f"{loaded['over_liveness']}", flush=True)
        if not server.alive():
            print("[bench] the server died:\n" + server.output()[-3000:], flush=True)
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            drop_databases(prefix)
            delete_topics(prefix)
        else:
            print(f"[bench] kept topics and databases of {prefix} (--reuse {prefix})", flush=True)

    kinds = {}
    for kind, _t0, secs, status, nbytes in heavy:
        k = kinds.setdefault(kind, {"lat": [], "codes": {}, "bytes": 0})
        k["lat"].append(secs * 1000)
        k["codes"][status] = k["codes"].get(status, 0) + 1
        k["bytes"] = max(k["bytes"], nbytes)
    report(args, prefix, size, setup_s, alone, attack, idle, loaded, kinds, load_s, idle_cpu, load_cpu, load_avg,
           time.monotonic() - started)
    return 0


def report(args, prefix, size, setup_s, alone, attack, idle, loaded, kinds, load_s, idle_cpu, load_cpu, load_avg,
           total_s) -> None:
    ratio = loaded["p99"] / idle["p99"]
    verdict = "**reached**" if ratio <= 2 else "**not reached**"
    cmd = (f".venv/bin/python -m bench.heavy_read_bench --cdcs {args.cdcs} --communes {args.communes} "
           f"--members {args.members} --clients {args.clients} --probes {args.probes} "
           f"--interval {args.interval:g} --max-seconds {args.max_seconds:g} --workers {args.workers} --threads {args.threads}")
    built = (f"{size['events']:,} events produced in {size['produce_s']:.0f} s and folded by "
             f"services.reporting.rebuild in {size['rebuild_s']:.0f} s" if size["events"] else f"reused ({prefix})")
    lines = [
        f"\n## Heavy-read run of {now_utc()} UTC (bench/heavy_read_bench.py)",
        machine_line() + f" Load average (1 min) at start / under load / end: "
        + " / ".join(f"{v:.1f}" for v in load_avg) + " (shared machine).",
        f"Views: synthetic province (seed {args.seed}) with business dates over 2016-01..2025-11: {args.cdcs:,} CĐCS "
        f"under {size['children']} communes, {args.members:,} members; {built}: {size['units']:,} units, "
        f"{size['agg_docs']:,} unit-month documents (the province: {size['province_months']} months). Setup "
        f"{setup_s:.0f} s, whole run {total_s:.0f} s.",
        f"Server: reporting-api under gunicorn as in deploy/Procfile (`-c deploy/gunicorn.conf.py`: gthread, "
        f"{args.workers} workers x {args.threads} threads), READ_TIME_LIMIT_SECONDS "
        f"{os.environ.get('READ_TIME_LIMIT_SECONDS', '10 (default)')}, loopback. Probes: sequential GET /healthz, a new "
        f"connection each, one every {args.interval:g} s (or at once after a slower answer). Load: "
        f"{args.clients} client threads (another process), closed loop, each sending in turn "
        f"the heaviest allowed requests at the province: `series?indicator={SERIES_INDICATOR}&first={FIRST}&last={LAST}` "
        f"(120 months), `children?period={FIRST}..{LAST}&indicators=<all {len(heavy_codes())}>` and "
        f"`export.xlsx` of the same; loaded probes for at most {args.max_seconds:g} s.",
        f"Command: `{cmd}`",
        "",
        "| /healthz | probes (seconds) | p50 ms | p99 ms | max ms | failed | over 5 s (liveness timeout) | CPU (cores): reporting-api | database (shared) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r, cpu in (("idle", idle, idle_cpu), (f"under {args.clients} heavy clients", loaded, load_cpu)):
        lines.append(f"| {name} | {r['n']} ({r['seconds']:.0f} s) | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['failed']} | "
                     f"{r['over_liveness']} | {cpu.server:.2f} | {cpu.database:.2f} | {cpu.machine:.2f} |")
    lines += ["", f"Loaded p99 / idle p99 = **{ratio:.1f}x**; target: within 2x: {verdict}.", "",
              "| heavy request (at the province) | alone p50 ms | under load: requests | p50 ms | p99 ms | max ms | "
              "status codes | largest answer (bytes) |",
              "|---|---|---|---|---|---|---|---|"]
    for kind in ("series", "children", "export.xlsx"):
        k = kinds.get(kind, {"lat": [0.0], "codes": {}, "bytes": 0})
        lines.append(f"| {kind} | {alone[kind]['p50']:.0f} | {len(k['lat'])} | {pct(k['lat'], 50):.0f} | "
                     f"{pct(k['lat'], 99):.0f} | {max(k['lat']):.0f} | {k['codes']} | {k['bytes']:,} |")
    total = sum(len(k["lat"]) for k in kinds.values())
    lines += ["", f"Heavy requests answered during the {load_s:.0f} s of load: {total} ({total / max(load_s, 1e-6):.2f}/s).",
              f"The old attack (`series?indicator=cdcs.active&{ATTACK}`, which never answered): "
              f"{attack['codes']}, p50 {attack['p50']:.1f} ms, max {attack['max']:.1f} ms over 20 requests."]
    append_results(lines)


def heavy_codes() -> list[str]:
    from services.reporting.indicators import CATALOGUE
    return sorted(CATALOGUE)


if __name__ == "__main__":
    sys.exit(main())

"""The live platform at two province sizes on the same store, side by side (`make bench`).

    .venv/bin/python -m bench.province_bench --sizes 2000,2500000 [--seed 7] [--seconds 10]

Per size (members; CĐCS and communes in the province's proportions: 22,000 CĐCS and 150 communes
for 2,500,000 members, at least 6 and 2):
1. the province is loaded into the services' own databases and its events into the topics by
   synthetic/load.py, under DB_PREFIX `pv<members>s<seed>_` and TOPIC_PREFIX `pv<members>s<seed>.`;
   a province loaded before (its checkpoint says done) is reused, not reloaded; one of fewer than
   --fresh-below members is loaded afresh under a prefix of its own each run and removed after it;
2. the reporting views are rebuilt from every event on the topics (`python -m platformkit.run job
   reporting rebuild`, a new generation each run): its wall time and events/s;
3. every process kind of deploy/Procfile starts (tests.support.platform.Platform; APIs under
   gunicorn, --workers x --threads), the reporting projector stopped at once (see 5);
4. per service, vegeta (closed loop, --concurrency connections, --seconds each): GET /healthz (the
   framework floor), a read and a write: membership a page of 50 members of a CĐCS and admissions
   of distinct people into it, training the class list and planning distinct classes, welfare the
   case list and requesting support cases for loaded members, reporting the province view and
   assigning targets; the province view's answer time also alone (one client, --view-requests);
5. the live projector: the events the writes of 4 produced wait on the topics (the projector was
   stopped); their raw consume (poll + decode, no writes) from the projector group's committed
   offsets is the baseline; then the projector process is started (PROJECTOR_BATCH
   --projector-batch, so that the backlog is several batches; the target is checked on the rate
   after its first commit, without the process start) and timed until its group has
   committed the end of every partition;
6. freshness: admissions into a CĐCS at --rate/s (open loop) for --fresh-seconds while its
   reporting view (members.admitted, this year) is polled every 50 ms: 201 -> the view shows it.
Then the table: both sizes side by side, large/small per per-request figure (goal within 1.5x),
and the issue's targets. Results are appended to docs/benchmarks.md. The large province stays
(reused by the next run), with the bench's own writes (a few thousand documents per run); the
small one is made and removed by each run, so the baseline never grows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import requests

from bench.http_bench import summarise
from bench.support import (VEGETA_VERSION, ROOT, append_results, attack, delete_topics, drop_databases, now_utc,
                           open_loop_posts, pct, target, vegeta)

TARGETS = {"admission writes/s": 150, "member page reads/s": 300, "member page p99 ms": 250,
           "projector events/s": 1000, "freshness p99 ms": 2000, "province view p99 ms": 50,
           "rebuild of 10M events min": 15}


def _first_number(*values: float) -> float:
    """The projector's rate after its first commit, or its overall rate when that is nan."""
    return next((v for v in values if v == v), float("nan"))


def plan_for(members: int, seed: int):
    from synthetic.load import Plan
    cdcs = max(6, round(members * 22_000 / 2_500_000))
    communes = max(2, round(cdcs * 150 / 22_000))
    return Plan(seed=seed, members=members, cdcs=cdcs, communes=communes)


def use_prefix(members: int, seed: int, tag: str = "") -> str:
    prefix = f"pv{members}s{seed}{tag}"
    os.environ["DB_PREFIX"] = prefix + "_"
    os.environ["TOPIC_PREFIX"] = prefix + "."
    from platformkit import settings
    settings.reload()
    return prefix


def sh(args: list[str], log: Path) -> float:
    t = time.monotonic()
    with log.open("ab") as f:
        subprocess.run(args, cwd=ROOT, env=os.environ.copy(), stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.monotonic() - t


def topic_ends(group: str | None = None) -> tuple[dict, dict]:
    """(end offsets, the group's committed offsets) of the reporting source topics."""
    from kafka import KafkaConsumer, TopicPartition

    from platformkit import config, contract
    c = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(config.topic(t), p) for t in contract.REPORTING_SOURCES
               for p in sorted(c.partitions_for_topic(config.topic(t)) or [])]
        ends = c.end_offsets(tps)
        committed = {tp: (c.committed(tp) or 0) for tp in tps} if group else {}
        return ends, committed
    finally:
        c.close()


def raw_consume(start: dict) -> tuple[int, float]:
    """Poll + decode every record from `start` offsets to the ends: (records, seconds)."""
    from kafka import KafkaConsumer

    from platformkit import config
    from platformkit.envelope import decode
    ends, _ = topic_ends()
    c = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=None, enable_auto_commit=False,
                      max_poll_records=1000)
    try:
        c.assign(list(start))
        for tp, off in start.items():
            c.seek(tp, off)
        total = sum(ends[tp] - start[tp] for tp in start)
        n, t = 0, time.perf_counter()
        while n < total and time.perf_counter() - t < 300:
            for recs in c.poll(timeout_ms=200).values():
                for r in recs:
                    decode(r.value)
                n += len(recs)
        return n, time.perf_counter() - t
    finally:
        c.close()


class Run:
    def __init__(self, members: int, args, work: Path):
        self.members, self.args, self.work = members, args, work
        self.fig: dict[str, float | str] = {}
        self.notes: list[str] = []

    # -------------------------------------------------------------- 1 and 2
    def load_and_rebuild(self) -> None:
        from platformkit import mongo
        from synthetic import load as loader
        plan = plan_for(self.members, self.args.seed)
        self.plan = plan
        cp = loader.checkpoint(plan)
        log = self.work / f"load-{self.members}.log"
        if cp is not None and cp.get("done") and cp["plan"] == plan.key():
            self.fig["load"] = f"reused ({cp['documents']:,} documents, {cp['events']:,} events, loaded in " \
                               f"{cp.get('load_seconds', 0) / 60:,.1f} min)"
        else:
            print(f"[bench] loading {self.members:,} members (log {log})", flush=True)
            s = sh([sys.executable, "-m", "synthetic.load", "--members", str(plan.members), "--cdcs", str(plan.cdcs),
                    "--communes", str(plan.communes), "--seed", str(plan.seed)], log)
            cp = loader.checkpoint(plan)
            self.fig["load"] = f"loaded now in {s / 60:,.1f} min ({cp['documents']:,} documents, {cp['events']:,} events)"
        self.fig["documents"] = cp["documents"]
        ends, _ = topic_ends()
        events = sum(ends.values())
        if self.args.reuse_views and self.members >= self.args.fresh_below:
            # the views the projector keeps (rebuilt by an earlier run and kept current since)
            print(f"[bench] {self.members:,}: {self.fig['load']}; views reused (--reuse-views: no rebuild)", flush=True)
            self.fig["rebuild"] = "not run (--reuse-views)"
        else:
            print(f"[bench] {self.members:,}: {self.fig['load']}; rebuilding the views from {events:,} events", flush=True)
            s = sh([sys.executable, "-m", "platformkit.run", "job", "reporting", "rebuild"], self.work / f"rebuild-{self.members}.log")
            self.fig["rebuild events"] = events
            self.fig["rebuild s"] = s
            self.fig["rebuild events/s"] = events / s
            print(f"[bench] rebuild: {s:,.0f}s ({events / s:,.0f} events/s)", flush=True)
            # The rebuild wrote a whole generation (11.8M documents at 2.5M members): PostgreSQL's
            # autovacuum would vacuum those tables during the next minutes, under the measurements (the
            # run of 13:13 measured the 2.5M APIs' /healthz at half the 2,000 figure while it did). Done
            # here first, timed apart: not part of the rebuild's figure (docs/operations.md).
            from platformkit import store_prep
            if store_prep.enabled() and events >= 1_000_000:  # a small generation: nothing to wait for
                t = time.monotonic()
                store_prep.run_sql("VACUUM (ANALYZE);", timeout=3600)
                self.fig["vacuum after rebuild s"] = time.monotonic() - t
                print(f"[bench] VACUUM (ANALYZE) after the rebuild: {self.fig['vacuum after rebuild s']:,.0f}s", flush=True)
        self.mdb = mongo.database("membership")
        self.run_no = self.mdb["bench_runs"].count_documents({}) + 1
        self.mdb["bench_runs"].insert_one({"_id": f"run-{self.run_no}-{time.time():.0f}", "at": now_utc()})

    # -------------------------------------------------------------- 3 .. 6
    def live(self) -> None:
        from platformkit import contract, mongo
        from platformkit.auth import mint
        from services.reporting.generations.mongo import active_generation
        from synthetic.load import CODE, member_id, unit_id
        from tests.support.platform import Platform
        a = self.args
        plat = Platform(self.work / f"live-{self.members}", env={"WEB_WORKERS": str(a.workers),
                                                                   "WEB_THREADS": str(a.threads)})
        (self.work / f"live-{self.members}").mkdir(exist_ok=True)
        # the page read is of a CĐCS the bench never writes to (the last one); each run admits into
        # CĐCS of its own (chosen by the run number), so that runs do not grow the CĐCS they measure
        def cdcs(s: int) -> str:
            return unit_id(f"{CODE}-X{s % self.plan.communes:03d}-S{s:05d}")
        last = self.plan.cdcs - 1
        prov, page_cdcs = unit_id(CODE), cdcs(last)
        cdcs0, cdcs1 = cdcs((2 * self.run_no) % last), cdcs((2 * self.run_no + 1) % last)
        tok = {u: mint(f"bench@{u}", u, ["officer"]) for u in (prov, page_cdcs, cdcs0, cdcs1)}
        self.page_cdcs = page_cdcs
        gen = active_generation(mongo.database("reporting"))
        group = contract.group(contract.projector_group(gen))
        self.fig["load average at start"] = "%.1f" % os.getloadavg()[0]
        try:
            plat.start()
            self._stop(plat, "reporting-projector")
            rows = {}
            for svc in ("membership", "training", "welfare", "reporting"):
                for kind, (targets, lazy) in self._scenarios(svc, plat.url(svc), tok, prov, cdcs0, member_id).items():
                    rep = attack(targets, a.seconds, a.concurrency, self.work, f"{self.members}-{svc}-{kind}", lazy)
                    r = summarise(svc, kind, rep)
                    rows[(svc, kind)] = r
                    print(f"[bench] {self.members:>9,} {svc:10} {kind:7} {r['rps']:8.1f} rps  p50 {r['p50']:7.1f} ms  "
                          f"p99 {r['p99']:7.1f} ms  non-2xx {r['bad']} {r['codes'] if r['bad'] else ''}", flush=True)
            self.rows = rows
            self._province_view(plat.url("reporting"), tok[prov], prov)
            time.sleep(3)  # the relays publish what the writes committed
            self._projector(plat, group)
            self._freshness(plat, tok[cdcs1], cdcs1)
            self.fig["load average at end"] = "%.1f" % os.getloadavg()[0]
            if plat.dead():
                self.notes.append(f"processes died: {plat.dead()}")
        finally:
            plat.stop()

    def _stop(self, plat, name: str) -> None:
        import signal
        p = plat.procs[name]
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(30)

    def _start(self, plat, name: str, env: dict | None = None) -> None:
        log = open(plat.logs[name], "ab")
        plat.procs[name] = subprocess.Popen(["bash", "-c", f"exec {plat.kinds[name]}"], env={**plat.env, **(env or {})},
                                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _scenarios(self, svc, base, tok, prov, cdcs, member_id) -> dict:
        api, n, run = base + "/api/v1", int(1000 * self.args.seconds), self.run_no
        health = ([target("GET", base + "/healthz", "")], False)
        if svc == "membership":
            read = [target("GET", f"{api}/units/{self.page_cdcs}/members?limit=50", tok[self.page_cdcs])]
            write = [target("POST", f"{api}/units/{cdcs}/members", tok[cdcs], self._admission(i)) for i in range(n)]
        elif svc == "training":
            read = [target("GET", f"{api}/classes?limit=50", tok[prov])]
            start = date.today().isoformat()
            write = [target("POST", f"{api}/classes", tok[prov], {
                "course_id": "course-atvsld", "code": f"B{run:04d}-{i:06d}", "name": f"Lớp đo tải {i}",
                "organising_unit_id": prov, "start_date": start, "days": [start], "capacity": 40,
                "location": "Hội trường"}) for i in range(n)]
        elif svc == "welfare":
            from platformkit import mongo
            wdb = mongo.database("welfare")
            programme = wdb.programmes.find_one({"_id": "prg-000000-tet_gift"}) or wdb.programmes.find_one(
                {"kind": {"$ne": "micro_loan"}})
            ids = [member_id(i) for i in range(0, min(self.members, 400))]
            ok = [d["_id"] for d in (wdb.view_members.find_one({"_id": i}, {"status": 1}) for i in ids)
                  if d and d.get("status") != "left"]
            read = [target("GET", f"{api}/cases?limit=50", tok[prov])]
            write = [target("POST", f"{api}/cases", tok[prov], {
                "programme_id": programme["_id"], "member_id": ok[i % len(ok)], "hardship_type": "illness",
                "amount": 500_000, "form": "cash", "funding": [{"source": "union_fund", "amount": 500_000}],
                "note": f"bench {run} {i}"}) for i in range(n)]
        else:
            from services.reporting.indicators import CATALOGUE
            read = [target("GET", f"{api}/views/{prov}?period=2025", tok[prov])]
            # targets are assigned by the level above: the province's officer, to a commune and a CĐCS
            commune = "u-" + cdcs[2:].rsplit("-", 1)[0]
            keys = [(u, ind, y) for y in range(2000, 2101) for u in (commune, cdcs) for ind in sorted(CATALOGUE)]
            write = [target("PUT", f"{api}/targets/{u}", tok[prov], {"year": y, "indicator": ind, "value": 50 + run})
                     for u, ind, y in keys[:n]]
        return {"healthz": health, "read": (read, False), "write": (write, True)}

    def _admission(self, i: int) -> dict:
        gender = "female" if i % 2 else "male"
        born = 1970 + i % 30
        return {"full_name": f"Nguyễn Văn Đo Tải {i}", "citizen_id": f"08{self.run_no % 10**4:04d}{i % 10**6:06d}",
                "date_of_birth": f"{born}-0{1 + i % 9}-1{i % 9}", "gender": gender, "phone": None,
                "employer": "Công ty TNHH Đo Tải", "is_official": False, "admitted_on": date.today().isoformat()}

    def _province_view(self, base: str, token: str, prov: str) -> None:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        ms = []
        for _ in range(self.args.view_requests):
            t = time.perf_counter()
            r = s.get(f"{base}/api/v1/views/{prov}", params={"period": "2025"}, timeout=30)
            ms.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                self.notes.append(f"province view answered {r.status_code}")
                break
        self.fig["province view alone p50 ms"] = pct(ms, 50)
        self.fig["province view alone p99 ms"] = pct(ms, 99)

    def _projector(self, plat, group: str) -> None:
        ends, committed = topic_ends(group)
        backlog = sum(ends[tp] - committed[tp] for tp in ends)
        n, s = raw_consume(committed)
        self.fig["backlog events"] = backlog
        self.fig["raw consume events/s"] = n / s if s else float("nan")
        t0 = time.monotonic()
        # The writes of 4 leave a backlog of one or two thousand events: with the default batch
        # (PROJECTOR_BATCH 1000) it is one or two batches, and the rate would be the process start.
        # Batches of --projector-batch give the rate after the first commit (the target's figure).
        self._start(plat, "reporting-projector", {"PROJECTOR_BATCH": str(self.args.projector_batch)})
        first = None  # (time, events left) when the group's first commit is seen
        while time.monotonic() - t0 < 600:
            _, now = topic_ends(group)
            left = sum(ends[tp] - now[tp] for tp in ends)
            if first is None and left < backlog:
                first = (time.monotonic(), left)
            if left <= 0:
                break
            time.sleep(0.1)
        done = time.monotonic()
        self.fig["projector s"] = done - t0
        self.fig["projector events/s"] = backlog / (done - t0)
        # from the first commit on: without the process start (imports, connecting, joining the
        # group) and the first batch; nan when the first batch was (nearly) the whole backlog
        self.fig["projector events/s after start"] = (
            first[1] / (done - first[0]) if first and first[1] > 0 and done - first[0] >= 0.3 else float("nan"))
        print(f"[bench] projector: {backlog:,} events in {done - t0:,.1f}s ({self.fig['projector events/s']:,.0f}/s; "
              f"raw consume {self.fig['raw consume events/s']:,.0f}/s)", flush=True)

    def _freshness(self, plat, token: str, cdcs: str) -> None:
        a = self.args
        url = f"{plat.url('membership')}/api/v1/units/{cdcs}/members"
        view = f"{plat.url('reporting')}/api/v1/views/{cdcs}"
        params = {"period": str(date.today().year), "indicators": "members.admitted"}
        polls: list[tuple[float, float, float]] = []
        stop = threading.Event()

        def poll():
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {token}"
            while not stop.is_set():
                sent = time.monotonic()
                r = s.get(view, params=params, timeout=30)
                if r.status_code == 200:
                    polls.append((sent, time.monotonic(), r.json()["rows"][0]["actual"] or 0))
                time.sleep(max(0.0, 0.05 - (time.monotonic() - sent)))
        # the relay's part: when each admission's event reaches membership.events (from its end)
        from kafka import KafkaConsumer, TopicPartition

        from platformkit import config
        from platformkit.envelope import decode
        topic = config.topic("membership.events")
        consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=None, enable_auto_commit=False,
                                 fetch_max_wait_ms=20)
        tps = [TopicPartition(topic, n) for n in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)
        on_kafka: dict[str, float] = {}

        def tail():
            while not stop.is_set():
                for recs in consumer.poll(timeout_ms=50).values():
                    now = time.monotonic()
                    for r in recs:
                        if b"member.admitted" in r.value:
                            on_kafka.setdefault(decode(r.value).subject, now)
        tailer = threading.Thread(target=tail, daemon=True)
        tailer.start()
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        deadline = time.monotonic() + 30
        while not polls and time.monotonic() < deadline:
            time.sleep(0.1)
        base = polls[-1][2] if polls else 0
        n = int(a.rate * a.fresh_seconds)
        t0, writes = open_loop_posts(url, token, lambda i: self._admission(500_000 + i), a.rate, n)
        acked = sorted((w for w in writes if w[2] == 201), key=lambda w: w[1])
        achieved = len(acked) / max(max(w[1] for w in writes) - t0, 1e-6)
        deadline = time.monotonic() + 180
        while not (polls and polls[-1][2] >= base + len(acked)) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        poller.join(5)
        tailer.join(5)
        consumer.close()
        relay = [(on_kafka[w[3]] - w[1]) * 1000 for w in acked if w[3] in on_kafka]
        self.fig["relay p50 ms (201 -> on the topic)"] = pct(relay, 50) if relay else float("nan")
        self.fig["relay p99 ms (201 -> on the topic)"] = pct(relay, 99) if relay else float("nan")
        fresh = []
        j = 0
        for k, w in enumerate(acked, 1):
            while j < len(polls) and polls[j][0] < w[1]:
                j += 1
            q = j
            while q < len(polls) and polls[q][2] < base + k:
                q += 1
            if q < len(polls):
                fresh.append((polls[q][1] - w[1]) * 1000)
        self.fig["freshness admissions"] = f"{len(acked)} of {n} answered 201 at {achieved:.1f}/s"
        self.fig["freshness seen"] = len(fresh)
        self.fig["freshness p50 ms"] = pct(fresh, 50) if fresh else float("nan")
        self.fig["freshness p99 ms"] = pct(fresh, 99) if fresh else float("nan")
        self.fig["write p99 ms (freshness load)"] = pct([(w[1] - w[0]) * 1000 for w in acked], 99) if acked else float("nan")
        self.fig["view poll p99 ms"] = pct([(b - s) * 1000 for s, b, _ in polls], 99) if polls else float("nan")
        print(f"[bench] freshness at {achieved:.1f}/s: p50 {self.fig['freshness p50 ms']:,.0f} ms, "
              f"p99 {self.fig['freshness p99 ms']:,.0f} ms ({len(fresh)} of {len(acked)} seen)", flush=True)


def table(runs: list[Run], args) -> list[str]:
    small, large = runs[0], runs[-1]
    sizes = " | ".join(f"{r.members:,} members" for r in runs)
    lines = [f"| measure | {sizes} | large / small |", "|---|" + "---|" * len(runs) + "---|"]

    def ratio(a, b):
        return f"{a / b:.2f}x" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else ""

    for svc in ("membership", "training", "welfare", "reporting"):
        for kind in ("healthz", "read", "write"):
            for what, key, fmt in (("rps", "rps", "{:,.1f}"), ("p50 ms", "p50", "{:,.1f}"), ("p99 ms", "p99", "{:,.1f}")):
                vals = [r.rows[(svc, kind)][key] for r in runs]
                bad = [r.rows[(svc, kind)]["bad"] for r in runs]
                cells = " | ".join(fmt.format(v) + (f" ({b} non-2xx)" if b and key == "rps" else "") for v, b in zip(vals, bad))
                lines.append(f"| {svc} {kind} {what} | {cells} | {ratio(vals[-1], vals[0])} |")
    for key in ("province view alone p50 ms", "province view alone p99 ms", "backlog events", "raw consume events/s",
                "projector events/s", "projector events/s after start", "freshness p50 ms", "freshness p99 ms",
                "relay p50 ms (201 -> on the topic)", "relay p99 ms (201 -> on the topic)",
                "write p99 ms (freshness load)", "view poll p99 ms", "rebuild events", "rebuild s", "rebuild events/s",
                "vacuum after rebuild s",
                "documents"):
        vals = [r.fig.get(key) for r in runs]
        cells = " | ".join(f"{v:,.1f}" if isinstance(v, float) else (f"{v:,}" if isinstance(v, int) else str(v))
                           for v in vals)
        lines.append(f"| {key} | {cells} | {ratio(vals[-1], vals[0])} |")
    for key in ("load average at start", "load average at end"):
        lines.append(f"| machine {key} (1 min) | " + " | ".join(str(r.fig.get(key)) for r in runs) + " | |")
    lines.append("| freshness load | " + " | ".join(str(r.fig.get("freshness admissions")) for r in runs) + " | |")
    lines.append("| province | " + " | ".join(str(r.fig.get("load")) for r in runs) + " | |")
    # the targets, at the large size
    m = large.rows
    rebuilt = "rebuild s" in large.fig
    rebuild_10m_min = large.fig["rebuild s"] / 60 * 10_000_000 / max(large.fig["rebuild events"], 1) \
        if rebuilt else float("nan")
    got = {"admission writes/s": (m[("membership", "write")]["rps"], ">="),
           "member page reads/s": (m[("membership", "read")]["rps"], ">="),
           "member page p99 ms": (m[("membership", "read")]["p99"], "<="),
           "projector events/s": (_first_number(large.fig["projector events/s after start"],
                                                 large.fig["projector events/s"]), ">="),
           "freshness p99 ms": (large.fig["freshness p99 ms"], "<="),
           "province view p99 ms": (large.fig["province view alone p99 ms"], "<="),
           "rebuild of 10M events min": (rebuild_10m_min, "<=")}
    lines += ["", f"Targets of the issue, at {large.members:,} members:", "",
              "| target | measured | goal | met |", "|---|---|---|---|"]
    for k, goal in TARGETS.items():
        v, op = got[k]
        if k.startswith("rebuild") and not rebuilt:
            lines.append(f"| {k} | not run (--reuse-views) | {op} {goal:,} | |")
            continue
        ok = v >= goal if op == ">=" else v <= goal
        extra = (f" (scaled linearly from {large.fig['rebuild events']:,} events in {large.fig['rebuild s'] / 60:,.1f} min)"
                 if k.startswith("rebuild") else "")
        lines.append(f"| {k} | {v:,.1f}{extra} | {op} {goal:,} | {'yes' if ok else '**no**'} |")
    per_request = [(f"{s} {k}", r) for (s, k) in m if k != "healthz"
                   for r in [m[(s, k)]["p99"] / max(small.rows[(s, k)]["p99"], 1e-9)]]
    within = [n for n, r in per_request if r <= 1.5]
    lines += ["", f"Per-request p99 large/small within 1.5x: {len(within)} of {len(per_request)} "
              f"({', '.join(f'{n} {r:.2f}x' for n, r in per_request)})."]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=os.environ.get("BENCH_SIZES") or "2000,2500000")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--seconds", type=float, default=10.0, help="per vegeta scenario")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--rate", type=float, default=50.0, help="admissions/s of the freshness load")
    p.add_argument("--fresh-seconds", type=float, default=20.0)
    p.add_argument("--view-requests", type=int, default=200)
    p.add_argument("--reuse-views", action="store_true",
                   help="a reused (large) province keeps its live views: no rebuild, no rebuild figure")
    p.add_argument("--fresh-below", type=int, default=100_000,
                   help="provinces of fewer members are loaded afresh each run and removed after it")
    p.add_argument("--projector-batch", type=int, default=200,
                   help="PROJECTOR_BATCH of the timed projector (5): several batches of the backlog")
    args = p.parse_args()
    vegeta()
    work = Path(tempfile.mkdtemp(prefix="province-bench-"))
    print(f"[bench] logs in {work}", flush=True)
    runs = []
    started = time.monotonic()
    for members in [int(s) for s in args.sizes.split(",")]:
        # a small province is loaded afresh each run and removed after it (its load takes seconds):
        # the writes of earlier runs would otherwise grow the baseline the large one is compared with
        fresh = members < args.fresh_below
        prefix = use_prefix(members, args.seed, f"r{int(time.time())}" if fresh else "")
        run = Run(members, args, work)
        try:
            run.load_and_rebuild()
            run.live()
        finally:
            if fresh:
                drop_databases(prefix)
                delete_topics(prefix)
        runs.append(run)
        (work / f"figures-{members}.json").write_text(json.dumps(
            {"fig": run.fig, "rows": {f"{s} {k}": v for (s, k), v in run.rows.items()}, "notes": run.notes},
            default=str, indent=1))
    cmd = (f".venv/bin/python -m bench.province_bench --sizes {args.sizes} --seed {args.seed} --seconds {args.seconds:g} "
           f"--concurrency {args.concurrency} --workers {args.workers} --threads {args.threads} --rate {args.rate:g} "
           f"--fresh-seconds {args.fresh_seconds:g}")
    from bench.support import machine_line
    lines = [f"\n## Province run of {now_utc()} UTC (bench/province_bench.py, {time.monotonic() - started:,.0f} s)",
             machine_line().replace("FerretDB 1.24.2 (SQLite)", "FerretDB 1.24.2 on PostgreSQL 15 with store_prep's GIN indexes"),
             f"Server: each API under gunicorn (gthread, {args.workers} workers x {args.threads} threads), every process "
             f"kind of deploy/Procfile running; vegeta {VEGETA_VERSION}, closed loop, {args.concurrency} connections, "
             f"{args.seconds:g} s per scenario. Province view alone: {args.view_requests} sequential requests.",
             f"Command: `{cmd}`", ""]
    lines += table(runs, args)
    for r in runs:
        lines += [f"- {r.members:,}: {n}" for n in r.notes]
    append_results(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

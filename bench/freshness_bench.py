"""End-to-end freshness: from an API write's 2xx answer to the change showing in the reporting view,
under a steady write load, beside the write's own latency and the relay's (event on Kafka),
measured in the same run.

    .venv/bin/python -m bench.freshness_bench [--rate 10] [--seconds 30] [--poll-ms 50]

Every process kind of deploy/Procfile runs (tests.support.platform.Platform: the real commands,
this run's own TOPIC_PREFIX/DB_PREFIX, the APIs under gunicorn with --workers x --threads). A tree
TLD > province > commune > CĐCS is created through membership's API. Then, open loop, admission i
of a distinct member into the CĐCS is sent at t0 + i/rate (a pool of senders, so a slow answer
never delays the next send) for --seconds; meanwhile
  - a poller reads the CĐCS's reporting view (members.admitted, this year) every --poll-ms,
  - a Kafka reader tails membership.events and notes when each admission's event arrives.
For the k-th acknowledged write (ordered by the time of its 2xx answer t_k), freshness is the
answer time of the first poll sent after t_k whose view shows >= k admissions, minus t_k.
Baselines: the API write latency (send -> 2xx) and the relay latency (2xx -> the event read from
the topic). Results are appended to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import requests

from bench.support import (Api, BenchError, Tree, admission, append_results, delete_topics, drop_databases, isolate,
                           machine_line, now_utc, open_loop_posts, pct)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=10.0, help="admissions per second (default 10)")
    p.add_argument("--seconds", type=float, default=30.0, help="duration of the write load (default 30)")
    p.add_argument("--poll-ms", type=float, default=50.0, help="interval of the view poller (default 50)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers per API (default 2, as gunicorn.conf.py)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    p.add_argument("--dump", type=Path, help="also write every sample (writes, Kafka arrivals, polls) to this JSON file")
    args = p.parse_args()
    prefix = isolate("bfresh")

    from kafka import KafkaConsumer, TopicPartition

    from platformkit import config
    from platformkit.envelope import decode
    from tests.support.platform import Platform

    work = Path(tempfile.mkdtemp(prefix="freshness-bench-"))
    plat = Platform(work, env={"WEB_WORKERS": str(args.workers), "WEB_THREADS": str(args.threads)})
    stop = threading.Event()
    try:
        print(f"[bench] starting every process kind of deploy/Procfile (prefix {prefix}, logs in {work})", flush=True)
        plat.start()
        m, r = Api(plat.url("membership")), Api(plat.url("reporting"))
        tree = Tree(m).build()
        cdcs = tree.ids["BENCH-C1-001"]
        year = date.today().year
        view_url = f"{plat.url('reporting')}/api/v1/views/{cdcs}"
        view_params = {"period": str(year), "indicators": "members.admitted"}
        view_tok = tree.token("BENCH-C1-001", "viewer")
        r.ok("GET", f"/views/{cdcs}?period={year}&indicators=members.admitted", view_tok, wait=90)
        print("[bench] reporting knows the CĐCS", flush=True)

        # the Kafka reader: every partition of membership.events from the beginning
        topic = config.topic("membership.events")
        consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=None, enable_auto_commit=False,
                                 fetch_max_wait_ms=20)
        deadline = time.monotonic() + 30
        while not consumer.partitions_for_topic(topic):
            if time.monotonic() > deadline:
                raise BenchError(f"topic {topic} not found")
            time.sleep(0.2)
        tps = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        on_kafka: dict[str, float] = {}

        def read_kafka():
            while not stop.is_set():
                for batch in consumer.poll(timeout_ms=50).values():
                    now = time.monotonic()
                    for msg in batch:
                        env = decode(msg.value)
                        if env.type == "membership.member.admitted.v1":
                            on_kafka.setdefault(env.subject, now)

        polls: list[tuple[float, float, float]] = []  # (sent, answered, members.admitted)

        def poll_view():
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {view_tok}"
            while not stop.is_set():
                sent = time.monotonic()
                res = s.get(view_url, params=view_params, timeout=30)
                if res.status_code == 200:
                    polls.append((sent, time.monotonic(), res.json()["rows"][0]["actual"] or 0))
                time.sleep(max(0.0, args.poll_ms / 1000 - (time.monotonic() - sent)))

        threads = [threading.Thread(target=read_kafka, daemon=True), threading.Thread(target=poll_view, daemon=True)]
        for t in threads:
            t.start()
        time.sleep(1)

        # the open-loop write load
        token = tree.token("BENCH-C1-001")
        n = int(args.rate * args.seconds)
        print(f"[bench] {n} admissions at {args.rate:g}/s for {args.seconds:g}s", flush=True)
        t0, writes = open_loop_posts(f"{plat.url('membership')}/api/v1/units/{cdcs}/members", token, admission,
                                     args.rate, n)  # writes: (sent, answered, status, member id)
        load_s = max(w[1] for w in writes) - t0
        acked = sorted((w for w in writes if w[2] == 201), key=lambda w: w[1])
        bad = len(writes) - len(acked)
        deadline = time.monotonic() + 120
        while not (polls and polls[-1][2] >= len(acked) and all(w[3] in on_kafka for w in acked)):
            if time.monotonic() > deadline or plat.dead():
                raise BenchError(f"the view shows {polls[-1][2] if polls else None} of {len(acked)} admissions, "
                                 f"{sum(w[3] in on_kafka for w in acked)} seen on Kafka, after 120 s\n"
                                 + plat.tail(8))
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(5)
        consumer.close()
    finally:
        stop.set()
        plat.stop()
        drop_databases(prefix)
        delete_topics(prefix)

    write_ms = [(w[1] - w[0]) * 1000 for w in acked]
    relay_ms = [(on_kafka[w[3]] - w[1]) * 1000 for w in acked]
    fresh_ms = []
    j = 0
    for k, w in enumerate(acked, 1):
        t_ack = w[1]
        while polls[j][0] < t_ack:  # the first poll sent after the answer ...
            j += 1
        q = j
        while polls[q][2] < k:      # ... that shows >= k admissions
            q += 1
        fresh_ms.append((polls[q][1] - t_ack) * 1000)
    poll_ms = [(a - s) * 1000 for s, a, _ in polls]
    if args.dump:
        import json
        args.dump.write_text(json.dumps({"writes": writes, "on_kafka": on_kafka, "polls": polls,
                                         "fresh_ms": fresh_ms}))
    print(f"[bench] {len(acked)} acknowledged ({bad} non-2xx) in {load_s:.1f}s; {len(polls)} polls", flush=True)
    report(args, n, len(acked), bad, load_s, write_ms, relay_ms, fresh_ms, poll_ms)
    return 1 if bad else 0


def row(name: str, xs: list[float]) -> str:
    return f"| {name} | {pct(xs, 50):.0f} | {pct(xs, 99):.0f} | {max(xs):.0f} |"


def report(args, n, ok, bad, load_s, write_ms, relay_ms, fresh_ms, poll_ms) -> None:
    f99, w99, r99 = pct(fresh_ms, 99), pct(write_ms, 99), pct(relay_ms, 99)
    f50, w50, r50 = pct(fresh_ms, 50), pct(write_ms, 50), pct(relay_ms, 50)
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}" if b > 0 else "n/a (baseline <= 0)"
    lines = [
        f"\n## Freshness run of {now_utc()} UTC (bench/freshness_bench.py)",
        machine_line(),
        f"Every process kind of deploy/Procfile running (APIs under gunicorn, {args.workers} workers x {args.threads} "
        f"threads; relays, consumers, projector), loopback. Load: {n} admissions of distinct members into one CĐCS, "
        f"open loop at {args.rate:g}/s for {args.seconds:g} s (achieved {ok / load_s:.1f}/s; {ok} answered 201, "
        f"{bad} non-2xx). The CĐCS's reporting view (members.admitted) polled every {args.poll_ms:g} ms "
        f"(poll answer time p50 {pct(poll_ms, 50):.0f} ms, p99 {pct(poll_ms, 99):.0f} ms: the resolution of the "
        f"freshness figures).",
        f"Command: `.venv/bin/python -m bench.freshness_bench --rate {args.rate:g} --seconds {args.seconds:g} "
        f"--poll-ms {args.poll_ms:g} --workers {args.workers} --threads {args.threads}`",
        "",
        "| measure (per acknowledged admission) | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|",
        row("API write latency: POST sent -> 201 (baseline)", write_ms),
        row("relay: 201 -> the event read from membership.events (baseline)", relay_ms),
        row("freshness: 201 -> the CĐCS's reporting view shows it", fresh_ms),
        "",
        f"Ratios: freshness p99 / API write p99 = {ratio(f99, w99)}; freshness p99 / relay p99 = {ratio(f99, r99)}; "
        f"freshness p50 / API write p50 = {ratio(f50, w50)}; freshness p50 / relay p50 = {ratio(f50, r50)}.",
    ]
    append_results(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Projector and view benchmarks, each figure beside a baseline measured in the same run.

    .venv/bin/python -m bench.projector_bench [--members 3000] [--seconds 20]

1. throughput into the rolled-up views (our projector: batched, guarded, journaled) against
   a) the raw kafka-python consume rate of the same topics (poll + decode, no writes) and
   b) a naive projector that writes one update per ancestor per indicator per event;
2. the province view's answer time against computing the same figures on read with an
   aggregation over the leaf facts;
3. peak memory (RSS) of this process.
Results are appended to docs/benchmarks.md with the machine and the database used.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from kafka import KafkaConsumer

ROOT = Path(__file__).resolve().parents[1]


def consume_all(topics, total, handle=None, deadline=None):
    from platformkit import config
    from platformkit.consumer import Record
    from platformkit.envelope import decode
    consumer = KafkaConsumer(*topics, bootstrap_servers=config.kafka_bootstrap(), group_id="bench-" + uuid.uuid4().hex[:8],
                             auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=1000)
    done = 0
    started = time.perf_counter()
    try:
        while done < total and (deadline is None or time.perf_counter() - started < deadline):
            polled = consumer.poll(timeout_ms=500)
            records = []
            for batch in polled.values():
                for m in batch:
                    records.append(Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp, decode(m.value)))
            if handle and records:
                handle(records)
            done += len(records)
    finally:
        consumer.close()
    return done, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20.0, help="time bound of the naive projector")
    args = parser.parse_args()
    prefix = "bench" + uuid.uuid4().hex[:6]
    os.environ["TOPIC_PREFIX"] = prefix + "."
    os.environ["DB_PREFIX"] = prefix + "_"
    from platformkit import settings
    settings.reload()  # the prefixes just set
    from platformkit import config, mongo
    from platformkit.kafka_io import EventPublisher, ensure_topics
    from services.reporting import views
    from services.reporting.periods import parse
    from services.reporting.projection import project, state_key
    from services.reporting.projector import ProjectorHandler
    from services.reporting.store import Generation
    from synthetic.province import Province

    names = ["membership.events", "training.events", "welfare.events"]
    topics = [config.topic(n) for n in names]
    ensure_topics(topics, partitions=6)
    t = time.perf_counter()
    envs = list(Province(seed=5, communes=max(3, args.members // 1000), cdcs=max(9, args.members // 40),
                         members=args.members).events())
    gen_s = time.perf_counter() - t
    pub = EventPublisher()
    by = {}
    for e in envs:
        by.setdefault(config.topic(f"{e.source}.events"), []).append(e)
    for topic, evs in by.items():
        for i in range(0, len(evs), 5000):
            pub.publish(topic, evs[i:i + 5000])
    pub.close()
    total = len(envs)
    print(f"{total:,} events generated in {gen_s:.1f}s and published", flush=True)

    n_raw, s_raw = consume_all(topics, total)
    raw_rate = n_raw / s_raw
    print(f"raw consume (poll+decode): {raw_rate:,.0f} events/s", flush=True)

    db = mongo.database("reporting")
    handler = ProjectorHandler(Generation(db, 0))
    n_ours, s_ours = consume_all(topics, total, handler)
    ours_rate = n_ours / s_ours
    print(f"projector: {ours_rate:,.0f} events/s", flush=True)

    naive_db = mongo.database("naive")
    gen = Generation(db, 0)
    paths = {u["_id"]: u["ancestors"] + [u["_id"]] for u in gen.units.find({}, {"ancestors": 1})}
    states: dict = {}

    def naive(records):
        for r in records:
            key = state_key(r.envelope)
            fx = project(r.envelope, states.get(key) if key else None)
            if fx.state_key and fx.new_state is not None:
                states[fx.state_key] = fx.new_state
            for d in fx.deltas:
                for unit in paths.get(d.unit_id, [d.unit_id]):
                    naive_db.agg.update_one({"_id": f"{unit}|{d.indicator}|{d.month}"},
                                            {"$inc": {"value": d.amount}}, upsert=True)
    n_naive, s_naive = consume_all(topics, total, naive, deadline=args.seconds)
    naive_rate = n_naive / s_naive
    print(f"naive projector: {naive_rate:,.0f} events/s ({n_naive:,} events in the {args.seconds:.0f}s bound)", flush=True)

    # view answer time vs aggregation on read over leaf facts
    facts = mongo.database("facts").facts
    docs, st = [], {}
    for e in envs:
        key = state_key(e)
        fx = project(e, st.get(key) if key else None)
        if fx.state_key and fx.new_state is not None:
            st[fx.state_key] = fx.new_state
        for d in fx.deltas:
            docs.append({"unit": d.unit_id, "path": paths.get(d.unit_id, [d.unit_id]), "indicator": d.indicator,
                         "month": d.month, "value": d.amount})
    for i in range(0, len(docs), 5000):
        facts.insert_many(docs[i:i + 5000])
    period = parse("2025")
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        views.unit_view(gen, db.targets, "HCM", period)
    view_ms = (time.perf_counter() - t) * 1000 / reps
    t = time.perf_counter()
    for _ in range(reps):
        list(facts.aggregate([{"$match": {"path": "HCM", "month": {"$lte": period.last}}},
                              {"$group": {"_id": "$indicator", "value": {"$sum": "$value"}}}]))
    agg_ms = (time.perf_counter() - t) * 1000 / reps
    print(f"province view: {view_ms:.1f} ms; aggregation over {len(docs):,} facts: {agg_ms:.1f} ms", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    server = "MongoDB" if os.environ.get("MONGO_URL") else "FerretDB 1.24.2 (SQLite)"
    lines = [
        f"\n## Run of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"Machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.python_implementation()} {platform.python_version()}; database: {server}; Kafka 3.9.1 (KRaft, 1 node).",
        f"Command: `.venv/bin/python -m bench.projector_bench --members {args.members} --seconds {args.seconds:.0f}`",
        "",
        "| measure | value | baseline (same run) | ratio |",
        "|---|---|---|---|",
        f"| projector throughput into the views | {ours_rate:,.0f} events/s | raw consume (poll + decode) {raw_rate:,.0f} events/s | {ours_rate / raw_rate:.3f} |",
        f"| projector throughput into the views | {ours_rate:,.0f} events/s | naive: one update per ancestor per event {naive_rate:,.0f} events/s | {ours_rate / naive_rate:.1f}x |",
        f"| province view answer time | {view_ms:.1f} ms | aggregation on read over {len(docs):,} leaf facts {agg_ms:.1f} ms | {agg_ms / view_ms:.1f}x faster |",
        f"| peak memory of the benchmark process | {peak_mb:,.0f} MB | | |",
        f"| events | {total:,} | | |",
    ]
    out = ROOT / "docs" / "benchmarks.md"
    if not out.exists():
        out.write_text("# Benchmarks\n\nEach figure is printed beside a baseline measured in the same run (`make bench`).\n")
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    client = mongo.client()
    for name in ("reporting", "naive", "facts"):
        client.drop_database(f"{prefix}_{name}")


if __name__ == "__main__":
    main()

"""Full rebuild of the reporting views from the topics: time, rate and peak memory, beside
baselines measured in the same run.

    .venv/bin/python -m bench.rebuild_bench            # ~1M events (a tenth of the province)
    .venv/bin/python -m bench.rebuild_bench --full     # the province: 2.5M members, ~10M events

1. produces the synthetic province (synthetic.province, seed 7) into the bench's own topics
   (TOPIC_PREFIX, 6 partitions each) from a child process, whose peak memory is reported too;
2. runs services.reporting.rebuild.rebuild() on the bench's own database (DB_PREFIX): fold in
   memory, bulk-insert the documents, commit the group's offsets, swap; peak RSS of this process
   (ru_maxrss; the baselines below run after it and stay small);
3. baselines, same topics, same run:
   a) the old rebuild path: the projector's handler writing each batch into a real generation
      (guarded updates, FerretDB), timed on the first --prefix events (or --old-seconds) and
      extrapolated to all. Biased both ways: its collections are smallest at the start (for it),
      but the start is the hierarchy (unit created, CĐCS founded), one flush per event (against it);
      bench.projector_bench measures its steady rate on member events (358 events/s there);
   b) the raw kafka-python consume rate (poll + platformkit decode, no projection) on the first
      --raw events: the floor of any rebuild reading the topics in Python;
4. appends the figures to docs/benchmarks.md, drops the bench's databases, notes the size of its
   topics on the broker's disk and deletes them.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"1m": dict(members=250_000, cdcs=2_200, communes=15), "full": dict(members=2_500_000, cdcs=22_000, communes=150)}


class Tee(io.TextIOBase):
    def write(self, s):
        sys.stdout.write(s)
        return len(s)

    def flush(self):
        sys.stdout.flush()


def produce(size: dict, seed: int, env: dict, shards: int = 2) -> tuple[float, float]:
    """Run the generator as `shards` children (each generates the whole deterministic stream and
    sends its share of the partitions); (seconds, the largest child's peak RSS in MB)."""
    from platformkit import config
    from platformkit.kafka_io import ensure_topics
    ensure_topics([config.topic(t) for t in ("membership.events", "training.events", "welfare.events")], partitions=6)
    cmd = [sys.executable, "-m", "synthetic.province", "--members", str(size["members"]), "--cdcs", str(size["cdcs"]),
           "--communes", str(size["communes"]), "--seed", str(seed), "--kafka", "--partitions", "6"]
    t = time.perf_counter()
    procs = [subprocess.Popen(cmd + ["--shard", f"{k}/{shards}"], env=env, cwd=ROOT) for k in range(shards)]
    peak = 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = max(peak, usage.ru_maxrss / 1024)
        if proc.returncode != 0:
            raise SystemExit(f"generator failed with {proc.returncode}")
    return time.perf_counter() - t, peak


def consume(topics, limit: int, handle=None, batch: int = 2000, seconds: float | None = None) -> tuple[int, float]:
    """(events, seconds) for the first `limit` events in poll order, decoded with platformkit's
    decode and handed to `handle` in batches like ConsumerLoop does."""
    from kafka import KafkaConsumer
    from platformkit import config
    from platformkit.consumer import Record
    from platformkit.envelope import decode
    consumer = KafkaConsumer(*topics, bootstrap_servers=config.kafka_bootstrap(), group_id="bench-" + uuid.uuid4().hex[:8],
                             auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=batch,
                             isolation_level="read_committed")
    done, idle = 0, 0
    started = time.perf_counter()
    try:
        while done < limit and idle < 20 and (seconds is None or time.perf_counter() - started < seconds):
            polled = consumer.poll(timeout_ms=500, max_records=min(batch, limit - done))
            records = [Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp, decode(m.value))
                       for msgs in polled.values() for m in msgs]
            idle = 0 if records else idle + 1
            if handle and records:
                handle(records)
            done += len(records)
    finally:
        consumer.close()
    return done, time.perf_counter() - started


def topic_bytes(prefix: str) -> int:
    from kafka import KafkaAdminClient
    from platformkit import config
    admin = KafkaAdminClient(bootstrap_servers=config.kafka_bootstrap())
    try:
        total = 0
        for broker in admin.describe_log_dirs():
            for d in broker.get("log_dirs", []):
                for t in d.get("topics", []):
                    if t["name"].startswith(prefix):
                        total += sum(p["partition_size"] for p in t["partitions"])
        return total
    finally:
        admin.close()


def delete_topics(prefix: str) -> list[str]:
    from kafka import KafkaAdminClient
    from platformkit import config
    admin = KafkaAdminClient(bootstrap_servers=config.kafka_bootstrap())
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix)]
        if names:
            admin.delete_topics(names)
        return names
    finally:
        admin.close()


def cleanup(prefix: str, keep: bool) -> int:
    """Bytes of the bench's topics on the broker's disk; then (unless keep) drop its databases and
    delete its topics. Failures are printed, not raised (the figures are already measured)."""
    from platformkit import mongo
    disk = -1
    try:
        disk = topic_bytes(prefix + ".")
        if not keep:
            # by name: listing databases makes FerretDB size every database, slow beside a big one
            mongo.client().drop_database(f"{prefix}_reporting")
            deleted = delete_topics(prefix + ".")
            print(f"bench: dropped the databases {prefix}_*; deleted {len(deleted)} topics "
                  f"({disk / 2**20:,.0f} MiB on the broker's disk)", flush=True)
    except Exception as exc:  # noqa: BLE001 - a broker or database restarted by someone else
        print(f"bench: cleanup of {prefix} failed ({exc!r}); rerun with --reuse {prefix} or delete by hand", flush=True)
    return disk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="the whole province (~10M events) instead of a tenth (~1M)")
    parser.add_argument("--members", type=int, help="members (CĐCS and communes scale with it)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prefix", type=int, default=20_000, help="events timed on the old path")
    parser.add_argument("--old-seconds", type=float, default=150, help="time bound of the old path")
    parser.add_argument("--shards", type=int, default=2, help="generator processes")
    parser.add_argument("--raw", type=int, default=300_000, help="events timed for the raw consume rate")
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the topics and databases")
    parser.add_argument("--no-record", action="store_true", help="do not append to docs/benchmarks.md")
    parser.add_argument("--reuse", metavar="PREFIX", help="topics of an earlier --keep run (rbench...): skip producing")
    parser.add_argument("--cleanup", metavar="PREFIX", help="only drop the databases and delete the topics of PREFIX")
    args = parser.parse_args()
    if args.cleanup:
        print(f"bench: {cleanup(args.cleanup, False) / 2**20:,.0f} MiB of topics")
        return
    size = dict(SIZES["full" if args.full else "1m"])
    if args.members:
        size = dict(members=args.members, cdcs=max(9, args.members * 22 // 2500), communes=max(2, args.members * 3 // 50_000))
    prefix = args.reuse or "rbench" + uuid.uuid4().hex[:6]
    os.environ["TOPIC_PREFIX"] = prefix + "."
    os.environ["DB_PREFIX"] = prefix + "_"
    os.environ.setdefault("TOPIC_PARTITIONS", "6")
    from platformkit import settings
    settings.reload()  # the prefixes just set
    from platformkit import config, mongo
    from platformkit.logs import setup_logging
    from services.reporting.projector import SOURCE_TOPICS, ProjectorHandler
    from services.reporting.rebuild import rebuild
    from services.reporting.store import Generation
    setup_logging("WARNING")

    topics = [config.topic(t) for t in SOURCE_TOPICS]
    print(f"bench: province {size} seed {args.seed} into {prefix}.*", flush=True)
    try:
        gen_s, gen_mb = produce(size, args.seed, dict(os.environ), shards=args.shards) if not args.reuse else (0.0, 0.0)
        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        timings: dict = {}
        t = time.perf_counter()
        number = rebuild(out=Tee(), writers=args.writers, timings=timings)
        rebuild_s = time.perf_counter() - t
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        from services.reporting.rebuild import end_offsets
        total = sum(end_offsets(topics).values())
        rate = total / rebuild_s
        docs = timings.get("documents", {})
        print(f"bench: rebuild of {total:,} events in {rebuild_s:,.1f}s ({rate:,.0f} events/s), peak RSS {peak_mb:,.0f} MB "
              f"(before: {before_mb:,.0f} MB)", flush=True)

        # baseline a: the old path (handler writing each batch to FerretDB) on a prefix
        db = mongo.database("reporting")
        old_gen = Generation(db, 900)
        old_gen.drop()
        handler = ProjectorHandler(old_gen)
        n_old, s_old = consume(topics, args.prefix, handler, seconds=args.old_seconds)
        old_rate = n_old / s_old
        old_s = total / old_rate
        print(f"bench: old path (handler per batch into the database): {n_old:,} events in {s_old:,.1f}s = "
              f"{old_rate:,.0f} events/s -> {old_s / 60:,.0f} min for {total:,} (extrapolated)", flush=True)
        old_gen.drop()
        # baseline b: raw consume (poll + decode)
        n_raw, s_raw = consume(topics, min(args.raw, total))
        raw_rate = n_raw / s_raw
        print(f"bench: raw consume (poll + decode): {n_raw:,} events in {s_raw:,.1f}s = {raw_rate:,.0f} events/s",
              flush=True)
    finally:
        disk = cleanup(prefix, args.keep)

    server = "MongoDB" if os.environ.get("MONGO_URL") else "FerretDB 1.24.2 (SQLite)"
    flag = " --full" if args.full else (f" --members {args.members}" if args.members else "")
    load = os.getloadavg()[0]
    lines = [
        f"\n## Rebuild run of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"Machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.python_implementation()} {platform.python_version()}; database: {server}; Kafka 3.9.1 (KRaft, 1 node); "
        f"load average at the end {load:.1f} (the machine is shared).",
        f"Command: `.venv/bin/python -m bench.rebuild_bench{flag}`; province seed {args.seed}: {size['members']:,} members, "
        f"{size['cdcs']:,} CĐCS, {size['communes']} communes; 3 topics x 6 partitions.",
        "",
        "| measure | value | baseline (same run) | ratio |",
        "|---|---|---|---|",
        f"| full rebuild of the views ({total:,} events) | {rebuild_s:,.0f} s ({rate:,.0f} events/s): fold "
        f"{timings.get('fold_s', 0):,.0f} s + bulk insert {timings.get('write_s', 0):,.0f} s | old path (projector handler per batch "
        f"into FerretDB) {old_rate:,.0f} events/s on the first {n_old:,} events ({s_old:,.0f} s) -> {old_s / 60:,.0f} min extrapolated | "
        f"{old_s / rebuild_s:,.0f}x faster |",
        f"| rebuild rate | {rate:,.0f} events/s | raw consume (poll + decode) {raw_rate:,.0f} events/s | {rate / raw_rate:.2f} |",
        f"| peak memory of the rebuild (RSS) | {peak_mb:,.0f} MB | | |",
        f"| documents written | {sum(docs.values()):,} ({', '.join(f'{k} {v:,}' for k, v in docs.items())}) | | |",
        (f"| generating + producing the events ({args.shards} processes) | {gen_s:,.0f} s ({total / gen_s:,.0f} "
         f"events/s), generator peak RSS {gen_mb:,.0f} MB each | | |") if not args.reuse
        else "| generating + producing the events | done by an earlier run (topics reused) | | |",
        f"| the bench's topics on the broker's disk | {disk / 2**20:,.0f} MiB (uncompressed; deleted after the run) | | |",
    ]
    print("\n".join(lines))
    if args.no_record:
        return
    out = ROOT / "docs" / "benchmarks.md"
    existing = out.read_text() if out.exists() else "# Benchmarks\n\nEach figure is printed beside a baseline measured in the same run (`make bench`).\n"
    if not out.exists():
        out.write_text(existing)
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n")
    del number


if __name__ == "__main__":
    main()

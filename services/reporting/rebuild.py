"""Rebuild every view from the beginning of the topics into a fresh generation, then swap it in.

    python -m services.reporting.rebuild [--batch 5000] [--chunk 2000] [--writers 2] [--no-swap]

1. takes the next generation number N (never reused, so its consumer group starts from zero);
2. notes the end offset of every partition of the source topics;
3. folds everything up to those offsets IN MEMORY with the projector's own code: the same
   `ProjectorHandler` (dedupe by aggregate version and envelope id, provisional units, hierarchy
   moves carrying their subtree's totals, closed units' successors, the
   per-aggregate states, the `applied` offset of each source partition on each document) over a
   `MemoryGeneration` (generations/memory.py), whose documents live in dicts instead of collections;
   records are read, decoded and dead-lettered with platformkit.consumer's steps. Progress: events done / total, rate, estimated time left.
   A generation being rebuilt is private until it is swapped in, so nothing has to be written
   while folding: FerretDB scans a whole collection for every update (4-40 ms each), inserts stay
   cheap, and the incremental path (one guarded update per unit, month and partition per batch)
   would take ~47 minutes for a million events;
4. writes the final documents of g<N>_* with bulk inserts (`insert_many`, in chunks, a few
   writer threads), one progress line per collection kind;
5. commits the offsets of step 2 for the consumer group of generation N, so the running projector,
   which consumes the active generation with that group, continues exactly where the rebuild
   stopped (no event skipped, none counted twice);
6. makes N the active generation: views read it at once, the running projector notices within
   seconds and switches;
7. drops generations older than N-1 (the previous one is kept for comparison or rollback).

A crash (or SIGTERM/SIGINT) before step 6 leaves generation N unswapped and unused, possibly
half-written, and commits nothing the projector could follow (step 5 only after every document
is written); rerunning starts over with generation N+1 and the swap of a later rebuild drops the
leftover. Memory: the fold holds every rolled-up document (units x months), the hierarchy and
the projector's per-aggregate memory (one entry per member, dues month, case, class, ...), the
states as compact tuples: 0.65 GB at 1M events, 4.4 GB at 10M (12.3M states; docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import gc
import multiprocessing
import signal
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from queue import Empty
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from platformkit import config, contract
from platformkit.consumer import DeadLetterLimit, DeadLetters, Record, decode_records, route_dead_letters
from platformkit.logs import setup_logging

from .generations import MemoryGeneration, MongoGeneration, active_generation, set_active_generation
from .projector import SOURCE_TOPICS, ProjectorHandler, db, group_id


def end_offsets(topics: list[str]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or [])]
        return consumer.end_offsets(tps) if tps else {}
    finally:
        consumer.close()


def next_generation() -> int:
    d = db()
    meta = d.meta.find_one({"_id": "generation"}) or {}
    number = max(meta.get("last_built", 0), meta.get("active", 0)) + 1
    d.meta.update_one({"_id": "generation"}, {"$set": {"last_built": number}, "$setOnInsert": {"active": meta.get("active", 0)}},
                      upsert=True)
    return number


# ---------------------------------------------------------------------------- reading the topics
class Progress:
    def __init__(self, out, total: int, label: str = "rebuild"):
        self.out, self.total, self.label = out, total, label
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 2.0:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else float("inf")
        print(f"{self.label}: {done:,}/{self.total:,} events ({100.0 * done / max(self.total, 1):.1f}%), "
              f"{rate:,.0f} events/s, ~{left:,.0f}s left", file=self.out, flush=True)


def _consumer(batch: int) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=None, enable_auto_commit=False,
                         isolation_level="read_committed", max_poll_records=batch,
                         fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024,
                         receive_buffer_bytes=4 * 1024 * 1024)


def read_topics(wanted: dict[tuple[str, int], int], batch: int, queue) -> None:
    """The fold's reader, in a process of its own: every record of these partitions before its end
    offset, put on `queue` as ("records", [(topic, partition, offset, key, value, timestamp)]),
    then ("done", None); ("error", why) if reading fails. Why a process: kafka-python parses
    records in Python, about a quarter of the fold's time on one core (docs/benchmarks.md), while
    the fold leaves the machine's other core idle; plain tuples of bytes cross the pipe cheaply."""
    consumer = None
    try:
        consumer = _consumer(batch)
        tps = [TopicPartition(t, p) for t, p in wanted]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        remaining = set(tps)
        while remaining:
            polled = consumer.poll(timeout_ms=500, max_records=batch)
            rows = []
            for tp, msgs in polled.items():
                end = wanted[(tp.topic, tp.partition)]
                for m in msgs:
                    if m.offset >= end:
                        break
                    rows.append((m.topic, m.partition, m.offset, m.key, m.value, m.timestamp))
            for tp in list(remaining):
                if consumer.position(tp) >= wanted[(tp.topic, tp.partition)]:
                    remaining.discard(tp)
                    consumer.pause(tp)
            if rows:
                queue.put(("records", rows))
        queue.put(("done", None))
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the fold must hear of it
        queue.put(("error", repr(exc)))
    finally:
        if consumer is not None:
            consumer.close()


def _batches(wanted: dict[TopicPartition, int], batch: int, stop: threading.Event | None):
    """Lists of Records from the reader process (read_topics), in each partition's offset order;
    None when `stop` was set. The reader is stopped when the caller is done with the batches."""
    # spawn, not fork: the caller may have threads (a producer's, pymongo's monitors) holding locks
    # at the moment of a fork. A spawned child imports the caller's main module again, as every
    # `multiprocessing` child but a forked one does: the entry points guard theirs (`__main__`).
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue(maxsize=8)
    reader = ctx.Process(target=read_topics, name="rebuild-reader", daemon=True,
                         args=({(tp.topic, tp.partition): end for tp, end in wanted.items()}, batch, queue))
    reader.start()
    try:
        while True:
            if stop is not None and stop.is_set():
                yield None
                return
            try:
                kind, payload = queue.get(timeout=1.0)
            except Empty:
                if not reader.is_alive() and queue.empty():
                    raise RuntimeError(f"the rebuild's topic reader ended (exit code {reader.exitcode})")
                continue
            if kind == "done":
                return
            if kind == "error":
                raise RuntimeError(f"the rebuild's topic reader failed: {payload}")
            yield [Record(*row) for row in payload]
    finally:
        if reader.is_alive():
            reader.terminate()
        reader.join(10)
        queue.close()


def fold(gen: MemoryGeneration, ends: dict[TopicPartition, int], out, batch: int = 5000,
         stop: threading.Event | None = None, dead_letters: DeadLetters | None = None) -> bool:
    """Run the projector's handler over every record before `ends`, in batches as a consumer
    would get them (platformkit.consumer's decode and dead-letter steps, under the same
    dead-letter limit; the records read by `read_topics` in a process of its own). True when
    every partition reached its end offset."""
    handler = ProjectorHandler(gen)
    limit = DeadLetterLimit.from_env() if dead_letters is not None else None
    wanted = {tp: end for tp, end in ends.items() if end > 0}
    total = sum(wanted.values())
    progress = Progress(out, total)
    if not wanted:
        return True
    done = 0
    with closing(_batches(wanted, batch, stop)) as batches:  # closed: the reader process stopped
        for records in batches:
            if records is None:
                return False
            decoded, dead = decode_records(records)
            if decoded:
                dead += [(decoded[i], f"process: {error}") for i, error in sorted(handler(decoded).items())]
            if dead_letters is not None and dead:
                _, exceeded = route_dead_letters(records, dead, dead_letters, limit)
                if exceeded is not None:
                    print(f"rebuild: STOPPED by the dead-letter limit: {exceeded.rule} (at {exceeded.record.topic}"
                          f"[{exceeded.record.partition}]@{exceeded.record.offset})", file=out, flush=True)
                    return False
            elif limit is not None:
                for _ in records:
                    limit.crossed_by(False)
            done += len(records)
            progress(done)
    progress(total, force=True)
    return True


# ---------------------------------------------------------------------------- writing
def write(gen: MemoryGeneration, out, chunk: int = 2000, writers: int = 2,
          stop: threading.Event | None = None) -> dict[str, int]:
    """Insert every document of the generation (insert_many, ordered=False, in chunks), from a
    few threads; prints a line per kind of collection. {kind: documents written}."""
    target = MongoGeneration(db(), gen.number)
    counts: dict[str, int] = defaultdict(int)
    started = time.monotonic()
    total = 0
    collections = 0
    pool = ThreadPoolExecutor(max_workers=max(1, writers))
    pending: list = []
    lock = threading.Lock()

    def insert(name: str, docs: list[dict]) -> None:
        target.db[name].insert_many(docs, ordered=False)

    def drain(limit: int) -> None:
        while len(pending) > limit:
            pending.pop(0).result()

    expected = sum(gen.counts().values())
    sent = 0
    last_line = started

    def progress() -> None:
        nonlocal last_line
        now = time.monotonic()
        if now - last_line >= 5.0:
            last_line = now
            rate = sent / max(now - started, 1e-6)
            print(f"rebuild: writing {sent:,}/{expected:,} documents ({100.0 * sent / max(expected, 1):.1f}%), "
                  f"{rate:,.0f} documents/s, ~{(expected - sent) / max(rate, 1e-6):,.0f}s left", file=out, flush=True)

    last_kind = None
    try:
        for kind, name, docs, count in gen.documents():
            if kind != last_kind:
                if last_kind is not None:
                    drain(0)
                    print(f"rebuild: wrote {counts[last_kind]:,} {last_kind} documents "
                          f"({total:,} in {time.monotonic() - started:,.1f}s)", file=out, flush=True)
                last_kind = kind
            collections += 1
            buf: list[dict] = []
            for doc in docs:
                buf.append(doc)
                if len(buf) >= chunk:
                    if stop is not None and stop.is_set():
                        raise KeyboardInterrupt("stopped while writing")
                    pending.append(pool.submit(insert, name, buf))
                    drain(writers * 2)
                    sent += len(buf)
                    progress()
                    buf = []
            if buf:
                pending.append(pool.submit(insert, name, buf))
                drain(writers * 2)
                sent += len(buf)
                progress()
            with lock:
                counts[kind] += count
                total += count
        drain(0)
        if last_kind is not None:
            print(f"rebuild: wrote {counts[last_kind]:,} {last_kind} documents "
                  f"({total:,} in {time.monotonic() - started:,.1f}s)", file=out, flush=True)
    finally:
        pool.shutdown(wait=True)
    # The units' indexes (and on the local store the GIN indexes, platformkit/store_prep.py) once the
    # documents are in: one build over each full collection instead of upkeep on every insert.
    target.setup()
    target.stamp_hierarchy()  # a number built before (and dropped) gets a stamp no reader has seen
    elapsed = max(time.monotonic() - started, 1e-6)
    print(f"rebuild: write phase: {total:,} documents into {collections} collections in {elapsed:,.1f}s "
          f"({total / elapsed:,.0f} documents/s)", file=out, flush=True)
    return dict(counts)


def commit_offsets(number: int, ends: dict[TopicPartition, int]) -> None:
    """The offsets the generation includes, committed for the group the projector will use for it
    (ConsumerLoop prefixes group ids with TOPIC_PREFIX)."""
    if not ends:
        return
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(),
                             group_id=contract.group(group_id(number)), enable_auto_commit=False)
    try:
        consumer.assign(list(ends))
        consumer.commit({tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()})
    finally:
        consumer.close(autocommit=False)


def drop_old_generations(number: int) -> None:
    for name in db().list_collection_names():
        if name.startswith("g") and "_" in name:
            try:
                g = int(name[1:name.index("_")])
            except ValueError:
                continue
            if g < number - 1:
                db()[name].drop()


def rebuild(out=sys.stderr, swap: bool = True, batch: int = 5000, chunk: int = 2000, writers: int = 2,
            stop: threading.Event | None = None, timings: dict[str, Any] | None = None) -> int:
    timings = {} if timings is None else timings
    topics = [config.topic(t) for t in SOURCE_TOPICS]
    number = next_generation()
    gen = MemoryGeneration(number)
    MongoGeneration(db(), number).drop()
    ends = end_offsets(topics)
    total = sum(ends.values())
    print(f"rebuild: generation {number}, {total:,} events to replay from {len(ends)} partitions "
          f"(folded in memory, then written with bulk inserts)", file=out, flush=True)
    started = time.monotonic()
    dead_letters = DeadLetters(group_id(number))
    # Millions of small containers that live until the end and form no cycles: the cyclic
    # collector's full passes over them would grow with the fold (seconds each at 1M events).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _rebuild(gen, number, ends, total, started, out, swap, batch, chunk, writers, stop, timings,
                        dead_letters)
    finally:
        dead_letters.close()
        if gc_was_enabled:
            gc.enable()


def _rebuild(gen, number, ends, total, started, out, swap, batch, chunk, writers, stop, timings, dead_letters) -> int:
    complete = fold(gen, ends, out, batch=batch, stop=stop, dead_letters=dead_letters)
    if not complete:
        print(f"rebuild: stopped before catching up; generation {number} was NOT swapped in", file=out, flush=True)
        return number
    timings["fold_s"] = time.monotonic() - started
    print(f"rebuild: replayed {total:,} events in {timings['fold_s']:,.1f}s; "
          f"{gen.counts()['agg']:,} unit-month documents, {gen.counts()['units']:,} units, "
          f"{gen.counts()['state']:,} states", file=out, flush=True)
    t = time.monotonic()
    try:
        timings["documents"] = write(gen, out, chunk=chunk, writers=writers, stop=stop)
    except KeyboardInterrupt:
        print(f"rebuild: stopped while writing; generation {number} was NOT swapped in", file=out, flush=True)
        return number
    timings["write_s"] = time.monotonic() - t
    commit_offsets(number, ends)
    timings["total_s"] = time.monotonic() - started
    print(f"rebuild: generation {number} complete in {timings['total_s']:,.1f}s "
          f"({total / max(timings['total_s'], 1e-6):,.0f} events/s overall); offsets committed for "
          f"{group_id(number)}", file=out, flush=True)
    if swap:
        old = active_generation(db())
        set_active_generation(db(), number)
        print(f"rebuild: generation {number} is now active (was {old})", file=out, flush=True)
        drop_old_generations(number)
    return number


def main() -> None:
    setup_logging("WARNING")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=5000, help="records per handler call")
    parser.add_argument("--chunk", type=int, default=2000, help="documents per insert_many")
    parser.add_argument("--writers", type=int, default=2, help="inserting threads")
    parser.add_argument("--no-swap", action="store_true", help="build the generation but leave the active one")
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    rebuild(swap=not args.no_swap, batch=args.batch, chunk=args.chunk, writers=args.writers, stop=stop)


if __name__ == "__main__":
    main()

"""Rebuild every view from the beginning of the topics into a fresh generation, then swap it in.

    python -m services.reporting.rebuild

1. takes the next generation number N (never reused, so its consumer group starts from zero);
2. notes the end offset of every partition of the source topics;
3. replays everything up to those offsets into g<N>_* with the projector's own code, printing
   progress (events done / total, rate, estimated time left);
4. makes N the active generation: views read it at once, the running projector notices within
   seconds and continues from where the rebuild stopped (its group is the rebuild's group);
5. drops generations older than N-1 (the previous one is kept for comparison or rollback).
"""
from __future__ import annotations

import argparse
import sys
import time

from kafka import KafkaConsumer, TopicPartition

from platformkit import config
from platformkit.consumer import ConsumerLoop
from platformkit.logs import setup_logging

from .projector import SOURCE_TOPICS, ProjectorHandler, db, group_id
from .store import Generation, active_generation, set_active_generation


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


def rebuild(out=sys.stderr, swap: bool = True) -> int:
    topics = [config.topic(t) for t in SOURCE_TOPICS]
    number = next_generation()
    gen = Generation(db(), number)
    gen.drop()
    ends = end_offsets(topics)
    total = sum(ends.values())
    print(f"rebuild: generation {number}, {total:,} events to replay from {len(ends)} partitions", file=out, flush=True)
    started = time.monotonic()
    caught_up = {"flag": total == 0}
    loop: ConsumerLoop

    def progress():
        consumer = loop.consumer
        assigned = consumer.assignment()
        done = sum(min(consumer.position(tp), ends.get(tp, 0)) for tp in assigned)
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 else float("inf")
        print(f"rebuild: {done:,}/{total:,} events ({100.0 * done / max(total, 1):.1f}%), "
              f"{rate:,.0f} events/s, ~{left:,.0f}s left", file=out, flush=True)
        if len(assigned) == len(ends) and all(consumer.position(tp) >= ends[tp] for tp in ends):
            caught_up["flag"] = True
            loop.stop()

    loop = ConsumerLoop(group_id(number), topics, ProjectorHandler(gen), max_batch=2000,
                        after_batch=progress, on_idle=progress)
    loop.install_signal_handlers()
    if total == 0:
        loop.stop()
    loop.run()
    if not caught_up["flag"]:
        print(f"rebuild: stopped before catching up; generation {number} was NOT swapped in", file=out, flush=True)
        return number
    print(f"rebuild: replayed {total:,} events in {time.monotonic() - started:,.1f}s", file=out, flush=True)
    if swap:
        old = active_generation(db())
        set_active_generation(db(), number)
        print(f"rebuild: generation {number} is now active (was {old})", file=out, flush=True)
        for name in db().list_collection_names():
            if name.startswith("g") and "_" in name:
                try:
                    g = int(name[1:name.index("_")])
                except ValueError:
                    continue
                if g < number - 1:
                    db()[name].drop()
    return number


def main() -> None:
    setup_logging("WARNING")
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    rebuild()


if __name__ == "__main__":
    main()

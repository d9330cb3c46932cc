"""Dead letters of a consumer group: list them, inspect one, replay them after a fix.

    python -m platformkit.deadletters list    [--group G] [--limit 100] [--from-offset [P:]N] [--pending]
    python -m platformkit.deadletters inspect --group G --offset [P:]N
    python -m platformkit.deadletters replay  --group G (--offset [P:]N ... | --all) [--dry-run]

G is the consumer group as the code names it (`training-membership-view`,
`reporting-projector-g0`, ...). As in platformkit.consumer, TOPIC_PREFIX prefixes the group, its
dead-letter topic `<G>.dlq` (config.dead_letter_topic) and the replay group `<G>.replay`. A dead
letter is named by its place in the DLQ, `P:N` (partition P, offset N); a plain `N` means `0:N`
when the DLQ has one partition (the fixed groups' DLQs do; auto-created ones have the broker's
default partition count).

Replay republishes a dead letter's ORIGINAL key and value bytes, and its headers other than the
dead-letter ones (`error`, `original_*`, `consumer_group`), to its `original_topic`, with a
`replayed_from: <dlq>:<P>:<N>` header. The key picks the partition, as for every event of that
aggregate, so the replayed copy comes after the aggregate's events already on the topic. Every group
consuming that topic gets the copy again: the groups that had processed it drop it as a duplicate
(same envelope id and aggregate version), the fixed group applies it.

What was replayed is recorded durably in Kafka, as the committed offsets of the consumer group
`<G>.replay` on the DLQ (nobody consumes with that group; only this tool commits to it). Per DLQ
partition:
  * the committed offset C: every dead letter below C has been replayed;
  * its commit metadata `{"v": 1, "replayed": "12-15,20"}`: dead letters at or above C that were
    replayed one by one (`--offset`), or after a dead letter `--all` skipped (not an envelope).
    When C is reached by the set, C moves forward over it. The metadata is bounded by the broker
    (offset.metadata.max.bytes, 4096 by default): a selection that would not fit is refused before
    anything is sent.
A batch is sent (acks=all, idempotent producer), flushed, every acknowledgement checked, and only
then is the record committed (merged with the record as committed meanwhile, so that two replays of
different offsets do not erase each other's). Hence:
  * running `replay` again republishes nothing that was recorded;
  * a crash (or kill) between the acknowledgement and the commit republishes that batch again on
    the next run: the original topic then holds the same envelope twice, which every consumer of
    the platform counts once (the reporting projector keeps per aggregate the last version and the
    envelope ids seen at it, and does not remember an event it rejected; the membership views
    apply a version only if newer; the recording consumer of the tests keys by envelope id) --
    the same guarantee as for an outbox relay that re-publishes after a crash;
  * a crash before the acknowledgement may or may not have published: same as above.
  (tests/integration/test_deadletters.py kills a replay there with FAULT_POINT=deadletters.after_send.)
`--all` replays the dead letters present when it starts (the end offsets are read once), so records
dead-lettered again during the replay (the fix did not work) wait for the next run instead of
looping. Records whose value is not an envelope (`decode:` errors) are never republished: they would
only be dead-lettered again; they stay pending and are reported.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Iterator, TextIO

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from . import config, contract
from .envelope import DecodeError, Envelope, decode
from .faults import crash_point

DLQ_HEADERS = ("error", "original_topic", "original_partition", "original_offset", "consumer_group")
REPLAYED_FROM = "replayed_from"
METADATA_LIMIT = 3500  # bytes of commit metadata; the broker's default limit is 4096


class Failure(Exception):
    """An operator error (unknown offset, selection too large, ...): printed, exit code 2."""


# ---------------------------------------------------------------------------- names
def group_name(group: str) -> str:
    """The group as the broker knows it (platformkit.consumer prefixes it with TOPIC_PREFIX)."""
    return contract.group(group)


def replay_group(group: str) -> str:
    return group_name(group) + contract.REPLAY_SUFFIX


def dlq_topic(group: str) -> str:
    return config.dead_letter_topic(group)


# ---------------------------------------------------------------------------- the replay record
def _ranges(offsets: Iterable[int]) -> str:
    out: list[str] = []
    run: list[int] = []
    for off in sorted(set(offsets)):
        if run and off == run[-1] + 1:
            run[-1] = off
            continue
        if run:
            out.append(f"{run[0]}" if run[0] == run[1] else f"{run[0]}-{run[1]}")
        run = [off, off]
    if run:
        out.append(f"{run[0]}" if run[0] == run[1] else f"{run[0]}-{run[1]}")
    return ",".join(out)


def _parse_ranges(text: str) -> set[int]:
    out: set[int] = set()
    for part in filter(None, (text or "").split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


@dataclass
class Replayed:
    """What was replayed from one DLQ partition: every offset below `below`, plus `extra`."""
    below: int = 0
    extra: set[int] = field(default_factory=set)

    def __contains__(self, offset: int) -> bool:
        return offset < self.below or offset in self.extra

    def add(self, offsets: Iterable[int], log_start: int = 0) -> None:
        self.extra.update(o for o in offsets if o >= self.below)
        self.normalise(log_start)

    def merge(self, other: "Replayed", log_start: int = 0) -> None:
        """Union (replayed is monotonic: merging with a record committed meanwhile loses nothing)."""
        self.extra |= {o for o in other.extra if o >= self.below}
        if other.below > self.below:
            self.below = other.below
            self.extra = {o for o in self.extra if o >= self.below}
        self.normalise(log_start)

    def normalise(self, log_start: int = 0) -> None:
        """Offsets below the log start no longer exist: nothing there is pending."""
        if log_start > self.below:
            self.below = log_start
            self.extra = {o for o in self.extra if o >= self.below}
        while self.below in self.extra:
            self.extra.discard(self.below)
            self.below += 1

    def metadata(self) -> str:
        return json.dumps({"v": 1, "replayed": _ranges(self.extra)}, separators=(",", ":"))

    @classmethod
    def from_commit(cls, committed: OffsetAndMetadata | None) -> "Replayed":
        if committed is None or committed.offset is None or committed.offset < 0:
            return cls()
        extra: set[int] = set()
        if committed.metadata:
            try:
                extra = _parse_ranges(json.loads(committed.metadata).get("replayed", ""))
            except (ValueError, AttributeError):
                extra = set()  # not written by this tool: only the offset counts
        record = cls(committed.offset, extra)
        record.normalise()
        return record

    def count_in(self, start: int, end: int) -> int:
        """How many offsets of [start, end) are replayed."""
        below = max(0, min(self.below, end) - start)
        return below + sum(1 for o in self.extra if max(start, self.below) <= o < end)

    def pending_ranges(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The [a, b) intervals of [start, end) not replayed, in order."""
        a = max(start, self.below)
        for o in sorted(o for o in self.extra if a <= o < end):
            if o > a:
                yield a, o
            a = o + 1
        if a < end:
            yield a, end


# ---------------------------------------------------------------------------- dead letters
@dataclass
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def name(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("utf-8", "replace") if v is not None else ""
        return None

    @property
    def original_topic(self) -> str | None:
        return self.header("original_topic")

    @property
    def original(self) -> str:
        return f"{self.original_topic or '?'}[{self.header('original_partition') or '?'}]@" \
               f"{self.header('original_offset') or '?'}"

    @property
    def error(self) -> str:
        return self.header("error") or ""

    def envelope(self) -> tuple[Envelope | None, str | None]:
        try:
            return decode(self.value), None
        except DecodeError as exc:
            return None, str(exc)

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, timezone.utc).isoformat(
            timespec="seconds").replace("+00:00", "Z")

    def key_text(self) -> str:
        return "-" if self.key is None else self.key.decode("utf-8", "backslashreplace")

    def replay_headers(self, dlq: str) -> list[tuple[str, bytes]]:
        kept = [(k, v) for k, v in self.headers if k not in DLQ_HEADERS and k != REPLAYED_FROM]
        return kept + [(REPLAYED_FROM, f"{dlq}:{self.partition}:{self.offset}".encode())]


class DeadLetterQueue:
    """One group's DLQ, read without joining any group, and its replay record."""

    def __init__(self, group: str):
        self.group = group
        self.topic = dlq_topic(group)
        self.replay_group = replay_group(group)
        self.consumer = KafkaConsumer(
            bootstrap_servers=config.kafka_bootstrap(), group_id=self.replay_group,
            enable_auto_commit=False, allow_auto_create_topics=False, auto_offset_reset="earliest",
            max_poll_records=500, request_timeout_ms=30000)
        partitions = self.consumer.partitions_for_topic(self.topic)
        self.exists = bool(partitions)
        self.tps = [TopicPartition(self.topic, p) for p in sorted(partitions or [])]
        self.start: dict[int, int] = {}
        self.end: dict[int, int] = {}
        self.record: dict[int, Replayed] = {}
        if self.exists:
            self.refresh()

    def close(self) -> None:
        self.consumer.close(autocommit=False)

    def refresh(self) -> None:
        begin = self.consumer.beginning_offsets(self.tps)
        end = self.consumer.end_offsets(self.tps)
        self.start = {tp.partition: begin[tp] for tp in self.tps}
        self.end = {tp.partition: end[tp] for tp in self.tps}
        self.record = self.committed()

    def committed(self) -> dict[int, Replayed]:
        out = {}
        for tp in self.tps:
            rec = Replayed.from_commit(self.consumer.committed(tp, metadata=True))
            rec.normalise(self.start.get(tp.partition, 0))
            out[tp.partition] = rec
        return out

    # ------------------------------------------------------------ counting
    def total(self) -> int:
        return sum(self.end[p] - self.start[p] for p in self.start)

    def replayed_count(self) -> int:
        return sum(self.record[p].count_in(self.start[p], self.end[p]) for p in self.start)

    # ------------------------------------------------------------ reading
    def parse_offset(self, text: str) -> tuple[int, int]:
        if ":" in text:
            p, _, n = text.partition(":")
            partition, offset = int(p), int(n)
        else:
            if len(self.tps) > 1:
                raise Failure(f"{self.topic} has {len(self.tps)} partitions: name a dead letter P:N "
                              f"(as `list` prints it), not {text}")
            partition, offset = 0, int(text)
        if partition not in self.start:
            raise Failure(f"{self.topic} has no partition {partition}")
        if not self.start[partition] <= offset < self.end[partition]:
            raise Failure(f"no dead letter {partition}:{offset} in {self.topic} (partition {partition} "
                          f"holds offsets {self.start[partition]}..{self.end[partition] - 1})"
                          if self.end[partition] > self.start[partition]
                          else f"no dead letter {partition}:{offset}: partition {partition} of {self.topic} is empty")
        return partition, offset

    def read(self, partition: int, start: int, end: int, timeout: float = 30.0) -> Iterator[DeadLetter]:
        """Every dead letter of [start, end) in one partition, in order."""
        if start >= end:
            return
        tp = TopicPartition(self.topic, partition)
        self.consumer.assign([tp])
        self.consumer.seek(tp, start)
        deadline = time.monotonic() + timeout
        while self.consumer.position(tp) < end:
            batch = self.consumer.poll(timeout_ms=1000).get(tp, [])
            if batch:
                deadline = time.monotonic() + timeout
            elif time.monotonic() > deadline:
                raise Failure(f"timed out reading {self.topic}[{partition}] at offset "
                              f"{self.consumer.position(tp)}")
            for m in batch:
                if m.offset >= end:
                    return
                yield DeadLetter(m.partition, m.offset, m.timestamp, m.key, m.value,
                                 [(k, v) for k, v in (m.headers or [])])

    def read_one(self, partition: int, offset: int) -> DeadLetter:
        for dl in self.read(partition, offset, offset + 1):
            if dl.offset == offset:
                return dl
        raise Failure(f"no dead letter {partition}:{offset} in {self.topic}")

    def ranges(self, from_partition: int = 0, from_offset: int = 0, pending_only: bool = False
               ) -> Iterator[tuple[int, int, int]]:
        """(partition, a, b) intervals to read in (partition, offset) order."""
        for p in sorted(self.start):
            if p < from_partition:
                continue
            start = max(self.start[p], from_offset if p == from_partition else 0)
            if pending_only:
                for a, b in self.record[p].pending_ranges(start, self.end[p]):
                    yield p, a, b
            elif start < self.end[p]:
                yield p, start, self.end[p]

    # ------------------------------------------------------------ recording
    def commit(self, done: dict[int, list[int]]) -> None:
        """Record these offsets as replayed: merged with the record as committed now, then
        committed (offset C + metadata) for every partition touched."""
        current = self.committed()
        offsets = {}
        for p, offs in done.items():
            rec = self.record[p]
            rec.add(offs, self.start[p])
            rec.merge(current[p], self.start[p])
            offsets[TopicPartition(self.topic, p)] = OffsetAndMetadata(rec.below, rec.metadata(), -1)
        if offsets:
            self.consumer.commit(offsets)

    def check_fits(self, partition: int, offsets: Iterable[int]) -> None:
        trial = Replayed(self.record[partition].below, set(self.record[partition].extra))
        trial.add(offsets, self.start[partition])
        if len(trial.metadata()) > METADATA_LIMIT:
            raise Failure(f"recording this selection would need {len(trial.metadata())} bytes of commit "
                          f"metadata on {self.topic}[{partition}] (limit {METADATA_LIMIT}): replay in "
                          "contiguous ranges, or with --all")


def dead_letter_topics() -> list[str]:
    """The DLQ topics under this TOPIC_PREFIX (for the error message of an unknown group)."""
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=None,
                             enable_auto_commit=False, allow_auto_create_topics=False)
    try:
        prefix = config.topic("")
        return sorted(t for t in consumer.topics() if t.startswith(prefix) and t.endswith(contract.DEAD_LETTER_SUFFIX))
    finally:
        consumer.close()


def _group_of(topic: str) -> str:
    return contract.logical(topic)[:-len(contract.DEAD_LETTER_SUFFIX)]


def _no_topic(q: DeadLetterQueue, out: TextIO) -> None:
    known = dead_letter_topics()
    print(f"no dead letters for group {q.group}: topic {q.topic} does not exist (nothing was ever "
          "dead-lettered, or the group name is wrong)", file=out)
    print("groups with dead-letter topics: " + (", ".join(_group_of(t) for t in known) or "none"), file=out)


# ---------------------------------------------------------------------------- commands
def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _line(dl: DeadLetter, replayed: bool) -> str:
    env, _ = dl.envelope()
    what = f"{env.type} id={env.id}" if env else "(not an envelope)"
    return (f"{dl.name:>8}  {dl.original}  key={dl.key_text()}  {what}  "
            f"{'replayed' if replayed else 'pending'}  {dl.time}  {_clip(dl.error, 160)}")


def cmd_list(args, out: TextIO) -> int:
    if not args.group:
        topics = dead_letter_topics()
        if not topics:
            print("no dead-letter topics", file=out)
        for topic in topics:
            q = DeadLetterQueue(_group_of(topic))
            try:
                total, replayed = q.total(), q.replayed_count()
                print(f"{q.group}: {total} dead letters, {replayed} replayed, {total - replayed} pending "
                      f"({q.topic})", file=out)
            finally:
                q.close()
        return 0
    q = DeadLetterQueue(args.group)
    try:
        if not q.exists:
            _no_topic(q, out)
            return 0
        from_p, from_o = (0, 0)
        if args.from_offset:
            from_p, _, rest = args.from_offset.rpartition(":")
            from_p, from_o = (int(from_p) if from_p else 0), int(rest)
        shown = 0
        next_at: str | None = None
        for p, a, b in q.ranges(from_p, from_o, pending_only=args.pending):
            for dl in q.read(p, a, b):
                if shown >= args.limit:
                    next_at = dl.name
                    break
                print(_line(dl, dl.offset in q.record[p]), file=out)
                shown += 1
            if next_at:
                break
        total, replayed = q.total(), q.replayed_count()
        print(f"-- {shown} shown{'' if not next_at else f'; more from --from-offset {next_at}'}", file=out)
        print(f"-- {q.group}: {total} dead letters in {q.topic}, {replayed} replayed, {total - replayed} "
              f"pending (replay record: group {q.replay_group})", file=out)
        return 0
    finally:
        q.close()


def _pretty(value: bytes | None) -> str:
    if value is None:
        return "(null)"
    try:
        return json.dumps(json.loads(value.decode("utf-8")), indent=2, ensure_ascii=False)
    except (UnicodeDecodeError, ValueError):
        return repr(value)


def cmd_inspect(args, out: TextIO) -> int:
    q = DeadLetterQueue(args.group)
    try:
        if not q.exists:
            _no_topic(q, out)
            return 2
        p, o = q.parse_offset(args.offset)
        dl = q.read_one(p, o)
        env, why = dl.envelope()
        print(f"dead letter {dl.name} of {q.topic}, dead-lettered {dl.time}, "
              f"{'replayed' if o in q.record[p] else 'pending'}", file=out)
        print("headers:", file=out)
        for k, v in dl.headers:
            print(f"  {k}: {v.decode('utf-8', 'backslashreplace') if v is not None else ''}", file=out)
        print(f"key: {dl.key_text()}", file=out)
        size = 0 if dl.value is None else len(dl.value)
        if env is not None:
            print(f"value ({size} bytes, envelope {env.type} id={env.id} subject={env.subject} "
                  f"aggregateversion={env.aggregateversion}):", file=out)
        else:
            print(f"value ({size} bytes, not an envelope: {why}):", file=out)
        print(_pretty(dl.value), file=out)
        return 0
    finally:
        q.close()


def _producer() -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=config.kafka_bootstrap(), acks="all", enable_idempotence=True,
                         retries=2**31 - 1, max_in_flight_requests_per_connection=5, linger_ms=5,
                         request_timeout_ms=15000)


def cmd_replay(args, out: TextIO) -> int:
    q = DeadLetterQueue(args.group)
    producer: KafkaProducer | None = None
    try:
        if not q.exists:
            _no_topic(q, out)
            return 0 if args.all else 2
        # what to read: (partition, a, b) intervals, and for --offset the exact offsets wanted
        already = 0
        if args.all:
            intervals = list(q.ranges(pending_only=True))  # end offsets read once, at the start
        else:
            wanted: dict[int, set[int]] = {}
            for text in args.offset:
                p, o = q.parse_offset(text)
                if o in q.record[p]:
                    print(f"{p}:{o} already replayed: skipped", file=out)
                    already += 1
                else:
                    wanted.setdefault(p, set()).add(o)
            for p, offs in wanted.items():
                q.check_fits(p, offs)
            intervals = [(p, o, o + 1) for p in sorted(wanted) for o in sorted(wanted[p])]
        todo = sum(b - a for _, a, b in intervals)
        verb = "would replay" if args.dry_run else "replaying"
        print(f"{q.group}: {verb} up to {todo} dead letter(s) from {q.topic}"
              f"{' (dry run: nothing is sent or recorded)' if args.dry_run else ''}", file=out, flush=True)
        sent = skipped = 0
        batch: list[DeadLetter] = []

        def send_batch() -> None:
            """Check the record will fit, send, wait for every acknowledgement, then record."""
            nonlocal sent, producer
            if not batch:
                return
            done: dict[int, list[int]] = {}
            for dl in batch:
                done.setdefault(dl.partition, []).append(dl.offset)
            for p, offs in done.items():
                q.check_fits(p, offs)
            if producer is None:
                producer = _producer()
            futures = [producer.send(dl.original_topic, key=dl.key, value=dl.value,
                                     headers=dl.replay_headers(q.topic)) for dl in batch]
            producer.flush(60)
            for future in futures:
                future.get(timeout=60)  # raises if the broker did not acknowledge (acks=all)
            crash_point("deadletters.after_send")
            q.commit(done)
            sent += len(batch)
            print(f"replayed {sent}/{todo} (up to {batch[-1].name}), recorded in {q.replay_group}",
                  file=out, flush=True)
            batch.clear()

        for p, a, b in intervals:
            for dl in q.read(p, a, b):
                env, why = dl.envelope()
                if env is None or not dl.original_topic:
                    reason = f"not an envelope ({_clip(why or '', 160)})" if env is None else "no original_topic header"
                    print(f"{dl.name} skipped: {reason}; fix or drop it by hand", file=out)
                    skipped += 1
                    continue
                if args.dry_run:
                    print(f"{dl.name} -> {dl.original_topic} key={dl.key_text()} {env.type} id={env.id} "
                          f"(was {dl.original}: {_clip(dl.error, 120)})", file=out)
                    sent += 1
                    continue
                batch.append(dl)
                if len(batch) >= args.batch:
                    send_batch()
        send_batch()
        word = "would be replayed" if args.dry_run else "replayed"
        print(f"-- {sent} {word}, {already} already replayed, {skipped} skipped (not replayable)", file=out)
        return 1 if skipped and not args.all else 0
    finally:
        if producer is not None:
            producer.close(timeout=30)
        q.close()


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    import logging

    from .logs import setup_logging
    setup_logging("WARNING")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # a failure is reported once, below
    parser = argparse.ArgumentParser(prog="python -m platformkit.deadletters",
                                     description="List, inspect and replay a consumer group's dead letters.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="one line per dead letter, then the counts")
    p_list.add_argument("--group", help="consumer group (without TOPIC_PREFIX); omitted: every group's counts")
    p_list.add_argument("--limit", type=int, default=100, help="at most this many lines (default 100)")
    p_list.add_argument("--from-offset", help="start at this dead letter, [P:]N (paging)")
    p_list.add_argument("--pending", action="store_true", help="only the dead letters not replayed yet")
    p_inspect = sub.add_parser("inspect", help="headers and original bytes of one dead letter")
    p_inspect.add_argument("--group", required=True)
    p_inspect.add_argument("--offset", required=True, help="[P:]N as `list` prints it")
    p_replay = sub.add_parser("replay", help="republish dead letters to their original topic, once")
    p_replay.add_argument("--group", required=True)
    sel = p_replay.add_mutually_exclusive_group(required=True)
    sel.add_argument("--offset", nargs="+", action="extend", help="[P:]N ... as `list` prints them")
    sel.add_argument("--all", action="store_true", help="every dead letter not replayed yet")
    p_replay.add_argument("--dry-run", action="store_true", help="print what would be replayed; send nothing")
    p_replay.add_argument("--batch", type=int, default=100, help="records per acknowledged send + commit")
    args = parser.parse_args(argv)
    if getattr(args, "batch", 1) < 1 or getattr(args, "limit", 1) < 1:
        parser.error("--batch and --limit must be at least 1")
    try:
        return {"list": cmd_list, "inspect": cmd_inspect, "replay": cmd_replay}[args.command](args, out)
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"error: Kafka: {exc!r}", file=sys.stderr)
        if args.command == "replay":
            print("what the last 'replayed N/M' line reports is recorded; anything after it may or may "
                  "not have been published: run the same replay again (consumers drop duplicates)",
                  file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

"""A deterministic (seeded) province as a stream of CloudEvents envelopes, in the shapes of
docs/events.md: the hierarchy, CĐCS founding, a year of members' lifecycle, dues, committees,
ratings, training classes and certificates, dissemination, welfare disbursements and loans.

    Province(seed=7, communes=150, cdcs=22000, members=2_500_000, activity=FULL_YEAR).events()
        # the real size: ~10M events (a year of dues, welfare, training on top of the lifecycle)
    Province(seed=7, communes=2, cdcs=6, members=300).events()               # a test's size

    python -m synthetic.province --members 2500000 --cdcs 22000 --communes 150 --kafka   # to the topics
    python -m synthetic.province --members 300 --cdcs 6 --communes 2 --out events.jsonl  # JSON lines

Business dates increase with the stream, so "the state after every event up to month M" is the
stock at the end of M. Each aggregate's events carry increasing aggregate versions. Everything,
envelope ids included, follows from the seed. Events are produced one member step at a time
(a generator): memory holds the hierarchy and one small record per member, never the events.

`activity` is the number of draws per admitted member of something happening to an earlier
member: up to 1 it is the probability of one lifecycle draw (transfer, leaving, reinstatement,
profile change, dues, welfare, training); above 1 the extra draws are routine business (monthly
dues recorded, welfare disbursements, officials' training), so transfers and departures keep
realistic yearly rates while the volume grows.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterator

from platformkit.envelope import TYPE_PATTERN, Envelope

from .names import person

SECTORS = ["non_state", "non_state", "non_state", "public_admin", "public_admin", "state_enterprise",
           "cooperative", "informal"]
WELFARE_KINDS = ["tet_gift", "tet_gift", "tet_gift", "hardship_visit", "hardship_visit", "workers_month",
                 "housing_repair", "housing_new", "death_support", "micro_loan"]
AMOUNTS = {"tet_gift": 500_000, "hardship_visit": 1_000_000, "workers_month": 300_000, "housing_repair": 25_000_000,
           "housing_new": 50_000_000, "death_support": 10_000_000, "micro_loan": 20_000_000}
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)
FULL_YEAR = 3.2  # activity giving ~4 events per member: ~10M events for 2.5M members


@dataclass(slots=True)
class Member:
    id: str
    unit: str
    name: str
    gender: str
    official: bool
    status: str = "admitted"
    version: int = 0


@dataclass
class Unit:
    id: str
    parent: str | None
    ancestors: list[str]
    kind: str
    level: int
    name: str
    sector: str | None = None
    version: int = 0
    members: list[str] = field(default_factory=list)


class Province:
    def __init__(self, seed: int = 7, communes: int = 3, cdcs: int = 9, members: int = 400,
                 year: int = 2025, code: str = "HCM", with_other_province: bool = True,
                 activity: float = 1.0):
        self.rng = random.Random(seed)
        self._ids = random.Random(seed * 1_000_003 + 17)  # envelope ids, apart from the business draws
        self._types: set[str] = set()
        self.n_communes, self.n_cdcs, self.n_members = communes, cdcs, members
        self.year, self.code = year, code
        self.with_other_province = with_other_province
        self.activity = activity
        self.units: dict[str, Unit] = {}
        self.members: dict[str, Member] = {}
        self.cdcs_ids: list[str] = []
        self.class_seq = 0
        self.case_seq = 0
        self.dues_versions: dict[str, int] = {}

    # ---------------------------------------------------------------- helpers
    def _day(self, progress: float) -> date:
        """A business date `progress` (0..1) through the year, Jan 5 .. Nov 25."""
        start = date(self.year, 1, 5)
        return start + timedelta(days=int(progress * 324))

    def _ev(self, type_: str, subject: str, data: dict, version: int, on: date) -> Envelope:
        if type_ not in self._types:
            if not TYPE_PATTERN.match(type_):
                raise ValueError(f"event type {type_!r} must look like 'service.aggregate.happened.v1'")
            self._types.add(type_)
        h = "%032x" % (self._ids.getrandbits(128) & _UUID_CLEAR | _UUID_V4)  # as uuid.UUID(int=.., version=4)
        return Envelope(id=f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", source=type_.split(".")[0],
                        type=type_, subject=str(subject), time=f"{on.isoformat()}T09:00:00.000Z", data=data,
                        aggregateversion=int(version))

    def _unit(self, uid: str, parent: str | None, kind: str, level: int, name: str, sector=None) -> Envelope:
        anc = (self.units[parent].ancestors + [parent]) if parent else []
        u = Unit(uid, parent, anc, kind, level, name, sector, version=1)
        self.units[uid] = u
        return self._ev("membership.unit.created.v1", uid, {
            "unit_id": uid, "parent_id": parent, "ancestors": anc, "name": name, "code": uid, "kind": kind,
            "level": level, "sector": sector, "effective_date": f"{self.year - 2}-06-01"}, 1, date(self.year, 1, 2))

    def _member_data(self, m: Member) -> dict:
        u = self.units[m.unit]
        return {"member_id": m.id, "unit_id": m.unit, "ancestors": u.ancestors, "full_name": m.name,
                "gender": m.gender, "is_official": m.official}

    def _member_ev(self, m: Member, happened: str, on: date, **extra) -> Envelope:
        m.version += 1
        return self._ev(f"membership.member.{happened}.v1", m.id, {**self._member_data(m), **extra}, m.version, on)

    # ---------------------------------------------------------------- the stream
    def events(self) -> Iterator[Envelope]:
        yield from self.hierarchy()
        steps = self.n_members
        for i in range(steps):
            progress = i / max(steps, 1)
            yield from self.step(i, progress)
        yield from self.year_end()

    def hierarchy(self) -> Iterator[Envelope]:
        yield self._unit("VN", None, "central", 1, "Tổng Liên đoàn Lao động Việt Nam")
        yield self._unit(self.code, "VN", "province", 2, f"LĐLĐ {self.code}")
        if self.with_other_province:
            yield self._unit("HN", "VN", "province", 2, "LĐLĐ Hà Nội")
        for c in range(self.n_communes):
            yield self._unit(f"{self.code}-X{c:03d}", self.code, "commune", 3, f"Công đoàn phường {c + 1}")
        for s in range(self.n_cdcs):
            commune = f"{self.code}-X{s % self.n_communes:03d}"
            sector = self.rng.choice(SECTORS)
            uid = f"{commune}-S{s:05d}"
            yield self._unit(uid, commune, "cdcs", 4, f"CĐCS đơn vị {s + 1}", sector)
            self.cdcs_ids.append(uid)
            u = self.units[uid]
            u.version = 2
            founded = date(self.year - 2, 6, 1) if s % 5 else self._day(self.rng.random() * 0.5)
            yield self._ev("membership.cdcs.founded.v1", uid, {
                "unit_id": uid, "ancestors": u.ancestors, "sector": sector,
                "method": "new_method" if self.rng.random() < 0.3 else "standard", "founding_member_count": 7,
                "decision_no": f"{s}/QĐ", "decision_date": founded.isoformat(), "effective_date": founded.isoformat()},
                2, founded)

    def step(self, i: int, progress: float) -> Iterator[Envelope]:
        rng = self.rng
        on = self._day(progress)
        unit = self.cdcs_ids[rng.randrange(len(self.cdcs_ids))]
        name, gender = person(rng)
        m = Member(f"M{i:08d}", unit, sys.intern(name), gender, official=rng.random() < 0.06)
        self.members[m.id] = m
        self.units[unit].members.append(m.id)
        yield self._member_ev(m, "admitted", on, admitted_on=on.isoformat(), date_of_birth="1990-01-01",
                              method="individual")
        if rng.random() < 0.85:
            m.status = "active"
            yield self._member_ev(m, "approved", on, approved_on=on.isoformat(), approved_by_unit_id=self.units[unit].parent)
        # activity on an earlier member
        if i > 10 and rng.random() < self.activity:
            other = self.members[f"M{rng.randrange(i):08d}"]
            roll = rng.random()
            if roll < 0.06 and other.status in ("active", "admitted"):
                src = self.units[other.unit]
                dst = self.cdcs_ids[rng.randrange(len(self.cdcs_ids))]
                if dst != other.unit:
                    other.unit = dst
                    yield self._member_ev(other, "transferred", on, from_unit_id=src.id, from_ancestors=src.ancestors,
                                          transferred_on=on.isoformat(), reason="transfer")
            elif roll < 0.09 and other.status != "left":
                other.status = "left"
                yield self._member_ev(other, "left", on, left_on=on.isoformat(),
                                      reason=rng.choice(["resigned", "removed", "deceased"]))
            elif roll < 0.10 and other.status == "left":
                other.status = "active"
                yield self._member_ev(other, "reinstated", on, reinstated_on=on.isoformat())
            elif roll < 0.12 and other.status == "active":
                other.official = not other.official
                yield self._member_ev(other, "profile_updated", on, changed=["is_official"])
            elif roll < 0.30 and other.status == "active":
                yield self._dues(other, on)
            elif roll < 0.36 and other.status == "active":
                yield from self._welfare(other, on)
            elif roll < 0.38 and other.status == "active" and other.official:
                yield from self._training(other, on)
        if i > 10 and self.activity > 1:
            extra = int(self.activity - 1) + (rng.random() < (self.activity - 1) % 1)
            for _ in range(extra):
                yield from self._routine(i, on)
        if i % max(1, self.n_members // max(1, self.n_cdcs // 3 or 1)) == 0:
            s = self.units[self.cdcs_ids[rng.randrange(len(self.cdcs_ids))]]
            actives = [mid for mid in s.members if self.members[mid].status == "active" and self.members[mid].unit == s.id]
            if actives:
                s.version += 1
                yield self._ev("membership.committee.consolidated.v1", s.id, {
                    "unit_id": s.id, "ancestors": s.ancestors, "term": "2023-2028", "date": on.isoformat(),
                    "positions": [{"member_id": actives[0], "full_name": self.members[actives[0]].name,
                                   "position": "chair"}]}, s.version, on)

    def _dues(self, m: Member, on: date) -> Envelope:
        rng = self.rng
        month = f"{on:%Y-%m}"
        salary = rng.choice([5_000_000, 7_000_000, 9_000_000, 12_000_000])
        rate = 10 if month < "2025-07" else 5
        due = min(salary * rate // 1000, 234_000)
        key = f"{m.id}:{month}"
        self.dues_versions[key] = self.dues_versions.get(key, 0) + 1
        return self._ev("membership.dues.recorded.v1", key, {
            "member_id": m.id, "unit_id": m.unit, "ancestors": self.units[m.unit].ancestors,
            "month": month, "salary": salary, "rate_permille": rate, "due": due,
            "paid": due if rng.random() < 0.9 else 0, "exempt_reason": None}, self.dues_versions[key], on)

    def _routine(self, i: int, on: date) -> Iterator[Envelope]:
        """An ordinary month's business for an earlier member: dues mostly, some care, some training."""
        rng = self.rng
        other = self.members[f"M{rng.randrange(i):08d}"]
        if other.status != "active":
            return
        roll = rng.random()
        if roll < 0.85:
            yield self._dues(other, on)
        elif roll < 0.97:
            yield from self._welfare(other, on)
        elif other.official:
            yield from self._training(other, on)

    def _welfare(self, m: Member, on: date) -> Iterator[Envelope]:
        self.case_seq += 1
        kind = self.rng.choice(WELFARE_KINDS)
        amount = AMOUNTS[kind]
        case_id = f"CASE{self.case_seq:07d}"
        u = self.units[m.unit]
        data = {"case_id": case_id, "programme_id": f"P-{kind}", "programme_kind": kind, "programme_year": self.year,
                "member_id": m.id, "unit_id": m.unit, "ancestors": u.ancestors, "hardship_type": "general",
                "amount": amount, "form": "cash", "funding": [{"source": "union_fund", "amount": amount}],
                "disbursed_on": on.isoformat(), "disbursed_by_unit_id": u.parent, "approved_by_unit_id": u.parent,
                "approved_level": 3}
        if kind == "micro_loan":
            data.update(principal=amount, term_months=10, outstanding=amount)
        yield self._ev("welfare.case.disbursed.v1", case_id, data, 3, on)
        if kind == "micro_loan":
            paid = 0
            for n in range(self.rng.randrange(0, 4)):
                paid += 2_000_000
                yield self._ev("welfare.loan.repaid.v1", case_id, {
                    "loan_id": case_id, "case_id": case_id, "programme_id": data["programme_id"],
                    "programme_kind": kind, "programme_year": self.year, "member_id": m.id, "unit_id": m.unit,
                    "ancestors": u.ancestors, "amount": 2_000_000, "paid_on": on.isoformat(), "seq": n + 1,
                    "principal": amount, "repaid_total": paid, "outstanding": amount - paid, "late": False,
                    "overdue_amount": 0, "fully_repaid": False}, 4 + n, on)

    def _training(self, m: Member, on: date) -> Iterator[Envelope]:
        self.class_seq += 1
        cls = f"CLASS{self.class_seq:06d}"
        commune = self.units[m.unit].parent
        cu = self.units[commune]
        facts = {"class_id": cls, "class_code": cls, "course_id": "ATVSLD", "course_code": "ATVSLD", "topic": "osh",
                 "audience": "part_time_officials", "format": "in_person", "organising_unit_id": commune,
                 "organising_ancestors": cu.ancestors, "start_date": on.isoformat(), "end_date": on.isoformat(),
                 "days_count": 1}
        mf = {"member_id": m.id, "unit_id": m.unit, "ancestors": self.units[m.unit].ancestors, "is_official": True}
        cert = f"{cls}-0001"
        yield self._ev("training.enrolment.completed.v1", cls, {**facts, **mf, "attended_days": 1, "required_days": 1,
                       "score": 8, "grade": "good", "completed_on": on.isoformat(), "certificate_no": cert}, 5, on)
        yield self._ev("training.certificate.issued.v1", cls, {**facts, **mf, "attended_days": 1, "required_days": 1,
                       "score": 8, "grade": "good", "certificate_no": cert, "issued_on": on.isoformat(),
                       "full_name": m.name}, 5, on)
        yield self._ev("training.class.closed.v1", cls, {**facts, "closed_on": on.isoformat(), "enrolled": 1,
                       "completed": 1, "not_completed": 0, "certificates_issued": 1, "officials_enrolled": 1,
                       "officials_completed": 1}, 6, on)

    def year_end(self) -> Iterator[Envelope]:
        on = date(self.year, 11, 28)
        commune_ids = [u for u, x in self.units.items() if x.kind == "commune"]
        for c in commune_ids:
            reached = [{"unit_id": s, "ancestors": self.units[s].ancestors,
                        "members_reached": sum(1 for mid in self.units[s].members if self.members[mid].status == "active")}
                       for s in self.cdcs_ids if self.units[s].parent == c]
            yield self._ev("training.dissemination.recorded.v1", f"DISS-{c}", {
                "session_id": f"DISS-{c}", "organising_unit_id": c, "organising_ancestors": self.units[c].ancestors,
                "topic": "resolution", "document_ref": "NQ 02-NQ/TW", "held_on": on.isoformat(), "format": "in_person",
                "audience": "members", "reached": reached, "members_reached": sum(r["members_reached"] for r in reached),
                "units_reached": len(reached)}, 1, on)
        for s in self.cdcs_ids:
            u = self.units[s]
            if self.rng.random() < 0.8:
                rating = self.rng.choice(["excellent", "good", "good", "completed", "not_completed"])
                for status in ("proposed", "confirmed"):
                    u.version += 1
                    yield self._ev("membership.cdcs.rated.v1", s, {
                        "unit_id": s, "ancestors": u.ancestors, "sector": u.sector, "year": self.year,
                        "rating": rating, "status": status,
                        "confirmed_by_unit_id": u.parent if status == "confirmed" else None}, u.version, on)

    def move_commune(self, commune: str, new_parent: str, on: date) -> Envelope:
        """The 2025 restructuring: a commune union moves under another province."""
        u = self.units[commune]
        old = list(u.ancestors)
        u.parent = new_parent
        u.ancestors = self.units[new_parent].ancestors + [new_parent]
        u.version += 1
        for s in self.cdcs_ids:
            if self.units[s].parent == commune:
                self.units[s].ancestors = u.ancestors + [commune]
        return self._ev("membership.unit.moved.v1", commune, {
            "unit_id": commune, "old_parent_id": old[-1], "parent_id": new_parent, "old_ancestors": old,
            "ancestors": u.ancestors, "effective_date": on.isoformat()}, u.version, on)


# ---------------------------------------------------------------------------- command line
def produce(province: Province, *, kafka: bool = True, out_path: str | None = None, compression: str = "none",
            partitions: int | None = None, shard: tuple[int, int] = (0, 1), log=sys.stderr,
            every: float = 2.0) -> dict[str, int]:
    """Stream the province's events to the domain topics (TOPIC_PREFIX applies; key = subject,
    partition as Kafka's default partitioner, value = the envelope's JSON, as the relays publish
    them) and/or to a JSON-lines file, with a progress line every `every` seconds.
    `shard` (k, K): this process sends only the events of partitions p with p % K == k, so that K
    processes generating the same (deterministic) stream produce it together, each partition's
    order intact. Returns {topic or path: events}."""
    from platformkit import config
    from platformkit.envelope import encode

    producer = None
    counts: dict[str, int] = {}
    if kafka:
        from kafka import KafkaProducer
        from platformkit.kafka_io import ensure_topics
        ensure_topics([config.topic(t) for t in ("membership.events", "training.events", "welfare.events")],
                      partitions=partitions or None)
        from kafka.partitioner.default import murmur2
        producer = KafkaProducer(bootstrap_servers=config.kafka_bootstrap(), acks="all", enable_idempotence=True,
                                 linger_ms=50, batch_size=1024 * 1024,
                                 max_in_flight_requests_per_connection=5,
                                 compression_type=None if compression == "none" else compression,
                                 max_request_size=16 * 1024 * 1024, request_timeout_ms=60000)
    topics = {s: config.topic(f"{s}.events") for s in ("membership", "training", "welfare")}
    sink = open(out_path, "wb") if out_path else None
    started = last = time.monotonic()
    n = 0
    errors: list[BaseException] = []

    def failed(exc):
        errors.append(exc)

    n_parts = {}
    if producer is not None:
        for t in topics.values():
            while not producer.partitions_for(t):
                time.sleep(0.1)
            n_parts[t] = len(producer.partitions_for(t))
    k, k_of = shard
    try:
        for e in province.events():
            n += 1
            if producer is not None:
                topic = topics[e.source]
                key = e.subject.encode("utf-8")
                part = (murmur2(key) & 0x7FFFFFFF) % n_parts[topic]
                if part % k_of == k:
                    producer.send(topic, key=key, value=encode(e), partition=part).add_errback(failed)
                    counts[topic] = counts.get(topic, 0) + 1
            if sink is not None and k == 0:
                sink.write(encode(e) + b"\n")
            if n % 10000 == 0:
                if errors:
                    raise RuntimeError(f"producing failed: {errors[0]!r}")
                now = time.monotonic()
                if now - last >= every:
                    last = now
                    print(f"province: {n:,} events, {n / (now - started):,.0f} events/s, "
                          f"{len(province.members):,}/{province.n_members:,} members", file=log, flush=True)
        if producer is not None:
            producer.flush(300)
            if errors:
                raise RuntimeError(f"producing failed: {errors[0]!r}")
    finally:
        if producer is not None:
            producer.close(timeout=60)
        if sink is not None:
            sink.close()
            counts[out_path] = n
    elapsed = max(time.monotonic() - started, 1e-6)
    print(f"province: {n:,} events in {elapsed:,.1f}s ({n / elapsed:,.0f} events/s)"
          + (f" to {', '.join(f'{t} {c:,}' for t, c in sorted(counts.items()))}" if counts else ""),
          file=log, flush=True)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Produce a deterministic synthetic province's events.")
    parser.add_argument("--members", type=int, default=2_500_000)
    parser.add_argument("--cdcs", type=int, default=22_000)
    parser.add_argument("--communes", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--activity", type=float, default=FULL_YEAR,
                        help=f"draws of activity per member (default {FULL_YEAR}: ~4 events per member)")
    parser.add_argument("--out", help="write JSON lines (one envelope per line) to this file")
    parser.add_argument("--kafka", action="store_true", help="produce to the topics (TOPIC_PREFIX applies)")
    parser.add_argument("--compression", default="none", choices=["none", "lz4", "gzip", "snappy", "zstd"])
    parser.add_argument("--partitions", type=int, help="partitions of topics that do not exist yet")
    parser.add_argument("--shard", default="0/1", help="k/K: send only partitions p with p %% K == k (K processes together)")
    args = parser.parse_args(argv)
    if not args.kafka and not args.out:
        parser.error("say where to: --out FILE and/or --kafka")
    province = Province(seed=args.seed, communes=args.communes, cdcs=args.cdcs, members=args.members,
                        activity=args.activity)
    k, k_of = (int(x) for x in args.shard.split("/"))
    produce(province, kafka=args.kafka, out_path=args.out, compression=args.compression, partitions=args.partitions,
            shard=(k, k_of))


if __name__ == "__main__":
    main()

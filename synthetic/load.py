"""Bulk-load a deterministic synthetic province into the services' OWN databases, and publish
its events to the domain topics, so that the live platform can be measured at province size.

    python -m synthetic.load --members 2500000 --cdcs 22000 --communes 150      # the real size
    python -m synthetic.load --members 300 --cdcs 6 --communes 2 --chunk 100     # a test's size

DB_PREFIX / TOPIC_PREFIX choose where (use a prefix of the load's own: bench/province_bench.py
uses `pv<members>s<seed>_`). What it writes, per chunk of members (1,000 by default):

* membership: the hierarchy (chunk -1: central, province, communes, CĐCS created and founded),
  members (admitted; 85 % approved; 3 % of those leave later in the year), dues months of the
  active members (`--dues`, mean months per member, default 1.5);
* training: one catalogue course (chunk -1) and one class per chunk for the chunk's active
  officials (planned, opened, each enrolled, started, a day's attendance, each assessed with a
  certificate, closed), and its membership view (`view_units`, `view_members`);
* welfare: one programme per chunk and kind (owned by the province union) and cases for 6 % of the
  active members (requested by the CĐCS, approved by the commune with its budget-ledger entry and
  decision claim, disbursed with its claim), and its membership view.

THE SAME DOCUMENTS AS THE WRITE PATHS. Every state and every event comes from the services' own
domain functions (services/*/domain.py), with the update documents their service layer builds
around them (history entries, `$unset` of `active_citizen_id`, `requested_by`, ...), committed
through `Sim`, an in-memory twin of platformkit/repository.py: the aggregate document is the
materialised copy at change N (`version`, `seq`), and change n of it is the document
`<id>@<n, 9 digits>` in `<collection>_events` with the repository's fields (`aggregate_id`, `seq`,
`version`, `ops`) in the state the relay leaves it after publishing: `outbox: []`,
`outbox_pending: false`. Why published rather than pending: the relay publishes a few hundred
events/s (docs/benchmarks.md), ~10M events would take it hours and fill the benchmark with its
work; the loader publishes them itself, in the relay's shape (key = aggregate id, value = the
envelope's JSON, the partition Kafka's default partitioner gives the key), which keeps every
aggregate's events in order on one partition as the relay does. What differs from the write path,
by design: ids are deterministic (units `u-<code>`, members `m-<16 hex>`, classes, programmes and
cases numbered by chunk) and so are envelope ids (uuid5 of aggregate, version and position) and
envelope times (the business date, 09:00 UTC), so that a rerun produces byte-identical envelopes.

ORDER AND RERUNS. Per chunk: (1) build, (2) publish the chunk's events and wait for every ack
(acks=all), (3) insert the documents (insert_many, unordered, batches of `--batch`), duplicates
ignored, (4) advance the checkpoint (`load_checkpoint` in the membership database: parameters,
next chunk, done). A crash anywhere redoes at most the chunk in hand: its inserts find the
documents already there (duplicate `_id`s skipped, nothing doubled), and its events are published
again with the same envelope ids and aggregate versions. What the reporting projector relies on
not to count them twice (services/reporting/projector.py `is_duplicate`, also used by the rebuild's
fold): per aggregate it remembers the last version applied and the envelope ids seen at it, and
drops an envelope whose version is older or whose id it has seen; the membership views keep the
version they reflect (`apply_versioned`). A rerun of a finished load does nothing. Parameters other
than those of the checkpoint are refused (use another prefix).

After the last chunk: the services' indexes (Mongo indexes, then platformkit/store_prep.py's GIN
indexes, FERRETDB_POSTGRESQL_URL) are made, as every process start does (`ServiceDescription
.prepare`), and the membership-view consumer groups of training and welfare are committed at the
end of the membership topic (their views were loaded directly; replaying them would change
nothing). The reporting views are built from the topics by the rebuild
(`python -m platformkit.run job reporting rebuild`; bench/province_bench.py measures it).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import queue
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from platformkit import config, contract, idempotency, mongo, period_lists
from platformkit.envelope import Envelope, encode, new_event
from platformkit.repository import NOT_STATE, SEQ, apply_ops, change_id, ops_of, public_state

from .names import person

log = logging.getLogger("synthetic.load")

YEAR = 2025
CODE = "HCM"
NAMESPACE = uuid.UUID("6f0c6a7e-2b2d-4d55-9a55-3d1c0c2f7a11")
CHECKPOINT = "load_checkpoint"
WELFARE_KINDS = ("tet_gift", "tet_gift", "hardship_visit", "hardship_visit", "workers_month", "housing_repair",
                 "death_support", "micro_loan")
AMOUNTS = {"tet_gift": 500_000, "hardship_visit": 1_000_000, "workers_month": 300_000,
           "housing_repair": 25_000_000, "death_support": 10_000_000, "micro_loan": 20_000_000}
HARDSHIP = {"tet_gift": "tet", "hardship_visit": "poverty", "workers_month": "other", "housing_repair": "housing",
            "death_support": "bereavement", "micro_loan": "poverty"}
LOADER = "loader"  # the subject recorded where a write path records its caller's


def day(progress: float) -> date:
    """A business date `progress` (0..1) through the year, Jan 5 .. Nov 25 (as synthetic.province)."""
    return date(YEAR, 1, 5) + timedelta(days=int(min(max(progress, 0.0), 1.0) * 324))


def unit_id(code: str) -> str:
    return "u-" + code.lower()


def member_id(i: int) -> str:
    return f"m-{i:016x}"


# ---------------------------------------------------------------------------- the write path, in memory
class Sim:
    """platformkit.repository.Repository's create/command, writing to lists instead of the store.
    `docs[collection]` (aggregate copies, by id) and `changes[collection + "_events"]`."""

    def __init__(self, out: "Out", service: str, collection: str, on: Callable[[], date],
                 derive: Callable[[dict], dict] | None = None):
        self.out, self.service, self.name, self.on = out, service, collection, on
        # the fields a service's stores derive from the state for its equality queries (training's
        # scope, enrolled members and certificate numbers; welfare's scope): set at creation as
        # the service's stores.py does
        self.derive = derive or (lambda state: {})

    def _envelopes(self, events: Iterable[Envelope], version_hint: int) -> list[Envelope]:
        """Deterministic ids and times for the envelopes the domain made (uuid4, now)."""
        t = f"{self.on().isoformat()}T09:00:00.000Z"
        out = []
        for k, e in enumerate(events):
            eid = str(uuid.uuid5(NAMESPACE, f"{e.source}|{e.subject}|{e.aggregateversion}|{k}"))
            out.append(dataclasses.replace(e, id=eid, time=t))
        return out

    def _commit(self, aggregate_id: str, seq: int, version: int, ops: list, events: list[Envelope],
                stamp: dict | None = None) -> None:
        self.out.change(self.service, self.name + "_events", {
            "_id": change_id(aggregate_id, seq), "aggregate_id": aggregate_id, SEQ: seq, "version": version,
            "ops": ops, **(stamp or {}), "outbox": [], "outbox_pending": False})
        self.out.events(self.service, self._envelopes(events, version))

    def create(self, state: dict, events: list[Envelope] | Callable[[int], list[Envelope]],
               stamp: dict | None = None, version: int = 1) -> dict:
        """Repository.create + finish_create: the copy at change 0, change 1 with the events, the
        copy materialised at change 1. Returns the whole document (as `load(whole=True)`)."""
        state = {**state, **self.derive(state)}
        doc = {**{k: v for k, v in state.items() if k not in NOT_STATE}, "_id": state["_id"],
               **(stamp or {}), "version": 0, SEQ: 0}
        self._commit(state["_id"], 1, version, [], events(version) if callable(events) else events)
        return {**doc, "version": version, SEQ: 1}

    def command(self, whole: dict, decide: Callable[[dict], Any], bump: bool = True) -> dict:
        """Repository.command on the whole document `whole` (no races here): the new whole document."""
        decision = decide(public_state(whole))
        if decision is None:
            return whole
        ops, events = decision
        ops = ops_of(ops) if isinstance(ops, dict) else list(ops)
        seq, version = whole[SEQ] + 1, whole["version"] + (1 if bump else 0)
        self._commit(whole["_id"], seq, version, ops, events)
        return {**fast_apply(whole, ops), "version": version, SEQ: seq}

    def save(self, whole: dict) -> None:
        self.out.doc(self.service, self.name, whole)


def fast_apply(doc: dict, ops: list) -> dict:
    """apply_ops (platformkit.repository) without its deep copy, for the ops the write paths make
    here: `set`/`unset` of a top-level field, `set` of `<list>.<n>`, `push` to a top-level list.
    The values are fresh objects of the domain's that nobody mutates afterwards; anything else goes
    through apply_ops itself. tests/integration/test_province_load.py checks the result equals
    apply_ops's."""
    new = dict(doc)
    for entry in ops:
        name, path, value = entry["op"], entry["path"], entry.get("value")
        head, dot, last = path.partition(".")
        if not dot and name == "set":
            new[path] = value
        elif not dot and name == "unset":
            new.pop(path, None)
        elif not dot and name in ("push", "push_all") and isinstance(new.get(path, []), list):
            new[path] = [*(new.get(path) or []), *(value if name == "push_all" else [value])]
        elif dot and name == "set" and last.isdigit() and isinstance(new.get(head), list) and "." not in last:
            items = list(new[head])
            i = int(last)
            if i < len(items):
                items[i] = value
            elif i == len(items):
                items.append(value)
            else:
                return apply_ops(doc, ops)
            new[head] = items
        else:
            return apply_ops(doc, ops)
    return new


class Out:
    """What one chunk writes: documents per (service, collection) and events per source."""

    def __init__(self):
        self.docs: dict[tuple[str, str], list[dict]] = {}
        self.evs: list[Envelope] = []
        self.marked: set[str] = set()  # list markers (platformkit.period_lists) already written

    def doc(self, service: str, coll: str, doc: dict) -> None:
        self.docs.setdefault((service, coll), []).append(doc)

    change = doc

    def events(self, _service: str, events: list[Envelope]) -> None:
        self.evs.extend(events)

    def count(self) -> int:
        return sum(len(v) for v in self.docs.values())


def member_write(fn, unit: dict, *args, extra_ops: dict | None = None):
    """services.membership.service._member_write's decision: the rule's changes as `$set` plus the
    service's extra operators, and its events."""
    def decide(current: dict):
        changes, events = fn(current, unit, *args)
        return ({"$set": changes, **(extra_ops or {})}, events) if events else None
    return decide


# ---------------------------------------------------------------------------- the province
@dataclasses.dataclass
class Plan:
    seed: int = 7
    members: int = 2_500_000
    cdcs: int = 22_000
    communes: int = 150
    chunk: int = 1000
    dues: float = 1.5

    def key(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def chunks(self) -> int:
        return -(-self.members // self.chunk)


class Loader:
    def __init__(self, plan: Plan):
        from services.membership import domain as mdomain
        from services.training import domain as tdomain
        from services.welfare import domain as wdomain
        self.m, self.t, self.w = mdomain, tdomain, wdomain
        self.plan = plan
        self.today = date(YEAR, 12, 31)
        self._on = date(YEAR, 1, 2)
        self.units: dict[str, dict] = {}  # public state of every unit (members need their CĐCS)
        self.cdcs: list[str] = []
        self.course: dict | None = None
        self._hierarchy(Out(), keep=False)  # deterministic: rebuilt in memory, written by chunk -1 only

    def on(self) -> date:
        return self._on

    # ------------------------------------------------------------ chunk -1: hierarchy and catalogue
    def _hierarchy(self, out: Out, keep: bool = True) -> None:
        rng = random.Random(f"{self.plan.seed}:hierarchy")
        units = Sim(out, "membership", "units", self.on)
        eff = date(YEAR - 2, 6, 1)
        self._on = date(YEAR, 1, 2)

        def make(code: str, parent: str | None, kind: str, level: int, name: str, sector=None, founding=None):
            cmd = {"kind": kind, "level": level, "code": code, "name": name, "sector": sector,
                   "effective_date": eff, "founding": founding}
            doc, events = self.m.new_unit(unit_id(code), cmd, self.units.get(parent) if parent else None)
            whole = units.create(doc, events, None, version=len(events))
            units.save(whole)
            self.units[whole["_id"]] = public_state(whole)
            return whole["_id"]

        vn = make("VN", None, "central", 1, "Tổng Liên đoàn Lao động Việt Nam")
        prov = make(CODE, vn, "province", 2, f"LĐLĐ {CODE}")
        self.province = prov
        communes = [make(f"{CODE}-X{c:03d}", prov, "commune", 3, f"Công đoàn phường {c + 1}")
                    for c in range(self.plan.communes)]
        sectors = ["non_state", "non_state", "non_state", "public_admin", "public_admin", "state_enterprise",
                   "cooperative", "informal"]
        self.cdcs = []
        for s in range(self.plan.cdcs):
            founded = eff if s % 5 else day(rng.random() * 0.5)
            founding = {"method": "new_method" if rng.random() < 0.3 else "standard", "founding_member_count": 7,
                        "founding_group": ["Nguyễn Văn An", "Trần Thị Lan", "Lê Minh Đức"],
                        "decision_no": f"{s}/QĐ", "decision_date": founded}
            self.cdcs.append(make(f"{CODE}-X{s % self.plan.communes:03d}-S{s:05d}", communes[s % self.plan.communes],
                                  "cdcs", 4, f"CĐCS đơn vị {s + 1}", rng.choice(sectors), founding))
        # the catalogue course classes are planned from (training)
        # owner_ancestors: training's view of the owner's ancestors (the unit's own `ancestors`)
        course, raised = self.t.register_course("course-atvsld", {
            "code": "ATVSLD", "name": "An toàn, vệ sinh lao động", "topic": "osh",
            "audience": "part_time_officials", "format": "in_person", "duration_days": 1,
            "min_attendance_percent": 80, "owner_unit_id": prov}, self.units[prov]["ancestors"])
        from services.training.stores import course_index_fields
        courses = Sim(out, "training", "courses", self.on, course_index_fields)
        whole = courses.create(course, lambda v: self._t_env(course["_id"], v, raised))
        courses.save(whole)
        self.course = public_state(whole)
        if keep:
            for svc in ("training", "welfare"):
                for u in self.units.values():
                    out.doc(svc, "view_units", {"_id": u["_id"], "name": u["name"], "code": u["code"],
                                                "kind": u["kind"], "level": u["level"], "sector": u["sector"],
                                                "parent_id": u["parent_id"], "ancestors": u["ancestors"],
                                                "status": "active", "v": u["version"]})

    def hierarchy_out(self) -> Out:
        out = Out()
        self.units.clear()
        self._hierarchy(out, keep=True)
        return out

    def _t_env(self, subject: str, version: int, raised) -> list[Envelope]:
        return [new_event("training", r.type, subject, r.data, version) for r in raised]

    def _w_env(self, subject: str, version: int, raised) -> list[Envelope]:
        return [new_event(self.w.SOURCE, r.type, subject, r.data, version) for r in raised]

    # ------------------------------------------------------------ chunk k: members and their business
    def chunk(self, k: int) -> Out:
        plan, m, t, w = self.plan, self.m, self.t, self.w
        rng = random.Random(f"{plan.seed}:chunk:{k}")
        out = Out()
        members = Sim(out, "membership", "members", self.on)
        dues = Sim(out, "membership", "dues", self.on)
        from services.training.stores import class_index_fields
        from services.welfare.stores import case_fields, scope_of
        cases = Sim(out, "welfare", "cases", self.on, case_fields)
        programmes = Sim(out, "welfare", "programmes", self.on, lambda state: {"scope": scope_of(state)})
        classes = Sim(out, "training", "classes", self.on, class_index_fields)
        prov = self.units[self.province]
        officials: list[tuple[dict, dict]] = []
        progs: dict[str, dict] = {}
        ledger_tail: dict[str, tuple[int, int]] = {}
        first, last = k * plan.chunk, min((k + 1) * plan.chunk, plan.members)
        for i in range(first, last):
            admitted_on = day(i / max(plan.members, 1))
            self._on = admitted_on
            unit = self.units[self.cdcs[rng.randrange(len(self.cdcs))]]
            name, gender = person(rng)
            born = date(rng.randrange(1965, 2004), rng.randrange(1, 13), rng.randrange(1, 29))
            mid = member_id(i)
            cmd = {"full_name": name, "gender": gender, "citizen_id": f"{plan.seed % 100:02d}{i:010d}",
                   "date_of_birth": born, "admitted_on": admitted_on, "is_official": rng.random() < 0.06,
                   "phone": None, "employer": None, "method": "individual"}
            doc, events = m.admit(mid, cmd, unit, self.today)
            whole = members.create(doc, events)
            if rng.random() < 0.85:
                whole = members.command(whole, member_write(m.approve, unit, unit["parent_id"], admitted_on))
            leave_on = None
            if whole["status"] == "active" and rng.random() < 0.03:
                leave_on = min(admitted_on + timedelta(days=rng.randrange(20, 200)), date(YEAR, 11, 25))
            # dues months while active (before the month of leaving)
            if whole["status"] == "active":
                n = int(plan.dues) + (rng.random() < plan.dues % 1)
                month = date(admitted_on.year, admitted_on.month, 1)
                for _ in range(n):
                    if month.year > YEAR or month > date(YEAR, 11, 1) or (leave_on and month >= leave_on.replace(day=1)):
                        break
                    self._on = max(month, admitted_on)
                    salary = rng.choice([5_000_000, 7_000_000, 9_000_000, 12_000_000])
                    paid_full = rng.random() < 0.9
                    due, _, _ = m.dues_due(month, salary, False, 0)
                    ddoc, devents = m.record_dues(public_state(whole), unit, month, salary,
                                                  due if paid_full else 0, False, 0, None)
                    dues.save(dues.create(ddoc, devents))
                    month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
            # welfare: a case for some active members
            if whole["status"] == "active" and rng.random() < 0.06:
                kind = rng.choice(WELFARE_KINDS)
                self._case(k, i, rng, whole, unit, kind, admitted_on, cases, programmes, progs, ledger_tail, out)
            if whole["status"] == "active" and whole["is_official"]:
                officials.append((whole, unit))
            if leave_on:
                self._on = leave_on
                reason = rng.choice(m.LEAVE_REASONS)
                whole = members.command(whole, member_write(m.leave, unit, reason, leave_on, extra_ops={
                    "$unset": {"active_citizen_id": ""},
                    "$push": {"history": {"change": "left", "on": leave_on.isoformat(), "reason": reason}}}))
            members.save(whole)
            for svc in ("training", "welfare"):  # their membership views, as apply_event leaves them
                out.doc(svc, "view_members", {"_id": mid, "unit_id": unit["_id"], "full_name": whole["full_name"],
                                              "gender": whole["gender"], "is_official": bool(whole["is_official"]),
                                              "status": whole["status"], "v": whole["version"]})
        for p in progs.values():
            programmes.save(p)
        if officials:
            self._class(k, officials[:t.MAX_CAPACITY], day(last / max(plan.members, 1)), classes, prov)
        return out

    def _case(self, k, i, rng, member, unit, kind, on, cases, programmes, progs, ledger_tail, out) -> None:
        w = self.w
        prov = self.units[self.province]
        pid = f"prg-{k:06d}-{kind}"
        if pid not in progs:
            owner = w.Unit(unit_id=prov["_id"], ancestors=prov["ancestors"], kind=prov["kind"], level=prov["level"])
            cmd = w.NewProgramme(name=f"{kind} {YEAR} ({k})", kind=kind, year=YEAR, budget=10 ** 12,
                                 funding_sources=["union_fund"], description="")
            state, events = w.create_programme(pid, owner, cmd)
            state["created_at"] = f"{YEAR}-01-02T02:00:00+00:00"
            progs[pid] = programmes.create(state, self._w_env(pid, 1, events), {})
        programme = public_state(progs[pid])
        seq, reserved = ledger_tail.get(pid, (0, 0))
        amount = AMOUNTS[kind]
        body = {"programme_id": pid, "member_id": member["_id"], "hardship_type": HARDSHIP[kind], "amount": amount,
                "form": "cash", "funding": [{"source": "union_fund", "amount": amount}], "requested_on": on.isoformat()}
        if kind == "micro_loan":
            body["loan"] = {"term_months": 10}
        cmd = w.NewCase(programme_id=pid, member_id=member["_id"], hardship_type=body["hardship_type"],
                        amount=amount, form="cash", funding=[w.FundingShare("union_fund", amount)],
                        requested_on=on, note="", loan_term_months=10 if kind == "micro_loan" else None)
        case_id = f"case-{i:016x}"
        wm = w.Member(member_id=member["_id"], unit_id=unit["_id"], status=member["status"],
                      full_name=member["full_name"])
        wu = w.Unit(unit_id=unit["_id"], ancestors=unit["ancestors"], kind=unit["kind"], level=unit["level"])
        state, events = w.request_case(case_id, w.with_budget_position(programme, reserved), wm, wu, cmd)
        state.update(requested_by=LOADER, requested_by_unit_id=unit["_id"])
        self._on = on
        whole = cases.create(state, self._w_env(case_id, 1, events),
                             {"request_fingerprint": idempotency.fingerprint_of(body)})
        commune = self.units[unit["parent_id"]]
        approver = w.Approver(unit_id=commune["_id"], level=commune["level"], subject=LOADER, kind=commune["kind"])
        at = f"{on.isoformat()}T02:00:00.000+00:00"
        # approve_case: the decision claim, the budget-ledger entry, then the change
        out.doc("welfare", "claims", {"_id": f"decision:{case_id}", "decision": "approved", "unit_id": commune["_id"],
                                      "owner": uuid.uuid5(NAMESPACE, f"decision:{case_id}").hex, "at": 0.0})
        out.doc("welfare", "budget_ledger", {
            "_id": f"{pid}#{seq + 1:010d}", "programme_id": pid, "seq": seq + 1, "entry_key": f"reserve:{case_id}",
            "case_id": case_id, "delta": amount, "reserved": reserved + amount, "budget": programme["budget"],
            "at": at})
        ledger_tail[pid] = (seq + 1, reserved + amount)

        def step(fn):
            def decide(cur):
                new, raised = fn(cur)
                changes = {k2: v for k2, v in new.items() if k2 not in ("_id", "version", "seq") and cur.get(k2) != v}
                return {"$set": changes}, self._w_env(case_id, cur["version"] + 1, raised)
            return decide
        whole = cases.command(whole, step(lambda c: w.approve_case(c, approver, on)))
        out.doc("welfare", "claims", {"_id": f"disbursement:{case_id}", "key": None,
                                      "owner": uuid.uuid5(NAMESPACE, f"disbursement:{case_id}").hex, "at": 0.0})
        whole = cases.command(whole, step(lambda c: w.disburse_case(c, on, commune["_id"], None)))
        cases.save(whole)
        # the case list's periods (welfare.stores.mark_case); a chunk writes each once
        from services.welfare.stores import case_markers
        for marker in case_markers(whole):
            if marker["_id"] not in out.marked:
                out.marked.add(marker["_id"])
                out.doc("welfare", period_lists.MARKERS, marker)

    def _class(self, k: int, officials: list[tuple[dict, dict]], on: date, classes: Sim, prov: dict) -> None:
        t = self.t
        self._on = on
        class_id = f"class-{k:06d}"
        cls, raised = t.plan_class(class_id, {"code": f"L{k:06d}", "name": None, "format": "in_person",
                                              "organising_unit_id": prov["_id"], "location": "Hội trường LĐLĐ",
                                              "start_date": on, "capacity": t.MAX_CAPACITY},
                                   self.course, prov["ancestors"])
        whole = classes.create(cls, lambda v: self._t_env(class_id, v, raised))

        def do(fn):
            nonlocal whole
            from services.training.stores import class_index_fields, diff, to_ops

            def decide(cur):
                new, evs = fn(cur)
                new = {**new, **class_index_fields(new)}  # as the Repository derives them (`derived`)
                return to_ops(diff(cur, new, "enrolments"), "enrolments"), self._t_env(class_id, cur["version"] + 1, evs)
            whole = classes.command(whole, decide)
        do(t.open_class)
        for member, unit in officials:
            view = {"_id": member["_id"], "unit_id": unit["_id"], "full_name": member["full_name"],
                    "gender": member["gender"], "is_official": True, "status": "active"}
            do(lambda c, view=view, unit=unit: t.enrol(c, view, unit["ancestors"], view["_id"], on))
        do(t.start_class)
        do(lambda c: t.record_attendance(c, on, [m["_id"] for m, _ in officials]))
        for member, _ in officials:
            do(lambda c, mid=member["_id"]: t.assess_completion(c, mid, 8, on))
        do(lambda c: t.close_class(c, on))
        classes.save(whole)
        from services.training.stores import class_markers
        for marker in class_markers(whole):
            if marker["_id"] not in classes.out.marked:  # the class list's periods (training.stores.mark_class)
                classes.out.marked.add(marker["_id"])
                classes.out.doc("training", period_lists.MARKERS, marker)


# ---------------------------------------------------------------------------- writing
def insert_all(db, coll: str, docs: list[dict], batch: int) -> int:
    """insert_many in batches, unordered; documents already there (a rerun) are skipped."""
    new = 0
    for s in range(0, len(docs), batch):
        part = docs[s:s + batch]
        new += len(part) - len(mongo.insert_new(db[coll], part))
    return new


class Publisher:
    def __init__(self):
        from kafka import KafkaProducer
        from kafka.partitioner.default import murmur2
        contract.ensure(contract.REPORTING_SOURCES)
        self.murmur2 = murmur2
        self.producer = KafkaProducer(bootstrap_servers=config.kafka_bootstrap(), acks="all", enable_idempotence=True,
                                      linger_ms=20, batch_size=512 * 1024, max_in_flight_requests_per_connection=5,
                                      max_request_size=16 * 1024 * 1024, request_timeout_ms=60000)
        self.topics = {s: config.topic(f"{s}.events") for s in ("membership", "training", "welfare")}
        self.parts = {}
        for t in self.topics.values():
            while not self.producer.partitions_for(t):
                time.sleep(0.1)
            self.parts[t] = len(self.producer.partitions_for(t))

    def publish(self, events: list[Envelope]) -> None:
        errors: list[BaseException] = []
        for e in events:
            topic = self.topics[e.source]
            key = e.subject.encode("utf-8")
            part = (self.murmur2(key) & 0x7FFFFFFF) % self.parts[topic]
            self.producer.send(topic, key=key, value=encode(e), partition=part).add_errback(errors.append)
        self.producer.flush(300)
        if errors:
            raise RuntimeError(f"publishing failed: {errors[0]!r}")

    def close(self):
        self.producer.close(timeout=60)


def commit_view_groups() -> None:
    """The training and welfare membership-view groups start at the end of the membership topic:
    the loader wrote their views directly."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    topic = config.topic(contract.MEMBERSHIP_EVENTS)
    for g in (contract.TRAINING_MEMBERSHIP_VIEW, contract.WELFARE_MEMBERSHIP_VIEW):
        c = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=contract.group(g),
                          enable_auto_commit=False)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
            ends = c.end_offsets(tps)
            c.commit({tp: OffsetAndMetadata(off, None) for tp, off in ends.items()})
        finally:
            c.close()


def prepare_stores() -> None:
    """The services' indexes, as each process start makes them (Mongo indexes, then store_prep)."""
    from platformkit.run import describe
    for svc in ("membership", "training", "welfare"):
        t = time.monotonic()
        describe(svc).prepare()
        print(f"load: indexes of {svc} in {time.monotonic() - t:,.1f}s", flush=True)


def checkpoint(plan: Plan) -> dict | None:
    return mongo.database("membership")[CHECKPOINT].find_one({"_id": "province"})


def load(plan: Plan, *, batch: int = 250, writers: int = 8, publish: bool = True, prepare: bool = True,
         log_every: float = 5.0, out=sys.stdout) -> dict:
    """Load (or finish loading) the province; returns the checkpoint document."""
    mdb = mongo.database("membership")
    cp = mdb[CHECKPOINT].find_one({"_id": "province"})
    if cp is not None and cp["plan"] != plan.key():
        raise SystemExit(f"this database holds another province {cp['plan']}; use another DB_PREFIX")
    if cp is not None and cp.get("done"):
        print(f"load: already loaded ({cp['plan']}), nothing to do", file=out, flush=True)
        return cp
    if cp is None:
        cp = {"_id": "province", "plan": plan.key(), "next_chunk": -1, "done": False, "documents": 0, "events": 0,
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        mdb[CHECKPOINT].insert_one(cp)
    dbs = {s: mongo.database(s) for s in ("membership", "training", "welfare")}
    loader = Loader(plan)
    pub = Publisher() if publish else None
    started = last = time.monotonic()
    first_chunk = cp["next_chunk"]
    totals = {"documents": 0, "events": 0}
    # One writer thread publishes and inserts chunk k while this thread builds chunk k+1 (the
    # writing is mostly waiting for FerretDB and the broker); chunks are written, and the
    # checkpoint advanced, strictly in order.
    # The inserts of a chunk go out on `writers` connections at once: FerretDB inserts one batch on
    # one PostgreSQL connection, so one connection keeps one core busy at most (measured on 5,000
    # members: 1 connection 843 members/s, 8 connections of 250-document batches 2,113).
    pool = ThreadPoolExecutor(writers, thread_name_prefix="load-insert")
    todo: queue.Queue = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def writer():
        nonlocal last
        while True:
            item = todo.get()
            if item is None:
                return
            k, o = item
            try:
                if pub is not None:
                    pub.publish(o.evs)
                jobs = [pool.submit(insert_all, dbs[svc], coll, docs[s:s + batch], batch)
                        for (svc, coll), docs in o.docs.items() for s in range(0, len(docs), batch)]
                for j in jobs:
                    j.result()
                mdb[CHECKPOINT].update_one({"_id": "province"}, {"$set": {"next_chunk": k + 1},
                                                                 "$inc": {"documents": o.count(), "events": len(o.evs)}})
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                failed.append(exc)
                return
            totals["documents"] += o.count()
            totals["events"] += len(o.evs)
            now = time.monotonic()
            if now - last >= log_every or k == plan.chunks - 1:
                last = now
                done_m = min((k + 1) * plan.chunk, plan.members)
                first_m = max(first_chunk, 0) * plan.chunk
                rate = (done_m - first_m) / max(now - started, 1e-6)
                eta = (plan.members - done_m) / rate if rate else 0
                print(f"load: {done_m:,}/{plan.members:,} members, {totals['documents']:,} documents, "
                      f"{totals['events']:,} events in {now - started:,.0f}s: {rate:,.0f} members/s, "
                      f"{totals['documents'] / (now - started):,.0f} documents/s, ETA {eta / 60:,.1f} min",
                      file=out, flush=True)

    thread = threading.Thread(target=writer, name="load-writer", daemon=True)
    thread.start()
    try:
        for k in range(first_chunk, plan.chunks):
            o = loader.hierarchy_out() if k < 0 else loader.chunk(k)
            while not failed:
                try:
                    todo.put((k, o), timeout=1)
                    break
                except queue.Full:
                    continue
            if failed:
                break
    finally:
        while thread.is_alive():
            try:
                todo.put(None, timeout=1)
                break
            except queue.Full:
                continue
        thread.join()
        pool.shutdown()
        if pub is not None:
            pub.close()
    if failed:
        raise RuntimeError(f"loading failed (rerun to continue from the checkpoint): {failed[0]!r}") from failed[0]
    elapsed = time.monotonic() - started
    if prepare:
        prepare_stores()
    if publish:
        commit_view_groups()
    mdb[CHECKPOINT].update_one({"_id": "province"}, {"$set": {
        "done": True, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_seconds": round(elapsed, 1)}})
    cp = mdb[CHECKPOINT].find_one({"_id": "province"})
    print(f"load: done: {cp['documents']:,} documents, {cp['events']:,} events; this run {elapsed:,.1f}s",
          file=out, flush=True)
    return cp


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=2_500_000)
    p.add_argument("--cdcs", type=int, default=22_000)
    p.add_argument("--communes", type=int, default=150)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--chunk", type=int, default=1000, help="members per chunk (checkpoint step)")
    p.add_argument("--dues", type=float, default=1.5, help="mean dues months recorded per active member")
    p.add_argument("--batch", type=int, default=250, help="documents per insert_many")
    p.add_argument("--writers", type=int, default=8, help="insert_many commands in flight")
    p.add_argument("--no-prepare", action="store_true", help="skip the indexes at the end")
    a = p.parse_args(argv)
    load(Plan(seed=a.seed, members=a.members, cdcs=a.cdcs, communes=a.communes, chunk=a.chunk, dues=a.dues),
         batch=a.batch, writers=a.writers, prepare=not a.no_prepare)


if __name__ == "__main__":
    main()

"""Welfare handlers: load aggregates, check the caller's scope, run the domain, commit the change
with its events through the repository (platformkit/repository.py: one change document inserted
under a unique `<id>@<change number>`, the compare-and-set FerretDB honours; a lost race is decided
again on the fresh state, only a caller's stale version is a 412). Programmes and cases are never
written any other way. No business rule lives here; the few multi-step procedures (budget
reservation in an insert-only ledger, one-time step claims, idempotent retries) are about storage
without transactions, and use the same primitive: a unique insert.

Every command handler takes `(command, caller, stores)` (commands.py, stores.py); queries take
their arguments, then the caller and the stores. Scope checks happen here rather than in the views
because the unit to check (a case's CĐCS, a programme's owner) is known only once the aggregate is
loaded.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timezone
from typing import Any, Callable
from uuid import uuid4

from platformkit import clock, idempotency, membership_view, mongo, paging, period_lists
from platformkit.auth import Caller, check_scope
from platformkit.envelope import new_event
from platformkit.errors import AlreadyExists, Conflict, Forbidden, RuleViolated, StaleVersion
from platformkit.errors import NotFound as Missing
from platformkit.outbox import OUTBOX, PENDING

from . import commands as c
from . import domain
from .stores import CASES, PROGRAMMES, Stores, case_fields, case_markers, scope_of

# A claim older than this is taken to belong to a request that died half-way; a re-run finishes it.
CLAIM_LEASE_SECONDS = 30
# Internal fields never shown to callers.
HIDDEN = {OUTBOX, PENDING, "seq", "idempotency_key", "request_fingerprint", "disbursement_key", "scope",
          period_lists.FIELD}
ASCENDING, DESCENDING = 1, -1  # pymongo's sort directions, without the driver


def today() -> date:
    return clock.today()  # Vietnam's day (platformkit.clock), whatever the server's zone


def public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in HIDDEN and k != "_id"}
    out["id"] = doc["_id"]
    return out


def _envelopes(subject: str, version: int, events: list[domain.Event]):
    return [new_event(domain.SOURCE, e.type, subject, e.data, version) for e in events]


def _changes(old: dict, new: dict) -> dict[str, Any]:
    """Only the fields the command changed: a concurrent writer of other fields (the consumer
    refreshing `ancestors` after a unit move) is never overwritten with what we read."""
    return {k: v for k, v in new.items() if k not in ("_id", "version", "seq") and old.get(k) != v}


def _unit(stores: Stores, unit_id: str) -> domain.Unit | None:
    doc = stores.units.find_one({"_id": unit_id})
    if doc is None:
        return None
    return domain.Unit(unit_id=unit_id, ancestors=list(doc.get("ancestors") or []), kind=doc.get("kind"),
                       level=doc.get("level"), status=doc.get("status") or "active")


def _current_ancestors(stores: Stores, doc: dict) -> list[str]:
    """A unit may have moved since the document was written: scope follows today's tree."""
    ancestors = membership_view.unit_ancestors(stores.db, doc["unit_id"])
    return doc["ancestors"] if ancestors is None else ancestors


def _subtree(caller: Caller) -> dict[str, Any]:
    """The caller's subtree: one equality on the stored scope (stores.scope_of)."""
    return {"scope": caller.unit_id}


def _fingerprint(request: dict[str, Any]) -> str:
    return idempotency.fingerprint_of(request)


def _scoped_key(caller: Caller, key: str | None) -> str | None:
    # Keys are chosen by clients; scoping by the token's subject keeps two clients' keys apart.
    return f"{caller.subject}|{key}" if key else None


def _writer(caller: Caller) -> Caller:
    if not caller.can_write():
        raise Forbidden(f"roles {list(caller.roles)} may not change data")
    return caller


def _check_pin(doc: dict, version: int | None) -> None:
    if version is not None and version != doc["version"]:
        raise StaleVersion(f"{doc['_id']} is at version {doc['version']}, not {version};")


# ---------------------------------------------------------------- programmes

def create_programme(command: c.CreateProgramme, caller: Caller, stores: Stores) -> dict:
    """A retry with the same Idempotency-Key answers the programme the first request created (as
    created: nothing reserved yet) and creates nothing; the same key with another body is a 422
    naming the header."""
    _writer(caller)
    key = _scoped_key(caller, command.idempotency_key)
    fingerprint = _fingerprint(command.request())
    programmes = stores.programmes
    half = None  # a creation with this key its first request left half-done: finished below
    if key:
        first = programmes.created_with(key)
        if first is not None:
            if first.get("seq", 1) >= 1 or first.get("request_fingerprint") != fingerprint:
                return _replay_programme(stores, caller, first, fingerprint)
            half = first
    owner = _unit(stores, command.unit_id)
    if owner is None:
        raise RuleViolated(f"unit {command.unit_id} is unknown here (not yet received from membership)",
                           field="unit_id")
    check_scope(caller, owner.unit_id, owner.ancestors, write=True)
    new = domain.NewProgramme(name=command.name, kind=command.kind, year=command.year, budget=command.budget,
                              funding_sources=list(command.funding_sources), description=command.description)
    pid = half["_id"] if half else "prg-" + uuid4().hex
    state, events = domain.create_programme(pid, owner, new)
    state["created_at"] = half["created_at"] if half else datetime.now(timezone.utc).isoformat(timespec="seconds")
    stamp = {"idempotency_key": key, "request_fingerprint": fingerprint} if key else {}
    if half:
        programmes.finish_create(state, _envelopes(pid, 1, events))
        return _replay_programme(stores, caller, programmes.load(pid, whole=True), fingerprint)
    try:
        programmes.create(state, _envelopes(pid, 1, events), stamp)
    except AlreadyExists:
        first = programmes.created_with(key) if key else None
        if first is None:
            raise
        return _replay_programme(stores, caller, first, fingerprint)  # a racing retry inserted it first
    return public(domain.with_budget_position({**state, "version": 1}, 0))


def _replay_programme(stores: Stores, caller: Caller, first: dict, fingerprint: str) -> dict:
    if first.get("request_fingerprint") != fingerprint:
        raise RuleViolated("this Idempotency-Key was used for a different request", field="Idempotency-Key")
    check_scope(caller, first["unit_id"], _current_ancestors(stores, first), write=True)
    return public(domain.with_budget_position(first, 0))


def _load(stores: Stores, coll: str, _id: str, what: str) -> dict:
    doc = stores.repository(coll).get(_id)
    if doc is None:
        raise Missing(f"{what} {_id} not found")
    return doc


def path_scope(view_args: dict, stores: Stores) -> tuple[str, list[str]] | None:
    """The unit a request path names (a programme's or a case's), for the scope check before input
    is parsed; None when the path names nothing known (the endpoint answers 404)."""
    for key, docs in (("case_id", stores.case_docs), ("programme_id", stores.programme_docs)):
        if view_args.get(key):
            doc = docs.find_one({"_id": view_args[key]}, {"unit_id": 1, "ancestors": 1})
            return (doc["unit_id"], _current_ancestors(stores, doc)) if doc else None
    return None


def get_programme(programme_id: str, caller: Caller, stores: Stores) -> dict:
    doc = _load(stores, PROGRAMMES, programme_id, "programme")
    check_scope(caller, doc["unit_id"], _current_ancestors(stores, doc))
    return public(_programme_now(stores, doc))


PROGRAMME_ORDER = [("year", DESCENDING), ("_id", ASCENDING)]  # the latest year first
CASE_ORDER = [("requested_on", DESCENDING), ("_id", ASCENDING)]  # the newest request first


def list_programmes(args: dict[str, Any], caller: Caller, stores: Stores) -> dict:
    query: dict[str, Any] = _subtree(caller)
    for key in ("year", "kind", "unit_id"):
        if args.get(key) is not None:
            query[key] = args[key]
    docs, next_cursor = paging.page(stores.programme_docs, query, args.get("after"), args["limit"],
                                    PROGRAMME_ORDER)
    return {"items": [public(_programme_now(stores, d)) for d in docs], "next_cursor": next_cursor}


# ---------------------------------------------------------------- cases

def request_case(command: c.RequestCase, caller: Caller, stores: Stores) -> tuple[dict, bool]:
    """Returns (case, created). A retry with the same Idempotency-Key and body returns the first
    case (created=False); the same key with another body is a 409."""
    _writer(caller)
    key = _scoped_key(caller, command.idempotency_key)
    fingerprint = _fingerprint(command.request())
    cases = stores.cases
    half = None  # a creation with this key its first request left half-done: finished below
    if key:
        first = cases.created_with(key)
        if first is not None:
            if first.get("seq", 1) >= 1 or first.get("request_fingerprint") != fingerprint:
                return _replay(stores, caller, first, fingerprint), False
            half = first
    programme = stores.programmes.get(command.programme_id)
    if programme is None:
        raise RuleViolated(f"programme {command.programme_id} not found", field="programme_id")
    programme = _programme_now(stores, programme)
    view = stores.members.find_one({"_id": command.member_id})
    member = unit = None
    if view is not None:
        member = domain.Member(member_id=view["_id"], unit_id=view["unit_id"], status=view.get("status"),
                               full_name=view.get("full_name", ""))
        unit = _unit(stores, member.unit_id)
        # the beneficiary's unit decides whose case this is: the caller must cover it
        check_scope(caller, member.unit_id, unit.ancestors if unit else [], write=True)
    new = domain.NewCase(
        programme_id=command.programme_id, member_id=command.member_id, hardship_type=command.hardship_type,
        amount=command.amount, form=command.form,
        funding=[domain.FundingShare(f.source, f.amount) for f in command.funding],
        requested_on=command.requested_on or today(), note=command.note,
        loan_term_months=command.loan_term_months)
    case_id = half["_id"] if half else "case-" + uuid4().hex
    state, events = domain.request_case(case_id, programme, member, unit, new)
    state.update(requested_by=caller.subject, requested_by_unit_id=caller.unit_id)
    stamp = {"request_fingerprint": fingerprint, **({"idempotency_key": key} if key else {})}
    if half:
        cases.finish_create(state, _envelopes(case_id, 1, events))
        return _replay(stores, caller, cases.load(case_id, whole=True), fingerprint), True
    try:
        cases.create(state, _envelopes(case_id, 1, events), stamp)
    except AlreadyExists:
        first = cases.created_with(key) if key else None
        if first is None:
            raise
        return _replay(stores, caller, first, fingerprint), False  # a racing retry inserted it first
    return public({**state, "version": 1}), True


def _replay(stores: Stores, caller: Caller, first: dict, fingerprint: str) -> dict:
    check_scope(caller, first["unit_id"], _current_ancestors(stores, first), write=True)
    if first.get("request_fingerprint") != fingerprint:
        raise Conflict("this Idempotency-Key was used for a different request", field="Idempotency-Key")
    return public(first)


def get_case(case_id: str, caller: Caller, stores: Stores) -> dict:
    doc = _load(stores, CASES, case_id, "case")
    check_scope(caller, doc["unit_id"], _current_ancestors(stores, doc))
    return public(doc)


def list_cases(args: dict[str, Any], caller: Caller, stores: Stores) -> dict:
    """The caller's subtree's cases, newest request first. One member's or one CĐCS's cases are few:
    read by that equality. Any other list (a province's, all its Tết gifts) is read a period at a
    time (platformkit/period_lists.py), so that a page reads about a page of cases."""
    query: dict[str, Any] = {}
    for key in ("programme_id", "status", "member_id", "unit_id", "programme_kind"):
        if args.get(key) is not None:
            query[key] = args[key]
    if "member_id" in query or "unit_id" in query:
        docs, next_cursor = paging.page(stores.case_docs, {**_subtree(caller), **query}, args.get("after"),
                                        args["limit"], CASE_ORDER)
    else:
        docs, next_cursor = period_lists.page(stores.case_docs, stores.db, CASES, query, caller.unit_id,
                                              "requested_on", args.get("after"), args["limit"])
    return {"items": [public(d) for d in docs], "next_cursor": next_cursor}


def _save_case(stores: Stores, case_id: str, version: int | None, step) -> dict:
    """Commit `step(current case)` -> (new case, domain events) through the repository; on a
    lost race the step runs again on the case as it is now (the caller's version, if sent, must
    still be current)."""
    def decide(current: dict):
        new, events = step(current)
        changes = _changes(current, new)
        if not changes and not events:
            return None
        return {"$set": changes}, _envelopes(case_id, current["version"] + 1, events)
    return stores.cases.command(case_id, decide, expected_version=version)


def _approver(stores: Stores, caller: Caller, case: dict) -> domain.Approver:
    unit = _unit(stores, caller.unit_id)
    level = unit.level if unit and unit.level is not None else None
    if level is None and caller.unit_id in case["ancestors"]:
        level = case["ancestors"].index(caller.unit_id) + 1  # root is level 1 (central)
    return domain.Approver(unit_id=caller.unit_id, level=level, subject=caller.subject,
                           kind=unit.kind if unit else None)


def _load_case_in_scope(stores: Stores, caller: Caller, case_id: str, write: bool = True) -> dict:
    case = _load(stores, CASES, case_id, "case")
    ancestors = _current_ancestors(stores, case)
    check_scope(caller, case["unit_id"], ancestors, write=write)
    return {**case, "ancestors": ancestors}


def _reserved(stores: Stores, programme_id: str) -> tuple[int, int]:
    """(sequence number, reserved total) at the tail of a programme's budget ledger."""
    tail = stores.ledger.find_one({"programme_id": programme_id}, sort=[("seq", DESCENDING)])
    return (tail["seq"], tail["reserved"]) if tail else (0, 0)


def _programme_now(stores: Stores, programme: dict) -> dict:
    return domain.with_budget_position(programme, _reserved(stores, programme["_id"])[1])


def reserve_disbursement(case: dict, stores: Stores) -> None:
    """Take the case's amount out of its programme's budget, at most once per case.

    Why a ledger and not `update_one({remaining: {$gte: amount}}, {$inc: ...})`: FerretDB 1.24
    (SQLite) reads, modifies and rewrites a document without holding it, so racing conditional
    updates all "succeed" and overspend (measured: 10 of 10). A unique insert is atomic there as in
    MongoDB: each reservation appends entry `seq + 1` after the tail it read, carrying the new
    total; two appends after the same tail collide on `_id` and the loser reads the tail again.
    `entry_key` makes a re-run after a crash find its reservation instead of taking it twice."""
    key = f"reserve:{case['_id']}"
    programme = stores.programme_docs.find_one({"_id": case["programme_id"]})
    if programme is None:
        raise RuleViolated(f"programme {case['programme_id']} not found", field="programme_id")
    for _ in range(200):
        if stores.ledger.find_one({"entry_key": key}, {"_id": 1}):
            return  # reserved by an earlier attempt that did not finish: just finish now
        seq, reserved = _reserved(stores, programme["_id"])
        domain.check_budget(domain.with_budget_position(programme, reserved), case["amount"])
        if stores.insert_new(stores.ledger, {
                "_id": f"{programme['_id']}#{seq + 1:010d}", "programme_id": programme["_id"], "seq": seq + 1,
                "entry_key": key, "case_id": case["_id"], "delta": case["amount"],
                "reserved": reserved + case["amount"], "budget": programme["budget"],
                "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}):
            return
        # another reservation landed after the tail we read: read it again
    raise Conflict("the programme's budget is busy; retry", field="programme_id")


def _claim(stores: Stores, claim_id: str, facts: dict[str, Any]) -> tuple[dict, bool]:
    """Take the one-time right to do a step on a case (decide it, pay it, record repayment n).
    Same reason as the ledger: a unique insert is the only write FerretDB applies atomically, so two
    racing commands cannot both decide the case and both go on to reserve or pay.
    Returns (claim, taken_now). A claim older than the lease belongs to a request that died after
    claiming: its re-run (same facts) may finish the step."""
    claim = {"_id": claim_id, **facts, "owner": uuid4().hex, "at": time.time()}
    if stores.insert_new(stores.claims, claim):
        return claim, True
    return stores.claims.find_one({"_id": claim_id}) or claim, False


def _stale(claim: dict) -> bool:
    return time.time() - claim["at"] > CLAIM_LEASE_SECONDS


def _decide(stores: Stores, case: dict, decision: str, caller: Caller) -> tuple[dict, bool]:
    claim, taken = _claim(stores, f"decision:{case['_id']}", {"decision": decision, "unit_id": caller.unit_id})
    if not taken and not (claim["decision"] == decision and _stale(claim)):
        raise Conflict(f"case {case['_id']} is already being {claim['decision']}", field="status")
    return claim, taken


def approve_case(command: c.ApproveCase, caller: Caller, stores: Stores) -> dict:
    case = _load_case_in_scope(stores, caller, command.case_id)
    _check_pin(case, command.version)
    on = command.approved_on or today()
    domain.approve_case(case, _approver(stores, caller, case), on)  # refused here: nothing claimed
    claim, taken = _decide(stores, case, "approved", caller)
    try:
        reserve_disbursement(case, stores)
    except (RuleViolated, Conflict):
        if taken:  # give the decision back: the budget refused it, nothing is written
            stores.claims.delete_one({"_id": claim["_id"], "owner": claim["owner"]})
        raise
    approver = _approver(stores, caller, case)
    saved = _save_case(stores, command.case_id, command.version, lambda d: domain.approve_case(d, approver, on))
    return public(saved)


def reject_case(command: c.RejectCase, caller: Caller, stores: Stores) -> dict:
    case = _load_case_in_scope(stores, caller, command.case_id)
    _check_pin(case, command.version)
    on = command.rejected_on or today()
    domain.reject_case(case, _approver(stores, caller, case), command.reason, on)  # refused: nothing claimed
    _decide(stores, case, "rejected", caller)
    approver = _approver(stores, caller, case)
    saved = _save_case(stores, command.case_id, command.version,
                       lambda d: domain.reject_case(d, approver, command.reason, on))
    return public(saved)


def disburse_case(command: c.DisburseCase, caller: Caller, stores: Stores) -> tuple[dict, bool]:
    """Returns (case, paid_now). A retry with the same key returns the disbursed case (False)."""
    case_id = command.case_id
    case = _load_case_in_scope(stores, caller, case_id)
    key = _scoped_key(caller, command.idempotency_key)
    if key and case["status"] == "disbursed" and case.get("disbursement_key") == key:
        return public(case), False
    _check_pin(case, command.version)
    on = command.disbursed_on or today()
    domain.disburse_case(case, on, caller.unit_id, key)  # refused here: nothing claimed
    claim, taken = _claim(stores, f"disbursement:{case_id}", {"key": key})
    if not taken and not (claim.get("key") == key and _stale(claim)):
        raise Conflict(f"case {case_id} is already being disbursed", field="status")
    # another case paid with it (compared here, not by `$ne` in the query: hot queries are equalities)
    if key and any(d["_id"] != case_id for d in stores.case_docs.find({"disbursement_key": key}, {"_id": 1})):
        # checked before committing: the copy's unique index would refuse the paid case
        raise Conflict("this Idempotency-Key already paid another case", field="Idempotency-Key")
    saved = _save_case(stores, case_id, command.version, lambda d: domain.disburse_case(d, on, caller.unit_id, key))
    return public(saved), True


# ---------------------------------------------------------------- loans

def _loan_case(stores: Stores, caller: Caller, case_id: str, write: bool) -> dict:
    case = _load_case_in_scope(stores, caller, case_id, write=write)
    if not case.get("loan"):
        raise Missing(f"case {case_id} is not a micro-loan")
    return case


def loan_view(case: dict, as_of: date) -> dict:
    base = {"id": case["_id"], "case_id": case["_id"], "programme_id": case["programme_id"],
            "member_id": case["member_id"], "unit_id": case["unit_id"], "case_status": case["status"],
            "version": case["version"], "principal": case["loan"]["principal"],
            "term_months": case["loan"]["term_months"]}
    if case["status"] != "disbursed":
        return {**base, "as_of": as_of.isoformat(), "status": "not_disbursed", "repaid_total": 0,
                "outstanding": 0, "due_to_date": 0, "overdue_amount": 0, "days_overdue": 0,
                "instalments": [], "repayments": []}
    pos = domain.loan_position(case["loan"], as_of)
    repayments = [{k: v for k, v in r.items() if k != "key"} for r in case["loan"]["repayments"]]
    return {**base, **pos.__dict__, "disbursed_on": case["loan"]["disbursed_on"], "repayments": repayments}


def get_loan(case_id: str, as_of: date | None, caller: Caller, stores: Stores) -> dict:
    case = _loan_case(stores, caller, case_id, write=False)
    return loan_view(case, as_of or today())


def list_loans(args: dict[str, Any], caller: Caller, stores: Stores) -> dict:
    query: dict[str, Any] = {**_subtree(caller), "programme_kind": "micro_loan", "status": "disbursed"}
    for key in ("programme_id", "member_id", "unit_id"):
        if args.get(key) is not None:
            query[key] = args[key]
    as_of = args.get("as_of") or today()
    docs, next_cursor = paging.page(stores.case_docs, query, args.get("after"), args["limit"])
    items = [loan_view(d, as_of) for d in docs]
    if args.get("status"):
        # computed as of a date, so filtered after reading the page (the page may come back shorter)
        items = [i for i in items if i["status"] == args["status"]]
    for item in items:
        item.pop("instalments", None)
    return {"items": items, "next_cursor": next_cursor}


def record_repayment(command: c.RecordRepayment, caller: Caller, stores: Stores) -> tuple[dict, bool]:
    """Repayment n of a loan is claimed before it is written, so two racing repayments cannot both
    become number n (the second reads the loan again and becomes n + 1)."""
    case_id, amount = command.case_id, command.amount
    paid_on = command.paid_on or today()
    key = _scoped_key(caller, command.idempotency_key)
    for _ in range(100):
        case = _loan_case(stores, caller, case_id, write=True)
        repayments = (case["loan"].get("repayments") or []) if case["status"] == "disbursed" else []
        if key:
            for r in repayments:
                if r.get("key") == key:
                    if (r["amount"], r["paid_on"]) != (amount, paid_on.isoformat()):
                        raise Conflict("this Idempotency-Key was used for a different repayment",
                                       field="Idempotency-Key")
                    return loan_view(case, paid_on), False
        _check_pin(case, command.version)
        domain.repay_loan(case, amount, paid_on, key)  # refused here: nothing claimed
        seq = len(repayments) + 1
        claim, taken = _claim(stores, f"repayment:{case_id}:{seq}", {"amount": amount, "key": key,
                                                                     "paid_on": paid_on.isoformat()})
        if not taken:
            if _stale(claim):  # its request died after claiming: record that repayment, then ours
                _save_case(stores, case_id, None, lambda d: domain.repay_loan(
                    d, claim["amount"], date.fromisoformat(claim["paid_on"]), claim["key"])
                    if len(d["loan"].get("repayments") or []) < seq else (d, []))
            else:
                time.sleep(0.02)  # repayment `seq` is being written by someone else
            continue
        saved = _save_case(stores, case_id, command.version, lambda d: domain.repay_loan(d, amount, paid_on, key))
        return loan_view(saved, paid_on), True
    raise Conflict("the loan is busy; retry", field="loan")


# ---------------------------------------------------------------- consumer side

def backfill_scope(stores: Stores) -> int:
    """Give programmes and cases stored before `scope` existed their scope (stores.scope_of), once
    (mongo.run_once): a repository change each that keeps `version` (upkeep). New documents get it
    at creation, moved ones with their new ancestors (the repository's `derived`, stores.py). Runs at start
    (description.py), before the lists are served."""
    def work() -> int:
        n = 0
        for docs, store in ((stores.programme_docs, stores.programmes), (stores.case_docs, stores.cases)):
            for doc in list(docs.find({}, {"_id": 1, "unit_id": 1, "ancestors": 1, "scope": 1})):
                if "unit_id" not in doc or doc.get("scope") == scope_of(doc):
                    continue
                store.command(doc["_id"], lambda d: None if d.get("scope") == scope_of(d)
                              else ({"$set": {"scope": scope_of(d)}}, []), bump=False)
                n += 1
        return n
    return mongo.run_once(stores.db, "scope", work)


def backfill_case_periods(stores: Stores, progress: Callable[[int, int], None] | None = None) -> int:
    """Cases stored before `scope_periods` existed get their periods and markers, once
    (period_lists.backfill). Runs at start (description.py) or as the `prepare` job, before the
    lists are served; `progress(done, total)` every 5,000 cases (129,280 at 2.5M members)."""
    return period_lists.backfill(stores.cases, CASES, case_fields, case_markers,
                                 {"_id": 1, "unit_id": 1, "ancestors": 1, "requested_on": 1}, progress, 5_000)


def follow_unit_move(command: c.FollowUnitMove, stores: Stores) -> None:
    """After `membership.unit.moved`, programmes and cases of the moved unit and of every unit
    below it take the units' new ancestors from the view (already rewritten), so subtree lists and
    scope follow the new tree. Derived from the view: idempotent under redelivery. Each rewrite is
    a repository change that keeps `version` (upkeep: it makes no caller's version stale). No
    caller: the membership consumer runs it."""
    units = [command.unit_id] + [d["_id"] for d in stores.units.find({"ancestors": command.unit_id}, {"_id": 1})]
    for unit_id in units:
        ancestors = membership_view.unit_ancestors(stores.db, unit_id)
        if ancestors is None:
            continue
        for docs, store in ((stores.programme_docs, stores.programmes), (stores.case_docs, stores.cases)):
            for doc in list(docs.find({"unit_id": unit_id}, {"_id": 1, "ancestors": 1})):
                if doc.get("ancestors") != ancestors:
                    store.command(doc["_id"], lambda d, a=ancestors: None if d.get("ancestors") == a
                                  else ({"$set": {"ancestors": a}}, []), bump=False)

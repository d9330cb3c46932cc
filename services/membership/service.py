"""Membership service layer: load what a command needs, check the caller's scope, call the rules
in domain.py, and save each change through the repository (platformkit/repository.py): ONE change
document carrying its events, inserted under a unique `<id>@<change number>` (the compare-and-set
that FerretDB honours). A command whose caller sent no version that loses a race decides again on
the fresh state; only a caller's stale version is a 412. Units, members and dues are never written
any other way (the path rewrites after a move included)."""
from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from datetime import date
from typing import Any, Callable

from pymongo import ASCENDING
from pymongo.database import Database

from platformkit import clock, idempotency, mongo, paging, permissions
from platformkit.auth import PLATFORM_SCOPE, Caller, Forbidden, check_scope
from platformkit.errors import AlreadyExists, Conflict, InvalidInput, RuleViolated, StaleVersion, TooLarge
from platformkit.errors import NotFound as Missing
from platformkit.repository import Repository, next_number

from . import batch, domain

SERVICE = "membership"
# The Idempotency-Key of the POST that created a unit or a member (caller-scoped, see
# _idempotency_key) is stored with the document it created, under a unique index: two racing
# retries cannot both insert. Sparse: most documents have none (a unique non-sparse index would
# treat every missing key as the same null on MongoDB).
IDEMPOTENCY_INDEX = ("idempotency_key", {"unique": True, "sparse": True, "name": "idempotency_key"})
INDEXES = {
    "units": [("code", {"unique": True, "name": "code"}), ("parent_id", {"name": "parent"}),
              ("has_scheduled", {"name": "has_scheduled"}),  # apply_due's query
              ("ancestors", {"name": "ancestors"}), ("paths_dirty", {"name": "paths_dirty"}), IDEMPOTENCY_INDEX],
    "members": [("active_citizen_id", {"unique": True, "sparse": True, "name": "active_citizen_id"}),
                ("member_number", {"unique": True, "sparse": True, "name": "member_number"}),
                ("citizen_id", {"name": "citizen_id"}),  # the lookup of a person's former records
                ("unit_path", {"name": "unit_path"}), ("unit_id", {"name": "unit"}),
                ("name_search", {"name": "name_search"}), IDEMPOTENCY_INDEX,
                ("pending_transfer_path", {"name": "pending_transfer_path"})],  # incoming transfer requests
    "dues": [("member_id", {"name": "member"})],
    # the change documents (and outboxes) of each: platformkit/repository.py
    **Repository.indexes("units"), **Repository.indexes("members"), **Repository.indexes("dues"),
    **Repository.indexes("batches"),
    # batches: _id is the caller-scoped Idempotency-Key of a batch (services/membership/batch.py)
}
# The relay publishes the change documents (the only documents that carry events): description.py
OUTBOX_COLLECTIONS = ("units_events", "members_events", "dues_events")
WHAT = {"units": "unit", "members": "member", "dues": "dues", "batches": "batch"}


def db() -> Database:
    return mongo.database(SERVICE)


def repo(collection: str) -> Repository:
    return Repository(db(), collection, WHAT[collection])


def today() -> date:
    return clock.today()  # Vietnam's day (platformkit.clock), whatever the server's zone


# ---------------------------------------------------------------- idempotent creation
def _fingerprint(request: Any) -> str:
    return idempotency.fingerprint_of(request)


def _idempotency_key(caller: Caller, operation: str, key: str | None) -> str | None:
    """Keys are chosen by clients: scoped by the token's subject and unit (a token for another
    unit never replays what an earlier token saw) and by the operation (batch.scoped_key)."""
    return batch.scoped_key(caller, operation, key) if key else None


def _first_created(collection: str, key: str | None, fingerprint: str, finish) -> dict | None:
    """What a POST with this Idempotency-Key created, if one did; a different request under the
    same key is refused (422 naming the header). The answer is the created document as it stands:
    the same body as the first answer unless the document changed since (no second copy of a
    member's personal data is kept for replays). A creation its first request left half-done (the
    document inserted, its first change not committed) is finished here: `finish(first)`."""
    if not key:
        return None
    store = repo(collection)
    first = store.created_with(key)
    if first is None:
        return None
    if first.get("request_fingerprint") != fingerprint:
        raise RuleViolated("this Idempotency-Key was used for a different request", field="Idempotency-Key")
    return store.get(first["_id"]) or finish(first)


def _check_version(doc: dict, version: int | None) -> int:
    if version is not None and version != doc["version"]:
        raise StaleVersion(f"{doc['_id']} is at version {doc['version']}, not {version}")
    return doc["version"]


# ---------------------------------------------------------------- units
def load_unit(unit_id: str, field: str = "unit_id", cache: dict | None = None) -> dict:
    """`cache`: one request's units already read (a batch reads each CĐCS once, not once per
    member); never used for a unit the command writes."""
    if cache is not None and ("unit", unit_id) in cache:
        return cache[("unit", unit_id)]
    unit = repo("units").get(unit_id)
    if unit is None:
        raise Missing(f"unit {unit_id} not found", field=field)
    if cache is not None:
        cache[("unit", unit_id)] = unit
    return unit


def _actor(caller: Caller) -> str | None:
    """The unit a command is made by: None for the platform operator (who acts for any level)."""
    return None if caller.unit_id == PLATFORM_SCOPE else caller.unit_id


def _actor_unit(caller: Caller, cache: dict | None = None) -> dict | None:
    if caller.unit_id == PLATFORM_SCOPE:
        return None
    if cache is not None and "actor" in cache:
        return cache["actor"]
    actor = db().units.find_one({"_id": caller.unit_id}, {"outbox": 0}) or {"_id": caller.unit_id, "kind": None}
    if cache is not None:
        cache["actor"] = actor
    return actor


def path_scope(view_args: dict) -> tuple[str, list[str]] | None:
    """The unit a request path points at (a unit, or a member's unit), for the scope check that
    runs before input is parsed; None when the path names nothing known (the endpoint answers 404)."""
    unit_id = view_args.get("unit_id")
    if unit_id is None and view_args.get("member_id"):
        member = db().members.find_one({"_id": view_args["member_id"]}, {"unit_id": 1})
        unit_id = member["unit_id"] if member else None
    unit = db().units.find_one({"_id": unit_id}, {"ancestors": 1}) if unit_id else None
    return (unit["_id"], unit["ancestors"]) if unit else None


def read_unit(caller: Caller, unit_id: str) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"])
    return unit


def create_unit(caller: Caller, cmd: dict, idempotency_key: str | None = None) -> dict:
    parent = None
    if cmd.get("parent_id"):
        parent = load_unit(cmd["parent_id"], "parent_id")
        check_scope(caller, parent["_id"], parent["ancestors"], write=True)
    elif caller.unit_id != PLATFORM_SCOPE or "admin" not in caller.roles:
        raise Forbidden("only the platform operator creates a root unit")
    key, fingerprint = _idempotency_key(caller, "units.create", idempotency_key), _fingerprint(cmd)
    cmd = {**cmd, "effective_date": cmd.get("effective_date") or today()}

    def finish(first: dict) -> dict:
        doc, events = domain.new_unit(first["_id"], cmd, parent)
        return repo("units").finish_create(doc, events, len(events))
    first = _first_created("units", key, fingerprint, finish)
    if first is not None:
        return first
    unit_id = "u-" + uuid.uuid4().hex[:16]
    doc, events = domain.new_unit(unit_id, cmd, parent)
    stamp = {"idempotency_key": key, "request_fingerprint": fingerprint} if key else None
    try:
        repo("units").create(doc, events, stamp, version=len(events))
    except AlreadyExists as exc:
        first = _first_created("units", key, fingerprint, finish)
        if first is not None:
            return first  # a racing retry with the same key created it first
        raise Conflict(f"unit code {cmd['code']} is taken", field="code") from exc
    return load_unit(unit_id)


def _command(collection: str, _id: str, version: int | None, decide, bump: bool = True) -> dict:
    """`decide(current state)` -> (update document, events) or None; re-run on a lost race."""
    return repo(collection).command(_id, decide, expected_version=version, bump=bump)


def _update(changes: dict, extra_ops: dict | None = None) -> dict:
    return {"$set": changes, **(extra_ops or {})}


def rename_unit(caller: Caller, unit_id: str, cmd: dict) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)

    def decide(current: dict):
        changes, events = domain.rename_unit(current, cmd["name"], cmd.get("effective_date") or today())
        return _update(changes, {"$push": {"history": {"change": "renamed", "on": events[0].data["effective_date"],
                                                       "from": current["name"]}}}), events
    return _command("units", unit_id, cmd.get("version"), decide)


# ---------------------------------------------------------------- scheduled changes
# A move, merge or dissolution dated after today is recorded on the unit (`scheduled`, keyed by
# change id; `has_scheduled` the top-level flag apply_due queries) and applied on its date by
# apply_due() through the same handler as an immediate one. The platform acts for whoever
# scheduled it (their scope was checked when it was recorded).
SCHEDULER = Caller(subject="membership.apply-due", roles=("admin",), unit_id=PLATFORM_SCOPE)


def _is_future(effective: date, scheduled: str | None) -> bool:
    return scheduled is None and effective > today()


def _schedule(caller: Caller, unit_id: str, kind: str, effective: date, params: dict, version: int | None) -> dict:
    change_id = "sc-" + uuid.uuid4().hex[:12]

    def decide(current: dict):
        entry, events = domain.schedule_change(current, change_id, kind, effective, params, caller.subject, today())
        return _update({f"scheduled.{change_id}": entry, "has_scheduled": True}), events
    return _command("units", unit_id, version, decide)


def _still_scheduled(current: dict, scheduled: str | None) -> bool:
    return scheduled is None or scheduled in (current.get("scheduled") or {})


def _with_unschedule(current: dict, scheduled: str | None, extra: dict) -> dict:
    unset = domain.unschedule_ops(current, scheduled)
    return {**extra, "$unset": {**extra.get("$unset", {}), **unset}} if unset else extra


def cancel_scheduled(caller: Caller, unit_id: str, change_id: str, cmd: dict) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)

    def decide(current: dict):
        ev = domain.cancel_scheduled_change(current, change_id, caller.subject)
        return {"$unset": domain.unschedule_ops(current, change_id)}, [ev]
    return _command("units", unit_id, cmd.get("version"), decide)


def apply_due(on: date | None = None) -> list[str]:
    """Apply every scheduled change dated `on` (default: today in Vietnam) or earlier, oldest
    first, each through its handler with its own date. Idempotent and safe when two processes run
    it at once: each handler removes the scheduled entry in the same change document (one unique
    insert) as the change it makes, and does nothing when the entry is gone. A change its rules
    refuse on the day (e.g. a unit to dissolve still has members) stays on the unit, marked
    `failed` with the reason, for an officer to cancel or redo. Returns the ids applied."""
    on = on or today()
    applied: list[str] = []
    for ref in list(db().units.find({"has_scheduled": True}, {"_id": 1})):
        unit = repo("units").get(ref["_id"])
        due = sorted(((cid, e) for cid, e in (unit.get("scheduled") or {}).items()
                      if not e.get("failed") and e["date"] <= on.isoformat()), key=lambda ce: (ce[1]["date"], ce[0]))
        for change_id, entry in due:
            cmd = {**entry["params"], "effective_date": date.fromisoformat(entry["date"])}
            handler = {"move": move_unit, "merge": merge_unit, "dissolve": dissolve_unit}[entry["kind"]]
            try:
                handler(SCHEDULER, unit["_id"], cmd, scheduled=change_id)
                applied.append(change_id)
            except (RuleViolated, Conflict, Missing, Forbidden) as exc:
                _mark_failed(unit["_id"], change_id, str(exc))
    return applied


def _mark_failed(unit_id: str, change_id: str, why: str) -> None:
    def decide(current: dict):
        entry = (current.get("scheduled") or {}).get(change_id)
        if entry is None or entry.get("failed"):
            return None  # applied (or marked) by another process meanwhile
        return {"$set": {f"scheduled.{change_id}.failed": why}}, []
    _command("units", unit_id, None, decide)


def move_unit(caller: Caller, unit_id: str, cmd: dict, scheduled: str | None = None) -> dict:
    repair_paths()
    unit = load_unit(unit_id)
    new_parent = load_unit(cmd["parent_id"], "parent_id")
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    check_scope(caller, new_parent["_id"], new_parent["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    effective = cmd.get("effective_date") or today()
    if _is_future(effective, scheduled):
        domain.move_unit(unit, new_parent, effective)  # refused now if it would be refused today
        return _schedule(caller, unit_id, "move", effective, {"parent_id": new_parent["_id"]}, cmd.get("version"))

    def decide(current: dict):
        if not _still_scheduled(current, scheduled):
            return None  # applied by another process
        changes, events = domain.move_unit(current, new_parent, effective)
        # paths_dirty is set in the same change: if we crash while re-pathing descendants, the
        # next command (or service start) finishes the job.
        return _update({**changes, "paths_dirty": True}, _with_unschedule(current, scheduled,
                       {"$push": {"history": {"change": "moved", "on": effective.isoformat(),
                                              "from_parent": current["parent_id"]}}})), events
    moved = _command("units", unit_id, cmd.get("version"), decide)
    _repath_subtree(moved)
    return load_unit(unit_id)


def _repath_subtree(unit: dict) -> None:
    """Rewrite descendants' ancestors and members' unit paths after `unit` moved. Idempotent: each
    path is derived from the moved unit's current ancestors. Each rewrite is a repository change
    (decided again on a lost race, so a command racing with the move is never overwritten) that
    keeps `version` (upkeep, not a business change: no caller's version goes stale)."""
    d = db()
    unit = repo("units").load(unit["_id"])  # its current ancestors (it may have moved again)
    _repath_members(unit["_id"], domain.unit_path(unit))
    for desc in list(d.units.find({"ancestors": unit["_id"]}, {"_id": 1})):
        rebased: list[str] = []

        def set_ancestors(doc, rebased=rebased):
            rebased[:] = domain.rebased_ancestors(doc["ancestors"], unit["_id"], unit["ancestors"])
            return None if doc["ancestors"] == rebased else ({"$set": {"ancestors": list(rebased)}}, [])
        _command("units", desc["_id"], None, set_ancestors, bump=False)
        _repath_members(desc["_id"], rebased + [desc["_id"]])
    _command("units", unit["_id"], None,
             lambda doc: ({"$unset": {"paths_dirty": ""}}, []) if doc.get("paths_dirty") else None, bump=False)


def _repath_members(unit_id: str, path: list[str]) -> None:
    d = db()
    for name in ("members", "dues"):
        for doc in list(d[name].find({"unit_id": unit_id, "unit_path": {"$ne": path}}, {"_id": 1})):
            _command(name, doc["_id"], None,
                     lambda x: None if x["unit_path"] == path or x["unit_id"] != unit_id
                     else ({"$set": {"unit_path": path}}, []), bump=False)


def repair_paths() -> int:
    n = 0
    for unit in list(db().units.find({"paths_dirty": True}, {"_id": 1})):
        _repath_subtree(unit)
        n += 1
    return n


def merge_unit(caller: Caller, unit_id: str, cmd: dict, scheduled: str | None = None) -> dict:
    """Merge `unit_id` into another unit: its child units move under the target, its members
    transfer to it (when the target admits members), then the unit closes. Each step is one
    single-document write with its own event; a crash part-way is finished by calling merge again
    (the unit stays `merging` until then)."""
    repair_paths()
    d = db()
    unit = load_unit(unit_id)
    into = load_unit(cmd["into_unit_id"], "into_unit_id")
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    check_scope(caller, into["_id"], into["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    domain.check_merge(unit, into)
    for child in d.units.find({"parent_id": unit_id, "status": "active"}, {"kind": 1}):
        domain.check_placement(child["kind"], into, field="into_unit_id")  # before anything moves
    effective = cmd.get("effective_date") or today()
    if _is_future(effective, scheduled) and unit["status"] == "active":
        return _schedule(caller, unit_id, "merge", effective, {"into_unit_id": into["_id"]}, cmd.get("version"))
    if unit["status"] == "active":
        _check_version(unit, cmd.get("version"))
        if into["kind"] not in domain.GRASSROOTS_KINDS and _current_members(unit_id, count=True):
            raise RuleViolated("the unit has members; merge it into a CĐCS that can take them", field="into_unit_id")
        # the scheduled entry goes in the same change as `merging`: a second applier finds the
        # unit merging and only finishes the (idempotent) steps below
        started = _command("units", unit_id, cmd.get("version"), lambda u: (
            _with_unschedule(u, scheduled, {"$set": {"status": "merging", "merging_into": into["_id"]}}), [])
            if u["status"] == "active" and _still_scheduled(u, scheduled) else None)
        if started["status"] != "merging":
            return started  # the scheduled merge was cancelled meanwhile
    for child in list(d.units.find({"parent_id": unit_id, "status": "active"}, {"_id": 1})):
        def move_child(current: dict):
            if current["parent_id"] != unit_id or current["status"] != "active":
                return None  # moved already (a re-run of a merge that stopped part-way)
            changes, events = domain.move_unit(current, into, effective)
            return _update({**changes, "paths_dirty": True}), events
        _repath_subtree(_command("units", child["_id"], None, move_child))
    for member in _current_members(unit_id):
        def transfer_member(current: dict):
            if current["unit_id"] != unit_id or current["status"] not in CURRENT_STATUSES:
                return None
            changes, events = domain.transfer(current, unit, into, effective, reason="unit_merged",
                                               despite_request=True)
            return _update(changes), events
        _command("members", member["_id"], None, transfer_member)

    def close(current: dict):
        changes, events = domain.close_merged_unit(current, into, effective)
        return _update({**changes, "merging_into": None}), events
    _command("units", unit_id, None, close)
    return load_unit(unit_id)


CURRENT_STATUSES = ("admitted", "active")  # a record that left or was refused is no one's member now


def _current_members(unit_id: str, count: bool = False):
    """The unit's admitted and active members (their list, or how many): one equality query per
    status, so that a record that left or whose admission was refused never holds a unit up."""
    coll = db().members
    if count:
        return sum(coll.count_documents({"unit_id": unit_id, "status": s}) for s in CURRENT_STATUSES)
    return [m for s in CURRENT_STATUSES for m in coll.find({"unit_id": unit_id, "status": s}, {"outbox": 0})]


def dissolve_unit(caller: Caller, unit_id: str, cmd: dict, scheduled: str | None = None) -> dict:
    d = db()
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    _check_version(unit, cmd.get("version"))
    effective = cmd.get("effective_date") or today()
    if _is_future(effective, scheduled):
        # its members and child units may leave before the day: those rules are checked then
        return _schedule(caller, unit_id, "dissolve", effective, {}, cmd.get("version"))
    members = _current_members(unit_id, count=True)
    children = d.units.count_documents({"parent_id": unit_id, "status": "active"})

    def decide(current: dict):
        if not _still_scheduled(current, scheduled):
            return None  # applied by another process
        changes, events = domain.dissolve_unit(current, members, children, effective)
        return _update(changes, _with_unschedule(current, scheduled, {})), events
    return _command("units", unit_id, cmd.get("version"), decide)


def _page(coll, query: dict, after: list | None, limit: int) -> dict:
    items, next_cursor = paging.page(coll, query, after, limit, projection={"outbox": 0})
    return {"items": items, "next_cursor": next_cursor}


def children(caller: Caller, unit_id: str, q: dict) -> dict:
    read_unit(caller, unit_id)
    query: dict[str, Any] = {"parent_id": unit_id}
    if q.get("kind"):
        query["kind"] = q["kind"]
    return _page(db().units, query, q.get("after"), q["limit"])


def subtree(caller: Caller, unit_id: str, q: dict) -> dict:
    read_unit(caller, unit_id)
    query: dict[str, Any] = {"ancestors": unit_id}
    if q.get("kind"):
        query["kind"] = q["kind"]
    return _page(db().units, query, q.get("after"), q["limit"])


def ancestors(caller: Caller, unit_id: str) -> list[dict]:
    unit = read_unit(caller, unit_id)
    # The caller sees the chain up to its own unit, not above it.
    visible = [a for a in unit["ancestors"] if caller.covers(a, unit["ancestors"][:unit["ancestors"].index(a)])]
    by_id = {u["_id"]: u for u in db().units.find({"_id": {"$in": visible}}, {"outbox": 0})}
    return [by_id[a] for a in visible if a in by_id]


def committee(caller: Caller, unit_id: str, cmd: dict) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    _check_version(unit, cmd.get("version"))
    ids = [p["member_id"] for p in cmd["positions"]]
    members = {m["_id"]: m for m in db().members.find({"_id": {"$in": ids}}, {"outbox": 0})}

    def decide(current: dict):
        record, events = domain.consolidate_committee(current, cmd["term"], cmd["date"], cmd["positions"], members)
        return _update({"committee": record}, {"$push": {"committee_history": record}}), events
    return _command("units", unit_id, cmd.get("version"), decide)


def propose_rating(caller: Caller, unit_id: str, cmd: dict) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)

    def decide(current: dict):
        entry, events = domain.propose_rating(current, cmd["year"], cmd["rating"], caller.unit_id)
        if not events:
            return None  # already proposed as that
        return _update({f"ratings.{cmd['year']}": entry}), events
    return _command("units", unit_id, cmd.get("version"), decide)


def confirm_rating(caller: Caller, unit_id: str, year: int, cmd: dict, cache: dict | None = None) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    _check_version(unit, cmd.get("version"))
    domain.check_decides_as_level_above(_actor_unit(caller, cache), unit, "confirmed_by")
    by = unit["parent_id"] if caller.unit_id == PLATFORM_SCOPE else caller.unit_id

    def decide(current: dict):
        entry, events = domain.confirm_rating(current, year, cmd.get("rating"), by)
        return _update({f"ratings.{year}": entry}), events
    return _command("units", unit_id, cmd.get("version"), decide)


# ---------------------------------------------------------------- members
def load_member(member_id: str) -> dict:
    member = repo("members").get(member_id)
    if member is None:
        raise Missing(f"member {member_id} not found", field="member_id")
    return member


def _member_in_scope(caller: Caller, member_id: str, write: bool, cache: dict | None = None) -> tuple[dict, dict]:
    member = load_member(member_id)
    unit = load_unit(member["unit_id"], cache=cache)
    check_scope(caller, unit["_id"], unit["ancestors"], write=write)
    return member, unit


def read_member(caller: Caller, member_id: str) -> dict:
    return _member_in_scope(caller, member_id, write=False)[0]


def _former_first(member: dict) -> tuple:
    """Order of a person's former records: the one whose membership ended last."""
    return (member.get("left_on") or member.get("refused_on") or member.get("admitted_on") or "", member["_id"])


def lookup_member(caller: Caller, q: dict) -> dict:
    """A member by citizen ID (CCCD) or card number, scoped like every read. A CCCD is unique
    among current records only (`active_citizen_id`: admitted or active); a person who left, or
    whose admission was refused, and was admitted again has several records. The answer is the
    current record; without one, the latest former record (left or refused)."""
    d = db()
    if q.get("member_number"):
        member = d.members.find_one({"member_number": q["member_number"]}, {"outbox": 0})
        field, what = "member_number", "card number"
    else:
        member = d.members.find_one({"active_citizen_id": q["citizen_id"]}, {"outbox": 0})
        if member is None:
            former = list(d.members.find({"citizen_id": q["citizen_id"]}, {"outbox": 0}))
            member = max(former, key=_former_first) if former else None
        field, what = "citizen_id", "citizen ID"
    if member is None:
        raise Missing(f"no member with this {what}", field=field)  # the value is not echoed
    unit = load_unit(member["unit_id"])
    check_scope(caller, unit["_id"], unit["ancestors"])  # 403 naming nothing of the member
    return member


def admit(caller: Caller, unit_id: str, cmd: dict, method: str = "individual", idempotency_key: str | None = None,
          cache: dict | None = None) -> dict:
    unit = load_unit(unit_id, cache=cache)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    key = _idempotency_key(caller, "members.admit", idempotency_key)
    fingerprint = _fingerprint({"unit_id": unit_id, **cmd}) if key else None

    def finish(first: dict) -> dict:
        doc, events = domain.admit(first["_id"], {**cmd, "method": method}, unit, today())
        return repo("members").finish_create(doc, events)
    first = _first_created("members", key, fingerprint, finish)
    if first is not None:
        return first
    member_id = "m-" + uuid.uuid4().hex[:16]
    doc, events = domain.admit(member_id, {**cmd, "method": method}, unit, today())
    stamp = {"idempotency_key": key, "request_fingerprint": fingerprint} if key else None
    try:
        repo("members").create(doc, events, stamp)
    except AlreadyExists as exc:
        first = _first_created("members", key, fingerprint, finish)
        if first is not None:
            return first  # a racing retry with the same key created it first
        raise Conflict("a member with this citizen ID is already active", field="citizen_id") from exc
    return load_member(member_id)


def _member_write(member: dict, unit: dict, version: int | None, fn, *args, extra_ops=None) -> dict:
    """Run a rule on a member already loaded and scope-checked, and save its change with its
    events; on a lost race the rule runs again on the member as it is now."""
    def decide(current: dict):
        changes, events = fn(current, unit, *args)
        if not events:
            return None
        cid = changes.get("active_citizen_id")
        if cid and db().members.find_one({"active_citizen_id": cid, "_id": {"$ne": current["_id"]}}, {"_id": 1}):
            # the copy's unique index would refuse it: refuse the command before committing
            raise Conflict("a member with this citizen ID is already active", field="citizen_id")
        return _update(changes, extra_ops), events
    return _command("members", member["_id"], version, decide)


def _member_command(caller: Caller, member_id: str, version: int | None, fn, *args, extra_ops=None) -> dict:
    member, unit = _member_in_scope(caller, member_id, write=True)
    return _member_write(member, unit, version, fn, *args, extra_ops=extra_ops)


def _decider(caller: Caller, unit: dict) -> str:
    """The unit a decision is made by: the caller's, or for the platform operator the CĐCS's parent."""
    return unit["parent_id"] if caller.unit_id == PLATFORM_SCOPE else caller.unit_id


def approve(caller: Caller, member_id: str, cmd: dict, cache: dict | None = None) -> dict:
    member, unit = _member_in_scope(caller, member_id, write=True, cache=cache)
    domain.check_decides_as_level_above(_actor_unit(caller, cache), unit, "approved_by")
    return _member_write(member, unit, cmd.get("version"), domain.approve, _decider(caller, unit),
                         cmd.get("on") or today())


def refuse(caller: Caller, member_id: str, cmd: dict, cache: dict | None = None) -> dict:
    """The level above refuses an admission. The citizen ID is freed (`active_citizen_id`), so
    that the person may be admitted again later, as a new admission."""
    member, unit = _member_in_scope(caller, member_id, write=True, cache=cache)
    domain.check_decides_as_level_above(_actor_unit(caller, cache), unit, "refused_by")
    on = cmd.get("on") or today()
    return _member_write(member, unit, cmd.get("version"), domain.refuse, _decider(caller, unit), cmd.get("reason"), on,
                         extra_ops={"$unset": {"active_citizen_id": ""},
                                    "$push": {"history": {"change": "refused", "on": on.isoformat()}}})


def _province_code(unit: dict, cache: dict | None = None) -> str:
    if cache is not None and ("province", unit["_id"]) in cache:
        return cache[("province", unit["_id"])]
    d = db()
    code = "VN"
    for anc in unit["ancestors"]:
        a = d.units.find_one({"_id": anc}, {"kind": 1, "code": 1})
        if a and a.get("kind") == "province":
            code = re.sub(r"[^A-Z0-9]", "", a["code"].upper())[:6] or "VN"
            break
    if cache is not None:
        cache[("province", unit["_id"])] = code
    return code


def issue_card(caller: Caller, member_id: str, cmd: dict, cache: dict | None = None) -> dict:
    member, unit = _member_in_scope(caller, member_id, write=True, cache=cache)
    domain.check_decides_as_level_above(_actor_unit(caller, cache), unit, "member_number")
    on = cmd.get("on") or today()
    _check_version(member, cmd.get("version"))  # before a card number is drawn
    if member["status"] != "active" or member.get("member_number"):
        domain.issue_card(member, unit, "", on)  # raises the rule's refusal, writes nothing
    province = _province_code(unit, cache)
    number = domain.member_number(province, on.year, next_number(db(), f"card:{province}:{on.year}"))
    return _member_write(member, unit, cmd.get("version"), domain.issue_card, number, on,
                         extra_ops={"$push": {"history": {"change": "card_issued", "on": on.isoformat()}}})


def _letter_of(cmd: dict) -> dict:
    return {"letter_no": cmd.get("letter_no"), "letter_date": cmd.get("letter_date")}


def transfer(caller: Caller, member_id: str, cmd: dict) -> dict:
    """A destination inside the caller's subtree: the member moves now. Outside it: a transfer
    REQUEST, recorded on the member, that the receiving side accepts or refuses (nothing moves, no
    figure changes, until it accepts)."""
    member, from_unit = _member_in_scope(caller, member_id, write=True)
    to_unit = load_unit(cmd["to_unit_id"], "to_unit_id")
    on = cmd.get("on") or today()
    letter = _letter_of(cmd)
    if not caller.covers(to_unit["_id"], to_unit["ancestors"]):
        return _member_write(member, from_unit, cmd.get("version"),
                             lambda current, unit: domain.request_transfer(current, unit, to_unit, letter,
                                                                           caller.subject, on),
                             extra_ops={"$push": {"history": {"change": "transfer_requested", "on": on.isoformat(),
                                                              "from": from_unit["_id"], "to": to_unit["_id"]}}})
    return _member_write(member, from_unit, cmd.get("version"),
                         lambda current, unit: domain.transfer(current, unit, to_unit, on, letter=letter),
                         extra_ops={"$push": {"history": {"change": "transferred", "on": on.isoformat(),
                                                          "from": from_unit["_id"], "to": to_unit["_id"]}}})


CLEAR_REQUEST = {"pending_transfer": "", "pending_transfer_path": ""}


def _incoming_request(caller: Caller, unit_id: str, member_id: str) -> tuple[dict, dict, dict]:
    """(member, its current unit, the destination) of a request addressed to `unit_id` or below it;
    the caller covers `unit_id` (checked on the path) and so the destination."""
    member = load_member(member_id)
    pending = member.get("pending_transfer")
    if not pending or unit_id not in (member.get("pending_transfer_path") or []):
        raise Missing(f"no transfer request of {member_id} to unit {unit_id}", field="member_id")
    to_unit = load_unit(pending["to_unit_id"], "to_unit_id")
    check_scope(caller, to_unit["_id"], to_unit["ancestors"], write=True)
    return member, load_unit(member["unit_id"]), to_unit


def accept_transfer(caller: Caller, unit_id: str, member_id: str, cmd: dict) -> dict:
    """The receiving side accepts: the member moves (`member.transferred`, with the letter)."""
    member, from_unit, to_unit = _incoming_request(caller, unit_id, member_id)
    on = cmd.get("on") or today()

    def accept(current: dict, unit: dict):
        pending = current.get("pending_transfer")
        if not pending or pending["to_unit_id"] != to_unit["_id"]:
            raise RuleViolated("the member has no pending transfer request to this unit", field="pending_transfer")
        return domain.transfer(current, unit, to_unit, on, letter=pending, despite_request=True)
    return _member_write(member, from_unit, cmd.get("version"), accept,
                         extra_ops={"$unset": CLEAR_REQUEST,
                                    "$push": {"history": {"change": "transferred", "on": on.isoformat(),
                                                          "from": from_unit["_id"], "to": to_unit["_id"]}}})


def refuse_transfer(caller: Caller, unit_id: str, member_id: str, cmd: dict) -> dict:
    member, from_unit, to_unit = _incoming_request(caller, unit_id, member_id)
    on = cmd.get("on") or today()
    return _member_write(member, from_unit, cmd.get("version"), domain.close_transfer_request, "refused",
                         caller.subject, cmd.get("reason"), on,
                         extra_ops={"$unset": CLEAR_REQUEST,
                                    "$push": {"history": {"change": "transfer_refused", "on": on.isoformat(),
                                                          "to": to_unit["_id"]}}})


def cancel_transfer(caller: Caller, member_id: str, cmd: dict) -> dict:
    """The sending side withdraws its request while it is pending."""
    on = cmd.get("on") or today()
    return _member_command(caller, member_id, cmd.get("version"), domain.close_transfer_request, "cancelled",
                           caller.subject, None, on,
                           extra_ops={"$unset": CLEAR_REQUEST,
                                      "$push": {"history": {"change": "transfer_cancelled", "on": on.isoformat()}}})


def transfer_requests(caller: Caller, unit_id: str, q: dict) -> dict:
    """Pending requests addressed to the unit or a CĐCS below it."""
    read_unit(caller, unit_id)
    return _page(db().members, {"pending_transfer_path": unit_id}, q.get("after"), q["limit"])


def leave(caller: Caller, member_id: str, cmd: dict) -> dict:
    on = cmd.get("on") or today()
    return _member_command(caller, member_id, cmd.get("version"), domain.leave, cmd["reason"], on,
                           extra_ops={"$unset": {"active_citizen_id": ""},
                                      "$push": {"history": {"change": "left", "on": on.isoformat(),
                                                            "reason": cmd["reason"]}}})


def reinstate(caller: Caller, member_id: str, cmd: dict) -> dict:
    on = cmd.get("on") or today()
    return _member_command(caller, member_id, cmd.get("version"), domain.reinstate, on,
                           extra_ops={"$unset": {"left_on": "", "left_reason": ""},
                                      "$push": {"history": {"change": "reinstated", "on": on.isoformat()}}})


def update_profile(caller: Caller, member_id: str, cmd: dict) -> dict:
    changes = {k: v for k, v in cmd.items() if k not in ("version", "on")}
    now = today()
    return _member_command(caller, member_id, cmd.get("version"), domain.update_profile, changes,
                           cmd.get("on") or now, now)


def list_members(caller: Caller, unit_id: str, q: dict) -> dict:
    read_unit(caller, unit_id)
    query: dict[str, Any] = {"unit_path": unit_id}
    if q.get("status"):
        query["status"] = q["status"]
    if q.get("q"):
        key = domain.search_key(q["q"])
        # whole words in order: "nguyen thi ha" finds "Nguyễn Thị Hà", not "Nguyễn Thị Hải"
        query["name_search"] = {"$regex": f"(^| ){re.escape(key)}( |$)"}
    return _page(db().members, query, q.get("after"), q["limit"])


# ---------------------------------------------------------------- dues
def record_dues(caller: Caller, member_id: str, cmd: dict) -> dict:
    member, unit = _member_in_scope(caller, member_id, write=True)
    month = date.fromisoformat(cmd["month"] + "-01")
    key = f"{member_id}:{cmd['month']}"
    dues = repo("dues")

    def record(existing: dict | None):
        return domain.record_dues(member, unit, month, cmd["salary"], cmd["paid"],
                                  cmd["on_social_insurance_benefits"], cmd["unpaid_leave_months"], existing)
    if dues.get(key) is None:
        doc, events = record(None)
        try:
            return dues.create(doc, events)
        except AlreadyExists:
            if dues.get(key) is None:  # inserted by a request that died before committing it
                return dues.finish_create(doc, events)
            # recorded concurrently: record over it (below), as a change of that month

    def decide(existing: dict):
        doc, events = record(existing)
        if not events:
            return None  # naturally idempotent: the same month with the same figures changes nothing
        return _update({k: v for k, v in doc.items() if k not in ("_id", "version")}), events
    return dues.command(key, decide)


def member_dues(caller: Caller, member_id: str) -> list[dict]:
    _member_in_scope(caller, member_id, write=False)
    return list(db().dues.find({"member_id": member_id}, {"outbox": 0}).sort("_id", ASCENDING))


# ---------------------------------------------------------------- bulk import
# An import is answered synchronously, one admission per row: bounded so that a request ends in
# well under a minute (larger files: split them; a background import job is not built yet).
IMPORT_MAX_ROWS = 1000
IMPORT_MAX_BYTES = 2 * 1024 * 1024
IMPORT_COLUMNS = ("full_name", "citizen_id", "date_of_birth", "gender", "phone", "employer",
                  "is_official", "admitted_on")
GENDER_WORDS = {"nữ": "female", "nu": "female", "nam": "male", "khác": "other", "khac": "other"}
TRUE_WORDS = {"1", "true", "yes", "x", "có", "co"}


def _too_many_rows(count: int) -> None:
    if count > IMPORT_MAX_ROWS:
        raise TooLarge(f"an import holds at most {IMPORT_MAX_ROWS} rows; split the file", field="file")


def _rows_from_file(filename: str, content: bytes) -> list[dict[str, Any]]:
    if len(content) > IMPORT_MAX_BYTES:
        raise TooLarge(f"an import file is at most {IMPORT_MAX_BYTES // (1024 * 1024)} MB; split the file",
                       field="file")
    name = filename.lower()
    if name.endswith(".xlsx"):
        from openpyxl import load_workbook
        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).active
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the caller's input error
            raise InvalidInput(f"not a readable XLSX file: {exc}", field="file") from exc
        rows = []
        for row in sheet.iter_rows(values_only=True):  # stop early: a sheet may claim millions of rows
            rows.append(row)
            _too_many_rows(len(rows) - 1)
        header = [str(h or "").strip().lower() for h in (rows[0] if rows else [])]
        body = [dict(zip(header, r)) for r in rows[1:]]
    elif name.endswith(".csv"):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput("the CSV file must be UTF-8", field="file") from exc
        reader = csv.DictReader(io.StringIO(text))
        reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
        body = []
        for row in reader:
            body.append(row)
            _too_many_rows(len(body))
    else:
        raise InvalidInput("upload a .csv or .xlsx file", field="file")
    missing = [c for c in ("full_name", "citizen_id", "date_of_birth", "gender") if body and c not in body[0]]
    if missing or not body:
        raise InvalidInput(f"missing columns {missing}" if missing else "the file has no rows", field="file")
    return body


def _clean_row(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in IMPORT_COLUMNS:
        value = raw.get(col)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if hasattr(value, "date") and callable(value.date):  # XLSX cells give datetimes
            value = value.date().isoformat()
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        value = str(value).strip() if not isinstance(value, bool) else value
        if col == "gender":
            value = GENDER_WORDS.get(value.lower(), value.lower())
        if col == "is_official":
            value = str(value).lower() in TRUE_WORDS
        if col == "citizen_id" and re.fullmatch(r"\d{11}", value):
            value = "0" + value  # a spreadsheet dropped the leading zero of the province code
        out[col] = value
    return out


def import_members(caller: Caller, unit_id: str, filename: str, content: bytes,
                   idempotency_key: str | None, parse_row: Callable[[dict], dict]) -> tuple[dict, bool]:
    """Admit a group from one file: a batch of admissions (batch.py), one per row, each with its
    own result. A bad row never blocks the good ones; re-running the same file admits nobody twice
    (a citizen ID already active in this CĐCS is reported, not re-admitted); with an
    Idempotency-Key, a retry returns the first report and changes nothing."""
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    rows = _rows_from_file(filename, content)
    cache: dict = {("unit", unit_id): unit}

    def admit_row(i: int, raw: dict) -> dict:
        cmd = parse_row(_clean_row(raw))
        existing = db().members.find_one({"active_citizen_id": cmd["citizen_id"]}, {"unit_id": 1})
        if existing and existing["unit_id"] == unit_id:
            return {"row": i + 2, "status": "already_admitted", "member_id": existing["_id"], "errors": None}
        member = admit(caller, unit_id, cmd, method="group", cache=cache)
        return {"row": i + 2, "status": "admitted", "member_id": member["_id"], "errors": None}

    def rejected(i: int, _raw: Any, error: dict) -> dict:
        return {"row": i + 2, "status": "rejected", "member_id": None,
                "errors": error.get("errors") or {"row": [error["message"]]}}

    def report(rows_out: list[dict]) -> dict:
        counts = {status: sum(1 for r in rows_out if r["status"] == status)
                  for status in ("admitted", "already_admitted", "rejected")}
        return {"file": filename, **counts, "rows": rows_out}

    request = {"unit_id": unit_id, "file": filename, "sha256": hashlib.sha256(content).hexdigest()}
    # (answer, replayed); row 1 of the file is the header
    return batch.run(caller, "members.import", idempotency_key, request, rows, admit_row, rejected, report)


# ---------------------------------------------------------------- batches of decisions
def _member_brief(doc: dict) -> dict:
    return {"id": doc["_id"], "unit_id": doc["unit_id"], "status": doc["status"], "version": doc["version"],
            "approved_on": doc.get("approved_on"), "refused_on": doc.get("refused_on"),
            "member_number": doc.get("member_number"), "card_issued_on": doc.get("card_issued_on")}


def decide_admissions(caller: Caller, body: dict, idempotency_key: str | None,
                      parse_item: Callable[[Any], dict]) -> tuple[dict, bool]:
    """Approve or refuse many admissions: each item through approve() / refuse(), as one by one."""
    on = body.get("on") or today()
    cache: dict = {}

    def decide(i: int, raw: Any) -> dict:
        item = parse_item(raw)
        cmd = {"on": on, "version": item.get("version"), "reason": item.get("reason")}
        act = approve if item["decision"] == "approve" else refuse
        return {"index": i, "status": 200, "member": _member_brief(act(caller, item["member_id"], cmd, cache))}
    return batch.run(caller, "members.decisions", idempotency_key, body, body["items"], decide)


def issue_cards(caller: Caller, body: dict, idempotency_key: str | None,
                parse_item: Callable[[Any], dict]) -> tuple[dict, bool]:
    """Issue many cards: each item through issue_card(), as one by one."""
    on = body.get("on") or today()
    cache: dict = {}

    def issue(i: int, raw: Any) -> dict:
        item = parse_item(raw)
        member = issue_card(caller, item["member_id"], {"on": on, "version": item.get("version")}, cache)
        return {"index": i, "status": 200, "member": _member_brief(member)}
    return batch.run(caller, "members.cards", idempotency_key, body, body["items"], issue)


def record_ratings(caller: Caller, body: dict, idempotency_key: str | None,
                   parse_item: Callable[[Any], dict]) -> tuple[dict, bool]:
    """Propose or confirm many CĐCS ratings: each item through propose_rating() / confirm_rating().
    The endpoint requires `rating.propose`; a confirmation also needs `rating.confirm` (403 per item)."""
    cache: dict = {}

    def rate(i: int, raw: Any) -> dict:
        item = parse_item(raw)
        year = item["year"]
        if item["action"] == "propose":
            unit = propose_rating(caller, item["unit_id"], {"year": year, "rating": item["rating"],
                                                            "version": item.get("version")})
        else:
            if not permissions.allowed(caller, "rating.confirm"):
                raise Forbidden(f"the roles {sorted(caller.roles)} may not rating confirm")
            unit = confirm_rating(caller, item["unit_id"], year, {"rating": item.get("rating"),
                                                                  "version": item.get("version")}, cache)
        entry = unit["ratings"][str(year)]
        return {"index": i, "status": 200, "unit": {"id": unit["_id"], "version": unit["version"], "year": year,
                                                     "rating": entry["rating"], "rating_status": entry["status"]}}
    return batch.run(caller, "units.ratings", idempotency_key, body, body["items"], rate)

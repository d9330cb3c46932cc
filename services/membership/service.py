"""Membership service layer: load what a command needs, check the caller's scope, call the rules
in domain.py, and save each change through the repository (platformkit/repository.py): ONE change
document carrying its events, inserted under a unique `<id>@<change number>` (the compare-and-set
that FerretDB honours). A command whose caller sent no version that loses a race decides again on
the fresh state; only a caller's stale version is a 412. Units, members and dues are never written
any other way (the path rewrites after a move included).

Every handler is `handler(command, caller, stores)` (commands.py; reads: `handler(args..., caller,
stores)`): the database arrives as `stores` (stores.py), so the same handlers run on the service's
database and on the in-memory one of the handler tests."""
from __future__ import annotations

import hashlib
import re
import uuid
from datetime import date
from typing import TYPE_CHECKING, Any, Callable

from platformkit import clock, idempotency, mongo, paging, permissions
from platformkit.auth import PLATFORM_SCOPE, Caller, Forbidden, check_scope
from platformkit.errors import AlreadyExists, Conflict, RuleViolated, StaleVersion
from platformkit.errors import NotFound as Missing
from platformkit.repository import Repository

from . import batch, commands, domain
from .commands import fields_of
from .import_file import IMPORT_MAX_ROWS, clean_row, rows_from_file  # noqa: F401 - the limit, for callers

if TYPE_CHECKING:  # the adapter (stores.py) is given to every handler, never built here
    from .stores import Stores

SERVICE = "membership"


def today() -> date:
    return clock.today()  # Vietnam's day (platformkit.clock), whatever the server's zone


# ---------------------------------------------------------------- idempotent creation
def _fingerprint(request: Any) -> str:
    return idempotency.fingerprint_of(request)


def _idempotency_key(caller: Caller, operation: str, key: str | None) -> str | None:
    """Keys are chosen by clients: scoped by the token's subject and unit (a token for another
    unit never replays what an earlier token saw) and by the operation (batch.scoped_key)."""
    return batch.scoped_key(caller, operation, key) if key else None


def _first_created(store: Repository, key: str | None, fingerprint: str, finish) -> dict | None:
    """What a POST with this Idempotency-Key created, if one did; a different request under the
    same key is refused (422 naming the header). The answer is the created document as it stands:
    the same body as the first answer unless the document changed since (no second copy of a
    member's personal data is kept for replays). A creation its first request left half-done (the
    document inserted, its first change not committed) is finished here: `finish(first)`."""
    if not key:
        return None
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
def load_unit(unit_id: str, stores: Stores, field: str = "unit_id", cache: dict | None = None) -> dict:
    """`cache`: one request's units already read (a batch reads each CĐCS once, not once per
    member); never used for a unit the command writes."""
    if cache is not None and ("unit", unit_id) in cache:
        return cache[("unit", unit_id)]
    unit = stores.units.get(unit_id)
    if unit is None:
        raise Missing(f"unit {unit_id} not found", field=field)
    if cache is not None:
        cache[("unit", unit_id)] = unit
    return unit


def _actor(caller: Caller) -> str | None:
    """The unit a command is made by: None for the platform operator (who acts for any level)."""
    return None if caller.unit_id == PLATFORM_SCOPE else caller.unit_id


def _actor_unit(caller: Caller, stores: Stores, cache: dict | None = None) -> dict | None:
    if caller.unit_id == PLATFORM_SCOPE:
        return None
    if cache is not None and "actor" in cache:
        return cache["actor"]
    actor = stores.units.coll.find_one({"_id": caller.unit_id}, {"outbox": 0}) or {"_id": caller.unit_id, "kind": None}
    if cache is not None:
        cache["actor"] = actor
    return actor


def path_scope(view_args: dict, stores: Stores, cache: dict | None = None) -> tuple[str, list[str]] | None:
    """The unit a request path points at (a unit, or a member's unit), for the scope check that
    runs before input is parsed; None when the path names nothing known (the endpoint answers 404).
    A unit named in the path is loaded as the handlers load it and kept in `cache` (the request's:
    an admission then reads its CĐCS once, not twice)."""
    unit_id = view_args.get("unit_id")
    if unit_id is not None:
        try:
            unit = load_unit(unit_id, stores, cache=cache)
        except Missing:
            return None
        return unit["_id"], unit["ancestors"]
    if view_args.get("member_id"):
        member = stores.members.coll.find_one({"_id": view_args["member_id"]}, {"unit_id": 1})
        unit = stores.units.coll.find_one({"_id": member["unit_id"]}, {"ancestors": 1}) if member else None
        return (unit["_id"], unit["ancestors"]) if unit else None
    return None


def read_unit(unit_id: str, caller: Caller, stores: Stores) -> dict:
    unit = load_unit(unit_id, stores)
    check_scope(caller, unit["_id"], unit["ancestors"])
    return unit


def create_unit(command: commands.CreateUnit, caller: Caller, stores: Stores) -> dict:
    parent = None
    if command.parent_id:
        parent = load_unit(command.parent_id, stores, "parent_id")
        check_scope(caller, parent["_id"], parent["ancestors"], write=True)
    elif caller.unit_id != PLATFORM_SCOPE or "admin" not in caller.roles:
        raise Forbidden("only the platform operator creates a root unit")
    body = fields_of(command, "idempotency_key")  # the request as sent: what a key stands for
    key, fingerprint = _idempotency_key(caller, "units.create", command.idempotency_key), _fingerprint(body)
    cmd = {**body, "effective_date": command.effective_date or today()}

    def finish(first: dict) -> dict:
        doc, events = domain.new_unit(first["_id"], cmd, parent)
        return stores.units.finish_create(doc, events, len(events))
    first = _first_created(stores.units, key, fingerprint, finish)
    if first is not None:
        return first
    unit_id = "u-" + uuid.uuid4().hex[:16]
    doc, events = domain.new_unit(unit_id, cmd, parent)
    stamp = {"idempotency_key": key, "request_fingerprint": fingerprint} if key else None
    try:
        stores.units.create(doc, events, stamp, version=len(events))
    except AlreadyExists as exc:
        first = _first_created(stores.units, key, fingerprint, finish)
        if first is not None:
            return first  # a racing retry with the same key created it first
        raise Conflict(f"unit code {command.code} is taken", field="code") from exc
    return load_unit(unit_id, stores)


def _command(store: Repository, _id: str, version: int | None, decide, bump: bool = True) -> dict:
    """`decide(current state)` -> (update document, events) or None; re-run on a lost race."""
    return store.command(_id, decide, expected_version=version, bump=bump)


def _update(changes: dict, extra_ops: dict | None = None) -> dict:
    return {"$set": changes, **(extra_ops or {})}


def rename_unit(command: commands.RenameUnit, caller: Caller, stores: Stores) -> dict:
    unit = load_unit(command.unit_id, stores)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)

    def decide(current: dict):
        changes, events = domain.rename_unit(current, command.name, command.effective_date or today())
        return _update(changes, {"$push": {"history": {"change": "renamed", "on": events[0].data["effective_date"],
                                                       "from": current["name"]}}}), events
    return _command(stores.units, command.unit_id, command.version, decide)


# ---------------------------------------------------------------- scheduled changes
# A move, merge or dissolution dated after today is recorded on the unit (`scheduled`, keyed by
# change id; `has_scheduled` the top-level flag apply_due queries) and applied on its date by
# apply_due() through the same handler as an immediate one. The platform acts for whoever
# scheduled it (their scope was checked when it was recorded).
SCHEDULER = Caller(subject="membership.apply-due", roles=("admin",), unit_id=PLATFORM_SCOPE)
SCHEDULED = {"move": commands.MoveUnit, "merge": commands.MergeUnit, "dissolve": commands.DissolveUnit}


def _is_future(effective: date, scheduled: str | None) -> bool:
    return scheduled is None and effective > today()


def _schedule(caller: Caller, stores: Stores, unit_id: str, kind: str, effective: date, params: dict,
              version: int | None) -> dict:
    change_id = "sc-" + uuid.uuid4().hex[:12]

    def decide(current: dict):
        entry, events = domain.schedule_change(current, change_id, kind, effective, params, caller.subject, today())
        return _update({f"scheduled.{change_id}": entry, "has_scheduled": True}), events
    return _command(stores.units, unit_id, version, decide)


def _still_scheduled(current: dict, scheduled: str | None) -> bool:
    return scheduled is None or scheduled in (current.get("scheduled") or {})


def _with_unschedule(current: dict, scheduled: str | None, extra: dict) -> dict:
    unset = domain.unschedule_ops(current, scheduled)
    return {**extra, "$unset": {**extra.get("$unset", {}), **unset}} if unset else extra


def cancel_scheduled(command: commands.CancelScheduledChange, caller: Caller, stores: Stores) -> dict:
    unit = load_unit(command.unit_id, stores)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)

    def decide(current: dict):
        ev = domain.cancel_scheduled_change(current, command.change_id, caller.subject)
        return {"$unset": domain.unschedule_ops(current, command.change_id)}, [ev]
    return _command(stores.units, command.unit_id, command.version, decide)


def apply_due(on: date | None, stores: Stores) -> list[str]:
    """Apply every scheduled change dated `on` (default: today in Vietnam) or earlier, oldest
    first, each through its handler with its own date. Idempotent and safe when two processes run
    it at once: each handler removes the scheduled entry in the same change document (one unique
    insert) as the change it makes, and does nothing when the entry is gone. A change its rules
    refuse on the day (e.g. a unit to dissolve still has members) stays on the unit, marked
    `failed` with the reason, for an officer to cancel or redo. Returns the ids applied."""
    on = on or today()
    applied: list[str] = []
    for ref in list(stores.units.coll.find({"has_scheduled": True}, {"_id": 1})):
        unit = stores.units.get(ref["_id"])
        due = sorted(((cid, e) for cid, e in (unit.get("scheduled") or {}).items()
                      if not e.get("failed") and e["date"] <= on.isoformat()), key=lambda ce: (ce[1]["date"], ce[0]))
        for change_id, entry in due:
            command = SCHEDULED[entry["kind"]](unit_id=unit["_id"], effective_date=date.fromisoformat(entry["date"]),
                                               **entry["params"])
            handler = {"move": move_unit, "merge": merge_unit, "dissolve": dissolve_unit}[entry["kind"]]
            try:
                handler(command, SCHEDULER, stores, scheduled=change_id)
                applied.append(change_id)
            except (RuleViolated, Conflict, Missing, Forbidden) as exc:
                _mark_failed(stores, unit["_id"], change_id, str(exc))
    return applied


def _mark_failed(stores: Stores, unit_id: str, change_id: str, why: str) -> None:
    def decide(current: dict):
        entry = (current.get("scheduled") or {}).get(change_id)
        if entry is None or entry.get("failed"):
            return None  # applied (or marked) by another process meanwhile
        return {"$set": {f"scheduled.{change_id}.failed": why}}, []
    _command(stores.units, unit_id, None, decide)


def move_unit(command: commands.MoveUnit, caller: Caller, stores: Stores, scheduled: str | None = None) -> dict:
    """`scheduled`: the change id when apply_due applies a move recorded earlier."""
    unit_id = command.unit_id
    repair_paths(stores)
    unit = load_unit(unit_id, stores)
    new_parent = load_unit(command.parent_id, stores, "parent_id")
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    check_scope(caller, new_parent["_id"], new_parent["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    effective = command.effective_date or today()
    if _is_future(effective, scheduled):
        domain.move_unit(unit, new_parent, effective)  # refused now if it would be refused today
        return _schedule(caller, stores, unit_id, "move", effective, {"parent_id": new_parent["_id"]},
                         command.version)

    def decide(current: dict):
        if not _still_scheduled(current, scheduled):
            return None  # applied by another process
        changes, events = domain.move_unit(current, new_parent, effective)
        # paths_dirty is set in the same change: if we crash while re-pathing descendants, the
        # next command (or service start) finishes the job.
        return _update({**changes, "paths_dirty": True}, _with_unschedule(current, scheduled,
                       {"$push": {"history": {"change": "moved", "on": effective.isoformat(),
                                              "from_parent": current["parent_id"]}}})), events
    moved = _command(stores.units, unit_id, command.version, decide)
    _repath_subtree(stores, moved)
    return load_unit(unit_id, stores)


def _repath_subtree(stores: Stores, unit: dict) -> None:
    """Rewrite descendants' ancestors and members' unit paths after `unit` moved. Idempotent: each
    path is derived from the moved unit's current ancestors. Each rewrite is a repository change
    (decided again on a lost race, so a command racing with the move is never overwritten) that
    keeps `version` (upkeep, not a business change: no caller's version goes stale)."""
    unit = stores.units.load(unit["_id"])  # its current ancestors (it may have moved again)
    _repath_members(stores, unit["_id"], domain.unit_path(unit))
    for desc in list(stores.units.coll.find({"ancestors": unit["_id"]}, {"_id": 1})):
        rebased: list[str] = []

        def set_ancestors(doc, rebased=rebased):
            rebased[:] = domain.rebased_ancestors(doc["ancestors"], unit["_id"], unit["ancestors"])
            return None if doc["ancestors"] == rebased else ({"$set": {"ancestors": list(rebased)}}, [])
        _command(stores.units, desc["_id"], None, set_ancestors, bump=False)
        _repath_members(stores, desc["_id"], rebased + [desc["_id"]])
    _command(stores.units, unit["_id"], None,
             lambda doc: ({"$unset": {"paths_dirty": ""}}, []) if doc.get("paths_dirty") else None, bump=False)


def _repath_members(stores: Stores, unit_id: str, path: list[str]) -> None:
    for store in (stores.members, stores.dues):
        # the unit's members, their paths compared here: FerretDB pushes no `$ne` down
        # (conventions.md: hot queries are equalities)
        stale = [d["_id"] for d in store.coll.find({"unit_id": unit_id}, {"_id": 1, "unit_path": 1})
                 if d.get("unit_path") != path]
        for member_id in stale:
            _command(store, member_id, None,
                     lambda x: None if x["unit_path"] == path or x["unit_id"] != unit_id
                     else ({"$set": {"unit_path": path}}, []), bump=False)


def repair_paths(stores: Stores) -> int:
    """Finish the re-pathing of every move that stopped half-way (run at start and before a move)."""
    n = 0
    for unit in list(stores.units.coll.find({"paths_dirty": True}, {"_id": 1})):
        _repath_subtree(stores, unit)
        n += 1
    return n


def backfill_name_terms(stores: Stores) -> int:
    """Give members stored before `name_terms` existed their terms (domain.name_terms), once
    (mongo.run_once): a repository change each that keeps `version` (upkeep). New and changed
    members get their terms from the domain at every write. Runs at start (description.py) before
    the service answers a search."""
    def work() -> int:
        n = 0
        for doc in list(stores.members.coll.find({}, {"_id": 1, "full_name": 1, "name_terms": 1})):
            if doc.get("full_name") is None or doc.get("name_terms") is not None:
                continue

            def set_terms(current: dict):
                if current.get("name_terms") is not None:
                    return None
                key = domain.search_key(current["full_name"])
                return {"$set": {"name_search": key, "name_terms": domain.name_terms(key)}}, []
            _command(stores.members, doc["_id"], None, set_terms, bump=False)
            n += 1
        return n
    return mongo.run_once(stores.db, "name_terms", work)


def merge_unit(command: commands.MergeUnit, caller: Caller, stores: Stores, scheduled: str | None = None) -> dict:
    """Merge `unit_id` into another unit: its child units move under the target, its members
    transfer to it (when the target admits members), then the unit closes. Each step is one
    single-document write with its own event; a crash part-way is finished by calling merge again
    (the unit stays `merging` until then)."""
    unit_id, version = command.unit_id, command.version
    repair_paths(stores)
    units = stores.units
    unit = load_unit(unit_id, stores)
    into = load_unit(command.into_unit_id, stores, "into_unit_id")
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    check_scope(caller, into["_id"], into["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    domain.check_merge(unit, into)
    for child in units.coll.find({"parent_id": unit_id, "status": "active"}, {"kind": 1}):
        domain.check_placement(child["kind"], into, field="into_unit_id")  # before anything moves
    effective = command.effective_date or today()
    if _is_future(effective, scheduled) and unit["status"] == "active":
        return _schedule(caller, stores, unit_id, "merge", effective, {"into_unit_id": into["_id"]}, version)
    if unit["status"] == "active":
        _check_version(unit, version)
        if into["kind"] not in domain.GRASSROOTS_KINDS and _current_members(stores, unit_id, count=True):
            raise RuleViolated("the unit has members; merge it into a CĐCS that can take them", field="into_unit_id")
        # the scheduled entry goes in the same change as `merging`: a second applier finds the
        # unit merging and only finishes the (idempotent) steps below
        started = _command(units, unit_id, version, lambda u: (
            _with_unschedule(u, scheduled, {"$set": {"status": "merging", "merging_into": into["_id"]}}), [])
            if u["status"] == "active" and _still_scheduled(u, scheduled) else None)
        if started["status"] != "merging":
            return started  # the scheduled merge was cancelled meanwhile
    for child in list(units.coll.find({"parent_id": unit_id, "status": "active"}, {"_id": 1})):
        def move_child(current: dict):
            if current["parent_id"] != unit_id or current["status"] != "active":
                return None  # moved already (a re-run of a merge that stopped part-way)
            changes, events = domain.move_unit(current, into, effective)
            return _update({**changes, "paths_dirty": True}), events
        _repath_subtree(stores, _command(units, child["_id"], None, move_child))
    for member in _current_members(stores, unit_id):
        def transfer_member(current: dict):
            if current["unit_id"] != unit_id or current["status"] not in CURRENT_STATUSES:
                return None
            changes, events = domain.transfer(current, unit, into, effective, reason="unit_merged",
                                               despite_request=True)
            return _update(changes), events
        _command(stores.members, member["_id"], None, transfer_member)

    def close(current: dict):
        changes, events = domain.close_merged_unit(current, into, effective)
        return _update({**changes, "merging_into": None}), events
    _command(units, unit_id, None, close)
    return load_unit(unit_id, stores)


CURRENT_STATUSES = ("admitted", "active")  # a record that left or was refused is no one's member now


def _current_members(stores: Stores, unit_id: str, count: bool = False):
    """The unit's admitted and active members (their list, or how many): one equality query per
    status, so that a record that left or whose admission was refused never holds a unit up."""
    coll = stores.members.coll
    if count:
        return sum(coll.count_documents({"unit_id": unit_id, "status": s}) for s in CURRENT_STATUSES)
    return [m for s in CURRENT_STATUSES for m in coll.find({"unit_id": unit_id, "status": s}, {"outbox": 0})]


def dissolve_unit(command: commands.DissolveUnit, caller: Caller, stores: Stores,
                  scheduled: str | None = None) -> dict:
    unit_id, version = command.unit_id, command.version
    unit = load_unit(unit_id, stores)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    _check_version(unit, version)
    effective = command.effective_date or today()
    if _is_future(effective, scheduled):
        # its members and child units may leave before the day: those rules are checked then
        return _schedule(caller, stores, unit_id, "dissolve", effective, {}, version)
    members = _current_members(stores, unit_id, count=True)
    children = stores.units.coll.count_documents({"parent_id": unit_id, "status": "active"})

    def decide(current: dict):
        if not _still_scheduled(current, scheduled):
            return None  # applied by another process
        changes, events = domain.dissolve_unit(current, members, children, effective)
        return _update(changes, _with_unschedule(current, scheduled, {})), events
    return _command(stores.units, unit_id, version, decide)


def _page(coll, query: dict, after: list | None, limit: int) -> dict:
    items, next_cursor = paging.page(coll, query, after, limit, projection={"outbox": 0})
    return {"items": items, "next_cursor": next_cursor}


def children(unit_id: str, q: dict, caller: Caller, stores: Stores) -> dict:
    read_unit(unit_id, caller, stores)
    query: dict[str, Any] = {"parent_id": unit_id}
    if q.get("kind"):
        query["kind"] = q["kind"]
    return _page(stores.units.coll, query, q.get("after"), q["limit"])


def subtree(unit_id: str, q: dict, caller: Caller, stores: Stores) -> dict:
    read_unit(unit_id, caller, stores)
    query: dict[str, Any] = {"ancestors": unit_id}
    if q.get("kind"):
        query["kind"] = q["kind"]
    return _page(stores.units.coll, query, q.get("after"), q["limit"])


def ancestors(unit_id: str, caller: Caller, stores: Stores) -> list[dict]:
    unit = read_unit(unit_id, caller, stores)
    # The caller sees the chain up to its own unit, not above it.
    visible = [a for a in unit["ancestors"] if caller.covers(a, unit["ancestors"][:unit["ancestors"].index(a)])]
    by_id = mongo.find_by_ids(stores.units.coll, visible, {"outbox": 0})
    return [by_id[a] for a in visible if a in by_id]


def committee(command: commands.ConsolidateCommittee, caller: Caller, stores: Stores) -> dict:
    unit = load_unit(command.unit_id, stores)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    _check_version(unit, command.version)
    positions = [dict(p) for p in command.positions]
    ids = [p["member_id"] for p in positions]
    members = mongo.find_by_ids(stores.members.coll, ids, {"outbox": 0})  # at most 60 positions (schemas)

    def decide(current: dict):
        record, events = domain.consolidate_committee(current, command.term, command.date, positions, members)
        return _update({"committee": record}, {"$push": {"committee_history": record}}), events
    return _command(stores.units, command.unit_id, command.version, decide)


def propose_rating(command: commands.ProposeRating, caller: Caller, stores: Stores) -> dict:
    unit = load_unit(command.unit_id, stores)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)

    def decide(current: dict):
        entry, events = domain.propose_rating(current, command.year, command.rating, caller.unit_id)
        if not events:
            return None  # already proposed as that
        return _update({f"ratings.{command.year}": entry}), events
    return _command(stores.units, command.unit_id, command.version, decide)


def confirm_rating(command: commands.ConfirmRating, caller: Caller, stores: Stores, cache: dict | None = None) -> dict:
    unit = load_unit(command.unit_id, stores)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    _check_version(unit, command.version)
    domain.check_decides_as_level_above(_actor_unit(caller, stores, cache), unit, "confirmed_by")
    by = unit["parent_id"] if caller.unit_id == PLATFORM_SCOPE else caller.unit_id

    def decide(current: dict):
        entry, events = domain.confirm_rating(current, command.year, command.rating, by)
        return _update({f"ratings.{command.year}": entry}), events
    return _command(stores.units, command.unit_id, command.version, decide)


# ---------------------------------------------------------------- members
def load_member(member_id: str, stores: Stores) -> dict:
    member = stores.members.get(member_id)
    if member is None:
        raise Missing(f"member {member_id} not found", field="member_id")
    return member


def _member_in_scope(caller: Caller, stores: Stores, member_id: str, write: bool,
                     cache: dict | None = None) -> tuple[dict, dict]:
    member = load_member(member_id, stores)
    unit = load_unit(member["unit_id"], stores, cache=cache)
    check_scope(caller, unit["_id"], unit["ancestors"], write=write)
    return member, unit


def read_member(member_id: str, caller: Caller, stores: Stores) -> dict:
    return _member_in_scope(caller, stores, member_id, write=False)[0]


def _former_first(member: dict) -> tuple:
    """Order of a person's former records: the one whose membership ended last."""
    return (member.get("left_on") or member.get("refused_on") or member.get("admitted_on") or "", member["_id"])


def lookup_member(q: dict, caller: Caller, stores: Stores) -> dict:
    """A member by citizen ID (CCCD) or card number, scoped like every read. A CCCD is unique
    among current records only (`active_citizen_id`: admitted or active); a person who left, or
    whose admission was refused, and was admitted again has several records. The answer is the
    current record; without one, the latest former record (left or refused)."""
    coll = stores.members.coll
    if q.get("member_number"):
        member = coll.find_one({"member_number": q["member_number"]}, {"outbox": 0})
        field, what = "member_number", "card number"
    else:
        member = coll.find_one({"active_citizen_id": q["citizen_id"]}, {"outbox": 0})
        if member is None:
            former = list(coll.find({"citizen_id": q["citizen_id"]}, {"outbox": 0}))
            member = max(former, key=_former_first) if former else None
        field, what = "citizen_id", "citizen ID"
    if member is None:
        raise Missing(f"no member with this {what}", field=field)  # the value is not echoed
    unit = load_unit(member["unit_id"], stores)
    check_scope(caller, unit["_id"], unit["ancestors"])  # 403 naming nothing of the member
    return member


def admit(command: commands.AdmitMember, caller: Caller, stores: Stores, cache: dict | None = None) -> dict:
    unit_id = command.unit_id
    unit = load_unit(unit_id, stores, cache=cache)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    key = _idempotency_key(caller, "members.admit", command.idempotency_key)
    # the request as sent (its unit and body): what a key stands for
    fingerprint = _fingerprint(fields_of(command, "idempotency_key", "method")) if key else None
    cmd = fields_of(command, "idempotency_key", "unit_id")

    def finish(first: dict) -> dict:
        doc, events = domain.admit(first["_id"], cmd, unit, today())
        return stores.members.finish_create(doc, events)
    first = _first_created(stores.members, key, fingerprint, finish)
    if first is not None:
        return first
    member_id = "m-" + uuid.uuid4().hex[:16]
    doc, events = domain.admit(member_id, cmd, unit, today())
    stamp = {"idempotency_key": key, "request_fingerprint": fingerprint} if key else None
    try:
        return stores.members.create(doc, events, stamp)  # the member as committed, no read back
    except AlreadyExists as exc:
        first = _first_created(stores.members, key, fingerprint, finish)
        if first is not None:
            return first  # a racing retry with the same key created it first
        raise Conflict("a member with this citizen ID is already active", field="citizen_id") from exc


def _member_write(stores: Stores, member: dict, unit: dict, version: int | None, fn, *args, extra_ops=None) -> dict:
    """Run a rule on a member already loaded and scope-checked, and save its change with its
    events; on a lost race the rule runs again on the member as it is now."""
    def decide(current: dict):
        changes, events = fn(current, unit, *args)
        if not events:
            return None
        cid = changes.get("active_citizen_id")
        # another member holding it (compared here, not by `$ne` in the query: hot queries are equalities)
        if cid and any(d["_id"] != current["_id"] for d in stores.members.coll.find({"active_citizen_id": cid},
                                                                                   {"_id": 1})):
            # the copy's unique index would refuse it: refuse the command before committing
            raise Conflict("a member with this citizen ID is already active", field="citizen_id")
        return _update(changes, extra_ops), events
    return _command(stores.members, member["_id"], version, decide)


def _member_command(caller: Caller, stores: Stores, member_id: str, version: int | None, fn, *args,
                    extra_ops=None) -> dict:
    member, unit = _member_in_scope(caller, stores, member_id, write=True)
    return _member_write(stores, member, unit, version, fn, *args, extra_ops=extra_ops)


def _decider(caller: Caller, unit: dict) -> str:
    """The unit a decision is made by: the caller's, or for the platform operator the CĐCS's parent."""
    return unit["parent_id"] if caller.unit_id == PLATFORM_SCOPE else caller.unit_id


def approve(command: commands.ApproveMember, caller: Caller, stores: Stores, cache: dict | None = None) -> dict:
    member, unit = _member_in_scope(caller, stores, command.member_id, write=True, cache=cache)
    domain.check_decides_as_level_above(_actor_unit(caller, stores, cache), unit, "approved_by")
    return _member_write(stores, member, unit, command.version, domain.approve, _decider(caller, unit),
                         command.on or today())


def refuse(command: commands.RefuseAdmission, caller: Caller, stores: Stores, cache: dict | None = None) -> dict:
    """The level above refuses an admission. The citizen ID is freed (`active_citizen_id`), so
    that the person may be admitted again later, as a new admission."""
    member, unit = _member_in_scope(caller, stores, command.member_id, write=True, cache=cache)
    domain.check_decides_as_level_above(_actor_unit(caller, stores, cache), unit, "refused_by")
    on = command.on or today()
    return _member_write(stores, member, unit, command.version, domain.refuse, _decider(caller, unit),
                         command.reason, on,
                         extra_ops={"$unset": {"active_citizen_id": ""},
                                    "$push": {"history": {"change": "refused", "on": on.isoformat()}}})


def _province_code(stores: Stores, unit: dict, cache: dict | None = None) -> str:
    if cache is not None and ("province", unit["_id"]) in cache:
        return cache[("province", unit["_id"])]
    code = "VN"
    for anc in unit["ancestors"]:
        a = stores.units.coll.find_one({"_id": anc}, {"kind": 1, "code": 1})
        if a and a.get("kind") == "province":
            code = re.sub(r"[^A-Z0-9]", "", a["code"].upper())[:6] or "VN"
            break
    if cache is not None:
        cache[("province", unit["_id"])] = code
    return code


def issue_card(command: commands.IssueCard, caller: Caller, stores: Stores, cache: dict | None = None) -> dict:
    member, unit = _member_in_scope(caller, stores, command.member_id, write=True, cache=cache)
    domain.check_decides_as_level_above(_actor_unit(caller, stores, cache), unit, "member_number")
    on = command.on or today()
    _check_version(member, command.version)  # before a card number is drawn
    if member["status"] != "active" or member.get("member_number"):
        domain.issue_card(member, unit, "", on)  # raises the rule's refusal, writes nothing
    province = _province_code(stores, unit, cache)
    number = domain.member_number(province, on.year, stores.next_number(f"card:{province}:{on.year}"))
    return _member_write(stores, member, unit, command.version, domain.issue_card, number, on,
                         extra_ops={"$push": {"history": {"change": "card_issued", "on": on.isoformat()}}})


def transfer(command: commands.TransferMember, caller: Caller, stores: Stores) -> dict:
    """A destination inside the caller's subtree: the member moves now. Outside it: a transfer
    REQUEST, recorded on the member, that the receiving side accepts or refuses (nothing moves, no
    figure changes, until it accepts)."""
    member, from_unit = _member_in_scope(caller, stores, command.member_id, write=True)
    to_unit = load_unit(command.to_unit_id, stores, "to_unit_id")
    on = command.on or today()
    letter = {"letter_no": command.letter_no, "letter_date": command.letter_date}
    if not caller.covers(to_unit["_id"], to_unit["ancestors"]):
        return _member_write(stores, member, from_unit, command.version,
                             lambda current, unit: domain.request_transfer(current, unit, to_unit, letter,
                                                                           caller.subject, on),
                             extra_ops={"$push": {"history": {"change": "transfer_requested", "on": on.isoformat(),
                                                              "from": from_unit["_id"], "to": to_unit["_id"]}}})
    return _member_write(stores, member, from_unit, command.version,
                         lambda current, unit: domain.transfer(current, unit, to_unit, on, letter=letter),
                         extra_ops={"$push": {"history": {"change": "transferred", "on": on.isoformat(),
                                                          "from": from_unit["_id"], "to": to_unit["_id"]}}})


CLEAR_REQUEST = {"pending_transfer": "", "pending_transfer_path": ""}


def _incoming_request(caller: Caller, stores: Stores, unit_id: str, member_id: str) -> tuple[dict, dict, dict]:
    """(member, its current unit, the destination) of a request addressed to `unit_id` or below it;
    the caller covers `unit_id` (checked on the path) and so the destination."""
    member = load_member(member_id, stores)
    pending = member.get("pending_transfer")
    if not pending or unit_id not in (member.get("pending_transfer_path") or []):
        raise Missing(f"no transfer request of {member_id} to unit {unit_id}", field="member_id")
    to_unit = load_unit(pending["to_unit_id"], stores, "to_unit_id")
    check_scope(caller, to_unit["_id"], to_unit["ancestors"], write=True)
    return member, load_unit(member["unit_id"], stores), to_unit


def accept_transfer(command: commands.AcceptTransfer, caller: Caller, stores: Stores) -> dict:
    """The receiving side accepts: the member moves (`member.transferred`, with the letter)."""
    member, from_unit, to_unit = _incoming_request(caller, stores, command.unit_id, command.member_id)
    on = command.on or today()

    def accept(current: dict, unit: dict):
        pending = current.get("pending_transfer")
        if not pending or pending["to_unit_id"] != to_unit["_id"]:
            raise RuleViolated("the member has no pending transfer request to this unit", field="pending_transfer")
        return domain.transfer(current, unit, to_unit, on, letter=pending, despite_request=True)
    return _member_write(stores, member, from_unit, command.version, accept,
                         extra_ops={"$unset": CLEAR_REQUEST,
                                    "$push": {"history": {"change": "transferred", "on": on.isoformat(),
                                                          "from": from_unit["_id"], "to": to_unit["_id"]}}})


def refuse_transfer(command: commands.RefuseTransfer, caller: Caller, stores: Stores) -> dict:
    member, from_unit, to_unit = _incoming_request(caller, stores, command.unit_id, command.member_id)
    on = command.on or today()
    return _member_write(stores, member, from_unit, command.version, domain.close_transfer_request, "refused",
                         caller.subject, command.reason, on,
                         extra_ops={"$unset": CLEAR_REQUEST,
                                    "$push": {"history": {"change": "transfer_refused", "on": on.isoformat(),
                                                          "to": to_unit["_id"]}}})


def cancel_transfer(command: commands.CancelTransfer, caller: Caller, stores: Stores) -> dict:
    """The sending side withdraws its request while it is pending."""
    on = command.on or today()
    return _member_command(caller, stores, command.member_id, command.version, domain.close_transfer_request,
                           "cancelled", caller.subject, None, on,
                           extra_ops={"$unset": CLEAR_REQUEST,
                                      "$push": {"history": {"change": "transfer_cancelled", "on": on.isoformat()}}})


def transfer_requests(unit_id: str, q: dict, caller: Caller, stores: Stores) -> dict:
    """Pending requests addressed to the unit or a CĐCS below it."""
    read_unit(unit_id, caller, stores)
    return _page(stores.members.coll, {"pending_transfer_path": unit_id}, q.get("after"), q["limit"])


def leave(command: commands.RecordLeaving, caller: Caller, stores: Stores) -> dict:
    on = command.on or today()
    return _member_command(caller, stores, command.member_id, command.version, domain.leave, command.reason, on,
                           extra_ops={"$unset": {"active_citizen_id": ""},
                                      "$push": {"history": {"change": "left", "on": on.isoformat(),
                                                            "reason": command.reason}}})


def reinstate(command: commands.ReinstateMember, caller: Caller, stores: Stores) -> dict:
    on = command.on or today()
    return _member_command(caller, stores, command.member_id, command.version, domain.reinstate, on,
                           extra_ops={"$unset": {"left_on": "", "left_reason": ""},
                                      "$push": {"history": {"change": "reinstated", "on": on.isoformat()}}})


def update_profile(command: commands.UpdateProfile, caller: Caller, stores: Stores) -> dict:
    now = today()
    return _member_command(caller, stores, command.member_id, command.version, domain.update_profile,
                           dict(command.changes), command.on or now, now)


def list_members(unit_id: str, q: dict, caller: Caller, stores: Stores) -> dict:
    read_unit(unit_id, caller, stores)
    query: dict[str, Any] = {"unit_path": unit_id}
    if q.get("status"):
        query["status"] = q["status"]
    if q.get("q"):
        key = domain.search_key(q["q"])
        # whole words in order: "nguyen thi ha" finds "Nguyễn Thị Hà", not "Nguyễn Thị Hải". One
        # equality on the stored runs of words (domain.name_terms); a search longer than the
        # longest stored run asks for its first run and keeps the names that hold all of it.
        words = key.split()
        query["name_terms"] = " ".join(words[:domain.NAME_TERM_WORDS])
        if len(words) > domain.NAME_TERM_WORDS:
            whole = re.compile(f"(^| ){re.escape(key)}( |$)")
            return paging.page_where(stores.members.coll, query, q.get("after"), q["limit"],
                               lambda m: bool(whole.search(m.get("name_search") or "")))
    return _page(stores.members.coll, query, q.get("after"), q["limit"])


# ---------------------------------------------------------------- dues
def record_dues(command: commands.RecordDues, caller: Caller, stores: Stores) -> dict:
    member_id = command.member_id
    member, unit = _member_in_scope(caller, stores, member_id, write=True)
    month = date.fromisoformat(command.month + "-01")
    key = f"{member_id}:{command.month}"
    dues = stores.dues

    def record(existing: dict | None):
        return domain.record_dues(member, unit, month, command.salary, command.paid,
                                  command.on_social_insurance_benefits, command.unpaid_leave_months, existing)
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


def member_dues(member_id: str, caller: Caller, stores: Stores) -> list[dict]:
    _member_in_scope(caller, stores, member_id, write=False)
    return list(stores.dues.coll.find({"member_id": member_id}, {"outbox": 0}).sort("_id", 1))


# ---------------------------------------------------------------- bulk import
# Reading the file (CSV or XLSX, bounded: IMPORT_MAX_ROWS, IMPORT_MAX_BYTES) into rows: import_file.py


def import_members(command: commands.ImportMembers, caller: Caller, stores: Stores, *,
                   parse_row: Callable[[dict], dict]) -> tuple[dict, bool]:
    """Admit a group from one file: a batch of admissions (batch.py), one per row, each with its
    own result. A bad row never blocks the good ones; re-running the same file admits nobody twice
    (a citizen ID already active in this CĐCS is reported, not re-admitted); with an
    Idempotency-Key, a retry returns the first report and changes nothing. `parse_row`: the API's
    validation of one admission (a row it refuses is reported with its fields)."""
    unit_id, filename, content = command.unit_id, command.filename, command.content
    unit = load_unit(unit_id, stores)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    rows = rows_from_file(filename, content)
    cache: dict = {("unit", unit_id): unit}

    def admit_row(i: int, raw: dict) -> dict:
        cmd = parse_row(clean_row(raw))
        existing = stores.members.coll.find_one({"active_citizen_id": cmd["citizen_id"]}, {"unit_id": 1})
        if existing and existing["unit_id"] == unit_id:
            return {"row": i + 2, "status": "already_admitted", "member_id": existing["_id"], "errors": None}
        member = admit(commands.AdmitMember(unit_id=unit_id, method="group", **cmd), caller, stores, cache=cache)
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
    return batch.run(stores.batches, caller, "members.import", command.idempotency_key, request, rows, admit_row,
                     rejected, report)


# ---------------------------------------------------------------- batches of decisions
def _member_brief(doc: dict) -> dict:
    return {"id": doc["_id"], "unit_id": doc["unit_id"], "status": doc["status"], "version": doc["version"],
            "approved_on": doc.get("approved_on"), "refused_on": doc.get("refused_on"),
            "member_number": doc.get("member_number"), "card_issued_on": doc.get("card_issued_on")}


def decide_admissions(command: commands.DecideAdmissions, caller: Caller, stores: Stores, *,
                      parse_item: Callable[[Any], dict]) -> tuple[dict, bool]:
    """Approve or refuse many admissions: each item through approve() / refuse(), as one by one."""
    on = command.on or today()
    cache: dict = {}

    def decide(i: int, raw: Any) -> dict:
        item = parse_item(raw)
        if item["decision"] == "approve":
            member = approve(commands.ApproveMember(item["member_id"], on, item.get("version")), caller, stores, cache)
        else:
            member = refuse(commands.RefuseAdmission(item["member_id"], item.get("reason"), on, item.get("version")),
                            caller, stores, cache)
        return {"index": i, "status": 200, "member": _member_brief(member)}
    request = {"items": list(command.items), "on": command.on}  # the body as sent: what a key stands for
    return batch.run(stores.batches, caller, "members.decisions", command.idempotency_key, request,
                     list(command.items), decide)


def issue_cards(command: commands.IssueCards, caller: Caller, stores: Stores, *,
                parse_item: Callable[[Any], dict]) -> tuple[dict, bool]:
    """Issue many cards: each item through issue_card(), as one by one."""
    on = command.on or today()
    cache: dict = {}

    def issue(i: int, raw: Any) -> dict:
        item = parse_item(raw)
        member = issue_card(commands.IssueCard(item["member_id"], on, item.get("version")), caller, stores, cache)
        return {"index": i, "status": 200, "member": _member_brief(member)}
    request = {"items": list(command.items), "on": command.on}
    return batch.run(stores.batches, caller, "members.cards", command.idempotency_key, request,
                     list(command.items), issue)


def record_ratings(command: commands.RecordRatings, caller: Caller, stores: Stores, *,
                   parse_item: Callable[[Any], dict]) -> tuple[dict, bool]:
    """Propose or confirm many CĐCS ratings: each item through propose_rating() / confirm_rating().
    The endpoint requires `rating.propose`; a confirmation also needs `rating.confirm` (403 per item)."""
    cache: dict = {}

    def rate(i: int, raw: Any) -> dict:
        item = parse_item(raw)
        year = item["year"]
        if item["action"] == "propose":
            unit = propose_rating(commands.ProposeRating(item["unit_id"], year, item["rating"], item.get("version")),
                                  caller, stores)
        else:
            if not permissions.allowed(caller, "rating.confirm"):
                raise Forbidden(f"the roles {sorted(caller.roles)} may not rating confirm")
            command = commands.ConfirmRating(item["unit_id"], year, item.get("rating"), item.get("version"))
            unit = confirm_rating(command, caller, stores, cache)
        entry = unit["ratings"][str(year)]
        return {"index": i, "status": 200, "unit": {"id": unit["_id"], "version": unit["version"], "year": year,
                                                     "rating": entry["rating"], "rating_status": entry["status"]}}
    return batch.run(stores.batches, caller, "units.ratings", command.idempotency_key, {"items": list(command.items)},
                     list(command.items), rate)

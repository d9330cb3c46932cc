"""Membership service layer: load what a command needs, check the caller's scope, call the rules
in domain.py, and save each change as ONE single-document write carrying its events (outbox)."""
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
from platformkit.outbox import (OUTBOX_INDEX, AlreadyExists, StaleVersion, insert_with_events,
                                update_with_events)
from platformkit.write_claims import claimed_update, next_sequence
from platformkit.errors import Conflict, InvalidInput, RuleViolated, TooLarge
from platformkit.errors import NotFound as Missing

from . import batch, domain

SERVICE = "membership"
# The Idempotency-Key of the POST that created a unit or a member (caller-scoped, see
# _idempotency_key) is stored with the document it created, under a unique index: two racing
# retries cannot both insert. Sparse: most documents have none (a unique non-sparse index would
# treat every missing key as the same null on MongoDB).
IDEMPOTENCY_INDEX = ("idempotency_key", {"unique": True, "sparse": True, "name": "idempotency_key"})
INDEXES = {
    "units": [("code", {"unique": True, "name": "code"}), ("parent_id", {"name": "parent"}),
              ("ancestors", {"name": "ancestors"}), ("paths_dirty", {"name": "paths_dirty"}), IDEMPOTENCY_INDEX,
              *OUTBOX_INDEX],
    "members": [("active_citizen_id", {"unique": True, "sparse": True, "name": "active_citizen_id"}),
                ("member_number", {"unique": True, "sparse": True, "name": "member_number"}),
                ("citizen_id", {"name": "citizen_id"}),  # the lookup of a person's former records
                ("unit_path", {"name": "unit_path"}), ("unit_id", {"name": "unit"}),
                ("name_search", {"name": "name_search"}), IDEMPOTENCY_INDEX, *OUTBOX_INDEX],
    "dues": [("member_id", {"name": "member"}), *OUTBOX_INDEX],
    # batches: _id is the caller-scoped Idempotency-Key of a batch (services/membership/batch.py)
}
OUTBOX_COLLECTIONS = ("units", "members", "dues")  # published by the relay (description.py)


def db() -> Database:
    return mongo.database(SERVICE)


def setup(database: Database | None = None) -> None:
    mongo.ensure_indexes(database or db(), INDEXES)


def today() -> date:
    return clock.today()  # Vietnam's day (platformkit.clock), whatever the server's zone


# ---------------------------------------------------------------- idempotent creation
def _fingerprint(request: Any) -> str:
    return idempotency.fingerprint_of(request)


def _idempotency_key(caller: Caller, operation: str, key: str | None) -> str | None:
    """Keys are chosen by clients: scoped by the token's subject and unit (a token for another
    unit never replays what an earlier token saw) and by the operation (batch.scoped_key)."""
    return batch.scoped_key(caller, operation, key) if key else None


def _first_created(coll, key: str | None, fingerprint: str) -> dict | None:
    """What a POST with this Idempotency-Key created, if one did; a different request under the
    same key is refused (422 naming the header). The answer is the created document as it stands:
    the same body as the first answer unless the document changed since (no second copy of a
    member's personal data is kept for replays)."""
    if not key:
        return None
    first = coll.find_one({"idempotency_key": key}, {"outbox": 0})
    if first is not None and first.get("request_fingerprint") != fingerprint:
        raise RuleViolated("this Idempotency-Key was used for a different request", field="Idempotency-Key")
    return first


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
    unit = db().units.find_one({"_id": unit_id}, {"outbox": 0})
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
    first = _first_created(db().units, key, fingerprint)
    if first is not None:
        return first
    cmd = {**cmd, "effective_date": cmd.get("effective_date") or today()}
    unit_id = "u-" + uuid.uuid4().hex[:16]
    doc, events = domain.new_unit(unit_id, cmd, parent)
    doc["version"] = len(events)
    if key:
        doc.update(idempotency_key=key, request_fingerprint=fingerprint)
    try:
        insert_with_events(db().units, doc, events)
    except AlreadyExists as exc:
        first = _first_created(db().units, key, fingerprint)
        if first is not None:
            return first  # a racing retry with the same key created it first
        raise Conflict(f"unit code {cmd['code']} is taken", field="code") from exc
    return load_unit(unit_id)


def rename_unit(caller: Caller, unit_id: str, cmd: dict) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    expected = _check_version(unit, cmd.get("version"))
    changes, events = domain.rename_unit(unit, cmd["name"], cmd.get("effective_date") or today())
    return update_with_events(db().units, unit_id, expected, changes, events,
                              {"$push": {"history": {"change": "renamed", "on": events[0].data["effective_date"],
                                                     "from": unit["name"]}}})


def move_unit(caller: Caller, unit_id: str, cmd: dict) -> dict:
    repair_paths()
    unit = load_unit(unit_id)
    new_parent = load_unit(cmd["parent_id"], "parent_id")
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    check_scope(caller, new_parent["_id"], new_parent["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    expected = _check_version(unit, cmd.get("version"))
    effective = cmd.get("effective_date") or today()
    changes, events = domain.move_unit(unit, new_parent, effective)
    # paths_dirty is set in the same write: if we crash while re-pathing descendants, the next
    # command (or service start) finishes the job.
    moved = update_with_events(db().units, unit_id, expected, {**changes, "paths_dirty": True}, events,
                               {"$push": {"history": {"change": "moved", "on": effective.isoformat(),
                                                      "from_parent": unit["parent_id"]}}})
    _repath_subtree(moved)
    return load_unit(unit_id)


def _repath_subtree(unit: dict) -> None:
    """Rewrite descendants' ancestors and members' unit paths after `unit` moved. Idempotent: each
    path is derived from the moved unit's current ancestors. Claimed writes, so that a member
    command racing with the move is never overwritten."""
    d = db()
    _repath_members(unit["_id"], domain.unit_path(unit))
    for desc in list(d.units.find({"ancestors": unit["_id"]}, {"_id": 1})):
        rebased: list[str] = []

        def set_ancestors(doc, rebased=rebased):
            rebased[:] = domain.rebased_ancestors(doc["ancestors"], unit["_id"], unit["ancestors"])
            return None if doc["ancestors"] == rebased else {"$set": {"ancestors": list(rebased)}}
        claimed_update(d.units, desc["_id"], set_ancestors)
        _repath_members(desc["_id"], rebased + [desc["_id"]])
    claimed_update(d.units, unit["_id"], lambda doc: {"$unset": {"paths_dirty": ""}} if doc.get("paths_dirty") else None)


def _repath_members(unit_id: str, path: list[str]) -> None:
    d = db()
    for coll in (d.members, d.dues):
        for doc in list(coll.find({"unit_id": unit_id, "unit_path": {"$ne": path}}, {"_id": 1})):
            claimed_update(coll, doc["_id"], lambda x: None if x["unit_path"] == path else {"$set": {"unit_path": path}})


def repair_paths() -> int:
    n = 0
    for unit in db().units.find({"paths_dirty": True}, {"outbox": 0}):
        _repath_subtree(unit)
        n += 1
    return n


def merge_unit(caller: Caller, unit_id: str, cmd: dict) -> dict:
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
    if unit["status"] == "active":
        expected = _check_version(unit, cmd.get("version"))
        if into["kind"] not in domain.GRASSROOTS_KINDS and _current_members(unit_id, count=True):
            raise RuleViolated("the unit has members; merge it into a CĐCS that can take them", field="into_unit_id")
        update_with_events(d.units, unit_id, expected, {"status": "merging", "merging_into": into["_id"]}, [])
    for child in list(d.units.find({"parent_id": unit_id, "status": "active"}, {"outbox": 0})):
        changes, events = domain.move_unit(child, into, effective)
        moved = update_with_events(d.units, child["_id"], child["version"], {**changes, "paths_dirty": True}, events)
        _repath_subtree(moved)
    for member in _current_members(unit_id):
        changes, events = domain.transfer(member, unit, into, effective, reason="unit_merged")
        update_with_events(d.members, member["_id"], member["version"], changes, events)
    unit = load_unit(unit_id)
    changes, events = domain.close_merged_unit(unit, into, effective)
    update_with_events(d.units, unit_id, unit["version"], {**changes, "merging_into": None}, events)
    return load_unit(unit_id)


CURRENT_STATUSES = ("admitted", "active")  # a record that left or was refused is no one's member now


def _current_members(unit_id: str, count: bool = False):
    """The unit's admitted and active members (their list, or how many): one equality query per
    status, so that a record that left or whose admission was refused never holds a unit up."""
    coll = db().members
    if count:
        return sum(coll.count_documents({"unit_id": unit_id, "status": s}) for s in CURRENT_STATUSES)
    return [m for s in CURRENT_STATUSES for m in coll.find({"unit_id": unit_id, "status": s}, {"outbox": 0})]


def dissolve_unit(caller: Caller, unit_id: str, cmd: dict) -> dict:
    d = db()
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    expected = _check_version(unit, cmd.get("version"))
    members = _current_members(unit_id, count=True)
    children = d.units.count_documents({"parent_id": unit_id, "status": "active"})
    changes, events = domain.dissolve_unit(unit, members, children, cmd.get("effective_date") or today())
    return update_with_events(d.units, unit_id, expected, changes, events)


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
    expected = _check_version(unit, cmd.get("version"))
    ids = [p["member_id"] for p in cmd["positions"]]
    members = {m["_id"]: m for m in db().members.find({"_id": {"$in": ids}}, {"outbox": 0})}
    record, events = domain.consolidate_committee(unit, cmd["term"], cmd["date"], cmd["positions"], members)
    return update_with_events(db().units, unit_id, expected, {"committee": record}, events,
                              {"$push": {"committee_history": record}})


def propose_rating(caller: Caller, unit_id: str, cmd: dict) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    expected = _check_version(unit, cmd.get("version"))
    entry, events = domain.propose_rating(unit, cmd["year"], cmd["rating"], caller.unit_id)
    if not events:
        return unit  # already proposed as that
    return update_with_events(db().units, unit_id, expected, {f"ratings.{cmd['year']}": entry}, events)


def confirm_rating(caller: Caller, unit_id: str, year: int, cmd: dict, cache: dict | None = None) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    expected = _check_version(unit, cmd.get("version"))
    domain.check_decides_as_level_above(_actor_unit(caller, cache), unit, "confirmed_by")
    by = unit["parent_id"] if caller.unit_id == PLATFORM_SCOPE else caller.unit_id
    entry, events = domain.confirm_rating(unit, year, cmd.get("rating"), by)
    return update_with_events(db().units, unit_id, expected, {f"ratings.{year}": entry}, events)


# ---------------------------------------------------------------- members
def load_member(member_id: str) -> dict:
    member = db().members.find_one({"_id": member_id}, {"outbox": 0})
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
    first = _first_created(db().members, key, fingerprint)
    if first is not None:
        return first
    member_id = "m-" + uuid.uuid4().hex[:16]
    doc, events = domain.admit(member_id, {**cmd, "method": method}, unit, today())
    if key:
        doc.update(idempotency_key=key, request_fingerprint=fingerprint)
    try:
        insert_with_events(db().members, doc, events)
    except AlreadyExists as exc:
        first = _first_created(db().members, key, fingerprint)
        if first is not None:
            return first  # a racing retry with the same key created it first
        raise Conflict("a member with this citizen ID is already active", field="citizen_id") from exc
    return load_member(member_id)


def _member_write(member: dict, unit: dict, version: int | None, fn, *args, extra_ops=None) -> dict:
    """Run a rule on a member already loaded and scope-checked, and save its change with its events."""
    expected = _check_version(member, version)
    changes, events = fn(member, unit, *args)
    if not events:
        return member
    try:
        return update_with_events(db().members, member["_id"], expected, changes, events, extra_ops)
    except AlreadyExists as exc:
        raise Conflict("a member with this citizen ID is already active", field="citizen_id") from exc


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
    number = domain.member_number(province, on.year, next_sequence(db(), f"card:{province}:{on.year}"))
    return _member_write(member, unit, cmd.get("version"), domain.issue_card, number, on,
                         extra_ops={"$push": {"history": {"change": "card_issued", "on": on.isoformat()}}})


def transfer(caller: Caller, member_id: str, cmd: dict) -> dict:
    member, from_unit = _member_in_scope(caller, member_id, write=True)
    to_unit = load_unit(cmd["to_unit_id"], "to_unit_id")
    if not caller.covers(to_unit["_id"], to_unit["ancestors"]):
        # A member moves between subtrees only through a level that holds both (issue: transfers
        # across subtrees as requests the receiving side accepts are not built yet).
        raise Forbidden("the destination unit is outside the caller's subtree")
    expected = _check_version(member, cmd.get("version"))
    on = cmd.get("on") or today()
    changes, events = domain.transfer(member, from_unit, to_unit, on)
    return update_with_events(db().members, member_id, expected, changes, events,
                              {"$push": {"history": {"change": "transferred", "on": on.isoformat(),
                                                     "from": from_unit["_id"], "to": to_unit["_id"]}}})


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
    existing = db().dues.find_one({"_id": key}, {"outbox": 0})
    doc, events = domain.record_dues(member, unit, month, cmd["salary"], cmd["paid"],
                                     cmd["on_social_insurance_benefits"], cmd["unpaid_leave_months"], existing)
    if not events:
        return existing  # naturally idempotent: the same month with the same figures changes nothing
    if existing is None:
        try:
            insert_with_events(db().dues, doc, events)
        except AlreadyExists as exc:
            raise StaleVersion(key) from exc  # recorded concurrently: reload and retry
    else:
        fields = {k: v for k, v in doc.items() if k != "_id"}
        update_with_events(db().dues, key, existing["version"], fields, events)
    return db().dues.find_one({"_id": key}, {"outbox": 0})


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

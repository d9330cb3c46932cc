"""Membership service layer: load what a command needs, check the caller's scope, call the rules
in domain.py, and save each change as ONE single-document write carrying its events (outbox)."""
from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import date
from typing import Any

from marshmallow import ValidationError
from pymongo import ASCENDING
from pymongo.database import Database

from platformkit import mongo
from platformkit.auth import PLATFORM_SCOPE, Caller, Forbidden, check_scope
from platformkit.outbox import (OUTBOX_INDEX, AlreadyExists, StaleVersion, insert_with_events,
                                update_with_events)
from platformkit.write_claims import claimed_update, next_sequence
from platformkit.web import Conflict, InvalidInput, Missing, RuleViolated, TooLarge

from . import domain
from .schemas import AdmitIn

SERVICE = "membership"
INDEXES = {
    "units": [("code", {"unique": True, "name": "code"}), ("parent_id", {"name": "parent"}),
              ("ancestors", {"name": "ancestors"}), ("paths_dirty", {"name": "paths_dirty"}), *OUTBOX_INDEX],
    "members": [("active_citizen_id", {"unique": True, "sparse": True, "name": "active_citizen_id"}),
                ("member_number", {"unique": True, "sparse": True, "name": "member_number"}),
                ("unit_path", {"name": "unit_path"}), ("unit_id", {"name": "unit"}),
                ("name_search", {"name": "name_search"}), *OUTBOX_INDEX],
    "dues": [("member_id", {"name": "member"}), *OUTBOX_INDEX],
}
RELAY_ROUTES = {"units": "membership.events", "members": "membership.events", "dues": "membership.events"}


def db() -> Database:
    return mongo.database(SERVICE)


def setup(database: Database | None = None) -> None:
    mongo.ensure_indexes(database or db(), INDEXES)


def today() -> date:
    return date.today()


def _check_version(doc: dict, version: int | None) -> int:
    if version is not None and version != doc["version"]:
        raise StaleVersion(f"{doc['_id']} is at version {doc['version']}, not {version}")
    return doc["version"]


# ---------------------------------------------------------------- units
def load_unit(unit_id: str, field: str = "unit_id") -> dict:
    unit = db().units.find_one({"_id": unit_id}, {"outbox": 0})
    if unit is None:
        raise Missing(f"unit {unit_id} not found", field=field)
    return unit


def _actor(caller: Caller) -> str | None:
    """The unit a command is made by: None for the platform operator (who acts for any level)."""
    return None if caller.unit_id == PLATFORM_SCOPE else caller.unit_id


def _actor_unit(caller: Caller) -> dict | None:
    if caller.unit_id == PLATFORM_SCOPE:
        return None
    return db().units.find_one({"_id": caller.unit_id}, {"outbox": 0}) or {"_id": caller.unit_id, "kind": None}


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


def create_unit(caller: Caller, cmd: dict) -> dict:
    parent = None
    if cmd.get("parent_id"):
        parent = load_unit(cmd["parent_id"], "parent_id")
        check_scope(caller, parent["_id"], parent["ancestors"], write=True)
    elif caller.unit_id != PLATFORM_SCOPE or "admin" not in caller.roles:
        raise Forbidden("only the platform operator creates a root unit")
    cmd = {**cmd, "effective_date": cmd.get("effective_date") or today()}
    unit_id = "u-" + uuid.uuid4().hex[:16]
    doc, events = domain.new_unit(unit_id, cmd, parent)
    doc["version"] = len(events)
    try:
        insert_with_events(db().units, doc, events)
    except AlreadyExists as exc:
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
        if into["kind"] not in domain.GRASSROOTS_KINDS and d.members.count_documents(
                {"unit_id": unit_id, "status": {"$ne": "left"}}, limit=1):
            raise RuleViolated("the unit has members; merge it into a CĐCS that can take them", field="into_unit_id")
        update_with_events(d.units, unit_id, expected, {"status": "merging", "merging_into": into["_id"]}, [])
    for child in list(d.units.find({"parent_id": unit_id, "status": "active"}, {"outbox": 0})):
        changes, events = domain.move_unit(child, into, effective)
        moved = update_with_events(d.units, child["_id"], child["version"], {**changes, "paths_dirty": True}, events)
        _repath_subtree(moved)
    for member in list(d.members.find({"unit_id": unit_id, "status": {"$ne": "left"}}, {"outbox": 0})):
        changes, events = domain.transfer(member, unit, into, effective, reason="unit_merged")
        update_with_events(d.members, member["_id"], member["version"], changes, events)
    unit = load_unit(unit_id)
    changes, events = domain.close_merged_unit(unit, into, effective)
    update_with_events(d.units, unit_id, unit["version"], {**changes, "merging_into": None}, events)
    return load_unit(unit_id)


def dissolve_unit(caller: Caller, unit_id: str, cmd: dict) -> dict:
    d = db()
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    domain.check_restructured_from_above(_actor(caller), unit)
    expected = _check_version(unit, cmd.get("version"))
    members = d.members.count_documents({"unit_id": unit_id, "status": {"$ne": "left"}})
    children = d.units.count_documents({"parent_id": unit_id, "status": "active"})
    changes, events = domain.dissolve_unit(unit, members, children, cmd.get("effective_date") or today())
    return update_with_events(d.units, unit_id, expected, changes, events)


def _page(coll, query: dict, after: str | None, limit: int) -> dict:
    if after:
        query = {**query, "_id": {"$gt": after}}
    items = list(coll.find(query, {"outbox": 0}).sort("_id", ASCENDING).limit(limit + 1))
    next_cursor = items[limit - 1]["_id"] if len(items) > limit else None
    return {"items": items[:limit], "next_cursor": next_cursor}


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
    return update_with_events(db().units, unit_id, expected, {f"ratings.{cmd['year']}": entry}, events)


def confirm_rating(caller: Caller, unit_id: str, year: int, cmd: dict) -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    expected = _check_version(unit, cmd.get("version"))
    domain.check_decides_as_level_above(_actor_unit(caller), unit, "confirmed_by")
    by = unit["parent_id"] if caller.unit_id == PLATFORM_SCOPE else caller.unit_id
    entry, events = domain.confirm_rating(unit, year, cmd.get("rating"), by)
    return update_with_events(db().units, unit_id, expected, {f"ratings.{year}": entry}, events)


# ---------------------------------------------------------------- members
def load_member(member_id: str) -> dict:
    member = db().members.find_one({"_id": member_id}, {"outbox": 0})
    if member is None:
        raise Missing(f"member {member_id} not found", field="member_id")
    return member


def _member_in_scope(caller: Caller, member_id: str, write: bool) -> tuple[dict, dict]:
    member = load_member(member_id)
    unit = load_unit(member["unit_id"])
    check_scope(caller, unit["_id"], unit["ancestors"], write=write)
    return member, unit


def read_member(caller: Caller, member_id: str) -> dict:
    return _member_in_scope(caller, member_id, write=False)[0]


def admit(caller: Caller, unit_id: str, cmd: dict, method: str = "individual") -> dict:
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    member_id = "m-" + uuid.uuid4().hex[:16]
    doc, events = domain.admit(member_id, {**cmd, "method": method}, unit, today())
    try:
        insert_with_events(db().members, doc, events)
    except AlreadyExists as exc:
        raise Conflict("a member with this citizen ID is already active", field="citizen_id") from exc
    return load_member(member_id)


def _member_command(caller: Caller, member_id: str, version: int | None, fn, *args, extra_ops=None) -> dict:
    member, unit = _member_in_scope(caller, member_id, write=True)
    expected = _check_version(member, version)
    changes, events = fn(member, unit, *args)
    if not events:
        return member
    try:
        return update_with_events(db().members, member_id, expected, changes, events, extra_ops)
    except AlreadyExists as exc:
        raise Conflict("a member with this citizen ID is already active", field="citizen_id") from exc


def approve(caller: Caller, member_id: str, cmd: dict) -> dict:
    member, unit = _member_in_scope(caller, member_id, write=True)
    domain.check_decides_as_level_above(_actor_unit(caller), unit, "approved_by")
    approver = unit["parent_id"] if caller.unit_id == PLATFORM_SCOPE else caller.unit_id
    return _member_command(caller, member_id, cmd.get("version"), domain.approve, approver, cmd.get("on") or today())


def _province_code(unit: dict) -> str:
    d = db()
    for anc in unit["ancestors"]:
        a = d.units.find_one({"_id": anc}, {"kind": 1, "code": 1})
        if a and a.get("kind") == "province":
            return re.sub(r"[^A-Z0-9]", "", a["code"].upper())[:6] or "VN"
    return "VN"


def issue_card(caller: Caller, member_id: str, cmd: dict) -> dict:
    member, unit = _member_in_scope(caller, member_id, write=True)
    domain.check_decides_as_level_above(_actor_unit(caller), unit, "member_number")
    on = cmd.get("on") or today()
    if member["status"] != "active" or member.get("member_number"):
        domain.issue_card(member, unit, "", on)  # raises the rule's refusal, writes nothing
    province = _province_code(unit)
    number = domain.member_number(province, on.year, next_sequence(db(), f"card:{province}:{on.year}"))
    return _member_command(caller, member_id, cmd.get("version"), domain.issue_card, number, on,
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
    changes = {k: v for k, v in cmd.items() if k != "version"}
    return _member_command(caller, member_id, cmd.get("version"), domain.update_profile, changes)


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


def import_members(caller: Caller, unit_id: str, filename: str, content: bytes) -> dict:
    """Admit a group from one file. A bad row never blocks the good ones; re-running the same
    file admits nobody twice (a citizen ID already active in this CĐCS is reported, not re-admitted)."""
    unit = load_unit(unit_id)
    check_scope(caller, unit["_id"], unit["ancestors"], write=True)
    rows = _rows_from_file(filename, content)
    report = {"file": filename, "admitted": 0, "already_admitted": 0, "rejected": 0, "rows": []}
    schema = AdmitIn()
    for n, raw in enumerate(rows, start=2):  # row 1 is the header
        entry: dict[str, Any] = {"row": n, "member_id": None, "errors": None}
        try:
            cmd = schema.load(_clean_row(raw))
            existing = db().members.find_one({"active_citizen_id": cmd["citizen_id"]}, {"unit_id": 1})
            if existing and existing["unit_id"] == unit_id:
                entry.update(status="already_admitted", member_id=existing["_id"])
                report["already_admitted"] += 1
            else:
                entry.update(status="admitted", member_id=admit(caller, unit_id, cmd, method="group")["_id"])
                report["admitted"] += 1
        except ValidationError as exc:
            entry.update(status="rejected", errors=exc.messages)
            report["rejected"] += 1
        except (InvalidInput, Conflict, RuleViolated) as exc:
            entry.update(status="rejected", errors={exc.field or "row": [exc.message]})
            report["rejected"] += 1
        report["rows"].append(entry)
    return report

"""Membership rules: org units as data, CĐCS founding, executive committees, quality ratings,
members' lifecycle and dues. Pure functions, no I/O: each takes the current state (plain dicts as
stored) and a command, checks the rules, and returns the changes plus the events to publish.
The service layer (service.py) loads, calls these, and saves in one single-document write."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from unidecode import unidecode

from platformkit.envelope import Envelope, new_event
from platformkit.errors import Conflict, InvalidInput, RuleViolated

SOURCE = "membership"

UNIT_KINDS = ("central", "province", "sector_union", "commune", "district", "industrial_zone",
              "cdcs", "cdcs_member", "department", "group")
GRASSROOTS_KINDS = ("cdcs",)  # units that admit members (incl. nghiệp đoàn cơ sở: sector "informal")
# Inside a CĐCS: member unions (CĐCS thành viên), sections (công đoàn bộ phận) and groups (tổ công
# đoàn). They hold no members of their own and approve nothing.
BELOW_GRASSROOTS_KINDS = ("cdcs_member", "department", "group")
FEDERATION_KINDS = ("central", "province", "sector_union", "commune", "district", "industrial_zone")
ROOT_KINDS = ("central", "province")  # the confederation, or a province run on its own
# Which kinds may sit directly under which (Điều lệ Công đoàn Việt Nam: four levels, the CĐCS at
# the bottom; the structure inside a CĐCS never holds another CĐCS). This is what stops an officer
# from founding a CĐCS under its own CĐCS and so becoming "the level above" that approves itself.
ALLOWED_CHILDREN = {
    "central": ("province", "sector_union", "cdcs"),  # e.g. the CĐCS of the confederation's own offices
    "province": ("sector_union", "commune", "district", "industrial_zone", "cdcs"),
    "sector_union": ("sector_union", "industrial_zone", "cdcs"),
    "district": ("commune", "cdcs"),
    "commune": ("cdcs",),
    "industrial_zone": ("cdcs",),
    "cdcs": ("cdcs_member", "department", "group"),
    "cdcs_member": ("department", "group"),
    "department": ("group",),
    "group": (),
}
SECTORS = ("public_admin", "state_enterprise", "non_state", "cooperative", "informal")
FOUNDING_METHODS = ("standard", "new_method")
POSITIONS = ("chair", "vice_chair", "member")
RATINGS = ("excellent", "good", "completed", "not_completed")
GENDERS = ("female", "male", "other")
LEAVE_REASONS = ("resigned", "removed", "deceased")
CITIZEN_ID = re.compile(r"^[0-9]{12}$")
MIN_FOUNDING_MEMBERS = 5
MIN_FOUNDING_GROUP = 3
MIN_MEMBER_AGE = 15


def event(type_: str, subject: str, data: dict[str, Any], version: int) -> Envelope:
    return new_event(SOURCE, type_, subject, data, version)


# ---------------------------------------------------------------- names and identity
def normalise_name(full_name: str) -> str:
    """Full name as entered (NFC, single spaces): diacritics are kept."""
    return " ".join(unicodedata.normalize("NFC", full_name).split())


def search_key(text: str) -> str:
    """'Nguyễn Thị Hà' -> 'nguyen thi ha': staff search without diacritics."""
    return " ".join(unidecode(unicodedata.normalize("NFC", text)).lower().split())


# A name's terms are its runs of up to this many consecutive words: a Vietnamese full name has 2 to
# 7 words (Công Tằng Tôn Nữ Thị Thu Hà), and the cap bounds a 200-character name's terms
# (n words give at most n * NAME_TERM_WORDS of them, not n * (n + 1) / 2).
NAME_TERM_WORDS = 8


def name_terms(search: str) -> list[str]:
    """'nguyen thi ha' -> its runs of consecutive words, each once: 'nguyen', 'nguyen thi',
    'nguyen thi ha', 'thi', 'thi ha', 'ha'. Stored with a member, so that a name search ("whole
    words in order") is ONE equality on this array field, which FerretDB pushes down to an index,
    instead of a regular expression over every member of the subtree. `search` is a search_key."""
    words = search.split()
    runs = (" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(i + NAME_TERM_WORDS, len(words)) + 1))
    return list(dict.fromkeys(runs))


def check_citizen_id(value: str) -> str:
    if not isinstance(value, str) or not CITIZEN_ID.match(value):
        raise InvalidInput("citizen ID (CCCD) must be exactly 12 digits", field="citizen_id")
    return value


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# ---------------------------------------------------------------- units
def unit_path(unit: dict[str, Any]) -> list[str]:
    return list(unit["ancestors"]) + [unit["_id"]]


def require_active_unit(unit: dict[str, Any], field: str) -> None:
    if unit.get("status") != "active":
        raise RuleViolated(f"unit {unit['_id']} is {unit.get('status')}", field=field)


def check_placement(kind: str, parent: dict[str, Any] | None, field: str = "parent_id") -> None:
    """A unit of `kind` may sit under `parent` (None: as a root)."""
    if parent is None:
        if kind not in ROOT_KINDS:
            raise RuleViolated(f"a root unit is one of {ROOT_KINDS}, not {kind}", field="kind")
        return
    allowed = ALLOWED_CHILDREN.get(parent["kind"], ())
    if kind not in allowed:
        raise RuleViolated(f"a {kind} cannot sit under a {parent['kind']}"
                           + (f" (allowed: {', '.join(allowed)})" if allowed else " (it holds no units)"),
                           field=field)


def check_restructured_from_above(actor_unit_id: str | None, unit: dict[str, Any]) -> None:
    """Renaming, moving, merging and dissolving a unit is decided by a level above it, never by
    the unit itself (`actor_unit_id` None: the platform operator)."""
    if actor_unit_id is not None and actor_unit_id not in unit["ancestors"]:
        raise RuleViolated("a unit is renamed, moved, merged or dissolved by a level above it, not by itself",
                           field="unit_id")


def check_decides_as_level_above(actor: dict[str, Any] | None, unit: dict[str, Any], field: str) -> None:
    """Approvals and confirmations for a CĐCS are made by a federation unit above it (`actor` None:
    the platform operator, acting for the unit's parent)."""
    if actor is None:
        return
    if actor["_id"] not in unit["ancestors"] or actor.get("kind") not in FEDERATION_KINDS:
        raise RuleViolated("this is decided by the trade union level above the CĐCS", field=field)


def new_unit(unit_id: str, cmd: dict[str, Any], parent: dict[str, Any] | None) -> tuple[dict, list[Envelope]]:
    kind, level = cmd["kind"], cmd["level"]
    check_placement(kind, parent)
    if parent is not None:
        require_active_unit(parent, "parent_id")
        if level <= parent["level"]:
            raise RuleViolated(f"level {level} must be below the parent's level {parent['level']}", field="level")
    ancestors = unit_path(parent) if parent else []
    sector = cmd.get("sector")
    if kind == "cdcs" and sector is None:
        raise InvalidInput("a CĐCS needs its sector", field="sector")
    if kind != "cdcs" and sector is not None and kind not in ("cdcs_member",):
        raise InvalidInput("only a CĐCS has a sector", field="sector")
    effective = cmd["effective_date"].isoformat()
    doc = {
        "_id": unit_id, "name": normalise_name(cmd["name"]), "code": cmd["code"], "kind": kind,
        "level": level, "sector": sector, "parent_id": parent["_id"] if parent else None,
        "ancestors": ancestors, "status": "active", "effective_date": effective,
        "history": [{"change": "created", "on": effective}],
    }
    events = [event("membership.unit.created.v1", unit_id, {
        "unit_id": unit_id, "parent_id": doc["parent_id"], "ancestors": ancestors, "name": doc["name"],
        "code": doc["code"], "kind": kind, "level": level, "sector": sector, "effective_date": effective}, 1)]
    founding = cmd.get("founding")
    if kind == "cdcs":
        if not founding:
            raise InvalidInput("founding a CĐCS needs its founding record", field="founding")
        doc["founding"], founding_event = found_cdcs(doc, founding)
        events.append(founding_event)
    elif founding:
        raise InvalidInput("only a CĐCS is founded", field="founding")
    return doc, events


def found_cdcs(unit: dict[str, Any], founding: dict[str, Any]) -> tuple[dict, Envelope]:
    if founding["method"] not in FOUNDING_METHODS:
        raise InvalidInput(f"method must be one of {FOUNDING_METHODS}", field="founding.method")
    if founding["founding_member_count"] < MIN_FOUNDING_MEMBERS:
        raise RuleViolated(f"a CĐCS is founded with at least {MIN_FOUNDING_MEMBERS} members or applicants",
                           field="founding.founding_member_count")
    if len(founding["founding_group"]) < MIN_FOUNDING_GROUP:
        raise RuleViolated(f"the founding group (ban vận động) has at least {MIN_FOUNDING_GROUP} workers",
                           field="founding.founding_group")
    decision_date = founding["decision_date"]
    if decision_date.isoformat() > unit["effective_date"]:
        pass  # recognition may come after the founding meeting; the unit operates from effective_date
    record = {
        "method": founding["method"], "founding_member_count": founding["founding_member_count"],
        "founding_group": [normalise_name(n) for n in founding["founding_group"]],
        "decision_no": founding["decision_no"], "decision_date": decision_date.isoformat(),
    }
    ev = event("membership.cdcs.founded.v1", unit["_id"], {
        "unit_id": unit["_id"], "ancestors": unit["ancestors"], "sector": unit["sector"],
        "method": record["method"], "founding_member_count": record["founding_member_count"],
        "decision_no": record["decision_no"], "decision_date": record["decision_date"],
        "effective_date": unit["effective_date"]}, 2)
    return record, ev


def rename_unit(unit: dict, name: str, effective: date) -> tuple[dict, list[Envelope]]:
    require_active_unit(unit, "unit_id")
    name = normalise_name(name)
    changes = {"name": name}
    ev = event("membership.unit.renamed.v1", unit["_id"], {
        "unit_id": unit["_id"], "ancestors": unit["ancestors"], "old_name": unit["name"], "name": name,
        "effective_date": effective.isoformat()}, unit["version"] + 1)
    return changes, [ev]


def move_unit(unit: dict, new_parent: dict, effective: date) -> tuple[dict, list[Envelope]]:
    require_active_unit(unit, "unit_id")
    require_active_unit(new_parent, "parent_id")
    if new_parent["_id"] == unit["_id"] or unit["_id"] in new_parent["ancestors"]:
        raise RuleViolated("a unit cannot move under itself or its own descendant", field="parent_id")
    if new_parent["level"] >= unit["level"]:
        raise RuleViolated(f"the new parent's level {new_parent['level']} must be above {unit['level']}",
                           field="parent_id")
    if new_parent["_id"] == unit["parent_id"]:
        raise RuleViolated("the unit is already under that parent", field="parent_id")
    check_placement(unit["kind"], new_parent)
    ancestors = unit_path(new_parent)
    changes = {"parent_id": new_parent["_id"], "ancestors": ancestors}
    ev = event("membership.unit.moved.v1", unit["_id"], {
        "unit_id": unit["_id"], "old_parent_id": unit["parent_id"], "parent_id": new_parent["_id"],
        "old_ancestors": unit["ancestors"], "ancestors": ancestors, "effective_date": effective.isoformat(),
    }, unit["version"] + 1)
    return changes, [ev]


def rebased_ancestors(descendant_ancestors: list[str], moved_unit_id: str, moved_new_ancestors: list[str]) -> list[str]:
    """A descendant's ancestors after `moved_unit_id` moved: new prefix + the part below it."""
    tail = descendant_ancestors[descendant_ancestors.index(moved_unit_id) + 1:]
    return moved_new_ancestors + [moved_unit_id] + tail


def check_merge(unit: dict, into: dict) -> None:
    if unit["status"] not in ("active", "merging"):
        raise RuleViolated(f"unit {unit['_id']} is {unit['status']}", field="unit_id")
    require_active_unit(into, "into_unit_id")
    if into["_id"] == unit["_id"] or unit["_id"] in into["ancestors"]:
        raise RuleViolated("a unit cannot merge into itself or its own descendant", field="into_unit_id")
    if unit["status"] == "merging" and unit.get("merging_into") != into["_id"]:
        raise Conflict(f"unit is already merging into {unit.get('merging_into')}", field="into_unit_id")
    same_tier = into["kind"] == unit["kind"] or (into["kind"] in FEDERATION_KINDS and unit["kind"] in FEDERATION_KINDS)
    if not same_tier:
        raise RuleViolated(f"a {unit['kind']} merges into a unit of the same tier, not a {into['kind']}",
                           field="into_unit_id")


def close_merged_unit(unit: dict, into: dict, effective: date) -> tuple[dict, list[Envelope]]:
    changes = {"status": "merged", "merged_into": into["_id"]}
    ev = event("membership.unit.merged.v1", unit["_id"], {
        "unit_id": unit["_id"], "into_unit_id": into["_id"], "ancestors": unit["ancestors"],
        "into_ancestors": into["ancestors"], "effective_date": effective.isoformat()}, unit["version"] + 1)
    return changes, [ev]


def dissolve_unit(unit: dict, active_members: int, active_children: int, effective: date) -> tuple[dict, list[Envelope]]:
    require_active_unit(unit, "unit_id")
    if active_members:
        raise RuleViolated(f"the unit still has {active_members} members: transfer them or merge the unit",
                           field="unit_id")
    if active_children:
        raise RuleViolated(f"the unit still has {active_children} active child units", field="unit_id")
    ev = event("membership.unit.dissolved.v1", unit["_id"], {
        "unit_id": unit["_id"], "ancestors": unit["ancestors"], "effective_date": effective.isoformat()},
        unit["version"] + 1)
    return {"status": "dissolved", "dissolved_on": effective.isoformat()}, [ev]


SCHEDULABLE = ("move", "merge", "dissolve")


def schedule_change(unit: dict, change_id: str, kind: str, on: date, params: dict, requested_by: str,
                    today: date) -> tuple[dict, list[Envelope]]:
    """A move, merge or dissolution dated after today: recorded on the unit, applied on its date
    (service.apply_due) through the same rules as an immediate one. Nothing else changes now."""
    require_active_unit(unit, "unit_id")
    if on <= today:
        raise InvalidInput("a scheduled change is dated after today", field="effective_date")
    entry = {"kind": kind, "date": on.isoformat(), "params": params, "requested_by": requested_by,
             "requested_on": today.isoformat()}
    ev = event("membership.unit.change_scheduled.v1", unit["_id"], {
        "unit_id": unit["_id"], "ancestors": unit["ancestors"], "change_id": change_id, "kind": kind,
        "date": entry["date"], "params": params}, unit["version"] + 1)
    return entry, [ev]


def cancel_scheduled_change(unit: dict, change_id: str, by: str) -> Envelope:
    entry = (unit.get("scheduled") or {}).get(change_id)
    if entry is None:
        raise RuleViolated(f"no scheduled change {change_id} on unit {unit['_id']}", field="change_id")
    return event("membership.unit.change_cancelled.v1", unit["_id"], {
        "unit_id": unit["_id"], "ancestors": unit["ancestors"], "change_id": change_id, "kind": entry["kind"],
        "date": entry["date"], "by": by}, unit["version"] + 1)


def unschedule_ops(unit: dict, change_id: str | None) -> dict:
    """The $unset that removes an applied (or cancelled) scheduled change, in the same change
    document as what it did: a second applier finds it gone and does nothing."""
    if change_id is None:
        return {}
    left = set(unit.get("scheduled") or {}) - {change_id}
    return {f"scheduled.{change_id}": "", **({} if left else {"has_scheduled": ""})}


def consolidate_committee(unit: dict, term: str, on: date, positions: list[dict],
                          members: dict[str, dict]) -> tuple[dict, list[Envelope]]:
    """Kiện toàn BCH: the whole committee as it stands after the act, recorded in the history."""
    require_active_unit(unit, "unit_id")
    if unit["kind"] != "cdcs":
        raise RuleViolated("only a CĐCS has an executive committee here", field="unit_id")
    chairs = [p for p in positions if p["position"] == "chair"]
    if len(chairs) != 1:
        raise RuleViolated("the committee has exactly one chair", field="positions")
    seen = set()
    out = []
    for i, p in enumerate(positions):
        m = members.get(p["member_id"])
        if m is None or m["unit_id"] != unit["_id"] or m["status"] != "active":
            raise RuleViolated(f"{p['member_id']} is not an active member of this CĐCS",
                               field=f"positions.{i}.member_id")
        if p["member_id"] in seen:
            raise InvalidInput(f"{p['member_id']} appears twice", field=f"positions.{i}.member_id")
        seen.add(p["member_id"])
        out.append({"member_id": p["member_id"], "full_name": m["full_name"], "position": p["position"]})
    committee = {"term": term, "date": on.isoformat(), "positions": out}
    ev = event("membership.committee.consolidated.v1", unit["_id"], {
        "unit_id": unit["_id"], "ancestors": unit["ancestors"], **committee}, unit["version"] + 1)
    return committee, [ev]


def rating_eligible(unit: dict, year: int) -> bool:
    """Rated only after 12 months operating, counted to the year's 30 November cut-off."""
    founded = date.fromisoformat(unit["effective_date"])
    cutoff = date(year, 11, 30)
    return (cutoff.year - founded.year) * 12 + (cutoff.month - founded.month) - (cutoff.day < founded.day) >= 12


def propose_rating(unit: dict, year: int, rating: str, by_unit: str) -> tuple[dict, list[Envelope]]:
    require_active_unit(unit, "unit_id")
    if unit["kind"] != "cdcs":
        raise RuleViolated("only a CĐCS is rated", field="unit_id")
    if not rating_eligible(unit, year):
        raise RuleViolated(f"the CĐCS has not operated 12 months by 30/11/{year}", field="year")
    current = (unit.get("ratings") or {}).get(str(year))
    if current and current["status"] == "confirmed":
        raise Conflict(f"the {year} rating is already confirmed", field="year")
    if current and current["rating"] == rating:
        return current, []  # already proposed as that: nothing changes, no event (a retry is harmless)
    entry = {"rating": rating, "status": "proposed", "proposed_by": by_unit}
    return entry, [_rating_event(unit, year, entry)]


def confirm_rating(unit: dict, year: int, rating: str | None, by_unit: str) -> tuple[dict, list[Envelope]]:
    current = (unit.get("ratings") or {}).get(str(year))
    if not current:
        raise RuleViolated(f"no rating proposed for {year}", field="year")
    if current["status"] == "confirmed":
        raise Conflict(f"the {year} rating is already confirmed", field="year")
    if by_unit not in unit["ancestors"]:
        raise RuleViolated("the rating is confirmed by the level above", field="confirmed_by")
    entry = {**current, "rating": rating or current["rating"], "status": "confirmed", "confirmed_by": by_unit}
    return entry, [_rating_event(unit, year, entry)]


def _rating_event(unit: dict, year: int, entry: dict) -> Envelope:
    return event("membership.cdcs.rated.v1", unit["_id"], {
        "unit_id": unit["_id"], "ancestors": unit["ancestors"], "sector": unit["sector"], "year": year,
        "rating": entry["rating"], "status": entry["status"], "confirmed_by_unit_id": entry.get("confirmed_by")},
        unit["version"] + 1)


# ---------------------------------------------------------------- members
SEARCH_FIELDS = ("name_search", "name_terms")  # derived from full_name: not a change of their own


def member_facts(member: dict, unit: dict) -> dict[str, Any]:
    """The common fields of every member event (docs/events.md)."""
    return {"member_id": member["_id"], "unit_id": unit["_id"], "ancestors": unit["ancestors"],
            "full_name": member["full_name"], "gender": member["gender"],
            "is_official": bool(member.get("is_official"))}


def admit(member_id: str, cmd: dict, unit: dict, today: date) -> tuple[dict, list[Envelope]]:
    """Kết nạp: the CĐCS executive decides; the member awaits approval by the level above."""
    require_active_unit(unit, "unit_id")
    if unit["kind"] not in GRASSROOTS_KINDS:
        raise RuleViolated("members are admitted into a CĐCS", field="unit_id")
    check_citizen_id(cmd["citizen_id"])
    admitted_on = cmd.get("admitted_on") or today
    if admitted_on > today:
        raise InvalidInput("admission date is in the future", field="admitted_on")
    if age_on(cmd["date_of_birth"], admitted_on) < MIN_MEMBER_AGE:
        raise RuleViolated(f"a member is at least {MIN_MEMBER_AGE} years old", field="date_of_birth")
    full_name = normalise_name(cmd["full_name"])
    if not full_name:
        raise InvalidInput("full name is required", field="full_name")
    member = {
        "_id": member_id, "full_name": full_name, "name_search": search_key(full_name),
        "name_terms": name_terms(search_key(full_name)),
        "citizen_id": cmd["citizen_id"], "active_citizen_id": cmd["citizen_id"],
        "date_of_birth": cmd["date_of_birth"].isoformat(), "gender": cmd["gender"],
        "phone": cmd.get("phone"), "employer": cmd.get("employer"),
        "is_official": bool(cmd.get("is_official", False)), "unit_id": unit["_id"],
        "unit_path": unit_path(unit), "status": "admitted", "admitted_on": admitted_on.isoformat(),
        "history": [{"change": "admitted", "on": admitted_on.isoformat(), "unit_id": unit["_id"]}],
    }
    ev = event("membership.member.admitted.v1", member_id, {
        **member_facts(member, unit), "admitted_on": member["admitted_on"],
        "date_of_birth": member["date_of_birth"], "method": cmd.get("method", "individual")}, 1)
    return member, [ev]


def approve(member: dict, unit: dict, approver_unit_id: str, on: date) -> tuple[dict, list[Envelope]]:
    if member["status"] == "refused":
        raise RuleViolated("the admission was refused by the level above; a refused admission is never approved "
                           "(the person may be admitted again)", field="status")
    if member["status"] != "admitted":
        raise RuleViolated(f"only an admitted member awaiting approval can be approved (status {member['status']})",
                           field="status")
    if approver_unit_id not in unit["ancestors"]:
        raise RuleViolated("admission is approved by the level above the CĐCS", field="approved_by")
    changes = {"status": "active", "approved_on": on.isoformat(), "approved_by": approver_unit_id}
    ev = event("membership.member.approved.v1", member["_id"], {
        **member_facts(member, unit), "approved_on": on.isoformat(), "approved_by_unit_id": approver_unit_id},
        member["version"] + 1)
    return changes, [ev]


def refuse(member: dict, unit: dict, refuser_unit_id: str, reason: str, on: date) -> tuple[dict, list[Envelope]]:
    """The level above refuses an admission the CĐCS decided: the record closes as `refused` (it
    never counted as an active member) and is never approved later; the person may be admitted
    again, as a new admission."""
    if member["status"] != "admitted":
        raise RuleViolated(f"only an admitted member awaiting approval can be refused (status {member['status']})",
                           field="status")
    if refuser_unit_id not in unit["ancestors"]:
        raise RuleViolated("an admission is refused by the level above the CĐCS", field="refused_by")
    reason = " ".join(unicodedata.normalize("NFC", reason or "").split())
    if not reason:
        raise InvalidInput("a refusal states its reason", field="reason")
    changes = {"status": "refused", "refused_on": on.isoformat(), "refused_reason": reason,
               "refused_by": refuser_unit_id}
    ev = event("membership.member.refused.v1", member["_id"], {
        **member_facts(member, unit), "admitted_on": member["admitted_on"], "refused_on": on.isoformat(),
        "reason": reason, "refused_by_unit_id": refuser_unit_id}, member["version"] + 1)
    return changes, [ev]


def issue_card(member: dict, unit: dict, member_number: str, on: date) -> tuple[dict, list[Envelope]]:
    if member["status"] != "active":
        raise RuleViolated("a card is issued to an approved, active member", field="status")
    if member.get("member_number"):
        raise Conflict(f"card {member['member_number']} was already issued", field="member_number")
    changes = {"member_number": member_number, "card_issued_on": on.isoformat()}
    ev = event("membership.member.card_issued.v1", member["_id"], {
        **member_facts(member, unit), "member_number": member_number, "issued_on": on.isoformat()},
        member["version"] + 1)
    return changes, [ev]


def check_no_pending_transfer(member: dict) -> None:
    """A member whose transfer request awaits the receiving side is neither transferred again nor
    leaves until the request is accepted, refused or cancelled."""
    if member.get("pending_transfer"):
        raise RuleViolated(f"a transfer request to {member['pending_transfer']['to_unit_id']} awaits its decision",
                           field="pending_transfer")


def check_transferable(member: dict, from_unit: dict, to_unit: dict) -> None:
    if member["status"] not in ("active", "admitted"):
        raise RuleViolated(f"a member who is {member['status']} cannot be transferred", field="status")
    if to_unit["_id"] == from_unit["_id"]:
        raise RuleViolated("the member is already in that CĐCS", field="to_unit_id")
    require_active_unit(to_unit, "to_unit_id")
    if to_unit["kind"] not in GRASSROOTS_KINDS:
        raise RuleViolated("members are transferred into a CĐCS", field="to_unit_id")


def _letter(letter: dict | None) -> dict:
    letter = letter or {}
    on = letter.get("letter_date")
    return {"letter_no": letter.get("letter_no"), "letter_date": on.isoformat() if isinstance(on, date) else on}


def transfer(member: dict, from_unit: dict, to_unit: dict, on: date, reason: str = "transfer",
             letter: dict | None = None, despite_request: bool = False) -> tuple[dict, list[Envelope]]:
    """`letter`: the transfer letter (số, ngày giấy giới thiệu chuyển sinh hoạt), when there is one.
    `despite_request`: the receiving side accepts the member's pending request, or a merge moves
    the whole CĐCS (the request stays pending, now from the unit merged into)."""
    if not despite_request:
        check_no_pending_transfer(member)
    check_transferable(member, from_unit, to_unit)
    letter = _letter(letter)
    changes = {"unit_id": to_unit["_id"], "unit_path": unit_path(to_unit),
               "transfer_letter": {**letter, "on": on.isoformat()}}
    ev = event("membership.member.transferred.v1", member["_id"], {
        **member_facts(member, to_unit), "from_unit_id": from_unit["_id"],
        "from_ancestors": from_unit["ancestors"], "transferred_on": on.isoformat(), "reason": reason, **letter},
        member["version"] + 1)
    return changes, [ev]


def request_transfer(member: dict, from_unit: dict, to_unit: dict, letter: dict, requested_by: str, on: date
                     ) -> tuple[dict, list[Envelope]]:
    """A transfer to a CĐCS outside the sender's subtree: recorded as a request that the receiving
    side accepts or refuses. Nothing else changes until then (the member stays, figures stay)."""
    check_no_pending_transfer(member)
    check_transferable(member, from_unit, to_unit)
    letter = _letter(letter)
    if not letter["letter_no"]:
        raise InvalidInput("a transfer request carries the transfer letter's number", field="letter_no")
    if not letter["letter_date"]:
        raise InvalidInput("a transfer request carries the transfer letter's date", field="letter_date")
    pending = {"to_unit_id": to_unit["_id"], **letter, "requested_by": requested_by,
               "requested_on": on.isoformat()}
    changes = {"pending_transfer": pending, "pending_transfer_path": unit_path(to_unit)}
    ev = event("membership.member.transfer_requested.v1", member["_id"], {
        **member_facts(member, from_unit), "to_unit_id": to_unit["_id"], "to_ancestors": to_unit["ancestors"],
        **letter, "requested_by": requested_by, "requested_on": on.isoformat()}, member["version"] + 1)
    return changes, [ev]


def close_transfer_request(member: dict, unit: dict, outcome: str, by: str, reason: str | None, on: date
                           ) -> tuple[dict, list[Envelope]]:
    """The request is refused by the receiving side (`refused`, with its reason) or withdrawn by
    the sender (`cancelled`): the member stays where it is."""
    pending = member.get("pending_transfer")
    if not pending:
        raise RuleViolated("the member has no pending transfer request", field="pending_transfer")
    data = {**member_facts(member, unit), "to_unit_id": pending["to_unit_id"], "letter_no": pending.get("letter_no"),
            "letter_date": pending.get("letter_date"), "on": on.isoformat(), "by": by}
    if outcome == "refused":
        reason = " ".join(unicodedata.normalize("NFC", reason or "").split())
        if not reason:
            raise InvalidInput("a refusal states its reason", field="reason")
        data["reason"] = reason
    ev = event(f"membership.member.transfer_{outcome}.v1", member["_id"], data, member["version"] + 1)
    return {}, [ev]


def leave(member: dict, unit: dict, reason: str, on: date) -> tuple[dict, list[Envelope]]:
    check_no_pending_transfer(member)
    if member["status"] == "left":
        raise RuleViolated("the member has already left", field="status")
    if member["status"] == "refused":
        raise RuleViolated("the admission was refused: there is no membership to leave", field="status")
    if reason not in LEAVE_REASONS:
        raise InvalidInput(f"reason must be one of {LEAVE_REASONS}", field="reason")
    changes = {"status": "left", "left_on": on.isoformat(), "left_reason": reason}
    ev = event("membership.member.left.v1", member["_id"], {
        **member_facts(member, unit), "left_on": on.isoformat(), "reason": reason}, member["version"] + 1)
    return changes, [ev]


def reinstate(member: dict, unit: dict, on: date) -> tuple[dict, list[Envelope]]:
    if member["status"] != "left":
        raise RuleViolated("only a member who left can be reinstated", field="status")
    if member.get("left_reason") == "deceased":
        raise RuleViolated("a deceased member cannot be reinstated", field="status")
    require_active_unit(unit, "unit_id")
    changes = {"status": "active", "reinstated_on": on.isoformat(), "active_citizen_id": member["citizen_id"]}
    ev = event("membership.member.reinstated.v1", member["_id"], {
        **member_facts(member, unit), "reinstated_on": on.isoformat()}, member["version"] + 1)
    return changes, [ev]


PROFILE_FIELDS = ("full_name", "gender", "phone", "employer", "is_official", "date_of_birth")


def update_profile(member: dict, unit: dict, changes_in: dict, on: date, today: date) -> tuple[dict, list[Envelope]]:
    """A profile change effective on `on` (e.g. the day someone became a union official): the
    event carries it as `effective_date`, and the reports count the change in that month."""
    if on > today:
        raise InvalidInput("the effective date is in the future", field="on")
    changes: dict[str, Any] = {}
    for key in PROFILE_FIELDS:
        if key in changes_in:
            value = changes_in[key]
            if key == "full_name":
                value = normalise_name(value)
                if not value:
                    raise InvalidInput("full name is required", field="full_name")
                changes["name_search"] = search_key(value)
                changes["name_terms"] = name_terms(changes["name_search"])
            if key == "date_of_birth":
                value = value.isoformat()
            if member.get(key) != value:
                changes[key] = value
    if not changes:
        return {}, []
    after = {**member, **changes}
    ev = event("membership.member.profile_updated.v1", member["_id"], {
        **member_facts(after, unit), "changed": sorted(k for k in changes if k not in SEARCH_FIELDS),
        "effective_date": on.isoformat()}, member["version"] + 1)
    return changes, [ev]


def member_number(province_code: str, year: int, seq: int) -> str:
    """Unique card number: province code, year of issue, a province-wide sequence."""
    return f"{province_code}{year % 100:02d}{seq:08d}"


# ---------------------------------------------------------------- dues
@dataclass(frozen=True)
class DuesRule:
    valid_from: date
    rate_permille: int  # of the social-insurance salary


# Versioned by date: 1% until 2025-06-30, 0.5% from 2025-07-01 (Trade Union Law 2024).
DUES_RULES = (DuesRule(date(1900, 1, 1), 10), DuesRule(date(2025, 7, 1), 5))
# Base salary (lương cơ sở) in force; dues are capped at 10% of it.
BASE_SALARY = ((date(2019, 7, 1), 1_490_000), (date(2023, 7, 1), 1_800_000), (date(2024, 7, 1), 2_340_000))
CAP_PERMILLE_OF_BASE = 100


def in_force(table, on: date):
    current = None
    for row in table:
        start = row.valid_from if isinstance(row, DuesRule) else row[0]
        if start <= on:
            current = row
    if current is None:
        raise RuleViolated(f"no rule in force on {on}", field="month")
    return current


def dues_due(month: date, salary: int, on_benefits: bool, unpaid_months: int) -> tuple[int, int, str | None]:
    """(due in đồng, rate in permille, exemption reason or None) for one month."""
    rule = in_force(DUES_RULES, month)
    if on_benefits:
        return 0, rule.rate_permille, "on_social_insurance_benefits"
    if unpaid_months >= 1:
        return 0, rule.rate_permille, "unpaid_leave"
    base = in_force(BASE_SALARY, month)[1]
    due = salary * rule.rate_permille // 1000
    cap = base * CAP_PERMILLE_OF_BASE // 1000
    return min(due, cap), rule.rate_permille, None


def record_dues(member: dict, unit: dict, month: date, salary: int, paid: int, on_benefits: bool,
                unpaid_months: int, existing: dict | None) -> tuple[dict, list[Envelope]]:
    if member["status"] != "active":
        raise RuleViolated("dues are recorded for active members", field="member_id")
    if salary < 0:
        raise InvalidInput("salary cannot be negative", field="salary")
    if paid < 0:
        raise InvalidInput("paid cannot be negative", field="paid")
    due, rate, exempt = dues_due(month, salary, on_benefits, unpaid_months)
    key = f"{member['_id']}:{month:%Y-%m}"
    doc = {"_id": key, "member_id": member["_id"], "unit_id": unit["_id"], "unit_path": unit_path(unit),
           "month": f"{month:%Y-%m}", "salary": salary, "rate_permille": rate, "due": due, "paid": paid,
           "exempt_reason": exempt}
    if existing is not None and all(existing.get(k) == v for k, v in doc.items()):
        return doc, []  # the same month with the same figures (a retry): nothing changes, no event
    version = (existing or {}).get("version", 0) + 1
    ev = event("membership.dues.recorded.v1", key, {
        "member_id": member["_id"], "unit_id": unit["_id"], "ancestors": unit["ancestors"],
        "month": doc["month"], "salary": salary, "rate_permille": rate, "due": due, "paid": paid,
        "exempt_reason": exempt}, version)
    return doc, [ev]

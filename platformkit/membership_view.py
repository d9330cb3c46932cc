"""A local read model of org units and members, kept from `membership.events`, for services that
must know them without calling membership synchronously (training, welfare).

Collections in the consuming service's own database:
  view_units   {_id: unit_id, name, code, kind, level, sector, parent_id, ancestors, status, v}
  view_members {_id: member_id, unit_id, full_name, gender, is_official, status, member_number, v}

Idempotent: each document keeps `v`, the aggregate version it reflects; an event whose version is
not newer changes nothing (redelivery, replay). A member's subtree is found through its unit's
`ancestors`, so a unit move rewrites unit documents only, never millions of members.
"""
from __future__ import annotations

import logging
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from .consumer import Record

log = logging.getLogger(__name__)

UNITS = "view_units"
MEMBERS = "view_members"
INDEXES = {
    UNITS: [("ancestors", {"name": "ancestors"}), ("parent_id", {"name": "parent"})],
    MEMBERS: [("unit_id", {"name": "unit"})],
}
MEMBER_STATUS = {
    "membership.member.admitted": "admitted",
    "membership.member.approved": "active",
    "membership.member.left": "left",
    "membership.member.refused": "refused",  # the level above refused the admission: never a member
    "membership.member.reinstated": "active",
}


def apply_versioned(db: Database, coll: str, _id: str, version: int, fields: dict[str, Any]) -> bool:
    """Set fields on the document if `version` is newer than the one it reflects; True if applied."""
    try:
        res = db[coll].update_one({"_id": _id, "v": {"$lt": version}},
                                  {"$set": {**fields, "v": version}}, upsert=True)
        return res.modified_count > 0 or res.upserted_id is not None
    except DuplicateKeyError:
        return False  # the document already reflects this version or a newer one


def _rewrite_descendants(db: Database, unit_id: str, new_ancestors: list[str]) -> None:
    for doc in db[UNITS].find({"ancestors": unit_id}, {"ancestors": 1}):
        old = doc["ancestors"]
        tail = old[old.index(unit_id) + 1:]
        db[UNITS].update_one({"_id": doc["_id"]}, {"$set": {"ancestors": new_ancestors + [unit_id] + tail}})


def apply_event(db: Database, rec: Record) -> None:
    env = rec.envelope
    d = env.data
    base = env.base_type
    v = env.aggregateversion
    if base == "membership.unit.created":
        apply_versioned(db, UNITS, d["unit_id"], v, {
            "name": d["name"], "code": d.get("code"), "kind": d["kind"], "level": d.get("level"),
            "sector": d.get("sector"), "parent_id": d.get("parent_id"), "ancestors": d["ancestors"],
            "status": "active"})
    elif base == "membership.unit.renamed":
        apply_versioned(db, UNITS, d["unit_id"], v, {"name": d["name"]})
    elif base == "membership.unit.moved":
        apply_versioned(db, UNITS, d["unit_id"], v, {"parent_id": d["parent_id"], "ancestors": d["ancestors"]})
        # Always (also on redelivery): a crash may have come between the two steps. Derived from the
        # unit's current ancestors, so it is idempotent.
        _rewrite_descendants(db, d["unit_id"], unit_ancestors(db, d["unit_id"]) or d["ancestors"])
    elif base in ("membership.unit.merged", "membership.unit.dissolved"):
        apply_versioned(db, UNITS, d["unit_id"], v,
                        {"status": "merged" if base.endswith("merged") else "dissolved",
                         "merged_into": d.get("into_unit_id")})
    elif base.startswith("membership.member."):
        fields = {"unit_id": d["unit_id"], "full_name": d["full_name"], "gender": d.get("gender"),
                  "is_official": bool(d.get("is_official"))}
        if base in MEMBER_STATUS:
            fields["status"] = MEMBER_STATUS[base]
        if base == "membership.member.card_issued":
            fields["member_number"] = d["member_number"]
        apply_versioned(db, MEMBERS, d["member_id"], v, fields)
    # other membership events (founding, committees, ratings, dues) are not needed here


def handle_membership_batch(db: Database, records: list[Record]) -> dict[int, str]:
    """A BatchHandler body for membership events: returns {index: error} for unprocessable ones."""
    failures: dict[int, str] = {}
    for i, rec in enumerate(records):
        if rec.envelope.source != "membership":
            continue
        try:
            apply_event(db, rec)
        except (KeyError, TypeError, ValueError) as exc:
            failures[i] = f"{type(exc).__name__}: {exc}"
    return failures


def unit_ancestors(db: Database, unit_id: str) -> list[str] | None:
    """The unit's ancestors (root first), or None if this service has not heard of the unit."""
    doc = db[UNITS].find_one({"_id": unit_id}, {"ancestors": 1})
    return None if doc is None else doc["ancestors"]

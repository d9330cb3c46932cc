"""Training's local read model of units and members (platformkit.membership_view), plus one
addition: each member document also keeps `ancestors`, the ancestors of the member's unit as the
newest applied member event stated them. Enrolment prefers the unit's current ancestors from
`view_units` (they follow later unit moves) and falls back to these when training has not heard of
the unit itself (unit events may lag behind member events, and units created before training
started may never be replayed)."""
from __future__ import annotations

from typing import Any

from pymongo.database import Database

from platformkit import membership_view
from platformkit.consumer import Record
from platformkit.membership_view import MEMBERS, UNITS, unit_ancestors

__all__ = ["apply_membership_batch", "member_with_ancestors", "unit_ancestors", "UNITS", "MEMBERS"]


def apply_membership_batch(db: Database, records: list[Record]) -> dict[int, str]:
    """The consumer's BatchHandler body: the shared view, then the member's unit ancestors.
    Idempotent: the ancestors are written only onto the document that reflects exactly this event's
    version, so a redelivered or older event changes nothing."""
    failures = membership_view.handle_membership_batch(db, records)
    for i, rec in enumerate(records):
        env = rec.envelope
        if i in failures or env.source != "membership" or not env.base_type.startswith("membership.member."):
            continue
        d = env.data
        if isinstance(d.get("ancestors"), list) and d.get("member_id"):
            db[MEMBERS].update_one({"_id": d["member_id"], "v": env.aggregateversion,
                                    "ancestors": {"$ne": d["ancestors"]}},
                                   {"$set": {"ancestors": d["ancestors"]}})
    return failures


def member_with_ancestors(db: Database, member_id: str) -> tuple[dict[str, Any] | None, list[str] | None]:
    member = db[MEMBERS].find_one({"_id": member_id})
    if member is None:
        return None, None
    ancestors = unit_ancestors(db, member["unit_id"])
    if ancestors is None:
        ancestors = member.get("ancestors")
    return member, ancestors

"""Training's local read model of units and members (platformkit.membership_view), plus one
addition: each member document also keeps `ancestors`, the ancestors of the member's unit as the
newest applied member event stated them. Enrolment prefers the unit's current ancestors from
`view_units` (they follow later unit moves) and falls back to these when training has not heard of
the unit itself (unit events may lag behind member events, and units created before training
started may never be replayed)."""
from __future__ import annotations

from platformkit import membership_view
from platformkit.consumer import Record

from .stores import Stores

__all__ = ["apply_membership_batch"]


def apply_membership_batch(records: list[Record], stores: Stores) -> dict[int, str]:
    """The consumer's BatchHandler body: the shared view, then the member's unit ancestors.
    Idempotent: the ancestors are written only onto the document that reflects exactly this event's
    version, so a redelivered or older event changes nothing. What the handlers read of the view:
    `Stores.unit_ancestors`, `Stores.member_with_ancestors`."""
    failures = membership_view.handle_membership_batch(stores.db, records)
    for i, rec in enumerate(records):
        env = rec.envelope
        if i in failures or env.source != "membership" or not env.base_type.startswith("membership.member."):
            continue
        d = env.data
        if isinstance(d.get("ancestors"), list) and d.get("member_id"):
            stores.members.update_one({"_id": d["member_id"], "v": env.aggregateversion,
                                       "ancestors": {"$ne": d["ancestors"]}},
                                      {"$set": {"ancestors": d["ancestors"]}})
    return failures


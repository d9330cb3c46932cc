"""Builders for the membership events training consumes (docs/events.md) and a small org tree:

    VN (central) > HCM (province) > P1 (commune) > C1, C2 (CĐCS)
                                  > P2 (commune) > C3 (CĐCS)
"""
from __future__ import annotations

from platformkit.auth import mint
from platformkit.consumer import Record
from platformkit.envelope import encode, new_event

TREE = {  # unit -> (parent, ancestors, kind, level)
    "VN": (None, [], "central", 1),
    "HCM": ("VN", ["VN"], "province", 2),
    "P1": ("HCM", ["VN", "HCM"], "commune", 3),
    "P2": ("HCM", ["VN", "HCM"], "commune", 3),
    "C1": ("P1", ["VN", "HCM", "P1"], "cdcs", 4),
    "C2": ("P1", ["VN", "HCM", "P1"], "cdcs", 4),
    "C3": ("P2", ["VN", "HCM", "P2"], "cdcs", 4),
}


def unit_created(unit_id: str):
    parent, ancestors, kind, level = TREE[unit_id]
    return new_event("membership", "membership.unit.created.v1", unit_id, {
        "unit_id": unit_id, "parent_id": parent, "ancestors": ancestors, "name": f"Công đoàn {unit_id}",
        "code": unit_id, "kind": kind, "level": level, "sector": "non_state" if kind == "cdcs" else None,
        "effective_date": "2025-07-01"}, 1)


def member_event(happened: str, member_id: str, unit_id: str, version: int, is_official: bool = False,
                 full_name: str = "Nguyễn Thị Hà", **extra):
    data = {"member_id": member_id, "unit_id": unit_id, "ancestors": TREE[unit_id][1], "full_name": full_name,
            "gender": "female", "is_official": is_official, **extra}
    return new_event("membership", f"membership.member.{happened}.v1", member_id, data, version)


def active_member(member_id: str, unit_id: str, is_official: bool = False, full_name: str = "Nguyễn Thị Hà"):
    """admitted (v1) then approved (v2): an active member."""
    return [member_event("admitted", member_id, unit_id, 1, is_official, full_name, admitted_on="2025-08-01",
                         date_of_birth="1990-01-02", method="individual"),
            member_event("approved", member_id, unit_id, 2, is_official, full_name, approved_on="2025-08-05",
                         approved_by_unit_id=TREE[unit_id][0])]


def left_member(member_id: str, unit_id: str, version: int = 3):
    return member_event("left", member_id, unit_id, version, left_on="2025-09-01", reason="resigned")


def records(envelopes) -> list[Record]:
    return [Record("membership.events", 0, i, e.subject.encode(), encode(e), 0, e) for i, e in enumerate(envelopes)]


def seed(db, envelopes) -> None:
    from services.training.stores import Stores
    from services.training.view import apply_membership_batch
    failures = apply_membership_batch(records(envelopes), Stores(db))
    assert failures == {}, failures


def token(unit: str, roles=("officer",)) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint(f"user-{unit}", unit, roles)}


COURSE = {"code": "ATVSLD-2D", "name": "An toàn, vệ sinh lao động cho cán bộ chuyên trách", "topic": "osh",
          "audience": "full_time_officials", "format": "in_person", "duration_days": 2, "owner_unit_id": "HCM"}

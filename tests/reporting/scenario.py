"""CĐCS added under a commune of the synthetic province, as membership events, to exercise what the
synthetic stream does not: the rating eligibility edges (founded 12 months before 30 November or
one day late), ratings of a CĐCS dissolved before the cut-off or merged after it, units closed
before and during the period, and names a spreadsheet would run as formulas.

`closures_and_edges(province)` returns the events (appended after the province's own stream);
`CASES` says what each CĐCS is and what the 2025 views must make of it."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from platformkit.envelope import Envelope

COMMUNE = "HCM-X000"
HYPERLINK = '=HYPERLINK("http://evil.example/","Bấm vào đây")'


@dataclass(frozen=True)
class Case:
    unit_id: str
    code: str
    name: str
    sector: str
    founded: str
    rating: str | None = None          # confirmed for 2025
    closed: str | None = None          # dissolved on, or merged on
    merged_into: str | None = None
    eligible_2025: bool = False        # in cdcs.rating_eligible at 30/11/2025
    rating_counts: bool = False        # its 2025 rating counts


CASES = [
    # founded exactly 12 months before 30/11/2025: eligible, its rating counts
    Case("HCM-X000-E1", "E1", HYPERLINK, "public_admin", "2024-11-30", "good",
         eligible_2025=True, rating_counts=True),
    # one day late: not eligible for 2025, a rating of it (which membership would refuse) counts nowhere
    Case("HCM-X000-E2", "-E2", "+1-2", "public_admin", "2024-12-01", "excellent"),
    # rated, then dissolved before the cut-off: neither eligible nor counted
    Case("HCM-X000-E3", "E3", "@SUM(A1)", "non_state", "2023-03-15", "completed", closed="2025-11-25"),
    # rated, merged after the cut-off: eligible and counted for 2025
    Case("HCM-X000-E4", "E4", "Công đoàn cơ sở E4", "non_state", "2023-01-10", "excellent", closed="2025-12-05",
         merged_into="HCM-X000-E1", eligible_2025=True, rating_counts=True),
    # dissolved before the period (2024): left out of a 2025 drill-down unless asked for
    Case("HCM-X000-E5", "E5", "-CĐCS E5", "state_enterprise", "2023-05-01", closed="2024-06-30"),
    # founded and dissolved within 2025, before ever becoming eligible
    Case("HCM-X000-E6", "E6", "CĐCS E6", "state_enterprise", "2025-02-01", closed="2025-05-10"),
]
BY_ID = {c.unit_id: c for c in CASES}


def _ev(type_: str, subject: str, data: dict, version: int, on: str) -> Envelope:
    return Envelope(id=str(uuid.uuid4()), source="membership", type=type_, subject=subject,
                    time=f"{on}T09:00:00.000Z", data=data, aggregateversion=version)


def closures_and_edges(province) -> list[Envelope]:
    ancestors = province.units[COMMUNE].ancestors + [COMMUNE]
    events: list[Envelope] = []
    for c in CASES:
        uid, v = c.unit_id, 0

        def add(type_: str, data: dict, on: str):
            nonlocal v
            v += 1
            events.append(_ev(type_, uid, {"unit_id": uid, "ancestors": ancestors, **data}, v, on))

        add("membership.unit.created.v1", {"parent_id": COMMUNE, "name": c.name, "code": c.code, "kind": "cdcs",
                                            "level": 4, "sector": c.sector, "effective_date": c.founded}, c.founded)
        add("membership.cdcs.founded.v1", {"sector": c.sector, "method": "standard", "founding_member_count": 7,
                                           "decision_no": f"{c.code}/QĐ", "decision_date": c.founded,
                                           "effective_date": c.founded}, c.founded)
        if c.rating:
            for status in ("proposed", "confirmed"):
                add("membership.cdcs.rated.v1", {
                    "sector": c.sector, "year": 2025, "rating": c.rating, "status": status,
                    "confirmed_by_unit_id": COMMUNE if status == "confirmed" else None}, "2025-11-20")
        if c.merged_into:
            add("membership.unit.merged.v1", {"into_unit_id": c.merged_into, "into_ancestors": ancestors,
                                              "effective_date": c.closed}, c.closed)
        elif c.closed:
            add("membership.unit.dissolved.v1", {"effective_date": c.closed}, c.closed)
    return events


def sector_targets(ratings_view: dict) -> tuple[tuple[str, float], tuple[str, float]]:
    """From a ratings view: (sector, a target of its good-or-better share that it reaches exactly),
    (another sector, a target it does not reach)."""
    shares = {s["sector"]: 100.0 * s["good_or_better"]["count"] / s["eligible"] for s in ratings_view["by_sector"]
              if s["eligible"]}
    ordered = sorted(shares, key=lambda s: -shares[s])
    hit = ordered[0]  # the best share: its target is not a trivial 0
    missed = next(s for s in ordered[1:] if shares[s] < 100)
    return (hit, math.floor(shares[hit] * 100) / 100), (missed, min(100.0, math.floor(shares[missed]) + 1.5))

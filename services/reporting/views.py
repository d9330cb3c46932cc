"""Reading the views: a unit's figures for a period, its children side by side, a time series,
the CĐCS quality-rating shares, and attainment against targets.

Every figure comes from the pre-aggregated documents of the unit itself (and of its direct
children for drill-down): the work does not grow with the size of the subtree. Numerators and
denominators are summed first; ratios and attainment percentages are computed last."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from platformkit.web import Missing

from .indicators import CATALOGUE, HEADLINE, RATINGS, SECTORS, Indicator
from .periods import Period, month_range
from .store import Generation, indicator_of


def _sums(gen: Generation, unit_ids: list[str], period: Period) -> dict[str, dict[str, int]]:
    """{unit: {indicator: value}}: flows summed over the period's months, stocks up to its end."""
    out: dict[str, dict[str, int]] = {u: defaultdict(int) for u in unit_ids}
    if not unit_ids:
        return out
    for doc in gen.agg_docs(unit_ids, period.last):
        in_period = doc["month"] >= period.first
        for field, value in (doc.get("v") or {}).items():
            ind = CATALOGUE.get(indicator_of(field))
            if ind is not None and (in_period or ind.kind == "stock"):
                out[doc["unit"]][ind.code] += value
    return out


def ratio(numerator: int | None, denominator: int | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(100.0 * numerator / denominator, 2)


def _actual(ind: Indicator, sums: dict[str, int]) -> float | int:
    if ind.kind == "ratio":
        return ratio(sums.get(ind.numerator, 0), sums.get(ind.denominator, 0))
    return sums.get(ind.code, 0)


class TargetBook:
    """Targets assigned downward: target(U) is what U's parent assigned to U; if none was,
    the sum of what U assigned to its children (summed, never averaged)."""

    def __init__(self, targets_coll, year: int):
        self.coll = targets_coll
        self.year = year

    def for_units(self, unit_ids: list[str], children_of: dict[str, list[str]]) -> dict[str, dict[str, float]]:
        wanted = set(unit_ids) | {c for u in unit_ids for c in children_of.get(u, [])}
        assigned: dict[str, dict[str, float]] = defaultdict(dict)
        for t in self.coll.find({"unit": {"$in": list(wanted)}, "year": self.year}, {"unit": 1, "indicator": 1, "value": 1}):
            assigned[t["unit"]][t["indicator"]] = t["value"]
        out: dict[str, dict[str, float]] = {}
        for u in unit_ids:
            own = dict(assigned.get(u, {}))
            for child in children_of.get(u, []):
                for ind, val in assigned.get(child, {}).items():
                    if ind not in assigned.get(u, {}) and CATALOGUE[ind].kind != "ratio":
                        own[ind] = own.get(ind, 0) + val
            out[u] = own
        return out


def rows_for(sums: dict[str, int], targets: dict[str, float], codes: list[str]) -> list[dict[str, Any]]:
    rows = []
    for code in codes:
        ind = CATALOGUE[code]
        actual = _actual(ind, sums)
        target = targets.get(code)
        rows.append({
            "indicator": code, "name_vi": ind.name_vi, "name_en": ind.name_en, "unit": ind.unit,
            "kind": ind.kind, "group": ind.group, "actual": actual, "target": target,
            "attainment_pct": ratio(actual, target) if (actual is not None and target) else None,
        })
    return rows


def unit_info(gen: Generation, unit_id: str) -> dict:
    unit = gen.units.find_one({"_id": unit_id})
    if unit is None:
        raise Missing(f"unit {unit_id} is not known to reporting (yet)", field="unit_id")
    return unit


def children_ids(gen: Generation, unit_id: str) -> list[dict]:
    return list(gen.units.find({"parent_id": unit_id, "status": {"$nin": ["merged", "dissolved"]}},
                               {"name": 1, "code": 1, "kind": 1, "sector": 1}).sort("name", 1))


def unit_view(gen: Generation, targets_coll, unit_id: str, period: Period, codes: list[str] | None = None) -> dict:
    unit = unit_info(gen, unit_id)
    codes = codes or HEADLINE
    kids = [c["_id"] for c in children_ids(gen, unit_id)]
    sums = _sums(gen, [unit_id], period)[unit_id]
    targets = TargetBook(targets_coll, period.year).for_units([unit_id], {unit_id: kids})[unit_id]
    return {"unit": unit_out(unit), "period": period_out(period), "rows": rows_for(sums, targets, codes)}


def children_view(gen: Generation, targets_coll, unit_id: str, period: Period, codes: list[str] | None = None) -> dict:
    unit = unit_info(gen, unit_id)
    codes = codes or HEADLINE
    kids = children_ids(gen, unit_id)
    ids = [k["_id"] for k in kids]
    grandkids: dict[str, list[str]] = defaultdict(list)
    for g in gen.units.find({"parent_id": {"$in": ids}}, {"parent_id": 1}):
        grandkids[g["parent_id"]].append(g["_id"])
    sums = _sums(gen, ids + [unit_id], period)
    book = TargetBook(targets_coll, period.year)
    targets = book.for_units(ids, grandkids)
    own_targets = book.for_units([unit_id], {unit_id: ids})[unit_id]
    return {
        "unit": unit_out(unit), "period": period_out(period),
        "total": rows_for(sums[unit_id], own_targets, codes),
        "children": [{"unit": unit_out(k), "rows": rows_for(sums[k["_id"]], targets[k["_id"]], codes)} for k in kids],
    }


def series_view(gen: Generation, unit_id: str, indicator: str, first: str, last: str) -> dict:
    unit = unit_info(gen, unit_id)
    ind = CATALOGUE[indicator]
    months = month_range(first, last)
    per_month: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    codes = [ind.numerator, ind.denominator] if ind.kind == "ratio" else [indicator]
    for doc in gen.agg_docs([unit_id], last):
        for field, value in (doc.get("v") or {}).items():
            if indicator_of(field) in codes:
                per_month[doc["month"]][indicator_of(field)] += value
    points = []
    running: dict[str, int] = defaultdict(int)
    for m in sorted(set(per_month) | set(months)):
        for code in codes:
            if CATALOGUE[code].kind == "stock":
                running[code] += per_month[m][code]
        if m < first:
            continue
        values = {c: (running[c] if CATALOGUE[c].kind == "stock" else per_month[m][c]) for c in codes}
        value = ratio(values[ind.numerator], values[ind.denominator]) if ind.kind == "ratio" else values[indicator]
        points.append({"month": m, "value": value})
    return {"unit": unit_out(unit), "indicator": indicator, "name_vi": ind.name_vi, "points": points}


def ratings_view(gen: Generation, unit_id: str, year: int) -> dict:
    unit = unit_info(gen, unit_id)
    month = f"{year}-11"
    values: dict[str, int] = defaultdict(int)
    for doc in gen.agg_docs([unit_id], month):
        if doc["month"] != month:
            continue
        for field, value in (doc.get("v") or {}).items():
            if indicator_of(field).startswith("cdcs.rated"):
                values[indicator_of(field)] += value
    total = values.get("cdcs.rated", 0)
    shares = [{"rating": r, "name_vi": vi, "count": values.get(f"cdcs.rated.{r}", 0),
               "share_pct": ratio(values.get(f"cdcs.rated.{r}", 0), total)} for r, (vi, _) in RATINGS.items()]
    by_sector = []
    for sector, svi in SECTORS.items():
        n = values.get(f"cdcs.rated.{sector}", 0)
        if n:
            by_sector.append({"sector": sector, "name_vi": svi, "rated": n, "ratings": [
                {"rating": r, "count": values.get(f"cdcs.rated.{r}.{sector}", 0),
                 "share_pct": ratio(values.get(f"cdcs.rated.{r}.{sector}", 0), n)} for r in RATINGS]})
    return {"unit": unit_out(unit), "year": year, "rated": total, "shares": shares, "by_sector": by_sector}


def period_out(p: Period) -> dict:
    return {"code": p.code, "first_month": p.first, "last_month": p.last}


def unit_out(u: dict) -> dict:
    return {"id": u["_id"], "name": u.get("name") or u["_id"], "code": u.get("code"), "kind": u.get("kind"),
            "sector": u.get("sector"), "ancestors": u.get("ancestors", []), "status": u.get("status")}

"""Reading the views: a unit's figures for a period, its children side by side, a time series,
the CĐCS quality-rating shares, and attainment against targets.

Every figure comes from the pre-aggregated documents of the unit itself (and of its direct
children for drill-down): the work does not grow with the size of the subtree. Numerators and
denominators are summed first; ratios and attainment percentages are computed last.

Counts (people, units, times, đồng) are integers; ratios and percentages are numbers rounded to
two decimals. The annual rating figures (`Indicator.annual`) are read at the last 30 November
cut-off of the period: its November for the ratings, the stock at its end for the eligible CĐCS;
a period without one (a half-year to 31 May, a summer quarter) has none (null)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from platformkit.web import Missing

from .indicators import CATALOGUE, HEADLINE, RATING_GROUPS, RATINGS, SECTORS, Indicator
from .periods import Period, month_range
from .store import Generation, indicator_of


CLOSED = ("merged", "dissolved")


def _sums(gen: Generation, unit_ids: list[str], period: Period) -> dict[str, dict[str, int]]:
    """{unit: {indicator: value}}: flows summed over the period's months, stocks up to its end;
    annual figures at the period's 30 November cut-off (none without one)."""
    out: dict[str, dict[str, int]] = {u: defaultdict(int) for u in unit_ids}
    if not unit_ids:
        return out
    cutoff = period.rating_month
    for doc in gen.agg_docs(unit_ids, period.last):
        month = doc["month"]
        in_period = month >= period.first
        for field, value in (doc.get("v") or {}).items():
            ind = CATALOGUE.get(indicator_of(field))
            if ind is None:
                continue
            if ind.annual:
                if cutoff is None or month > cutoff or (ind.kind == "flow" and month != cutoff):
                    continue
            elif not (in_period or ind.kind == "stock"):
                continue
            out[doc["unit"]][ind.code] += value
    return out


def ratio(numerator: int | None, denominator: int | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(100.0 * numerator / denominator, 2)


def _actual(ind: Indicator, sums: dict[str, int], annual: bool = True) -> float | int | None:
    """`annual`: whether the period has a 30 November cut-off (else the annual figures are None)."""
    if ind.annual and not annual:
        return None
    if ind.kind == "ratio":
        return ratio(sums.get(ind.numerator, 0), sums.get(ind.denominator, 0))
    return int(sums.get(ind.code, 0))


def figure(ind: Indicator, value):
    """A stored or entered value as the API answers it: an int for a count (150.0 -> 150; a
    fractional count, which set_target refuses, stays as given), a float for a ratio."""
    if value is None:
        return None
    if ind.kind == "ratio":
        return float(value)
    return int(value) if float(value).is_integer() else value


def reached(ind: Indicator, sums: dict[str, int], actual, target) -> bool | None:
    """Whether the actual reached the target (actual >= target; a percentage compared exactly, from
    the summed numerator and denominator, not from its rounded value). None without a target or an
    actual."""
    if target is None or actual is None:
        return None
    if ind.kind == "ratio":
        return 100 * sums.get(ind.numerator, 0) >= target * sums.get(ind.denominator, 0)
    return actual >= target


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


def rows_for(sums: dict[str, int], targets: dict[str, float], codes: list[str],
             period: Period | None = None) -> list[dict[str, Any]]:
    annual = period is None or period.rating_month is not None
    rows = []
    for code in codes:
        ind = CATALOGUE[code]
        actual = _actual(ind, sums, annual)
        target = figure(ind, targets.get(code))
        rows.append({
            "indicator": code, "name_vi": ind.name_vi, "name_en": ind.name_en, "unit": ind.unit,
            "kind": ind.kind, "group": ind.group, "actual": actual, "target": target,
            "attainment_pct": ratio(actual, target) if (actual is not None and target) else None,
            "reached": reached(ind, sums, actual, target),
        })
    return rows


def unit_info(gen: Generation, unit_id: str) -> dict:
    unit = gen.units.find_one({"_id": unit_id})
    if unit is None:
        raise Missing(f"unit {unit_id} is not known to reporting (yet)", field="unit_id")
    return unit


UNIT_FIELDS = {"name": 1, "code": 1, "kind": 1, "sector": 1, "ancestors": 1, "status": 1, "closed_on": 1,
               "merged_into": 1}


def children_ids(gen: Generation, unit_id: str) -> list[dict]:
    """The unit's children still operating (targets are summed over these)."""
    return list(gen.units.find({"parent_id": unit_id, "status": {"$nin": list(CLOSED)}}, UNIT_FIELDS).sort("name", 1))


def drill_down_children(gen: Generation, unit_id: str, period: Period, include_closed: bool | None = None) -> list[dict]:
    """The children a drill-down lists. `include_closed`: True, every child, dissolved and merged
    ones too; False, only those operating; None (the default), those operating plus those closed
    on or after the period's first day, which still count for the period: the children's figures
    then add up to the parent's (a unit closed before the period contributes nothing to it)."""
    kids = list(gen.units.find({"parent_id": unit_id}, UNIT_FIELDS).sort("name", 1))

    def keep(kid: dict) -> bool:
        if kid.get("status") not in CLOSED or include_closed:
            return True
        if include_closed is False:
            return False
        closed_on = kid.get("closed_on")
        return closed_on is not None and closed_on[:7] >= period.first

    return [k for k in kids if keep(k)]


def path_of(gen: Generation, unit: dict) -> list[dict]:
    """The unit's ancestors, root first, as {id, code, name} from reporting's own hierarchy (a unit
    known only from other units' events has no name yet: its id stands in)."""
    # one `_id` look-up per level (a handful), the query FerretDB answers without a scan
    return [_step(gen.unit(a) or {"_id": a}) for a in unit.get("ancestors") or []]


def _step(u: dict) -> dict:
    return {"id": u["_id"], "code": u.get("code"), "name": u.get("name") or u["_id"]}


def unit_view(gen: Generation, targets_coll, unit_id: str, period: Period, codes: list[str] | None = None) -> dict:
    unit = unit_info(gen, unit_id)
    codes = codes or HEADLINE
    kids = [c["_id"] for c in children_ids(gen, unit_id)]
    sums = _sums(gen, [unit_id], period)[unit_id]
    targets = TargetBook(targets_coll, period.year).for_units([unit_id], {unit_id: kids})[unit_id]
    return {"unit": unit_out(unit, path_of(gen, unit)), "period": period_out(period),
            "rows": rows_for(sums, targets, codes, period)}


def children_view(gen: Generation, targets_coll, unit_id: str, period: Period, codes: list[str] | None = None,
                  include_closed: bool | None = None) -> dict:
    unit = unit_info(gen, unit_id)
    codes = codes or HEADLINE
    kids = drill_down_children(gen, unit_id, period, include_closed)
    ids = [k["_id"] for k in kids]
    grandkids: dict[str, list[str]] = defaultdict(list)
    for kid in ids:  # one equality each: FerretDB does not push `$in` down (it would read every unit)
        for g in gen.units.find({"parent_id": kid}, {"parent_id": 1}):
            grandkids[g["parent_id"]].append(g["_id"])
    sums = _sums(gen, ids + [unit_id], period)
    book = TargetBook(targets_coll, period.year)
    targets = book.for_units(ids, grandkids)
    own_kids = [c["_id"] for c in children_ids(gen, unit_id)]
    own_targets = book.for_units([unit_id], {unit_id: own_kids})[unit_id]
    path = path_of(gen, unit)
    below = path + [_step(unit)]
    return {
        "unit": unit_out(unit, path), "period": period_out(period),
        "total": rows_for(sums[unit_id], own_targets, codes, period),
        "children": [{"unit": unit_out(k, below), "rows": rows_for(sums[k["_id"]], targets[k["_id"]], codes, period)}
                     for k in kids],
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
        if ind.kind != "ratio":
            value = values[indicator]
        elif ind.annual and m[5:7] != "11":
            value = None  # a rating share exists at the 30 November cut-off only
        else:
            value = ratio(values[ind.numerator], values[ind.denominator])
        points.append({"month": m, "value": value})
    return {"unit": unit_out(unit, path_of(gen, unit)), "indicator": indicator, "name_vi": ind.name_vi,
            "points": points}


def ratings_view(gen: Generation, targets_coll, unit_id: str, year: int) -> dict:
    """The CĐCS quality ratings of `year` at its 30 November cut-off: how many CĐCS were eligible
    (operating 12 months by then and still active), how many were rated, the share of the eligible
    at each grade and good or better, overall and by sector, each share against its target."""
    unit = unit_info(gen, unit_id)
    month = f"{year}-11"
    cutoff = Period(month, month, month)
    sums = _sums(gen, [unit_id], cutoff)[unit_id]
    kids = [c["_id"] for c in children_ids(gen, unit_id)]
    targets = TargetBook(targets_coll, year).for_units([unit_id], {unit_id: kids})[unit_id]

    def share(code: str, name_vi: str, count_code: str, pct_code: str) -> dict:
        row = rows_for(sums, targets, [pct_code], cutoff)[0]
        return {"rating": code, "name_vi": name_vi, "count": int(sums.get(count_code, 0)), "share_pct": row["actual"],
                "target": row["target"], "attainment_pct": row["attainment_pct"], "reached": row["reached"]}

    def grades(suffix: str = "") -> tuple[list[dict], dict]:
        shares = [share(r, vi, f"cdcs.rated.{r}{suffix}", f"cdcs.rated.{r}_pct{suffix}") for r, (vi, _) in RATINGS.items()]
        (group, (vi, _)), = RATING_GROUPS.items()
        return shares, share(group, vi, f"cdcs.rated.{group}{suffix}", f"cdcs.rated.{group}_pct{suffix}")

    shares, good = grades()
    by_sector = []
    for sector, svi in SECTORS.items():
        eligible, rated = int(sums.get(f"cdcs.rating_eligible.{sector}", 0)), int(sums.get(f"cdcs.rated.{sector}", 0))
        has_target = any(code.startswith("cdcs.rated") and code.endswith(f".{sector}") for code in targets)
        if not (eligible or rated or has_target):
            continue
        sector_shares, sector_good = grades(f".{sector}")
        by_sector.append({"sector": sector, "name_vi": svi, "eligible": eligible, "rated": rated,
                          "rated_pct": ratio(rated, eligible), "good_or_better": sector_good,
                          "ratings": sector_shares})
    eligible, rated = int(sums.get("cdcs.rating_eligible", 0)), int(sums.get("cdcs.rated", 0))
    return {"unit": unit_out(unit, path_of(gen, unit)), "year": year, "cutoff": f"{year}-11-30",
            "eligible": eligible, "rated": rated, "rated_pct": ratio(rated, eligible), "shares": shares,
            "good_or_better": good, "by_sector": by_sector}


def period_out(p: Period) -> dict:
    return {"code": p.code, "first_month": p.first, "last_month": p.last}


def unit_out(u: dict, path: list[dict] | None = None) -> dict:
    """A unit as the API shows it: with its status (`active`, `dissolved`, `merged`; `closed_on` the
    date it was dissolved or merged, `merged_into` the unit it joined) and, when given, its path."""
    out = {"id": u["_id"], "name": u.get("name") or u["_id"], "code": u.get("code"), "kind": u.get("kind"),
           "sector": u.get("sector"), "ancestors": u.get("ancestors", []), "status": u.get("status"),
           "closed_on": u.get("closed_on"), "merged_into": u.get("merged_into")}
    if path is not None:
        out["path"] = path
    return out

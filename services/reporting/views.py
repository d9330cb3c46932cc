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
from typing import Any, Iterable

from platformkit import mongo, paging
from platformkit.errors import NotFound as Missing

from . import hierarchy_history as history
from .generations.hierarchy_reads import CHILD_FIELDS
from .indicators import CATALOGUE, HEADLINE, RATING_GROUPS, RATINGS, SECTORS, Indicator
from .periods import Period, month_range
from .store import Generation, indicator_of


CLOSED = ("merged", "dissolved")


def period_sums(gen: Generation, unit_ids: list[str], period: Period) -> dict[str, dict[str, int]]:
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


def merged_predecessors(gen: Generation, unit: dict, depth: int = 0) -> list[dict]:
    """The units that merged into `unit` from under the same parent (with those that merged into
    them in turn): their history is shown on `unit` wherever they are no longer shown themselves."""
    out = []
    for pid in unit.get("predecessors") or []:
        pred = gen.unit(pid)
        if (pred is not None and pred.get("status") == "merged" and pred.get("parent_id") == unit.get("parent_id")
                and depth < 8):
            out.append(pred)
            out += merged_predecessors(gen, pred, depth + 1)
    return out


def folded_into(gen: Generation, unit: dict, period: Period, listed: set[str] | None = None) -> list[dict]:
    """The merged units whose figures `unit`'s row carries for `period`: in a drill-down, those its
    list leaves out (`listed`: the ids it lists); on the unit's own, those closed before the period
    (the ones a drill-down leaves out by default). A merged unit keeps its documents (its parent's
    figures for earlier periods never change), so its children still add up to the parent."""
    out = []
    for pred in merged_predecessors(gen, unit):
        hidden = (pred["_id"] not in listed) if listed is not None else (pred.get("closed_on") or "")[:7] < period.first
        if hidden:
            out.append(pred)
    return out


def with_folded(sums: dict[str, dict[str, int]], unit_id: str, folded: list[dict]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int, sums.get(unit_id, {}))
    for pred in folded:
        for code, value in sums.get(pred["_id"], {}).items():
            out[code] += value
    return out


class TargetBook:
    """The targets of one year. A target belongs to the unit and year it was set for; restructuring
    never takes it away:

    * target(U) is what the level above assigned to U; if none was, the sum of what was assigned
      to U's children of that year: those operating, and those closed (dissolved, merged) in that
      year or later, which still count for it (summed, never averaged; a ratio is never summed);
    * a successor carries its predecessors' targets (`predecessors` on the unit, written by the
      projector): a dissolved unit's (its CĐCS and their history moved to the successor) fill in
      where the successor has none; a merged unit's wherever the successor's row carries its
      figures (`folded_into`), added to the successor's own. The row says `carried_from`; a closed
      unit's own row says `carried_to`;
    * a parent counts each assigned target once: a target carried by one child from another child
      of the same year is that child's, counted there."""

    def __init__(self, targets_coll, year: int, gen: Generation | None = None):
        self.coll = targets_coll
        self.year = year
        self.gen = gen
        self._assigned: dict[str, dict[str, float]] = {}

    def assigned(self, unit_ids, units: Iterable[dict] = ()) -> dict[str, dict[str, float]]:
        """{unit: {indicator: value}} set for these units and the year. Those among `units` (their
        documents) that only ever had one parent are read with their siblings, one query per
        parent (`by_parent`); the others one query each, in parallel."""
        missing = [u for u in dict.fromkeys(unit_ids) if u not in self._assigned]
        if missing:
            for u in missing:
                self._assigned[u] = {}
            missing = self._by_parent(missing, units)
            found = mongo.in_parallel(lambda u: targets_of(self.coll, u, self.year, TARGET_FIELDS), missing)
            for targets in found:
                for t in targets:
                    self._assigned[t["unit"]][t["indicator"]] = t["value"]
        return {u: self._assigned[u] for u in unit_ids}

    def _by_parent(self, missing: list[str], units: Iterable[dict]) -> list[str]:
        """Reads the targets of the units in `missing` whose only parent ever was P, for each P
        with several of them, by the `parent_id` each target stores (the unit's parent when it was
        set): the province view's ~150 communes are one query instead of 150. Returns the units
        still to read."""
        wanted = set(missing)
        groups: dict[str, set[str]] = defaultdict(set)
        for u in units:
            parent = sole_parent(u)
            if u["_id"] in wanted and parent is not None:
                groups[parent].add(u["_id"])
        done: set[str] = set()
        for parent, ids in groups.items():
            if len(ids) < 2:
                continue
            found = targets_by_parent(self.coll, parent, self.year)
            if found is None:
                continue  # more than a bounded read: one query per unit instead
            for t in found:
                if t["unit"] in ids:
                    self._assigned[t["unit"]][t["indicator"]] = t["value"]
            done |= ids
        return [u for u in missing if u not in done]

    def predecessors(self, unit: dict, depth: int = 0) -> list[dict]:
        """The closed units whose targets `unit` may carry, with theirs in turn."""
        if self.gen is None or depth > 8:
            return []
        out = []
        for pid in unit.get("predecessors") or []:
            pred = self.gen.unit(pid)
            if pred is not None and pred.get("status") in CLOSED:
                out.append(pred)
                out += self.predecessors(pred, depth + 1)
        return out

    def _carry(self, base: dict[str, float], preds: list[dict], own: bool) -> tuple[dict[str, float], dict[str, list[str]]]:
        """`base` with the predecessors' targets: a merged one's added to a count target the unit
        was assigned itself (`own`), otherwise only where `base` has none."""
        out, sources = dict(base), {}
        assigned = self.assigned([p["_id"] for p in preds])
        for pred in preds:
            for ind, val in assigned[pred["_id"]].items():
                adds = own and ind in base and pred.get("status") == "merged" and CATALOGUE[ind].kind != "ratio"
                if ind in out and not adds:
                    continue
                out[ind] = out.get(ind, 0) + val
                sources.setdefault(ind, []).append(pred["_id"])
        return out, sources

    def _carried_by(self, unit: dict, folded: set[str] | None, siblings: set[str] = frozenset()) -> list[dict]:
        """The predecessors whose targets `unit` carries: dissolved ones; merged ones folded into it
        (`folded`; None: those of its parent closed before the year)."""
        out = []
        for pred in self.predecessors(unit):
            if pred["_id"] in siblings:
                continue  # counted as that sibling's own
            if pred.get("status") == "dissolved":
                out.append(pred)
            elif folded is not None:
                if pred["_id"] in folded:
                    out.append(pred)
            elif pred.get("parent_id") == unit.get("parent_id") and (pred.get("closed_on") or "")[:4] < str(self.year):
                out.append(pred)
        return out

    def of(self, unit: dict, children: list[dict], folded: set[str] | None = None
           ) -> tuple[dict[str, float], dict[str, list[str]]]:
        """(targets, carried_from) of `unit`, whose children of the year are `children` and whose
        row carries the figures of the merged units `folded`."""
        uid = unit["_id"]
        kid_ids = {c["_id"] for c in children}
        own = dict(self.assigned([uid, *kid_ids], children)[uid])
        summed: dict[str, float] = {}
        for child in children:
            child_own = self.assigned([child["_id"]])[child["_id"]]
            child_targets, _ = self._carry(child_own, self._carried_by(child, None, kid_ids), own=bool(child_own))
            for ind, val in child_targets.items():
                if ind not in own and CATALOGUE[ind].kind != "ratio":
                    summed[ind] = summed.get(ind, 0) + val
        return self._carry({**summed, **own}, self._carried_by(unit, folded), own=bool(own))

    def carried_to(self, unit: dict) -> list[str]:
        """The successors a closed unit's targets of the year went to (none: no targets, or none)."""
        if unit.get("status") not in CLOSED or not self.assigned([unit["_id"]])[unit["_id"]]:
            return []
        return list(unit.get("successors") or [])


# A unit has at most one target per indicator and year: bounded by the catalogue.
MAX_TARGETS_PER_UNIT_YEAR = 500
# The targets a parent's children were given in a year, read at once (targets_by_parent); beyond
# this, one query per child.
MAX_TARGETS_BY_PARENT = 20_000
TARGET_FIELDS = {"unit": 1, "indicator": 1, "value": 1}


def sole_parent(unit: dict) -> str | None:
    """The unit's parent if it never had another in this generation (`parents_seen`, or the history
    of a document projected before that was kept), else None."""
    parent = unit.get("parent_id")
    if parent is None:
        return None
    seen = unit.get("parents_seen")
    if seen is None:
        history = unit.get("parents")
        seen = [e["parent"] for e in history] if history else [None]
    return parent if set(seen) == {parent} else None


def targets_by_parent(targets_coll, parent_id: str, year: int) -> list[dict] | None:
    """The targets set in `year` for units while `parent_id` was their parent: one equality query
    (the `parent_year` declaration); None when there are more than MAX_TARGETS_BY_PARENT."""
    found = list(targets_coll.find({"parent_id": parent_id, "year": year}, TARGET_FIELDS)
                 .limit(MAX_TARGETS_BY_PARENT + 1))
    return None if len(found) > MAX_TARGETS_BY_PARENT else found


def targets_of(targets_coll, unit_id: str, year: int, projection: dict | None = None) -> list[dict]:
    """The targets set for one unit and year, by `_id`: one equality query per unit (the compound
    `unit_year` declaration), which FerretDB serves from its index; the `unit $in [...]` it
    replaced was a scan of every target of the province."""
    return list(targets_coll.find({"unit": unit_id, "year": year}, projection).sort("_id", 1)
                .limit(MAX_TARGETS_PER_UNIT_YEAR))


def carried_targets(gen: Generation, targets_coll, units: list[dict], year: int) -> list[dict]:
    """The targets of `year` these units carry from their predecessors, as target entries with
    `carried_from` (the predecessor they were set for)."""
    book = TargetBook(targets_coll, year, gen)
    out = []
    for unit in units:
        preds = book.predecessors(unit)
        if not preds:
            continue
        for t in [t for p in sorted(preds, key=lambda p: p["_id"]) for t in targets_of(targets_coll, p["_id"], year)]:
            out.append({**t, "_id": f"{unit['_id']}|{t['indicator']}|{year}|from|{t['unit']}", "unit": unit["_id"],
                        "carried_from": t["unit"]})
    return out


def rows_for(sums: dict[str, int], targets: dict[str, float], codes: list[str],
             period: Period | None = None, carried_from: dict[str, list[str]] | None = None,
             carried_to: list[str] | None = None) -> list[dict[str, Any]]:
    annual = period is None or period.rating_month is not None
    rows = []
    for code in codes:
        ind = CATALOGUE[code]
        actual = _actual(ind, sums, annual)
        target = figure(ind, targets.get(code))
        row = {
            "indicator": code, "name_vi": ind.name_vi, "name_en": ind.name_en, "unit": ind.unit,
            "kind": ind.kind, "group": ind.group, "actual": actual, "target": target,
            "attainment_pct": ratio(actual, target) if (actual is not None and target) else None,
            "reached": reached(ind, sums, actual, target),
        }
        if carried_from and code in carried_from:
            row["carried_from"] = carried_from[code]
        if carried_to and target is not None:
            row["carried_to"] = carried_to
        rows.append(row)
    return rows


def unit_info(gen: Generation, unit_id: str) -> dict:
    unit = gen.unit(unit_id)
    if unit is None:
        raise Missing(f"unit {unit_id} is not known to reporting (yet)", field="unit_id")
    return unit


UNIT_FIELDS = CHILD_FIELDS  # `parents_seen` and `parents` included: sole_parent reads them


def children_of_year(gen: Generation, unit_id: str, year: int) -> list[dict]:
    """The unit's children that count for `year`: operating, or closed in that year or later
    (targets of a year are summed over these)."""
    return sorted((k for k in gen.children(unit_id) if counts_for_year(k, year)), key=lambda k: k.get("name") or "")


def counts_for_year(kid: dict, year: int) -> bool:
    return kid.get("status") not in CLOSED or (kid.get("closed_on") or "9999")[:4] >= str(year)


def child_order(unit: dict) -> list[str]:
    """Children by name (a unit not named yet first), then id: the drill-down's order and its cursor."""
    return [unit.get("name") or "", unit["_id"]]


def drill_down_children(gen: Generation, unit_id: str, period: Period, include_closed: bool | None = None) -> list[dict]:
    """The children a drill-down lists. `include_closed`: True, every child, dissolved and merged
    ones too; False, only those operating; None (the default), those operating plus those closed
    on or after the period's first day, which still count for the period: the children's figures
    then add up to the parent's (a unit closed before the period contributes nothing to it)."""
    kids = sorted(gen.children(unit_id), key=child_order)
    return [k for k in kids if listed_in_drill_down(k, period, include_closed)]


def listed_in_drill_down(kid: dict, period: Period, include_closed: bool | None) -> bool:
    if kid.get("status") not in CLOSED or include_closed:
        return True
    if include_closed is False:
        return False
    closed_on = kid.get("closed_on")
    return closed_on is not None and closed_on[:7] >= period.first


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
    folded = folded_into(gen, unit, period)
    sums = with_folded(period_sums(gen, [unit_id] + [f["_id"] for f in folded], period), unit_id, folded)
    book = TargetBook(targets_coll, period.year, gen)
    targets, carried_from = book.of(unit, children_of_year(gen, unit_id, period.year), {f["_id"] for f in folded})
    return {"unit": unit_out(unit, path_of(gen, unit), folded), "period": period_out(period), "hierarchy": CURRENT,
            "rows": rows_for(sums, targets, codes, period, carried_from, book.carried_to(unit))}


def children_view(gen: Generation, targets_coll, unit_id: str, period: Period, codes: list[str] | None = None,
                  include_closed: bool | None = None, after: list | None = None, limit: int | None = None) -> dict:
    """The unit's total and one page of its children (`limit` None: every child, for an export);
    the figures are summed for the page's children only."""
    unit = unit_info(gen, unit_id)
    codes = codes or HEADLINE
    kids, next_cursor = paging.page_of_list(drill_down_children(gen, unit_id, period, include_closed),
                                            child_order, after, limit)
    ids = [k["_id"] for k in kids]
    year = str(period.year)
    grandkids: dict[str, list[dict]] = defaultdict(list)
    for kid in ids:  # one equality each (FerretDB does not push `$in` down), or what this process holds
        for g in gen.children(kid):
            if g.get("status") not in CLOSED or (g.get("closed_on") or "9999")[:4] >= year:
                grandkids[g["parent_id"]].append(g)
    listed = set(ids)
    folded = {k["_id"]: folded_into(gen, k, period, listed) for k in kids}
    own_folded = folded_into(gen, unit, period)
    sums = period_sums(gen, ids + [unit_id] + [f["_id"] for fs in [*folded.values(), own_folded] for f in fs], period)
    book = TargetBook(targets_coll, period.year, gen)
    below_kids = [g for gs in grandkids.values() for g in gs]
    book.assigned([unit_id, *ids, *(g["_id"] for g in below_kids)], [*kids, *below_kids])  # a query per parent
    own_targets, own_from = book.of(unit, children_of_year(gen, unit_id, period.year), {f["_id"] for f in own_folded})
    path = path_of(gen, unit)
    below = path + [_step(unit)]
    children = []
    for k in kids:
        targets, carried_from = book.of(k, grandkids[k["_id"]], {f["_id"] for f in folded[k["_id"]]})
        children.append({"unit": unit_out(k, below, folded[k["_id"]]),
                         "rows": rows_for(with_folded(sums, k["_id"], folded[k["_id"]]), targets, codes, period,
                                          carried_from, book.carried_to(k))})
    return {
        "unit": unit_out(unit, path, own_folded), "period": period_out(period), "hierarchy": CURRENT,
        "total": rows_for(with_folded(sums, unit_id, own_folded), own_targets, codes, period, own_from,
                          book.carried_to(unit)),
        "children": children,
        "next_cursor": next_cursor,
    }


CURRENT = {"kind": "current", "as_of": None}


class HierarchyOn:
    """The hierarchy on a date, from every unit's parent history (hierarchy_history.py). Reads
    every unit once (a heavy read, as the endpoints are)."""

    def __init__(self, gen: Generation, day: str):
        self.gen, self.day = gen, day
        self.units = {u["_id"]: u for u in gen.units.find({}, UNIT_FIELDS)}
        self.kids = history.tree_on(list(self.units.values()), day)
        self.current_parent = {uid: u.get("parent_id") for uid, u in self.units.items()}
        self.parent = {kid: parent for parent, kids in self.kids.items() for kid in kids}

    def out(self) -> dict:
        return {"kind": "as_of", "as_of": self.day}

    def children(self, unit_id: str) -> list[dict]:
        return sorted((self.units[k] for k in self.kids.get(unit_id, ()) if k in self.units), key=child_order)

    def children_of_year(self, unit_id: str, year: int) -> list[dict]:
        return [k for k in self.children(unit_id) if counts_for_year(k, year)]

    def path(self, unit_id: str) -> list[dict]:
        """The unit's ancestors on the date, root first."""
        out, seen, p = [], {unit_id}, self.parent.get(unit_id)
        while p is not None and p not in seen:
            seen.add(p)
            out.append(_step(self.units.get(p) or {"_id": p}))
            p = self.parent.get(p)
        return out[::-1]

    def sums(self, unit_ids: list[str], period: Period) -> dict[str, dict[str, int]]:
        """{unit: its subtree's figures on the date}: its own and those of every unit below it then
        (numerators and denominators summed; ratios are computed last, by rows_for)."""
        weights = {u: history.signed_members(history.subtree(self.kids, u), self.current_parent) for u in unit_ids}
        stored = period_sums(self.gen, sorted({x for w in weights.values() for x in w}), period)
        out: dict[str, dict[str, int]] = {}
        for u, w in weights.items():
            total: dict[str, int] = defaultdict(int)
            for x, sign in w.items():
                for code, value in stored.get(x, {}).items():
                    total[code] += sign * value
            out[u] = total
        return out


def unit_view_as_of(gen: Generation, targets_coll, unit_id: str, period: Period, day: str,
                    codes: list[str] | None = None) -> dict:
    """`unit_view` with the hierarchy of `day`: the figures of the units below it on that date,
    the targets of its children on that date. Merged units are not folded into their successor:
    on the date they are where they were."""
    unit = unit_info(gen, unit_id)
    codes = codes or HEADLINE
    tree = HierarchyOn(gen, day)
    sums = tree.sums([unit_id], period)[unit_id]
    book = TargetBook(targets_coll, period.year, gen)
    targets, carried_from = book.of(unit, tree.children_of_year(unit_id, period.year), set())
    return {"unit": unit_out(unit, tree.path(unit_id)), "period": period_out(period), "hierarchy": tree.out(),
            "rows": rows_for(sums, targets, codes, period, carried_from, book.carried_to(unit))}


def children_view_as_of(gen: Generation, targets_coll, unit_id: str, period: Period, day: str,
                        codes: list[str] | None = None, include_closed: bool | None = None,
                        after: list | None = None, limit: int | None = None) -> dict:
    """`children_view` with the hierarchy of `day`: the children it had on that date."""
    unit = unit_info(gen, unit_id)
    codes = codes or HEADLINE
    tree = HierarchyOn(gen, day)
    listed = [k for k in tree.children(unit_id) if listed_in_drill_down(k, period, include_closed)]
    kids, next_cursor = paging.page_of_list(listed, child_order, after, limit)
    sums = tree.sums([unit_id] + [k["_id"] for k in kids], period)
    book = TargetBook(targets_coll, period.year, gen)
    own_targets, own_from = book.of(unit, tree.children_of_year(unit_id, period.year), set())
    path = tree.path(unit_id)
    below = path + [_step(unit)]
    children = []
    for k in kids:
        targets, carried_from = book.of(k, tree.children_of_year(k["_id"], period.year), set())
        children.append({"unit": unit_out(k, below), "rows": rows_for(sums[k["_id"]], targets, codes, period,
                                                                      carried_from, book.carried_to(k))})
    return {"unit": unit_out(unit, path), "period": period_out(period), "hierarchy": tree.out(),
            "total": rows_for(sums[unit_id], own_targets, codes, period, own_from, book.carried_to(unit)),
            "children": children, "next_cursor": next_cursor}


def series_view(gen: Generation, unit_id: str, indicator: str, first: str, last: str) -> dict:
    unit = unit_info(gen, unit_id)
    ind = CATALOGUE[indicator]
    months = month_range(first, last)
    per_month: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    codes = [ind.numerator, ind.denominator] if ind.kind == "ratio" else [indicator]
    folded = folded_into(gen, unit, Period(first, first, last))
    for doc in gen.agg_docs([unit_id] + [f["_id"] for f in folded], last):
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
    return {"unit": unit_out(unit, path_of(gen, unit), folded), "indicator": indicator, "name_vi": ind.name_vi,
            "points": points}


def ratings_view(gen: Generation, targets_coll, unit_id: str, year: int) -> dict:
    """The CĐCS quality ratings of `year` at its 30 November cut-off: how many CĐCS were eligible
    (operating 12 months by then and still active), how many were rated, the share of the eligible
    at each grade and good or better, overall and by sector, each share against its target."""
    unit = unit_info(gen, unit_id)
    month = f"{year}-11"
    cutoff = Period(month, month, month)
    folded = folded_into(gen, unit, cutoff)
    sums = with_folded(period_sums(gen, [unit_id] + [f["_id"] for f in folded], cutoff), unit_id, folded)
    targets, _ = TargetBook(targets_coll, year, gen).of(unit, children_of_year(gen, unit_id, year),
                                                        {f["_id"] for f in folded})

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


def unit_out(u: dict, path: list[dict] | None = None, folded: list[dict] | None = None) -> dict:
    """A unit as the API shows it: with its status (`active`, `dissolved`, `merged`; `closed_on` the
    date it was dissolved or merged, `merged_into` the unit it joined), the closed units it
    succeeds (`predecessors`) or, closed, its `successors`, the merged units whose figures this
    view shows on it (`includes_merged`: see `folded_into`) and, when given, its path."""
    out = {"id": u["_id"], "name": u.get("name") or u["_id"], "code": u.get("code"), "kind": u.get("kind"),
           "sector": u.get("sector"), "ancestors": u.get("ancestors", []), "status": u.get("status"),
           "closed_on": u.get("closed_on"), "merged_into": u.get("merged_into"),
           "predecessors": list(u.get("predecessors") or []), "successors": list(u.get("successors") or []),
           "includes_merged": [f["_id"] for f in folded or []]}
    if path is not None:
        out["path"] = path
    return out

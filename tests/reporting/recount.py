"""An independent recount of the figures from the raw events, written plainly and separately
from the projector: the final hierarchy from the unit events, then every fact attributed to its
unit and summed up that hierarchy. The tests compare the views against it."""
from __future__ import annotations

from collections import defaultdict

SECTORS = ("public_admin", "state_enterprise", "non_state", "cooperative", "informal")
GOOD_OR_BETTER = ("excellent", "good")


def plus_12_months(day: str) -> str:
    """'2024-11-30' -> '2025-11': the month by whose end a CĐCS founded that day has operated 12
    months (by 30 November, the last day of November, for a November)."""
    y, m = int(day[:4]), int(day[5:7])
    return f"{y + 1:04d}-{m:02d}"


def cutoff_month(first: str, last: str) -> str | None:
    """The last 30 November cut-off (YYYY-11) within first..last."""
    for year in range(int(last[:4]), int(first[:4]) - 1, -1):
        if first <= f"{year:04d}-11" <= last:
            return f"{year:04d}-11"
    return None


def final_parents(envelopes) -> dict[str, str | None]:
    parent: dict[str, str | None] = {}
    for e in envelopes:
        if e.type in ("membership.unit.created.v1", "membership.unit.moved.v1"):
            parent[e.data["unit_id"]] = e.data["parent_id"]
    return parent


def chain(unit: str, parent: dict[str, str | None]) -> list[str]:
    out = []
    while unit is not None:
        out.append(unit)
        unit = parent.get(unit)
    return out


def recount(envelopes, first: str, last: str) -> dict[str, dict[str, int]]:
    """{unit: {indicator: value}} for the months first..last (stocks: at the end of `last`)."""
    envelopes = list(envelopes)
    parent = final_parents(envelopes)
    leaf: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(unit, indicator, month, n, stock=False):
        if month <= last and (stock or month >= first):
            leaf[unit][indicator] += n

    member = {}  # id -> [status, unit, gender, official]
    dues = {}
    # distinct within a calendar year: (who, year) -> (date, tie-breaker, unit) of the year's earliest
    trained, reached, reached_cdcs = {}, {}, {}
    cdcs = {}  # id -> {"founded": day, "sector", "closed": day, "status"}
    ratings = {}  # (unit, year) -> the grade last confirmed
    for e in envelopes:
        d, t = e.data, e.type.rsplit(".", 1)[0]
        if t.startswith("membership.member."):
            st = member.setdefault(d["member_id"], ["new", d["unit_id"], d["gender"], d["is_official"]])
            was_active = st[0] == "active"
            kind = t.split(".")[2]
            if kind == "admitted":
                add(d["unit_id"], "members.admitted", d["admitted_on"][:7], 1)
                st[0] = "admitted"
            elif kind == "approved":
                if not was_active:
                    _stock(add, d["unit_id"], d["gender"], d["is_official"], d["approved_on"][:7], +1)
                st[0] = "active"
            elif kind == "transferred":
                m = d["transferred_on"][:7]
                add(d["from_unit_id"], "members.transferred_out", m, 1)
                add(d["unit_id"], "members.transferred_in", m, 1)
                if was_active:
                    _stock(add, d["from_unit_id"], st[2], st[3], m, -1)
                    _stock(add, d["unit_id"], d["gender"], d["is_official"], m, +1)
            elif kind == "left":
                add(d["unit_id"], "members.left", d["left_on"][:7], 1)
                if was_active:
                    _stock(add, d["unit_id"], st[2], st[3], d["left_on"][:7], -1)
                st[0] = "left"
            elif kind == "reinstated":
                if not was_active:
                    _stock(add, d["unit_id"], d["gender"], d["is_official"], d["reinstated_on"][:7], +1)
                st[0] = "active"
            elif kind == "profile_updated" and was_active:
                m = e.time[:7]
                _stock(add, d["unit_id"], st[2], st[3], m, -1)
                _stock(add, d["unit_id"], d["gender"], d["is_official"], m, +1)
            st[1], st[2], st[3] = d["unit_id"], d["gender"], d["is_official"]
        elif t == "membership.cdcs.founded":
            m = d["effective_date"][:7]
            add(d["unit_id"], "cdcs.founded", m, 1)
            add(d["unit_id"], "cdcs.active", m, 1, stock=True)
            if d["method"] == "new_method":
                add(d["unit_id"], "cdcs.founded_new_method", m, 1)
            cdcs[d["unit_id"]] = {"founded": d["effective_date"], "sector": d["sector"], "closed": None}
        elif t in ("membership.unit.dissolved", "membership.unit.merged"):
            c = cdcs.get(d["unit_id"])
            if c is not None and c["closed"] is None:
                c["closed"] = d["effective_date"]
                add(d["unit_id"], "cdcs.active", d["effective_date"][:7], -1, stock=True)
        elif t == "membership.committee.consolidated":
            add(d["unit_id"], "committees.consolidated", d["date"][:7], 1)
        elif t == "membership.dues.recorded":
            old = dues.get(e.subject, (0, 0))
            add(d["unit_id"], "dues.collected", d["month"], d["paid"] - old[0])
            add(d["unit_id"], "dues.due", d["month"], d["due"] - old[1])
            dues[e.subject] = (d["paid"], d["due"])
        elif t == "membership.cdcs.rated" and d["status"] == "confirmed":
            ratings[(d["unit_id"], int(d["year"]))] = d["rating"]
        elif t == "training.enrolment.completed" and d["is_official"]:
            _earliest(trained, (d["member_id"], d["completed_on"][:4]), (d["completed_on"], d["class_id"], d["unit_id"]))
        elif t == "training.dissemination.member_reached":
            _earliest(reached, (d["member_id"], d["held_on"][:4]), (d["held_on"], d["session_id"], d["unit_id"]))
        elif t == "training.dissemination.cdcs_reached":
            _earliest(reached_cdcs, (d["unit_id"], d["held_on"][:4]), (d["held_on"], d["session_id"], d["unit_id"]))
        elif t == "training.certificate.issued":
            add(d["unit_id"], "training.certificates", d["issued_on"][:7], 1)
        elif t == "training.class.closed":
            add(d["organising_unit_id"], "training.classes_held", d["closed_on"][:7], 1)
        elif t == "training.dissemination.recorded":
            for r in d["reached"]:
                add(r["unit_id"], "training.members_reached", d["held_on"][:7], r["members_reached"])
        elif t == "welfare.case.disbursed":
            m = d["disbursed_on"][:7]
            add(d["unit_id"], "welfare.cases", m, 1)
            add(d["unit_id"], "welfare.amount", m, d["amount"])
            if d["programme_kind"] == "micro_loan":
                add(d["unit_id"], "loans.outstanding", m, d["outstanding"], stock=True)
        elif t == "welfare.loan.repaid":
            add(d["unit_id"], "loans.outstanding", d["paid_on"][:7], -d["amount"], stock=True)
    # The ratings: at the period's last 30 November cut-off, the CĐCS that had operated 12 months by
    # then and were not dissolved or merged by then; the grades of those CĐCS confirmed for that year.
    cutoff = cutoff_month(first, last)
    if cutoff is not None:
        year = int(cutoff[:4])
        for unit, c in cdcs.items():
            if plus_12_months(c["founded"]) > cutoff or (c["closed"] and c["closed"][:7] <= cutoff):
                continue
            grade = ratings.get((unit, year))
            codes = ["cdcs.rating_eligible"]
            if grade:
                codes += ["cdcs.rated", f"cdcs.rated.{grade}"] + (["cdcs.rated.good_or_better"]
                                                                   if grade in GOOD_OR_BETTER else [])
            for code in codes:
                leaf[unit][code] += 1
                leaf[unit][f"{code}.{c['sector']}"] += 1
    # a member (official, CĐCS) counts once a year, in the month of its earliest event of the year
    for indicator, earliest in (("officials.trained", trained), ("training.members_reached_distinct", reached),
                                ("training.cdcs_reached", reached_cdcs)):
        for on, _tie, unit in earliest.values():
            add(unit, indicator, on[:7], 1)
    rolled: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for unit, figures in leaf.items():
        for u in chain(unit, parent):
            for ind, v in figures.items():
                rolled[u][ind] += v
    return rolled


def _earliest(firsts: dict, key: tuple, candidate: tuple) -> None:
    if key not in firsts or candidate < firsts[key]:
        firsts[key] = candidate


def _stock(add, unit, gender, official, month, sign):
    add(unit, "members.active", month, sign, stock=True)
    if gender == "female":
        add(unit, "members.active_female", month, sign, stock=True)
    if official:
        add(unit, "officials.total", month, sign, stock=True)


COMPARED = ["members.active", "members.active_female", "members.admitted", "members.transferred_in",
            "members.transferred_out", "members.left", "officials.total", "cdcs.founded", "cdcs.founded_new_method",
            "cdcs.active", "committees.consolidated", "dues.collected", "dues.due", "cdcs.rated",
            "cdcs.rated.excellent", "cdcs.rated.good", "cdcs.rated.completed", "cdcs.rated.not_completed",
            "cdcs.rated.good_or_better", "cdcs.rating_eligible",
            *(f"cdcs.rating_eligible.{s}" for s in SECTORS), *(f"cdcs.rated.{s}" for s in SECTORS),
            *(f"cdcs.rated.good_or_better.{s}" for s in SECTORS),
            "officials.trained", "training.certificates",
            "training.classes_held", "training.members_reached", "training.members_reached_distinct",
            "training.cdcs_reached", "welfare.cases", "welfare.amount", "loans.outstanding"]

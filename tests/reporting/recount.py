"""An independent recount of the figures from the raw events, written plainly and separately
from the projector: the final hierarchy from the unit events, then every fact attributed to its
unit and summed up that hierarchy. The tests compare the views against it."""
from __future__ import annotations

from collections import defaultdict


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
    trained = set()
    rated = {}
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
        elif t == "membership.committee.consolidated":
            add(d["unit_id"], "committees.consolidated", d["date"][:7], 1)
        elif t == "membership.dues.recorded":
            old = dues.get(e.subject, (0, 0))
            add(d["unit_id"], "dues.collected", d["month"], d["paid"] - old[0])
            add(d["unit_id"], "dues.due", d["month"], d["due"] - old[1])
            dues[e.subject] = (d["paid"], d["due"])
        elif t == "membership.cdcs.rated" and d["status"] == "confirmed":
            key = (d["unit_id"], d["year"])
            old = rated.get(key)
            m = f"{d['year']}-11"
            if old != d["rating"]:
                if old:
                    add(d["unit_id"], f"cdcs.rated.{old}", m, -1)
                else:
                    add(d["unit_id"], "cdcs.rated", m, 1)
                add(d["unit_id"], f"cdcs.rated.{d['rating']}", m, 1)
                rated[key] = d["rating"]
        elif t == "training.enrolment.completed" and d["is_official"]:
            key = (d["member_id"], d["completed_on"][:4])
            if key not in trained:
                trained.add(key)
                add(d["unit_id"], "officials.trained", d["completed_on"][:7], 1)
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
    rolled: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for unit, figures in leaf.items():
        for u in chain(unit, parent):
            for ind, v in figures.items():
                rolled[u][ind] += v
    return rolled


def _stock(add, unit, gender, official, month, sign):
    add(unit, "members.active", month, sign, stock=True)
    if gender == "female":
        add(unit, "members.active_female", month, sign, stock=True)
    if official:
        add(unit, "officials.total", month, sign, stock=True)


COMPARED = ["members.active", "members.active_female", "members.admitted", "members.transferred_in",
            "members.transferred_out", "members.left", "officials.total", "cdcs.founded", "cdcs.founded_new_method",
            "cdcs.active", "committees.consolidated", "dues.collected", "dues.due", "cdcs.rated",
            "cdcs.rated.excellent", "cdcs.rated.good", "officials.trained", "training.certificates",
            "training.classes_held", "training.members_reached", "welfare.cases", "welfare.amount", "loans.outstanding"]

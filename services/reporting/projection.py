"""What each domain event means for the attainment views: pure functions, no I/O.

`project(event, state)` returns the fact deltas (unit, indicator, month, amount) the event adds,
the new per-aggregate state the projector must remember (when a later event's meaning depends on
history: a member's status, a month's dues already counted, a CĐCS's confirmed rating, a loan's
balance), and any hierarchy change (a unit created, moved, merged, dissolved).

Deltas name the LEAF unit only; the store adds them to every ancestor by the current hierarchy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from platformkit.envelope import Envelope

from .periods import month_of


@dataclass(frozen=True)
class Delta:
    unit_id: str
    indicator: str
    month: str
    amount: int


@dataclass
class HierarchyChange:
    unit_id: str
    parent_id: str | None
    ancestors_hint: list[str]
    fields: dict[str, Any]


@dataclass
class Effects:
    deltas: list[Delta] = field(default_factory=list)
    state_key: str | None = None
    new_state: dict[str, Any] | None = None
    hierarchy: HierarchyChange | None = None
    # a unit the deltas name that the store may not know yet: (unit_id, ancestors at event time)
    unit_hints: list[tuple[str, list[str]]] = field(default_factory=list)


def state_key(env: Envelope) -> str | None:
    base, d = env.base_type, env.data
    if base.startswith("membership.member."):
        return f"member:{d['member_id']}"
    if base == "membership.dues.recorded":
        return f"dues:{env.subject}"
    if base == "membership.cdcs.rated":
        return f"rating:{d['unit_id']}:{d['year']}"
    if base in ("membership.unit.merged", "membership.unit.dissolved", "membership.cdcs.founded"):
        return f"cdcs:{d['unit_id']}"
    if env.source == "training":
        from .projection_training import training_state_key
        return training_state_key(env)
    return None


def _member_stock(unit: str, st: dict, month: str, sign: int) -> list[Delta]:
    out = [Delta(unit, "members.active", month, sign)]
    if st.get("gender") == "female":
        out.append(Delta(unit, "members.active_female", month, sign))
    if st.get("is_official"):
        out.append(Delta(unit, "officials.total", month, sign))
    return out


def project_membership(env: Envelope, state: dict | None) -> Effects:
    base, d, v = env.base_type, env.data, env.aggregateversion
    fx = Effects(state_key=state_key(env))
    st = dict(state or {})
    if state is not None and v <= state.get("v", 0):
        return Effects()  # already reflected (redelivery of an event whose state was saved)

    if base == "membership.unit.created":
        fx.hierarchy = HierarchyChange(d["unit_id"], d.get("parent_id"), d["ancestors"], {
            "name": d["name"], "code": d.get("code"), "kind": d["kind"], "level": d.get("level"),
            "sector": d.get("sector"), "status": "active"})
        return fx
    if base == "membership.unit.renamed":
        fx.hierarchy = HierarchyChange(d["unit_id"], None, d["ancestors"], {"name": d["name"]})
        return fx
    if base == "membership.unit.moved":
        fx.hierarchy = HierarchyChange(d["unit_id"], d["parent_id"], d["ancestors"], {})
        return fx
    if base in ("membership.unit.merged", "membership.unit.dissolved"):
        status = "merged" if base.endswith("merged") else "dissolved"
        fx.hierarchy = HierarchyChange(d["unit_id"], None, d["ancestors"], {"status": status})
        if st.get("founded") and st.get("status") == "active":
            fx.deltas.append(Delta(d["unit_id"], "cdcs.active", month_of(d["effective_date"]), -1))
            fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        fx.new_state = {**st, "status": status, "v": v}
        return fx
    if base == "membership.cdcs.founded":
        month = month_of(d["effective_date"])
        fx.deltas += [Delta(d["unit_id"], "cdcs.founded", month, 1), Delta(d["unit_id"], "cdcs.active", month, 1)]
        if d.get("method") == "new_method":
            fx.deltas.append(Delta(d["unit_id"], "cdcs.founded_new_method", month, 1))
        fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        fx.new_state = {"founded": True, "status": "active", "v": v}
        return fx
    if base == "membership.committee.consolidated":
        fx.deltas.append(Delta(d["unit_id"], "committees.consolidated", month_of(d["date"]), 1))
        fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        fx.state_key = None
        return fx
    if base == "membership.cdcs.rated":
        if d["status"] != "confirmed":
            return Effects()  # figures count upward only once the level above confirmed them
        month = f"{d['year']}-11"  # the statistics year's 30 November cut-off
        unit, sector, rating = d["unit_id"], d.get("sector"), d["rating"]
        old = st.get("rating")
        if old == rating:
            fx.new_state = {**st, "v": v}
            return fx
        if old:
            fx.deltas += [Delta(unit, f"cdcs.rated.{old}", month, -1)]
            if sector:
                fx.deltas.append(Delta(unit, f"cdcs.rated.{old}.{sector}", month, -1))
        else:
            fx.deltas.append(Delta(unit, "cdcs.rated", month, 1))
            if sector:
                fx.deltas.append(Delta(unit, f"cdcs.rated.{sector}", month, 1))
        fx.deltas.append(Delta(unit, f"cdcs.rated.{rating}", month, 1))
        if sector:
            fx.deltas.append(Delta(unit, f"cdcs.rated.{rating}.{sector}", month, 1))
        fx.unit_hints.append((unit, d["ancestors"]))
        fx.new_state = {"rating": rating, "v": v}
        return fx
    if base == "membership.dues.recorded":
        month, unit = d["month"], d["unit_id"]
        paid = d["paid"] - st.get("paid", 0)
        due = d["due"] - st.get("due", 0)
        if paid:
            fx.deltas.append(Delta(unit, "dues.collected", month, paid))
        if due:
            fx.deltas.append(Delta(unit, "dues.due", month, due))
        fx.unit_hints.append((unit, d["ancestors"]))
        fx.new_state = {"paid": d["paid"], "due": d["due"], "v": v}
        return fx
    if base.startswith("membership.member."):
        return _project_member(env, st, fx)
    return Effects()


def _project_member(env: Envelope, st: dict, fx: Effects) -> Effects:
    base, d, v = env.base_type, env.data, env.aggregateversion
    unit = d["unit_id"]
    fx.unit_hints.append((unit, d["ancestors"]))
    active = st.get("status") == "active"
    new = {**st, "unit_id": unit, "gender": d.get("gender"), "is_official": bool(d.get("is_official")), "v": v}
    if base == "membership.member.admitted":
        fx.deltas.append(Delta(unit, "members.admitted", month_of(d["admitted_on"]), 1))
        new["status"] = "admitted"
    elif base == "membership.member.approved":
        if not active:
            fx.deltas += _member_stock(unit, new, month_of(d["approved_on"]), +1)
        new["status"] = "active"
    elif base == "membership.member.transferred":
        month = month_of(d["transferred_on"])
        src = d["from_unit_id"]
        fx.unit_hints.append((src, d["from_ancestors"]))
        fx.deltas += [Delta(src, "members.transferred_out", month, 1), Delta(unit, "members.transferred_in", month, 1)]
        if active:
            fx.deltas += _member_stock(src, st, month, -1) + _member_stock(unit, new, month, +1)
    elif base == "membership.member.left":
        month = month_of(d["left_on"])
        fx.deltas.append(Delta(unit, "members.left", month, 1))
        if active:
            fx.deltas += _member_stock(unit, st, month, -1)
        new["status"] = "left"
    elif base == "membership.member.reinstated":
        if not active:
            fx.deltas += _member_stock(unit, new, month_of(d["reinstated_on"]), +1)
        new["status"] = "active"
    elif base == "membership.member.profile_updated":
        if active:
            month = month_of(env.time)
            fx.deltas += _member_stock(unit, st, month, -1) + _member_stock(unit, new, month, +1)
            fx.deltas = _net(fx.deltas)
    fx.new_state = new
    return fx


def _net(deltas: list[Delta]) -> list[Delta]:
    totals: dict[tuple, int] = {}
    for dl in deltas:
        key = (dl.unit_id, dl.indicator, dl.month)
        totals[key] = totals.get(key, 0) + dl.amount
    return [Delta(u, i, m, a) for (u, i, m), a in totals.items() if a]


def project(env: Envelope, state: dict | None) -> Effects:
    if env.source == "membership":
        return project_membership(env, state)
    if env.source == "training":
        from .projection_training import project_training
        return project_training(env, state)
    if env.source == "welfare":
        from .projection_welfare import project_welfare
        return project_welfare(env, state)
    return Effects()

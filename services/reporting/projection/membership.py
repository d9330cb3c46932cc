"""What membership events mean for the attainment views: pure functions, no I/O.

`MembershipProjector.project(event, state)` returns the fact deltas (unit, indicator, month,
amount) the event adds, the new per-aggregate state the projector must remember (when a later
event's meaning depends on history: a member's status, a month's dues already counted, a CĐCS's
confirmed rating), and any hierarchy change (a unit created, moved, merged, dissolved).

Deltas name the LEAF unit only; the store adds them to every ancestor by the current hierarchy.
"""
from __future__ import annotations

from platformkit.envelope import Envelope

from ..indicators import GOOD_OR_BETTER
from ..periods import add_months, month_of
from .effects import Delta, Effects, HierarchyChange, net


class MembershipProjector:
    source = "membership"
    # the event types (without version) that change the views
    counts = frozenset({
        "membership.unit.created", "membership.unit.renamed", "membership.unit.moved", "membership.unit.merged",
        "membership.unit.dissolved", "membership.cdcs.founded", "membership.cdcs.rated",
        "membership.committee.consolidated", "membership.dues.recorded", "membership.member.admitted",
        "membership.member.refused", "membership.member.approved", "membership.member.transferred",
        "membership.member.left", "membership.member.reinstated", "membership.member.profile_updated"})
    # ... and those that mean nothing for them, with why
    ignores = {"membership.member.card_issued": "a card is no indicator (the member's remembered facts are refreshed, nothing counts)",
               "membership.member.transfer_requested": "a request moves nobody: both sides' figures change only "
                                                       "when it is accepted (`member.transferred`)",
               "membership.member.transfer_refused": "a refused request moved nobody",
               "membership.member.transfer_cancelled": "a withdrawn request moved nobody",
               "membership.unit.change_scheduled": "a change dated in the future changes nothing until its day "
                                                   "(then its own moved / merged / dissolved events count)",
               "membership.unit.change_cancelled": "a cancelled scheduled change never happened"}

    @staticmethod
    def state_key(env: Envelope) -> str | None:
        return state_key(env)

    @staticmethod
    def project(env: Envelope, state: dict | None) -> Effects:
        return project_membership(env, state)


def state_key(env: Envelope) -> str | None:
    base, d = env.base_type, env.data
    if base.startswith("membership.member."):
        return f"member:{d['member_id']}"
    if base == "membership.dues.recorded":
        return f"dues:{env.subject}"
    if base in ("membership.unit.merged", "membership.unit.dissolved", "membership.cdcs.founded",
                "membership.cdcs.rated"):
        return f"cdcs:{d['unit_id']}"  # founding, closing and ratings: one memory per CĐCS
    return None


def eligible_from(effective_date: str) -> str:
    """The first month at whose end a CĐCS founded on `effective_date` has operated 12 months. It
    is eligible for the rating of year Y when that month is not after Y-11: the same rule as
    `rating_eligible` in services/membership/domain.py (12 months by 30 November, the last day of
    November)."""
    return add_months(month_of(effective_date), 12)


def _with_sector(unit: str, codes: list[str], sector: str | None, month: str, sign: int) -> list[Delta]:
    out = [Delta(unit, code, month, sign) for code in codes]
    if sector:
        out += [Delta(unit, f"{code}.{sector}", month, sign) for code in codes]
    return out


def _rating_deltas(unit: str, sector: str | None, rating: str, year: str, sign: int) -> list[Delta]:
    """A confirmed rating of an eligible CĐCS, counted in the rating month (the year's November)."""
    codes = ["cdcs.rated", f"cdcs.rated.{rating}"] + (["cdcs.rated.good_or_better"] if rating in GOOD_OR_BETTER else [])
    return _with_sector(unit, codes, sector, f"{year}-11", sign)


def _counts_for(st: dict, year: str) -> bool:
    """Whether the CĐCS is eligible for the rating of `year`: founded 12 months before the year's
    30 November and not dissolved or merged by then (closed in that November or earlier)."""
    cutoff = f"{year}-11"
    closed = st.get("closed")
    return bool(st.get("founded") and st.get("eligible_from") and st["eligible_from"] <= cutoff
                and not (closed and closed <= cutoff))


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
            "sector": d.get("sector"), "status": "active"},
            {"created_on": d.get("effective_date") or env.time[:10]})  # where its parent history starts
        return fx
    if base == "membership.unit.renamed":
        fx.hierarchy = HierarchyChange(d["unit_id"], None, d["ancestors"], {"name": d["name"]})
        return fx
    if base == "membership.unit.moved":
        # the date tells the old parent's successors if it is dissolved later (generations/base.py)
        fx.hierarchy = HierarchyChange(d["unit_id"], d["parent_id"], d["ancestors"], {},
                                       {"moved_on": d["effective_date"]})
        return fx
    if base in ("membership.unit.merged", "membership.unit.dissolved"):
        status = "merged" if base.endswith("merged") else "dissolved"
        closing = {"status": status, "closed_on": d["effective_date"]}
        if status == "merged":
            closing["merged_into"] = d.get("into_unit_id")
        fx.hierarchy = HierarchyChange(d["unit_id"], None, d["ancestors"], closing,
                                       {"into_ancestors": d["into_ancestors"]} if status == "merged" else {})
        fx.new_state = {**st, "status": status, "v": v}
        if st.get("founded") and st.get("status") == "active":
            unit, month, sector = d["unit_id"], month_of(d["effective_date"]), st.get("sector")
            fx.deltas.append(Delta(unit, "cdcs.active", month, -1))
            fx.unit_hints.append((unit, d["ancestors"]))
            fx.new_state["closed"] = month
            if st.get("eligible_from"):
                # leaves the eligible stock when it closes; closed before it became eligible: the
                # +1 of that month is cancelled there, so the stock never dips below its true level
                fx.deltas += _with_sector(unit, ["cdcs.rating_eligible"], sector, max(month, st["eligible_from"]), -1)
                # ratings of a year whose 30 November it did not reach as an active CĐCS no longer count
                ratings = dict(st.get("ratings") or {})
                for year in sorted(ratings):
                    if month <= f"{year}-11":
                        fx.deltas += _rating_deltas(unit, sector, ratings.pop(year), year, -1)
                if "ratings" in st:
                    fx.new_state["ratings"] = ratings
        return fx
    if base == "membership.cdcs.founded":
        month, unit, sector = month_of(d["effective_date"]), d["unit_id"], d.get("sector")
        fx.deltas += [Delta(unit, "cdcs.founded", month, 1), Delta(unit, "cdcs.active", month, 1)]
        if d.get("method") == "new_method":
            fx.deltas.append(Delta(unit, "cdcs.founded_new_method", month, 1))
        eligible = eligible_from(d["effective_date"])
        fx.deltas += _with_sector(unit, ["cdcs.rating_eligible"], sector, eligible, 1)
        fx.unit_hints.append((unit, d["ancestors"]))
        fx.new_state = {"founded": True, "status": "active", "sector": sector, "eligible_from": eligible, "v": v}
        return fx
    if base == "membership.committee.consolidated":
        fx.deltas.append(Delta(d["unit_id"], "committees.consolidated", month_of(d["date"]), 1))
        fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        fx.state_key = None
        return fx
    if base == "membership.cdcs.rated":
        if d["status"] != "confirmed":
            return Effects()  # figures count upward only once the level above confirmed them
        # Counted in the statistics year's November (30 November cut-off), and only for a CĐCS
        # eligible that year: the shares divide by the eligible CĐCS (cdcs.rating_eligible).
        unit, year, sector = d["unit_id"], str(d["year"]), st.get("sector") or d.get("sector")
        ratings = dict(st.get("ratings") or {})
        old, new = ratings.get(year), (d["rating"] if _counts_for(st, year) else None)
        if old != new:
            if old:
                fx.deltas += _rating_deltas(unit, sector, old, year, -1)
            if new:
                fx.deltas += _rating_deltas(unit, sector, new, year, +1)
                ratings[year] = new
            else:
                ratings.pop(year, None)
            fx.deltas = net(fx.deltas)  # a changed grade: `cdcs.rated` itself stays
            fx.unit_hints.append((unit, d["ancestors"]))
        fx.new_state = {**st, "ratings": ratings, "v": v}
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
        month = month_of(d["admitted_on"])
        fx.deltas.append(Delta(unit, "members.admitted", month, 1))
        new["status"] = "admitted"
        new["admission"] = [unit, month]  # where and when it was counted, for a refusal to reverse
    elif base == "membership.member.refused":
        # The CĐCS decided the admission (counted above in its month); the level above refused it.
        # Reversed in the admission's own unit and month, so that `members.admitted` counts only
        # admissions that stand: a refusal is the same admission decided otherwise, not a
        # departure (it is not `members.left`), and the person never counted as active. A month
        # already reported may change by it; that is the figure's meaning (admissions not refused),
        # as for any late fact. Never active, so no stock to take back.
        if st.get("status") == "admitted":
            admitted_unit, admitted_month = st.get("admission") or [unit, month_of(d["admitted_on"])]
            fx.deltas.append(Delta(admitted_unit, "members.admitted", admitted_month, -1))
        new["status"] = "refused"
    elif base == "membership.member.approved":
        if not active:
            fx.deltas += _member_stock(unit, new, month_of(d["approved_on"]), +1)
            new["since"] = month_of(d["approved_on"])
        new["status"] = "active"
    elif base == "membership.member.transferred":
        month = month_of(d["transferred_on"])
        src = d["from_unit_id"]
        fx.unit_hints.append((src, d["from_ancestors"]))
        fx.deltas += [Delta(src, "members.transferred_out", month, 1), Delta(unit, "members.transferred_in", month, 1)]
        if active:
            fx.deltas += _member_stock(src, st, month, -1) + _member_stock(unit, new, month, +1)
            new["since"] = month
    elif base == "membership.member.left":
        month = month_of(d["left_on"])
        fx.deltas.append(Delta(unit, "members.left", month, 1))
        if active:
            fx.deltas += _member_stock(unit, st, month, -1)
        new["status"] = "left"
    elif base == "membership.member.reinstated":
        if not active:
            fx.deltas += _member_stock(unit, new, month_of(d["reinstated_on"]), +1)
            new["since"] = month_of(d["reinstated_on"])
        new["status"] = "active"
    elif base == "membership.member.profile_updated":
        if active:
            # Counted in the month the change took effect (`effective_date`; events written before
            # it existed: the month they were written). Not before the month the member began to
            # count in its current unit (`since`): until then it counted with the flags it had then
            # (a change back-dated across an approval or a transfer counts from that month on).
            month = month_of(d.get("effective_date") or env.time)
            month = max(month, st.get("since") or month)
            fx.deltas += _member_stock(unit, st, month, -1) + _member_stock(unit, new, month, +1)
            fx.deltas = net(fx.deltas)
    fx.new_state = new
    return fx

"""What training events mean for the views (pure). See membership.py.

Distinct counts within a year ("% of officials trained", members and CĐCS reached by
dissemination) are sums of +1s: a member (or CĐCS) counts +1 in the month of its FIRST event of the
calendar year, and the projector's memory under `<kind>:<id>:<year>` keeps which event that is:
`at` (the date), `s` (a tie-breaker: the class or session id) and `u` (the unit the +1 went to).
An event that comes earlier in (date, tie-breaker) order than the one remembered moves the +1
(-1 where it was, +1 at its own unit and month), a later or the same one changes nothing. So the
result does not depend on the order in which events from different partitions are consumed: live
and a rebuild end with the +1 in the same place, and a redelivered event counts nothing.
"""
from __future__ import annotations

from platformkit.envelope import Envelope

from ..periods import month_of
from .effects import Delta, Effects


class TrainingProjector:
    source = "training"
    counts = frozenset({"training.enrolment.completed", "training.certificate.issued", "training.class.closed",
                        "training.dissemination.recorded", "training.dissemination.member_reached",
                        "training.dissemination.cdcs_reached"})
    ignores = {
        "training.course.registered": "the catalogue of courses is no indicator",
        "training.course.retired": "the catalogue of courses is no indicator",
        "training.class.planned": "a class counts when it is held (closed)",
        "training.class.opened": "a class counts when it is held (closed)",
        "training.class.started": "a class counts when it is held (closed)",
        "training.class.cancelled": "a cancelled class was never held",
        "training.enrolment.created": "an official counts as trained when an enrolment is completed",
        "training.enrolment.withdrawn": "not trained",
        "training.enrolment.not_completed": "not trained",
        "training.attendance.recorded": "attendance is the class's own record; completion counts",
    }

    @staticmethod
    def state_key(env: Envelope) -> str | None:
        return training_state_key(env)

    @staticmethod
    def project(env: Envelope, state: dict | None) -> Effects:
        return project_training(env, state)


def trained_key(member_id: str, year: str) -> str:
    return f"trained:{member_id}:{year}"


def reached_key(member_id: str, year: str) -> str:
    return f"reached:{member_id}:{year}"


def cdcs_reached_key(unit_id: str, year: str) -> str:
    return f"reached-cdcs:{unit_id}:{year}"


def _first_in_year(fx: Effects, key: str, state: dict | None, indicator: str, unit: str, on: str,
                   tie: str) -> None:
    """+1 for `unit` in the month of `on` if this is the earliest (on, tie) event of the year seen
    for the key, moving the +1 of a later event counted before."""
    if state:
        if "at" not in state:
            return  # counted by an older projector that kept no date: leave it where it is
        if (on, tie) >= (state["at"], state["s"]):
            return
        fx.deltas.append(Delta(state["u"], indicator, month_of(state["at"]), -1))
    fx.deltas.append(Delta(unit, indicator, month_of(on), 1))
    fx.state_key = key
    fx.new_state = {**(state or {}), "at": on, "s": tie, "u": unit}


def project_training(env: Envelope, state: dict | None) -> Effects:
    base, d = env.base_type, env.data
    fx = Effects()
    if base == "training.enrolment.completed":
        unit, on = d["unit_id"], d["completed_on"]
        fx.unit_hints.append((unit, d["ancestors"]))
        # "% of officials trained": an official counts once per calendar year, however many
        # courses they complete.
        if d.get("is_official"):
            _first_in_year(fx, trained_key(d["member_id"], month_of(on)[:4]), state, "officials.trained", unit,
                           on, d["class_id"])
            if fx.new_state is not None:
                fx.new_state = {"counted": True, "v": 1, **fx.new_state}
    elif base == "training.certificate.issued":
        fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        fx.deltas.append(Delta(d["unit_id"], "training.certificates", month_of(d["issued_on"]), 1))
    elif base == "training.class.closed":
        unit = d["organising_unit_id"]
        fx.unit_hints.append((unit, d["organising_ancestors"]))
        fx.deltas.append(Delta(unit, "training.classes_held", month_of(d["closed_on"]), 1))
    elif base == "training.dissemination.recorded":
        # lượt (person-times): members identified and attendees not identified, per unit
        month = month_of(d["held_on"])
        for reached in d.get("reached", []):
            fx.unit_hints.append((reached["unit_id"], reached["ancestors"]))
            if reached["members_reached"]:
                fx.deltas.append(Delta(reached["unit_id"], "training.members_reached", month,
                                       int(reached["members_reached"])))
    elif base == "training.dissemination.member_reached":
        fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        _first_in_year(fx, reached_key(d["member_id"], month_of(d["held_on"])[:4]), state,
                       "training.members_reached_distinct", d["unit_id"], d["held_on"], d["session_id"])
    elif base == "training.dissemination.cdcs_reached":
        fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        _first_in_year(fx, cdcs_reached_key(d["unit_id"], month_of(d["held_on"])[:4]), state,
                       "training.cdcs_reached", d["unit_id"], d["held_on"], d["session_id"])
    return fx


def training_state_key(env: Envelope) -> str | None:
    """The memory an event's meaning depends on. Called before `project`, outside its error
    handling: a malformed event gets no key here and fails in `project` (dead-lettered)."""
    try:
        return _state_key(env)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _state_key(env: Envelope) -> str | None:
    base, d = env.base_type, env.data
    if base == "training.enrolment.completed" and d.get("is_official"):
        return trained_key(d["member_id"], month_of(d["completed_on"])[:4])
    if base == "training.dissemination.member_reached":
        return reached_key(d["member_id"], month_of(d["held_on"])[:4])
    if base == "training.dissemination.cdcs_reached":
        return cdcs_reached_key(d["unit_id"], month_of(d["held_on"])[:4])
    return None

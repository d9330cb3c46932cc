"""What training events mean for the views (pure). See projection.py."""
from __future__ import annotations

from platformkit.envelope import Envelope

from .periods import month_of
from .projection import Delta, Effects


def trained_key(member_id: str, year: str) -> str:
    return f"trained:{member_id}:{year}"


def project_training(env: Envelope, state: dict | None) -> Effects:
    base, d = env.base_type, env.data
    fx = Effects()
    if base == "training.enrolment.completed":
        unit, month = d["unit_id"], month_of(d["completed_on"])
        fx.unit_hints.append((unit, d["ancestors"]))
        # "% of officials trained": an official counts once per calendar year, however many
        # courses they complete.
        if d.get("is_official") and not state:
            fx.deltas.append(Delta(unit, "officials.trained", month, 1))
            fx.state_key = trained_key(d["member_id"], month[:4])
            fx.new_state = {"counted": True, "v": 1}
    elif base == "training.certificate.issued":
        fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        fx.deltas.append(Delta(d["unit_id"], "training.certificates", month_of(d["issued_on"]), 1))
    elif base == "training.class.closed":
        unit = d["organising_unit_id"]
        fx.unit_hints.append((unit, d["organising_ancestors"]))
        fx.deltas.append(Delta(unit, "training.classes_held", month_of(d["closed_on"]), 1))
    elif base == "training.dissemination.recorded":
        month = month_of(d["held_on"])
        for reached in d.get("reached", []):
            fx.unit_hints.append((reached["unit_id"], reached["ancestors"]))
            if reached["members_reached"]:
                fx.deltas.append(Delta(reached["unit_id"], "training.members_reached", month,
                                       int(reached["members_reached"])))
    return fx


def training_state_key(env: Envelope) -> str | None:
    if env.base_type == "training.enrolment.completed" and env.data.get("is_official"):
        return trained_key(env.data["member_id"], month_of(env.data["completed_on"])[:4])
    return None

"""What welfare events mean for the views (pure). See membership.py. Only disbursed money
counts: requested and approved cases are not yet care delivered."""
from __future__ import annotations

from platformkit.envelope import Envelope

from ..periods import month_of
from .effects import Delta, Effects


class WelfareProjector:
    source = "welfare"
    counts = frozenset({"welfare.case.disbursed", "welfare.loan.repaid"})
    ignores = {
        "welfare.programme.created": "a programme is no indicator",
        "welfare.case.requested": "only disbursed money is care delivered",
        "welfare.case.approved": "only disbursed money is care delivered",
        "welfare.case.rejected": "never disbursed",
    }

    @staticmethod
    def state_key(env: Envelope) -> str | None:
        return None  # a case's disbursement and a repayment mean the same whatever came before

    @staticmethod
    def project(env: Envelope, state: dict | None) -> Effects:
        return project_welfare(env, state)


def project_welfare(env: Envelope, state: dict | None) -> Effects:
    base, d = env.base_type, env.data
    fx = Effects()
    if base == "welfare.case.disbursed":
        unit, month, kind, amount = d["unit_id"], month_of(d["disbursed_on"]), d["programme_kind"], int(d["amount"])
        fx.unit_hints.append((unit, d["ancestors"]))
        fx.deltas += [Delta(unit, "welfare.cases", month, 1), Delta(unit, f"welfare.cases.{kind}", month, 1),
                      Delta(unit, "welfare.amount", month, amount), Delta(unit, f"welfare.amount.{kind}", month, amount)]
        if kind == "micro_loan":
            fx.deltas.append(Delta(unit, "loans.outstanding", month, int(d.get("outstanding", amount))))
    elif base == "welfare.loan.repaid":
        fx.unit_hints.append((d["unit_id"], d["ancestors"]))
        fx.deltas.append(Delta(d["unit_id"], "loans.outstanding", month_of(d["paid_on"]), -int(d["amount"])))
    return fx

"""The workflow of a periodic report, pure.

    draft --submit--> submitted --approve--> approved --reopen (level above, reason)--> returned
      ^ save            |  return (level above, reason)                                   |
      |                 v                                                                  |
      +----------- returned <--------------------------------------------------------------+
                        --save / submit-->

A unit saves and submits only its OWN report; the level above (any unit above it, or the platform
operator) approves, returns and reopens it; nobody approves their own report. A unit submits only
once every child report expected from it is approved (service.py checks that, it needs the
hierarchy).
"""
from __future__ import annotations

from dataclasses import dataclass

# the scope of a platform-wide token (platformkit.auth.PLATFORM_SCOPE; not imported: rules stay free of the
# web layer, and tests/unit/test_periodic_rules.py checks the two agree)
PLATFORM_SCOPE = "*"

STATUSES = ("draft", "submitted", "approved", "returned")
STEPS = {
    # step: (statuses it starts from, status it leads to, who: own | above, reason required)
    "save": (("draft", "returned"), None, "own", False),
    "submit": (("draft", "returned"), "submitted", "own", False),
    "approve": (("submitted",), "approved", "above", False),
    "return": (("submitted",), "returned", "above", True),
    "reopen": (("approved",), "returned", "above", True),
}
EVENT_TYPES = {"save": "reporting.report.saved.v1", "submit": "reporting.report.submitted.v1",
               "approve": "reporting.report.approved.v1", "return": "reporting.report.returned.v1",
               "reopen": "reporting.report.reopened.v1"}


class StepRefused(Exception):
    """`status`: 403 (not this caller's to take) or 422 (not from this status); `field` named."""

    def __init__(self, message: str, status: int, field: str):
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class Actor:
    unit_id: str


def check_step(step: str, status: str, report_unit: str, report_ancestors: list[str], actor: Actor,
               reason: str | None = None) -> str:
    """The status after `step`, or StepRefused. `status` is the report's current one ("draft" for a
    report never saved)."""
    if step not in STEPS:
        raise StepRefused(f"unknown step {step}", 422, "step")
    starts, leads_to, who, needs_reason = STEPS[step]
    if who == "own" and actor.unit_id != report_unit:
        raise StepRefused("a unit saves and submits only its own report", 403, "unit_id")
    if who == "above":
        if actor.unit_id == report_unit:
            raise StepRefused("nobody approves, returns or reopens their own report", 403, "unit_id")
        if actor.unit_id != PLATFORM_SCOPE and actor.unit_id not in report_ancestors:
            raise StepRefused("only a unit above the reporting unit approves, returns or reopens its report", 403,
                              "unit_id")
    if status not in starts:
        raise StepRefused(f"the report is {status}; it cannot be {PAST[step]}", 422, "status")
    if needs_reason and not (reason or "").strip():
        raise StepRefused(f"a report is {PAST[step]} with a reason", 400, "reason")
    return leads_to or status


PAST = {"save": "saved", "submit": "submitted", "approve": "approved", "return": "returned", "reopen": "reopened"}

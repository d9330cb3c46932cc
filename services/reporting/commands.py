"""What a caller asks reporting to change: targets and the periodic report workflow, one frozen
dataclass per verb, built by api.py / periodic/api.py from a validated body and handed to a handler
with the caller and the stores. Pure data: no driver, no web layer. (The views, the projector and
the rebuild take no commands: they read, or fold events.)"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class SetTarget:
    """Assign (or change) a unit's target for a year and an indicator."""
    unit_id: str
    indicator: str
    year: int
    value: float


@dataclass(frozen=True)
class SaveReport:
    """Save the unit's own entered figures of a report period (a draft or a returned report).
    `entered` None keeps what the report holds; `step_no` is the step the caller read."""
    unit_id: str
    period: str
    entered: Mapping[str, int] | None = None
    step_no: int | None = None


@dataclass(frozen=True)
class SubmitReport:
    """Save and submit: the computed figures are frozen with it."""
    unit_id: str
    period: str
    entered: Mapping[str, int] | None = None
    step_no: int | None = None


@dataclass(frozen=True)
class ApproveReport:
    unit_id: str
    period: str
    reason: str | None = None


@dataclass(frozen=True)
class ReturnReport:
    unit_id: str
    period: str
    reason: str | None = None  # required by the workflow (400 naming `reason` without one)


@dataclass(frozen=True)
class ReopenReport:
    unit_id: str
    period: str
    reason: str | None = None  # required by the workflow


@dataclass(frozen=True)
class SetDeadlines:
    """A unit's (a province's) deadlines per report kind and level."""
    unit_id: str
    due_days: Mapping[str, Any]


DECISIONS = {ApproveReport: "approve", ReturnReport: "return", ReopenReport: "reopen"}

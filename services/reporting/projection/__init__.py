"""What each domain event means for the attainment views: pure functions, no I/O.

One projector per source (membership.py, training.py, welfare.py), each with
`state_key(event)` (the memory the event's meaning depends on, loaded before `project`) and
`project(event, state) -> Effects` (effects.py: fact deltas on leaf units, the new memory, a
hierarchy change), and the event types it `counts` or `ignores` (each type of docs/events.md is
in one of them; tests/reporting/test_projection.py checks it). PROJECTORS is the one table the
projector dispatches on, once per envelope (`projector_for`).
"""
from __future__ import annotations

from platformkit.envelope import Envelope

from .effects import Delta, Effects, HierarchyChange, net
from .membership import MembershipProjector, eligible_from, project_membership
from .training import TrainingProjector, project_training
from .welfare import WelfareProjector, project_welfare


class _Nothing:
    """Events of a source the views do not read."""
    source = None
    counts = frozenset()
    ignores: dict[str, str] = {}

    @staticmethod
    def state_key(env: Envelope) -> str | None:
        return None

    @staticmethod
    def project(env: Envelope, state: dict | None) -> Effects:
        return Effects()


NOTHING = _Nothing()
PROJECTORS = {p.source: p for p in (MembershipProjector(), TrainingProjector(), WelfareProjector())}


def projector_for(env: Envelope):
    return PROJECTORS.get(env.source, NOTHING)


def state_key(env: Envelope) -> str | None:
    return projector_for(env).state_key(env)


def project(env: Envelope, state: dict | None) -> Effects:
    return projector_for(env).project(env, state)


__all__ = ["Delta", "Effects", "HierarchyChange", "PROJECTORS", "eligible_from", "net", "project",
           "project_membership", "project_training", "project_welfare", "projector_for", "state_key"]

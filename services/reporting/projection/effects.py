"""What a projector returns for one event (pure data, shared by every source's projector)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    # what the store needs to know about the change but does not keep on the unit (a move's date,
    # the ancestors of the unit a merge joined)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class Effects:
    deltas: list[Delta] = field(default_factory=list)
    state_key: str | None = None
    new_state: dict[str, Any] | None = None
    hierarchy: HierarchyChange | None = None
    # a unit the deltas name that the store may not know yet: (unit_id, ancestors at event time)
    unit_hints: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.deltas or self.new_state is not None or self.hierarchy is not None or self.unit_hints)


def net(deltas: list[Delta]) -> list[Delta]:
    """Deltas summed per (unit, indicator, month), zeros dropped."""
    totals: dict[tuple, int] = {}
    for dl in deltas:
        key = (dl.unit_id, dl.indicator, dl.month)
        totals[key] = totals.get(key, 0) + dl.amount
    return [Delta(u, i, m, a) for (u, i, m), a in totals.items() if a]

"""Courses and classes are saved through platformkit/repository.py (each change is a change
document inserted into `<collection>_events`, the aggregate document a materialised copy: see there
why). What training adds: its deciders return the whole new state and what they raised, and a
class's enrolments are a list whose entries are only appended or replaced in place
(`list_field`), so the change committed is their diff: `diff` writes it compactly (changed
top-level fields, and `<list>@` = the changed entries by position) and `to_ops` turns it into the
repository's operators."""
from __future__ import annotations

from typing import Any, Callable

from platformkit.envelope import Envelope
from platformkit.errors import NotFound as Missing
from platformkit.repository import (FIRST_ANSWER, NOT_STATE, STAMP_FIELDS, KeyTaken, Ops, Repository, apply_ops,
                                    op,
                                    change_id)

HIDDEN = {k: 0 for k in ("outbox", "outbox_pending", "rev", *STAMP_FIELDS)}
__all__ = ["AggregateStore", "FIRST_ANSWER", "HIDDEN", "KeyTaken", "NOT_STATE", "apply", "change_id", "diff",
           "to_ops"]
_MISSING = object()


def diff(old: dict, new: dict, list_field: str | None) -> dict[str, Any]:
    change = {k: v for k, v in new.items()
              if k not in NOT_STATE and k != list_field and old.get(k, _MISSING) != v}
    if list_field:
        before, after = old.get(list_field) or [], new.get(list_field) or []
        if len(after) < len(before):
            raise ValueError(f"{list_field}: entries may only be appended or replaced")
        changed = {str(i): e for i, e in enumerate(after) if i >= len(before) or before[i] != e}
        if changed:
            change[f"{list_field}@"] = changed
    return change


def to_ops(change: dict[str, Any], list_field: str | None) -> Ops:
    ops: Ops = [op("set", k, v) for k, v in change.items() if not k.endswith("@")]
    if list_field and f"{list_field}@" in change:
        ops.append(op("push_all", list_field, []))  # makes the list if it is missing
        ops.extend(op("set", f"{list_field}.{i}", e)
                   for i, e in sorted(change[f"{list_field}@"].items(), key=lambda kv: int(kv[0])))
    return ops


def apply(state: dict, change: dict, version: int, list_field: str | None) -> dict:
    return {**apply_ops(state, to_ops(change, list_field)), "version": version}


class AggregateStore(Repository):
    def __init__(self, db, collection: str, what: str, list_field: str | None = None):
        super().__init__(db, collection, what, list_field=list_field,
                         missing=lambda _id: Missing(f"{what} {_id} not found"))

    def _commit(self, aggregate_id: str, seq: int, ops: Ops | dict, *args: Any, **kwargs: Any) -> None:
        if isinstance(ops, dict):  # a change written by `diff`
            ops = to_ops(ops, self.list_field)
        super()._commit(aggregate_id, seq, ops, *args, **kwargs)

    def command(self, aggregate_id: str, check: Callable[[dict], Any],  # type: ignore[override]
                decide: Callable[[dict], tuple[dict, list]], events_for: Callable[[int, list], list[Envelope]],
                stamp: Callable[[dict], dict] | None = None) -> dict:
        def decide_ops(doc: dict):
            new, raised = decide(doc)
            return to_ops(diff(doc, new, self.list_field), self.list_field), events_for(doc["version"] + 1, raised)
        return Repository.command(self, aggregate_id, decide_ops, check=check, stamp=stamp)

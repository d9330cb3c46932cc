"""The hierarchy as it was on a date: pure functions, no I/O.

Every unit document keeps `parents`, its parent over time: [{"parent": id | None, "from": "YYYY-MM-DD"}]
sorted by `from` (a unit only known from other units' events gets `from` ""). Each entry holds from
its date until the next one. Closing a unit (merge, dissolution) adds no entry: a closed unit's own
figures stay where it was, as its parent's figures for earlier periods do (generations/base.py).

The figures of a unit's subtree as of a date are summed from the units' own figures. The stored
documents hold each unit's CURRENT subtree total, so a unit's own figures are its document minus
its current children's; over a set S of units those differences telescope (`signed_members`)."""
from __future__ import annotations

from collections import defaultdict


def record(history: list[dict] | None, parent: str | None, on: str) -> list[dict]:
    """`history` with `parent` from `on` on (idempotent; in date order whatever the order the
    events came in; an entry that repeats the parent before it is dropped)."""
    entries = [dict(e) for e in history or []]
    if any(e["from"] == on and e["parent"] == parent for e in entries):
        return _compact(entries)
    entries = [e for e in entries if e["from"] != on] + [{"parent": parent, "from": on}]
    return _compact(sorted(entries, key=lambda e: e["from"]))


def _compact(entries: list[dict]) -> list[dict]:
    out: list[dict] = []
    for e in entries:
        if out and out[-1]["parent"] == e["parent"]:
            continue
        out.append(e)
    return out


def parent_on(history: list[dict] | None, current_parent: str | None, day: str) -> str | None:
    """The unit's parent on `day`: the last entry from `day` or before; a unit that did not exist yet
    on `day` is placed where it first appeared (so that its later figures, if a period reaches past
    `day`, are still counted once, and every level's children add up to it). No history (projected
    before histories were kept): its current parent."""
    if not history:
        return current_parent
    chosen = history[0]["parent"]
    for e in history:
        if e["from"] <= day:
            chosen = e["parent"]
        else:
            break
    return chosen


def tree_on(units: list[dict], day: str) -> dict[str | None, list[str]]:
    """{parent: [children]} of these unit documents on `day`."""
    kids: dict[str | None, list[str]] = defaultdict(list)
    for u in units:
        kids[parent_on(u.get("parents"), u.get("parent_id"), day)].append(u["_id"])
    return kids


def subtree(kids: dict[str | None, list[str]], unit_id: str) -> set[str]:
    """The unit and every unit below it in `kids` (a cycle, which a bad history could make, ends)."""
    out, todo = set(), [unit_id]
    while todo:
        u = todo.pop()
        if u in out:
            continue
        out.add(u)
        todo.extend(kids.get(u, ()))
    return out


def signed_members(members: set[str], current_parent: dict[str, str | None]) -> dict[str, int]:
    """{unit: +1 | -1} whose stored documents, so signed and summed, give the own figures of
    `members` summed: own(X) = doc(X) - sum of doc(c) over X's current children c, hence doc(X)
    counts [X in members] - [X's current parent in members]."""
    out: dict[str, int] = {}
    for unit, parent in current_parent.items():
        w = (unit in members) - (parent in members if parent is not None else 0)
        if w:
            out[unit] = w
    for unit in members - current_parent.keys():
        out[unit] = 1
    return out

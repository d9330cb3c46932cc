"""What every generation of the views does, whatever holds its documents: the hierarchy's logic
(provisional units, moves carrying their subtree's totals, a closed unit's successors and a
successor's predecessors), leaf deltas turned into guarded increments of every unit on the path. Its siblings hold the documents: `MongoGeneration` (mongo.py, the live collections with a
journal) and `MemoryGeneration` (memory.py, dicts: the rebuild's fold and the unit tests' fake).

A subclass answers the primitives: `unit`, `descendants`, `agg_docs`, `applied_offsets`,
`run_journal`, `load_states`, `save_states`, `setup`, `replay_journals`, `forget_cache`,
`drop_memory`."""
from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass

from platformkit import contract, settings

from .. import hierarchy_history
from ..projection import Delta, HierarchyChange

TOPIC_KEYS = contract.SOURCE_KEYS
AGG_BUCKETS = settings.current().reporting_agg_buckets
STATE_BUCKETS = settings.current().reporting_state_buckets
CLOSED = ("merged", "dissolved")


def _a_year_before(day: str) -> str:
    """'2025-07-01' -> '2024-07-01' (the window in which a dissolved unit's children moving out
    make their new parents its successors); '' for no date."""
    return f"{int(day[:4]) - 1:04d}{day[4:]}" if day[:4].isdigit() else ""


def partition_key(topic: str, partition: int) -> str:
    """'t3f.membership.events', 2 -> 'm2' (a field name without dots, stable across prefixes)."""
    short = TOPIC_KEYS.get(contract.logical(topic))
    if short:
        return f"{short}{partition}"
    return "x" + "".join(ch for ch in topic if ch.isalnum())[-20:] + str(partition)


def bucket(key: str, n: int) -> str:
    return f"{zlib.crc32(key.encode('utf-8')) % n:02x}"


def agg_id(unit: str, month: str) -> str:
    return f"{unit}|{month}"


def field_of(indicator: str) -> str:
    """Indicator codes contain dots, which Mongo reads as paths: store them with ':'."""
    return indicator.replace(".", ":")


def indicator_of(field: str) -> str:
    return field.replace(":", ".")


@dataclass
class PlacedDelta:
    """A delta with where it came from (the guard) and every unit it counts for."""
    pkey: str
    offset: int
    delta: Delta


class BaseGeneration:
    def __init__(self, number: int):
        self.number = number
        # units known to this process: a cache of the collection (Mongo), the hierarchy itself (memory)
        self.known_units: dict[str, dict] = {}

    # ------------------------------------------------------------ primitives (the siblings)
    def unit(self, unit_id: str) -> dict | None:
        raise NotImplementedError

    def descendants(self, unit_id: str) -> list[dict]:
        """{_id, ancestors} of every unit below this one."""
        raise NotImplementedError

    def agg_docs(self, unit_ids: list[str], last_month: str | None = None) -> list[dict]:
        """Every monthly document {_id, unit, month, v} of these units (up to last_month)."""
        raise NotImplementedError

    def applied_offsets(self, docs: list[tuple[str, str]]) -> dict[str, dict]:
        """{doc_id: applied offsets} of those (doc_id, unit) documents that exist."""
        raise NotImplementedError

    def run_journal(self, ops: list[dict]) -> None:
        raise NotImplementedError

    def load_states(self, keys) -> dict[str, dict]:
        raise NotImplementedError

    def save_states(self, states: dict[str, dict]) -> None:
        raise NotImplementedError

    def setup(self) -> None:
        pass

    def replay_journals(self) -> int:
        return 0

    def forget_cache(self) -> None:
        pass

    def drop_memory(self) -> None:
        """Forget everything remembered of the store (a failed batch, partitions changing hands)."""
        self.forget_cache()

    # ------------------------------------------------------------ hierarchy
    def path_of(self, unit_id: str) -> list[str]:
        u = self.unit(unit_id)
        return (u["ancestors"] + [unit_id]) if u else [unit_id]

    def provisional_ops(self, unit_id: str, ancestors_hint: list[str]) -> list[dict]:
        """Register units only known from an event's ancestors (their own events may come later
        on another partition). The nearest known ancestor's CURRENT path is trusted over the
        hint, so a unit moved meanwhile places its newcomers right."""
        if self.unit(unit_id) is not None:
            return []
        chain = list(ancestors_hint) + [unit_id]
        ops: list[dict] = []
        known_upto = -1
        for i in range(len(chain) - 1, -1, -1):
            if self.unit(chain[i]) is not None:
                known_upto = i
                break
        base = self.path_of(chain[known_upto])[:-1] if known_upto >= 0 else []
        path = base + ([chain[known_upto]] if known_upto >= 0 else [])
        for uid in chain[known_upto + 1:]:
            parent = path[-1] if path else None
            doc = {"_id": uid, "parent_id": parent, "ancestors": list(path), "status": "active",
                   "is_root": parent is None, "provisional": True, "v": 0, "parents": [{"parent": parent, "from": ""}],
                   "parents_seen": [parent]}
            ops.append({"k": "unit", "id": uid, "set": doc})
            self.known_units[uid] = doc
            path = path + [uid]
        return ops

    # ------------------------------------------------------------ facts
    def fact_ops(self, placed: list[PlacedDelta]) -> list[dict]:
        """Turn leaf deltas into guarded increments of every unit on the path (one write per unit,
        month and source partition), dropping what a document already includes (its applied
        offset for that partition is not older)."""
        events: dict[tuple[str, str], list[tuple[int, str, int]]] = defaultdict(list)
        meta: dict[str, tuple[str, str]] = {}
        for pd in placed:
            d = pd.delta
            for unit in self.path_of(d.unit_id):
                doc_id = agg_id(unit, d.month)
                meta[doc_id] = (unit, d.month)
                events[(doc_id, pd.pkey)].append((pd.offset, d.indicator, d.amount))
        existing = self.applied_offsets([(doc_id, unit) for doc_id, (unit, _) in meta.items()])
        ops = []
        for (doc_id, pkey), evs in events.items():
            already = existing.get(doc_id, {}).get(pkey, -1)
            inc: dict[str, int] = defaultdict(int)
            top = -1
            for off, ind, amount in evs:
                if off > already:
                    inc[field_of(ind)] += amount
                    top = max(top, off)
            if top < 0:
                continue
            unit, month = meta[doc_id]
            ops.append({"k": "agg", "id": doc_id, "p": pkey, "off": top, "inc": dict(inc), "unit": unit,
                        "month": month, "new": doc_id not in existing})
        return ops

    # ------------------------------------------------------------ hierarchy changes
    def hierarchy_ops(self, change: HierarchyChange, pkey: str, offset: int, version: int) -> list[dict]:
        """Apply a unit event. When its place changes (created somewhere else than a fact
        suggested, moved, ...), its subtree totals leave the old ancestors and join the new ones.
        A unit that closes names its successors (the merge target, or the units its children
        moved to within the year before it was dissolved) and they name it as their predecessor:
        the views show its history and targets on them (views.py), its documents stay as they are
        (a parent's figures for earlier periods never change by a merge)."""
        ops: list[dict] = []
        current = self.unit(change.unit_id)
        if current is not None and current.get("v", 0) >= version:
            return []  # already applied (its units document was written last)
        if change.parent_id is not None:
            ops += self.provisional_ops(change.parent_id, change.ancestors_hint[:-1] if change.ancestors_hint
                                        and change.ancestors_hint[-1] == change.parent_id else change.ancestors_hint)
            new_ancestors = self.path_of(change.parent_id)
        elif current is not None:
            new_ancestors = current["ancestors"]
        else:
            ops += self.provisional_ops(change.unit_id, change.ancestors_hint)
            current = self.unit(change.unit_id)
            new_ancestors = current["ancestors"]
        old_ancestors = current["ancestors"] if current is not None else new_ancestors
        if current is not None and old_ancestors != new_ancestors:
            ops += self.move_totals(change.unit_id, old_ancestors, new_ancestors, pkey, offset)
            for desc in self.descendants(change.unit_id):
                tail = desc["ancestors"][desc["ancestors"].index(change.unit_id) + 1:]
                ops.append({"k": "unit", "id": desc["_id"],
                            "set": {"ancestors": new_ancestors + [change.unit_id] + tail}})
            if "moved_on" in change.context:
                ops += self._handed_over_ops(current.get("parent_id"), new_ancestors, change.context["moved_on"])
        fields = change.fields
        if fields.get("status") in CLOSED and current is not None:
            ops += self._succession_ops(change.unit_id, current, fields, change.context)
        doc = {**(current or {}), **fields, "_id": change.unit_id, "ancestors": new_ancestors,
               "parent_id": new_ancestors[-1] if new_ancestors else None, "v": version, "provisional": False,
               # the root is found by this equality (FerretDB pushes no `parent_id: null` down)
               "is_root": not new_ancestors}
        doc["parents"] = self._parents(current, doc["parent_id"], change.context)
        doc["parents_seen"] = self._parents_seen(current, doc["parent_id"])
        for o in ops:  # the successors this change already gave the unit
            if o["k"] == "unit" and o["id"] == change.unit_id and "successors" in o["set"]:
                doc["successors"] = o["set"]["successors"]
        ops.append({"k": "unit", "id": change.unit_id, "set": doc})
        self.forget_cache()
        return ops

    @staticmethod
    def _parents(current: dict | None, parent: str | None, context: dict) -> list[dict]:
        """The unit's parent over time (hierarchy_history.py), with this change: a creation's date
        replaces the undated place a provisional unit had; a move is recorded from its date."""
        history = list((current or {}).get("parents") or [])
        if "created_on" in context:
            return hierarchy_history.record([e for e in history if e["from"]], parent, context["created_on"])
        if "moved_on" in context:
            return hierarchy_history.record(history, parent, context["moved_on"])
        return history or hierarchy_history.record([], parent, "")

    @staticmethod
    def _parents_seen(current: dict | None, parent: str | None) -> list:
        """Every parent the unit ever had here, never shrinking (`parents` can lose one: a change
        dated like an earlier one replaces it). A target stores the unit's parent when it was set
        (reporting/service.py set_target): a unit that only ever had one parent has all its
        targets under that parent's `parent_id` (views.TargetBook reads them in one query)."""
        seen = list((current or {}).get("parents_seen") or [])
        if current is not None and not seen:  # a document projected before parents_seen was kept
            seen = [e["parent"] for e in current.get("parents") or []] + [current.get("parent_id")]
        return sorted(set(seen) | {parent}, key=lambda p: (p is not None, p or ""))

    def _handed_over_ops(self, old_parent: str | None, new_ancestors: list[str], on: str) -> list[dict]:
        """A child moved out of `old_parent` to the unit at the end of `new_ancestors`: remembered
        on the old parent (`handed_to`: {unit: the earliest such move}); when the old parent is
        dissolved, those it handed children to in its last year are its successors. Events of
        different units come in any order across partitions: a move processed after the
        dissolution links them then, so the links are the same whatever the order."""
        if not old_parent or not new_ancestors:
            return []
        parent = self.unit(old_parent)
        if parent is None:
            return []
        to = new_ancestors[-1]
        handed = dict(parent.get("handed_to") or {})
        handed[to] = min(handed.get(to) or on, on)
        parent["handed_to"] = handed  # this process's copy, until the journal wrote it
        ops = [{"k": "unit", "id": old_parent, "set": {"handed_to": handed}}]
        if parent.get("status") == "dissolved" and on >= _a_year_before(parent.get("closed_on") or ""):
            ops += self._link(old_parent, parent, [to], {})
        return ops

    def _succession_ops(self, unit_id: str, current: dict, fields: dict, context: dict) -> list[dict]:
        if fields["status"] == "merged":
            successors = [fields["merged_into"]] if fields.get("merged_into") else []
        else:
            since = _a_year_before(fields.get("closed_on") or "")
            successors = [u for u, on in (current.get("handed_to") or {}).items() if on >= since]
        return self._link(unit_id, current, successors, context)

    def _link(self, unit_id: str, closed: dict, successors: list[str], context: dict) -> list[dict]:
        """`closed` names `successors` (sorted, with those it named before), each names it."""
        ops: list[dict] = []
        for s in successors:
            if self.unit(s) is None:  # its own events may come later, on another partition
                ops += self.provisional_ops(s, list(context.get("into_ancestors") or closed["ancestors"]))
            heir = self.unit(s)
            preds = sorted(set(heir.get("predecessors") or []) | {unit_id})
            heir["predecessors"] = preds
            ops.append({"k": "unit", "id": s, "set": {"predecessors": preds}})
        named = sorted(set(closed.get("successors") or []) | set(successors))
        closed["successors"] = named
        ops.append({"k": "unit", "id": unit_id, "set": {"successors": named}})
        return ops

    def move_totals(self, unit_id: str, old: list[str], new: list[str], pkey: str, offset: int) -> list[dict]:
        """The unit's totals (every month) taken from the units of `old` that are not in `new` and
        added to those of `new` that are not in `old`."""
        leaving = [a for a in old if a not in new]
        joining = [a for a in new if a not in old]
        totals = self.agg_docs([unit_id])
        targets = [(a, -1) for a in leaving] + [(a, +1) for a in joining]
        existing = self.applied_offsets([(agg_id(a, t["month"]), a) for a, _ in targets for t in totals])
        ops: list[dict] = []
        for ancestor, sign in targets:
            for t in totals:
                inc = {f: sign * v for f, v in (t.get("v") or {}).items() if v}
                doc_id = agg_id(ancestor, t["month"])
                if not inc or existing.get(doc_id, {}).get(pkey, -1) >= offset:
                    continue
                ops.append({"k": "agg", "id": doc_id, "p": pkey, "off": offset, "inc": inc, "unit": ancestor,
                            "month": t["month"], "new": doc_id not in existing})
        return ops

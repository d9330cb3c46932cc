"""Saving an aggregate that several commands change concurrently, correctly on FerretDB too.

Why not `outbox.update_with_events` on the aggregate document: FerretDB 1.24 (SQLite backend,
the local default) executes an update as read-then-write WITHOUT isolation. Several concurrent
`find_one_and_update({"_id": x, "version": v}, ...)` all report success and all but one write are
silently lost (measured: 6 threads, 18 of 20 trials had 2-6 "winners"). The same happens between a
command and the relay's `$pull` on the same document: the relay can write back the document it
read before the command, erasing the command's state and events. A unique-key INSERT, on the other
hand, is atomic there (and on MongoDB).

So every change is committed by inserting ONE change document into `<aggregate>_events`:

    {_id: "<aggregate id>@<version>", aggregate_id, version, change, outbox: [...], outbox_pending}

with `outbox.insert_with_events`: the unique `_id` makes it the compare-and-set (two commands that
read version v both try to insert v+1; exactly one succeeds, the other reloads and decides again),
and it carries the events for the relay in the same single-document write. The relay only ever
writes these change documents, never the aggregate.

The aggregate document itself is a materialised copy: after its insert the winner writes the new
state. Anyone loading the aggregate first rolls it forward through change documents newer than its
version (`change` holds the changed top-level fields, and for the list field only the entries that
changed, by position: entries are only ever appended or replaced in place), so a command that
crashed after committing is completed by the next reader, and a stale or racing write of the copy
heals itself. Decisions are always taken on the state after the newest committed change.

Creation: the aggregate document is inserted at version 0 (unique indexes such as the class code
refuse duplicates here), then the change `@1` with the creation events commits it. A version-0
document without its `@1` change is treated as absent.

Idempotency-Key (platformkit/idempotency.py): a creation carries the caller's key in the version-0
document, a command (an enrolment, a completion) in its change document; both collections have a
sparse unique index on it, so the insert that creates is also the guard. A creation found by its key
at version 0 (the first request died between its two inserts, or is still between them) is finished
by whoever finds it: `finish_create` commits `@1`, and `create` takes an `@1` committed by someone
else as done (nobody but a retry with the same key knows the new id).
"""
from __future__ import annotations

import random
import time
from typing import Any, Callable

from pymongo.database import Database

from platformkit import idempotency
from platformkit.envelope import Envelope
from platformkit.outbox import OUTBOX, OUTBOX_INDEX, PENDING, AlreadyExists, StaleVersion, insert_with_events
from platformkit.errors import NotFound as Missing

FIRST_ANSWER = "first_answer"  # what a creation with an Idempotency-Key answered (replayed as is)
NOT_STATE = {"_id", "version", OUTBOX, PENDING, FIRST_ANSWER, *idempotency.FIELDS}
HIDDEN = {OUTBOX: 0, PENDING: 0, FIRST_ANSWER: 0, **idempotency.HIDDEN}
ATTEMPTS = 25


class KeyTaken(Exception):
    """A change with this Idempotency-Key was committed (by an earlier or a racing request)."""

    def __init__(self, first: dict):
        super().__init__(first["_id"])
        self.first = first


def change_id(aggregate_id: str, version: int) -> str:
    # zero-padded: the change documents of one aggregate sort by version
    return f"{aggregate_id}@{version:09d}"


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


_MISSING = object()


def apply(state: dict, change: dict, version: int, list_field: str | None) -> dict:
    new = {**state, **{k: v for k, v in change.items() if not k.endswith("@")}, "version": version}
    if list_field and f"{list_field}@" in change:
        items = list(state.get(list_field) or [])
        for index, entry in sorted(change[f"{list_field}@"].items(), key=lambda kv: int(kv[0])):
            i = int(index)
            if i == len(items):
                items.append(entry)
            else:
                items[i] = entry
        new[list_field] = items
    return new


class AggregateStore:
    def __init__(self, db: Database, collection: str, what: str, list_field: str | None = None):
        self.db = db
        self.coll = db[collection]
        self.changes = db[f"{collection}_events"]
        self.what = what
        self.list_field = list_field

    @staticmethod
    def indexes(collection: str) -> dict[str, list]:
        """Of the change documents (the aggregate's own collection declares its indexes, including
        `idempotency.index()` when it is created with a key)."""
        return {f"{collection}_events": [("aggregate_id", {"name": "aggregate"}), *OUTBOX_INDEX, idempotency.index()]}

    def created_with(self, key: str) -> dict | None:
        """The aggregate document (whole, at any version) a creation with this key inserted."""
        return self.coll.find_one({idempotency.KEY: key})

    def changed_with(self, key: str) -> dict | None:
        """The change document a command with this key committed."""
        return self.changes.find_one({idempotency.KEY: key})

    # ------------------------------------------------------------ reading

    def load(self, aggregate_id: str) -> dict:
        doc = self.coll.find_one({"_id": aggregate_id}, HIDDEN)
        if doc is None:
            raise Missing(f"{self.what} {aggregate_id} not found")
        doc = self._roll_forward(doc)
        if doc["version"] < 1:
            raise Missing(f"{self.what} {aggregate_id} not found")
        return doc

    def _roll_forward(self, doc: dict) -> dict:
        start = doc["version"]
        while True:
            nxt = self.changes.find_one({"_id": change_id(doc["_id"], doc["version"] + 1)},
                                        {"change": 1, "version": 1})
            if nxt is None:
                break
            doc = apply(doc, nxt["change"], nxt["version"], self.list_field)
        if doc["version"] != start:
            self._materialise(doc)
        return doc

    def _materialise(self, doc: dict) -> None:
        # Not a compare-and-set (FerretDB cannot do one): every writer of version v writes the same
        # content, and a copy left behind is rolled forward by the next load.
        self.coll.update_one({"_id": doc["_id"], "version": {"$lt": doc["version"]}},
                             {"$set": {k: v for k, v in doc.items() if k != "_id"}})

    # ------------------------------------------------------------ writing

    def _commit(self, aggregate_id: str, version: int, change: dict, events: list[Envelope],
                stamp: dict | None = None) -> None:
        insert_with_events(self.changes, {"_id": change_id(aggregate_id, version), "aggregate_id": aggregate_id,
                                          "version": version, "change": change, **(stamp or {})}, events)

    def create(self, state: dict, events_for: Callable[[int], list[Envelope]],
               stamp: dict | None = None) -> dict:
        """Insert a new aggregate; AlreadyExists when a unique index refuses it. `stamp`: fields
        kept in the aggregate document only (the Idempotency-Key, the first answer)."""
        insert_with_events(self.coll, {**state, **(stamp or {}), "version": 0}, [])
        return self.finish_create(state, events_for)

    def finish_create(self, state: dict, events_for: Callable[[int], list[Envelope]]) -> dict:
        """Commit `@1` of an aggregate inserted at version 0. Already committed (by a retry with the
        same key that found the creation half-done, or by the request it retried): done as well."""
        try:
            self._commit(state["_id"], 1, {}, events_for(1))
        except AlreadyExists:
            pass
        new = {k: v for k, v in state.items() if k not in NOT_STATE}
        new = {**new, "_id": state["_id"], "version": 1}
        self._materialise(new)
        return new

    def command(self, aggregate_id: str, check: Callable[[dict], Any],
                decide: Callable[[dict], tuple[dict, list]], events_for: Callable[[int, list], list[Envelope]],
                stamp: Callable[[dict], dict] | None = None) -> dict:
        """Load (rolled forward) -> check -> decide -> commit version+1; re-run on a lost race.
        `stamp(new state)`: fields of the change document (an Idempotency-Key and the answer);
        KeyTaken when a change with that key is committed already."""
        for attempt in range(ATTEMPTS):
            doc = self.load(aggregate_id)
            check(doc)
            new, raised = decide(doc)
            version = doc["version"] + 1
            fields = stamp({**new, "version": version}) if stamp else {}
            try:
                self._commit(aggregate_id, version, diff(doc, new, self.list_field), events_for(version, raised),
                             fields)
            except AlreadyExists:
                first = self.changed_with(fields[idempotency.KEY]) if fields.get(idempotency.KEY) else None
                if first is not None:
                    raise KeyTaken(first)
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # someone else won v+1: decide again
                continue
            new = {**new, "version": version}
            self._materialise(new)
            return new
        raise StaleVersion(aggregate_id)

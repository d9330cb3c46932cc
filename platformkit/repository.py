"""Load, decide, save with events: the ONE way every service writes an aggregate.

Why this shape. FerretDB 1.24 (SQLite backend, the local default store) executes an update as
read / modify / write back by `_id` WITHOUT re-checking the filter at write time: two concurrent
`update_one({"_id": x, "version": 3}, ...)` both match, both report success, and the later write
silently erases the earlier one (measured: 6 threads, 18 of 20 trials had 2-6 "winners"; one
approval in 328 lost while the relay marked events on the same document). A version filter is
therefore NOT a compare-and-set there. A unique-key INSERT is atomic (there and on MongoDB).

So a change is committed by INSERTING one change document into `<collection>_events`:

    {_id: "<aggregate id>@<seq, 9 digits>", aggregate_id, seq, version, ops: [{op, path, value}...],
     outbox: [events], outbox_pending, [idempotency_key, request_fingerprint, ...stamp]}

* the unique `_id` is the compare-and-set: two commands that read change number n both insert
  n+1, exactly one succeeds; the loser reloads and decides again (`command`), for a bounded time with
  jitter (RETRY_SECONDS; then Contended, a 503 to retry). Only a caller who SENT a version (body
  `version` / If-Match) that is no longer current gets StaleVersion (412): a caller that sent none
  cannot be stale, whatever the contention.
* `seq` (the change number, the compare-and-set counter) is kept apart from `version` (what callers
  see and send): upkeep that is no business change (a path rewritten after a unit move) commits a
  change with `bump=False`, which keeps `version`, so it makes no caller's version stale.
* the same insert carries the events (transactional outbox in one single-document write). The
  relay routes are the `<collection>_events` collections and the relay is the only writer of a
  change document after its insert (it empties the outbox): it never touches an aggregate.
* `ops` are Mongo-style operators ($set/$unset/$inc/$push, dotted paths) applied IN MEMORY by the
  pure `apply_ops`, so services keep describing changes the way they did with update_one.

The aggregate document in `<collection>` is a materialised copy: change 0 when created (its
insert is where the collection's unique indexes refuse duplicates, and where an Idempotency-Key
stamp lives), then rolled forward through the change documents by whoever reads it by id
(`load`): a writer that crashed after its commit is completed by the next reader. The copy write is
not a compare-and-set either (nothing is on FerretDB), so it is made CONVERGENT: after writing it,
the writer re-reads it and rolls forward again if a newer change exists or the copy went
backwards (a stale copy write racing a newer one heals at once, not at the next reader). Queries
on other fields (lists, look-ups) read copies, which lag at most the writes in flight.

Nobody writes an aggregate document except through this module (no `update_one` on it anywhere
else): any other writer would be erased by, or would erase, a materialisation.
"""
from __future__ import annotations

import copy
import logging
import random
import time
from typing import Any, Callable, Iterable

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from . import settings
from .envelope import Envelope
from .mongo import is_duplicate_key
from .outbox import OUTBOX, OUTBOX_INDEX, PENDING, AlreadyExists, Contended, NotFound, StaleVersion, insert_with_events

# platformkit.idempotency's stored fields (not imported: it pulls in flask through web.py, and this
# module stays free of the web layer; tests/unit/test_repository.py checks they agree)
KEY = "idempotency_key"
FINGERPRINT = "request_fingerprint"

log = logging.getLogger(__name__)

SEQ = "seq"  # number of committed changes: the compare-and-set counter (`version` counts business changes)
CHANGES = "_events"  # suffix of the change collection of an aggregate collection
FIRST_ANSWER = "first_answer"  # what a creation with an Idempotency-Key answered (replayed as is)
# Fields of the aggregate document that are not its state (never in answers, never diffed).
STAMP_FIELDS = (FIRST_ANSWER, KEY, FINGERPRINT)
NOT_STATE = {"_id", "version", SEQ, OUTBOX, PENDING, "rev", *STAMP_FIELDS}
# How long a command keeps deciding again after losing the race for version v+1.
RETRY_SECONDS = settings.current().repository_retry_seconds

Ops = list  # [{"op": "set", "path": "a.b", "value": ...}, ...] (FerretDB stores no nested arrays)


def op(name: str, path: str, value: Any = None) -> dict[str, Any]:
    return {"op": name, "path": path, "value": value}


class KeyTaken(Exception):
    """A change with this Idempotency-Key was committed (by an earlier or a racing request)."""

    def __init__(self, first: dict):
        super().__init__(first["_id"])
        self.first = first


def change_id(aggregate_id: str, version: int) -> str:
    return f"{aggregate_id}@{version:09d}"  # zero-padded: one aggregate's changes sort by version


# ---------------------------------------------------------------- pure change application
def ops_of(update: dict[str, dict[str, Any]] | None) -> Ops:
    """An update document as used with update_one -> ops, in Mongo's order of operators."""
    ops: Ops = []
    for operator in ("$set", "$unset", "$inc", "$push"):
        for path, value in (update or {}).get(operator, {}).items():
            if operator == "$push" and isinstance(value, dict) and "$each" in value:
                ops.append(op("push_all", path, list(value["$each"])))  # no "$" key may be stored
            else:
                ops.append(op(operator[1:], path, value))
    unknown = set(update or {}) - {"$set", "$unset", "$inc", "$push"}
    if unknown:
        raise ValueError(f"unsupported update operators {sorted(unknown)}")
    return ops


def _parent(doc: Any, parts: list[str], create: bool) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, list):
            i = int(part)
            if i >= len(node):
                if not create:
                    return None
                node.extend([None] * (i - len(node) + 1))
            if node[i] is None and create:
                node[i] = {}
            node = node[i]
        elif isinstance(node, dict):
            if part not in node or node[part] is None:
                if not create:
                    return None
                node[part] = {}
            node = node[part]
        else:
            raise ValueError(f"cannot traverse {part!r} of a {type(node).__name__}")
    return node


def _put(node: Any, key: str, value: Any) -> None:
    if isinstance(node, list):
        i = int(key)
        if i >= len(node):
            node.extend([None] * (i - len(node) + 1))  # Mongo pads with null; i == len appends
        node[i] = value
    else:
        node[key] = value


def apply_ops(doc: dict[str, Any], ops: Iterable[list]) -> dict[str, Any]:
    """The document after the ops (the input is not modified). Semantics of MongoDB's operators:
    `set` (dotted paths create sub-documents; a numeric segment indexes a list, one past the end
    appends), `unset` (a missing path is a no-op), `inc` (a missing field starts at 0), `push`
    (one value; `push_all` for $push's {"$each": [...]}; a missing field becomes a list)."""
    new = copy.deepcopy(doc)
    for entry in ops:
        name, path, value = (entry["op"], entry["path"], entry.get("value")) if isinstance(entry, dict) else entry
        *head, last = path.split(".")
        if name == "unset":
            node = _parent(new, head, create=False)
            if isinstance(node, dict):
                node.pop(last, None)
            elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
                node[int(last)] = None  # Mongo's $unset of an array element leaves null
            continue
        node = _parent(new, head, create=True)
        if name == "set":
            _put(node, last, copy.deepcopy(value))
        elif name == "inc":
            current = node[int(last)] if isinstance(node, list) and int(last) < len(node) else (
                node.get(last) if isinstance(node, dict) else None)
            _put(node, last, (current or 0) + value)
        elif name in ("push", "push_all"):
            items = value if name == "push_all" else [value]
            current = node.get(last) if isinstance(node, dict) else None
            if current is None:
                current = []
            elif not isinstance(current, list):
                raise ValueError(f"$push to {path}, which is not a list")
            _put(node, last, [*current, *copy.deepcopy(items)])
        else:
            raise ValueError(f"unsupported op {name!r}")
    return new


def diff(old: dict[str, Any], new: dict[str, Any], list_field: str | None = None) -> Ops:
    """Ops that turn state `old` into `new` (top-level fields; for `list_field`, whose entries are
    only appended or replaced in place, the changed entries by position)."""
    ops: Ops = []
    for key, value in new.items():
        if key in NOT_STATE or key == list_field:
            continue
        if key not in old or old[key] != value:
            ops.append(op("set", key, value))
    for key in old:
        if key not in NOT_STATE and key != list_field and key not in new:
            ops.append(op("unset", key))
    if list_field:
        before, after = old.get(list_field) or [], new.get(list_field) or []
        if len(after) < len(before):
            raise ValueError(f"{list_field}: entries may only be appended or replaced")
        if list_field not in old and list_field in new:
            ops.append(op("set", list_field, []))
        ops.extend(op("set", f"{list_field}.{i}", e) for i, e in enumerate(after)
                   if i >= len(before) or before[i] != e)
    return ops


def public_state(doc: dict[str, Any]) -> dict[str, Any]:
    """The aggregate without its stamp fields and legacy outbox fields."""
    return {k: v for k, v in doc.items() if k not in (SEQ, OUTBOX, PENDING, "rev", *STAMP_FIELDS)}


# ---------------------------------------------------------------- the repository
Decision = tuple  # (ops or update document, events) ; None: nothing to change


class Repository:
    """One aggregate collection and its change collection `<collection>_events`."""

    def __init__(self, db: Database, collection: str, what: str, *, list_field: str | None = None,
                 missing: Callable[[str], Exception] | None = None, relayed: bool = True,
                 derived: Callable[[dict], dict] | None = None, marks: Callable[[dict], None] | None = None):
        self.db = db
        self.name = collection
        # derived: fields computed from the state for the collection's equality queries (a scope
        # array instead of `$or` on unit and ancestors; FerretDB pushes only equalities down). Not
        # business state: set at creation and re-derived at every change, here and nowhere else.
        self.derived = derived
        # marks(state): entries other collections must hold before a state with these derived
        # fields is written (period_lists.mark: the periods a list reads); idempotent
        self.marks = marks
        self.coll = db[collection]
        self.changes = db[collection + CHANGES]
        self.what = what
        self.list_field = list_field
        self._missing = missing or (lambda _id: NotFound(f"{what} {_id}"))
        # relayed: `<collection>_events` is a relay route; every change (events or not) is flagged
        # for the relay, which after publishing also rolls the copy forward past it (a writer that
        # died between commit and copy write leaves no stale copy for queries)
        self.relayed = relayed

    @staticmethod
    def indexes(collection: str) -> dict[str, list]:
        """Of the change documents (the aggregate collection declares its own indexes, with
        `idempotency.index()` when it is created with a key)."""
        return {collection + CHANGES: [("aggregate_id", {"name": "aggregate"}), *OUTBOX_INDEX,
                                         (KEY, {"name": KEY, "unique": True, "sparse": True})]}

    # ------------------------------------------------------------ reading
    def with_derived(self, state: dict) -> dict:
        """The state with its derived fields (what a creation stores, and answers)."""
        return {**state, **self.derived(state)} if self.derived else state

    def created_with(self, key: str) -> dict | None:
        """The aggregate document (whole, stamp included, at any version) a creation with this
        key inserted."""
        return self.coll.find_one({KEY: key})

    def changed_with(self, key: str) -> dict | None:
        """The change document a command with this key committed."""
        return self.changes.find_one({KEY: key})

    def load(self, aggregate_id: str, *, whole: bool = False) -> dict:
        """The aggregate after its newest committed change (rolled forward and materialised);
        `missing(id)` when there is none. `whole`: with its stamp fields."""
        doc = self.get(aggregate_id, whole=whole)
        if doc is None:
            raise self._missing(aggregate_id)
        return doc

    def get(self, aggregate_id: str, *, whole: bool = False) -> dict | None:
        doc = self.coll.find_one({"_id": aggregate_id})
        if doc is None:
            return None
        doc = self.current(doc)
        if doc[SEQ] < 1:
            return None  # inserted at change 0 but its creation never committed
        return doc if whole else public_state(doc)

    def current(self, doc: dict) -> dict:
        """A copy read by any query, rolled forward (and the copy materialised if it lagged)."""
        doc = {**doc, SEQ: doc.get(SEQ, 0)}
        rolled = self._fold(doc)
        if rolled[SEQ] != doc[SEQ]:
            rolled = self._materialise(rolled)
        return rolled

    def _fold(self, doc: dict) -> dict:
        while True:
            nxt = self.changes.find_one({"_id": change_id(doc["_id"], doc[SEQ] + 1)}, {"ops": 1, "version": 1, SEQ: 1})
            if nxt is None:
                return doc
            doc = {**apply_ops(doc, nxt["ops"]), "version": nxt["version"], SEQ: nxt[SEQ]}

    def _materialise(self, doc: dict) -> dict:
        """Write the copy at doc's change number, then make sure it did not go backwards and is
        not behind a newer change; returns the newest state seen."""
        for _ in range(20):
            try:
                self.coll.replace_one({"_id": doc["_id"], SEQ: {"$lt": doc[SEQ]}}, doc)
            except OperationFailure as exc:
                if not is_duplicate_key(exc):
                    raise
                # A unique index of the copy refuses this state (the service checks such values
                # before committing; a race between two such checks lands here). The committed
                # change stands and loads by id roll forward; the copy stays behind for queries.
                log.warning("%s %s: copy at change %s refused by a unique index", self.what, doc["_id"], doc[SEQ])
                return doc
            seen = self.coll.find_one({"_id": doc["_id"]})
            if seen is None:
                return doc
            if seen.get(SEQ, 0) < doc[SEQ]:
                continue  # a stale copy write landed after ours: write ours again
            newer = self._fold(seen)
            if newer[SEQ] == seen[SEQ]:
                return newer
            doc = newer  # a newer change committed meanwhile: roll the copy to it
        return doc

    # ------------------------------------------------------------ writing
    def _commit(self, aggregate_id: str, seq: int, ops: Ops, events: list[Envelope],
                stamp: dict | None = None, version: int | None = None) -> None:
        """Insert change number `seq` (AlreadyExists: someone else committed it). `version`: the
        aggregate's version after it (default: seq)."""
        insert_with_events(self.changes, {"_id": change_id(aggregate_id, seq), "aggregate_id": aggregate_id,
                                          SEQ: seq, "version": seq if version is None else version, "ops": ops,
                                          **(stamp or {})}, events, pending=True if self.relayed else None)

    def create(self, state: dict, events: list[Envelope] | Callable[[int], list[Envelope]],
               stamp: dict | None = None, version: int = 1) -> dict:
        """Insert a new aggregate (the copy at change 0, where unique indexes refuse duplicates:
        AlreadyExists), then commit change 1 with the creation's events. `stamp`: fields kept in
        the aggregate document only (an Idempotency-Key and fingerprint, the first answer).
        `version`: the version a creation starts at (a unit created with two events: 2)."""
        state = self.with_derived(state)
        doc = {**{k: v for k, v in state.items() if k not in NOT_STATE}, "_id": state["_id"],
               **(stamp or {}), "version": 0, SEQ: 0}
        try:
            self.coll.insert_one(dict(doc))
        except DuplicateKeyError as exc:
            raise AlreadyExists(str(exc.details.get("keyValue") if exc.details else exc)) from exc
        except OperationFailure as exc:
            if is_duplicate_key(exc):
                raise AlreadyExists(str(exc.details.get("keyValue") if exc.details else exc)) from exc
            raise
        return self.finish_create(state, events, version, inserted=doc)

    def finish_create(self, state: dict, events: list[Envelope] | Callable[[int], list[Envelope]],
                      version: int = 1, *, inserted: dict | None = None) -> dict:
        """Commit change 1 of an aggregate inserted at change 0. Already committed (by a retry with
        the same key that found the creation half-done, or by the request it retried): done.
        `inserted`: the copy at change 0 this caller just inserted (not read again; the copy write
        below re-reads it anyway)."""
        if self.marks:  # after the copy's insert (a refused one marks nothing), before it counts
            self.marks(state)
        try:
            self._commit(state["_id"], 1, [], events(version) if callable(events) else events, version=version)
        except AlreadyExists:
            return self.load(state["_id"])  # committed by someone else, who may have changed it since
        copy_ = inserted if inserted is not None else self.coll.find_one({"_id": state["_id"]})
        if copy_ is None:
            return self.load(state["_id"])
        return public_state(self._materialise({**copy_, "version": version, SEQ: 1}))

    def command(self, aggregate_id: str, decide: Callable[[dict], Decision | None], *,
                expected_version: int | None = None, check: Callable[[dict], Any] | None = None,
                stamp: Callable[[dict], dict] | None = None, bump: bool = True) -> dict:
        """Load (rolled forward) -> check -> decide -> commit the next change, deciding again on a
        lost race (with jitter, for RETRY_SECONDS; then Contended). `decide(state)` returns (ops
        or an update document, events), or None when there is nothing to change (the state is
        returned as is). `expected_version`: the version the CALLER sent; StaleVersion when the
        aggregate is at another one, then or after a lost race. `stamp(new state)`: fields of the
        change document (an Idempotency-Key and the answer); KeyTaken when a change with that key
        is committed already. `bump=False`: upkeep that is no business change (a path rewritten
        after a move) keeps `version`, so that it makes no caller's version stale. Returns the new
        state."""
        deadline = time.monotonic() + RETRY_SECONDS
        attempt = 0
        while True:
            whole = self.load(aggregate_id, whole=True)
            doc = public_state(whole)
            if expected_version is not None and doc["version"] != expected_version:
                raise StaleVersion(f"{aggregate_id} is at version {doc['version']}, not {expected_version}")
            if check:
                check(doc)
            decision = decide(doc)
            if decision is None:
                return doc
            ops, events = decision
            ops = ops_of(ops) if isinstance(ops, dict) else list(ops)
            seq, version = whole[SEQ] + 1, doc["version"] + (1 if bump else 0)
            new = apply_ops(whole, ops)
            if self.derived:
                moved = {k: v for k, v in self.derived(new).items() if new.get(k) != v}
                ops += [op("set", k, v) for k, v in moved.items()]
                new.update(moved)
                if moved and self.marks:
                    self.marks(new)
            new = {**new, "version": version, SEQ: seq}
            fields = stamp(public_state(new)) if stamp else {}
            try:
                self._commit(aggregate_id, seq, ops, events, fields, version)
            except AlreadyExists:
                first = self.changed_with(fields[KEY]) if fields.get(KEY) else None
                if first is not None:
                    raise KeyTaken(first)
                attempt += 1
                if time.monotonic() > deadline:
                    raise Contended(f"{self.what} {aggregate_id} is busy; retry")
                # someone else committed this change number: back off a little (jitter breaks
                # lock-step) and decide again on the state after it
                time.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))
                continue
            self._materialise(new)
            if self.relayed and not events:
                self._settled(aggregate_id, seq)
            return public_state(new)  # this command's result (a newer change may exist already)

    def _settled(self, aggregate_id: str, seq: int) -> None:
        """A change without events whose copy is written needs nothing from the relay: its flag is
        cleared here (if this process dies first, the relay does it). Without this, a backfill's
        upkeep (129,280 cases at 2.5M members) left the relay that many changes to work through,
        under every request for half an hour."""
        copy_ = self.coll.find_one({"_id": aggregate_id}, {SEQ: 1})
        if copy_ is not None and copy_.get(SEQ, 0) >= seq:
            self.changes.update_one({"_id": change_id(aggregate_id, seq)}, {"$set": {PENDING: False}})


def next_number(db: Database, name: str) -> int:
    """A never-repeating, gap-tolerant sequence (card numbers): each number is a unique insert into
    `sequences` (`<name>:<n>`); `<name>` holds a hint of the highest number taken (read, then
    raised with $max: a lagging hint only costs a few duplicate-key retries, never a repeat)."""
    seqs = db["sequences"]
    n = (seqs.find_one({"_id": name}) or {}).get("seq", 0) + 1
    while True:
        try:
            seqs.insert_one({"_id": f"{name}:{n}", "taken": True})
            break
        except DuplicateKeyError:
            n += 1
    try:
        seqs.update_one({"_id": name}, {"$max": {"seq": n}}, upsert=True)
    except DuplicateKeyError:
        # two first numbers at once: both upserts insert the hint, one loses; the hint exists now
        # (and is only a hint: the number `n` is already ours by its unique insert above)
        seqs.update_one({"_id": name}, {"$max": {"seq": n}})
    return n

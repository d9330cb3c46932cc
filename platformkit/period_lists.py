"""Subtree lists, newest first, that read a bounded number of documents however big the subtree.

FerretDB 1.24 pushes neither a sort nor a limit down once a query has a filter: a page of 50 of
`{scope: <province>}` sorted by date read every case of the province through FerretDB (129,280 at
2.5M members; the bench's case and class lists answered 503). So a listed document also carries
`scope_periods`: for each unit of its scope (root first) the unit and the PERIOD its date falls in,
as fine as that level needs for a period to hold about a page of documents: a year below the third
level (a CĐCS: "2025"), a month at the third (a commune union: "2025-11"), and at the top two (the
country, a province) a day cut further by the start of the `_id` when the list's ids are made at
random ("2025-11-30~case-3": a busy day, a Tết gift round, spreads over 16 parts; a list may cut by
more characters), each still in `_id` order, since a string's prefix sorts as the string does). A
page of unit U is read period by period, newest first, one equality each (`{scope_periods:
"U|2025-11-30~case-3"}`, a GIN index), and sorted in memory.

Which periods hold anything is kept in MARKERS, a tree per list and unit written before the
document is (`mark`: one insert command, the markers already there refused by `_id`; removed only
by a new cut's backfill, `_drop_parts_not`): the unit's years, each year's months, each month's
days, each day's parts, as far as the unit's periods go. A page walks it newest first from the
cursor, one small query per node (at most 201 years, 12 months, 31 days, 256 parts; a part has
nothing below it), and reads at most MAX_PERIODS_PER_PAGE periods: a sparse filter answers a
shorter page with a cursor to go on from. An empty period (its documents moved to another subtree)
costs one query.

The page's order is (date descending, `_id` ascending) and its cursor the last document's
(date, `_id`), as paging.py's are; a short page's cursor is the key just past the last period read.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

from . import mongo, paging
from .errors import InvalidInput

FIELD = "scope_periods"
MARKERS = "list_periods"
MAX_PERIODS_PER_PAGE = 40
MAX_CHILDREN = 256  # of a marker: 201 years (1900-2100), 12 months, 31 days, the parts of a day
AFTER_EVERY_ID = "\uffff"  # sorts after every `_id` the platform makes
SUB = "~"  # between a day and the start of the `_id`s of its part
INDEXES = {MARKERS: [("parent", {"name": "parent"})]}


def _parts(depth: int, day: str, doc_id: str, id_chars: int) -> list[str]:
    """The period's path: [year] below the third level, [year, month] at it, [year, month, day]
    (and the `_id`'s first `id_chars` characters) at the top two."""
    date = [day[:4], day[5:7], day[8:10]]
    if depth >= 3:
        return date[:1]
    if depth == 2:
        return date[:2]
    return date + ([doc_id[:id_chars]] if id_chars else [])


def _period(parts: list[str]) -> str:
    date = "-".join(parts[:3])
    return date + (SUB + parts[3] if len(parts) > 3 else "")


def period_of(depth: int, day: str, doc_id: str = "", id_chars: int = 0) -> str:
    return _period(_parts(depth, day, doc_id, id_chars))


def scope_periods(scope: list[str], day: str | None, doc_id: str = "", id_chars: int = 0) -> list[str]:
    """The `scope_periods` of a document whose scope (root first) is `scope`, date `day` and id
    `doc_id` (`id_chars`: how much of it cuts the top two levels' days; 0: days are not cut)."""
    if not day:
        return []
    return [f"{unit}|{period_of(depth, day, doc_id, id_chars)}" for depth, unit in enumerate(scope)]


def _node(list_name: str, unit: str, path: list[str]) -> str:
    return f"{list_name}|{unit}|{'/'.join(path)}"


def markers(list_name: str, scope: list[str], day: str | None, doc_id: str = "", id_chars: int = 0) -> list[dict]:
    """The MARKERS a document of `list_name` with this scope, date and id needs: for each unit of
    its scope, the nodes of the path to its period (`period` on the last)."""
    if not day:
        return []
    out = []
    for depth, unit in enumerate(scope):
        parts = _parts(depth, day, doc_id, id_chars)
        for n in range(1, len(parts) + 1):
            marker = {"_id": _node(list_name, unit, parts[:n]), "parent": _node(list_name, unit, parts[:n - 1]),
                      "name": parts[n - 1]}
            if n == len(parts):
                marker["period"] = _period(parts)
            out.append(marker)
    return out


def mark(db: Any, list_name: str, scope: list[str], day: str | None, doc_id: str = "", id_chars: int = 0) -> None:
    """Writes the markers a document needs, before the document itself is written (so that a page
    never misses a stored document's period); idempotent."""
    ensure_markers(db, markers(list_name, scope, day, doc_id, id_chars))


def ensure_markers(db: Any, wanted: list[dict]) -> None:
    """One document's markers (`markers`): its periods' markers are looked up by `_id` (one per
    unit of its scope), and only the paths to those missing are written. Why: most are there
    already, and inserting them all anyway had the store refuse ~10 of a case's 11 markers, 7 ms
    and 30 lines of PostgreSQL's log per case. Sound because `write_markers` writes a path's
    periods only after its nodes: a period marker found means the nodes above it exist.
    The look-ups go one after another: this runs inside `mongo.in_parallel` workers too (the
    backfill), whose pool must not wait on itself. No memory of them is kept here: a process
    would have to know when a database is dropped and made again."""
    missing = [m["_id"] for m in wanted
               if "period" in m and db[MARKERS].find_one({"_id": m["_id"]}, {"_id": 1}) is None]
    if missing:
        write_markers(db, [m for m in wanted
                           if any(leaf == m["_id"] or leaf.startswith(m["_id"] + "/") for leaf in missing)])


def write_markers(db: Any, wanted: list[dict]) -> None:
    """Inserts these markers, those already there refused by `_id`: first every node that holds
    no period, then the periods, 40 a command (bounded commands: mongo.bounded_bulk_write's reason),
    so that a period's marker exists only once the nodes above it do, whatever order a store
    inserts one command's documents in (`ensure_markers` relies on it)."""
    nodes = [m for m in wanted if "period" not in m]
    periods = [m for m in wanted if "period" in m]
    for group in (nodes, periods):
        for i in range(0, len(group), 40):
            mongo.insert_new(db[MARKERS], group[i:i + 40])


def _cursor_parts(after: list | None) -> list[str] | None:
    if after is None:
        return None
    day, doc_id = after
    return [day[:4], day[5:7], day[8:10], doc_id]


def _walk(markers_coll: Any, list_name: str, unit: str, path: list[str], bound: list[str] | None) -> Iterator[str]:
    """The periods under the node `path`, newest first (a day's parts in `_id` order), skipping
    those wholly before the cursor whose path is `bound` (None: no cursor, or this node is older
    than it)."""
    children = list(markers_coll.find({"parent": _node(list_name, unit, path)}, {"name": 1, "period": 1})
                    .limit(MAX_CHILDREN))
    level = len(path)  # 0 year, 1 month, 2 day, 3 part of a day
    if level < 3:
        children.sort(key=lambda m: m["name"], reverse=True)
    else:
        children.sort(key=lambda m: m["name"])
    for child in children:
        name, below = child["name"], None
        if bound is not None:
            mine = bound[level]
            if level < 3:
                if name > mine:
                    continue  # newer than the cursor
                below = bound if name == mine else None
            else:
                if name < mine[:len(name)]:
                    continue  # ids before the cursor's
                below = bound if name == mine[:len(name)] else None
        if "period" in child:
            yield child["period"]
        if level < 3:  # a part of a day has nothing below it: no query for its (no) children
            yield from _walk(markers_coll, list_name, unit, path + [name], below)


def page(coll: Any, db: Any, list_name: str, query: dict, unit: str, date_field: str,
         after: list | None, limit: int, projection: dict | None = None,
         max_periods: int = MAX_PERIODS_PER_PAGE) -> tuple[list[dict], str | None]:
    """Up to `limit` documents of `query` in `unit`'s subtree, newest `date_field` first, after the
    cursor key `after` ([date, _id]); and the next cursor (None: the list is done)."""
    if after is not None and (len(after) != 2 or not all(isinstance(v, str) for v in after)):
        raise InvalidInput("the cursor belongs to another list", field="after")
    docs: list[dict] = []
    read, last = 0, ""
    for period in _walk(db[MARKERS], list_name, unit, [], _cursor_parts(after)):
        if read == max_periods:
            return docs[:limit], paging.encode(_behind(last))
        found = coll.find({**query, FIELD: f"{unit}|{period}"}, projection)
        batch = sorted(sorted(found, key=lambda d: d["_id"]), key=lambda d: d.get(date_field) or "", reverse=True)
        if after is not None:
            batch = [d for d in batch if _after(d, date_field, after)]
        docs += batch
        read, last = read + 1, period
        if len(docs) > limit:
            items = docs[:limit]
            return items, paging.encode([items[-1].get(date_field) or "", items[-1]["_id"]])
    return docs, None


def _after(doc: dict, date_field: str, after: list) -> bool:
    day = doc.get(date_field) or ""
    return day < after[0] or (day == after[0] and doc["_id"] > after[1])


def period_first_day(period: str) -> str:
    day = period.partition(SUB)[0]
    return day + "-01-01"[len(day) - 4:] if len(day) < 10 else day


def _behind(period: str) -> list[str]:
    """The cursor key just past the last document `period` can hold (and everything newer)."""
    part = period.partition(SUB)[2]
    return [period_first_day(period), part + AFTER_EVERY_ID]


def backfill(repository: Any, list_name: str, fields_of: Callable[[dict], dict], markers_of: Callable[[dict], list],
             inputs: dict, progress: Callable[[int, int], None] | None = None, every: int = 5_000,
             id_chars: int | None = None, round_no: int = 1) -> int:
    """Give the documents of `repository` (a platformkit.repository.Repository) stored before
    their list periods existed (or were cut as they are now) the periods (`fields_of(doc)[FIELD]`)
    and the markers (`markers_of(doc)`), once (mongo.run_once, as `<list_name>_periods`, then
    `_<round_no>` from round 2): the markers first, then a repository change each that keeps
    `version` (upkeep), six at a time (mongo.in_parallel). `id_chars` (the list's days cut by
    that many characters of the `_id`): parts of another width are then removed from the markers,
    since no document is in them any more. `inputs`: the projection the two functions need;
    `progress(done, total)` every `every`."""
    from .repository import Repository

    def periods(doc: dict) -> list | None:
        try:
            return fields_of(doc)[FIELD]
        except KeyError:  # not a document of the list (no unit, no date)
            return None

    def work() -> int:
        todo = [d for d in repository.coll.find({}, {**inputs, FIELD: 1})
                if periods(d) is not None and d.get(FIELD) != periods(d)]
        write_markers(repository.db, list({m["_id"]: m for d in todo for m in markers_of(d)}.values()))

        def upkeep(doc_id: str) -> None:
            Repository.command(repository, doc_id, lambda d: None if d.get(FIELD) == periods(d)
                               else ({"$set": {FIELD: periods(d)}}, []), bump=False)
        for i in range(0, len(todo), every):
            mongo.in_parallel(upkeep, [d["_id"] for d in todo[i:i + every]])
            if progress:
                progress(min(i + every, len(todo)), len(todo))
        if id_chars is not None:
            _drop_parts_not(repository.db, list_name, id_chars)
        return len(todo)
    return mongo.run_once(repository.db, f"{list_name}_periods" + (f"_{round_no}" if round_no > 1 else ""), work)


def _drop_parts_not(db: Any, list_name: str, id_chars: int) -> int:
    """Removes the list's day-part markers whose part is not `id_chars` long (left by an earlier
    cut, empty once every document's periods were derived again): each would cost a page a query.
    A one-off job's read of the marker collection, then one delete by `_id` each."""
    stale = [m["_id"] for m in db[MARKERS].find({}, {"period": 1})
             if m["_id"].startswith(f"{list_name}|") and SUB in (m.get("period") or "")
             and len(m["period"].partition(SUB)[2]) != id_chars]
    mongo.in_parallel(lambda marker_id: db[MARKERS].delete_one({"_id": marker_id}), stale)
    return len(stale)

"""Subtree lists, newest first, that read a bounded number of documents however big the subtree.

FerretDB 1.24 pushes neither a sort nor a limit down once a query has a filter: a page of 50 of
`{scope: <province>}` sorted by date read every case of the province through FerretDB (129,280 at
2.5M members; the bench's case and class lists answered 503). So a listed document also carries
`scope_periods`: for each unit of its scope (root first) the unit and the PERIOD its date falls in,
a period as long as that level needs for a period to hold a page or so of documents: a day at the
top two levels (the whole country, a province: a few hundred a day), a month at the third (a
commune union), a year below (a CĐCS). A page of unit U is then read period by period, newest
first, one equality each (`{scope_periods: "U|2025-11-30"}`, a GIN index), and sorted in memory.

Which periods hold anything is kept in MARKERS, written before the document is (`mark`, a unique
insert each, never removed): for each unit, its years, and each year's periods. A page reads the
unit's years (at most 201: dates run 1900-2100), the periods of the years it walks (at most 366
each), then the periods themselves until the page is full, at most MAX_PERIODS_PER_PAGE of them:
a sparse filter answers a shorter page with a cursor to go on from. An empty period (a document
moved away) costs one query.

The page's order is (date descending, `_id` ascending) and its cursor the last document's
(date, `_id`), as paging.py's are; a short page's cursor is (the first day of the last period
read, "\\uffff"): everything of that period is behind it.
"""
from __future__ import annotations

from typing import Any

from . import mongo, paging
from .errors import InvalidInput

FIELD = "scope_periods"
MARKERS = "list_periods"
PERIOD_CHARS = (10, 10, 7, 4)  # by depth in the scope (0: the root): "2025-11-30", "2025-11", "2025"
MAX_PERIODS_PER_PAGE = 40
AFTER_EVERY_ID = "\uffff"  # sorts after every `_id` the platform makes
INDEXES = {MARKERS: [("unit", {"name": "unit"}), ("year", {"name": "year"}), ("list", {"name": "list"}),
                     ("level", {"name": "level"})]}


def period_of(depth: int, day: str) -> str:
    return day[:PERIOD_CHARS[min(depth, len(PERIOD_CHARS) - 1)]]


def scope_periods(scope: list[str], day: str | None) -> list[str]:
    """The `scope_periods` of a document whose scope (root first) is `scope` and date `day`."""
    if not day:
        return []
    return [f"{unit}|{period_of(depth, day)}" for depth, unit in enumerate(scope)]


def markers(list_name: str, scope: list[str], day: str | None) -> list[dict]:
    """The MARKERS a document of `list_name` with this scope and date needs."""
    if not day:
        return []
    year = int(day[:4])
    out = []
    for depth, unit in enumerate(scope):
        period = period_of(depth, day)
        out.append({"_id": f"{list_name}|{unit}|y|{year}", "list": list_name, "unit": unit, "level": "year",
                    "year": year})
        out.append({"_id": f"{list_name}|{unit}|p|{period}", "list": list_name, "unit": unit, "level": "period",
                    "year": year, "period": period})
    return out


def mark(db: Any, list_name: str, scope: list[str], day: str | None) -> None:
    """Writes the markers a document needs, before the document itself is written (so that a page
    never misses a stored document's period); idempotent."""
    wanted = markers(list_name, scope, day)
    if wanted:
        # one command; the markers already there are refused by `_id` (no memory of them is kept
        # here: a process would have to know when a database is dropped and made again)
        mongo.insert_new(db[MARKERS], wanted)


def page(coll: Any, db: Any, list_name: str, query: dict, unit: str, date_field: str,
         after: list | None, limit: int, projection: dict | None = None,
         max_periods: int = MAX_PERIODS_PER_PAGE) -> tuple[list[dict], str | None]:
    """Up to `limit` documents of `query` in `unit`'s subtree, newest `date_field` first, after the
    cursor key `after` ([date, _id]); and the next cursor (None: the list is done)."""
    if after is not None and (len(after) != 2 or not all(isinstance(v, str) for v in after)):
        raise InvalidInput("the cursor belongs to another list", field="after")
    markers_coll = db[MARKERS]
    years = sorted((m["year"] for m in markers_coll.find({"list": list_name, "unit": unit, "level": "year"},
                                                          {"year": 1}).limit(300)), reverse=True)
    if after is not None:
        years = [y for y in years if str(y) <= after[0][:4]]
    docs: list[dict] = []
    read, period_last_read = 0, ""
    for year in years:
        periods = sorted((m["period"] for m in markers_coll.find(
            {"list": list_name, "unit": unit, "year": year, "level": "period"}, {"period": 1}).limit(400)),
            reverse=True)
        for period in periods:
            if after is not None and period > after[0][:len(period)]:
                continue  # newer than the cursor
            if read == max_periods:
                return docs[:limit], paging.encode([period_first_day(period_last_read), AFTER_EVERY_ID])
            found = coll.find({**query, FIELD: f"{unit}|{period}"}, projection)
            batch = sorted(sorted(found, key=lambda d: d["_id"]), key=lambda d: d.get(date_field) or "", reverse=True)
            if after is not None:
                batch = [d for d in batch if _after(d, date_field, after)]
            docs += batch
            read += 1
            period_last_read = period
            if len(docs) > limit:
                items = docs[:limit]
                return items, paging.encode([items[-1].get(date_field) or "", items[-1]["_id"]])
    return docs, None


def _after(doc: dict, date_field: str, after: list) -> bool:
    day = doc.get(date_field) or ""
    return day < after[0] or (day == after[0] and doc["_id"] > after[1])


def period_first_day(period: str) -> str:
    return period + "-01-01"[len(period) - 4:] if len(period) < 10 else period

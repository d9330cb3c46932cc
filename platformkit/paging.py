"""Cursor pages, one style for every list of every service.

A list answers `{"items": [...], "next_cursor": "..."}`; the next page is asked with
`after=<next_cursor>` and `next_cursor` is null on the last page. The cursor is opaque to clients:
the sort key of the page's last document (its sort fields, ending with the unique `_id`), as
URL-safe base64 of a JSON list. The next page reads the documents after that key, so a page never
skips or repeats a document when others are inserted or removed meanwhile (an offset would), and
reading page 1000 costs what page 1 costs.

`decode` accepts only what `encode` makes: a short list of strings and integers. A cursor is never
put into a query as an object, so it cannot carry a query operator.

No driver here: `page` takes anything with pymongo's `find(query, projection).sort(...).limit(n)`.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable, Iterable

from .errors import InvalidInput

MAX_CURSOR_CHARS = 512
MAX_KEYS = 4
INT64 = 2 ** 63

Sort = list[tuple[str, int]]
BY_ID: Sort = [("_id", 1)]


class BadCursor(ValueError):
    """Not a cursor this platform made."""


def encode(values: Iterable[Any]) -> str:
    raw = json.dumps(list(values), ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> list[str | int]:
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_CHARS:
        raise BadCursor("not a cursor from next_cursor")
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("not a cursor from next_cursor") from exc
    if not (isinstance(values, list) and 0 < len(values) <= MAX_KEYS and all(_scalar(v) for v in values)):
        raise BadCursor("not a cursor from next_cursor")
    return values


def _scalar(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, str) or (isinstance(value, int) and -INT64 <= value < INT64)


def page(coll: Any, query: dict, after: list | None, limit: int, sort: Sort = BY_ID,
         projection: dict | None = None) -> tuple[list[dict], str | None]:
    """Up to `limit` documents matching `query` in `sort` order after the key `after` (a decoded
    cursor, or None for the first page), and the cursor of the next page (None on the last).

    `sort` ends with `_id` ascending so that the key is unique. After the key (v1, .., vn), the
    documents come from one query per sort field, from the last back: equal on the fields before
    it and beyond it on that field (for [("year", -1), ("_id", 1)]: the same year and a greater
    `_id`, then an earlier year); each query is equality plus one range and stops at the page size.
    """
    if not sort or sort[-1] != ("_id", 1):
        raise ValueError("a page's sort ends with ('_id', 1)")
    if after is None:
        docs = list(coll.find(query, projection).sort(sort).limit(limit + 1))
    else:
        if len(after) != len(sort):
            raise InvalidInput("the cursor belongs to another list", field="after")
        docs = []
        for i in reversed(range(len(sort))):
            if len(docs) > limit:
                break
            step = _after_step(query, sort, after, i)
            if step is not None:
                docs += list(coll.find(step, projection).sort(sort[i:]).limit(limit + 1 - len(docs)))
    items = docs[:limit]
    next_cursor = encode(_key(items[-1], sort)) if len(docs) > limit else None
    return items, next_cursor


def page_union(coll: Any, queries: list[dict], after: list | None, limit: int,
               projection: dict | None = None) -> tuple[list[dict], str | None]:
    """One page of the union of several queries, by `_id` (documents matching more than one come
    once): a page of each, merged. Lets a list that is an OR of equalities ask each equality on its
    own (FerretDB pushes equalities down to an index, never an `$or`)."""
    merged: dict[Any, dict] = {}
    more = False
    for query in queries:
        docs, nxt = page(coll, query, after, limit, projection=projection)
        more = more or nxt is not None
        for d in docs:
            merged.setdefault(d["_id"], d)
    items = [merged[k] for k in sorted(merged)]
    if len(items) > limit:
        return items[:limit], encode(_key(items[limit - 1], BY_ID))
    # every query's page fitted: the union is complete unless one of them had more
    return items, (encode(_key(items[-1], BY_ID)) if more and items else None)


def page_where(coll: Any, query: dict, after: list | None, limit: int, keep: Callable[[dict], bool]) -> dict:
    """A page (by _id) of the documents of `query` that `keep` accepts: pages of the query read
    until `limit` are kept, the cursor at the last document read (a condition the store cannot
    push down is tested here, on what an equality found). Answers {items, next_cursor}."""
    items: list[dict] = []
    while True:
        docs, nxt = page(coll, query, after, limit, projection={"outbox": 0})
        for i, doc in enumerate(docs):
            if keep(doc):
                items.append(doc)
                if len(items) == limit:
                    more = i < len(docs) - 1 or nxt is not None
                    return {"items": items, "next_cursor": encode([doc["_id"]]) if more else None}
        if nxt is None:
            return {"items": items, "next_cursor": None}
        after = decode(nxt)


def page_of_list(items: list, key: Callable[[Any], list], after: list | None, limit: int | None
                 ) -> tuple[list, str | None]:
    """The same pages over a list already in memory, sorted by `key` (a list of strings ending with
    something unique): for lists a service builds from documents it reads whole (a drill-down's
    children, filtered in code) so that the costly part per item is done for one page only.
    `limit` None: the whole list (an export)."""
    if after is not None:
        if not all(isinstance(v, str) for v in after) or (items and len(after) != len(key(items[0]))):
            raise InvalidInput("the cursor belongs to another list", field="after")
        items = [item for item in items if key(item) > after]
    if limit is None or len(items) <= limit:
        return items, None
    return items[:limit], encode(key(items[limit - 1]))


def _after_step(query: dict, sort: Sort, after: list, i: int) -> dict | None:
    """The query for the documents equal to `after` on sort fields before i and beyond it on
    field i; None when the list's own filter leaves no such document."""
    step = dict(query)
    for (field, _), value in zip(sort[:i], after[:i]):
        if field in step and step[field] != value:
            return None
        step[field] = value
    field, direction = sort[i]
    if field in step:  # the list is filtered to one value of this field: nothing lies beyond it
        return None
    step[field] = {"$gt" if direction == 1 else "$lt": after[i]}
    return step


def _key(doc: dict, sort: Sort) -> list:
    return [doc.get(field) for field, _ in sort]

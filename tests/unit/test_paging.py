"""Cursor pages (platformkit.paging) over an in-memory collection that answers the query subset the
pages use (equality, $gt/$lt, sort, limit): every document once, in order, whatever the page size."""
from __future__ import annotations

import random

import pytest
from marshmallow import Schema, ValidationError

from platformkit import paging
from platformkit.errors import InvalidInput
from platformkit.fields import Cursor


class Found:
    def __init__(self, docs):
        self.docs = docs

    def sort(self, keys):
        for field, direction in reversed(keys):
            self.docs.sort(key=lambda d: d[field], reverse=direction == -1)
        return self

    def limit(self, n):
        return self.docs[:n]


class Memory:
    def __init__(self, docs):
        self.docs = docs
        self.queries = []

    def find(self, query, _projection=None):
        self.queries.append(query)
        return Found([d for d in self.docs if all(matches(d.get(k), v) for k, v in query.items())])


def matches(value, condition):
    if isinstance(condition, dict):
        (op, bound), = condition.items()
        return value > bound if op == "$gt" else value < bound
    return value == condition


def read_all(coll, query, sort, limit):
    seen, after, pages = [], None, 0
    while True:
        items, cursor = paging.page(coll, query, after, limit, sort)
        seen += items
        pages += 1
        assert len(items) <= limit
        if cursor is None:
            return seen, pages
        after = paging.decode(cursor)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_every_document_once_in_sort_order_for_a_compound_sort(limit):
    rng = random.Random(limit)
    docs = [{"_id": f"c{i:03d}", "year": rng.choice([2023, 2024, 2025]), "kind": rng.choice("ab")}
            for i in range(40)]
    rng.shuffle(docs)
    sort = [("year", -1), ("_id", 1)]
    seen, pages = read_all(Memory(docs), {}, sort, limit)
    expected = sorted(docs, key=lambda d: (-d["year"], d["_id"]))
    assert [d["_id"] for d in seen] == [d["_id"] for d in expected]
    assert pages == -(-len(docs) // limit)  # no empty page at the end
    # the list's own filter on a sort field keeps the pages inside it
    only_2024, _ = read_all(Memory(docs), {"year": 2024}, sort, limit)
    assert [d["_id"] for d in only_2024] == [d["_id"] for d in expected if d["year"] == 2024]
    of_kind_a, _ = read_all(Memory(docs), {"kind": "a"}, sort, limit)
    assert [d["_id"] for d in of_kind_a] == [d["_id"] for d in expected if d["kind"] == "a"]


def test_the_last_page_has_no_cursor_and_an_exact_fit_needs_no_empty_page():
    coll = Memory([{"_id": f"m{i}"} for i in range(4)])
    items, cursor = paging.page(coll, {}, None, 4)
    assert len(items) == 4 and cursor is None
    items, cursor = paging.page(coll, {}, None, 3)
    assert [d["_id"] for d in items] == ["m0", "m1", "m2"] and paging.decode(cursor) == ["m2"]


def test_a_document_inserted_before_the_cursor_is_neither_repeated_nor_shifting_the_page():
    docs = [{"_id": f"m{i}"} for i in range(0, 10, 2)]
    coll = Memory(docs)
    first, cursor = paging.page(coll, {}, None, 2)
    docs.append({"_id": "m1"})  # sorts into page 1, already read
    second, _ = paging.page(coll, {}, paging.decode(cursor), 2)
    assert [d["_id"] for d in first + second] == ["m0", "m2", "m4", "m6"]


@pytest.mark.parametrize("text", ["", "x" * 600, "not base64 at all!", paging.encode([]),
                                  paging.encode([{"$ne": 1}]), paging.encode([True]), paging.encode([2 ** 70]),
                                  paging.encode([None]), paging.encode(["a"] * 5),
                                  "eyJhIjoxfQ"])  # {"a":1}: an object, not a list
def test_only_cursors_the_platform_made_are_accepted(text):
    with pytest.raises(paging.BadCursor):
        paging.decode(text)


def test_the_cursor_field_is_a_400_naming_after_and_a_foreign_cursor_is_refused():
    class Q(Schema):
        after = Cursor()
    assert Q().load({"after": paging.encode(["x", 3])}) == {"after": ["x", 3]}
    with pytest.raises(ValidationError) as err:
        Q().load({"after": paging.encode([{"$gt": ""}])})
    assert err.value.messages == {"after": ["not a cursor from next_cursor"]}
    with pytest.raises(InvalidInput) as refused:
        paging.page(Memory([]), {}, ["a", "b"], 10)  # a key of two fields for a list sorted by one
    assert refused.value.field == "after"


def test_pages_of_a_list_in_memory_follow_the_same_cursors():
    units = sorted(({"_id": f"u{i}", "name": name} for i, name in enumerate(["Bình", "An", "Bình", "Ân", "Cần"])),
                   key=lambda u: [u["name"], u["_id"]])
    key = lambda u: [u["name"], u["_id"]]  # noqa: E731
    seen, after = [], None
    while True:
        items, cursor = paging.page_of_list(units, key, after, 2)
        seen += items
        if cursor is None:
            break
        after = paging.decode(cursor)
    assert seen == units
    assert paging.page_of_list(units, key, None, None) == (units, None)  # no limit: the whole list
    with pytest.raises(InvalidInput):
        paging.page_of_list(units, key, ["u1"], 2)
    with pytest.raises(InvalidInput):
        paging.page_of_list(units, key, [3, "u1"], 2)

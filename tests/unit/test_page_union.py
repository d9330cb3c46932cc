"""paging.page_union: the pages of an OR of equalities asked one equality at a time (FerretDB
pushes equalities down, never an `$or`) walk the same documents as the `$or` would, once each."""
import random

from platformkit import paging
from platformkit.memory_store import MemoryDatabase


def test_walking_the_union_page_by_page_gives_each_document_once_in_order():
    rnd = random.Random(3)
    coll = MemoryDatabase()["courses"]
    for i in range(60):
        coll.insert_one({"_id": f"c{i:03d}", "scope": rnd.sample(["A", "B", "C", "D"], 2), "owner": rnd.choice("xyz")})
    queries = [{"scope": "A"}, {"owner": "x"}, {"owner": "y", "scope": "B"}]
    expected = sorted(d["_id"] for d in coll.find({"$or": queries}))
    for limit in (1, 2, 7, 100):
        seen, after = [], None
        while True:
            items, cursor = paging.page_union(coll, queries, after, limit)
            assert len(items) <= limit
            seen += [d["_id"] for d in items]
            if cursor is None:
                break
            after = paging.decode(cursor)
        assert seen == expected, limit

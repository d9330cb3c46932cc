"""The relay publishes one aggregate's changes in their order, even when its query returns them
shuffled or cut at the pass size (platformkit/outbox.py in_publication_order)."""
import random

from platformkit.outbox import in_publication_order, predecessor
from platformkit.repository import change_id


def test_predecessor_of_a_numbered_change_and_of_anything_else():
    assert predecessor(change_id("m-1", 3)) == change_id("m-1", 2)
    assert predecessor("2025-H1|u-1@000004") == "2025-H1|u-1@000003"
    assert predecessor("a@b@000010") == "a@b@000009"  # only the last @ numbers the series
    assert predecessor(change_id("m-1", 1)) is None and predecessor(change_id("m-1", 0)) is None  # series start at 1
    assert predecessor("3f0c9a1e-session") is None and predecessor("x@y") is None


def test_a_pass_publishes_each_aggregate_in_order_and_fetches_the_changes_it_missed():
    pending = {change_id(a, v): {"_id": change_id(a, v)} for a in ("m-1", "m-2", "m-3") for v in range(1, 6)}
    pending["session-9"] = {"_id": "session-9"}
    shuffled = list(pending.values())
    random.Random(4).shuffle(shuffled)
    seen_pass = [d for d in shuffled if not d["_id"].endswith(("000000001", "000000002"))][:7]  # cut, holes
    fetched = []

    def by_id(_id):
        fetched.append(_id)
        return pending.get(_id)
    ordered = in_publication_order(seen_pass, by_id)
    ids = [d["_id"] for d in ordered]
    for a in ("m-1", "m-2", "m-3"):
        mine = [i for i in ids if i.startswith(a + "@")]
        if mine:  # from its first pending change on, with no gap, in order
            assert mine == [change_id(a, v) for v in range(1, len(mine) + 1)], mine
    assert any(i.startswith("m-") for i in ids) and "session-9" in ids or "session-9" not in \
        {d["_id"] for d in seen_pass}
    # the holes (@1, @2) were fetched by id, and nothing was fetched twice
    assert len(fetched) == len(set(fetched))


def test_published_changes_are_not_fetched_again():
    # @1 and @2 published already (no longer pending): @3 goes out alone
    ordered = in_publication_order([{"_id": change_id("m-1", 3)}], lambda _id: None)
    assert [d["_id"] for d in ordered] == [change_id("m-1", 3)]

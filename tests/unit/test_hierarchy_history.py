"""The hierarchy as of a date (services/reporting/hierarchy_history.py): pure interval logic."""
from services.reporting import hierarchy_history as h


def test_record_keeps_date_order_whatever_the_arrival_order_and_is_idempotent():
    a = h.record(h.record([], "A", "2020-01-01"), "B", "2025-07-01")
    b = h.record(h.record([], "B", "2025-07-01"), "A", "2020-01-01")
    assert a == b == [{"parent": "A", "from": "2020-01-01"}, {"parent": "B", "from": "2025-07-01"}]
    assert h.record(a, "B", "2025-07-01") == a


def test_record_drops_an_entry_repeating_the_parent_before_it():
    assert h.record([{"parent": "A", "from": ""}], "A", "2020-01-01") == [{"parent": "A", "from": ""}]


def test_parent_on_a_date_uses_the_interval_holding_it():
    hist = [{"parent": "A", "from": "2020-01-01"}, {"parent": "B", "from": "2025-07-01"}]
    assert h.parent_on(hist, "B", "2024-12-31") == "A"
    assert h.parent_on(hist, "B", "2025-06-30") == "A"
    assert h.parent_on(hist, "B", "2025-07-01") == "B"
    assert h.parent_on(hist, "B", "2030-01-01") == "B"
    # before it existed: where it first appeared; no history: its current parent
    assert h.parent_on(hist, "B", "2019-05-05") == "A"
    assert h.parent_on(None, "B", "2019-05-05") == "B"


def test_signed_members_give_the_own_figures_of_a_subtree_on_a_date():
    # today: ROOT > A > X > C ; ROOT > B.  On the date: ROOT > A, ROOT > B > C (X was not under B).
    current = {"ROOT": None, "A": "ROOT", "B": "ROOT", "X": "A", "C": "X"}
    own = {"ROOT": 1, "A": 10, "B": 100, "X": 1000, "C": 10000}

    def stored(u):  # the stored document: the unit's current subtree total
        return own[u] + sum(stored(k) for k, p in current.items() if p == u)

    units = [{"_id": "ROOT", "parent_id": None}, {"_id": "A", "parent_id": "ROOT"}, {"_id": "B", "parent_id": "ROOT"},
             {"_id": "X", "parent_id": "A", "parents": [{"parent": "A", "from": "2010-01-01"}]},
             {"_id": "C", "parent_id": "X", "parents": [{"parent": "B", "from": "2010-01-01"},
                                                        {"parent": "X", "from": "2025-07-01"}]}]
    kids = h.tree_on(units, "2024-12-31")
    assert sorted(kids["B"]) == ["C"] and sorted(kids["A"]) == ["X"]

    def as_of(u):
        return sum(sign * stored(x) for x, sign in h.signed_members(h.subtree(kids, u), current).items())

    assert as_of("B") == 100 + 10000
    assert as_of("A") == 10 + 1000
    assert as_of("X") == 1000
    assert as_of("ROOT") == stored("ROOT")
    today = h.tree_on(units, "2026-01-01")
    assert sum(s * stored(x) for x, s in h.signed_members(h.subtree(today, "A"), current).items()) == stored("A")


def test_subtree_ends_on_a_cycle():
    assert h.subtree({"A": ["B"], "B": ["A"]}, "A") == {"A", "B"}

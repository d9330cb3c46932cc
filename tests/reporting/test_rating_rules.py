"""The rating eligibility and counting rules of the projection, pure (no broker, no database): the
eligibility month agrees with membership's `rating_eligible` on every founding day; a grade changed
at confirmation moves the count; closing before eligibility never makes the stock negative; a
rating of a CĐCS closed by 30 November is withdrawn."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from platformkit.envelope import Envelope
from services.membership.domain import rating_eligible
from services.reporting.projection import eligible_from, project

ANCESTORS = ["VN", "P", "C"]


def test_the_eligibility_month_is_membership_rule_on_every_day():
    day = date(2022, 1, 1)
    while day <= date(2025, 12, 31):
        for year in (2023, 2024, 2025, 2026):
            assert (eligible_from(day.isoformat()) <= f"{year}-11") == rating_eligible(
                {"effective_date": day.isoformat()}, year), (day, year)
        day += timedelta(days=1)


class Stream:
    """Events of one CĐCS through `project`, with the state the projector would keep."""

    def __init__(self, unit="S1", sector="non_state"):
        self.unit, self.sector, self.v, self.state = unit, sector, 0, None
        self.totals: dict[tuple[str, str], int] = defaultdict(int)

    def send(self, type_: str, **data):
        self.v += 1
        env = Envelope(id=f"e{self.v}", source="membership", type=f"membership.{type_}.v1", subject=self.unit,
                       time="2025-01-01T00:00:00Z", aggregateversion=self.v,
                       data={"unit_id": self.unit, "ancestors": ANCESTORS, **data})
        fx = project(env, self.state)
        for d in fx.deltas:
            self.totals[(d.indicator, d.month)] += d.amount
        if fx.state_key and fx.new_state is not None:
            self.state = fx.new_state
        return fx

    def found(self, on: str):
        return self.send("cdcs.founded", sector=self.sector, method="standard", founding_member_count=7,
                         decision_no="1", decision_date=on, effective_date=on)

    def rate(self, year: int, rating: str, status="confirmed"):
        return self.send("cdcs.rated", sector=self.sector, year=year, rating=rating, status=status,
                         confirmed_by_unit_id="C")

    def stock(self, indicator: str, month: str) -> int:
        return sum(n for (ind, m), n in self.totals.items() if ind == indicator and m <= month)

    def at(self, indicator: str, month: str) -> int:
        return self.totals.get((indicator, month), 0)


def test_a_grade_changed_at_confirmation_moves_the_count():
    s = Stream()
    s.found("2023-01-10")
    s.rate(2025, "good", status="proposed")
    assert s.at("cdcs.rated", "2025-11") == 0  # proposed: not counted
    s.rate(2025, "good")
    s.rate(2025, "excellent")  # the level above changed its mind
    assert s.at("cdcs.rated", "2025-11") == 1 and s.at("cdcs.rated.non_state", "2025-11") == 1
    assert s.at("cdcs.rated.good", "2025-11") == 0 and s.at("cdcs.rated.excellent", "2025-11") == 1
    assert s.at("cdcs.rated.good_or_better", "2025-11") == 1
    s.rate(2025, "completed")
    assert s.at("cdcs.rated.good_or_better", "2025-11") == 0 and s.at("cdcs.rated.completed.non_state", "2025-11") == 1
    assert s.stock("cdcs.rating_eligible", "2025-11") == s.stock("cdcs.rating_eligible.non_state", "2025-11") == 1


def test_closed_before_eligibility_never_dips_the_stock():
    s = Stream()
    s.found("2025-02-01")
    s.send("unit.dissolved", effective_date="2025-05-10")
    months = [f"{y}-{m:02d}" for y in (2025, 2026, 2027) for m in range(1, 13)]
    assert all(s.stock("cdcs.rating_eligible", m) == 0 for m in months)
    assert s.stock("cdcs.active", "2025-04") == 1 and s.stock("cdcs.active", "2025-05") == 0


def test_a_rating_of_a_cdcs_closed_by_the_cutoff_is_withdrawn_and_one_closed_after_stays():
    closed = Stream("S1")
    closed.found("2023-03-15")
    closed.rate(2024, "good")
    closed.rate(2025, "good")
    closed.send("unit.dissolved", effective_date="2025-11-30")
    assert closed.at("cdcs.rated", "2025-11") == 0 and closed.stock("cdcs.rating_eligible", "2025-11") == 0
    assert closed.at("cdcs.rated.good", "2024-11") == 1 and closed.stock("cdcs.rating_eligible", "2024-11") == 1
    # rated after it closed: not counted either
    closed.rate(2025, "excellent")
    assert closed.at("cdcs.rated", "2025-11") == 0
    merged = Stream("S2")
    merged.found("2023-03-15")
    merged.rate(2025, "excellent")
    merged.send("unit.merged", into_unit_id="S1", into_ancestors=ANCESTORS, effective_date="2025-12-01")
    assert merged.at("cdcs.rated.excellent", "2025-11") == 1 and merged.stock("cdcs.rating_eligible", "2025-11") == 1
    assert merged.stock("cdcs.rating_eligible", "2025-12") == 0


def test_a_redelivered_rating_counts_once():
    s = Stream()
    s.found("2023-03-15")
    s.rate(2025, "good")
    state = s.state
    s.v -= 1  # the same version again
    fx = s.send("cdcs.rated", sector=s.sector, year=2025, rating="good", status="confirmed", confirmed_by_unit_id="C")
    assert fx.deltas == [] and s.state == state

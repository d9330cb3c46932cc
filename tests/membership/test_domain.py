"""Pure rules of membership (no I/O)."""
from datetime import date

import pytest

from platformkit.errors import InvalidInput, RuleViolated
from services.membership import domain


def test_search_key_drops_diacritics_and_case():
    assert domain.search_key("Nguyễn  Thị Hà") == "nguyen thi ha"
    assert domain.search_key("Đặng Văn Đức") == "dang van duc"


@pytest.mark.parametrize("cid", ["07919000000", "0791900000011", "07919000000a", "", " 079190000001"])
def test_citizen_id_is_twelve_digits(cid):
    with pytest.raises(InvalidInput) as exc:
        domain.check_citizen_id(cid)
    assert exc.value.field == "citizen_id"


def test_dues_rate_follows_the_date():
    # 1% until 2025-06-30
    assert domain.dues_due(date(2025, 6, 1), 8_000_000, False, 0) == (80_000, 10, None)
    # 0.5% from 2025-07-01
    assert domain.dues_due(date(2025, 7, 1), 8_000_000, False, 0) == (40_000, 5, None)


def test_dues_are_capped_at_ten_percent_of_the_base_salary_in_force():
    # base salary 2,340,000 from 2024-07-01: cap 234,000
    assert domain.dues_due(date(2025, 8, 1), 100_000_000, False, 0)[0] == 234_000
    # base 1,800,000 in 2024-01: cap 180,000; 1% of 50M = 500,000 -> capped
    assert domain.dues_due(date(2024, 1, 1), 50_000_000, False, 0)[0] == 180_000


def test_dues_exemptions():
    assert domain.dues_due(date(2025, 8, 1), 9_000_000, True, 0) == (0, 5, "on_social_insurance_benefits")
    assert domain.dues_due(date(2025, 8, 1), 9_000_000, False, 1) == (0, 5, "unpaid_leave")


def test_rating_needs_twelve_months_to_the_november_cutoff():
    assert domain.rating_eligible({"effective_date": "2024-11-30"}, 2025)
    assert not domain.rating_eligible({"effective_date": "2024-12-01"}, 2025)


def test_descendant_ancestors_are_rebased_after_a_move():
    assert domain.rebased_ancestors(["vn", "hcm", "c1", "s1"], "c1", ["vn", "hn"]) == ["vn", "hn", "c1", "s1"]


def test_unit_cannot_move_under_its_own_descendant():
    unit = {"_id": "c1", "status": "active", "level": 3, "parent_id": "hcm", "ancestors": ["vn", "hcm"], "version": 1}
    child = {"_id": "s1", "status": "active", "level": 4, "ancestors": ["vn", "hcm", "c1"]}
    with pytest.raises(RuleViolated):
        domain.move_unit(unit, child, date(2025, 7, 1))


def test_member_number_is_unique_per_sequence():
    assert domain.member_number("HCM", 2025, 17) == "HCM2500000017"

"""Periodic reports, the pure rules (services/reporting/periodic/forms.py, workflow.py): periods and
cut-offs, entered figures, deadlines per level and per province, who may take which step."""
from datetime import date

import pytest

from platformkit import messages_vi
from services.reporting.periodic import forms
from services.reporting.periodic.forms import FormError
from services.reporting.periodic.workflow import Actor, StepRefused, check_step


def test_periods_and_cutoffs():
    assert forms.report_period("2025-H1").cutoff == date(2025, 5, 31)
    assert forms.report_period("2025-SY").cutoff == date(2025, 11, 30)
    q1 = forms.report_period("2025-Q1")
    assert (q1.cutoff, q1.previous_quarter) == (date(2025, 3, 31), "2024-Q4")
    assert forms.report_period("2025-Q3").previous_quarter == "2025-Q2"
    assert forms.quarter_opening_period(q1).last == "2024-12"
    for bad in ("2025", "2025-H2", "2025-07", "2025-Q5", ""):
        with pytest.raises(FormError) as exc:
            forms.report_period(bad)
        assert exc.value.field == "period" and messages_vi.known(str(exc.value))


@pytest.mark.parametrize("entered, field", [
    ({"initiatives": -1}, "entered.initiatives"), ({"workforce": 1.5}, "entered.workforce"),
    ({"workforce": True}, "entered.workforce"), ({"spaceships": 1}, "entered.spaceships")])
def test_entered_figures_are_whole_non_negative_known_counts(entered, field):
    with pytest.raises(FormError) as exc:
        forms.check_entered(entered, forms.report_period("2025-H1"))
    assert exc.value.field == field and messages_vi.known(str(exc.value))


def test_entered_figures_complete_and_members_within_the_workforce():
    got = forms.check_entered({"initiatives": 3}, forms.report_period("2025-SY"))
    assert got["initiatives"] == 3 and got["workforce"] == 0 and set(got) == set(forms.ENTERED_CODES)
    with pytest.raises(FormError) as exc:
        forms.check_totals({"workforce": 10, "workforce_members": 11})
    assert exc.value.field == "entered.workforce_members" and messages_vi.known(str(exc.value))
    forms.check_totals({"workforce": 10, "workforce_members": 10})
    assert forms.unionisation_pct({"workforce": 3, "workforce_members": 2}) == 66.67
    assert forms.unionisation_pct({"workforce": 0}) is None
    with pytest.raises(FormError):  # a quarter has no entered figures
        forms.check_entered({"initiatives": 1}, forms.report_period("2025-Q2"))


def test_deadlines_per_level_and_province():
    h1 = forms.report_period("2025-H1")
    assert forms.due_date(h1, 4) == date(2025, 6, 5) and forms.due_date(h1, 3) == date(2025, 6, 10)
    days = forms.check_due_days({"half_year": {"4": 3, "3": 7}})
    assert forms.due_date(h1, 4, days) == date(2025, 6, 3) and days["year"] == forms.DEFAULT_DUE_DAYS["year"]
    for bad, field in (({"half_year": {"3": 1}}, "due_days.half_year.3"), ({"half_year": {"9": 1}}, "due_days.half_year"),
                       ({"half_year": {"4": -1}}, "due_days.half_year.4"), ({"monthly": {}}, "due_days.monthly")):
        with pytest.raises(FormError) as exc:
            forms.check_due_days(bad)
        assert exc.value.field == field and messages_vi.known(str(exc.value))
    assert forms.on_time("2025-06-05", date(2025, 6, 5)) is True and forms.on_time("2025-06-06", date(2025, 6, 5)) is False
    assert forms.level_of({"level": 4}) == 4 and forms.level_of({"ancestors": ["a", "b"]}) == 3


ANC = ["VN", "P", "C"]


def refused(step, status, actor, reason=None):
    with pytest.raises(StepRefused) as exc:
        check_step(step, status, "S", ANC, Actor(actor), reason)
    assert messages_vi.known(str(exc.value)), str(exc.value)
    return exc.value.status


def test_the_workflow():
    assert check_step("save", "draft", "S", ANC, Actor("S")) == "draft"
    assert check_step("submit", "draft", "S", ANC, Actor("S")) == "submitted"
    assert check_step("approve", "submitted", "S", ANC, Actor("C")) == "approved"
    assert check_step("approve", "submitted", "S", ANC, Actor("P")) == "approved"  # any level above
    assert check_step("return", "submitted", "S", ANC, Actor("C"), "why") == "returned"
    assert check_step("submit", "returned", "S", ANC, Actor("S")) == "submitted"
    assert check_step("reopen", "approved", "S", ANC, Actor("C"), "why") == "returned"
    assert refused("submit", "draft", "C") == 403            # not its own
    assert refused("approve", "submitted", "S") == 403       # its own
    assert refused("approve", "submitted", "S2") == 403      # a sibling
    assert refused("approve", "draft", "C") == 422           # not submitted
    assert refused("submit", "approved", "S") == 422         # after approval
    assert refused("submit", "submitted", "S") == 422        # twice
    assert refused("reopen", "approved", "S", "x") == 403    # only above
    assert refused("return", "submitted", "C", "  ") == 400  # with a reason
    assert refused("reopen", "submitted", "C", "x") == 422


def test_docs_list_every_report_event():
    from pathlib import Path

    from platformkit.contract import DOMAIN_TOPICS
    from platformkit.contract import EVENT_TYPES as CONTRACT_TYPES
    from services.reporting.description import DESCRIPTION
    from services.reporting.periodic.workflow import EVENT_TYPES
    ROUTES = DESCRIPTION.relay_routes
    assert set(EVENT_TYPES.values()) == set(CONTRACT_TYPES["reporting.events"])
    doc = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    assert "## reporting.events (source `reporting`)" in doc
    for type_ in EVENT_TYPES.values():
        assert f"`{type_}`" in doc, type_
    assert set(ROUTES.values()) == {"reporting.events"} and "reporting.events" in DOMAIN_TOPICS


def test_periods_outside_the_supported_years_are_refused_by_field():
    for code in ("1900-SY", "1900-H1", "1900-Q1", "2101-Q1"):
        with pytest.raises(FormError) as exc:
            forms.report_period(code)
        assert exc.value.field == "period" and messages_vi.known(str(exc.value))


def test_the_rules_know_the_platform_scope_the_tokens_use():
    from platformkit.auth import PLATFORM_SCOPE
    from services.reporting.periodic import workflow
    assert workflow.PLATFORM_SCOPE == PLATFORM_SCOPE

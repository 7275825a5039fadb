"""Billing cycles: calendar months and anchored cycles in the customer's zone, issue and due dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from tests.unit.billing.billing_builders import plan_from

from warp_billing.billing.cycles import cycle_for, parse_period, plan_cycle
from warp_billing.billing.errors import PeriodError
from warp_billing.billing.usage_lines import UsageWindow


def test_a_period_is_the_calendar_month_in_the_customers_zone():
    cycle = cycle_for("2026-11", timezone="America/New_York")
    assert (cycle.start, cycle.end, cycle.days, cycle.last_day) == (
        date(2026, 11, 1), date(2026, 12, 1), 30, date(2026, 11, 30))
    # 1 Nov 2026 00:00 in New York is still daylight time (UTC-4); 1 Dec is standard time (UTC-5).
    assert cycle.starts_at == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert cycle.ends_at == datetime(2026, 12, 1, 5, tzinfo=UTC)


def test_issue_date_is_the_first_day_after_the_period_and_due_date_adds_net_days():
    plan = plan_from(terms={"net_days": 15})
    cycle = plan_cycle(plan, "2026-11")
    assert cycle.issue_date == date(2026, 12, 1)
    assert cycle.due_date(plan.terms.net_days) == date(2026, 12, 16)
    assert cycle.due_date(0) == date(2026, 12, 1)


def test_february_cycles_have_28_or_29_days():
    assert cycle_for("2026-02").days == 28
    assert cycle_for("2028-02").days == 29
    assert cycle_for("2026-02").end == date(2026, 3, 1)


def test_a_mid_month_anchor_runs_from_the_anchor_to_the_day_before_the_next_one():
    cycle = plan_cycle(plan_from(terms={"anchor_day": 15, "net_days": 30}), "2026-11")
    assert (cycle.start, cycle.end, cycle.days) == (date(2026, 11, 15), date(2026, 12, 15), 30)
    assert cycle.issue_date == date(2026, 12, 15)          # the cycle closes on the 15th
    assert cycle.due_date(30) == date(2027, 1, 14)
    december = cycle.following()
    assert (december.start, december.end, december.days) == (date(2026, 12, 15), date(2027, 1, 15), 31)
    assert december.label == "2026-12"


def test_the_quarter_is_the_quarter_of_the_cycles_first_day():
    assert cycle_for("2026-03").quarter == (2026, 1)
    assert cycle_for("2026-04").quarter == (2026, 2)
    assert cycle_for("2026-03", anchor_day=15).quarter == (2026, 1)  # 15 Mar to 14 Apr


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "nov", "2026/11", ""])
def test_a_period_that_is_not_yyyy_mm_is_refused(text):
    with pytest.raises(PeriodError, match="YYYY-MM"):
        parse_period(text)


def test_overlap_days_count_active_days_inside_the_cycle():
    cycle = cycle_for("2026-11")
    assert cycle.overlap_days(date(2026, 11, 10), None) == 21
    assert cycle.overlap_days(date(2026, 11, 10), date(2026, 11, 20)) == 10
    assert cycle.overlap_days(date(2026, 1, 1), date(2026, 11, 1)) == 0
    assert cycle.overlap_days(date(2026, 12, 1), None) == 0


@pytest.mark.parametrize(
    ("start_time", "inside"),
    [
        ("2026-11-01T03:59:59Z", False),      # 31 Oct 23:59:59 in New York
        ("2026-11-01T04:00:00Z", True),
        ("2026-12-01T04:59:59Z", True),       # 30 Nov 23:59:59 EST
        ("2026-12-01T05:00:00Z", False),
        ("2026-11-01T00:00:00-04:00", True),  # offsets are honoured
        ("2026-10-31T23:59:59-04:00", False),
        ("2026-11-01T03:59:59", False),       # no offset = UTC
        ("2026-11-01T04:00:00.000+00:00", True),
    ],
)
def test_usage_belongs_to_the_cycle_by_start_time_in_the_customers_zone(start_time, inside):
    window = UsageWindow.for_cycle("ACME", cycle_for("2026-11", timezone="America/New_York"))
    assert window.contains(start_time) is inside

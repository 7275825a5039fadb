"""Time-of-day windows on the local wall clock, at their edges and across DST changes."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from tests.builders import plan_from

from warp_billing.rating.time_of_day import TimeOfDay

NEW_YORK = ZoneInfo("America/New_York")


def windows(yaml_windows: str) -> TimeOfDay:
    plan = plan_from(f"customer_id: X\ntimezone: America/New_York\nvoice:\n  deck: d.csv\n"
                     f"  time_of_day:\n{yaml_windows}")
    return TimeOfDay(plan.voice.time_of_day, plan.zone)


PEAK = windows('    - {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00", multiplier: "1.10"}\n')


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")


@pytest.mark.parametrize(
    "instant, expected",
    [
        ("2026-11-03T12:59:59", "1"),      # 07:59:59 EST Tuesday
        ("2026-11-03T13:00:00", "1.10"),   # 08:00:00 EST: window starts inclusive
        ("2026-11-03T22:59:59", "1.10"),   # 17:59:59
        ("2026-11-03T23:00:00", "1"),      # 18:00:00: end is exclusive
        ("2026-11-07T15:00:00", "1"),      # Saturday
    ],
)
def test_window_edges_are_from_inclusive_to_exclusive(instant, expected):
    assert PEAK.multiplier(utc(instant)) == Decimal(expected)


def test_utc_date_differs_from_local_date():
    # 2026-11-07T02:00Z is Friday 21:00 in New York: weekday windows use the local day
    late = windows('    - {days: [fri], from: "20:00", to: "22:00", multiplier: "0.80"}\n')
    assert late.multiplier(utc("2026-11-07T02:00:00")) == Decimal("0.80")


def test_dst_spring_forward_day_uses_the_new_offset():
    # 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT. 12:00Z is 08:00 EDT (07:00 if EST were assumed)
    sunday = windows('    - {days: [sun], from: "08:00", to: "09:00", multiplier: "1.50"}\n')
    assert sunday.multiplier(utc("2026-03-08T12:00:00")) == Decimal("1.50")
    assert sunday.multiplier(utc("2026-03-08T11:59:59")) == Decimal("1")
    # the week before (EST), 08:00 local is 13:00Z
    assert sunday.multiplier(utc("2026-03-01T13:00:00")) == Decimal("1.50")
    assert sunday.multiplier(utc("2026-03-01T12:00:00")) == Decimal("1")


def test_dst_fall_back_repeated_hour_is_inside_a_window_both_times():
    # 2026-11-01: 01:00-02:00 happens twice (EDT then EST)
    night = windows('    - {days: [sun], from: "01:00", to: "02:00", multiplier: "0.50"}\n')
    assert night.multiplier(utc("2026-11-01T05:30:00")) == Decimal("0.50")  # 01:30 EDT
    assert night.multiplier(utc("2026-11-01T06:30:00")) == Decimal("0.50")  # 01:30 EST
    assert night.multiplier(utc("2026-11-01T07:00:00")) == Decimal("1")     # 02:00 EST


def test_overnight_window_belongs_to_the_day_it_starts():
    overnight = windows('    - {days: [fri], from: "22:00", to: "06:00", multiplier: "0.70"}\n')
    assert overnight.multiplier(utc("2026-11-07T03:00:00")) == Decimal("0.70")   # Friday 22:00 EST
    assert overnight.multiplier(utc("2026-11-07T07:00:00")) == Decimal("0.70")   # Saturday 02:00
    assert overnight.multiplier(utc("2026-11-07T11:00:00")) == Decimal("1")      # Saturday 06:00
    assert overnight.multiplier(utc("2026-11-08T07:00:00")) == Decimal("1")      # Sunday 02:00 (Saturday start)


def test_whole_day_window_with_24_00_and_unquoted_yaml_times():
    weekend = windows("    - {days: [sat, sun], from: 00:00, to: \"24:00\", multiplier: \"0.90\"}\n")
    assert weekend.multiplier(utc("2026-11-08T04:59:59")) == Decimal("0.90")  # Saturday 23:59:59 EST
    assert weekend.multiplier(utc("2026-11-07T05:00:00")) == Decimal("0.90")  # Saturday 00:00


def test_first_matching_window_wins():
    both = windows(
        '    - {from: "08:00", to: "18:00", multiplier: "1.10"}\n'
        '    - {from: "00:00", to: "24:00", multiplier: "0.50"}\n'
    )
    assert both.multiplier(utc("2026-11-03T15:00:00")) == Decimal("1.10")
    assert both.multiplier(utc("2026-11-03T03:00:00")) == Decimal("0.50")

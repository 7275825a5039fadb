"""Billing cycles: the days a period covers in the customer's zone, and its dates.

A period is named by the month its cycle starts in. With the default anchor day 1,
``2026-11`` is the calendar month of November 2026 in the customer's time zone. With
``terms.anchor_day: 15`` it runs from 15 November to 14 December inclusive, and the
invoice is issued ("the cycle closes") on 15 December.

Dates follow the convention of the rate deck's ``end_date`` (contracts.md section 1):
an end is the first day no longer included. So a cycle is ``[start, end)``:

* ``period.start`` = the first day of the cycle, ``period.end`` = the first day after it;
* ``issue_date`` = ``period.end`` (the day the cycle closes, in the customer's zone);
* ``due_date`` = ``issue_date`` + ``terms.net_days``.

A usage event belongs to the cycle whose ``[start 00:00, end 00:00)`` in the customer's
zone contains its ``start_time``; the UTC bounds follow daylight-saving changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..plan import Plan
from ..timeutil import UTC
from .errors import PeriodError

PERIOD_PATTERN = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, slots=True)
class BillingCycle:
    """One billing period of one customer.

    Attributes:
        label: the period as written on the command line ("2026-11").
        start: first day of the cycle (local date in ``timezone``).
        end: first day after the cycle; also the issue date.
        timezone: IANA zone name of the customer.
        anchor_day: day of the month the cycle starts on.
    """

    label: str
    start: date
    end: date
    timezone: str
    anchor_day: int = 1

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def issue_date(self) -> date:
        return self.end

    def due_date(self, net_days: int, issued: date | None = None) -> date:
        return (issued or self.issue_date) + timedelta(days=net_days)

    @property
    def starts_at(self) -> datetime:
        """The first instant of the cycle, in UTC."""
        return datetime.combine(self.start, time(0), tzinfo=self.zone).astimezone(UTC)

    @property
    def ends_at(self) -> datetime:
        """The first instant after the cycle, in UTC."""
        return datetime.combine(self.end, time(0), tzinfo=self.zone).astimezone(UTC)

    @property
    def quarter(self) -> tuple[int, int]:
        """(year, quarter) of the cycle's first day: the quarter the period falls in."""
        return self.start.year, (self.start.month - 1) // 3 + 1

    def following(self) -> BillingCycle:
        """The next cycle of the same customer."""
        year, month = _shift(self.start.year, self.start.month, 1)
        return cycle_for(f"{year:04d}-{month:02d}", timezone=self.timezone, anchor_day=self.anchor_day)

    def overlap_days(self, start: date, end: date | None) -> int:
        """Days of ``[start, end)`` (``end`` None = open) that fall inside the cycle."""
        first = max(start, self.start)
        after = self.end if end is None else min(end, self.end)
        return max(0, (after - first).days)


def parse_period(text: str) -> tuple[int, int]:
    """(year, month) of a period written YYYY-MM."""
    match = PERIOD_PATTERN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise PeriodError(f"period {text!r} is not a month written YYYY-MM (e.g. 2026-11)")
    return int(match.group(1)), int(match.group(2))


def cycle_for(period: str, *, timezone: str = "UTC", anchor_day: int = 1) -> BillingCycle:
    """The cycle named ``period`` for a customer in ``timezone`` whose cycles start on ``anchor_day``."""
    year, month = parse_period(period)
    if not 1 <= anchor_day <= 28:
        raise PeriodError(f"anchor day {anchor_day} must be from 1 to 28 (every month has it)")
    next_year, next_month = _shift(year, month, 1)
    return BillingCycle(
        label=f"{year:04d}-{month:02d}",
        start=date(year, month, anchor_day),
        end=date(next_year, next_month, anchor_day),
        timezone=timezone,
        anchor_day=anchor_day,
    )


def plan_cycle(plan: Plan, period: str) -> BillingCycle:
    """The cycle ``period`` of the customer ``plan`` describes (zone and anchor from the plan)."""
    return cycle_for(period, timezone=plan.timezone, anchor_day=plan.terms.anchor_day)


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1

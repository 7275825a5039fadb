"""Time-of-day multipliers by the call's local start time in the plan's zone.

Windows are [from, to) on the local wall clock, for the listed start days. A window whose
``to`` is not after its ``from`` runs past midnight: its after-midnight part belongs to the
day it started (a Friday 22:00-06:00 window covers Saturday 02:00). Local time comes from
zoneinfo, so DST changes are handled by the zone rules rather than by fixed offsets.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from ..plan import WEEKDAYS, TimeOfDayWindow

ONE = Decimal(1)


class TimeOfDay:
    __slots__ = ("_zone", "_windows")

    def __init__(self, windows: Iterable[TimeOfDayWindow], zone: ZoneInfo):
        self._zone = zone
        self._windows = tuple(
            (frozenset(WEEKDAYS.index(day) for day in window.days), window.start_s, window.end_s, window.multiplier)
            for window in windows
        )

    def __bool__(self) -> bool:
        return bool(self._windows)

    def multiplier(self, instant: datetime) -> Decimal:
        """The first matching window's multiplier, or 1."""
        local = instant.astimezone(self._zone)
        weekday = local.weekday()
        second = local.hour * 3600 + local.minute * 60 + local.second
        for days, start, end, multiplier in self._windows:
            if start < end:
                if start <= second < end and weekday in days:
                    return multiplier
            else:  # runs past midnight
                if second >= start and weekday in days:
                    return multiplier
                if second < end and (weekday - 1) % 7 in days:
                    return multiplier
        return ONE

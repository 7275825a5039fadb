"""Time for charging decisions: integer epoch milliseconds and ISO 8601 instants (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SystemClock:
    """The instance's wall clock (NTP-synchronised on Google Cloud)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now_iso(self) -> str:
        return iso_from_ms(self.now_ms())


def iso_from_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC instant with milliseconds ("...T12:00:00.000+00:00")."""
    return (EPOCH + timedelta(milliseconds=epoch_ms)).isoformat(timespec="milliseconds")


def ms_from_datetime(instant: datetime) -> int:
    """An aware datetime as integer epoch milliseconds (exact, no float)."""
    delta = instant - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000

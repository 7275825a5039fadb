"""Voice by destination: the invoice's table of the top destinations by amount, plus "All other".

Each row sums the rated voice lines of one deck destination (the ``destination`` a rated
line carries): calls, billed minutes, amount and the average rate per minute. The amounts
are the exact per-event sums rounded once to cents per row; the table explains the voice
lines above it and is not itself billed (its rows may differ from a line by rounding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ..money import round_micro
from .amounts import cents, exact, minutes_text, money_text, to_exact_decimal
from .usage_lines import SECONDS_PER_MINUTE, UsageTotals

TOP_DESTINATIONS = 20
ALL_OTHER = "All other destinations"
UNNAMED = "(destination not named in the deck)"


@dataclass(frozen=True, slots=True)
class DestinationRow:
    """One row of the table: ``average_rate`` = amount / minutes (6 places), None without minutes."""

    destination: str
    calls: int
    billed_seconds: int
    amount: Decimal

    @property
    def minutes(self) -> Fraction:
        return Fraction(self.billed_seconds, SECONDS_PER_MINUTE)

    def to_record(self, exact_amount: Fraction) -> dict[str, Any]:
        average = None
        if self.billed_seconds:
            average = format(round_micro(to_exact_decimal(exact_amount / self.minutes)), "f")
        return {"destination": self.destination, "calls": self.calls, "minutes": minutes_text(self.minutes),
                "billed_seconds": self.billed_seconds, "amount": money_text(self.amount), "average_rate": average}


def destination_table(destinations: Mapping[str, UsageTotals], top: int = TOP_DESTINATIONS) -> list[dict[str, Any]]:
    """The top ``top`` destinations by exact amount (ties by name), then one "All other" row."""
    ranked = sorted(destinations.items(), key=lambda item: (-item[1].amount, str(item[0])))
    rows = []
    for name, totals in ranked[:top]:
        row = DestinationRow(str(name) or UNNAMED, totals.events, totals.units, cents(totals.amount))
        rows.append(row.to_record(exact(totals.amount)))
    rest = ranked[top:]
    if rest:
        total = UsageTotals()
        for _, totals in rest:
            total = total + totals
        row = DestinationRow(f"{ALL_OTHER} ({len(rest):,})", total.events, total.units, cents(total.amount))
        rows.append(row.to_record(exact(total.amount)))
    return rows

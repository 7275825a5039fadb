"""What an engine hands back after loading and matching: plain values for the pure analysis."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class LoadReport:
    """Vendor rows loaded, and rows kept aside by reason code (accepted = loaded + rejected).

    Attributes:
        loaded: normalised rows that take part in the match.
        rejected: rows refused, by reason (BAD_START_TIME, BAD_NUMBER, BAD_DURATION, BAD_COST,
            BAD_CURRENCY, OUT_OF_PERIOD).
    """

    loaded: int
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return self.loaded + sum(self.rejected.values())


@dataclass
class MatchOutcome:
    """The result of the matching query, reduced to what the analysis needs.

    Attributes:
        aggregates: (dest, class, items, our_ms, their_ms, our_cost, their_cost) per destination and class.
        exceptions: every item that is not ``exact`` (dicts keyed by ``ITEM_COLUMNS``).
        offset_pairs: unpaired vendor / our records of the same numbers within a day (``offset_query``).
        paired_per_day: paired items per (dest, UTC day of our start).
    """

    aggregates: list[tuple[str, str, int, int, int, Decimal, Decimal]]
    exceptions: list[dict]
    offset_pairs: list[dict]
    paired_per_day: dict[tuple[str, str], int]

"""Take-or-pay voice commitments (contracts.md section 6).

* ``VOICE-COMMIT-SHORTFALL``: when the month's billed minutes are below the commitment,
  the unmet minutes x ``shortfall_rate``.
* ``VOICE-COMMIT-REBATE`` (negative): when the month's minutes exceed the commitment,
  ``rebate_above_pct`` % of the voice usage after the tier adjustment (the exact tiered
  price when the plan has tiers, else the exact per-event voice total).

The commitment applies on the days ``[start, end)``: a cycle wholly outside them has no
commitment line, and a cycle partly inside commits ``minutes`` x days inside / days of the
cycle (exact). A month exactly at the (prorated) commitment has neither line. Each amount
is exact until its one rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from ..plan import Commitment
from .amounts import cents, exact, minutes_text, percent_of
from .cycles import BillingCycle

SHORTFALL_SKU = "VOICE-COMMIT-SHORTFALL"
REBATE_SKU = "VOICE-COMMIT-REBATE"


@dataclass(frozen=True, slots=True)
class CommitmentOutcome:
    """The commitment line a month produces (None when the month is exactly at it).

    Attributes:
        sku: SHORTFALL_SKU or REBATE_SKU.
        quantity: unmet minutes (shortfall) or the month's minutes (rebate).
        amount: rounded once to cents; negative for a rebate.
    """

    sku: str
    description: str
    quantity: Fraction
    amount: Decimal


def committed_minutes(commitment: Commitment, cycle: BillingCycle) -> Fraction:
    """The minutes committed for ``cycle``: prorated by day over the days inside ``[start, end)``."""
    days = cycle.overlap_days(commitment.start, commitment.end)
    return Fraction(commitment.minutes) * Fraction(days, cycle.days)


def commitment_outcome(
    commitment: Commitment, cycle: BillingCycle, minutes: Fraction, voice_after_tiers: Fraction | Decimal
) -> CommitmentOutcome | None:
    """The cycle's shortfall or rebate line; None outside the commitment's days or exactly at it."""
    days = cycle.overlap_days(commitment.start, commitment.end)
    if days == 0:
        return None
    committed = committed_minutes(commitment, cycle)
    scope = f"{commitment.minutes:,} minutes a month"
    if days != cycle.days:
        scope += f", {days}/{cycle.days} days = {minutes_text(committed)} minutes"
    if minutes < committed:
        unmet = committed - minutes
        return CommitmentOutcome(
            SHORTFALL_SKU,
            f"Commitment shortfall: {scope} committed, unmet minutes at {commitment.shortfall_rate}",
            unmet,
            cents(unmet * exact(commitment.shortfall_rate)),
        )
    if minutes > committed and commitment.rebate_above_pct > 0:
        return CommitmentOutcome(
            REBATE_SKU,
            f"Commitment rebate: {commitment.rebate_above_pct}% of voice usage above a commitment of {scope}",
            minutes,
            cents(-percent_of(voice_after_tiers, commitment.rebate_above_pct)),
        )
    return None


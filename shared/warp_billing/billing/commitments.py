"""Take-or-pay voice commitments (contracts.md section 6).

* ``VOICE-COMMIT-SHORTFALL``: when the month's billed minutes are below the commitment,
  the unmet minutes x ``shortfall_rate``.
* ``VOICE-COMMIT-REBATE`` (negative): when the month's minutes exceed the commitment,
  ``rebate_above_pct`` % of the voice usage after the tier adjustment (the exact tiered
  price when the plan has tiers, else the exact per-event voice total).

A month exactly at the commitment has neither line. The commitment is monthly and is not
prorated for an anchored or partial cycle. Each amount is exact until its one rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from ..plan import Commitment
from .amounts import cents, exact, percent_of

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


def commitment_outcome(commitment: Commitment, minutes: Fraction,
                       voice_after_tiers: Fraction) -> CommitmentOutcome | None:
    committed = Fraction(commitment.minutes)
    if minutes < committed:
        unmet = committed - minutes
        return CommitmentOutcome(
            SHORTFALL_SKU,
            f"Commitment shortfall: {commitment.minutes:,} minutes committed, "
            f"unmet minutes at {commitment.shortfall_rate}",
            unmet,
            cents(unmet * exact(commitment.shortfall_rate)),
        )
    if minutes > committed and commitment.rebate_above_pct > 0:
        return CommitmentOutcome(
            REBATE_SKU,
            f"Commitment rebate: {commitment.rebate_above_pct}% of voice usage "
            f"above a {commitment.minutes:,}-minute commitment",
            minutes,
            cents(-percent_of(voice_after_tiers, commitment.rebate_above_pct)),
        )
    return None

"""Monthly volume tiers over the month's billed minutes (contracts.md sections 3 and 6).

``up_to`` is the inclusive upper bound of a band in minutes: with bands up to 1000 and up
to 10000, minute 1000 is in the first band and minute 1000.1 in the second.

* graduated: each band prices the minutes inside it at its own rate;
* retrospective: every minute is priced at the rate of the band the month's total reached.

The invoice shows one ``VOICE-TIER-ADJ`` line: the tiered price of all voice billed minutes
minus the exact per-event voice total it replaces, rounded once to cents.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from ..plan import TierBand, Tiers
from .amounts import cents, exact
from .usage_lines import UsageTotals

TIER_ADJUSTMENT_SKU = "VOICE-TIER-ADJ"


def graduated_price(bands: tuple[TierBand, ...], minutes: Fraction) -> Fraction:
    """Each band's minutes at that band's rate, exactly."""
    price = Fraction(0)
    lower = Fraction(0)
    for band in bands:
        upper = minutes if band.up_to is None else min(minutes, Fraction(band.up_to))
        if upper > lower:
            price += (upper - lower) * exact(band.rate)
        if band.up_to is None or minutes <= band.up_to:
            break
        lower = Fraction(band.up_to)
    else:  # the last band is bounded and the month went past it: it keeps its rate
        price += (minutes - lower) * exact(bands[-1].rate)
    return price


def reached_band(bands: tuple[TierBand, ...], minutes: Fraction) -> TierBand:
    """The band the month's total falls in (the last band for totals beyond every bound)."""
    for band in bands:
        if band.up_to is None or minutes <= band.up_to:
            return band
    return bands[-1]


def retrospective_price(bands: tuple[TierBand, ...], minutes: Fraction) -> Fraction:
    """Every minute at the rate of the band the total reached, exactly."""
    return minutes * exact(reached_band(bands, minutes).rate)


def tiered_price(tiers: Tiers, minutes: Fraction) -> Fraction:
    if tiers.mode == "graduated":
        return graduated_price(tiers.bands, minutes)
    return retrospective_price(tiers.bands, minutes)


def tier_adjustment(tiers: Tiers, voice: UsageTotals) -> tuple[Fraction, Decimal]:
    """(exact tiered price, adjustment in cents) for a month's voice totals."""
    minutes = Fraction(voice.units, 60)
    price = tiered_price(tiers, minutes)
    return price, cents(price - exact(voice.amount))


def tier_description(tiers: Tiers, minutes: Fraction) -> str:
    if tiers.mode == "graduated":
        return "Volume pricing (graduated tiers) of the month's voice minutes"
    band = reached_band(tiers.bands, minutes)
    return f"Volume pricing (all minutes at the reached tier, {band.rate} per minute)"

"""Monthly volume tiers over the month's billed minutes (contracts.md sections 3 and 6).

``up_to`` is the inclusive upper bound of a band in minutes: with bands up to 1000 and up
to 10000, minute 1000 is in the first band and minute 1000.1 in the second.

* graduated: each band prices the minutes inside it at its own rate;
* retrospective: every minute is priced at the rate of the band the month's total reached.

Tiers price the billed minutes of the voice lines named in ``tiers.applies_to`` (the
domestic jurisdictions by default; international is priced by its deck). The invoice shows
one ``VOICE-TIER-ADJ`` line (contracts.md section 6): the tiered price of those minutes
rounded once to cents, MINUS the sum of those lines as printed (each already rounded to
cents), so the printed lines always add up to the printed subtotal.
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


def tier_adjustment(tiers: Tiers, in_scope: UsageTotals, printed: Decimal) -> tuple[Decimal, Decimal]:
    """(tiered price in cents, adjustment in cents) for the in-scope voice totals.

    ``printed`` is the sum of the in-scope lines as printed (each rounded once to cents):
    the adjustment is what makes those lines plus it equal the tiered price on the page.
    """
    price = cents(tiered_price(tiers, Fraction(in_scope.units, 60)))
    return price, price - printed


def tier_description(tiers: Tiers, minutes: Fraction) -> str:
    """What the adjustment line says: the mode, the lines it reprices and (retrospective) the band rate."""
    lines = ", ".join(sku.removeprefix("VOICE-").lower() for sku in tiers.applies_to)
    if tiers.mode == "graduated":
        return f"Volume pricing, graduated tiers, of the month's {lines} voice minutes"
    band = reached_band(tiers.bands, minutes)
    return f"Volume pricing of the month's {lines} voice minutes at the reached tier, {band.rate} per minute"

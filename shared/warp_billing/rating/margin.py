"""Margin of an event: what is left of the price after vendor cost and overhead.

margin_pct = (amount - vendor_cost - overhead) / amount x 100, to 2 decimals half up;
``low_margin`` when it falls below the plan's alert threshold (a loss on a zero-priced
event is low margin too, when the plan sets a threshold). Null when there is no vendor cost to compare with.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ..money import ZERO

PCT_PLACES = Decimal("0.01")
HUNDRED = Decimal(100)


def margin(amount: Decimal, vendor_cost: Decimal | None, overhead: Decimal,
           alert_below_pct: Decimal | None) -> tuple[Decimal | None, bool]:
    """(margin_pct or None, low_margin)."""
    if vendor_cost is None:
        return None, False
    left = amount - vendor_cost - overhead
    if amount == 0:
        return None, alert_below_pct is not None and left < ZERO
    pct = (left * HUNDRED / amount).quantize(PCT_PLACES, rounding=ROUND_HALF_UP)
    return pct, alert_below_pct is not None and pct < alert_below_pct

"""API bulk discounts (contracts.md sections 3 and 6).

Once the month's count of a query type reaches ``bulk_discount.threshold`` (count >=
threshold), every query of that type that month is priced at the discounted price
(``percent`` off). The invoice keeps the per-event ``API-<TYPE>`` line and adds a negative
``API-<TYPE>-DISCOUNT`` line of ``percent`` % of the exact per-event total, rounded once.
"""

from __future__ import annotations

from decimal import Decimal

from ..plan import BulkDiscount
from .amounts import cents, percent_of
from .usage_lines import UsageTotals


def discount_sku(query_type: str) -> str:
    return f"API-{query_type.upper()}-DISCOUNT"


def bulk_discount(discount: BulkDiscount, totals: UsageTotals) -> Decimal | None:
    """The (negative) discount in cents, or None when the month stayed below the threshold."""
    if totals.units < discount.threshold:
        return None
    return cents(-percent_of(totals.amount, discount.percent))


def discount_description(query_type: str, discount: BulkDiscount) -> str:
    return f"{query_type.upper()} bulk discount: {discount.percent}% off at {discount.threshold:,} queries or more"

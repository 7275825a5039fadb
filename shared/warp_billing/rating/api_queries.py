"""Telco data API queries (LRN, CNAM dips): per-type price x count.

Bulk discounts depend on the month's total and are applied at cycle close, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..money import round_micro
from ..plan import ApiQueriesPlan
from . import events
from .rejections import Reason, Rejection


@dataclass(slots=True)
class ApiQuery:
    start: datetime
    query_type: str
    count: int

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ApiQuery:
        return cls(
            start=events.start_time(event),
            query_type=events.required_text(event, "query_type"),
            count=events.whole_number(event, "count", 1, events.MAX_QUERIES_PER_EVENT, default=1),
        )


class ApiQueryRater:
    def __init__(self, plan: ApiQueriesPlan):
        self._prices = plan.prices
        self._vendor_prices = plan.vendor_prices

    def price(self, query: ApiQuery) -> tuple[Decimal, Decimal]:
        """(unit price, amount) for the query."""
        unit = self._prices.get(query.query_type)
        if unit is None:
            raise Rejection(Reason.NO_RATE, f"query_type {query.query_type!r} is not priced by the plan")
        return unit, round_micro(unit * query.count)

    def vendor_cost(self, vendor_id: str, query: ApiQuery) -> Decimal | None:
        unit = self._vendor_prices.get(vendor_id, {}).get(query.query_type)
        return None if unit is None else round_micro(unit * query.count)

    def has_vendor(self, vendor_id: str) -> bool:
        return vendor_id in self._vendor_prices

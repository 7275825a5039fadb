"""The closing account of a rating run: counts by status and reason, totals by product.

Totals are exact sums of the per-event amounts (no rounding here). ``balanced`` states
the invariant operators rely on: accepted = rated + rejected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..money import ZERO, format_amount
from .rated_event import RatedEvent, RejectedEvent


@dataclass
class ProductTotal:
    events: int = 0
    billed_units: int = 0
    amount: Decimal = ZERO
    vendor_cost: Decimal = ZERO


@dataclass
class RatingSummary:
    accepted: int = 0
    rated: int = 0
    rejected: int = 0
    low_margin: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    products: dict[tuple[str, str], ProductTotal] = field(default_factory=dict)

    def add(self, result: RatedEvent | RejectedEvent) -> None:
        self.accepted += 1
        if isinstance(result, RejectedEvent):
            self.rejected += 1
            self.reasons[result.reason] += 1
            return
        self.rated += 1
        key = (result.kind, result.jurisdiction or result.direction or result.query_type or "-")
        total = self.products.get(key)
        if total is None:
            total = self.products[key] = ProductTotal()
        total.events += 1
        total.billed_units += result.billed_units
        total.amount += result.amount
        if result.vendor_cost is not None:
            total.vendor_cost += result.vendor_cost
        if result.low_margin:
            self.low_margin += 1

    @property
    def balanced(self) -> bool:
        return self.accepted == self.rated + self.rejected

    @property
    def total_amount(self) -> Decimal:
        return sum((total.amount for total in self.products.values()), ZERO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rated": self.rated,
            "rejected": self.rejected,
            "balanced": self.balanced,
            "low_margin": self.low_margin,
            "rejected_by_reason": dict(sorted(self.reasons.items())),
            "totals": [
                {
                    "product": kind,
                    "group": group,
                    "events": total.events,
                    "billed_units": total.billed_units,
                    "amount": format_amount(total.amount),
                    "vendor_cost": format_amount(total.vendor_cost),
                }
                for (kind, group), total in sorted(self.products.items())
            ],
            "total_amount": format_amount(self.total_amount),
        }

    def render(self) -> str:
        lines = [
            f"accepted {self.accepted:,} = rated {self.rated:,} + rejected {self.rejected:,}"
            + ("" if self.balanced else "  (UNBALANCED)"),
        ]
        if self.reasons:
            lines.append("rejected by reason:")
            lines.extend(f"  {reason:<22} {count:>10,}" for reason, count in sorted(self.reasons.items()))
        if self.products:
            lines.append("totals by product:")
            lines.append(f"  {'product':<10} {'group':<14} {'events':>10} {'billed units':>14} {'amount':>18} "
                         f"{'vendor cost':>18}")
            for (kind, group), total in sorted(self.products.items()):
                lines.append(
                    f"  {kind:<10} {group:<14} {total.events:>10,} {total.billed_units:>14,} "
                    f"{format_amount(total.amount):>18} {format_amount(total.vendor_cost):>18}"
                )
            lines.append(f"  {'total':<25} {self.rated:>10,} {'':>14} {format_amount(self.total_amount):>18}")
        if self.low_margin:
            lines.append(f"low-margin events: {self.low_margin:,}")
        return "\n".join(lines)

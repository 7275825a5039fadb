"""What a cycle close asks a rated-usage source for, and what comes back (values only).

A close of customer C for cycle P has a *watermark* W: usage written after W is left for the
next cycle. Usage of an earlier cycle written after that cycle's own watermark (late usage)
is billed now, on prior-period lines naming their service period. With the watermarks
chained (each close reads the previous close's W), every rated event lands on exactly one
document:

* start in P, written at or before W(P)          -> P's document, regular lines;
* start in P, written after W(P)                 -> P+1's document, a prior-period line;
* start before P, written in (W(P-1), W(P)]      -> P's document, a prior-period line.

A first close (no previous watermark) bills no prior-period usage. A source without write
times (a rated JSONL file) has no late usage: everything in the file is as of its writing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..money import EXACT, ZERO
from ..products import product, products
from .cycles import BillingCycle
from .errors import BillingError
from .usage_lines import CustomerUsage, ScanReport


class UnbillableUsageError(BillingError):
    """Rated usage of a customer that no invoice line can carry (unknown kind or sub-kind)."""


@dataclass(frozen=True)
class CloseWindow:
    """One customer's cycle to close and the watermarks bounding its usage.

    Attributes:
        cycle: the cycle being closed (zone and anchor day of the customer).
        watermark: usage written after this instant is left for the next cycle.
        previous_watermark: the previous cycle's watermark (None: first close, no late usage).
    """

    customer_id: str
    cycle: BillingCycle
    watermark: datetime
    previous_watermark: datetime | None = None


@dataclass(frozen=True)
class CloseUsage:
    """One customer's usage for a close: the cycle's own and the late usage of earlier cycles.

    Attributes:
        current: the cycle's usage.
        prior: late usage by the label of the cycle it belongs to ("2026-10").
        rated_amount, rated_events: the same selection summed independently by the source from
            its raw rows (the conservation check); None when the source has no independent sum.
        conflicts: event_ids written more than once with different amounts (raw-data check).
    """

    customer_id: str
    current: CustomerUsage
    prior: Mapping[str, CustomerUsage] = field(default_factory=dict)
    rated_amount: Decimal | None = None
    rated_events: int | None = None
    conflicts: int = 0

    @property
    def billed_amount(self) -> Decimal:
        """Exact sum of every usage group billed (current + prior), not rounded."""
        total = ZERO
        for usage in (self.current, *self.prior.values()):
            for totals in usage.groups.values():
                total = EXACT.add(total, totals.amount)
        return total

    @property
    def events(self) -> int:
        return self.current.events + self.late_events

    @property
    def late_events(self) -> int:
        return sum(usage.events for usage in self.prior.values())

    @property
    def conserved(self) -> bool | None:
        """Billed = rated to the micro-unit and event for event (None: nothing to compare with)."""
        if self.rated_amount is None:
            return None
        return (self.billed_amount == self.rated_amount and self.events == self.rated_events
                and self.conflicts == 0)


@dataclass
class UsageBatch:
    """What a source returned for a set of windows.

    Attributes:
        usage: by customer (every window's customer is present, empty when it had no usage).
        failures: customers whose usage cannot be billed, with the reason (their close fails).
        rows_returned: result rows the source handed to Python (lines, not events).
        report: what a file pass saw (files source only).
    """

    usage: dict[str, CloseUsage]
    failures: dict[str, BillingError] = field(default_factory=dict)
    rows_returned: int = 0
    report: ScanReport | None = None


def check_group(kind: str, sub: str | None) -> None:
    """Refuse a usage group that no invoice line carries (the product table's rule, as the file scan)."""
    item = product(kind)
    if item is None:
        raise UnbillableUsageError(f"kind {kind!r} is not billable ({', '.join(p.kind for p in products())})")
    problem = item.group_problem(sub)
    if problem is not None:
        raise UnbillableUsageError(problem)

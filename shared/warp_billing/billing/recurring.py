"""Monthly recurring charges (DIDs, toll-free numbers), prorated by day.

A charge is active on the days ``[start, end)``: ``start`` is the first day billed and
``end`` (optional) the first day no longer billed, the convention of deck ``end_date``. A
charge's cost for a cycle is ``quantity x unit_price x active days / days in the cycle``,
kept exact and rounded once on its line.

Timing:

* ``arrears`` (default): the invoice of a cycle bills that cycle's active days.
* ``advance``: the invoice of a cycle bills the *next* cycle's active days (service
  ``[next.start, next.end)`` clipped to the charge). The first invoice of a charge also
  bills its first cycle: the invoice of the cycle containing ``start`` bills the days
  ``[start, cycle end)`` (a partial month when the charge starts after the first day)
  together with the next cycle in advance. Every active day is thus billed exactly once:
  a cycle's days are on the previous cycle's invoice, except for the cycle the charge
  starts in, whose days are on its own invoice.

Each line carries ``service_start`` and ``service_end`` (exclusive) and the day counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from ..plan import RecurringCharge
from .amounts import cents, exact
from .cycles import BillingCycle

CURRENT = "recurring"
ADVANCE = "recurring_advance"


@dataclass(frozen=True, slots=True)
class RecurringLine:
    """A recurring charge for one service period.

    Attributes:
        category: CURRENT (service inside the invoiced cycle) or ADVANCE (the next cycle).
        service_start, service_end: the days billed, ``[start, end)``.
        active_days, period_days: the proration (active days / days of the service cycle).
    """

    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    category: str
    service_start: date
    service_end: date
    active_days: int
    period_days: int


def prorated(charge: RecurringCharge, cycle: BillingCycle) -> Fraction:
    """The exact charge for the active days of ``cycle``."""
    days = cycle.overlap_days(charge.start, charge.end)
    return Fraction(charge.quantity) * exact(charge.unit_price) * Fraction(days, cycle.days)


def recurring_lines(charges: tuple[RecurringCharge, ...], cycle: BillingCycle) -> list[RecurringLine]:
    """The recurring lines of the invoice closing ``cycle``, in plan order."""
    lines: list[RecurringLine] = []
    following = cycle.following()
    for charge in charges:
        if charge.quantity == 0:
            continue
        if charge.timing == "arrears":
            _append(lines, charge, cycle, CURRENT)
            continue
        if cycle.start <= charge.start < cycle.end:
            _append(lines, charge, cycle, CURRENT)
        if charge.start < following.start:
            _append(lines, charge, following, ADVANCE)
    return lines


def _append(lines: list[RecurringLine], charge: RecurringCharge, service: BillingCycle, category: str) -> None:
    days = service.overlap_days(charge.start, charge.end)
    if days == 0:
        return
    first = max(charge.start, service.start)
    after = service.end if charge.end is None else min(charge.end, service.end)
    last = after - timedelta(days=1)
    description = f"{charge.description or charge.sku}, {first.isoformat()} to {last.isoformat()}"
    if days != service.days:
        description += f" ({days}/{service.days} days)"
    if category == ADVANCE:
        description += ", in advance"
    lines.append(RecurringLine(
        charge.sku, description, charge.quantity, charge.unit_price, cents(prorated(charge, service)),
        category, first, after, days, service.days,
    ))


def active_numbers(charges: tuple[RecurringCharge, ...], cycle: BillingCycle) -> int:
    """Numbers in service on at least one day of ``cycle`` (charges marked e911), whatever their timing."""
    return sum(charge.quantity for charge in charges
               if charge.e911 and cycle.overlap_days(charge.start, charge.end) > 0)

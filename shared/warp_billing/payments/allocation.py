"""Where a payment's money goes, and what a reversal takes back (pure, Decimal cents).

A prepaid payment goes to the balance (target ``@prepaid``). A postpaid payment goes first to the
invoice it names (when that invoice is open), then to the customer's other open invoices oldest
first (issue date, then number), and what is left is the customer's credit balance (target
``@credit``). A reversal (refund, void) takes back from the credit balance first, then from the
invoices in the reverse order of application, so a full refund or a void undoes exactly what the
payment did and a partial refund reopens the most recently paid invoice first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

PREPAID = "@prepaid"
CREDIT = "@credit"
ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Application:
    """``amount`` of a payment on ``target``: an invoice number, ``@credit`` or ``@prepaid``."""

    target: str
    amount: Decimal

    @property
    def is_invoice(self) -> bool:
        return not self.target.startswith("@")


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """An invoice that can take payments: what was billed net of credit notes (payments aside)."""

    number: str
    issue_date: date
    billed: Decimal


def allocate(amount: Decimal, invoices: Sequence[OpenInvoice], paid: Mapping[str, Decimal],
             named: str | None = None, told: Sequence[Application] = ()) -> tuple[Application, ...]:
    """Apply ``amount`` to ``invoices`` given what ``paid`` already covers; the rest to ``@credit``.

    ``told``: amounts the payer applied to given invoices (a payment recorded in NetSuite), honoured
    first as far as each invoice is open, before the named invoice and the oldest-first rule.
    """
    if amount <= 0:
        raise ValueError(f"a payment must be positive, not {amount}")
    ordered = sorted(invoices, key=lambda invoice: (invoice.issue_date, invoice.number))
    if named is not None:
        ordered = sorted(ordered, key=lambda invoice: invoice.number != named)  # stable: the named one first
    left = amount
    applied: list[Application] = []
    by_number = {invoice.number: invoice for invoice in invoices}
    covered = dict(paid)
    for item in told:
        invoice = by_number.get(item.target)
        if invoice is None or left <= 0 or item.amount <= 0:
            continue
        take = min(item.amount, invoice.billed - covered.get(invoice.number, ZERO), left)
        if take > 0:
            applied.append(Application(invoice.number, take))
            covered[invoice.number] = covered.get(invoice.number, ZERO) + take
            left -= take
    paid = covered
    for invoice in ordered:
        due = invoice.billed - paid.get(invoice.number, ZERO)
        if left <= 0:
            break
        if due <= 0:
            continue
        take = min(due, left)
        applied.append(Application(invoice.number, take))
        left -= take
    if left > 0:
        applied.append(Application(CREDIT, left))
    return net(applied)


def reverse(applications: Sequence[Application], amount: Decimal | None) -> tuple[Application, ...]:
    """What reversing ``amount`` (None: everything left) of a payment takes back, as negative applications.

    ``applications`` are what is left of the payment (net of earlier reversals), in application order.
    """
    left_total = sum((item.amount for item in applications), ZERO)
    wanted = left_total if amount is None else amount
    if wanted <= 0 or wanted > left_total:
        raise ValueError(f"cannot reverse {wanted} of a payment of which {left_total} is left")
    credit_first = [item for item in applications if item.target == CREDIT] + \
        [item for item in reversed(applications) if item.target != CREDIT]
    taken: list[Application] = []
    for item in credit_first:
        if wanted <= 0:
            break
        take = min(item.amount, wanted)
        if take > 0:
            taken.append(Application(item.target, -take))
            wanted -= take
    return tuple(taken)


def net(applications: Sequence[Application]) -> tuple[Application, ...]:
    """Applications summed by target in first-application order, zero targets dropped."""
    totals: dict[str, Decimal] = {}
    for item in applications:
        totals[item.target] = totals.get(item.target, ZERO) + item.amount
    return tuple(Application(target, total) for target, total in totals.items() if total != 0)

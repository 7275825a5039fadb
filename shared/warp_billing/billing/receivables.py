"""What a customer owes, from the register: each invoice's standing and an invoice's account box.

The register holds issued invoices and credit notes; the payment store supplies the payments
applied to them (``PaymentApplication`` values, net of refunds and voids). For each invoice:

* ``issued``: its total; ``credited``: the credit notes that credit it (as positive amounts);
  ``paid``: the payments applied to it; ``balance_due`` = issued - credited - paid;
* ``status``: ``credited`` (cancelled in full by a credit note), ``paid`` (nothing left),
  ``overdue`` (something left after the due date) or ``open``. A dispute's partial credit note
  (its lines carry a ``dispute_id``) lowers the balance due but does not cancel the invoice;
* ``days_overdue``: days past the due date while something is left (the collections aging).

The account box printed on an invoice (previous balance, payments received, credits,
balance due) is what a carrier's invoice shows: the balance left on the earlier invoices
when the previous one was issued, what was paid and credited since, and the new charges.
A credit note issued together with a rebill (the rebill ``replaces`` the credited invoice)
is a credit on the rebill; any other credit note counts on the next invoice issued after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from .amounts import money_text
from .invoice import CREDIT_NOTE, INVOICE, Invoice

ZERO_CENTS = Decimal("0.00")
OPEN, PAID, OVERDUE, CREDITED = "open", "paid", "overdue", "credited"
STATUSES = (OPEN, PAID, OVERDUE, CREDITED)


@dataclass(frozen=True, slots=True)
class PaymentApplication:
    """A payment (or part of one) applied to one invoice, net of its refunds and voids."""

    payment_id: str
    invoice_number: str
    amount: Decimal
    received_on: date


@dataclass(frozen=True, slots=True)
class InvoiceStanding:
    """One issued invoice as collections sees it on ``as_of``."""

    invoice: Invoice
    credited: Decimal
    paid: Decimal
    credit_notes: tuple[str, ...]
    as_of: date
    cancelled: bool = False    # a credit note cancels it in full (not only a dispute's partial credit)

    @property
    def issued(self) -> Decimal:
        return self.invoice.total

    @property
    def balance_due(self) -> Decimal:
        return self.issued - self.credited - self.paid

    @property
    def status(self) -> str:
        if self.cancelled or (self.credit_notes and self.credited == self.issued):
            return CREDITED
        if self.balance_due <= 0:
            return PAID
        return OVERDUE if self.as_of > self.invoice.due_date else OPEN

    @property
    def days_overdue(self) -> int:
        if self.balance_due <= 0:
            return 0
        return max(0, (self.as_of - self.invoice.due_date).days)

    def to_record(self) -> dict[str, Any]:
        invoice = self.invoice
        return {
            "invoice_number": invoice.number, "customer_id": invoice.customer_id,
            "billing_period": invoice.cycle.label, "document_type": invoice.document_type,
            "issue_date": invoice.issue_date.isoformat(), "due_date": invoice.due_date.isoformat(),
            "currency": invoice.currency, "issued": money_text(self.issued), "credited": money_text(self.credited),
            "paid": money_text(self.paid), "balance_due": money_text(self.balance_due), "status": self.status,
            "days_overdue": self.days_overdue, "credit_notes": list(self.credit_notes), "replaces": invoice.replaces,
            "as_of": self.as_of.isoformat(),
        }


def standings(documents: Sequence[Invoice], as_of: date,
              payments: Sequence[PaymentApplication] = ()) -> list[InvoiceStanding]:
    """Every invoice among ``documents`` (one customer's, or several) with what is left to pay."""
    credited: dict[str, Decimal] = {}
    notes: dict[str, list[str]] = {}
    cancelled: set[str] = set()
    for document in documents:
        if document.document_type == CREDIT_NOTE and document.credits:
            credited[document.credits] = credited.get(document.credits, ZERO_CENTS) - document.total
            notes.setdefault(document.credits, []).append(str(document.number))
            if cancels_in_full(document):
                cancelled.add(document.credits)
    paid: dict[str, Decimal] = {}
    for payment in payments:
        if payment.received_on <= as_of:
            paid[payment.invoice_number] = paid.get(payment.invoice_number, ZERO_CENTS) + payment.amount
    return [
        InvoiceStanding(document, credited.get(str(document.number), ZERO_CENTS),
                        paid.get(str(document.number), ZERO_CENTS), tuple(notes.get(str(document.number), ())), as_of,
                        str(document.number) in cancelled)
        for document in documents if document.document_type == INVOICE
    ]


def cancels_in_full(note: Invoice) -> bool:
    """A credit note that cancels its invoice in full (not a dispute's partial credit, whose lines carry a
    ``dispute_id``)."""
    return not any(dict(line.details).get("dispute_id") for line in note.lines)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """The account box of one invoice (all in cents; credits and payments negative)."""

    previous_balance: Decimal
    payments: Decimal
    credits: Decimal
    current_charges: Decimal

    @property
    def balance_forward(self) -> Decimal:
        return self.previous_balance + self.payments + self.credits

    @property
    def amount_due(self) -> Decimal:
        return self.balance_forward + self.current_charges

    def to_record(self) -> dict[str, Any]:
        return {"previous_balance": money_text(self.previous_balance), "payments": money_text(self.payments),
                "credits": money_text(self.credits), "balance_forward": money_text(self.balance_forward),
                "current_charges": money_text(self.current_charges), "amount_due": money_text(self.amount_due)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AccountSummary:
        return cls(Decimal(record["previous_balance"]), Decimal(record["payments"]), Decimal(record["credits"]),
                   Decimal(record["current_charges"]))


def account_summary(invoice: Invoice, earlier: Sequence[Invoice], credit_notes: Sequence[Invoice],
                    payments: Sequence[PaymentApplication] = ()) -> AccountSummary:
    """The account box of ``invoice`` given the customer's earlier invoices and its credit notes.

    ``earlier`` are the invoices issued before it; ``credit_notes`` may include one issued with it.
    """
    rebill_of = {str(other.replaces): str(other.number) for other in (*earlier, invoice) if other.replaces}
    earlier_numbers = {str(other.number) for other in earlier}
    previous_date = max((other.issue_date for other in earlier), default=None)
    previous = sum((other.total for other in earlier), ZERO_CENTS)
    credits = ZERO_CENTS
    for note in credit_notes:
        attached_to = rebill_of.get(str(note.credits))
        if attached_to in earlier_numbers or (attached_to is None and previous_date is not None
                                              and note.issue_date < previous_date):
            previous += note.total       # already netted on an earlier invoice's page
        else:
            credits += note.total
    paid_before = paid_since = ZERO_CENTS
    for payment in payments:
        if previous_date is not None and payment.received_on < previous_date:
            paid_before += payment.amount
        elif payment.received_on <= invoice.issue_date:
            paid_since += payment.amount
    return AccountSummary(previous - paid_before, -paid_since, credits, invoice.total)

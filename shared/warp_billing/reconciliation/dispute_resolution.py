"""Resolving a customer's dispute of an invoice line, on the ports: the invoice register
(``CloseRegister``) and the dispute store (``DisputeStore``).

* open: the line must be on an issued invoice of the customer and not already under a live dispute;
  the store numbers the dispute (gapless per customer) and keeps it in one step;
* accept: only a dispute under review; the credit note goes through the register's ``credit_line``
  (once per dispute id, with its credit memo in the register's ERP outbox), then the dispute
  records it. Both happen inside the store's ``change``: a repeat after a crash finds the same
  note, and an accept that finds the dispute no longer under review issues nothing;
* review and reject move the dispute (a rejection keeps its reason).

Errors: ``DisputeError`` (the dispute or the request) and ``InvoiceRegisterError`` (the register
refused the credit), both naming the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from ..billing.invoice import INVOICE
from ..billing.invoice_store import INVOICE_SEPARATOR, invoice_customer
from ..ports import CloseRegister, DisputeStore
from .customer_disputes import ACCEPTED, REJECTED, UNDER_REVIEW, CustomerDispute, DisputeError, open_dispute


def open_line_dispute(register: CloseRegister, disputes: DisputeStore, invoice_number: str, sku: str,
                      amount: Decimal | None, reason: str, now: datetime) -> CustomerDispute:
    """Open a dispute of the ``sku`` line of issued invoice ``invoice_number`` (default: all of the line)."""
    customer_id = invoice_customer(invoice_number)
    invoice = next((doc for doc in register.documents(customer_id)
                    if doc.number == invoice_number and doc.document_type == INVOICE), None) if customer_id else None
    if invoice is None:
        raise DisputeError(f"no issued invoice {invoice_number}")
    line = next((line for line in invoice.lines if line.sku == sku), None)
    if line is None:
        raise DisputeError(f"{invoice_number} has no line {sku} (lines: {', '.join(e.sku for e in invoice.lines)})")

    def make(dispute_id: str, existing: Sequence[CustomerDispute]) -> CustomerDispute:
        live = [d for d in existing if d.invoice_number == invoice_number and d.sku == sku
                and d.status not in (ACCEPTED, REJECTED)]
        if live:
            raise DisputeError(f"{invoice_number} {sku} is already disputed: {live[0].dispute_id} ({live[0].status})")
        return open_dispute(dispute_id, customer_id, invoice_number, sku, line.amount, amount, reason, now)

    return disputes.open(customer_id, make)


def move_dispute(disputes: DisputeStore, dispute_id: str, status: str, note: str, now: datetime) -> CustomerDispute:
    """Move a dispute to ``status`` (under_review, or rejected with ``note`` as its reason)."""
    if status == ACCEPTED:
        raise DisputeError("a dispute is accepted with its credit note (accept_dispute)")
    return disputes.change(dispute_id, lambda current: current.move(status, now, note))


def accept_dispute(register: CloseRegister, disputes: DisputeStore, dispute_id: str, on: date, note: str,
                   now: datetime) -> CustomerDispute:
    """Accept a dispute under review: a credit note of the disputed amount dated ``on`` through the register."""

    def accepted(current: CustomerDispute) -> CustomerDispute:
        if current.status != UNDER_REVIEW:
            raise DisputeError(f"{dispute_id} is {current.status}; only a dispute under review can be accepted")
        if not current.invoice_number.startswith(current.customer_id + INVOICE_SEPARATOR):
            raise DisputeError(f"{dispute_id} names {current.invoice_number}, which is not an invoice of "
                               f"{current.customer_id}")
        # the credit note first, keyed by the dispute: a crash before the dispute is saved leaves a
        # note (and outbox entries) that the next accept finds again instead of issuing a second one
        credit = register.credit_line(current.invoice_number, current.sku, current.amount, on, dispute_id)
        if (credit.credits, [(line.sku, -line.amount) for line in credit.lines]) != (
                current.invoice_number, [(current.sku, current.amount)]):
            # the register credits once per dispute id: a note of that id for another line or amount
            # means this dispute store is not the one the register's notes were issued from
            raise DisputeError(f"{dispute_id}: the register already holds {credit.number} for a dispute of that id "
                               f"({credit.credits} {', '.join(line.sku for line in credit.lines)} "
                               f"{-credit.total}); it does not credit {current.invoice_number} {current.sku} "
                               f"{current.amount} (is this the register's dispute store?)")
        return current.move(ACCEPTED, now, note or f"credited by {credit.number}", credit_note=str(credit.number))

    return disputes.change(dispute_id, accepted)

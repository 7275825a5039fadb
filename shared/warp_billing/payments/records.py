"""Recorded payments and reversals, and the documents they give (ERP outbox, alerts).

A payment is kept once per gateway transaction id with what it was applied to; a reversal once
per reversal id (``refund:<refund transaction>``, ``void:<voided transaction>``) with what it took
back. Money is Decimal cents here and decimal strings in every document.

What goes to NetSuite (the ERP outbox, externalId = the document id):

* a postpaid payment: ``customer_payment`` (``payment:<transaction>``) applied to the invoices it
  pays; what went to the credit balance stays unapplied on it;
* a prepaid top-up (an operator's payment or an auto-recharge): ``customer_deposit``
  (``payment:<transaction>``), never a customer payment. The money is a liability until it is used:
  the deposit credits Customer Deposits (WARP's ``2200``) and the prepaid statement's journal
  debits the same account for what was drawn, so the top-up is counted once (a customer payment
  would leave an unapplied credit on receivables beside the deposits the journal draws on);
* a refund or void of either: ``customer_refund`` (the reversal id, ``refund:<id>`` / ``void:<id>``).
  It takes back from the payment what the reversal took from its invoices (the payment's ``apply``
  lines are rewritten to what is left) and refunds that unapplied amount, or refunds the deposit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ..billing.amounts import money_text
from ..billing.revenue_recognition import AccountMap
from ..erp.records import CUSTOMER_DEPOSIT, CUSTOMER_PAYMENT, CUSTOMER_REFUND
from ..ports import OutboxDocument
from .allocation import PREPAID, ZERO, Application, net

PENDING, APPLIED, DECLINED = "pending", "applied", "declined"
PAYMENT_DOC_PREFIX = "payment:"
PAYMENT_RECEIVED = "payment_received"
PAYMENT_REVERSED = "payment_reversed"


@dataclass(frozen=True, slots=True)
class PaymentHeader:
    """What a payment is, before it is applied."""

    transaction_id: str
    customer_id: str
    billing: str            # "prepaid" | "postpaid"
    amount: Decimal
    currency: str
    received_on: date
    invoice_reference: str | None = None   # the invoice number the payer named, if any
    source: str = "authorize-net"


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A kept payment: its status and what is left of it on each target (net of reversals)."""

    header: PaymentHeader
    status: str
    applications: tuple[Application, ...] = ()
    reversed_amount: Decimal = ZERO
    created: bool = field(default=False, compare=False)   # this call made the change
    reversal_ids: tuple[str, ...] = field(default=(), compare=False)   # its reversals, in the order made

    @property
    def transaction_id(self) -> str:
        return self.header.transaction_id

    @property
    def invoice_numbers(self) -> tuple[str, ...]:
        return tuple(item.target for item in self.applications if item.is_invoice)


@dataclass(frozen=True, slots=True)
class ReversalRecord:
    """A kept reversal of a payment: what it took back from each target (negative amounts)."""

    reversal_id: str
    transaction_id: str
    customer_id: str
    taken: tuple[Application, ...]
    at: str
    created: bool = field(default=False, compare=False)

    @property
    def amount(self) -> Decimal:
        return -sum((item.amount for item in self.taken), ZERO)


def remaining(applied: tuple[Application, ...], reversals: list[tuple[Application, ...]]) -> tuple[Application, ...]:
    """What is left of a payment after its reversals."""
    everything = list(applied)
    for taken in reversals:
        everything.extend(taken)
    return net(everything)


def prepaid_entry_id(transaction_id: str) -> str:
    """The ledger / Redis key of a payment booked to a prepaid balance (its own namespace)."""
    return f"payment:{transaction_id}"


def reversal_entry_id(transaction_id: str, reversal_id: str) -> str:
    return f"payment:{transaction_id}#{reversal_id}"


def customer_payment_document(record: PaymentRecord, issued_at: str) -> OutboxDocument:
    """The NetSuite record of a payment: a ``customer_payment`` applied to the invoices it pays, after
    the customer and those invoices; for a prepaid top-up a ``customer_deposit`` (module docstring).

    The amount is the whole payment; ``applies_to`` the invoices (what went to the credit balance
    stays unapplied on the customer in NetSuite too)."""
    header = record.header
    payload: dict[str, Any] = {
        "customer_id": header.customer_id, "transaction_id": header.transaction_id, "billing": header.billing,
        "amount": money_text(header.amount), "currency": header.currency, "date": header.received_on.isoformat(),
    }
    if header.billing == "prepaid":
        # the liability the deposit credits: the account the prepaid statement journals debit
        payload["deposit_account"] = AccountMap().customer_deposits
        return OutboxDocument(PAYMENT_DOC_PREFIX + header.transaction_id, 1, CUSTOMER_DEPOSIT, header.customer_id, 0,
                              issued_at, payload, (f"customer:{header.customer_id}",))
    invoices = tuple(item for item in record.applications if item.is_invoice)
    payload["applies_to"] = [{"invoice_number": item.target, "amount": money_text(item.amount)} for item in invoices]
    prerequisites = (f"customer:{header.customer_id}", *(item.target for item in invoices))
    return OutboxDocument(PAYMENT_DOC_PREFIX + header.transaction_id, 1, CUSTOMER_PAYMENT, header.customer_id, 0,
                          issued_at, payload, prerequisites)


def customer_refund_document(payment: PaymentRecord, reversal: ReversalRecord, issued_at: str,
                             earlier: tuple[str, ...] = ()) -> OutboxDocument:
    """The NetSuite ``customerRefund`` of a reversal (refund or void) of a payment sent to NetSuite.

    ``payment`` is the payment as kept after the reversal: its invoice applications are what the
    NetSuite payment must stay applied to (``payment_applies_to``; every invoice it ever paid is
    listed, at 0.00 when the reversal reopened it in full). ``earlier``: document ids of the
    payment's earlier reversals, prerequisites so that NetSuite sees them in the order they were made
    (each rewrites the payment's applications to what is left after it)."""
    header = payment.header
    payment_doc = PAYMENT_DOC_PREFIX + header.transaction_id
    left = {item.target: item.amount for item in payment.applications if item.is_invoice}
    reopened = [item for item in reversal.taken if item.is_invoice]
    touched = list(dict.fromkeys([*left, *(item.target for item in reopened)]))
    payload: dict[str, Any] = {
        "customer_id": header.customer_id, "transaction_id": header.transaction_id,
        "reversal_id": reversal.reversal_id, "billing": header.billing,
        "refunds": payment_doc, "refunds_type": CUSTOMER_DEPOSIT if header.billing == "prepaid" else CUSTOMER_PAYMENT,
        "amount": money_text(reversal.amount), "currency": header.currency, "date": reversal.at[:10],
        "reopens": [{"invoice_number": item.target, "amount": money_text(-item.amount)} for item in reopened],
        "payment_applies_to": ([{"invoice_number": number, "amount": money_text(left.get(number, ZERO))}
                                for number in touched] if reopened else []),
    }
    prerequisites = (f"customer:{header.customer_id}", payment_doc, *earlier)
    return OutboxDocument(reversal.reversal_id, 1, CUSTOMER_REFUND, header.customer_id, 0, issued_at, payload,
                          prerequisites)


def payment_alert(record: PaymentRecord, at: str) -> dict[str, Any]:
    """``payment_received`` for the alerts topic (receipts, reinstatement of a suspended customer)."""
    header = record.header
    credit = sum((item.amount for item in record.applications if item.target == "@credit"), ZERO)
    return {
        "alert_id": f"{PAYMENT_RECEIVED}:{header.customer_id}:{header.transaction_id}",
        "type": PAYMENT_RECEIVED, "customer_id": header.customer_id, "transaction_id": header.transaction_id,
        "billing": header.billing, "amount": money_text(header.amount), "currency": header.currency,
        "received_on": header.received_on.isoformat(), "at": at,
        "invoice_numbers": list(record.invoice_numbers),
        "applied": [{"target": item.target, "amount": money_text(item.amount)} for item in record.applications],
        "credit_balance_added": money_text(credit),
        "prepaid_credit": any(item.target == PREPAID for item in record.applications),
    }


def reversal_alert(reversal: ReversalRecord, currency: str) -> dict[str, Any]:
    return {
        "alert_id": f"{PAYMENT_REVERSED}:{reversal.customer_id}:{reversal.reversal_id}",
        "type": PAYMENT_REVERSED, "customer_id": reversal.customer_id, "transaction_id": reversal.transaction_id,
        "reversal_id": reversal.reversal_id, "amount": money_text(reversal.amount), "currency": currency,
        "at": reversal.at,
        "invoice_numbers": [item.target for item in reversal.taken if item.is_invoice],
    }

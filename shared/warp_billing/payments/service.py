"""Applying received payments: prepaid top-ups, postpaid invoices, reversals (through ports).

One Authorize.Net notification (already verified by the receiver) becomes at most one change,
whatever the number of deliveries, because every step is idempotent by a business key and every
step is redone on a redelivery (so a crash between two steps heals on the next delivery):

1. resolve: amount, customer and the invoice named (the payload, else ``getTransactionDetails``);
2. prepaid: book the credit (ledger + Redis) under ``payment:<transaction id>`` through the same
   ``charging.topups.book_credit`` as `warp balance topup`; postpaid: apply in the payment store
   (named invoice, then oldest open first, the rest a credit balance) under its per-customer lock;
3. keep the payment (store, by transaction id), put its ``customer_payment`` in the ERP outbox
   (after the customer and the invoices it pays; a prepaid top-up's is a ``customer_deposit``),
   publish ``payment_received``.

A reversal (refund, void) takes back what the payment applied (``allocation.reverse``), once per
reversal id; on a prepaid balance it is a negative ``adjustment`` entry; it puts a
``customer_refund`` in the ERP outbox (``records.customer_refund_document``). A notification that is
authentic but unusable is kept as a reject with its reason code and answered 200 (the sender
would only send it again); store or Redis trouble propagates so the sender retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..billing.invoice import INVOICE, Invoice
from ..billing.receivables import standings
from ..charging.accounts import PrepaidTerms
from ..charging.clock import iso_from_ms
from ..charging.topups import book_credit, publish_credit_alerts
from ..money import to_micros
from ..ports import AlertPublisher, BalanceStore, Clock, LedgerStore, PaymentGateway, PaymentStore, SyncOutbox
from . import allocation
from .allocation import PREPAID, Application, OpenInvoice
from .errors import PaymentReason, PaymentRejected
from .gateway import TransactionDetails
from .gateway_events import EventKind, GatewayEvent, parse_notification
from .records import (
    APPLIED,
    PaymentHeader,
    PaymentRecord,
    ReversalRecord,
    customer_payment_document,
    customer_refund_document,
    payment_alert,
    prepaid_entry_id,
    reversal_alert,
    reversal_entry_id,
)

log = logging.getLogger(__name__)
INVOICE_MARK = "-INV-"
NETSUITE_SOURCE = "netsuite"


@dataclass(frozen=True, slots=True)
class CustomerAccount:
    """How a customer pays: prepaid (with its terms) or postpaid, and its currency."""

    billing: str
    currency: str
    prepaid: PrepaidTerms | None = None


@dataclass(frozen=True, slots=True)
class PrepaidBook:
    """The prepaid side's ports (the same ones `warp balance topup` uses)."""

    balances: BalanceStore
    ledger: LedgerStore
    reconcile: Callable[[str], bool]


class PaymentService:
    def __init__(self, store: PaymentStore, documents: Callable[[str], Sequence[Invoice]],
                 accounts: Callable[[str], CustomerAccount | None], prepaid: PrepaidBook, outbox: SyncOutbox,
                 alerts: AlertPublisher, clock: Clock, gateway: PaymentGateway | None = None):
        self.store = store
        self.documents = documents
        self.accounts = accounts
        self.prepaid = prepaid
        self.outbox = outbox
        self.alerts = alerts
        self.clock = clock
        self._gateway = gateway

    # -- a notification ------------------------------------------------------------------------

    def handle_notification(self, body: bytes) -> dict[str, Any]:
        """Apply one verified Authorize.Net notification; the answer's ``status`` says what happened."""
        try:
            event = parse_notification(body)
            return self._handle(event)
        except PaymentRejected as exc:
            reject_id = _reject_id(body)
            self.store.reject(reject_id, exc.reason.value, exc.detail, body, self._now_iso())
            log.error("payment notification rejected",
                      extra={"reject_id": reject_id, "reason": exc.reason.value, "detail": exc.detail})
            return {"status": "rejected", "reason": exc.reason.value, "detail": exc.detail}

    def _handle(self, event: GatewayEvent) -> dict[str, Any]:
        if event.kind is EventKind.IGNORED:
            return {"status": "ignored", "event_type": event.event_type}
        if event.kind is EventKind.DECLINED:
            declined = self.store.decline(event.transaction_id)
            return {"status": "declined", "transaction_id": event.transaction_id, "was_held": declined is not None}
        if event.kind is EventKind.REVERSAL:
            reversal = self.reverse(event)
            return {"status": "reversed", "transaction_id": reversal.transaction_id,
                    "reversal_id": reversal.reversal_id, "amount": str(reversal.amount)}
        if event.kind is EventKind.PAYMENT and event.response_code not in (None, 1) \
                and event.event_type != "payment.fraud.approved":
            raise PaymentRejected(PaymentReason.NOT_APPROVED,
                                  f"transaction {event.transaction_id}: response code {event.response_code}")
        header, named = self._header(event)
        if event.kind is EventKind.PENDING:
            record = self.store.hold(header)
            return {"status": record.status, "transaction_id": header.transaction_id}
        record = self.apply(header, named)
        return {"status": record.status, "transaction_id": record.transaction_id,
                "customer_id": header.customer_id, "invoice_numbers": list(record.invoice_numbers)}

    # -- a payment -----------------------------------------------------------------------------

    def apply(self, header: PaymentHeader, named: str | None = None, told: Sequence[Application] = ()) -> PaymentRecord:
        """Apply a payment once (also the path of an approved auto-recharge); every step idempotent.

        A payment recorded in NetSuite (``source`` "netsuite") is not sent back to NetSuite."""
        account = self.accounts(header.customer_id)
        if account is None:
            raise PaymentRejected(PaymentReason.UNKNOWN_CUSTOMER, f"no plan for customer {header.customer_id!r}")
        if header.billing == "prepaid":
            terms = account.prepaid or PrepaidTerms()
            self._credit(header.customer_id, prepaid_entry_id(header.transaction_id), header.amount, "topup",
                         f"payment {header.transaction_id}", terms, account.currency)
            record = self.store.apply(header, lambda paid: (Application(PREPAID, header.amount),))
        else:
            invoices = self._open_invoices(header.customer_id)
            record = self.store.apply(
                header, lambda paid: allocation.allocate(header.amount, invoices, paid, named, told))
        if record.status != APPLIED:
            return record
        now = self._now_iso()
        if header.source != NETSUITE_SOURCE:
            self.outbox.add(customer_payment_document(record, now))
        self.alerts.publish(payment_alert(record, now))
        log.info("payment applied", extra={"transaction_id": header.transaction_id,
                                           "customer_id": header.customer_id, "amount": str(header.amount),
                                           "invoices": list(record.invoice_numbers), "new": record.created})
        return record

    def reverse(self, event: GatewayEvent) -> ReversalRecord:
        original: str | None
        if event.event_type == "payment.void.created":
            original, reversal_id, amount = event.transaction_id, f"void:{event.transaction_id}", None
        else:
            original = event.ref_transaction_id
            amount = event.amount
            if original is None or amount is None:
                details = self._details(event.transaction_id)
                original = original or details.ref_transaction_id
                amount = amount or details.amount
            if original is None:
                raise PaymentRejected(PaymentReason.UNKNOWN_PAYMENT,
                                      f"refund {event.transaction_id} names no original transaction")
            reversal_id = f"refund:{event.transaction_id}"
        payment = self.store.get(original)
        if payment is None or payment.status != APPLIED:
            raise PaymentRejected(PaymentReason.UNKNOWN_PAYMENT,
                                  f"{reversal_id}: transaction {original} is not an applied payment")

        def decide(left: tuple[Application, ...]) -> tuple[Application, ...]:
            try:
                return allocation.reverse(left, amount)
            except ValueError as exc:
                raise PaymentRejected(PaymentReason.OVER_REVERSAL, f"{reversal_id}: {exc}") from None

        reversal = self.store.reverse(reversal_id, original, self._now_iso(), decide)
        header = payment.header
        for item in reversal.taken:
            if item.target == PREPAID:
                account = self.accounts(header.customer_id)
                terms = (account.prepaid if account is not None else None) or PrepaidTerms()
                self._credit(header.customer_id, reversal_entry_id(original, reversal_id), item.amount, "adjustment",
                             f"{reversal_id} of payment {original}", terms, header.currency)
        if header.source != NETSUITE_SOURCE:   # a payment NetSuite recorded is refunded there, not by us
            self._refund_to_erp(original, reversal)
        self.alerts.publish(reversal_alert(reversal, header.currency))
        log.info("payment reversed", extra={"transaction_id": original, "reversal_id": reversal_id,
                                            "amount": str(reversal.amount), "new": reversal.created})
        return reversal

    # -- internals -----------------------------------------------------------------------------

    def _refund_to_erp(self, original: str, reversal: ReversalRecord) -> None:
        """Put the reversal's ``customer_refund`` in the ERP outbox (after the payment and its earlier
        reversals); on every delivery, since adding it again changes nothing."""
        payment = self.store.get(original)
        if payment is None:   # pragma: no cover - the store just reversed it
            return
        ids = payment.reversal_ids
        earlier = ids[:ids.index(reversal.reversal_id)] if reversal.reversal_id in ids else ids
        # an earlier reversal made before refunds were sent has no document: nothing to wait for
        earlier = tuple(doc_id for doc_id in earlier if self.outbox.get(doc_id) is not None)
        self.outbox.add(customer_refund_document(payment, reversal, self._now_iso(), earlier))

    def _header(self, event: GatewayEvent) -> tuple[PaymentHeader, str | None]:
        """The payment's header and the invoice it names (ours, of that customer), fetching details if needed."""
        amount, invoice_number, customer_id = event.amount, event.invoice_number, event.customer_id
        if customer_id is None and invoice_number is not None:
            customer_id = customer_of_invoice(invoice_number)
        # the details are fetched when the payload lacks the customer or the invoice number; without a
        # configured gateway a payment whose customer is known is applied without an invoice named
        if customer_id is None or amount is None or (invoice_number is None and self._gateway is not None):
            details = self._details(event.transaction_id)
            customer_id = customer_id or details.customer_id
            invoice_number = invoice_number or details.invoice_number
            amount = amount or details.amount
        if customer_id is None:
            raise PaymentRejected(PaymentReason.UNKNOWN_CUSTOMER,
                                  f"transaction {event.transaction_id}: no customer in the payload or its details")
        if amount is None:
            raise PaymentRejected(PaymentReason.BAD_AMOUNT, f"transaction {event.transaction_id}: no amount")
        account = self.accounts(customer_id)
        if account is None:
            raise PaymentRejected(PaymentReason.UNKNOWN_CUSTOMER, f"no plan for customer {customer_id!r}")
        named = invoice_number if invoice_number and customer_of_invoice(invoice_number) == customer_id else None
        return PaymentHeader(event.transaction_id, customer_id, account.billing, amount, account.currency,
                             _event_day(event.event_date, self.clock.now_ms()), invoice_number), named

    def _details(self, transaction_id: str) -> TransactionDetails:
        if self._gateway is None:
            raise PaymentRejected(PaymentReason.UNKNOWN_CUSTOMER,
                                  f"transaction {transaction_id}: details needed and no gateway configured")
        try:
            return self._gateway.transaction_details(transaction_id)
        except KeyError:
            raise PaymentRejected(PaymentReason.UNKNOWN_PAYMENT,
                                  f"the gateway does not know transaction {transaction_id}") from None

    def _open_invoices(self, customer_id: str) -> list[OpenInvoice]:
        today = datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC).date()
        documents = [document for document in self.documents(customer_id) if document.customer_id == customer_id]
        return [OpenInvoice(str(standing.invoice.number), standing.invoice.issue_date,
                            standing.issued - standing.credited)
                for standing in standings(documents, today)
                if standing.invoice.document_type == INVOICE and not standing.cancelled
                and standing.issued - standing.credited > 0]

    def _credit(self, customer_id: str, entry_id: str, amount: Decimal, kind: str, reference: str,
                terms: PrepaidTerms, currency: str) -> None:
        book = self.prepaid
        result = book_credit(book.balances, book.ledger, book.reconcile, customer_id=customer_id, entry_id=entry_id,
                             amount_micros=to_micros(amount), kind=kind, reference=reference,
                             at_ms=self.clock.now_ms(), terms=terms)
        for code, exc in publish_credit_alerts(result, self.alerts, customer_id=customer_id, entry_id=entry_id,
                                               currency=currency, terms=terms):
            log.warning("alert not published", extra={"alert": code, "entry_id": entry_id, "error": str(exc)})

    def _now_iso(self) -> str:
        return iso_from_ms(self.clock.now_ms())


def customer_of_invoice(number: str) -> str | None:
    """The customer of one of our invoice numbers (``<customer>-INV-<n>``), None for any other text."""
    customer, mark, serial = number.rpartition(INVOICE_MARK)
    return customer if mark and customer and serial.isdigit() else None


def _event_day(event_date: str, now_ms: int) -> date:
    try:
        return datetime.fromisoformat(event_date.replace("Z", "+00:00")).astimezone(UTC).date()
    except ValueError:
        return datetime.fromtimestamp(now_ms / 1000, UTC).date()


def _reject_id(body: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(body).hexdigest()

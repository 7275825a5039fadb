"""Billing alerts that reach customers, and issued invoices that reach HubSpot (``functions/notify``).

``AlertHandler.handle(message, as_of)`` for one message of the billing-alerts topic (an alert
document: ``charging/alerts.py``, and the payments side's ``payment_received`` /
``recharge_declined``) or of the invoices topic (an announcement: ``billing.close_service``):

* ``low_balance``, ``recharge_declined``, and the prepaid ``suspend_pending`` (balance exhausted:
  suspension at ``suspend_at`` unless topped up) and ``suspended`` -> the email of that kind, once
  per (customer, alert id) (the alert id names the customer and the entry that caused it);
* ``payment_received`` -> the receipt (``<transaction id>:receipt``, the PDFs of the invoices it
  paid attached where the document store has them), then ``settle``: a customer suspended for
  non-payment whose overdue balance the register now shows settled is reinstated; the HubSpot
  company gets its balance due and last payment;
* an invoice announcement (``invoice_number``, no ``type``) -> the HubSpot company's last invoice
  (number, date, amount, period) and balance due, once per document: the (invoice,
  ``hubspot_invoice_issued``) record of the dunning store is kept after the enqueue, so a
  redelivery enqueues nothing (a crash in between re-enqueues the same batch: the same task name);
* ``vendor_dispute_opened`` (a reconciliation opened a dispute) -> the dispute package emailed to
  the address the alert names, once per alert (``vendor_disputes``; acknowledged untouched when
  the handler has no ``VendorDisputeMail``);
* any other type is acknowledged untouched (the topic carries alerts for other consumers).

Each email is sent once per (document, step) whatever the redeliveries (the email log). A message
that cannot be used (no customer, no plan for it) is a named outcome, acknowledged and logged,
never retried; anything a retry can cure raises ``TransientError`` (the push is redelivered).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from ..billing.amounts import money_text
from ..plan import Plan
from .crm import CrmUpdates
from .notices import LOW_BALANCE, PAYMENT_RECEIPT, PREPAID_SUSPENDED, RECHARGE_DECLINED, SUSPEND_PENDING
from .notifier import Notifier
from .service import DunningService, balance_due_text
from .vendor_disputes import VENDOR_DISPUTE_OPENED, VendorDisputeMail

log = logging.getLogger(__name__)
PAYMENT_RECEIVED = "payment_received"
IGNORED, UNUSABLE = "ignored", "unusable"
INVOICE_ISSUED = "invoice_issued"
CRM_INVOICE_STEP = "hubspot_invoice_issued"   # the dunning store's record: HubSpot was told of the invoice
ENQUEUED, ALREADY_DONE, CRM_OFF, NOT_IN_REGISTER = "enqueued", "already_done", "crm_off", "not_in_register"
# alerts that are one email of their own kind, once per (customer, alert id)
EMAIL_ALERTS = (LOW_BALANCE, RECHARGE_DECLINED, SUSPEND_PENDING, PREPAID_SUSPENDED)
_EMAIL_FIELDS = ("balance", "threshold", "amount", "currency", "at", "suspend_at", "reason", "attempt",
                 "transaction_id", "received_on", "invoice_numbers", "applied", "credit_balance_added")


class AlertHandler:
    def __init__(self, notifier: Notifier, dunning: DunningService, plans: Callable[[str], Plan | None],
                 crm: CrmUpdates | None = None, vendor_disputes: VendorDisputeMail | None = None):
        self.notifier = notifier
        self.dunning = dunning
        self.plans = plans
        self.crm = crm
        self.vendor_disputes = vendor_disputes

    def handle(self, alert: Mapping[str, Any], as_of: date) -> dict[str, Any]:
        kind = alert.get("type")
        if kind is None and alert.get("invoice_number") is not None:
            return self.invoice_issued(alert, as_of)
        if kind == VENDOR_DISPUTE_OPENED and self.vendor_disputes is not None:
            return self.vendor_disputes.handle(alert)
        if kind not in (*EMAIL_ALERTS, PAYMENT_RECEIVED):
            return {"outcome": IGNORED, "type": kind}
        customer, alert_id = alert.get("customer_id"), alert.get("alert_id")
        plan = self.plans(customer) if isinstance(customer, str) and customer else None
        if plan is None or not isinstance(alert_id, str) or not alert_id:
            log.error("alert not usable: no customer with a plan, or no alert_id; acknowledged",
                      extra={"alert_id": alert_id, "customer_id": customer, "type": kind})
            return {"outcome": UNUSABLE, "type": kind, "customer_id": customer}
        customer_id = plan.customer_id
        data = {key: alert[key] for key in _EMAIL_FIELDS if key in alert}
        if kind != PAYMENT_RECEIVED:
            sent = self.notifier.notify(kind, plan, alert_id, kind, data)
            return {"outcome": sent, "type": kind, "customer_id": customer_id}
        transaction = str(alert.get("transaction_id") or alert_id)
        standings = self.dunning.receivables.standings(customer_id, as_of)
        named = alert.get("invoice_numbers")
        paid = {str(number) for number in named} if isinstance(named, list) else set()
        sent = self.notifier.notify(PAYMENT_RECEIPT, plan, transaction, "receipt", data,
                                    invoices=[row.invoice for row in standings if str(row.invoice.number) in paid])
        reinstated = self.dunning.settle(plan, as_of)
        if self.crm is not None:   # settling reinstates; it changes no invoice or payment: the same standings
            self.crm.company(customer_id, {"warp_balance_due": balance_due_text(standings),
                                           "warp_last_payment": transaction,
                                           "warp_last_payment_amount": str(alert.get("amount") or "")})
        return {"outcome": sent, "type": kind, "customer_id": customer_id, "reinstated": reinstated}

    def invoice_issued(self, announcement: Mapping[str, Any], as_of: date) -> dict[str, Any]:
        """An issued document on the invoices topic -> the HubSpot company, once per document."""
        customer, number = announcement.get("customer_id"), announcement.get("invoice_number")
        if not isinstance(customer, str) or not customer or not isinstance(number, str) or not number:
            log.error("invoice announcement not usable: no customer_id or invoice_number; acknowledged",
                      extra={"customer_id": customer, "invoice_number": number})
            return {"outcome": UNUSABLE, "type": INVOICE_ISSUED, "customer_id": customer}
        result: dict[str, Any] = {"type": INVOICE_ISSUED, "customer_id": customer, "invoice_number": number}
        if self.crm is None:
            return {**result, "outcome": CRM_OFF}
        store = self.dunning.store
        if (number, CRM_INVOICE_STEP) in store.steps(customer):
            return {**result, "outcome": ALREADY_DONE}
        standings = self.dunning.receivables.standings(customer, as_of)
        this = next((row.invoice for row in standings if str(row.invoice.number) == number), None)
        issued = _date(announcement.get("issue_date")) or (this.issue_date if this is not None else None)
        if issued is None:
            # Not retried: the daily dunning run gives every customer's company its balance and last invoice.
            log.error("announced invoice without an issue date and not in the register; HubSpot left to the "
                      "daily dunning run", extra={"customer_id": customer, "invoice_number": number})
            return {**result, "outcome": NOT_IN_REGISTER}
        properties: dict[str, Any] = {"warp_balance_due": balance_due_text(standings)}
        # a late redelivery of an older document never takes "last invoice" back
        if not any((row.invoice.issue_date, str(row.invoice.number)) > (issued, number) for row in standings):
            total = this.total if this is not None else _money(announcement.get("total"))
            properties.update({"warp_last_invoice": number, "warp_last_invoice_date": issued.isoformat(),
                               "warp_last_invoice_amount": money_text(total) if total is not None else "",
                               "warp_last_invoice_period": str(announcement.get("billing_period") or "")})
        self.crm.company(customer, properties)
        store.record_step(customer, number, CRM_INVOICE_STEP, self.dunning.now_iso())
        log.info("HubSpot company update enqueued for an issued document",
                 extra={"customer_id": customer, "invoice_number": number})
        return {**result, "outcome": ENQUEUED}


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(value) if isinstance(value, str) and value else None
    except ArithmeticError:
        return None

"""Billing alerts that reach customers: emails, reinstatement and HubSpot, from the alerts topic.

``AlertHandler.handle(alert, as_of)`` for one alert document (``charging/alerts.py``, and the
payments side's ``payment_received`` / ``recharge_declined``):

* ``low_balance`` -> the low-balance email; ``recharge_declined`` -> the declined-recharge email;
* ``payment_received`` -> the receipt (``<transaction id>:receipt``), then ``settle``: a customer
  suspended for non-payment whose overdue balance the register now shows settled is reinstated;
  the HubSpot company gets its balance due and last payment;
* any other type is acknowledged untouched (the topic carries alerts for other consumers).

Each email is sent once per (document, step) whatever the redeliveries (the email log). An alert
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
from .notices import LOW_BALANCE, PAYMENT_RECEIPT, RECHARGE_DECLINED
from .notifier import Notifier
from .service import DunningService

log = logging.getLogger(__name__)
PAYMENT_RECEIVED = "payment_received"
IGNORED, UNUSABLE = "ignored", "unusable"
_EMAIL_FIELDS = ("balance", "threshold", "amount", "currency", "at", "suspend_at", "reason", "attempt",
                 "transaction_id", "received_on", "invoice_numbers", "applied", "credit_balance_added")


class AlertHandler:
    def __init__(self, notifier: Notifier, dunning: DunningService, plans: Callable[[str], Plan | None],
                 crm: CrmUpdates | None = None):
        self.notifier = notifier
        self.dunning = dunning
        self.plans = plans
        self.crm = crm

    def handle(self, alert: Mapping[str, Any], as_of: date) -> dict[str, Any]:
        kind = alert.get("type")
        if kind not in (LOW_BALANCE, RECHARGE_DECLINED, PAYMENT_RECEIVED):
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
        sent = self.notifier.notify(PAYMENT_RECEIPT, plan, transaction, "receipt", data)
        reinstated = self.dunning.settle(plan, as_of)
        if self.crm is not None:
            standings = self.dunning.receivables.standings(customer_id, as_of)
            due = sum((row.balance_due for row in standings if row.balance_due > 0), start=Decimal("0.00"))
            properties: dict[str, Any] = {"warp_balance_due": money_text(due), "warp_last_payment": transaction,
                                          "warp_last_payment_amount": str(alert.get("amount") or "")}
            self.crm.company(customer_id, properties)
        return {"outcome": sent, "type": kind, "customer_id": customer_id, "reinstated": reinstated}


"""Billing alert documents for the billing-alerts topic (consumed by SendGrid / HubSpot senders).

Every alert has a deterministic ``alert_id`` (type, customer, the entry that caused it), so a
redelivered event that republishes its alerts produces the same ids and consumers dedup by it.
Money is a decimal string, never a JSON number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..money import format_amount, from_micros
from ..rating.rated_event import RatedEvent
from .accounts import AccountAlert, AlertCode
from .clock import iso_from_ms

PREPAID_ALERTS = frozenset({AlertCode.LOW_BALANCE, AlertCode.SUSPEND_PENDING, AlertCode.SUSPENDED,
                            AlertCode.AUTO_RECHARGE})


def account_alert(alert: AccountAlert, customer_id: str, entry_id: str, at_ms: int, currency: str,
                  threshold_micros: int | None = None) -> dict[str, Any]:
    """The document of an alert decided by the balance store."""
    prepaid = alert.code in PREPAID_ALERTS
    document = {
        "alert_id": f"{alert.code.value}:{customer_id}:{entry_id}",
        "type": alert.code.value,
        "customer_id": customer_id,
        "event_id": entry_id,
        "at": iso_from_ms(at_ms),
        "currency": currency,
        ("balance" if prepaid else "cycle_total"): format_amount(from_micros(alert.balance_micros)),
    }
    if alert.deadline_ms is not None:
        document["suspend_at"] = iso_from_ms(alert.deadline_ms)
    if alert.amount_micros is not None:
        document["amount"] = format_amount(from_micros(alert.amount_micros))
    if threshold_micros is not None:
        document["threshold"] = format_amount(from_micros(threshold_micros))
    return document


def low_margin_alert(rated: RatedEvent, at_ms: int, currency: str, alert_below_pct: Decimal | None) -> dict[str, Any]:
    """An event priced below the plan's margin threshold (``margin.alert_below_pct``)."""
    return {
        "alert_id": f"{AlertCode.LOW_MARGIN.value}:{rated.customer_id}:{rated.event_id}",
        "type": AlertCode.LOW_MARGIN.value,
        "customer_id": rated.customer_id,
        "event_id": rated.event_id,
        "at": iso_from_ms(at_ms),
        "currency": currency,
        "kind": rated.kind,
        "matched_prefix": rated.matched_prefix,
        "vendor_id": rated.vendor_id,
        "amount": format_amount(rated.amount),
        "vendor_cost": format_amount(rated.vendor_cost),
        "margin_pct": format_amount(rated.margin_pct),
        "alert_below_pct": format_amount(alert_below_pct),
    }

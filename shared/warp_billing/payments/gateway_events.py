"""Authorize.Net webhook notifications as payment events (pure: no HTTP, no stores).

``eventType`` (``net.authorize.`` prefix optional) decides what a notification means:

* ``payment.authcapture.created``, ``payment.capture.created``, ``payment.fraud.approved``: money
  received -> a PAYMENT;
* ``payment.refund.created``, ``payment.void.created``: a REVERSAL of an earlier payment (a void
  names the voided transaction itself; a refund is a new transaction whose ``refTransId`` names
  the payment, fetched from the transaction details when the payload does not carry it);
* ``payment.fraud.held``: PENDING (recorded, nothing applied until approved);
* ``payment.fraud.declined``: DECLINED (a held payment is closed, nothing applied);
* anything else (authorization only, customer profile events...): IGNORED.

Amounts are parsed as Decimal from the JSON text itself (never through a float).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from .errors import PaymentReason, PaymentRejected

EVENT_PREFIX = "net.authorize."


class EventKind(str, Enum):
    PAYMENT = "payment"
    REVERSAL = "reversal"
    PENDING = "pending"
    DECLINED = "declined"
    IGNORED = "ignored"


KINDS = {
    "payment.authcapture.created": EventKind.PAYMENT,
    "payment.capture.created": EventKind.PAYMENT,
    "payment.fraud.approved": EventKind.PAYMENT,
    "payment.refund.created": EventKind.REVERSAL,
    "payment.void.created": EventKind.REVERSAL,
    "payment.fraud.held": EventKind.PENDING,
    "payment.fraud.declined": EventKind.DECLINED,
}


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """One Authorize.Net notification, as much as the payload tells.

    Attributes:
        notification_id: the sender's id (replay key).
        event_type: without the ``net.authorize.`` prefix.
        transaction_id: the payload ``id`` (for a refund: the refund's own transaction).
        amount: ``authAmount`` (None when absent: taken from the details).
        invoice_number, customer_id: when the payload carries them.
        ref_transaction_id: the payment a refund reverses, when the payload carries it.
        response_code: 1 approved, 2 declined, 3 error, 4 held for review.
    """

    notification_id: str
    event_type: str
    kind: EventKind
    transaction_id: str
    amount: Decimal | None
    invoice_number: str | None
    customer_id: str | None
    ref_transaction_id: str | None
    response_code: int | None
    event_date: str


def parse_notification(body: bytes) -> GatewayEvent:
    """The event of a verified notification body; ``PaymentRejected`` when it is not usable."""
    try:
        document = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PaymentRejected(PaymentReason.MALFORMED, f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("payload"), dict):
        raise PaymentRejected(PaymentReason.MALFORMED, "expected an object with a payload object")
    event_type = _text(document.get("eventType"), "eventType")
    if event_type.startswith(EVENT_PREFIX):
        event_type = event_type[len(EVENT_PREFIX):]
    payload = document["payload"]
    kind = KINDS.get(event_type, EventKind.IGNORED)
    transaction_id = _text(payload.get("id"), "payload.id")
    amount = parse_amount(payload["authAmount"], "payload.authAmount") if payload.get("authAmount") is not None \
        else None
    code = payload.get("responseCode")
    return GatewayEvent(
        notification_id=_text(document.get("notificationId"), "notificationId"), event_type=event_type, kind=kind,
        transaction_id=transaction_id, amount=amount,
        invoice_number=_optional(payload.get("invoiceNumber")),
        customer_id=_optional(payload.get("customerId") or payload.get("merchantCustomerId")),
        ref_transaction_id=_optional(payload.get("refTransId")),
        response_code=int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
        event_date=str(document.get("eventDate") or ""),
    )


def parse_amount(value: Any, field: str) -> Decimal:
    """A positive amount with at most 2 decimal places (the gateway's currency unit)."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise PaymentRejected(PaymentReason.BAD_AMOUNT, f"{field}: {value!r} is not an amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PaymentRejected(PaymentReason.BAD_AMOUNT, f"{field}: {value!r} is not a decimal") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")) \
            or amount >= Decimal("1e9"):
        raise PaymentRejected(PaymentReason.BAD_AMOUNT, f"{field}: {value!r} is not a positive amount in cents")
    return amount.quantize(Decimal("0.01"))


def _text(value: Any, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise PaymentRejected(PaymentReason.MALFORMED, f"{field}: missing or not a short text")
    return value.strip()


def _optional(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    return text or None

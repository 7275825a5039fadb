"""Authorize.Net notifications parsed into payment events; unusable ones are named rejects."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from warp_billing.payments.errors import PaymentReason, PaymentRejected
from warp_billing.payments.gateway_events import EventKind, parse_notification


def body(event_type: str, **payload) -> bytes:
    return orjson.dumps({"notificationId": "n-1", "eventType": event_type, "eventDate": "2026-12-01T07:00:00Z",
                         "webhookId": "w", "payload": {"entityName": "transaction", "id": "600001", **payload}})


@pytest.mark.parametrize(("event_type", "kind"), [
    ("net.authorize.payment.authcapture.created", EventKind.PAYMENT),
    ("net.authorize.payment.capture.created", EventKind.PAYMENT),
    ("net.authorize.payment.fraud.approved", EventKind.PAYMENT),
    ("net.authorize.payment.refund.created", EventKind.REVERSAL),
    ("net.authorize.payment.void.created", EventKind.REVERSAL),
    ("net.authorize.payment.fraud.held", EventKind.PENDING),
    ("net.authorize.payment.fraud.declined", EventKind.DECLINED),
    ("net.authorize.payment.authorization.created", EventKind.IGNORED),
    ("net.authorize.customer.created", EventKind.IGNORED),
])
def test_event_types(event_type, kind):
    assert parse_notification(body(event_type, authAmount="10.00")).kind is kind


def test_amount_from_a_json_number_is_exact():
    raw = (b'{"notificationId":"n","eventType":"net.authorize.payment.authcapture.created","payload":'
           b'{"id":"1","authAmount":1234567.89,"invoiceNumber":"ACME-INV-000001","responseCode":1}}')
    event = parse_notification(raw)
    assert event.amount == Decimal("1234567.89") and event.invoice_number == "ACME-INV-000001"
    assert event.response_code == 1


@pytest.mark.parametrize("amount", ["-1.00", "0", "1.001", "abc", True, [], "NaN"])
def test_bad_amounts_are_rejected_by_name(amount):
    with pytest.raises(PaymentRejected) as caught:
        parse_notification(body("net.authorize.payment.authcapture.created", authAmount=amount))
    assert caught.value.reason is PaymentReason.BAD_AMOUNT


@pytest.mark.parametrize("raw", [b"[]", b"not json", b'{"notificationId":"n","eventType":"x"}',
                                 b'{"notificationId":"n","eventType":"x","payload":{}}'])
def test_malformed_notifications_are_rejected_by_name(raw):
    with pytest.raises(PaymentRejected) as caught:
        parse_notification(raw)
    assert caught.value.reason is PaymentReason.MALFORMED

"""Applying Authorize.Net payments: prepaid top-ups, postpaid invoices (named, oldest first, partial,
overpaid), fraud review, refunds and voids, details fetched when the payload lacks them, rejects.

Real SQLite payment store and file invoice register; fake balances / ledger / outbox / alerts.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.unit.payments.payment_world import World, notification

from warp_billing.payments.gateway import TransactionDetails

D = Decimal


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_prepaid_payment_is_a_topup_booked_once_with_ledger_outbox_and_alert(world):
    body = notification("authcapture.created", "T1", "25.00", customerId="PRE", invoiceNumber="RC-1")
    for _ in range(3):
        answer = world.service.handle_notification(body)
        assert answer["status"] == "applied"
    assert world.prepaid_balance() == 25_000_000
    assert [(e.entry_id, e.kind, e.amount_micros) for e in world.ledger.entries("PRE")] == \
        [("payment:T1", "topup", 25_000_000)]
    document = world.outbox.get("payment:T1")
    # a top-up is a customer deposit in NetSuite (Customer Deposits, 2200, which the statement journals draw on)
    assert document.doc_type == "customer_deposit" and document.payload["amount"] == "25.00"
    assert document.payload["deposit_account"] == "2200" and "applies_to" not in document.payload
    assert document.prerequisites == ("customer:PRE",)
    [alert] = world.alerts.of_type("payment_received")
    assert alert["customer_id"] == "PRE" and alert["amount"] == "25.00" and alert["transaction_id"] == "T1"


def test_postpaid_payment_goes_to_named_invoice_then_oldest_and_overpayment_is_credit(world):
    first, second = world.invoice("2026-09", "100.00"), world.invoice("2026-10", "80.00")
    world.service.handle_notification(notification("authcapture.created", "T1", "30.00", invoiceNumber=second))
    assert world.paid() == {second: D("30.00")}
    world.service.handle_notification(notification("authcapture.created", "T2", "200.00", customerId="POST"))
    record = world.store.get("T2")
    assert [(a.target, a.amount) for a in record.applications] == \
        [(first, D("100.00")), (second, D("50.00")), ("@credit", D("50.00"))]
    assert world.paid() == {first: D("100.00"), second: D("80.00")}
    document = world.outbox.get("payment:T2")
    assert document.payload["applies_to"] == [{"invoice_number": first, "amount": "100.00"},
                                              {"invoice_number": second, "amount": "50.00"}]
    assert document.prerequisites == ("customer:POST", first, second)
    standings = {s.invoice.number: (s.status, s.paid) for s in world.register.standings(date(2026, 12, 5), "POST")}
    assert standings == {first: ("paid", D("100.00")), second: ("paid", D("80.00"))}
    alert = world.alerts.by_id["payment_received:POST:T2"]
    assert alert["invoice_numbers"] == [first, second] and alert["credit_balance_added"] == "50.00"


def test_refund_and_void_reverse_exactly_what_was_applied(world):
    first, _second = world.invoice("2026-09", "100.00"), world.invoice("2026-10", "80.00")
    world.service.handle_notification(notification("authcapture.created", "T1", "150.00", customerId="POST"))
    world.service.handle_notification(notification("refund.created", "R1", "60.00", refTransId="T1"))
    world.service.handle_notification(notification("refund.created", "R1", "60.00", refTransId="T1"))  # again
    assert world.paid() == {first: D("90.00")}
    assert {s.invoice.number: s.balance_due for s in world.register.standings(date(2026, 12, 5), "POST")} == \
        {first: D("10.00"), _second: D("80.00")}
    world.service.handle_notification(notification("void.created", "T1", None))
    assert world.paid() == {}
    assert world.store.get("T1").reversed_amount == D("150.00")
    assert {a["reversal_id"] for a in world.alerts.of_type("payment_reversed")} == {"refund:R1", "void:T1"}


def test_prepaid_refund_is_a_negative_adjustment_once(world):
    world.service.handle_notification(notification("authcapture.created", "T1", "25.00", customerId="PRE"))
    world.gateway.details["R9"] = TransactionDetails("R9", "refundPendingSettlement", D("5.00"), None, "PRE", "T1", 1)
    for _ in range(2):
        world.service.handle_notification(notification("refund.created", "R9", None))
    assert world.prepaid_balance() == 20_000_000
    assert sorted(e.entry_id for e in world.ledger.entries("PRE")) == ["payment:T1", "payment:T1#refund:R9"]


def test_fraud_held_then_approved_applies_once_and_declined_applies_nothing(world):
    invoice = world.invoice("2026-09", "100.00")
    world.service.handle_notification(notification("fraud.held", "T1", "40.00", customerId="POST", responseCode=4))
    assert world.store.get("T1").status == "pending" and world.paid() == {}
    world.service.handle_notification(notification("fraud.approved", "T1", "40.00", customerId="POST"))
    world.service.handle_notification(notification("authcapture.created", "T1", "40.00", customerId="POST"))
    assert world.paid() == {invoice: D("40.00")}
    world.service.handle_notification(notification("fraud.held", "T2", "40.00", customerId="POST", responseCode=4))
    world.service.handle_notification(notification("fraud.declined", "T2", "40.00", customerId="POST"))
    assert world.store.get("T2").status == "declined" and world.paid() == {invoice: D("40.00")}
    assert world.outbox.get("payment:T2") is None


def test_details_are_fetched_only_when_the_payload_lacks_customer_or_invoice(world):
    invoice = world.invoice("2026-09", "100.00")
    world.service.handle_notification(notification("authcapture.created", "T1", "10.00", invoiceNumber=invoice))
    assert world.gateway.calls == []
    world.gateway.details["T2"] = TransactionDetails("T2", "capturedPendingSettlement", D("10.00"), invoice, "POST",
                                                     None, 1)
    world.service.handle_notification(notification("authcapture.created", "T2", "10.00"))
    assert world.gateway.calls == ["T2"] and world.paid() == {invoice: D("20.00")}
    world.service.handle_notification(notification("authcapture.created", "T3", "1.00", customerId="POST"))
    assert world.gateway.calls == ["T2", "T3"]   # the customer is known, the invoice number is not


@pytest.mark.parametrize(("body", "reason"), [
    (notification("authcapture.created", "T1", "10.00", customerId="NOBODY"), "UNKNOWN_CUSTOMER"),
    (notification("authcapture.created", "T1", "-3", customerId="POST"), "BAD_AMOUNT"),
    (notification("refund.created", "R1", "5.00", refTransId="NEVER"), "UNKNOWN_PAYMENT"),
    (notification("authcapture.created", "T1", "10.00", customerId="POST", responseCode=2), "NOT_APPROVED"),
    (b'{"notificationId": "x"}', "MALFORMED"),
])
def test_unusable_notifications_are_kept_as_named_rejects_and_change_nothing(world, body, reason):
    answer = world.service.handle_notification(body)
    assert answer["status"] == "rejected" and answer["reason"] == reason
    assert [row[1] for row in world.store.rejects()] == [reason]
    assert world.store.payments() == [] and world.outbox.documents() == [] and world.ledger.rows == []


def test_refund_larger_than_payment_is_a_reject(world):
    world.invoice("2026-09", "100.00")
    world.service.handle_notification(notification("authcapture.created", "T1", "10.00", customerId="POST"))
    answer = world.service.handle_notification(notification("refund.created", "R1", "10.01", refTransId="T1"))
    assert answer["reason"] == "OVER_REVERSAL" and world.store.get("T1").reversed_amount == 0


def test_a_refund_and_a_void_each_put_one_customer_refund_in_the_outbox_after_the_payment(world):
    first, second = world.invoice("2026-09", "100.00"), world.invoice("2026-10", "80.00")
    world.service.handle_notification(notification("authcapture.created", "T1", "200.00", customerId="POST"))
    for _ in range(2):   # redelivered: one document
        world.service.handle_notification(notification("refund.created", "R1", "60.00", refTransId="T1"))
    refund = world.outbox.get("refund:R1")
    assert refund.doc_type == "customer_refund" and refund.prerequisites == ("customer:POST", "payment:T1")
    # 20.00 of the credit balance, then 40.00 off the most recently paid invoice
    assert refund.payload["amount"] == "60.00" and refund.payload["refunds"] == "payment:T1"
    assert refund.payload["reopens"] == [{"invoice_number": second, "amount": "40.00"}]
    assert refund.payload["payment_applies_to"] == [{"invoice_number": first, "amount": "100.00"},
                                                    {"invoice_number": second, "amount": "40.00"}]
    world.service.handle_notification(notification("void.created", "T1", None))
    void = world.outbox.get("void:T1")
    assert void.doc_type == "customer_refund" and void.payload["amount"] == "140.00"
    assert void.prerequisites == ("customer:POST", "payment:T1", "refund:R1")   # after the earlier refund
    assert sorted(void.payload["payment_applies_to"], key=lambda item: item["invoice_number"]) == \
        [{"invoice_number": first, "amount": "0.00"}, {"invoice_number": second, "amount": "0.00"}]
    assert [d.doc_id for d in world.outbox.documents()] == ["payment:T1", "refund:R1", "void:T1"]


def test_a_prepaid_refund_refunds_the_customer_deposit(world):
    world.service.handle_notification(notification("authcapture.created", "T1", "25.00", customerId="PRE"))
    world.service.handle_notification(notification("refund.created", "R1", "5.00", refTransId="T1"))
    refund = world.outbox.get("refund:R1")
    assert refund.payload["refunds_type"] == "customer_deposit" and refund.payload["amount"] == "5.00"
    assert refund.payload["payment_applies_to"] == [] and refund.prerequisites == ("customer:PRE", "payment:T1")


def test_a_reversal_of_a_payment_recorded_in_netsuite_is_not_sent_back(world):
    from warp_billing.payments.records import PaymentHeader

    invoice = world.invoice("2026-09", "100.00")
    world.service.apply(PaymentHeader("netsuite:77", "POST", "postpaid", D("30.00"), "USD", date(2026, 12, 5),
                                      None, "netsuite"))
    world.service.handle_notification(notification("void.created", "netsuite:77", None))
    assert world.paid() == {} and world.outbox.documents() == [] and invoice

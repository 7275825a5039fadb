"""The PaymentStore contract on both adapters: SQLite (files) and Firestore (the emulator of the local
stack, collections of this run's own). Idempotent by transaction id and reversal id; concurrent
payments of one customer never apply the same open amount twice; receipts create-only."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest
from tests.integration.conftest import PROJECT, RUN_ID

from warp_billing.payments import allocation
from warp_billing.payments.allocation import CREDIT, Application, OpenInvoice
from warp_billing.payments.records import PaymentHeader

D = Decimal
INVOICES = [OpenInvoice("C-INV-000001", date(2026, 9, 1), D("100.00")),
            OpenInvoice("C-INV-000002", date(2026, 10, 1), D("50.00"))]


@pytest.fixture(params=["sqlite", "firestore"])
def store(request, tmp_path):
    if request.param == "sqlite":
        from warp_billing.adapters.sqlite_payments import SqlitePaymentStore

        return SqlitePaymentStore(tmp_path / "payments.sqlite")
    firestore_host = request.getfixturevalue("firestore_stack")
    from warp_billing.adapters.firestore_payments import FirestorePaymentStore
    from warp_billing.adapters.firestore_plans import firestore_client

    prefix = f"pay{RUN_ID}{uuid.uuid4().hex[:6]}_"
    return FirestorePaymentStore(lambda: firestore_client(PROJECT, firestore_host), collection_prefix=prefix)


def header(txn: str, amount: str, customer: str = "C") -> PaymentHeader:
    return PaymentHeader(txn, customer, "postpaid", D(amount), "USD", date(2026, 12, 1))


def oldest_first(amount: str):
    return lambda paid: allocation.allocate(D(amount), INVOICES, paid)


def paid(store, customer: str = "C") -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for _txn, number, amount, _day in store.applications(customer):
        totals[number] = totals.get(number, D(0)) + amount
    return totals


def test_apply_once_hold_decline_and_reverse_once(store):
    first = store.apply(header("T1", "120.00"), oldest_first("120.00"))
    again = store.apply(header("T1", "120.00"), oldest_first("120.00"))
    assert first.created and not again.created and again.applications == first.applications
    assert paid(store) == {"C-INV-000001": D("100.00"), "C-INV-000002": D("20.00")}
    held = store.hold(header("T2", "10.00"))
    assert held.status == "pending" and store.decline("T2").status == "declined"
    assert store.apply(header("T2", "10.00"), oldest_first("10.00")).status == "declined"
    taken = store.reverse("refund:R1", "T1", "2026-12-02T00:00:00Z", lambda left: allocation.reverse(left, D("30.00")))
    again = store.reverse("refund:R1", "T1", "2026-12-02T00:00:00Z", lambda left: allocation.reverse(left, D("30.00")))
    assert taken.created and not again.created and taken.amount == again.amount == D("30.00")
    assert paid(store) == {"C-INV-000001": D("90.00")}
    assert store.get("T1").reversed_amount == D("30.00")
    with pytest.raises(KeyError):
        store.reverse("void:T9", "T9", "x", lambda left: allocation.reverse(left, None))
    assert store.reject("r1", "BAD_AMOUNT", "x", b"{}", "t") and not store.reject("r1", "BAD_AMOUNT", "x", b"{}", "t")
    assert store.flag("f1", "invoice_voided", "C", {"a": 1}, "t")
    assert not store.flag("f1", "invoice_voided", "C", {}, "t")


def test_concurrent_payments_of_one_customer_cover_each_invoice_exactly(store):
    amounts = [f"{n % 7 + 1}.25" for n in range(40)]            # 40 payments, 30 % sent twice

    def pay(index: int):
        amount = amounts[index % 40]
        return store.apply(header(f"P{index % 40}", amount), oldest_first(amount))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(pay, list(range(40)) + list(range(12))))
    total = sum(D(a) for a in amounts)
    assert paid(store) == {"C-INV-000001": D("100.00"), "C-INV-000002": D("50.00")}
    credit = sum((item.amount for txn in range(40) for item in store.get(f"P{txn}").applications
                  if item.target == CREDIT), D(0))
    assert credit == total - D("150.00")
    assert all(sum(i.amount for i in store.get(f"P{n}").applications) == D(amounts[n]) for n in range(40))


def test_receipts_are_create_only(tmp_path, request):
    from warp_billing.adapters.sqlite_webhook_receipts import SqliteWebhookReceipts

    stores = [SqliteWebhookReceipts(tmp_path / "r.sqlite")]
    firestore_host = request.getfixturevalue("firestore_stack")
    from warp_billing.adapters.firestore_payments import FirestoreWebhookReceipts
    from warp_billing.adapters.firestore_plans import firestore_client

    stores.append(FirestoreWebhookReceipts(lambda: firestore_client(PROJECT, firestore_host),
                                           collection_prefix=f"rcpt{RUN_ID}_"))
    for receipts in stores:
        assert receipts.record_once("authorize-net", "n-1", "t", b"{}")
        assert not receipts.record_once("authorize-net", "n-1", "t", b"{}")


def test_a_reversal_of_more_than_is_left_commits_nothing(store):
    store.apply(header("T1", "20.00"), oldest_first("20.00"))
    with pytest.raises(ValueError):
        store.reverse("refund:R", "T1", "t", lambda left: allocation.reverse(left, D("20.01")))
    assert paid(store) == {"C-INV-000001": D("20.00")} and store.get("T1").reversed_amount == 0
    assert Application("C-INV-000001", D("20.00")) in store.get("T1").applications

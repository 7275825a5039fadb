"""On the local stack (`make stack-up`): payments, refunds and voids reach the NetSuite stand-in exactly once.

Signed Authorize.Net notifications go to the stack's `webhooks` function (Firestore payment store and
register, as deployed); the ERP outbox is enqueued on the stack's `netsuite` queue (tasks emulator),
whose tasks call the stack's `netsuite_sync`, which writes to the NetSuite stand-in. Every check is
on the stand-in's raw records (``/_control/records``: each record with its write count).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import requests
import yaml
from tests.charging_world import DECKS
from tests.erp_builders import draft
from tests.integration.conftest import HOST, require_stand_in, settings_from_env

import local_stack
from warp_billing.billing.revenue_recognition import AccountMap
from warp_billing.bootstrap import Container
from warp_billing.erp.enqueue import enqueue_pending
from warp_billing.erp.outbox_documents import customer_document
from warp_billing.webhooks.signatures import authorize_net_signature

WEBHOOKS = f"http://{HOST}:{local_stack.WEBHOOKS_PORT}/authorize-net"
NETSUITE = f"http://{HOST}:{local_stack.NETSUITE_PORT}"
D = Decimal


def stack() -> Container:
    for name in ("firestore", "tasks", "netsuite", "webhooks", "redis", "bigquery"):
        require_stand_in(name)
    return Container(settings_from_env(local_stack.stack_env()))


def signed_post(body: bytes) -> dict:
    headers = {"Content-Type": "application/json",
               "X-ANET-Signature": authorize_net_signature(body, local_stack.AUTHORIZE_NET_SIGNATURE_KEY)}
    for _ in range(30):   # the gateway retries a 503
        answer = requests.post(WEBHOOKS, data=body, headers=headers, timeout=60)
        if answer.status_code != 503:
            break
        time.sleep(0.5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def notification(notification_id: str, event: str, transaction_id: str, amount: str | None, **payload) -> bytes:
    fields = {"responseCode": 1, "entityName": "transaction", "id": transaction_id, **payload}
    if amount is not None:
        fields["authAmount"] = amount
    return orjson.dumps({"notificationId": notification_id, "eventType": f"net.authorize.payment.{event}",
                         "eventDate": "2026-12-02T01:00:00Z", "webhookId": "wh-ns", "payload": fields})


def records(external_ids: set[str]) -> list[dict]:
    every = requests.get(NETSUITE + "/_control/records", timeout=30).json()["records"]
    return [record for record in every if record["externalId"] in external_ids]


def sync_all(container: Container, customer: str, doc_ids: set[str], timeout_s: float = 90) -> None:
    """Enqueue the customer's pending documents until every one of ``doc_ids`` is synced."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        enqueue_pending(container.sync_outbox, container.netsuite_queue, customer_id=customer)
        status = {doc.doc_id: doc for doc in container.sync_outbox.documents(customer) if doc.doc_id in doc_ids}
        failed = {doc_id: doc.detail for doc_id, doc in status.items() if doc.status == "failed"}
        assert not failed, failed
        if len(status) == len(doc_ids) and all(doc.status == "synced" for doc in status.values()):
            return
        time.sleep(1)
    raise AssertionError(f"not synced after {timeout_s:.0f}s: {status}")


def put_plan(container: Container, customer: str, billing: str) -> None:
    plan = {"customer_id": customer, "billing": billing, "timezone": "UTC", "voice": {"deck": "voice.csv"}}
    if billing == "prepaid":
        plan["prepaid"] = {"low_balance_threshold": "1.00"}
    container.plan_store.put_plan(customer, yaml.safe_dump(plan), {"voice.csv": DECKS["voice.csv"]})


def test_a_refund_and_a_void_of_a_synced_payment_reach_netsuite_once_also_when_redelivered():
    container = stack()
    run = uuid.uuid4().hex[:8].upper()
    customer = f"NSR{run}"
    put_plan(container, customer, "postpaid")
    issued = container.close_register.issue_close(
        draft(customer, "2026-10", lines=(("VOICE-INTERSTATE", "1", "100.00"),), fees=()),
        watermark=datetime(2026, 11, 1, tzinfo=UTC), accounts=AccountMap(),
        customer=customer_document(customer, {"company_name": f"{customer} Telecom", "currency": "USD"},
                                   sequence=0, issued_at="2026-11-01T00:00:00Z"))
    invoice = str(issued.invoice.number)
    payment, refund = f"P{run}", f"R{run}"
    assert signed_post(notification(f"n-{payment}", "authcapture.created", payment, "100.00",
                                    invoiceNumber=invoice))["outcome"]["status"] == "applied"
    sync_all(container, customer, {f"customer:{customer}", invoice, f"payment:{payment}"})

    # the refund, delivered twice and once more under a new notification id (the gateway's retries)
    body = notification(f"n-{refund}", "refund.created", refund, "30.00", refTransId=payment)
    answers = [signed_post(body), signed_post(body),
               signed_post(notification(f"n2-{refund}", "refund.created", refund, "30.00", refTransId=payment))]
    assert [answer["outcome"]["status"] for answer in answers] == ["reversed", "reversed", "reversed"]
    sync_all(container, customer, {f"payment:{payment}", f"refund:{refund}"})
    signed_post(body)                                     # redelivered after the sync: nothing new
    assert enqueue_pending(container.sync_outbox, container.netsuite_queue, customer_id=customer).enqueued == []

    [ns_refund] = records({f"refund:{refund}"})
    [ns_payment] = records({f"payment:{payment}"})
    assert ns_refund["type"] == "customerRefund" and ns_refund["writes"] == 1
    assert D(ns_refund["total"]) == D("30.00")
    assert ns_refund["body"]["apply"]["items"] == [{"doc": {"id": ns_payment["id"]}, "apply": True, "amount": "30.00"}]
    # the payment is applied to what is left on the invoice; the refunded 30.00 is what it no longer applies
    [line] = ns_payment["body"]["apply"]["items"]
    assert (D(str(line["amount"])), line["apply"]) == (D("70.00"), True)
    assert [s.balance_due for s in container.close_register.standings(datetime.now(UTC).date(), customer)] == \
        [D("30.00")]

    # a void of the (already synced) payment: a refund of everything left of it, the invoice unapplied
    signed_post(notification(f"n-void-{payment}", "void.created", payment, None))
    sync_all(container, customer, {f"void:{payment}"})
    [ns_void] = records({f"void:{payment}"})
    assert ns_void["type"] == "customerRefund" and D(ns_void["total"]) == D("70.00") and ns_void["writes"] == 1
    [ns_payment] = records({f"payment:{payment}"})
    assert [(line["apply"], D(str(line["amount"]))) for line in ns_payment["body"]["apply"]["items"]] == \
        [(False, D("0.00"))]
    assert len(records({f"refund:{refund}", f"void:{payment}", f"payment:{payment}"})) == 3


def test_a_prepaid_top_up_is_a_customer_deposit_in_netsuite_and_its_refund_refunds_the_deposit():
    container = stack()
    run = uuid.uuid4().hex[:8].upper()
    customer = f"NSD{run}"
    put_plan(container, customer, "prepaid")
    assert container.reconcile_customer(customer)
    container.sync_outbox.add(customer_document(customer, {"company_name": f"{customer} Telecom", "currency": "USD"},
                                                sequence=0, issued_at="2026-11-01T00:00:00Z"))
    topup, refund = f"P{run}", f"R{run}"
    assert signed_post(notification(f"n-{topup}", "authcapture.created", topup, "40.00", customerId=customer,
                                    invoiceNumber=f"TOPUP-{run}"))["outcome"]["status"] == "applied"
    signed_post(notification(f"n-{refund}", "refund.created", refund, "15.00", refTransId=topup))
    sync_all(container, customer, {f"customer:{customer}", f"payment:{topup}", f"refund:{refund}"})
    [deposit] = records({f"payment:{topup}"})
    [ns_refund] = records({f"refund:{refund}"})
    assert deposit["type"] == "customerDeposit" and D(deposit["total"]) == D("40.00") and deposit["writes"] == 1
    assert [r["type"] for r in requests.get(NETSUITE + "/_control/records", timeout=30).json()["records"]
            if r["externalId"] == f"payment:{topup}"] == ["customerDeposit"]   # never a customerPayment too
    assert ns_refund["body"]["deposit"]["items"] == [{"doc": {"id": deposit["id"]}, "apply": True, "amount": "15.00"}]
    assert container.balances.account(customer).balance_micros == 25_000_000

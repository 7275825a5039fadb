"""Issue 12's "done when", end to end on the local stack (`make stack-up` first, or `make test`).

* A prepaid customer with a stored card runs low on a call rated by the stack's `rate_voice` (Pub/Sub
  push through tools/pubsub_relay.py): its recharge task (tasks emulator, `recharge` queue) makes the
  stack's `webhooks` charge the Authorize.Net stand-in, the balance is credited once (also when the
  stand-in's own webhook for the transaction arrives), and the receipt is on the SendGrid stand-in.
* A postpaid customer's overdue invoice (Firestore register) is reminded, warned and suspended by the
  daily dunning task on simulated days (the container's clock: the task reads "today" from it), its
  calls are then refused (ACCOUNT_SUSPENDED rejects in BigQuery), a signed Authorize.Net webhook pays
  the invoice, and the customer is reinstated: its calls are rated again. NetSuite (stand-in) gets the
  customer payment, applied to the invoice.

The stack has no Pub/Sub: the billing alerts the functions publish (the log sink: one JSON line per
alert in the function's log) are pushed to the stack's `notify` by this test, in the push envelope
Pub/Sub would use (pubsub_relay.deliver), exactly as published.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
import requests
import yaml
from tests.e2e.test_realtime_pipeline import stack_settings
from tests.erp_builders import draft

import local_stack
import pubsub_relay
from warp_billing.billing.revenue_recognition import AccountMap
from warp_billing.bootstrap import Container
from warp_billing.charging.topups import book_credit
from warp_billing.closing import dunning
from warp_billing.erp.enqueue import enqueue_pending
from warp_billing.erp.outbox_documents import customer_document
from warp_billing.webhooks.signatures import authorize_net_signature

pytestmark = pytest.mark.e2e
HOST = local_stack.HOST
VOICE_URL = f"http://{HOST}:{dict((n, p) for n, _t, p in local_stack.FUNCTIONS)['rate_voice']}/"
NOTIFY_URL = f"http://{HOST}:{local_stack.NOTIFY_PORT}/"
WEBHOOKS_URL = f"http://{HOST}:{local_stack.WEBHOOKS_PORT}/authorize-net"
SENDGRID = f"http://{HOST}:{local_stack.SENDGRID_PORT}"
AUTHORIZE_NET = f"http://{HOST}:{local_stack.AUTHORIZE_NET_PORT}"
NETSUITE = f"http://{HOST}:{local_stack.NETSUITE_PORT}"
LOGS = local_stack.LOG_DIR   # each stack function logs here (the log sink writes the alerts it publishes)
DECK = "prefix,destination,rate,effective_date\n1,US,1.0000,2026-01-01\n"   # 1.00 a minute
LADDER = {"ladder": [{"after_days": 1, "action": "remind"}, {"after_days": 7, "action": "warn"},
                     {"after_days": 15, "action": "suspend"}, {"after_days": 30, "action": "collections"}]}
D = Decimal


class Day:
    """The dunning task's clock: noon UTC of a simulated day."""

    def __init__(self, day: date):
        self.day = day

    def now_ms(self) -> int:
        return int(datetime(self.day.year, self.day.month, self.day.day, 12, tzinfo=UTC).timestamp() * 1000)

    def now_iso(self) -> str:
        return datetime.fromtimestamp(self.now_ms() / 1000, UTC).isoformat()


@pytest.fixture(scope="module")
def settings():
    values = stack_settings()
    for url in (VOICE_URL, NOTIFY_URL, SENDGRID + "/_mails", AUTHORIZE_NET + "/_control", NETSUITE + "/_control"):
        try:
            requests.get(url, timeout=5)
        except requests.ConnectionError:
            pytest.fail(f"{url} is not answering: run `make stack-up`", pytrace=False)
    from tests.integration.conftest import settings_from_env

    return settings_from_env(values)


def put_plan(container: Container, customer: str, billing: str, **sections) -> None:
    plan = {"customer_id": customer, "billing": billing, "timezone": "UTC", "voice": {"deck": "voice.csv"},
            "billing_profile": {"name": f"{customer} Telecom", "address": ["1 Main St"],
                                "account_number": f"{customer}-1", "email": f"ap@{customer.lower()}.example"},
            **sections}
    container.plan_store.put_plan(customer, yaml.safe_dump(plan), {"voice.csv": DECK})


def call(customer: str, event_id: str, duration_s: int) -> requests.Response:
    event = {"event_id": event_id, "kind": "voice", "customer_id": customer,
             "start_time": (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "duration_s": duration_s, "calling_number": "+13125550000", "called_number": "+12125551234",
             "direction": "termination"}
    answer = pubsub_relay.deliver(VOICE_URL, "usage-voice", json.dumps(event).encode())
    assert answer.status_code in (200, 204), answer.text
    return answer


def published_alert(function: str, alert_id: str, timeout_s: float = 60) -> dict:
    """The alert ``function`` published (its log line), as the billing-alerts topic would carry it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in (LOGS / f"{function}.log").read_text(errors="replace").splitlines():
            if alert_id in line and line.startswith("{"):
                alert = orjson.loads(line).get("alert")
                if alert and alert.get("alert_id") == alert_id:
                    return alert
        time.sleep(0.5)
    raise AssertionError(f"{function} published no alert {alert_id} within {timeout_s:.0f}s")


def push_alert(alert: dict) -> None:
    """Pub/Sub push of one billing-alerts message to the stack's notify (redelivered once, as it may be)."""
    for _ in range(2):
        answer = pubsub_relay.deliver(NOTIFY_URL, "billing-alerts", json.dumps(alert).encode(),
                                      attributes={"type": alert["type"], "customer_id": alert["customer_id"]},
                                      message_id=f"m-{alert['alert_id']}")
        assert answer.status_code in (200, 204), answer.text


def mail_ids(customer: str) -> list[str]:
    return [mail["body"]["personalizations"][0]["custom_args"]["warp_email_id"]
            for mail in requests.get(SENDGRID + "/_mails", timeout=10).json()
            if mail["body"]["personalizations"][0]["custom_args"]["warp_customer_id"] == customer]


def wait_for(done, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout_s:.0f}s: {what}")


def test_a_prepaid_customer_runs_low_is_recharged_once_and_gets_its_receipt(settings):
    container = Container(settings)
    customer = f"E2EPAY{uuid.uuid4().hex[:6].upper()}"
    put_plan(container, customer, "prepaid", prepaid={
        "low_balance_threshold": "5.00", "auto_recharge_below": "10.00", "auto_recharge_amount": "50.00",
        "recharge_profile": {"customer_profile_id": f"cp-{customer}", "payment_profile_id": "pp-1"}})
    terms = container.plan_catalog.current(customer).prepaid
    assert container.reconcile_customer(customer)
    book_credit(container.balances, container.ledger_store, container.reconcile_customer, customer_id=customer,
                entry_id=f"topup:{customer}-opening", amount_micros=12_000_000, kind="topup", reference="opening",
                at_ms=container.clock.now_ms(), terms=terms)

    call(customer, f"{customer}-call-1", 180)   # 3.00: 12.00 -> 9.00, below the recharge trigger of 10.00

    wait_for(lambda: container.balances.account(customer).balance_micros == 59_000_000, 90,
             "the recharge of 50.00 credited")
    charges = [t for t in requests.get(AUTHORIZE_NET + "/_control", timeout=10).json()["transactions"]
               if (t.get("customer") or {}).get("id") == customer]
    [charge] = charges
    assert charge["responseCode"] == 1 and charge["authAmount"] == "50.00"
    wait_for(lambda: [w for w in requests.get(AUTHORIZE_NET + "/_control", timeout=10).json()["webhooks"]
                      if w["transaction_id"] == charge["transId"] and w["status"] == 200], 30,
             "the stand-in's own webhook for the charge answered")
    time.sleep(1)
    assert container.balances.account(customer).balance_micros == 59_000_000   # credited once
    credits = [e for e in container.ledger_store.entries(customer) if e.entry_id.startswith("payment:")]
    assert [(e.entry_id, e.amount_micros) for e in credits] == [(f"payment:{charge['transId']}", 50_000_000)]

    push_alert(published_alert("webhooks", f"payment_received:{customer}:{charge['transId']}"))
    assert mail_ids(customer).count(f"{charge['transId']}:receipt") == 1


def test_an_overdue_invoice_is_reminded_suspended_and_reinstated_by_a_signed_payment_that_reaches_netsuite(
        settings):
    customer = f"E2EDUN{uuid.uuid4().hex[:6].upper()}"
    container = Container(settings)
    put_plan(container, customer, "postpaid", collections=LADDER)
    issued = container.close_register.issue_close(
        draft(customer, "2026-10", lines=(("VOICE-INTERSTATE", "100", "120.00"),), fees=()),
        watermark=datetime(2026, 11, 1, tzinfo=UTC), accounts=AccountMap(),
        customer=customer_document(customer, {"company_name": f"{customer} Telecom", "currency": "USD"},
                                   sequence=0, issued_at="2026-11-01T00:00:00Z"))
    invoice = issued.invoice
    number = str(invoice.number)

    steps: dict[int, list[str]] = {}
    for offset in range(0, 17):   # the daily dunning task, days after the due date
        day = invoice.due_date + timedelta(days=offset)
        run = dunning(Container(settings, clock=Day(day)))
        assert not run["errors"], run["errors"]
        done = [step["action"] for step in run["steps"] if step.get("invoice_number") == number]
        if done:
            steps[offset] = done
    assert steps == {1: ["remind"], 7: ["warn"], 15: ["suspend"]}
    assert [mail_ids(customer).count(f"{number}:{step}") for step in ("remind", "warn", "suspend")] == [1, 1, 1]

    call(customer, f"{customer}-refused", 60)     # suspended: charging refuses
    today = datetime.now(UTC).date()
    rejects = wait_for(lambda: [r for r in container.usage_store.reject_records(today - timedelta(days=1), today)
                                if r.get("event_id") == f"{customer}-refused"], 30, "the refused call's reject")
    assert [r["reason"] for r in rejects] == ["ACCOUNT_SUSPENDED"]

    transaction = f"T{customer}"
    body = orjson.dumps({"notificationId": f"n-{transaction}", "eventType": "net.authorize.payment.authcapture.created",
                         "eventDate": datetime.now(UTC).isoformat(), "webhookId": "wh-e2e",
                         "payload": {"responseCode": 1, "authAmount": "120.00", "entityName": "transaction",
                                     "id": transaction, "invoiceNumber": number, "customerId": customer}})
    headers = {"Content-Type": "application/json",
               "X-ANET-Signature": authorize_net_signature(body, local_stack.AUTHORIZE_NET_SIGNATURE_KEY)}
    answer = requests.post(WEBHOOKS_URL, data=body, headers=headers, timeout=60)
    assert answer.status_code == 200 and answer.json()["outcome"]["status"] == "applied", answer.text
    [standing] = container.close_register.standings(today, customer)
    assert (standing.status, standing.balance_due) == ("paid", D("0.00"))

    assert container.account_holds.hold(customer) is not None   # still refused until the alert is handled
    push_alert(published_alert("webhooks", f"payment_received:{customer}:{transaction}"))
    assert container.account_holds.hold(customer) is None and container.dunning_store.suspension(customer) is None
    ids = mail_ids(customer)
    assert ids.count(f"{transaction}:receipt") == 1 and ids.count(f"{number}:reinstated") == 1

    call(customer, f"{customer}-after", 60)       # reinstated: rated and charged again
    rated = wait_for(lambda: [r for r in container.usage_store.rated_records(today - timedelta(days=1), today,
                                                                              customer_id=customer)
                              if r["event_id"] == f"{customer}-after"], 30, "the call after reinstatement rated")
    assert D(str(rated[0]["amount"])) == D("1.00")

    # NetSuite: the customer, the invoice and the customer payment applied to it, each once
    deadline = time.monotonic() + 90
    wanted = {f"customer:{customer}", number, f"payment:{transaction}"}
    while time.monotonic() < deadline:
        enqueue_pending(container.sync_outbox, container.netsuite_queue, customer_id=customer)
        docs = {d.doc_id: d.status for d in container.sync_outbox.documents(customer) if d.doc_id in wanted}
        if docs == dict.fromkeys(wanted, "synced"):
            break
        time.sleep(1)
    records = {(r["type"], r["externalId"]): r for r in requests.get(NETSUITE + "/_control/records",
                                                                      timeout=30).json()["records"]
               if r["externalId"] in wanted}
    payment = records[("customerPayment", f"payment:{transaction}")]
    ns_invoice = records[("invoice", number)]
    assert payment["writes"] == 1 and D(payment["total"]) == D("120.00")
    assert payment["body"]["apply"]["items"] == [{"doc": {"id": ns_invoice["id"]}, "apply": True, "amount": "120.00"}]

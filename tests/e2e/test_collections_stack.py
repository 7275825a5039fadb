"""Collections end to end on the local stack: billing alerts pushed to `notify` under
functions-framework -> emails on the SendGrid stand-in (once each, sandbox mode), a payment that
reinstates a suspended customer (the hold in the stack's Redis, the dunning store in Firestore),
and the HubSpot company updated through the hubspot queue -> `crm_sync` -> the HubSpot stand-in.

Run by `make test` (which starts the stack); by hand: `make stack-up` first.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from tests.e2e.test_realtime_pipeline import ROOT, WARP, stack_settings

import local_stack
import pubsub_relay

pytestmark = pytest.mark.e2e
NOTIFY_URL = f"http://{local_stack.HOST}:{local_stack.NOTIFY_PORT}/"
SENDGRID = f"http://{local_stack.HOST}:{local_stack.SENDGRID_PORT}"
HUBSPOT = f"http://{local_stack.HOST}:{local_stack.HUBSPOT_PORT}"


def collections_env() -> dict[str, str]:
    """The stack's settings over this process's environment, once notify and the stand-ins answer."""
    import os

    settings = stack_settings()
    for url in (NOTIFY_URL, SENDGRID + "/_mails", HUBSPOT + "/_stats"):
        try:
            requests.get(url, timeout=5)
        except requests.ConnectionError:
            pytest.fail(f"{url} is not answering: run `make stack-up`", pytrace=False)
    return {**os.environ, **settings}


@pytest.fixture(scope="module")
def env():
    return collections_env()


def warp(env, *args) -> str:
    import subprocess

    done = subprocess.run([str(WARP), *args], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def customer(env, tmp_path_factory):
    customer_id = f"E2EC{uuid.uuid4().hex[:8].upper()}"
    folder = tmp_path_factory.mktemp("plan")
    (folder / "deck.csv").write_text("prefix,destination,rate,effective_date\n1,US,0.0100,2026-01-01\n")
    (folder / "plan.yaml").write_text(
        f"customer_id: {customer_id}\nbilling: prepaid\ntimezone: UTC\nvoice: {{deck: deck.csv}}\n"
        "prepaid: {low_balance_threshold: '1.00'}\n"
        f"billing_profile: {{name: {customer_id} Telecom, address: [1 Main St], account_number: A-1, "
        f"email: ap@{customer_id.lower()}.example}}\n")
    warp(env, "plans", "load", str(folder / "plan.yaml"))
    return customer_id


def mails_for(customer_id: str) -> list[dict]:
    return [mail for mail in requests.get(SENDGRID + "/_mails", timeout=10).json()
            if mail["body"]["personalizations"][0]["custom_args"]["warp_customer_id"] == customer_id]


def push(alert: dict) -> requests.Response:
    return pubsub_relay.deliver(NOTIFY_URL, "billing-alerts", json.dumps(alert).encode(),
                                attributes={"type": alert["type"], "customer_id": alert["customer_id"]})


def test_a_low_balance_alert_is_one_email_however_often_it_is_delivered(env, customer):
    alert = {"alert_id": f"low_balance:{customer}:e1", "type": "low_balance", "customer_id": customer,
             "event_id": "e1", "balance": "0.80", "threshold": "1.00", "currency": "USD", "at": "2026-12-02T01:00:00Z"}
    assert [push(alert).status_code for _ in range(3)] == [200, 200, 200]
    [mail] = mails_for(customer)
    body = mail["body"]
    assert mail["sandbox"] and body["template_id"] == "d-local-low_balance"
    assert body["personalizations"][0]["to"][0]["email"] == f"ap@{customer.lower()}.example"
    assert body["personalizations"][0]["dynamic_template_data"]["balance"] == "0.80"


def test_a_payment_reinstates_a_suspended_customer_sends_a_receipt_and_updates_hubspot(env, customer):
    assert "suspended" in warp(env, "account", "suspend", customer, "--invoice", f"{customer}-INV-000001")
    assert json.loads(warp(env, "account", "status", customer, "--json"))["suspended"] is True

    alert = {"alert_id": f"payment_received:{customer}:T-{customer}", "type": "payment_received",
             "customer_id": customer, "transaction_id": f"T-{customer}", "amount": "25.00", "currency": "USD",
             "invoice_numbers": [f"{customer}-INV-000001"], "received_on": "2026-12-02"}
    assert push(alert).status_code == 200
    assert push(alert).status_code == 200          # redelivered: no second receipt

    status = json.loads(warp(env, "account", "status", customer, "--json"))
    assert status["suspended"] is False and status["suspension_record"] is None
    ids = [mail["body"]["personalizations"][0]["custom_args"]["warp_email_id"] for mail in mails_for(customer)]
    assert ids.count(f"T-{customer}:receipt") == 1
    assert ids.count(f"{customer}-INV-000001:reinstated") == 1

    deadline = time.monotonic() + 60
    company = None
    while time.monotonic() < deadline and company is None:
        company = requests.get(HUBSPOT + "/_objects/companies", timeout=10).json().get(f"warp_customer_id={customer}")
        time.sleep(0.3)
    assert company is not None, "the HubSpot company was not updated through the hubspot queue"
    assert company["properties"]["warp_last_payment"] == f"T-{customer}"

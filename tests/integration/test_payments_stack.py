"""On the local stack (`make stack-up`): a prepaid customer with a stored card runs low and is recharged.

The crossing is decided by the stack's Redis; the alert goes through the same trigger the rating
functions use; the recharge task goes on the tasks emulator's ``recharge`` queue, which calls the
stack's `webhooks` function; it charges the Authorize.Net stand-in, credits the balance (Redis +
the BigQuery ledger, the payment in Firestore); the stand-in's signed webhook for the same
transaction reaches the function too and changes nothing more.
"""

from __future__ import annotations

import time

import requests
import yaml
from tests.charging_world import DECKS
from tests.integration.conftest import HOST, RUN_ID, require_stand_in, settings_from_env

import local_stack
from warp_billing.bootstrap import Container
from warp_billing.charging.accounts import AlertCode, ChargeRequest
from warp_billing.charging.alerts import account_alert
from warp_billing.charging.topups import book_credit

STANDIN = f"http://{HOST}:{local_stack.AUTHORIZE_NET_PORT}"


def test_a_prepaid_customer_runs_low_and_is_recharged_once():
    for name in ("redis", "bigquery", "firestore", "tasks", "authorize_net", "webhooks"):
        require_stand_in(name)
    env = local_stack.stack_env()
    settings = settings_from_env(env)
    container = Container(settings)
    customer = f"RCG{RUN_ID}".upper()
    plan = {"customer_id": customer, "billing": "prepaid", "timezone": "UTC", "voice": {"deck": "voice.csv"},
            "prepaid": {"low_balance_threshold": "5.00", "auto_recharge_below": "10.00",
                        "auto_recharge_amount": "50.00",
                        "recharge_profile": {"customer_profile_id": "cp-1", "payment_profile_id": "pp-1"}}}
    container.plan_store.put_plan(customer, yaml.safe_dump(plan), {"voice.csv": DECKS["voice.csv"]})
    terms = container.plan_catalog.current(customer).prepaid
    assert container.reconcile_customer(customer)
    book_credit(container.balances, container.ledger_store, container.reconcile_customer, customer_id=customer,
                entry_id=f"topup:{customer}-opening", amount_micros=20_000_000, kind="topup", reference="opening",
                at_ms=container.clock.now_ms(), terms=terms)
    # traffic takes the balance from 20.00 to 5.00: below the recharge trigger of 10.00
    charged = container.balances.charge(ChargeRequest(customer, f"{customer}-call-1", 15_000_000,
                                                      container.clock.now_ms(), "voice", "v1", terms))
    container.ledger_store.append(list(charged.entries))
    crossings = [alert for alert in charged.alerts if alert.code is AlertCode.LOW_BALANCE]
    assert crossings, charged.alerts
    for alert in crossings:   # what the rating function publishes (with the recharge trigger in front)
        container.alert_publisher.publish(account_alert(alert, customer, f"{customer}-call-1", charged.at_ms, "USD",
                                                        terms.low_balance_threshold_micros))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if container.balances.account(customer).balance_micros >= 55_000_000:
            break
        time.sleep(0.5)
    assert container.balances.account(customer).balance_micros == 55_000_000
    control = requests.get(STANDIN + "/_control", timeout=10).json()
    [charge] = [t for t in control["transactions"] if (t.get("customer") or {}).get("id") == customer]
    assert charge["responseCode"] == 1 and charge["authAmount"] == "50.00"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:   # the stand-in's webhook for the same transaction was answered
        sent = [w for w in requests.get(STANDIN + "/_control", timeout=10).json()["webhooks"]
                if w["transaction_id"] == charge["transId"]]
        if sent:
            break
        time.sleep(0.5)
    assert [w["status"] for w in sent] == [200]
    time.sleep(1)
    assert container.balances.account(customer).balance_micros == 55_000_000
    payments = [e for e in container.ledger_store.entries(customer) if e.entry_id.startswith("payment:")]
    assert [(e.entry_id, e.amount_micros) for e in payments] == [(f"payment:{charge['transId']}", 50_000_000)]
    assert container.payment_store.get(charge["transId"]).status == "applied"

"""NetSuite -> WARP through the `webhooks` function (functions-framework app, real SQLite stores, the
file register and plan folder; charging balances not involved: postpaid customers).

Forged, missing and stale signatures change nothing and record nothing; a customer payment recorded
in NetSuite is applied to our invoice once (and never sent back); our own payment's echo is
ignored; a void or a foreign credit memo is flagged for an operator with nothing changed; a
terms / credit-limit change makes one new plan version.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import orjson
import pytest
import yaml
from functions_framework import create_app
from tests.charging_world import DECKS
from tests.erp_builders import draft
from tests.fakes import FakeAlertPublisher

from warp_billing import bootstrap
from warp_billing.adapters.sqlite_payments import SqlitePaymentStore
from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.settings import Settings
from warp_billing.webhooks.signatures import netsuite_signature

ROOT = Path(__file__).resolve().parents[3]
SECRET = "netsuite-webhook-secret"


@pytest.fixture
def world(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", plans_dir=tmp_path / "plans", register_dir=tmp_path / "register",
                        netsuite_webhook_secret=SECRET, sync_outbox="register", plan_refresh_s=0)
    alerts = FakeAlertPublisher()
    container = bootstrap.Container(settings, alert_publisher=alerts)
    plan = {"customer_id": "ACME", "billing": "postpaid", "timezone": "UTC", "voice": {"deck": "voice.csv"},
            "terms": {"net_days": 15}, "postpaid": {"credit_limit": "1000.00"}}
    container.plan_store.put_plan("ACME", yaml.safe_dump(plan), {"voice.csv": DECKS["voice.csv"]})
    register = InvoiceRegister(tmp_path / "register")
    number = str(register.issue(draft("ACME", "2026-10", lines=(("VOICE-INTERSTATE", "1", "300.00"),),
                                      fees=())).invoice.number)
    bootstrap.reset(container)
    app = create_app("webhooks", str(ROOT / "functions" / "webhooks" / "main.py"), "http")
    yield {"client": app.test_client(), "container": container, "alerts": alerts, "register": register,
           "invoice": number, "store": SqlitePaymentStore(tmp_path / "register" / "payments.sqlite")}
    bootstrap.reset()


def event(event_id: str, kind: str, **record) -> bytes:
    return orjson.dumps({"id": event_id, "type": kind, "occurred_at": "2026-12-02T01:00:00Z", "record": record})


def send(world, body: bytes, *, stamp: int | None = None, header: str | None = "sign"):
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers["X-Warp-Signature"] = netsuite_signature(body, SECRET, int(time.time()) if stamp is None else stamp)
    elif header is not None:
        headers["X-Warp-Signature"] = header
    return world["client"].post("/netsuite", data=body, headers=headers)


def payment(world, event_id="ev-1", internal_id="555", amount="120.00", **extra) -> bytes:
    return event(event_id, "customer_payment.created", internal_id=internal_id, customer_id="ACME", amount=amount,
                 currency="USD", date="2026-12-01",
                 applies_to=[{"invoice_number": world["invoice"], "amount": amount}], **extra)


def standing(world):
    [row] = world["register"].standings(date(2026, 12, 2), "ACME")
    return row.status, row.paid


@pytest.mark.parametrize("header", [None, "", "t=1,v1=" + "0" * 64, "garbage"])
def test_missing_or_forged_signature_is_401_and_nothing_recorded(world, header):
    assert send(world, payment(world), header=header).status_code == 401
    assert world["store"].payments() == [] and standing(world) == ("overdue", 0)


def test_stale_signature_is_401(world):
    answer = send(world, payment(world), stamp=int(time.time()) - 301)
    assert answer.status_code == 401 and answer.get_json()["error"] == "signature_stale"
    assert world["store"].payments() == []


def test_a_netsuite_payment_is_applied_once_and_not_sent_back(world):
    for _ in range(2):
        assert send(world, payment(world)).status_code == 200
    assert send(world, payment(world, event_id="ev-1-edited")).status_code == 200   # same payment, new event
    assert standing(world) == ("overdue", 120)
    assert [r.transaction_id for r in world["store"].payments()] == ["netsuite:555"]
    assert not [d for d in world["container"].sync_outbox.documents() if d.doc_type == "customer_payment"]
    assert [a["transaction_id"] for a in world["alerts"].of_type("payment_received")] == ["netsuite:555"]


def test_the_echo_of_our_own_payment_is_ignored(world):
    answer = send(world, payment(world, internal_id="556", external_id="payment:600123"))
    assert answer.get_json()["outcome"]["status"] == "ignored" and world["store"].payments() == []


def test_a_void_in_netsuite_is_flagged_and_changes_nothing(world):
    body = event("ev-void", "invoice.voided", internal_id="77", invoice_number=world["invoice"], customer_id="ACME")
    for _ in range(2):
        assert send(world, body).get_json()["outcome"]["status"] == "flagged"
    assert [(f[1], f[2]) for f in world["store"].flags()] == [("invoice_voided", "ACME")]
    assert [a["change"] for a in world["alerts"].of_type("netsuite_change_flagged")] == ["invoice_voided"]
    assert standing(world) == ("overdue", 0) and len(world["register"].documents("ACME")) == 1


def test_terms_change_makes_one_new_plan_version(world):
    plans = world["container"].plan_store
    body = event("ev-terms", "customer.terms_changed", customer_id="ACME", net_days=30, credit_limit="2500.00")
    assert send(world, body).get_json()["outcome"]["status"] == "new_plan_version"
    document = plans.plan_document("ACME", plans.current_version("ACME"))
    assert document["terms"]["net_days"] == 30 and str(document["postpaid"]["credit_limit"]) == "2500.00"
    again = event("ev-terms-2", "customer.terms_changed", customer_id="ACME", net_days=30, credit_limit="2500.00")
    assert send(world, again).get_json()["outcome"]["status"] == "unchanged"


def test_an_unusable_event_is_a_named_reject(world):
    answer = send(world, event("ev-x", "customer_payment.created", customer_id="NOBODY", internal_id="1",
                               amount="5.00"))
    assert answer.status_code == 200 and answer.get_json()["outcome"]["reason"] == "UNKNOWN_CUSTOMER"
    assert [r[1] for r in world["store"].rejects()] == ["UNKNOWN_CUSTOMER"]

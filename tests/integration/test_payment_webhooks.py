"""The `webhooks` function under functions-framework (a process of its own) with a real redis-server,
the SQLite payment store, the file invoice register and plan folder: signed Authorize.Net payments.

* 1,000 signed notifications, 30 % of them duplicates (the same notification again, or the same
  transaction under a new notification id), from 8 threads: every prepaid balance and every invoice
  payment exact, Redis balance = ledger sum, one payment row, one ledger entry and one NetSuite
  ``customer_payment`` per transaction;
* forged, missing and replayed signatures change nothing and record nothing;
* a refund reverses its payment.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import redis
import requests
import yaml
from tests.charging_world import DECKS
from tests.erp_builders import draft
from tests.integration.conftest import settings_from_env

from warp_billing import bootstrap
from warp_billing.adapters.sqlite_payments import SqlitePaymentStore
from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.webhooks.signatures import authorize_net_signature

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_FRAMEWORK = Path(sys.executable).with_name("functions-framework")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
KEY = "F00DFACE" * 16
PREPAID = ["PRE1", "PRE2", "PRE3", "PRE4"]
POSTPAID = ["POST1", "POST2", "POST3", "POST4"]
BILLED = ("400.00", "250.00", "125.50")   # each postpaid customer's three invoices
pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs the redis-server binary")
D = Decimal


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("payments")
    redis_port, function_port = free_port(), free_port()
    redis_dir = tempfile.mkdtemp(prefix="warp-redis-")
    redis_process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", redis_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
    env.update({
        "WARP_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "WARP_DATA_DIR": str(root / "data"),
        "WARP_PLAN_STORE": "files", "WARP_PLANS_DIR": str(root / "plans"), "WARP_REGISTER_DIR": str(root / "register"),
        "WARP_SYNC_OUTBOX": "register", "WARP_AUTHORIZE_NET_SIGNATURE_KEY": KEY, "WARP_PAYMENT_STORE": "sqlite",
        "WARP_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT / "shared"),
    })
    settings = settings_from_env(env)
    container = bootstrap.Container(settings)
    _wait(lambda: redis.Redis(port=redis_port).ping())
    for customer in PREPAID + POSTPAID:
        billing = "prepaid" if customer in PREPAID else "postpaid"
        plan = {"customer_id": customer, "billing": billing, "timezone": "UTC", "voice": {"deck": "voice.csv"}}
        if billing == "prepaid":
            plan["prepaid"] = {"low_balance_threshold": "1.00"}
        container.plan_store.put_plan(customer, yaml.safe_dump(plan), {"voice.csv": DECKS["voice.csv"]})
    for customer in PREPAID:
        assert container.reconcile_customer(customer)
    register = InvoiceRegister(root / "register")
    invoices = {customer: [str(register.issue(draft(customer, period, lines=(("VOICE-INTERSTATE", "1", amount),),
                                                     fees=())).invoice.number)
                           for period, amount in zip(("2026-08", "2026-09", "2026-10"), BILLED, strict=True)]
                for customer in POSTPAID}
    log = open(root / "webhooks.log", "wb")  # noqa: SIM115 - the function process writes it
    function = subprocess.Popen(
        [str(FUNCTIONS_FRAMEWORK), "--target", "webhooks", "--source", str(ROOT / "functions/webhooks/main.py"),
         "--signature-type", "http", "--host", "127.0.0.1", "--port", str(function_port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{function_port}"
    try:
        _wait(lambda: requests.get(url + "/", timeout=2))
        yield {"url": url, "root": root, "container": container, "invoices": invoices, "redis_port": redis_port}
    finally:
        function.terminate()
        function.wait(timeout=20)
        log.close()
        redis_process.kill()
        redis_process.wait(timeout=10)
        shutil.rmtree(redis_dir, ignore_errors=True)


def _wait(probe, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            probe()
            return
        except (redis.ConnectionError, requests.ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def notification(notification_id: str, transaction_id: str, customer: str, amount: Decimal,
                 event: str = "authcapture.created", **payload) -> bytes:
    return orjson.dumps({
        "notificationId": notification_id, "eventType": f"net.authorize.payment.{event}",
        "eventDate": "2026-12-02T01:00:00Z", "webhookId": "wh-load",
        "payload": {"responseCode": 1, "authAmount": str(amount), "entityName": "transaction", "id": transaction_id,
                    "customerId": customer, **payload},
    })


def post(url: str, body: bytes, signature: str | None = "valid", session: requests.Session | None = None):
    headers = {"Content-Type": "application/json"}
    if signature == "valid":
        headers["X-ANET-Signature"] = authorize_net_signature(body, KEY)
    elif signature is not None:
        headers["X-ANET-Signature"] = signature
    for _ in range(50):   # the gateway retries a 503 (a customer being reconciled, a busy store)
        answer = (session or requests).post(url + "/authorize-net", data=body, headers=headers, timeout=60)
        if answer.status_code != 503:
            return answer
        time.sleep(0.05)
    return answer


def applied_by_target(store: SqlitePaymentStore, customer: str) -> tuple[dict[str, Decimal], Decimal]:
    """What the load's payments (LT...) put on each invoice, and on the credit balance."""
    paid: dict[str, Decimal] = {}
    credit = D(0)
    for record in store.payments(customer):
        if not record.transaction_id.startswith("LT"):
            continue
        assert sum(item.amount for item in record.applications) == record.header.amount
        for item in record.applications:
            if item.target == "@credit":
                credit += item.amount
            else:
                paid[item.target] = paid.get(item.target, D(0)) + item.amount
    return paid, credit


def payments_db(stack) -> sqlite3.Connection:
    return sqlite3.connect(stack["root"] / "register" / "payments.sqlite")


def test_forged_missing_and_replayed_signatures_change_nothing(stack):
    body = notification("sig-1", "SIG-T1", "PRE1", D("1.00"))
    for signature in (None, "", "sha512=" + "0" * 128, authorize_net_signature(body, KEY + "x")):
        assert post(stack["url"], body, signature).status_code == 401
    tampered = notification("sig-1", "SIG-T1", "PRE1", D("1000.00"))
    assert post(stack["url"], tampered, authorize_net_signature(body, KEY)).status_code == 401
    store = SqlitePaymentStore(stack["root"] / "register" / "payments.sqlite")
    assert store.get("SIG-T1") is None
    assert not any(e.entry_id == "payment:SIG-T1" for e in stack["container"].ledger_store.entries("PRE1"))


def test_thousand_webhooks_with_duplicates_from_eight_threads_are_applied_exactly_once(stack):
    rng = random.Random(12)
    unique: list[tuple[str, bytes, str, Decimal]] = []
    for n in range(700):
        customer = rng.choice(PREPAID + POSTPAID)
        amount = D(rng.randint(100, 20_000)).scaleb(-2)
        extra = {}
        if customer in POSTPAID and rng.random() < 0.3:
            extra["invoiceNumber"] = rng.choice(stack["invoices"][customer])
        unique.append((f"LT{n:05d}", notification(f"n-{n}", f"LT{n:05d}", customer, amount, **extra), customer,
                       amount))
    deliveries = [body for _, body, _, _ in unique]
    for index in range(300):                       # 30 % duplicates of the 1,000
        txn, body, customer, amount = unique[rng.randrange(len(unique))]
        if index % 2:
            deliveries.append(body)                # the same notification delivered again
        else:                                      # the same transaction under another notification
            deliveries.append(notification(f"again-{index}", txn, customer, amount, event="capture.created"))
    rng.shuffle(deliveries)
    local = threading.local()

    def send(body: bytes) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return post(stack["url"], body, session=local.session).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, deliveries))
    assert statuses.count(200) == 1000

    container = stack["container"]
    paid_in = {customer: D(0) for customer in PREPAID + POSTPAID}
    for _, _, customer, amount in unique:
        paid_in[customer] += amount
    r = redis.Redis(port=stack["redis_port"], decode_responses=True)
    for customer in PREPAID:   # balance = every payment once, in Redis and in the ledger
        ledger = [e for e in container.ledger_store.entries(customer) if e.entry_id.startswith("payment:LT")]
        assert sum(e.amount_micros for e in ledger) == int(paid_in[customer] * 1_000_000)
        assert len(ledger) == len({e.entry_id for e in ledger})
        assert container.balances.account(customer).balance_micros == \
            sum(e.amount_micros for e in container.ledger_store.entries(customer))
    assert r.ping()
    store = SqlitePaymentStore(stack["root"] / "register" / "payments.sqlite")
    for customer in POSTPAID:  # every invoice paid exactly, the rest a credit balance
        billed = [D(amount) for amount in BILLED]
        assert paid_in[customer] > sum(billed), "the draw must overpay so that every invoice ends paid"
        paid, credit = applied_by_target(store, customer)
        assert paid == dict(zip(stack["invoices"][customer], billed, strict=True))
        assert credit == paid_in[customer] - sum(billed)
        register = InvoiceRegister(stack["root"] / "register")   # what `warp invoices list` and collections see
        assert {s.status for s in register.standings(date(2026, 12, 2), customer)} == {"paid"}
    with payments_db(stack) as db:
        assert db.execute("SELECT COUNT(*) FROM payments WHERE transaction_id LIKE 'LT%'").fetchone()[0] == 700
    outbox = [d for d in container.close_register.outbox.documents() if d.doc_id.startswith("payment:LT")]
    assert len(outbox) == 700
    # a postpaid payment is a customer payment, a prepaid top-up a customer deposit (never both)
    assert all(d.doc_type == ("customer_deposit" if d.customer_id in PREPAID else "customer_payment") for d in outbox)
    by_doc = {d.doc_id: d for d in outbox}
    for txn, _, customer, amount in unique:
        assert by_doc[f"payment:{txn}"].payload["amount"] == str(amount)
        invoices = set(stack["invoices"].get(customer, ()))
        # the payment follows the invoices it pays in the outbox (their sequence is lower)
        assert set(by_doc[f"payment:{txn}"].prerequisites) - {f"customer:{customer}"} <= invoices


def test_refund_reverses_the_payment(stack):
    body = notification("rf-1", "RF-T1", "PRE2", D("50.00"))
    assert post(stack["url"], body).json()["outcome"]["status"] == "applied"
    before = stack["container"].balances.account("PRE2").balance_micros
    refund = notification("rf-2", "RF-R1", "PRE2", D("50.00"), event="refund.created", refTransId="RF-T1")
    for _ in range(2):
        assert post(stack["url"], refund).status_code == 200
    assert stack["container"].balances.account("PRE2").balance_micros == before - 50_000_000
    ledger = {e.entry_id: e.amount_micros for e in stack["container"].ledger_store.entries("PRE2")}
    assert ledger["payment:RF-T1#refund:RF-R1"] == -50_000_000

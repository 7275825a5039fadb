"""The Authorize.Net client against the stand-in (tools/authorize_net_standin.py, a process of its own),
and the stand-in's signed webhooks applied by the `webhooks` function under functions-framework with
a real redis-server: a stored-profile charge, approved, is credited once from its webhook (the
customer fetched with getTransactionDetails, as the payload does not carry it); a declined one
credits nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests
import yaml
from tests.charging_world import DECKS
from tests.integration.conftest import settings_from_env

from warp_billing import bootstrap
from warp_billing.adapters.authorize_net import AuthorizeNetClient, GatewayRefused
from warp_billing.charging.errors import TransientError
from warp_billing.payments.gateway import ProfileCharge
from warp_billing.webhooks.signatures import SignatureVerdict, verify_authorize_net

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_FRAMEWORK = Path(sys.executable).with_name("functions-framework")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
LOGIN, TRANSACTION_KEY, SIGNATURE_KEY = "warp-local-login", "warp-local-transaction-key", "AB12" * 32
pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs the redis-server binary")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def standin():
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "tools" / "authorize_net_standin.py"), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/_control")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def client(standin):
    requests.post(standin + "/_control", json={"reset": True}, timeout=5)
    return AuthorizeNetClient(standin + "/xml/v1/request.api", lambda: LOGIN, lambda: TRANSACTION_KEY, timeout_s=10)


def charge(amount: str, customer: str = "PRE1", ref_id: str = "rc-PRE1-1", profile: str = "pp-1") -> ProfileCharge:
    return ProfileCharge(ref_id, customer, "cp-1", profile, Decimal(amount), ref_id, "auto-recharge")


def test_answers_begin_with_a_byte_order_mark(standin, client):
    raw = requests.post(standin + "/xml/v1/request.api", json={"getTransactionDetailsRequest": {
        "merchantAuthentication": {"name": LOGIN, "transactionKey": TRANSACTION_KEY}, "transId": "1"}}, timeout=5)
    assert raw.content.startswith(b"\xef\xbb\xbf")
    with pytest.raises(KeyError):
        client.transaction_details("1")


def test_approved_charge_and_its_details(client):
    outcome = client.charge_profile(charge("250.00"))
    assert outcome.approved and outcome.transaction_id
    details = client.transaction_details(outcome.transaction_id)
    assert (details.customer_id, details.invoice_number, details.amount, details.response_code) == \
        ("PRE1", "rc-PRE1-1", Decimal("250.00"), 1)


@pytest.mark.parametrize(("amount", "code"), [("2.00", 2), ("27.00", 2), ("6.00", 3), ("252.00", 4), ("2.01", 1)])
def test_approvals_and_declines_by_amount_like_the_sandbox(client, amount, code):
    outcome = client.charge_profile(charge(amount))
    assert outcome.response_code == code
    assert outcome.approved is (code == 1)


def test_wrong_credentials_are_refused_and_an_unavailable_gateway_is_transient(standin):
    wrong = AuthorizeNetClient(standin + "/xml/v1/request.api", lambda: LOGIN, lambda: "nope", timeout_s=5)
    with pytest.raises(GatewayRefused, match="E00007"):
        wrong.transaction_details("60000000001")
    assert wrong.charge_profile(charge("10.00")).response_code == 3
    requests.post(standin + "/_control", json={"rate_5xx": 1.0}, timeout=5)
    try:
        with pytest.raises(TransientError):
            wrong.transaction_details("60000000001")
    finally:
        requests.post(standin + "/_control", json={"rate_5xx": 0.0}, timeout=5)
    down = AuthorizeNetClient(f"http://127.0.0.1:{free_port()}/xml/v1/request.api", lambda: LOGIN,
                              lambda: TRANSACTION_KEY, timeout_s=2)
    with pytest.raises(TransientError):
        down.transaction_details("1")


def test_webhooks_are_signed_with_sha512_over_the_raw_body(standin, client):
    received: list[tuple[bytes, str | None]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append((self.rfile.read(int(self.headers["Content-Length"])), self.headers["X-ANET-Signature"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        requests.post(standin + "/_control", json={"signature_key": SIGNATURE_KEY,
                                                   "webhook_url": f"http://127.0.0.1:{server.server_port}/"}, timeout=5)
        outcome = client.charge_profile(charge("12.34"))
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    [(body, signature)] = received
    assert signature.startswith("sha512=") and signature[7:] == signature[7:].upper()
    assert verify_authorize_net(body, signature, SIGNATURE_KEY) is SignatureVerdict.VALID
    assert outcome.transaction_id.encode() in body and b"customer" not in body


# -- the stand-in's webhooks applied by the webhooks function ----------------------------------------

@pytest.fixture(scope="module")
def function(standin, tmp_path_factory):
    root = tmp_path_factory.mktemp("anet")
    redis_port, port = free_port(), free_port()
    redis_dir = tempfile.mkdtemp(prefix="warp-redis-")
    redis_process = subprocess.Popen([REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", redis_dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
    env.update({"WARP_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "WARP_DATA_DIR": str(root / "data"),
                "WARP_PLANS_DIR": str(root / "plans"), "WARP_REGISTER_DIR": str(root / "register"),
                "WARP_SYNC_OUTBOX": "register", "WARP_AUTHORIZE_NET_SIGNATURE_KEY": SIGNATURE_KEY,
                "WARP_AUTHORIZE_NET_URL": standin + "/xml/v1/request.api", "WARP_AUTHORIZE_NET_LOGIN_ID": LOGIN,
                "WARP_AUTHORIZE_NET_TRANSACTION_KEY": TRANSACTION_KEY, "PYTHONPATH": str(ROOT / "shared")})
    settings = settings_from_env(env)
    container = bootstrap.Container(settings)
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=redis_port).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    plan = {"customer_id": "PRE1", "billing": "prepaid", "timezone": "UTC", "voice": {"deck": "voice.csv"}}
    container.plan_store.put_plan("PRE1", yaml.safe_dump(plan), {"voice.csv": DECKS["voice.csv"]})
    assert container.reconcile_customer("PRE1")
    log = open(root / "webhooks.log", "wb")  # noqa: SIM115 - the function process writes it
    process = subprocess.Popen(
        [str(FUNCTIONS_FRAMEWORK), "--target", "webhooks", "--source", str(ROOT / "functions/webhooks/main.py"),
         "--signature-type", "http", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        yield {"url": f"http://127.0.0.1:{port}", "container": container}
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        redis_process.kill()
        redis_process.wait(timeout=10)
        shutil.rmtree(redis_dir, ignore_errors=True)


def test_a_charge_webhook_redelivered_is_credited_once_and_a_decline_credits_nothing(standin, client, function):
    requests.post(standin + "/_control", json={"signature_key": SIGNATURE_KEY,
                                               "webhook_url": function["url"] + "/authorize-net"}, timeout=5)
    container = function["container"]
    before = container.balances.account("PRE1").balance_micros
    approved = client.charge_profile(charge("40.00", ref_id="rc-PRE1-a"))
    declined = client.charge_profile(charge("2.00", ref_id="rc-PRE1-b"))
    assert approved.approved and not declined.approved
    requests.post(standin + "/_control/send", json={"transaction_id": approved.transaction_id, "duplicate": 2},
                  timeout=5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sent = requests.get(standin + "/_control", timeout=5).json()["webhooks"]
        if len([item for item in sent if item["status"] == 200]) >= 4:
            break
        time.sleep(0.1)
    assert [item["status"] for item in sent] == [200] * 4, sent
    assert container.balances.account("PRE1").balance_micros == before + 40_000_000
    ledger = [e for e in container.ledger_store.entries("PRE1") if e.entry_id.startswith("payment:")]
    assert [(e.entry_id, e.amount_micros) for e in ledger] == [(f"payment:{approved.transaction_id}", 40_000_000)]

"""The `webhooks` function under functions-framework with the real SQLite receipts store:
forged, missing, stale and oversized requests change nothing; a replay answers 200 and changes
nothing; concurrent redeliveries are kept exactly once."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import orjson
import pytest
from functions_framework import create_app

from warp_billing import bootstrap
from warp_billing.settings import Settings
from warp_billing.webhooks.signatures import authorize_net_signature, netsuite_signature

ROOT = Path(__file__).resolve().parents[3]
KEY = "A1B2C3D4" * 16
SECRET = "netsuite-webhook-secret"


@pytest.fixture
def app(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "data", authorize_net_signature_key=KEY, netsuite_webhook_secret=SECRET,
        webhook_receipts="sqlite", netsuite_webhook_tolerance_s=300, payment_store="none",
    )
    bootstrap.reset(bootstrap.Container(settings))
    yield create_app("webhooks", str(ROOT / "functions" / "webhooks" / "main.py"), "http")
    bootstrap.reset()


def raw_rows(tmp_path) -> list[tuple]:
    """Read the table itself (not through the store) so a duplicate would show."""
    path = tmp_path / "data" / "webhook_receipts.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT source, event_id FROM webhook_receipts ORDER BY source, event_id").fetchall()


def anet_body(notification_id: str, amount: str = "10.00") -> bytes:
    return orjson.dumps({
        "notificationId": notification_id, "eventType": "net.authorize.payment.authcapture.created",
        "eventDate": "2026-12-01T07:00:00Z", "webhookId": "wh-1",
        "payload": {"responseCode": 1, "authAmount": amount, "invoiceNumber": "INV-1", "entityName": "transaction",
                    "id": "60000000001"},
    })


def test_valid_authorize_net_is_kept_once_and_replay_changes_nothing(app, tmp_path):
    client = app.test_client()
    body = anet_body("n-1")
    headers = {"X-ANET-Signature": authorize_net_signature(body, KEY).lower()}
    first = client.post("/authorize-net", data=body, headers=headers)
    assert first.status_code == 200 and first.get_json() == {"status": "accepted", "event_id": "n-1"}
    again = client.post("/authorize-net", data=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert raw_rows(tmp_path) == [("authorize-net", "n-1")]


@pytest.mark.parametrize("header", [None, "", "sha512=" + "0" * 128, "sha512=zz", "md5=abc"])
def test_missing_or_forged_authorize_net_signature_is_401_and_nothing_kept(app, tmp_path, header):
    body = anet_body("n-forged")
    headers = {} if header is None else {"X-ANET-Signature": header}
    answer = app.test_client().post("/authorize-net", data=body, headers=headers)
    assert answer.status_code == 401
    assert raw_rows(tmp_path) == []


def test_signature_of_another_body_is_refused(app, tmp_path):
    signed = anet_body("n-2", "10.00")
    tampered = anet_body("n-2", "10000.00")
    answer = app.test_client().post("/authorize-net", data=tampered,
                                    headers={"X-ANET-Signature": authorize_net_signature(signed, KEY)})
    assert answer.status_code == 401 and raw_rows(tmp_path) == []


def test_body_over_one_megabyte_is_413_before_anything(app, tmp_path):
    body = b'{"notificationId":"big","pad":"' + b"x" * (1_048_576) + b'"}'
    answer = app.test_client().post("/authorize-net", data=body,
                                    headers={"X-ANET-Signature": authorize_net_signature(body, KEY)})
    assert answer.status_code == 413 and raw_rows(tmp_path) == []


def test_netsuite_valid_stale_forged_and_replayed(app, tmp_path):
    client = app.test_client()
    body = orjson.dumps({"id": "ns-evt-1", "type": "customer_payment", "record": {"id": "123"}})
    now = int(time.time())  # the function reads the wall clock; these requests are built against it
    good = {"X-Warp-Signature": netsuite_signature(body, SECRET, now)}
    stale = {"X-Warp-Signature": netsuite_signature(body, SECRET, now - 301 - 5)}
    forged = {"X-Warp-Signature": netsuite_signature(body, "not-the-secret", now)}
    assert client.post("/netsuite", data=body, headers=stale).status_code == 401
    assert client.post("/netsuite", data=body, headers=forged).status_code == 401
    assert client.post("/netsuite", data=body, headers={}).status_code == 401
    assert raw_rows(tmp_path) == []
    assert client.post("/netsuite", data=body, headers=good).get_json()["status"] == "accepted"
    assert client.post("/netsuite", data=body, headers=good).get_json()["status"] == "duplicate"
    assert raw_rows(tmp_path) == [("netsuite", "ns-evt-1")]


def test_same_id_in_two_sources_are_separate_and_bad_input_is_named(app, tmp_path):
    client = app.test_client()
    anet = anet_body("shared-id")
    ns = orjson.dumps({"id": "shared-id"})
    assert client.post("/authorize-net", data=anet,
                       headers={"X-ANET-Signature": authorize_net_signature(anet, KEY)}).status_code == 200
    ns_headers = {"X-Warp-Signature": netsuite_signature(ns, SECRET, int(time.time()))}
    assert client.post("/netsuite", data=ns, headers=ns_headers).status_code == 200
    assert raw_rows(tmp_path) == [("authorize-net", "shared-id"), ("netsuite", "shared-id")]
    for bad in (b"not json \xff", b"[1,2]", b'{"notificationId": ""}', b'{"notificationId": 7}'):
        signed = {"X-ANET-Signature": authorize_net_signature(bad, KEY)}
        answer = client.post("/authorize-net", data=bad, headers=signed)
        assert answer.status_code == 400 and answer.get_json() == {"error": "event_id_missing"}
    assert client.post("/elsewhere", data=anet).status_code == 404
    assert len(raw_rows(tmp_path)) == 2


def test_concurrent_redeliveries_from_8_threads_are_kept_exactly_once(app, tmp_path):
    ids = [f"n-{i}" for i in range(200)]
    deliveries = ids + ids[:60]  # 30 % duplicates
    bodies = {i: anet_body(i) for i in ids}
    statuses: list[str] = []
    lock = threading.Lock()

    def send(chunk):
        client = app.test_client()
        for nid in chunk:
            body = bodies[nid]
            answer = client.post("/authorize-net", data=body,
                                 headers={"X-ANET-Signature": authorize_net_signature(body, KEY)})
            assert answer.status_code == 200
            with lock:
                statuses.append(answer.get_json()["status"])

    threads = [threading.Thread(target=send, args=(deliveries[k::8],)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == len(deliveries)
    assert statuses.count("accepted") == len(ids) and statuses.count("duplicate") == 60
    assert raw_rows(tmp_path) == sorted(("authorize-net", i) for i in ids)


def test_secrets_come_from_warp_variables_and_are_never_printed(monkeypatch, tmp_path):
    monkeypatch.setenv("WARP_AUTHORIZE_NET_SIGNATURE_KEY", KEY)
    monkeypatch.setenv("WARP_NETSUITE_WEBHOOK_SECRET", SECRET)
    settings = Settings(data_dir=tmp_path)
    assert settings.authorize_net_signature_key.get_secret_value() == KEY
    assert settings.netsuite_webhook_secret.get_secret_value() == SECRET
    assert KEY not in repr(settings) and SECRET not in repr(settings)
    monkeypatch.setenv("WARP_WEBHOOK_RECEIPTS", "firestre")
    with pytest.raises(ValueError, match="webhook_receipts"):
        Settings(data_dir=tmp_path)


def test_an_unconfigured_key_refuses_everything(tmp_path):
    bootstrap.reset(bootstrap.Container(Settings(data_dir=tmp_path / "data", authorize_net_signature_key="",
                                                 netsuite_webhook_secret="", webhook_receipts="sqlite")))
    try:
        app = create_app("webhooks", str(ROOT / "functions" / "webhooks" / "main.py"), "http")
        body = anet_body("n-unconfigured")
        answer = app.test_client().post("/authorize-net", data=body,
                                        headers={"X-ANET-Signature": authorize_net_signature(body, "")})
        assert answer.status_code == 401 and answer.get_json() == {"error": "secret_not_configured"}
        assert raw_rows(tmp_path) == []
    finally:
        bootstrap.reset()

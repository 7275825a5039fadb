"""End to end through the local stack: Eventarc push -> rate_voice under functions-framework ->
Firestore plan -> Redis prepaid debit -> BigQuery usage and rejects.

Run by `make test` (which starts the stack); by hand: `make stack-up` first. The operator side
goes through the real console script with the stack's settings (.local-stack/stack.env).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import local_stack  # noqa: E402
import pubsub_relay  # noqa: E402

pytestmark = pytest.mark.e2e
WARP = Path(sys.executable).with_name("warp")
STACK_ENV = ROOT / ".local-stack" / "stack.env"
VOICE_PORT = dict((name, port) for name, _target, port in local_stack.FUNCTIONS)["rate_voice"]
VOICE_URL = f"http://{local_stack.HOST}:{VOICE_PORT}/"


def stack_settings() -> dict[str, str]:
    if not STACK_ENV.exists():
        pytest.fail("the local stack is not up: run `make stack-up` (or `make test`)", pytrace=False)
    settings = {}
    for line in STACK_ENV.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            settings[key] = value.strip("'\"")
    return settings


@pytest.fixture(scope="module")
def env():
    settings = stack_settings()
    try:
        requests.get(VOICE_URL, timeout=5)
    except requests.ConnectionError:
        pytest.fail(f"rate_voice is not answering on :{VOICE_PORT}: run `make stack-up`", pytrace=False)
    return {**os.environ, **settings}


def warp(env, *args) -> subprocess.CompletedProcess:
    done = subprocess.run([str(WARP), *args], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def customer(env, tmp_path_factory):
    """A prepaid customer of this run's own, with its plan in Firestore and 5.00 on account."""
    customer_id = f"E2E{uuid.uuid4().hex[:10].upper()}"
    folder = tmp_path_factory.mktemp("plan")
    (folder / "deck.csv").write_text("prefix,destination,rate,effective_date\n1,US,0.0100,2026-01-01\n",
                                     encoding="utf-8")
    (folder / "plan.yaml").write_text(
        f"customer_id: {customer_id}\nbilling: prepaid\ntimezone: America/New_York\n"
        "voice: {deck: deck.csv, increments: '6/6'}\n"
        "prepaid: {low_balance_threshold: '1.00', suspend_after_hours: 24}\n",
        encoding="utf-8",
    )
    warp(env, "plans", "load", str(folder / "plan.yaml"))
    warp(env, "balance", "topup", customer_id, "5.00", "--id", f"{customer_id}-topup-1")
    return customer_id


def call(customer_id: str, event_id: str, duration_s: int = 60, **fields) -> dict:
    event = {
        "event_id": event_id, "kind": "voice", "customer_id": customer_id,
        "start_time": (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": duration_s, "calling_number": "+13125550000", "called_number": "+12125551234",
        "direction": "termination",
    }
    event.update(fields)
    return event


def publish(event_or_bytes, message_id: str | None = None) -> requests.Response:
    payload = event_or_bytes if isinstance(event_or_bytes, bytes) else json.dumps(event_or_bytes).encode()
    return pubsub_relay.deliver(VOICE_URL, "usage-voice", payload, message_id=message_id)


def balance(env, customer_id: str) -> Decimal:
    return Decimal(json.loads(warp(env, "balance", "show", customer_id, "--json").stdout)["balance"])


def usage_store(env):
    from warp_billing.adapters.bigquery_usage import BigQueryUsageStore, bigquery_client

    return BigQueryUsageStore(
        lambda: bigquery_client(env["WARP_BIGQUERY_PROJECT"], env["WARP_BIGQUERY_ENDPOINT"]),
        project=env["WARP_BIGQUERY_PROJECT"], dataset=env["WARP_BIGQUERY_DATASET"], deadline_s=30,
    )


def today():
    now = datetime.now(UTC).date()
    return now - timedelta(days=1), now


def test_a_call_is_debited_once_however_often_and_however_concurrently_it_is_delivered(env, customer):
    assert balance(env, customer) == Decimal("5.00")
    event = call(customer, f"{customer}-call-1", duration_s=61)          # 66 s billed at 0.01/min = 0.011
    first = publish(event)
    assert first.status_code in (200, 204), first.text
    with ThreadPoolExecutor(4) as pool:                                    # redeliveries, some concurrent
        statuses = list(pool.map(lambda _: publish(event).status_code, range(6)))
    assert set(statuses) <= {200, 204}
    assert balance(env, customer) == Decimal("4.989000")
    rows = [row for row in usage_store(env).rated_records(*today(), customer_id=customer)
            if row["event_id"] == event["event_id"]]
    assert len(rows) == 1
    assert Decimal(str(rows[0]["amount"])) == Decimal("0.011") and rows[0]["billed_units"] == 66


def test_undecodable_and_invalid_messages_are_acknowledged_and_kept_as_rejects(env, customer):
    bad_base64 = pubsub_relay.push_request("usage-voice", b"x")
    envelope = json.loads(bad_base64.body)
    envelope["message"]["data"] = "%%% not base64 %%%"
    answers = [
        requests.post(VOICE_URL, data=json.dumps(envelope), headers=bad_base64.headers, timeout=60),
        publish(b"{not json", message_id=f"{customer}-badjson"),
        publish({"event_id": f"{customer}-nofields", "kind": "voice", "customer_id": customer}),
        publish(call(customer, f"{customer}-negative", duration_s=-3)),
        publish(call(customer, f"{customer}-old", start_time="2020-01-01T00:00:00Z")),
    ]
    assert [answer.status_code in (200, 204) for answer in answers] == [True] * 5
    first, last = today()
    rejects = list(usage_store(env).reject_records(first, last))
    reasons = {record.get("event_id") or record.get("message_id"): record["reason"] for record in rejects}
    assert reasons.get(f"{customer}-nofields") == "BAD_FIELD"
    assert reasons.get(f"{customer}-negative") == "BAD_FIELD"
    assert reasons.get(f"{customer}-badjson") == "MALFORMED_JSON"
    assert any(record["reason"] == "MALFORMED_JSON" and "base64" in (record.get("detail") or "") for record in rejects)
    old = [record for record in usage_store(env).reject_records(datetime(2019, 12, 31).date(), datetime(2020, 1,
                                                                                                        1).date())
           if record.get("event_id") == f"{customer}-old"]
    assert [record["reason"] for record in old] == ["EVENT_TOO_OLD"]
    assert balance(env, customer) == Decimal("4.989000")   # nothing charged for any of them

"""End to end, the billing loop on the local stack: Eventarc push (tools/pubsub_relay.py) ->
rate_voice under functions-framework -> BigQuery rated_usage -> the rollup function (HTTP, as
Cloud Scheduler calls it) -> Firestore register + ERP outbox -> Cloud Storage documents.

The test runs its own rate_voice and rollup processes on the stack's stand-ins (`make stack-up`
first, or `make test`), with settings of its own: plans from a folder, a BigQuery dataset,
Firestore collection prefix and object prefix nobody else uses, and a maximum event age that
admits calls of a cycle that has ended (the stack's own rate_voice keeps the 3-day limit).
Conservation (billed = rated, to the micro-unit) is asserted on every close run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import local_stack  # noqa: E402
import pubsub_relay  # noqa: E402
from warp_billing.adapters.bigquery_usage import BigQueryUsageStore, bigquery_client  # noqa: E402
from warp_billing.adapters.firestore_plans import firestore_client  # noqa: E402
from warp_billing.adapters.firestore_register import FirestoreRegister  # noqa: E402
from warp_billing.adapters.gcs_documents import GcsDocumentStore, storage_client  # noqa: E402

pytestmark = pytest.mark.e2e
STACK_ENV = ROOT / ".local-stack" / "stack.env"
FUNCTIONS_FRAMEWORK = Path(sys.executable).with_name("functions-framework")
RUN = uuid.uuid4().hex[:8]
DAY_S = 86_400


def stack_settings() -> dict[str, str]:
    if not STACK_ENV.exists():
        pytest.fail("the local stack is not up: run `make stack-up` (or `make test`)", pytrace=False)
    settings = {}
    for line in STACK_ENV.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            settings[key] = value.strip("'\"")
    return settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((local_stack.HOST, 0))
        return probe.getsockname()[1]


def the_period() -> str:
    """The cycle two months back: ended in every zone, its calls younger than the test's maximum age."""
    today = datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 - 2
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    settings = stack_settings()
    for name, port in (("bigquery", local_stack.BIGQUERY_REST_PORT), ("firestore", local_stack.FIRESTORE_PORT),
                       ("storage", local_stack.STORAGE_PORT), ("redis", local_stack.REDIS_PORT)):
        with socket.socket() as probe:
            if probe.connect_ex((local_stack.HOST, port)) != 0:
                pytest.fail(f"the stack's {name} is not answering on {port}: run `make stack-up`", pytrace=False)
    plans = tmp_path_factory.mktemp("plans")
    customers = {f"E2EUTC{RUN.upper()}": "UTC", f"E2ECHI{RUN.upper()}": "America/Chicago"}
    (plans / "deck.csv").write_text("prefix,destination,rate,effective_date\n1,US,0.0100,2020-01-01\n",
                                    encoding="utf-8")
    for customer, zone in customers.items():
        (plans / f"{customer.lower()}.yaml").write_text(
            f"customer_id: {customer}\nbilling: postpaid\ntimezone: {zone}\n"
            "voice: {deck: deck.csv, increments: '6/6'}\n"
            "recurring: [{sku: DID-LOCAL, description: Local DID, quantity: 10, unit_price: '1.00',"
            " start: '2020-01-01'}]\n",
            encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
    env.update(settings)
    env.update({
        "WARP_PLAN_STORE": "files", "WARP_PLANS_DIR": str(plans), "WARP_BIGQUERY_DATASET": f"e2ecc_{RUN}",
        "WARP_FIRESTORE_COLLECTION_PREFIX": f"e2ecc{RUN}_", "WARP_DOCUMENTS_PREFIX": f"e2ecc{RUN}",
        "WARP_MAX_EVENT_AGE_S": str(100 * DAY_S),
        "WARP_DEDUP_TTL_S": str(100 * DAY_S), "WARP_CLOSE_WATERMARK_LAG_S": "1",
        "WARP_DATA_DIR": str(tmp_path_factory.mktemp("data")), "PYTHONPATH": str(ROOT / "shared"),
    })
    usage = BigQueryUsageStore(lambda: bigquery_client(env["WARP_BIGQUERY_PROJECT"], env["WARP_BIGQUERY_ENDPOINT"]),
                               project=env["WARP_BIGQUERY_PROJECT"], dataset=env["WARP_BIGQUERY_DATASET"],
                               deadline_s=60)
    usage.ensure_schema()
    processes, urls = [], {}
    logs = tmp_path_factory.mktemp("logs")
    for name, signature in (("rate_voice", "cloudevent"), ("rollup", "http")):
        port = free_port()
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - the function process writes it
        processes.append(subprocess.Popen(
            [str(FUNCTIONS_FRAMEWORK), "--target", name, "--source", str(ROOT / "functions" / name / "main.py"),
             "--signature-type", signature, "--host", local_stack.HOST, "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        urls[name] = f"http://{local_stack.HOST}:{port}/"
    try:
        deadline = time.monotonic() + 60
        for url in urls.values():
            while True:
                try:
                    requests.get(url, timeout=2)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{url} did not start; see {logs}", pytrace=False)
                    time.sleep(0.2)
        yield {"env": env, "urls": urls, "customers": customers, "usage": usage, "logs": logs}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        bigquery_client(env["WARP_BIGQUERY_PROJECT"], env["WARP_BIGQUERY_ENDPOINT"]).delete_dataset(
            f"{env['WARP_BIGQUERY_PROJECT']}.{env['WARP_BIGQUERY_DATASET']}", delete_contents=True, not_found_ok=True)


def call(customer: str, event_id: str, start: datetime, duration_s: int) -> bytes:
    return json.dumps({
        "event_id": event_id, "kind": "voice", "customer_id": customer,
        "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration_s": duration_s,
        "calling_number": "+13125550000", "called_number": "+12125551234", "direction": "termination",
    }).encode()


def close(pipeline, **task) -> dict:
    answer = requests.post(pipeline["urls"]["rollup"], json=task, timeout=300)
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    for run in summary.get("runs", []):   # conservation on every run
        assert run["conservation_failures"] == []
        assert all(row["conservation_ok"] is True for row in run["closes"] if row["status"] != "failed")
    return summary


@pytest.mark.xfail(strict=True, reason=(
    "issue 10 open: after the December merges the scheduled cloud close counts 1 of the 12 calls each "
    "customer made through rate_voice (events = rated_events = 1); rollup is not declared in Terraform "
    "until this is found and fixed; strict, so the fix must remove this mark"))
def test_scheduled_close_from_rated_calls_to_register_documents_and_outbox(pipeline):
    period = the_period()
    year, month = map(int, period.split("-"))
    customers = pipeline["customers"]
    voice_url = pipeline["urls"]["rate_voice"]
    sent = {}
    for customer in customers:
        for index in range(12):
            start = datetime(year, month, 10 + index, 15, 30, tzinfo=UTC)
            payload = call(customer, f"{customer}-c{index}", start, 60 + index)
            for _ in range(2 if index % 4 == 0 else 1):    # some delivered twice, as Pub/Sub may
                answer = pubsub_relay.deliver(voice_url, "usage-voice", payload)
                assert answer.status_code in (200, 204), answer.text
            # Billed seconds in 6/6 increments at 0.01/min.
            billed = -(-(60 + index) // 6) * 6
            sent[customer] = sent.get(customer, Decimal(0)) + Decimal(billed) * Decimal("0.01") / 60
    first_day = date(year, month, 1)
    rated = [r for r in pipeline["usage"].rated_records(first_day, first_day + timedelta(days=31))]
    assert len({r["event_id"] for r in rated}) == 24

    summary = close(pipeline, task="cycle_close", period=period)
    [run] = summary["runs"]
    rows = {row["customer_id"]: row for row in run["closes"]}
    assert set(rows) == set(customers)
    assert run["rows_returned"] == 2, run   # one usage line per customer: Python never saw the 24 calls
    for customer, row in rows.items():
        assert row["status"] == "issued" and row["document_number"] == f"{customer}-INV-000001"
        assert row["events"] == row["rated_events"] == 12
        expected = sent[customer].quantize(Decimal("0.000001"))
        assert Decimal(row["usage_amount"]) == Decimal(row["rated_amount"]) == expected

    env = pipeline["env"]
    firestore_host = env["WARP_FIRESTORE_EMULATOR_HOST"]
    register = FirestoreRegister(lambda: firestore_client(env["WARP_FIRESTORE_PROJECT"], firestore_host),
                                 collection_prefix=env["WARP_FIRESTORE_COLLECTION_PREFIX"])
    documents = GcsDocumentStore(lambda: storage_client(env["WARP_GCP_PROJECT"], env["WARP_STORAGE_ENDPOINT"]),
                                 env["WARP_DOCUMENTS_BUCKET"], prefix=env["WARP_DOCUMENTS_PREFIX"])
    for customer, row in rows.items():
        [invoice] = register.documents(customer)
        stored = json.loads(documents.get(f"{customer}/{period}/{invoice.number}.json"))
        assert stored == invoice.to_record() and stored["total"] == row["total"]
        outbox = register.outbox_documents(customer)
        assert [(d.doc_id, d.doc_type, d.status) for d in outbox] == [
            (f"customer:{customer}", "customer", "pending"), (invoice.number, "invoice", "pending"),
            (f"journal:{invoice.number}", "journal_entry", "pending")]
        assert outbox[1].payload == stored

    # Scheduler's retry and a second daily call find everything issued; an operator re-run is unchanged.
    assert close(pipeline, task="cycle_close", period=period)["runs"] == []
    rerun = close(pipeline, task="cycle_close", customer=next(iter(customers)), period=period)
    assert rerun["runs"][0]["by_status"] == {"unchanged": 1}
    assert close(pipeline, task="hourly_rollup")["task"] == "hourly_rollup"

    bad = requests.post(pipeline["urls"]["rollup"], json={"task": "close_everything"}, timeout=60)
    assert bad.status_code == 400 and "unknown task" in bad.json()["error"]
    bad = requests.post(pipeline["urls"]["rollup"], json={"task": "cycle_close", "customer": "X"}, timeout=60)
    assert bad.status_code == 400 and "period" in bad.json()["error"]

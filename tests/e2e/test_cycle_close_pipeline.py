"""End to end, the billing loop on the local stack: Eventarc push (tools/pubsub_relay.py) ->
rate_voice under functions-framework -> BigQuery rated_usage -> the rollup function (HTTP, as
Cloud Scheduler calls it) -> Firestore register + ERP outbox -> Cloud Storage documents, and
from the outbox -> Cloud Tasks emulator -> netsuite_sync under functions-framework -> the
NetSuite stand-in.

The test runs its own rate_voice, rollup and netsuite_sync processes on the stack's stand-ins
(`make stack-up` first, or `make test`), with settings of its own: plans from a folder, a
BigQuery dataset, Firestore collection prefix, object prefix and Cloud Tasks queue nobody else
uses, and a maximum event age that admits calls of a cycle that has ended (the stack's own
rate_voice keeps the 3-day limit). NetSuite is the stack's stand-in with the stack's test
certificate and mapping, answering with injected faults. Conservation (billed = rated, to the
micro-unit) is asserted on every close run; exactly once in NetSuite on the stand-in's raw records.
"""

from __future__ import annotations

import contextlib
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
from google.cloud import tasks_v2
from google.protobuf import duration_pb2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import local_stack  # noqa: E402
import pubsub_relay  # noqa: E402
from warp_billing.adapters.bigquery_usage import BigQueryUsageStore, bigquery_client  # noqa: E402
from warp_billing.adapters.cloud_tasks import tasks_client  # noqa: E402
from warp_billing.adapters.firestore_plans import firestore_client  # noqa: E402
from warp_billing.adapters.firestore_register import FirestoreRegister  # noqa: E402
from warp_billing.adapters.gcs_documents import GcsDocumentStore, storage_client  # noqa: E402

pytestmark = pytest.mark.e2e
STACK_ENV = ROOT / ".local-stack" / "stack.env"
FUNCTIONS_FRAMEWORK = Path(sys.executable).with_name("functions-framework")
WARP = Path(sys.executable).with_name("warp")
STANDIN = f"http://{local_stack.HOST}:{local_stack.NETSUITE_PORT}"
# NetSuite answering badly one call in five, "commit then drop the response" among them.
FAULTS = {"rate_429": 0.05, "rate_limit400": 0.03, "rate_5xx": 0.05, "rate_commit_drop": 0.07}
RUN = uuid.uuid4().hex[:8]
DAY_S = 86_400
WATERMARK_LAG_S = 1   # the close leaves usage written in the last second before it for the next cycle


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
                       ("storage", local_stack.STORAGE_PORT), ("redis", local_stack.REDIS_PORT),
                       ("tasks", local_stack.TASKS_PORT), ("netsuite", local_stack.NETSUITE_PORT)):
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
    ports = {name: free_port() for name in ("rate_voice", "rollup", "netsuite_sync")}
    queue = f"projects/{local_stack.PROJECT}/locations/{local_stack.LOCATION}/queues/e2ecc-{RUN}"
    tasks = tasks_client(settings["WARP_TASKS_ENDPOINT"])
    # Terraform's netsuite queue (dispatch concurrency = the account's limit), backoffs short enough for a test.
    tasks.create_queue(parent=queue.rsplit("/queues/", 1)[0], queue=tasks_v2.Queue(
        name=queue, rate_limits=tasks_v2.RateLimits(max_concurrent_dispatches=local_stack.NETSUITE_CONCURRENCY),
        retry_config=tasks_v2.RetryConfig(min_backoff=duration_pb2.Duration(nanos=200_000_000),
                                          max_backoff=duration_pb2.Duration(seconds=2))))
    env.update({
        "WARP_PLAN_STORE": "files", "WARP_PLANS_DIR": str(plans), "WARP_BIGQUERY_DATASET": f"e2ecc_{RUN}",
        "WARP_FIRESTORE_COLLECTION_PREFIX": f"e2ecc{RUN}_", "WARP_DOCUMENTS_PREFIX": f"e2ecc{RUN}",
        "WARP_MAX_EVENT_AGE_S": str(100 * DAY_S),
        "WARP_DEDUP_TTL_S": str(100 * DAY_S), "WARP_CLOSE_WATERMARK_LAG_S": str(WATERMARK_LAG_S),
        "WARP_DATA_DIR": str(tmp_path_factory.mktemp("data")), "PYTHONPATH": str(ROOT / "shared"),
        # The rollup enqueues on a queue of this test's own, whose tasks go to its own netsuite_sync.
        "WARP_NETSUITE_QUEUE": queue,
        "WARP_NETSUITE_SYNC_URL": f"http://{local_stack.HOST}:{ports['netsuite_sync']}/",
    })
    assert "WARP_SYNC_OUTBOX" not in env   # the default: the register's own outbox, here Firestore's
    usage = BigQueryUsageStore(lambda: bigquery_client(env["WARP_BIGQUERY_PROJECT"], env["WARP_BIGQUERY_ENDPOINT"]),
                               project=env["WARP_BIGQUERY_PROJECT"], dataset=env["WARP_BIGQUERY_DATASET"],
                               deadline_s=60)
    usage.ensure_schema()
    processes, urls = [], {}
    logs = tmp_path_factory.mktemp("logs")
    for name, signature in (("rate_voice", "cloudevent"), ("rollup", "http"), ("netsuite_sync", "http")):
        port = ports[name]
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
        yield {"env": env, "urls": urls, "customers": customers, "usage": usage, "logs": logs, "tasks": tasks,
               "queue": queue}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        with contextlib.suppress(Exception):  # the emulator's cleanup is best effort
            tasks.delete_queue(name=queue)
        bigquery_client(env["WARP_BIGQUERY_PROJECT"], env["WARP_BIGQUERY_ENDPOINT"]).delete_dataset(
            f"{env['WARP_BIGQUERY_PROJECT']}.{env['WARP_BIGQUERY_DATASET']}", delete_contents=True, not_found_ok=True)


def call(customer: str, event_id: str, start: datetime, duration_s: int) -> bytes:
    return json.dumps({
        "event_id": event_id, "kind": "voice", "customer_id": customer,
        "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration_s": duration_s,
        "calling_number": "+13125550000", "called_number": "+12125551234", "direction": "termination",
    }).encode()


def standin(update: dict | None = None) -> dict:
    if update is not None:
        answer = requests.post(STANDIN + "/_control", json=update, timeout=10)
        answer.raise_for_status()
        return answer.json()
    return requests.get(STANDIN + "/_control/records", timeout=30).json()


def wait_until(done, timeout_s: float, what: str, logs: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.5)
    raise AssertionError(f"not done after {timeout_s:.0f}s: {what} (function logs in {logs})")


def close(pipeline, **task) -> dict:
    answer = requests.post(pipeline["urls"]["rollup"], json=task, timeout=300)
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    for run in summary.get("runs", []):   # conservation on every run
        assert run["conservation_failures"] == []
        assert all(row["conservation_ok"] is True for row in run["closes"] if row["status"] != "failed")
    return summary


def test_scheduled_close_from_rated_calls_to_register_documents_outbox_and_netsuite_exactly_once(pipeline):
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
    # The close bills usage written before its watermark (close time - lag); a row written within
    # the lag is left for the next cycle, by design. The 24 calls are rated in well under a second,
    # so the close must come after the lag, as Scheduler's daily call comes long after the last call;
    # without this wait the close counted only the calls written before (close - 1 s): 1 of 12.
    time.sleep(2 * WATERMARK_LAG_S)

    standin({"faults": FAULTS, "seed": 7, "concurrency_limit": local_stack.NETSUITE_CONCURRENCY, "latency_ms": 0})
    summary = close(pipeline, task="cycle_close", period=period)
    # After the close the rollup put every document it issued on the netsuite queue.
    assert summary["netsuite"] == {"enqueued": 6, "already_queued": 0, "failed_waiting_for_retry": 0}
    [run] = summary["runs"]
    rows = {row["customer_id"]: row for row in run["closes"]}
    assert set(rows) == set(customers)
    assert run["rows_returned"] == 2, run   # one usage line per customer: Python never saw the 24 calls
    for customer, row in rows.items():
        assert row["status"] == "issued" and row["document_number"] == f"{customer}-INV-000001"
        assert row["events"] == row["rated_events"] == 12, raw_rows(pipeline, customer, row)
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
        pdf = documents.get(f"{customer}/{period}/{invoice.number}.pdf")   # WARP_CLOSE_PDF: on by default
        assert pdf.startswith(b"%PDF-")
        outbox = register.outbox_documents(customer)
        assert [(d.doc_id, d.doc_type) for d in outbox] == [
            (f"customer:{customer}", "customer"), (invoice.number, "invoice"),
            (f"journal:{invoice.number}", "journal_entry")]
        assert outbox[1].payload == stored

    # Cloud Tasks -> netsuite_sync -> the stand-in, through the injected faults: every document synced.
    def synced() -> bool:
        return all(d.status == "synced" for c in customers for d in register.outbox_documents(c))

    wait_until(synced, 180, "every outbox document synced", pipeline["logs"])
    first = netsuite_records(customers)
    assert_in_netsuite_once(first, register, customers)

    # Scheduler's retry and a second daily call find everything issued and enqueue nothing again; the
    # scheduled sweep finds nothing pending; an operator re-run is unchanged. NetSuite: still once each.
    again = close(pipeline, task="cycle_close", period=period)
    assert again["runs"] == [] and again["netsuite"]["enqueued"] == 0
    rerun = close(pipeline, task="cycle_close", customer=next(iter(customers)), period=period)
    assert rerun["runs"][0]["by_status"] == {"unchanged": 1} and rerun["netsuite"]["enqueued"] == 0
    assert close(pipeline, task="netsuite_sweep")["netsuite"]["enqueued"] == 0
    wait_until(lambda: list(pipeline["tasks"].list_tasks(parent=pipeline["queue"])) == [], 60, "queue drained",
               pipeline["logs"])
    standin({"faults": {}})
    after = netsuite_records(customers)
    assert_in_netsuite_once(after, register, customers)
    assert {r["externalId"] for r in after} == {r["externalId"] for r in first}

    # The operator's view: `warp netsuite status` on the same settings says every document is synced.
    for customer in customers:
        status = subprocess.run([str(WARP), "netsuite", "status", "--customer", customer], env=pipeline["env"],
                                capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
        assert status.returncode == 0, status.stderr
        assert status.stdout.splitlines()[0] == "pending: 0  enqueued: 0  failed: 0  synced: 3", status.stdout
        assert f"synced    invoice           {customer}-INV-000001 r1" in status.stdout

    assert close(pipeline, task="hourly_rollup")["task"] == "hourly_rollup"

    bad = requests.post(pipeline["urls"]["rollup"], json={"task": "close_everything"}, timeout=60)
    assert bad.status_code == 400 and "unknown task" in bad.json()["error"]
    bad = requests.post(pipeline["urls"]["rollup"], json={"task": "cycle_close", "customer": "X"}, timeout=60)
    assert bad.status_code == 400 and "period" in bad.json()["error"]


def netsuite_records(customers) -> list[dict]:
    """The stand-in's raw records (every stored record, duplicates would show) of these customers."""
    return [record for record in standin()["records"]
            if any(customer in (record.get("externalId") or "") for customer in customers)]


def assert_in_netsuite_once(records: list[dict], register, customers) -> None:
    keys = [(record["type"], record["externalId"]) for record in records]
    assert len(keys) == len(set(keys)), sorted(keys)   # no record twice
    for customer in customers:
        [invoice] = register.documents(customer)
        [found] = [r for r in records if r["type"] == "invoice" and r["externalId"] == invoice.number]
        assert Decimal(found["total"]) == invoice.total
        assert sum(1 for record in records if record["type"] == "customer" and customer in record["externalId"]) == 1


def raw_rows(pipeline, customer: str, row: dict) -> str:
    """What a wrong count is made of: the customer's raw rated rows and the close's watermark."""
    env = pipeline["env"]
    client = bigquery_client(env["WARP_BIGQUERY_PROJECT"], env["WARP_BIGQUERY_ENDPOINT"])
    table = f"{env['WARP_BIGQUERY_PROJECT']}.{env['WARP_BIGQUERY_DATASET']}.rated_usage"
    sql = (f"SELECT event_id, event_date, start_time, inserted_at, amount FROM `{table}` "
           f"WHERE event_date >= '2000-01-01' AND customer_id = '{customer}' ORDER BY inserted_at")
    found = client.query(sql).result()
    lines = [f"{r['event_id']} {r['event_date']} {r['start_time'].isoformat()} {r['inserted_at'].isoformat()} "
             f"{r['amount']}" for r in found]
    return f"close row {row}; watermark {row['watermark']}; raw rows:\n" + "\n".join(lines)

"""The cycle close on the local stack: BigQuery usage, Firestore register + outbox, Cloud Storage
documents (the stand-ins of tools/local_stack.py; `make stack-up` first, or `make test`).

Each test works in a BigQuery dataset of this module's own and Firestore collections / object
prefixes of its own, so nothing here sees another test's rows.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from tests.integration.conftest import PROJECT, RUN_ID, require_stand_in

from warp_billing.adapters.bigquery_close import BigQueryRatedSource, BigQueryRunLog
from warp_billing.adapters.bigquery_usage import BigQueryUsageStore, bigquery_client
from warp_billing.adapters.document_files import DocumentFolder
from warp_billing.adapters.file_register import FileCloseRegister
from warp_billing.adapters.firestore_plans import FirestorePlanStore, firestore_client
from warp_billing.adapters.firestore_register import FirestoreRegister
from warp_billing.adapters.gcs_documents import GcsDocumentStore, storage_client
from warp_billing.adapters.invoice_announcements import LogInvoicePublisher
from warp_billing.adapters.rated_files import RatedFileSource
from warp_billing.adapters.run_log_files import JsonlRunLog
from warp_billing.billing.close_service import CloseTarget, CycleCloser
from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.bootstrap import Container
from warp_billing.closing import cycle_close
from warp_billing.plan import load_plan, parse_plan
from warp_billing.ports import OutboxDocument
from warp_billing.settings import Settings
from warp_billing.timeutil import parse_instant

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import local_stack  # noqa: E402

WARP = Path(sys.executable).with_name("warp")
SAMPLE_CUSTOMERS = ("ACME", "BETA", "GAMMA")


@pytest.fixture(scope="module")
def stack():
    for name in ("bigquery", "firestore", "storage"):
        require_stand_in(name)
    endpoint = f"http://{local_stack.HOST}:{local_stack.BIGQUERY_REST_PORT}"
    dataset = f"cc_{RUN_ID}"
    factory = lambda: bigquery_client(PROJECT, endpoint)  # noqa: E731
    store = BigQueryUsageStore(factory, project=PROJECT, dataset=dataset, deadline_s=60)
    store.ensure_schema()
    yield {"bigquery": factory, "dataset": dataset, "usage": store}
    factory().delete_dataset(f"{PROJECT}.{dataset}", delete_contents=True, not_found_ok=True)


class Cloud:
    """The cloud adapters of one test: its own collections and object prefix."""

    def __init__(self, stack, lag: timedelta = timedelta(0)):
        tag = uuid.uuid4().hex[:8]
        firestore_host = f"{local_stack.HOST}:{local_stack.FIRESTORE_PORT}"
        storage_endpoint = f"http://{local_stack.HOST}:{local_stack.STORAGE_PORT}"
        self.usage = stack["usage"]
        self.source = BigQueryRatedSource(stack["bigquery"], project=PROJECT, dataset=stack["dataset"], deadline_s=120)
        self.register = FirestoreRegister(lambda: firestore_client(PROJECT, firestore_host),
                                          collection_prefix=f"cc{tag}_", timeout_s=30)
        self.documents = GcsDocumentStore(lambda: storage_client(PROJECT, storage_endpoint),
                                          local_stack.DOCUMENTS_BUCKET, prefix=f"cc{tag}")
        self.run_log = BigQueryRunLog(stack["bigquery"], project=PROJECT, dataset=stack["dataset"], deadline_s=60)
        self.lag = lag
        self.plan_store = FirestorePlanStore(lambda: firestore_client(PROJECT, firestore_host),
                                             collection_prefix=f"cc{tag}_", timeout_s=30)

    def closer(self, register=None) -> CycleCloser:
        return CycleCloser(self.source, register or self.register, self.documents, LogInvoicePublisher(),
                           self.run_log, OfflineTaxEngine(), watermark_lag=self.lag)


def voice(customer: str, event_id: str, start: str, amount: str, **fields) -> dict:
    record = {"event_id": event_id, "status": "rated", "kind": "voice", "customer_id": customer,
              "jurisdiction": "interstate", "billed_units": 60, "amount": amount, "vendor_cost": "0.001000",
              "start_time": start, "direction": "termination"}
    record.update(fields)
    return record


def plan(customer: str, **sections):
    return parse_plan({"customer_id": customer, "timezone": "UTC", "voice": {"deck": "unused.csv"}, **sections})


# -- the same usage from a JSONL file and from BigQuery ---------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    subprocess.run([str(WARP), "sample", "--out", str(root), "--events", "3000", "--us-rows", "500"],
                   check=True, capture_output=True)
    plans = [f"--plan={root / f'{c.lower()}-plan.yaml'}" for c in SAMPLE_CUSTOMERS]
    subprocess.run([str(WARP), "rate", *plans, "--in", str(root / "usage.jsonl"), "--out", str(root / "rated.jsonl"),
                    "--rejects", str(root / "rejects.jsonl")], check=True, capture_output=True)
    return root


def test_bigquery_and_jsonl_close_into_identical_documents(stack, sample, tmp_path):
    cloud = Cloud(stack)
    records = [orjson.loads(line) for line in (sample / "rated.jsonl").read_bytes().splitlines()]
    rated = [record for record in records if record["status"] == "rated"]
    cloud.usage.insert_rated(rated)
    cloud.usage.insert_rated(rated[:100])  # a redelivered batch: each event_id still counts once
    plans = [load_plan(sample / f"{c.lower()}-plan.yaml").plan for c in SAMPLE_CUSTOMERS]
    targets = [CloseTarget(p, "2026-06") for p in plans]

    files = CycleCloser(RatedFileSource(sample / "rated.jsonl"), FileCloseRegister(tmp_path / "register"),
                        DocumentFolder(tmp_path / "documents"), LogInvoicePublisher(),
                        JsonlRunLog(tmp_path / "runs.jsonl"), OfflineTaxEngine()).close(targets)
    queries = []
    original = cloud.source._query

    def counting(sql, parameters):
        rows = list(original(sql, parameters))
        queries.append(len(rows))
        return iter(rows)

    cloud.source._query = counting
    bigquery = cloud.closer().close(targets)

    assert [r["status"] for r in files.rows] == [r["status"] for r in bigquery.rows] == ["issued"] * 3
    for file_row, cloud_row in zip(files.rows, bigquery.rows, strict=True):
        customer, number = cloud_row["customer_id"], cloud_row["document_number"]
        assert file_row["document_number"] == number
        for suffix in (".json", ".html", ".journal.json"):
            ours = cloud.documents.get(f"{customer}/2026-06/{number}{suffix}")
            assert ours == (tmp_path / "documents" / customer / "2026-06" / f"{number}{suffix}").read_bytes()
        assert cloud_row["conservation_ok"] is True
        assert cloud_row["events"] == cloud_row["rated_events"] == file_row["events"]
        billed = Decimal(cloud_row["usage_amount"])
        assert billed == Decimal(cloud_row["rated_amount"]) == Decimal(file_row["usage_amount"])
        assert all(ref.startswith(f"gs://{local_stack.DOCUMENTS_BUCKET}/") for ref in cloud_row["documents"])
    # Python got one row per customer and line, voice lines split by deck destination (plus one
    # conservation row per customer), never events.
    cycles = {p.customer_id: plan_cycle(p, "2026-06") for p in plans}
    billed = [r for r in rated if cycles[r["customer_id"]].starts_at <= parse_instant(r["start_time"])
              < cycles[r["customer_id"]].ends_at]
    groups = {(r["customer_id"], r["kind"], r.get("jurisdiction") or r.get("direction") or r.get("query_type"),
               (r.get("destination") or "") if r["kind"] == "voice" else None) for r in billed}
    events = sum(row["events"] for row in bigquery.rows)
    assert events == len(billed)
    assert queries == [bigquery.rows_returned, 3]
    assert bigquery.rows_returned == len(groups) and events > 2 * sum(queries)
    for customer in SAMPLE_CUSTOMERS:   # the table is there and counts every voice call of the cycle
        [invoice] = cloud.register.documents(customer)
        calls = sum(1 for r in billed if r["customer_id"] == customer and r["kind"] == "voice")
        assert sum(row["calls"] for row in invoice.voice_destinations) == calls > 0
    # The run rows landed in cycle_runs.
    logged = cloud.run_log.rows(date.today() - timedelta(days=2), date.today() + timedelta(days=2), bigquery.run_id)
    assert sorted(row["customer_id"] for row in logged) == list(SAMPLE_CUSTOMERS)
    assert all(row["conservation_ok"] for row in logged)


# -- exactly once ------------------------------------------------------------------------------------


def test_two_concurrent_closes_issue_one_number(stack):
    cloud = Cloud(stack)
    customer = f"CONC{uuid.uuid4().hex[:6].upper()}"
    cloud.usage.insert_rated([voice(customer, f"{customer}-{i}", "2026-08-10T10:00:00Z", "0.500000") for i in range(5)])
    outcomes, barrier = [], threading.Barrier(2)
    firestore_host = f"{local_stack.HOST}:{local_stack.FIRESTORE_PORT}"

    def close():
        # Each "instance" has its own Firestore client, as two function instances would.
        register = FirestoreRegister(lambda: firestore_client(PROJECT, firestore_host),
                                     collection_prefix=cloud.register.registers.removesuffix("invoice_registers"))
        service = cloud.closer(register)
        barrier.wait()
        outcomes.append(service.close([CloseTarget(plan(customer), "2026-08")]).rows[0])

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(row["status"] for row in outcomes)
    assert statuses in (["already_issued", "issued"], ["issued", "unchanged"])
    assert {row["document_number"] for row in outcomes} == {f"{customer}-INV-000001"}
    assert [d.number for d in cloud.register.documents(customer)] == [f"{customer}-INV-000001"]
    assert [d.doc_id for d in cloud.register.outbox_documents(customer)] == [
        f"customer:{customer}", f"{customer}-INV-000001", f"journal:{customer}-INV-000001"]


def test_a_retried_close_is_unchanged_and_keeps_its_watermark(stack):
    cloud = Cloud(stack)
    customer = f"RETRY{uuid.uuid4().hex[:6].upper()}"
    cloud.usage.insert_rated([voice(customer, f"{customer}-1", "2026-08-10T10:00:00Z", "0.500000")])
    first = cloud.closer().close([CloseTarget(plan(customer), "2026-08")]).rows[0]
    time.sleep(0.01)
    retry = cloud.closer().close([CloseTarget(plan(customer), "2026-08")], rebill=True).rows[0]
    assert (first["status"], retry["status"]) == ("issued", "unchanged")
    assert retry["watermark"] == first["watermark"] and retry["document_number"] == first["document_number"]
    assert len(cloud.register.outbox_documents(customer)) == 3
    pending = [d.doc_id for d in cloud.register.pending(limit=1000) if d.customer_id == customer]
    assert pending[0] == f"customer:{customer}"


# -- late usage ---------------------------------------------------------------------------------------


def test_usage_that_arrives_after_a_close_is_billed_on_the_next_cycle_as_prior_period(stack):
    cloud = Cloud(stack)
    customer = f"LATE{uuid.uuid4().hex[:6].upper()}"
    cloud.usage.insert_rated([voice(customer, f"{customer}-sep-1", "2026-09-30T23:59:59Z", "1.000000")])
    september = cloud.closer().close([CloseTarget(plan(customer), "2026-09")]).rows[0]
    time.sleep(0.05)
    cloud.usage.insert_rated([
        voice(customer, f"{customer}-sep-late", "2026-09-15T12:00:00Z", "0.250001"),   # late for September
        voice(customer, f"{customer}-sep-1", "2026-09-30T23:59:59Z", "1.000000"),      # a redelivery: billed already
        voice(customer, f"{customer}-oct-1", "2026-10-01T00:00:00Z", "2.000000"),
    ])
    october = cloud.closer().close([CloseTarget(plan(customer), "2026-10")]).rows[0]
    again = cloud.closer().close([CloseTarget(plan(customer), "2026-09")], rebill=True).rows[0]

    assert september["events"] == 1 and september["conservation_ok"] is True
    assert (october["events"], october["late_events"], october["conservation_ok"]) == (2, 1, True)
    assert october["usage_amount"] == "2.250001000"
    assert again["status"] == "unchanged"  # September's document stands; its late call is on October's
    invoice = cloud.register.documents(customer)[1].to_record()
    prior = [line for line in invoice["lines"] if line.get("prior_period")]
    assert [(line["service_period"], line["service_start"], line["service_end"], line["amount"], line["events"])
            for line in prior] == [("2026-09", "2026-09-01", "2026-10-01", "0.25", 1)]


# -- failures, empty periods, the task runner ------------------------------------------------------


def test_an_unbillable_customer_fails_alone_and_a_quiet_one_still_closes(stack):
    cloud = Cloud(stack)
    tag = uuid.uuid4().hex[:6].upper()
    good, bad, quiet = f"GOOD{tag}", f"BAD{tag}", f"QUIET{tag}"
    cloud.usage.insert_rated([voice(good, f"{good}-1", "2026-07-04T10:00:00Z", "0.100000"),
                              voice(bad, f"{bad}-1", "2026-07-04T10:00:00Z", "0.100000", jurisdiction="tollfree")])
    run = cloud.closer().close([CloseTarget(plan(c), "2026-07") for c in (good, bad, quiet)])
    rows = {row["customer_id"]: row for row in run.rows}
    assert rows[good]["status"] == "issued" and rows[quiet]["status"] == "issued"
    assert rows[bad]["status"] == "failed" and "tollfree" in rows[bad]["error"]
    assert rows[quiet]["events"] == 0 and rows[quiet]["conservation_ok"] is True and rows[quiet]["total"] == "0.00"
    assert run.summary()["failed"][0]["customer_id"] == bad


def test_the_task_runner_closes_every_due_customer_and_names_a_broken_plan(stack, tmp_path):
    cloud = Cloud(stack)
    tag = uuid.uuid4().hex[:6].upper()
    ok, broken = f"OK{tag}", f"BROKEN{tag}"
    cloud.usage.insert_rated([voice(ok, f"{ok}-1", "2026-07-04T10:00:00Z", "0.100000")])
    (tmp_path / "deck.csv").write_text("prefix,destination,rate,effective_date\n1,US,0.01,2026-01-01\n",
                                       encoding="utf-8")
    cloud.plan_store.put_plan(ok, f"customer_id: {ok}\ntimezone: UTC\nvoice: {{deck: deck.csv}}\n",
                              {"deck.csv": (tmp_path / "deck.csv").read_text()})
    version = cloud.plan_store.put_plan(broken, f"customer_id: {broken}\ntimezone: UTC\nvoice: {{deck: deck.csv}}\n",
                                        {"deck.csv": (tmp_path / "deck.csv").read_text()})
    # A stored version that no longer parses (edited by hand in the console, say).
    cloud.plan_store._plan_ref(broken).collection("versions").document(version).update(
        {"plan_yaml": f"customer_id: {broken}\nterms: {{anchor_day: 40}}\n"})
    settings = Settings(close_watermark_lag_s=0)
    container = Container(settings, plan_store=cloud.plan_store, rated_source=cloud.source,
                          close_register=cloud.register, document_store=cloud.documents, run_log=cloud.run_log,
                          invoice_publisher=LogInvoicePublisher(),
                          cycle_closer=cloud.closer())
    [run] = cycle_close(container, period="2026-07")
    rows = {row["customer_id"]: row for row in run.rows}
    assert rows[ok]["status"] == "issued"
    assert rows[broken]["status"] == "failed" and "anchor_day" in rows[broken]["error"]
    [second] = cycle_close(container, period="2026-07")  # the issued customer is left alone
    assert [(row["customer_id"], row["status"]) for row in second.rows] == [(broken, "failed")]


# -- usage_hourly ---------------------------------------------------------------------------------------


def test_hourly_rollup_merges_closed_hours_and_recomputes_hours_with_late_rows(stack):
    cloud = Cloud(stack)
    customer = f"HOUR{uuid.uuid4().hex[:6].upper()}"
    now = datetime.now(UTC)
    hour = (now - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    stamp = (hour + timedelta(minutes=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cloud.usage.insert_rated([voice(customer, f"{customer}-{i}", stamp, "0.100000") for i in range(3)])
    # A run at T covers rows written up to T - lag (10 minutes): runs "ten minutes from now" see these rows.
    lag = timedelta(minutes=10)
    first = cloud.source.hourly_rollup(datetime.now(UTC) + lag)
    second = cloud.source.hourly_rollup(datetime.now(UTC) + lag)
    rows = [r for r in cloud.source.hourly_rows(hour.date(), now.date()) if r["customer_id"] == customer]
    assert [(r["hour"], r["events"], r["amount"]) for r in rows] == [(hour, 3, Decimal("0.3"))]
    cloud.usage.insert_rated([voice(customer, f"{customer}-late", stamp, "0.050000"),
                              voice(customer, f"{customer}-0", stamp, "0.100000")])  # one late, one redelivered
    time.sleep(0.05)
    third = cloud.source.hourly_rollup(datetime.now(UTC) + lag)
    rows = [r for r in cloud.source.hourly_rows(hour.date(), now.date()) if r["customer_id"] == customer]
    assert [(r["events"], r["amount"]) for r in rows] == [(4, Decimal("0.35"))]
    assert first.since < first.until and second.since == first.until and third.since == second.until


def test_the_firestore_outbox_is_the_sync_port_idempotent_ordered_markable(stack):
    outbox = Cloud(stack).register.outbox
    customer = f"OUT{uuid.uuid4().hex[:6].upper()}"
    first = OutboxDocument(f"customer:{customer}", 1, "customer", customer, 10, "2026-12-01T00:00:00+00:00",
                           {"customer_id": customer})
    invoice = OutboxDocument(f"{customer}-INV-000001", 1, "invoice", customer, 20, "2026-12-01T00:00:00+00:00",
                             {"total": "1.00"}, (f"customer:{customer}",))
    outbox.add(first)
    outbox.add(invoice)
    outbox.add(OutboxDocument(f"customer:{customer}", 1, "customer", customer, 30, "later", {"changed": True}))
    assert [d.doc_id for d in outbox.pending(limit=1000) if d.customer_id == customer] == [
        f"customer:{customer}", f"{customer}-INV-000001"]
    assert outbox.get(f"customer:{customer}").payload == {"customer_id": customer}
    outbox.mark(f"customer:{customer}", 1, "synced", "netsuite:42")
    assert [d.doc_id for d in outbox.pending(limit=1000) if d.customer_id == customer] == [f"{customer}-INV-000001"]
    assert outbox.get(f"customer:{customer}").detail == "netsuite:42"
    assert outbox.get(f"{customer}-INV-000001").prerequisites == (f"customer:{customer}",)
    with pytest.raises(KeyError):
        outbox.mark("no-such-document", 1, "synced")
    assert [d.doc_id for d in outbox.documents(customer)] == [f"customer:{customer}", f"{customer}-INV-000001"]


# -- prepaid customers: a statement, closed once ------------------------------------------------------


@pytest.mark.parametrize("store", ["files", "firestore"])
def test_a_prepaid_customer_gets_one_statement_and_a_rerun_issues_nothing(stack, tmp_path, store):
    cloud = Cloud(stack)
    register = FileCloseRegister(tmp_path / "register") if store == "files" else cloud.register
    customer = f"PRE{uuid.uuid4().hex[:6].upper()}"
    cloud.usage.insert_rated([voice(customer, f"{customer}-1", "2026-08-10T10:00:00Z", "0.500000")])
    target = CloseTarget(plan(customer, billing="prepaid"), "2026-08")
    first = cloud.closer(register).close([target]).rows[0]
    again = cloud.closer(register).close([target]).rows[0]
    rebill = cloud.closer(register).close([target], rebill=True).rows[0]
    assert (first["status"], again["status"], rebill["status"]) == ("issued", "unchanged", "unchanged")
    assert first["document_number"] == again["document_number"] == f"{customer}-ST-000001"
    assert register.issued_number(customer, "2026-08") == f"{customer}-ST-000001"
    assert [(d.number, d.document_type) for d in register.documents(customer)] == [
        (f"{customer}-ST-000001", "statement")]
    # Not an AR invoice in the ERP: the customer and the statement's journal (customer deposits) only.
    outbox = register.outbox_documents(customer)
    assert [(d.doc_id, d.doc_type) for d in outbox] == [
        (f"customer:{customer}", "customer"), (f"journal:{customer}-ST-000001", "journal_entry")]
    assert outbox[1].prerequisites == (f"customer:{customer}",)

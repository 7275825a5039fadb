"""The same matching query in DuckDB and in BigQuery (the local emulator) classifies the same data
identically; and `functions/reconcile` runs a whole reconciliation over the local stack.

The vendor files come from our own rated events with injected differences (tests/recon_builders.py).
The function reads them from a folder laid out like the bucket (``vendor-cdrs/<vendor>/<period>/``).
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from functions_framework import create_app
from google.api_core.exceptions import NotFound
from pydantic import SecretStr
from tests.fakes import FakeAlertPublisher
from tests.integration.conftest import HOST, PROJECT, STAND_INS, require_stand_in
from tests.recon_builders import VendorFileBuilder, mapping_yaml, ours_for, rated_month

from warp_billing import bootstrap
from warp_billing.adapters.bigquery_recon import BigQueryReconEngine
from warp_billing.adapters.bigquery_usage import BigQueryUsageStore, bigquery_client
from warp_billing.adapters.duckdb_recon import DuckDBReconEngine
from warp_billing.adapters.gcs_documents import storage_client
from warp_billing.reconciliation.mapping import load_mapping
from warp_billing.reconciliation.service import period_bounds
from warp_billing.settings import Settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FIRST, END = __import__("datetime").date(2026, 6, 1), __import__("datetime").date(2026, 7, 1)


@pytest.fixture(scope="module")
def dataset(bigquery_stack):
    name = f"recon_{uuid.uuid4().hex[:8]}"
    client = bigquery_client(PROJECT, bigquery_stack)
    yield name
    client.delete_dataset(f"{PROJECT}.{name}", delete_contents=True, not_found_ok=True)


@pytest.fixture(scope="module")
def month(tmp_path_factory, bigquery_stack, dataset):
    folder = tmp_path_factory.mktemp("recon-month")
    rated = rated_month(folder, events=2500)
    store = _voice_in_bigquery(bigquery_stack, dataset, rated)
    store.insert_rated(_voice(rated)[:20])  # a redelivery: the deduplicated read must count each event once
    return folder, rated


def mixed_vendor_file(rated, path: Path) -> VendorFileBuilder:
    builder = VendorFileBuilder(ours_for(rated, "V1"))
    builder.inject_longer(0.05, 3)
    builder.drop(0.01)
    builder.add_unknown(8)
    builder.duplicate(0.01)
    builder.rate_change("intrastate", day=15)
    builder.write(path)
    return builder


def keyed(items) -> dict:
    def text(value):
        return None if value is None else format(value, "f") if hasattr(value, "as_tuple") else str(value)

    return {
        (item["class"], item["event_id"], item["vendor_record"]): (
            item["match_by"],
            item["duplicate_of"],
            text(item["our_cost"]),
            text(item["their_cost"]),
            item["our_duration_ms"],
            item["their_duration_ms"],
        )
        for item in items
    }


def test_duckdb_and_bigquery_classify_the_same_data_identically(month, bigquery_stack, dataset, tmp_path):
    folder, rated = month
    mixed_vendor_file(rated, tmp_path / "v1.csv")
    mapping = load_mapping(mapping_yaml("V1"))
    start_ms, end_ms = period_bounds("2026-06")
    local = DuckDBReconEngine(memory_limit="1GB")
    try:
        local.load_vendor(mapping, [str(tmp_path / "v1.csv")], start_ms, end_ms, names=["vendor-cdrs/V1/v1.csv"])
        local.load_ours([str(folder / "rated.jsonl")], "V1", start_ms, end_ms)
        local_outcome = local.match(mapping)
        local_items = list(local.items())
        rows = local.normalised_vendor_rows()
    finally:
        local.close()
    cloud = BigQueryReconEngine(
        lambda: bigquery_client(PROJECT, bigquery_stack),
        project=PROJECT,
        dataset=dataset,
        vendor_id="V1",
        period="2026-06",
        period_start=FIRST,
        period_end=END,
        deadline_s=120,
    )
    cloud.ensure_recon_schema()
    cloud.load_vendor_rows(rows, ["vendor-cdrs/V1/v1.csv"])
    cloud_outcome = cloud.match(mapping)
    cloud_items = cloud.items()
    only_cloud = set(keyed(cloud_items)) - set(keyed(local_items))
    only_local = set(keyed(local_items)) - set(keyed(cloud_items))
    assert not only_cloud and not only_local, (sorted(only_cloud)[:5], sorted(only_local)[:5])
    assert len(cloud_items) == len(local_items)
    assert keyed(cloud_items) == keyed(local_items)
    classes = {item["class"] for item in local_items}
    assert classes >= {"exact", "mismatch", "vendor_only", "ours_only", "vendor_duplicate"}
    assert sorted(local_outcome.aggregates) == sorted(cloud_outcome.aggregates)
    assert local_outcome.paired_per_day == cloud_outcome.paired_per_day


def test_the_function_reconciles_from_the_bucket_layout_into_tables_files_and_one_alert(
    month, bigquery_stack, dataset, tmp_path
):
    folder, rated = month
    files = tmp_path / "bucket"
    (files / "vendor-cdrs" / "V2" / "2026-06").mkdir(parents=True)
    builder = VendorFileBuilder(ours_for(rated, "V2"))
    builder.inject_increments((60, 60))
    builder.write(files / "vendor-cdrs" / "V2" / "2026-06" / "cdrs-1.tsv.gz", layout="local")
    (files / "vendor-cdrs" / "V2" / "mapping.yaml").write_text(mapping_yaml("V2", "local"))
    settings = Settings(
        _env_file=None,
        usage_store="bigquery",
        bigquery_endpoint=bigquery_stack,
        bigquery_project=PROJECT,
        bigquery_dataset=dataset,
        recon_source="files",
        vendor_cdr_dir=files,
        recon_output_dir=tmp_path / "out",
        recon_operator_email="ops@example.com",
    )
    alerts = FakeAlertPublisher()
    bootstrap.reset(bootstrap.Container(settings, alert_publisher=alerts))
    try:
        client = create_app(target="reconcile", source=str(ROOT / "functions" / "reconcile" / "main.py")).test_client()
        first = client.post("/", json={"vendor": "V2", "period": "2026-06"})
        assert first.status_code == 200, first.get_data(as_text=True)
        run = first.get_json()["runs"][0]
        assert run["dispute"] is True and run["dispute_opened"] is True
        again = client.post("/", json={"vendor": "V2", "period": "2026-06"})
        assert again.status_code == 200 and again.get_json()["runs"][0]["dispute_opened"] is False
        bad = client.post("/", json={"vendor": "V9", "period": "2026-06"})
        assert bad.status_code == 422 and "no mapping" in bad.get_json()["error"]
    finally:
        bootstrap.reset()
    out = tmp_path / "out" / "V2" / "2026-06"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dispute"] is True
    assert any(h["hint"] == "increment:60/60" for h in summary["hints"])
    assert (out / "dispute" / "letter.pdf").read_bytes().startswith(b"%PDF")
    assert "increment:60/60" in (out / "items.csv").read_text()
    assert [a["alert_id"] for a in alerts.published] == ["vendor-dispute:V2-2026-06"]
    assert alerts.published[0]["email"] == {
        "send_to": "operator",
        "address": "ops@example.com",
        "status": "to_send",
    }
    bq = bigquery_client(PROJECT, bigquery_stack)
    table = f"{PROJECT}.{dataset}"
    where = "period_start >= DATE '2026-06-01' AND period_start < DATE '2026-07-01'"
    disputes = list(bq.query(f"SELECT dispute_id, status FROM `{table}.disputes` WHERE {where}").result())
    assert [(r["dispute_id"], r["status"]) for r in disputes] == [("vendor-dispute:V2-2026-06", "open")]
    runs = list(bq.query(f"SELECT run_id, dispute FROM `{table}.recon_runs` WHERE {where}").result())
    assert [(r["run_id"], r["dispute"]) for r in runs] == [("V2-2026-06", True)]
    hinted = list(
        bq.query(
            f"SELECT COUNT(*) AS n FROM `{table}.recon_items` WHERE {where} "
            "AND run_id = 'V2-2026-06' AND cause_hint = 'increment:60/60'"
        ).result()
    )
    assert hinted[0]["n"] == summary["disputed_records"]
    loaded = list(
        bq.query(
            f"SELECT COUNT(*) AS n FROM `{table}.vendor_cdrs` WHERE event_date >= DATE '2026-06-01' "
            "AND event_date < DATE '2026-07-01' AND vendor_id = 'V2'"
        ).result()
    )
    assert loaded[0]["n"] == summary["vendor_rows"]["loaded"]  # re-run replaced the file's rows, no doubles


@pytest.fixture()
def bucket():
    """A bucket of this test's own in the local Cloud Storage stand-in."""
    require_stand_in("storage")
    endpoint = f"http://{HOST}:{STAND_INS['storage']}"
    client = storage_client(PROJECT, endpoint)
    name = f"recon-{uuid.uuid4().hex[:10]}"
    client.create_bucket(name)
    yield client, name, endpoint
    try:
        for blob in client.list_blobs(name):
            blob.delete()
        client.bucket(name).delete()
    except NotFound:
        pass  # already gone


def test_the_function_reads_gzip_files_from_the_bucket_and_writes_its_outputs_there(
    month, bigquery_stack, bucket, tmp_path, sendgrid
):
    """WARP_RECON_SOURCE=storage: files in the bucket + rated_usage in BigQuery -> recon tables,
    the package in the bucket, one alert; a repeated run of the same delivery creates nothing new."""
    client, name, endpoint = bucket
    folder, rated = month
    dataset = f"recon_gcs_{uuid.uuid4().hex[:8]}"
    _voice_in_bigquery(bigquery_stack, dataset, rated)
    local = tmp_path / "cdrs-1.tsv.gz"
    builder = VendorFileBuilder(ours_for(rated, "V2"))
    builder.inject_increments((60, 60))
    builder.write(local, layout="local")
    target = client.bucket(name)
    target.blob("vendor-cdrs/V2/mapping.yaml").upload_from_string(mapping_yaml("V2", "local"))
    target.blob("vendor-cdrs/V2/2026-06/cdrs-1.tsv.gz").upload_from_string(
        local.read_bytes(), content_type="application/gzip"
    )
    settings = _storage_recon_settings(bigquery_stack, dataset, endpoint, name,
                                       recon_operator_email="ops@example.com")
    alerts = FakeAlertPublisher()
    bootstrap.reset(bootstrap.Container(settings, alert_publisher=alerts))
    try:
        app = create_app(target="reconcile", source=str(ROOT / "functions" / "reconcile" / "main.py")).test_client()
        first = app.post("/", json={"vendor": "V2", "period": "2026-06"})
        assert first.status_code == 200, first.get_data(as_text=True)
        run = first.get_json()["runs"][0]
        objects_after_first = sorted(blob.name for blob in client.list_blobs(name, prefix="reports/"))
        again = app.post("/", json={"vendor": "V2", "period": "2026-06"})
        assert again.status_code == 200 and again.get_json()["runs"][0]["dispute_opened"] is False
        assert again.get_json()["runs"][0]["outputs"] == run["outputs"]
        bq = bigquery_client(PROJECT, bigquery_stack)
        where = "period_start >= DATE '2026-06-01' AND period_start < DATE '2026-07-01'"
        tables = {
            table: [dict(row) for row in bq.query(f"SELECT {columns} FROM `{PROJECT}.{dataset}.{table}` "
                                                    f"WHERE {where}").result()]
            for table, columns in (("disputes", "dispute_id, status"), ("recon_runs", "run_id, dispute"),
                                   ("recon_items", "COUNT(*) AS n"))
        }
        loaded = list(bq.query(f"SELECT COUNT(*) AS n FROM `{PROJECT}.{dataset}.vendor_cdrs` "
                               "WHERE vendor_id = 'V2'").result())[0]["n"]
    finally:
        bootstrap.reset()
        bigquery_client(PROJECT, bigquery_stack).delete_dataset(
            f"{PROJECT}.{dataset}", delete_contents=True, not_found_ok=True
        )
    assert run["dispute"] is True and run["dispute_opened"] is True
    (prefix,) = {name_.rsplit("/", 1)[0] for name_ in objects_after_first if name_.endswith("summary.json")}
    assert prefix.startswith("reports/V2/2026-06/")
    assert {name_[len(prefix) + 1 :] for name_ in objects_after_first} == {
        "items.csv",
        "summary.json",
        "report.html",
        "dispute/disputed-records.csv",
        "dispute/letter.html",
        "dispute/letter.pdf",
    }
    assert sorted(blob.name for blob in client.list_blobs(name, prefix="reports/")) == objects_after_first
    assert run["outputs"]["summary.json"] == f"gs://{name}/{prefix}/summary.json"
    summary = json.loads(target.blob(f"{prefix}/summary.json").download_as_bytes())
    assert summary["dispute"] is True and any(h["hint"] == "increment:60/60" for h in summary["hints"])
    assert summary["vendor_rows"]["loaded"] == loaded == len(builder.rows)
    assert tables["disputes"] == [{"dispute_id": "vendor-dispute:V2-2026-06", "status": "open"}]
    assert tables["recon_runs"] == [{"run_id": "V2-2026-06", "dispute": True}]
    assert tables["recon_items"][0]["n"] == sum(summary["counts"].values())
    assert target.blob(f"{prefix}/dispute/letter.pdf").download_as_bytes().startswith(b"%PDF")
    assert "increment:60/60" in target.blob(f"{prefix}/items.csv").download_as_bytes().decode()
    assert [a["alert_id"] for a in alerts.published] == ["vendor-dispute:V2-2026-06"]
    assert alerts.published[0]["package"]["dispute/letter.pdf"] == f"gs://{name}/{prefix}/dispute/letter.pdf"
    # notify emails the package read back from the bucket (the same settings: WARP_VENDOR_CDR_BUCKET)
    notify_settings = settings.model_copy(update={
        "data_dir": tmp_path / "data", "plans_dir": tmp_path, "register_dir": tmp_path / "register",
        "hubspot_sync": False, "sendgrid_url": f"http://127.0.0.1:{sendgrid.server_address[1]}",
        "sendgrid_api_key": SecretStr("SG.k"), "sendgrid_sandbox": True,
        "sendgrid_templates": {"vendor_dispute": "d-vd"}})
    handler = bootstrap.Container(notify_settings).alert_handler
    assert handler.handle(alerts.published[0], FIRST)["outcome"] == "sent"
    assert handler.handle(alerts.published[0], FIRST)["outcome"] == "already_sent"
    [mail] = sendgrid.mails
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "ops@example.com"
    attached = {item["filename"]: base64.b64decode(item["content"]) for item in mail["body"]["attachments"]}
    assert attached["V2-2026-06-letter.pdf"] == target.blob(f"{prefix}/dispute/letter.pdf").download_as_bytes()
    assert attached["V2-2026-06-disputed-records.csv"] == target.blob(
        f"{prefix}/dispute/disputed-records.csv").download_as_bytes()


def finalize_push(bucket_name: str, object_name: str, generation: str = "1") -> dict:
    """The Pub/Sub push envelope of a Storage notification (payload JSON_API_V1) for a new object."""
    resource = {"bucket": bucket_name, "name": object_name, "generation": generation}
    return {
        "message": {
            "attributes": {"eventType": "OBJECT_FINALIZE", "bucketId": bucket_name, "objectId": object_name,
                           "objectGeneration": generation, "payloadFormat": "JSON_API_V1"},
            "data": base64.b64encode(json.dumps(resource).encode()).decode(),
            "messageId": f"m-{generation}",
        },
        "subscription": "projects/warp-local/subscriptions/vendor-cdrs-finalized-reconcile",
    }


def test_an_object_finalize_event_reconciles_exactly_its_vendor_and_period_once(
    month, bigquery_stack, bucket, tmp_path
):
    """A new file under vendor-cdrs/V2/2026-06/ runs that reconciliation and no other (V1 has files
    too); the same event delivered again changes nothing; objects outside the layout, the
    reconciliation's own outputs and other buckets' objects run nothing."""
    client, name, endpoint = bucket
    folder, rated = month
    dataset = f"recon_evt_{uuid.uuid4().hex[:8]}"
    _voice_in_bigquery(bigquery_stack, dataset, rated)
    target = client.bucket(name)
    for vendor in ("V1", "V2"):
        local = tmp_path / f"{vendor}.tsv.gz"
        builder = VendorFileBuilder(ours_for(rated, vendor))
        builder.inject_increments((60, 60))
        builder.write(local, layout="local")
        target.blob(f"vendor-cdrs/{vendor}/mapping.yaml").upload_from_string(mapping_yaml(vendor, "local"))
        target.blob(f"vendor-cdrs/{vendor}/2026-06/cdrs-1.tsv.gz").upload_from_string(
            local.read_bytes(), content_type="application/gzip"
        )
    settings = _storage_recon_settings(bigquery_stack, dataset, endpoint, name)
    alerts = FakeAlertPublisher()
    bootstrap.reset(bootstrap.Container(settings, alert_publisher=alerts))
    bq = bigquery_client(PROJECT, bigquery_stack)

    def runs() -> list[str]:
        return sorted(r["run_id"] for r in bq.query(f"SELECT run_id FROM `{PROJECT}.{dataset}.recon_runs` "
                                                    "WHERE period_start >= DATE '2026-01-01'").result())

    try:
        app = create_app(target="reconcile", source=str(ROOT / "functions" / "reconcile" / "main.py")).test_client()
        first = app.post("/", json=finalize_push(name, "vendor-cdrs/V2/2026-06/cdrs-1.tsv.gz"))
        assert first.status_code == 200, first.get_data(as_text=True)
        (run,) = first.get_json()["runs"]
        assert run["run_id"] == "V2-2026-06" and run["dispute_opened"] is True
        assert runs() == ["V2-2026-06"]
        reports = sorted(blob.name for blob in client.list_blobs(name, prefix="reports/"))
        assert reports and all(r.startswith("reports/V2/2026-06/") for r in reports)

        again = app.post("/", json=finalize_push(name, "vendor-cdrs/V2/2026-06/cdrs-1.tsv.gz"))
        assert again.status_code == 200 and again.get_json()["runs"][0]["outputs"] == run["outputs"]
        assert again.get_json()["runs"][0]["dispute_opened"] is False
        assert sorted(blob.name for blob in client.list_blobs(name, prefix="reports/")) == reports

        # the same event as a CloudEvent in binary mode (Eventarc's delivery) reads the same way
        binary = app.post("/", json={"bucket": name, "name": "vendor-cdrs/V2/2026-06/cdrs-1.tsv.gz"},
                          headers={"ce-type": "google.cloud.storage.object.v1.finalized", "ce-id": "1",
                                   "ce-specversion": "1.0", "ce-source": f"//storage.googleapis.com/buckets/{name}"})
        assert binary.status_code == 200 and binary.get_json()["runs"][0]["outputs"] == run["outputs"]

        for ignored in (finalize_push(name, reports[0]), finalize_push(name, "vendor-cdrs/V2/mapping.yaml"),
                        finalize_push(name, "vendor-cdrs/V2/2026-06/"),
                        finalize_push("someone-elses-bucket", "vendor-cdrs/V1/2026-06/cdrs-1.tsv.gz")):
            answer = app.post("/", json=ignored)
            assert answer.status_code == 200 and "ignored" in answer.get_json(), answer.get_data(as_text=True)
        deleted = finalize_push(name, "vendor-cdrs/V1/2026-06/cdrs-1.tsv.gz")
        deleted["message"]["attributes"]["eventType"] = "OBJECT_DELETE"
        answer = app.post("/", json=deleted)
        assert answer.status_code == 200 and "ignored" in answer.get_json()
        assert runs() == ["V2-2026-06"]
    finally:
        bootstrap.reset()
        bq.delete_dataset(f"{PROJECT}.{dataset}", delete_contents=True, not_found_ok=True)
    assert [a["alert_id"] for a in alerts.published] == ["vendor-dispute:V2-2026-06"]


def _storage_recon_settings(bigquery_stack: str, dataset: str, endpoint: str, bucket: str, **extra) -> Settings:
    """The cloud reconciliation's settings on the stand-ins: BigQuery usage, vendor files in Storage."""
    return Settings(_env_file=None, usage_store="bigquery", bigquery_endpoint=bigquery_stack, bigquery_project=PROJECT,
                    bigquery_dataset=dataset, recon_source="storage", storage_endpoint=endpoint,
                    vendor_cdr_bucket=bucket, recon_reports_prefix="reports", **extra)


def _voice(rated: list[dict]) -> list[dict]:
    return [r for r in rated if r["status"] == "rated" and r["kind"] == "voice"]


def _voice_in_bigquery(bigquery_stack: str, dataset: str, rated: list[dict]) -> BigQueryUsageStore:
    """Our rated voice events in ``rated_usage`` of a new dataset on the emulator (500 rows an insert)."""
    store = BigQueryUsageStore(
        lambda: bigquery_client(PROJECT, bigquery_stack), project=PROJECT, dataset=dataset, deadline_s=60
    )
    store.ensure_schema()
    voice = _voice(rated)
    for start in range(0, len(voice), 500):
        store.insert_rated(voice[start : start + 500])
    return store

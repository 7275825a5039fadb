# Identities, each with only what it needs:
#
#   warp-<function>    one runtime account per function; its grants come from that function's
#                      access lists in functions.tf (bq_*, firestore, publish, enqueue, secrets,
#                      bucket_*), so dropping a function drops its grants.
#   warp-build         builds the function images: write logs, push to the warp-functions
#                      repository, read the uploaded bundles. Nothing else (not the Compute
#                      default account, which org policies often strip and which is Editor).
#   warp-pubsub-push   identity of the usage push subscriptions: run.invoker on the rating functions.
#   warp-scheduler     identity of the Scheduler jobs: run.invoker on the scheduled functions.
#   warp-tasks         identity of Cloud Tasks deliveries: run.invoker on the queue targets.
#
# The balance ledger is append-only for everything that serves events. What BigQuery IAM can and
# cannot express about that (README, "Least privilege: the ledger"):
#   - there is no insert-only permission: bigquery.tables.updateData allows streaming inserts
#     (insertAll, the Storage Write API) AND, through a job, DML and WRITE_TRUNCATE writes;
#   - so grants are per table, never on the dataset: ledger writers get the custom role
#     warpTableAppend (updateData only) on balance_ledger, plus dataViewer on it where they read
#     it (the reconcile of a stale customer); nobody gets tables.update (expiration, schema) or
#     tables.delete, and no function gets the ledger in bq_write (the MERGE role);
#   - an identity with updateData and NO bigquery.jobs.create can only append; every ledger
#     writer here also runs queries (durable dedup, reconcile), and with jobs.create + updateData
#     (+ getData for DML) IAM cannot forbid a DELETE/UPDATE/MERGE or a WRITE_TRUNCATE job on it.
#   What holds it then: the code (tests/unit/test_ledger_append_only.py: no DML on the ledger,
#   no WRITE_TRUNCATE anywhere), detection (monitoring.tf: every job that writes the ledger is
#   counted by principal) and recovery (time travel, 7 days, on the dataset).

resource "google_service_account" "fn" {
  for_each     = local.functions
  account_id   = "warp-${replace(each.key, "_", "-")}"
  display_name = "WARP Billing ${each.key} (runtime)"
  description  = each.value.description
  depends_on   = [time_sleep.apis_ready]
}

resource "google_service_account" "build" {
  account_id   = "warp-build"
  display_name = "WARP Billing function builds"
  depends_on   = [time_sleep.apis_ready]
}

resource "google_service_account" "pubsub_push" {
  account_id   = "warp-pubsub-push"
  display_name = "WARP Billing usage push subscriptions (OIDC)"
  depends_on   = [time_sleep.apis_ready]
}

resource "google_service_account" "scheduler" {
  account_id   = "warp-scheduler"
  display_name = "WARP Billing Cloud Scheduler jobs (OIDC)"
  depends_on   = [time_sleep.apis_ready]
}

resource "google_service_account" "tasks" {
  account_id   = "warp-tasks"
  display_name = "WARP Billing Cloud Tasks deliveries (OIDC)"
  depends_on   = [time_sleep.apis_ready]
}

# -- BigQuery table roles (granted per table, never on the dataset) ------------------------------

resource "google_project_iam_custom_role" "table_append" {
  role_id     = "warpTableAppend"
  title       = "WARP table append"
  description = "Append rows to a table (insertAll / Storage Write API); no read, no schema or table change."
  permissions = ["bigquery.tables.updateData"]
  depends_on  = [time_sleep.apis_ready]
}

resource "google_project_iam_custom_role" "table_merge" {
  role_id     = "warpTableMerge"
  title       = "WARP table merge"
  description = "MERGE into a table (read + write rows); no schema change, no table deletion."
  permissions = ["bigquery.tables.get", "bigquery.tables.getData", "bigquery.tables.updateData"]
  depends_on  = [time_sleep.apis_ready]
}

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  function_project_roles = merge([
    for name, spec in local.functions : merge(
      spec.bq_jobs ? { "${name}/bigquery.jobUser" = { function = name, role = "roles/bigquery.jobUser" } } : {},
      spec.firestore == "user" ? { "${name}/datastore.user" = { function = name, role = "roles/datastore.user" } } : {},
      spec.firestore == "viewer" ? { "${name}/datastore.viewer" = { function = name, role = "roles/datastore.viewer" } } : {},
    )
  ]...)

  function_table_grants = merge([
    for name, spec in local.functions : merge(
      { for table in spec.bq_append : "${name}/${table}/append" => { function = name, table = table, role = "append" } },
      { for table in spec.bq_read : "${name}/${table}/read" => { function = name, table = table, role = "read" } },
      { for table in spec.bq_write : "${name}/${table}/merge" => { function = name, table = table, role = "merge" } },
    )
  ]...)

  table_roles = {
    append = google_project_iam_custom_role.table_append.id
    merge  = google_project_iam_custom_role.table_merge.id
    read   = "roles/bigquery.dataViewer"
  }

  function_publish = merge([
    for name, spec in local.functions : { for topic in spec.publish : "${name}/${topic}" => { function = name, topic = topic } }
  ]...)

  function_secrets = merge([
    for name, spec in local.functions : {
      for secret in distinct(concat(values(spec.secrets), spec.redis ? [local.redis_url_secret, local.redis_ca_secret] : [])) :
      "${name}/${secret}" => { function = name, secret = secret }
    }
  ]...)

  function_enqueue = merge([
    for name, spec in local.functions : { for queue in spec.enqueue : "${name}/${queue}" => { function = name, queue = queue } }
  ]...)

  function_buckets = merge([
    for name, spec in local.functions : merge(
      { for bucket in spec.bucket_read : "${name}/${bucket}/read" => { function = name, bucket = bucket, role = "roles/storage.objectViewer" } },
      # objectCreator: create only; overwriting or deleting an object needs storage.objects.delete.
      { for bucket in spec.bucket_write : "${name}/${bucket}/write" => { function = name, bucket = bucket, role = "roles/storage.objectCreator" } },
    )
  ]...)

  enqueuers = toset([for name, spec in local.functions : name if length(spec.enqueue) > 0])

  iam_grant_keys = concat(
    keys(local.function_project_roles), keys(local.function_table_grants), keys(local.function_publish),
    keys(local.function_secrets), keys(local.function_enqueue), keys(local.function_buckets), tolist(local.enqueuers),
  )
}

resource "google_project_iam_member" "function_project_roles" {
  for_each = local.function_project_roles
  project  = var.project
  role     = each.value.role
  member   = google_service_account.fn[each.value.function].member
}

resource "google_bigquery_table_iam_member" "function_tables" {
  for_each   = local.function_table_grants
  project    = var.project
  dataset_id = google_bigquery_dataset.usage.dataset_id
  table_id   = local.table_ids[each.value.table]
  role       = local.table_roles[each.value.role]
  member     = google_service_account.fn[each.value.function].member
}

resource "google_pubsub_topic_iam_member" "function_publish" {
  for_each = local.function_publish
  topic    = local.topic_names[each.value.topic]
  role     = "roles/pubsub.publisher"
  member   = google_service_account.fn[each.value.function].member
}

resource "google_secret_manager_secret_iam_member" "function_secrets" {
  for_each  = local.function_secrets
  project   = var.project
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn[each.value.function].member
  # The managed secrets must exist first; external ones exist before the first apply (README).
  depends_on = [google_secret_manager_secret.managed]
}

resource "google_cloud_tasks_queue_iam_member" "function_enqueue" {
  for_each = local.function_enqueue
  name     = google_cloud_tasks_queue.queues[each.value.queue].name
  location = var.region
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.fn[each.value.function].member
}

# Creating a task that carries an OIDC token for warp-tasks means acting as warp-tasks.
resource "google_service_account_iam_member" "function_acts_as_tasks" {
  for_each           = local.enqueuers
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.fn[each.value].member
}

resource "google_storage_bucket_iam_member" "function_buckets" {
  for_each = local.function_buckets
  bucket   = google_storage_bucket.owned[each.value.bucket].name
  role     = each.value.role
  member   = google_service_account.fn[each.value.function].member
}

# -- the build account ------------------------------------------------------------------------

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter"])
  project  = var.project
  role     = each.value
  member   = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

# The uploaded bundles, and the copy Cloud Functions stages in its own gcf-v2-sources bucket.
resource "google_storage_bucket_iam_member" "build_sources" {
  bucket = google_storage_bucket.function_sources.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

resource "google_project_iam_member" "build_staged_sources" {
  project = var.project
  role    = "roles/storage.objectViewer"
  member  = google_service_account.build.member
  condition {
    title      = "gcf-v2-sources bucket only"
    expression = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-${var.region}\")"
  }
}

# -- invokers ---------------------------------------------------------------------------------

resource "google_cloud_run_service_iam_member" "pubsub_push_invoker" {
  for_each = local.pubsub_functions
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.pubsub_push.member
}

resource "google_cloud_run_service_iam_member" "alerts_push_invoker" {
  for_each = local.alert_functions
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.pubsub_push.member
}

resource "google_cloud_run_service_iam_member" "scheduler_invoker" {
  for_each = toset(distinct([for job in values(local.scheduled_jobs) : job.function]))
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.value].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# Public functions (ingress ALLOW_ALL): the payment gateway and NetSuite call them without a Google
# identity; each request is authenticated by the function itself (webhook signatures, task HMAC).
resource "google_cloud_run_service_iam_member" "public_invoker" {
  for_each = toset([for name, spec in local.functions : name if spec.ingress == "ALLOW_ALL"])
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.value].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "tasks_invoker" {
  for_each = toset(distinct([for queue in values(local.queues) : queue.function]))
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.value].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.tasks.member
}

# Pub/Sub mints the push subscriptions' OIDC tokens as its service agent (required for projects
# created before April 2021, harmless after).
resource "google_service_account_iam_member" "pubsub_push_token_creator" {
  service_account_id = google_service_account.pubsub_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# Two service accounts, each with only what it needs.
#
#   warp-functions  runtime identity of every function: write rated usage and the ledger
#                   (dataset-level dataEditor + project jobUser to run queries), read/write plans
#                   (Firestore), publish alerts (billing-alerts only), read the Redis URL secret,
#                   enqueue NetSuite tasks on the one queue, and mint the tasks' OIDC tokens as
#                   warp-invoker. Redis itself is reached over the VPC connector (no IAM role).
#   warp-invoker    identity of Eventarc triggers, Scheduler jobs and Cloud Tasks: may invoke
#                   the functions' Cloud Run services and nothing else.

resource "google_service_account" "functions" {
  account_id   = "warp-functions"
  display_name = "WARP Billing functions (runtime)"
}

resource "google_service_account" "invoker" {
  account_id   = "warp-invoker"
  display_name = "WARP Billing invoker (Eventarc, Scheduler, Cloud Tasks)"
}

resource "google_bigquery_dataset_iam_member" "functions_data_editor" {
  dataset_id = google_bigquery_dataset.usage.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.functions.member
}

resource "google_project_iam_member" "functions_bigquery_jobs" {
  project = var.project
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.functions.member
}

resource "google_project_iam_member" "functions_datastore_user" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.functions.member
}

resource "google_pubsub_topic_iam_member" "functions_alerts_publisher" {
  topic  = google_pubsub_topic.billing_alerts.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.functions.member
}

resource "google_secret_manager_secret_iam_member" "functions_redis_url" {
  secret_id = google_secret_manager_secret.redis_url.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.functions.member
}

resource "google_cloud_tasks_queue_iam_member" "functions_enqueue_netsuite" {
  name     = google_cloud_tasks_queue.netsuite.name
  location = var.region
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.functions.member
}

# Creating a task with an OIDC token for warp-invoker requires acting as warp-invoker.
resource "google_service_account_iam_member" "functions_act_as_invoker" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.functions.member
}

# Eventarc needs its trigger identity to receive events.
resource "google_project_iam_member" "invoker_event_receiver" {
  project = var.project
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.invoker.member
}

resource "google_cloud_run_service_iam_member" "invoker_usage" {
  for_each = local.usage_functions
  location = var.region
  service  = google_cloudfunctions2_function.usage[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.invoker.member
}

resource "google_cloud_run_service_iam_member" "invoker_http" {
  for_each = { for name, spec in local.http_functions : name => spec if name != "webhooks" }
  location = var.region
  service  = google_cloudfunctions2_function.http[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.invoker.member
}

# Webhooks come from NetSuite and Authorize.Net, which cannot present Google identities: the
# function is public and verifies each body's HMAC signature itself.
resource "google_cloud_run_service_iam_member" "webhooks_public" {
  location = var.region
  service  = google_cloudfunctions2_function.http["webhooks"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# APIs first, then explicit waits where Google's propagation needs them, so a fresh project
# comes up in one apply:
#
#   apis_ready  after enabling the APIs: service agents (Pub/Sub, Cloud Functions, Cloud Run,
#               Cloud Build, Secret Manager) are created asynchronously and a grant to an agent
#               that does not exist yet fails; first calls to a just-enabled API may answer 403.
#   iam_ready   after every grant (iam.tf): IAM changes take effect within about a minute, often
#               longer; a function built or started before its identities' roles are visible
#               fails its first deploy. The wait is re-run whenever the set of grants changes.
#               (Queue grants are left out: a queue targets its function, which waits here, so
#               waiting for them would be a cycle; an enqueue in the first minute is retried.)
#
# Eventarc is not used (usage topics push to the functions through subscriptions this module
# owns, pubsub.tf), so the Eventarc service agent race of fresh projects cannot happen.

locals {
  required_apis = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "compute.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "storage.googleapis.com",
    "vpcaccess.googleapis.com",
  ]
}

resource "google_project_service" "required" {
  for_each           = toset(local.required_apis)
  service            = each.value
  disable_on_destroy = false
}

resource "time_sleep" "apis_ready" {
  create_duration = var.api_propagation_wait
  depends_on      = [google_project_service.required]
}

resource "time_sleep" "iam_ready" {
  create_duration = var.iam_propagation_wait

  # A new function (or a changed grant) waits again before anything uses it.
  triggers = {
    grants = sha1(jsonencode(local.iam_grant_keys))
  }

  depends_on = [
    google_project_iam_member.function_project_roles,
    google_bigquery_table_iam_member.function_tables,
    google_pubsub_topic_iam_member.function_publish,
    google_secret_manager_secret_iam_member.function_secrets,
    google_service_account_iam_member.function_acts_as_tasks,
    google_storage_bucket_iam_member.function_buckets,
    google_project_iam_member.build,
    google_project_iam_member.build_staged_sources,
    google_artifact_registry_repository_iam_member.build_writer,
    google_storage_bucket_iam_member.build_sources,
    google_service_account_iam_member.pubsub_push_token_creator,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

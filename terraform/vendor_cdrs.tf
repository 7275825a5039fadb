# Object-finalize deliveries of the vendor CDR bucket (issue 13): besides the daily Scheduler job,
# every object created under vendor-cdrs/ runs the reconciliation of its vendor and period.
#
# A Storage notification (OBJECT_FINALIZE, prefix vendor-cdrs/) publishes to a topic of its own;
# its push subscription, with dead letters and retries (pubsub.tf local.topic_consumers, shared with
# the billing-alerts and invoices consumers), posts the Pub/Sub envelope to the reconcile
# function's run.app URL with an OIDC token of warp-pubsub-push. The function reads bucket and
# object from the envelope's attributes (warp_billing.reconciliation_job.finalized_object),
# ignores objects outside vendor-cdrs/<vendor>/<period>/ (its own outputs land under recon/ in the
# same bucket) and acknowledges what it cannot reconcile; a raise is a redelivery, which runs the
# same delivery again without a second dispute or alert.
#
# Rights: the Cloud Storage service agent publishes to the topic; warp-pubsub-push invokes the
# function; the Pub/Sub service agent forwards undeliverable messages to the dead-letter topic.
# The function's own account already reads and writes the bucket (functions.tf bucket_read /
# bucket_write); all of it exists only while reconcile is declared.

locals {
  # function -> the bucket (key of local.bucket_names) and object prefix whose new objects it serves
  object_functions = {
    for name, spec in { reconcile = { bucket = "vendor_cdrs", prefix = "vendor-cdrs/" } } :
    name => spec if contains(keys(local.functions), name)
  }
}

data "google_storage_project_service_account" "gcs" {
  depends_on = [time_sleep.apis_ready]
}

resource "google_pubsub_topic" "object_finalized" {
  for_each                   = local.object_functions
  name                       = "${replace(each.value.bucket, "_", "-")}-finalized-${replace(each.key, "_", "-")}"
  message_retention_duration = var.usage_message_retention
  depends_on                 = [time_sleep.apis_ready]
}

resource "google_pubsub_topic_iam_member" "object_finalized_publisher" {
  for_each = local.object_functions
  topic    = google_pubsub_topic.object_finalized[each.key].name
  role     = "roles/pubsub.publisher"
  member   = data.google_storage_project_service_account.gcs.member
}

resource "google_storage_notification" "object_finalized" {
  for_each           = local.object_functions
  bucket             = google_storage_bucket.owned[each.value.bucket].name
  payload_format     = "JSON_API_V1"
  topic              = google_pubsub_topic.object_finalized[each.key].id
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = each.value.prefix
  depends_on         = [google_pubsub_topic_iam_member.object_finalized_publisher]
}

resource "google_cloud_run_service_iam_member" "object_push_invoker" {
  for_each = local.object_functions
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.pubsub_push.member
}

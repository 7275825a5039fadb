# Function sources: build/functions/<name>/ (main.py + requirements.txt + warp_billing/, made by
# tools/function_bundles.py), zipped and uploaded under a name that contains the zip's md5.

resource "google_storage_bucket" "function_sources" {
  name                        = "${var.project}-warp-function-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }
}

data "archive_file" "function_bundle" {
  for_each    = local.all_functions
  type        = "zip"
  source_dir  = "${path.module}/../build/functions/${each.key}"
  output_path = "${path.module}/../build/bundles/${each.key}.zip"
  excludes    = ["**/__pycache__/**", "**/*.pyc"]
}

resource "google_storage_bucket_object" "function_bundle" {
  for_each = local.all_functions
  name     = "${each.key}/bundle-${data.archive_file.function_bundle[each.key].output_md5}.zip"
  bucket   = google_storage_bucket.function_sources.name
  source   = data.archive_file.function_bundle[each.key].output_path
}

# Usage functions: one CloudEvent per Pub/Sub message; raising makes Pub/Sub redeliver.
resource "google_cloudfunctions2_function" "usage" {
  for_each = local.usage_functions
  name     = replace(each.key, "_", "-")
  location = var.region

  build_config {
    runtime     = "python311"
    entry_point = each.key
    source {
      storage_source {
        bucket = google_storage_bucket.function_sources.name
        object = google_storage_bucket_object.function_bundle[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    timeout_seconds                  = 60
    max_instance_count               = each.value.max_instances
    max_instance_request_concurrency = 8
    available_cpu                    = "1"
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    service_account_email            = google_service_account.functions.email
    vpc_connector                    = google_vpc_access_connector.functions.id
    vpc_connector_egress_settings    = "PRIVATE_RANGES_ONLY"
    environment_variables            = local.function_environment
    secret_environment_variables {
      key        = "WARP_REDIS_URL"
      project_id = var.project
      secret     = google_secret_manager_secret.redis_url.secret_id
      version    = "latest"
    }
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = google_pubsub_topic.usage[each.key].id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.invoker.email
  }

  depends_on = [google_secret_manager_secret_iam_member.functions_redis_url]
}

# HTTP functions: called by Cloud Scheduler, Cloud Tasks (OIDC) or, for webhooks, the vendors.
resource "google_cloudfunctions2_function" "http" {
  for_each = local.http_functions
  name     = replace(each.key, "_", "-")
  location = var.region

  build_config {
    runtime     = "python311"
    entry_point = each.key
    source {
      storage_source {
        bucket = google_storage_bucket.function_sources.name
        object = google_storage_bucket_object.function_bundle[each.key].name
      }
    }
  }

  service_config {
    available_memory              = each.value.memory
    timeout_seconds               = each.value.timeout
    max_instance_count            = each.value.max_instances
    ingress_settings              = each.value.ingress
    service_account_email         = google_service_account.functions.email
    vpc_connector                 = google_vpc_access_connector.functions.id
    vpc_connector_egress_settings = "PRIVATE_RANGES_ONLY"
    environment_variables = merge(local.function_environment, {
      WARP_NETSUITE_SYNC_URL     = "https://${var.region}-${var.project}.cloudfunctions.net/netsuite-sync"
      WARP_TASKS_INVOKER_ACCOUNT = google_service_account.invoker.email
    })
    secret_environment_variables {
      key        = "WARP_REDIS_URL"
      project_id = var.project
      secret     = google_secret_manager_secret.redis_url.secret_id
      version    = "latest"
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.functions_redis_url]
}

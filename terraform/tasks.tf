# Cloud Tasks queues: each declared function's `queues` (functions.tf). The queue itself routes
# every task to its function's run.app URL with an OIDC token of warp-tasks (queue-level
# http_target, enforced ALWAYS), so no enqueuer can send a task elsewhere or unauthenticated.
#
# netsuite: the dispatch concurrency is the NetSuite account's concurrency limit, so the sync
# never draws HTTP 429 from NetSuite under load. Task names are deterministic (invoice id +
# revision), so a retried enqueue never creates a second invoice.

locals {
  queues = merge([for name, spec in local.functions : { for queue, q in spec.queues : queue => merge(q, { function = name }) }]...)
}

resource "google_cloud_tasks_queue" "queues" {
  for_each = local.queues
  name     = each.key
  location = var.region

  rate_limits {
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
    max_dispatches_per_second = each.value.max_dispatches_per_second
  }

  retry_config {
    max_attempts       = 100
    max_retry_duration = "86400s"
    min_backoff        = "1s"
    max_backoff        = "600s"
    max_doublings      = 6
  }

  http_target {
    http_method = "POST"
    uri_override {
      scheme                    = "HTTPS"
      host                      = trimprefix(google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri, "https://")
      uri_override_enforce_mode = "ALWAYS"
    }
    oidc_token {
      service_account_email = google_service_account.tasks.email
      audience              = google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri
    }
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [time_sleep.apis_ready]
}

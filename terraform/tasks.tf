# Cloud Tasks queue in front of NetSuite: the dispatch concurrency is the NetSuite account's
# concurrency limit, so the sync never draws HTTP 429 from NetSuite under load. Task names are
# deterministic (invoice id + revision), so a retried enqueue never creates a second invoice.

resource "google_cloud_tasks_queue" "netsuite" {
  name     = "netsuite"
  location = var.region

  rate_limits {
    max_concurrent_dispatches = var.netsuite_concurrency
    max_dispatches_per_second = var.netsuite_dispatches_per_second
  }

  retry_config {
    max_attempts       = 100
    max_retry_duration = "86400s"
    min_backoff        = "1s"
    max_backoff        = "600s"
    max_doublings      = 6
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.required]
}

# Cloud Scheduler: rollups, cycle close and reconciliation, each an authenticated (OIDC) POST.

locals {
  scheduled_jobs = {
    "rollup-hourly" = {
      description = "Hourly running totals per customer from rated_usage."
      schedule    = "5 * * * *"
      function    = "rollup"
      body        = { task = "hourly_rollup" }
    }
    # 12:00 UTC on the 1st: every customer time zone (UTC-12..UTC+14) has entered the new
    # month by then, so each cycle closes on complete usage in the customer's own zone.
    "cycle-close-monthly" = {
      description = "Monthly billing cycle close: invoices for every customer whose cycle ended."
      schedule    = "0 12 1 * *"
      function    = "rollup"
      body        = { task = "cycle_close" }
    }
    "reconcile-daily" = {
      description = "Daily vendor CDR reconciliation against rated usage."
      schedule    = "0 6 * * *"
      function    = "reconcile"
      body        = { task = "daily_reconcile" }
    }
  }
}

resource "google_cloud_scheduler_job" "jobs" {
  for_each         = local.scheduled_jobs
  name             = each.key
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = var.scheduler_time_zone
  region           = var.region
  attempt_deadline = "540s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.http[each.value.function].service_config[0].uri
    body        = base64encode(jsonencode(each.value.body))
    headers = {
      "Content-Type" = "application/json"
    }
    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.http[each.value.function].service_config[0].uri
    }
  }

  depends_on = [google_project_service.required]
}

# Cloud Scheduler: each declared function's `schedules` (functions.tf), an authenticated (OIDC as
# warp-scheduler) POST of a JSON body to the function's run.app URL.

locals {
  scheduled_jobs = merge([for name, spec in local.functions : { for job, s in spec.schedules : job => merge(s, { function = name }) }]...)
}

resource "google_cloud_scheduler_job" "jobs" {
  for_each         = local.scheduled_jobs
  name             = each.key
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = var.scheduler_time_zone
  region           = var.region
  attempt_deadline = "${min(local.functions[each.value.function].timeout, 1800)}s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri
    body        = base64encode(jsonencode(each.value.body))
    headers = {
      "Content-Type" = "application/json"
    }
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler_invoker, time_sleep.iam_ready]
}

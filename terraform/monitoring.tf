# Detection for what IAM cannot forbid (iam.tf): any BigQuery JOB that writes the balance ledger.
# The legitimate writers only stream rows (insertAll, not a job), so every count here is a
# query/load/copy/DML job that changed ledger rows: alert on it, then undo it from time travel.
# BigQuery writes these audit entries (data access, job completed) whatever the project's
# audit-log settings.

resource "google_logging_metric" "ledger_job_writes" {
  name        = "warp/ledger_job_writes"
  description = "BigQuery jobs (DML, WRITE_TRUNCATE/APPEND queries, loads, copies) whose destination is balance_ledger."
  filter      = <<-EOT
    resource.type="bigquery_dataset"
    resource.labels.dataset_id="${var.bigquery_dataset}"
    protoPayload.metadata.jobChange.after="DONE"
    (
      protoPayload.metadata.jobChange.job.jobConfig.queryConfig.destinationTable:"/tables/balance_ledger" OR
      protoPayload.metadata.jobChange.job.jobConfig.loadConfig.destinationTable:"/tables/balance_ledger" OR
      protoPayload.metadata.jobChange.job.jobConfig.tableCopyConfig.destinationTable:"/tables/balance_ledger"
    )
  EOT

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key         = "principal"
      value_type  = "STRING"
      description = "Who ran the job."
    }
  }

  label_extractors = {
    principal = "EXTRACT(protoPayload.authenticationInfo.principalEmail)"
  }

  depends_on = [time_sleep.apis_ready]
}

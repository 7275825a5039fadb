# Rated usage, rejects and the balance ledger. Column lists are the adapter's own schema files;
# partitioning and clustering must equal TABLES in warp_billing.adapters.bigquery_usage
# (checked by tests/unit/test_terraform_config.py). Every query must filter on the partition
# column (require_partition_filter), so a rollup of one day scans one day.

resource "google_bigquery_dataset" "usage" {
  dataset_id    = var.bigquery_dataset
  location      = var.bigquery_location
  description   = "WARP Billing rated usage, rejects and the prepaid balance ledger."
  friendly_name = "WARP Billing"
  depends_on    = [google_project_service.required]
}

resource "google_bigquery_table" "rated_usage" {
  dataset_id               = google_bigquery_dataset.usage.dataset_id
  table_id                 = "rated_usage"
  description              = "One row per rated event; insertId = event_id; read deduplicated by event_id."
  schema                   = file("${local.bigquery_schema_dir}/rated_usage.json")
  clustering               = ["customer_id"]
  require_partition_filter = true
  deletion_protection      = true

  time_partitioning {
    type  = "DAY"
    field = "event_date"
  }
}

resource "google_bigquery_table" "usage_rejects" {
  dataset_id               = google_bigquery_dataset.usage.dataset_id
  table_id                 = "usage_rejects"
  description              = "One row per rejected delivery with its reason; insertId = reject_id."
  schema                   = file("${local.bigquery_schema_dir}/usage_rejects.json")
  clustering               = ["customer_id"]
  require_partition_filter = true
  deletion_protection      = true

  time_partitioning {
    type  = "DAY"
    field = "event_date"
  }
}

resource "google_bigquery_table" "balance_ledger" {
  dataset_id               = google_bigquery_dataset.usage.dataset_id
  table_id                 = "balance_ledger"
  description              = "Every prepaid balance movement; insertId = entry_id; Redis balances are rebuilt from it."
  schema                   = file("${local.bigquery_schema_dir}/balance_ledger.json")
  clustering               = ["customer_id"]
  require_partition_filter = true
  deletion_protection      = true

  time_partitioning {
    type  = "DAY"
    field = "at"
  }
}

# The cycle close (functions/rollup): hourly usage rolled up by MERGE, and one row per customer
# and close run with its conservation check.

resource "google_bigquery_table" "usage_hourly" {
  dataset_id               = google_bigquery_dataset.usage.dataset_id
  table_id                 = "usage_hourly"
  description              = "Usage per customer, UTC hour and product line; MERGEd by the rollup function's hourly_rollup."
  schema                   = file("${local.bigquery_schema_dir}/usage_hourly.json")
  clustering               = ["customer_id"]
  require_partition_filter = true
  deletion_protection      = true

  time_partitioning {
    type  = "DAY"
    field = "hour"
  }
}

resource "google_bigquery_table" "cycle_runs" {
  dataset_id               = google_bigquery_dataset.usage.dataset_id
  table_id                 = "cycle_runs"
  description              = "One row per customer and cycle-close run: status, document, totals, conservation check."
  schema                   = file("${local.bigquery_schema_dir}/cycle_runs.json")
  clustering               = ["customer_id"]
  require_partition_filter = true
  deletion_protection      = true

  time_partitioning {
    type  = "DAY"
    field = "run_date"
  }
}

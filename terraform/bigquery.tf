# Rated usage, rejects and the balance ledger, and the tables the declared functions own. Column
# lists are the adapters' own schema files; partitioning and clustering must equal the adapters'
# table specs (checked by tests/unit/test_terraform_config.py). Every query must filter on the
# partition column (require_partition_filter), so a rollup of one day scans one day.

locals {
  bigquery_schema_dir = "${path.module}/../shared/warp_billing/adapters/bigquery_schemas"

  owned_tables = merge([for name, spec in local.functions : { for table, layout in spec.tables : table => merge(layout, { function = name }) }]...)

  table_ids = merge(
    {
      rated_usage    = google_bigquery_table.rated_usage.table_id
      usage_rejects  = google_bigquery_table.usage_rejects.table_id
      balance_ledger = google_bigquery_table.balance_ledger.table_id
    },
    { for table, resource in google_bigquery_table.owned : table => resource.table_id },
  )
}

resource "google_bigquery_dataset" "usage" {
  dataset_id    = var.bigquery_dataset
  location      = var.bigquery_location
  description   = "WARP Billing rated usage, rejects, the prepaid balance ledger and the billing tables."
  friendly_name = "WARP Billing"
  # The longest time travel BigQuery offers: a ledger overwrite is undone from it (README).
  max_time_travel_hours = 168
  depends_on            = [time_sleep.apis_ready]
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

# Raw payloads of rejected deliveries hold phone numbers: partitions expire (default 90 days).
resource "google_bigquery_table" "usage_rejects" {
  dataset_id               = google_bigquery_dataset.usage.dataset_id
  table_id                 = "usage_rejects"
  description              = "One row per rejected delivery with its reason; insertId = reject_id; partitions expire."
  schema                   = file("${local.bigquery_schema_dir}/usage_rejects.json")
  clustering               = ["customer_id"]
  require_partition_filter = true
  deletion_protection      = true

  time_partitioning {
    type          = "DAY"
    field         = "event_date"
    expiration_ms = var.usage_rejects_retention_days * 86400000
  }
}

resource "google_bigquery_table" "balance_ledger" {
  dataset_id               = google_bigquery_dataset.usage.dataset_id
  table_id                 = "balance_ledger"
  description              = "Every prepaid balance movement; insertId = entry_id; append-only; Redis is rebuilt from it."
  schema                   = file("${local.bigquery_schema_dir}/balance_ledger.json")
  clustering               = ["customer_id"]
  require_partition_filter = true
  deletion_protection      = true

  time_partitioning {
    type  = "DAY"
    field = "at"
  }
}

resource "google_bigquery_table" "owned" {
  for_each                 = local.owned_tables
  dataset_id               = google_bigquery_dataset.usage.dataset_id
  table_id                 = each.key
  description              = "Written by ${each.value.function}."
  schema                   = file("${local.bigquery_schema_dir}/${each.key}.json")
  clustering               = length(each.value.clustering) > 0 ? each.value.clustering : null
  require_partition_filter = true
  deletion_protection      = true

  time_partitioning {
    type  = "DAY"
    field = each.value.partition_field
  }
}

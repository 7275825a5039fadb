# Memorystore for Redis (hot prepaid balances, postpaid running totals, dedup marks, ledger
# outboxes), private to the VPC; the functions reach it through a Serverless VPC Access connector.
# AUTH is on and transit encryption is SERVER_AUTHENTICATION: clients speak TLS to port 6378 and
# verify the server against the instance's own CA. The rediss:// URL (with the AUTH string) and the
# CA are Secret Manager secrets (secrets.tf), never plain variables or environment values.

resource "google_compute_network" "warp" {
  name                    = "warp-billing"
  auto_create_subnetworks = false
  depends_on              = [time_sleep.apis_ready]
}

resource "google_vpc_access_connector" "functions" {
  name          = "warp-functions"
  region        = var.region
  network       = google_compute_network.warp.name
  ip_cidr_range = var.vpc_connector_cidr
  min_instances = var.vpc_connector_min_instances
  max_instances = var.vpc_connector_max_instances
  machine_type  = var.vpc_connector_machine_type
}

resource "google_redis_instance" "balances" {
  name               = "warp-balances"
  region             = var.region
  tier               = var.redis_tier
  memory_size_gb     = var.redis_memory_size_gb
  redis_version      = "REDIS_7_0"
  authorized_network = google_compute_network.warp.id
  connect_mode       = "DIRECT_PEERING"
  # Rotating the AUTH string: Memorystore generates it; false then true (two applies) makes a
  # new one, which reaches the functions as a new secret version (README, "Rotating secrets").
  auth_enabled            = var.redis_auth_enabled
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  # Keep the data across restarts (the ledger in BigQuery still allows an exact rebuild).
  persistence_config {
    persistence_mode    = "RDB"
    rdb_snapshot_period = "ONE_HOUR"
  }

  redis_configs = {
    "maxmemory-policy" = "noeviction"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 7
        minutes = 0
      }
    }
  }

  depends_on = [time_sleep.apis_ready]
}

# Memorystore for Redis (hot prepaid balances, postpaid running totals, dedup marks), private
# to the VPC; the functions reach it through a Serverless VPC Access connector. AUTH is on and
# the connection URL (with the AUTH string) is a Secret Manager secret, never a plain variable.

resource "google_compute_network" "warp" {
  name                    = "warp-billing"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.required]
}

resource "google_vpc_access_connector" "functions" {
  name          = "warp-functions"
  region        = var.region
  network       = google_compute_network.warp.name
  ip_cidr_range = var.vpc_connector_cidr
  min_instances = 2
  max_instances = 4
  machine_type  = "e2-micro"
}

resource "google_redis_instance" "balances" {
  name               = "warp-balances"
  region             = var.region
  tier               = var.redis_tier
  memory_size_gb     = var.redis_memory_size_gb
  redis_version      = "REDIS_7_0"
  authorized_network = google_compute_network.warp.id
  connect_mode       = "DIRECT_PEERING"
  auth_enabled       = true

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

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret" "redis_url" {
  secret_id = "warp-redis-url"
  replication {
    auto {}
  }
  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.redis_url.id
  secret_data = "redis://:${google_redis_instance.balances.auth_string}@${google_redis_instance.balances.host}:${google_redis_instance.balances.port}/0"
}

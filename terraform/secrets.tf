# Secret Manager: every credential a function reads. Functions read PINNED versions (never
# `latest`), so a new version reaches them only through an apply, as a new revision.
#
#   managed here   warp-redis-url  rediss://:AUTH@HOST:6378/0 from the Memorystore instance
#                  warp-redis-ca   the instance's server CA certificates (PEM), mounted as a file
#   external       warp-netsuite-private-key, warp-netsuite-client-id, warp-netsuite-certificate-id,
#                  warp-sendgrid-api-key (notify, rollup), warp-hubspot-token (crm_sync),
#                  warp-authorize-net-signature-key, warp-authorize-net-login-id,
#                  warp-authorize-net-transaction-key, warp-netsuite-webhook-secret,
#                  warp-recharge-task-key (the webhooks function and the recharge tasks): created with
#                  their values BEFORE the first apply, outside Terraform, so no private key is
#                  ever in the state; their version numbers are pinned in var.secret_versions.

locals {
  redis_url_secret = "warp-redis-url"
  redis_ca_secret  = "warp-redis-ca"

  managed_secret_values = {
    (local.redis_url_secret) = "rediss://:${google_redis_instance.balances.auth_string}@${google_redis_instance.balances.host}:${google_redis_instance.balances.port}/0"
    (local.redis_ca_secret)  = join("\n", [for ca in google_redis_instance.balances.server_ca_certs : ca.cert])
  }

  # Version of every secret a function reads: managed ones from the versions created here,
  # external ones from the environment's tfvars.
  secret_versions = merge(var.secret_versions, {
    (local.redis_url_secret) = google_secret_manager_secret_version.redis_url.version
    (local.redis_ca_secret)  = google_secret_manager_secret_version.redis_ca.version
  })
}

resource "google_secret_manager_secret" "managed" {
  for_each  = toset([local.redis_url_secret, local.redis_ca_secret])
  secret_id = each.value
  replication {
    auto {}
  }
  depends_on = [time_sleep.apis_ready]
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.managed[local.redis_url_secret].id
  secret_data = local.managed_secret_values[local.redis_url_secret]
}

resource "google_secret_manager_secret_version" "redis_ca" {
  secret      = google_secret_manager_secret.managed[local.redis_ca_secret].id
  secret_data = local.managed_secret_values[local.redis_ca_secret]
}

# dev: a test project; small and cheap, BASIC Redis (no replica), few instances.
# terraform -chdir=terraform init -backend-config=environments/dev.tfbackend
# terraform -chdir=terraform apply -var-file=environments/dev.tfvars
project     = "warp-billing-dev"
environment = "dev"
region      = "us-central1"
log_level   = "DEBUG"

redis_tier           = "BASIC"
redis_memory_size_gb = 1

vpc_connector_machine_type  = "e2-micro"
vpc_connector_min_instances = 2
vpc_connector_max_instances = 3

function_sizing = {
  rate_voice    = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 5 }
  rate_sms      = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 5 }
  rate_api      = { memory = "256Mi", cpu = "1", min_instances = 0, max_instances = 3 }
  balance_sweep = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 1 }
  rollup        = { memory = "1Gi", cpu = "1", min_instances = 0, max_instances = 2 }
  netsuite_sync = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 2 }
  reconcile     = { memory = "1Gi", cpu = "1", min_instances = 0, max_instances = 1 }
  notify        = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 2 }
  crm_sync      = { memory = "256Mi", cpu = "1", min_instances = 0, max_instances = 2 }
  webhooks      = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 3 }
}

# NetSuite sandbox account: shared tier.
netsuite_account_id            = "1234567_SB1"
netsuite_concurrency           = 2
netsuite_dispatches_per_second = 1

usage_rejects_retention_days = 30
max_delivery_attempts        = 5

# Versions of the external secrets (README, "Rotating secrets").
secret_versions = {
  "warp-netsuite-private-key"          = "1"
  "warp-netsuite-client-id"            = "1"
  "warp-netsuite-certificate-id"       = "1"
  "warp-sendgrid-api-key"              = "1"
  "warp-hubspot-token"                 = "1"
  "warp-authorize-net-signature-key"   = "1"
  "warp-authorize-net-login-id"        = "1"
  "warp-authorize-net-transaction-key" = "1"
  "warp-netsuite-webhook-secret"       = "1"
  "warp-recharge-task-key"             = "1"
}

# the Authorize.Net sandbox (its own credentials, in the secrets above)
authorize_net_url = "https://apitest.authorize.net/xml/v1/request.api"

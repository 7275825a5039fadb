# prod: STANDARD_HA Redis (replica + automatic failover), warm rating instances, full NetSuite concurrency.
# terraform -chdir=terraform init -backend-config=environments/prod.tfbackend
# terraform -chdir=terraform apply -var-file=environments/prod.tfvars
project     = "warp-billing-prod"
environment = "prod"
region      = "us-central1"
log_level   = "INFO"

redis_tier           = "STANDARD_HA"
redis_memory_size_gb = 5

vpc_connector_machine_type  = "e2-standard-4"
vpc_connector_min_instances = 2
vpc_connector_max_instances = 10

function_sizing = {
  rate_voice    = { memory = "512Mi", cpu = "1", min_instances = 2, max_instances = 100 }
  rate_sms      = { memory = "512Mi", cpu = "1", min_instances = 1, max_instances = 100 }
  rate_api      = { memory = "256Mi", cpu = "1", min_instances = 1, max_instances = 50 }
  balance_sweep = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 1 }
  rollup        = { memory = "1Gi", cpu = "1", min_instances = 0, max_instances = 5 }
  netsuite_sync = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 15 }
  reconcile     = { memory = "2Gi", cpu = "1", min_instances = 0, max_instances = 5 }
  notify        = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 10 }
  crm_sync      = { memory = "256Mi", cpu = "1", min_instances = 0, max_instances = 4 }
  webhooks      = { memory = "512Mi", cpu = "1", min_instances = 1, max_instances = 20 }
}

# NetSuite Tier 1 account (15 concurrent requests).
netsuite_account_id            = "1234567"
netsuite_concurrency           = 15
netsuite_dispatches_per_second = 10

usage_rejects_retention_days = 90
max_delivery_attempts        = 10

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

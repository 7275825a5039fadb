# Per-environment values live in environments/<env>.tfvars (dev, prod); `make deploy-check`
# fails on a tfvars key that is not a variable here (a typo would otherwise be ignored with a warning).

variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, prod): labels and the state prefix."
  type        = string
}

variable "region" {
  description = "Region of the functions, Memorystore, the queues and the scheduler jobs."
  type        = string
  default     = "us-central1"
}

variable "bigquery_location" {
  description = "Location of the BigQuery dataset."
  type        = string
  default     = "US"
}

variable "bigquery_dataset" {
  description = "Dataset holding rated_usage, usage_rejects, balance_ledger and the billing tables (WARP_BIGQUERY_DATASET)."
  type        = string
  default     = "warp_billing"
}

variable "firestore_location" {
  description = "Location of the Firestore database (plans, decks, invoice register)."
  type        = string
  default     = "nam5"
}

variable "log_level" {
  description = "WARP_LOG_LEVEL of every function."
  type        = string
  default     = "INFO"
}

variable "api_propagation_wait" {
  description = "Wait after enabling the APIs (service agents are created asynchronously)."
  type        = string
  default     = "90s"
}

variable "iam_propagation_wait" {
  description = "Wait after the grants before anything uses them (IAM is eventually consistent)."
  type        = string
  default     = "60s"
}

variable "function_sizing" {
  description = "Per function: memory, cpu, min and max instances (functions not listed use the catalog's memory/cpu, 0..10 instances)."
  type = map(object({
    memory        = string
    cpu           = string
    min_instances = number
    max_instances = number
  }))
  default = {}
}

variable "secret_versions" {
  description = "Pinned version numbers of the external secrets the declared functions read (secret id -> version)."
  type        = map(string)
  default     = {}
}

variable "max_delivery_attempts" {
  description = "Deliveries of a usage message before it goes to the topic's dead-letter topic."
  type        = number
  default     = 10
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts max_delivery_attempts from 5 to 100."
  }
}

variable "usage_message_retention" {
  description = "How long the usage topics and subscriptions keep messages (a replay window after an outage)."
  type        = string
  default     = "604800s"
}

variable "usage_rejects_retention_days" {
  description = "Days a usage_rejects partition is kept (raw payloads hold phone numbers)."
  type        = number
  default     = 90
  validation {
    condition     = var.usage_rejects_retention_days >= 1
    error_message = "usage_rejects_retention_days must be at least 1."
  }
}

variable "authorize_net_url" {
  description = "Authorize.Net request.api endpoint (the sandbox in dev, production in prod)."
  type        = string
  default     = "https://api.authorize.net/xml/v1/request.api"
}

variable "netsuite_account_id" {
  description = "NetSuite account id (not a secret: it is in every REST URL)."
  type        = string
  default     = ""
}

variable "netsuite_concurrency" {
  description = "NetSuite account-wide concurrency limit (shared tier 5, Tier 1 15, +10 per SuiteCloud Plus)."
  type        = number
  default     = 5
  validation {
    condition     = var.netsuite_concurrency >= 1 && var.netsuite_concurrency <= 1000
    error_message = "netsuite_concurrency must be between 1 and 1000."
  }
}

variable "netsuite_dispatches_per_second" {
  description = "Cap on new NetSuite calls per second (the concurrency limit is the real constraint)."
  type        = number
  default     = 5
}

variable "scheduler_time_zone" {
  description = "Time zone of the scheduler jobs' cron expressions."
  type        = string
  default     = "Etc/UTC"
}

variable "redis_tier" {
  description = "Memorystore tier: STANDARD_HA (replica + failover) for production, BASIC for test projects."
  type        = string
  default     = "STANDARD_HA"
  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_auth_enabled" {
  description = "Redis AUTH. Only ever false for the middle step of an AUTH string rotation (README)."
  type        = bool
  default     = true
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GB."
  type        = number
  default     = 5
}

variable "vpc_connector_cidr" {
  description = "Unused /28 range of the VPC for the Serverless VPC Access connector."
  type        = string
  default     = "10.8.0.0/28"
}

variable "vpc_connector_machine_type" {
  description = "Machine type of the VPC connector instances."
  type        = string
  default     = "e2-micro"
}

variable "vpc_connector_min_instances" {
  description = "Minimum VPC connector instances (at least 2)."
  type        = number
  default     = 2
}

variable "vpc_connector_max_instances" {
  description = "Maximum VPC connector instances."
  type        = number
  default     = 4
}

# -- collections (issue 12) -------------------------------------------------------------------

variable "hubspot_concurrency" {
  description = "HubSpot batch upserts in flight at once (the hubspot queue's max_concurrent_dispatches)."
  type        = number
  default     = 2
  validation {
    condition     = var.hubspot_concurrency >= 1 && var.hubspot_concurrency <= 100
    error_message = "hubspot_concurrency must be between 1 and 100."
  }
}

variable "hubspot_dispatches_per_second" {
  description = "HubSpot requests per second from the queue (HubSpot allows 100-190 per 10 s; 429s are retried)."
  type        = number
  default     = 8
}

variable "sendgrid_from_email" {
  description = "The sender of customer emails (a verified SendGrid sender)."
  type        = string
  default     = "billing@example.com"
}

variable "sendgrid_templates" {
  description = "SendGrid dynamic template id by email kind (remind, warn, suspend, collections, reinstated, low_balance, recharge_declined, payment_receipt, suspend_pending, suspended, vendor_dispute)."
  type        = map(string)
  default     = {}
}

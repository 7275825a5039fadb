variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the functions, Memorystore, the queue and the scheduler jobs."
  type        = string
  default     = "us-central1"
}

variable "bigquery_location" {
  description = "Location of the BigQuery dataset."
  type        = string
  default     = "US"
}

variable "bigquery_dataset" {
  description = "Dataset holding rated_usage, usage_rejects and balance_ledger (WARP_BIGQUERY_DATASET)."
  type        = string
  default     = "warp_billing"
}

variable "firestore_location" {
  description = "Location of the Firestore database (plans and decks)."
  type        = string
  default     = "nam5"
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
  description = "How long the usage topics keep messages (a replay window after an outage)."
  type        = string
  default     = "604800s"
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

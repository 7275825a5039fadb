# WARP Billing on Google Cloud: everything the serverless system needs, in one root module.
#
#   Pub/Sub        usage-voice, usage-messaging, usage-api (+ *-dead-letter), billing-alerts
#   Functions gen2 rate_voice, rate_sms, rate_api   <- Eventarc messagePublished, RETRY_POLICY_RETRY
#                  rollup, reconcile                 <- Cloud Scheduler (HTTP + OIDC)
#                  netsuite_sync                     <- Cloud Tasks queue "netsuite" (HTTP + OIDC)
#                  webhooks                          <- NetSuite / Authorize.Net (public HTTP, signed bodies)
#   Memorystore    Redis for hot balances and dedup marks, reached through a Serverless VPC connector
#   BigQuery       dataset + rated_usage, usage_rejects, balance_ledger (schemas shared with the adapter)
#   Firestore      plans and rate decks
#   IAM            one runtime service account for the functions, one for Scheduler/Tasks/Eventarc
#                  invocations, each with only the roles it needs
#
# Deploying:
#   1. python tools/function_bundles.py        # build/functions/<name>/: main.py + warp_billing beside it
#   2. terraform init && terraform apply -var project=PROJECT -var region=REGION
#
# Every bundle is uploaded as <name>/bundle-<md5>.zip, so any code change is a new object and
# a redeploy. The BigQuery table schemas are the JSON files the adapter itself loads
# (shared/warp_billing/adapters/bigquery_schemas/); tests/unit/test_terraform_config.py checks
# that partitioning and clustering here match the adapter.
#
# Dead-lettering of the usage topics: Eventarc creates the push subscription of each trigger
# and neither google_cloudfunctions2_function nor google_eventarc_trigger can configure its
# dead-letter policy (hashicorp/terraform-provider-google#25069, #17697), so
# pubsub.tf attaches it with gcloud after every deploy of the function (terraform_data).

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project
}

locals {
  # Usage functions: one per Pub/Sub topic, all on the same rating core.
  usage_functions = {
    rate_voice = { topic = "usage-voice", memory = "512Mi", max_instances = 100 }
    rate_sms   = { topic = "usage-messaging", memory = "512Mi", max_instances = 100 }
    rate_api   = { topic = "usage-api", memory = "256Mi", max_instances = 50 }
  }

  # HTTP functions: rollup and reconcile (Scheduler), netsuite_sync (Tasks), webhooks (public).
  http_functions = {
    rollup        = { memory = "1Gi", timeout = 540, max_instances = 5, ingress = "ALLOW_INTERNAL_ONLY" }
    reconcile     = { memory = "2Gi", timeout = 540, max_instances = 5, ingress = "ALLOW_INTERNAL_ONLY" }
    netsuite_sync = { memory = "512Mi", timeout = 300, max_instances = var.netsuite_concurrency, ingress = "ALLOW_INTERNAL_ONLY" }
    webhooks      = { memory = "256Mi", timeout = 60, max_instances = 20, ingress = "ALLOW_ALL" }
  }

  all_functions = merge(local.usage_functions, local.http_functions)

  # Settings read by warp_billing.settings (WARP_*); the Redis URL comes from Secret Manager.
  function_environment = {
    WARP_USAGE_STORE      = "bigquery"
    WARP_LEDGER_STORE     = "bigquery"
    WARP_PLAN_STORE       = "firestore"
    WARP_ALERT_SINK       = "pubsub"
    WARP_GCP_PROJECT      = var.project
    WARP_BIGQUERY_DATASET = google_bigquery_dataset.usage.dataset_id
    WARP_ALERT_TOPIC      = google_pubsub_topic.billing_alerts.name
    WARP_NETSUITE_QUEUE   = google_cloud_tasks_queue.netsuite.id
    WARP_LOG_LEVEL        = "INFO"
  }

  bigquery_schema_dir = "${path.module}/../shared/warp_billing/adapters/bigquery_schemas"

  required_apis = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "compute.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "pubsub.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "vpcaccess.googleapis.com",
  ]
}

resource "google_project_service" "required" {
  for_each           = toset(local.required_apis)
  service            = each.value
  disable_on_destroy = false
}

# WARP Billing on Google Cloud: everything the serverless system needs, in one root module that
# one `terraform apply` brings up on a fresh project (after the two prerequisites of the README's
# deployment guide: the state bucket and the external credentials' secret versions).
#
#   Pub/Sub        usage-voice, usage-messaging, usage-api (+ *-dead-letter), billing-alerts
#                  each usage topic -> one push subscription (OIDC, dead-letter policy, retry
#                  backoff) -> its rating function's run.app URL
#   Functions gen2 the map in functions.tf; `local.declared_functions` is the one list of what is
#                  deployed (`make deploy-check` fails, naming the function, when one has no source)
#   Memorystore    Redis with AUTH and TLS (server authentication), reached through a Serverless
#                  VPC connector; the rediss:// URL and the server CA come from Secret Manager
#   BigQuery       dataset + rated_usage, usage_rejects, balance_ledger (+ each function's own tables)
#   Firestore      plans and rate decks (and the invoice register / ERP outbox of the billing functions)
#   IAM            one service account per function with only what that function needs (iam.tf),
#                  one per invoking system (Pub/Sub push, Scheduler, Cloud Tasks) and one for builds
#
# Files: apis.tf (APIs + propagation waits), functions.tf (the function map and the functions),
# iam.tf, pubsub.tf, bigquery.tf, redis.tf, secrets.tf, scheduler.tf, tasks.tf, storage.tf,
# variables.tf, outputs.tf; environments/<env>.tfvars and environments/<env>.tfbackend.
#
# Deploying (README, "Deployment guide"):
#   make bundles                                   # build/functions/<name>/ for every function
#   terraform -chdir=terraform init -backend-config=environments/prod.tfbackend
#   terraform -chdir=terraform apply -var-file=environments/prod.tfvars
#
# Nothing here shells out: no gcloud is needed on the machine that runs apply.

terraform {
  required_version = ">= 1.5.0"

  # One state per environment: `terraform init -backend-config=environments/<env>.tfbackend`
  # names the bucket and prefix (the bucket is created once, before the first init).
  backend "gcs" {}

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.41: google_cloud_tasks_queue.http_target (the queue-level target of the netsuite queue).
      version = ">= 6.41, < 8.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.11"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project
  depends_on = [time_sleep.apis_ready]
}

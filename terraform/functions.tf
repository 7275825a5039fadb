# The functions: one map entry per function (`local.function_catalog`) holds everything about it:
# sizing, trigger, settings, and exactly what its own service account may touch (iam.tf turns the
# access lists into grants, scheduler.tf / tasks.tf / bigquery.tf / storage.tf / pubsub.tf read
# the jobs, queues, tables, buckets and topics it owns). `local.declared_functions` is the one list
# of what is deployed: a function whose source has not landed is dropped by removing its name, and
# everything it owns and every grant it holds goes with it.
#
# Sources: build/functions/<name>/ (main.py + requirements.txt + warp_billing/, `make bundles`),
# zipped and uploaded under a name that contains the zip's md5, so any code change is a new object
# and a new revision, and the same sources always give the same object (bundles have fixed mtimes).

locals {
  # THE list of deployed functions. Each name needs functions/<name>/main.py with its entry point
  # and an entry in function_catalog; `make deploy-check` (CI) fails, naming the function, otherwise.
  declared_functions = [
    "rate_voice", "rate_sms", "rate_api", "netsuite_sync", "balance_sweep", "notify", "crm_sync", "webhooks", "reconcile",
    "rollup",
  ]

  # Every entry has the same keys (deploy-check enforces it):
  #   trigger       "pubsub" (usage topic -> push subscription), "alerts" (a push subscription of its
  #                 own on billing-alerts, pubsub.tf) or "http" (Scheduler / Cloud Tasks)
  #   topic         the usage topic of a pubsub function (null for http)
  #   concurrency   requests per instance; THREADS is set to it (functions-framework's gunicorn threads)
  #   redis         true: VPC connector, WARP_REDIS_URL (rediss://, secret) and the server CA file
  #   env           settings (warp_billing.settings, WARP_*) besides the common ones
  #   secrets       env var -> Secret Manager secret id (managed here, or external: var.secret_versions)
  #   bq_append     tables it may only append to (custom role: bigquery.tables.updateData, no read)
  #   bq_read       tables it may read (roles/bigquery.dataViewer on the table)
  #   bq_write      tables it MERGEs into (custom role: get + getData + updateData, never delete)
  #   bq_jobs       runs query jobs (roles/bigquery.jobUser on the project)
  #   firestore     "none", "viewer" (roles/datastore.viewer) or "user" (roles/datastore.user)
  #   publish       topics (keys of local.topics) it publishes to
  #   enqueue       Cloud Tasks queues (keys of local.queues) it creates tasks on
  #   bucket_read / bucket_write   buckets (keys of local.buckets) it reads / writes objects in
  #   schedules     Cloud Scheduler jobs that POST to it (OIDC as warp-scheduler)
  #   queues        Cloud Tasks queues whose tasks it serves (OIDC as warp-tasks)
  #   tables / topics / buckets    what it owns: created only while it is declared
  function_catalog = {
    rate_voice = {
      description  = "Rates and charges voice calls from usage-voice."
      entry_point  = "rate_voice"
      trigger      = "pubsub"
      topic        = "usage-voice"
      ingress      = "ALLOW_INTERNAL_ONLY"
      memory       = "512Mi"
      cpu          = "1"
      timeout      = 60
      concurrency  = 8
      redis        = true
      env          = local.rating_env
      secrets      = { WARP_RECHARGE_TASK_KEY = "warp-recharge-task-key" }
      bq_append    = ["rated_usage", "usage_rejects", "balance_ledger"]
      bq_read      = ["rated_usage", "balance_ledger"]
      bq_write     = []
      bq_jobs      = true
      firestore    = "viewer"
      publish      = ["billing_alerts"]
      enqueue      = ["recharge"] # a card recharge at a prepaid low-balance crossing
      bucket_read  = []
      bucket_write = []
      schedules    = {}
      queues       = {}
      tables       = {}
      topics       = []
      buckets      = []
    }
    rate_sms = {
      description  = "Rates and charges SMS and MMS from usage-messaging."
      entry_point  = "rate_sms"
      trigger      = "pubsub"
      topic        = "usage-messaging"
      ingress      = "ALLOW_INTERNAL_ONLY"
      memory       = "512Mi"
      cpu          = "1"
      timeout      = 60
      concurrency  = 8
      redis        = true
      env          = local.rating_env
      secrets      = { WARP_RECHARGE_TASK_KEY = "warp-recharge-task-key" }
      bq_append    = ["rated_usage", "usage_rejects", "balance_ledger"]
      bq_read      = ["rated_usage", "balance_ledger"]
      bq_write     = []
      bq_jobs      = true
      firestore    = "viewer"
      publish      = ["billing_alerts"]
      enqueue      = ["recharge"] # a card recharge at a prepaid low-balance crossing
      bucket_read  = []
      bucket_write = []
      schedules    = {}
      queues       = {}
      tables       = {}
      topics       = []
      buckets      = []
    }
    rate_api = {
      description  = "Rates and charges API queries from usage-api."
      entry_point  = "rate_api"
      trigger      = "pubsub"
      topic        = "usage-api"
      ingress      = "ALLOW_INTERNAL_ONLY"
      memory       = "256Mi"
      cpu          = "1"
      timeout      = 60
      concurrency  = 8
      redis        = true
      env          = local.rating_env
      secrets      = { WARP_RECHARGE_TASK_KEY = "warp-recharge-task-key" }
      bq_append    = ["rated_usage", "usage_rejects", "balance_ledger"]
      bq_read      = ["rated_usage", "balance_ledger"]
      bq_write     = []
      bq_jobs      = true
      firestore    = "viewer"
      publish      = ["billing_alerts"]
      enqueue      = ["recharge"] # a card recharge at a prepaid low-balance crossing
      bucket_read  = []
      bucket_write = []
      schedules    = {}
      queues       = {}
      tables       = {}
      topics       = []
      buckets      = []
    }

    # The ledger sweep: drains the Redis outboxes into balance_ledger and reconciles stale customers.
    balance_sweep = {
      description = "Drains Redis ledger outboxes into balance_ledger; reconciles stale customers (Cloud Scheduler)."
      entry_point = "balance_sweep"
      trigger     = "http"
      topic       = null
      ingress     = "ALLOW_INTERNAL_ONLY"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 120
      concurrency = 1
      redis       = true
      env = {
        WARP_USAGE_STORE  = "bigquery"
        WARP_LEDGER_STORE = "bigquery"
        WARP_PLAN_STORE   = "firestore"
      }
      secrets      = {}
      bq_append    = ["balance_ledger"]
      bq_read      = ["balance_ledger", "rated_usage"]
      bq_write     = []
      bq_jobs      = true
      firestore    = "viewer"
      publish      = []
      enqueue      = []
      bucket_read  = []
      bucket_write = []
      schedules = {
        "balance-sweep" = {
          description = "Drain ledger outboxes and reconcile stale customers."
          schedule    = "* * * * *"
          body        = { task = "sweep" }
        }
      }
      queues  = {}
      tables  = {}
      topics  = []
      buckets = []
    }

    # Hourly rollups and the cycle close: invoices, documents (create-only), the ERP outbox in Firestore.
    rollup = {
      description = "Hourly usage rollups and the billing cycle close (Cloud Scheduler)."
      entry_point = "rollup"
      trigger     = "http"
      topic       = null
      ingress     = "ALLOW_INTERNAL_ONLY"
      memory      = "1Gi"
      cpu         = "1"
      timeout     = 540
      concurrency = 1
      redis       = true # the dunning task suspends and reinstates through the charging Redis (hold key)
      env = {
        WARP_RATED_SOURCE     = "bigquery"
        WARP_RUN_LOG_STORE    = "bigquery"
        WARP_REGISTER_STORE   = "firestore"
        WARP_PLAN_STORE       = "firestore"
        WARP_DOCUMENT_STORE   = "gcs"
        WARP_DOCUMENTS_BUCKET = local.bucket_names.documents
        WARP_INVOICE_SINK     = "pubsub"
        WARP_INVOICE_TOPIC    = "invoices"
        # After each close it enqueues the outbox it wrote (the Firestore register's, the settings
        # default) on the netsuite queue; netsuite_sync's scheduled sweep catches any it missed.
        WARP_NETSUITE_QUEUE        = local.netsuite_queue_env.WARP_NETSUITE_QUEUE
        WARP_NETSUITE_SYNC_URL     = local.netsuite_queue_env.WARP_NETSUITE_SYNC_URL
        WARP_TASKS_INVOKER_ACCOUNT = local.netsuite_queue_env.WARP_TASKS_INVOKER_ACCOUNT
        # Prepaid statements: the balance box from balance_ledger, the recharges and fees debited
        # from the balance (Redis + an append to the ledger), idempotent by statement line.
        WARP_CLOSE_PREPAID_STATEMENTS = "true"
        WARP_LEDGER_STORE             = "bigquery"
        # The daily dunning task (issue 12): the shared Firestore stores, SendGrid, HubSpot's queue.
        WARP_DUNNING_STORE       = "firestore"
        WARP_EMAIL_LOG           = "firestore"
        WARP_SENDGRID_FROM_EMAIL = var.sendgrid_from_email
        WARP_SENDGRID_TEMPLATES  = jsonencode(var.sendgrid_templates)
        WARP_HUBSPOT_QUEUE       = "projects/${var.project}/locations/${var.region}/queues/hubspot"
        WARP_HUBSPOT_TASK_URL    = "https://crm-sync-${local.run_app_suffix}"
      }
      secrets      = { WARP_SENDGRID_API_KEY = "warp-sendgrid-api-key" }
      bq_append    = ["cycle_runs", "balance_ledger"] # prepaid statement debits (append only)
      bq_read      = ["rated_usage", "balance_ledger"]
      bq_write     = ["usage_hourly"]
      bq_jobs      = true
      firestore    = "user"
      publish      = ["invoices"]
      enqueue      = ["netsuite", "hubspot"] # the outbox after each close; dunning steps update HubSpot
      bucket_read  = ["documents"]
      bucket_write = ["documents"]
      schedules = {
        "rollup-hourly" = {
          description = "Hourly running totals per customer from rated_usage."
          schedule    = "5 * * * *"
          body        = { task = "hourly_rollup" }
        }
        # Daily at 12:00 UTC: every customer time zone (UTC-12..UTC+14) has entered the new
        # day by then; the task closes every cycle that ended (monthly or otherwise).
        "cycle-close-daily" = {
          description = "Billing cycle close: invoices for every customer whose cycle ended."
          schedule    = "0 12 * * *"
          body        = { task = "cycle_close" }
        }
        # Daily dunning after the close: overdue invoices through their plan's collections ladder.
        "dunning-daily" = {
          description = "Dunning: reminders, warnings, suspension and collections for overdue invoices."
          schedule    = "0 14 * * *"
          body        = { task = "dunning" }
        }
        # Daily full HubSpot push: every customer's company and deals (plans, commitments), <= 100 per task.
        "crm-push-daily" = {
          description = "HubSpot: every customer's company and deals upserted in batches (hubspot queue)."
          schedule    = "30 14 * * *"
          body        = { task = "crm_push" }
        }
      }
      queues = {}
      tables = {
        usage_hourly = { partition_field = "hour", clustering = ["customer_id"] }
        cycle_runs   = { partition_field = "run_date", clustering = ["customer_id"] }
      }
      topics  = ["invoices"]
      buckets = ["documents"]
    }

    # NetSuite sync: serves the netsuite queue (one invoice per task), and a scheduled sweep of the outbox.
    netsuite_sync = {
      description = "Pushes invoices and journals to NetSuite (Cloud Tasks queue netsuite, outbox sweep)."
      entry_point = "netsuite_sync"
      trigger     = "http"
      topic       = null
      ingress     = "ALLOW_INTERNAL_ONLY"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 300
      concurrency = 1
      redis       = false
      env = {
        WARP_NETSUITE_QUEUE        = local.netsuite_queue_env.WARP_NETSUITE_QUEUE
        WARP_NETSUITE_SYNC_URL     = local.netsuite_queue_env.WARP_NETSUITE_SYNC_URL
        WARP_TASKS_INVOKER_ACCOUNT = local.netsuite_queue_env.WARP_TASKS_INVOKER_ACCOUNT
        WARP_NETSUITE_ACCOUNT      = var.netsuite_account_id
        # The sync drains the outbox the cycle close writes in the same transaction as each
        # document: the register's own outbox (the settings default), here the Firestore
        # register's erp_outbox. sync_errors on Firestore too.
        WARP_REGISTER_STORE = "firestore"
        WARP_SYNC_ERRORS    = "firestore"
      }
      secrets = {
        WARP_NETSUITE_PRIVATE_KEY    = "warp-netsuite-private-key"
        WARP_NETSUITE_CLIENT_ID      = "warp-netsuite-client-id"
        WARP_NETSUITE_CERTIFICATE_ID = "warp-netsuite-certificate-id"
      }
      bq_append    = []
      bq_read      = []
      bq_write     = []
      bq_jobs      = false
      firestore    = "user"
      publish      = []
      enqueue      = ["netsuite"]
      bucket_read  = []
      bucket_write = []
      schedules = {
        "netsuite-sweep" = {
          description = "Re-enqueue outbox entries that have no live task (lost enqueues, expired retries)."
          schedule    = "*/15 * * * *"
          body        = { task = "sweep" }
        }
      }
      queues = {
        netsuite = {
          max_concurrent_dispatches = var.netsuite_concurrency
          max_dispatches_per_second = var.netsuite_dispatches_per_second
        }
      }
      tables  = {}
      topics  = []
      buckets = []
    }

    # Customer emails from billing-alerts (issue 12): low balance, prepaid suspension pending and
    # suspended, recharge declined, payment receipts (the paid invoices' PDFs attached, read from the
    # documents bucket); on payment_received the reinstatement of a customer suspended for non-payment,
    # and HubSpot. It also consumes the invoices topic (pubsub.tf): each issued document updates the
    # customer's HubSpot company (last invoice, balance due) through the hubspot queue. A
    # vendor_dispute_opened alert (reconcile) emails the dispute package, read from the vendor CDR bucket.
    notify = {
      description = "Customer emails, receipts and reinstatement from billing-alerts (SendGrid, HubSpot queue)."
      entry_point = "notify"
      trigger     = "alerts"
      topic       = null
      ingress     = "ALLOW_INTERNAL_ONLY"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 60
      concurrency = 4
      redis       = true # lifts the hold on reinstatement
      env = {
        WARP_PLAN_STORE            = "firestore"
        WARP_REGISTER_STORE        = "firestore"
        WARP_DUNNING_STORE         = "firestore"
        WARP_EMAIL_LOG             = "firestore"
        WARP_SENDGRID_FROM_EMAIL   = var.sendgrid_from_email
        WARP_SENDGRID_TEMPLATES    = jsonencode(var.sendgrid_templates)
        WARP_HUBSPOT_QUEUE         = "projects/${var.project}/locations/${var.region}/queues/hubspot"
        WARP_HUBSPOT_TASK_URL      = "https://crm-sync-${local.run_app_suffix}"
        WARP_TASKS_INVOKER_ACCOUNT = google_service_account.tasks.email
        WARP_DOCUMENT_STORE        = "gcs" # invoice PDFs to attach (read only)
        WARP_DOCUMENTS_BUCKET      = local.bucket_names.documents
        WARP_VENDOR_CDR_BUCKET     = local.bucket_names.vendor_cdrs # vendor dispute packages to attach (read only)
      }
      secrets      = { WARP_SENDGRID_API_KEY = "warp-sendgrid-api-key" }
      bq_append    = []
      bq_read      = []
      bq_write     = []
      bq_jobs      = false
      firestore    = "user" # plans (read), register (read), dunning store and email log (write)
      publish      = []
      enqueue      = ["hubspot"]
      bucket_read  = ["documents", "vendor_cdrs"] # invoice PDFs; dispute packages (reconcile's outputs)
      bucket_write = []
      schedules    = {}
      queues       = {}
      tables       = {}
      topics       = []
      buckets      = []
    }

    # HubSpot sync (issue 12): serves the rate-limited hubspot queue, one batch upsert (<= 100) per task.
    crm_sync = {
      description  = "Upserts HubSpot companies and deals in batches (Cloud Tasks queue hubspot)."
      entry_point  = "crm_sync"
      trigger      = "http"
      topic        = null
      ingress      = "ALLOW_INTERNAL_ONLY"
      memory       = "256Mi"
      cpu          = "1"
      timeout      = 60
      concurrency  = 4
      redis        = false
      env          = {}
      secrets      = { WARP_HUBSPOT_TOKEN = "warp-hubspot-token" }
      bq_append    = []
      bq_read      = []
      bq_write     = []
      bq_jobs      = false
      firestore    = "none"
      publish      = []
      enqueue      = []
      bucket_read  = []
      bucket_write = []
      schedules    = {}
      queues = {
        hubspot = {
          max_concurrent_dispatches = var.hubspot_concurrency
          max_dispatches_per_second = var.hubspot_dispatches_per_second
        }
      }
      tables  = {}
      topics  = []
      buckets = []
    }

    # Inbound webhooks: Authorize.Net payment notifications and NetSuite events (public ingress: the
    # gateways call it; every request is authenticated by its signature, recharge tasks by their
    # HMAC), payments applied to balances (ledger + Redis) and invoices, the recharge queue's target.
    webhooks = {
      description = "Authorize.Net and NetSuite webhooks: payments applied, card recharges (public, signed requests)."
      entry_point = "webhooks"
      trigger     = "http"
      topic       = null
      ingress     = "ALLOW_ALL"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 60
      concurrency = 8
      redis       = true
      env = {
        WARP_RECHARGE_QUEUE        = "projects/${var.project}/locations/${var.region}/queues/recharge"
        WARP_RECHARGE_TASK_URL     = "https://webhooks-${local.run_app_suffix}/tasks/recharge"
        WARP_TASKS_INVOKER_ACCOUNT = google_service_account.tasks.email
        WARP_USAGE_STORE           = "bigquery"
        WARP_LEDGER_STORE          = "bigquery"
        WARP_PLAN_STORE            = "firestore"
        WARP_REGISTER_STORE        = "firestore"
        WARP_SYNC_OUTBOX           = "register" # customer payments join the outbox netsuite_sync drains
        WARP_PAYMENT_STORE         = "firestore"
        WARP_WEBHOOK_RECEIPTS      = "firestore"
        WARP_ALERT_SINK            = "pubsub"
        WARP_ALERT_TOPIC           = "billing-alerts"
        WARP_AUTHORIZE_NET_URL     = var.authorize_net_url
        WARP_RECHARGE_TRIGGER      = "false" # it serves the recharge tasks; the rating functions request them
      }
      secrets = {
        WARP_RECHARGE_TASK_KEY             = "warp-recharge-task-key"
        WARP_AUTHORIZE_NET_SIGNATURE_KEY   = "warp-authorize-net-signature-key"
        WARP_AUTHORIZE_NET_LOGIN_ID        = "warp-authorize-net-login-id"
        WARP_AUTHORIZE_NET_TRANSACTION_KEY = "warp-authorize-net-transaction-key"
        WARP_NETSUITE_WEBHOOK_SECRET       = "warp-netsuite-webhook-secret"
      }
      bq_append    = ["balance_ledger"]
      bq_read      = ["balance_ledger", "rated_usage"] # the reconcile of a stale prepaid customer
      bq_write     = []
      bq_jobs      = true
      firestore    = "user" # payments, receipts, register outbox, a plan version on a NetSuite terms change
      publish      = ["billing_alerts"]
      enqueue      = ["recharge"] # the retry of a declined recharge
      bucket_read  = []
      bucket_write = []
      schedules    = {}
      queues = {
        recharge = {
          max_concurrent_dispatches = 5
          max_dispatches_per_second = 5
        }
      }
      tables  = {}
      topics  = []
      buckets = []
    }

    # Daily vendor CDR reconciliation against rated usage. Its tables are re-written per run id
    # (DELETE + INSERT, MERGE of disputes), so it holds the merge role on them, never on the ledger.
    reconcile = {
      description = "Vendor CDR reconciliation against rated usage (daily Scheduler job; new objects under vendor-cdrs/, vendor_cdrs.tf)."
      entry_point = "reconcile"
      trigger     = "http"
      topic       = null
      ingress     = "ALLOW_INTERNAL_ONLY"
      memory      = "2Gi"
      cpu         = "1"
      timeout     = 540
      concurrency = 1
      redis       = false
      env = {
        WARP_RECON_SOURCE      = "storage"
        WARP_USAGE_STORE       = "bigquery"
        WARP_ALERT_SINK        = "pubsub"
        WARP_ALERT_TOPIC       = "billing-alerts"
        WARP_VENDOR_CDR_BUCKET = local.bucket_names.vendor_cdrs
      }
      secrets      = {}
      bq_append    = []
      bq_read      = ["rated_usage"]
      bq_write     = ["vendor_cdrs", "recon_runs", "recon_items", "disputes"]
      bq_jobs      = true
      firestore    = "none"
      publish      = ["billing_alerts"]
      enqueue      = []
      bucket_read  = ["vendor_cdrs"]
      bucket_write = ["vendor_cdrs"] # outputs go to recon/<vendor>/<period>/ in the same bucket
      schedules = {
        "reconcile-daily" = {
          description = "Daily vendor CDR reconciliation against rated usage (every vendor, yesterday's month)."
          schedule    = "0 6 * * *"
          body        = {}
        }
      }
      queues = {}
      tables = {
        vendor_cdrs = { partition_field = "event_date", clustering = ["vendor_id"] }
        recon_runs  = { partition_field = "period_start", clustering = ["vendor_id"] }
        recon_items = { partition_field = "period_start", clustering = ["vendor_id", "class"] }
        disputes    = { partition_field = "period_start", clustering = ["vendor_id"] }
      }
      topics  = []
      buckets = ["vendor_cdrs"]
    }
  }

  functions = { for name, spec in local.function_catalog : name => spec if contains(local.declared_functions, name) }

  # Where a function that enqueues on the netsuite queue sends its tasks (rollup, netsuite_sync).
  netsuite_queue_env = {
    WARP_NETSUITE_QUEUE        = "projects/${var.project}/locations/${var.region}/queues/netsuite"
    WARP_NETSUITE_SYNC_URL     = "https://netsuite-sync-${local.run_app_suffix}"
    WARP_TASKS_INVOKER_ACCOUNT = google_service_account.tasks.email
  }

  # Settings of the rating functions (warp_billing.settings); the Redis URL comes from Secret Manager.
  # A low-balance crossing of a plan with a stored card requests a card recharge (issue 12): the
  # queue, the URL its tasks call (the webhooks function) and, as a secret, the key that signs each
  # task body (the webhooks function is public: only our tasks may charge a card).
  rating_env = {
    WARP_USAGE_STORE           = "bigquery"
    WARP_LEDGER_STORE          = "bigquery"
    WARP_PLAN_STORE            = "firestore"
    WARP_ALERT_SINK            = "pubsub"
    WARP_ALERT_TOPIC           = "billing-alerts"
    WARP_RECHARGE_TRIGGER      = "true"
    WARP_RECHARGE_QUEUE        = "projects/${var.project}/locations/${var.region}/queues/recharge"
    WARP_RECHARGE_TASK_URL     = "https://webhooks-${local.run_app_suffix}/tasks/recharge"
    WARP_TASKS_INVOKER_ACCOUNT = google_service_account.tasks.email
  }

  # Settings every function gets.
  common_env = {
    WARP_GCP_PROJECT      = var.project
    WARP_BIGQUERY_DATASET = var.bigquery_dataset
    WARP_LOG_LEVEL        = var.log_level
  }

  # The server CA is a file (a secret volume), the URL a secret env var (redis.tf, secrets.tf).
  redis_ca_dir  = "/etc/warp-redis-ca"
  redis_ca_file = "server-ca.pem"
  redis_env = {
    WARP_REDIS_CA_CERT = "${local.redis_ca_dir}/${local.redis_ca_file}"
    # Memorystore's CA is unique to the instance, so a certificate it signed is this instance's;
    # the instance is reached by a private IP that its certificate is not guaranteed to name.
    WARP_REDIS_TLS_CHECK_HOSTNAME = "false"
  }

  # Cloud Run's deterministic run.app URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app): known
  # before the function exists, so one function's settings can name another without a cycle, and
  # a run.app URL is what internal ingress accepts from Cloud Tasks and Scheduler.
  run_app_suffix = "${data.google_project.this.number}.${var.region}.run.app"
  function_urls  = { for name in keys(local.functions) : name => "https://${replace(name, "_", "-")}-${local.run_app_suffix}" }

  sizing = {
    for name, spec in local.functions : name => (
      contains(keys(var.function_sizing), name) ? var.function_sizing[name] :
      { memory = spec.memory, cpu = spec.cpu, min_instances = 0, max_instances = 10 }
    )
  }
}

resource "google_storage_bucket" "function_sources" {
  name                        = "${var.project}-warp-function-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Old bundles stay long enough to roll back to (README, "Rolling back").
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_artifact_registry_repository" "functions" {
  repository_id = "warp-functions"
  location      = var.region
  format        = "DOCKER"
  description   = "Images built from the function bundles (Cloud Functions gen2 builds)."
  depends_on    = [time_sleep.apis_ready]
}

data "archive_file" "function_bundle" {
  for_each    = local.functions
  type        = "zip"
  source_dir  = "${path.module}/../build/functions/${each.key}"
  output_path = "${path.module}/../build/bundles/${each.key}.zip"
  excludes    = ["**/__pycache__/**", "**/*.pyc"]
}

resource "google_storage_bucket_object" "function_bundle" {
  for_each = local.functions
  name     = "${each.key}/bundle-${data.archive_file.function_bundle[each.key].output_md5}.zip"
  bucket   = google_storage_bucket.function_sources.name
  source   = data.archive_file.function_bundle[each.key].output_path
}

resource "google_cloudfunctions2_function" "fn" {
  for_each    = local.functions
  name        = replace(each.key, "_", "-")
  location    = var.region
  description = each.value.description

  build_config {
    runtime           = "python311"
    entry_point       = each.value.entry_point
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.function_sources.name
        object = google_storage_bucket_object.function_bundle[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = local.sizing[each.key].memory
    available_cpu                    = local.sizing[each.key].cpu
    min_instance_count               = local.sizing[each.key].min_instances
    max_instance_count               = local.sizing[each.key].max_instances
    max_instance_request_concurrency = each.value.concurrency
    timeout_seconds                  = each.value.timeout
    ingress_settings                 = each.value.ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.fn[each.key].email
    vpc_connector                    = each.value.redis ? google_vpc_access_connector.functions.id : null
    vpc_connector_egress_settings    = each.value.redis ? "PRIVATE_RANGES_ONLY" : null

    # functions-framework serves one request per gunicorn thread: THREADS = the concurrency.
    environment_variables = merge(
      local.common_env,
      each.value.redis ? local.redis_env : {},
      each.value.env,
      { THREADS = tostring(each.value.concurrency) },
    )

    # Pinned versions, never `latest`: a new secret version reaches a function only through an
    # apply (a new revision), and the function waits for the version it reads.
    dynamic "secret_environment_variables" {
      for_each = merge(each.value.secrets, each.value.redis ? { WARP_REDIS_URL = local.redis_url_secret } : {})
      content {
        key        = secret_environment_variables.key
        project_id = var.project
        secret     = secret_environment_variables.value
        version    = local.secret_versions[secret_environment_variables.value]
      }
    }

    dynamic "secret_volumes" {
      for_each = each.value.redis ? [local.redis_ca_secret] : []
      content {
        mount_path = local.redis_ca_dir
        project_id = var.project
        secret     = secret_volumes.value
        versions {
          version = local.secret_versions[secret_volumes.value]
          path    = local.redis_ca_file
        }
      }
    }
  }

  depends_on = [
    time_sleep.iam_ready,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
  ]
}

"""Settings: the one place WARP Billing reads its configuration (environment, prefix ``WARP_``).

Every deployment difference is a setting here: which adapter backs each port (embedded files
and SQLite on one machine, BigQuery / Firestore / Pub/Sub / Memorystore in the cloud), the
endpoints of the local stand-ins, and the real-time charging limits. Nothing else in the code
base reads ``os.environ``; the composition root (``bootstrap.py``) turns a ``Settings`` into
the object graph.

Durations are integer seconds or milliseconds (names say which). Money never appears here.

Environment variables (all optional; defaults give the embedded, no-cloud configuration):

    WARP_REDIS_URL                 redis://127.0.0.1:6390/0
    WARP_REDIS_CLUSTER             false   (true: Memorystore cluster / Redis Cluster client)
    WARP_REDIS_TIMEOUT_MS          2000    (socket connect and read timeout)
    WARP_REDIS_CA_CERT             unset   (path of a PEM file with the CA that signs the server's
                                            certificate, e.g. the Memorystore server CA; needs a
                                            rediss:// URL, and the certificate is then verified)
    WARP_REDIS_TLS_CHECK_HOSTNAME  true    (false: trust the CA alone, for a server reached by an IP
                                            address that its certificate does not name)
    WARP_USAGE_STORE               sqlite | bigquery                   (rated usage and rejects)
    WARP_LEDGER_STORE              sqlite | bigquery | firestore       (persisted ledger)
    WARP_PLAN_STORE                files | firestore                   (plans and decks)
    WARP_ALERT_SINK                log | pubsub                        (billing alerts)
    WARP_TAX_ENGINE                offline | avalara                   (invoice taxes; `warp invoice --tax-engine`)
    WARP_DATA_DIR                  .warp-data   (SQLite files of the embedded stores)
    WARP_PLANS_DIR                 plans        (plan YAMLs + decks for WARP_PLAN_STORE=files)
    WARP_GCP_PROJECT               warp-local
    WARP_BIGQUERY_ENDPOINT         unset = the real API; http://127.0.0.1:9052 = local emulator
    WARP_BIGQUERY_PROJECT          defaults to WARP_GCP_PROJECT
    WARP_BIGQUERY_DATASET          warp_billing
    WARP_FIRESTORE_EMULATOR_HOST   unset = the real API; 127.0.0.1:8086 = local emulator
    WARP_FIRESTORE_PROJECT         defaults to WARP_GCP_PROJECT
    WARP_FIRESTORE_DATABASE        (default)
    WARP_PUBSUB_PROJECT            defaults to WARP_GCP_PROJECT
    WARP_PUBSUB_ENDPOINT           unset = the real API; host:port = a plaintext Publisher gRPC server
    WARP_ALERT_TOPIC               billing-alerts
    WARP_MAX_EVENT_AGE_S           259200  (3 days: older events are rejected EVENT_TOO_OLD)
    WARP_DEDUP_TTL_S               259200  (how long a charge result is kept for redeliveries;
                                            must be >= WARP_MAX_EVENT_AGE_S and should be >= the
                                            subscription's message retention)
    WARP_PLAN_REFRESH_S            30      (a warm instance checks the plan version pointer at
                                            most this often)
    WARP_LEDGER_STREAM_MAXLEN      10000   (recent ledger entries kept per customer in Redis)
    WARP_POSTPAID_CYCLE_TTL_S      8640000 (100 days: running totals kept per billing cycle)
    WARP_MAX_FUTURE_SKEW_S         300     (events starting further ahead are rejected EVENT_IN_FUTURE)
    WARP_RECONCILE_ON_STALE        true    (a charge that finds its customer's Redis state stale or
                                            missing reconciles that customer from the ledger first)
    WARP_RECONCILE_LEASE_S         120     (how long a reconcile may fence a customer at most)
    WARP_LOG_LEVEL                 INFO

NetSuite sync (issue 11; the secrets come from Secret Manager in the cloud, as env vars):

    WARP_NETSUITE_ACCOUNT          NetSuite account id (e.g. 123456_SB1)
    WARP_NETSUITE_BASE_URL         unset = https://<account>.suitetalk.api.netsuite.com; the stand-in's URL locally
    WARP_NETSUITE_CLIENT_ID        secret: the integration record's client id
    WARP_NETSUITE_CERTIFICATE_ID   secret: the M2M certificate id (the JWT's kid)
    WARP_NETSUITE_PRIVATE_KEY      secret: the certificate's private key (PEM)
    WARP_NETSUITE_PRIVATE_KEY_FILE or a file holding it (the local stack writes a test key)
    WARP_NETSUITE_MAPPING          netsuite-mapping.yaml (SKU/fee/account/currency ids, versioned)
    WARP_NETSUITE_TIMEOUT_MS       30000   (per NetSuite call; a timeout looks the record up first)
    WARP_NETSUITE_TOKEN_MARGIN_S   300     (refresh a token this long before it expires)
    WARP_SYNC_OUTBOX               register | sqlite  (the ERP outbox the sync drains. register, the default:
                                   the one the cycle close writes in the transaction that issues each
                                   document, so WARP_REGISTER_STORE alone decides where it is:
                                   REGISTER_DIR/outbox.sqlite beside the file register, the erp_outbox
                                   collection of the Firestore register. sqlite: a standalone outbox
                                   file in WARP_DATA_DIR that no close writes (tests, benchmarks))
    WARP_SYNC_ERRORS               sqlite | firestore  (the sync_errors records)
    WARP_TASKS_ENDPOINT            unset = the real Cloud Tasks API; host:port = the local emulator
    WARP_NETSUITE_QUEUE            projects/warp-local/locations/us-central1/queues/netsuite
    WARP_NETSUITE_SYNC_URL         the netsuite_sync function's URL (the tasks' target)
    WARP_TASKS_INVOKER_ACCOUNT     service account whose OIDC token the tasks carry (unset: none)

Tax engine (``WARP_TAX_ENGINE``): ``offline`` applies USF from the dated contribution-factor table
(``WARP_USF_TABLE`` replaces the embedded one); ``avalara`` calls Avalara Communications (AFC):

    WARP_USF_TABLE                 unset = the embedded table; a CSV year,quarter,factor_pct
    WARP_AVALARA_BASE_URL          https://communicationsua.avalara.net (the AFC sandbox)
    WARP_AVALARA_USERNAME          (required for avalara)
    WARP_AVALARA_PASSWORD          (required for avalara; a secret, never logged)
    WARP_AVALARA_CLIENT_ID         optional AFC header
    WARP_AVALARA_CLIENT_PROFILE_ID optional AFC header
    WARP_AVALARA_TIMEOUT_S         30
    WARP_AVALARA_COMMIT            false   (true: AFC records the transactions for compliance reports)
    WARP_AVALARA_BILL_TO           a YAML/JSON file: customer_id -> {country, state, zip, npa?}
                                   (customer billing locations: data, not credentials)

  Vendor reconciliation (functions/reconcile; issue 13):
    WARP_RECON_SOURCE              files | storage   (where vendor-cdrs/<vendor>/<period>/... arrive:
                                            a folder, or the bucket WARP_VENDOR_CDR_BUCKET through
                                            WARP_STORAGE_ENDPOINT or the real API)
    WARP_RECON_REPORTS_PREFIX      recon   (storage: outputs under <prefix>/<vendor>/<period>/<delivery>/
                                            in the vendor CDR bucket, each object created once)
    WARP_VENDOR_CDR_DIR            .warp-data/vendor-files   (the folder laid out like the bucket, for files)
    WARP_RECON_OUTPUT_DIR          .warp-data/recon     (outputs for files, replaced per run)
    WARP_RECON_OPERATOR_EMAIL      unset   (where notify emails a dispute package when the mapping says
                                            send_to: operator; unset: the alert says unaddressed, no email)
    WARP_RECON_MEMORY_LIMIT        1GB     (DuckDB's limit while normalising a vendor's files)

Cycle close (`warp close`, the rollup function; issue 10):

    WARP_RATED_SOURCE              files | bigquery      (rated usage the close reads)
    WARP_RATED_FILE                .warp-data/rated.jsonl (rated JSONL for WARP_RATED_SOURCE=files)
    WARP_REGISTER_STORE            files | firestore     (invoice register + ERP outbox)
    WARP_REGISTER_DIR              .warp-data/register   (for WARP_REGISTER_STORE=files)
    WARP_DOCUMENT_STORE            files | gcs           (rendered JSON, HTML, journals)
    WARP_DOCUMENTS_DIR             .warp-data/documents  (for WARP_DOCUMENT_STORE=files)
    WARP_STORAGE_ENDPOINT          unset = the real API; http://127.0.0.1:9023 = local stand-in
    WARP_DOCUMENTS_BUCKET          warp-local-documents  (for WARP_DOCUMENT_STORE=gcs)
    WARP_DOCUMENTS_PREFIX          ""      (object name prefix inside the bucket)
    WARP_VENDOR_CDR_BUCKET         warp-local-vendor-cdrs (vendor CDR files; the reconciliation reads it)
    WARP_RUN_LOG_STORE             files | bigquery      (cycle_runs rows)
    WARP_INVOICE_SINK              log | pubsub          (issued documents announced)
    WARP_INVOICE_TOPIC             invoices
    WARP_CLOSE_WATERMARK_LAG_S     600     (usage written in the last 10 minutes before a close waits
                                            for the next cycle; covers streaming delay and clock skew)
    WARP_LATE_USAGE_LOOKBACK_DAYS  92      (late usage older than this is not looked for)
    WARP_CLOSE_PDF                 true    (each issued document's PDF beside its HTML, as `warp invoice`
                                            writes it; needs WeasyPrint and the Pango libraries: without
                                            them each close fails with PdfUnavailable, false skips PDFs)
    WARP_CLOSE_QUERY_TIMEOUT_S     600     (how long the close waits for one BigQuery query: the month's
                                            aggregation; the real-time stores keep their 60 s)
    WARP_FIRESTORE_COLLECTION_PREFIX  ""   (prefix of the register's collections: tests, tenants)

Customer disputes (`warp dispute`; the credit note of an accepted one goes through the register above):

    WARP_DISPUTE_STORE             files | firestore     (files: one JSON file per dispute; firestore: the
                                   customer_disputes collection, behind WARP_FIRESTORE_COLLECTION_PREFIX)
    WARP_DISPUTES_DIR              unset = a 'disputes' folder beside WARP_REGISTER_DIR (for files)

Collections (issue 12: dunning, customer emails, HubSpot; keys and tokens are secrets):

    WARP_DUNNING_STORE             sqlite | firestore  (steps run per (invoice, action), suspensions;
                                   sqlite: <data dir>/dunning.sqlite; firestore: dunning_* collections)
    WARP_EMAIL_LOG                 sqlite | firestore  (emails sent per (document, step); email_log)
    WARP_ACCOUNT_HOLDS             redis   (the hold key both charging scripts check)
    WARP_SENDGRID_URL              https://api.sendgrid.com (the stand-in's URL locally)
    WARP_SENDGRID_API_KEY          secret: the SendGrid API key
    WARP_SENDGRID_SANDBOX          false   (true: mail_settings.sandbox_mode, SendGrid sends nothing)
    WARP_SENDGRID_FROM_EMAIL, WARP_SENDGRID_FROM_NAME   the sender
    WARP_SENDGRID_TEMPLATES        JSON {kind: template id}, kinds remind, warn, suspend, collections,
                                   reinstated, low_balance, recharge_declined, payment_receipt,
                                   suspend_pending, suspended, vendor_dispute (a vendor dispute package)
    WARP_HUBSPOT_URL               https://api.hubapi.com (the stand-in's URL locally)
    WARP_HUBSPOT_TOKEN             secret: the private app token
    WARP_HUBSPOT_SYNC              true    (false: no HubSpot tasks are enqueued)
    WARP_HUBSPOT_BATCH_SIZE        100     (inputs per batch upsert, 1..100)
    WARP_HUBSPOT_QUEUE             the hubspot Cloud Tasks queue (rate-limited in Terraform)
    WARP_HUBSPOT_TASK_URL          the crm_sync function's URL (the queue's target)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY_S = 86_400


class Settings(BaseSettings):
    """WARP Billing configuration, read from ``WARP_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="WARP_", extra="ignore", frozen=True)

    # Memorystore / Redis: hot prepaid balances, postpaid running totals, dedup marks.
    redis_url: str = "redis://127.0.0.1:6390/0"
    redis_cluster: bool = False
    redis_timeout_ms: int = Field(2000, ge=1)
    redis_ca_cert: Path | None = None
    redis_tls_check_hostname: bool = True

    # Which adapter backs each port.
    # Only values bootstrap.py can build are offered (a test checks each one builds).
    usage_store: Literal["sqlite", "bigquery"] = "sqlite"
    ledger_store: Literal["sqlite", "bigquery", "firestore"] = "sqlite"
    plan_store: Literal["files", "firestore"] = "files"
    alert_sink: Literal["log", "pubsub"] = "log"
    tax_engine: Literal["offline", "avalara"] = "offline"

    # Embedded defaults (one machine, no cloud account).
    data_dir: Path = Path(".warp-data")
    plans_dir: Path = Path("plans")

    # Google Cloud (or the local stand-ins: set the endpoints / emulator hosts).
    gcp_project: str = "warp-local"
    bigquery_endpoint: str | None = None
    bigquery_project: str | None = None
    bigquery_dataset: str = "warp_billing"
    firestore_emulator_host: str | None = None
    firestore_project: str | None = None
    firestore_database: str = "(default)"
    pubsub_project: str | None = None
    pubsub_endpoint: str | None = None
    alert_topic: str = "billing-alerts"

    # Real-time charging.
    max_event_age_s: int = Field(3 * DAY_S, ge=60)
    dedup_ttl_s: int = Field(3 * DAY_S, ge=60)
    plan_refresh_s: int = Field(30, ge=0)
    ledger_stream_maxlen: int = Field(10_000, ge=100)
    postpaid_cycle_ttl_s: int = Field(100 * DAY_S, ge=DAY_S)

    # Redis as a fenced copy of the ledger (issue 8).
    max_future_skew_s: int = Field(300, ge=0)
    reconcile_on_stale: bool = True
    reconcile_lease_s: int = Field(120, ge=5)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # NetSuite sync (issue 11).
    netsuite_account: str = ""
    netsuite_base_url: str | None = None
    netsuite_client_id: str | None = None
    netsuite_certificate_id: str | None = None
    netsuite_private_key: SecretStr | None = None
    netsuite_private_key_file: Path | None = None
    netsuite_mapping: Path = Path("netsuite-mapping.yaml")
    netsuite_timeout_ms: int = Field(30_000, ge=1)
    netsuite_token_margin_s: int = Field(300, ge=0, le=3000)
    sync_outbox: Literal["register", "sqlite"] = "register"  # the close's own outbox (see the docstring)
    sync_errors: Literal["sqlite", "firestore"] = "sqlite"
    tasks_endpoint: str | None = None
    netsuite_queue: str = "projects/warp-local/locations/us-central1/queues/netsuite"
    netsuite_sync_url: str = "http://127.0.0.1:8091/"
    tasks_invoker_account: str | None = None

    # Taxes on invoices (see the module docstring).
    usf_table: Path | None = None
    avalara_base_url: str = "https://communicationsua.avalara.net"
    avalara_username: str = ""
    avalara_password: SecretStr = SecretStr("")
    avalara_client_id: str | None = None
    avalara_client_profile_id: str | None = None
    avalara_timeout_s: int = Field(30, ge=1)
    avalara_commit: bool = False
    avalara_bill_to: Path | None = None

    # Inbound webhooks (issue 12): Authorize.Net Signature Key, NetSuite User Event shared secret.
    authorize_net_signature_key: SecretStr = SecretStr("")
    netsuite_webhook_secret: SecretStr = SecretStr("")
    netsuite_webhook_tolerance_s: int = Field(300, ge=1, le=3600)
    webhook_receipts: Literal["sqlite", "firestore"] = "sqlite"

    # Payments (issue 12): received payments applied ("none": notifications are only verified and kept),
    # the Authorize.Net API (login id and transaction key are secrets: Secret Manager -> WARP_ variables),
    # auto-recharge tasks (queue, the URL they call, their HMAC key, the per-day attempt cap).
    payment_store: Literal["none", "sqlite", "firestore"] = "sqlite"
    authorize_net_url: str = "https://apitest.authorize.net/xml/v1/request.api"
    authorize_net_login_id: SecretStr = SecretStr("")
    authorize_net_transaction_key: SecretStr = SecretStr("")
    authorize_net_timeout_ms: int = Field(20_000, ge=1)
    recharge_queue: str = "projects/warp-local/locations/us-central1/queues/recharge"
    recharge_task_url: str = "http://127.0.0.1:8093/tasks/recharge"
    recharge_task_key: SecretStr = SecretStr("")
    recharge_daily_attempts: int = Field(3, ge=1, le=24)
    recharge_retry_s: int = Field(3600, ge=1)
    recharge_trigger: bool = False   # the charging functions request card recharges at low-balance crossings

    # Vendor reconciliation (issue 13).
    recon_source: Literal["files", "storage"] = "files"
    recon_reports_prefix: str = "recon"
    vendor_cdr_dir: Path = Path(".warp-data/vendor-files")
    recon_output_dir: Path = Path(".warp-data/recon")
    recon_operator_email: str | None = None
    recon_memory_limit: str = "1GB"

    # Cycle close (issue 10): which adapter backs each of its ports, and where they point.
    rated_source: Literal["files", "bigquery"] = "files"
    rated_file: Path = Path(".warp-data/rated.jsonl")
    register_store: Literal["files", "firestore"] = "files"
    register_dir: Path = Path(".warp-data/register")
    document_store: Literal["files", "gcs"] = "files"
    documents_dir: Path = Path(".warp-data/documents")
    storage_endpoint: str | None = None
    documents_bucket: str = "warp-local-documents"
    documents_prefix: str = ""
    vendor_cdr_bucket: str = "warp-local-vendor-cdrs"
    run_log_store: Literal["files", "bigquery"] = "files"
    invoice_sink: Literal["log", "pubsub"] = "log"
    invoice_topic: str = "invoices"
    close_watermark_lag_s: int = Field(600, ge=0)
    close_query_timeout_s: int = Field(600, ge=1)
    close_pdf: bool = True
    # A prepaid customer's statement in the close: its balance box from the ledger store, and its
    # recurring charges and fees debited from the balance (needs the ledger and Redis; Terraform turns
    # it on for the rollup function; `warp close` and the local stack leave it off unless set).
    close_prepaid_statements: bool = False
    late_usage_lookback_days: int = Field(92, ge=1)
    firestore_collection_prefix: str = ""

    # Customer disputes (`warp dispute`): where they are kept (the credit notes go through the register).
    dispute_store: Literal["files", "firestore"] = "files"
    disputes_dir: Path | None = None  # files: None = a "disputes" folder beside register_dir

    # Collections (issue 12): dunning, customer emails (SendGrid), HubSpot. Keys and tokens are
    # secrets (Secret Manager -> WARP_ variables); template ids by email kind (dunning.notices.KINDS).
    dunning_store: Literal["sqlite", "firestore"] = "sqlite"
    email_log: Literal["sqlite", "firestore"] = "sqlite"
    account_holds: Literal["redis"] = "redis"
    sendgrid_url: str = "https://api.sendgrid.com"
    sendgrid_api_key: SecretStr = SecretStr("")
    sendgrid_sandbox: bool = False
    sendgrid_from_email: str = "billing@example.com"
    sendgrid_from_name: str = "WARP Billing"
    sendgrid_templates: dict[str, str] = Field(default_factory=dict)
    sendgrid_timeout_s: int = Field(10, ge=1)
    hubspot_url: str = "https://api.hubapi.com"
    hubspot_token: SecretStr = SecretStr("")
    hubspot_timeout_s: int = Field(10, ge=1)
    hubspot_sync: bool = True
    hubspot_batch_size: int = Field(100, ge=1, le=100)
    hubspot_queue: str = "projects/warp-local/locations/us-central1/queues/hubspot"
    hubspot_task_url: str = "http://127.0.0.1:8099/"

    @model_validator(mode="after")
    def _reports_outside_the_vendor_files(self) -> Settings:
        # The reports are written to the vendor bucket; under vendor-cdrs/ each one would be an
        # object-finalize event that starts a reconciliation reading its own outputs as CDRs.
        prefix = self.recon_reports_prefix.strip("/")
        if prefix == "vendor-cdrs" or prefix.startswith("vendor-cdrs/"):
            raise ValueError(f"recon_reports_prefix ({self.recon_reports_prefix!r}) must not be under vendor-cdrs/, "
                             "where every new object starts a reconciliation")
        return self

    @model_validator(mode="after")
    def _dedup_covers_max_age(self) -> Settings:
        # A redelivery of an event younger than the maximum age must still find its charge
        # result, or it would be charged twice.
        if self.dedup_ttl_s < self.max_event_age_s:
            raise ValueError(
                f"dedup_ttl_s ({self.dedup_ttl_s}) must be >= max_event_age_s ({self.max_event_age_s})"
            )
        return self

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> Settings:
        # A CA file with a plain redis:// URL would be silently unused: the AUTH string would
        # then cross the network in clear text while the operator believes it is encrypted.
        if self.redis_ca_cert is not None and not self.redis_url.startswith("rediss://"):
            raise ValueError("redis_ca_cert is set but redis_url is not rediss:// (TLS)")
        return self

    @property
    def bigquery_project_id(self) -> str:
        return self.bigquery_project or self.gcp_project

    @property
    def firestore_project_id(self) -> str:
        return self.firestore_project or self.gcp_project

    @property
    def pubsub_project_id(self) -> str:
        return self.pubsub_project or self.gcp_project

    @property
    def netsuite_url(self) -> str:
        """The SuiteTalk base URL: the configured one, or the account's own host."""
        if self.netsuite_base_url:
            return self.netsuite_base_url.rstrip("/")
        return f"https://{self.netsuite_account.lower().replace('_', '-')}.suitetalk.api.netsuite.com"

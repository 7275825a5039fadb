"""The composition root: builds the object graph from ``Settings``, once per instance.

Adapters are chosen by configuration (``WARP_USAGE_STORE``, ``WARP_LEDGER_STORE``,
``WARP_PLAN_STORE``, ``WARP_ALERT_SINK``, ``WARP_TAX_ENGINE``), so tests, the local stack and production differ only
in settings. Nothing is built at import: a function instance builds its clients on its first
event (``charging_service()``) and reuses them for every later event; each client is built at
most once, and only when something needs it (the CLI's `warp balance show` never touches
BigQuery). Cloud SDK modules are imported inside the factories for the same reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import logs
from .charging.clock import SystemClock
from .charging.plan_catalog import PlanCatalog
from .charging.service import ChargingService
from .ports import TaxEngine
from .settings import Settings


class ConfigurationError(RuntimeError):
    """The settings ask for an adapter that cannot be built (missing module, bad combination)."""


def redis_tls_options(settings: Settings) -> dict[str, Any]:
    """The redis-py TLS options for a ``rediss://`` URL: verify the server against WARP_REDIS_CA_CERT.

    Without a CA file a rediss:// URL verifies against the system trust store (redis-py's default),
    which does not hold Memorystore's per-instance CA, so the connection would fail at the handshake.
    """
    if not settings.redis_url.startswith("rediss://"):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": "required",
                               "ssl_check_hostname": settings.redis_tls_check_hostname}
    if settings.redis_ca_cert is not None:
        if not Path(settings.redis_ca_cert).is_file():
            raise ConfigurationError(f"WARP_REDIS_CA_CERT {settings.redis_ca_cert} is not a readable file")
        options["ssl_ca_certs"] = str(settings.redis_ca_cert)
    return options


class Container:
    """The object graph for one set of settings; every part built lazily, at most once."""

    def __init__(self, settings: Settings | None = None, **overrides: Any):
        """``overrides`` replace parts by name (e.g. ``usage_store=...`` in tests)."""
        self.settings = settings or Settings()
        self._parts: dict[str, Any] = dict(overrides)
        self._lock = threading.RLock()

    def _part(self, name: str, build: Callable[[], Any]) -> Any:
        part = self._parts.get(name)
        if part is None:
            with self._lock:
                part = self._parts.get(name)
                if part is None:
                    part = self._parts[name] = build()
        return part

    # -- clients and adapters -----------------------------------------------------------------

    @property
    def redis(self):
        """The Redis / Memorystore client (cluster-aware when WARP_REDIS_CLUSTER=true)."""
        return self._part("redis", self._build_redis)

    @property
    def balances(self):
        """The balance store (prepaid accounts, postpaid totals) on Redis."""
        return self._part("balances", self._build_balances)

    @property
    def usage_store(self):
        return self._part("usage_store", self._build_usage_store)

    @property
    def ledger_store(self):
        return self._part("ledger_store", self._build_ledger_store)

    @property
    def plan_store(self):
        return self._part("plan_store", self._build_plan_store)

    @property
    def alert_publisher(self):
        return self._part("alert_publisher", self._build_alert_publisher)

    @property
    def tax_engine(self) -> TaxEngine:
        """The invoice tax engine: the offline USF table or Avalara AFC (credentials from Settings)."""
        return self._part("tax_engine", self._build_tax_engine)

    @property
    def plan_catalog(self) -> PlanCatalog:
        return self._part("plan_catalog", lambda: PlanCatalog(self.plan_store, self.settings.plan_refresh_s))

    @property
    def clock(self):
        """Wall-clock time for charging decisions (a settable clock in tests)."""
        return self._part("clock", SystemClock)

    @property
    def charging(self) -> ChargingService:
        """The real-time charging service (what the usage functions call)."""
        settings = self.settings
        return self._part("charging", lambda: ChargingService(
            self.plan_catalog, self.balances, self.usage_store, self.ledger_store, self.alert_publisher,
            max_event_age_s=settings.max_event_age_s, clock=self.clock, dedup_ttl_s=settings.dedup_ttl_s,
            max_future_skew_s=settings.max_future_skew_s,
            reconcile=self.reconcile_customer if settings.reconcile_on_stale else None))

    def reconcile_customer(self, customer_id: str) -> bool:
        """Bring one customer's Redis state up to the ledger (fenced, safe under traffic); True when done."""
        return self._part("reconciler", self._build_reconciler)(customer_id)

    def rebuild_options(self) -> dict:
        """Keyword arguments of ``rebuild_balances`` for these settings (CLI rebuild and sweep)."""
        from .charging.rebuild import PostpaidWindow, customer_terms

        terms_for, postpaid_plan_for = customer_terms(self.plan_catalog)
        settings = self.settings
        return dict(dedup_ttl_s=settings.dedup_ttl_s, terms_for=terms_for, postpaid_plan_for=postpaid_plan_for,
                    usage=self.usage_store, window=PostpaidWindow(settings.max_event_age_s, settings.max_future_skew_s),
                    lease_s=settings.reconcile_lease_s, clock=self.clock)

    # -- NetSuite sync (issue 11) -------------------------------------------------------------

    @property
    def sync_outbox(self):
        """The ERP outbox the cycle close fills and the NetSuite sync drains."""
        return self._part("sync_outbox", self._build_sync_outbox)

    @property
    def sync_errors(self):
        """The ``sync_errors`` records (documents NetSuite or the mapping refused)."""
        return self._part("sync_errors", self._build_sync_errors)

    @property
    def secrets(self):
        """Named secrets (NetSuite client id, certificate id, private key)."""
        return self._part("secrets", self._build_secrets)

    @property
    def erp(self):
        """NetSuite SuiteTalk REST (the ``Erp`` port)."""
        return self._part("erp", self._build_erp)

    @property
    def netsuite_queue(self):
        """The Cloud Tasks queue in front of NetSuite (the ``TaskQueue`` port)."""
        return self._part("netsuite_queue", self._build_netsuite_queue)

    @property
    def erp_mapping(self):
        """The NetSuite mapping file (re-read when it changes, so a fix applies to the next task)."""
        def build():
            from .erp.mapping import MappingFile

            return MappingFile(self.settings.netsuite_mapping)

        return self._part("erp_mapping", build)

    @property
    def document_sync(self):
        """The service behind one ``netsuite_sync`` task."""
        def build():
            from .erp.sync import DocumentSync

            return DocumentSync(self.sync_outbox, self.erp, self.sync_errors, self.erp_mapping.current)

        return self._part("document_sync", build)

    def _build_sync_outbox(self):
        kind = self.settings.sync_outbox
        if kind == "register":
            # The register's own outbox, written in the transaction that issues each document
            # (file register: SQLite beside it; Firestore register: its erp_outbox collection).
            return self.close_register.outbox
        if kind == "sqlite":
            from .adapters.sqlite_outbox import SqliteSyncOutbox

            return SqliteSyncOutbox(self._data_file("erp_outbox.sqlite"))
        raise ConfigurationError(f"unknown sync outbox {kind!r}")

    def _build_sync_errors(self):
        kind = self.settings.sync_errors
        if kind == "sqlite":
            from .adapters.sqlite_outbox import SqliteSyncErrors

            return SqliteSyncErrors(self._data_file("erp_outbox.sqlite"))
        if kind == "firestore":
            from .adapters.firestore_sync_errors import FirestoreSyncErrors

            return FirestoreSyncErrors(self._firestore_client)
        raise ConfigurationError(f"unknown sync errors store {kind!r}")

    def _build_secrets(self):
        from .adapters.settings_secrets import SettingsSecrets

        settings = self.settings
        key = settings.netsuite_private_key
        return SettingsSecrets(
            {"netsuite_client_id": settings.netsuite_client_id,
             "netsuite_certificate_id": settings.netsuite_certificate_id,
             "netsuite_private_key": key.get_secret_value() if key is not None else None},
            {"netsuite_private_key": settings.netsuite_private_key_file})

    def _build_erp(self):
        from .adapters.netsuite import OAuthTokens, SuiteTalkClient

        settings = self.settings
        base = settings.netsuite_url
        timeout_s = settings.netsuite_timeout_ms / 1000
        secrets = self.secrets

        def tokens(session):
            return OAuthTokens(session, base + "/services/rest/auth/oauth2/v1/token",
                               client_id=lambda: secrets.secret("netsuite_client_id"),
                               certificate_id=lambda: secrets.secret("netsuite_certificate_id"),
                               private_key=lambda: secrets.secret("netsuite_private_key"),
                               timeout_s=timeout_s, margin_s=settings.netsuite_token_margin_s)

        return SuiteTalkClient(base, tokens, timeout_s=timeout_s)

    def _build_netsuite_queue(self):
        from .adapters.cloud_tasks import CloudTasksQueue, tasks_client

        settings = self.settings
        return CloudTasksQueue(lambda: tasks_client(settings.tasks_endpoint), settings.netsuite_queue,
                               settings.netsuite_sync_url, invoker_account=settings.tasks_invoker_account)

    # -- collections (issue 12): dunning, customer emails, HubSpot ---------------------------------

    @property
    def dunning_store(self):
        """Dunning steps run and suspensions (WARP_DUNNING_STORE)."""
        def build():
            if self.settings.dunning_store == "firestore":
                from .adapters.firestore_dunning import FirestoreDunningStore

                return FirestoreDunningStore(self._firestore_client,
                                             prefix=self.settings.firestore_collection_prefix)
            from .adapters.sqlite_dunning import SqliteDunningStore

            return SqliteDunningStore(self._data_file("dunning.sqlite"))

        return self._part("dunning_store", build)

    @property
    def email_log(self):
        def build():
            if self.settings.email_log == "firestore":
                from .adapters.firestore_dunning import FirestoreEmailLog

                return FirestoreEmailLog(self._firestore_client, prefix=self.settings.firestore_collection_prefix)
            from .adapters.sqlite_dunning import SqliteEmailLog

            return SqliteEmailLog(self._data_file("dunning.sqlite"))

        return self._part("email_log", build)

    @property
    def account_holds(self):
        """Suspension for non-payment, where charging checks it (WARP_ACCOUNT_HOLDS=redis)."""
        def build():
            from .adapters.redis_holds import RedisAccountHolds

            return RedisAccountHolds(self.redis)

        return self._part("account_holds", build)

    @property
    def mailer(self):
        def build():
            from .adapters.sendgrid import SendGridMailer

            settings = self.settings
            return SendGridMailer(settings.sendgrid_url, settings.sendgrid_api_key.get_secret_value,
                                  sender=settings.sendgrid_from_email, sender_name=settings.sendgrid_from_name,
                                  templates=settings.sendgrid_templates, sandbox=settings.sendgrid_sandbox,
                                  timeout_s=settings.sendgrid_timeout_s)

        return self._part("mailer", build)

    @property
    def crm(self):
        """HubSpot CRM v3 (the ``Crm`` port)."""
        def build():
            from .adapters.hubspot import HubSpotClient

            settings = self.settings
            return HubSpotClient(settings.hubspot_url, settings.hubspot_token.get_secret_value,
                                 timeout_s=settings.hubspot_timeout_s)

        return self._part("crm", build)

    @property
    def crm_updates(self):
        """HubSpot upserts enqueued in batches on the hubspot queue (None when WARP_HUBSPOT_SYNC=false)."""
        if not self.settings.hubspot_sync:
            return None

        def build():
            from .adapters.cloud_tasks import CloudTasksQueue, tasks_client
            from .dunning.crm import CrmUpdates

            settings = self.settings
            queue = CloudTasksQueue(lambda: tasks_client(settings.tasks_endpoint), settings.hubspot_queue,
                                    settings.hubspot_task_url, invoker_account=settings.tasks_invoker_account)
            return CrmUpdates(queue, settings.hubspot_batch_size)

        return self._part("crm_updates", build)

    @property
    def notifier(self):
        def build():
            from .dunning.attachments import invoice_pdf
            from .dunning.notifier import Notifier

            return Notifier(self.mailer, self.email_log, now=self.clock.now_iso,
                            attachment=invoice_pdf(self.document_store))

        return self._part("notifier", build)

    @property
    def dunning(self):
        """The dunning service on the register's aging (the `dunning` task, the alert consumer)."""
        def build():
            from .adapters.register_receivables import RegisterReceivables
            from .dunning.service import DunningService

            # The payments applied to invoices come from the payment store (``applications(customer)``)
            # once the payments side provides one on this container (issue 12, its own branch).
            receivables = RegisterReceivables(self.close_register, getattr(self, "payment_store", None))
            return DunningService(receivables, self.dunning_store, self.account_holds, self.notifier,
                                  self.crm_updates, now_ms=self.clock.now_ms)

        return self._part("dunning", build)

    @property
    def alert_handler(self):
        """Customer-facing alerts (emails, reinstatement, HubSpot) from the billing-alerts topic."""
        def build():
            from .dunning.alerts import AlertHandler

            def plan_of(customer_id: str):
                compiled = self.plan_catalog.current(customer_id)
                return compiled.plan if compiled is not None else None

            return AlertHandler(self.notifier, self.dunning, plan_of, self.crm_updates, self.vendor_dispute_mail)

        return self._part("alert_handler", build)

    @property
    def vendor_dispute_mail(self):
        """A dispute package emailed once per ``vendor_dispute_opened`` alert, read back from the folder
        or the reconciliation's bucket (WARP_VENDOR_CDR_BUCKET)."""
        def build():
            from .adapters.gcs_vendor_files import GcsVendorFiles
            from .adapters.report_locations import ReportLocations
            from .dunning.vendor_disputes import VendorDisputeMail

            reports = ReportLocations(lambda bucket: GcsVendorFiles(self._storage_client, bucket),
                                      [self.settings.vendor_cdr_bucket])
            return VendorDisputeMail(self.mailer, self.email_log, reports, now=self.clock.now_iso)

        return self._part("vendor_dispute_mail", build)

    # -- vendor reconciliation (issue 13) --------------------------------------------------------

    @property
    def reconciliation_job(self):
        """Vendor reconciliation: files from the bucket (or folder), matching in BigQuery (issue 13)."""
        return self._part("reconciliation_job", self._build_reconciliation_job)

    # -- factories ------------------------------------------------------------------------------

    def _build_reconciliation_job(self):
        from .adapters.bigquery_recon import BigQueryReconEngine
        from .adapters.duckdb_recon import DuckDBReconEngine
        from .adapters.pdf_documents import html_to_pdf
        from .adapters.report_folder import FolderSink
        from .adapters.vendor_files import FolderVendorFiles
        from .ports import ReportSink, VendorFileSource
        from .reconciliation_job import ReconciliationJob

        settings = self.settings
        files: VendorFileSource
        storage = settings.recon_source == "storage"
        if storage:
            from .adapters.gcs_vendor_files import GcsReportSink, GcsVendorFiles

            files = GcsVendorFiles(self._storage_client, settings.vendor_cdr_bucket)
        elif settings.recon_source == "files":
            files = FolderVendorFiles(settings.vendor_cdr_dir)
        else:
            raise ConfigurationError(f"unknown reconciliation source {settings.recon_source!r}")

        def sink_for(vendor: str, period: str, delivery: str) -> ReportSink:
            if storage:
                prefix = f"{settings.recon_reports_prefix.strip('/')}/{vendor}/{period}/{delivery}"
                return GcsReportSink(self._storage_client, settings.vendor_cdr_bucket, prefix,
                                     read_first=bool(settings.storage_endpoint))
            return FolderSink(Path(settings.recon_output_dir) / vendor / period)

        def engine_for(vendor: str, period: str, first, end):
            return BigQueryReconEngine(self._bigquery_client, settings, vendor_id=vendor, period=period,
                                       period_start=first, period_end=end)

        return ReconciliationJob(files, sink_for, engine_for,
                                 lambda: DuckDBReconEngine(memory_limit=settings.recon_memory_limit, threads=1),
                                 html_to_pdf, self.alert_publisher, settings.recon_operator_email,
                                 bucket=settings.vendor_cdr_bucket if storage else None)

    def _build_reconciler(self):
        from .charging.rebuild import PostpaidWindow, customer_reconciler

        settings = self.settings
        return customer_reconciler(self.ledger_store, self.balances, self.usage_store, self.plan_catalog,
                                   dedup_ttl_s=settings.dedup_ttl_s,
                                   window=PostpaidWindow(settings.max_event_age_s, settings.max_future_skew_s),
                                   clock=self.clock)

    def _build_redis(self):
        import redis

        settings = self.settings
        timeout = settings.redis_timeout_ms / 1000
        options: dict[str, Any] = dict(socket_timeout=timeout, socket_connect_timeout=timeout,
                                       decode_responses=True, health_check_interval=30)
        options.update(redis_tls_options(settings))
        if settings.redis_cluster:
            return redis.RedisCluster.from_url(settings.redis_url, **options)
        return redis.Redis.from_url(settings.redis_url, **options)

    def _build_balances(self):
        from .adapters.redis_balances import RedisBalances

        settings = self.settings
        return RedisBalances(self.redis, dedup_ttl_s=settings.dedup_ttl_s,
                             ledger_stream_maxlen=settings.ledger_stream_maxlen,
                             postpaid_cycle_ttl_s=settings.postpaid_cycle_ttl_s)

    def _build_usage_store(self):
        kind = self.settings.usage_store
        if kind == "sqlite":
            from .adapters.sqlite_stores import SqliteUsageStore

            return SqliteUsageStore(self._data_file("usage.sqlite"))
        if kind == "bigquery":
            from .adapters.bigquery_usage import BigQueryUsageStore

            return BigQueryUsageStore(self._bigquery_client, self.settings)
        raise ConfigurationError(f"unknown usage store {kind!r}")

    def _build_ledger_store(self):
        kind = self.settings.ledger_store
        if kind == "sqlite":
            from .adapters.sqlite_stores import SqliteLedgerStore

            return SqliteLedgerStore(self._data_file("ledger.sqlite"))
        if kind == "bigquery":
            from .adapters.bigquery_usage import BigQueryLedgerStore

            return BigQueryLedgerStore(self._bigquery_client, self.settings)
        if kind == "firestore":
            from .adapters.firestore_ledger import FirestoreLedgerStore

            return FirestoreLedgerStore(self._firestore_client, self.settings)
        raise ConfigurationError(f"unknown ledger store {kind!r}")

    def _build_plan_store(self):
        kind = self.settings.plan_store
        if kind == "files":
            from .adapters.plan_files import PlanFolder

            return PlanFolder(self.settings.plans_dir)
        if kind == "firestore":
            from .adapters.firestore_plans import FirestorePlanStore

            return FirestorePlanStore(self._firestore_client, self.settings)
        raise ConfigurationError(f"unknown plan store {kind!r}")

    def _build_alert_publisher(self):
        publisher = self._build_alert_sink()
        if self.settings.recharge_trigger:
            from .payments.recharge import RechargeTrigger

            return RechargeTrigger(publisher, lambda: self.recharges)
        return publisher

    def _build_alert_sink(self):
        kind = self.settings.alert_sink
        if kind == "log":
            from .adapters.log_alerts import LogAlertPublisher

            return LogAlertPublisher()
        if kind == "pubsub":
            from .adapters.pubsub_alerts import PubSubAlertPublisher

            return PubSubAlertPublisher(self._pubsub_client, self.settings)
        raise ConfigurationError(f"unknown alert sink {kind!r}")

    # -- cycle close (issue 10): the ports of billing.close_service --------------------------

    @property
    def rated_source(self):
        """Rated usage for the cycle close: the rated JSONL file or BigQuery (WARP_RATED_SOURCE)."""
        return self._part("rated_source", self._build_rated_source)

    @property
    def close_register(self):
        """Invoice register + ERP outbox (WARP_REGISTER_STORE)."""
        return self._part("close_register", self._build_close_register)

    @property
    def document_store(self):
        return self._part("document_store", self._build_document_store)

    @property
    def dispute_store(self):
        """Customer disputes (WARP_DISPUTE_STORE); an accepted one's credit note goes through ``close_register``."""
        return self._part("dispute_store", self._build_dispute_store)

    @property
    def invoice_publisher(self):
        return self._part("invoice_publisher", self._build_invoice_publisher)

    @property
    def run_log(self):
        return self._part("run_log", self._build_run_log)

    @property
    def cycle_closer(self):
        """The cycle-close service (`warp close`, the rollup function) on the configured adapters."""
        def build():
            from datetime import timedelta

            from .billing.close_service import CycleCloser
            from .billing.render_pdf import render_invoice_pdf

            prepaid = self.prepaid_statements if self.settings.close_prepaid_statements else None
            return CycleCloser(self.rated_source, self.close_register, self.document_store, self.invoice_publisher,
                               self.run_log, self.tax_engine,
                               watermark_lag=timedelta(seconds=self.settings.close_watermark_lag_s), prepaid=prepaid,
                               pdf=render_invoice_pdf if self.settings.close_pdf else None)

        return self._part("cycle_closer", build)

    @property
    def prepaid_statements(self):
        """Prepaid statements' ledger (balance box) and debits, on the charging stores."""
        def build():
            from .charging.statement_debits import LedgerPrepaidStatements

            return LedgerPrepaidStatements(self.balances, self.ledger_store, self.clock, self.reconcile_customer)

        return self._part("prepaid_statements", build)

    def _build_rated_source(self):
        kind = self.settings.rated_source
        if kind == "files":
            from .adapters.rated_files import RatedFileSource

            return RatedFileSource(self.settings.rated_file)
        if kind == "bigquery":
            from .adapters.bigquery_close import BigQueryRatedSource

            return BigQueryRatedSource(self._bigquery_client, self.settings,
                                       deadline_s=self.settings.close_query_timeout_s)
        raise ConfigurationError(f"unknown rated source {kind!r}")

    def _build_close_register(self):
        kind = self.settings.register_store
        if kind == "files":
            from .adapters.file_register import FileCloseRegister

            return FileCloseRegister(self.settings.register_dir)
        if kind == "firestore":
            from .adapters.firestore_register import FirestoreRegister

            return FirestoreRegister(self._firestore_client, self.settings,
                                     collection_prefix=self.settings.firestore_collection_prefix)
        raise ConfigurationError(f"unknown register store {kind!r}")

    def _build_dispute_store(self):
        kind = self.settings.dispute_store
        if kind == "files":
            from .adapters.dispute_files import DisputeFiles, disputes_beside

            return DisputeFiles(self.settings.disputes_dir or disputes_beside(self.settings.register_dir))
        if kind == "firestore":
            from .adapters.firestore_disputes import FirestoreDisputes

            return FirestoreDisputes(self._firestore_client,
                                     collection_prefix=self.settings.firestore_collection_prefix)
        raise ConfigurationError(f"unknown dispute store {kind!r}")

    def _build_document_store(self):
        kind = self.settings.document_store
        if kind == "files":
            from .adapters.document_files import DocumentFolder

            return DocumentFolder(self.settings.documents_dir)
        if kind == "gcs":
            from .adapters.gcs_documents import GcsDocumentStore

            return GcsDocumentStore(self._storage_client, self.settings.documents_bucket,
                                    prefix=self.settings.documents_prefix,
                                    read_first=bool(self.settings.storage_endpoint))
        raise ConfigurationError(f"unknown document store {kind!r}")

    def _build_invoice_publisher(self):
        kind = self.settings.invoice_sink
        if kind == "log":
            from .adapters.invoice_announcements import LogInvoicePublisher

            return LogInvoicePublisher()
        if kind == "pubsub":
            from .adapters.invoice_announcements import PubSubInvoicePublisher

            return PubSubInvoicePublisher(self._pubsub_client, self.settings.pubsub_project_id,
                                          self.settings.invoice_topic)
        raise ConfigurationError(f"unknown invoice sink {kind!r}")

    def _build_run_log(self):
        kind = self.settings.run_log_store
        if kind == "files":
            from .adapters.run_log_files import JsonlRunLog

            return JsonlRunLog(self._data_file("cycle_runs.jsonl"))
        if kind == "bigquery":
            from .adapters.bigquery_close import BigQueryRunLog

            return BigQueryRunLog(self._bigquery_client, self.settings)
        raise ConfigurationError(f"unknown run log store {kind!r}")

    def _storage_client(self):
        def build():
            from .adapters.gcs_documents import storage_client

            return storage_client(self.settings.gcp_project, self.settings.storage_endpoint)

        return self._part("storage_client", build)

    def _build_tax_engine(self) -> TaxEngine:
        settings = self.settings
        if settings.tax_engine == "offline":
            from .billing.taxes import OfflineTaxEngine
            from .billing.usf import ContributionFactorTable

            # an unreadable or bad table raises TaxError (a BillingError) naming the file
            factors = ContributionFactorTable.from_csv(settings.usf_table) if settings.usf_table is not None else None
            return OfflineTaxEngine(factors)
        if settings.tax_engine == "avalara":
            return self._build_avalara()
        raise ConfigurationError(f"unknown tax engine {settings.tax_engine!r}")

    def _build_avalara(self) -> TaxEngine:
        from .adapters.avalara import AfcSettings, AvalaraCommunicationsTaxEngine, bill_to_from_mapping

        settings = self.settings
        password = settings.avalara_password.get_secret_value()
        if not settings.avalara_username or not password:
            raise ConfigurationError("WARP_TAX_ENGINE=avalara needs WARP_AVALARA_USERNAME and WARP_AVALARA_PASSWORD")
        if settings.avalara_bill_to is None:
            raise ConfigurationError("WARP_TAX_ENGINE=avalara needs WARP_AVALARA_BILL_TO (customer billing locations)")
        try:
            bill_to = bill_to_from_mapping(_read_mapping(settings.avalara_bill_to))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"WARP_AVALARA_BILL_TO {settings.avalara_bill_to}: {exc}") from None
        afc = AfcSettings(base_url=settings.avalara_base_url, username=settings.avalara_username, password=password,
                          client_id=settings.avalara_client_id, client_profile_id=settings.avalara_client_profile_id,
                          timeout_s=settings.avalara_timeout_s, commit=settings.avalara_commit)
        return AvalaraCommunicationsTaxEngine(afc, bill_to)

    # The cloud clients: one per system and instance, built on first use (the stores above
    # receive these methods as factories and call them when they first talk to the service).

    def _bigquery_client(self):
        def build():
            from .adapters.bigquery_usage import bigquery_client

            return bigquery_client(self.settings.bigquery_project_id, self.settings.bigquery_endpoint)

        return self._part("bigquery_client", build)

    def _firestore_client(self):
        def build():
            from .adapters.firestore_plans import firestore_client

            settings = self.settings
            return firestore_client(settings.firestore_project_id, settings.firestore_emulator_host,
                                    settings.firestore_database)

        return self._part("firestore_client", build)

    def _pubsub_client(self):
        def build():
            from .adapters.pubsub_alerts import publisher_client

            return publisher_client(self.settings.pubsub_endpoint)

        return self._part("pubsub_client", build)

    @property
    def webhook_receipts(self):
        """Replay protection of inbound webhooks (issue 12)."""
        def build():
            kind = self.settings.webhook_receipts
            if kind == "sqlite":
                from .adapters.sqlite_webhook_receipts import SqliteWebhookReceipts

                return SqliteWebhookReceipts(self._data_file("webhook_receipts.sqlite"))
            if kind == "firestore":
                from .adapters.firestore_payments import FirestoreWebhookReceipts

                return FirestoreWebhookReceipts(self._firestore_client,
                                                collection_prefix=self.settings.firestore_collection_prefix)
            raise ConfigurationError(f"unknown webhook receipts store {kind!r}")

        return self._part("webhook_receipts", build)

    # -- payments (issue 12) --------------------------------------------------------------------

    @property
    def payment_store(self):
        """Received payments, by transaction id (WARP_PAYMENT_STORE)."""
        def build():
            kind = self.settings.payment_store
            if kind == "sqlite":
                from .adapters.sqlite_payments import SqlitePaymentStore

                if self.settings.register_store == "files":   # beside the register, which reads it
                    from .billing.invoice_store import PAYMENTS_FILE

                    return SqlitePaymentStore(Path(self.settings.register_dir) / PAYMENTS_FILE)
                return SqlitePaymentStore(self._data_file("payments.sqlite"))
            if kind == "firestore":
                from .adapters.firestore_payments import FirestorePaymentStore

                return FirestorePaymentStore(self._firestore_client,
                                             collection_prefix=self.settings.firestore_collection_prefix)
            raise ConfigurationError(f"unknown payment store {kind!r}")

        return self._part("payment_store", build)

    @property
    def payment_gateway(self):
        """Authorize.Net ``request.api`` (the ``PaymentGateway`` port), credentials from the settings' secrets."""
        def build():
            from .adapters.authorize_net import AuthorizeNetClient

            settings = self.settings
            return AuthorizeNetClient(settings.authorize_net_url,
                                      settings.authorize_net_login_id.get_secret_value,
                                      settings.authorize_net_transaction_key.get_secret_value,
                                      timeout_s=settings.authorize_net_timeout_ms / 1000)

        return self._part("payment_gateway", build)

    @property
    def payments(self):
        """The payment application service (prepaid top-ups, postpaid invoices, reversals)."""
        def build():
            from .payments.service import CustomerAccount, PaymentService, PrepaidBook

            def account(customer_id: str) -> CustomerAccount | None:
                compiled = self.plan_catalog.current(customer_id)
                if compiled is None:
                    return None
                billing = "prepaid" if compiled.prepaid is not None else "postpaid"
                return CustomerAccount(billing, compiled.currency, compiled.prepaid)

            return PaymentService(self.payment_store, self.close_register.documents, account,
                                  PrepaidBook(self.balances, self.ledger_store, self.reconcile_customer),
                                  self.sync_outbox, self.alert_publisher, self.clock,
                                  gateway=self.payment_gateway if self._gateway_configured() else None)

        return self._part("payments", build)

    @property
    def recharge_queue(self):
        """The Cloud Tasks ``recharge`` queue (its tasks call the webhooks function's /tasks/recharge)."""
        def build():
            from .adapters.cloud_tasks import CloudTasksQueue, tasks_client

            settings = self.settings
            return CloudTasksQueue(lambda: tasks_client(settings.tasks_endpoint), settings.recharge_queue,
                                   settings.recharge_task_url, invoker_account=settings.tasks_invoker_account)

        return self._part("recharge_queue", build)

    @property
    def recharges(self):
        """Card auto-recharge: requested at a low-balance crossing, charged by a recharge task."""
        def build():
            from .adapters.redis_recharge import RedisRechargeLocks
            from .money import round_cents
            from .payments.recharge import CardRecharge, RechargeService

            def terms(customer_id: str) -> CardRecharge | None:
                compiled = self.plan_catalog.current(customer_id)
                if compiled is None or compiled.prepaid is None:
                    return None
                prepaid = compiled.plan.prepaid
                if prepaid.recharge_profile is None or not prepaid.auto_recharge_amount:
                    return None
                return CardRecharge(customer_id, prepaid.recharge_profile, round_cents(prepaid.auto_recharge_amount),
                                    compiled.currency)

            settings = self.settings
            return RechargeService(terms, RedisRechargeLocks(self.redis), self.recharge_queue,
                                   lambda: self.payment_gateway, lambda: self.payments, self.alert_publisher,
                                   self.clock,
                                   task_key=settings.recharge_task_key.get_secret_value(),
                                   daily_attempts=settings.recharge_daily_attempts, retry_s=settings.recharge_retry_s)

        return self._part("recharges", build)

    def _gateway_configured(self) -> bool:
        return bool(self.settings.authorize_net_login_id.get_secret_value())

    def _data_file(self, name: str) -> Path:
        return Path(self.settings.data_dir) / name


def _read_mapping(path: Path) -> Mapping[str, Any]:
    """A YAML (or JSON) mapping from a file named by a setting; ValueError when it is not one."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    if not isinstance(data, dict):
        raise ValueError("expected a mapping of customer_id -> {country, state, zip, npa}")
    return data


_container: Container | None = None
_container_lock = threading.Lock()


def container() -> Container:
    """This instance's object graph, built on first use from the environment's settings."""
    global _container
    if _container is None:
        with _container_lock:
            if _container is None:
                settings = Settings()
                logs.configure(settings.log_level)
                _container = Container(settings)
    return _container


def charging_service() -> ChargingService:
    """The instance's charging service (built once, on the first event)."""
    return container().charging


def balance_sweep() -> dict:
    """One balance sweep with this instance's stores: drain the Redis outboxes into the ledger and
    reconcile stale customers (the ``balance_sweep`` function; `warp balance sweep` does the same)."""
    from .charging.sweep import sweep

    graph = container()
    report = sweep(graph.ledger_store, graph.balances, **graph.rebuild_options())
    conflicts = report.rebuild.conflicts if report.rebuild is not None else []
    return {"drained": report.drained, "reconciled": report.reconciled, "conflicts": conflicts}


def reset(replacement: Container | None = None) -> None:
    """Forget (or replace) the instance's object graph: tests and CLI overrides."""
    global _container
    with _container_lock:
        _container = replacement


def document_sync():
    """The instance's NetSuite document sync (built once, on the first task)."""
    return container().document_sync


def netsuite_sweep():
    """Enqueue the outbox's pending documents (the function's ``{"task": "sweep"}``)."""
    from .erp.enqueue import enqueue_pending

    parts = container()
    return enqueue_pending(parts.sync_outbox, parts.netsuite_queue)


def webhook(route: str, headers, body: bytes) -> tuple[int, dict]:
    """One inbound webhook on ``route`` with this instance's secrets and receipts store (issue 12)."""
    from datetime import UTC, datetime

    from .webhooks.receiver import WebhookSecrets, receive

    graph = container()
    settings = graph.settings
    if route.rstrip("/") == "/tasks/recharge":
        from .payments.recharge import handle_task

        return handle_task(body, settings.recharge_task_key.get_secret_value(), lambda: graph.recharges)
    secrets = WebhookSecrets(
        settings.authorize_net_signature_key.get_secret_value(),
        settings.netsuite_webhook_secret.get_secret_value(),
        settings.netsuite_webhook_tolerance_s,
    )
    handlers = {}
    if settings.payment_store != "none":
        def apply_payment(raw: bytes) -> dict:
            return graph.payments.handle_notification(raw)

        def netsuite_event(raw: bytes) -> dict:
            from .webhooks.netsuite_events import NetSuiteEvents

            events = NetSuiteEvents(graph.payments, graph.payment_store, graph.plan_store, graph.alert_publisher)
            return events.handle(raw)

        handlers["authorize-net"] = apply_payment
        handlers["netsuite"] = netsuite_event
    return receive(route, headers, body, datetime.now(UTC), secrets, graph.webhook_receipts, handlers)


def alert_handler():
    """The customer-facing alert consumer of this instance (functions/notify)."""
    return container().alert_handler


def crm():
    """HubSpot (functions/crm_sync)."""
    return container().crm

"""The cloud reconciliation run: vendor files from the bucket, matching in BigQuery, outputs back.

For one vendor and period:

1. the mapping ``vendor-cdrs/<vendor>/mapping.yaml`` and every file under
   ``vendor-cdrs/<vendor>/<period>/`` (``invoice-summary.csv`` there is the invoice summary;
   ``vendor-cdrs/<vendor>/deck.csv``, when present, lets hints name jurisdiction disagreements);
2. the files are normalised by the same DuckDB loader as `warp reconcile` and replace their
   earlier rows in ``vendor_cdrs`` (a re-delivered file is loaded again, never twice);
3. the shared matching query runs in BigQuery over ``rated_usage`` and ``vendor_cdrs`` into
   ``recon_items``; the pure analysis decides hints, variance and the dispute;
4. outputs go to the sink of the (vendor, period, delivery): a folder ``<vendor>/<period>/``
   replaced per run, or in the bucket ``<reports>/<vendor>/<period>/<delivery>/``, where the
   delivery is a digest of the input objects' names and bytes (objects are created once); the
   run goes to ``recon_runs``; a dispute is written to ``disputes`` once per run id and only then
   alerted (with the email intent).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .ports import AlertPublisher, ReportSink, VendorFileSource
from .rating.deck import DeckError, RateDeck, read_deck_rows
from .reconciliation.analysis import InvoiceSummaryError, parse_invoice_summary
from .reconciliation.hints import deck_rates
from .reconciliation.mapping import MappingError, load_mapping
from .reconciliation.service import PeriodError, dispute_alert, period_bounds, run_analysis, write_documents

log = logging.getLogger(__name__)

ROOT = "vendor-cdrs"
INVOICE_SUMMARY = "invoice-summary.csv"
MAPPING = "mapping.yaml"
DECK = "deck.csv"


class ReconJobError(ValueError):
    """A permanent problem with a vendor's delivery (no mapping, bad mapping, no files)."""


@dataclass
class ReconciliationJob:
    """Runs reconciliations from a ``VendorFileSource`` into BigQuery and a ``ReportSink``.

    Attributes:
        files: where vendor files arrive.
        sink_for: the output sink of a (vendor, period, delivery digest of the inputs).
        engine_for: builds the BigQuery engine of a (vendor, period, first day, end day).
        normaliser: builds the DuckDB loader (``DuckDBReconEngine``) used to normalise the files.
        render_pdf: HTML -> PDF bytes for the dispute letter.
        alerts: billing alerts (a dispute opening).
        operator_email: where the package goes when the mapping says send_to: operator.
        bucket: the bucket the files come from (storage source): events of other buckets are ignored.
    """

    files: VendorFileSource
    sink_for: Callable[[str, str, str], ReportSink]
    engine_for: Callable[[str, str, date, date], Any]
    normaliser: Callable[[], Any]
    render_pdf: Callable[[str, str], bytes]
    alerts: AlertPublisher
    operator_email: str | None = None
    bucket: str | None = None

    def vendors(self) -> list[str]:
        return sorted({name.split("/")[1] for name in self.files.names(ROOT + "/") if name.count("/") >= 2})

    def run_daily(self, today: date) -> list[dict]:
        """Every vendor with files for the period that contains yesterday (the Scheduler's call)."""
        period = (today - timedelta(days=1)).strftime("%Y-%m")
        results = []
        for vendor in self.vendors():
            if self._cdr_names(vendor, period):
                results.append(self.run(vendor, period))
        return results

    def _cdr_names(self, vendor: str, period: str) -> list[str]:
        return [
            name for name in self.files.names(f"{ROOT}/{vendor}/{period}/") if not name.endswith("/" + INVOICE_SUMMARY)
        ]

    def _optional(self, name: str) -> bytes | None:
        try:
            return self.files.read(name)
        except FileNotFoundError:
            return None

    def run(self, vendor: str, period: str) -> dict:
        start_ms, end_ms = period_bounds(period)
        mapping_bytes = self._optional(f"{ROOT}/{vendor}/{MAPPING}")
        if mapping_bytes is None:
            raise ReconJobError(f"no mapping: {self.files.location(f'{ROOT}/{vendor}/{MAPPING}')}")
        mapping = load_mapping(mapping_bytes.decode("utf-8", "replace"), f"{ROOT}/{vendor}/{MAPPING}")
        if mapping.vendor_id != vendor:
            raise ReconJobError(f"{ROOT}/{vendor}/{MAPPING} is for vendor {mapping.vendor_id}, not {vendor}")
        names = self._cdr_names(vendor, period)
        if not names:
            raise ReconJobError(f"no vendor CDR files under {ROOT}/{vendor}/{period}/")
        invoice_bytes = self._optional(f"{ROOT}/{vendor}/{period}/{INVOICE_SUMMARY}")
        invoice = (
            parse_invoice_summary(invoice_bytes.decode("utf-8"), mapping.invoice, INVOICE_SUMMARY)
            if invoice_bytes is not None
            else None
        )
        rates_for = self._rates_for(vendor)
        rows, load, delivery = self._normalise(mapping, names, start_ms, end_ms)
        first = datetime.fromtimestamp(start_ms / 1000, tz=UTC).date()
        end = datetime.fromtimestamp(end_ms / 1000, tz=UTC).date()
        engine = self.engine_for(vendor, period, first, end)
        engine.ensure_recon_schema()
        engine.load_vendor_rows(rows, [self.files.location(name) for name in names])
        recon, _ = run_analysis(engine, mapping, period, load, engine.our_count(), invoice, rates_for)
        engine.record_hints(recon.hints.by_item)
        sink = self.sink_for(vendor, period, delivery)
        written = {"items.csv": sink.put("items.csv", engine.items_csv(), "text/csv; charset=utf-8")}
        written.update(write_documents(recon, sink, self.render_pdf))
        engine.record_run(recon, written)
        opened = False
        if recon.decision.dispute:
            opened = engine.open_dispute(recon, {k: v for k, v in written.items() if k.startswith("dispute/")})
            if opened:
                self.alerts.publish(dispute_alert(recon, written, self.operator_email))
        log.info(
            "vendor reconciliation done",
            extra={"run_id": recon.run_id, "dispute": recon.decision.dispute, "dispute_opened": opened},
        )
        return {
            "run_id": recon.run_id,
            "dispute": recon.decision.dispute,
            "dispute_opened": opened,
            "counts": recon.summary()["counts"],
            "outputs": written,
        }

    def _rates_for(self, vendor: str):
        deck_bytes = self._optional(f"{ROOT}/{vendor}/{DECK}")
        if deck_bytes is None:
            return None
        try:
            deck = RateDeck(read_deck_rows(deck_bytes.decode("utf-8").splitlines(), f"{ROOT}/{vendor}/{DECK}"))
        except DeckError as exc:
            log.warning("vendor deck unusable; jurisdiction hints off", extra={"vendor_id": vendor, "error": str(exc)})
            return None
        return deck_rates(deck)

    def _normalise(self, mapping, names: list[str], start_ms: int, end_ms: int):
        loader = self.normaliser()
        digest = hashlib.sha256()
        with tempfile.TemporaryDirectory(prefix="warp-vendor-cdrs-") as folder:
            paths = []
            for number, name in enumerate(names):
                # the loader reads the layout from the name: keep .tsv / .gz
                suffix = (".tsv" if ".tsv" in name.lower() else ".csv") + (".gz" if name.endswith(".gz") else "")
                path = os.path.join(folder, f"{number:05d}{suffix}")
                data = self.files.read(name)
                digest.update(f"{name}\n{len(data)}\n".encode())
                digest.update(data)
                with open(path, "wb") as handle:
                    handle.write(data)
                del data
                paths.append(path)
            try:
                load = loader.load_vendor(
                    mapping, paths, start_ms, end_ms, names=[self.files.location(name) for name in names]
                )
                rows = loader.normalised_vendor_rows()
            finally:
                loader.close()
        return rows, load, digest.hexdigest()[:16]


# -- delivery: what functions/reconcile hands over ------------------------------------------------

PERMANENT = (ReconJobError, MappingError, InvoiceSummaryError, PeriodError, ValueError)


def handle_request(body: dict, job: ReconciliationJob, today: date) -> tuple[dict, int]:
    """An HTTP call: ``{}`` (the daily Scheduler job) or ``{"vendor", "period"}``; (JSON body, status).

    A bad delivery (no mapping, a misspelt key, a missing column) answers 422 and is not retried;
    anything else raises, so the caller retries.
    """
    try:
        if body.get("vendor"):
            if not body.get("period"):
                return {"error": "give period (YYYY-MM) with vendor"}, 400
            runs = [job.run(str(body["vendor"]), str(body["period"]))]
        else:
            runs = job.run_daily(today)
    except PERMANENT as exc:
        log.warning("vendor reconciliation refused", extra={"error": str(exc)})
        return {"error": str(exc)}, 422
    return {"runs": runs}, 200


FINALIZED = "google.cloud.storage.object.v1.finalized"  # the CloudEvent type (Eventarc, direct)
OBJECT_FINALIZE = "OBJECT_FINALIZE"  # the eventType attribute of a Storage notification (Pub/Sub)


def is_event(headers: Mapping[str, str], body: Mapping[str, Any]) -> bool:
    """Whether an HTTP delivery is an event (a Pub/Sub push envelope or a binary-mode CloudEvent)."""
    pushed = isinstance(body.get("message"), Mapping) and "subscription" in body
    return pushed or any(key.lower() == "ce-type" for key in headers)


def finalized_object(headers: Mapping[str, str], body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(bucket, object name) when an event delivery is an object-finalize event, else None.

    Two shapes reach the HTTP entry point: a Storage notification pushed by Pub/Sub (the envelope
    ``{"message": {"attributes": {"eventType", "bucketId", "objectId"}, ...}, "subscription"}``,
    terraform/vendor_cdrs.tf) and a CloudEvent in binary mode (``ce-type`` header, the object
    resource as the body: ``{"bucket", "name"}``, as Eventarc delivers it).
    """
    message = body.get("message")
    if isinstance(message, Mapping) and "subscription" in body:
        attributes = message.get("attributes") or {}
        if attributes.get("eventType") != OBJECT_FINALIZE:
            return None
        return str(attributes.get("bucketId") or ""), str(attributes.get("objectId") or "")
    lowered = {key.lower(): value for key, value in headers.items()}
    if lowered.get("ce-type") == FINALIZED:
        return str(body.get("bucket") or ""), str(body.get("name") or "")
    return None


def object_run(name: str) -> tuple[str, str] | None:
    """The (vendor, period) an object of ``vendor-cdrs/<vendor>/<period>/<file>`` belongs to.

    None for anything else: the mapping and the deck (``vendor-cdrs/<vendor>/...``, not a period's
    file), "folder" placeholders, and the reconciliation's own outputs under the reports prefix."""
    parts = name.split("/")
    if len(parts) < 4 or parts[0] != ROOT or not parts[1] or not parts[2] or not parts[-1]:
        return None
    return parts[1], parts[2]


def handle_object(name: str, job: ReconciliationJob, bucket: str | None = None) -> dict | None:
    """An object-finalize event: reconcile the vendor and period of ``vendor-cdrs/<v>/<p>/...``.

    Objects outside that layout, or in another bucket than the job's, are ignored (None). A
    repeated delivery of the same event runs again over the same files: same delivery digest,
    so the same outputs, no second dispute and no second alert (``ReconciliationJob.run``)."""
    if bucket is not None and job.bucket is not None and bucket != job.bucket:
        log.info("object of another bucket ignored", extra={"bucket": bucket, "object": name})
        return None
    run = object_run(name)
    if run is None:
        log.info("object outside vendor-cdrs/<vendor>/<period>/ ignored", extra={"object": name})
        return None
    try:
        return job.run(*run)
    except PERMANENT as exc:
        log.warning("vendor reconciliation refused", extra={"object": name, "error": str(exc)})
        return None


def handle_delivery(headers: Mapping[str, str], body: dict, job: ReconciliationJob, today: date) -> tuple[dict, int]:
    """What the HTTP entry point answers: an object-finalize event, or a Scheduler / manual call.

    An event is always acknowledged (200) unless the run raises (then it is redelivered): an object
    that is not a vendor CDR file, or a delivery that cannot be reconciled, is logged, not retried."""
    if not is_event(headers, body):
        return handle_request(body, job, today)
    event = finalized_object(headers, body)
    if event is None:
        log.info("event that is not an object finalize ignored")
        return {"ignored": "not an object finalize"}, 200
    bucket, name = event
    run = handle_object(name, job, bucket)
    return ({"runs": [run]} if run is not None else {"ignored": name}), 200

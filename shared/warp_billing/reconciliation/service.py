"""Running a reconciliation: match (an engine), analyse (pure), write the outputs, alert on a dispute.

The engine (DuckDB on one machine, BigQuery in the cloud) has loaded both sides already; this
module is what the CLI and the cloud function share after that, so the decisions, documents and
alerts are the same everywhere. Every output is named by the run id (``<vendor>-<period>``): a
re-run replaces its own outputs and never adds a second dispute.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from .analysis import Reconciliation, analyse
from .documents import dispute_csv, letter_html, report_html, summary_json
from .hints import RatesFor
from .mapping import VendorMapping
from .outcome import LoadReport, MatchOutcome
from .variance import InvoiceFigures

log = logging.getLogger(__name__)
PERIOD = re.compile(r"(\d{4})-(\d{2})")
DISPUTE_FOLDER = "dispute"
UNADDRESSED, TO_SEND = "unaddressed", "to_send"   # the alert's email.status


class PeriodError(ValueError):
    """A period that is not YYYY-MM."""


def period_bounds(period: str) -> tuple[int, int]:
    """The UTC epoch milliseconds of a month's first instant and of the next month's."""
    match = PERIOD.fullmatch(period or "")
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise PeriodError(f"period {period!r} is not YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


class MatchingEngine(Protocol):
    """An engine holding both normalised sides (see ``ports.ReconEngine``)."""

    def match(self, mapping: VendorMapping) -> MatchOutcome: ...


class ReportSink(Protocol):
    """Where the outputs go: a folder, or a Cloud Storage prefix."""

    def put(self, name: str, data: bytes, content_type: str) -> str: ...


def write_documents(recon: Reconciliation, sink: ReportSink, render_pdf: Callable[[str, str], bytes]) -> dict[str, str]:
    """summary.json, report.html and, when a dispute opens, the dispute package; returns name -> location."""
    written = {
        "summary.json": sink.put("summary.json", summary_json(recon), "application/json"),
        "report.html": sink.put("report.html", report_html(recon).encode("utf-8"), "text/html; charset=utf-8"),
    }
    if recon.decision.dispute:
        letter = letter_html(recon)
        package = {
            f"{DISPUTE_FOLDER}/disputed-records.csv": (dispute_csv(recon), "text/csv; charset=utf-8"),
            f"{DISPUTE_FOLDER}/letter.html": (letter.encode("utf-8"), "text/html; charset=utf-8"),
            f"{DISPUTE_FOLDER}/letter.pdf": (render_pdf(letter, f"Billing dispute {recon.run_id}"), "application/pdf"),
        }
        for name, (data, content_type) in package.items():
            written[name] = sink.put(name, data, content_type)
    return written


def dispute_recipient(recon: Reconciliation, operator_email: str | None) -> str | None:
    """Where the dispute package is emailed: the mapping's ``vendor_email`` when it says ``send_to:
    vendor`` (the mapping refuses vendor without one), else the operator (WARP_RECON_OPERATOR_EMAIL)."""
    if recon.send_to == "vendor":
        return recon.vendor_email
    return operator_email or None


def dispute_alert(recon: Reconciliation, locations: Mapping[str, str], operator_email: str | None) -> dict:
    """The billing alert for an opened dispute: what ``notify`` needs to email the package once.

    The recipient is decided here. With no operator address configured the alert still goes out
    (the dispute is open either way) with ``email.status`` ``unaddressed``, and that is logged:
    ``notify`` then acknowledges it without sending."""
    address = dispute_recipient(recon, operator_email)
    if address is None:
        log.error("dispute package has no recipient: WARP_RECON_OPERATOR_EMAIL is not set; it will not be emailed",
                  extra={"run_id": recon.run_id, "send_to": recon.send_to})
    return {
        "alert_id": f"vendor-dispute:{recon.run_id}",
        "type": "vendor_dispute_opened",
        "run_id": recon.run_id,
        "vendor_id": recon.vendor_id,
        "period": recon.period,
        "reason": recon.decision.reason,
        "threshold_pct": format(recon.threshold_pct, "f"),
        "disputed_records": len(recon.disputed),
        "total": recon.total.to_record(),
        "package": {name: where for name, where in locations.items() if name.startswith(DISPUTE_FOLDER)},
        "email": {
            "send_to": recon.send_to,
            "address": address,
            "status": TO_SEND if address else UNADDRESSED,
        },
    }


def run_analysis(
    engine: MatchingEngine,
    mapping: VendorMapping,
    period: str,
    load: LoadReport,
    ours: int,
    invoice: Mapping[str, InvoiceFigures] | None,
    rates_for: RatesFor | None,
) -> tuple[Reconciliation, MatchOutcome]:
    outcome = engine.match(mapping)
    recon = analyse(mapping, period, load, ours, outcome, invoice, rates_for)
    log.info(
        "reconciliation finished",
        extra={
            "run_id": recon.run_id,
            "dispute": recon.decision.dispute,
            "counts": recon.summary()["counts"],
            "reason": recon.decision.reason,
        },
    )
    return recon, outcome

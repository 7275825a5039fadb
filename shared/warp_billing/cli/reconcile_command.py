"""`warp reconcile`: match a vendor's CDRs against our rated usage on one machine (DuckDB).

    warp reconcile --vendor V1 --period 2026-06 --mapping V1.yaml --cdrs a.csv.gz [--cdrs b.tsv ...]
                   --rated RATED.jsonl [--invoice SUMMARY.csv] [--vendor-deck DECK.csv] --out-dir DIR

writes DIR/summary.json, DIR/items.csv, DIR/rejects.csv (vendor rows refused, with reasons),
DIR/report.html and, when a dispute opens, DIR/dispute/ (disputed-records.csv, letter.html,
letter.pdf). Exit status 0 when the reconciliation ran (dispute or not); 1 when it could not.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ..adapters.duckdb_recon import DuckDBReconEngine, ReconInputError
from ..adapters.pdf_documents import html_to_pdf
from ..adapters.report_folder import FolderSink
from ..bootstrap import container
from ..rating.deck import DeckError, load_deck
from ..reconciliation.analysis import InvoiceSummaryError, analyse, parse_invoice_summary
from ..reconciliation.hints import deck_rates
from ..reconciliation.mapping import MappingError, VendorMapping, load_mapping
from ..reconciliation.service import UNADDRESSED, PeriodError, dispute_alert, period_bounds, write_documents
from .common import fail


class PhaseClock:
    """Wall-clock seconds per named phase (printed after the run; the benchmark reads them)."""

    def __init__(self):
        self.phases: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@click.command()
@click.option("--vendor", "vendor_id", required=True, help="The vendor's id, as on our rated events (vendor_id).")
@click.option("--period", required=True, metavar="YYYY-MM", help="The month reconciled (UTC).")
@click.option("--mapping", "mapping_path", required=True, metavar="V.yaml", help="The vendor's CDR column mapping.")
@click.option(
    "--cdrs",
    "cdr_paths",
    multiple=True,
    required=True,
    metavar="FILE",
    help="Vendor CDR file (CSV or TSV, optionally .gz); repeat for several.",
)
@click.option(
    "--rated",
    "rated_paths",
    multiple=True,
    required=True,
    metavar="RATED.jsonl",
    help="Our rated usage as `warp rate` writes it; repeat for several.",
)
@click.option(
    "--invoice", "invoice_path", metavar="SUMMARY.csv", help="The vendor's invoice summary (per destination)."
)
@click.option(
    "--vendor-deck",
    "deck_path",
    metavar="DECK.csv",
    help="Our deck for this vendor: lets the hints name a jurisdiction disagreement.",
)
@click.option("--out-dir", "out_dir", required=True, metavar="DIR", help="Folder for the outputs (created if missing).")
@click.option(
    "--memory-limit", default="3GB", show_default=True, help="DuckDB memory limit; beyond it DuckDB spills to disk."
)
@click.option(
    "--operator-email",
    default=None,
    help="Where the dispute package is emailed when the mapping says send_to: operator "
    "(default: WARP_RECON_OPERATOR_EMAIL).",
)
def reconcile(
    vendor_id,
    period,
    mapping_path,
    cdr_paths,
    rated_paths,
    invoice_path,
    deck_path,
    out_dir,
    memory_limit,
    operator_email,
) -> None:
    """Reconcile VENDOR's CDRs for PERIOD against our rated usage; open a dispute above the threshold."""
    try:
        start_ms, end_ms = period_bounds(period)
    except PeriodError as exc:
        raise fail(str(exc)) from None
    _check_out_dir(out_dir, [mapping_path, *cdr_paths, *rated_paths] + [p for p in (invoice_path, deck_path) if p])
    mapping = _mapping(mapping_path, vendor_id)
    invoice = None
    if invoice_path:
        try:
            invoice = parse_invoice_summary(
                Path(invoice_path).read_text(encoding="utf-8"), mapping.invoice, invoice_path
            )
        except (OSError, UnicodeDecodeError, InvoiceSummaryError) as exc:
            raise fail(f"invoice summary {exc}") from None
    rates_for = None
    if deck_path:
        try:
            rates_for = deck_rates(load_deck(deck_path))
        except (OSError, DeckError) as exc:
            raise fail(f"vendor deck {exc}") from None
    engine = DuckDBReconEngine(memory_limit=memory_limit)
    clock = PhaseClock()
    try:
        with clock("load"):
            load = engine.load_vendor(mapping, list(cdr_paths), start_ms, end_ms)
            ours = engine.load_ours(list(rated_paths), vendor_id, start_ms, end_ms)
        with clock("match+classify"):
            outcome = engine.match(mapping)
            engine.release_inputs()
        with clock("analysis"):
            recon = analyse(mapping, period, load, ours, outcome, invoice, rates_for)
        with clock("write"):
            sink = FolderSink(out_dir)
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            engine.write_items_csv(str(Path(out_dir) / "items.csv"), recon.hints.by_item)
            _write_rejects(Path(out_dir) / "rejects.csv", engine.vendor_rejects())
            written = write_documents(recon, sink, html_to_pdf)
    except (ReconInputError, MappingError) as exc:
        raise fail(str(exc)) from None
    finally:
        engine.close()
    if recon.decision.dispute:
        wiring = container()
        alert = dispute_alert(recon, written, operator_email or wiring.settings.recon_operator_email)
        wiring.alert_publisher.publish(alert)
        if alert["email"]["status"] == UNADDRESSED:
            click.echo("warning: the dispute package will not be emailed: no --operator-email and "
                       "WARP_RECON_OPERATOR_EMAIL is not set", err=True)
    counts = recon.summary()["counts"]
    click.echo(
        f"{vendor_id} {period}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f"; rejected {sum(load.rejected.values())}; "
        + (f"DISPUTE: {recon.decision.reason}" if recon.decision.dispute else "no dispute"),
        err=True,
    )
    click.echo("phases: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in clock.phases.items()), err=True)


def _check_out_dir(out_dir: str, inputs: list[str]) -> None:
    for path in inputs:
        if _same_file(path, out_dir) or os.path.abspath(path) == os.path.abspath(out_dir):
            raise fail(f"--out-dir {out_dir} is one of the input files")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise fail(f"--out-dir {out_dir} exists and is not a folder")


def _mapping(mapping_path: str, vendor_id: str) -> VendorMapping:
    try:
        mapping = load_mapping(Path(mapping_path).read_text(encoding="utf-8"), mapping_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"mapping {mapping_path}: {exc}") from None
    except MappingError as exc:
        raise fail(str(exc)) from None
    if mapping.vendor_id != vendor_id:
        raise fail(f"--vendor {vendor_id} but the mapping {mapping_path} is for vendor {mapping.vendor_id}")
    return mapping


def _write_rejects(path: Path, rows: list[dict]) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("source_file", "source_line", "reason"))
        for row in rows:
            writer.writerow((row["source_file"], row["source_line"], row["reason"]))
    os.replace(temporary, path)

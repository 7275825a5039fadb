"""`warp invoice`: close a billing cycle from rated usage (contracts.md section 6).

One customer::

    warp invoice --plan PLAN.yaml --rated RATED.jsonl --period 2026-11 --out INVOICE.json

writes INVOICE.json, INVOICE.html (printable) and INVOICE.journal.json (revenue
recognition). Many customers in one streaming pass over the rated file::

    warp invoice --plan a.yaml --plan b.yaml ... --rated RATED.jsonl --period 2026-11 --out-dir DIR

writes DIR/<CUSTOMER>-<PERIOD>.json (+ .html, .journal.json) per customer. With
``--register DIR`` invoices are issued: numbered without gaps per customer, immutable,
idempotent on re-runs, and corrected by credit note + rebill when the usage changed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
import yaml

from ..billing.cycle_close import ClosedCycle, DocumentPaths, close_cycles, publish
from ..billing.errors import BillingError, PeriodError
from ..billing.cycles import parse_period
from ..billing.invoice_store import UNCHANGED, InvoiceRegister
from ..billing.revenue_recognition import AccountMap
from ..billing.taxes import OfflineTaxEngine, TaxEngine
from ..billing.usf import ContributionFactorTable
from .common import StrictCommand, fail, load_plans
from .output_files import AtomicOutputs, OutputRefused, check_output_folder, check_outputs


@click.command(cls=StrictCommand)
@click.option("--plan", "plan_paths", multiple=True, required=True, metavar="PLAN.yaml",
              help="Customer plan; repeat with --out-dir to close many customers in one pass.")
@click.option("--rated", "rated_paths", multiple=True, required=True, metavar="RATED.jsonl",
              help="Rated usage as `warp rate` writes it; repeat to close over several files (each event counts once).")
@click.option("--prefer", type=click.Choice(["latest"]), default=None,
              help="Two different rated versions of one event_id: keep the later rated_at instead of stopping.")
@click.option("--period", required=True, metavar="YYYY-MM", help="The cycle starting in this month, in each customer's zone.")
@click.option("--out", "out_path", metavar="INVOICE.json", help="Invoice JSON (one plan).")
@click.option("--out-dir", "out_dir", metavar="DIR", help="Folder for one invoice per plan: <CUSTOMER>-<PERIOD>.json.")
@click.option("--html", "html_path", metavar="INVOICE.html", help="HTML rendering (default: beside the JSON).")
@click.option("--no-html", is_flag=True, help="Do not write the HTML rendering.")
@click.option("--journal", "journal_path", metavar="JOURNAL.json", help="Revenue-recognition journal (default: beside the JSON).")
@click.option("--no-journal", is_flag=True, help="Do not write the journal.")
@click.option("--register", "register_dir", metavar="DIR",
              help="Invoice register: issue numbered, immutable invoices; credit-and-rebill on changes.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Date of a correction (credit note and rebill); default today.")
@click.option("--usf-table", "usf_table", metavar="FACTORS.csv", help="USF contribution factors (year,quarter,factor_pct) replacing the embedded table.")
@click.option("--tax-engine", type=click.Choice(["offline", "avalara"]), default="offline", show_default=True,
              help="offline: USF from the dated table; avalara: Avalara Communications CalcTaxes.")
@click.option("--avalara-config", metavar="AFC.yaml", help="Avalara settings: base_url, username, password, bill_to per customer.")
@click.option("--accounts", "accounts_path", metavar="ACCOUNTS.yaml", help="Journal account codes overriding the defaults.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes for the rated file (default: by file size and CPUs).")
def invoice(plan_paths, rated_paths, prefer, period, out_path, out_dir, html_path, no_html, journal_path, no_journal,
            register_dir, as_of, usf_table, tax_engine, avalara_config, accounts_path, jobs) -> None:
    """Close PERIOD: invoice, HTML and journal per customer from RATED.jsonl."""
    if bool(out_path) == bool(out_dir):
        raise fail("give exactly one of --out (one plan) and --out-dir")
    if out_path and len(plan_paths) > 1:
        raise fail("--out takes one plan; use --out-dir for several")
    if out_dir and (html_path or journal_path):
        raise fail("--html and --journal name one document's files; with --out-dir they are written beside each JSON")
    try:
        parse_period(period)
    except PeriodError as exc:
        raise fail(str(exc)) from None
    correction_date = _date_option(as_of, "--as-of")
    inputs = {"--plan": plan_paths, "--rated": rated_paths, "--usf-table": usf_table,
              "--avalara-config": avalara_config, "--accounts": accounts_path}
    _check_inputs_exist(rated_paths)
    if out_path:
        check_outputs(_document_outputs(_single_paths(out_path, html_path, journal_path, no_html, no_journal)), inputs)
    else:
        _prepare_out_dir(out_dir)
    check_output_folder("--register", register_dir)
    plans = [loaded.plan for loaded in load_plans(plan_paths)]
    _check_out_dir_files(out_dir, plans, period, no_html, no_journal, inputs)
    try:
        taxes = _tax_engine(tax_engine, usf_table, avalara_config)
        accounts = _accounts(accounts_path)
        closed, report = close_cycles(plans, list(rated_paths), period, taxes=taxes, jobs=jobs, prefer=prefer)
    except BillingError as exc:
        raise fail(str(exc)) from None
    _warn(report.warnings)
    register = InvoiceRegister(register_dir) if register_dir else None
    with AtomicOutputs() as files:   # every document a temporary until all are written
        failures = _publish_all(closed, files, register, out_path, out_dir, html_path, journal_path, no_html,
                                no_journal, correction_date, accounts)
        files.commit()
    click.echo(report.render())
    if failures:
        raise click.exceptions.Exit(1)


def _publish_all(closed, files: AtomicOutputs, register, out_path, out_dir, html_path, journal_path, no_html,
                 no_journal, correction_date, accounts) -> int:
    """Issue and write each customer's documents; the number that failed."""
    failures = 0
    for close in closed:
        if close.error is not None:
            failures += 1
            click.echo(f"warp: error: {close.plan.customer_id} {close.cycle.label}: {close.error}", err=True)
            continue
        if out_path:
            paths = _single_paths(out_path, html_path, journal_path, no_html, no_journal)
        else:
            paths = _dir_paths(out_dir, close.plan.customer_id, close.cycle.label, no_html, no_journal)
        try:
            outcome = publish(close.draft, paths, register=register, as_of=correction_date, accounts=accounts,
                              writer=files.write)
        except BillingError as exc:
            failures += 1
            click.echo(f"warp: error: {close.plan.customer_id} {close.cycle.label}: {exc}", err=True)
            continue
        click.echo(_summary(close, outcome))
    return failures


def _single_paths(out_path: str, html_path: str | None, journal_path: str | None, no_html: bool,
                  no_journal: bool) -> DocumentPaths:
    json_path = Path(out_path)
    paths = DocumentPaths.beside(json_path, html=not no_html, journal=not no_journal)
    return DocumentPaths(json_path, Path(html_path) if html_path and not no_html else paths.html,
                         Path(journal_path) if journal_path and not no_journal else paths.journal)


def _dir_paths(out_dir: str, customer_id: str, label: str, no_html: bool, no_journal: bool) -> DocumentPaths:
    name = f"{customer_id}-{label}.json".replace("/", "_")
    return DocumentPaths.beside(Path(out_dir) / name, html=not no_html, journal=not no_journal)


def _document_outputs(paths: DocumentPaths) -> dict[str, Path | None]:
    """Every file one close may write: the document's and its credit note's."""
    credit = paths.for_credit_note()
    return {"--out": paths.json, "--html": paths.html, "--journal": paths.journal,
            "credit note": credit.json, "credit note HTML": credit.html, "credit note journal": credit.journal}


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warp: warning: {warning}", err=True)


def _prepare_out_dir(out_dir: str) -> None:
    """--out-dir may be created (its parent must exist)."""
    check_output_folder("--out-dir", out_dir)
    Path(out_dir).mkdir(exist_ok=True)


def _check_out_dir_files(out_dir: str | None, plans, period: str, no_html: bool, no_journal: bool,
                         inputs: dict) -> None:
    """The per-customer files, named once the plans are known, checked before the rated files are read."""
    if not out_dir:
        return
    check_outputs({f"--out-dir file {key}": value for plan in plans
                   for key, value in _document_outputs(_dir_paths(out_dir, plan.customer_id, period, no_html,
                                                                  no_journal)).items()}, inputs)


def _check_inputs_exist(rated_paths) -> None:
    for path in rated_paths:
        if not Path(path).is_file():
            raise OutputRefused(f"cannot read rated file {path}: no such file")


def _summary(close: ClosedCycle, outcome) -> str:
    document = outcome.invoice
    number = document.number or "draft"
    note = ""
    if outcome.credit_note is not None:
        note = f" (replaces {document.replaces}, credited by {outcome.credit_note.number})"
    elif document.number and outcome.outcome == UNCHANGED:
        note = " (already issued, unchanged)"
    usage = close.usage
    return (f"{document.customer_id} {close.cycle.label} {number}{note}: subtotal {document.subtotal} "
            f"fees {document.fees_total} total {document.total} {document.currency} "
            f"[{usage.events:,} events billed, {usage.rejected:,} rejected ignored, "
            f"{usage.outside_period:,} outside the period]")


def _date_option(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None


def _read_mapping(path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise fail(f"cannot read {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise fail(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise fail(f"{what} {path} must be a mapping")
    return data


def _accounts(path: str | None) -> AccountMap:
    if path is None:
        return AccountMap()
    return AccountMap.from_mapping(_read_mapping(path, "accounts file"))


def _tax_engine(kind: str, usf_table: str | None, avalara_config: str | None) -> TaxEngine:
    if kind == "offline":
        if avalara_config:
            raise fail("--avalara-config needs --tax-engine avalara")
        return OfflineTaxEngine(ContributionFactorTable.from_csv(usf_table) if usf_table else None)
    if not avalara_config:
        raise fail("--tax-engine avalara needs --avalara-config AFC.yaml (base_url, username, password, bill_to)")
    from ..adapters.avalara import AfcSettings, AvalaraCommunicationsTaxEngine, BillTo

    config = _read_mapping(avalara_config, "Avalara config")
    try:
        bill_to = {str(customer): BillTo(str(place["country"]), str(place["state"]), str(place["zip"]),
                                          int(place["npa"]) if place.get("npa") is not None else None)
                   for customer, place in (config.pop("bill_to", None) or {}).items()}
        pairs = config.pop("pairs", None)
        settings = AfcSettings(**config, **({"pairs": {sku: (int(pair[0]), int(pair[1])) for sku, pair in pairs.items()}}
                                             if pairs else {}))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise fail(f"Avalara config {avalara_config}: {exc}") from None
    return AvalaraCommunicationsTaxEngine(settings, bill_to)

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
from pydantic import ValidationError

from .. import bootstrap
from ..billing.cycle_close import ClosedCycle, DocumentPaths, close_cycles, publish
from ..billing.cycles import parse_period
from ..billing.errors import BillingError, PeriodError
from ..billing.invoice_store import UNCHANGED, InvoiceRegister
from ..billing.revenue_recognition import AccountMap
from ..ports import TaxEngine
from ..settings import Settings
from .common import fail, first_line, load_plans


@click.command()
@click.option("--plan", "plan_paths", multiple=True, required=True, metavar="PLAN.yaml",
              help="Customer plan; repeat with --out-dir to close many customers in one pass.")
@click.option("--rated", "rated_path", required=True, metavar="RATED.jsonl",
              help="Rated usage as `warp rate` writes it.")
@click.option("--period", required=True, metavar="YYYY-MM",
              help="The cycle starting in this month, in each customer's zone.")
@click.option("--out", "out_path", metavar="INVOICE.json", help="Invoice JSON (one plan).")
@click.option("--out-dir", "out_dir", metavar="DIR", help="Folder for one invoice per plan: <CUSTOMER>-<PERIOD>.json.")
@click.option("--html", "html_path", metavar="INVOICE.html", help="HTML rendering (default: beside the JSON).")
@click.option("--no-html", is_flag=True, help="Do not write the HTML rendering.")
@click.option("--journal", "journal_path", metavar="JOURNAL.json",
              help="Revenue-recognition journal (default: beside the JSON).")
@click.option("--no-journal", is_flag=True, help="Do not write the journal.")
@click.option("--register", "register_dir", metavar="DIR",
              help="Invoice register: issue numbered, immutable invoices; credit-and-rebill on changes.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD",
              help="Date of a correction (credit note and rebill); default today.")
@click.option("--usf-table", "usf_table", metavar="FACTORS.csv",
              help="USF contribution factors (year,quarter,factor_pct) replacing the embedded table.")
@click.option("--tax-engine", type=click.Choice(["offline", "avalara"]),
              help="offline: USF from the dated table; avalara: Avalara Communications CalcTaxes "
                   "(credentials from WARP_AVALARA_*). Default: WARP_TAX_ENGINE, else offline.")
@click.option("--avalara-config", hidden=True, help="Replaced by the WARP_AVALARA_* settings.")
@click.option("--accounts", "accounts_path", metavar="ACCOUNTS.yaml",
              help="Journal account codes overriding the defaults.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Worker processes for the rated file (default: by file size and CPUs).")
def invoice(plan_paths, rated_path, period, out_path, out_dir, html_path, no_html, journal_path, no_journal,
            register_dir, as_of, usf_table, tax_engine, avalara_config, accounts_path, jobs) -> None:
    """Close PERIOD: invoice, HTML and journal per customer from RATED.jsonl."""
    _check_outputs(plan_paths, out_path, out_dir, html_path, journal_path)
    try:
        parse_period(period)
    except PeriodError as exc:
        raise fail(str(exc)) from None
    correction_date = _date_option(as_of, "--as-of")
    plans = [loaded.plan for loaded in load_plans(plan_paths)]
    try:
        taxes = _tax_engine(tax_engine, usf_table, avalara_config)
        accounts = _accounts(accounts_path)
        closed, report = close_cycles(plans, rated_path, period, taxes=taxes, jobs=jobs)
    except BillingError as exc:
        raise fail(str(exc)) from None
    register = InvoiceRegister(register_dir) if register_dir else None
    failures = 0
    for close in closed:
        paths = _paths(close, out_path, out_dir, html_path, no_html, journal_path, no_journal)
        if not _issue(close, paths, register, correction_date, accounts):
            failures += 1
    click.echo(report.render())
    if failures:
        raise click.exceptions.Exit(1)


def _check_outputs(plan_paths, out_path, out_dir, html_path, journal_path) -> None:
    if bool(out_path) == bool(out_dir):
        raise fail("give exactly one of --out (one plan) and --out-dir")
    if out_path and len(plan_paths) > 1:
        raise fail("--out takes one plan; use --out-dir for several")
    if out_dir and (html_path or journal_path):
        raise fail("--html and --journal name one document's files; with --out-dir they are written beside each JSON")


def _paths(close: ClosedCycle, out_path: str | None, out_dir: str | None, html_path: str | None, no_html: bool,
           journal_path: str | None, no_journal: bool) -> DocumentPaths:
    """Where a customer's documents go: the --out files, or <CUSTOMER>-<PERIOD>.json in --out-dir."""
    if out_path:
        json_path = Path(out_path)
        paths = DocumentPaths.beside(json_path, html=not no_html, journal=not no_journal)
        return DocumentPaths(json_path, Path(html_path) if html_path and not no_html else paths.html,
                             Path(journal_path) if journal_path and not no_journal else paths.journal)
    name = f"{close.plan.customer_id}-{close.cycle.label}.json".replace("/", "_")
    return DocumentPaths.beside(Path(out_dir or ".") / name, html=not no_html, journal=not no_journal)


def _issue(close: ClosedCycle, paths: DocumentPaths, register: InvoiceRegister | None, as_of: date | None,
           accounts: AccountMap) -> bool:
    """Issue and write one customer's documents and print its summary; False (error printed) when it failed."""
    if close.error is not None or close.draft is None:
        click.echo(f"warp: error: {close.plan.customer_id} {close.cycle.label}: {close.error}", err=True)
        return False
    try:
        outcome = publish(close.draft, paths, register=register, as_of=as_of, accounts=accounts)
    except BillingError as exc:
        click.echo(f"warp: error: {close.plan.customer_id} {close.cycle.label}: {exc}", err=True)
        return False
    click.echo(_summary(close, outcome))
    return True


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


def _tax_engine(kind: str | None, usf_table: str | None, avalara_config: str | None) -> TaxEngine:
    """The tax engine bootstrap builds from the settings (WARP_TAX_ENGINE, WARP_AVALARA_*), with the options applied."""
    if avalara_config:
        raise fail("--avalara-config is no longer read: the Avalara credentials are settings (WARP_TAX_ENGINE=avalara, "
                   "WARP_AVALARA_BASE_URL, WARP_AVALARA_USERNAME, WARP_AVALARA_PASSWORD, WARP_AVALARA_BILL_TO)")
    try:
        settings = Settings()
    except ValidationError as exc:
        raise fail(f"settings: {first_line(exc)}") from None
    overrides: dict[str, object] = {}
    if kind is not None:
        overrides["tax_engine"] = kind
    if usf_table:
        overrides["usf_table"] = Path(usf_table)
    try:
        return bootstrap.Container(settings.model_copy(update=overrides)).tax_engine
    except bootstrap.ConfigurationError as exc:
        raise fail(str(exc)) from None

"""`warp invoice`: close a billing cycle from rated usage (contracts.md section 6).

One customer::

    warp invoice --plan PLAN.yaml --rated RATED.jsonl --period 2026-11 --out INVOICE.json

writes INVOICE.json, INVOICE.html (printable) and INVOICE.journal.json (revenue
recognition). Many customers in one streaming pass over the rated file::

    warp invoice --plan a.yaml --plan b.yaml ... --rated RATED.jsonl --period 2026-11 --out-dir DIR

writes DIR/<CUSTOMER>-<PERIOD>.json (+ .html, .journal.json) per customer. With
``--register DIR`` invoices are issued: numbered without gaps per customer, immutable,
idempotent on re-runs, and corrected by credit note + rebill when the usage changed.

Each document gets a PDF beside its HTML (``--no-pdf`` to skip). ``--seller SELLER.yaml``
is the carrier's billing profile (legal name, address, tax id, remit-to, bank, contact);
the customer's side is the plan's ``billing_profile``. A prepaid customer's month is a
statement: ``--prepaid-ledger`` reads its balance movements from the ledger store for the
balance box, and ``--post-debits`` also debits its recurring charges and fees from the
balance (idempotent by statement line; needs the balance store, Redis).

``warp invoice show NUMBER --register DIR`` prints one issued document and its standing
(see ``register_commands``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click
import yaml
from pydantic import ValidationError

from .. import bootstrap
from ..billing.cycle_close import ClosedCycle, DocumentPaths, close_cycles, publish
from ..billing.cycles import parse_period
from ..billing.errors import BillingError, PeriodError
from ..billing.invoice import STATEMENT, Invoice
from ..billing.invoice_store import UNCHANGED, InvoiceRegister, IssueOutcome
from ..billing.revenue_recognition import AccountMap
from ..money import format_amount, from_micros
from ..plan import Plan, PlanError, load_seller
from ..ports import TaxEngine
from ..settings import Settings
from .common import fail, first_line, load_plans
from .output_files import AtomicOutputs, OutputRefused, check_output_folder, check_outputs
from .register_commands import show


@click.group(invoke_without_command=True, subcommand_metavar="[show NUMBER]")
@click.option("--plan", "plan_paths", multiple=True, metavar="PLAN.yaml",
              help="Customer plan; repeat with --out-dir to close many customers in one pass.")
@click.option("--rated", "rated_paths", multiple=True, metavar="RATED.jsonl",
              help="Rated usage as `warp rate` writes it; repeat to close over several files (each event counts once).")
@click.option("--prefer", type=click.Choice(["latest"]), default=None,
              help="Two different rated versions of one event_id: keep the later rated_at instead of stopping.")
@click.option("--period", metavar="YYYY-MM", help="The cycle starting in this month, in each customer's zone.")
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
@click.option("--seller", "seller_path", metavar="SELLER.yaml",
              help="The carrier's billing profile: legal name, address, tax id, remit-to, bank/ACH, contact.")
@click.option("--no-pdf", is_flag=True, help="Do not write the PDF beside the HTML.")
@click.option("--prepaid-ledger", is_flag=True,
              help="Read prepaid customers' ledger (the configured ledger store) for their statement's balance box.")
@click.option("--post-debits", is_flag=True,
              help="Debit prepaid statements' recurring charges and fees from the balance (needs --register).")
@click.pass_context
def invoice(ctx, plan_paths, rated_paths, prefer, period, out_path, out_dir, html_path, no_html, journal_path,
            no_journal, register_dir, as_of, usf_table, tax_engine, avalara_config, accounts_path, jobs, seller_path,
            no_pdf, prepaid_ledger, post_debits) -> None:
    """Close PERIOD: invoice (statement for prepaid), HTML, PDF and journal per customer from RATED.jsonl."""
    if ctx.invoked_subcommand is not None:
        return
    _check_close_options(plan_paths, rated_paths, period, post_debits, register_dir)
    _check_outputs(plan_paths, out_path, out_dir, html_path, journal_path)
    try:
        parse_period(period)
    except PeriodError as exc:
        raise fail(str(exc)) from None
    correction_date = _date_option(as_of, "--as-of")
    layout = _Layout(out_path, out_dir, html_path, no_html, journal_path, no_journal, no_pdf)
    inputs = {"--plan": plan_paths, "--rated": rated_paths, "--usf-table": usf_table, "--seller": seller_path,
              "--accounts": accounts_path}
    _check_inputs_exist(rated_paths)
    if out_path:
        check_outputs(_document_outputs(layout.paths_for("", period)), inputs)
    else:
        _prepare_out_dir(out_dir)
    check_output_folder("--register", register_dir)
    plans = [loaded.plan for loaded in load_plans(plan_paths)]
    if out_dir:  # the per-customer files, named once the plans are known, before the rated files are read
        check_outputs({f"--out-dir file {key}": value for plan in plans for key, value in _document_outputs(
            layout.paths_for(plan.customer_id, period)).items()}, inputs)
    seller = _seller(seller_path)
    try:
        taxes = _tax_engine(tax_engine, usf_table, avalara_config)
        accounts = _accounts(accounts_path)
        closed, report = close_cycles(plans, list(rated_paths), period, taxes=taxes, jobs=jobs, seller=seller,
                                      prefer=prefer)
    except BillingError as exc:
        raise fail(str(exc)) from None
    for warning in report.warnings:
        click.echo(f"warp: warning: {warning}", err=True)
    prepaid = PrepaidBook() if prepaid_ledger or post_debits else None
    register = InvoiceRegister(register_dir) if register_dir else None
    failures = 0
    with AtomicOutputs() as files:   # every document a temporary until all are written, then one commit
        for close in closed:
            paths = layout.paths_for(close.plan.customer_id, close.cycle.label)
            outcome = _issue(close, paths, register, correction_date, accounts, prepaid, files)
            if outcome is None:
                failures += 1
            elif post_debits and prepaid is not None and outcome.invoice.document_type == STATEMENT:
                failures += _post_debits(prepaid, outcome, close)
        files.commit()
    click.echo(report.render())
    if failures:
        raise click.exceptions.Exit(1)


def _check_close_options(plan_paths, rated_paths, period, post_debits, register_dir) -> None:
    given = (("--plan", plan_paths), ("--rated", rated_paths), ("--period", period))
    missing = [name for name, value in given if not value]
    if missing:
        raise fail(f"missing option {', '.join(missing)} (warp invoice --plan PLAN.yaml --rated RATED.jsonl "
                   "--period YYYY-MM --out INVOICE.json)")
    if post_debits and not register_dir:
        raise fail("--post-debits needs --register: a statement is numbered before its lines are debited")


def _check_outputs(plan_paths, out_path, out_dir, html_path, journal_path) -> None:
    if bool(out_path) == bool(out_dir):
        raise fail("give exactly one of --out (one plan) and --out-dir")
    if out_path and len(plan_paths) > 1:
        raise fail("--out takes one plan; use --out-dir for several")
    if out_dir and (html_path or journal_path):
        raise fail("--html and --journal name one document's files; with --out-dir they are written beside each JSON")


@dataclass(frozen=True)
class _Layout:
    """The file options of one close: where each customer's documents go."""

    out_path: str | None
    out_dir: str | None
    html_path: str | None
    no_html: bool
    journal_path: str | None
    no_journal: bool
    no_pdf: bool

    def paths_for(self, customer_id: str, label: str) -> DocumentPaths:
        """The --out files, or <CUSTOMER>-<PERIOD>.json in --out-dir; the PDF beside the HTML (also a named one)."""
        html, journal, pdf = not self.no_html, not self.no_journal, not self.no_pdf
        if self.out_path:
            json_path = Path(self.out_path)
            paths = DocumentPaths.beside(json_path, html=html, journal=journal, pdf=pdf)
            html_file = Path(self.html_path) if self.html_path and html else paths.html
            pdf_file = html_file.with_suffix(".pdf") if html_file is not None and pdf else None
            return DocumentPaths(json_path, html_file,
                                 Path(self.journal_path) if self.journal_path and journal else paths.journal, pdf_file)
        name = f"{customer_id}-{label}.json".replace("/", "_")
        return DocumentPaths.beside(Path(self.out_dir or ".") / name, html=html, journal=journal, pdf=pdf)


def _document_outputs(paths: DocumentPaths) -> dict[str, Path | None]:
    """Every file one close may write: the document's and its credit note's."""
    credit = paths.for_credit_note()
    return {"--out": paths.json, "--html": paths.html, "--journal": paths.journal, "PDF": paths.pdf,
            "credit note": credit.json, "credit note HTML": credit.html, "credit note journal": credit.journal,
            "credit note PDF": credit.pdf}


def _prepare_out_dir(out_dir: str | None) -> None:
    """--out-dir may be created (its parent must exist)."""
    check_output_folder("--out-dir", out_dir)
    Path(out_dir or ".").mkdir(exist_ok=True)


def _check_inputs_exist(rated_paths: tuple[str, ...]) -> None:
    for path in rated_paths:
        if not Path(path).is_file():
            raise OutputRefused(f"cannot read rated file {path}: no such file")


def _issue(close: ClosedCycle, paths: DocumentPaths, register: InvoiceRegister | None, as_of: date | None,
           accounts: AccountMap, prepaid: PrepaidBook | None, files: AtomicOutputs) -> IssueOutcome | None:
    """Issue and write one customer's documents and print its summary; None (error printed) when it failed."""
    if close.error is not None or close.draft is None:
        click.echo(f"warp: error: {close.plan.customer_id} {close.cycle.label}: {close.error}", err=True)
        return None
    try:
        entries = prepaid.entries(close.plan) if prepaid is not None else None
        outcome = publish(close.draft, paths, register=register, as_of=as_of, accounts=accounts,
                          ledger_entries=entries, writer=files.write)
    except (BillingError, PrepaidBookError) as exc:
        click.echo(f"warp: error: {close.plan.customer_id} {close.cycle.label}: {exc}", err=True)
        return None
    click.echo(_summary(close, outcome))
    return outcome


def _post_debits(prepaid: PrepaidBook, outcome: IssueOutcome, close: ClosedCycle) -> int:
    """Post a statement's debits (a credit note of an earlier one gives its debits back first); failures."""
    failures = 0
    for document in (outcome.credit_note, outcome.invoice):
        if document is None:
            continue
        try:
            click.echo(prepaid.post(document, close.plan))
        except PrepaidBookError as exc:
            failures += 1
            click.echo(f"warp: error: {close.plan.customer_id} {close.cycle.label}: {exc}", err=True)
    return failures


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


def _seller(path: str | None) -> dict | None:
    if path is None:
        return None
    try:
        return load_seller(path).to_record()
    except PlanError as exc:
        raise fail(f"seller profile {exc}") from None


class PrepaidBookError(Exception):
    """The ledger or balance store could not be used for a prepaid statement."""


class PrepaidBook:
    """Prepaid customers' ledger (for the statement box) and balance (for statement debits).

    Built from the settings (``bootstrap.container()``), like `warp balance`: the same stores
    the charging functions use.
    """

    def __init__(self) -> None:
        self._container = bootstrap.container()

    def entries(self, plan: Plan) -> list | None:
        if plan.billing != "prepaid":
            return None
        try:
            return self._container.prepaid_statements.ledger_entries(plan.customer_id)
        except Exception as exc:    # any store's errors: named, no stack trace
            raise PrepaidBookError(f"cannot read the ledger of {plan.customer_id}: {exc}") from None

    def post(self, statement: Invoice, plan: Plan) -> str:
        try:
            posted = self._container.prepaid_statements.post(statement, plan)
        except Exception as exc:
            raise PrepaidBookError(f"statement {statement.number}: debits not all posted ({exc}); "
                                   "run the same close again (it is idempotent by statement line)") from None
        balance = ""
        if posted.balance_micros is not None:
            balance = f"; balance {format_amount(from_micros(posted.balance_micros))}"
        return (f"{statement.customer_id} {statement.number}: {posted.booked} statement debit(s) posted, "
                f"{posted.already_booked} already posted{balance}")


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


invoice.add_command(show)

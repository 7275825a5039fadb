"""Cycle close: one pass over rated usage, then an invoice per customer, issued and written.

``close_cycles`` is the service behind ``warp invoice``: it reads the rated file once for
every plan given (each customer in its own zone and anchor), builds the draft invoices,
and reports per customer either a draft or the error that stopped it (a missing USF
factor stops that customer's invoice, not the others'). ``publish`` issues a draft in a
register (when one is used) and writes the JSON, the HTML, the PDF and the journal.

A prepaid customer's draft is a statement; given the customer's ledger entries, ``publish``
adds its balance box (``prepaid_statement.statement_box``) before issuing it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from ..plan import Plan
from ..ports import LedgerEntry, TaxEngine
from .cycles import BillingCycle, plan_cycle
from .errors import BillingError
from .invoice import STATEMENT, Invoice, build_invoice
from .invoice_store import ISSUED_NEW, InvoiceRegister, IssueOutcome
from .prepaid_statement import statement_box
from .rated_file import scan_rated_file
from .render_html import render_invoice_html
from .render_pdf import render_invoice_pdf
from .revenue_recognition import AccountMap, journal_record
from .usage_lines import CustomerUsage, ScanReport, UsageWindow


@dataclass(frozen=True)
class ClosedCycle:
    """One customer's close: the draft invoice, or the error that prevented it."""

    plan: Plan
    cycle: BillingCycle
    usage: CustomerUsage
    draft: Invoice | None = None
    error: BillingError | None = None


def close_cycles(
    plans: Sequence[Plan], rated_path: str | Sequence[str], period: str, *, taxes: TaxEngine, jobs: int | None = None,
    seller: Mapping[str, Any] | None = None, prefer: str | None = None,
) -> tuple[list[ClosedCycle], ScanReport]:
    """Close ``period`` for every plan from one streaming pass over the rated file(s).

    Each event_id counts once over all the files (``rated_file``). The report carries
    warnings for what an operator must see: rated lines of customers without a plan, and a
    plan that matched no line of a non-empty file (a wrong file, or a customer_id typo).
    """
    cycles: dict[str, BillingCycle] = {}
    for plan in plans:
        if plan.customer_id in cycles:
            raise BillingError(f"two plans for customer {plan.customer_id}")
        cycles[plan.customer_id] = plan_cycle(plan, period)
    windows = {customer: UsageWindow.for_cycle(customer, cycle) for customer, cycle in cycles.items()}
    scan = scan_rated_file(rated_path, windows, jobs, prefer=prefer)
    unplanned = scan.report.unplanned_summary()
    if unplanned:
        scan.report.warnings.append(unplanned)
    if scan.report.lines - scan.report.blank > 0:
        for plan in plans:
            seen = scan.usage[plan.customer_id]
            if not seen.events and not seen.rejected and not seen.outside_period:
                scan.report.warnings.append(f"plan {plan.customer_id} matches no line of the rated file(s); "
                                            "its invoice has no usage")
    closed = []
    for plan in plans:
        cycle = cycles[plan.customer_id]
        usage = scan.usage[plan.customer_id]
        try:
            closed.append(ClosedCycle(plan, cycle, usage, draft=build_invoice(plan, cycle, usage, taxes, seller)))
        except BillingError as error:
            closed.append(ClosedCycle(plan, cycle, usage, error=error))
    return closed, scan.report


@dataclass(frozen=True)
class DocumentPaths:
    """Where one document's files go (None = not written)."""

    json: Path
    html: Path | None
    journal: Path | None
    pdf: Path | None = None

    @classmethod
    def beside(cls, json_path: Path, *, html: bool = True, journal: bool = True, pdf: bool = False) -> DocumentPaths:
        """``X.json`` with ``X.html``, ``X.pdf`` and ``X.journal.json`` next to it."""
        stem = json_path.with_suffix("") if json_path.suffix == ".json" else json_path
        return cls(json_path, stem.with_name(stem.name + ".html") if html else None,
                   stem.with_name(stem.name + ".journal.json") if journal else None,
                   stem.with_name(stem.name + ".pdf") if pdf else None)

    def for_credit_note(self) -> DocumentPaths:
        stem = self.json.with_suffix("") if self.json.suffix == ".json" else self.json
        return DocumentPaths.beside(stem.with_name(stem.name + ".credit-note.json"),
                                    html=self.html is not None, journal=self.journal is not None,
                                    pdf=self.pdf is not None)


Writer = Callable[[Path, bytes], None]


def publish(
    draft: Invoice, paths: DocumentPaths, *, register: InvoiceRegister | None = None, as_of: date | None = None,
    accounts: AccountMap = AccountMap(), ledger_entries: Iterable[LedgerEntry] | None = None,
    writer: Writer | None = None,
) -> IssueOutcome:
    """Issue ``draft`` in ``register`` (if any) and write the resulting documents' files.

    ``ledger_entries`` (a prepaid customer's ledger) give a statement its balance box.
    ``writer(path, data)`` writes one file (the CLI passes an atomic temporary-and-rename one).
    """
    if draft.document_type == STATEMENT and ledger_entries is not None:
        draft = replace(draft, statement=statement_box(draft, ledger_entries))
    outcome = register.issue(draft, as_of=as_of) if register is not None else IssueOutcome(ISSUED_NEW, draft)
    write_document(outcome.invoice, paths, accounts, writer)
    if outcome.credit_note is not None:
        write_document(outcome.credit_note, paths.for_credit_note(), accounts, writer)
    return outcome


def write_document(document: Invoice, paths: DocumentPaths, accounts: AccountMap = AccountMap(),
                   writer: Writer | None = None) -> None:
    """The document's JSON, and its HTML and journal where asked."""
    write = writer or _plain_write
    _write(write, paths.json, orjson.dumps(document.to_record(), option=orjson.OPT_INDENT_2) + b"\n")
    if paths.html is not None or paths.pdf is not None:
        html = render_invoice_html(document)
        if paths.html is not None:
            _write(write, paths.html, html.encode("utf-8"))
        if paths.pdf is not None:
            _write(write, paths.pdf, render_invoice_pdf(html))
    if paths.journal is not None:
        _write(write, paths.journal,
               orjson.dumps(journal_record(document, accounts), option=orjson.OPT_INDENT_2) + b"\n")


def _plain_write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _write(write: Writer, path: Path, data: bytes) -> None:
    try:
        if not path.parent.is_dir():   # a stat: mkdir of an existing folder costs a locked lookup per file
            path.parent.mkdir(parents=True, exist_ok=True)
        write(path, data)
    except OSError as exc:
        raise BillingError(f"cannot write {path}: {exc.strerror}") from None

"""Cycle close: one pass over rated usage, then an invoice per customer, issued and written.

``close_cycles`` is the service behind ``warp invoice``: it reads the rated file once for
every plan given (each customer in its own zone and anchor), builds the draft invoices,
and reports per customer either a draft or the error that stopped it (a missing USF
factor stops that customer's invoice, not the others'). ``publish`` issues a draft in a
register (when one is used) and writes the JSON, the HTML and the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson

from ..plan import Plan
from ..ports import TaxEngine
from .cycles import BillingCycle, plan_cycle
from .errors import BillingError
from .invoice import Invoice, build_invoice
from .invoice_store import ISSUED_NEW, InvoiceRegister, IssueOutcome
from .rated_file import scan_rated_file
from .render_html import render_invoice_html
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
    plans: Sequence[Plan], rated_path: str, period: str, *, taxes: TaxEngine, jobs: int | None = None
) -> tuple[list[ClosedCycle], ScanReport]:
    """Close ``period`` for every plan from one streaming pass over ``rated_path``."""
    cycles: dict[str, BillingCycle] = {}
    for plan in plans:
        if plan.customer_id in cycles:
            raise BillingError(f"two plans for customer {plan.customer_id}")
        cycles[plan.customer_id] = plan_cycle(plan, period)
    windows = {customer: UsageWindow.for_cycle(customer, cycle) for customer, cycle in cycles.items()}
    scan = scan_rated_file(rated_path, windows, jobs)
    closed = []
    for plan in plans:
        cycle = cycles[plan.customer_id]
        usage = scan.usage[plan.customer_id]
        try:
            closed.append(ClosedCycle(plan, cycle, usage, draft=build_invoice(plan, cycle, usage, taxes)))
        except BillingError as error:
            closed.append(ClosedCycle(plan, cycle, usage, error=error))
    return closed, scan.report


@dataclass(frozen=True)
class DocumentPaths:
    """Where one document's files go (None = not written)."""

    json: Path
    html: Path | None
    journal: Path | None

    @classmethod
    def beside(cls, json_path: Path, *, html: bool = True, journal: bool = True) -> DocumentPaths:
        """``X.json`` with ``X.html`` and ``X.journal.json`` next to it."""
        stem = json_path.with_suffix("") if json_path.suffix == ".json" else json_path
        return cls(json_path, stem.with_name(stem.name + ".html") if html else None,
                   stem.with_name(stem.name + ".journal.json") if journal else None)

    def for_credit_note(self) -> DocumentPaths:
        stem = self.json.with_suffix("") if self.json.suffix == ".json" else self.json
        return DocumentPaths.beside(stem.with_name(stem.name + ".credit-note.json"),
                                    html=self.html is not None, journal=self.journal is not None)


def publish(
    draft: Invoice, paths: DocumentPaths, *, register: InvoiceRegister | None = None, as_of: date | None = None,
    accounts: AccountMap = AccountMap(),
) -> IssueOutcome:
    """Issue ``draft`` in ``register`` (if any) and write the resulting documents' files."""
    outcome = register.issue(draft, as_of=as_of) if register is not None else IssueOutcome(ISSUED_NEW, draft)
    write_document(outcome.invoice, paths, accounts)
    if outcome.credit_note is not None:
        write_document(outcome.credit_note, paths.for_credit_note(), accounts)
    return outcome


def write_document(document: Invoice, paths: DocumentPaths, accounts: AccountMap = AccountMap()) -> None:
    """The document's JSON, and its HTML and journal where asked."""
    _write(paths.json, orjson.dumps(document.to_record(), option=orjson.OPT_INDENT_2) + b"\n")
    if paths.html is not None:
        _write(paths.html, render_invoice_html(document).encode("utf-8"))
    if paths.journal is not None:
        _write(paths.journal, orjson.dumps(journal_record(document, accounts), option=orjson.OPT_INDENT_2) + b"\n")


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise BillingError(f"cannot write {path}: {exc.strerror}") from None

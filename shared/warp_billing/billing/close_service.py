"""The cycle close as a service: plans and ports in, issued documents and a run summary out.

``CycleCloser.close`` is what `warp close` and the ``rollup`` function's ``cycle_close`` task
run, against whatever adapters the settings chose (rated JSONL file or BigQuery; file or
Firestore register; folder or Cloud Storage documents). Per run:

1. each customer's window: its cycle (zone, anchor day), the watermark (the one the register
   recorded for the cycle, so a retry bills exactly what the first attempt billed; else now
   minus ``watermark_lag``) and the previous cycle's watermark (late usage after it is billed);
2. ONE request to the usage source for every customer (BigQuery: one aggregation query);
3. per customer, independently (one failure never stops the others): the draft invoice (same
   billing code as `warp invoice`, plus prior-period lines for late usage), the issue in the
   register (with its ERP outbox documents), the rendered documents in the document store,
   the announcement on the invoices topic, and the conservation check;
4. one ``cycle_runs`` row per customer, and a summary.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import quote

import orjson

from ..plan import Plan
from ..ports import (
    CloseRegister,
    CloseRunLog,
    DocumentStore,
    InvoicePublisher,
    PrepaidStatements,
    RatedUsageSource,
    TaxEngine,
)
from ..timeutil import UTC
from .amounts import cents
from .close_usage import CloseUsage, CloseWindow, UsageBatch, check_group
from .cycles import BillingCycle, cycle_for, plan_cycle
from .erp_outbox import customer_document
from .errors import BillingError
from .invoice import STATEMENT, USAGE, InvoiceLine, build_invoice
from .invoice_store import IssueOutcome
from .prepaid_statement import statement_box
from .render_html import render_invoice_html
from .revenue_recognition import AccountMap, journal_record
from .usage_lines import CustomerUsage, kinds, ordered_groups, usage_line

log = logging.getLogger(__name__)

ALREADY_ISSUED = "already_issued"
FAILED = "failed"


@dataclass(frozen=True)
class CustomerClose:
    """The outcome of one customer's close (one ``cycle_runs`` row)."""

    customer_id: str
    period: str
    status: str
    number: str | None = None
    credit_note: str | None = None
    subtotal: Decimal | None = None
    fees_total: Decimal | None = None
    total: Decimal | None = None
    currency: str | None = None
    events: int = 0
    late_events: int = 0
    usage_amount: Decimal | None = None
    rated_amount: Decimal | None = None
    rated_events: int | None = None
    conserved: bool | None = None
    watermark: datetime | None = None
    references: tuple[str, ...] = ()
    error: str | None = None

    def to_row(self, run_id: str, started_at: datetime, finished_at: datetime) -> dict[str, Any]:
        """The ``cycle_runs`` row (money as decimal strings, instants ISO 8601 UTC)."""
        def money(value: Decimal | None) -> str | None:
            return None if value is None else format(value, "f")

        return {
            "run_id": run_id, "run_date": started_at.date().isoformat(), "customer_id": self.customer_id,
            "period": self.period, "status": self.status, "document_number": self.number,
            "credit_note_number": self.credit_note, "subtotal": money(self.subtotal),
            "fees_total": money(self.fees_total), "total": money(self.total), "currency": self.currency,
            "events": self.events, "late_events": self.late_events, "usage_amount": money(self.usage_amount),
            "rated_amount": money(self.rated_amount), "rated_events": self.rated_events,
            "conservation_ok": self.conserved,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "documents": list(self.references), "error": self.error,
            "started_at": started_at.isoformat(), "finished_at": finished_at.isoformat(),
        }


@dataclass
class CloseRun:
    """A close run: every customer's outcome and what the source returned."""

    run_id: str
    closes: list[CustomerClose] = field(default_factory=list)
    rows_returned: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    run_log_error: str | None = None

    @property
    def failed(self) -> list[CustomerClose]:
        return [close for close in self.closes if close.status == FAILED]

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for close in self.closes:
            counts[close.status] = counts.get(close.status, 0) + 1
        return {
            "run_id": self.run_id, "customers": len(self.closes), "by_status": counts,
            "rows_returned": self.rows_returned, "run_log_error": self.run_log_error,
            "conservation_failures": [c.customer_id for c in self.closes if c.conserved is False],
            "failed": [{"customer_id": c.customer_id, "period": c.period, "error": c.error} for c in self.failed],
            "closes": self.rows,
        }


@dataclass(frozen=True)
class CloseTarget:
    """A customer and the cycle to close (the period names the month the cycle starts in)."""

    plan: Plan
    period: str


class CycleCloser:
    """Closes cycles through the ports (see the module docstring)."""

    def __init__(self, source: RatedUsageSource, register: CloseRegister, documents: DocumentStore,
                 publisher: InvoicePublisher, run_log: CloseRunLog, taxes: TaxEngine, *,
                 accounts: AccountMap | None = None, watermark_lag: timedelta = timedelta(minutes=10),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), html: bool = True, workers: int = 8,
                 prepaid: PrepaidStatements | None = None, pdf: Callable[[str], bytes] | None = None):
        """``prepaid``: the ledger and balances of prepaid customers, whose statements then carry the
        balance box and have their recurring charges and fees debited from the balance (without
        it a statement is issued as `warp invoice` issues it without ``--prepaid-ledger``).
        ``pdf``: HTML page -> PDF bytes (``render_pdf.render_invoice_pdf``); each document's PDF is
        then stored beside its HTML, as `warp invoice` writes it (None: no PDF)."""
        self.source, self.register, self.documents = source, register, documents
        self.prepaid = prepaid
        self.publisher, self.run_log, self.taxes = publisher, run_log, taxes
        self.accounts = accounts or AccountMap()
        self.watermark_lag, self.clock, self.html, self.pdf = watermark_lag, clock, html, pdf
        self.workers = workers

    def close(self, targets: Sequence[CloseTarget], *, rebill: bool = False, as_of: date | None = None,
              failed_plans: Mapping[str, str] | None = None, run_id: str | None = None) -> CloseRun:
        """Close every target; ``failed_plans`` (customer -> reason) are recorded as failed closes."""
        run = CloseRun(run_id or uuid.uuid4().hex)
        started = self.clock()
        closes: list[CustomerClose] = [CustomerClose(customer, "", FAILED, error=reason)
                                       for customer, reason in (failed_plans or {}).items()]
        windows: list[tuple[CloseTarget, CloseWindow]] = []
        for target in targets:
            try:
                windows.append((target, self._window(target, started)))
            except BillingError as error:
                closes.append(CustomerClose(target.plan.customer_id, target.period, FAILED, error=str(error)))
        try:
            batch = self.source.close_usage([window for _, window in windows]) if windows else UsageBatch({})
        except BillingError as error:  # the source itself failed (unreadable file): every close fails, named
            batch = UsageBatch({}, failures={window.customer_id: error for _, window in windows})
        run.rows_returned = batch.rows_returned
        # Each customer's issue, storage and announcement wait on the network, not the CPU: a few run
        # at once (results kept in target order, so the run's rows do not depend on timing).
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            closes.extend(pool.map(lambda item: self._close_one(item[0], item[1], batch, rebill=rebill, as_of=as_of),
                                   windows))
        finished = self.clock()
        run.closes = closes
        run.rows = [close.to_row(run.run_id, started, finished) for close in closes]
        try:
            self.run_log.record(run.rows)
        except Exception as error:  # noqa: BLE001 - the documents are issued; say the log failed, loudly
            run.run_log_error = f"{type(error).__name__}: {error}"
            log.error("cycle_runs rows not written", extra={"run_id": run.run_id, "error": run.run_log_error})
        log.info("cycle close run finished", extra={"run_id": run.run_id, "customers": len(closes),
                                                    "failed": len(run.failed), "rows_returned": run.rows_returned})
        return run

    def _window(self, target: CloseTarget, now: datetime) -> CloseWindow:
        plan = target.plan
        cycle = plan_cycle(plan, target.period)
        if cycle.ends_at + self.watermark_lag > now:
            raise BillingError(f"{plan.customer_id} {cycle.label}: the cycle has not ended "
                               f"(ends {cycle.ends_at.isoformat()}, closes after {self.watermark_lag} more)")
        watermark = self.register.cycle_watermark(plan.customer_id, cycle.label) or (now - self.watermark_lag)
        previous = _previous_label(cycle)
        return CloseWindow(plan.customer_id, cycle, watermark,
                           self.register.cycle_watermark(plan.customer_id, previous))

    def _close_one(self, target: CloseTarget, window: CloseWindow, batch: UsageBatch, *, rebill: bool,
                   as_of: date | None) -> CustomerClose:
        customer, label = window.customer_id, window.cycle.label
        usage = batch.usage.get(customer) or CloseUsage(customer, CustomerUsage(customer))
        base = CustomerClose(customer, label, FAILED, events=usage.events, late_events=usage.late_events,
                             usage_amount=usage.billed_amount, rated_amount=usage.rated_amount,
                             rated_events=usage.rated_events, conserved=usage.conserved, watermark=window.watermark)
        try:
            if customer in batch.failures:
                raise batch.failures[customer]
            draft = build_invoice(target.plan, window.cycle, usage.current, self.taxes,
                                  extra_lines=prior_period_lines(target.plan, usage.prior))
            if draft.document_type == STATEMENT and self.prepaid is not None:
                draft = replace(draft, statement=statement_box(draft, self.prepaid.ledger_entries(customer)))
            issued_at = self.clock().isoformat()
            outcome = self.register.issue_close(
                draft, watermark=window.watermark, customer=customer_document(target.plan, issued_at),
                accounts=self.accounts, as_of=as_of, rebill=rebill)
            references = self._store(outcome)
            self.publisher.publish(announcement(outcome))
            self._post_statement(outcome, target.plan)
        except Exception as error:  # noqa: BLE001 - one customer's failure must not stop the others
            log.error("cycle close failed", extra={"customer_id": customer, "period": label, "error": str(error)},
                      exc_info=not isinstance(error, BillingError))
            return replace(base, error=f"{type(error).__name__}: {error}")
        invoice = outcome.invoice
        if usage.conserved is False:
            log.error("conservation check failed", extra={
                "customer_id": customer, "period": label, "billed": str(usage.billed_amount),
                "rated": str(usage.rated_amount), "events": usage.events, "rated_events": usage.rated_events})
        return replace(base, status=outcome.outcome, number=invoice.number,
                       credit_note=outcome.credit_note.number if outcome.credit_note else None,
                       subtotal=invoice.subtotal, fees_total=invoice.fees_total, total=invoice.total,
                       currency=invoice.currency, references=tuple(references))

    def _post_statement(self, outcome: IssueOutcome, plan: Plan) -> None:
        """Debit a prepaid statement's charges from the balance (a credit note's first give the
        earlier statement's back). Idempotent by statement line, so it runs on every close of the
        cycle, an "already issued" one included: a re-run completes a posting a crash cut short.
        A failure fails this customer's close (the statement stays issued; re-run it)."""
        if self.prepaid is None:
            return
        for document in (outcome.credit_note, outcome.invoice):
            if document is not None and document.number is not None and document.billing == "prepaid":
                try:
                    self.prepaid.post(document, plan)
                except Exception as error:
                    raise BillingError(f"statement {document.number} issued, but its debits were not all posted "
                                       f"({type(error).__name__}: {error}); close the cycle again to complete "
                                       "them (idempotent by statement line)") from error

    def _store(self, outcome: IssueOutcome) -> list[str]:
        references = []
        for document in (outcome.invoice, outcome.credit_note):
            if document is None:
                continue
            stem = document_stem(document.customer_id, document.cycle.label, str(document.number))
            record = orjson.dumps(document.to_record(), option=orjson.OPT_INDENT_2) + b"\n"
            references.append(self.documents.put(stem + ".json", record, "application/json"))
            if self.html or self.pdf is not None:
                page = render_invoice_html(document)
                if self.html:
                    references.append(self.documents.put(stem + ".html", page.encode("utf-8"),
                                                         "text/html; charset=utf-8"))
                if self.pdf is not None:   # a PdfUnavailable fails this customer's close, named; re-run it
                    references.append(self.documents.put(stem + ".pdf", self.pdf(page), "application/pdf"))
            journal = orjson.dumps(journal_record(document, self.accounts), option=orjson.OPT_INDENT_2) + b"\n"
            references.append(self.documents.put(stem + ".journal.json", journal, "application/json"))
        return references


def document_stem(customer_id: str, period: str, number: str) -> str:
    """Where a document's files go: <customer>/<period>/<number> (escaped for paths and object names)."""
    return "/".join(quote(part, safe="") for part in (customer_id, period, number))


def prior_period_lines(plan: Plan, prior: Mapping[str, CustomerUsage]) -> list[InvoiceLine]:
    """Late usage of earlier cycles: one line per cycle and product, naming its service period.

    Priced at the exact sum of its per-event amounts, rounded once to cents; the closed cycle's
    tiers and commitment are not reopened (that cycle's document stands).
    """
    lines = []
    for label in sorted(prior):
        cycle = cycle_for(label, timezone=plan.timezone, anchor_day=plan.terms.anchor_day)
        usage = prior[label]
        for kind in kinds():
            for sub, totals in ordered_groups(usage, kind):
                check_group(kind, sub)
                priced = usage_line(kind, sub, totals)
                details: list[tuple[str, object]] = [("events", priced.events), ("service_period", label),
                                                     ("prior_period", True)]
                if priced.billed_seconds is not None:
                    details.append(("billed_seconds", priced.billed_seconds))
                lines.append(InvoiceLine(
                    priced.sku, f"{priced.description} (service period {label})", Fraction(priced.quantity),
                    priced.unit, cents(totals.amount), USAGE, cycle.start, cycle.end, tuple(details)))
    return lines


def _previous_label(cycle: BillingCycle) -> str:
    year, month = cycle.start.year, cycle.start.month
    index = year * 12 + month - 2
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def announcement(outcome: IssueOutcome) -> dict[str, Any]:
    invoice = outcome.invoice
    return {
        "invoice_number": invoice.number, "customer_id": invoice.customer_id, "billing_period": invoice.cycle.label,
        "outcome": outcome.outcome, "total": format(invoice.total, "f"), "currency": invoice.currency,
        "credit_note_number": outcome.credit_note.number if outcome.credit_note else None,
        "replaces": invoice.replaces, "document_type": invoice.document_type,
        "issue_date": invoice.issue_date.isoformat(), "due_date": invoice.due_date.isoformat(),
    }


def due_periods(plan: Plan, now: datetime, lag: timedelta, back: int = 2) -> list[str]:
    """The latest ``back`` cycles of ``plan`` that have ended (plus the lag) by ``now``, oldest first."""
    local = now.astimezone(plan.zone).date()
    index = local.year * 12 + local.month - 1
    found = []
    for offset in range(0, back + 2):
        step = index - offset
        label = f"{step // 12:04d}-{step % 12 + 1:02d}"
        if plan_cycle(plan, label).ends_at + lag <= now:
            found.append(label)
        if len(found) == back:
            break
    return sorted(found)


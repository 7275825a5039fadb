"""Revenue recognition: the journal entries an invoice implies, ready to post to an ERP.

* The invoice entry debits receivables with the total and credits each line's revenue
  account (negative lines, such as rebates and discounts, become debits) and each fee's
  liability account. Usage, volume pricing, commitments and recurring charges for the
  invoiced cycle are recognized in the cycle: the entry is dated the cycle's last day.
  A correction (a credit note, or a rebill issued after the cycle closed) is dated its
  issue date, since the cycle's books may be closed.
* Recurring charges billed in advance are credited to deferred revenue, then recognized
  ratably by day over their service period: one entry per calendar month the service
  touches (dated that month's last service day), debiting deferred revenue and crediting
  recurring revenue. Slices are rounded cumulatively so they add up to the line exactly.

* A prepaid customer's statement (and a credit note of one) draws on customer deposits
  (``customer_deposits``, a liability: the balance paid in advance) instead of receivables:
  its usage, charges and fees were paid from the prepaid balance, so nothing is receivable.

Every entry balances (debits = credits) by construction; ``JournalEntry.balanced`` checks
it. Account codes come from an ``AccountMap`` with conventional defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ..products import products
from .amounts import cents, exact, money_text
from .commitments import SHORTFALL_SKU
from .errors import BillingError
from .invoice import COMMITMENT, CREDIT_NOTE, DISCOUNT, STATEMENT, Invoice, InvoiceLine
from .recurring import ADVANCE

ZERO_CENTS = Decimal("0.00")


@dataclass(frozen=True)
class AccountMap:
    """General-ledger account codes (override any of them from a YAML/JSON mapping)."""

    receivable: str = "1200"
    customer_deposits: str = "2200"
    deferred_revenue: str = "2400"
    voice_revenue: str = "4000"
    messaging_revenue: str = "4010"
    api_revenue: str = "4020"
    commitment_revenue: str = "4030"
    recurring_revenue: str = "4100"
    discounts_and_rebates: str = "4900"
    e911_payable: str = "2310"
    usf_payable: str = "2320"
    taxes_payable: str = "2300"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AccountMap:
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BillingError(f"unknown account keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{key: str(value) for key, value in values.items()})

    def for_line(self, line: InvoiceLine) -> str:
        """The account a line's amount is credited to (debited when negative)."""
        if line.category == ADVANCE:
            return self.deferred_revenue
        if line.category == COMMITMENT:
            return self.commitment_revenue if line.sku == SHORTFALL_SKU else self.discounts_and_rebates
        if line.category == DISCOUNT:
            return self.discounts_and_rebates
        if line.category.startswith("recurring"):
            return self.recurring_revenue
        for item in products():
            if line.sku.startswith(item.sku_prefix + "-"):
                return str(getattr(self, item.revenue_account))
        return self.recurring_revenue

    def for_fee(self, hint: str) -> str:
        return {"e911": self.e911_payable, "usf": self.usf_payable}.get(hint, self.taxes_payable)


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One side of a posting; exactly one of debit and credit is non-zero."""

    account: str
    debit: Decimal
    credit: Decimal
    memo: str

    def to_record(self) -> dict[str, Any]:
        side = {"debit": money_text(self.debit)} if self.debit else {"credit": money_text(self.credit)}
        return {"account": self.account, **side, "memo": self.memo}


@dataclass(frozen=True)
class JournalEntry:
    """A balanced journal entry."""

    date: date
    memo: str
    reference: str
    lines: tuple[JournalLine, ...]

    @property
    def debits(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO_CENTS)

    @property
    def credits(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO_CENTS)

    @property
    def balanced(self) -> bool:
        return self.debits == self.credits

    def to_record(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "memo": self.memo, "reference": self.reference,
                "lines": [line.to_record() for line in self.lines],
                "debits": money_text(self.debits), "credits": money_text(self.credits)}


class _Posting:
    """Net amounts per account (positive = credit), kept in first-seen order."""

    def __init__(self) -> None:
        self.amounts: dict[str, Decimal] = {}
        self.memos: dict[str, list[str]] = {}

    def credit(self, account: str, amount: Decimal, memo: str) -> None:
        self.amounts[account] = self.amounts.get(account, ZERO_CENTS) + amount
        names = self.memos.setdefault(account, [])
        if memo not in names:
            names.append(memo)

    def lines(self) -> tuple[JournalLine, ...]:
        result = []
        for account, amount in self.amounts.items():
            if amount == 0:
                continue
            memo = ", ".join(self.memos[account])
            if amount > 0:
                result.append(JournalLine(account, ZERO_CENTS, amount, memo))
            else:
                result.append(JournalLine(account, -amount, ZERO_CENTS, memo))
        return tuple(result)


def posting_date(invoice: Invoice) -> date:
    """The cycle's last day for a regular close; the issue date for a correction."""
    if invoice.document_type == CREDIT_NOTE or invoice.issue_date > invoice.cycle.issue_date:
        return invoice.issue_date
    return invoice.cycle.last_day


def journal_entries(invoice: Invoice, accounts: AccountMap = AccountMap()) -> list[JournalEntry]:
    """The invoice entry followed by the recognition entries of advance-billed charges."""
    reference = invoice.number or f"{invoice.customer_id}-{invoice.cycle.label}-draft"
    kind = {CREDIT_NOTE: "Credit note", STATEMENT: "Statement"}.get(invoice.document_type, "Invoice")
    posting = _Posting()
    if invoice.billing == "prepaid":     # paid from the prepaid balance: draw on deposits, nothing receivable
        posting.credit(accounts.customer_deposits, -invoice.total, "customer deposits")
    else:
        posting.credit(accounts.receivable, -invoice.total, "receivable")
    for line in invoice.lines:
        posting.credit(accounts.for_line(line), line.amount, line.sku)
    for fee in invoice.fees:
        posting.credit(accounts.for_fee(fee.account_hint), fee.amount, fee.code)
    entries = [JournalEntry(posting_date(invoice), f"{kind} {reference} {invoice.customer_id} {invoice.cycle.label}",
                            reference, posting.lines())]
    entries.extend(_recognition_entries(invoice, accounts, reference))
    return entries


def _recognition_entries(invoice: Invoice, accounts: AccountMap, reference: str) -> list[JournalEntry]:
    by_date: dict[date, _Posting] = {}
    earliest = posting_date(invoice)
    for line in invoice.lines:
        if line.category != ADVANCE or line.amount == 0:
            continue
        for when, amount in ratable_slices(line.amount, line.service_start, line.service_end):
            posting = by_date.setdefault(max(when, earliest), _Posting())
            posting.credit(accounts.deferred_revenue, -amount, f"{line.sku} deferred")
            posting.credit(accounts.recurring_revenue, amount, f"{line.sku} recognized")
    return [
        JournalEntry(when, f"Recognize advance-billed charges of {reference}", reference, posting.lines())
        for when, posting in sorted(by_date.items())
    ]


def ratable_slices(amount: Decimal, start: date, end: date) -> list[tuple[date, Decimal]]:
    """``amount`` spread by day over ``[start, end)``, one slice per calendar month.

    Each slice is dated the last service day of its month. Slices are the differences of
    the cumulative amounts rounded to cents, so they sum to ``amount`` exactly.
    """
    total_days = (end - start).days
    if total_days <= 0:
        raise BillingError(f"service period {start} to {end} has no days")
    slices = []
    recognized = ZERO_CENTS
    day = start
    while day < end:
        next_month = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        slice_end = min(next_month, end)
        elapsed = (slice_end - start).days
        to_date = cents(exact(amount) * Fraction(elapsed, total_days))
        slices.append((slice_end - timedelta(days=1), to_date - recognized))
        recognized = to_date
        day = slice_end
    return slices


def journal_record(invoice: Invoice, accounts: AccountMap = AccountMap()) -> dict[str, Any]:
    """The journal of one invoice as JSON-ready data."""
    entries = journal_entries(invoice, accounts)
    return {
        "document_type": invoice.document_type,
        "invoice_number": invoice.number,
        "customer_id": invoice.customer_id,
        "billing_period": invoice.cycle.label,
        "currency": invoice.currency,
        "entries": [entry.to_record() for entry in entries],
        "balanced": all(entry.balanced for entry in entries),
    }

"""A prepaid customer's monthly statement: its balance box and the debits its lines post.

A prepaid customer is not invoiced: its usage was drawn from its balance event by event
(the real-time charging writes a ``debit`` ledger entry per event), so its month closes into
a statement (``invoice.STATEMENT``, nothing due) whose journal draws on customer deposits.
Recurring charges and fees are not charged in real time: the statement debits them from
the balance, one ledger entry per statement line, with the entry id
``statement:<STATEMENT NUMBER>:<line>`` so posting a statement twice moves nothing twice.

The box is worked out from the persisted ledger (the balances' source of truth):

* opening balance: every entry before the cycle's first instant, except debits posted by
  statements of this or later cycles (those are dated when the close ran, after their cycle);
  debits posted by earlier cycles' statements count whenever they were posted;
* top-ups and payments (``topup``, ``auto_recharge``) and adjustments inside the cycle;
* usage drawn: the ``debit`` entries inside the cycle (shown beside the usage on the
  statement's lines; a difference means events rated but not charged, or the reverse);
* charges drawn: this statement's recurring lines and fees;
* closing balance = opening + top-ups + adjustments - usage drawn - charges drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..money import from_micros, to_micros
from ..ports import LedgerEntry
from ..timeutil import UTC, parse_instant
from .amounts import money_text
from .invoice import USAGE, Invoice

STATEMENT_ENTRY_PREFIX = "statement:"
TOPUP_KINDS = ("topup", "auto_recharge")
ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class StatementDebit:
    """One ledger debit a statement line posts (amount positive; the entry is negative).

    A credit note's lines are negative amounts: its entries give the debits back.
    """

    entry_id: str
    amount: Decimal
    reference: str

    @property
    def amount_micros(self) -> int:
        return -to_micros(self.amount)


def statement_debits(statement: Invoice) -> list[StatementDebit]:
    """The debits of a numbered statement: its non-usage lines and its fees, by line number.

    For the credit note of a statement the amounts are negative: the same lines given back.
    """
    if statement.number is None:
        raise ValueError("a statement is numbered (issued) before its debits are posted")
    debits = []
    period = statement.cycle.label
    for position, line in enumerate(statement.lines, start=1):
        if line.category != USAGE and line.amount != 0:
            debits.append(StatementDebit(f"{STATEMENT_ENTRY_PREFIX}{statement.number}:{position}", line.amount,
                                         f"period={period} {line.sku}"))
    for position, fee in enumerate(statement.fees, start=len(statement.lines) + 1):
        if fee.amount != 0:
            debits.append(StatementDebit(f"{STATEMENT_ENTRY_PREFIX}{statement.number}:{position}", fee.amount,
                                         f"period={period} {fee.code}"))
    return debits


def _statement_period(entry: LedgerEntry) -> str | None:
    if not entry.entry_id.startswith(STATEMENT_ENTRY_PREFIX):
        return None
    for word in entry.reference.split():
        if word.startswith("period="):
            return word.removeprefix("period=")
    return ""


def statement_box(statement: Invoice, entries: Iterable[LedgerEntry]) -> dict[str, Any]:
    """The balance box of ``statement`` from the customer's ledger entries (see the module docstring)."""
    cycle = statement.cycle
    starts, ends = cycle.starts_at, cycle.ends_at
    opening = topups = adjustments = drawn = ZERO
    for entry in entries:
        amount = from_micros(entry.amount_micros)
        period = _statement_period(entry)
        if period is not None:
            if period < cycle.label:        # YYYY-MM labels sort as dates
                opening += amount
            continue
        at = _instant(entry.at)
        if at < starts:
            opening += amount
        elif at < ends:
            if entry.kind in TOPUP_KINDS:
                topups += amount
            elif entry.kind == "debit":
                drawn -= amount
            else:
                adjustments += amount
    usage = sum((line.amount for line in statement.lines if line.category == USAGE), ZERO)
    charges = statement.total - usage
    closing = opening + topups + adjustments - drawn - charges
    return {
        "opening_balance": money_text(opening), "topups_and_payments": money_text(topups),
        "adjustments": money_text(adjustments), "usage_drawn": money_text(drawn),
        "usage_on_statement": money_text(usage), "charges_drawn": money_text(charges),
        "closing_balance": money_text(closing),
    }


def _instant(text: str) -> datetime:
    return parse_instant(text).astimezone(UTC)

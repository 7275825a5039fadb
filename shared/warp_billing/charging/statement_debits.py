"""Posting a prepaid statement's recurring charges and fees to the customer's balance.

Each debit goes through the balance store's existing adjustment path (``BalanceStore.credit``
with a negative amount, kind ``adjustment``), which is idempotent by entry id for ever, then
into the persisted ledger (idempotent by entry id too). The entry id is
``statement:<STATEMENT NUMBER>:<line>`` (``billing.prepaid_statement``), so re-running a close,
or a crash halfway through the posting, never debits a line twice: the next run books the
lines still missing and finds the others already booked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..billing.invoice import Invoice
from ..billing.prepaid_statement import statement_debits
from ..plan import Plan
from ..ports import BalanceStore, Clock, LedgerEntry, LedgerStore
from .prepaid import prepaid_terms
from .topups import book_credit

ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class PostedDebits:
    """What posting a statement did: lines booked now, lines found already booked, the balance after."""

    booked: int
    already_booked: int
    balance_micros: int | None


def post_statement_debits(statement: Invoice, plan: Plan, balances: BalanceStore, ledger: LedgerStore,
                          at_ms: int, reconcile: Callable[[str], bool] | None = None) -> PostedDebits:
    """Debit every non-usage line and fee of an issued statement (idempotent by statement line).

    Each debit goes through ``topups.book_credit`` (ledger appended, outbox cleared); with
    ``reconcile`` a customer whose Redis copy was lost or restored is brought up to the ledger
    first, so a debit never lands on an account re-opened at zero."""
    terms = prepaid_terms(plan)
    booked = already = 0
    balance = None
    for debit in statement_debits(statement):
        # re-appending a booked entry is a no-op (by entry id): a re-run completes a partial posting
        result = book_credit(balances, ledger, reconcile, customer_id=statement.customer_id,
                             entry_id=debit.entry_id, amount_micros=debit.amount_micros, kind=ADJUSTMENT,
                             reference=debit.reference, at_ms=at_ms, terms=terms)
        balance = result.balance_micros
        if result.duplicate:
            already += 1
        else:
            booked += 1
    return PostedDebits(booked, already, balance)


class LedgerPrepaidStatements:
    """``PrepaidStatements`` on the charging stores: the persisted ledger for the balance box,
    the balance store (Redis) and the ledger for the statement debits (the cloud close)."""

    def __init__(self, balances: BalanceStore, ledger: LedgerStore, clock: Clock,
                 reconcile: Callable[[str], bool] | None = None):
        self.balances, self.ledger, self.clock, self.reconcile = balances, ledger, clock, reconcile

    def ledger_entries(self, customer_id: str) -> list[LedgerEntry]:
        return list(self.ledger.entries(customer_id))

    def post(self, statement: Invoice, plan: Plan) -> PostedDebits:
        return post_statement_debits(statement, plan, self.balances, self.ledger, self.clock.now_ms(), self.reconcile)

"""The dunning ladder applied to the register's aging: which steps are due, when a customer is settled.

Pure functions over ``InvoiceStanding`` (``billing.receivables``: the same aging as
`warp invoices list`). A step is due for an invoice when the invoice is overdue (a balance left
after its due date), ``days_overdue >= after_days`` and the step has not run for it. Steps run
in ladder order; a task that did not run for some days catches up in one run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..billing.receivables import OVERDUE, InvoiceStanding
from ..plan import DunningStep

SUSPEND = "suspend"


@dataclass(frozen=True, slots=True)
class DueStep:
    standing: InvoiceStanding
    step: DunningStep

    @property
    def invoice_number(self) -> str:
        return str(self.standing.invoice.number)


def due_steps(standings: Iterable[InvoiceStanding], ladder: Sequence[DunningStep],
              done: set[tuple[str, str]]) -> list[DueStep]:
    """Steps to run now, by invoice then ladder order (``done``: (invoice, action) that already ran)."""
    due = []
    for standing in sorted(standings, key=lambda item: (item.invoice.due_date, str(item.invoice.number))):
        if standing.status != OVERDUE or standing.balance_due <= 0:
            continue
        number = str(standing.invoice.number)
        for step in ladder:
            if standing.days_overdue >= step.after_days and (number, step.action) not in done:
                due.append(DueStep(standing, step))
    return due


def suspend_after_days(ladder: Sequence[DunningStep]) -> int:
    """Days overdue at which the ladder suspends (1 when it has no suspend step: any overdue invoice)."""
    return next((step.after_days for step in ladder if step.action == SUSPEND), 1)


def blocking_invoices(standings: Iterable[InvoiceStanding], ladder: Sequence[DunningStep]) -> list[str]:
    """Invoices that keep a customer suspended: a balance left and past the suspend step.
    None left: the overdue balance is settled and the customer is reinstated."""
    threshold = suspend_after_days(ladder)
    return [str(standing.invoice.number) for standing in standings
            if standing.status == OVERDUE and standing.balance_due > 0 and standing.days_overdue >= threshold]

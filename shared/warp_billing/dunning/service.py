"""The dunning task and reinstatement (issue 12 item 5).

``DunningService.run(plans, as_of)``, once a day (the ``dunning`` task of ``functions/rollup``):

1. for each customer whose plan has a ``collections.ladder``, the register's standings on
   ``as_of`` (``Receivables``: the aging of `warp invoices list`);
2. every due step (``ladder.due_steps``) that has not run for its invoice runs once: an email
   (remind, warn, suspend, collections; the invoice PDF attached where there is one), the
   HubSpot company's stage, balance due and last invoice, and for ``suspend`` the hold that makes
   charging refuse the customer (ACCOUNT_SUSPENDED); then the step is recorded, create-only by
   (invoice, action). A step interrupted before it was recorded runs again the next day; each of
   its effects is idempotent (email log, SET of the hold, HubSpot upsert). Every customer's
   HubSpot company also gets its balance due and last invoice (one batch upsert per 100
   customers): how issued invoices and payments reach HubSpot;
3. ``settle``: a suspended customer none of whose invoices past the suspend step has a balance
   left is reinstated (hold lifted, an email, HubSpot stage ``active``); one still suspended gets
   its hold set again (a Redis that lost its data is brought back to the decision).

``settle`` is also what a ``payment_received`` alert calls (``alerts.AlertHandler``). A failing
customer does not stop the others: its error is in the run summary and the next run retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..billing.amounts import money_text
from ..billing.receivables import OVERDUE, InvoiceStanding
from ..plan import Plan
from ..ports import AccountHolds, DunningStore, Receivables
from .crm import COMPANIES, CrmUpdates, company_input
from .holds import AccountHold
from .ladder import SUSPEND, DueStep, blocking_invoices, due_steps
from .notices import REINSTATED
from .notifier import Notifier

log = logging.getLogger(__name__)
ACTIVE = "active"


@dataclass
class DunningRun:
    """What one run did (the task's response)."""

    as_of: str
    customers: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    reinstated: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"task": "dunning", "as_of": self.as_of, "customers": self.customers, "steps": self.steps,
                "suspended": self.suspended, "reinstated": self.reinstated, "errors": self.errors}


class DunningService:
    """Walks overdue invoices through their plan's ladder; suspends and reinstates."""

    def __init__(self, receivables: Receivables, store: DunningStore, holds: AccountHolds, notifier: Notifier,
                 crm: CrmUpdates | None, *, now_ms: Callable[[], int]):
        self.receivables = receivables
        self.store = store
        self.holds = holds
        self.notifier = notifier
        self.crm = crm
        self._now_ms = now_ms

    def run(self, plans: Mapping[str, Plan], as_of: date) -> DunningRun:
        run = DunningRun(as_of.isoformat())
        suspended = set(self.store.suspended_customers())
        accounts: list[dict[str, Any]] = []
        for customer_id in sorted(set(plans) | suspended):
            plan = plans.get(customer_id)
            if plan is None:
                run.errors.append({"customer_id": customer_id, "error": "suspended, but no plan: left as it is"})
                continue
            run.customers += 1
            try:
                standings = self.receivables.standings(customer_id, as_of)
                if standings:
                    accounts.append(_account_properties(customer_id, standings))
                if plan.collections.ladder or customer_id in suspended:
                    self._customer(plan, standings, run)
            except Exception as exc:  # one customer's failure is reported; the others go on
                log.exception("dunning failed for a customer", extra={"customer_id": customer_id})
                run.errors.append({"customer_id": customer_id, "error": f"{type(exc).__name__}: {exc}"})
        if self.crm is not None and accounts:
            # Issued invoices and payments reach HubSpot daily: balance due and last invoice of every
            # customer with invoices, in batches of up to 100 (steps above update their company at once).
            self.crm.upsert(COMPANIES, [company_input(item.pop("customer_id"), item) for item in accounts])
        return run

    def _customer(self, plan: Plan, standings: list[InvoiceStanding], run: DunningRun) -> None:
        customer_id = plan.customer_id
        done = self.store.steps(customer_id)
        for due in due_steps(standings, plan.collections.ladder, done):
            self._step(plan, due)
            if self.store.record_step(customer_id, due.invoice_number, due.step.action, self.now_iso()):
                run.steps.append({"customer_id": customer_id, "invoice_number": due.invoice_number,
                                  "action": due.step.action, "days_overdue": due.standing.days_overdue})
            if due.step.action == SUSPEND:
                run.suspended.append(customer_id)
        if self._settle(plan, standings):
            run.reinstated.append(customer_id)

    def settle(self, plan: Plan, as_of: date) -> bool:
        """Reinstate the customer if suspended and the overdue balance is settled; True when reinstated."""
        return self._settle(plan, self.receivables.standings(plan.customer_id, as_of))

    def _settle(self, plan: Plan, standings: list[InvoiceStanding]) -> bool:
        customer_id = plan.customer_id
        invoice = self.store.suspension(customer_id)
        if invoice is None:
            return False
        blocking = blocking_invoices(standings, plan.collections.ladder)
        if blocking:
            # still suspended: make sure charging still refuses (a Redis that lost its data)
            self.holds.suspend(AccountHold(customer_id, self._now_ms(), invoice))
            return False
        self.holds.reinstate(customer_id)
        self.store.clear_suspended(customer_id, self.now_iso())
        self.notifier.notify(REINSTATED, plan, invoice, REINSTATED,
                             {"invoice_number": invoice})
        if self.crm is not None:
            self.crm.company(customer_id, {"warp_collections_stage": ACTIVE,
                                           "warp_balance_due": balance_due_text(standings)})
        log.info("customer reinstated: overdue balance settled", extra={"customer_id": customer_id,
                                                                        "invoice_number": invoice})
        return True

    def _step(self, plan: Plan, due: DueStep) -> None:
        standing, action = due.standing, due.step.action
        invoice = standing.invoice
        if action == SUSPEND:
            self.holds.suspend(AccountHold(plan.customer_id, self._now_ms(), due.invoice_number))
            self.store.set_suspended(plan.customer_id, due.invoice_number, self.now_iso())
        data = {"invoice_number": due.invoice_number, "billing_period": invoice.cycle.label,
                "issue_date": invoice.issue_date.isoformat(), "due_date": invoice.due_date.isoformat(),
                "days_overdue": standing.days_overdue, "balance_due": money_text(standing.balance_due),
                "currency": invoice.currency, "action": action}
        self.notifier.notify(action, plan, due.invoice_number, action, data, invoice)
        if self.crm is not None:
            self.crm.company(plan.customer_id, {"warp_collections_stage": action,
                                                "warp_balance_due": money_text(standing.balance_due),
                                                "warp_last_invoice": due.invoice_number,
                                                "warp_days_overdue": standing.days_overdue})
        log.info("dunning step", extra={"customer_id": plan.customer_id, "invoice_number": due.invoice_number,
                                        "action": action, "days_overdue": standing.days_overdue})

    def now_iso(self) -> str:
        """The service clock's time (ISO 8601, UTC): what its records are stamped with."""
        return datetime.fromtimestamp(self._now_ms() / 1000, UTC).isoformat()



def _account_properties(customer_id: str, standings: list[InvoiceStanding]) -> dict[str, Any]:
    last = max(standings, key=lambda row: (row.invoice.issue_date, str(row.invoice.number)))
    return {"customer_id": customer_id, "warp_balance_due": balance_due_text(standings),
            "warp_last_invoice": str(last.invoice.number),
            "warp_last_invoice_date": last.invoice.issue_date.isoformat(),
            "warp_overdue_invoices": sum(1 for row in standings if row.status == OVERDUE and row.balance_due > 0)}


def balance_due_text(standings: list[InvoiceStanding]) -> str:
    """What the customer owes across its invoices (credit balances not netted), as HubSpot shows it."""
    return money_text(sum((standing.balance_due for standing in standings if standing.balance_due > 0),
                          start=Decimal("0.00")))

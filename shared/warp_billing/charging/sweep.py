"""The balance sweep the scheduler runs: drain Redis outboxes into the ledger, heal stale customers.

Every debit the charging script makes is also written to the customer's Redis outbox in the
same atomic step; the function clears it once the ledger store holds the entries. A crash or a
dead-lettered message between the two leaves entries in the outbox: the sweep appends them to
the ledger (idempotent by entry id) and clears them, so no Redis debit is ever missing from the
ledger (and a rebuild never refunds it). It then reconciles every customer whose Redis state is
not verified on the current server (a restart, a restored snapshot, a promoted replica), so
charging resumes without waiting for an operator.

Entry points: `warp balance sweep` and the HTTP function ``balance_sweep`` (Cloud Scheduler,
every minute).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from ..ports import LedgerStore, chunks
from .rebuild import RebuildReport, RebuildTarget, rebuild_balances

log = logging.getLogger(__name__)
APPEND_BATCH = 500


class SweepTarget(RebuildTarget, Protocol):
    def unverified_customers(self) -> list[str]: ...


@dataclass
class SweepReport:
    """What one sweep did: outbox entries drained, customers reconciled (and its report)."""

    drained: int = 0
    reconciled: list[str] = field(default_factory=list)
    rebuild: RebuildReport | None = None


def sweep(ledger: LedgerStore, target: SweepTarget, *, heal: bool = True, **rebuild_options: Any) -> SweepReport:
    """Drain every outbox into the ledger, then (``heal``) reconcile the unverified customers."""
    report = SweepReport()
    pending = target.pending_entries(None)
    for batch in chunks(pending, APPEND_BATCH):
        ledger.append(batch)
        target.persisted(batch)
        report.drained += len(batch)
    usage = rebuild_options.get("usage")
    if usage is not None:   # postpaid charges whose rated row exists now: no longer pending
        charges = target.pending_charges(None)
        for batch in chunks(charges, APPEND_BATCH):
            written = usage.rated_event_ids([(event_id, day) for _, event_id, cycle, _ in batch
                                             for day in _cycle_days(cycle)])
            target.persisted([], [(customer, event_id) for customer, event_id, _, _ in batch if event_id in written])
    if heal:
        stale = target.unverified_customers()
        if stale:
            report.rebuild = rebuild_balances(ledger, target, customers=stale, **rebuild_options)
            report.reconciled = [name for name in stale if name not in report.rebuild.busy + report.rebuild.lost]
    log.info("balance sweep", extra={"drained": report.drained, "reconciled": len(report.reconciled)})
    return report


def _cycle_days(cycle: str) -> list[str]:
    """UTC days an event of the cycle starting ``cycle`` can fall on (a day of margin for time zones)."""
    first = date.fromisoformat(cycle) - timedelta(days=1)
    return [(first + timedelta(days=offset)).isoformat() for offset in range(34)]

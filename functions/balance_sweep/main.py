"""Cloud Function (gen2, HTTP) `balance_sweep`: drain Redis outboxes into the ledger, reconcile stale customers.

Cloud Scheduler calls it every minute (POST, OIDC-authenticated). The work is in the shared
package (`warp_billing.charging.sweep`); the answer is the sweep's report as JSON. A failure
answers 500 so the scheduler's retry policy runs it again (every step is idempotent).
"""

import functions_framework

from warp_billing.bootstrap import container
from warp_billing.charging.sweep import sweep


@functions_framework.http
def balance_sweep(request):
    """Run one sweep; 200 with {"drained", "reconciled", "conflicts"}."""
    graph = container()
    report = sweep(graph.ledger_store, graph.balances, **graph.rebuild_options())
    conflicts = report.rebuild.conflicts if report.rebuild is not None else []
    return {"drained": report.drained, "reconciled": report.reconciled, "conflicts": conflicts}

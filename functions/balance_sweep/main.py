"""Cloud Function (gen2, HTTP) `balance_sweep`: drain Redis outboxes into the ledger, reconcile stale customers.

Cloud Scheduler calls it every minute (POST, OIDC-authenticated). The work is in the shared
package (``warp_billing.charging.sweep`` through ``bootstrap.balance_sweep``); the answer is the
sweep's report as JSON. A failure answers 500 so the scheduler's retry policy runs it again
(every step is idempotent).
"""

import functions_framework

from warp_billing.bootstrap import balance_sweep as run_balance_sweep


@functions_framework.http
def balance_sweep(request):
    """Run one sweep; 200 with {"drained", "reconciled", "conflicts"}."""
    return run_balance_sweep()

"""Cloud Function (gen2) `netsuite_sync`: the HTTP target of the `netsuite` Cloud Tasks queue.

One task = one outbox document (customer, invoice, credit memo, customer payment, journal
entry), upserted into NetSuite by externalId; `{"task": "sweep"}` enqueues the outbox's pending
documents instead. The work is in `warp_billing.erp`: 200 when the document is done or refused
for good (recorded in sync_errors), 429/503 + Retry-After when Cloud Tasks must try again.
Clients are built on the first task of an instance, never at import.
"""

import functions_framework

from warp_billing.bootstrap import document_sync, netsuite_sweep
from warp_billing.erp.delivery import handle_task_request


@functions_framework.http
def netsuite_sync(request):
    """Handle one Cloud Tasks delivery; the status code tells the queue whether to retry."""
    return handle_task_request(request, document_sync, netsuite_sweep)

"""Cloud Function (gen2, HTTP) `crm_sync`: the target of the rate-limited `hubspot` Cloud Tasks queue.

One task = one batch (at most 100) of HubSpot companies or deals, upserted by their unique
property. 200 when done (or refused for its content, logged), 429 + Retry-After when HubSpot
throttles and 503 when it fails, so the queue retries the batch. The work is in
``warp_billing.dunning.crm``; the HubSpot client is built on the first task, never at import.
"""

import functions_framework

from warp_billing.bootstrap import crm
from warp_billing.dunning.delivery import handle_crm_task


@functions_framework.http
def crm_sync(request):
    """Upsert one batch; the status code tells the queue whether to retry."""
    return handle_crm_task(request, crm)

"""Cloud Function (gen2, HTTP) `rollup`: Cloud Scheduler's usage rollups and cycle closes.

Body (JSON): ``{"task": "hourly_rollup"}`` (MERGE usage_hourly), ``{"task": "cycle_close"}``
(every customer whose cycle ended and is not issued), ``{"task": "cycle_close", "period": P}``,
or ``{"task": "cycle_close", "customer": C, "period": P}`` (an operator re-run), ``{"task": "dunning"}``
and ``{"task": "crm_push"}`` (every customer's HubSpot company and deals, on the hubspot queue). The work is
in ``warp_billing.closing``; one failing customer does not stop the others, and the response
is the run's summary (200), 400 for a request that cannot be run, 500 when the run itself
failed (Scheduler retries; every step is idempotent). Clients are built on the first request.
"""

import functions_framework

from warp_billing.bootstrap import container
from warp_billing.closing import handle_request


@functions_framework.http
def rollup(request):
    """Run the requested task; the JSON summary is the response."""
    body, status = handle_request(request.get_json(silent=True), container())
    return body, status

"""Cloud Function (gen2) `reconcile`: vendor CDRs against our rated usage, daily or per delivery.

HTTP (Cloud Scheduler, daily, OIDC): an empty body reconciles every vendor with files for the
month that contains yesterday; ``{"vendor": "V1", "period": "2026-06"}`` reconciles one.
``reconcile_object`` takes a Cloud Storage object-finalize CloudEvent for
``vendor-cdrs/<vendor>/<period>/...`` and reconciles that vendor and period.

The work is in the shared package (``warp_billing.reconciliation_job``); the client objects are
built on the first request of an instance. A bad delivery (no mapping, a misspelt mapping key,
a missing column) is answered 422 with the reason and not retried; anything else raises, so
the Scheduler (or Eventarc) retries.
"""

from datetime import UTC, datetime

import functions_framework

from warp_billing.bootstrap import container
from warp_billing.reconciliation.analysis import InvoiceSummaryError
from warp_billing.reconciliation.mapping import MappingError
from warp_billing.reconciliation.service import PeriodError
from warp_billing.reconciliation_job import ReconJobError

PERMANENT = (ReconJobError, MappingError, InvoiceSummaryError, PeriodError, ValueError)


@functions_framework.http
def reconcile(request):
    """Daily (empty body) or one vendor and period; answers the runs as JSON."""
    body = request.get_json(silent=True) or {}
    job = container().reconciliation_job
    try:
        if body.get("vendor"):
            if not body.get("period"):
                return {"error": "give period (YYYY-MM) with vendor"}, 400
            runs = [job.run(str(body["vendor"]), str(body["period"]))]
        else:
            runs = job.run_daily(datetime.now(UTC).date())
    except PERMANENT as exc:
        return {"error": str(exc)}, 422
    return {"runs": runs}, 200


@functions_framework.cloud_event
def reconcile_object(cloud_event):
    """An object landed in the bucket: reconcile its vendor and period (other objects are ignored)."""
    name = (cloud_event.data or {}).get("name", "")
    parts = name.split("/")
    if len(parts) < 4 or parts[0] != "vendor-cdrs":
        return
    try:
        container().reconciliation_job.run(parts[1], parts[2])
    except PERMANENT:
        return   # a bad delivery: logged by the job, retrying would not fix it

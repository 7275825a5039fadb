"""Cloud Function (gen2) `reconcile`: vendor CDRs against our rated usage, daily or per delivery.

HTTP (Cloud Scheduler, daily, OIDC): an empty body reconciles every vendor with files for the
month that contains yesterday; ``{"vendor": "V1", "period": "2026-06"}`` reconciles one.
The same entry point takes an object-finalize event of the vendor CDR bucket (a Storage
notification pushed by Pub/Sub, terraform/vendor_cdrs.tf, or a CloudEvent in binary mode) for
``vendor-cdrs/<vendor>/<period>/...`` and reconciles that vendor and period; other objects are
ignored. ``reconcile_object`` takes the event as a CloudEvent function (an Eventarc deployment).

The work is in the shared package (``warp_billing.reconciliation_job``); clients are built on the
first request of an instance. A bad call answers 422 and is not retried; an event that cannot be
reconciled is acknowledged and logged; anything else raises, so the Scheduler (or Pub/Sub) retries.
"""

from datetime import UTC, datetime

import functions_framework

from warp_billing.bootstrap import container
from warp_billing.reconciliation_job import handle_delivery, handle_object


@functions_framework.http
def reconcile(request):
    """Daily (empty body), one vendor and period, or an object-finalize event; answers the runs as JSON."""
    return handle_delivery(dict(request.headers), request.get_json(silent=True) or {},
                           container().reconciliation_job, datetime.now(UTC).date())


@functions_framework.cloud_event
def reconcile_object(cloud_event):
    """An object landed in the bucket: reconcile its vendor and period (other objects are ignored)."""
    data = cloud_event.data or {}
    handle_object(data.get("name", ""), container().reconciliation_job, data.get("bucket"))

"""Cloud Function (gen2) `reconcile`: vendor CDRs against our rated usage, daily or per delivery.

HTTP (Cloud Scheduler, daily, OIDC): an empty body reconciles every vendor with files for the
month that contains yesterday; ``{"vendor": "V1", "period": "2026-06"}`` reconciles one.
``reconcile_object`` takes a Cloud Storage object-finalize CloudEvent for
``vendor-cdrs/<vendor>/<period>/...`` and reconciles that vendor and period.

The work is in the shared package (``warp_billing.reconciliation_job``); clients are built on the
first request of an instance. A bad delivery answers 422 and is not retried; anything else
raises, so the Scheduler (or Eventarc) retries.
"""

from datetime import UTC, datetime

import functions_framework

from warp_billing.bootstrap import container
from warp_billing.reconciliation_job import handle_object, handle_request


@functions_framework.http
def reconcile(request):
    """Daily (empty body) or one vendor and period; answers the runs as JSON."""
    return handle_request(request.get_json(silent=True) or {}, container().reconciliation_job,
                          datetime.now(UTC).date())


@functions_framework.cloud_event
def reconcile_object(cloud_event):
    """An object landed in the bucket: reconcile its vendor and period (other objects are ignored)."""
    handle_object((cloud_event.data or {}).get("name", ""), container().reconciliation_job)

"""Cloud Function (gen2) `rate_voice`: rates and charges voice calls (termination and origination)
from the usage-voice topic.

Eventarc pushes one Pub/Sub message per CloudEvent. The work is in the shared package
(`warp_billing.charging`): decode the envelope (an undecodable message is recorded as a reject
and acknowledged), rate, charge, record. A retryable failure raises, so Pub/Sub redelivers.
Clients are built on the first event of an instance, never at import.
"""

import functions_framework

from warp_billing.bootstrap import charging_service
from warp_billing.charging.pubsub_delivery import handle_pubsub_event


@functions_framework.cloud_event
def rate_voice(cloud_event):
    """Handle one usage message; return to acknowledge, raise to have it redelivered."""
    handle_pubsub_event(cloud_event, charging_service, function="rate_voice")

"""Cloud Function (gen2, HTTP) `webhooks`: Authorize.Net payment notifications and NetSuite events.

Routes ``/authorize-net`` and ``/netsuite`` (signed notifications, applied: payments, NetSuite
events) and ``/tasks/recharge`` (the ``recharge`` queue's HMAC-signed tasks: card auto-recharge).
The work is in ``warp_billing.webhooks.receiver`` and ``warp_billing.payments`` (through
``bootstrap.webhook``): body over 1 MB -> 413, a missing or wrong signature -> 401, a replayed
notification -> 200 and no change, a store or gateway that is down -> 503 (the sender retries).
The body is read only up to the limit, so an oversized request is refused without buffering it.
"""

import functions_framework
from flask import jsonify

from warp_billing.bootstrap import webhook as handle_webhook
from warp_billing.webhooks.receiver import MAX_BODY_BYTES


@functions_framework.http
def webhooks(request):
    """Verify, deduplicate and keep one notification; answer JSON with the status."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return jsonify({"error": "body_too_large", "limit": MAX_BODY_BYTES}), 413
    body = request.stream.read(MAX_BODY_BYTES + 1)
    status, answer = handle_webhook(request.path, request.headers, body)
    return jsonify(answer), status

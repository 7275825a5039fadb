"""Accepting one inbound webhook: size limit, signature, event id, replay protection.

Framework-free so it is tested without HTTP: the function passes the route, the headers, the raw
body and its clock, and gets back (status, JSON answer). Order matters: the size is checked before
anything reads the body, the signature before the body is parsed or anything is recorded, so a
forged or oversized request changes nothing. A valid notification is kept in the receipts store
(create-only, keyed by the sender's id); a redelivery answers 200 so the sender stops retrying,
and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from ..charging.errors import TransientError
from ..ports import WebhookReceipts
from .signatures import SignatureVerdict, verify_authorize_net, verify_netsuite

MAX_BODY_BYTES = 1_048_576
AUTHORIZE_NET = "authorize-net"
NETSUITE = "netsuite"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookSecrets:
    """The shared secrets, from Settings (secret env vars in the cloud)."""

    authorize_net_signature_key: str
    netsuite_webhook_secret: str
    netsuite_tolerance_s: int = 300


def receive(
    route: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    secrets: WebhookSecrets,
    receipts: WebhookReceipts,
    handlers: Mapping[str, Callable[[bytes], dict]] | None = None,
) -> tuple[int, dict]:
    """Handle one request on ``route`` ("/authorize-net" or "/netsuite"): (HTTP status, answer).

    ``handlers`` (by source) apply a verified notification. The handler runs BEFORE the receipt
    is kept and on every delivery (it is idempotent by the sender's business keys), so a delivery
    that fails half-way (503, the sender retries) is completed by the next one; a replay runs it
    again and changes nothing.
    """
    source = route.strip("/").lower()
    if source not in (AUTHORIZE_NET, NETSUITE):
        return 404, {"error": "unknown_route", "route": route}
    if len(body) > MAX_BODY_BYTES:
        return 413, {"error": "body_too_large", "limit": MAX_BODY_BYTES}
    if source == AUTHORIZE_NET:
        verdict = verify_authorize_net(body, headers.get("X-ANET-Signature"), secrets.authorize_net_signature_key)
    else:
        verdict = verify_netsuite(
            body, headers.get("X-Warp-Signature"), secrets.netsuite_webhook_secret,
            int(now.timestamp()), secrets.netsuite_tolerance_s,
        )
    if verdict is not SignatureVerdict.VALID:
        log.warning("webhook refused", extra={"source": source, "reason": verdict.value})
        return 401, {"error": verdict.value}
    event_id = _event_id(source, body)
    if event_id is None:
        log.error("webhook without an event id", extra={"source": source, "body": body[:2000]})
        return 400, {"error": "event_id_missing"}
    outcome: dict | None = None
    handler = (handlers or {}).get(source)
    if handler is not None:
        try:
            outcome = handler(body)
        except TransientError as exc:
            log.warning("webhook not applied, sender to retry",
                        extra={"source": source, "event_id": event_id, "error": str(exc)})
            return 503, {"error": exc.code.value, "event_id": event_id}
    received_at = now.astimezone(UTC).isoformat()
    answer: dict = {"status": "accepted", "event_id": event_id}
    if not receipts.record_once(source, event_id, received_at, body):
        log.info("webhook replay ignored", extra={"source": source, "event_id": event_id})
        answer["status"] = "duplicate"
    else:
        log.info("webhook accepted", extra={"source": source, "event_id": event_id})
    if outcome is not None:
        answer["outcome"] = outcome
    return 200, answer


def _event_id(source: str, body: bytes) -> str | None:
    """The sender's notification id (Authorize.Net ``notificationId``; our NetSuite ``id``)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    value = document.get("notificationId" if source == AUTHORIZE_NET else "id")
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        return None
    return value


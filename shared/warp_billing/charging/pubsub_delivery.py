"""Pub/Sub push deliveries (Eventarc CloudEvents) -> charging service calls.

Eventarc delivers one Pub/Sub message per CloudEvent (reference.md): ``ce-id`` is the
messageId and ``data`` is ``{"subscription", "message": {"data": <base64>, "attributes",
"messageId", "publishTime", ...}}``. A message that cannot be decoded (no message, bad base64,
bad JSON, not an object) is a reject with a reason and is acknowledged; a ``TransientError``
(or any unexpected failure) is raised so the platform retries the delivery.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ..rating.rejections import Reason, Rejection
from .errors import TransientError
from .service import ChargingService, Delivery, Handled

log = logging.getLogger(__name__)


def delivery_from_cloud_event(cloud_event: Any) -> Delivery:
    """Decode an Eventarc Pub/Sub CloudEvent into a Delivery (never raises for bad input)."""
    ce_id = _attribute(cloud_event, "id")
    data = cloud_event.data
    if isinstance(data, (bytes, str)):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            return _undecodable(ce_id, _text(data), Reason.MALFORMED_JSON, "the CloudEvent data is not JSON")
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        return _undecodable(ce_id, None, Reason.BAD_FIELD, "message: missing (not a Pub/Sub messagePublished event)")
    message_id = message.get("messageId") or message.get("message_id") or ce_id
    message_id = message_id if isinstance(message_id, str) else ce_id
    given = message.get("attributes")
    attributes = {str(key): str(value) for key, value in given.items()} if isinstance(given, dict) else {}
    encoded = message.get("data")
    if encoded is None:
        return _undecodable(message_id, None, Reason.BAD_FIELD, "message.data: missing", attributes)
    if not isinstance(encoded, str):
        return _undecodable(message_id, None, Reason.BAD_FIELD, "message.data: expected a base64 string", attributes)
    try:
        body = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return _undecodable(message_id, encoded, Reason.MALFORMED_JSON, "message.data is not valid base64", attributes)
    raw = body.decode("utf-8", errors="replace")
    if not body.strip():
        return _undecodable(message_id, raw, Reason.MALFORMED_JSON, "empty message body", attributes)
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _undecodable(message_id, raw, Reason.MALFORMED_JSON, f"not valid JSON: {exc}", attributes)
    if not isinstance(event, dict):
        return _undecodable(message_id, raw, Reason.MALFORMED_JSON, "the message body is not a JSON object", attributes)
    return Delivery(event, message_id, raw, None, attributes)


def handle_pubsub_event(cloud_event: Any, service: Callable[[], ChargingService], function: str) -> Handled:
    """The body of every usage function: decode, handle, and let a retryable failure raise."""
    delivery = delivery_from_cloud_event(cloud_event)
    try:
        return service().handle(delivery)
    except TransientError as exc:
        log.warning("usage delivery failed; it will be redelivered",
                    extra={"function": function, "message_id": delivery.message_id, "code": exc.code.value,
                           "detail": exc.detail, "event_id": _event_id(delivery)})
        raise
    except Exception:
        log.exception("unexpected failure handling a usage delivery; it will be redelivered",
                      extra={"function": function, "message_id": delivery.message_id, "event_id": _event_id(delivery)})
        raise


def _undecodable(message_id: str | None, raw: str | None, reason: Reason, detail: str,
                 attributes: Mapping[str, str] | None = None) -> Delivery:
    return Delivery(None, message_id, raw, Rejection(reason, detail), attributes or {})


def _attribute(cloud_event: Any, name: str) -> str | None:
    try:
        value = cloud_event[name]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def _event_id(delivery: Delivery) -> str | None:
    event = delivery.event
    return event.get("event_id") if isinstance(event, dict) and isinstance(event.get("event_id"), str) else None

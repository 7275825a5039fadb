"""Deliveries of the collections functions: billing alerts (Eventarc Pub/Sub) and HubSpot tasks.

* ``handle_alert_event(cloud_event, handler)`` (``functions/notify``): decodes the alert from the
  Pub/Sub CloudEvent (``charging.pubsub_delivery``'s decoding) and hands it to the
  ``AlertHandler``. An undecodable message is logged and acknowledged (it can never succeed); a
  ``TransientError`` (SendGrid or Redis down) raises, so Pub/Sub redelivers (every effect is
  idempotent: the email log, the hold, the upsert).
* ``handle_crm_task(request, crm)`` (``functions/crm_sync``): one ``hubspot`` queue task, answered
  200 / 400 / 429 + Retry-After / 503 (``crm.run_crm_task``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from ..charging.errors import TransientError
from ..charging.pubsub_delivery import delivery_from_cloud_event
from ..ports import Crm
from .alerts import AlertHandler
from .crm import run_crm_task

log = logging.getLogger(__name__)


def handle_alert_event(cloud_event: Any, handler: Callable[[], AlertHandler],
                       today: Callable[[], Any] = lambda: datetime.now(UTC).date()) -> dict[str, Any]:
    delivery = delivery_from_cloud_event(cloud_event)
    if delivery.problem is not None or not isinstance(delivery.event, dict):
        detail = delivery.problem.detail if delivery.problem is not None else "not a JSON object"
        log.error("billing alert not decodable; acknowledged", extra={"message_id": delivery.message_id,
                                                                      "detail": detail})
        return {"outcome": "undecodable", "detail": detail}
    try:
        outcome = handler().handle(delivery.event, today())
    except TransientError as exc:
        log.warning("billing alert not handled; it will be redelivered",
                    extra={"message_id": delivery.message_id, "code": exc.code.value, "detail": exc.detail})
        raise
    log.info("billing alert handled", extra={"message_id": delivery.message_id, **outcome})
    return outcome


def handle_crm_task(request: Any, crm: Callable[[], Crm]) -> tuple[bytes, int, dict[str, str]]:
    try:
        body = orjson.loads(request.get_data() or b"null")
    except orjson.JSONDecodeError:
        body = None
    answer, status, headers = run_crm_task(body, crm())
    return orjson.dumps(answer), status, {"Content-Type": "application/json", **headers}

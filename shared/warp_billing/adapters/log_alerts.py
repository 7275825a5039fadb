"""``AlertPublisher`` for the embedded configuration: alerts become structured log lines."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger("warp_billing.alerts")


class LogAlertPublisher:
    """Writes each billing alert as a WARNING log entry (``jsonPayload.alert`` in Cloud Logging)."""

    def publish(self, alert: Mapping) -> None:
        log.warning(f"billing alert {alert.get('type')}", extra={"alert": dict(alert),
                                                                 "customer_id": alert.get("customer_id")})

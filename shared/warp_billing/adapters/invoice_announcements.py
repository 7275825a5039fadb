"""Issued documents announced on the ``invoices`` topic (``InvoicePublisher``), or logged.

``LogInvoicePublisher`` is the embedded default (no Pub/Sub): one structured log line per
document. ``PubSubInvoicePublisher`` publishes the announcement as JSON with
``invoice_number``, ``customer_id`` and ``billing_period`` as attributes (subscribers filter
and deduplicate on them: a retried close announces the same number again) and waits for the
acknowledgement, so a failure is reported on the customer's close.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .lazy_client import LazyClient
from .pubsub_alerts import encode_alert

log = logging.getLogger(__name__)
ATTRIBUTES = ("invoice_number", "customer_id", "billing_period")


class InvoicePublishError(RuntimeError):
    """Pub/Sub did not take an announcement."""


class LogInvoicePublisher:
    def publish(self, document: Mapping) -> None:
        log.info("invoice issued", extra={"invoice": dict(document)})


class PubSubInvoicePublisher:
    """``InvoicePublisher`` on ``settings.invoice_topic`` in ``settings.pubsub_project_id``."""

    def __init__(self, client: Any, project: str, topic: str = "invoices", timeout_s: float = 30.0):
        self._client = LazyClient(client)
        self.topic_path = f"projects/{project}/topics/{topic}"
        self.timeout_s = timeout_s

    def publish(self, document: Mapping) -> None:
        attributes = {key: str(document[key]) for key in ATTRIBUTES if document.get(key) is not None}
        future = self._client.get().publish(self.topic_path, encode_alert(document), **attributes)
        try:
            future.result(timeout=self.timeout_s)
        except Exception as exc:  # the future raises the API's error type, or a timeout
            raise InvoicePublishError(f"{document.get('invoice_number')} to {self.topic_path}: {exc}") from exc

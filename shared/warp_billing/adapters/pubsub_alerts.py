"""Billing alerts to the Pub/Sub topic ``billing-alerts`` (``AlertPublisher``).

Each alert is one message: the alert document as JSON (money stays a decimal string; a float
is refused) with ``alert_id``, ``type`` and ``customer_id`` copied into the attributes, so
subscribers (SendGrid and HubSpot senders) can filter without parsing and dedup by alert_id.
``publish`` waits for Pub/Sub's acknowledgement: a failure raises, the charging service turns
it into a redelivery, and the alert is published again with the same alert_id.

The embedded default (no Pub/Sub) is ``log_alerts.LogAlertPublisher``. There is no Pub/Sub
stand-in on the project's machines; ``publisher_client(endpoint=...)`` reaches any server that
speaks the Publisher gRPC API (the tests run a recording one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..money import MoneyError
from .lazy_client import LazyClient

ATTRIBUTE_KEYS = ("alert_id", "type", "customer_id")


class AlertPublishError(RuntimeError):
    """Pub/Sub did not accept an alert (the caller retries; alert_id makes that safe)."""


def publisher_client(endpoint: str | None = None):
    """A PublisherClient: the real API, or a plaintext gRPC endpoint ``host:port`` (local servers)."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # a namespace package mypy cannot see into

    if not endpoint:
        return pubsub_v1.PublisherClient()
    import grpc
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    return pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=grpc.insecure_channel(endpoint)))


def encode_alert(alert: Mapping) -> bytes:
    """The alert as compact JSON; Decimals as strings; floats refused anywhere in it."""
    _refuse_floats(alert, "alert")
    return json.dumps(alert, default=_json_default, separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False).encode("utf-8")


def alert_attributes(alert: Mapping) -> dict[str, str]:
    return {key: str(alert[key]) for key in ATTRIBUTE_KEYS if alert.get(key) is not None}


class PubSubAlertPublisher:
    """``AlertPublisher`` on a Pub/Sub topic (``settings.alert_topic`` in ``settings.pubsub_project_id``)."""

    def __init__(self, client: Any, settings: Any = None, *, project: str | None = None,
                 topic: str | None = None, timeout_s: float = 30.0):
        """``client``: a ``pubsub_v1.PublisherClient`` or a zero-argument callable building one on first use."""
        self._client = LazyClient(client)
        self.project = project or getattr(settings, "pubsub_project_id", None)
        self.topic = topic or getattr(settings, "alert_topic", None) or "billing-alerts"
        if not self.project:
            raise ValueError("PubSubAlertPublisher needs a project (settings or argument)")
        self.timeout_s = timeout_s

    @property
    def client(self):
        return self._client.get()

    @property
    def topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.topic}"

    def publish(self, alert: Mapping) -> None:
        """Publish one alert and wait until Pub/Sub has it; raise ``AlertPublishError`` otherwise."""
        data = encode_alert(alert)
        future = self.client.publish(self.topic_path, data, **alert_attributes(alert))
        try:
            future.result(timeout=self.timeout_s)
        except Exception as exc:  # the future raises the API's error type, or a timeout
            raise AlertPublishError(f"alert {alert.get('alert_id')!r} to {self.topic_path}: {exc}") from exc


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in an alert")


def _refuse_floats(value: object, path: str) -> None:
    if isinstance(value, float):
        raise MoneyError(f"{path}: float {value!r} in an alert; write amounts as decimal strings")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_floats(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _refuse_floats(item, f"{path}[{index}]")

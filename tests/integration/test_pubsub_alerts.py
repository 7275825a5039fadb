"""The Pub/Sub alert publisher over real gRPC, against a recording Publisher server.

There is no Pub/Sub stand-in on these machines (local-stack.md); the official PublisherClient
speaks to a small gRPC server started here that implements google.pubsub.v1.Publisher/Publish
and records each request, so what crosses the wire (topic, data, attributes) is checked for real.
"""

from __future__ import annotations

import json
import threading
from concurrent import futures
from decimal import Decimal

import grpc
import pytest
from google.pubsub_v1.types import PublishRequest, PublishResponse

from warp_billing.adapters.pubsub_alerts import AlertPublishError, PubSubAlertPublisher, publisher_client
from warp_billing.money import MoneyError

pytestmark = pytest.mark.integration


class RecordingPublisher:
    """google.pubsub.v1.Publisher/Publish that records requests; can fail on demand."""

    def __init__(self):
        self.requests: list[PublishRequest] = []
        self.fail_next: list[grpc.StatusCode] = []
        self._lock = threading.Lock()

    def publish(self, request: PublishRequest, context) -> PublishResponse:
        with self._lock:
            if self.fail_next:
                context.abort(self.fail_next.pop(0), "injected failure")
            self.requests.append(request)
            first = len(self.requests) * 1000
        return PublishResponse(message_ids=[str(first + i) for i in range(len(request.messages))])


@pytest.fixture()
def server():
    recorder = RecordingPublisher()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", {
        "Publish": grpc.unary_unary_rpc_method_handler(
            recorder.publish, request_deserializer=PublishRequest.deserialize,
            response_serializer=PublishResponse.serialize),
    })
    grpc_server.add_generic_rpc_handlers((handler,))
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    yield f"127.0.0.1:{port}", recorder
    grpc_server.stop(grace=None)


def low_balance_alert() -> dict:
    return {"alert_id": "low_balance:ACME:ev-1", "type": "low_balance", "customer_id": "ACME",
            "event_id": "ev-1", "at": "2026-11-26T12:00:00.000+00:00", "currency": "USD",
            "balance": "0.950000", "threshold": Decimal("1.000000")}


def test_an_alert_is_published_as_json_with_filterable_attributes(server):
    endpoint, recorder = server
    publisher = PubSubAlertPublisher(lambda: publisher_client(endpoint), project="warp-local", timeout_s=10)
    publisher.publish(low_balance_alert())
    [request] = recorder.requests
    assert request.topic == "projects/warp-local/topics/billing-alerts"
    [message] = request.messages
    assert json.loads(message.data) == {**low_balance_alert(), "threshold": "1.000000"}
    assert dict(message.attributes) == {"alert_id": "low_balance:ACME:ev-1", "type": "low_balance",
                                        "customer_id": "ACME"}


def test_a_transient_refusal_is_retried_by_the_client(server):
    endpoint, recorder = server
    recorder.fail_next = [grpc.StatusCode.UNAVAILABLE]
    publisher = PubSubAlertPublisher(lambda: publisher_client(endpoint), project="warp-local", timeout_s=30)
    publisher.publish(low_balance_alert())
    assert len(recorder.requests) == 1


def test_a_permanent_refusal_raises_for_the_caller_to_redeliver(server):
    endpoint, recorder = server
    recorder.fail_next = [grpc.StatusCode.NOT_FOUND]
    publisher = PubSubAlertPublisher(lambda: publisher_client(endpoint), project="warp-local", timeout_s=10)
    with pytest.raises(AlertPublishError, match="low_balance:ACME:ev-1"):
        publisher.publish(low_balance_alert())


def test_floats_never_reach_the_topic(server):
    endpoint, recorder = server
    publisher = PubSubAlertPublisher(lambda: publisher_client(endpoint), project="warp-local")
    with pytest.raises(MoneyError, match="alert.balance"):
        publisher.publish({**low_balance_alert(), "balance": 0.95})
    assert recorder.requests == []
    assert not publisher._client.built  # nothing built for a refused alert

"""The usage functions through functions_framework with real CloudEvents (Eventarc Pub/Sub envelope)."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import orjson
import pytest
from cloudevents.http import CloudEvent
from functions_framework import create_app
from tests.charging_world import make_world, voice_event

from warp_billing import bootstrap
from warp_billing.charging.errors import TransientCode, TransientError
from warp_billing.charging.pubsub_delivery import delivery_from_cloud_event

ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS = ("rate_voice", "rate_sms", "rate_api")


def pubsub_event(data: bytes | str | None, message_id: str = "1234567890", **message_fields) -> CloudEvent:
    """The CloudEvent Eventarc delivers for one Pub/Sub message."""
    message = {"attributes": {"origin": "switch-7"}, "messageId": message_id, "message_id": message_id,
               "publishTime": "2026-11-03T12:00:01.000Z", "publish_time": "2026-11-03T12:00:01.000Z",
               **message_fields}
    if data is not None:
        message["data"] = data if isinstance(data, str) else base64.b64encode(data).decode()
    attributes = {"id": message_id, "type": "google.cloud.pubsub.topic.v1.messagePublished",
                  "source": "//pubsub.googleapis.com/projects/warp-local/topics/usage-voice",
                  "specversion": "1.0"}
    return CloudEvent(attributes, {"subscription": "projects/warp-local/subscriptions/eventarc-rate-voice",
                                   "message": message})


def load_function(name: str):
    """functions/<name>/main.py as its own module (each function is deployed alone)."""
    spec = importlib.util.spec_from_file_location(f"function_{name}", ROOT / "functions" / name / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def wired():
    world = make_world()
    world.topup("ACME", 5_000_000)
    container = bootstrap.Container(charging=world.service)
    bootstrap.reset(container)
    yield world
    bootstrap.reset()


def test_importing_a_function_builds_no_client():
    bootstrap.reset()
    for name in FUNCTIONS:
        load_function(name)
    assert bootstrap._container is None


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_rates_and_charges_one_pubsub_message(wired, name):
    function = getattr(load_function(name), name)

    function(pubsub_event(orjson.dumps(voice_event("e1"))))

    assert wired.usage.rated["e1"]["amount"] == "0.050000"
    assert wired.balances.account("ACME").balance_micros == 5_000_000 - 50_000


@pytest.mark.parametrize("data, reason, detail", [
    ("%%%not-base64%%%", "MALFORMED_JSON", "message.data is not valid base64"),
    (b"{not json", "MALFORMED_JSON", "not valid JSON"),
    (b"[1, 2]", "MALFORMED_JSON", "not a JSON object"),
    (b"", "MALFORMED_JSON", "empty message body"),
    (None, "BAD_FIELD", "message.data: missing"),
])
def test_an_undecodable_message_is_acknowledged_as_a_reject(wired, data, reason, detail):
    rate_voice = load_function("rate_voice").rate_voice

    rate_voice(pubsub_event(data, message_id="m-bad"))

    record = wired.usage.rejects["message:m-bad"]
    assert record["reason"] == reason and detail in record["detail"]
    assert record["message_id"] == "m-bad"


def test_a_cloud_event_without_a_pubsub_message_is_a_reject():
    event = CloudEvent({"id": "x1", "type": "t", "source": "s", "specversion": "1.0"}, {"hello": "world"})

    delivery = delivery_from_cloud_event(event)

    assert delivery.problem.reason.value == "BAD_FIELD" and delivery.message_id == "x1"


def test_the_message_id_and_attributes_are_kept():
    delivery = delivery_from_cloud_event(pubsub_event(orjson.dumps(voice_event("e1")), message_id="77"))

    assert (delivery.message_id, delivery.attributes["origin"]) == ("77", "switch-7")
    assert delivery.event["event_id"] == "e1" and delivery.raw.startswith("{")


def test_a_transient_failure_raises_so_pubsub_redelivers(wired):
    rate_voice = load_function("rate_voice").rate_voice
    wired.balances.fail_next(TransientError(TransientCode.BALANCES_UNAVAILABLE, "redis down"))

    with pytest.raises(TransientError):
        rate_voice(pubsub_event(orjson.dumps(voice_event("e1"))))
    rate_voice(pubsub_event(orjson.dumps(voice_event("e1"))))

    assert list(wired.usage.rated) == ["e1"]


def test_over_http_a_reject_is_acknowledged_and_a_transient_failure_answers_500(wired):
    client = create_app("rate_voice", str(ROOT / "functions" / "rate_voice" / "main.py"), "cloudevent").test_client()
    body = {"subscription": "projects/warp-local/subscriptions/s",
            "message": {"data": base64.b64encode(orjson.dumps(voice_event("e1"))).decode(), "messageId": "5",
                        "attributes": {}}}
    headers = {"ce-id": "5", "ce-specversion": "1.0", "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
               "ce-source": "//pubsub.googleapis.com/projects/warp-local/topics/usage-voice",
               "Content-Type": "application/json"}

    assert client.post("/", json=body, headers=headers).status_code == 200
    wired.balances.fail_next(TransientError(TransientCode.BALANCES_UNAVAILABLE, "redis down"))
    retried = client.post("/", json={**body, "message": {**body["message"], "data": base64.b64encode(
        orjson.dumps(voice_event("e2"))).decode()}}, headers=headers)
    assert retried.status_code == 500
    bad = client.post("/", json={**body, "message": {"data": "@@", "messageId": "6"}}, headers=headers)
    assert bad.status_code == 200 and wired.usage.rejects["message:6"]["reason"] == "MALFORMED_JSON"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_pins_its_runtime_requirements(name):
    pins = (ROOT / "functions" / name / "requirements.txt").read_text().split()
    required = [line for line in pins if "==" in line]
    names = {line.split("==")[0] for line in required}
    assert {"functions-framework", "redis", "pydantic-settings", "orjson", "pyyaml"} <= names
    root = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().split() if "==" in line)
    assert all(root[name] == version for name, version in (line.split("==") for line in required))

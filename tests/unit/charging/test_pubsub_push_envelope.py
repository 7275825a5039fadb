"""The rating functions as Terraform deploys them: HTTP-deployed gen2 functions fed by a Pub/Sub
push subscription (terraform/pubsub.tf) that posts the plain push envelope
``{"message": {...}, "subscription": ...}`` with no CloudEvent headers.

Cloud Functions starts an HTTP-deployed function with signature type ``http``; the
``@functions_framework.cloud_event`` decorator overrides that, and functions-framework converts
the push envelope into the messagePublished CloudEvent the rating code decodes. These tests post
exactly what Pub/Sub pushes, through functions-framework, to the real function modules.
"""

from __future__ import annotations

import base64

import orjson
import pytest
from functions_framework import _function_registry, create_app
from tests.charging_world import make_world, voice_event
from tests.unit.charging.test_usage_functions import FUNCTIONS, ROOT

from warp_billing import bootstrap
from warp_billing.charging.errors import TransientCode, TransientError


def push_envelope(data: bytes | None, message_id: str = "4242") -> dict:
    """What a Pub/Sub push subscription POSTs (no payload unwrapping)."""
    message: dict = {"attributes": {"origin": "switch-7"}, "messageId": message_id, "message_id": message_id,
                     "publishTime": "2026-11-03T12:00:01.000Z", "publish_time": "2026-11-03T12:00:01.000Z"}
    if data is not None:
        message["data"] = base64.b64encode(data).decode()
    return {"message": message, "subscription": "projects/warp-local/subscriptions/usage-voice-rate-voice"}


@pytest.fixture
def wired():
    world = make_world()
    world.topup("ACME", 5_000_000)
    bootstrap.reset(bootstrap.Container(charging=world.service))
    yield world
    bootstrap.reset()


def _client(name: str):
    # "http" is the signature type Cloud Functions gives a function deployed without an event trigger.
    return create_app(name, str(ROOT / "functions" / name / "main.py"), "http").test_client()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_decorator_makes_an_http_deployed_function_a_cloudevent_function(name):
    _client(name)
    assert _function_registry.get_func_signature_type(name, "http") == "cloudevent"


def test_a_pushed_message_is_rated_and_charged_once(wired):
    client = _client("rate_voice")

    first = client.post("/", json=push_envelope(orjson.dumps(voice_event("e1"))))
    again = client.post("/", json=push_envelope(orjson.dumps(voice_event("e1"))))

    assert (first.status_code, again.status_code) == (200, 200)
    assert wired.usage.rated["e1"]["amount"] == "0.050000"
    assert wired.balances.account("ACME").balance_micros == 5_000_000 - 50_000


def test_a_transient_failure_answers_500_so_pubsub_redelivers(wired):
    client = _client("rate_voice")
    wired.balances.fail_next(TransientError(TransientCode.BALANCES_UNAVAILABLE, "redis down"))

    assert client.post("/", json=push_envelope(orjson.dumps(voice_event("e2")))).status_code == 500
    assert client.post("/", json=push_envelope(orjson.dumps(voice_event("e2")))).status_code == 200
    assert list(wired.usage.rated) == ["e2"]


def test_an_undecodable_body_is_a_reject_and_acknowledged(wired):
    client = _client("rate_voice")

    response = client.post("/", json=push_envelope(b"{not json", message_id="m-bad"))

    assert response.status_code == 200
    assert wired.usage.rejects["message:m-bad"]["reason"] == "MALFORMED_JSON"


def test_a_message_without_data_is_refused_and_ends_in_the_dead_letter_topic(wired):
    # functions-framework only recognises a push envelope whose message has `data`; anything
    # else answers 400, which Pub/Sub retries and finally dead-letters (README, "Dead letters").
    client = _client("rate_voice")

    assert client.post("/", json=push_envelope(None, message_id="m-empty")).status_code == 400
    assert wired.usage.rejects == {} and wired.usage.rated == {}

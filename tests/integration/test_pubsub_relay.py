"""The Pub/Sub relay's Eventarc envelope, decoded by a real functions-framework server.

A small cloudevent function (relay_target/main.py) runs under functions-framework on a free
port for this module and records what the framework handed it; the tests compare that with
what was published, and watch redelivery and dead-lettering through real HTTP failures.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pubsub_relay  # tools/ is put on sys.path by tests/integration/conftest.py
from pubsub_relay import RetryPolicy, deliver, push_request, relay

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(__file__).with_name("relay_target") / "main.py"
FUNCTIONS_FRAMEWORK = Path(sys.executable).with_name("functions-framework")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """(url, path of the deliveries file) of a running functions-framework server."""
    out = tmp_path_factory.mktemp("relay") / "deliveries.jsonl"
    out.touch()
    port = free_port()
    log = (out.parent / "functions-framework.log").open("w")
    process = subprocess.Popen(
        [str(FUNCTIONS_FRAMEWORK), "--target", "record_delivery", "--source", str(TARGET),
         "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "RELAY_TARGET_OUT": str(out)}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                log = (out.parent / "functions-framework.log").read_text()
                pytest.fail(f"functions-framework did not start: {log}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/", out
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def deliveries(out: Path, message_id: str) -> list[dict]:
    return [entry for entry in map(json.loads, out.read_text().splitlines()) if entry["messageId"] == message_id]


def test_push_request_is_the_eventarc_binary_cloudevent():
    request = push_request("usage-voice", b'{"event_id": "e1"}', {"kind": "voice"}, "1234567890123456",
                           project="warp-prod", publish_time="2026-11-26T12:00:00.123Z")
    assert request.headers == {
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": "//pubsub.googleapis.com/projects/warp-prod/topics/usage-voice",
        "ce-id": "1234567890123456",
        "ce-time": "2026-11-26T12:00:00.123Z",
        "content-type": "application/json",
    }
    assert request.envelope() == {
        "subscription": "projects/warp-prod/subscriptions/eventarc-local-usage-voice-sub",
        "message": {
            "attributes": {"kind": "voice"},
            "data": base64.b64encode(b'{"event_id": "e1"}').decode(),
            "messageId": "1234567890123456", "message_id": "1234567890123456",
            "publishTime": "2026-11-26T12:00:00.123Z", "publish_time": "2026-11-26T12:00:00.123Z",
        },
    }
    assert "attributes" not in push_request("usage-voice", b"{}").envelope()["message"]


def test_functions_framework_decodes_data_attributes_and_message_id(target):
    url, out = target
    payload = '{"event_id": "ev-ü-1", "kind": "voice", "duration_s": 61}'.encode()
    response = deliver(url, "usage-voice", payload, {"kind": "voice", "source": "switch-7"}, "7000000000000001")
    assert response.status_code == 200
    [seen] = deliveries(out, "7000000000000001")
    assert base64.b64decode(seen["data_b64"]) == payload
    assert seen["attributes"] == {"kind": "voice", "source": "switch-7"}
    assert seen["id"] == seen["message_id"] == "7000000000000001"
    assert seen["specversion"] == "1.0"
    assert seen["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert seen["source"] == "//pubsub.googleapis.com/projects/warp-local/topics/usage-voice"
    assert seen["time"] == seen["publishTime"] == seen["publish_time"]
    assert seen["subscription"].startswith("projects/warp-local/subscriptions/")


def test_binary_payloads_and_messages_without_attributes_arrive_intact(target):
    url, out = target
    payload = bytes(range(256))
    assert deliver(url, "usage-api", payload, message_id="7000000000000002").status_code == 200
    [seen] = deliveries(out, "7000000000000002")
    assert base64.b64decode(seen["data_b64"]) == payload
    assert seen["attributes"] is None and "attributes" not in seen["message_keys"]


def test_a_failing_delivery_is_retried_under_the_same_message_id_until_acknowledged(target):
    url, out = target
    sleeps = []
    report = relay(url, "usage-messaging", [(b'{"event_id": "retry-1"}', {"fail_first": "2"})],
                   policy=RetryPolicy(max_attempts=5, min_backoff_s=0.01, max_backoff_s=0.02), sleep=sleeps.append)
    assert (report.delivered, report.redeliveries, report.dead_lettered) == (1, 2, 0)
    assert report.statuses == {"500": 2, "200": 1}
    assert sleeps == [0.01, 0.02]
    seen = [e for e in map(json.loads, out.read_text().splitlines()) if e["attributes"] == {"fail_first": "2"}]
    assert len(seen) == 3 and len({e["messageId"] for e in seen}) == 1


def test_a_message_that_keeps_failing_is_dead_lettered_after_max_attempts(target, tmp_path):
    url, out = target
    dead = tmp_path / "dead.jsonl"
    report = relay(url, "usage-voice", [(b'{"event_id": "poison-1"}', {"fail_first": "99"})],
                   policy=RetryPolicy(max_attempts=5, min_backoff_s=0, max_backoff_s=0), dead_letter=dead)
    assert (report.delivered, report.redeliveries, report.dead_lettered) == (0, 4, 1)
    [record] = map(json.loads, dead.read_text().splitlines())
    assert base64.b64decode(record["data"]) == b'{"event_id": "poison-1"}'
    assert record["attributes"]["fail_first"] == "99"
    assert record["attributes"]["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert record["topic"] == "projects/warp-local/topics/usage-voice-dead-letter"
    assert len(deliveries(out, record["messageId"])) == 5


def test_an_unreachable_function_counts_as_a_failed_delivery(tmp_path):
    dead = tmp_path / "dead.jsonl"
    report = relay(f"http://127.0.0.1:{free_port()}/", "usage-voice", [(b"{}", None)],
                   policy=RetryPolicy(max_attempts=5, min_backoff_s=0, max_backoff_s=0, timeout_s=2), dead_letter=dead)
    assert report.dead_lettered == 1 and report.statuses == {"ConnectionError": 5}


def test_retry_policy_follows_pubsub_dead_letter_bounds():
    with pytest.raises(ValueError, match="5..100"):
        RetryPolicy(max_attempts=4)
    with pytest.raises(ValueError, match="5..100"):
        RetryPolicy(max_attempts=101)
    policy = RetryPolicy(max_attempts=10, min_backoff_s=10, max_backoff_s=600)
    assert [policy.backoff(n) for n in (1, 2, 3, 6, 7, 9)] == [10, 20, 40, 320, 600, 600]


def test_the_cli_relays_a_jsonl_file_and_reports(target, tmp_path):
    url, out = target
    source = tmp_path / "usage.jsonl"
    source.write_bytes(b'{"event_id": "cli-1"}\n\n{"event_id": "cli-2"}\r\n')
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "pubsub_relay.py"), "--url", url,
                             "--topic", "usage-sms", "--in", str(source), "--attribute", "origin=cli"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["delivered"] == 2
    bodies = sorted(base64.b64decode(e["data_b64"]) for e in map(json.loads, out.read_text().splitlines())
                    if e["attributes"] == {"origin": "cli"})
    assert bodies == [b'{"event_id": "cli-1"}', b'{"event_id": "cli-2"}']
    poison = tmp_path / "poison.jsonl"
    poison.write_text('{"event_id": "cli-poison"}\n')
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "pubsub_relay.py"), "--url", url,
                             "--topic", "usage-sms", "--in", str(poison), "--attribute", "fail_first=99",
                             "--min-backoff", "0", "--max-backoff", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert json.loads((tmp_path / "poison.dead-letter.jsonl").read_text())["attributes"]["fail_first"] == "99"
    assert pubsub_relay.MAX_DELIVERY_ATTEMPTS == 100

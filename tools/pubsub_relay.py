#!/usr/bin/env python3
"""Local Pub/Sub delivery: POST each message to a function exactly as Eventarc would.

No Pub/Sub emulator works on these machines (local-stack.md), but what a gen2 function sees of
Pub/Sub is plain HTTP: one CloudEvent per message, in binary content mode::

    POST /  content-type: application/json
    ce-specversion: 1.0
    ce-type: google.cloud.pubsub.topic.v1.messagePublished
    ce-source: //pubsub.googleapis.com/projects/P/topics/T
    ce-id: <messageId>            ce-time: <publishTime>
    {"subscription": "projects/P/subscriptions/S",
     "message": {"attributes": {...}, "data": "<base64>", "messageId": "...", "message_id": "...",
                 "publishTime": "...", "publish_time": "..."}}

``push_request()`` builds that request (tests use it too), ``deliver()`` sends one, and the CLI
relays a JSONL file (one message body per line) with Pub/Sub's push semantics: a 2xx
acknowledges; anything else (or no answer) is redelivered with exponential backoff, under the
same messageId, until ``--max-attempts`` (the subscription's dead-letter policy, 5..100), after
which the message goes to a dead-letter JSONL file carrying the attributes Pub/Sub adds
(``CloudPubSubDeadLetterSourceDeliveryCount``...). Backoff defaults are Pub/Sub's (10 s..600 s)
scaled down for local runs; pass ``--min-backoff 10 --max-backoff 600`` for the real ones.

Example::

    python tools/pubsub_relay.py --url http://127.0.0.1:8081/ --topic usage-voice \\
        --in build/sample/usage.jsonl --dead-letter build/usage-voice.dead.jsonl
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import secrets
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
DEFAULT_PROJECT = "warp-local"
MIN_DELIVERY_ATTEMPTS, MAX_DELIVERY_ATTEMPTS = 5, 100  # Pub/Sub's dead-letter policy bounds


@dataclass(frozen=True)
class PushRequest:
    """The HTTP request Eventarc sends for one Pub/Sub message (binary CloudEvent)."""

    headers: dict[str, str]
    body: bytes
    message_id: str

    def envelope(self) -> dict:
        return json.loads(self.body)


def new_message_id() -> str:
    """A messageId shaped like Pub/Sub's (a decimal string of 16 digits)."""
    return str(10**15 + secrets.randbelow(9 * 10**15))


def publish_time_now() -> str:
    """RFC 3339 UTC with milliseconds and a Z, as Pub/Sub writes publishTime."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_subscription(project: str, topic: str) -> str:
    """The name Eventarc gives the push subscription it creates for a trigger (shape only)."""
    return f"projects/{project}/subscriptions/eventarc-local-{topic}-sub"


def push_request(
    topic: str,
    payload: bytes,
    attributes: Mapping[str, str] | None = None,
    message_id: str | None = None,
    *,
    project: str = DEFAULT_PROJECT,
    subscription: str | None = None,
    publish_time: str | None = None,
    ordering_key: str | None = None,
) -> PushRequest:
    """Build the Eventarc CloudEvent for one Pub/Sub message of ``topic`` carrying ``payload``.

    Like Pub/Sub, ``attributes`` is left out of the message when there are none, and
    ``orderingKey`` only appears when one was published.
    """
    if not isinstance(payload, (bytes, bytearray)):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    for key, value in (attributes or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"Pub/Sub attributes are strings: {key!r}={value!r}")
    message_id = message_id or new_message_id()
    publish_time = publish_time or publish_time_now()
    message: dict = {}
    if attributes:
        message["attributes"] = dict(attributes)
    message.update({
        "data": base64.b64encode(bytes(payload)).decode("ascii"),
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": publish_time,
        "publish_time": publish_time,
    })
    if ordering_key:
        message["orderingKey"] = ordering_key
    body = {"subscription": subscription or default_subscription(project, topic), "message": message}
    headers = {
        "ce-specversion": "1.0",
        "ce-type": EVENT_TYPE,
        "ce-source": f"//pubsub.googleapis.com/projects/{project}/topics/{topic}",
        "ce-id": message_id,
        "ce-time": publish_time,
        "content-type": "application/json",
    }
    return PushRequest(headers, json.dumps(body, separators=(",", ":")).encode("utf-8"), message_id)


def deliver(
    url: str,
    topic: str,
    payload_bytes: bytes,
    attributes: Mapping[str, str] | None = None,
    message_id: str | None = None,
    *,
    project: str = DEFAULT_PROJECT,
    timeout: float = 60.0,
    session: requests.Session | None = None,
) -> requests.Response:
    """POST one message to a function as Eventarc would; one attempt, the response returned as is."""
    request = push_request(topic, payload_bytes, attributes, message_id, project=project)
    return (session or requests).post(url, data=request.body, headers=request.headers, timeout=timeout)


# ------------------------------------------------------------------------------ relay


@dataclass(frozen=True)
class RetryPolicy:
    """Push redelivery: exponential backoff between attempts, dead-letter after ``max_attempts``."""

    max_attempts: int = 5
    min_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not MIN_DELIVERY_ATTEMPTS <= self.max_attempts <= MAX_DELIVERY_ATTEMPTS:
            raise ValueError(f"max_attempts must be {MIN_DELIVERY_ATTEMPTS}..{MAX_DELIVERY_ATTEMPTS} "
                             f"(Pub/Sub dead-letter policy), got {self.max_attempts}")
        if not 0 <= self.min_backoff_s <= self.max_backoff_s:
            raise ValueError("backoff must satisfy 0 <= min <= max")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed delivery number ``attempt`` (1-based)."""
        return min(self.max_backoff_s, self.min_backoff_s * 2 ** (attempt - 1))


@dataclass
class RelayReport:
    """What a relay run did (printed by the CLI as JSON).

    Attributes:
        delivered: messages acknowledged with a 2xx.
        redeliveries: extra attempts made after failures (all messages together).
        dead_lettered: messages that used up their attempts and went to the dead-letter file.
    """

    messages: int = 0
    delivered: int = 0
    redeliveries: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, status: str) -> None:
        with self._lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def as_dict(self) -> dict:
        return {"messages": self.messages, "delivered": self.delivered, "redeliveries": self.redeliveries,
                "dead_lettered": self.dead_lettered, "seconds": round(self.seconds, 3),
                "statuses": dict(sorted(self.statuses.items()))}


class DeadLetterFile:
    """Appends dead-lettered messages as JSONL, shaped like the message Pub/Sub forwards."""

    def __init__(self, path: Path | None, project: str, topic: str):
        self.path, self.project, self.topic = path, project, topic
        self._lock = threading.Lock()

    def write(self, request: PushRequest, attempts: int, last_status: str) -> None:
        if self.path is None:
            return
        message = request.envelope()["message"]
        attributes = dict(message.get("attributes", {}))
        attributes.update({
            "CloudPubSubDeadLetterSourceDeliveryCount": str(attempts),
            "CloudPubSubDeadLetterSourceSubscription": request.envelope()["subscription"].rsplit("/", 1)[-1],
            "CloudPubSubDeadLetterSourceSubscriptionProject": self.project,
            "CloudPubSubDeadLetterSourceTopicPublishTime": message["publishTime"],
        })
        record = {"topic": f"projects/{self.project}/topics/{self.topic}-dead-letter",
                  "source_topic": self.topic, "messageId": message["messageId"], "attributes": attributes,
                  "data": message["data"], "last_status": last_status,
                  "dead_lettered_at": publish_time_now()}
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line)


def relay(
    url: str,
    topic: str,
    messages: Iterable[tuple[bytes, Mapping[str, str] | None]],
    *,
    policy: RetryPolicy = RetryPolicy(),
    project: str = DEFAULT_PROJECT,
    dead_letter: Path | None = None,
    concurrency: int = 4,
    sleep=time.sleep,
) -> RelayReport:
    """Deliver every (payload, attributes) with push semantics; see the module docstring."""
    report = RelayReport()
    dead = DeadLetterFile(dead_letter, project, topic)
    local = threading.local()
    started = time.monotonic()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def one(payload: bytes, attributes: Mapping[str, str] | None) -> None:
        request = push_request(topic, payload, attributes, project=project)
        status = "none"
        for attempt in range(1, policy.max_attempts + 1):
            try:
                response = session().post(url, data=request.body, headers=request.headers, timeout=policy.timeout_s)
                status = str(response.status_code)
                if 200 <= response.status_code < 300:
                    report.count(status)
                    with report._lock:
                        report.delivered += 1
                    return
            except requests.RequestException as exc:
                status = type(exc).__name__
            report.count(status)
            if attempt < policy.max_attempts:
                with report._lock:
                    report.redeliveries += 1
                sleep(policy.backoff(attempt))
        dead.write(request, policy.max_attempts, status)
        with report._lock:
            report.dead_lettered += 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = []
        for payload, attributes in messages:
            report.messages += 1
            futures.append(pool.submit(one, payload, attributes))
        for future in futures:
            future.result()
    report.seconds = time.monotonic() - started
    return report


def read_jsonl(path: Path, attributes: Mapping[str, str] | None = None):
    """Each non-blank line of ``path`` as one message body (the line's bytes, unchanged)."""
    with path.open("rb") as lines:
        for line in lines:
            body = line.rstrip(b"\r\n")
            if body.strip():
                yield body, attributes


def _attribute(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"attribute {text!r} must look like key=value")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="function URL, e.g. http://127.0.0.1:8081/")
    parser.add_argument("--topic", required=True, help="topic id the messages were published to (usage-voice...)")
    parser.add_argument("--in", dest="source", type=Path, required=True, help="JSONL file: one message body per line")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    parser.add_argument("--attribute", action="append", type=_attribute, default=[], metavar="KEY=VALUE",
                        help="message attribute added to every message (repeatable)")
    parser.add_argument("--max-attempts", type=int, default=5, help="deliveries before dead-lettering (5..100)")
    parser.add_argument("--min-backoff", type=float, default=0.1, help="seconds before the first redelivery")
    parser.add_argument("--max-backoff", type=float, default=2.0, help="cap of the exponential backoff")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one push")
    parser.add_argument("--concurrency", type=int, default=4, help="pushes in flight at once")
    parser.add_argument("--dead-letter", type=Path,
                        help="JSONL file for dead-lettered messages (default: beside --in, *.dead-letter.jsonl)")
    args = parser.parse_args(argv)
    try:
        policy = RetryPolicy(args.max_attempts, args.min_backoff, args.max_backoff, args.timeout)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.source.exists():
        parser.error(f"{args.source} does not exist")
    dead_letter = args.dead_letter or args.source.with_name(args.source.stem + ".dead-letter.jsonl")
    report = relay(args.url, args.topic, read_jsonl(args.source, dict(args.attribute) or None), policy=policy,
                   project=args.project, dead_letter=dead_letter, concurrency=args.concurrency)
    print(json.dumps(report.as_dict()))
    if report.dead_lettered:
        print(f"pubsub-relay: {report.dead_lettered} message(s) dead-lettered to {dead_letter}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

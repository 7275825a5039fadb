#!/usr/bin/env python3
"""SendGrid stand-in for the local stack and the tests: ``POST /v3/mail/send`` records the mail, 202.

Checks what SendGrid checks first: a Bearer key (401 without), a JSON body with
``personalizations[].to[].email``, ``from.email`` and ``template_id`` or ``content`` (400 with
SendGrid's ``{"errors": [{message, field, help}]}`` otherwise). Answers 202 with an
``X-Message-Id``; records every accepted mail (with whether it was in sandbox mode) in memory and,
with ``--record FILE``, one JSON line each. ``GET /_mails`` lists the recorded mails (tests);
``DELETE /_mails`` forgets them.

    python tools/sendgrid_standin.py --port 8096 [--record FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class SendGridStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, record: Path | None = None):
        super().__init__(("127.0.0.1", port), _Handler)
        self.mails: list[dict] = []
        self.lock = threading.Lock()
        self.record = record
        self.ids = itertools.count(1)


class _Handler(BaseHTTPRequestHandler):
    server: SendGridStandIn

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self, status: int, body: object | None = None, headers: dict | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/_mails":
            with self.server.lock:
                self._answer(200, list(self.server.mails))
        else:
            self._answer(404, {"errors": [{"message": "not found"}]})

    def do_DELETE(self) -> None:
        if self.path == "/_mails":
            with self.server.lock:
                self.server.mails.clear()
            self._answer(204)
        else:
            self._answer(404)

    def do_POST(self) -> None:
        if self.path != "/v3/mail/send":
            self._answer(404, {"errors": [{"message": "not found"}]})
            return
        if not (self.headers.get("Authorization") or "").startswith("Bearer ") \
                or len(self.headers["Authorization"]) <= len("Bearer "):
            self._answer(401, {"errors": [{"message": "The provided authorization grant is invalid, expired, "
                                                      "or revoked", "field": None, "help": None}]})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._answer(400, {"errors": [{"message": "Bad Request", "field": None, "help": None}]})
            return
        problem = _problem(body)
        if problem is not None:
            self._answer(400, {"errors": [{"message": problem[1], "field": problem[0], "help": None}]})
            return
        message_id = f"standin-{next(self.server.ids)}"
        sandbox = bool(((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"))
        record = {"message_id": message_id, "sandbox": sandbox, "body": body}
        with self.server.lock:
            self.server.mails.append(record)
            if self.server.record is not None:
                with self.server.record.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")
        self._answer(200 if sandbox else 202, None, {"X-Message-Id": message_id})


def _problem(body: object) -> tuple[str, str] | None:
    if not isinstance(body, dict):
        return "", "the request body must be a JSON object"
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return "personalizations", "The personalizations field is required and must have at least one personalization."
    for item in personalizations:
        recipients = item.get("to") if isinstance(item, dict) else None
        if not isinstance(recipients, list) or not recipients or not all(
                isinstance(to, dict) and "@" in str(to.get("email", "")) for to in recipients):
            return "personalizations.0.to", "The to array is required for all personalization objects."
    if not isinstance(body.get("from"), dict) or "@" not in str(body["from"].get("email", "")):
        return "from.email", "The from email does not contain a valid address."
    if not body.get("template_id") and not body.get("content"):
        return "content", "Unless a valid template_id is provided, the content parameter is required."
    for index, attachment in enumerate(body.get("attachments") or []):
        if not attachment.get("content") or not attachment.get("filename"):
            return f"attachments.{index}", "The attachment content and filename are required."
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8096)
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    server = SendGridStandIn(args.port, args.record)
    print(f"sendgrid stand-in listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

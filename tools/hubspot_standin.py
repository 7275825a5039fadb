#!/usr/bin/env python3
"""HubSpot CRM v3 stand-in: ``POST /crm/v3/objects/{companies|deals}/batch/upsert``, throttled.

Upserts by the unique property each input names (``idProperty``, value ``id``): the object is
created or its properties merged, and its update count goes up by one. Above ``--rate`` requests
in a sliding ``--window`` of seconds (HubSpot: 100-190 per 10 s) a request is refused with 429,
``Retry-After: <--retry-after>`` and HubSpot's error body, and nothing in it is applied. More than
100 inputs or no Bearer token is refused (400 / 401). ``GET /_objects/<type>`` lists what is
stored (tests), ``GET /_stats`` counts requests and 429s, ``DELETE /_objects`` forgets everything.

    python tools/hubspot_standin.py --port 8097 [--rate 10 --window 1 --retry-after 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSERT = re.compile(r"^/crm/v3/objects/(companies|deals)/batch/upsert$")


class HubSpotStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, *, rate: int = 10, window_s: float = 1.0, retry_after_s: int = 1):
        super().__init__(("127.0.0.1", port), _Handler)
        self.rate, self.window_s, self.retry_after_s = rate, window_s, retry_after_s
        self.lock = threading.Lock()
        self.recent: collections.deque[float] = collections.deque()
        self.objects: dict[str, dict[str, dict]] = {"companies": {}, "deals": {}}
        self.requests = 0
        self.throttled = 0

    def admit(self) -> bool:
        now = time.monotonic()
        with self.lock:
            self.requests += 1
            while self.recent and now - self.recent[0] >= self.window_s:
                self.recent.popleft()
            if len(self.recent) >= self.rate:
                self.throttled += 1
                return False
            self.recent.append(now)
            return True


class _Handler(BaseHTTPRequestHandler):
    server: HubSpotStandIn

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: object | None = None, headers: dict | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/_objects/"):
            kind = self.path.rsplit("/", 1)[-1]
            with self.server.lock:
                self._answer(200, self.server.objects.get(kind, {}))
        elif self.path == "/_stats":
            with self.server.lock:
                self._answer(200, {"requests": self.server.requests, "throttled": self.server.throttled})
        else:
            self._answer(404, {"status": "error", "message": "not found"})

    def do_DELETE(self) -> None:
        with self.server.lock:
            self.server.objects = {"companies": {}, "deals": {}}
            self.server.requests = self.server.throttled = 0
            self.server.recent.clear()
        self._answer(204)

    def do_POST(self) -> None:
        match = UPSERT.match(self.path)
        if match is None:
            self._answer(404, {"status": "error", "message": "not found"})
            return
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            self._answer(401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                               "message": "Authentication credentials not found."})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        if not self.server.admit():
            self._answer(429, {"status": "error", "category": "RATE_LIMITS",
                               "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
                               "policyName": "SECONDLY"}, {"Retry-After": str(self.server.retry_after_s)})
            return
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100:
            self._answer(400, {"status": "error", "category": "VALIDATION_ERROR",
                               "message": "inputs: 1 to 100 objects"})
            return
        kind = match.group(1)
        results = []
        with self.server.lock:
            store = self.server.objects[kind]
            for item in inputs:
                key = f"{item.get('idProperty')}={item.get('id')}"
                stored = store.setdefault(key, {"properties": {}, "updates": 0})
                stored["properties"].update(item.get("properties") or {})
                stored["updates"] += 1
                results.append({"id": key, "properties": stored["properties"]})
        self._answer(200, {"status": "COMPLETE", "results": results})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--rate", type=int, default=10)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--retry-after", type=int, default=1)
    args = parser.parse_args()
    server = HubSpotStandIn(args.port, rate=args.rate, window_s=args.window, retry_after_s=args.retry_after)
    print(f"hubspot stand-in listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A NetSuite stand-in for the local stack: the SuiteTalk REST calls WARP makes, with faults.

What it does like NetSuite (reference.md, "NetSuite SuiteTalk REST"):

* ``POST /services/rest/auth/oauth2/v1/token``: OAuth 2.0 client credentials with a JWT
  assertion. The assertion's signature is verified against the registered certificate named by
  its ``kid`` (PS256/384/512, ES256/384/512; no RS256), with ``aud`` = this token URL, ``exp``
  required and at most one hour after ``iat``, ``iss`` = the client id registered with the
  certificate (when one is), scope ``rest_webservices``. Tokens live ``token_lifetime_s``.
* ``PUT /services/rest/record/v1/<type>/eid:<externalId>``: upsert (create or update) -> 204 +
  ``Location: .../<type>/<internal id>``; an update keeps a sublist's lines and adds the sent
  ones unless ``?replace=<sublist,...>`` names it; ``POST .../<type>``: create -> 204 + Location;
  ``GET .../<type>/eid:<externalId>`` or ``.../<type>/<id>``: the record, 404 when missing.
  References must exist (an invoice's customer, a payment's or credit memo's invoices, the payment
  or deposit a customer refund gives back), journal entries must balance, transactions need item
  lines, a payment applies at most its amount, a ``customerRefund`` refunds at most the unapplied
  amount of the ``customerPayment`` (sublist ``apply``) or what is left of the ``customerDeposit``
  (sublist ``deposit``) it names, net of the other refunds: otherwise 400 with ``o:errorDetails``.
* The account concurrency limit: more record calls in flight than ``concurrency_limit`` -> 429.
* Faults, drawn per record call from a seeded generator: ``rate_429``, ``rate_limit400``
  (400 SSS_REQUEST_LIMIT_EXCEEDED), ``rate_5xx``, ``rate_timeout`` (hold the call
  ``timeout_s``, then drop it unanswered, nothing written), ``rate_commit_drop`` (write, then
  drop the connection without an answer) and ``rate_slow`` (answer ``slow_ms`` late); every
  record call also takes ``latency_ms``.

Control (tests and benchmarks, per run): ``POST /_control`` with any of ``reset`` (forget
records, tokens, counters), ``faults`` {rate_*...}, ``seed``, ``concurrency_limit``,
``latency_ms``, ``slow_ms``, ``timeout_s``, ``token_lifetime_s``, ``expire_tokens`` (every
issued token is refused from now on), ``certificates`` {kid: PEM, ...}, ``clients`` {kid:
client id}; ``GET /_control`` shows the configuration and counters; ``GET /_control/records``
lists every stored record with its write count (raw data: duplicates would show here).

Usage: ``python tools/netsuite_standin.py --port 8090 [--certificate PEM --kid ID --client-id ID]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import secrets
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
RECORD_PREFIX = "/services/rest/record/v1/"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
FAULTS = ("rate_429", "rate_limit400", "rate_5xx", "rate_timeout", "rate_commit_drop", "rate_slow")
RECORD_ROUTE = re.compile(r"^(?P<type>[A-Za-z]+)(?:/(?P<key>[^/?]+))?$")

DEFAULTS: dict[str, Any] = {
    "concurrency_limit": 5, "latency_ms": 0, "slow_ms": 2000, "timeout_s": 3.0, "token_lifetime_s": 3600,
    "seed": 1, "faults": {name: 0.0 for name in FAULTS},
}


def public_key(pem: str):
    data = pem.encode()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return load_pem_public_key(data)


class Dropped(Exception):
    """Answer nothing: the connection is closed (timeouts and commit-then-drop)."""


class Account:
    """The stand-in's NetSuite account: records, tokens, configuration, counters (one lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.config: dict[str, Any] = json.loads(json.dumps(DEFAULTS))
        self.certificates: dict[str, Any] = {}
        self.certificate_pems: dict[str, str] = {}
        self.clients: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        self.records: dict[str, dict[str, dict]] = {}  # type -> internal id -> record
        self.by_external: dict[tuple[str, str], str] = {}
        self.tokens: dict[str, float] = {}
        self.next_id = 1000
        self.in_flight = 0
        self.stats: dict[str, int] = {"record_calls": 0, "tokens_issued": 0, "token_refusals": 0, "unauthorized": 0,
                                      "over_limit": 0, "max_in_flight": 0, "creates": 0, "updates": 0,
                                      "validation_errors": 0, **{name: 0 for name in FAULTS}}
        self.random = random.Random(self.config["seed"])

    def configure(self, update: dict) -> None:
        with self.lock:
            if update.get("reset"):
                self.reset()
            for key in ("concurrency_limit", "latency_ms", "slow_ms", "timeout_s", "token_lifetime_s"):
                if key in update:
                    self.config[key] = update[key]
            if "faults" in update:
                unknown = set(update["faults"]) - set(FAULTS)
                if unknown:
                    raise ValueError(f"unknown faults {sorted(unknown)}; known: {list(FAULTS)}")
                self.config["faults"] = {**{name: 0.0 for name in FAULTS}, **update["faults"]}
            if "seed" in update:
                self.config["seed"] = update["seed"]
                self.random = random.Random(update["seed"])
            if update.get("expire_tokens"):
                self.tokens = {token: 0.0 for token in self.tokens}
            for kid, pem in (update.get("certificates") or {}).items():
                self.certificates[kid] = public_key(pem)
                self.certificate_pems[kid] = pem
            self.clients.update(update.get("clients") or {})

    def draw_fault(self) -> str | None:
        with self.lock:
            point = self.random.random()
            edge = 0.0
            for name in FAULTS:
                edge += float(self.config["faults"].get(name, 0.0))
                if point < edge:
                    self.stats[name] += 1
                    return name
        return None


ACCOUNT = Account()


def error_body(status: int, code: str, detail: str, path: str = "") -> dict:
    entry = {"detail": detail, "o:errorCode": code}
    if path:
        entry["o:errorPath"] = path
    return {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15", "title": code, "status": status,
            "o:errorDetails": [entry]}


class Refused(Exception):
    def __init__(self, status: int, code: str, detail: str, path: str = "", headers: dict | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.path = status, code, detail, path
        self.headers = headers or {}


def _ref_id(body: dict, key: str) -> str | None:
    value = body.get(key)
    return str(value["id"]) if isinstance(value, dict) and value.get("id") is not None else None


def _check_applications(body: dict) -> None:
    for index, application in enumerate((body.get("apply") or {}).get("items") or []):
        doc = _ref_id(application, "doc")
        if doc is None or doc not in ACCOUNT.records.get("invoice", {}):
            raise Refused(400, "INVALID_KEY_OR_REF", f"Invalid apply reference key {doc}.", f"apply.items[{index}].doc")


def _check_reference(body: dict, key: str, record_type: str) -> None:
    ref = _ref_id(body, key)
    if ref is None or ref not in ACCOUNT.records.get(record_type, {}):
        raise Refused(400, "INVALID_KEY_OR_REF", f"Invalid {key} reference key {ref}.", key)


def _transaction_total(body: dict) -> Decimal:
    _check_reference(body, "entity", "customer")
    items = (body.get("item") or {}).get("items") or []
    if not items:
        raise Refused(400, "USER_ERROR", "You must enter at least one line item for this transaction.", "item")
    for index, item in enumerate(items):
        if _ref_id(item, "item") is None:
            raise Refused(400, "INVALID_KEY_OR_REF", "Invalid item reference key.", f"item.items[{index}].item")
    _check_applications(body)
    return sum((Decimal(str(item["amount"])) for item in items), Decimal("0"))


def _journal_total(body: dict) -> Decimal:
    lines = (body.get("line") or {}).get("items") or []
    debits = sum((Decimal(str(line.get("debit", 0))) for line in lines), Decimal("0"))
    credits = sum((Decimal(str(line.get("credit", 0))) for line in lines), Decimal("0"))
    if not lines or debits != credits:
        raise Refused(400, "USER_ERROR", f"The transaction is out of balance ({debits} vs {credits}).", "line")
    return debits


def _applied(lines: list, only: str | None = None) -> Decimal:
    """The amount of the sublist lines marked ``apply`` (those on the record ``only`` when given)."""
    return sum((Decimal(str(line.get("amount", 0))) for line in lines
                if line.get("apply", True) is not False and (only is None or _ref_id(line, "doc") == only)),
               Decimal("0"))


def _refunded(internal_id: str, sublist: str, exclude: str | None) -> Decimal:
    """What the customer refunds (other than ``exclude``) already give back of payment or deposit ``internal_id``."""
    return sum((_applied((record["body"].get(sublist) or {}).get("items") or [], internal_id)
                for record_id, record in ACCOUNT.records.get("customerRefund", {}).items() if record_id != exclude),
               Decimal("0"))


def _check_payment(body: dict, self_id: str | None) -> Decimal:
    """A customer payment: its customer and invoices exist, and what it applies plus what refunds gave back
    of it is at most the payment."""
    _check_reference(body, "customer", "customer")
    _check_applications(body)
    payment = Decimal(str(body.get("payment", "0")))
    applied = _applied((body.get("apply") or {}).get("items") or [])
    refunded = _refunded(self_id, "apply", None) if self_id else Decimal("0")
    if applied + refunded > payment:
        raise Refused(400, "USER_ERROR", f"The total applied ({applied}) and refunded ({refunded}) exceeds the "
                      f"payment ({payment}).", "apply")
    return payment


def _check_deposit(body: dict) -> Decimal:
    _check_reference(body, "customer", "customer")
    payment = Decimal(str(body.get("payment", "0")))
    if payment <= 0:
        raise Refused(400, "USER_ERROR", "Please enter a value for Payment Amount.", "payment")
    return payment


def _check_refund(body: dict, self_id: str | None) -> Decimal:
    """A customer refund gives back unapplied credit: a payment's unapplied amount (``apply``) or a
    deposit (``deposit``), never more than is left of it after the other refunds."""
    _check_reference(body, "customer", "customer")
    total = Decimal("0")
    for sublist, record_type in (("apply", "customerPayment"), ("deposit", "customerDeposit")):
        for index, line in enumerate((body.get(sublist) or {}).get("items") or []):
            doc = _ref_id(line, "doc")
            credit = ACCOUNT.records.get(record_type, {}).get(doc or "")
            if credit is None:
                raise Refused(400, "INVALID_KEY_OR_REF", f"Invalid {sublist} reference key {doc}.",
                              f"{sublist}.items[{index}].doc")
            if line.get("apply", True) is False:
                continue
            amount = Decimal(str(line.get("amount", 0)))
            left = Decimal(str(credit["body"].get("payment", "0"))) - _refunded(str(doc), sublist, self_id)
            if record_type == "customerPayment":
                left -= _applied((credit["body"].get("apply") or {}).get("items") or [])
            if amount <= 0 or amount > left:
                raise Refused(400, "USER_ERROR", f"The refund amount {amount} exceeds the available credit {left} "
                              f"of {record_type} {doc}.", f"{sublist}.items[{index}].amount")
            total += amount
    if total <= 0:
        raise Refused(400, "USER_ERROR", "You must apply the refund to at least one credit or deposit.", "apply")
    return total


def validate(record_type: str, body: dict, self_id: str | None = None) -> Decimal | None:
    """Check a record like NetSuite would (references exist, lines present, nothing applied or refunded
    beyond what there is); its total if a transaction. ``self_id``: the record being updated."""
    if record_type in ("invoice", "creditMemo"):
        return _transaction_total(body)
    if record_type == "customerPayment":
        return _check_payment(body, self_id)
    if record_type == "customerDeposit":
        return _check_deposit(body)
    if record_type == "customerRefund":
        return _check_refund(body, self_id)
    if record_type == "journalEntry":
        return _journal_total(body)
    if record_type == "customer" and not body.get("companyName"):
        raise Refused(400, "USER_ERROR", "Please enter value(s) for: Company Name", "companyName")
    return None


def merged(old: dict, update: dict, replace: set[str]) -> dict:
    """NetSuite's update: body fields overwritten; a sublist's lines added unless ``replace`` names it."""
    result = {**old, **update}
    for key, value in update.items():
        if isinstance(value, dict) and "items" in value and key not in replace and isinstance(old.get(key), dict):
            result[key] = {**value, "items": [*(old[key].get("items") or []), *value["items"]]}
    return result


def write_record(record_type: str, external_id: str | None, body: dict, replace: set[str] = frozenset()) -> str:
    """Create or update (by externalId) under the account lock; the internal id."""
    with ACCOUNT.lock:
        table = ACCOUNT.records.setdefault(record_type, {})
        existing = ACCOUNT.by_external.get((record_type, external_id)) if external_id else None
        if existing is not None:
            body = merged(table[existing]["body"], body, replace)
        try:
            total = validate(record_type, body, existing)
        except Refused:
            ACCOUNT.stats["validation_errors"] += 1
            raise
        if existing is not None:
            record = table[existing]
            record["body"] = body
            record["writes"] += 1
            record["total"] = None if total is None else format(total, "f")
            ACCOUNT.stats["updates"] += 1
            return existing
        ACCOUNT.next_id += 1
        internal_id = str(ACCOUNT.next_id)
        table[internal_id] = {"id": internal_id, "type": record_type, "externalId": external_id, "body": body,
                              "writes": 1, "total": None if total is None else format(total, "f"),
                              "created": time.time()}
        if external_id:
            ACCOUNT.by_external[(record_type, external_id)] = internal_id
        ACCOUNT.stats["creates"] += 1
        return internal_id


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NetSuiteStandIn/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    # -- plumbing ------------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any = None, headers: dict | None = None) -> None:
        data = b"" if body is None else json.dumps(body, default=str).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(2)

    def _base(self) -> str:
        return f"http://{self.headers.get('Host', '')}"

    # -- routes --------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path == "/_control":
            with ACCOUNT.lock:
                return self._send(200, {"config": ACCOUNT.config, "stats": ACCOUNT.stats,
                                        "in_flight": ACCOUNT.in_flight, "certificates": sorted(ACCOUNT.certificates)})
        if path == "/_control/records":
            with ACCOUNT.lock:
                records = [dict(record) for table in ACCOUNT.records.values() for record in table.values()]
            return self._send(200, {"records": records})
        self._record_call("GET", path, b"", parse_qs(urlsplit(self.path).query))

    def do_PUT(self) -> None:  # noqa: N802
        self._record_call("PUT", urlsplit(self.path).path, self._body(), parse_qs(urlsplit(self.path).query))

    def do_PATCH(self) -> None:  # noqa: N802
        self._record_call("PATCH", urlsplit(self.path).path, self._body(), parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        data = self._body()
        if path == "/_control":
            try:
                ACCOUNT.configure(json.loads(data or b"{}"))
            except (ValueError, TypeError) as exc:
                return self._send(400, {"error": str(exc)})
            return self._send(200, {"config": ACCOUNT.config})
        if path == TOKEN_PATH:
            return self._token(data)
        self._record_call("POST", path, data)

    def _token(self, data: bytes) -> None:
        form = {key: values[0] for key, values in parse_qs(data.decode("utf-8", "replace")).items()}
        try:
            if form.get("grant_type") != "client_credentials":
                raise Refused(400, "unsupported_grant_type", "grant_type must be client_credentials")
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise Refused(400, "invalid_request", "client_assertion_type must be jwt-bearer")
            assertion = form.get("client_assertion", "")
            header = jwt.get_unverified_header(assertion)
            if header.get("alg") not in ALGORITHMS:
                raise Refused(400, "invalid_client", f"alg {header.get('alg')} is not accepted")
            kid = header.get("kid")
            with ACCOUNT.lock:
                key = ACCOUNT.certificates.get(kid)
                client = ACCOUNT.clients.get(kid)
            if key is None:
                raise Refused(400, "invalid_client", f"no certificate {kid!r} is mapped to an integration")
            claims = jwt.decode(assertion, key, algorithms=[header["alg"]], audience=self._base() + TOKEN_PATH,
                                options={"require": ["exp", "iat", "iss", "aud"]})
            if int(claims["exp"]) - int(claims["iat"]) > 3600:
                raise Refused(400, "invalid_grant", "exp may be at most 3600 s after iat")
            if client is not None and claims["iss"] != client:
                raise Refused(400, "invalid_client", "iss is not the client id of this certificate")
            scope = claims.get("scope", [])
            scopes = scope if isinstance(scope, list) else re.split(r"[ ,]+", str(scope))
            if "rest_webservices" not in scopes:
                raise Refused(400, "invalid_scope", "scope must include rest_webservices")
        except jwt.PyJWTError as exc:
            with ACCOUNT.lock:
                ACCOUNT.stats["token_refusals"] += 1
            return self._send(400, {"error": "invalid_grant", "error_description": str(exc)})
        except Refused as refused:
            with ACCOUNT.lock:
                ACCOUNT.stats["token_refusals"] += 1
            return self._send(refused.status, {"error": refused.code, "error_description": refused.detail})
        token = secrets.token_urlsafe(32)
        with ACCOUNT.lock:
            lifetime = int(ACCOUNT.config["token_lifetime_s"])
            ACCOUNT.tokens[token] = time.time() + lifetime
            ACCOUNT.stats["tokens_issued"] += 1
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": lifetime})

    def _authorized(self) -> bool:
        value = self.headers.get("Authorization", "")
        token = value[7:] if value.startswith("Bearer ") else ""
        with ACCOUNT.lock:
            expires = ACCOUNT.tokens.get(token)
            return expires is not None and expires > time.time()

    def _record_call(self, method: str, path: str, data: bytes, query: dict | None = None) -> None:
        query = query or {}
        if not path.startswith(RECORD_PREFIX):
            return self._send(404, error_body(404, "NONEXISTENT_PATH", f"no such path {path}"))
        if not self._authorized():
            with ACCOUNT.lock:
                ACCOUNT.stats["unauthorized"] += 1
            return self._send(401, error_body(401, "INVALID_LOGIN", "Invalid login attempt."))
        with ACCOUNT.lock:
            ACCOUNT.stats["record_calls"] += 1
            ACCOUNT.in_flight += 1
            over = ACCOUNT.in_flight > int(ACCOUNT.config["concurrency_limit"])
            ACCOUNT.stats["max_in_flight"] = max(ACCOUNT.stats["max_in_flight"], ACCOUNT.in_flight)
            if over:
                ACCOUNT.stats["over_limit"] += 1
            latency = float(ACCOUNT.config["latency_ms"]) / 1000
        try:
            if over:
                return self._send(429, error_body(429, "CONCURRENCY_LIMIT_EXCEEDED",
                                                  "Concurrent request limit exceeded. Request blocked."),
                                  {"Retry-After": 1})
            self._faulty_call(method, path, data, latency, query)
        except Dropped:
            self._drop()
        except Refused as refused:
            self._send(refused.status, error_body(refused.status, refused.code, refused.detail, refused.path),
                       refused.headers)
        finally:
            with ACCOUNT.lock:
                ACCOUNT.in_flight -= 1

    def _faulty_call(self, method: str, path: str, data: bytes, latency: float, query: dict) -> None:
        fault = ACCOUNT.draw_fault()
        if latency:
            time.sleep(latency)
        if fault == "rate_429":
            raise Refused(429, "CONCURRENCY_LIMIT_EXCEEDED", "Request blocked (injected).", headers={"Retry-After": 1})
        if fault == "rate_limit400":
            raise Refused(400, "SSS_REQUEST_LIMIT_EXCEEDED", "Request limit exceeded (injected).")
        if fault == "rate_5xx":
            raise Refused(503, "UNEXPECTED_ERROR", "Service unavailable (injected).")
        if fault == "rate_timeout":
            time.sleep(float(ACCOUNT.config["timeout_s"]))
            raise Dropped()
        if fault == "rate_slow":
            time.sleep(float(ACCOUNT.config["slow_ms"]) / 1000)
        status, body, headers = self._apply(method, path, data, query)
        if fault == "rate_commit_drop":
            raise Dropped()  # written, but the client never hears it
        self._send(status, body, headers)

    def _apply(self, method: str, path: str, data: bytes, query: dict) -> tuple[int, Any, dict]:
        match = RECORD_ROUTE.match(path[len(RECORD_PREFIX):])
        if match is None:
            raise Refused(404, "NONEXISTENT_PATH", f"no such record path {path}")
        record_type, key = match.group("type"), match.group("key")
        external_id = unquote(key[4:]) if key and key.startswith("eid:") else None
        if method == "GET":
            with ACCOUNT.lock:
                internal_id = ACCOUNT.by_external.get((record_type, external_id)) if external_id else key
                record = ACCOUNT.records.get(record_type, {}).get(internal_id or "")
            if record is None:
                raise Refused(404, "NONEXISTENT_ID", f"The record {key} of type {record_type} does not exist.")
            return 200, {"id": record["id"], "externalId": record["externalId"], **record["body"]}, {}
        try:
            body = json.loads(data or b"{}", parse_float=Decimal)
        except ValueError:
            raise Refused(400, "INVALID_CONTENT", "The request body is not JSON.") from None
        if method == "PUT" and external_id is None:
            raise Refused(400, "INVALID_REQUEST", "PUT needs eid:<externalId> in the path (upsert).")
        if method == "POST" and key is not None:
            raise Refused(404, "NONEXISTENT_PATH", f"no such record path {path}")
        replace = {name for name in query.get("replace", [""])[0].split(",") if name}
        internal_id = write_record(record_type, external_id or body.get("externalId"), body, replace)
        return 204, None, {"Location": f"{self._base()}{RECORD_PREFIX}{record_type}/{internal_id}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--certificate", help="PEM certificate (or public key) accepted for token requests")
    parser.add_argument("--kid", help="the certificate id it is registered under")
    parser.add_argument("--client-id", help="the client id the assertions must be issued by")
    parser.add_argument("--concurrency", type=int, default=DEFAULTS["concurrency_limit"])
    args = parser.parse_args(argv)
    ACCOUNT.config["concurrency_limit"] = args.concurrency
    if args.certificate:
        if not args.kid:
            parser.error("--certificate needs --kid")
        update: dict[str, Any] = {"certificates": {args.kid: Path(args.certificate).read_text()}}
        if args.client_id:
            update["clients"] = {args.kid: args.client_id}
        ACCOUNT.configure(update)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    print(f"netsuite stand-in listening on {args.host}:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""An Authorize.Net stand-in for the local stack: ``request.api`` JSON and signed webhooks.

Like the real API (reference.md, "Authorize.Net"):

* ``POST /xml/v1/request.api`` with one JSON object named after the request. Every answer begins
  with a UTF-8 byte order mark (clients must strip it). ``merchantAuthentication`` must carry the
  configured login id and transaction key, else ``E00007 User authentication failed``.
* ``createTransactionRequest``: ``authCaptureTransaction`` on a stored profile
  (``profile{customerProfileId, paymentProfile{paymentProfileId}}``), ``refundTransaction`` and
  ``voidTransaction`` (``refTransId``). Answers ``transactionResponse{responseCode, authCode,
  transId, messages|errors}`` and ``messages{resultCode Ok|Error}``.
* Approvals and declines by amount, the sandbox's test-card rule (an amount in whole dollars equal
  to a response reason code gives that response): 2.00, 3.00, 4.00 declined (reason 2, 3, 4),
  27.00 declined for AVS mismatch (27), 44.00 and 65.00 declined for the card code (44, 65),
  8.00 expired card (error, 8), 6.00 invalid card number (error, 6), 252.00 and 253.00 held for
  review (response code 4: the webhook is ``payment.fraud.held``); any other amount is approved.
  A payment profile listed in ``declined_profiles`` is always declined (reason 2).
* ``getTransactionDetailsRequest``: ``transaction{transId, refTransId, transactionStatus,
  responseCode, authAmount, settleAmount, order{invoiceNumber}, customer{id}, profile}``;
  ``E00040 The record cannot be found.`` for an unknown id.
* Webhooks: after each transaction, a notification ``{notificationId, eventType, eventDate,
  webhookId, payload{responseCode, authCode, avsResponse, authAmount, invoiceNumber, entityName,
  id}}`` is POSTed to ``webhook_url`` with ``X-ANET-Signature: sha512=<HEX uppercase>`` =
  HMAC-SHA512(signature key, raw body); as the real payload, it does not name the customer.
  A non-2xx answer is retried (``webhook_retries`` times, ``webhook_retry_ms`` apart).

Control (tests): ``POST /_control`` with any of ``reset``, ``login_id``, ``transaction_key``,
``signature_key``, ``webhook_url``, ``webhook_retries``, ``webhook_retry_ms``,
``declined_profiles`` [ids], ``rate_5xx`` (share of API calls answered 503), ``seed``;
``GET /_control`` shows the configuration, counters, transactions and sent webhooks;
``POST /_control/send`` {"transaction_id", "event_type", "duplicate": n} sends a notification
again (as the real service redelivers), ``n`` extra times with the same notification id.

Usage: ``python tools/authorize_net_standin.py --port 8095``
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOM = "\ufeff".encode()
API_PATH = "/xml/v1/request.api"
# response reason code -> (response code, text), the sandbox's amount triggers
AMOUNT_TRIGGERS = {
    2: (2, "This transaction has been declined."),
    3: (2, "This transaction has been declined."),
    4: (2, "This transaction has been declined."),
    6: (3, "The credit card number is invalid."),
    8: (3, "The credit card has expired."),
    27: (2, "The transaction has been declined because of an AVS mismatch."),
    44: (2, "This transaction has been declined."),
    65: (2, "This transaction has been declined."),
    252: (4, "Your order has been received. Thank you for your business!"),
    253: (4, "Your order has been received. Thank you for your business!"),
}
EVENT_OF = {"authCaptureTransaction": "payment.authcapture.created", "refundTransaction": "payment.refund.created",
            "voidTransaction": "payment.void.created"}


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.login_id = "warp-local-login"
        self.transaction_key = "warp-local-transaction-key"
        self.signature_key = ""
        self.webhook_url = ""
        self.webhook_retries = 3
        self.webhook_retry_ms = 200
        self.declined_profiles: set[str] = set()
        self.rate_5xx = 0.0
        self.random = random.Random(0)
        self.next_id = 60_000_000_001
        self.transactions: dict[str, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []
        self.counters = {"api_calls": 0, "auth_failures": 0, "faults_5xx": 0, "webhooks_sent": 0,
                         "webhook_failures": 0}

    def public(self) -> dict[str, Any]:
        return {"webhook_url": self.webhook_url, "declined_profiles": sorted(self.declined_profiles),
                "rate_5xx": self.rate_5xx, "counters": dict(self.counters),
                "transactions": list(self.transactions.values()), "webhooks": list(self.sent)}


STATE = State()


def _message(code: str, text: str, ok: bool) -> dict[str, Any]:
    return {"resultCode": "Ok" if ok else "Error", "message": [{"code": code, "text": text}]}


def _amount_trigger(amount: Decimal) -> tuple[int, int, str]:
    """(response code, reason code, text) of a charge of ``amount``."""
    if amount == amount.to_integral_value() and int(amount) in AMOUNT_TRIGGERS:
        code, text = AMOUNT_TRIGGERS[int(amount)]
        return code, int(amount), text
    return 1, 1, "This transaction has been approved."


def _capture_terms(txn: dict[str, Any]) -> tuple[Decimal, dict[str, Any], tuple[int, int, str]]:
    """The amount, profile and (response code, reason, text) of an authCaptureTransaction."""
    try:
        amount = Decimal(str(txn.get("amount")))
    except InvalidOperation:
        raise ValueError("amount is not a decimal") from None
    profile = txn.get("profile") or {}
    payment_profile = str((profile.get("paymentProfile") or {}).get("paymentProfileId") or "")
    if not profile.get("customerProfileId") or not payment_profile:
        raise ValueError("profile.customerProfileId and paymentProfile.paymentProfileId are required")
    if payment_profile in STATE.declined_profiles:
        return amount, profile, (2, 2, "This transaction has been declined.")
    return amount, profile, _amount_trigger(amount)


def create_transaction(request: dict[str, Any]) -> dict[str, Any]:
    ref_id = request.get("refId")
    txn = request.get("transactionRequest") or {}
    kind = txn.get("transactionType")
    answer: dict[str, Any] = {"refId": ref_id} if ref_id is not None else {}
    if kind not in EVENT_OF:
        answer["messages"] = _message("E00003", f"transactionType {kind!r} is not supported here", False)
        return answer
    original = None
    if kind == "authCaptureTransaction":
        try:
            amount, profile, (code, reason, text) = _capture_terms(txn)
        except ValueError as exc:
            answer["messages"] = _message("E00003", str(exc), False)
            return answer
    else:
        original = STATE.transactions.get(str(txn.get("refTransId") or ""))
        if original is None:
            answer["transactionResponse"] = {"responseCode": "3", "transId": "0", "errors": [
                {"errorCode": "16", "errorText": "The transaction cannot be found."}]}
            answer["messages"] = _message("E00027", "The transaction was unsuccessful.", False)
            return answer
        amount = Decimal(str(txn.get("amount") or original["authAmount"]))
        profile, code, reason, text = original.get("profile") or {}, 1, 1, "This transaction has been approved."
    with STATE.lock:
        trans_id = str(STATE.next_id)
        STATE.next_id += 1
    approved = code in (1, 4)
    order = txn.get("order") or (original or {}).get("order") or {}
    customer = txn.get("customer") or (original or {}).get("customer") or {}
    record = {
        "transId": trans_id, "transactionType": kind, "responseCode": code, "responseReasonCode": reason,
        "transactionStatus": {1: "capturedPendingSettlement", 4: "FDSPendingReview"}.get(code, "declined")
        if kind == "authCaptureTransaction" else ("refundPendingSettlement" if kind == "refundTransaction"
                                                 else "voided"),
        "authAmount": format(amount, "f"), "settleAmount": format(amount, "f") if code == 1 else "0.00",
        "authCode": "A1B2C3" if approved else "", "order": order, "customer": customer, "profile": profile,
        "refTransId": (original or {}).get("transId"), "refId": ref_id,
        "submitTimeUTC": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    if kind == "voidTransaction" and original is not None:
        original["transactionStatus"] = "voided"
        record["transId"] = original["transId"]   # a void is of the transaction itself
        trans_id = original["transId"]
    else:
        STATE.transactions[trans_id] = record
    response: dict[str, Any] = {"responseCode": str(code), "authCode": record["authCode"], "avsResultCode": "Y",
                                "transId": trans_id if code != 3 else "0", "refTransID": record["refTransId"] or ""}
    if code in (1, 4):
        response["messages"] = [{"code": str(reason), "description": text}]
    else:
        response["errors"] = [{"errorCode": str(reason), "errorText": text}]
    answer["transactionResponse"] = response
    answer["messages"] = _message("I00001", "Successful.", True) if code in (1, 4) else \
        _message("E00027", "The transaction was unsuccessful.", False)
    if code in (1, 4):
        event = "payment.fraud.held" if code == 4 else EVENT_OF[kind]
        send_webhook(event, record if kind != "voidTransaction" else {**record, "transId": trans_id})
    return answer


def transaction_details(request: dict[str, Any]) -> dict[str, Any]:
    record = STATE.transactions.get(str(request.get("transId") or ""))
    if record is None:
        return {"messages": _message("E00040", "The record cannot be found.", False)}
    fields = ("transId", "refTransId", "transactionType", "transactionStatus", "responseCode", "responseReasonCode",
              "authCode", "authAmount", "settleAmount", "order", "customer", "profile", "submitTimeUTC")
    transaction = {name: record[name] for name in fields if record.get(name) not in (None, "")}
    return {"transaction": transaction, "messages": _message("I00001", "Successful.", True)}


def notification(event_type: str, record: dict[str, Any], notification_id: str | None = None) -> bytes:
    return json.dumps({
        "notificationId": notification_id or str(uuid.uuid4()), "eventType": f"net.authorize.{event_type}",
        "eventDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "webhookId": "warp-local-webhook",
        "payload": {"responseCode": record["responseCode"], "authCode": record.get("authCode", ""),
                    "avsResponse": "Y", "authAmount": float(record["authAmount"]),
                    "invoiceNumber": (record.get("order") or {}).get("invoiceNumber", ""),
                    "entityName": "transaction", "id": record["transId"]},
    }).encode()


def send_webhook(event_type: str, record: dict[str, Any], copies: int = 1, notification_id: str | None = None) -> None:
    """Sign and POST a notification (in the background, with retries); ``copies`` deliveries of one id."""
    if not STATE.webhook_url or not STATE.signature_key:
        return
    body = notification(event_type, record, notification_id)
    signature = "sha512=" + hmac.new(STATE.signature_key.encode(), body, hashlib.sha512).hexdigest().upper()
    url, retries, pause = STATE.webhook_url, STATE.webhook_retries, STATE.webhook_retry_ms / 1000

    def deliver() -> None:
        for _ in range(copies):
            status = None
            for _attempt in range(retries + 1):
                request = urllib.request.Request(url, data=body, method="POST", headers={
                    "Content-Type": "application/json", "X-ANET-Signature": signature})
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status = answer.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                except OSError:
                    status = None
                if status is not None and 200 <= status < 300:
                    break
                time.sleep(pause)
            with STATE.lock:
                STATE.counters["webhooks_sent" if status and 200 <= status < 300 else "webhook_failures"] += 1
                STATE.sent.append({"event_type": event_type, "transaction_id": record["transId"], "status": status,
                                   "notification_id": json.loads(body)["notificationId"]})

    threading.Thread(target=deliver, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, document: Any, bom: bool = False) -> None:
        data = (BOM if bom else b"") + json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/_control":
            with STATE.lock:
                self._answer(200, STATE.public())
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        raw = self._body()
        if path == "/_control":
            self._answer(200, control(json.loads(raw or b"{}")))
        elif path == "/_control/send":
            request = json.loads(raw or b"{}")
            record = STATE.transactions.get(str(request.get("transaction_id")))
            if record is None:
                self._answer(404, {"error": "unknown transaction"})
                return
            send_webhook(request.get("event_type") or EVENT_OF[record["transactionType"]], record,
                         copies=1 + int(request.get("duplicate") or 0), notification_id=request.get("notification_id"))
            self._answer(200, {"status": "sending"})
        elif path == API_PATH:
            self._answer(*api(raw), bom=True)
        else:
            self._answer(404, {"error": "not found"})


def api(raw: bytes) -> tuple[int, dict[str, Any]]:
    with STATE.lock:
        STATE.counters["api_calls"] += 1
        if STATE.rate_5xx and STATE.random.random() < STATE.rate_5xx:
            STATE.counters["faults_5xx"] += 1
            return 503, {"error": "service unavailable"}
    try:
        document = json.loads(raw.decode("utf-8-sig"))
        (name, request), = document.items()
    except (ValueError, UnicodeDecodeError):
        return 200, {"messages": _message("E00003", "The request is not a JSON object with one request.", False)}
    auth = request.get("merchantAuthentication") or {}
    if auth.get("name") != STATE.login_id or auth.get("transactionKey") != STATE.transaction_key:
        STATE.counters["auth_failures"] += 1
        return 200, {"messages": _message("E00007", "User authentication failed due to invalid authentication "
                                                    "values.", False)}
    if name == "createTransactionRequest":
        return 200, create_transaction(request)
    if name == "getTransactionDetailsRequest":
        return 200, transaction_details(request)
    return 200, {"messages": _message("E00045", f"{name} is not supported by the stand-in.", False)}


def control(request: dict[str, Any]) -> dict[str, Any]:
    with STATE.lock:
        if request.get("reset"):
            STATE.reset()
        for name in ("login_id", "transaction_key", "signature_key", "webhook_url"):
            if name in request:
                setattr(STATE, name, str(request[name]))
        for name in ("webhook_retries", "webhook_retry_ms"):
            if name in request:
                setattr(STATE, name, int(request[name]))
        if "declined_profiles" in request:
            STATE.declined_profiles = {str(item) for item in request["declined_profiles"]}
        if "rate_5xx" in request:
            STATE.rate_5xx = float(request["rate_5xx"])
        if "seed" in request:
            STATE.random = random.Random(int(request["seed"]))
        return STATE.public()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--signature-key", default="")
    parser.add_argument("--webhook-url", default="")
    args = parser.parse_args()
    STATE.signature_key, STATE.webhook_url = args.signature_key, args.webhook_url
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"authorize.net stand-in on http://{args.host}:{args.port}{API_PATH}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

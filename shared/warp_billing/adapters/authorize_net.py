"""Authorize.Net ``request.api`` (JSON): transaction details and charges of stored payment profiles.

The JSON API answers with a UTF-8 byte order mark before the object (reference.md), which
``json`` refuses: every answer is decoded with ``utf-8-sig``. The request's element order is
the XML schema's (the API answers E00003 otherwise), so the bodies are built in that order.
Credentials (API login id, transaction key) are read through callables on first use (Secret
Manager -> WARP_ variables), never logged. One ``requests.Session`` per instance, built lazily.

Errors: no answer, a timeout or an HTTP 5xx is ``TransientError(GATEWAY_UNAVAILABLE)`` (retry);
``getTransactionDetails`` of an unknown transaction (E00040) is ``KeyError``; a charge the gateway
declines or refuses is a ``ChargeOutcome`` with its response code, never an exception.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import requests

from ..billing.amounts import money_text
from ..charging.errors import TransientCode, TransientError
from ..payments.gateway import ERROR, ChargeOutcome, ProfileCharge, TransactionDetails
from .lazy_client import LazyClient

log = logging.getLogger(__name__)
NOT_FOUND = "E00040"


class GatewayRefused(RuntimeError):
    """The API refused a request for its content (authentication, schema): not worth a retry as is."""


class AuthorizeNetClient:
    """The ``PaymentGateway`` port on Authorize.Net's JSON API."""

    def __init__(self, url: str, login_id: Callable[[], str], transaction_key: Callable[[], str], *,
                 timeout_s: float = 20.0, session: Callable[[], requests.Session] = requests.Session):
        self.url = url
        self._login_id = login_id
        self._transaction_key = transaction_key
        self._timeout_s = timeout_s
        self._session = LazyClient(session)

    def transaction_details(self, transaction_id: str) -> TransactionDetails:
        answer = self._call("getTransactionDetailsRequest", {"transId": transaction_id})
        if _result_code(answer) != "Ok":
            code, text = _first_message(answer)
            if code == NOT_FOUND:
                raise KeyError(transaction_id)
            raise GatewayRefused(f"getTransactionDetails {transaction_id}: {code} {text}")
        transaction = answer.get("transaction") or {}
        amount = transaction.get("settleAmount") or transaction.get("authAmount")
        response_code = transaction.get("responseCode")
        return TransactionDetails(
            transaction_id=str(transaction.get("transId") or transaction_id),
            status=str(transaction.get("transactionStatus") or ""),
            amount=Decimal(str(amount)).quantize(Decimal("0.01")) if amount not in (None, "") else None,
            invoice_number=_text((transaction.get("order") or {}).get("invoiceNumber")),
            customer_id=_text((transaction.get("customer") or {}).get("id")),
            ref_transaction_id=_text(transaction.get("refTransId")),
            response_code=int(str(response_code)) if str(response_code or "").isdigit() else None,
        )

    def charge_profile(self, charge: ProfileCharge) -> ChargeOutcome:
        request = {
            "refId": charge.ref_id,
            "transactionRequest": {
                "transactionType": "authCaptureTransaction",
                "amount": money_text(charge.amount),
                "profile": {"customerProfileId": charge.customer_profile_id,
                            "paymentProfile": {"paymentProfileId": charge.payment_profile_id}},
                "order": {"invoiceNumber": charge.invoice_number, "description": charge.description[:255]},
                "customer": {"id": charge.customer_id},
            },
        }
        answer = self._call("createTransactionRequest", request)
        response = answer.get("transactionResponse") or {}
        code = str(response.get("responseCode") or "")
        if not code.isdigit():
            message_code, text = _first_message(answer)
            return ChargeOutcome(ERROR, None, None, f"{message_code} {text}".strip())
        messages = response.get("messages") or []
        errors = response.get("errors") or []
        if errors:
            text = "; ".join(f"{item.get('errorCode')} {item.get('errorText')}" for item in errors)
        elif messages:
            text = "; ".join(f"{item.get('code')} {item.get('description')}" for item in messages)
        else:
            text = ""
        trans_id = _text(response.get("transId"))
        return ChargeOutcome(int(code), trans_id if trans_id not in (None, "0") else None,
                             _text(response.get("authCode")), text)

    # -- internals -----------------------------------------------------------------------------

    def _call(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        body = {name: {"merchantAuthentication": {"name": self._login_id(), "transactionKey": self._transaction_key()},
                       **fields}}
        try:
            response = self._session.get().post(self.url, data=json.dumps(body).encode("utf-8"),
                                                headers={"Content-Type": "application/json"},
                                                timeout=self._timeout_s)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(TransientCode.GATEWAY_UNAVAILABLE, f"{name}: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(TransientCode.GATEWAY_UNAVAILABLE, f"{name}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise GatewayRefused(f"{name}: HTTP {response.status_code}")
        try:
            answer = json.loads(response.content.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise TransientError(TransientCode.GATEWAY_UNAVAILABLE, f"{name}: unreadable answer ({exc})") from exc
        if not isinstance(answer, dict):
            raise TransientError(TransientCode.GATEWAY_UNAVAILABLE, f"{name}: answer is not an object")
        return answer


def _result_code(answer: dict[str, Any]) -> str:
    return str((answer.get("messages") or {}).get("resultCode") or "")


def _first_message(answer: dict[str, Any]) -> tuple[str, str]:
    messages = (answer.get("messages") or {}).get("message") or [{}]
    first = messages[0] if isinstance(messages, list) and messages else {}
    return str(first.get("code") or ""), str(first.get("text") or "")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None

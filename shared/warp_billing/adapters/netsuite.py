"""NetSuite SuiteTalk REST: the ``Erp`` port over the record API, with OAuth 2.0 M2M tokens.

* Records: ``PUT /services/rest/record/v1/<type>/eid:<externalId>?replace=<sublists>`` creates or
  updates (an upsert, so a repeated task never makes a second record; ``replace`` names every
  sublist sent, so an update replaces its lines instead of adding them again); the answer is 204
  with ``Location`` naming the internal id. ``GET .../eid:<externalId>`` finds a record.
* Unknown outcome (timeout, connection dropped after the request was sent): the record may have
  been written. Before writing again the client looks it up by externalId; only a record that is
  not there is written again (Lago's duplicates came from re-posting after a timeout).
* Tokens: client credentials with a JWT assertion signed PS256 by the certificate's private key
  (``kid`` = certificate id, ``iss`` = client id, ``aud`` = the token URL, ``exp`` <= iat + 1 h;
  PyJWT + cryptography). A token is cached until ``token_margin_s`` before it expires; a 401
  refreshes it once.
* Errors: 429, 400 ``SSS_REQUEST_LIMIT_EXCEEDED`` and 5xx -> ``ErpTransient`` (with the
  server's Retry-After) so Cloud Tasks retries; any other 4xx with ``o:errorDetails`` ->
  ``ErpRejected`` (permanent). Timeouts are retried here a few times (tenacity), each retry
  after a lookup; then they too become ``ErpTransient``.

Money goes out as exact JSON numbers written from Decimal (never through float).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import jwt
import requests
import tenacity

from ..erp.errors import ErpRejected, ErpTransient
from ..ports import ErpRecordRef
from .lazy_client import LazyClient

log = logging.getLogger(__name__)

RECORD_PATH = "/services/rest/record/v1"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
THROTTLE_CODES = frozenset({"SSS_REQUEST_LIMIT_EXCEEDED", "CONCURRENCY_LIMIT_EXCEEDED"})


def base_url_for(account: str) -> str:
    """The SuiteTalk host of an account id ("123456_SB1" -> https://123456-sb1.suitetalk.api.netsuite.com)."""
    return f"https://{account.lower().replace('_', '-')}.suitetalk.api.netsuite.com"


def exact_json(value: Any) -> str:
    """JSON text with Decimal written as the exact number it is (json/orjson would go through float)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite amount: {value}")
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(key))}:{exact_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(exact_json(item) for item in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats are not sent to NetSuite; use Decimal")
    return json.dumps(value)


class UnknownOutcome(Exception):
    """The request may or may not have been applied (timeout, connection dropped)."""


class OAuthTokens:
    """OAuth 2.0 client-credentials tokens for NetSuite, cached until shortly before expiry."""

    def __init__(self, session: requests.Session, token_url: str, *, client_id: Callable[[], str],
                 certificate_id: Callable[[], str], private_key: Callable[[], str], timeout_s: float = 30,
                 margin_s: int = 300, scope: str = "rest_webservices", clock: Callable[[], float] = time.time):
        self._session = session
        self.token_url = token_url
        self._client_id = client_id
        self._certificate_id = certificate_id
        self._private_key = private_key
        self._timeout_s = timeout_s
        self._margin_s = margin_s
        self._scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._margin = float(margin_s)
        self.fetched = 0

    def assertion(self) -> str:
        now = int(self._clock())
        claims = {"iss": self._client_id(), "scope": [self._scope], "aud": self.token_url, "iat": now,
                  "exp": now + 3600, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._private_key(), algorithm="PS256",
                          headers={"kid": self._certificate_id(), "typ": "JWT"})

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (after a 401); another thread's newer token is kept."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion()}
        try:
            response = self._session.post(self.token_url, data=form, timeout=self._timeout_s)
        except requests.RequestException as exc:
            raise ErpTransient(f"NetSuite token endpoint unreachable: {exc}", code="TOKEN") from None
        if response.status_code != 200:
            # A refused assertion is a configuration problem (certificate, client id, clock), but
            # retrying later is right: once it is fixed the queued documents go through unchanged.
            log.error("NetSuite refused the token request", extra={"status": response.status_code,
                                                                    "body": response.text[:500]})
            raise ErpTransient(f"NetSuite token endpoint answered {response.status_code}: {response.text[:200]}",
                               retry_after_s=_retry_after(response), code="TOKEN")
        answer = response.json()
        lifetime = int(answer.get("expires_in", 3600))
        self._token = str(answer["access_token"])
        self._expires_at = self._clock() + lifetime
        # Renew margin_s before expiry, but never before half the token's life (short-lived tokens).
        self._margin = min(self._margin_s, lifetime / 2)
        self.fetched += 1


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0, int(float(value)))
    except ValueError:
        return None


def _error_details(response: requests.Response) -> tuple[str, str, str]:
    """(o:errorCode, detail, o:errorPath) of a NetSuite error body (first detail)."""
    try:
        body = response.json()
    except ValueError:
        return (str(response.status_code), response.text[:500], "")
    details = body.get("o:errorDetails") or [{}]
    first = details[0] if isinstance(details, list) and details else {}
    code = str(first.get("o:errorCode") or body.get("status") or response.status_code)
    detail = str(first.get("detail") or body.get("title") or response.text[:500])
    return code, detail, str(first.get("o:errorPath") or "")


class SuiteTalkClient:
    """The ``Erp`` port on SuiteTalk REST (see the module docstring)."""

    def __init__(self, base_url: str, tokens_factory: Callable[[requests.Session], OAuthTokens] | None = None, *,
                 session: requests.Session | Callable[[], requests.Session] = requests.Session,
                 timeout_s: float = 30, unknown_outcome_attempts: int = 3, wait_s: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self._session = LazyClient(session)
        self._tokens_factory = tokens_factory
        self._tokens: OAuthTokens | None = None
        self._tokens_lock = threading.Lock()
        self.timeout_s = timeout_s
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(UnknownOutcome),
            stop=tenacity.stop_after_attempt(max(1, unknown_outcome_attempts)),
            wait=tenacity.wait_exponential(multiplier=wait_s, max=5 * wait_s),
            reraise=True,
        )

    @property
    def tokens(self) -> OAuthTokens:
        if self._tokens is None:
            with self._tokens_lock:
                if self._tokens is None:
                    if self._tokens_factory is None:
                        raise ErpTransient("no NetSuite credentials configured", code="TOKEN")
                    self._tokens = self._tokens_factory(self._session.get())
        return self._tokens

    def _url(self, record_type: str, external_id: str) -> str:
        return f"{self.base_url}{RECORD_PATH}/{record_type}/eid:{quote(external_id, safe='')}"

    def upsert(self, record_type: str, external_id: str, body: Mapping) -> ErpRecordRef:
        data = exact_json(body).encode("utf-8")
        url = self._url(record_type, external_id)
        # An upsert that updates keeps a sublist's existing lines and adds the sent ones, unless the
        # sublist is named in ``replace``: a re-sent invoice must not gain its lines twice.
        sublists = [key for key, value in body.items() if isinstance(value, Mapping) and "items" in value]
        if sublists:
            url += "?replace=" + ",".join(sublists)
        first = True

        def attempt() -> ErpRecordRef:
            nonlocal first
            if not first:
                # The last write may have landed: never write again before looking.
                found = self.find(record_type, external_id)
                if found is not None:
                    log.info("record found after an unknown outcome; not written again",
                             extra={"external_id": external_id, "record_type": record_type})
                    return found
            first = False
            response = self._send("PUT", url, data)
            return self._ref_from_write(response, record_type, external_id)

        try:
            return self._retrying(attempt)
        except UnknownOutcome as exc:
            raise ErpTransient(f"{record_type} {external_id}: no answer from NetSuite ({exc})",
                               code="TIMEOUT") from None

    def find(self, record_type: str, external_id: str) -> ErpRecordRef | None:
        try:
            response = self._send("GET", self._url(record_type, external_id) + "?fields=id,externalId", None)
        except UnknownOutcome as exc:
            raise ErpTransient(f"lookup of {record_type} {external_id} got no answer ({exc})", code="TIMEOUT") from None
        except ErpRejected as exc:
            if exc.status == 404:
                return None
            raise
        body = response.json()
        return ErpRecordRef(record_type, external_id, str(body["id"]))

    def _ref_from_write(self, response: requests.Response, record_type: str, external_id: str) -> ErpRecordRef:
        location = response.headers.get("Location", "")
        internal_id = location.rstrip("/").rsplit("/", 1)[-1] if location else ""
        if not internal_id or internal_id.startswith("eid:"):
            found = self.find(record_type, external_id)
            if found is None:
                raise ErpTransient(f"{record_type} {external_id} written but not found", code="NOT_FOUND_AFTER_WRITE")
            return found
        return ErpRecordRef(record_type, external_id, internal_id)

    def _send(self, method: str, url: str, data: bytes | None) -> requests.Response:
        """One call with the cached token; a 401 refreshes the token once. Raises the mapped errors."""
        for refreshed in (False, True):
            token = self.tokens.token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                response = self._session.get().request(method, url, data=data, headers=headers, timeout=self.timeout_s)
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise UnknownOutcome(type(exc).__name__) from None
            if response.status_code == 401 and not refreshed:
                self.tokens.invalidate(token)
                continue
            return self._check(response)
        raise AssertionError("unreachable")

    @staticmethod
    def _check(response: requests.Response) -> requests.Response:
        status = response.status_code
        if status < 300:
            return response
        code, detail, path = _error_details(response)
        if status == 429 or code in THROTTLE_CODES:
            raise ErpTransient(f"NetSuite throttled the call ({status} {code})", retry_after_s=_retry_after(response),
                               code="429" if status == 429 else code)
        if status >= 500 or status in (401, 408):
            raise ErpTransient(f"NetSuite answered {status} {code}: {detail}", retry_after_s=_retry_after(response),
                               code=str(status))
        raise ErpRejected(code, detail, path, status)

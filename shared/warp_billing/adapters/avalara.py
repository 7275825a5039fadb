"""Avalara Communications (AFC) tax engine: the ``TaxEngine`` port over REST CalcTaxes.

Request (reference.md): ``POST {base_url}/api/v2/afc/CalcTaxes`` with Basic auth and a
body ``{"inv": [{"doc", "bill": {"ctry", "st", "zip"}, "cust", "date", "itms": [{"ref",
"from": {"npa"}, "to": {"npa"}, "chg", "min", "sale", "tran", "serv"}]}]}``. One item per
taxable invoice line; the line's sku is the item ``ref``. Which lines are taxable, and
as which transaction/service pair, is configurable (defaults: the VoIP pairs 19/49
interstate, 19/50 intrastate, 19/51 international). ``sale`` is 0 (wholesale) for
carrier's-carrier customers (``fees.usf.applies: false``) and 1 (retail) otherwise.

Response: ``txs`` entries ``{tid, name, lvl, rate, tax, tm?}`` per item (``inv[].itms[].txs``,
also accepted directly under ``inv[]``). Taxes of the same (tid, lvl, name, rate) are
summed into one fee whose base is the taxable measure (``tm``, else the items'
charges), amount rounded once to cents. tid 18 becomes fee code ``USF``.

Numbers go out as JSON numbers written from Decimals and come back parsed as Decimals:
no float touches an amount. HTTP 429 and 5xx raise ``TaxEngineUnavailable`` (retry);
other failures and ``err`` entries raise ``TaxError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from ..billing.amounts import cents, exact, quantity_text
from ..billing.errors import TaxEngineUnavailable, TaxError
from ..billing.fees import Fee
from ..billing.taxes import TaxRequest

SANDBOX_URL = "https://communicationsua.avalara.net"
CALC_TAXES_PATH = "/api/v2/afc/CalcTaxes"
USF_TID = 18
DEFAULT_PAIRS: Mapping[str, tuple[int, int]] = {
    "VOICE-INTERSTATE": (19, 49),
    "VOICE-INTRASTATE": (19, 50),
    "VOICE-INTERNATIONAL": (19, 51),
}
WHOLESALE, RETAIL = 0, 1
BUSINESS_CUSTOMER = 1


@dataclass(frozen=True)
class BillTo:
    """The customer's billing location as AFC needs it (country ISO-3, state, ZIP, optional NPA)."""

    country: str
    state: str
    zip: str
    npa: int | None = None


@dataclass(frozen=True)
class AfcSettings:
    """Connection and mapping settings of the AFC adapter.

    Attributes:
        pairs: invoice sku -> (transaction type, service type); skus not listed are not sent.
        client_id, client_profile_id: optional AFC headers, sent when set.
        commit: whether AFC records the transactions for compliance reporting.
    """

    base_url: str = SANDBOX_URL
    username: str = ""
    password: str = ""
    client_id: str | None = None
    client_profile_id: str | None = None
    timeout_s: int = 30
    commit: bool = False
    customer_type: int = BUSINESS_CUSTOMER
    pairs: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_PAIRS))


def bill_to_from_mapping(data: Mapping[str, Any]) -> dict[str, BillTo]:
    """Customer billing locations from ``customer_id -> {country, state, zip, npa?}``; ValueError names the bad one."""
    locations = {}
    for customer, place in data.items():
        try:
            npa = place.get("npa")
            locations[str(customer)] = BillTo(str(place["country"]), str(place["state"]), str(place["zip"]),
                                              int(npa) if npa is not None else None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"customer {customer}: {detail} "
                             "(expected country, state, zip and an optional npa)") from None
    return locations


class AvalaraCommunicationsTaxEngine:
    """``TaxEngine`` backed by AFC CalcTaxes."""

    def __init__(self, settings: AfcSettings, bill_to: Mapping[str, BillTo], session: requests.Session | None = None):
        self._settings = settings
        self._bill_to = dict(bill_to)
        self._session = session

    @property
    def session(self) -> requests.Session:
        if self._session is None:  # built on first use, never at import
            self._session = requests.Session()
        return self._session

    def request_body(self, request: TaxRequest) -> dict:
        """The CalcTaxes body for an invoice (exposed for inspection and tests)."""
        location = self._bill_to.get(request.customer_id)
        if location is None:
            raise TaxError(f"no billing location (country, state, zip) for customer {request.customer_id} for Avalara")
        items = []
        for line in request.lines:
            pair = self._settings.pairs.get(line.sku)
            if pair is None or line.amount == 0:
                continue
            item: dict[str, Any] = {"ref": line.sku, "chg": line.amount,
                                    "sale": RETAIL if request.usf_applies else WHOLESALE,
                                    "tran": pair[0], "serv": pair[1]}
            if line.unit == "minute":
                item["min"] = Decimal(quantity_text(line.quantity))
            if location.npa is not None:
                item["from"] = {"npa": location.npa}
                item["to"] = {"npa": location.npa}
            items.append(item)
        return {"cmmt": self._settings.commit, "inv": [{
            "doc": request.document,
            "bill": {"ctry": location.country, "st": location.state, "zip": location.zip},
            "cust": self._settings.customer_type,
            "date": f"{request.issue_date.isoformat()}T00:00:00Z",
            "itms": items,
        }]}

    def taxes(self, request: TaxRequest) -> list[Fee]:
        body = self.request_body(request)
        if not body["inv"][0]["itms"]:
            return []
        response = self._post(body)
        charges = {item["ref"]: item["chg"] for item in body["inv"][0]["itms"]}
        return fees_from_response(response, charges)

    def _post(self, body: dict) -> dict:
        settings = self._settings
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.client_id:
            headers["client_id"] = settings.client_id
        if settings.client_profile_id:
            headers["client_profile_id"] = settings.client_profile_id
        url = settings.base_url.rstrip("/") + CALC_TAXES_PATH
        try:
            reply = self.session.post(url, data=encode_json(body).encode("utf-8"), headers=headers,
                                      auth=(settings.username, settings.password), timeout=settings.timeout_s)
        except requests.RequestException as exc:
            raise TaxEngineUnavailable(f"Avalara CalcTaxes at {url} unreachable: {exc}") from None
        if reply.status_code == 429 or reply.status_code >= 500:
            raise TaxEngineUnavailable(f"Avalara CalcTaxes answered HTTP {reply.status_code}; retry later")
        if reply.status_code >= 400:
            raise TaxError(f"Avalara CalcTaxes refused the request: HTTP {reply.status_code} {reply.text[:300]}")
        try:
            return json.loads(reply.content, parse_float=Decimal, parse_int=int)
        except ValueError:
            raise TaxError("Avalara CalcTaxes answered with a body that is not JSON") from None


def fees_from_response(response: Any, charges: Mapping[str, Decimal]) -> list[Fee]:
    """Fees from a CalcTaxes response; the items' charges are the base when ``tm`` is absent."""
    if not isinstance(response, dict) or not isinstance(response.get("inv"), list):
        raise TaxError("Avalara CalcTaxes response has no 'inv' list")
    grouped: dict[tuple, list[Decimal]] = {}
    errors = []
    for invoice in response["inv"]:
        for error in invoice.get("err") or []:
            text = error.get("msg") or error.get("message") or error if isinstance(error, dict) else error
            errors.append(str(text))
        sources = [(None, invoice.get("txs") or [])]
        sources += [(item.get("ref"), item.get("txs") or []) for item in invoice.get("itms") or []]
        for reference, taxes in sources:
            for tax in taxes:
                try:
                    tid, level, name = int(tax["tid"]), int(tax.get("lvl", 0)), str(tax.get("name", ""))
                    rate, amount = _decimal(tax.get("rate", 0)), _decimal(tax["tax"])
                    measure = tax.get("tm")
                    base = _decimal(measure) if measure is not None else charges.get(reference or "", Decimal(0))
                except (KeyError, TypeError, ValueError) as exc:
                    raise TaxError(f"Avalara CalcTaxes tax entry {tax!r} is malformed: {exc}") from None
                sums = grouped.setdefault((tid, level, name, rate), [Decimal(0), Decimal(0)])
                sums[0] += base
                sums[1] += amount
    if errors:
        raise TaxError(f"Avalara CalcTaxes reported errors: {'; '.join(errors)}")
    fees = []
    for (tid, level, name, rate), (base, amount) in grouped.items():
        code = "USF" if tid == USF_TID else f"TAX-{tid}"
        fees.append(Fee(code, f"{name} (Avalara tid {tid}, level {level})", cents(base), rate, cents(exact(amount)),
                        account_hint="usf" if tid == USF_TID else "tax"))
    return fees


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        return Decimal(value)
    raise ValueError(f"{value!r} is not a decimal number")


def encode_json(value: Any) -> str:
    """JSON text in which Decimals are written as exact JSON numbers (never via float)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(key))}:{encode_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode_json(item) for item in value) + "]"
    if value is None or isinstance(value, (bool, int, str)):
        return json.dumps(value)
    raise TypeError(f"{type(value).__name__} cannot be sent to Avalara")

"""The Avalara Communications (AFC CalcTaxes) adapter against a local stand-in server.

The stand-in answers reference.md's shapes: it reads the ``inv[].itms[]`` request and
answers ``inv[].itms[].txs[{tid, name, lvl, rate, tax, tm}]``, charging the Federal USF
(tid 18) at 37.0% of each item's charge and a state tax (tid 5) at 2.5% on intrastate items.
"""

from __future__ import annotations

import base64
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from warp_billing.adapters.avalara import AfcSettings, AvalaraCommunicationsTaxEngine, BillTo, encode_json
from warp_billing.billing.cycles import cycle_for
from warp_billing.billing.errors import TaxEngineUnavailable, TaxError
from warp_billing.billing.taxes import TaxableLine, TaxRequest


class AfcStandIn(BaseHTTPRequestHandler):
    requests: list[dict] = []
    mode = "ok"

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "text": body.decode("utf-8")})
        if self.mode == "busy":
            return self._reply(503, b'{"error": "busy"}')
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"acct:secret").decode():
            return self._reply(401, b'{"error": "unauthorized"}')
        request = json.loads(body, parse_float=Decimal)
        answer = {"inv": []}
        for invoice in request["inv"]:
            items = []
            for item in invoice["itms"]:
                charge = item["chg"]
                taxes = [{"bill": True, "cmpl": True, "tm": charge, "calc": 1, "cat": "REGULATORY", "cid": 1,
                          "name": "Federal Universal Service Fund", "exm": 0, "lns": 0, "min": item.get("min", 0),
                          "pcd": 0, "rate": Decimal("0.37"), "sur": False, "tax": charge * Decimal("0.37"),
                          "lvl": 0, "tid": 18}]
                if item["serv"] == 50:
                    taxes.append({"tid": 5, "name": "State Sales Tax", "lvl": 1, "rate": Decimal("0.025"),
                                  "tax": charge * Decimal("0.025"), "tm": charge})
                items.append({"ref": item["ref"], "txs": taxes})
            entry = {"doc": invoice["doc"], "itms": items}
            if self.mode == "error":
                entry["err"] = [{"code": 14, "msg": "Invalid ZIP code"}]
            answer["inv"].append(entry)
        self._reply(200, _json_with_numbers(answer).encode())

    def _reply(self, status, payload: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def _json_with_numbers(value) -> str:
    """JSON as AFC writes it: every amount and rate a JSON number."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{_json_with_numbers(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_with_numbers(item) for item in value) + "]"
    return json.dumps(value)


@pytest.fixture
def afc():
    AfcStandIn.requests = []
    AfcStandIn.mode = "ok"
    server = ThreadingHTTPServer(("127.0.0.1", 0), AfcStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def engine(url, **settings):
    return AvalaraCommunicationsTaxEngine(
        AfcSettings(base_url=url, username="acct", password="secret", **settings),
        {"ACME": BillTo("USA", "NY", "10001", npa=212)},
    )


def tax_request(applies=True):
    cycle = cycle_for("2026-11", timezone="America/New_York")
    lines = (TaxableLine("VOICE-INTERSTATE", Decimal("1000.00"), Decimal(10000), "minute"),
             TaxableLine("VOICE-INTRASTATE", Decimal("200.10"), Decimal(2001), "minute"),
             TaxableLine("SMS-OUTBOUND", Decimal("50.00"), Decimal(12500), "message"),
             TaxableLine("VOICE-TIER-ADJ", Decimal("-90.00"), Decimal(12001), "minute"))
    return TaxRequest("ACME", "ACME-2026-11", cycle, cycle.issue_date, lines, applies)


def test_calc_taxes_request_has_reference_shapes(afc):
    engine(afc).taxes(tax_request())
    sent, = AfcStandIn.requests
    assert sent["path"] == "/api/v2/afc/CalcTaxes"
    body = json.loads(sent["text"], parse_float=Decimal)
    invoice, = body["inv"]
    assert (invoice["doc"], invoice["bill"], invoice["cust"], invoice["date"]) == (
        "ACME-2026-11", {"ctry": "USA", "st": "NY", "zip": "10001"}, 1, "2026-12-01T00:00:00Z")
    assert invoice["itms"] == [
        {"ref": "VOICE-INTERSTATE", "chg": Decimal("1000.00"), "sale": 1, "tran": 19, "serv": 49, "min": 10000,
         "from": {"npa": 212}, "to": {"npa": 212}},
        {"ref": "VOICE-INTRASTATE", "chg": Decimal("200.10"), "sale": 1, "tran": 19, "serv": 50, "min": 2001,
         "from": {"npa": 212}, "to": {"npa": 212}},
    ]
    assert '"chg":1000.00' in sent["text"]          # a JSON number written from the Decimal, not a float


def test_taxes_come_back_as_fees_with_base_rate_and_amount_rounded_once(afc):
    fees = engine(afc).taxes(tax_request())
    assert [(fee.code, fee.base, fee.rate, fee.amount) for fee in fees] == [
        ("USF", Decimal("1200.10"), Decimal("0.37"), Decimal("444.04")),     # 370 + 74.037
        ("TAX-5", Decimal("200.10"), Decimal("0.025"), Decimal("5.00")),     # 5.0025
    ]
    assert fees[0].account_hint == "usf"


def test_wholesale_customers_are_sent_as_sale_type_0(afc):
    engine(afc).taxes(tax_request(applies=False))
    body = json.loads(AfcStandIn.requests[0]["text"])
    assert {item["sale"] for item in body["inv"][0]["itms"]} == {0}


def test_a_throttled_or_failing_engine_is_a_transient_error(afc):
    AfcStandIn.mode = "busy"
    with pytest.raises(TaxEngineUnavailable, match="HTTP 503"):
        engine(afc).taxes(tax_request())


def test_refused_credentials_and_reported_errors_are_tax_errors(afc):
    bad = AvalaraCommunicationsTaxEngine(AfcSettings(base_url=afc, username="acct", password="wrong"),
                                         {"ACME": BillTo("USA", "NY", "10001")})
    with pytest.raises(TaxError, match="HTTP 401"):
        bad.taxes(tax_request())
    AfcStandIn.mode = "error"
    with pytest.raises(TaxError, match="Invalid ZIP code"):
        engine(afc).taxes(tax_request())


def test_an_unreachable_engine_is_transient():
    with pytest.raises(TaxEngineUnavailable, match="unreachable"):
        engine("http://127.0.0.1:9", timeout_s=2).taxes(tax_request())


def test_a_customer_without_a_billing_location_is_an_error():
    with pytest.raises(TaxError, match="no billing location"):
        AvalaraCommunicationsTaxEngine(AfcSettings(), {}).taxes(tax_request())


def test_no_taxable_lines_means_no_call():
    cycle = cycle_for("2026-11")
    request = TaxRequest("ACME", "d", cycle, cycle.issue_date, (TaxableLine("SMS-OUTBOUND", Decimal("1.00"), Decimal(1),
                                                                            "message"),), True)
    assert engine("http://127.0.0.1:9").taxes(request) == []


def test_decimals_are_encoded_as_exact_json_numbers():
    assert encode_json({"a": Decimal("0.1000"), "b": [1, None, True, "x"]}) == '{"a":0.1000,"b":[1,null,true,"x"]}'
    with pytest.raises(TypeError):
        encode_json({"a": 0.1})

"""`warp invoice` through the installed console script (contracts.md section 6)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
import yaml

WARP = Path(sys.executable).with_name("warp")

ACME = {
    "customer_id": "ACME", "currency": "USD", "timezone": "America/New_York",
    "voice": {"deck": "acme-voice.csv",
              "tiers": {"mode": "graduated", "unit": "minute",
                        "bands": [{"up_to": 1000, "rate": "0.10"}, {"up_to": 10000, "rate": "0.05"}, {"rate": "0.01"}]},
              "commitment": {"minutes": 20000, "shortfall_rate": "0.004", "rebate_above_pct": "10",
                             "start": "2026-01-01"}},
    "api_queries": {"prices": {"lrn": "0.001"}, "bulk_discount": {"threshold": 10000, "percent": "20"}},
    "recurring": [{"sku": "DID-LOCAL", "description": "Local DID", "quantity": 250, "unit_price": "1.00",
                   "start": "2026-06-10"}],
    "fees": {"e911_per_did": "0.25", "usf": {"applies": True}},
    "terms": {"cycle": "monthly", "net_days": 15},
}
BETA = {
    "customer_id": "BETA", "timezone": "America/Chicago", "voice": {"deck": "beta-voice.csv"},
    "recurring": [{"sku": "TF-NUMBER", "description": "Toll-free number", "quantity": 40, "unit_price": "2.50",
                   "start": "2026-05-01", "timing": "advance", "e911": False}],
    "terms": {"net_days": 0},
}


_SERIAL = itertools.count(1)


def line(kind="voice", *, customer="ACME", units=60, amount="0.006000", start="2026-06-15T12:00:00Z", status="rated",
         **fields):
    # every line is its own event: a close counts an event_id once
    record = {"event_id": f"{customer}-{units}-{amount}-{next(_SERIAL)}", "status": status, "kind": kind,
              "customer_id": customer,
              "jurisdiction": "interstate" if kind == "voice" else None, "matched_prefix": "1", "rate": "0.1",
              "billed_units": units, "amount": amount, "vendor_cost": None, "margin_pct": None, "low_margin": False,
              "start_time": start, "direction": "outbound" if kind in ("sms", "mms") else "termination",
              "query_type": "lrn" if kind == "api_query" else None, "duration_s": None, "destination": None,
              "vendor_id": None}
    record.update(fields)
    return record


JUNE = [
    line(units=599_940, amount="59.994005", start="2026-06-01T04:00:00Z"),
    line(units=60, amount="0.006000", start="2026-07-01T03:59:59Z"),
    line(units=299_940, amount="1500.004999", jurisdiction="international"),
    line(units=60, amount="0.000001", jurisdiction="international"),
    line("api_query", units=9_999, amount="9.999000"),
    line("api_query", units=1, amount="0.001000"),
    *[line("sms", units=1, amount="0.004000") for _ in range(3)],
    line(status="rejected", amount=None, billed_units=None, reason="NO_RATE"),
    line(customer="BETA", amount="3.000000", start="2026-06-10T12:00:00Z"),
    line(amount="99.000000", start="2026-06-01T03:59:59Z"),
]


def write(folder: Path, plans=(ACME,), records=JUNE) -> dict:
    paths = {}
    for plan in plans:
        path = folder / f"{plan['customer_id'].lower()}-plan.yaml"
        path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        paths[plan["customer_id"]] = str(path)
    rated = folder / "rated.jsonl"
    rated.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    paths["rated"] = str(rated)
    return paths


def warp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(WARP), *args], capture_output=True, text=True, timeout=120,
                          env={**{name: value for name, value in os.environ.items() if not name.startswith("WARP_")},
                               "PYTHONWARNINGS": "ignore", **(env or {})})


def test_invoice_writes_the_contract_json_html_and_journal(tmp_path):
    paths = write(tmp_path)
    out = tmp_path / "INVOICE.json"
    result = warp("invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-06", "--out",
                  str(out))
    assert result.returncode == 0, result.stderr
    invoice = orjson.loads(out.read_bytes())
    assert [(item["sku"], item["amount"]) for item in invoice["lines"]] == [
        ("VOICE-INTERSTATE", "60.00"), ("VOICE-INTERNATIONAL", "1500.01"), ("VOICE-TIER-ADJ", "490.00"),
        ("VOICE-COMMIT-SHORTFALL", "20.00"), ("SMS-OUTBOUND", "0.01"), ("API-LRN", "10.00"),
        ("API-LRN-DISCOUNT", "-2.00"), ("DID-LOCAL", "175.00")]
    assert (invoice["subtotal"], invoice["total"]) == ("2253.02", "2892.72")
    assert [(fee["code"], fee["base"], fee["rate"], fee["amount"]) for fee in invoice["fees"]] == [
        ("E911", "250", "0.25", "62.50"), ("USF", "1560.01", "0.37", "577.20")]
    assert (invoice["customer_id"], invoice["period"], invoice["issue_date"], invoice["due_date"],
            invoice["currency"]) == (
        "ACME", {"start": "2026-06-01", "end": "2026-07-01"}, "2026-07-01", "2026-07-16", "USD")
    assert "2,892.72" in (tmp_path / "INVOICE.html").read_text(encoding="utf-8")
    journal = orjson.loads((tmp_path / "INVOICE.journal.json").read_bytes())
    assert journal["balanced"] is True and journal["entries"][0]["debits"] == journal["entries"][0]["credits"]
    assert "ACME 2026-06 draft: subtotal 2253.02 fees 639.70 total 2892.72 USD" in result.stdout
    assert "rejected 1 (ignored)" in result.stdout


def test_explicit_html_and_journal_paths_and_opting_out(tmp_path):
    paths = write(tmp_path)
    out = tmp_path / "a" / "inv.json"
    out.parent.mkdir()
    result = warp("invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-06", "--out",
                  str(out),
                  "--html", str(tmp_path / "print.html"), "--no-journal")
    assert result.returncode == 0, result.stderr
    assert out.exists() and (tmp_path / "print.html").exists()
    assert not (tmp_path / "a" / "inv.journal.json").exists() and not (tmp_path / "a" / "inv.html").exists()


def test_a_quarter_without_a_usf_factor_fails_naming_the_quarter(tmp_path):
    paths = write(tmp_path, records=[line(start="2026-11-03T12:00:00Z")])
    out = tmp_path / "INVOICE.json"
    result = warp("invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-11", "--out",
                  str(out))
    assert result.returncode == 1
    assert "no FCC USF contribution factor for 2026 Q4" in result.stderr
    assert not out.exists()


def test_a_newly_published_factor_can_be_supplied_as_a_table(tmp_path):
    paths = write(tmp_path, records=[line(amount="100.000000", start="2026-11-03T12:00:00Z")])
    table = tmp_path / "factors.csv"
    table.write_text("year,quarter,factor_pct\n2026,4,36.5\n", encoding="utf-8")
    out = tmp_path / "INVOICE.json"
    result = warp("invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-11", "--out",
                  str(out),
                  "--usf-table", str(table))
    assert result.returncode == 0, result.stderr
    fees = orjson.loads(out.read_bytes())["fees"]
    assert fees[1]["base"] == "100.00" and fees[1]["amount"] == "36.50"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-13"], "is not a month written YYYY-MM"),
        (["--period", "2026-06", "--rated", "/nonexistent/rated.jsonl"], "cannot read rated file"),
        (["--period", "2026-06", "--as-of", "soon"], "--as-of 'soon' is not a date"),
    ],
)
def test_bad_arguments_fail_with_a_one_line_error(tmp_path, args, message):
    paths = write(tmp_path)
    base = ["invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--out", str(tmp_path / "i.json")]
    result = warp(*base, *args)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_bad_rated_line_is_named(tmp_path):
    paths = write(tmp_path, records=[*JUNE, line(amount=12.5)])
    result = warp("invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-06", "--out",
                  str(tmp_path / "i.json"))
    assert result.returncode == 1
    assert f"line {len(JUNE) + 1}: billed_units must be an integer and amount a decimal string" in result.stderr


def test_the_register_makes_reruns_idempotent_and_corrections_a_credit_and_rebill(tmp_path):
    paths = write(tmp_path)
    register = tmp_path / "register"
    out = tmp_path / "INVOICE.json"
    args = ["invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-06", "--out", str(out),
            "--register", str(register)]
    first = warp(*args)
    assert first.returncode == 0, first.stderr
    assert orjson.loads(out.read_bytes())["invoice_number"] == "ACME-INV-000001"
    again = warp(*args)
    assert "ACME-INV-000001 (already issued, unchanged)" in again.stdout
    write(tmp_path, records=[*JUNE, line("sms", units=1, amount="1.000000")])     # late usage
    corrected = warp(*args, "--as-of", "2026-07-09")
    assert corrected.returncode == 0, corrected.stderr
    assert "ACME-INV-000002 (replaces ACME-INV-000001, credited by ACME-CN-000001)" in corrected.stdout
    rebill = orjson.loads(out.read_bytes())
    assert (rebill["invoice_number"], rebill["replaces"], rebill["issue_date"], rebill["due_date"]) == (
        "ACME-INV-000002", "ACME-INV-000001", "2026-07-09", "2026-07-24")
    assert rebill["subtotal"] == "2254.02"
    note = orjson.loads((tmp_path / "INVOICE.credit-note.json").read_bytes())
    assert (note["document_type"], note["invoice_number"], note["credits"], note["total"]) == (
        "credit_note", "ACME-CN-000001", "ACME-INV-000001", "-2892.72")
    issued = sorted(path.name for path in register.rglob("*.json"))
    assert issued == ["ACME-CN-000001.json", "ACME-INV-000001.json", "ACME-INV-000002.json"]


def test_out_dir_closes_every_customer_in_one_pass(tmp_path):
    paths = write(tmp_path, plans=(ACME, BETA))
    folder = tmp_path / "invoices"
    result = warp("invoice", "--plan", paths["ACME"], "--plan", paths["BETA"], "--rated", paths["rated"],
                  "--period", "2026-06", "--out-dir", str(folder))
    assert result.returncode == 0, result.stderr
    beta = orjson.loads((folder / "BETA-2026-06.json").read_bytes())
    # 3.00 of usage, then July's 40 toll-free numbers in advance (June was billed on May's invoice)
    assert [(item["sku"], item["amount"], item["category"]) for item in beta["lines"]] == [
        ("VOICE-INTERSTATE", "3.00", "usage"), ("TF-NUMBER", "100.00", "recurring_advance")]
    assert (beta["period"], beta["due_date"]) == ({"start": "2026-06-01", "end": "2026-07-01"}, "2026-07-01")
    assert orjson.loads((folder / "ACME-2026-06.json").read_bytes())["total"] == "2892.72"
    assert (folder / "BETA-2026-06.html").exists() and (folder / "BETA-2026-06.journal.json").exists()
    assert "BETA 2026-06 draft: subtotal 103.00 fees 0.00 total 103.00 USD" in result.stdout


def test_out_dir_keeps_closing_other_customers_when_one_fails(tmp_path):
    paths = write(tmp_path, plans=(ACME, BETA), records=[line(start="2026-11-03T12:00:00Z")])
    folder = tmp_path / "invoices"
    result = warp("invoice", "--plan", paths["ACME"], "--plan", paths["BETA"], "--rated", paths["rated"],
                  "--period", "2026-11", "--out-dir", str(folder))
    assert result.returncode == 1
    assert "ACME 2026-11: no FCC USF contribution factor for 2026 Q4" in result.stderr
    assert (folder / "BETA-2026-11.json").exists() and not (folder / "ACME-2026-11.json").exists()


def test_out_and_out_dir_are_exclusive(tmp_path):
    paths = write(tmp_path, plans=(ACME, BETA))
    result = warp("invoice", "--plan", paths["ACME"], "--plan", paths["BETA"], "--rated", paths["rated"],
                  "--period", "2026-06", "--out", str(tmp_path / "x.json"))
    assert result.returncode != 0 and "--out takes one plan" in result.stderr


class _AfcStandIn(BaseHTTPRequestHandler):
    """Answers CalcTaxes with a Federal USF of 37% of every item (reference.md's response shape)."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])), parse_float=Decimal)
        items = [{"ref": item["ref"], "txs": [{"tid": 18, "name": "Federal Universal Service Fund", "lvl": 0,
                                               "rate": "RATE", "tax": "TAX" + str(item["chg"]),
                                               "tm": str(item["chg"])}]}
                 for item in request["inv"][0]["itms"]]
        text = json.dumps({"inv": [{"doc": request["inv"][0]["doc"], "itms": items}]})
        for item in request["inv"][0]["itms"]:
            text = text.replace(f'"TAX{item["chg"]}"', str(item["chg"] * Decimal("0.37")))
        payload = text.replace('"RATE"', "0.37").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_the_avalara_tax_engine_is_used_when_configured(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AfcStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        paths = write(tmp_path, plans=({**ACME, "fees": {"usf": {"applies": True}}},),
                      records=[line(amount="100.000000", start="2026-11-03T12:00:00Z")])
        bill_to = tmp_path / "bill-to.yaml"
        bill_to.write_text(yaml.safe_dump({"ACME": {"country": "USA", "state": "NY", "zip": "10001"}}),
                           encoding="utf-8")
        out = tmp_path / "INVOICE.json"
        settings = {"WARP_AVALARA_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}",
                    "WARP_AVALARA_USERNAME": "u", "WARP_AVALARA_PASSWORD": "p", "WARP_AVALARA_BILL_TO": str(bill_to)}
        result = warp("invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-11",
                      "--out", str(out), "--tax-engine", "avalara", env=settings)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    fee, = orjson.loads(out.read_bytes())["fees"]
    assert (fee["code"], fee["base"], fee["rate"], fee["amount"]) == ("USF", "100.00", "0.37", "37.00")


def test_an_avalara_config_file_is_refused_with_the_settings_to_use_instead(tmp_path):
    paths = write(tmp_path, plans=(ACME,), records=[line()])
    config = tmp_path / "afc.yaml"
    config.write_text("username: u\npassword: p\n", encoding="utf-8")
    result = warp("invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-11",
                  "--out", str(tmp_path / "INVOICE.json"), "--tax-engine", "avalara", "--avalara-config", str(config))
    assert result.returncode == 1
    assert "WARP_AVALARA_USERNAME" in result.stderr and not (tmp_path / "INVOICE.json").exists()


def test_avalara_without_credentials_names_the_missing_settings(tmp_path):
    paths = write(tmp_path, plans=(ACME,), records=[line()])
    result = warp("invoice", "--plan", paths["ACME"], "--rated", paths["rated"], "--period", "2026-11",
                  "--out", str(tmp_path / "INVOICE.json"), env={"WARP_TAX_ENGINE": "avalara"})
    assert result.returncode == 1
    assert result.stderr.strip() == ("warp: error: WARP_TAX_ENGINE=avalara needs WARP_AVALARA_USERNAME and "
                                     "WARP_AVALARA_PASSWORD")

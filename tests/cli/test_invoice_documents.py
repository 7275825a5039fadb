"""The documents `make run` produces, read as their readers read them: every sample invoice adds up
as printed (JSON, HTML page, PDF), carries what a carrier's invoice carries, renders in a real
headless browser, and the register answers `warp invoices list` and `warp invoice show`."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from tests.invoice_page import in_browser, keep_artifact, pdf_text, printed_sums, printed_tables

WARP = Path(sys.executable).with_name("warp")
CUSTOMERS = ("acme", "beta", "gamma")


def warp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(check=False, args=[str(WARP), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """`make run` on a small scale: sample, rate, close June into a register with the seller profile."""
    folder = tmp_path_factory.mktemp("sample")
    made = warp("sample", "--out", str(folder), "--events", "6000", "--us-rows", "2000", "--international-rows", "300")
    assert made.returncode == 0, made.stderr
    plans = [arg for customer in CUSTOMERS for arg in ("--plan", str(folder / f"{customer}-plan.yaml"))]
    rated = warp(
        "rate",
        *plans,
        "--in",
        str(folder / "usage.jsonl"),
        "--out",
        str(folder / "rated.jsonl"),
        "--rejects",
        str(folder / "rejects.jsonl"),
    )
    assert rated.returncode == 0, rated.stderr
    closed = warp(
        "invoice",
        *plans,
        "--rated",
        str(folder / "rated.jsonl"),
        "--period",
        "2026-06",
        "--out-dir",
        str(folder / "invoices"),
        "--register",
        str(folder / "register"),
        "--seller",
        str(folder / "seller.yaml"),
    )
    assert closed.returncode == 0, closed.stderr
    return folder


def documents(sample: Path) -> list[Path]:
    found = sorted((sample / "invoices").glob("*-2026-06.json"))
    assert len(found) == 3
    return found


def test_every_sample_invoice_adds_up_as_printed(sample):
    for path in documents(sample):
        record = orjson.loads(path.read_bytes())
        lines = sum((Decimal(line["amount"]) for line in record["lines"]), Decimal(0))
        fees = sum((Decimal(fee["amount"]) for fee in record["fees"]), Decimal(0))
        assert Decimal(record["subtotal"]) == lines, path.name
        assert Decimal(record["total"]) == Decimal(record["subtotal"]) + fees, path.name
        for amount in [line["amount"] for line in record["lines"]] + [fee["amount"] for fee in record["fees"]]:
            assert re.fullmatch(r"-?\d+\.\d{2}", amount), amount  # every figure at the cents it carries
        page = printed_sums(path.with_suffix(".html").read_text(encoding="utf-8"))
        assert page["subtotal"] == page["lines"] == Decimal(record["subtotal"]), path.name
        assert page["total"] == page["subtotal"] + page["fees"] == Decimal(record["total"]), path.name


def test_the_page_prints_subtotal_once_and_minutes_to_two_decimals(sample):
    for path in documents(sample):
        html = path.with_suffix(".html").read_text(encoding="utf-8")
        assert html.count(">Subtotal<") == 1, path.name
        charges = printed_tables(html)["charges"][1:]
        minutes = [row[2] for row in charges if row[3] == "minute"]
        assert minutes and all(re.fullmatch(r"-?[\d,]+\.\d{2}", text) for text in minutes), minutes


def test_a_sample_invoice_carries_what_a_carrier_sends(sample):
    record = orjson.loads((sample / "invoices" / "ACME-2026-06.json").read_bytes())
    html = (sample / "invoices" / "ACME-2026-06.html").read_text(encoding="utf-8")
    seller, bill_to = record["seller"], record["bill_to"]
    for text in (
        seller["legal_name"],
        seller["tax_id"],
        seller["bank"]["routing_number"],
        seller["remit_to"][1],
        seller["contact"]["email"],
        bill_to["name"],
        bill_to["address"][0],
        bill_to["account_number"],
        bill_to["po_number"],
        bill_to["contract_reference"],
        "ACME-INV-000001",
        "Net 15 days",
        "1 Jun 2026 to 30 Jun 2026",
        "Previous balance",
        "Payments received",
        "Credits",
        "Amount due USD",
        "Usage summary by product and jurisdiction",
        "Voice by destination",
    ):
        assert text in html, text
    destinations = record["voice_destinations"]
    assert 1 <= len(destinations) <= 21
    if len(destinations) == 21:
        assert destinations[-1]["destination"].startswith("All other destinations")
    amounts = [Decimal(row["amount"]) for row in destinations[:20]]
    assert amounts == sorted(amounts, reverse=True)
    assert sum(row["calls"] for row in destinations) == sum(
        line["events"] for line in record["lines"] if line["sku"].startswith("VOICE-") and line["category"] == "usage"
    )


def test_the_prepaid_customer_gets_a_statement_not_an_invoice_due(sample):
    record = orjson.loads((sample / "invoices" / "BETA-2026-06.json").read_bytes())
    assert (record["document_type"], record["invoice_number"], record["due_date"]) == (
        "statement",
        "BETA-ST-000001",
        record["issue_date"],
    )
    html = (sample / "invoices" / "BETA-2026-06.html").read_text(encoding="utf-8")
    assert "Statement" in html and "Due on receipt" not in html and "Remittance advice" not in html
    journal = orjson.loads((sample / "invoices" / "BETA-2026-06.journal.json").read_bytes())
    accounts = [line["account"] for line in journal["entries"][0]["lines"]]
    assert "2200" in accounts and "1200" not in accounts


def test_the_pdf_beside_the_html_has_the_total_and_the_number(sample):
    for path in documents(sample):
        record = orjson.loads(path.read_bytes())
        pdf = path.with_suffix(".pdf")
        assert pdf.read_bytes().startswith(b"%PDF-")
        text = pdf_text(pdf)
        total = f"{Decimal(record['total']):,.2f}"
        assert record["invoice_number"] in text and total in text, (path.name, total)


def test_the_pdf_first_page_renders_as_an_image(sample, tmp_path):
    """A PNG of page 1 (poppler's pdftoppm) kept in build/test-artifacts for a person to look at."""
    pdf = sample / "invoices" / "ACME-2026-06.pdf"
    done = subprocess.run(
        check=False,
        args=["pdftoppm", "-r", "80", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "acme-pdf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (page,) = tmp_path.glob("acme-pdf*.png")
    assert page.stat().st_size > 20_000
    keep_artifact(page)


def test_the_html_renders_in_a_real_headless_browser(sample, tmp_path):
    page = sample / "invoices" / "ACME-2026-06.html"
    record = orjson.loads(page.with_suffix(".json").read_bytes())
    screenshot = tmp_path / "ACME-2026-06-browser.png"
    dom = in_browser(page, screenshot)
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 50_000
    keep_artifact(screenshot)
    sums = printed_sums(dom)  # the DOM the browser built adds up too
    assert sums["total"] == Decimal(record["total"]) and "ACME-INV-000001" in dom


def test_invoices_list_shows_the_aging_from_the_register(sample):
    register = str(sample / "register")
    listed = warp("invoices", "list", "--register", register, "--as-of", "2026-08-15", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    acme = next(row for row in rows if row["invoice_number"] == "ACME-INV-000001")
    assert (acme["status"], acme["days_overdue"], acme["paid"], acme["credited"]) == ("overdue", 30, "0.00", "0.00")
    assert acme["balance_due"] == acme["issued"]
    assert {row["customer_id"] for row in rows} == {"ACME", "GAMMA"}  # BETA's month is a statement
    only_open = warp(
        "invoices", "list", "--register", register, "--as-of", "2026-07-10", "--status", "open", "--customer", "GAMMA"
    )
    assert only_open.returncode == 0 and "GAMMA-INV-000001" in only_open.stdout and "ACME" not in only_open.stdout
    assert "1 invoice(s) as of 2026-07-10" in only_open.stdout


def test_invoice_show_prints_one_document_and_its_standing(sample):
    shown = warp("invoice", "show", "ACME-INV-000001", "--register", str(sample / "register"), "--as-of", "2026-07-20")
    assert shown.returncode == 0, shown.stderr
    assert "VOICE-TIER-ADJ" in shown.stdout and "balance due" in shown.stdout and "4 day(s) overdue" in shown.stdout
    missing = warp("invoice", "show", "ACME-INV-000099", "--register", str(sample / "register"))
    assert missing.returncode == 1 and "no issued document 'ACME-INV-000099'" in missing.stderr
    statement = warp("invoice", "show", "BETA-ST-000001", "--register", str(sample / "register"), "--json")
    assert orjson.loads(statement.stdout)["document"]["document_type"] == "statement"


def test_operator_views_refuse_a_missing_register(tmp_path):
    result = warp("invoices", "list", "--register", str(tmp_path / "nowhere"))
    assert result.returncode == 1 and "no invoice register at" in result.stderr


def test_a_number_that_looks_like_a_path_finds_nothing(sample):
    shown = warp("invoice", "show", "../../ACME-INV-000001", "--register", str(sample / "register"))
    assert shown.returncode == 1 and "no issued document" in shown.stderr


def test_a_typo_in_the_seller_profile_is_an_error_naming_the_key(sample, tmp_path):
    seller = tmp_path / "seller.yaml"
    seller.write_text(
        (sample / "seller.yaml").read_text(encoding="utf-8").replace("tax_id:", "tax_idd:"), encoding="utf-8"
    )
    result = warp(
        "invoice",
        "--plan",
        str(sample / "acme-plan.yaml"),
        "--rated",
        str(sample / "rated.jsonl"),
        "--period",
        "2026-06",
        "--out",
        str(tmp_path / "acme.json"),
        "--seller",
        str(seller),
    )
    assert result.returncode == 1 and "tax_idd" in result.stderr and "tax_id" in result.stderr
    assert not (tmp_path / "acme.json").exists()
    seller.write_bytes(b"legal_name: \xd4\xff\n")
    result = warp(
        "invoice",
        "--plan",
        str(sample / "acme-plan.yaml"),
        "--rated",
        str(sample / "rated.jsonl"),
        "--period",
        "2026-06",
        "--out",
        str(tmp_path / "acme.json"),
        "--seller",
        str(seller),
    )
    assert result.returncode == 1 and "seller profile" in result.stderr and "Traceback" not in result.stderr

"""`warp dispute`: customer disputes of real invoices end in credit notes in the register."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from click.testing import CliRunner

from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.cli import main as warp
from warp_billing.reconciliation.customer_disputes import DisputeError, open_dispute


def run(*args):
    return CliRunner().invoke(warp, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def invoiced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("invoiced")
    assert run("sample", "--out", folder, "--events", 3000).exit_code == 0
    plans = [folder / f"{name}-plan.yaml" for name in ("acme", "beta", "gamma")]
    result = run(
        "rate",
        *[a for p in plans for a in ("--plan", p)],
        "--in",
        folder / "usage.jsonl",
        "--out",
        folder / "rated.jsonl",
    )
    assert result.exit_code == 0, result.output
    result = run(
        "invoice",
        *[a for p in plans for a in ("--plan", p)],
        "--rated",
        folder / "rated.jsonl",
        "--period",
        "2026-06",
        "--out-dir",
        folder / "invoices",
        "--register",
        folder / "register",
    )
    assert result.exit_code == 0, result.output
    return folder


def first_invoice(folder):
    register = InvoiceRegister(folder / "register")
    invoice = next(doc for doc in register.documents("ACME") if doc.document_type == "invoice")
    return register, invoice


def test_an_accepted_dispute_ends_in_a_credit_note_and_the_invoice_stays_live(invoiced, tmp_path):
    register, invoice = first_invoice(invoiced)
    line = next(line for line in invoice.lines if line.sku.startswith("VOICE-"))
    disputes = tmp_path / "disputes"
    result = run(
        "dispute",
        "open",
        "--register",
        invoiced / "register",
        "--disputes",
        disputes,
        "--invoice",
        invoice.number,
        "--sku",
        line.sku,
        "--amount",
        "1.25",
        "--reason",
        "calls not made",
    )
    assert result.exit_code == 0, result.output
    dispute_id = result.output.split()[0]
    assert dispute_id == "ACME-DSP-000001"
    again = run(
        "dispute",
        "open",
        "--register",
        invoiced / "register",
        "--disputes",
        disputes,
        "--invoice",
        invoice.number,
        "--sku",
        line.sku,
        "--reason",
        "again",
    )
    assert again.exit_code == 1 and "already disputed" in again.output
    early = run("dispute", "accept", "--register", invoiced / "register", "--disputes", disputes, dispute_id)
    assert early.exit_code == 1 and "under review" in early.output
    assert (
        run("dispute", "review", "--register", invoiced / "register", "--disputes", disputes, dispute_id).exit_code == 0
    )
    accepted = run(
        "dispute",
        "accept",
        "--register",
        invoiced / "register",
        "--disputes",
        disputes,
        dispute_id,
        "--as-of",
        "2026-07-05",
    )
    assert accepted.exit_code == 0, accepted.output
    notes = [doc for doc in register.documents("ACME") if doc.document_type == "credit_note"]
    assert len(notes) == 1
    note = notes[0]
    assert note.credits == invoice.number and note.total == Decimal("-1.25")
    assert [entry.sku for entry in note.lines] == [line.sku]
    assert dict(note.lines[0].details)["dispute_id"] == dispute_id
    # the same acceptance again issues nothing more (idempotent by dispute id)
    assert (
        register.credit_line(invoice.number, line.sku, Decimal("1.25"), date(2026, 7, 5), dispute_id).number
        == note.number
    )
    assert len([d for d in register.documents("ACME") if d.document_type == "credit_note"]) == 1
    # closing the cycle again is still idempotent: a partial credit keeps the invoice live
    plans = [invoiced / f"{name}-plan.yaml" for name in ("acme", "beta", "gamma")]
    rerun = run(
        "invoice",
        *[a for p in plans for a in ("--plan", p)],
        "--rated",
        invoiced / "rated.jsonl",
        "--period",
        "2026-06",
        "--out-dir",
        tmp_path / "again",
        "--register",
        invoiced / "register",
    )
    assert rerun.exit_code == 0, rerun.output
    assert len([d for d in register.documents("ACME") if d.document_type == "invoice"]) == 1
    # collections (warp invoices list) sees the partial credit: credited, balance lowered, not cancelled
    standing = next(s for s in register.standings(date(2026, 7, 6), "ACME") if s.invoice.number == invoice.number)
    assert standing.credited == Decimal("1.25") and standing.credit_notes == (note.number,)
    assert standing.balance_due == invoice.total - Decimal("1.25")
    assert not standing.cancelled and standing.status in ("open", "overdue")
    listed = run("dispute", "list", "--register", invoiced / "register", "--disputes", disputes, "--json")
    record = json.loads(listed.output.splitlines()[0])
    assert record["status"] == "accepted" and record["credit_note"] == note.number and record["age_days"] == 0
    assert [entry[1] for entry in record["history"]] == ["open", "under_review", "accepted"]


def test_a_rejected_dispute_keeps_its_reason_and_issues_nothing(invoiced, tmp_path):
    register, invoice = first_invoice(invoiced)
    before = len(register.documents("ACME"))
    line = invoice.lines[-1]
    disputes = tmp_path / "disputes"
    opened = run(
        "dispute",
        "open",
        "--register",
        invoiced / "register",
        "--disputes",
        disputes,
        "--invoice",
        invoice.number,
        "--sku",
        line.sku,
        "--reason",
        "too dear",
    )
    dispute_id = opened.output.split()[0]
    no_reason = run(
        "dispute", "reject", "--register", invoiced / "register", "--disputes", disputes, dispute_id, "--reason", "x"
    )
    assert no_reason.exit_code == 1 and "can move to under_review" in no_reason.output
    run("dispute", "review", "--register", invoiced / "register", "--disputes", disputes, dispute_id)
    result = run(
        "dispute",
        "reject",
        "--register",
        invoiced / "register",
        "--disputes",
        disputes,
        dispute_id,
        "--reason",
        "contract rate applies",
    )
    assert result.exit_code == 0, result.output
    assert len(register.documents("ACME")) == before
    listed = run("dispute", "list", "--register", invoiced / "register", "--disputes", disputes, "--status", "rejected")
    assert dispute_id in listed.output and "contract rate applies" in listed.output


def test_export_gives_the_rated_records_behind_the_disputed_line(invoiced, tmp_path):
    _, invoice = first_invoice(invoiced)
    line = next(line for line in invoice.lines if line.sku == "VOICE-INTERSTATE")
    disputes = tmp_path / "disputes"
    opened = run(
        "dispute",
        "open",
        "--register",
        invoiced / "register",
        "--disputes",
        disputes,
        "--invoice",
        invoice.number,
        "--sku",
        line.sku,
        "--reason",
        "check",
    )
    dispute_id = opened.output.split()[0]
    result = run(
        "dispute",
        "export",
        "--register",
        invoiced / "register",
        "--disputes",
        disputes,
        dispute_id,
        "--rated",
        invoiced / "rated.jsonl",
        "--out",
        tmp_path / "records.jsonl",
    )
    assert result.exit_code == 0, result.output
    records = [orjson.loads(raw) for raw in (tmp_path / "records.jsonl").read_bytes().splitlines()]
    assert len(records) == dict(line.details)["events"]
    assert {r["customer_id"] for r in records} == {"ACME"} and {r["jurisdiction"] for r in records} == {"interstate"}
    assert sum(Decimal(r["amount"]) for r in records).quantize(Decimal("0.01")) == line.amount


def test_unknown_invoice_line_and_bad_amounts_are_refused(invoiced, tmp_path):
    _, invoice = first_invoice(invoiced)
    base = ["dispute", "open", "--register", invoiced / "register", "--disputes", tmp_path / "d", "--reason", "r"]
    assert "no issued invoice" in run(*base, "--invoice", "ACME-INV-999999", "--sku", "X").output
    assert "has no line" in run(*base, "--invoice", invoice.number, "--sku", "NOPE").output
    line = invoice.lines[0]
    too_much = run(*base, "--invoice", invoice.number, "--sku", line.sku, "--amount", str(line.amount + 1))
    assert too_much.exit_code == 1 and "more than the line" in too_much.output
    assert (
        "more than 2 decimals" in run(*base, "--invoice", invoice.number, "--sku", line.sku, "--amount", "0.001").output
    )


def test_age_counts_whole_days_to_the_close_or_to_now():
    opened_at = datetime(2026, 7, 1, 12, 0)
    item = open_dispute("A-DSP-000001", "A", "A-INV-000001", "S", Decimal("10"), None, "r", opened_at)
    assert item.age_days(opened_at + timedelta(days=3, hours=23)) == 3
    closed = item.move("under_review", opened_at + timedelta(days=1)).move(
        "rejected", opened_at + timedelta(days=5), "no"
    )
    assert closed.age_days(opened_at + timedelta(days=40)) == 5
    with pytest.raises(DisputeError):
        closed.move("accepted", opened_at + timedelta(days=6))
    with pytest.raises(DisputeError):
        item.move("under_review", opened_at).move("rejected", opened_at, "  ")

"""`warp dispute`: customer disputes of real invoices end in credit notes in the register."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from click.testing import CliRunner

from warp_billing import bootstrap
from warp_billing.adapters.file_register import FileCloseRegister
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
    # the note went through the file close register: its credit memo is in REGISTER/outbox.sqlite, once
    outbox = FileCloseRegister(invoiced / "register").outbox_documents("ACME")
    assert [(d.doc_id, d.doc_type) for d in outbox] == [
        (note.number, "credit_memo"), (f"journal:{note.number}", "journal_entry")]
    repeated = run("dispute", "accept", "--register", invoiced / "register", "--disputes", disputes, dispute_id)
    assert repeated.exit_code == 1 and "is accepted; only a dispute under review can be accepted" in repeated.output
    assert FileCloseRegister(invoiced / "register").outbox_documents("ACME") == outbox
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


@pytest.fixture()
def configured(invoiced, tmp_path, monkeypatch):
    """The settings (environment) point at a copy of the invoiced register; no WARP_* of the caller's."""
    for name in [name for name in os.environ if name.startswith("WARP_")]:
        monkeypatch.delenv(name)
    shutil.copytree(invoiced / "register", tmp_path / "register")
    monkeypatch.setenv("WARP_REGISTER_STORE", "files")
    monkeypatch.setenv("WARP_REGISTER_DIR", str(tmp_path / "register"))
    monkeypatch.setenv("WARP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WARP_DISPUTE_STORE", "files")
    bootstrap.reset()
    yield tmp_path
    bootstrap.reset()


def test_without_register_the_settings_register_takes_the_credit_note_and_its_outbox_the_credit_memo(
    configured, invoiced
):
    register = FileCloseRegister(configured / "register")
    invoice = next(doc for doc in register.documents("GAMMA") if doc.document_type == "invoice")
    line = invoice.lines[0]
    opened = run("dispute", "open", "--invoice", invoice.number, "--sku", line.sku, "--amount", "0.10",
                 "--reason", "double billed")
    assert opened.exit_code == 0, opened.output
    dispute_id = opened.output.split()[0]
    assert dispute_id == "GAMMA-DSP-000001"
    assert (configured / "disputes" / "GAMMA" / f"{dispute_id}.json").is_file()  # beside WARP_REGISTER_DIR
    assert run("dispute", "review", dispute_id).exit_code == 0
    accepted = run("dispute", "accept", dispute_id, "--as-of", "2026-07-05")
    assert accepted.exit_code == 0, accepted.output

    [note] = [d for d in register.documents("GAMMA") if d.document_type == "credit_note"]
    assert (note.credits, note.total, note.issue_date) == (invoice.number, Decimal("-0.10"), date(2026, 7, 5))
    memos = [d for d in register.outbox_documents("GAMMA") if d.doc_type == "credit_memo"]
    assert [(m.doc_id, m.payload["total"], m.status) for m in memos] == [(note.number, "-0.10", "pending")]
    listed = [json.loads(row) for row in run("dispute", "list", "--customer", "GAMMA", "--json").output.splitlines()]
    assert [(r["dispute_id"], r["status"], r["credit_note"]) for r in listed] == [(dispute_id, "accepted", note.number)]
    outbox = register.outbox_documents()

    again = run("dispute", "accept", dispute_id)
    assert again.exit_code == 1 and "only a dispute under review can be accepted" in again.output
    assert [d.number for d in register.documents("GAMMA") if d.document_type == "credit_note"] == [note.number]
    assert register.outbox_documents() == outbox
    # nothing went to the register the copy was made from: the settings chose the copy
    source = InvoiceRegister(invoiced / "register")
    assert not [d for d in source.documents("GAMMA") if d.document_type == "credit_note"]


def test_attacks_on_the_dispute_commands_are_refused_and_change_nothing(configured):
    # GAMMA: no other test credits it, so its notes and memos here are this test's alone
    register = FileCloseRegister(configured / "register")
    invoice = next(doc for doc in register.documents("GAMMA") if doc.document_type == "invoice")
    line = invoice.lines[0]
    notes_before = [d for d in register.documents("GAMMA") if d.document_type == "credit_note"]
    memos_before = [m.doc_id for m in register.outbox_documents("GAMMA") if m.doc_type == "credit_memo"]

    def refused(*args: str) -> str:
        result = run("dispute", *args)
        assert result.exit_code == 1, result.output
        return result.output

    base = ("open", "--reason", "r", "--invoice")
    assert "no issued invoice GAMMA-INV-999999" in refused(*base, "GAMMA-INV-999999", "--sku", line.sku)
    assert "no issued invoice NOPE" in refused(*base, "NOPE", "--sku", line.sku)
    assert "no issued invoice GAMMA-CN-000001" in refused(*base, "GAMMA-CN-000001", "--sku", line.sku)
    assert "has no line NOT-BILLED" in refused(*base, invoice.number, "--sku", "NOT-BILLED")
    above = refused(*base, invoice.number, "--sku", line.sku, "--amount", str(line.amount + Decimal("0.01")))
    assert "more than the line" in above
    for amount in ("0", "-1.00", "NaN", "Infinity", "ten"):
        assert "amount" in refused(*base, invoice.number, "--sku", line.sku, "--amount", amount)
    assert not list((configured / "disputes").glob("*/*.json"))  # nothing was opened

    dispute_id = run("dispute", "open", "--invoice", invoice.number, "--sku", line.sku, "--reason", "r"
                     ).output.split()[0]
    assert "only a dispute under review can be accepted" in refused("accept", dispute_id)   # still open
    # ids that are not this dispute, or look like another customer's
    for other in ("ACME-DSP-000001", "GAMMA-DSP-1", "GAMMA-DSP-000002", "../GAMMA/GAMMA-DSP-000001", "GAMMA"):
        assert f"no dispute {other}" in refused("review", other)
        assert f"no dispute {other}" in refused("accept", other)
    # GAMMA's record copied into ACME's folder under an ACME id is not ACME's dispute
    (configured / "disputes" / "ACME").mkdir(parents=True)
    shutil.copy(configured / "disputes" / "GAMMA" / f"{dispute_id}.json",
                configured / "disputes" / "ACME" / "ACME-DSP-000001.json")
    assert "holds GAMMA-DSP-000001 of GAMMA, not ACME-DSP-000001" in refused("review", "ACME-DSP-000001")

    assert run("dispute", "review", dispute_id).exit_code == 0
    assert run("dispute", "accept", dispute_id).exit_code == 0
    assert "is accepted" in refused("accept", dispute_id)                                    # a repeated accept
    assert "is accepted" in refused("reject", dispute_id, "--reason", "late")
    [note] = [d for d in register.documents("GAMMA") if d.document_type == "credit_note" and d not in notes_before]
    assert note.total == -line.amount and dict(note.lines[0].details)["dispute_id"] == dispute_id
    memos = [m.doc_id for m in register.outbox_documents("GAMMA") if m.doc_type == "credit_memo"]
    assert memos == [*memos_before, note.number]


def test_an_accept_refuses_a_register_note_of_the_same_dispute_id_for_another_line(configured):
    """Disputes kept elsewhere than the register's earlier ones (another --disputes folder, a store
    switched) number from 1 again; the register credits once per dispute id, so the accept must not
    take an old note of that id for a different line or amount as its own."""
    register = FileCloseRegister(configured / "register")
    invoice = next(doc for doc in register.documents("GAMMA") if doc.document_type == "invoice")
    first, second = invoice.lines[0], invoice.lines[1]
    old = register.credit_line(invoice.number, first.sku, Decimal("0.05"), date(2026, 7, 1), "GAMMA-DSP-000001")
    outbox = register.outbox_documents()
    dispute_id = run("dispute", "open", "--invoice", invoice.number, "--sku", second.sku, "--amount", "0.07",
                     "--reason", "r").output.split()[0]
    assert dispute_id == "GAMMA-DSP-000001"
    assert run("dispute", "review", dispute_id).exit_code == 0

    result = run("dispute", "accept", dispute_id)

    assert result.exit_code == 1 and f"already holds {old.number}" in result.output
    assert [d.number for d in register.documents("GAMMA") if d.document_type == "credit_note"] == [old.number]
    assert register.outbox_documents() == outbox
    listed = json.loads(run("dispute", "list", "--json").output.splitlines()[0])
    assert (listed["status"], listed["credit_note"]) == ("under_review", None)

"""The file close register credits a disputed line through its ERP outbox, as the Firestore register does.

An accepted dispute's partial credit note must reach NetSuite as a credit memo: the note goes into
the register AND its credit memo + journal into ``REGISTER/outbox.sqlite``, each exactly once,
however often the accept is repeated.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.unit.billing.billing_builders import close_november, rated

from warp_billing.adapters.file_register import FileCloseRegister
from warp_billing.billing.errors import InvoiceRegisterError
from warp_billing.billing.invoice import CREDIT_NOTE


def notes(register: FileCloseRegister):
    return [d for d in register.documents("ACME") if d.document_type == CREDIT_NOTE]


def memos(register: FileCloseRegister):
    return [d for d in register.outbox_documents("ACME") if d.doc_type == "credit_memo"]


def test_a_dispute_credit_is_a_credit_note_with_one_credit_memo_and_its_journal_in_the_outbox(tmp_path):
    register = FileCloseRegister(tmp_path)
    invoice = close_november(register, rated(amount="10.000000", event_id="a")).invoice
    before = [d.doc_id for d in register.outbox_documents("ACME")]

    note = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("2.50"), date(2026, 12, 5), "ACME-DSP-1")

    assert (note.number, note.credits, note.total) == ("ACME-CN-000001", invoice.number, Decimal("-2.50"))
    assert [n.number for n in notes(register)] == ["ACME-CN-000001"]
    [memo] = memos(register)
    assert (memo.doc_id, memo.prerequisites, memo.payload["total"], memo.status) == (
        "ACME-CN-000001", ("customer:ACME", invoice.number), "-2.50", "pending")
    assert [(line["sku"], line["amount"], line["dispute_id"]) for line in memo.payload["lines"]] == [
        ("VOICE-INTERSTATE", "-2.50", "ACME-DSP-1")]
    # after what the close recorded: the credit memo, then its journal, and nothing else
    assert [d.doc_id for d in register.outbox_documents("ACME")] == [
        *before, "ACME-CN-000001", "journal:ACME-CN-000001"]
    assert register.issued_number("ACME", "2026-11") == invoice.number  # the invoice stays live


def test_crediting_the_same_dispute_again_adds_no_note_and_no_outbox_entry(tmp_path):
    register = FileCloseRegister(tmp_path)
    invoice = close_november(register, rated(amount="10.000000", event_id="a")).invoice
    first = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 5), "D-1")
    outbox = register.outbox_documents()

    again = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 6), "D-1")

    assert again == first
    assert [n.number for n in notes(register)] == ["ACME-CN-000001"]
    assert register.outbox_documents() == outbox  # same entries, same sequences, same instants
    second = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("0.50"), date(2026, 12, 6), "D-2")
    assert second.number == "ACME-CN-000002"
    assert [m.doc_id for m in memos(register)] == ["ACME-CN-000001", "ACME-CN-000002"]


def test_a_note_issued_before_a_crash_gets_its_outbox_entries_on_the_next_accept(tmp_path):
    register = FileCloseRegister(tmp_path)
    invoice = close_november(register, rated(amount="10.000000", event_id="a")).invoice
    # the note reached the register but the process died before the outbox was written
    crashed = register.register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 5),
                                            "D-1")
    assert memos(register) == []

    repaired = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 5), "D-1")

    assert repaired == crashed and [n.number for n in notes(register)] == [crashed.number]
    assert [m.doc_id for m in memos(register)] == [crashed.number]


@pytest.mark.parametrize("number, sku, message", [
    ("ACME-INV-000009", "VOICE-INTERSTATE", "no issued invoice ACME-INV-000009"),
    ("ACME-INV-000001", "SMS-OUTBOUND", "has no line SMS-OUTBOUND"),
    ("ACME-CN-000001", "VOICE-INTERSTATE", "is not an invoice number"),
    ("BETA-INV-000001", "VOICE-INTERSTATE", "no issued invoice BETA-INV-000001"),  # another customer's number
])
def test_a_credit_of_a_line_that_is_not_on_an_issued_invoice_is_refused_and_records_nothing(tmp_path, number, sku,
                                                                                            message):
    register = FileCloseRegister(tmp_path)
    close_november(register, rated(amount="10.000000", event_id="a"))
    outbox = register.outbox_documents()

    with pytest.raises(InvoiceRegisterError, match=message):
        register.credit_line(number, sku, Decimal("1.00"), date(2026, 12, 5), "D-1")

    assert notes(register) == [] and register.outbox_documents() == outbox

"""An accepted customer dispute's credit note in the Firestore register (the local emulator).

Same semantics as the file register (tests/unit/billing/test_billing_invoice_store.py): a partial
credit note numbered in the customer's gapless CN sequence, issued once per dispute id, refused on
a cancelled invoice; here also its ERP outbox entries (credit memo + journal) in the same commit.
"""

from __future__ import annotations

import threading
import uuid
from datetime import date
from decimal import Decimal

import pytest
from tests.integration.conftest import FIRESTORE_HOST, PROJECT, require_stand_in
from tests.unit.billing.billing_builders import close_november, rated

from warp_billing.adapters.firestore_plans import firestore_client
from warp_billing.adapters.firestore_register import FirestoreRegister
from warp_billing.billing.errors import InvoiceRegisterError
from warp_billing.billing.invoice import CREDIT_NOTE

pytestmark = pytest.mark.integration


@pytest.fixture()
def register():
    require_stand_in("firestore")
    return FirestoreRegister(lambda: firestore_client(PROJECT, FIRESTORE_HOST),
                             collection_prefix=f"dc{uuid.uuid4().hex[:8]}_", timeout_s=30)


def notes(register: FirestoreRegister):
    return [d for d in register.documents("ACME") if d.document_type == CREDIT_NOTE]


def test_a_dispute_credit_is_a_numbered_partial_credit_note_with_its_credit_memo_in_the_outbox(register):
    invoice = close_november(
        register, rated(amount="10.000000", event_id="a"), rated(amount="2.500000", event_id="b")
    ).invoice
    note = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("2.50"), date(2026, 12, 5), "ACME-DSP-1")
    assert (note.number, note.credits, note.total, note.issue_date) == (
        "ACME-CN-000001", invoice.number, Decimal("-2.50"), date(2026, 12, 5))
    assert dict(note.lines[0].details)["dispute_id"] == "ACME-DSP-1"
    assert [d.number for d in notes(register)] == ["ACME-CN-000001"]
    # the invoice stays the cycle's live invoice: a re-run of the close changes nothing
    assert register.issued_number("ACME", "2026-11") == invoice.number
    memo = register.outbox.get("ACME-CN-000001")
    assert (memo.doc_type, memo.prerequisites, memo.payload["total"]) == (
        "credit_memo", ("customer:ACME", invoice.number), "-2.50")
    assert register.outbox.get("journal:ACME-CN-000001") is not None


def test_accepting_the_same_dispute_again_returns_the_same_note_and_a_second_dispute_takes_the_next_number(
    register,
):
    invoice = close_november(register, rated(amount="10.000000", event_id="a")).invoice
    first = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 5), "D-1")
    again = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 6), "D-1")
    assert again == first
    second = register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("0.50"), date(2026, 12, 6), "D-2")
    assert [n.number for n in notes(register)] == ["ACME-CN-000001", "ACME-CN-000002"]
    assert second.number == "ACME-CN-000002"
    outbox = [d.doc_id for d in register.outbox_documents("ACME") if d.doc_type == "credit_memo"]
    assert outbox == ["ACME-CN-000001", "ACME-CN-000002"]


def test_concurrent_accepts_keep_the_credit_note_numbers_gapless_and_each_dispute_once(register):
    invoice = close_november(register, rated(amount="10.000000", event_id="a")).invoice
    errors: list[BaseException] = []

    def accept(dispute_id: str) -> None:
        try:
            register.credit_line(invoice.number, "VOICE-INTERSTATE", Decimal("0.10"), date(2026, 12, 5), dispute_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=accept, args=(f"D-{n % 3}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found = notes(register)
    assert [n.number for n in found] == ["ACME-CN-000001", "ACME-CN-000002", "ACME-CN-000003"]
    assert sorted(dict(n.lines[0].details)["dispute_id"] for n in found) == ["D-0", "D-1", "D-2"]


def test_a_dispute_credit_is_refused_for_an_unknown_line_and_on_a_cancelled_invoice_naming_its_rebill(register):
    first = close_november(register, rated(amount="10.000000", event_id="a")).invoice
    with pytest.raises(InvoiceRegisterError, match="has no line SMS"):
        register.credit_line(first.number, "SMS", Decimal("1.00"), date(2026, 12, 5), "D-8")
    with pytest.raises(InvoiceRegisterError, match="no issued invoice ACME-INV-000009"):
        register.credit_line("ACME-INV-000009", "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 5), "D-8")
    rebill = close_november(
        register, rated(amount="12.000000", event_id="a"), as_of=date(2026, 12, 9), rebill=True
    ).invoice
    with pytest.raises(InvoiceRegisterError, match=str(rebill.number)):
        register.credit_line(first.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 10), "D-9")
    assert [n.number for n in notes(register)] == ["ACME-CN-000001"]  # only the rebill's cancelling note

"""The NetSuite mapping (versioned configuration) and the record bodies built from outbox documents."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tests.erp_builders import MAPPING, customer_doc, draft, issued, mapping, payment_doc, write_mapping_file

from warp_billing.billing.invoice import STATEMENT
from warp_billing.billing.revenue_recognition import journal_record
from warp_billing.erp.errors import MappingError, MappingFileError
from warp_billing.erp.mapping import MappingFile, load_mapping, parse_mapping
from warp_billing.erp.outbox_documents import issued_documents
from warp_billing.erp.records import erp_writes, required_refs

REFS = {"customer:ACME": "11", "ACME-INV-000001": "21"}


def test_an_unmapped_sku_names_the_sku_the_document_and_the_mapping_version():
    invoice = issued(draft(lines=(("VOICE-MARS", "10", "1.00"),)), "ACME-INV-000001")
    [doc] = issued_documents([invoice], first_sequence=1, issued_at="t", journals=False)
    with pytest.raises(MappingError) as raised:
        erp_writes(doc, mapping(), REFS)
    assert raised.value.code == "UNMAPPED_SKU"
    assert "VOICE-MARS" in raised.value.detail and "ACME-INV-000001" in raised.value.detail
    assert "test-mapping.yaml@test-1" in raised.value.detail


def test_sku_patterns_match_and_the_most_specific_pattern_wins():
    loaded = mapping()
    assert loaded.item_for_sku("API-LRN", "d") == "1201"
    assert loaded.item_for_sku("API-LRN-DISCOUNT", "d") == "1202"
    assert loaded.item_for_sku("SMS-OUTBOUND", "d") == "1101"
    assert loaded.item_for_sku("VOICE-INTERSTATE", "d") == "1001"


@pytest.mark.parametrize("change, message", [
    ({"itmes": {}}, "unknown keys itmes"),
    ({"version": ""}, "needs a version"),
    ({"items": {"X": None}}, "items.X must be an internal id"),
    ({"terms": {"net15": 3}}, "terms keys are net days"),
    ({"payments": {"acount": 1}}, "payments takes one key"),
])
def test_a_typo_or_a_missing_version_in_the_mapping_file_is_refused(change, message):
    with pytest.raises(MappingFileError, match=message):
        parse_mapping({**MAPPING, **change}, "m.yaml")


def test_mapping_file_errors_name_the_file(tmp_path):
    with pytest.raises(MappingFileError, match="cannot read"):
        load_mapping(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: caf\xe9\n")
    with pytest.raises(MappingFileError, match="not a UTF-8 YAML"):
        load_mapping(bad)


def test_a_changed_mapping_file_is_read_again(tmp_path):
    path = write_mapping_file(tmp_path / "m.yaml")
    holder = MappingFile(path)
    assert holder.current().version == "test-1"
    write_mapping_file(path, version="test-2-longer")
    assert holder.current().version == "test-2-longer"


def test_invoice_lines_and_fees_become_item_lines_whose_amounts_add_up_to_the_total():
    invoice = issued(draft(lines=(("VOICE-INTERSTATE", "1000.5", "6.01"), ("SMS-OUTBOUND", "7", "0.07")),
                           fees=(("E911", "0.25"), ("USF", "1.10"))), "ACME-INV-000001")
    [doc] = issued_documents([invoice], first_sequence=1, issued_at="t", journals=False)
    [write] = erp_writes(doc, mapping(), REFS)
    assert (write.record_type, write.external_id) == ("invoice", "ACME-INV-000001")
    body = write.body
    assert body["entity"] == {"id": "11"}
    assert body["terms"] == {"id": "7"}
    items = body["item"]["items"]
    assert [item["item"]["id"] for item in items] == ["1001", "1101", "2002", "2001"]
    assert sum(item["amount"] for item in items) == invoice.total == Decimal("7.43")
    assert all(isinstance(item["amount"], Decimal) for item in items)


def test_a_credit_note_is_a_credit_memo_applied_to_the_invoice_it_credits():
    invoice = issued(draft(), "ACME-INV-000001")
    note = invoice.credit_note("ACME-CN-000001", invoice.issue_date)
    [doc] = issued_documents([note], first_sequence=1, issued_at="t", journals=False)
    assert doc.prerequisites == ("customer:ACME", "ACME-INV-000001")
    [write] = erp_writes(doc, mapping(), REFS)
    assert write.record_type == "creditMemo"
    assert sum(item["amount"] for item in write.body["item"]["items"]) == invoice.total
    assert write.body["apply"]["items"] == [{"doc": {"id": "21"}, "apply": True, "amount": invoice.total}]


def test_a_prepaid_statement_goes_to_the_erp_as_its_journal_only_never_as_a_receivable():
    statement = replace(issued(draft(), "ACME-ST-000001"), document_type=STATEMENT, billing="prepaid")
    note = statement.credit_note("ACME-CN-000001", statement.issue_date)

    documents = issued_documents([statement, note], first_sequence=5, issued_at="t")

    assert [(doc.doc_id, doc.doc_type, doc.sequence) for doc in documents] == [
        ("journal:ACME-ST-000001", "journal_entry", 5), ("journal:ACME-CN-000001", "journal_entry", 6)]
    assert issued_documents([statement], first_sequence=1, issued_at="t", journals=False) == []


def test_a_payment_needs_its_customer_and_the_invoices_it_pays():
    invoice = issued(draft(), "ACME-INV-000001")
    doc = payment_doc(invoice, 3)
    assert set(required_refs(doc)) == {"customer:ACME", "ACME-INV-000001"}
    [write] = erp_writes(doc, mapping(), REFS)
    assert write.body["payment"] == invoice.total
    assert write.body["account"] == {"id": "130"}
    assert write.body["apply"]["items"][0]["doc"] == {"id": "21"}


def test_a_journal_with_recognition_entries_becomes_one_balanced_journal_entry_each():
    invoice = issued(draft(), "ACME-INV-000001")
    [_, journal] = issued_documents([invoice], first_sequence=1, issued_at="t")
    writes = erp_writes(journal, mapping(), REFS)
    entries = journal_record(invoice)["entries"]
    assert [w.external_id for w in writes] == ["journal:ACME-INV-000001"] + [
        f"journal:ACME-INV-000001#{n}" for n in range(2, len(entries) + 1)]
    for write in writes:
        lines = write.body["line"]["items"]
        assert sum(line.get("debit", 0) for line in lines) == sum(line.get("credit", 0) for line in lines)


def test_an_unmapped_account_is_a_permanent_error_naming_it():
    invoice = issued(draft(), "ACME-INV-000001")
    [_, journal] = issued_documents([invoice], first_sequence=1, issued_at="t")
    accounts = {k: v for k, v in MAPPING["accounts"].items() if k != "1200"}
    with pytest.raises(MappingError, match="account '1200'"):
        erp_writes(journal, mapping(accounts=accounts), REFS)


def test_customer_fields_come_from_the_billing_profile_through_the_mapping():
    [write] = erp_writes(customer_doc(), mapping(), {})
    assert write.body["companyName"] == "ACME Telecom"
    assert write.body["email"] == "ap@example.com"
    assert write.body["currency"] == {"id": "1"} and write.body["terms"] == {"id": "7"}


def test_money_as_a_float_in_a_payload_is_refused_not_rounded():
    invoice = issued(draft(), "ACME-INV-000001")
    doc = payment_doc(invoice, 3)
    doc = type(doc)(**{**{f: getattr(doc, f) for f in doc.__dataclass_fields__},
                       "payload": {**doc.payload, "amount": 6.25}})
    with pytest.raises(MappingError, match="MALFORMED|float"):
        erp_writes(doc, mapping(), REFS)


amounts = st.decimals(min_value=Decimal("-99999.99"), max_value=Decimal("99999.99"), places=2,
                      allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(st.sampled_from(["VOICE-INTERSTATE", "SMS-OUTBOUND", "API-LRN", "DID-LOCAL"]),
                          st.integers(0, 10**6), amounts), min_size=1, max_size=12),
       st.lists(st.tuples(st.sampled_from(["USF", "E911"]), amounts), max_size=2))
@example([("VOICE-INTERSTATE", 0, Decimal("0.00"))], [])
@example([("VOICE-INTERSTATE", 1, Decimal("0.01")), ("API-LRN", 3, Decimal("-0.01"))], [("USF", Decimal("0.50"))])
def test_the_netsuite_lines_of_an_invoice_and_its_credit_memo_add_up_to_the_register_total(lines, fees):
    invoice = issued(draft(lines=[(sku, str(quantity), str(amount)) for sku, quantity, amount in lines],
                           fees=[(code, str(amount)) for code, amount in fees]), "ACME-INV-000001")
    expected = sum((Decimal(str(amount)) for *_, amount in lines), Decimal(0)) + sum(
        (Decimal(str(amount)) for _, amount in fees), Decimal(0))
    note = invoice.credit_note("ACME-CN-000001", invoice.issue_date)
    docs = issued_documents([invoice, note], first_sequence=1, issued_at="t", journals=False)
    [invoice_write] = erp_writes(docs[0], mapping(), REFS)
    [memo_write] = erp_writes(docs[1], mapping(), REFS)
    assert sum(item["amount"] for item in invoice_write.body["item"]["items"]) == expected
    assert sum(item["amount"] for item in memo_write.body["item"]["items"]) == expected
    assert len(invoice_write.body["item"]["items"]) == len(lines) + len(fees)
    assert Decimal(invoice.to_record()["total"]) == expected  # the register's printed total


def _payment(billing: str, applications, reversal_ids=()):
    from datetime import date

    from warp_billing.payments.allocation import Application
    from warp_billing.payments.records import PaymentHeader, PaymentRecord

    header = PaymentHeader("T1", "ACME", billing, Decimal("150.00"), "USD", date(2026, 12, 5))
    return PaymentRecord(header, "applied", tuple(Application(t, Decimal(a)) for t, a in applications),
                         reversal_ids=reversal_ids)


def test_a_prepaid_top_up_is_a_customer_deposit_on_the_deposits_account_never_a_payment():
    from warp_billing.payments.records import customer_payment_document

    doc = customer_payment_document(_payment("prepaid", [("@prepaid", "150.00")]), "t")
    assert required_refs(doc) == ("customer:ACME",)
    [write] = erp_writes(doc, mapping(), REFS)
    assert (write.record_type, write.external_id) == ("customerDeposit", "payment:T1")
    assert write.body["payment"] == Decimal("150.00") and write.body["account"] == {"id": "130"}
    assert write.body["customer"] == {"id": "11"} and "apply" not in write.body
    accounts = {k: v for k, v in MAPPING["accounts"].items() if k != "2200"}
    with pytest.raises(MappingError, match="account '2200'"):   # the deposits account must be mapped
        erp_writes(doc, mapping(accounts=accounts), REFS)


def test_a_refund_that_reopens_an_invoice_unapplies_it_on_the_payment_then_refunds_the_payment():
    from warp_billing.payments.allocation import Application
    from warp_billing.payments.records import ReversalRecord, customer_refund_document

    after = _payment("postpaid", [("ACME-INV-000001", "100.00"), ("ACME-INV-000002", "10.00")], ("refund:R1",))
    reversal = ReversalRecord("refund:R1", "T1", "ACME", (Application("ACME-INV-000002", Decimal("-40.00")),),
                              "2026-12-06T10:00:00Z")
    doc = customer_refund_document(after, reversal, "t")
    refs = {**REFS, "payment:T1": "31", "ACME-INV-000002": "22"}
    assert set(required_refs(doc)) == {"customer:ACME", "payment:T1", "ACME-INV-000001", "ACME-INV-000002"}
    unapply, refund = erp_writes(doc, mapping(), refs)
    assert (unapply.record_type, unapply.external_id) == ("customerPayment", "payment:T1")
    assert unapply.body == {"apply": {"items": [
        {"doc": {"id": "21"}, "apply": True, "amount": Decimal("100.00")},
        {"doc": {"id": "22"}, "apply": True, "amount": Decimal("10.00")}]}}
    assert (refund.record_type, refund.external_id) == ("customerRefund", "refund:R1")
    assert refund.body["apply"] == {"items": [{"doc": {"id": "31"}, "apply": True, "amount": Decimal("40.00")}]}
    assert refund.body["tranDate"] == "2026-12-06" and refund.body["account"] == {"id": "130"}


def test_a_prepaid_refund_refunds_the_deposit_and_touches_no_payment():
    from warp_billing.payments.allocation import Application
    from warp_billing.payments.records import ReversalRecord, customer_refund_document

    after = _payment("prepaid", [("@prepaid", "140.00")], ("refund:R1",))
    reversal = ReversalRecord("refund:R1", "T1", "ACME", (Application("@prepaid", Decimal("-10.00")),), "2026-12-06")
    [refund] = erp_writes(customer_refund_document(after, reversal, "t"), mapping(), {**REFS, "payment:T1": "31"})
    assert refund.record_type == "customerRefund" and "apply" not in refund.body
    assert refund.body["deposit"] == {"items": [{"doc": {"id": "31"}, "apply": True, "amount": Decimal("10.00")}]}


def test_a_top_up_and_the_statement_that_draws_on_it_meet_on_customer_deposits_and_never_touch_receivables():
    """The money of a prepaid customer in NetSuite: the deposit credits Customer Deposits (2200, NetSuite's
    deposit account), the statement's journal debits the same account for what was drawn, and no record
    of either is a receivable (no customerPayment, no invoice, no line on 1200): counted once."""
    from warp_billing.payments.records import customer_payment_document

    statement = replace(issued(draft(lines=(("VOICE-INTERSTATE", "1000", "30.00"),), fees=()), "ACME-ST-000001"),
                        document_type=STATEMENT, billing="prepaid")
    [journal] = issued_documents([statement], first_sequence=1, issued_at="t")
    deposit = customer_payment_document(_payment("prepaid", [("@prepaid", "150.00")]), "t")
    writes = [*erp_writes(deposit, mapping(), REFS), *erp_writes(journal, mapping(), REFS)]
    assert [w.record_type for w in writes][0] == "customerDeposit"
    assert {w.record_type for w in writes} == {"customerDeposit", "journalEntry"}
    deposits = mapping().account(deposit.payload["deposit_account"], deposit.doc_id)
    lines = [line for w in writes[1:] for line in w.body["line"]["items"]]
    drawn = sum((line.get("debit", Decimal(0)) for line in lines if line["account"] == {"id": deposits}), Decimal(0))
    assert drawn == statement.total == Decimal("30.00")
    receivables = mapping().account("1200", "t")
    assert not [line for line in lines if line["account"] == {"id": receivables}]

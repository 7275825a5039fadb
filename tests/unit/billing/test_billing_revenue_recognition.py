"""Revenue recognition: the journal of an invoice balances; advance billing is deferred, then recognized by day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.unit.billing.billing_builders import lines_of, plan_from, rated

from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.errors import BillingError
from warp_billing.billing.invoice import build_invoice
from warp_billing.billing.revenue_recognition import AccountMap, journal_entries, journal_record, ratable_slices
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow


def invoice_for(plan, period, *records):
    cycle = plan_cycle(plan, period)
    aggregator = UsageAggregator({plan.customer_id: UsageWindow.for_cycle(plan.customer_id, cycle)})
    aggregator.consume(lines_of(*records))
    return build_invoice(plan, cycle, aggregator.result()[plan.customer_id], OfflineTaxEngine())


def sides(entry):
    return [(line.account, line.debit, line.credit) for line in entry.lines]


PLAN = plan_from(
    api_queries={"prices": {"lrn": "0.001"}, "bulk_discount": {"threshold": 10, "percent": "50"}},
    recurring=[{"sku": "DID", "quantity": 100, "unit_price": "1.00", "start": "2026-01-01"},
               {"sku": "TF", "quantity": 31, "unit_price": "2.00", "start": "2026-01-01", "timing": "advance",
                "e911": False}],
    fees={"e911_per_did": "0.10"},
)


def test_the_invoice_entry_debits_receivables_and_credits_revenue_deferred_and_fees():
    invoice = invoice_for(PLAN, "2026-11", rated(amount="12.345000"), rated("api_query", units=20, amount="0.020000"))
    entry, recognition = journal_entries(invoice)
    assert entry.date == date(2026, 11, 30)              # usage is recognized in its own cycle
    assert sides(entry) == [
        ("1200", Decimal("184.36"), Decimal("0.00")),   # total: 12.35 + 0.02 - 0.01 + 100 + 62 + E911 10.00
        ("4000", Decimal("0.00"), Decimal("12.35")),
        ("4020", Decimal("0.00"), Decimal("0.02")),
        ("4900", Decimal("0.01"), Decimal("0.00")),     # the bulk discount is a debit to discounts
        ("4100", Decimal("0.00"), Decimal("100.00")),
        ("2400", Decimal("0.00"), Decimal("62.00")),    # December billed in advance: deferred
        ("2310", Decimal("0.00"), Decimal("10.00")),
    ]
    assert entry.balanced and entry.lines[0].debit == invoice.total
    assert entry.debits == invoice.total + Decimal("0.01")
    assert recognition.date == date(2026, 12, 31)
    assert sides(recognition) == [("2400", Decimal("62.00"), Decimal("0.00")), ("4100", Decimal("0.00"),
                                                                                Decimal("62.00"))]


def test_advance_billing_over_two_months_is_recognized_by_day_in_each():
    plan = plan_from(terms={"anchor_day": 15},
                     recurring=[{"sku": "TF", "quantity": 1, "unit_price": "100.00", "start": "2026-01-15",
                                 "timing": "advance"}])
    invoice = invoice_for(plan, "2026-11")    # bills 15 Dec to 14 Jan in advance
    entries = journal_entries(invoice)
    assert entries[0].date == date(2026, 12, 14)
    recognized = [(entry.date, entry.lines[1].credit) for entry in entries[1:]]
    # 17 of 31 days in December: 54.838... -> 54.84; January takes the rest.
    assert recognized == [(date(2026, 12, 31), Decimal("54.84")), (date(2027, 1, 14), Decimal("45.16"))]


def test_ratable_slices_always_add_up_to_the_amount():
    slices = ratable_slices(Decimal("100.00"), date(2026, 1, 20), date(2026, 4, 3))
    assert [when for when, _ in slices] == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 2)]
    assert sum(amount for _, amount in slices) == Decimal("100.00")
    with pytest.raises(BillingError):
        ratable_slices(Decimal("1.00"), date(2026, 1, 2), date(2026, 1, 2))


def test_a_commitment_shortfall_is_commitment_revenue_and_a_rebate_a_debit():
    plan = plan_from(voice={"deck": "x.csv", "commitment": {"minutes": 10, "shortfall_rate": "1.00",
                                                            "rebate_above_pct": "10", "start": "2026-01-01"}})
    shortfall, = journal_entries(invoice_for(plan, "2026-11"))
    assert sides(shortfall) == [("1200", Decimal("10.00"), Decimal("0.00")), ("4030", Decimal("0.00"),
                                                                              Decimal("10.00"))]
    rebate, = journal_entries(invoice_for(plan, "2026-11", rated(units=1200, amount="50.000000")))
    assert sides(rebate) == [("1200", Decimal("45.00"), Decimal("0.00")), ("4000", Decimal("0.00"), Decimal("50.00")),
                             ("4900", Decimal("5.00"), Decimal("0.00"))]


def test_a_credit_note_journal_mirrors_the_invoice():
    invoice = invoice_for(PLAN, "2026-11", rated(amount="12.345000"))
    note = invoice.credit_note("ACME-CN-000001", date(2026, 12, 20))
    original, credited = journal_entries(invoice), journal_entries(note)
    assert credited[0].date == date(2026, 12, 20)
    assert sides(credited[0]) == [(account, credit, debit) for account, debit, credit in sides(original[0])]
    assert credited[1].date == date(2026, 12, 31)
    assert all(entry.balanced for entry in credited)


def test_account_codes_can_be_overridden_and_unknown_keys_are_refused():
    accounts = AccountMap.from_mapping({"receivable": "11000", "voice_revenue": "40100"})
    entry, *_ = journal_entries(invoice_for(PLAN, "2026-11", rated(amount="1.000000")), accounts)
    assert [line.account for line in entry.lines][:2] == ["11000", "40100"]
    with pytest.raises(BillingError, match="unknown account keys receivables"):
        AccountMap.from_mapping({"receivables": "1"})


def test_the_journal_record_is_erp_ready_data_with_one_side_per_line():
    record = journal_record(invoice_for(PLAN, "2026-11", rated(amount="1.000000")))
    assert record["balanced"] is True
    first = record["entries"][0]
    # 1.00 usage + 100 DIDs x 1.00 + December's 31 toll-free numbers x 2.00 in advance + E911 100 x 0.10
    assert first["lines"][0] == {"account": "1200", "debit": "173.00", "memo": "receivable"}
    assert first["lines"][1] == {"account": "4000", "credit": "1.00", "memo": "VOICE-INTERSTATE"}
    assert first["debits"] == first["credits"] == "173.00"

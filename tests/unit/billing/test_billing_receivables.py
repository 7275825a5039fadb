"""The register's view of what is owed: each invoice's standing, its aging, and the account box an
issued invoice prints (previous balance, payments, credits, amount due)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from tests.unit.billing.billing_builders import lines_of, plan_from, rated

from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.invoice import build_invoice
from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.billing.receivables import PaymentApplication, account_summary, standings
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow

PLAN = plan_from(terms={"net_days": 15})


def draft(period: str, amount: str):
    cycle = plan_cycle(PLAN, period)
    aggregator = UsageAggregator({"ACME": UsageWindow.for_cycle("ACME", cycle)})
    aggregator.consume(lines_of(rated(units=60, amount=amount, start=f"{period}-15T12:00:00Z")))
    return build_invoice(PLAN, cycle, aggregator.result()["ACME"], OfflineTaxEngine())


def test_the_first_invoice_has_nothing_brought_forward(tmp_path):
    issued = InvoiceRegister(tmp_path).issue(draft("2026-05", "100.000000")).invoice
    assert issued.account == {
        "previous_balance": "0.00",
        "payments": "0.00",
        "credits": "0.00",
        "balance_forward": "0.00",
        "current_charges": "100.00",
        "amount_due": "100.00",
    }


def test_unpaid_invoices_are_carried_forward_as_the_previous_balance(tmp_path):
    register = InvoiceRegister(tmp_path)
    register.issue(draft("2026-05", "100.000000"))
    june = register.issue(draft("2026-06", "40.000000")).invoice
    assert (june.account["previous_balance"], june.account["amount_due"]) == ("100.00", "140.00")


def test_a_rebill_shows_the_credit_note_as_a_credit(tmp_path):
    register = InvoiceRegister(tmp_path)
    register.issue(draft("2026-06", "100.000000"))
    outcome = register.issue(draft("2026-06", "120.000000"), as_of=date(2026, 7, 5))
    account = outcome.invoice.account
    # the 100.00 was due; the credit note gives it back; 120.00 is the new charge
    assert (account["previous_balance"], account["credits"], account["current_charges"], account["amount_due"]) == (
        "100.00",
        "-100.00",
        "120.00",
        "120.00",
    )
    july = register.issue(draft("2026-07", "10.000000"), as_of=date(2026, 8, 1)).invoice
    # the credited invoice and its credit note net to zero; the rebill's 120.00 is brought forward
    assert (july.account["previous_balance"], july.account["credits"], july.account["amount_due"]) == (
        "120.00",
        "0.00",
        "130.00",
    )


def test_the_account_box_is_not_billed_content(tmp_path):
    """A changed previous balance must never make a rerun credit-and-rebill an unchanged invoice."""
    register = InvoiceRegister(tmp_path)
    first = register.issue(draft("2026-06", "100.000000")).invoice
    assert first.content_hash == replace(first, account=None).content_hash
    assert register.issue(draft("2026-06", "100.000000")).outcome == "unchanged"


def test_standings_age_an_unpaid_invoice_from_its_due_date(tmp_path):
    register = InvoiceRegister(tmp_path)
    register.issue(draft("2026-06", "100.000000"))  # issued 2026-07-01, due 2026-07-16
    (on_due_date,) = register.standings(date(2026, 7, 16))
    assert (on_due_date.status, on_due_date.days_overdue, on_due_date.balance_due) == ("open", 0, Decimal("100.00"))
    (late,) = register.standings(date(2026, 8, 15))
    assert (late.status, late.days_overdue) == ("overdue", 30)


def test_a_credited_invoice_owes_nothing_and_its_rebill_is_open(tmp_path):
    register = InvoiceRegister(tmp_path)
    register.issue(draft("2026-06", "100.000000"))
    register.issue(draft("2026-06", "120.000000"), as_of=date(2026, 7, 5))
    old, rebill = register.standings(date(2026, 7, 10), "ACME")
    assert (old.status, old.credited, old.balance_due, old.credit_notes) == (
        "credited",
        Decimal("100.00"),
        Decimal("0.00"),
        ("ACME-CN-000001",),
    )
    assert (rebill.status, rebill.balance_due, rebill.invoice.due_date) == (
        "open",
        Decimal("120.00"),
        date(2026, 7, 20),
    )


def test_payments_applied_later_reduce_the_balance_and_show_on_the_next_invoice(tmp_path):
    """Payments are not recorded yet; the view takes them so the later issue only supplies them."""
    register = InvoiceRegister(tmp_path)
    may = register.issue(draft("2026-05", "100.000000")).invoice
    june = draft("2026-06", "40.000000")
    june = replace(june, number="ACME-INV-000002")
    paid = [PaymentApplication("pay-1", str(may.number), Decimal("60.00"), date(2026, 6, 20))]
    account = account_summary(june, [may], [], paid)
    assert (account.previous_balance, account.payments, account.amount_due) == (
        Decimal("100.00"),
        Decimal("-60.00"),
        Decimal("80.00"),
    )
    (standing,) = standings([may], date(2026, 7, 1), paid)
    assert (standing.paid, standing.balance_due, standing.status) == (Decimal("60.00"), Decimal("40.00"), "overdue")
    (settled,) = standings(
        [may],
        date(2026, 7, 1),
        [*paid, PaymentApplication("pay-2", str(may.number), Decimal("40.00"), date(2026, 6, 30))],
    )
    assert (settled.status, settled.days_overdue) == ("paid", 0)


def test_find_reads_one_document_by_number_through_the_register(tmp_path):
    register = InvoiceRegister(tmp_path)
    issued = register.issue(draft("2026-06", "100.000000")).invoice
    assert register.find("ACME-INV-000001") == issued
    assert register.find("ACME-INV-000009") is None and register.find("nonsense") is None
    assert register.customers() == ["ACME"]


def test_a_document_read_back_from_the_register_keeps_its_parties_and_boxes(tmp_path):
    seller = {"legal_name": "WARP Wholesale", "address": ["1 Main St"], "tax_id": "EIN 1", "remit_to": ["PO Box 1"]}
    bill_to = {"name": "Acme Voice", "address": ["2 Side St"], "account_number": "WB-1"}
    issued = InvoiceRegister(tmp_path).issue(replace(draft("2026-06", "100.000000"), seller=seller,
                                                      bill_to=bill_to)).invoice
    again = InvoiceRegister(tmp_path).find("ACME-INV-000001")
    assert again is not None
    assert (again.seller, again.bill_to, again.account) == (seller, bill_to, issued.account)
    assert again.voice_destinations == issued.voice_destinations and again.billing == "postpaid"

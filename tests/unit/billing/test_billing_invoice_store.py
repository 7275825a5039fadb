"""The invoice register: gapless numbers per customer, immutable documents, idempotent re-runs, credit and rebill."""

from __future__ import annotations

import os
import stat
from datetime import date
from decimal import Decimal

import orjson
import pytest
from tests.unit.billing.billing_builders import lines_of, plan_from, rated

from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.errors import InvoiceRegisterError
from warp_billing.billing.invoice import build_invoice
from warp_billing.billing.invoice_store import ISSUED_NEW, REISSUED, UNCHANGED, InvoiceRegister
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow


def draft(*records, customer="ACME", period="2026-11"):
    plan = plan_from(customer_id=customer, terms={"net_days": 15})
    cycle = plan_cycle(plan, period)
    aggregator = UsageAggregator({customer: UsageWindow.for_cycle(customer, cycle)})
    aggregator.consume(lines_of(*records))
    return build_invoice(plan, cycle, aggregator.result()[customer], OfflineTaxEngine())


def test_the_first_issue_numbers_the_invoice_and_makes_it_read_only(tmp_path):
    register = InvoiceRegister(tmp_path)
    outcome = register.issue(draft(rated(amount="10.000000")))
    assert (outcome.outcome, outcome.invoice.number, outcome.invoice.status) == (ISSUED_NEW, "ACME-INV-000001",
                                                                                 "issued")
    path = tmp_path / "ACME" / "invoices" / "ACME-INV-000001.json"
    assert orjson.loads(path.read_bytes())["total"] == "10.00"
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_re_running_with_identical_usage_returns_the_same_invoice_without_a_new_number(tmp_path):
    register = InvoiceRegister(tmp_path)
    first = register.issue(draft(rated(amount="10.000000")))
    again = register.issue(draft(rated(amount="10.000000")))
    assert (again.outcome, again.invoice.number, again.credit_note) == (UNCHANGED, first.invoice.number, None)
    assert len(register.documents("ACME")) == 1


def test_late_usage_produces_a_credit_note_and_a_rebill_never_a_changed_invoice(tmp_path):
    register = InvoiceRegister(tmp_path)
    original = register.issue(draft(rated(amount="10.000000"))).invoice
    before = (tmp_path / "ACME" / "invoices" / "ACME-INV-000001.json").read_bytes()
    corrected = register.issue(draft(rated(amount="10.000000"), rated(amount="2.500000")), as_of=date(2026, 12, 9))
    assert corrected.outcome == REISSUED
    note, rebill = corrected.credit_note, corrected.invoice
    assert (note.number, note.credits, note.total, note.issue_date) == ("ACME-CN-000001", "ACME-INV-000001",
                                                                        Decimal("-10.00"), date(2026, 12, 9))
    assert (rebill.number, rebill.replaces, rebill.total) == ("ACME-INV-000002", "ACME-INV-000001", Decimal("12.50"))
    assert (rebill.issue_date, rebill.due_date) == (date(2026, 12, 9), date(2026, 12, 24))
    assert (tmp_path / "ACME" / "invoices" / "ACME-INV-000001.json").read_bytes() == before
    assert original.total == Decimal("10.00")
    # the corrected run repeated is idempotent; going back to the first figures is another correction
    assert register.issue(draft(rated(amount="10.000000"), rated(amount="2.500000"))).outcome == UNCHANGED
    back = register.issue(draft(rated(amount="10.000000")), as_of=date(2026, 12, 10))
    assert (back.credit_note.number, back.credit_note.credits, back.invoice.number) == (
        "ACME-CN-000002", "ACME-INV-000002", "ACME-INV-000003")


def test_a_correction_is_never_dated_before_the_cycle_closed(tmp_path):
    register = InvoiceRegister(tmp_path)
    register.issue(draft(rated(amount="1.000000")))
    corrected = register.issue(draft(rated(amount="2.000000")), as_of=date(2026, 11, 20))
    assert corrected.invoice.issue_date == date(2026, 12, 1)


def test_numbers_are_per_customer_and_without_gaps_across_periods(tmp_path):
    register = InvoiceRegister(tmp_path)
    numbers = [register.issue(draft(rated(amount="1.000000"), period="2026-11")).invoice.number,
               register.issue(draft(rated(amount="1.000000", customer="BETA"), customer="BETA")).invoice.number,
               register.issue(draft(rated(amount="1.000000", start="2026-12-03T12:00:00Z"),
                                    period="2026-12")).invoice.number]
    assert numbers == ["ACME-INV-000001", "BETA-INV-000001", "ACME-INV-000002"]


def test_a_gap_in_the_register_is_reported_not_papered_over(tmp_path):
    register = InvoiceRegister(tmp_path)
    register.issue(draft(rated(amount="1.000000"), period="2026-11"))
    register.issue(draft(rated(amount="1.000000", start="2026-12-03T12:00:00Z"), period="2026-12"))
    first = tmp_path / "ACME" / "invoices" / "ACME-INV-000001.json"
    first.chmod(0o644)
    first.unlink()
    with pytest.raises(InvoiceRegisterError, match=r"not 1..1 without gaps"):
        register.issue(draft(rated(amount="1.000000"), period="2027-01"))


def test_an_issued_document_file_is_never_overwritten(tmp_path):
    register = InvoiceRegister(tmp_path)
    issued = register.issue(draft(rated(amount="1.000000"))).invoice
    with pytest.raises(InvoiceRegisterError, match="never overwritten"):
        register._write(tmp_path / "ACME", issued)

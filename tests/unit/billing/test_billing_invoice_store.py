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


# -- a rebill after an accepted customer dispute: the customer is credited exactly once ----------

def _customer_balance(register: InvoiceRegister, customer: str = "ACME") -> Decimal:
    return sum((document.total for document in register.documents(customer)), Decimal("0.00"))


def _standing(register: InvoiceRegister, number: str):
    return next(s for s in register.standings(date(2026, 12, 31), "ACME") if s.invoice.number == number)


def test_a_rebill_that_corrects_the_disputed_usage_does_not_credit_the_dispute_a_second_time(tmp_path):
    register = InvoiceRegister(tmp_path)
    first = register.issue(draft(rated(amount="10.000000", event_id="a"), rated(amount="2.500000", event_id="b")))
    register.credit_line(first.invoice.number, "VOICE-INTERSTATE", Decimal("2.50"), date(2026, 12, 5), "ACME-DSP-1")
    assert _customer_balance(register) == Decimal("10.00")
    # the operator removes the call the customer never made and re-closes: the rebill bills 10.00,
    # which already contains the conceded 2.50; the dispute credit must not be given again
    outcome = register.issue(draft(rated(amount="10.000000", event_id="a")), as_of=date(2026, 12, 9))
    assert outcome.outcome == REISSUED
    assert _customer_balance(register) == Decimal("10.00")
    cancelled = _standing(register, first.invoice.number)
    assert (cancelled.credited, cancelled.balance_due, cancelled.status) == (Decimal("12.50"), Decimal("0.00"),
                                                                               "credited")
    assert outcome.credit_note.total == Decimal("-10.00")
    assert outcome.carried == ()
    assert _standing(register, outcome.invoice.number).balance_due == Decimal("10.00")


def test_a_rebill_for_other_late_usage_keeps_the_dispute_credit_once_on_the_rebill(tmp_path):
    register = InvoiceRegister(tmp_path)
    first = register.issue(draft(rated(amount="10.000000", event_id="a")))
    register.credit_line(first.invoice.number, "VOICE-INTERSTATE", Decimal("2.50"), date(2026, 12, 5), "ACME-DSP-1")
    # late SMS usage of the same cycle: the voice line is billed again in full, so the accepted
    # dispute's 2.50 moves to the rebill (a partial credit note on it), never 2.50 twice
    late = draft(rated(amount="10.000000", event_id="a"), rated("sms", units=1, amount="1.000000", event_id="s"))
    outcome = register.issue(late, as_of=date(2026, 12, 9))
    assert outcome.outcome == REISSUED
    assert outcome.invoice.total == Decimal("11.00")
    assert _customer_balance(register) == Decimal("8.50")
    cancelled = _standing(register, first.invoice.number)
    assert (cancelled.credited, cancelled.balance_due) == (Decimal("10.00"), Decimal("0.00"))
    assert outcome.credit_note.total == Decimal("-7.50")
    (carried,) = outcome.carried
    assert (carried.credits, carried.total) == (outcome.invoice.number, Decimal("-2.50"))
    assert dict(carried.lines[0].details)["dispute_id"] == "ACME-DSP-1"
    rebill = _standing(register, outcome.invoice.number)
    assert (rebill.credited, rebill.balance_due, rebill.cancelled) == (Decimal("2.50"), Decimal("8.50"), False)
    # the same close again changes nothing; a second rebill carries the credit once more, not twice
    assert register.issue(late).outcome == UNCHANGED
    again = register.issue(draft(rated(amount="10.000000", event_id="a")), as_of=date(2026, 12, 10))
    assert again.outcome == REISSUED
    assert _customer_balance(register) == Decimal("7.50")
    assert [note.total for note in again.carried] == [Decimal("-2.50")]


def test_a_dispute_credit_on_a_cancelled_invoice_is_refused_naming_its_rebill(tmp_path):
    register = InvoiceRegister(tmp_path)
    first = register.issue(draft(rated(amount="10.000000", event_id="a")))
    rebill = register.issue(draft(rated(amount="12.000000", event_id="a")), as_of=date(2026, 12, 9)).invoice
    with pytest.raises(InvoiceRegisterError, match=str(rebill.number)):
        register.credit_line(first.invoice.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 10), "D-9")
    assert _customer_balance(register) == Decimal("12.00")


def test_the_close_register_still_sees_an_invoice_with_a_dispute_credit_as_the_cycle_s_live_invoice(tmp_path):
    from warp_billing.adapters.file_register import FileCloseRegister

    close_register = FileCloseRegister(tmp_path)
    first = close_register.register.issue(draft(rated(amount="10.000000", event_id="a"))).invoice
    close_register.register.credit_line(first.number, "VOICE-INTERSTATE", Decimal("1.00"), date(2026, 12, 5), "D-1")
    assert close_register.issued_number("ACME", "2026-11") == first.number

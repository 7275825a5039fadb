"""The dunning ladder over the register's aging: which steps are due, and when a customer is settled."""

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st
from tests.erp_builders import draft, issued

from warp_billing.billing.receivables import PaymentApplication, standings
from warp_billing.dunning.ladder import blocking_invoices, due_steps, suspend_after_days
from warp_billing.plan import Collections, DunningStep

LADDER = Collections(ladder=(DunningStep(after_days=1, action="remind"), DunningStep(after_days=7, action="warn"),
                             DunningStep(after_days=15, action="suspend"),
                             DunningStep(after_days=30, action="collections"))).ladder
INVOICE = issued(draft("ACME", "2026-11", net_days=15), "ACME-INV-000001")   # due 2026-12-16


def standing_on(days_overdue: int, paid: str = "0"):
    as_of = INVOICE.due_date + timedelta(days=days_overdue)
    payments = [PaymentApplication("T1", "ACME-INV-000001", Decimal(paid), as_of)] if Decimal(paid) else []
    return standings([INVOICE], as_of, payments)


def test_the_due_date_itself_is_not_overdue_and_day_one_reminds():
    assert due_steps(standing_on(0), LADDER, set()) == []
    assert [due.step.action for due in due_steps(standing_on(1), LADDER, set())] == ["remind"]


def test_a_late_run_catches_up_in_ladder_order_and_skips_what_ran():
    due = due_steps(standing_on(16), LADDER, {("ACME-INV-000001", "remind")})
    assert [item.step.action for item in due] == ["warn", "suspend"]


def test_a_paid_or_credited_invoice_is_never_chased():
    assert due_steps(standing_on(40, paid=str(INVOICE.total)), LADDER, set()) == []


def test_a_partly_paid_invoice_is_still_chased_for_the_rest():
    due = due_steps(standing_on(7, paid="1.00"), LADDER, set())
    assert [item.step.action for item in due] == ["remind", "warn"]
    assert due[0].standing.balance_due == INVOICE.total - Decimal("1.00")


def test_blocking_invoices_are_those_past_the_suspend_step_with_a_balance():
    assert suspend_after_days(LADDER) == 15
    assert blocking_invoices(standing_on(14), LADDER) == []
    assert blocking_invoices(standing_on(15), LADDER) == ["ACME-INV-000001"]
    assert blocking_invoices(standing_on(20, paid=str(INVOICE.total)), LADDER) == []
    assert suspend_after_days(LADDER[:2]) == 1


@given(days=st.integers(min_value=0, max_value=400), ran=st.sets(st.sampled_from(
    ["remind", "warn", "suspend", "collections"])))
@example(days=15, ran=set())
@example(days=30, ran={"remind", "warn", "suspend"})
def test_every_step_is_due_exactly_when_reached_and_not_yet_run(days, ran):
    done = {("ACME-INV-000001", action) for action in ran}
    due = {item.step.action for item in due_steps(standing_on(days), LADDER, done)}
    expected = {step.action for step in LADDER if days >= step.after_days and step.action not in ran}
    assert due == expected


def test_days_overdue_counts_from_the_due_date():
    [row] = standing_on(3)
    assert row.days_overdue == 3 and row.as_of == date(2026, 12, 19)

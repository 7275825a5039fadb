"""Allocation of a payment over open invoices and its reversal: exact cents, nothing lost or invented."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warp_billing.payments.allocation import CREDIT, Application, OpenInvoice, allocate, net, reverse

D = Decimal


def invoices(*billed: str) -> list[OpenInvoice]:
    return [OpenInvoice(f"C-INV-{n:06d}", date(2026, 1, 1) + timedelta(days=31 * n), D(amount))
            for n, amount in enumerate(billed, start=1)]


def test_oldest_open_first_then_credit():
    result = allocate(D("150.00"), invoices("100.00", "80.00"), {})
    assert result == (Application("C-INV-000001", D("100.00")), Application("C-INV-000002", D("50.00")))


def test_named_invoice_first_partial_payment_leaves_rest_open():
    result = allocate(D("30.00"), invoices("100.00", "80.00"), {}, named="C-INV-000002")
    assert result == (Application("C-INV-000002", D("30.00")),)


def test_already_paid_amounts_are_skipped_and_overpayment_is_credit():
    result = allocate(D("100.00"), invoices("100.00", "80.00"), {"C-INV-000001": D("100.00"),
                                                                  "C-INV-000002": D("20.00")})
    assert result == (Application("C-INV-000002", D("60.00")), Application(CREDIT, D("40.00")))


def test_no_open_invoice_is_all_credit():
    assert allocate(D("5.00"), [], {}) == (Application(CREDIT, D("5.00")),)


def test_reversal_takes_credit_first_then_latest_invoice():
    applied = (Application("C-INV-000001", D("100.00")), Application("C-INV-000002", D("50.00")),
               Application(CREDIT, D("10.00")))
    assert reverse(applied, D("30.00")) == (Application(CREDIT, D("-10.00")), Application("C-INV-000002", D("-20.00")))
    assert net(applied + reverse(applied, None)) == ()


def test_reversing_more_than_is_left_is_refused():
    with pytest.raises(ValueError):
        reverse((Application("C-INV-000001", D("10.00")),), D("10.01"))


cents = st.integers(min_value=1, max_value=10_000_000).map(lambda n: D(n).scaleb(-2))


@given(amount=cents, billed=st.lists(cents, max_size=6), paid_share=st.integers(0, 100),
       refund=st.integers(min_value=1, max_value=100))
def test_allocation_conserves_money_and_never_overpays_an_invoice(amount, billed, paid_share, refund):
    open_invoices = invoices(*(str(b) for b in billed))
    paid = {invoice.number: (invoice.billed * paid_share / 100).quantize(D("0.01")) for invoice in open_invoices}
    result = allocate(amount, open_invoices, paid)
    assert sum(item.amount for item in result) == amount
    assert all(item.amount > 0 for item in result)
    for invoice in open_invoices:
        on_it = sum((item.amount for item in result if item.target == invoice.number), D(0))
        assert on_it <= max(D(0), invoice.billed - paid[invoice.number])
    # a partial reversal then the rest: exactly everything back, per target
    part = (amount * refund / 100).quantize(D("0.01"))
    if part > 0:
        first = reverse(result, part)
        assert -sum(item.amount for item in first) == part
        left = net(result + first)
        if left:
            assert net(left + reverse(left, None)) == ()
        assert net(result + first + (reverse(left, None) if left else ())) == ()

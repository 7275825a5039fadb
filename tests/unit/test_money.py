"""Money rules: exact decimals, floats refused, rounding once and half up at the boundary."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warp_billing.money import (
    MoneyError,
    format_rate,
    from_micros,
    per_minute_amount,
    round_cents,
    round_micro,
    to_decimal,
    to_micros,
)


def test_refuses_a_float_with_a_message_that_says_to_quote_it():
    with pytest.raises(MoneyError, match="float 0.0061 refused.*quoted decimal string"):
        to_decimal(0.0061, field="rate")


def test_refuses_booleans_and_garbage():
    with pytest.raises(MoneyError):
        to_decimal(True)
    with pytest.raises(MoneyError, match="not a decimal number"):
        to_decimal("0,006")
    with pytest.raises(MoneyError, match="finite"):
        to_decimal("NaN")


def test_keeps_eight_decimals_exactly_and_refuses_a_ninth():
    assert to_decimal("0.00612345", max_places=8) == Decimal("0.00612345")
    with pytest.raises(MoneyError, match="more than 8 decimal places"):
        to_decimal("0.006123451", max_places=8)


def test_half_up_at_the_seventh_decimal():
    assert round_micro(Decimal("0.0000005")) == Decimal("0.000001")
    assert round_micro(Decimal("0.00000049999")) == Decimal("0.000000")
    assert round_micro(Decimal("1.2345675")) == Decimal("1.234568")
    assert round_micro(Decimal("1.2345665")) == Decimal("1.234567")  # half up, not half even


def test_cents_round_half_up():
    assert round_cents(Decimal("0.005")) == Decimal("0.01")
    assert round_cents(Decimal("2.675")) == Decimal("2.68")
    assert round_cents(Decimal("-0.005")) == Decimal("-0.01")


def test_per_minute_amount_rounds_once_not_per_step():
    # 0.0061/min for 13 s = 0.00132166..., rounded once -> 0.001322
    assert per_minute_amount(Decimal("0.0061"), 13) == Decimal("0.001322")
    # exactly half at the 7th decimal: 0.00003/min x 1 s = 0.0000005 -> 0.000001
    assert per_minute_amount(Decimal("0.00003"), 1) == Decimal("0.000001")
    assert per_minute_amount(Decimal("0.0061"), 0, Decimal("0.01")) == Decimal("0.010000")


@given(
    rate=st.decimals(min_value=0, max_value=10, places=8, allow_nan=False, allow_infinity=False),
    seconds=st.integers(min_value=0, max_value=86_400),
    fee=st.decimals(min_value=0, max_value=1, places=8, allow_nan=False, allow_infinity=False),
)
def test_per_minute_amount_equals_exact_rational_rounding(rate, seconds, fee):
    from fractions import Fraction

    exact = Fraction(rate) * seconds / 60 + Fraction(fee)
    scaled = exact * 1_000_000
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    assert per_minute_amount(rate, seconds, fee) == Decimal(whole) / 1_000_000


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_micros_round_trip(micros):
    assert to_micros(from_micros(micros)) == micros


def test_micros_refuse_unrounded_amounts():
    with pytest.raises(MoneyError):
        to_micros(Decimal("0.0000001"))


def test_rates_format_without_exponents_or_noise():
    assert format_rate(Decimal("0.0061") * Decimal("1.10")) == "0.00671"
    assert format_rate(Decimal("1E-8")) == "0.00000001"
    assert format_rate(Decimal("0.0000")) == "0"

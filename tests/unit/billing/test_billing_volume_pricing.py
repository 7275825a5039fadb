"""Monthly volume pricing: tiers, commitments and API bulk discounts, each exact and rounded once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from warp_billing.billing.bulk_discounts import bulk_discount, discount_sku
from warp_billing.billing.commitments import REBATE_SKU, SHORTFALL_SKU, commitment_outcome
from warp_billing.billing.cycles import cycle_for
from warp_billing.billing.tiers import graduated_price, retrospective_price, tier_adjustment
from warp_billing.billing.usage_lines import UsageTotals
from warp_billing.plan import BulkDiscount, Commitment, Tiers

REFERENCE_BANDS = ({"up_to": 1000, "rate": "0.10"}, {"up_to": 10000, "rate": "0.05"}, {"rate": "0.01"})


def tiers(mode: str, bands=REFERENCE_BANDS) -> Tiers:
    return Tiers.model_validate({"mode": mode, "bands": list(bands)})


def test_the_reference_example_graduated_600_retrospective_150():
    minutes = Fraction(15000)
    assert graduated_price(tiers("graduated").bands, minutes) == 600
    assert retrospective_price(tiers("retrospective").bands, minutes) == 150


@pytest.mark.parametrize(
    ("minutes", "graduated", "retrospective"),
    [
        (Fraction(0), Fraction(0), Fraction(0)),
        (Fraction(1000), Fraction(100), Fraction(100)),                  # threshold hit exactly: still band 1
        (Fraction(10001, 10), Fraction(100005, 1000), Fraction(50005, 1000)),  # 1000.1 min: band 2
        (Fraction(10000), Fraction(550), Fraction(500)),
        (Fraction(10001), Fraction(55001, 100), Fraction(10001, 100)),  # one minute into band 3
    ],
)
def test_band_bounds_are_inclusive_upper_limits(minutes, graduated, retrospective):
    assert graduated_price(tiers("graduated").bands, minutes) == graduated
    assert retrospective_price(tiers("retrospective").bands, minutes) == retrospective


def test_beyond_a_bounded_last_band_its_rate_continues():
    bands = ({"up_to": 100, "rate": "0.02"}, {"up_to": 200, "rate": "0.01"})
    assert graduated_price(tiers("graduated", bands).bands, Fraction(300)) == Fraction(2) + Fraction(1) + Fraction(1)
    assert retrospective_price(tiers("retrospective", bands).bands, Fraction(300)) == Fraction(3)


def test_tier_adjustment_is_the_tiered_price_in_cents_minus_the_lines_as_printed():
    voice = UsageTotals(events=2, units=900_000, amount=Decimal("1560.005005"))     # 15,000 minutes
    price, adjustment = tier_adjustment(tiers("graduated"), voice, Decimal("1560.01"))
    assert (price, adjustment) == (Decimal("600.00"), Decimal("-960.01"))
    price, adjustment = tier_adjustment(tiers("retrospective"), voice, Decimal("1560.01"))
    assert (price, adjustment) == (Decimal("150.00"), Decimal("-1410.01"))


def test_tier_adjustment_of_repeating_minutes_is_exact_before_its_one_rounding():
    # 7 billed seconds = 0.11666... minutes at 0.10 = 0.011666... -> 0.01; the line printed 0.00.
    price, adjustment = tier_adjustment(tiers("graduated"), UsageTotals(1, 7, Decimal("0")), Decimal("0.00"))
    assert (price, adjustment) == (Decimal("0.01"), Decimal("0.01"))


COMMITMENT = Commitment(minutes=1_000_000, shortfall_rate=Decimal("0.004"), rebate_above_pct=Decimal("10"),
                        start=date(2026, 1, 1))
JUNE = cycle_for("2026-06")


def test_a_shortfall_charges_unmet_minutes_at_the_shortfall_rate():
    outcome = commitment_outcome(COMMITMENT, JUNE, Fraction(400_000), Fraction(1600))
    assert (outcome.sku, outcome.quantity, outcome.amount) == (SHORTFALL_SKU, 600_000, Decimal("2400.00"))


def test_zero_usage_pays_the_whole_commitment():
    outcome = commitment_outcome(COMMITMENT, JUNE, Fraction(0), Fraction(0))
    assert (outcome.sku, outcome.amount) == (SHORTFALL_SKU, Decimal("4000.00"))


def test_a_month_exactly_at_the_commitment_has_no_commitment_line():
    assert commitment_outcome(COMMITMENT, JUNE, Fraction(1_000_000), Fraction(4000)) is None


def test_a_tenth_of_a_minute_short_is_a_shortfall_of_that_tenth():
    outcome = commitment_outcome(COMMITMENT, JUNE, Fraction(9_999_999, 10), Fraction(4000))
    assert (outcome.quantity, outcome.amount) == (Fraction(1, 10), Decimal("0.00"))   # 0.0004 -> 0.00


def test_above_the_commitment_the_rebate_is_a_percentage_of_voice_usage_after_tiers():
    outcome = commitment_outcome(COMMITMENT, JUNE, Fraction(1_200_000), Fraction(300_005, 100))   # 3000.05
    assert (outcome.sku, outcome.amount) == (REBATE_SKU, Decimal("-300.01"))   # -300.005 half up


def test_no_rebate_line_when_the_rebate_percentage_is_zero():
    commitment = Commitment(minutes=10, shortfall_rate=Decimal("0.004"), start=date(2026, 1, 1))
    assert commitment_outcome(commitment, JUNE, Fraction(20), Fraction(5)) is None


DISCOUNT = BulkDiscount(threshold=10_000, percent=Decimal("20"))


def test_a_bulk_discount_applies_to_all_queries_once_the_threshold_is_reached_exactly():
    assert bulk_discount(DISCOUNT, UsageTotals(2, 10_000, Decimal("10.000000"))) == Decimal("-2.00")
    assert discount_sku("lrn") == "API-LRN-DISCOUNT"


def test_one_query_below_the_threshold_has_no_discount():
    assert bulk_discount(DISCOUNT, UsageTotals(2, 9_999, Decimal("9.999000"))) is None


def test_a_bulk_discount_is_exact_then_rounded_once():
    # 25% of 0.030 = 0.0075 -> -0.01 (half up, away from zero)
    discount = BulkDiscount(threshold=1, percent=Decimal("25"))
    assert bulk_discount(discount, UsageTotals(30, 30, Decimal("0.030000"))) == Decimal("-0.01")

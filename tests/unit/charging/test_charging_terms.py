"""Prepaid and postpaid terms from a plan: micro-units, soft limits and billing cycles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warp_billing.charging.postpaid import cycle_start, postpaid_terms
from warp_billing.charging.prepaid import prepaid_terms
from warp_billing.plan import parse_plan


def plan(**fields):
    return parse_plan({"customer_id": "C", "timezone": "UTC", **fields})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("instant, zone, anchor, cycle", [
    ("2026-11-01T03:59:59", "America/New_York", 1, "2026-10-01"),  # still Oct 31 in New York
    ("2026-11-01T04:00:00", "America/New_York", 1, "2026-11-01"),
    ("2026-01-14T12:00:00", "UTC", 15, "2025-12-15"),              # before the anchor: previous month
    ("2026-01-15T00:00:00", "UTC", 15, "2026-01-15"),
    ("2026-03-31T23:00:00", "Asia/Tokyo", 1, "2026-04-01"),
])
def test_an_event_falls_in_the_cycle_of_its_local_date(instant, zone, anchor, cycle):
    subject = plan(timezone=zone, terms={"anchor_day": anchor})

    assert cycle_start(subject, at(instant)).isoformat() == cycle


def test_the_soft_limit_is_the_percentage_of_the_credit_limit_rounded_to_the_micro_unit():
    subject = plan(postpaid={"credit_limit": "1000.00", "soft_limit_pct": "33.33333335"})

    terms = postpaid_terms(subject, at("2026-11-03T00:00:00"))

    assert (terms.credit_limit_micros, terms.soft_limit_micros) == (1_000_000_000, 333_333_334)


def test_no_credit_limit_means_totals_only():
    terms = postpaid_terms(plan(), at("2026-11-03T00:00:00"))

    assert (terms.cycle, terms.credit_limit_micros, terms.soft_limit_micros) == ("2026-11-01", None, None)


def test_prepaid_terms_in_micro_units_with_auto_recharge():
    terms = prepaid_terms(plan(billing="prepaid", prepaid={
        "low_balance_threshold": "5.0000005", "suspend_after_hours": 48,
        "auto_recharge_below": "10", "auto_recharge_amount": "100.00"}))

    assert terms.low_balance_threshold_micros == 5_000_001
    assert terms.suspend_after_s == 48 * 3600
    assert (terms.recharge_below_micros, terms.recharge_amount_micros, terms.auto_recharge) == (
        10_000_000, 100_000_000, True)


def test_auto_recharge_needs_both_the_trigger_and_the_amount():
    terms = prepaid_terms(plan(billing="prepaid", prepaid={"auto_recharge_below": "10"}))

    assert not terms.auto_recharge and terms.recharge_below_micros is None

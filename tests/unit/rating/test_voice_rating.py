"""Voice rating: increments, jurisdictional prices, policies, connect fee, multipliers, vendor cost."""

from decimal import Decimal

import pytest
from tests.builders import HEADER, rater, voice

from warp_billing.rating.voice import billed_seconds

DECK = HEADER + """1212,NY - NEW YORK,,0.0050,0.0040,0.0070,2026-01-01,,,,
1312,IL - CHICAGO,0.0030,,,,2026-01-01,,,,
1518,NY - ALBANY,,0.0050,,,2026-01-01,,,,
44,UNITED KINGDOM,0.0200,,,,2026-01-01,,60,60,0.01
4420,UK - LONDON,0.0150,,,,2026-01-01,,1,1,
1416,CANADA - TORONTO,0.0080,,,,2026-01-01,,,,
"""
VENDOR = """prefix,rate,interstate_rate,intrastate_rate,effective_date,first_increment,next_increment
1212,,0.0040,0.0030,2026-01-01,60,60
44,0.0100,,,2026-01-01,1,1
"""


def plan(extra: str = "", policy: str = "{policy: piu, piu: 60}", increments: str = '"6/6"') -> str:
    return f"""
customer_id: ACME
timezone: America/New_York
voice:
  deck: deck.csv
  vendor_decks: {{V1: vendor.csv}}
  increments: {increments}
  indeterminate: {policy}
{extra}
margin: {{overhead_per_minute: "0.0001", alert_below_pct: "15"}}
"""


def rate_one(event, plan_yaml=None):
    result = rater(plan_yaml or plan(), {"deck.csv": DECK, "vendor.csv": VENDOR}).rate(event)
    return result


@pytest.mark.parametrize(
    "duration, first, following, expected",
    [
        (0, 6, 6, 0), (1, 6, 6, 6), (6, 6, 6, 6), (7, 6, 6, 12), (8, 6, 6, 12), (12, 6, 6, 12), (13, 6, 6, 18),
        (10, 30, 6, 30), (30, 30, 6, 30), (31, 30, 6, 36), (61, 60, 60, 120), (60, 60, 60, 60), (83, 60, 10, 90),
        (1, 1, 1, 1), (3600, 60, 60, 3600),
    ],
)
def test_billed_seconds_follow_increments(duration, first, following, expected):
    assert billed_seconds(duration, first, following) == expected


def test_interstate_call_priced_at_the_interstate_column():
    result = rate_one(voice(duration_s=8))  # IL -> NY
    assert (result.jurisdiction, result.billed_units, result.rate, result.amount) == (
        "interstate", 12, Decimal("0.0050"), Decimal("0.001000"))


def test_intrastate_call_priced_at_the_intrastate_column():
    result = rate_one(voice(calling_number="+15185550000", duration_s=61))
    assert (result.jurisdiction, result.billed_units, result.amount) == ("intrastate", 66, Decimal("0.004400"))


def test_empty_jurisdiction_column_falls_back_to_rate():
    result = rate_one(voice(called_number="+13125559999", calling_number="+13125550000", duration_s=60))
    assert (result.jurisdiction, result.rate, result.amount) == ("intrastate", Decimal("0.0030"), Decimal("0.003000"))


def test_a_row_with_neither_the_jurisdiction_column_nor_rate_is_no_rate():
    result = rate_one(voice(called_number="+15185559999", calling_number="+15185550000"))
    assert (result.status, result.reason) == ("rejected", "NO_RATE")
    assert "intrastate" in result.detail


@pytest.mark.parametrize(
    "policy, expected_rate",
    [
        ("{policy: piu, piu: 60}", Decimal("0.0046")),        # 60% x 0.005 + 40% x 0.004
        ("{policy: piu, piu: 100}", Decimal("0.005")),
        ("{policy: piu, piu: 0}", Decimal("0.004")),
        ("{policy: piu, piu: \"62.5\"}", Decimal("0.004625")),
        ("{policy: intrastate}", Decimal("0.0040")),
        ("{policy: interstate}", Decimal("0.0050")),
        ("{policy: higher}", Decimal("0.0050")),
        ("{policy: indeterminate_rate}", Decimal("0.0070")),
    ],
)
def test_indeterminate_calls_are_priced_by_the_plan_policy(policy, expected_rate):
    result = rate_one(voice(calling_number=..., duration_s=60), plan(policy=policy))
    assert result.jurisdiction == "indeterminate"
    assert result.rate == expected_rate
    assert result.amount == expected_rate.quantize(Decimal("0.000001"))


def test_piu_is_the_default_policy_at_60():
    yaml_text = plan().replace("  indeterminate: {policy: piu, piu: 60}\n", "")
    result = rate_one(voice(calling_number=..., duration_s=60), yaml_text)
    assert result.rate == Decimal("0.0046")


def test_indeterminate_rate_policy_falls_back_to_rate_when_the_column_is_empty():
    result = rate_one(voice(calling_number=..., called_number="+13125559999"),
                      plan(policy="{policy: indeterminate_rate}"))
    assert result.rate == Decimal("0.0030")


def test_international_uses_row_increments_and_connect_fee_on_answered_calls():
    answered = rate_one(voice(called_number="+447700900123", duration_s=61))
    assert (answered.jurisdiction, answered.matched_prefix, answered.billed_units) == ("international", "44", 120)
    assert answered.amount == Decimal("0.050000")   # 0.02 x 2 min + 0.01 connect
    unanswered = rate_one(voice(called_number="+447700900123", duration_s=0))
    assert (unanswered.billed_units, unanswered.amount) == (0, Decimal("0.000000"))


def test_row_increment_override_one_second():
    result = rate_one(voice(called_number="+442071234567", duration_s=7))
    assert (result.billed_units, result.amount) == (7, Decimal("0.001750"))


def test_canada_is_international_at_the_rate_column():
    result = rate_one(voice(called_number="+14165551234", duration_s=6))
    assert (result.jurisdiction, result.amount) == ("international", Decimal("0.000800"))


def test_half_up_at_the_seventh_decimal_on_a_real_call():
    # 0.0050/min x 7 s billed at 1/1 would be 0.000583333...; with 6/6 -> 12 s = 0.001000 exactly.
    # Use a rate giving exactly ...5 at the 7th decimal: 0.00015 x 2 s / 60 = 0.000005 (exact);
    # 0.00003 x 1 s / 60 = 0.0000005 -> rounds up to 0.000001.
    deck = "prefix,rate,effective_date,first_increment,next_increment\n99,0.00003,2026-01-01,1,1\n"
    plan_yaml = "customer_id: ACME\ntimezone: UTC\nvoice: {deck: d.csv}\n"
    result = rater(plan_yaml, {"d.csv": deck}).rate(voice(called_number="+9912345678", duration_s=1))
    assert result.amount == Decimal("0.000001")


def test_time_of_day_multiplier_applies_to_rate_not_connect_fee():
    extra = '  time_of_day:\n    - {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00", multiplier: "1.10"}'
    # Tuesday 2026-11-03 10:00 New York (15:00Z)
    peak = rate_one(voice(called_number="+447700900123", duration_s=60, start_time="2026-11-03T15:00:00Z"), plan(extra))
    assert peak.rate == Decimal("0.022") and peak.amount == Decimal("0.032000")
    off_peak = rate_one(voice(called_number="+447700900123", duration_s=60, start_time="2026-11-03T23:00:00Z"),
                        plan(extra))
    assert off_peak.rate == Decimal("0.0200") and off_peak.amount == Decimal("0.030000")


def test_quality_tier_multiplier_by_route_class():
    extra = '  quality_tiers: {premium: "1.25", standard: "1"}'
    premium = rate_one(voice(route_class="premium"), plan(extra))
    assert premium.rate == Decimal("0.006250") and premium.amount == Decimal("0.006250")
    plain = rate_one(voice(), plan(extra))
    assert plain.rate == Decimal("0.0050")
    unknown = rate_one(voice(route_class="gold"), plan(extra))
    assert unknown.reason == "UNKNOWN_ROUTE_CLASS"


def test_route_class_without_quality_tiers_in_the_plan_is_priced_normally():
    assert rate_one(voice(route_class="premium")).rate == Decimal("0.0050")


def test_vendor_cost_uses_the_vendor_rows_own_increments_and_margin_is_computed():
    result = rate_one(voice(duration_s=8, vendor_id="V1"))   # vendor 60/60 -> 60 s at 0.004
    assert result.vendor_cost == Decimal("0.004000")
    # (0.001 - 0.004 - 0.0001 x 12/60) / 0.001 = -302%
    assert result.margin_pct == Decimal("-302.00") and result.low_margin is True


def test_healthy_margin_is_not_flagged():
    result = rate_one(voice(called_number="+447700900123", duration_s=120, vendor_id="V1"))
    # amount 0.04 + 0.01 = 0.05; vendor 0.01 x 2 = 0.02; overhead 0.0002 -> 59.6%
    assert (result.vendor_cost, result.margin_pct, result.low_margin) == (Decimal("0.020000"), Decimal("59.60"), False)


def test_no_vendor_deck_means_null_cost_and_margin():
    result = rate_one(voice(vendor_id="V9"))
    assert (result.vendor_cost, result.margin_pct, result.low_margin) == (None, None, False)


def test_plan_default_increments_apply_to_rows_without_their_own():
    result = rate_one(voice(duration_s=61), plan(increments='"60/60"'))
    assert result.billed_units == 120


def test_no_row_at_the_events_time_is_no_rate():
    result = rate_one(voice(start_time="2025-06-01T00:00:00Z"))
    assert result.reason == "NO_RATE"


def test_origination_deck_is_used_for_origination_calls():
    plan_yaml = plan().replace("  deck: deck.csv\n", "  deck: deck.csv\n  origination_deck: orig.csv\n")
    decks = {"deck.csv": DECK, "vendor.csv": VENDOR, "orig.csv": "prefix,rate,effective_date\n1,0.0009,2026-01-01\n"}
    result = rater(plan_yaml, decks).rate(voice(direction="origination", duration_s=60))
    assert (result.rate, result.amount) == (Decimal("0.0009"), Decimal("0.000900"))

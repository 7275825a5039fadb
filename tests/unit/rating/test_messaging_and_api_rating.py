"""Messaging (segments, MMS and carrier surcharges, 10DLC overrides, inbound) and API queries."""

from decimal import Decimal

from tests.builders import message, query, rater

PLAN = """
customer_id: ACME
timezone: UTC
messaging:
  deck: msg.csv
  vendor_decks: {V1: vmsg.csv}
  mms_surcharge: "0.003"
  carrier_surcharges: {T-MOBILE: "0.0025"}
  campaign_overrides: {CAMP123: "0.0020"}
  inbound_rate: "0.0010"
api_queries:
  prices: {lrn: "0.001", cnam: "0.004"}
  vendor_prices: {V1: {lrn: "0.0004"}}
margin: {overhead_per_message: "0.0001", alert_below_pct: "15"}
"""
DECKS = {
    "msg.csv": "prefix,destination,rate,effective_date\n1,US/CA,0.0040,2026-01-01\n44,UK,0.0350,2026-01-01\n",
    "vmsg.csv": "prefix,rate,effective_date\n1,0.0021,2026-01-01\n",
}


def rate(event):
    return rater(PLAN, DECKS).rate(event)


def test_outbound_sms_is_segments_times_the_destination_rate():
    result = rate(message(segments=3))
    assert (result.matched_prefix, result.rate, result.billed_units, result.amount) == (
        "1", Decimal("0.0040"), 3, Decimal("0.012000"))
    assert result.jurisdiction is None


def test_segments_default_to_one():
    assert rate(message(segments=...)).billed_units == 1


def test_mms_surcharge_is_added_once():
    result = rate(message(kind="mms"))
    assert result.amount == Decimal("0.007000")


def test_carrier_surcharge_matches_case_insensitively_and_is_added_once_per_message():
    result = rate(message(carrier="t-mobile", segments=2))
    assert result.amount == Decimal("0.010500")  # 2 x 0.004 + 0.0025
    assert rate(message(carrier="VERIZON")).amount == Decimal("0.004000")


def test_campaign_override_replaces_the_deck_rate():
    result = rate(message(campaign_id="CAMP123", segments=2, carrier="T-MOBILE"))
    assert (result.rate, result.amount, result.matched_prefix) == (Decimal("0.0020"), Decimal("0.006500"), None)
    assert rate(message(campaign_id="OTHER")).rate == Decimal("0.0040")


def test_inbound_uses_the_inbound_rate_and_no_carrier_surcharge():
    result = rate(message(direction="inbound", carrier="T-MOBILE", segments=2))
    assert (result.rate, result.amount) == (Decimal("0.0010"), Decimal("0.002000"))
    assert rate(message(direction="inbound", kind="mms")).amount == Decimal("0.004000")


def test_international_destination_by_longest_prefix():
    assert rate(message(to_number="+447700900123")).amount == Decimal("0.035000")


def test_no_destination_row_is_no_rate():
    result = rate(message(to_number="+33612345678"))
    assert result.reason == "NO_RATE"


def test_bad_message_fields_are_named():
    assert rate(message(to_number="5551234")).reason == "INVALID_NUMBER"
    assert rate(message(segments=0)).reason == "BAD_FIELD"
    assert rate(message(segments=1000)).reason == "BAD_FIELD"
    assert rate(message(direction="sideways")).reason == "BAD_FIELD"
    assert rate(message(to_number=...)).detail == "to_number: missing"


def test_messaging_vendor_cost_and_margin():
    result = rate(message(vendor_id="V1", segments=2))
    # amount 0.008, cost 0.0042, overhead 0.0002 -> 45%
    assert (result.vendor_cost, result.margin_pct, result.low_margin) == (Decimal("0.004200"), Decimal("45.00"), False)


def test_api_query_price_times_count():
    result = rate(query(count=25))
    assert (result.rate, result.billed_units, result.amount, result.query_type) == (
        Decimal("0.001"), 25, Decimal("0.025000"), "lrn")
    assert rate(query(query_type="cnam")).amount == Decimal("0.004000")


def test_api_query_unpriced_type_or_bad_count_is_rejected():
    assert rate(query(query_type="e911")).reason == "NO_RATE"
    assert rate(query(count=0)).reason == "BAD_FIELD"
    assert rate(query(count=2.5)).reason == "BAD_FIELD"


def test_api_vendor_cost():
    result = rate(query(count=10, vendor_id="V1"))
    assert (result.vendor_cost, result.margin_pct) == (Decimal("0.004000"), Decimal("60.00"))


def test_a_product_missing_from_the_plan_is_no_rate():
    result = rater("customer_id: ACME\ntimezone: UTC\napi_queries: {prices: {lrn: '0.001'}}\n", {}).rate(message())
    assert (result.reason, result.detail) == ("NO_RATE", "the plan has no messaging section")

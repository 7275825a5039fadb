"""Properties that must hold for every input, checked with hypothesis."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.builders import rater, voice

from warp_billing.money import per_minute_amount
from warp_billing.rating.rated_event import RejectedEvent
from warp_billing.rating.summary import RatingSummary
from warp_billing.rating.voice import billed_seconds

durations = st.integers(min_value=0, max_value=86_400)
increments = st.integers(min_value=1, max_value=3600)
rates = st.decimals(min_value=0, max_value=5, places=8, allow_nan=False, allow_infinity=False)


@given(durations, increments, increments)
def test_billed_seconds_cover_the_duration(duration, first, following):
    billed = billed_seconds(duration, first, following)
    assert billed >= duration
    assert billed == 0 if duration == 0 else billed >= first


@given(durations, increments, increments)
def test_billed_seconds_overshoot_by_less_than_one_increment(duration, first, following):
    billed = billed_seconds(duration, first, following)
    if duration > first:
        assert billed - duration < following
        assert (billed - first) % following == 0


@given(durations, durations, increments, increments)
def test_billed_seconds_are_monotonic_in_duration(a, b, first, following):
    low, high = sorted((a, b))
    assert billed_seconds(low, first, following) <= billed_seconds(high, first, following)


@given(rates, durations, durations)
def test_amount_is_non_negative_and_monotonic_in_duration(rate, a, b):
    low, high = sorted((a, b))
    first = per_minute_amount(rate, billed_seconds(low, 6, 6))
    second = per_minute_amount(rate, billed_seconds(high, 6, 6))
    assert Decimal(0) <= first <= second


PLAN = """
customer_id: ACME
timezone: America/Chicago
voice:
  deck: d.csv
  vendor_decks: {V1: d.csv}
  time_of_day: [{from: "08:00", to: "18:00", multiplier: "1.10"}]
"""
DECK = {"d.csv": "prefix,rate,interstate_rate,intrastate_rate,effective_date\n"
                 "1,0.005,0.006,0.004,2026-01-01\n44,0.02,,,2026-01-01\n"}
ENGINE = rater(PLAN, DECK)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
numbers = st.sampled_from(["+12125551234", "+13125550000", "+447700900123", "+1800555", "", "x",
                           "+14165550000"]) | st.text(max_size=16)


@settings(max_examples=400)
@given(
    st.fixed_dictionaries(
        {"event_id": st.text(min_size=1, max_size=8) | json_values,
         "kind": st.sampled_from(["voice", "sms", "api_query", "fax"]) | json_values},
        optional={
            "customer_id": st.just("ACME") | json_values,
            "start_time": st.sampled_from(["2026-11-03T10:00:00Z", "2026-11-03T10:00:00", "bad"]) | json_values,
            "duration_s": durations | st.integers(min_value=-10**20, max_value=10**20) | json_values,
            "calling_number": numbers | json_values,
            "called_number": numbers | json_values,
            "lrn": numbers | json_values,
            "segments": st.integers(min_value=-5, max_value=300) | json_values,
            "vendor_id": st.just("V1") | json_values,
        },
    )
)
def test_any_event_is_either_rated_or_rejected_never_an_exception(event):
    result = ENGINE.rate(event)
    assert result.status in ("rated", "rejected")
    if isinstance(result, RejectedEvent):
        assert result.reason.isupper() and result.detail
    else:
        assert result.amount >= 0
        assert result.billed_units >= 0


@given(st.lists(st.sampled_from([voice("a"), voice("b", duration_s=-1), voice("a"), {"nope": 1},
                                 voice("c", kind="sms")]), max_size=30))
def test_accepted_always_equals_rated_plus_rejected(events):
    engine = rater(PLAN, DECK)
    summary = RatingSummary()
    for event in events:
        summary.add(engine.rate(dict(event)))
    assert summary.accepted == len(events) == summary.rated + summary.rejected
    assert summary.balanced

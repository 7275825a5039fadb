"""Bad input becomes a named rejection: never a crash, never a silent drop."""

import pytest
from tests.builders import rater, voice

PLAN = "customer_id: ACME\ntimezone: UTC\nvoice: {deck: d.csv}\n"
DECK = {"d.csv": "prefix,rate,effective_date\n1,0.005,2026-01-01\n44,0.02,2026-01-01\n"}


def fresh():
    return rater(PLAN, DECK)


@pytest.mark.parametrize(
    "event, reason, detail",
    [
        ([1, 2], "MALFORMED_JSON", "not a JSON object"),
        ("text", "MALFORMED_JSON", "not a JSON object"),
        (voice(kind="fax"), "UNKNOWN_KIND", "'fax'"),
        (voice(kind=...), "UNKNOWN_KIND", "None"),
        (voice(event_id=...), "BAD_FIELD", "event_id: missing"),
        (voice(event_id=42), "BAD_FIELD", "event_id"),
        (voice(customer_id=...), "BAD_FIELD", "customer_id: missing"),
        (voice(customer_id="OTHER"), "UNKNOWN_CUSTOMER", "OTHER"),
        (voice(start_time=...), "BAD_FIELD", "start_time: missing"),
        (voice(start_time="03/11/2026"), "BAD_FIELD", "start_time"),
        (voice(start_time=1762128000), "BAD_FIELD", "start_time"),
        (voice(start_time="1900-01-01T00:00:00Z"), "BAD_FIELD", "year 1900"),
        (voice(duration_s=...), "BAD_FIELD", "duration_s: missing"),
        (voice(duration_s=-1), "BAD_FIELD", "duration_s: -1 is negative"),
        (voice(duration_s=12.5), "BAD_FIELD", "duration_s: expected a whole number"),
        (voice(duration_s="60"), "BAD_FIELD", "duration_s: expected a whole number"),
        (voice(duration_s=True), "BAD_FIELD", "duration_s"),
        (voice(duration_s=10**9), "BAD_FIELD", "above the maximum"),
        (voice(called_number=...), "BAD_FIELD", "called_number: missing"),
        (voice(called_number=12125551234), "BAD_FIELD", "called_number: expected a string"),
        (voice(called_number="+1"), "INVALID_NUMBER", "called_number"),
        (voice(calling_number=5), "BAD_FIELD", "calling_number"),
        (voice(direction="both"), "BAD_FIELD", "direction"),
        (voice(vendor_id=7), "BAD_FIELD", "vendor_id"),
    ],
)
def test_bad_events_are_rejected_with_a_named_reason(event, reason, detail):
    result = fresh().rate(event)
    assert result.status == "rejected"
    assert result.reason == reason
    assert detail in result.detail


def test_rejections_keep_whatever_identity_the_event_had():
    result = fresh().rate(voice(event_id="x-1", duration_s=-5))
    assert (result.event_id, result.kind, result.customer_id, result.start_time) == (
        "x-1", "voice", "ACME", "2026-11-03T02:00:00Z")


def test_a_repeated_event_id_is_rated_once():
    engine = fresh()
    assert engine.rate(voice("dup")).status == "rated"
    again = engine.rate(voice("dup"))
    assert (again.status, again.reason) == ("rejected", "DUPLICATE_EVENT")


def test_a_corrected_event_can_follow_its_rejected_first_version():
    engine = fresh()
    assert engine.rate(voice("fix", duration_s=-1)).reason == "BAD_FIELD"
    assert engine.rate(voice("fix", duration_s=30)).status == "rated"


def test_a_time_without_offset_is_utc_and_offsets_are_honoured():
    engine = fresh()
    assert engine.rate(voice("a", start_time="2026-01-01T00:00:00")).status == "rated"
    assert engine.rate(voice("b", start_time="2026-01-01T00:30:00+01:00")).reason == "NO_RATE"

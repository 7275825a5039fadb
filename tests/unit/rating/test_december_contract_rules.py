"""contracts.md December 2026: section 2's three rating rules and section 5's call identity on rated lines."""

from __future__ import annotations

import pytest
from tests.builders import message, rater, voice

from warp_billing.adapters.bigquery_usage import _rated_row, load_schema_json

DECK = """prefix,destination,rate,interstate_rate,intrastate_rate,indeterminate_rate,effective_date
1212,NY - NEW YORK,,0.0050,0.0040,0.0070,2026-01-01
1800,US TOLL-FREE,,0.0050,0.0040,0.0090,2026-01-01
1416,CANADA - TORONTO,0.0080,,,,2026-01-01
1876,JAMAICA,0.1000,,,,2026-01-01
44,UNITED KINGDOM,0.0200,,,,2026-01-01
"""
MESSAGING = "prefix,destination,rate,effective_date\n1,US/CANADA,0.0040,2026-01-01\n"
PLAN = """customer_id: ACME
timezone: America/New_York
voice: {deck: deck.csv, indeterminate: {policy: indeterminate_rate}}
messaging: {deck: messaging.csv}
"""


def rate(event):
    return rater(PLAN, {"deck.csv": DECK, "messaging.csv": MESSAGING}).rate(event)


@pytest.mark.parametrize(("seconds", "status"), [(86_399, "rated"), (86_400, "rejected"), (90_000, "rejected")])
def test_a_call_of_a_day_or_more_is_bad_field(seconds, status):
    result = rate(voice(duration_s=seconds))
    assert result.status == status
    if status == "rejected":
        assert result.reason == "BAD_FIELD" and "duration_s" in result.detail


@pytest.mark.parametrize("calling", ["+12125550000", "+13125550000", None, "+447700900123"])
@pytest.mark.parametrize("lrn", [None, "+12125559999"])
def test_a_toll_free_called_number_is_indeterminate_whatever_the_caller(calling, lrn):
    event = voice(called_number="+18005551234", calling_number=calling if calling else ..., lrn=lrn if lrn else ...)
    result = rate(event)
    assert (result.status, result.jurisdiction, result.matched_prefix, str(result.rate)) == (
        "rated", "indeterminate", "1800", "0.0090")


@pytest.mark.parametrize(("called", "prefix"), [("+14165551234", "1416"), ("+18765551234", "1876"),
                                                ("+447700900123", "44")])
@pytest.mark.parametrize("lrn", ["+12125559999", "not-a-number"])
def test_the_lrn_of_a_non_us_called_number_is_ignored_and_the_call_is_international(called, prefix, lrn):
    result = rate(voice(called_number=called, lrn=lrn))
    assert (result.status, result.jurisdiction, result.matched_prefix) == ("rated", "international", prefix)


def test_the_lrn_of_a_us_called_number_still_decides_the_terminating_state():
    result = rate(voice(called_number="+12125551234", calling_number="+13125550000", lrn="+12125559999"))
    assert (result.jurisdiction, result.matched_prefix) == ("interstate", "1212")


def test_a_rated_voice_line_carries_the_call_identity():
    call = voice(lrn="+12125559999", call_id="a84b4c76e66710@pc33.atlanta.example.com", trunk_id="TG-7")
    record = rate(call).to_record()
    assert {key: record[key] for key in ("calling_number", "called_number", "lrn", "call_id", "trunk_id")} == {
        "calling_number": "+13125550000", "called_number": "+12125551234", "lrn": "+12125559999",
        "call_id": "a84b4c76e66710@pc33.atlanta.example.com", "trunk_id": "TG-7"}


def test_absent_identity_fields_are_null_on_the_rated_line():
    record = rate(voice(calling_number=...)).to_record()
    assert (record["calling_number"], record["lrn"], record["call_id"], record["trunk_id"]) == (None, None, None, None)


def test_a_bad_call_id_is_a_named_rejection():
    result = rate(voice(call_id=12345))
    assert result.status == "rejected" and result.reason == "BAD_FIELD" and "call_id" in result.detail


def test_a_rated_message_carries_its_numbers():
    record = rate(message()).to_record()
    assert (record["from_number"], record["to_number"]) == ("+12125550000", "+13125551234")


def test_the_bigquery_rated_usage_schema_carries_the_same_columns():
    columns = {field["name"] for field in load_schema_json("rated_usage")}
    identity = {"calling_number", "called_number", "lrn", "call_id", "trunk_id", "from_number", "to_number"}
    assert identity <= columns
    row = _rated_row(rate(voice(call_id="c-1", trunk_id="T")).to_record(), "2026-11-03T00:00:00Z")
    assert (row["call_id"], row["trunk_id"], row["called_number"]) == ("c-1", "T", "+12125551234")

"""The one event check: `warp rate`'s rater and the real-time charging service reject alike."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tests.builders import rater, voice
from tests.charging_world import make_world

from warp_billing.rating.event_check import check_event
from warp_billing.rating.rated_event import RejectedEvent
from warp_billing.rating.rejections import Rejection

KEY = re.compile(r"[\x21-\x7e]{1,128}")  # the rule, written independently of the code under test
PLAN = """
customer_id: ACME
timezone: UTC
voice: {deck: voice.csv}
"""
DECK = "1,US,0.01,0.01,0.01,,2020-01-01,,6,6,\n"


def outcome(event: dict) -> tuple[str, str] | None:
    try:
        check_event(event)
    except Rejection as rejection:
        return rejection.reason.value, rejection.detail
    return None


@given(st.text(max_size=140))
@example("")
@example("a" * 128)
@example("a" * 129)
@example("ACME 1")
@example("ACME\t1")
@example("ACMÉ")
@example("a\x7f")
@example("~!")
def test_ids_are_printable_ascii_without_whitespace(value: str):
    for field in ("event_id", "customer_id"):
        result = outcome({**voice(), field: value})
        if KEY.fullmatch(value):
            assert result is None
        else:
            assert result is not None and result[0] == "BAD_FIELD" and result[1].startswith(f"{field}: ")


@pytest.mark.parametrize("value, detail", [
    (None, "event_id: missing"),
    (7, "event_id: expected a non-empty string"),
    ("", "event_id: expected a non-empty string"),
    ("e 1", "event_id: must be 1-128 printable ASCII characters without whitespace; whitespace ' ' at position 1"),
    ("é1", "event_id: must be 1-128 printable ASCII characters without whitespace; "
           "character 'é' at position 0 is not printable ASCII"),
    ("x" * 129, "event_id: must be 1-128 printable ASCII characters without whitespace; it has 129 characters"),
])
def test_the_detail_says_what_is_wrong(value, detail):
    assert outcome({**voice(), "event_id": value}) == ("BAD_FIELD", detail)


@pytest.mark.parametrize("event, reason, detail", [
    ({**voice(), "customer_id": "AC ME"}, "BAD_FIELD",
     "customer_id: must be 1-128 printable ASCII characters without whitespace; whitespace ' ' at position 2"),
    ({**voice(), "event_id": "e\n1"}, "BAD_FIELD",
     "event_id: must be 1-128 printable ASCII characters without whitespace; whitespace '\\n' at position 1"),
    ({**voice(), "kind": "fax"}, "UNKNOWN_KIND", "kind 'fax' is not voice, sms, mms or api_query"),
    ({**voice(), "kind": ["voice"]}, "UNKNOWN_KIND", "kind ['voice'] is not voice, sms, mms or api_query"),
    ({**voice(), "vendor_id": 3}, "BAD_FIELD", "vendor_id: expected a string"),
])
def test_rate_and_real_time_charging_reject_alike(event, reason, detail):
    rated = rater(PLAN, {"voice.csv": DECK}).rate(event)
    assert isinstance(rated, RejectedEvent)
    assert (rated.reason, rated.detail) == (reason, detail)
    world = make_world()
    handled = world.handle(event)
    assert (handled.status, handled.reason) == ("rejected", reason)
    [record] = world.usage.rejects.values()
    assert record["detail"] == detail


def test_an_invalid_event_id_is_not_the_key_of_the_real_time_reject():
    world = make_world()
    world.handle({**voice(), "event_id": "e 1"})
    [(key, record)] = world.usage.rejects.items()
    assert key.startswith("message:") and record["event_id"] is None

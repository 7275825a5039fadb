"""Why an event was not rated: stable reason codes and the exception that carries them.

The codes are a public contract (contracts.md section 5): operators filter, count
and replay rejects by them, so a code is never renamed once released.
"""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    MALFORMED_JSON = "MALFORMED_JSON"          # the line is not a JSON object
    UNKNOWN_KIND = "UNKNOWN_KIND"              # kind is not voice, sms, mms or api_query
    BAD_FIELD = "BAD_FIELD"                    # a field is missing, of the wrong type or out of range
    INVALID_NUMBER = "INVALID_NUMBER"          # a number that must be E.164 is not
    NO_RATE = "NO_RATE"                        # no deck row or price applies at the event's time
    DUPLICATE_EVENT = "DUPLICATE_EVENT"        # this event_id was already rated
    UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"      # no plan for the event's customer_id
    UNKNOWN_ROUTE_CLASS = "UNKNOWN_ROUTE_CLASS"  # the plan prices quality tiers but not this one
    EVENT_TOO_OLD = "EVENT_TOO_OLD"            # older than the configured maximum age (real time)
    EVENT_IN_FUTURE = "EVENT_IN_FUTURE"        # start_time more than WARP_MAX_FUTURE_SKEW_S ahead (real time)
    STORE_REFUSED = "STORE_REFUSED"            # the usage store refused the rated row for its content (kept here)
    SUSPENDED = "SUSPENDED"                    # the prepaid account is suspended
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"  # prepaid balance cannot cover the charge
    CREDIT_LIMIT = "CREDIT_LIMIT"              # postpaid hard credit limit reached
    ACCOUNT_SUSPENDED = "ACCOUNT_SUSPENDED"    # suspended for non-payment (dunning); reinstated once paid

    def __str__(self) -> str:
        return self.value


# What each code means, for operators (`warp reasons` prints this; the README's list is generated from it).
MEANINGS: dict[Reason, str] = {
    Reason.MALFORMED_JSON: "not a JSON object (or an empty line)",
    Reason.UNKNOWN_KIND: "kind is not in the product table (voice, sms, mms, api_query)",
    Reason.BAD_FIELD: "a field is missing, of the wrong type or out of range (e.g. a negative or day-long "
                      "duration; an event_id or customer_id that is not 1-128 printable ASCII characters "
                      "without whitespace)",
    Reason.INVALID_NUMBER: "called/to number or LRN not E.164",
    Reason.NO_RATE: "no deck row or price at the event's time",
    Reason.DUPLICATE_EVENT: "event_id already rated",
    Reason.UNKNOWN_CUSTOMER: "no plan for the customer_id",
    Reason.UNKNOWN_ROUTE_CLASS: "the plan prices quality tiers but not this class",
    Reason.EVENT_TOO_OLD: "real time: older than WARP_MAX_EVENT_AGE_S and never charged",
    Reason.EVENT_IN_FUTURE: "real time: start_time more than WARP_MAX_FUTURE_SKEW_S ahead of processing",
    Reason.STORE_REFUSED: "real time: charged, but the usage store refused the rated row for its content",
    Reason.SUSPENDED: "real time: the prepaid account is suspended",
    Reason.INSUFFICIENT_BALANCE: "real time: the prepaid balance cannot cover the charge",
    Reason.CREDIT_LIMIT: "real time: the postpaid hard credit limit is reached",
    Reason.ACCOUNT_SUSPENDED: ("real time: the account (prepaid or postpaid) is suspended for an overdue invoice "
                               "(dunning); replay after it is reinstated"),
}


class Rejection(Exception):
    """A permanent reason not to rate an event; never retried, always recorded."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

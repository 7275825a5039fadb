"""The one check of a usage event's common fields, shared by `warp rate` and real-time charging.

``check_event`` reads ``event_id``, ``kind``, ``customer_id`` and ``vendor_id`` and either returns
them clean or raises ``Rejection`` with the same reason and detail on both paths:

* ``event_id`` and ``customer_id``: 1-128 printable ASCII characters, no whitespace (they become
  BigQuery insertIds, Redis keys, file names and ERP references), else BAD_FIELD;
* ``kind``: a kind of the product table (``warp_billing.products``), else UNKNOWN_KIND;
* ``vendor_id``: a string when present, else BAD_FIELD ("" means no vendor).

The kind-specific fields are checked by the kind's rater (``rating.kinds``).
"""

from __future__ import annotations

from typing import Any

from ..products import PRODUCTS, kinds_text
from .rejections import Reason, Rejection

MAX_KEY_LENGTH = 128
KEY_RULE = f"1-{MAX_KEY_LENGTH} printable ASCII characters without whitespace"


def is_key(value: str) -> bool:
    """Whether ``value`` is a valid event_id / customer_id (printable ASCII 0x21-0x7E, 1-128 long)."""
    # isprintable() admits the space (and no other whitespace) among ASCII characters
    return 0 < len(value) <= MAX_KEY_LENGTH and value.isascii() and value.isprintable() and " " not in value


def key_problem(field: str, value: object) -> Rejection:
    """The BAD_FIELD rejection of an invalid event_id / customer_id, naming what is wrong."""
    if value is None:
        return Rejection(Reason.BAD_FIELD, f"{field}: missing")
    if type(value) is not str or not value:
        return Rejection(Reason.BAD_FIELD, f"{field}: expected a non-empty string")
    if len(value) > MAX_KEY_LENGTH:
        problem = f"it has {len(value)} characters"
    else:
        problem = "it is not valid"
        for position, char in enumerate(value):
            if char.isspace():
                problem = f"whitespace {char!r} at position {position}"
                break
            if not "!" <= char <= "~":
                problem = f"character {char!r} at position {position} is not printable ASCII"
                break
    return Rejection(Reason.BAD_FIELD, f"{field}: must be {KEY_RULE}; {problem}")


def check_event(event: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(event_id, kind, customer_id, vendor_id or None) of a decoded event; Rejection when bad."""
    event_id = event.get("event_id")
    if type(event_id) is not str or not is_key(event_id):
        raise key_problem("event_id", event_id)
    kind = event.get("kind")
    if type(kind) is not str or kind not in PRODUCTS:
        raise Rejection(Reason.UNKNOWN_KIND, f"kind {kind!r} is not {kinds_text()}")
    customer_id = event.get("customer_id")
    if type(customer_id) is not str or not is_key(customer_id):
        raise key_problem("customer_id", customer_id)
    vendor_id = event.get("vendor_id")
    if vendor_id is not None and type(vendor_id) is not str:
        raise Rejection(Reason.BAD_FIELD, "vendor_id: expected a string")
    return event_id, kind, customer_id, vendor_id or None

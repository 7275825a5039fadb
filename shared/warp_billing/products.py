"""The product table: every usage kind WARP rates, charges and bills, described once.

For each kind (the event's ``kind`` field) one ``Product`` says:

* its event fields and their checks (the kind's event reader raises BAD_FIELD / INVALID_NUMBER);
* its rater: a factory that compiles the customer's plan section into ``rate(event, event_id,
  vendor_id)``, and the deck files that section names;
* how billing groups and prices it: the SKU family (``VOICE``-INTERSTATE), the rated field the
  invoice groups by and the allowed values in invoice order, the invoice unit and how many billed
  units make one, the line description;
* its revenue account (an ``AccountMap`` field of revenue recognition);
* where it arrives in the cloud: the Pub/Sub topic and the Cloud Function that rates it.

Rating (``rating.rater``), the shared event check (``rating.event_check``), real-time charging,
billing (usage lines, invoice), revenue recognition, sample data, the function bundles and the
Terraform test read this table; adding a kind is one ``Product`` here plus its rater. Tests
register a toy kind with ``registered(product)`` to prove that seam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from .plan import Plan
from .rating.deck import RateDeck
from .rating.kinds import (
    api_query_rater,
    messaging_decks,
    mms_rater,
    no_decks,
    sms_rater,
    voice_decks,
    voice_rater,
)
from .rating.numbering import NumberingPlan
from .rating.rated_event import RatedEvent


class KindRater(Protocol):
    """What a rater factory returns: prices one event of its kind, raising Rejection for bad input."""

    def rate(self, event: dict[str, Any], event_id: str, vendor_id: str | None) -> RatedEvent: ...


RaterFactory = Callable[[Plan, Mapping[str, RateDeck], NumberingPlan], "KindRater | None"]


@dataclass(frozen=True)
class EventField:
    """One kind-specific event field (contracts.md section 2) and the check its reader applies."""

    name: str
    required: bool
    check: str


@dataclass(frozen=True)
class Product:
    """One usage kind, as rating, charging, billing and deployment need it (see the module docstring).

    Attributes:
        kind: the event's ``kind`` value ("voice").
        plan_section: the plan section that prices it; named in the NO_RATE detail.
        fields: the kind-specific event fields and their checks.
        rater: builds the kind's rater from a plan (None when the plan has no section for it).
        decks: the deck files the plan section names (loaded once per plan).
        sku_prefix: the invoice SKU family: lines are ``<sku_prefix>-<GROUP>``.
        group_field: the rated-record field whose value groups the invoice lines.
        group_values: the allowed group values in invoice order; empty = any non-empty text, sorted.
        group_default: the group of a record without ``group_field`` (None: the field is required).
        unit: the invoice quantity unit ("minute").
        units_per_quantity: billed units per invoice unit (60 billed seconds per minute).
        unit_detail: the invoice line detail that carries the billed units (voice: billed_seconds).
        description: the invoice line description; ``{group}`` / ``{GROUP}`` are replaced.
        group_descriptions: per-group descriptions overriding ``description``.
        revenue_account: the ``AccountMap`` field its revenue is credited to.
        topic: the Pub/Sub topic its events arrive on.
        function: the Cloud Function (functions/<name>/main.py) that rates and charges them.
    """

    kind: str
    plan_section: str
    fields: tuple[EventField, ...]
    rater: RaterFactory
    decks: Callable[[Plan], list[str]]
    sku_prefix: str
    group_field: str
    group_values: tuple[str, ...]
    group_default: str | None
    unit: str
    units_per_quantity: int
    unit_detail: str | None
    description: str
    revenue_account: str
    topic: str
    function: str
    group_descriptions: Mapping[str, str] | None = None

    def sku(self, group: str) -> str:
        return f"{self.sku_prefix}-{group.upper()}"

    def describe(self, group: str) -> str:
        if self.group_descriptions and group in self.group_descriptions:
            return self.group_descriptions[group]
        return self.description.format(group=group, GROUP=group.upper())

    def invoice_order(self, groups: list[str]) -> list[str]:
        """The groups present, in invoice order (declared order, else sorted)."""
        if self.group_values:
            return [group for group in self.group_values if group in groups]
        return sorted(groups)

    def group_problem(self, group: object) -> str | None:
        """Why a rated record's group value cannot be billed, or None when it can."""
        if self.group_values:
            if group in self.group_values:
                return None
            values = self.group_values
            expected = " or ".join(values) if len(values) == 2 else "one of " + ", ".join(values)
            return f"{self.kind} line with {self.group_field} {group!r}; expected {expected}"
        if isinstance(group, str) and group.strip():
            return None
        return f"{self.kind} line without a {self.group_field}"


_MESSAGE_FIELDS = (
    EventField("direction", False, "outbound | inbound (default outbound)"),
    EventField("to_number", True, "E.164 (+ and 8-15 digits), else INVALID_NUMBER"),
    EventField("from_number", False, "E.164 when present, else INVALID_NUMBER"),
    EventField("segments", False, "whole number 1-255 (default 1)"),
    EventField("carrier", False, "text up to 256 characters"),
    EventField("campaign_id", False, "text up to 256 characters"),
)
_MESSAGE_DIRECTIONS = ("outbound", "inbound")

VOICE = Product(
    kind="voice",
    plan_section="voice",
    fields=(
        EventField("duration_s", True, "whole number 0-86399 (86,400 or more is BAD_FIELD)"),
        EventField("called_number", True, "non-empty text; E.164 or NANP, else INVALID_NUMBER"),
        EventField("calling_number", False, "text up to 256 characters"),
        EventField("lrn", False, "text up to 256 characters (the dipped routing number)"),
        EventField("direction", False, "termination | origination (default termination)"),
        EventField("route_class", False, "text; must be priced when the plan has quality tiers"),
        EventField("trunk_id", False, "text up to 256 characters (carried on the rated line)"),
        EventField("call_id", False, "text up to 256 characters: the switch's call identifier, e.g. SIP Call-ID"),
    ),
    rater=voice_rater,
    decks=voice_decks,
    sku_prefix="VOICE",
    group_field="jurisdiction",
    group_values=("interstate", "intrastate", "indeterminate", "international"),
    group_default=None,
    unit="minute",
    units_per_quantity=60,
    unit_detail="billed_seconds",
    description="Voice usage, {group}",
    group_descriptions={"indeterminate": "Voice usage, indeterminate jurisdiction"},
    revenue_account="voice_revenue",
    topic="usage-voice",
    function="rate_voice",
)
SMS = Product(
    kind="sms", plan_section="messaging", fields=_MESSAGE_FIELDS, rater=sms_rater, decks=messaging_decks,
    sku_prefix="SMS", group_field="direction", group_values=_MESSAGE_DIRECTIONS, group_default="outbound",
    unit="message", units_per_quantity=1, unit_detail=None, description="SMS messages, {group}",
    revenue_account="messaging_revenue", topic="usage-messaging", function="rate_sms",
)
MMS = Product(
    kind="mms", plan_section="messaging", fields=_MESSAGE_FIELDS, rater=mms_rater, decks=messaging_decks,
    sku_prefix="MMS", group_field="direction", group_values=_MESSAGE_DIRECTIONS, group_default="outbound",
    unit="message", units_per_quantity=1, unit_detail=None, description="MMS messages, {group}",
    revenue_account="messaging_revenue", topic="usage-messaging", function="rate_sms",
)
API_QUERY = Product(
    kind="api_query",
    plan_section="api_queries",
    fields=(
        EventField("query_type", True, "non-empty text priced by the plan (lrn, cnam, ...)"),
        EventField("count", False, "whole number 1-10,000,000 (default 1)"),
    ),
    rater=api_query_rater,
    decks=no_decks,
    sku_prefix="API",
    group_field="query_type",
    group_values=(),
    group_default=None,
    unit="query",
    units_per_quantity=1,
    unit_detail=None,
    description="{GROUP} queries",
    revenue_account="api_revenue",
    topic="usage-api",
    function="rate_api",
)

# The table itself, in invoice order. Read it through the functions below; only tests change it.
PRODUCTS: dict[str, Product] = {product.kind: product for product in (VOICE, SMS, MMS, API_QUERY)}
COMMON_FIELDS = (
    EventField("event_id", True, "1-128 printable ASCII characters, no whitespace; unique"),
    EventField("kind", True, "a kind of the product table"),
    EventField("customer_id", True, "1-128 printable ASCII characters, no whitespace; has a plan"),
    EventField("start_time", True, "ISO 8601 instant (no offset = UTC), year 2000-2100"),
    EventField("vendor_id", False, "text: the vendor whose deck costs the event"),
)


def product(kind: str) -> Product | None:
    return PRODUCTS.get(kind)


def products() -> tuple[Product, ...]:
    """Every product, in invoice order."""
    return tuple(PRODUCTS.values())


def kinds_text() -> str:
    """The kinds as a sentence fragment: "voice, sms, mms or api_query"."""
    names = list(PRODUCTS)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def functions() -> dict[str, tuple[str, ...]]:
    """Cloud Function name -> the topics it subscribes to (one today), from the table."""
    found: dict[str, list[str]] = {}
    for item in PRODUCTS.values():
        topics = found.setdefault(item.function, [])
        if item.topic not in topics:
            topics.append(item.topic)
    return {name: tuple(topics) for name, topics in found.items()}


@contextmanager
def registered(extra: Product) -> Iterator[Product]:
    """Add a product for the duration of a ``with`` block (tests: a toy kind proves the seam)."""
    if extra.kind in PRODUCTS:
        raise ValueError(f"kind {extra.kind!r} is already in the product table")
    PRODUCTS[extra.kind] = extra
    try:
        yield extra
    finally:
        del PRODUCTS[extra.kind]

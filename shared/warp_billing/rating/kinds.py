"""One rater per product kind: a plan section compiled into ``rate(event, event_id, vendor_id)``.

The product table (``warp_billing.products``) names, for each kind, the factory here that builds
its rater from a customer's plan. A factory returns None when the plan has no section for the
kind; the customer's events of that kind are then rejected NO_RATE. Field checks live in each
kind's event reader (``VoiceCall.from_event``, ``Message.from_event``, ``ApiQuery.from_event``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..plan import Plan
from .api_queries import ApiQuery, ApiQueryRater
from .deck import RateDeck
from .events import MAX_ID_LENGTH, optional_text
from .jurisdiction import JurisdictionRules
from .margin import margin
from .messaging import Message, MessagingRater
from .numbering import NumberingPlan
from .rated_event import RatedEvent
from .time_of_day import TimeOfDay
from .voice import VoiceCall, VoiceRater

SIXTY = Decimal(60)


class VoiceKind:
    """Voice calls (termination and origination) under the plan's ``voice`` section."""

    def __init__(self, plan: Plan, decks: Mapping[str, RateDeck], numbering: NumberingPlan):
        voice = plan.voice
        assert voice is not None  # the factory below builds a VoiceKind only for a voice section
        self._customer_id = plan.customer_id
        self._margin = plan.margin
        rules = JurisdictionRules(numbering, voice.us_territories == "domestic", voice.foreign_origin)
        self._rater = VoiceRater(
            decks[voice.deck],
            rules,
            voice.increments,
            voice.indeterminate,
            TimeOfDay(voice.time_of_day, plan.zone),
            voice.quality_tiers,
            decks[voice.origination_deck] if voice.origination_deck else None,
        )
        self._vendor_decks: dict[str, RateDeck] = {vendor: decks[path] for vendor, path in voice.vendor_decks.items()}

    def rate(self, event: dict[str, Any], event_id: str, vendor_id: str | None) -> RatedEvent:
        call = VoiceCall.from_event(event)
        price = self._rater.rate(call, self._vendor_decks.get(vendor_id) if vendor_id is not None else None)
        margin_pct, low = None, False
        if price.vendor_cost is not None:
            # overhead only feeds the margin ratio (never billed), so the 28-digit context is ample
            overhead = self._margin.overhead_per_minute * price.billed_seconds / SIXTY
            margin_pct, low = margin(price.amount, price.vendor_cost, overhead, self._margin.alert_below_pct)
        row = price.row
        call_id = event.get("call_id")
        if call_id is not None and (type(call_id) is not str or len(call_id) > MAX_ID_LENGTH):
            call_id = optional_text(event, "call_id")
        trunk_id = event.get("trunk_id")
        if trunk_id is not None and (type(trunk_id) is not str or len(trunk_id) > MAX_ID_LENGTH):
            trunk_id = optional_text(event, "trunk_id")
        return RatedEvent(
            event_id, "voice", self._customer_id, event["start_time"], price.jurisdiction, row.prefix,
            row.destination, price.rate, price.billed_seconds, price.amount, vendor_id, price.vendor_cost,
            margin_pct, low, direction=call.direction, duration_s=call.duration_s,
            identity=(call.calling_number, call.called_number, call.lrn, call_id or None, trunk_id or None),
        )


class MessageKind:
    """SMS or MMS under the plan's ``messaging`` section (one instance per kind)."""

    def __init__(self, plan: Plan, decks: Mapping[str, RateDeck], kind: str):
        messaging = plan.messaging
        assert messaging is not None  # built only for a messaging section
        self._kind = kind
        self._customer_id = plan.customer_id
        self._margin = plan.margin
        self._rater = MessagingRater(messaging, decks[messaging.deck] if messaging.deck else None)
        self._vendor_decks: dict[str, RateDeck] = {
            vendor: decks[path] for vendor, path in messaging.vendor_decks.items()
        }

    def rate(self, event: dict[str, Any], event_id: str, vendor_id: str | None) -> RatedEvent:
        kind = self._kind
        message = Message.from_event(event, kind)
        price = self._rater.price(message)
        vendor_cost = None
        if vendor_id is not None and message.direction == "outbound":
            vendor_deck = self._vendor_decks.get(vendor_id)
            if vendor_deck is not None:
                vendor_cost = MessagingRater.vendor_cost(vendor_deck, message)
        overhead = self._margin.overhead_per_message * message.segments
        margin_pct, low = margin(price.amount, vendor_cost, overhead, self._margin.alert_below_pct)
        return RatedEvent(
            event_id, kind, self._customer_id, event["start_time"], None, price.matched_prefix, price.destination,
            price.rate, message.segments, price.amount, vendor_id, vendor_cost, margin_pct, low,
            direction=message.direction, identity=(message.from_number, message.to_number),
        )


class ApiQueryKind:
    """Telco data API queries (LRN, CNAM, ...) under the plan's ``api_queries`` section."""

    def __init__(self, plan: Plan):
        api = plan.api_queries
        assert api is not None  # built only for an api_queries section
        self._customer_id = plan.customer_id
        self._margin = plan.margin
        self._rater = ApiQueryRater(api)

    def rate(self, event: dict[str, Any], event_id: str, vendor_id: str | None) -> RatedEvent:
        query = ApiQuery.from_event(event)
        unit, amount = self._rater.price(query)
        vendor_cost = self._rater.vendor_cost(vendor_id, query) if vendor_id is not None else None
        overhead = self._margin.overhead_per_query * query.count
        margin_pct, low = margin(amount, vendor_cost, overhead, self._margin.alert_below_pct)
        return RatedEvent(
            event_id, "api_query", self._customer_id, event["start_time"], None, None, None,
            unit, query.count, amount, vendor_id, vendor_cost, margin_pct, low, query_type=query.query_type,
        )


# -- factories named by the product table: (plan, compiled decks, numbering) -> a rater or None ----


def voice_rater(plan: Plan, decks: Mapping[str, RateDeck], numbering: NumberingPlan) -> VoiceKind | None:
    return VoiceKind(plan, decks, numbering) if plan.voice is not None else None


def sms_rater(plan: Plan, decks: Mapping[str, RateDeck], numbering: NumberingPlan) -> MessageKind | None:
    return MessageKind(plan, decks, "sms") if plan.messaging is not None else None


def mms_rater(plan: Plan, decks: Mapping[str, RateDeck], numbering: NumberingPlan) -> MessageKind | None:
    return MessageKind(plan, decks, "mms") if plan.messaging is not None else None


def api_query_rater(plan: Plan, decks: Mapping[str, RateDeck], numbering: NumberingPlan) -> ApiQueryKind | None:
    return ApiQueryKind(plan) if plan.api_queries is not None else None


def voice_decks(plan: Plan) -> list[str]:
    """Every deck file the voice section names (customer, origination and vendor decks)."""
    voice = plan.voice
    if voice is None:
        return []
    paths = [voice.deck]
    if voice.origination_deck:
        paths.append(voice.origination_deck)
    paths.extend(voice.vendor_decks.values())
    return paths


def messaging_decks(plan: Plan) -> list[str]:
    """Every deck file the messaging section names (customer and vendor decks)."""
    messaging = plan.messaging
    if messaging is None:
        return []
    paths = [messaging.deck] if messaging.deck else []
    paths.extend(messaging.vendor_decks.values())
    return paths


def no_decks(plan: Plan) -> list[str]:
    return []

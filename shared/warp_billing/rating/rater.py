"""Rating service core: a customer's plan compiled into raters, and event dispatch.

``CustomerRater`` prices one customer's events under one plan. ``Rater`` routes a stream of
events by ``customer_id``, rejects repeats of an already-rated ``event_id``, and never
raises for bad input: every event comes back as a ``RatedEvent`` or a ``RejectedEvent``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Iterable, Mapping

from ..plan import LoadedPlan, Plan
from .api_queries import ApiQuery, ApiQueryRater
from .deck import RateDeck, load_deck
from .events import MAX_ID_LENGTH, optional_text
from .jurisdiction import JurisdictionRules
from .margin import margin
from .messaging import Message, MessagingRater
from .numbering import NumberingPlan
from .rated_event import RatedEvent, RejectedEvent
from .rejections import Reason, Rejection
from .time_of_day import TimeOfDay
from .voice import VoiceCall, VoiceRater

SIXTY = Decimal(60)
DeckLoader = Callable[[str], RateDeck]


class DeckCache:
    """Loads each deck file once, however many plans name it."""

    def __init__(self, loader: DeckLoader = load_deck):
        self._loader = loader
        self._decks: dict[str, RateDeck] = {}

    def __call__(self, path: str) -> RateDeck:
        deck = self._decks.get(path)
        if deck is None:
            deck = self._decks[path] = self._loader(path)
        return deck


class CustomerRater:
    """Rates the events of one customer under its plan."""

    def __init__(self, plan: Plan, decks: Mapping[str, RateDeck], numbering: NumberingPlan):
        """``decks`` maps each deck path named in the plan to its compiled deck."""
        self.plan = plan
        self._margin = plan.margin
        self._voice: VoiceRater | None = None
        self._messaging: MessagingRater | None = None
        self._api: ApiQueryRater | None = None
        self._vendor_voice: dict[str, RateDeck] = {}
        self._vendor_messaging: dict[str, RateDeck] = {}
        if plan.voice is not None:
            voice = plan.voice
            rules = JurisdictionRules(numbering, voice.us_territories == "domestic", voice.foreign_origin)
            self._voice = VoiceRater(
                decks[voice.deck],
                rules,
                voice.increments,
                voice.indeterminate,
                TimeOfDay(voice.time_of_day, plan.zone),
                voice.quality_tiers,
                decks[voice.origination_deck] if voice.origination_deck else None,
            )
            self._vendor_voice = {vendor: decks[path] for vendor, path in voice.vendor_decks.items()}
        if plan.messaging is not None:
            messaging = plan.messaging
            self._messaging = MessagingRater(messaging, decks[messaging.deck] if messaging.deck else None)
            self._vendor_messaging = {vendor: decks[path] for vendor, path in messaging.vendor_decks.items()}
        if plan.api_queries is not None:
            self._api = ApiQueryRater(plan.api_queries)

    def rate(self, event: dict, event_id: str, kind: str, vendor_id: str | None) -> RatedEvent:
        if kind == "voice":
            return self._rate_voice(event, event_id, vendor_id)
        if kind == "sms" or kind == "mms":
            return self._rate_message(event, event_id, kind, vendor_id)
        return self._rate_api(event, event_id, vendor_id)

    def _rate_voice(self, event: dict, event_id: str, vendor_id: str | None) -> RatedEvent:
        if self._voice is None:
            raise Rejection(Reason.NO_RATE, "the plan has no voice section")
        call = VoiceCall.from_event(event)
        price = self._voice.rate(call, self._vendor_voice.get(vendor_id) if vendor_id is not None else None)
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
            event_id, "voice", self.plan.customer_id, event["start_time"], price.jurisdiction, row.prefix,
            row.destination, price.rate, price.billed_seconds, price.amount, vendor_id, price.vendor_cost,
            margin_pct, low, direction=call.direction, duration_s=call.duration_s,
            identity=(call.calling_number, call.called_number, call.lrn, call_id or None, trunk_id or None),
            vendor_rate=price.vendor_rate, vendor_billed_units=price.vendor_billed_seconds,
        )

    def _rate_message(self, event: dict, event_id: str, kind: str, vendor_id: str | None) -> RatedEvent:
        if self._messaging is None:
            raise Rejection(Reason.NO_RATE, "the plan has no messaging section")
        message = Message.from_event(event, kind)
        price = self._messaging.price(message)
        vendor_cost = None
        if vendor_id is not None and message.direction == "outbound":
            vendor_deck = self._vendor_messaging.get(vendor_id)
            if vendor_deck is not None:
                vendor_cost = MessagingRater.vendor_cost(vendor_deck, message)
        overhead = self._margin.overhead_per_message * message.segments
        margin_pct, low = margin(price.amount, vendor_cost, overhead, self._margin.alert_below_pct)
        return RatedEvent(
            event_id, kind, self.plan.customer_id, event["start_time"], None, price.matched_prefix, price.destination,
            price.rate, message.segments, price.amount, vendor_id, vendor_cost, margin_pct, low,
            direction=message.direction, identity=(message.from_number, message.to_number),
        )

    def _rate_api(self, event: dict, event_id: str, vendor_id: str | None) -> RatedEvent:
        if self._api is None:
            raise Rejection(Reason.NO_RATE, "the plan has no api_queries section")
        query = ApiQuery.from_event(event)
        unit, amount = self._api.price(query)
        vendor_cost = self._api.vendor_cost(vendor_id, query) if vendor_id is not None else None
        overhead = self._margin.overhead_per_query * query.count
        margin_pct, low = margin(amount, vendor_cost, overhead, self._margin.alert_below_pct)
        return RatedEvent(
            event_id, "api_query", self.plan.customer_id, event["start_time"], None, None, None,
            unit, query.count, amount, vendor_id, vendor_cost, margin_pct, low, query_type=query.query_type,
        )


class Rater:
    """Rates a stream of decoded events for any number of customers, exactly once per event_id."""

    def __init__(self, customers: Mapping[str, CustomerRater]):
        self._customers = dict(customers)
        self._rated_ids: set[str] = set()

    @classmethod
    def from_plans(
        cls,
        plans: Iterable[LoadedPlan],
        numbering: NumberingPlan | None = None,
        decks: DeckCache | None = None,
    ) -> "Rater":
        decks = decks or DeckCache()
        base_numbering = numbering or NumberingPlan.embedded()
        customers = {}
        for loaded in plans:
            plan = loaded.plan
            customer_numbering = base_numbering
            if plan.voice is not None and plan.voice.npa_nxx:
                customer_numbering = base_numbering.with_lerg_csv(loaded.resolve(plan.voice.npa_nxx))
            compiled = {path: decks(str(loaded.resolve(path))) for path in deck_paths(plan)}
            if plan.customer_id in customers:
                raise ValueError(f"two plans for customer {plan.customer_id!r}")
            customers[plan.customer_id] = CustomerRater(plan, compiled, customer_numbering)
        return cls(customers)

    def customer(self, customer_id: str) -> CustomerRater | None:
        return self._customers.get(customer_id)

    def rate(self, event: object) -> RatedEvent | RejectedEvent:
        """Rate one decoded event; bad input becomes a RejectedEvent, never an exception."""
        if type(event) is not dict:
            return RejectedEvent(None, None, None, Reason.MALFORMED_JSON.value, "the event is not a JSON object")
        raw_id = event.get("event_id")
        event_id = raw_id if type(raw_id) is str and raw_id else None
        kind = event.get("kind")
        customer_id = event.get("customer_id")
        try:
            if event_id is None:
                raise Rejection(Reason.BAD_FIELD, "event_id: missing" if raw_id is None else "event_id: expected a non-empty string")
            if kind not in ("voice", "sms", "mms", "api_query"):
                raise Rejection(Reason.UNKNOWN_KIND, f"kind {kind!r} is not voice, sms, mms or api_query")
            if type(customer_id) is not str or not customer_id:
                raise Rejection(Reason.BAD_FIELD, "customer_id: missing" if customer_id is None else "customer_id: expected a non-empty string")
            customer = self._customers.get(customer_id)
            if customer is None:
                raise Rejection(Reason.UNKNOWN_CUSTOMER, f"no plan for customer {customer_id!r}")
            vendor_id = event.get("vendor_id")
            if vendor_id is not None and type(vendor_id) is not str:
                raise Rejection(Reason.BAD_FIELD, "vendor_id: expected a string")
            if event_id in self._rated_ids:
                raise Rejection(Reason.DUPLICATE_EVENT, f"event_id {event_id!r} was already rated")
            rated = customer.rate(event, event_id, kind, vendor_id or None)
        except Rejection as rejection:
            return RejectedEvent(
                event_id if event_id is not None else (raw_id if isinstance(raw_id, str) else None),
                kind if isinstance(kind, str) else None,
                customer_id if isinstance(customer_id, str) else None,
                rejection.reason.value,
                rejection.detail,
                event.get("start_time") if isinstance(event.get("start_time"), str) else None,
            )
        self._rated_ids.add(event_id)
        return rated


def deck_paths(plan: Plan) -> list[str]:
    """Every deck file a plan names (customer and vendor side)."""
    paths = []
    if plan.voice is not None:
        paths.append(plan.voice.deck)
        if plan.voice.origination_deck:
            paths.append(plan.voice.origination_deck)
        paths.extend(plan.voice.vendor_decks.values())
    if plan.messaging is not None:
        if plan.messaging.deck:
            paths.append(plan.messaging.deck)
        paths.extend(plan.messaging.vendor_decks.values())
    return paths

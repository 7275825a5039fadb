"""Rating service core: a customer's plan compiled into raters, and event dispatch.

``CustomerRater`` prices one customer's events under one plan. ``Rater`` routes a stream of
events by ``customer_id``, rejects repeats of an already-rated ``event_id``, and never
raises for bad input: every event comes back as a ``RatedEvent`` or a ``RejectedEvent``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..plan import LoadedPlan, Plan
from ..products import kinds_text, products
from .deck import RateDeck, load_deck
from .event_check import check_event
from .numbering import NumberingPlan
from .rated_event import RatedEvent, RejectedEvent
from .rejections import Reason, Rejection

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
    """Rates the events of one customer under its plan: one kind rater per product the plan prices."""

    def __init__(self, plan: Plan, decks: Mapping[str, RateDeck], numbering: NumberingPlan):
        """``decks`` maps each deck path named in the plan to its compiled deck."""
        self.plan = plan
        self._rates: dict[str, Callable[[dict[str, Any], str, str | None], RatedEvent]] = {}
        self._sections: dict[str, str] = {}
        for item in products():
            rater = item.rater(plan, decks, numbering)
            if rater is not None:
                self._rates[item.kind] = rater.rate
            self._sections[item.kind] = item.plan_section

    def rate(self, event: dict[str, Any], event_id: str, kind: str, vendor_id: str | None) -> RatedEvent:
        rate = self._rates.get(kind)
        if rate is None:
            section = self._sections.get(kind)
            if section is None:
                raise Rejection(Reason.UNKNOWN_KIND, f"kind {kind!r} is not {kinds_text()}")
            raise Rejection(Reason.NO_RATE, f"the plan has no {section} section")
        return rate(event, event_id, vendor_id)


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
    ) -> Rater:
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
        try:
            event_id, kind, customer_id, vendor_id = check_event(event)
            customer = self._customers.get(customer_id)
            if customer is None:
                raise Rejection(Reason.UNKNOWN_CUSTOMER, f"no plan for customer {customer_id!r}")
            if event_id in self._rated_ids:
                raise Rejection(Reason.DUPLICATE_EVENT, f"event_id {event_id!r} was already rated")
            rated = customer.rate(event, event_id, kind, vendor_id)
        except Rejection as rejection:
            return rejected_event(event, rejection)
        self._rated_ids.add(event_id)
        return rated


def rejected_event(event: dict[str, Any], rejection: Rejection) -> RejectedEvent:
    """The reject of a decoded event, keeping whatever identifying fields it has as text."""
    event_id, kind, customer_id, start = (event.get(name) for name in ("event_id", "kind", "customer_id", "start_time"))
    return RejectedEvent(
        event_id if isinstance(event_id, str) else None,
        kind if isinstance(kind, str) else None,
        customer_id if isinstance(customer_id, str) else None,
        rejection.reason.value,
        rejection.detail,
        start if isinstance(start, str) else None,
    )


def deck_paths(plan: Plan) -> list[str]:
    """Every deck file a plan names (customer and vendor side), each once, in table order."""
    paths: dict[str, None] = {}
    for item in products():
        paths.update(dict.fromkeys(item.decks(plan)))
    return list(paths)

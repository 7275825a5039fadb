"""Voice rating: billed seconds by increments, jurisdictional price, multipliers, amount.

amount = rate per minute x billed seconds / 60 (+ connect fee on answered calls),
rounded once to 6 decimals half up (contracts.md section 4). The rate is the deck
row's price for the call's jurisdiction (an empty jurisdiction column falls back to
``rate``), then the time-of-day and quality-tier multipliers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..money import EXACT, ZERO, per_minute_amount
from ..plan import Increments, IndeterminatePolicy
from . import events
from .deck import DeckRow, RateDeck
from .jurisdiction import INTERNATIONAL, INTERSTATE, INTRASTATE, JurisdictionRules
from .rejections import Reason, Rejection
from .time_of_day import TimeOfDay

HUNDRED = Decimal(100)
DIRECTIONS = ("termination", "origination")


def billed_seconds(duration: int, first: int, following: int) -> int:
    """0 if unanswered; ``first`` up to it; then whole ``following`` increments (ceil)."""
    if duration <= 0:
        return 0
    if duration <= first:
        return first
    return first + -(-(duration - first) // following) * following


@dataclass(slots=True)
class VoiceCall:
    """A validated voice usage event."""

    start: datetime
    duration_s: int
    calling_number: str | None
    called_number: str
    lrn: str | None
    direction: str
    route_class: str | None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> VoiceCall:
        """Validate a voice event; well-formed fields take an inlined fast path, anything
        else goes through ``events``' checks, which name the problem."""
        get = event.get
        duration = get("duration_s")
        if type(duration) is not int or not 0 <= duration <= events.MAX_CALL_SECONDS:
            duration = events.whole_number(event, "duration_s", 0, events.MAX_CALL_SECONDS)
        called = get("called_number")
        if type(called) is not str or not called:
            called = events.required_text(event, "called_number")
        calling = get("calling_number")
        if calling is not None and (type(calling) is not str or len(calling) > events.MAX_ID_LENGTH):
            calling = events.optional_text(event, "calling_number")
        lrn = get("lrn")
        if lrn is not None and (type(lrn) is not str or not lrn or len(lrn) > events.MAX_ID_LENGTH):
            lrn = events.optional_text(event, "lrn")
        direction = get("direction")
        if direction is None:
            direction = "termination"
        elif direction not in DIRECTIONS:
            events.choice(event, "direction", DIRECTIONS, "termination")
        route_class = get("route_class")
        if route_class is not None:
            route_class = events.optional_text(event, "route_class")
        return cls(events.start_time(event), duration, calling, called, lrn, direction, route_class)


@dataclass(slots=True)
class VoicePrice:
    """A rated call: the vendor's cost is None without a vendor deck or a vendor rate."""

    jurisdiction: str
    row: DeckRow
    rate: Decimal
    billed_seconds: int
    amount: Decimal
    vendor_cost: Decimal | None


class JurisdictionPricing:
    """Chooses a deck row's per-minute price for a jurisdiction under an indeterminate policy."""

    __slots__ = ("_policy", "_piu_share", "_intra_share")

    def __init__(self, policy: IndeterminatePolicy):
        self._policy = policy.policy
        self._piu_share = policy.piu / HUNDRED
        self._intra_share = (HUNDRED - policy.piu) / HUNDRED

    def price(self, row: DeckRow, jurisdiction: str) -> Decimal | None:
        fallback = row.rate
        if jurisdiction == INTERSTATE:
            return row.interstate_rate if row.interstate_rate is not None else fallback
        if jurisdiction == INTRASTATE:
            return row.intrastate_rate if row.intrastate_rate is not None else fallback
        if jurisdiction == INTERNATIONAL:
            return fallback
        inter = row.interstate_rate if row.interstate_rate is not None else fallback
        intra = row.intrastate_rate if row.intrastate_rate is not None else fallback
        policy = self._policy
        if policy == "piu":
            if inter is None or intra is None:
                return None
            return EXACT.add(EXACT.multiply(self._piu_share, inter), EXACT.multiply(self._intra_share, intra))
        if policy == "intrastate":
            return intra
        if policy == "interstate":
            return inter
        if policy == "higher":
            if inter is None or intra is None:
                return inter if intra is None else intra
            return max(inter, intra)
        return row.indeterminate_rate if row.indeterminate_rate is not None else fallback


class VoiceRater:
    """Prices a call against a customer deck (and, for cost, against a vendor deck)."""

    def __init__(
        self,
        deck: RateDeck,
        rules: JurisdictionRules,
        increments: Increments,
        policy: IndeterminatePolicy,
        time_of_day: TimeOfDay | None = None,
        quality_tiers: Mapping[str, Decimal] | None = None,
        origination_deck: RateDeck | None = None,
    ):
        self._deck = deck
        self._origination_deck = origination_deck
        self._rules = rules
        self._first = increments.first
        self._next = increments.next
        self._pricing = JurisdictionPricing(policy)
        self._time_of_day = time_of_day if time_of_day else None
        self._quality = dict(quality_tiers or {})

    def rate(self, call: VoiceCall, vendor_deck: RateDeck | None = None) -> VoicePrice:
        """Jurisdiction, customer price and (with a vendor deck) vendor cost of one call."""
        jurisdiction, digits = self._rules.classify(call.calling_number, call.called_number, call.lrn)
        deck = self._deck
        if call.direction == "origination" and self._origination_deck is not None:
            deck = self._origination_deck
        start = call.start
        row = deck.find(digits, start)
        if row is None:
            raise Rejection(Reason.NO_RATE, f"no {deck.name} row for +{digits} at {start.isoformat()}")
        price_for = self._pricing.price
        rate = price_for(row, jurisdiction)
        if rate is None:
            raise Rejection(Reason.NO_RATE,
                            f"{deck.name} row {row.row_number} (prefix {row.prefix}) has no {jurisdiction} rate")
        if call.route_class is not None and self._quality:
            multiplier = self._quality.get(call.route_class)
            if multiplier is None:
                raise Rejection(Reason.UNKNOWN_ROUTE_CLASS,
                                f"route_class {call.route_class!r} is not priced by the plan")
            rate = EXACT.multiply(rate, multiplier)
        if self._time_of_day is not None:
            multiplier = self._time_of_day.multiplier(start)
            if multiplier != 1:
                rate = EXACT.multiply(rate, multiplier)
        duration = call.duration_s
        billed = billed_seconds(duration, row.first_increment or self._first, row.next_increment or self._next)
        amount = per_minute_amount(rate, billed, row.connect_fee if billed else ZERO)
        vendor_cost = None
        vendor_row = vendor_deck.find(digits, start) if vendor_deck is not None else None
        if vendor_row is not None:
            vendor_rate = price_for(vendor_row, jurisdiction)
            if vendor_rate is not None:
                vendor_billed = billed_seconds(
                    duration, vendor_row.first_increment or self._first, vendor_row.next_increment or self._next
                )
                vendor_cost = per_minute_amount(vendor_rate, vendor_billed,
                                                vendor_row.connect_fee if vendor_billed else ZERO)
        return VoicePrice(jurisdiction, row, rate, billed, amount, vendor_cost)

"""Voice rating: billed seconds by increments, jurisdictional price, multipliers, amount.

amount = rate per minute x billed seconds / 60 (+ connect fee on answered calls),
rounded once to 6 decimals half up (contracts.md section 4). The rate is the deck
row's price for the call's jurisdiction (an empty jurisdiction column falls back to
``rate``), then the time-of-day and quality-tier multipliers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Mapping

from ..money import EXACT, ZERO, per_minute_amount
from ..plan import IndeterminatePolicy, Increments
from . import events
from .deck import DeckRow, RateDeck
from .jurisdiction import INDETERMINATE, INTERNATIONAL, INTERSTATE, INTRASTATE, JurisdictionRules
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


@dataclass(frozen=True, slots=True)
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
    def from_event(cls, event: dict) -> "VoiceCall":
        return cls(
            start=events.start_time(event),
            duration_s=events.whole_number(event, "duration_s", 0, events.MAX_CALL_SECONDS),
            calling_number=events.optional_text(event, "calling_number"),
            called_number=events.required_text(event, "called_number"),
            lrn=events.optional_text(event, "lrn"),
            direction=events.choice(event, "direction", DIRECTIONS, "termination"),
            route_class=events.optional_text(event, "route_class"),
        )


@dataclass(frozen=True, slots=True)
class VoicePrice:
    jurisdiction: str
    row: DeckRow
    rate: Decimal
    billed_seconds: int
    amount: Decimal


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

    def classify(self, call: VoiceCall) -> tuple[str, str]:
        return self._rules.classify(call.calling_number, call.called_number, call.lrn)

    def price(self, call: VoiceCall, jurisdiction: str, digits: str) -> VoicePrice:
        deck = self._deck
        if call.direction == "origination" and self._origination_deck is not None:
            deck = self._origination_deck
        row = deck.find(digits, call.start)
        if row is None:
            raise Rejection(Reason.NO_RATE, f"no {deck.name} row for +{digits} at {call.start.isoformat()}")
        rate = self._pricing.price(row, jurisdiction)
        if rate is None:
            raise Rejection(Reason.NO_RATE, f"{deck.name} row {row.row_number} (prefix {row.prefix}) has no {jurisdiction} rate")
        if call.route_class is not None and self._quality:
            multiplier = self._quality.get(call.route_class)
            if multiplier is None:
                raise Rejection(Reason.UNKNOWN_ROUTE_CLASS, f"route_class {call.route_class!r} is not priced by the plan")
            rate = EXACT.multiply(rate, multiplier)
        if self._time_of_day is not None:
            multiplier = self._time_of_day.multiplier(call.start)
            if multiplier != 1:
                rate = EXACT.multiply(rate, multiplier)
        return self._charge(row, rate, jurisdiction, call.duration_s)

    def vendor_cost(self, vendor_deck: RateDeck, call: VoiceCall, jurisdiction: str, digits: str) -> Decimal | None:
        """The vendor's price for the same call (its rows' own increments), or None if it has no rate."""
        row = vendor_deck.find(digits, call.start)
        if row is None:
            return None
        rate = self._pricing.price(row, jurisdiction)
        if rate is None:
            return None
        return self._charge(row, rate, jurisdiction, call.duration_s).amount

    def _charge(self, row: DeckRow, rate: Decimal, jurisdiction: str, duration: int) -> VoicePrice:
        first = row.first_increment or self._first
        following = row.next_increment or self._next
        billed = billed_seconds(duration, first, following)
        fee = row.connect_fee if billed else ZERO
        return VoicePrice(jurisdiction, row, rate, billed, per_minute_amount(rate, billed, fee))

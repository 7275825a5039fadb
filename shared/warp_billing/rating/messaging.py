"""SMS and MMS rating: per-message price by destination, segments and surcharges.

amount = segments x per-message rate + surcharges, rounded once to 6 decimals half up.
Outbound messages are priced by the destination deck unless their 10DLC campaign has an
override; inbound messages at the plan's inbound rate. The MMS surcharge applies to every
MMS; a terminating carrier's surcharge applies once per outbound message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..money import ZERO, round_micro
from ..plan import MessagingPlan
from . import events
from .deck import RateDeck
from .jurisdiction import e164_digits
from .rejections import Reason, Rejection

DIRECTIONS = ("outbound", "inbound")


@dataclass(slots=True)
class Message:
    """A validated SMS or MMS usage event."""

    kind: str
    start: datetime
    direction: str
    from_number: str | None
    to_number: str
    segments: int
    carrier: str | None
    campaign_id: str | None

    @classmethod
    def from_event(cls, event: dict[str, Any], kind: str) -> Message:
        message = cls(
            kind=kind,
            start=events.start_time(event),
            direction=events.choice(event, "direction", DIRECTIONS, "outbound"),
            from_number=events.optional_text(event, "from_number"),
            to_number=events.required_text(event, "to_number"),
            segments=events.whole_number(event, "segments", 1, events.MAX_SEGMENTS, default=1),
            carrier=events.optional_text(event, "carrier"),
            campaign_id=events.optional_text(event, "campaign_id"),
        )
        for field in ("to_number", "from_number"):
            number = getattr(message, field)
            if number is not None and e164_digits(number) is None:
                raise Rejection(Reason.INVALID_NUMBER, f"{field} {number!r} is not a valid E.164 number")
        return message

    @property
    def destination_digits(self) -> str:
        return self.to_number[1:]


@dataclass(slots=True)
class MessagePrice:
    rate: Decimal
    matched_prefix: str | None
    destination: str | None
    amount: Decimal


class MessagingRater:
    def __init__(self, plan: MessagingPlan, deck: RateDeck | None):
        self._plan = plan
        self._deck = deck

    def price(self, message: Message) -> MessagePrice:
        plan = self._plan
        prefix = destination = None
        if message.direction == "inbound":
            if plan.inbound_rate is None:
                raise Rejection(Reason.NO_RATE, "the plan has no inbound_rate for inbound messages")
            rate = plan.inbound_rate
        elif message.campaign_id is not None and message.campaign_id in plan.campaign_overrides:
            rate = plan.campaign_overrides[message.campaign_id]
        else:
            row = self._deck.find(message.destination_digits, message.start) if self._deck else None
            if row is None or row.rate is None:
                raise Rejection(Reason.NO_RATE,
                                f"no messaging rate for {message.to_number} at {message.start.isoformat()}")
            rate, prefix, destination = row.rate, row.prefix, row.destination
        surcharge = plan.mms_surcharge if message.kind == "mms" else ZERO
        if message.direction == "outbound" and message.carrier is not None:
            surcharge += plan.carrier_surcharges.get(message.carrier.strip().upper(), ZERO)
        return MessagePrice(rate, prefix, destination, round_micro(message.segments * rate + surcharge))

    @staticmethod
    def vendor_cost(vendor_deck: RateDeck, message: Message) -> Decimal | None:
        row = vendor_deck.find(message.destination_digits, message.start)
        if row is None or row.rate is None:
            return None
        return round_micro(message.segments * row.rate)

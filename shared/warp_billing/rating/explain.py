"""How one event was priced, step by step (`warp explain`).

The rating hot path stays as it is: this module re-runs the same steps with the same
functions (jurisdiction rules, deck lookup, jurisdictional price, multipliers, increments,
per-minute amount, vendor cost, margin) and records what each one decided and why. The
final amount is then compared with what ``Rater.rate`` gives for the same event, so an
explanation that drifted from the real rating would say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..money import EXACT, ZERO, format_amount, format_rate, per_minute_amount
from ..plan import Plan
from .deck import DeckRow, RateDeck
from .jurisdiction import INTERNATIONAL, TOLL_FREE_NPAS, JurisdictionRules, e164_digits
from .margin import margin
from .numbering import DOMESTIC_REGIONS, NumberingPlan
from .rated_event import RatedEvent, RejectedEvent
from .rater import Rater
from .rejections import Rejection
from .time_of_day import TimeOfDay
from .voice import JurisdictionPricing, VoiceCall, billed_seconds

SIXTY = Decimal(60)


def _amount(value: Decimal) -> str:
    return format_amount(value) or "0"


@dataclass
class Explanation:
    """The steps of one event's pricing, as (label, text) pairs, and the rater's own result."""

    event_id: str | None
    result: RatedEvent | RejectedEvent
    steps: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, text: str) -> None:
        self.steps.append((label, text))

    def render(self) -> str:
        width = max((len(label) for label, _ in self.steps), default=0)
        lines = [f"event {self.event_id}"]
        lines += [f"  {label:<{width}}  {text}" for label, text in self.steps]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "result": self.result.to_record(),
                "steps": [{"step": label, "detail": text} for label, text in self.steps]}


def explain_event(event: dict[str, Any], plan: Plan, decks: Mapping[str, RateDeck], deck_files: Mapping[str, Path],
                  numbering: NumberingPlan, rater: Rater) -> Explanation:
    """Explain ``event`` under ``plan`` (its decks compiled in ``decks``, found in ``deck_files``)."""
    result = rater.rate(event)
    explanation = Explanation(event.get("event_id") if isinstance(event.get("event_id"), str) else None, result)
    if isinstance(result, RejectedEvent):
        explanation.add("result", f"rejected {result.reason}: {result.detail}")
        return explanation
    if result.kind != "voice" or plan.voice is None:
        _explain_other(explanation, result)
        return explanation
    try:
        _explain_voice(explanation, event, plan, decks, deck_files, numbering, result)
    except Rejection as rejection:  # cannot happen for an event the rater priced; said plainly if it does
        explanation.add("warning", f"re-running the steps was refused ({rejection.detail})")
    return explanation


def _explain_other(explanation: Explanation, result: RatedEvent) -> None:
    explanation.add("kind", result.kind)
    if result.matched_prefix is not None:
        explanation.add("deck prefix", f"{result.matched_prefix} ({result.destination})")
    explanation.add("rate", format_rate(result.rate) or "none")
    explanation.add("units", str(result.billed_units))
    explanation.add("amount", _amount(result.amount))
    explanation.add("vendor cost", _amount(result.vendor_cost) if result.vendor_cost is not None else "none")
    explanation.add("margin", f"{result.margin_pct}%" if result.margin_pct is not None else "n/a (no vendor cost)")


def jurisdiction_reason(numbering: NumberingPlan, rules: JurisdictionRules, call: VoiceCall,
                        territories_domestic: bool) -> tuple[str, str, str]:
    """(jurisdiction, digits matched in the deck, why) with the same rules as the rater."""
    jurisdiction, digits = rules.classify(call.calling_number, call.called_number, call.lrn)
    domestic = DOMESTIC_REGIONS if territories_domestic else frozenset({"US"})
    called = e164_digits(call.called_number) or ""
    if called[:1] != "1":
        return jurisdiction, digits, f"called number {call.called_number} is outside the NANP"
    region = numbering.region_of_npa(called[1:4])
    if region not in domestic:
        ignored = f"; its LRN {call.lrn} is ignored" if call.lrn else ""
        return jurisdiction, digits, f"called number {call.called_number} is in {region}, not the US{ignored}"
    if called[1:4] in TOLL_FREE_NPAS:
        return jurisdiction, digits, (f"called number {call.called_number} is toll-free ({called[1:4]}): "
                                      "no terminating state")
    source = f"LRN {call.lrn}" if call.lrn else f"called number {call.called_number}"
    term = numbering.state_of(digits[1:7])
    if term is None:
        return jurisdiction, digits, f"{source}: NPA-NXX {digits[1:7]} has no known state"
    return jurisdiction, digits, _origin_reason(numbering, call, domestic, term, source)


def _origin_reason(numbering: NumberingPlan, call: VoiceCall, domestic: frozenset[str], term: str, source: str) -> str:
    """Why the calling side made the call intrastate, interstate or indeterminate."""
    known = f"terminating state {term} (from the {source})"
    if not call.calling_number:
        return f"{known}; no calling number"
    calling = e164_digits(call.calling_number)
    if calling is None:
        return f"{known}; calling number {call.calling_number} is not E.164"
    calling_region = numbering.region_of_npa(calling[1:4]) if calling[0] == "1" else "a non-NANP country"
    if calling_region is None:
        return f"{known}; calling NPA {calling[1:4]} is not assigned"
    if calling_region not in domestic:
        return f"{known}; calling number {call.calling_number} is foreign ({calling_region}): the plan's foreign_origin"
    origin = numbering.state_of(calling[1:7])
    if origin is None:
        return f"{known}; calling number {call.calling_number} has no known state"
    relation = "same state" if origin == term else "different states"
    return f"from {origin} (calling number) to {term} (from the {source}): {relation}"


def _row_text(file: Path | str, row: DeckRow) -> str:
    window = f"{row.effective.isoformat()} to {row.end.isoformat() if row.end else 'open'}"
    return f"{file} line {row.row_number}: prefix {row.prefix} ({row.destination}), effective {window}"


def _explain_voice(explanation: Explanation, event: dict[str, Any], plan: Plan, decks: Mapping[str, RateDeck],
                   deck_files: Mapping[str, Path], numbering: NumberingPlan, result: RatedEvent) -> None:
    voice = plan.voice
    assert voice is not None
    call = VoiceCall.from_event(event)
    territories = voice.us_territories == "domestic"
    rules = JurisdictionRules(numbering, territories, voice.foreign_origin)
    jurisdiction, digits, why = jurisdiction_reason(numbering, rules, call, territories)
    explanation.add("jurisdiction", f"{jurisdiction}: {why}")
    deck_name = voice.deck
    if call.direction == "origination" and voice.origination_deck:
        deck_name = voice.origination_deck
    deck = decks[deck_name]
    row = deck.find(digits, call.start)
    if row is None:
        explanation.add("deck row", f"none for +{digits} at {call.start.isoformat()}")
        return
    explanation.add("deck row", _row_text(deck_files.get(deck_name, deck_name), row))
    pricing = JurisdictionPricing(voice.indeterminate)
    base = pricing.price(row, jurisdiction)
    column = {"interstate": "interstate_rate", "intrastate": "intrastate_rate"}.get(jurisdiction, "rate")
    if jurisdiction == "indeterminate":
        column = f"policy {voice.indeterminate.policy}" + (f" (PIU {voice.indeterminate.piu}%)"
                                                          if voice.indeterminate.policy == "piu" else "")
    explanation.add("base rate", f"{format_rate(base) if base is not None else 'none'} per minute ({column})")
    rate = base if base is not None else ZERO
    if call.route_class is not None and voice.quality_tiers:
        multiplier = voice.quality_tiers[call.route_class]
        rate = EXACT.multiply(rate, multiplier)
        explanation.add("quality tier", f"route_class {call.route_class}: x {multiplier}")
    time_of_day = TimeOfDay(voice.time_of_day, plan.zone)
    if time_of_day:
        multiplier = time_of_day.multiplier(call.start)
        local = call.start.astimezone(plan.zone)
        explanation.add("time of day", f"starts {local:%a %H:%M} {plan.timezone}: x {multiplier}")
        if multiplier != 1:
            rate = EXACT.multiply(rate, multiplier)
    explanation.add("rate applied", f"{format_rate(rate)} per minute")
    first = row.first_increment or voice.increments.first
    following = row.next_increment or voice.increments.next
    origin = "deck row" if row.first_increment or row.next_increment else "plan"
    billed = billed_seconds(call.duration_s, first, following)
    explanation.add("increments", f"{first}/{following} (from the {origin}): {call.duration_s} s billed as {billed} s")
    fee = row.connect_fee if billed else ZERO
    explanation.add("connect fee", _amount(fee) if fee else "none")
    amount = per_minute_amount(rate, billed, fee)
    explanation.add("amount", f"{format_rate(rate)} x {billed} / 60 + {_amount(fee)} = {_amount(amount)} "
                              "(rounded once to 6 decimals, half up)")
    vendor_cost = None
    vendor_id = event.get("vendor_id")
    vendor_file = voice.vendor_decks.get(vendor_id) if isinstance(vendor_id, str) else None
    vendor_deck = decks.get(vendor_file) if vendor_file is not None else None
    if vendor_deck is None:
        explanation.add("vendor cost", f"none (no vendor deck for vendor_id {vendor_id!r})")
    else:
        vendor_row = vendor_deck.find(digits, call.start)
        vendor_rate = pricing.price(vendor_row, jurisdiction) if vendor_row is not None else None
        if vendor_row is None or vendor_rate is None:
            explanation.add("vendor cost", f"none (no {vendor_id} row prices +{digits})")
        else:
            vendor_billed = billed_seconds(call.duration_s, vendor_row.first_increment or voice.increments.first,
                                           vendor_row.next_increment or voice.increments.next)
            vendor_cost = per_minute_amount(vendor_rate, vendor_billed,
                                            vendor_row.connect_fee if vendor_billed else ZERO)
            explanation.add("vendor row", _row_text(deck_files.get(vendor_file or "", vendor_file or ""), vendor_row))
            explanation.add("vendor cost", f"{format_rate(vendor_rate)} x {vendor_billed} / 60 = "
                                           f"{_amount(vendor_cost)}")
    overhead = plan.margin.overhead_per_minute * billed / SIXTY
    pct, low = margin(amount, vendor_cost, overhead, plan.margin.alert_below_pct)
    explanation.add("margin", "n/a (no vendor cost)" if pct is None else
                    f"{pct}% after overhead {_amount(overhead)}" + (" (LOW MARGIN)" if low else ""))
    same = amount == result.amount and jurisdiction == result.jurisdiction and row.prefix == result.matched_prefix
    explanation.add("check", "same as warp rate" if same else
                    f"DIFFERS from warp rate ({result.jurisdiction}, {result.matched_prefix}, "
                    f"{_amount(result.amount)}): report this")


__all__ = ["Explanation", "explain_event", "jurisdiction_reason", "INTERNATIONAL"]

"""Cause hints: why a vendor's records differ from ours, found per vendor and destination.

Only the records that are not ``exact`` are looked at (plus the count of paired records per
destination and day, and the unpaired records of the same numbers within a day of each
other). A hint is a stable code with its parameter and a sentence for people:

* ``increment:60/60``: their billed seconds follow another increment rule than our vendor deck.
* ``time_offset:+3600s``: their start times differ from ours by a constant (a zone or clock error);
  the records stay ``vendor_only`` / ``ours_only`` and carry the hint.
* ``rate_change:2026-06-15``: from that day on their rate differs from ours for the destination.
* ``jurisdiction_rate:intrastate``: their rate is the one our vendor deck has for another
  jurisdiction of the same number (a jurisdiction disagreement).
* ``answer_time:+3s``: their durations differ from ours by a constant few seconds.
* ``duplicate_of:<record>``: the same call billed again.

A hint applies to a record only when the record itself shows it (its own billed seconds fit
the rule, its own offset is the vendor's), so an untouched record is never labelled.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from ..rating.voice import billed_seconds
from .matching_sql import MISMATCH, OURS_ONLY, PARTIAL, VENDOR_DUPLICATE, VENDOR_ONLY

# the first/next increments seen in wholesale contracts (coarser rules last: they win ties)
INCREMENT_RULES = tuple((first, following) for first in (1, 6, 30, 60) for following in (1, 6, 10, 30, 60))
OFFSET_BUCKET_MS = 900_000  # zones and clock errors come in quarter hours
MIN_OFFSET_PAIRS = 3
MIN_CONSTANT_ITEMS = 3
RATE_CHANGE_SHARE = Decimal("0.8")
SIXTY = Decimal(60)

RatesFor = Callable[[str, int], Mapping[str, Decimal]]  # (called digits, start ms) -> rate by jurisdiction


@dataclass(frozen=True)
class Hint:
    """One cause found for a destination (or the whole vendor)."""

    code: str
    dest: str
    records: int
    text: str

    def to_record(self) -> dict:
        return {"hint": self.code, "destination": self.dest, "records": self.records, "explanation": self.text}


@dataclass
class HintResult:
    """Hints per destination and the hint of each record that shows one (key: event_id, vendor_record)."""

    hints: list[Hint] = field(default_factory=list)
    by_item: dict[tuple[str | None, str | None], str] = field(default_factory=dict)


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else -(-int(ms) // 1000)


def their_billed(item: Mapping) -> int | None:
    """Their billed seconds: as given, else derived from their cost and rate, less the connect
    fee our side implies (our cost - our rate x our billed seconds / 60)."""
    if item.get("their_billed_s") is not None:
        return int(item["their_billed_s"])
    rate, cost = item.get("their_rate"), item.get("their_cost")
    if rate is None or cost is None or Decimal(rate) == 0:
        return None
    fee = Decimal(0)
    if None not in (item.get("our_cost"), item.get("our_rate"), item.get("our_billed_s")):
        fee = max(Decimal(0), Decimal(item["our_cost"]) - Decimal(item["our_rate"]) * int(item["our_billed_s"]) / SIXTY)
    return int(((Decimal(cost) - fee) * SIXTY / Decimal(rate)).to_integral_value())


def rules_fitting(duration_s: int | None, billed: int | None) -> set[tuple[int, int]]:
    if duration_s is None or billed is None:
        return set()
    return {rule for rule in INCREMENT_RULES if billed_seconds(duration_s, *rule) == billed}


def _key(item: Mapping) -> tuple[str | None, str | None]:
    return item.get("event_id"), item.get("vendor_record")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


def _rule(rule: tuple[int, int]) -> str:
    return f"{rule[0]}/{rule[1]}"


def find_hints(
    items: Iterable[Mapping],
    offset_pairs: Iterable[Mapping] = (),
    paired_per_day: Mapping[tuple[str, str], int] | None = None,
    rates_for: RatesFor | None = None,
    rate_tolerance: Decimal = Decimal("0.000001"),
) -> HintResult:
    """The hints for a vendor's non-exact records (see the module docstring)."""
    result = HintResult()
    by_dest: dict[str, list[Mapping]] = defaultdict(list)
    for item in items:
        if item["class"] == VENDOR_DUPLICATE:
            result.by_item[_key(item)] = f"duplicate_of:{item.get('duplicate_of')}"
        elif item["class"] in (MISMATCH, PARTIAL):
            by_dest[item.get("dest") or "unknown"].append(item)
    for dest, paired in sorted(by_dest.items()):
        _jurisdiction_hint(result, dest, paired, rates_for, rate_tolerance)
        _rate_change_hint(result, dest, paired, paired_per_day or {}, rate_tolerance)
        _increment_hint(result, dest, paired)
    # answer timing is the vendor's switch, not a destination's: found over all of them
    _answer_time_hint(result, [item for dest in sorted(by_dest) for item in by_dest[dest]])
    _offset_hint(result, offset_pairs)
    return result


def _unlabelled(result: HintResult, items: Iterable[Mapping]) -> list[Mapping]:
    return [item for item in items if _key(item) not in result.by_item]


def _rates_differ(item: Mapping, tolerance: Decimal) -> bool:
    ours, theirs = item.get("our_rate"), item.get("their_rate")
    return ours is not None and theirs is not None and abs(Decimal(theirs) - Decimal(ours)) > tolerance


def _jurisdiction_hint(
    result: HintResult, dest: str, items: list[Mapping], rates_for: RatesFor | None, tolerance: Decimal
) -> None:
    if rates_for is None:
        return
    found: Counter[str] = Counter()
    for item in _unlabelled(result, items):
        if not _rates_differ(item, tolerance) or not item.get("called"):
            continue
        ours = item.get("our_jurisdiction")
        theirs = Decimal(item["their_rate"])
        for jurisdiction, rate in rates_for(item["called"], int(item["our_start_ms"])).items():
            if jurisdiction != ours and rate is not None and abs(rate - theirs) <= tolerance:
                code = f"jurisdiction_rate:{jurisdiction}"
                result.by_item[_key(item)] = code
                found[jurisdiction] += 1
                break
    for jurisdiction, count in found.most_common():
        result.hints.append(
            Hint(
                f"jurisdiction_rate:{jurisdiction}",
                dest,
                count,
                f"{count} calls billed at our vendor deck's {jurisdiction} rate "
                f"where we rated {dest}: a jurisdiction disagreement",
            )
        )


def _rate_change_hint(
    result: HintResult,
    dest: str,
    items: list[Mapping],
    paired_per_day: Mapping[tuple[str, str], int],
    tolerance: Decimal,
) -> None:
    differing = [item for item in _unlabelled(result, items) if _rates_differ(item, tolerance)]
    if len(differing) < MIN_CONSTANT_ITEMS:
        return
    first_day = min(_day(int(item["our_start_ms"])) for item in differing)
    days = sorted(day for (d, day) in paired_per_day if d == dest)
    if not days or first_day <= days[0]:
        return  # differing from the first day on: a different rate, not a change of rate
    paired_after = sum(count for (d, day), count in paired_per_day.items() if d == dest and day >= first_day)
    if paired_after == 0 or Decimal(len(differing)) / paired_after < RATE_CHANGE_SHARE:
        return
    theirs = Counter(format(Decimal(item["their_rate"]).normalize(), "f") for item in differing).most_common(1)[0][0]
    ours = Counter(format(Decimal(item["our_rate"]).normalize(), "f") for item in differing).most_common(1)[0][0]
    code = f"rate_change:{first_day}"
    for item in differing:
        result.by_item[_key(item)] = code
    result.hints.append(
        Hint(
            code,
            dest,
            len(differing),
            f"from {first_day} they bill {theirs} per minute where our vendor deck says {ours}: "
            f"a rate change one of us did not apply",
        )
    )


def _increment_hint(result: HintResult, dest: str, items: list[Mapping]) -> None:
    votes: Counter[tuple[int, int]] = Counter()
    deck_votes: Counter[tuple[int, int]] = Counter()
    fitting: dict[tuple[int, int], list[Mapping]] = defaultdict(list)
    for item in _unlabelled(result, items):
        theirs_billed, ours_billed = their_billed(item), item.get("our_billed_s")
        if theirs_billed is None or ours_billed is None or theirs_billed == int(ours_billed):
            continue
        ours_rules = rules_fitting(_seconds(item.get("our_duration_ms")), int(ours_billed))
        theirs_rules = rules_fitting(_seconds(item.get("their_duration_ms")), theirs_billed)
        if not ours_rules or not theirs_rules or theirs_rules & ours_rules:
            continue  # the deck's own rule explains their billed seconds: not an increment difference
        deck_votes.update(ours_rules)
        for rule in theirs_rules:
            votes[rule] += 1
            fitting[rule].append(item)
    if not votes:
        return
    rule, _ = max(votes.items(), key=lambda pair: (pair[1], INCREMENT_RULES.index(pair[0])))
    deck_rule = max(deck_votes.items(), key=lambda pair: (pair[1], -INCREMENT_RULES.index(pair[0])))[0]
    code = f"increment:{_rule(rule)}"
    for item in fitting[rule]:
        result.by_item[_key(item)] = code
    result.hints.append(
        Hint(
            code,
            dest,
            len(fitting[rule]),
            f"their billed seconds follow {_rule(rule)} where our vendor deck says {_rule(deck_rule)}",
        )
    )


def _answer_time_hint(result: HintResult, items: list[Mapping]) -> None:
    gaps: dict[int, list[Mapping]] = defaultdict(list)
    for item in _unlabelled(result, items):
        ours, theirs = item.get("our_duration_ms"), item.get("their_duration_ms")
        if ours is None or theirs is None:
            continue
        gap = round((int(theirs) - int(ours)) / 1000)
        if gap != 0:
            gaps[gap].append(item)
    for gap, group in sorted(gaps.items(), key=lambda pair: -len(pair[1])):
        if len(group) < MIN_CONSTANT_ITEMS:
            break
        code = f"answer_time:{gap:+d}s"
        per_dest: Counter[str] = Counter()
        for item in group:
            result.by_item[_key(item)] = code
            per_dest[item.get("dest") or "unknown"] += 1
        for dest, count in sorted(per_dest.items()):
            result.hints.append(
                Hint(
                    code,
                    dest,
                    count,
                    f"{count} calls last {abs(gap)} s {'longer' if gap > 0 else 'shorter'} on their "
                    f"side: answer (200 OK) timing measured differently",
                )
            )


def _offset_hint(result: HintResult, pairs: Iterable[Mapping]) -> None:
    pairs = list(pairs)
    buckets = Counter(round(int(pair["offset_ms"]) / OFFSET_BUCKET_MS) for pair in pairs)
    buckets.pop(0, None)
    if not buckets:
        return
    bucket, count = buckets.most_common(1)[0]
    if count < MIN_OFFSET_PAIRS:
        return
    offset_s = bucket * OFFSET_BUCKET_MS // 1000
    code = f"time_offset:{offset_s:+d}s"
    per_dest: Counter[str] = Counter()
    for pair in pairs:
        if round(int(pair["offset_ms"]) / OFFSET_BUCKET_MS) != bucket:
            continue
        if pair.get("paired"):
            result.by_item[(pair["event_id"], pair["vendor_record"])] = code
        else:
            vendor_key, our_key = (None, pair["vendor_record"]), (pair["event_id"], None)
            if vendor_key in result.by_item or our_key in result.by_item:
                continue  # each unpaired record is explained by one counterpart
            result.by_item[vendor_key] = code
            result.by_item[our_key] = code
        per_dest[pair.get("dest") or "unknown"] += 1
    for dest, records in sorted(per_dest.items()):
        result.hints.append(
            Hint(
                code,
                dest,
                records,
                f"{records} of their calls start {abs(offset_s)} s "
                f"{'later' if offset_s > 0 else 'earlier'} than ours: "
                f"check the time zone of their start times in the mapping",
            )
        )


__all__ = [
    "Hint",
    "HintResult",
    "find_hints",
    "their_billed",
    "rules_fitting",
    "INCREMENT_RULES",
    "OURS_ONLY",
    "VENDOR_ONLY",
]


def deck_rates(deck) -> RatesFor:
    """``RatesFor`` from a vendor ``RateDeck``: the rate of each jurisdiction for a number and instant."""

    def rates_for(called: str, start_ms: int) -> Mapping[str, Decimal]:
        row = deck.find(called, datetime.fromtimestamp(start_ms / 1000, tz=UTC))
        if row is None:
            return {}
        found = {
            "interstate": row.interstate_rate if row.interstate_rate is not None else row.rate,
            "intrastate": row.intrastate_rate if row.intrastate_rate is not None else row.rate,
            "indeterminate": row.indeterminate_rate,
        }
        return {name: rate for name, rate in found.items() if rate is not None}

    return rates_for

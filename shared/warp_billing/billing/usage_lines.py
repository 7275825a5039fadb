"""Usage aggregation: rated lines into exact per-product sums, and those sums into invoice lines.

Only lines with ``status: "rated"`` of an invoiced customer whose ``start_time`` falls in
that customer's cycle count; rejected lines and other customers' lines are counted in a
``ScanReport`` and otherwise ignored. Per-event amounts (6-decimal strings) are summed
exactly; the invoice line rounds the sum once to cents (contracts.md section 4).

contracts.md section 5 does not list ``start_time``, ``direction`` and ``query_type`` among
the rated fields (``warp rate`` writes them all). A rated line without ``start_time`` is
billed in the cycle being closed (the file is taken as that period's usage) and counted
as ``undated`` in the report; a message without ``direction`` is outbound, the rater's
default. A voice line needs its ``jurisdiction`` and an API line its ``query_type``.

Groups are (kind, sub-kind): voice by jurisdiction, messaging by direction, API queries by
query type. The hot loop below is the cost of a cycle close, so it does little per line:
one JSON parse, a dictionary lookup, a string comparison for the common UTC time form,
and three additions.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any, TypeVar

import orjson

from ..money import EXACT, ZERO
from ..products import VOICE, Product, product, products
from ..timeutil import UTC, InstantError, parse_instant
from .amounts import cents
from .cycles import BillingCycle
from .errors import RatedFileError, RatedLineError

K = TypeVar("K")

SECONDS_PER_MINUTE = 60
UNGROUPED = ("kind", "")  # an unknown kind: grouped by its own name, then refused by open_group
UTC_TEXT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Exact totals of one product group.

    Attributes:
        events: rated lines counted.
        units: billed units (voice: billed seconds; messaging: messages x segments; API: queries).
        amount: exact sum of the per-event amounts (not rounded).
    """

    events: int = 0
    units: int = 0
    amount: Decimal = ZERO

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(self.events + other.events, self.units + other.units, EXACT.add(self.amount, other.amount))


@dataclass(frozen=True)
class CustomerUsage:
    """One customer's billable usage in one cycle.

    Attributes:
        groups: totals by (kind, sub-kind), e.g. ("voice", "interstate"), ("sms", "outbound"),
            ("api_query", "lrn").
        rejected: the customer's rejected lines seen in the file (any period).
        outside_period: the customer's rated lines whose start_time is outside the cycle.
        undated: billed lines without a start_time (billed in the cycle being closed).
        destinations: voice totals by the rated line's ``destination`` (the deck's name for
            the matched prefix; "" when the line has none): the invoice's voice-by-destination table.
    """

    customer_id: str
    groups: Mapping[tuple[str, str], UsageTotals] = field(default_factory=dict)
    rejected: int = 0
    outside_period: int = 0
    undated: int = 0
    destinations: Mapping[str, UsageTotals] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(totals.events for totals in self.groups.values())

    @property
    def voice(self) -> UsageTotals:
        """All voice, every jurisdiction: the base of tiers and commitments."""
        total = UsageTotals()
        for (kind, _), totals in self.groups.items():
            if kind == VOICE.kind:
                total = total + totals
        return total

    @property
    def voice_minutes(self) -> Fraction:
        return Fraction(self.voice.units, SECONDS_PER_MINUTE)

    def merge(self, other: CustomerUsage) -> CustomerUsage:
        groups = dict(self.groups)
        for key, totals in other.groups.items():
            groups[key] = groups[key] + totals if key in groups else totals
        destinations = dict(self.destinations)
        for name, totals in other.destinations.items():
            destinations[name] = destinations[name] + totals if name in destinations else totals
        return CustomerUsage(
            self.customer_id, groups, self.rejected + other.rejected, self.outside_period + other.outside_period,
            self.undated + other.undated, destinations,
        )


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """The instants of one customer's cycle, in the forms the scan compares against."""

    customer_id: str
    starts_at: datetime
    ends_at: datetime
    first_text: str
    after_text: str

    @classmethod
    def for_cycle(cls, customer_id: str, cycle: BillingCycle) -> UsageWindow:
        first, after = cycle.starts_at, cycle.ends_at
        return cls(customer_id, first, after, first.strftime(UTC_TEXT), after.strftime(UTC_TEXT))

    def contains(self, start_time: object) -> bool:
        """Whether an event starting at ``start_time`` (ISO 8601, no offset = UTC) is in the cycle.

        The common form ``2026-11-03T12:34:56Z`` is compared as text against the bounds
        written the same way (the scan's loop inlines this); anything else is parsed.
        """
        if type(start_time) is str and len(start_time) == 20 and start_time[19] == "Z" and start_time[10] == "T":
            return self.first_text <= start_time < self.after_text
        instant = parse_instant(start_time)
        return self.starts_at <= instant.astimezone(UTC) < self.ends_at


@dataclass
class ScanReport:
    """What a pass over a rated file saw: lines = billed + rejected + other + outside + blank.

    ``undated`` counts the billed lines that had no ``start_time`` (a subset of ``billed``).
    """

    lines: int = 0
    billed: int = 0
    rejected: int = 0
    other_customers: int = 0
    outside_period: int = 0
    blank: int = 0
    undated: int = 0
    duplicates: int = 0
    replaced: int = 0
    other_by_customer: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: ScanReport) -> None:
        for item in fields(self):
            if item.name == "other_by_customer":
                for customer, count in other.other_by_customer.items():
                    self.other_by_customer[customer] = self.other_by_customer.get(customer, 0) + count
            elif item.name == "warnings":
                self.warnings.extend(other.warnings)
            else:
                setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        text = (f"rated file: {self.lines:,} lines; billed {self.billed:,}; rejected {self.rejected:,} (ignored); "
                f"other customers {self.other_customers:,}; outside the period {self.outside_period:,}")
        if self.undated:
            text += f"; billed without a start_time (taken as in the period) {self.undated:,}"
        if self.duplicates:
            text += f"; identical duplicate lines counted once {self.duplicates:,}"
        if self.replaced:
            text += f"; earlier rated versions replaced by a later one (--prefer latest) {self.replaced:,}"
        for warning in self.warnings:
            text += f"\nwarning: {warning}"
        return text

    def unplanned_summary(self, shown: int = 10) -> str | None:
        """Rated lines of customers without a plan, largest first (None when there are none)."""
        if not self.other_by_customer:
            return None
        ranked = sorted(self.other_by_customer.items(), key=lambda item: (-item[1], item[0]))
        listed = ", ".join(f"{customer} ({count:,})" for customer, count in ranked[:shown])
        more = f" and {len(ranked) - shown} more" if len(ranked) > shown else ""
        return (f"{sum(self.other_by_customer.values()):,} rated line(s) of {len(ranked)} customer(s) without a plan "
                f"were not invoiced: {listed}{more}")


class _BadLine(Exception):
    """A bad line met inside the loop; ``consume`` turns it into a numbered RatedLineError."""

    def __init__(self, line: bytes, detail: str):
        super().__init__(detail)
        self.line = line
        self.detail = detail


class _CustomerState:
    """Mutable running sums of one customer during a scan (lists are cheaper than objects here)."""

    __slots__ = ("window", "first_text", "after_text", "groups", "rejected", "outside", "undated")

    def __init__(self, window: UsageWindow):
        self.window = window
        self.first_text = window.first_text
        self.after_text = window.after_text
        # keys are (kind, group, destination); result() folds them into groups and voice destinations
        self.groups: dict[tuple[str, object, object], list[Any]] = {}
        self.rejected = 0
        self.outside = 0
        self.undated = 0

    def open_group(self, key: tuple[str, object, object], line: bytes) -> list[Any]:
        kind, sub = key[0], key[1]
        item = product(kind)
        if item is None:
            raise _BadLine(line, f"kind {kind!r} is not billable ({', '.join(kinds())})")
        problem = item.group_problem(sub)
        if problem is not None or not isinstance(sub, str):
            raise _BadLine(line, problem or f"{kind} line with {item.group_field} {sub!r}")
        group = self.groups[key] = [0, 0, ZERO]
        return group

    def result(self) -> CustomerUsage:
        groups: dict[tuple[str, str], UsageTotals] = {}
        destinations: dict[str, UsageTotals] = {}
        for key, (events, units, amount) in self.groups.items():
            if not amount.is_finite():
                raise RatedFileError(f"customer {self.window.customer_id}: {key[0]} {key[1]} amounts sum to {amount}")
            totals = UsageTotals(events, units, amount)
            group = (key[0], str(key[1]))      # open_group checked the group is text
            groups[group] = groups[group] + totals if group in groups else totals
            if key[0] == VOICE.kind:
                name = key[2] if isinstance(key[2], str) else ""
                destinations[name] = destinations[name] + totals if name in destinations else totals
        return CustomerUsage(self.window.customer_id, groups, self.rejected, self.outside, self.undated, destinations)


def _bad_quantity(units: object, amount: object) -> str | None:
    """Why a line's quantities are refused, or None (an amount such as ".5" sorts before "0" but is not negative)."""
    if type(units) is not int or type(amount) is not str:
        return "billed_units must be an integer and amount a decimal string"
    if units >= 0 and amount.lstrip()[:1] != "-":   # Decimal reads " -0.5" as negative too
        return None
    return (f"negative usage (billed_units {units}, amount {amount}); a correction is a credit note, "
            "not a negative usage line")


class UsageAggregator:
    """Consumes rated lines for a set of customers, each with its own cycle window.

    Every billed line leaves a 64-bit digest of its ``event_id`` (Python's keyed str hash) in
    ``id_digests`` and its line number in ``id_lines`` (two flat int64 arrays, 16 bytes a
    line): the close finds repeated event ids from these without holding the lines.
    """

    def __init__(self, windows: Mapping[str, UsageWindow]):
        self._states = {customer: _CustomerState(window) for customer, window in windows.items()}
        self._counts = ScanReport()
        self.id_digests = array("q")
        self.id_lines = array("q")

    @property
    def report(self) -> ScanReport:
        """Counts so far (the outside-the-period count is kept per customer)."""
        report = ScanReport()
        report.merge(self._counts)
        report.outside_period = sum(state.outside for state in self._states.values())
        report.undated = sum(state.undated for state in self._states.values())
        return report

    def consume(self, lines: Sequence[bytes], first_line: int = 1) -> int:
        """Add ``lines`` (numbered from ``first_line``); return the next line number.

        A bad line raises RatedLineError with its number. The number is worked out only
        then, from the line's position in ``lines``, so the loop itself does not count.
        """
        try:
            self._consume(lines, first_line)
        except _BadLine as bad:
            position = next(index for index, line in enumerate(lines) if line is bad.line)
            raise RatedLineError(first_line + position, bad.detail) from None
        self._counts.lines += len(lines)
        return first_line + len(lines)

    # The cycle close's hot loop (bench/cycle_close_bench.py, BENCHMARKS.md "Cycle close"): one flat
    # loop with its error handling inline is what keeps it at ~500,000 lines/s, so it stays above 15.
    def _consume(self, lines: Sequence[bytes], first_line: int) -> None:  # noqa: C901, PLR0912
        states = self._states
        # kind -> (the field its lines group by, the group of a line without it); unknown kinds fail in open_group
        grouping = {item.kind: (item.group_field, item.group_default) for item in products()}
        # voice, most lines, is keyed without the table (its group field is required: no default)
        voice, voice_field = (VOICE.kind, VOICE.group_field) if VOICE.group_default is None else (None, "")
        loads = orjson.loads
        decimal = Decimal
        counts = self._counts
        other_by_customer = counts.other_by_customer
        add_digest, add_line = self.id_digests.append, self.id_lines.append
        billed_before = len(self.id_digests)     # one digest per billed line: the count of billed lines
        rejected = other = blank = 0
        with localcontext(EXACT):
            for number, line in enumerate(lines, first_line):
                try:
                    record = loads(line)
                    status = record["status"]
                    if status != "rated":
                        if status != "rejected":
                            raise _BadLine(line, f"status {status!r} is neither 'rated' nor 'rejected'")
                        rejected += 1
                        state = states.get(record.get("customer_id"))
                        if state is not None:
                            state.rejected += 1
                        continue
                    customer = record["customer_id"]
                    state = states.get(customer)
                    if state is None:
                        other += 1
                        other_by_customer[customer] = other_by_customer.get(customer, 0) + 1
                        continue
                    start = record.get("start_time")
                    if start is None:       # an undated line: the file is taken as the period's usage
                        state.undated += 1
                    elif len(start) == 20 and start[19] == "Z" and start[10] == "T":   # UsageWindow.contains, inlined
                        if not state.first_text <= start < state.after_text:
                            state.outside += 1
                            continue
                    elif not state.window.contains(start):
                        state.outside += 1
                        continue
                    kind = record["kind"]
                    if kind == voice:
                        # the destination rides in the key so the voice-by-destination table costs no second lookup
                        key = (kind, record[voice_field], record.get("destination"))
                    else:
                        group_field, default = grouping.get(kind, UNGROUPED)
                        # a field without a default is required (KeyError: a named bad line)
                        key = (kind, record[group_field] if default is None else record.get(group_field) or default,
                               None)
                    group = state.groups.get(key)
                    if group is None:
                        group = state.open_group(key, line)
                    units = record["billed_units"]
                    amount = record["amount"]
                    # "-..." sorts before "0": one comparison lets every non-negative amount in "0".."9..." through
                    if (type(units) is not int or type(amount) is not str or units < 0 or amount < "0") and \
                            (problem := _bad_quantity(units, amount)) is not None:
                        raise _BadLine(line, problem)
                    group[0] += 1
                    group[1] += units
                    group[2] += decimal(amount)
                    add_digest(hash(record["event_id"]))   # the key that bills the event once
                    add_line(number)
                except orjson.JSONDecodeError:
                    if line.strip():
                        raise _BadLine(line, "not valid JSON") from None
                    blank += 1
                except KeyError as exc:
                    raise _BadLine(line, f"missing field {exc.args[0]!r}") from None
                except (TypeError, AttributeError):
                    raise _BadLine(line, "not a rated record (a JSON object with string fields)") from None
                except InvalidOperation:
                    raise _BadLine(line, f"amount {record.get('amount')!r} is not a decimal number") from None
                except InstantError as exc:
                    raise _BadLine(line, f"start_time: {exc}") from None
        counts.billed += len(self.id_digests) - billed_before
        counts.rejected += rejected
        counts.other_customers += other
        counts.blank += blank

    def result(self) -> dict[str, CustomerUsage]:
        return {customer: state.result() for customer, state in self._states.items()}


def subtract_usage(total: CustomerUsage, removed: CustomerUsage) -> CustomerUsage:
    """``total`` less the lines of ``removed`` (the extra copies of duplicated events).

    Both the groups and the voice-by-destination totals lose the copies, so the destination
    table of an invoice closed over duplicated files equals the one closed over clean files.
    """
    return CustomerUsage(total.customer_id, _less(total.groups, removed.groups), total.rejected - removed.rejected,
                         total.outside_period - removed.outside_period, total.undated - removed.undated,
                         _less(total.destinations, removed.destinations))


def _less(totals: Mapping[K, UsageTotals], removed: Mapping[K, UsageTotals]) -> dict[K, UsageTotals]:
    left_over = dict(totals)
    for key, less in removed.items():
        have = left_over[key]
        left = UsageTotals(have.events - less.events, have.units - less.units, EXACT.subtract(have.amount, less.amount))
        if left.events:
            left_over[key] = left
        else:
            del left_over[key]
    return left_over


# --- from sums to invoice lines -------------------------------------------------------------

def usage_sku(kind: str, sub: str) -> str:
    """The invoice sku of a usage group: VOICE-INTERSTATE, SMS-OUTBOUND, API-LRN, ..."""
    return _product(kind).sku(sub)


def usage_description(kind: str, sub: str) -> str:
    return _product(kind).describe(sub)


@dataclass(frozen=True, slots=True)
class UsageLine:
    """A usage group priced for the invoice: quantity in the customer's unit, amount in cents."""

    sku: str
    description: str
    quantity: Fraction
    unit: str
    amount: Decimal
    events: int
    billed_seconds: int | None = None


def usage_line(kind: str, sub: str, totals: UsageTotals) -> UsageLine:
    """One invoice line: the exact sum of per-event amounts, rounded once to cents."""
    item = _product(kind)
    quantity = Fraction(totals.units, item.units_per_quantity)
    seconds = totals.units if item.unit_detail == "billed_seconds" else None
    return UsageLine(item.sku(sub), item.describe(sub), quantity, item.unit, cents(totals.amount),
                     totals.events, seconds)


def kinds() -> list[str]:
    return [item.kind for item in products()]


def ordered_groups(usage: CustomerUsage, kind: str) -> list[tuple[str, UsageTotals]]:
    """A kind's groups in invoice order (voice by jurisdiction, messaging outbound first, API by type)."""
    found = {sub: totals for (group_kind, sub), totals in usage.groups.items() if group_kind == kind}
    return [(sub, found[sub]) for sub in _product(kind).invoice_order(list(found))]


def _product(kind: str) -> Product:
    item = product(kind)
    if item is None:
        raise RatedFileError(f"kind {kind!r} is not in the product table ({', '.join(kinds())})")
    return item

"""Variance of a vendor's billing against ours, per destination and in total, and the dispute rule.

Minutes are call minutes (duration / 60) and cost is the billed cost, each summed exactly.
``variance_pct = (theirs - ours) / ours x 100``, rounded once to 2 decimals half up; with
nothing on our side and something on theirs the variance is unbounded (``None``) and counts
as over any threshold. Their side includes every row they billed (duplicates too: they are
on the invoice). A dispute opens when the vendor's total minutes or cost (against their CDRs,
or against their invoice summary when given) differ from ours by more than the threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)
MS_PER_MINUTE = Decimal(60_000)
PCT = Decimal("0.01")
MINUTE_PLACES = Decimal("0.0001")


def variance_pct(ours: Decimal, theirs: Decimal) -> Decimal | None:
    """Percent by which ``theirs`` exceeds ``ours`` (negative: below); None when unbounded."""
    if ours == 0:
        return Decimal("0.00") if theirs == 0 else None
    return ((theirs - ours) * HUNDRED / ours).quantize(PCT, rounding=ROUND_HALF_UP)


def over(ours: Decimal, theirs: Decimal, threshold_pct: Decimal) -> bool:
    """Whether theirs differs from ours by more than the threshold, decided on the exact figures
    (the printed percent is rounded: 5.00001 % shows as 5.00 but is over 5 %)."""
    if ours == 0:
        return theirs != 0
    return abs(theirs - ours) * HUNDRED > threshold_pct * abs(ours)


@dataclass
class Figures:
    """Exact sums of one side or both, for one destination or the total.

    Attributes:
        our_ms, their_ms: call durations in milliseconds.
        our_cost, their_cost: billed cost.
        counts: items per class.
    """

    our_ms: int = 0
    their_ms: int = 0
    our_cost: Decimal = Decimal(0)
    their_cost: Decimal = Decimal(0)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, klass: str, count: int, our_ms: int, their_ms: int, our_cost: Decimal, their_cost: Decimal) -> None:
        self.counts[klass] = self.counts.get(klass, 0) + count
        self.our_ms += our_ms
        self.their_ms += their_ms
        self.our_cost += our_cost
        self.their_cost += their_cost

    @property
    def our_minutes(self) -> Decimal:
        return Decimal(self.our_ms) / MS_PER_MINUTE

    @property
    def their_minutes(self) -> Decimal:
        return Decimal(self.their_ms) / MS_PER_MINUTE


@dataclass(frozen=True)
class InvoiceFigures:
    """The vendor's invoice summary for one destination (or the total)."""

    minutes: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Variance:
    """Ours against theirs (and against their invoice) for one destination or the total."""

    dest: str
    figures: Figures
    minutes_pct: Decimal | None
    cost_pct: Decimal | None
    invoice: InvoiceFigures | None
    invoice_minutes_pct: Decimal | None
    invoice_cost_pct: Decimal | None

    def to_record(self) -> dict:
        f = self.figures
        record = {
            "destination": self.dest,
            "counts": dict(sorted(f.counts.items())),
            "minutes_ours": _minutes(f.our_minutes),
            "minutes_theirs": _minutes(f.their_minutes),
            "minutes_variance_pct": _pct(self.minutes_pct),
            "cost_ours": _money(f.our_cost),
            "cost_theirs": _money(f.their_cost),
            "cost_variance_pct": _pct(self.cost_pct),
        }
        if self.invoice is not None:
            record.update(
                {
                    "invoice_minutes": _minutes(self.invoice.minutes),
                    "invoice_amount": _money(self.invoice.amount),
                    "invoice_minutes_variance_pct": _pct(self.invoice_minutes_pct),
                    "invoice_cost_variance_pct": _pct(self.invoice_cost_pct),
                }
            )
        return record


@dataclass(frozen=True)
class Decision:
    """Whether a dispute opens, and why (each reason names the measure and the figures)."""

    dispute: bool
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "within threshold"


def variance(dest: str, figures: Figures, invoice: InvoiceFigures | None = None) -> Variance:
    minutes_pct = variance_pct(figures.our_minutes, figures.their_minutes)
    cost_pct = variance_pct(figures.our_cost, figures.their_cost)
    inv_minutes = inv_cost = None
    if invoice is not None:
        inv_minutes = variance_pct(figures.our_minutes, invoice.minutes)
        inv_cost = variance_pct(figures.our_cost, invoice.amount)
    return Variance(dest, figures, minutes_pct, cost_pct, invoice, inv_minutes, inv_cost)


def total(figures: Iterable[Figures]) -> Figures:
    result = Figures()
    for part in figures:
        for klass, count in part.counts.items():
            result.counts[klass] = result.counts.get(klass, 0) + count
        result.our_ms += part.our_ms
        result.their_ms += part.their_ms
        result.our_cost += part.our_cost
        result.their_cost += part.their_cost
    return result


def invoice_total(invoice: Mapping[str, InvoiceFigures]) -> InvoiceFigures | None:
    if not invoice:
        return None
    return InvoiceFigures(
        sum((i.minutes for i in invoice.values()), Decimal(0)), sum((i.amount for i in invoice.values()), Decimal(0))
    )


def decide(vendor_total: Variance, threshold_pct: Decimal) -> Decision:
    """The dispute rule on the vendor's total for the period (see the module docstring)."""
    f = vendor_total.figures
    checks = [
        ("minutes (their CDRs)", vendor_total.minutes_pct, f.our_minutes, f.their_minutes),
        ("cost (their CDRs)", vendor_total.cost_pct, f.our_cost, f.their_cost),
    ]
    if vendor_total.invoice is not None:
        checks += [
            ("minutes (their invoice)", vendor_total.invoice_minutes_pct, f.our_minutes, vendor_total.invoice.minutes),
            ("cost (their invoice)", vendor_total.invoice_cost_pct, f.our_cost, vendor_total.invoice.amount),
        ]
    reasons = []
    for name, pct, ours, theirs in checks:
        if over(ours, theirs, threshold_pct):
            shown = "unbounded" if pct is None else f"{pct}%"
            reasons.append(
                f"{name} variance {shown} exceeds {threshold_pct}% (ours {_plain(ours)}, theirs {_plain(theirs)})"
            )
    return Decision(bool(reasons), tuple(reasons))


def _plain(value: Decimal) -> str:
    return format(value.quantize(MINUTE_PLACES, rounding=ROUND_HALF_UP).normalize(), "f")


def _minutes(value: Decimal) -> str:
    return format(value.quantize(MINUTE_PLACES, rounding=ROUND_HALF_UP), "f")


def _money(value: Decimal) -> str:
    return format(value, "f")


def _pct(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")

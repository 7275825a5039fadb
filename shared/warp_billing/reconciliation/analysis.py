"""From a match to a reconciliation: variance per destination, hints, the dispute decision, the summary.

Pure: takes the engine's ``MatchOutcome`` (and the vendor's invoice summary) and returns a
``Reconciliation`` that the outputs (``documents``) render. The same function serves the
one-machine CLI and the cloud function, so both decide disputes identically.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from ..money import MoneyError, to_decimal
from .hints import HintResult, RatesFor, find_hints
from .mapping import InvoiceLayout, VendorMapping
from .matching_sql import CLASSES, MISMATCH, VENDOR_DUPLICATE, VENDOR_ONLY
from .outcome import LoadReport, MatchOutcome
from .variance import Decision, Figures, InvoiceFigures, Variance, decide, invoice_total, total, variance

DISPUTED_CLASSES = (MISMATCH, VENDOR_ONLY, VENDOR_DUPLICATE)
TOTAL = "TOTAL"


class InvoiceSummaryError(ValueError):
    """A vendor invoice summary that cannot be read; the message names the file, row and column."""


@dataclass(frozen=True)
class Reconciliation:
    """One vendor and period reconciled.

    Attributes:
        run_id: ``<vendor>-<period>``: the business key of every write of this run.
        destinations: variance per destination, by name.
        total: the vendor's total variance (what the dispute rule reads).
        disputed: the records a dispute would contest (mismatch, vendor_only, vendor_duplicate), with hints.
        send_to, vendor_email: where the dispute package is emailed (the mapping's ``dispute``).
    """

    run_id: str
    vendor_id: str
    period: str
    load: LoadReport
    ours: int
    destinations: tuple[Variance, ...]
    total: Variance
    decision: Decision
    hints: HintResult
    disputed: tuple[dict, ...]
    threshold_pct: Decimal
    send_to: str
    vendor_email: str | None = None

    def summary(self) -> dict:
        counts = {klass: self.total.figures.counts.get(klass, 0) for klass in CLASSES}
        return {
            "run_id": self.run_id,
            "vendor_id": self.vendor_id,
            "period": self.period,
            "vendor_rows": {"read": self.load.read, "loaded": self.load.loaded, "rejected": dict(self.load.rejected)},
            "our_records": self.ours,
            "counts": counts,
            "threshold_pct": format(self.threshold_pct, "f"),
            "total": self.total.to_record(),
            "destinations": [v.to_record() for v in self.destinations],
            "hints": [hint.to_record() for hint in self.hints.hints],
            "dispute": self.decision.dispute,
            "dispute_reason": self.decision.reason,
            "disputed_records": len(self.disputed),
            "send_package_to": self.send_to,
        }


def analyse(
    mapping: VendorMapping,
    period: str,
    load: LoadReport,
    ours: int,
    outcome: MatchOutcome,
    invoice: Mapping[str, InvoiceFigures] | None = None,
    rates_for: RatesFor | None = None,
) -> Reconciliation:
    """Variance, hints and the dispute decision for one vendor and period."""
    by_dest: dict[str, Figures] = {}
    for dest, klass, count, our_ms, their_ms, our_cost, their_cost in outcome.aggregates:
        by_dest.setdefault(dest or "unknown", Figures()).add(klass, count, our_ms, their_ms, our_cost, their_cost)
    invoice = dict(invoice or {})
    for dest in invoice:
        by_dest.setdefault(dest, Figures())
    destinations = tuple(variance(dest, figures, invoice.get(dest)) for dest, figures in sorted(by_dest.items()))
    vendor_total = variance(TOTAL, total(by_dest.values()), invoice_total(invoice))
    decision = decide(vendor_total, mapping.dispute.threshold_pct)
    hints = find_hints(
        outcome.exceptions, outcome.offset_pairs, outcome.paired_per_day, rates_for, mapping.tolerances.rate
    )
    disputed = []
    for item in outcome.exceptions:
        if item["class"] in DISPUTED_CLASSES:
            hint = hints.by_item.get((item.get("event_id"), item.get("vendor_record")), "")
            disputed.append({**item, "cause_hint": hint})
    return Reconciliation(
        f"{mapping.vendor_id}-{period}",
        mapping.vendor_id,
        period,
        load,
        ours,
        destinations,
        vendor_total,
        decision,
        hints,
        tuple(disputed),
        mapping.dispute.threshold_pct,
        mapping.dispute.send_to,
        mapping.dispute.vendor_email,
    )


def parse_invoice_summary(
    text: str, layout: InvoiceLayout, source: str = "invoice summary"
) -> dict[str, InvoiceFigures]:
    """The vendor's invoice summary CSV: minutes and amount per destination (their names mapped to ours)."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [name for name in (layout.destination, layout.minutes, layout.amount) if name not in header]
    if missing:
        raise InvoiceSummaryError(f"{source}: missing column(s) {', '.join(missing)} (has {', '.join(header)})")
    result: dict[str, InvoiceFigures] = {}
    for number, row in enumerate(reader, start=2):
        name = (row.get(layout.destination) or "").strip()
        if not name:
            raise InvoiceSummaryError(f"{source}: row {number}: column {layout.destination}: empty destination")
        dest = layout.destinations.get(name, name)
        try:
            minutes = to_decimal(row.get(layout.minutes), field=layout.minutes)
            amount = to_decimal(row.get(layout.amount), field=layout.amount)
        except MoneyError as exc:
            raise InvoiceSummaryError(f"{source}: row {number}: {exc}") from None
        previous = result.get(dest)
        if previous is not None:
            minutes += previous.minutes
            amount += previous.amount
        result[dest] = InvoiceFigures(minutes, amount)
    return result

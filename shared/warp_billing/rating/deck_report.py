"""A human summary of a compiled deck: sizes, windows and price ranges."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..money import format_rate
from .deck import RATE_COLUMNS, RateDeck


def summarize(deck: RateDeck) -> dict[str, Any]:
    rows = list(deck.rows())
    lengths = Counter(len(row.prefix) for row in rows)
    report: dict[str, Any] = {
        "rows": len(rows),
        "prefixes": deck.prefixes(),
        "destinations": len({row.destination for row in rows if row.destination}),
        "prefix_lengths": f"{min(lengths, default=0)}-{max(lengths, default=0)}",
        "effective_from": min((row.effective for row in rows), default=None),
        "dated_rows": sum(1 for row in rows if row.end is not None),
        "rows_with_connect_fee": sum(1 for row in rows if row.connect_fee),
        "increments": ", ".join(
            f"{first or 'plan'}/{following or 'plan'} x{count}"
            for (first, following), count in Counter((row.first_increment,
                                                      row.next_increment) for row in rows).most_common(5)
        ),
    }
    if report["effective_from"] is not None:
        report["effective_from"] = report["effective_from"].isoformat()
    report["latest_effective"] = max((row.effective for row in rows), default=None)
    if report["latest_effective"] is not None:
        report["latest_effective"] = report["latest_effective"].isoformat()
    for column in RATE_COLUMNS:
        values = [getattr(row, column) for row in rows if getattr(row, column) is not None]
        if values:
            report[column] = f"{len(values)} rows, {format_rate(min(values))} to {format_rate(max(values))}"
    return report

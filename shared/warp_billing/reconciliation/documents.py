"""The outputs of a reconciliation as text: summary.json, the dispute package (CSV + letter), the report.

The HTML report draws the variance by destination as inline SVG: nothing is fetched when the
page opens (no script, no CDN). The PDF of the letter is rendered by an adapter from the
letter's HTML (``adapters/pdf_documents.py``).
"""

from __future__ import annotations

import csv
import html
import io
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from .analysis import Reconciliation
from .variance import Variance

DISPUTE_COLUMNS = (
    "class",
    "cause_hint",
    "event_id",
    "vendor_record",
    "duplicate_of",
    "their_call_id",
    "calling",
    "called",
    "dest",
    "our_start",
    "their_start",
    "our_duration_s",
    "their_duration_s",
    "our_billed_s",
    "their_billed_s",
    "our_rate",
    "their_rate",
    "our_cost",
    "their_cost",
    "cost_difference",
)


def summary_json(recon: Reconciliation) -> bytes:
    return orjson.dumps(recon.summary(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _instant(ms) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _seconds(ms) -> str:
    if ms is None:
        return ""
    return format(Decimal(int(ms)) / 1000, "f")


def _money(value) -> str:
    return "" if value is None else format(Decimal(value).normalize(), "f")


def dispute_row(item: dict) -> dict:
    ours, theirs = item.get("our_cost"), item.get("their_cost")
    difference = Decimal(theirs or 0) - Decimal(ours or 0)
    return {
        "class": item["class"],
        "cause_hint": item.get("cause_hint", ""),
        "event_id": item.get("event_id") or "",
        "vendor_record": item.get("vendor_record") or "",
        "duplicate_of": item.get("duplicate_of") or "",
        "their_call_id": item.get("their_call_id") or "",
        "calling": item.get("calling") or "",
        "called": item.get("called") or "",
        "dest": item.get("dest") or "",
        "our_start": _instant(item.get("our_start_ms")),
        "their_start": _instant(item.get("their_start_ms")),
        "our_duration_s": _seconds(item.get("our_duration_ms")),
        "their_duration_s": _seconds(item.get("their_duration_ms")),
        "our_billed_s": "" if item.get("our_billed_s") is None else str(item["our_billed_s"]),
        "their_billed_s": "" if item.get("their_billed_s") is None else str(item["their_billed_s"]),
        "our_rate": _money(item.get("our_rate")),
        "their_rate": _money(item.get("their_rate")),
        "our_cost": _money(ours),
        "their_cost": _money(theirs),
        "cost_difference": _money(difference),
    }


def dispute_csv(recon: Reconciliation) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, DISPUTE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in recon.disputed:
        writer.writerow(dispute_row(item))
    return out.getvalue().encode("utf-8")


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _variance_rows(rows: tuple[Variance, ...], total: Variance) -> str:
    lines = []
    for v in (*rows, total):
        r = v.to_record()
        lines.append(
            f"<tr><td>{_e(r['destination'])}</td><td>{_e(r['minutes_ours'])}</td><td>{_e(r['minutes_theirs'])}</td>"
            f"<td>{_e(r['minutes_variance_pct'] or 'unbounded')}</td><td>{_e(r['cost_ours'])}</td>"
            f"<td>{_e(r['cost_theirs'])}</td><td>{_e(r['cost_variance_pct'] or 'unbounded')}</td>"
            f"<td>{_e(r.get('invoice_amount', ''))}</td><td>{_e(r.get('invoice_cost_variance_pct', ''))}</td></tr>"
        )
    return "\n".join(lines)


STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
    ".dispute{color:#a00;font-weight:bold}.ok{color:#060}"
)


def letter_html(recon: Reconciliation, operator: str = "WARP Billing operations") -> str:
    """The summary letter that goes with a dispute package (also rendered to PDF)."""
    total = recon.total.to_record()
    hints = (
        "".join(
            f"<li>{_e(h.dest)}: {_e(h.text)} ({h.records} records, <code>{_e(h.code)}</code>)</li>"
            for h in recon.hints.hints
        )
        or "<li>no common cause found</li>"
    )
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in recon.decision.reasons) or "<li>within threshold</li>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Billing dispute {_e(recon.run_id)}</title>
<style>{STYLE}</style></head><body>
<h1>Billing dispute: {_e(recon.vendor_id)}, period {_e(recon.period)}</h1>
<p>To the billing department of {_e(recon.vendor_id)},</p>
<p>We have reconciled your call detail records for {_e(recon.period)} against our own records of the same
traffic. The difference exceeds the {_e(format(recon.threshold_pct, "f"))} % our agreement accepts:</p>
<ul>{reasons}</ul>
<p>Minutes: ours {_e(total["minutes_ours"])}, yours {_e(total["minutes_theirs"])}.
Cost: ours {_e(total["cost_ours"])}, yours {_e(total["cost_theirs"])}.</p>
<h2>Variance by destination</h2>
<table><tr><th>destination</th><th>minutes ours</th><th>minutes yours</th><th>minutes %</th><th>cost ours</th>
<th>cost yours</th><th>cost %</th><th>invoice</th><th>invoice %</th></tr>
{_variance_rows(recon.destinations, recon.total)}</table>
<h2>Likely causes</h2><ul>{hints}</ul>
<p>The {len(recon.disputed)} disputed records are attached (disputed-records.csv) with both sides' figures:
start, duration, billed seconds, rate and cost. We ask for a credit of the difference or your records
showing otherwise.</p>
<p>{_e(operator)}</p>
</body></html>
"""


def variance_chart_svg(rows: tuple[Variance, ...], threshold: Decimal) -> str:
    """A horizontal bar chart of cost variance % per destination, with the threshold marked."""
    width, bar, gap, label_w = 720, 18, 6, 170
    values = [(v.dest, v.cost_pct) for v in rows]
    limit = max([abs(p) for _, p in values if p is not None] + [threshold * 2, Decimal(1)])
    half = (width - label_w - 20) / 2
    mid = label_w + half
    height = len(values) * (bar + gap) + 40
    scale = half / float(limit)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="cost variance by destination">',
        f'<line x1="{mid}" y1="0" x2="{mid}" y2="{height - 20}" stroke="#444"/>',
    ]
    for sign in (-1, 1):
        x = mid + sign * float(threshold) * scale
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}" stroke="#c00" stroke-dasharray="4"/>')
    for index, (dest, pct) in enumerate(values):
        y = index * (bar + gap) + 4
        parts.append(f'<text x="{label_w - 6}" y="{y + bar - 5}" text-anchor="end" font-size="12">{_e(dest)}</text>')
        if pct is None:
            parts.append(f'<text x="{mid + 4}" y="{y + bar - 5}" font-size="12" fill="#a00">unbounded</text>')
            continue
        length = abs(float(pct)) * scale
        x = mid if pct >= 0 else mid - length
        colour = "#c33" if abs(pct) > threshold else "#4a7"
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{max(length, 1):.1f}" height="{bar}" fill="{colour}">'
            f"<title>{_e(dest)}: {pct} %</title></rect>"
        )
        parts.append(
            f'<text x="{mid + (length + 4 if pct >= 0 else -length - 4):.1f}" y="{y + bar - 5}" '
            f'font-size="11" text-anchor="{"start" if pct >= 0 else "end"}">{pct} %</text>'
        )
    parts.append(
        f'<text x="{mid}" y="{height - 4}" text-anchor="middle" font-size="11">cost variance % '
        f"(theirs vs ours; dashed: ±{_e(format(threshold, 'f'))} %)</text></svg>"
    )
    return "".join(parts)


def report_html(recon: Reconciliation) -> str:
    summary = recon.summary()
    counts = "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in summary["counts"].items())
    hints = "".join(
        f"<tr><td>{_e(h.dest)}</td><td><code>{_e(h.code)}</code></td><td>{h.records}</td>"
        f"<td style='text-align:left'>{_e(h.text)}</td></tr>"
        for h in recon.hints.hints
    )
    status = (
        f"<p class='dispute'>Dispute opened: {_e(recon.decision.reason)}</p>"
        if recon.decision.dispute
        else "<p class='ok'>Within threshold: no dispute.</p>"
    )
    rejected = ", ".join(f"{k} {v}" for k, v in recon.load.rejected.items()) or "none"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Reconciliation {_e(recon.run_id)}</title>
<style>{STYLE}</style></head><body>
<h1>Vendor reconciliation: {_e(recon.vendor_id)}, {_e(recon.period)}</h1>
{status}
<p>Vendor rows read {recon.load.read}, loaded {recon.load.loaded}, rejected: {_e(rejected)}.
Our records: {recon.ours}.</p>
<h2>Variance by destination</h2>
{variance_chart_svg(recon.destinations, recon.threshold_pct)}
<table><tr><th>destination</th><th>minutes ours</th><th>minutes theirs</th><th>minutes %</th><th>cost ours</th>
<th>cost theirs</th><th>cost %</th><th>invoice</th><th>invoice %</th></tr>
{_variance_rows(recon.destinations, recon.total)}</table>
<h2>Records by class</h2><table>{counts}</table>
<h2>Cause hints</h2><table><tr><th>destination</th><th>hint</th><th>records</th><th>explanation</th></tr>{hints}</table>
</body></html>
"""

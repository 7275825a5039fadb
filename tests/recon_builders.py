"""Vendor CDR files made from our own rated events, with known differences injected.

``rated_month`` runs the real `warp sample` set-up and `warp rate` over a month of voice traffic
(sample calls spread over June 2026, half of them with a SIP call id). ``VendorFileBuilder``
writes what a vendor would send for those calls, recording every injected difference so a test
can check each one is found, with the right class and hint, and that nothing else is flagged.
"""

from __future__ import annotations

import csv
import gzip
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from click.testing import CliRunner

from warp_billing.cli import main as warp
from warp_billing.rating.voice import billed_seconds
from warp_billing.reconciliation.hints import rules_fitting

MICRO = Decimal("0.000001")
JUNE = datetime(2026, 6, 1, tzinfo=UTC)


def rated_month(folder: Path, events: int = 4000, seed: int = 11) -> list[dict]:
    """Rated voice events of June 2026 (sample plans and decks), written to folder/rated.jsonl."""
    runner = CliRunner()
    result = runner.invoke(warp, ["sample", "--out", str(folder), "--events", str(events), "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    rng = random.Random(seed)
    lines = []
    for number, line in enumerate((folder / "usage.jsonl").read_bytes().splitlines()):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict) or event.get("kind") != "voice" or not isinstance(event.get("start_time"), str):
            continue
        moment = JUNE + timedelta(days=rng.randrange(30), seconds=rng.randrange(86_400))
        event["start_time"] = moment.isoformat().replace("+00:00", "Z")
        event["event_id"] = f"E{number:07d}"
        if rng.random() < 0.5:
            event["call_id"] = f"sip-{number:07d}@switch"
        lines.append(orjson.dumps(event))
    (folder / "usage-month.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    plans = [str(folder / f"{name}-plan.yaml") for name in ("acme", "beta", "gamma")]
    args = [
        "rate",
        *[a for p in plans for a in ("--plan", p)],
        "--in",
        str(folder / "usage-month.jsonl"),
        "--out",
        str(folder / "rated.jsonl"),
    ]
    result = runner.invoke(warp, args)
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in (folder / "rated.jsonl").read_bytes().splitlines()]


def ours_for(rated: list[dict], vendor: str) -> list[dict]:
    """The events reconciliation takes as ours: rated voice, this vendor, a vendor cost, answered."""
    return [
        r
        for r in rated
        if r["status"] == "rated"
        and r["kind"] == "voice"
        and r.get("vendor_id") == vendor
        and r.get("vendor_cost") is not None
        and r.get("duration_s")
    ]


def _cost(rate: Decimal, billed: int) -> Decimal:
    return (rate * billed / 60).quantize(MICRO, rounding=ROUND_HALF_UP)


@dataclass
class Injected:
    """What was done to which call: event_id -> (expected class, expected hint prefix)."""

    ours: dict[str, tuple[str, str]] = field(default_factory=dict)
    theirs: dict[str, tuple[str, str]] = field(default_factory=dict)  # by their call reference


@dataclass
class VendorRow:
    ref: str
    event: dict | None
    call_id: str | None
    start: datetime
    calling: str
    called: str
    duration_s: int
    billed_s: int
    rate: Decimal
    cost: Decimal
    jurisdiction: str
    destination: str


class VendorFileBuilder:
    """The vendor's view of our calls, changed by the ``inject_*`` methods, written by ``write``."""

    def __init__(self, ours: list[dict], seed: int = 5):
        self.rng = random.Random(seed)
        self.injected = Injected()
        self.rows: list[VendorRow] = []
        for event in ours:
            start = datetime.fromisoformat(event["start_time"].replace("Z", "+00:00"))
            self.rows.append(
                VendorRow(
                    event["event_id"],
                    event,
                    event.get("call_id"),
                    start,
                    event["calling_number"],
                    event["called_number"],
                    event["duration_s"],
                    event["vendor_billed_units"],
                    Decimal(event["vendor_rate"]),
                    Decimal(event["vendor_cost"]),
                    event["jurisdiction"],
                    event["destination"] or "",
                )
            )

    def _untouched(self, share: float) -> list[VendorRow]:
        free = [row for row in self.rows if row.event is not None and row.ref not in self.injected.ours]
        return self.rng.sample(free, max(1, int(len(free) * share)))

    def _rebill(self, row: VendorRow, duration: int, rule: tuple[int, int] | None = None) -> None:
        if rule is None:
            fitting = sorted(rules_fitting(row.duration_s, row.billed_s))
            rule = fitting[0] if fitting else (1, 1)
        billed = billed_seconds(duration, *rule)
        row.cost = row.cost + _cost(row.rate, billed) - _cost(row.rate, row.billed_s)
        row.duration_s, row.billed_s = duration, billed

    def inject_longer(self, share: float = 0.05, seconds: int = 3) -> None:
        for row in self._untouched(share):
            self._rebill(row, row.duration_s + seconds)
            self.injected.ours[row.ref] = ("mismatch", f"answer_time:+{seconds}s")

    def inject_increments(self, rule: tuple[int, int] = (60, 60)) -> None:
        for row in self.rows:
            if row.event is None or row.ref in self.injected.ours:
                continue
            before = row.cost
            self._rebill(row, row.duration_s, rule)
            if row.cost != before:
                klass = "partial" if abs(row.cost - before) <= Decimal("0.0001") else "mismatch"
                self.injected.ours[row.ref] = (klass, f"increment:{rule[0]}/{rule[1]}")

    def inject_offset(self, seconds: int = 3600) -> None:
        for row in self.rows:
            row.start += timedelta(seconds=seconds)
            if row.event is not None and row.call_id:
                # both sides carry the call id: paired whatever the start, the offset is the hint
                self.injected.ours[row.ref] = ("exact", f"time_offset:{seconds:+d}s")
            elif row.event is not None:
                self.injected.ours[row.ref] = ("ours_only", f"time_offset:{seconds:+d}s")
                self.injected.theirs[row.ref] = ("vendor_only", f"time_offset:{seconds:+d}s")

    def drop(self, share: float = 0.01) -> None:
        """Calls they did not bill (ours_only)."""
        for row in self._untouched(share):
            self.rows.remove(row)
            self.injected.ours[row.ref] = ("ours_only", "")

    def add_unknown(self, count: int = 10) -> None:
        """Calls they billed that we never carried (vendor_only)."""
        for number in range(count):
            template = self.rng.choice([row for row in self.rows if row.event is not None])
            ref = f"X{number:05d}"
            start = JUNE + timedelta(days=self.rng.randrange(30), seconds=self.rng.randrange(86_400))
            row = VendorRow(
                ref,
                None,
                None,
                start,
                "+1" + str(self.rng.randint(2012000000, 9899999999)),
                "+1" + str(self.rng.randint(2012000000, 9899999999)),
                120,
                120,
                template.rate,
                _cost(template.rate, 120),
                template.jurisdiction,
                template.destination,
            )
            self.rows.append(row)
            self.injected.theirs[ref] = ("vendor_only", "")

    def duplicate(self, share: float = 0.005) -> None:
        """The same call billed twice (vendor_duplicate for the second copy)."""
        for row in self._untouched(share):
            copy = VendorRow(**{**row.__dict__, "ref": row.ref + "#2", "event": None})
            self.rows.append(copy)
            self.injected.theirs[copy.ref] = ("vendor_duplicate", "duplicate_of:")

    def rate_change(self, jurisdiction: str, day: int = 15, factor: Decimal = Decimal("1.25")) -> None:
        """From June ``day`` on they bill one jurisdiction at a higher rate than our deck says."""
        change = JUNE + timedelta(days=day - 1)
        for row in self.rows:
            if row.event is None or row.ref in self.injected.ours or row.jurisdiction != jurisdiction:
                continue
            if row.start >= change:
                new_rate = (row.rate * factor).quantize(MICRO)
                row.cost = row.cost + _cost(new_rate, row.billed_s) - _cost(row.rate, row.billed_s)
                row.rate = new_rate
                self.injected.ours[row.ref] = ("mismatch", f"rate_change:2026-06-{day:02d}")

    def write(self, path: Path, layout: str = "plain") -> list[str]:
        """Write the file; ``layout`` plain (CSV, UTC, seconds) or local (TSV.gz, New York time,
        milliseconds, national numbers, mm:ss is used by ``minutes``). Returns the call refs in
        file order (line 2 is the first)."""
        self.rows.sort(key=lambda row: (row.start, row.ref))
        zone = ZoneInfo("America/New_York")
        header = ["CallID", "Start", "ANI", "DNIS", "Dur", "Rate", "Charge", "Cur", "Juris", "Dest", "Ref"]
        rows = []
        for row in self.rows:
            if layout == "local":
                start = row.start.astimezone(zone).strftime("%m/%d/%Y %H:%M:%S")
                calling, called = _national(row.calling), _national(row.called)
                duration = str(row.duration_s * 1000)
            elif layout == "minutes":
                start = row.start.strftime("%Y-%m-%d %H:%M:%S")
                calling, called = row.calling, row.called
                duration = f"{row.duration_s // 60}:{row.duration_s % 60:02d}"
            else:
                start = row.start.strftime("%Y-%m-%d %H:%M:%S")
                calling, called = row.calling, row.called
                duration = str(row.duration_s)
            juris = {"interstate": "INTER", "intrastate": "INTRA"}.get(row.jurisdiction, row.jurisdiction)
            rows.append(
                [
                    row.call_id or "",
                    start,
                    calling,
                    called,
                    duration,
                    format(row.rate, "f"),
                    format(row.cost, "f"),
                    "USD",
                    juris,
                    row.destination,
                    row.ref,
                ]
            )
        if layout == "local":
            with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
                writer.writerow(header)
                writer.writerows(rows)
        else:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(rows)
        return [row.ref for row in self.rows]


def _national(number: str | None) -> str:
    """How a US switch writes a number: 10 digits at home, 011 + digits abroad."""
    if not number:
        return ""
    return number[2:] if number.startswith("+1") else "011" + number[1:]


def mapping_yaml(vendor: str, layout: str = "plain", extra: str = "") -> str:
    start = (
        'start_time: {format: "%m/%d/%Y %H:%M:%S", timezone: America/New_York}\nduration_unit: milliseconds\n'
        if layout == "local"
        else 'start_time: {format: "%Y-%m-%d %H:%M:%S", timezone: UTC}\n'
        + ('duration_unit: "mm:ss"\n' if layout == "minutes" else "duration_unit: seconds\n")
    )
    return (
        f"vendor_id: {vendor}\ncurrency: USD\n"
        "columns: {call_id: CallID, start_time: Start, calling: ANI, called: DNIS, duration: Dur, rate: Rate,\n"
        "          cost: Charge, currency: Cur, jurisdiction: Juris, destination: Dest}\n"
        + start
        + "jurisdictions: {INTER: interstate, INTRA: intrastate}\n"
        + extra
    )

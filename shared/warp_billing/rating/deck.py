"""Rate decks: CSV import with validation, and the compiled longest-prefix index.

A deck row prices one prefix for one validity window (contracts.md section 1). The
compiled ``RateDeck`` answers "which row prices this number at this instant": among
rows whose window contains the instant, the longest matching prefix wins, so a
longer prefix that is not yet (or no longer) valid never hides a valid shorter one.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Iterator

from ..money import RATE_MAX_PLACES, ZERO, MoneyError, to_decimal
from ..timeutil import InstantError, parse_boundary

RATE_COLUMNS = ("rate", "interstate_rate", "intrastate_rate", "indeterminate_rate")
REQUIRED_COLUMNS = ("prefix", "effective_date")
MAX_INCREMENT_S = 3600
MAX_ERRORS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class DeckRow:
    """One priced prefix and validity window.

    Attributes:
        prefix: digits of the E.164 number without '+'.
        effective: first instant the row applies (aware, UTC for bare dates).
        end: first instant it no longer applies, or None (open-ended).
        rate, interstate_rate, intrastate_rate, indeterminate_rate: per minute or per
            message; None when the cell is blank.
        first_increment, next_increment: seconds, or None for the plan default.
        connect_fee: added once per answered call.
        row_number: line in the source file (the header is line 1).
    """

    prefix: str
    destination: str
    rate: Decimal | None
    interstate_rate: Decimal | None
    intrastate_rate: Decimal | None
    indeterminate_rate: Decimal | None
    effective: datetime
    end: datetime | None
    first_increment: int | None
    next_increment: int | None
    connect_fee: Decimal
    row_number: int

    def valid_at(self, instant: datetime) -> bool:
        return self.effective <= instant and (self.end is None or instant < self.end)


@dataclass(frozen=True, slots=True)
class DeckIssue:
    """One import problem, located by file, row and column."""

    source: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.source} row {self.row} column {self.column}: {self.message}"


class DeckError(ValueError):
    """A deck that cannot be imported; ``issues`` lists every problem found."""

    def __init__(self, issues: list[DeckIssue]):
        self.issues = issues
        shown = "\n".join(str(issue) for issue in issues[:MAX_ERRORS_SHOWN])
        more = len(issues) - MAX_ERRORS_SHOWN
        if more > 0:
            shown += f"\n... and {more} more"
        super().__init__(shown)


class RateDeck:
    """A compiled deck: prefix -> rows ordered by effective instant."""

    __slots__ = ("name", "_index", "_longest", "_shortest", "row_count")

    def __init__(self, rows: Iterable[DeckRow], name: str = "deck"):
        index: dict[str, list[DeckRow]] = {}
        count = 0
        for row in rows:
            index.setdefault(row.prefix, []).append(row)
            count += 1
        self.name = name
        self.row_count = count
        self._index: dict[str, tuple[DeckRow, ...]] = {
            prefix: tuple(sorted(group, key=_effective_key)) if len(group) > 1 else (group[0],)
            for prefix, group in index.items()
        }
        lengths = [len(prefix) for prefix in self._index] or [0]
        self._longest = max(lengths)
        self._shortest = max(1, min(lengths))

    def find(self, digits: str, instant: datetime) -> DeckRow | None:
        """The longest-prefix row valid at ``instant`` for ``digits``, or None."""
        get = self._index.get
        for length in range(min(len(digits), self._longest), self._shortest - 1, -1):
            rows = get(digits[:length])
            if rows is not None:
                for row in rows:
                    if row.effective <= instant and (row.end is None or instant < row.end):
                        return row
        return None

    def rows(self) -> Iterator[DeckRow]:
        for group in self._index.values():
            yield from group

    def prefixes(self) -> int:
        return len(self._index)


def _effective_key(row: DeckRow) -> datetime:
    return row.effective


def load_deck(path: str | os.PathLike[str]) -> RateDeck:
    """Import and compile a deck CSV; raise DeckError naming every bad file/row/column."""
    source = os.fspath(path)
    try:
        handle = open(source, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DeckError([DeckIssue(source, 0, "-", f"cannot open: {exc.strerror}")]) from None
    with handle:
        rows = list(read_deck_rows(handle, source))
    return RateDeck(rows, name=os.path.basename(source))


def read_deck_rows(lines: Iterable[str], source: str) -> Iterator[DeckRow]:
    """Parse and validate deck rows; raise DeckError with every problem at the end."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise DeckError([DeckIssue(source, 1, "-", "empty file: no header row")])
    columns = {name.strip().lower(): position for position, name in enumerate(header)}
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if not any(name in columns for name in RATE_COLUMNS):
        missing.append("rate (or a jurisdiction rate column)")
    if missing:
        raise DeckError([DeckIssue(source, 1, name, "required column missing") for name in missing])

    parser = _RowParser(source, columns)
    rows: list[DeckRow] = []
    for row_number, cells in enumerate(reader, start=2):
        if not cells or all(not cell.strip() for cell in cells):
            continue
        row = parser.parse(cells, row_number)
        if row is not None:
            rows.append(row)
    parser.check_overlaps(rows)
    if parser.issues:
        raise DeckError(parser.issues)
    return iter(rows)


@dataclass
class _RowParser:
    source: str
    columns: dict[str, int]
    issues: list[DeckIssue] = field(default_factory=list)
    _instants: dict[str, datetime] = field(default_factory=dict)
    _decimals: dict[str, Decimal] = field(default_factory=dict)

    def _cell(self, cells: list[str], name: str) -> str:
        position = self.columns.get(name)
        if position is None or position >= len(cells):
            return ""
        return cells[position].strip()

    def _fail(self, row: int, column: str, message: str) -> None:
        self.issues.append(DeckIssue(self.source, row, column, message))

    def _money(self, cells: list[str], name: str, row: int) -> Decimal | None:
        text = self._cell(cells, name)
        if not text:
            return None
        cached = self._decimals.get(text)
        if cached is not None:
            return cached
        try:
            value = to_decimal(text, field=name, max_places=RATE_MAX_PLACES)
        except MoneyError as exc:
            self._fail(row, name, str(exc).split(": ", 1)[-1])
            return None
        if value < 0:
            self._fail(row, name, f"{text!r} is negative")
            return None
        self._decimals[text] = value
        return value

    def _instant(self, cells: list[str], name: str, row: int) -> datetime | None:
        text = self._cell(cells, name)
        if not text:
            return None
        cached = self._instants.get(text)
        if cached is not None:
            return cached
        try:
            value = parse_boundary(text)
        except InstantError as exc:
            self._fail(row, name, str(exc))
            return None
        self._instants[text] = value
        return value

    def _increment(self, cells: list[str], name: str, row: int) -> int | None:
        text = self._cell(cells, name)
        if not text:
            return None
        if not text.isdigit() or not 1 <= int(text) <= MAX_INCREMENT_S:
            self._fail(row, name, f"{text!r} is not a whole number of seconds from 1 to {MAX_INCREMENT_S}")
            return None
        return int(text)

    def parse(self, cells: list[str], row: int) -> DeckRow | None:
        before = len(self.issues)
        prefix = self._cell(cells, "prefix").lstrip("+")
        if not prefix:
            self._fail(row, "prefix", "blank")
        elif not (prefix.isascii() and prefix.isdigit()) or len(prefix) > 15:
            self._fail(row, "prefix", f"{prefix!r} is not 1 to 15 digits")
        rates = [self._money(cells, name, row) for name in RATE_COLUMNS]
        if all(rate is None for rate in rates) and len(self.issues) == before:
            self._fail(row, "rate", "no rate: rate and every jurisdiction rate are blank")
        effective = self._instant(cells, "effective_date", row)
        if effective is None and not self._cell(cells, "effective_date"):
            self._fail(row, "effective_date", "blank")
        end = self._instant(cells, "end_date", row)
        if effective is not None and end is not None and end <= effective:
            self._fail(row, "end_date", f"{end.isoformat()} is not after effective_date {effective.isoformat()}")
        first = self._increment(cells, "first_increment", row)
        following = self._increment(cells, "next_increment", row)
        connect_fee = self._money(cells, "connect_fee", row)
        if len(self.issues) != before or effective is None:
            return None
        return DeckRow(
            prefix=prefix,
            destination=self._cell(cells, "destination"),
            rate=rates[0],
            interstate_rate=rates[1],
            intrastate_rate=rates[2],
            indeterminate_rate=rates[3],
            effective=effective,
            end=end,
            first_increment=first,
            next_increment=following,
            connect_fee=connect_fee if connect_fee is not None else ZERO,
            row_number=row,
        )

    def check_overlaps(self, rows: list[DeckRow]) -> None:
        """Two rows for one prefix whose windows overlap: an error naming both rows."""
        by_prefix: dict[str, list[DeckRow]] = {}
        for row in rows:
            by_prefix.setdefault(row.prefix, []).append(row)
        for prefix, group in by_prefix.items():
            if len(group) < 2:
                continue
            group.sort(key=_effective_key)
            latest_end = group[0]
            for row in group[1:]:
                if latest_end.end is None or latest_end.end > row.effective:
                    self._fail(
                        row.row_number,
                        "effective_date",
                        f"prefix {prefix} window overlaps row {latest_end.row_number} "
                        f"(rows {latest_end.row_number} and {row.row_number})",
                    )
                if latest_end.end is not None and (row.end is None or row.end > latest_end.end):
                    latest_end = row

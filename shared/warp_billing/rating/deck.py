"""Rate decks: CSV import with validation, and the compiled longest-prefix index.

A deck row prices one prefix for one validity window (contracts.md section 1). The
compiled ``RateDeck`` answers "which row prices this number at this instant": among
rows whose window contains the instant, the longest matching prefix wins, so a
longer prefix that is not yet (or no longer) valid never hides a valid shorter one.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..money import RATE_MAX_PLACES, ZERO, MoneyError, to_decimal
from ..timeutil import InstantError, parse_boundary

RATE_COLUMNS = ("rate", "interstate_rate", "intrastate_rate", "indeterminate_rate")
REQUIRED_COLUMNS = ("prefix", "effective_date")
MAX_INCREMENT_S = 3600
MAX_ERRORS_SHOWN = 50
STEM = 4


@dataclass(slots=True, eq=False)
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

    __slots__ = ("name", "_index", "_depth", "_shortest", "row_count")

    def __init__(self, rows: Iterable[DeckRow], name: str = "deck"):
        # A prefix with one window maps straight to its row (the common case, and half the
        # memory of a one-element tuple); several windows map to a tuple in effective order.
        index: dict[str, DeckRow | tuple[DeckRow, ...]] = {}
        count = 0
        for row in rows:
            count += 1
            known = index.get(row.prefix)
            if known is None:
                index[row.prefix] = row
            elif isinstance(known, tuple):
                index[row.prefix] = tuple(sorted((*known, row), key=_effective_key))
            else:
                index[row.prefix] = tuple(sorted((known, row), key=_effective_key))
        self.name = name
        self.row_count = count
        self._index = index
        # Longest prefix length under each 4-digit stem: a lookup starts probing there
        # instead of at the deck's global longest prefix (2 probes for a US number, not 5).
        depth: dict[str, int] = {}
        for prefix in index:
            stem = prefix[:STEM]
            if len(prefix) > depth.get(stem, 0):
                depth[stem] = len(prefix)
        self._depth = depth
        self._shortest = max(1, min((len(prefix) for prefix in index), default=1))

    def find(self, digits: str, instant: datetime) -> DeckRow | None:
        """The longest-prefix row valid at ``instant`` for ``digits``, or None."""
        get = self._index.get
        longest = self._depth.get(digits[:STEM], STEM - 1)
        for length in range(min(len(digits), longest), self._shortest - 1, -1):
            hit = get(digits[:length])
            if hit is None:
                continue
            if not isinstance(hit, tuple):
                if hit.effective <= instant and (hit.end is None or instant < hit.end):
                    return hit
                continue
            for row in hit:
                if row.effective <= instant and (row.end is None or instant < row.end):
                    return row
        return None

    def rows(self) -> Iterator[DeckRow]:
        for entry in self._index.values():
            if isinstance(entry, tuple):
                yield from entry
            else:
                yield entry

    def prefixes(self) -> int:
        return len(self._index)


def _effective_key(row: DeckRow) -> datetime:
    return row.effective


def load_deck(path: str | os.PathLike[str]) -> RateDeck:
    """Import and compile a deck CSV; raise DeckError naming every bad file/row/column."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise DeckError([DeckIssue(source, 0, "-", f"cannot open: {exc.strerror}")]) from None
    return RateDeck(read_deck_rows(io.StringIO(decode_deck(data, source), newline=""), source),
                    name=os.path.basename(source))


def decode_deck(data: bytes, source: str) -> str:
    """A deck's bytes as text (UTF-8, an optional BOM); DeckError names the line and byte offset."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start:exc.start + 1].hex()
        problem = f"line {line}, byte offset {exc.start}: byte 0x{bad} is not UTF-8 (save the deck as UTF-8)"
        raise DeckError([DeckIssue(source, line, "-", problem)]) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DeckError([DeckIssue(source, line, "-", f"line {line}, byte offset {nul}: a NUL byte; a binary file, "
                                                      "not a CSV deck")])
    return text


def read_deck_rows(lines: Iterable[str], source: str) -> Iterator[DeckRow]:
    """Parse and validate deck rows; raise DeckError with every problem at the end."""
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DeckError([DeckIssue(source, 1, "-", f"not a CSV file: {exc}")]) from None
    if header is None:
        raise DeckError([DeckIssue(source, 1, "-", "empty file: no header row")])
    columns: dict[str, int] = {}
    for position, name in enumerate(header):
        key = name.strip().lower()
        if key in columns and key:
            problem = f"column appears twice in the header (columns {columns[key] + 1} and {position + 1})"
            raise DeckError([DeckIssue(source, 1, key, problem)])
        columns[key] = position
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if not any(name in columns for name in RATE_COLUMNS):
        missing.append("rate (or a jurisdiction rate column)")
    if missing:
        raise DeckError([DeckIssue(source, 1, name, "required column missing") for name in missing])

    parser = _RowParser(source, columns)
    rows: list[DeckRow] = []
    row_number = 1
    try:
        for row_number, cells in enumerate(reader, start=2):
            if not cells or (not cells[0].strip() and not "".join(cells).strip()):
                continue
            row = parser.parse(cells, row_number)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise DeckError([*parser.issues, DeckIssue(source, row_number + 1, "-", f"not a CSV file: {exc}")]) from None
    parser.check_overlaps(rows)
    if parser.issues:
        raise DeckError(parser.issues)
    return iter(rows)


_COLUMN_ORDER = (
    "prefix", "destination", *RATE_COLUMNS, "effective_date", "end_date", "first_increment", "next_increment",
    "connect_fee",
)


@dataclass
class _RowParser:
    """Validates rows; values seen before (rates, dates) are parsed once and shared."""

    source: str
    columns: dict[str, int]
    issues: list[DeckIssue] = field(default_factory=list)
    _instants: dict[str, datetime] = field(default_factory=dict)
    _decimals: dict[str, Decimal] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._positions = tuple(self.columns.get(name, -1) for name in _COLUMN_ORDER)

    def _fail(self, row: int, column: str, message: str) -> None:
        self.issues.append(DeckIssue(self.source, row, column, message))

    def _money(self, text: str, name: str, row: int) -> Decimal | None:
        if not text:
            return None
        value = self._decimals.get(text)
        if value is not None:
            return value
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

    def _instant(self, text: str, name: str, row: int) -> datetime | None:
        if not text:
            return None
        value = self._instants.get(text)
        if value is not None:
            return value
        try:
            value = parse_boundary(text)
        except InstantError as exc:
            self._fail(row, name, str(exc))
            return None
        self._instants[text] = value
        return value

    def _increment(self, text: str, name: str, row: int) -> int | None:
        if not text:
            return None
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_INCREMENT_S:
            self._fail(row, name, f"{text!r} is not a whole number of seconds from 1 to {MAX_INCREMENT_S}")
            return None
        return int(text)

    def parse(self, cells: list[str], row: int) -> DeckRow | None:
        width = len(cells)
        (prefix, destination, rate, interstate, intrastate, indeterminate,
         effective_text, end_text, first_text, next_text, fee_text) = [
            cells[position].strip() if 0 <= position < width else "" for position in self._positions
        ]
        before = len(self.issues)
        prefix = prefix.lstrip("+")
        if not prefix:
            self._fail(row, "prefix", "blank")
        elif not (prefix.isascii() and prefix.isdigit()) or len(prefix) > 15:
            self._fail(row, "prefix", f"{prefix!r} is not 1 to 15 digits")
        money = self._money
        rates = (
            money(rate, "rate", row),
            money(interstate, "interstate_rate", row),
            money(intrastate, "intrastate_rate", row),
            money(indeterminate, "indeterminate_rate", row),
        )
        if rates == (None, None, None, None) and len(self.issues) == before:
            self._fail(row, "rate", "no rate: rate and every jurisdiction rate are blank")
        effective = self._instant(effective_text, "effective_date", row)
        if not effective_text:
            self._fail(row, "effective_date", "blank")
        end = self._instant(end_text, "end_date", row)
        if effective is not None and end is not None and end <= effective:
            self._fail(row, "end_date", f"{end.isoformat()} is not after effective_date {effective.isoformat()}")
        first = self._increment(first_text, "first_increment", row)
        following = self._increment(next_text, "next_increment", row)
        connect_fee = money(fee_text, "connect_fee", row)
        if len(self.issues) != before or effective is None:
            return None
        return DeckRow(
            prefix, self._names.setdefault(destination, destination), *rates, effective, end, first, following,
            connect_fee if connect_fee is not None else ZERO, row,
        )

    def check_overlaps(self, rows: list[DeckRow]) -> None:
        """Two rows for one prefix whose windows overlap: an error naming both rows."""
        first: dict[str, DeckRow] = {}
        repeated: dict[str, list[DeckRow]] = {}
        for row in rows:
            other = first.setdefault(row.prefix, row)
            if other is not row:
                repeated.setdefault(row.prefix, [other]).append(row)
        for prefix, group in repeated.items():
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

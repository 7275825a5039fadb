"""Reconciliation on one machine: DuckDB loads the vendor's files and our rated usage, then runs
the shared matching query (``reconciliation.matching_sql``), spilling to disk past its memory limit.

Loading is also how the cloud function normalises a vendor's files before they go to BigQuery
(``normalise_vendor_files``): one implementation of the mapping (zones, units, number formats).
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..reconciliation.mapping import MappingError, VendorMapping, offset_minutes
from ..reconciliation.matching_sql import EXACT, ITEM_COLUMNS, matching_query, offset_query
from ..reconciliation.outcome import LoadReport, MatchOutcome

EPOCH = date(1970, 1, 1)
DOMESTIC = ("interstate", "intrastate", "indeterminate", "tollfree")
VENDOR_CDR_COLUMNS = (
    "source_file, source_line, source_file || ':' || CAST(source_line AS VARCHAR) AS record_id, call_id, start_ms, "
    "calling, called, duration_ms, billed_s, rate, cost, jurisdiction, dest"
)


class ReconInputError(ValueError):
    """A vendor or rated file that cannot be read (missing, wrong encoding, missing column)."""


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def digits_sql(expr: str) -> str:
    """The digits of a phone number text (computed once per number: see ``e164_sql``)."""
    return f"regexp_replace(COALESCE({expr}, ''), '[^0-9]', '', 'g')"


def e164_sql(expr: str, country: str, digits: str | None = None) -> str:
    """An expression normalising a phone number text to E.164 digits (NULL when unusable).

    ``digits`` names a column already holding ``digits_sql(expr)``; without it the regular
    expression is repeated in every branch (fine for a few rows, not for millions)."""
    digits = digits or digits_sql(expr)
    plus = f"starts_with(ltrim(COALESCE({expr}, '')), '+')"
    national = f"'{country}' || {digits}"
    return f"""(CASE
      WHEN length({digits}) < 3 THEN NULL
      WHEN {plus} THEN {digits}
      WHEN starts_with({digits}, '00') THEN substr({digits}, 3)
      WHEN '{country}' = '1' AND starts_with({digits}, '011') THEN substr({digits}, 4)
      WHEN '{country}' = '1' AND length({digits}) = 10 THEN {national}
      WHEN '{country}' <> '1' AND starts_with({digits}, '0') THEN '{country}' || substr({digits}, 2)
      ELSE {digits} END)"""


def _duration_ms(expr: str, unit: str) -> str:
    if unit == "milliseconds":
        return f"CAST(round(TRY_CAST(trim({expr}) AS DECIMAL(18, 3))) AS BIGINT)"
    if unit == "seconds":
        return f"CAST(round(TRY_CAST(trim({expr}) AS DECIMAL(18, 3)) * 1000) AS BIGINT)"
    parts = f"string_split(trim({expr}), ':')"
    seconds = (
        f"(CASE WHEN len({parts}) = 2 THEN TRY_CAST({parts}[1] AS BIGINT) * 60 "
        f"+ TRY_CAST({parts}[2] AS DECIMAL(18, 3)) "
        f"WHEN len({parts}) = 3 THEN TRY_CAST({parts}[1] AS BIGINT) * 3600 "
        f"+ TRY_CAST({parts}[2] AS BIGINT) * 60 + TRY_CAST({parts}[3] AS DECIMAL(18, 3)) END)"
    )
    return f"CAST(round({seconds} * 1000) AS BIGINT)"


def _start_ms(expr: str, mapping: VendorMapping) -> str:
    fmt = mapping.start_time.format
    parsed = f"TRY_STRPTIME(trim({expr}), {_quote(fmt)})"
    if "%z" in fmt or "%Z" in fmt:
        return f"epoch_ms({parsed})"
    zone = mapping.start_time.timezone
    minutes = offset_minutes(zone)
    if minutes is not None:
        return f"(epoch_ms({parsed}) - {minutes * 60_000})"
    return f"epoch_ms(timezone({_quote(zone)}, {parsed}))"


def _jurisdiction(expr: str | None, mapping: VendorMapping) -> str:
    if expr is None:
        return "CAST(NULL AS VARCHAR)"
    cases = " ".join(
        f"WHEN upper(trim({expr})) = {_quote(theirs.upper())} THEN {_quote(ours)}"
        for theirs, ours in mapping.jurisdictions.items()
    )
    ours = ", ".join(
        _quote(name) for name in ("interstate", "intrastate", "indeterminate", "international", "tollfree")
    )
    return (
        f"(CASE {cases} WHEN lower(trim({expr})) IN ({ours}) THEN lower(trim({expr})) "
        f"ELSE NULLIF(trim({expr}), '') END)"
    )


@dataclass
class DuckDBReconEngine:
    """Vendor files and rated usage in one DuckDB database (in memory, spilling to ``spill_dir``)."""

    memory_limit: str = "3GB"
    threads: int | None = None
    spill_dir: str | None = None
    _db: Any = field(default=None, init=False, repr=False)
    _spill: Any = field(default=None, init=False, repr=False)
    _not_exact: set[tuple[str | None, str | None]] = field(default_factory=set, init=False, repr=False)

    @property
    def db(self):
        if self._db is None:
            import duckdb  # noqa: PLC0415 - loaded only when a reconciliation runs

            if self.spill_dir is None:
                self._spill = tempfile.TemporaryDirectory(prefix="warp-recon-spill-")
                self.spill_dir = self._spill.name
            self._db = duckdb.connect(
                ":memory:",
                config={
                    "memory_limit": self.memory_limit,
                    "temp_directory": self.spill_dir,
                    "threads": self.threads or max(1, os.cpu_count() or 1),
                    # results need no order unless asked (ORDER BY); only the vendor load keeps
                    # the file's order, for the line numbers (``load_vendor`` turns it on there)
                    "preserve_insertion_order": False,
                },
            )
            # The loaded tables are held as written (no compression checkpoint): at ten million
            # rows a side compressing them cost more time than the spilling it saved, measured in
            # BENCHMARKS.md; past the memory limit DuckDB moves their blocks to ``spill_dir``.
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None

    # -- loading ----------------------------------------------------------------------------------

    def load_vendor(
        self,
        mapping: VendorMapping,
        paths: Sequence[str],
        period_start_ms: int,
        period_end_ms: int,
        names: Sequence[str] | None = None,
    ) -> LoadReport:
        """Read and normalise the vendor's files into ``vendor_cdrs`` (bad rows into ``vendor_rejects``).

        ``names`` are how the records refer to their files (object names); default the paths."""
        db = self.db
        db.execute("SET preserve_insertion_order = true")
        try:
            return self._load_vendor(mapping, paths, period_start_ms, period_end_ms, names)
        finally:
            db.execute("SET preserve_insertion_order = false")

    def _load_vendor(
        self,
        mapping: VendorMapping,
        paths: Sequence[str],
        period_start_ms: int,
        period_end_ms: int,
        names: Sequence[str] | None,
    ) -> LoadReport:
        import duckdb  # noqa: PLC0415 - loaded only when a reconciliation runs

        db = self.db
        for name in ("vendor_cdrs", "vendor_rejects", "vendor_lines"):
            db.execute(f"DROP VIEW IF EXISTS {name}")
        db.execute("DROP TABLE IF EXISTS vendor_checked")
        labels: list[str] = []
        bases: list[int] = []
        for number, path in enumerate(paths):
            if not os.path.isfile(path):
                raise ReconInputError(f"vendor CDR file {path} does not exist")
            delimiter = mapping.delimiter_for(path)
            options = (
                f"delim={_quote(delimiter)}, header={str(mapping.header).lower()}, all_varchar=true, "
                f"quote='\"', escape='\"', encoding={_quote(mapping.encoding)}, strict_mode=false, "
                f"null_padding=true"
            )
            source = f"read_csv({_quote(path)}, {options})"
            try:
                columns = [row[0] for row in db.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
                self._check_columns(mapping, columns, path)
                labels.append(names[number] if names is not None else str(path))
                # rows keep the file's order (insertion order is preserved), so the rowid gives the
                # line: no whole-file window, which would run on one thread, and no raw copy
                bases.append(db.execute("SELECT count(*) FROM vendor_checked").fetchone()[0] if number else 0)
                select = self._checked_select(mapping, number, source, period_start_ms, period_end_ms)
                if number == 0:
                    db.execute(f"CREATE TABLE vendor_checked AS {select}")
                else:
                    db.execute(f"INSERT INTO vendor_checked {select}")
            except duckdb.Error as exc:
                raise ReconInputError(f"vendor CDR file {path}: {str(exc).splitlines()[0]}") from None
        # the file name and line of a record are read off its file number and rowid, not stored
        # ten million times; the record id (file:line) is built when read
        files = "[" + ", ".join(_quote(label) for label in labels) + "]"
        starts = "[" + ", ".join(str(base) for base in bases) + "]"
        first_line = 2 if mapping.header else 1
        db.execute(
            f"CREATE VIEW vendor_lines AS SELECT {files}[file_no + 1] AS source_file, "
            f"rowid - {starts}[file_no + 1] + {first_line} AS source_line, rowid AS record_key, * EXCLUDE (file_no) "
            "FROM vendor_checked"
        )
        db.execute(
            "CREATE VIEW vendor_rejects AS SELECT source_file, source_line, reason FROM vendor_lines "
            "WHERE reason IS NOT NULL"
        )
        db.execute(f"CREATE VIEW vendor_cdrs AS SELECT {VENDOR_CDR_COLUMNS} FROM vendor_lines WHERE reason IS NULL")
        loaded = db.execute("SELECT count(*) FROM vendor_checked WHERE reason IS NULL").fetchone()[0]
        rejected = dict(
            db.execute("SELECT reason, count(*) FROM vendor_rejects GROUP BY reason ORDER BY reason").fetchall()
        )
        return LoadReport(loaded, rejected)

    @staticmethod
    def _checked_select(
        mapping: VendorMapping, number: int, source: str, period_start_ms: int, period_end_ms: int
    ) -> str:
        """One pass over a vendor file: parse, normalise and check every row (the digits of each
        number computed once); ``reason`` is NULL for a good row, else why it is rejected."""
        c = mapping.columns
        col = _quote_ident
        currency = f"upper(trim({col(c.currency)}))" if c.currency else _quote(mapping.currency.upper())
        billed = (
            f"CAST(round(TRY_CAST(trim({col(c.billed_duration)}) AS DECIMAL(18, 3))) AS BIGINT)"
            if c.billed_duration
            else "CAST(NULL AS BIGINT)"
        )
        # Money is DECIMAL(18, 9): 64-bit and exact to the nano-unit, below a billion per call (a cost
        # above is BAD_COST); DECIMAL(38, 9) is 128-bit and made the 10M match about a quarter slower.
        rate = f"TRY_CAST(trim({col(c.rate)}) AS DECIMAL(18, 9))" if c.rate else "CAST(NULL AS DECIMAL(18, 9))"
        call_id = f"NULLIF(trim({col(c.call_id)}), '')" if c.call_id else "CAST(NULL AS VARCHAR)"
        jurisdiction = _jurisdiction(col(c.jurisdiction) if c.jurisdiction else None, mapping)
        destination = f"NULLIF(trim({col(c.destination)}), '')" if c.destination else "CAST(NULL AS VARCHAR)"
        country = mapping.default_country
        reason = f"""CASE
  WHEN start_ms IS NULL THEN 'BAD_START_TIME'
  WHEN called IS NULL OR length(called) > 15 THEN 'BAD_NUMBER'
  WHEN duration_ms IS NULL OR duration_ms < 0 OR duration_ms >= 86400000 THEN 'BAD_DURATION'
  WHEN cost IS NULL OR cost < 0 THEN 'BAD_COST'
  WHEN currency IS DISTINCT FROM {_quote(mapping.currency.upper())} THEN 'BAD_CURRENCY'
  WHEN start_ms < {period_start_ms} OR start_ms >= {period_end_ms} THEN 'OUT_OF_PERIOD'
  END"""
        dest = (
            f"CASE WHEN jurisdiction IN ({', '.join(_quote(d) for d in DOMESTIC)}) THEN jurisdiction "
            f"ELSE COALESCE(destination, jurisdiction, 'unknown') END"
        )
        return f"""
SELECT CAST({number} AS INTEGER) AS file_no, call_id, start_ms, calling, called, duration_ms, billed_s, rate, cost,
       jurisdiction, {dest} AS dest, {reason} AS reason
FROM (
  SELECT {call_id} AS call_id,
         {_start_ms(col(c.start_time), mapping)} AS start_ms,
         {e164_sql(col(c.calling), country, "calling_digits")} AS calling,
         {e164_sql(col(c.called), country, "called_digits")} AS called,
         {_duration_ms(col(c.duration), mapping.duration_unit)} AS duration_ms,
         {billed} AS billed_s,
         {rate} AS rate,
         TRY_CAST(trim({col(c.cost)}) AS DECIMAL(18, 9)) AS cost,
         {currency} AS currency,
         {jurisdiction} AS jurisdiction,
         {destination} AS destination
  FROM (SELECT *, {digits_sql(col(c.calling))} AS calling_digits, {digits_sql(col(c.called))} AS called_digits
        FROM {source})
)"""

    @staticmethod
    def _check_columns(mapping: VendorMapping, columns: list[str], path: str) -> None:
        missing = [
            f"{key} ({name!r})" for key, name in mapping.columns.model_dump().items() if name and name not in columns
        ]
        if missing:
            raise MappingError(
                f"{path}: columns named in the mapping are not in the file: {', '.join(missing)} "
                f"(the file has {', '.join(columns)})"
            )

    def load_ours(self, rated_paths: Sequence[str], vendor_id: str, period_start_ms: int, period_end_ms: int) -> int:
        """Our rated voice events for ``vendor_id`` with a vendor cost, in the period, into ``our_cdrs``."""
        import duckdb  # noqa: PLC0415 - loaded only when a reconciliation runs

        for path in rated_paths:
            if not os.path.isfile(path):
                raise ReconInputError(f"rated file {path} does not exist")
        files = "[" + ", ".join(_quote(str(path)) for path in rated_paths) + "]"
        spec = (
            "{event_id: 'VARCHAR', status: 'VARCHAR', kind: 'VARCHAR', vendor_id: 'VARCHAR', "
            "start_time: 'VARCHAR', duration_s: 'BIGINT', calling_number: 'VARCHAR', called_number: 'VARCHAR', "
            "call_id: 'VARCHAR', vendor_cost: 'VARCHAR', vendor_rate: 'VARCHAR', vendor_billed_units: 'BIGINT', "
            "jurisdiction: 'VARCHAR', destination: 'VARCHAR'}"
        )
        source = f"read_json({files}, format='newline_delimited', columns={spec}, maximum_object_size=1048576)"
        self.db.execute("DROP TABLE IF EXISTS our_cdrs")
        select = f"""
WITH rated AS (
  SELECT event_id, epoch_ms(CAST(start_time AS TIMESTAMPTZ)) AS start_ms, duration_s, calling_number, called_number,
         call_id, vendor_cost, vendor_rate, vendor_billed_units, jurisdiction, destination,
         {digits_sql("calling_number")} AS calling_digits, {digits_sql("called_number")} AS called_digits
  FROM {{source}}
  WHERE status = 'rated' AND kind = 'voice' AND vendor_id = {_quote(vendor_id)} AND vendor_cost IS NOT NULL
        AND duration_s > 0
)
SELECT event_id AS record_id, NULLIF(call_id, '') AS call_id, start_ms,
       {e164_sql("calling_number", "1", "calling_digits")} AS calling,
       {e164_sql("called_number", "1", "called_digits")} AS called,
       duration_s * 1000 AS duration_ms, vendor_billed_units AS billed_s,
       CAST(vendor_rate AS DECIMAL(18, 9)) AS rate, CAST(vendor_cost AS DECIMAL(18, 9)) AS cost, jurisdiction,
       CASE WHEN jurisdiction IN ({", ".join(_quote(d) for d in DOMESTIC)}) THEN jurisdiction
            ELSE COALESCE(destination, jurisdiction, 'unknown') END AS dest
FROM rated
WHERE start_ms >= {period_start_ms} AND start_ms < {period_end_ms}"""
        try:
            self.db.execute("CREATE TABLE our_cdrs AS " + select.replace("{source}", source))
            # a redelivered event is kept once (its earliest start); checked first, because the
            # window that keeps one of each sorts every event and redeliveries are rare
            repeated = self.db.execute(
                "SELECT count(*) FROM (SELECT record_id FROM our_cdrs GROUP BY record_id HAVING count(*) > 1)"
            ).fetchone()[0]
            if repeated:
                self.db.execute(
                    "CREATE TABLE our_cdrs_once AS SELECT * FROM our_cdrs "
                    "QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY start_ms) = 1"
                )
                self.db.execute("DROP TABLE our_cdrs")
                self.db.execute("ALTER TABLE our_cdrs_once RENAME TO our_cdrs")
        except duckdb.Error as exc:
            raise ReconInputError(f"rated file: {str(exc).splitlines()[0]}") from None
        return self.db.execute("SELECT count(*) FROM our_cdrs").fetchone()[0]

    # -- matching ---------------------------------------------------------------------------------

    def match(self, mapping: VendorMapping) -> MatchOutcome:
        db = self.db
        db.execute("DROP TABLE IF EXISTS recon_items")
        db.execute(
            "CREATE TABLE recon_items AS "
            + matching_query(
                f"(SELECT {VENDOR_CDR_COLUMNS}, record_key FROM vendor_lines WHERE reason IS NULL)",
                "(SELECT *, rowid AS record_key FROM our_cdrs)",
                mapping.match_tolerances,
                materialized=True,
                fingerprint="hash({})",
            )
        )
        # one pass for the per-destination sums and the paired records per day (the day numbered
        # from the epoch: formatting ten million dates costs more than the rest of the pass)
        grouped = db.execute("""
SELECT dest, class,
       CASE WHEN event_id IS NOT NULL AND vendor_record IS NOT NULL THEN our_start_ms // 86400000 END AS day,
       count(*), COALESCE(sum(our_duration_ms), 0), COALESCE(sum(their_duration_ms), 0),
       COALESCE(sum(our_cost), 0), COALESCE(sum(their_cost), 0)
FROM recon_items GROUP BY ALL""").fetchall()
        sums: dict[tuple[str, str], list[Any]] = {}
        per_day: dict[tuple[str, str], int] = {}
        for dest, klass, day, n, our_ms, their_ms, our_cost, their_cost in grouped:
            total = sums.setdefault((dest, klass), [0, 0, 0, Decimal(0), Decimal(0)])
            total[0] += int(n)
            total[1] += int(our_ms)
            total[2] += int(their_ms)
            total[3] += Decimal(our_cost)
            total[4] += Decimal(their_cost)
            if day is not None:
                key = (dest, (EPOCH + timedelta(days=int(day))).isoformat())
                per_day[key] = per_day.get(key, 0) + int(n)
        # the few items that are not exact, kept apart: the analysis reads them and items.csv
        # appends them, neither scanning the ten million exact ones again
        db.execute(f"CREATE OR REPLACE TABLE recon_exceptions AS SELECT * FROM recon_items WHERE class <> '{EXACT}'")
        exceptions = self._rows(
            "SELECT * FROM recon_exceptions ORDER BY class, dest, our_start_ms, their_start_ms, event_id, vendor_record"
        )
        self._not_exact = {(row["event_id"], row["vendor_record"]) for row in exceptions}
        pairs = self._rows(offset_query("recon_items"))
        return MatchOutcome(
            aggregates=[
                (dest, klass, int(t[0]), int(t[1]), int(t[2]), Decimal(t[3]), Decimal(t[4]))
                for (dest, klass), t in sorted(sums.items())
            ],
            exceptions=exceptions,
            offset_pairs=pairs,
            paired_per_day=per_day,
        )

    def _rows(self, sql: str) -> list[dict]:
        cursor = self.db.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def items(self) -> Iterator[dict]:
        """Every item, in a stable order (for tests and small runs)."""
        yield from self._rows("SELECT * FROM recon_items ORDER BY class, event_id, vendor_record")

    def write_items_csv(self, path: str, hints: dict[tuple[str | None, str | None], str]) -> int:
        """items.csv: every item with its hint, written by DuckDB straight from the table."""
        db = self.db
        db.execute("DROP TABLE IF EXISTS item_hints")
        db.execute("CREATE TABLE item_hints (event_id VARCHAR, vendor_record VARCHAR, hint VARCHAR)")
        if hints:
            # through a CSV file: row-by-row inserts of a few hundred thousand hints take minutes
            staging = Path(self.spill_dir or tempfile.gettempdir()) / "item-hints.csv"
            with open(staging, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerows((event, vendor, hint) for (event, vendor), hint in hints.items())
            db.execute(
                f"INSERT INTO item_hints SELECT * FROM read_csv({_quote(str(staging))}, header=false, "
                "columns={'event_id': 'VARCHAR', 'vendor_record': 'VARCHAR', 'hint': 'VARCHAR'}, "
                "quote='\"', escape='\"')"
            )
            staging.unlink()
        columns = ", ".join(f"i.{name}" for name in ITEM_COLUMNS if name != "class")
        target = Path(path)
        temporary = target.with_name(f".{target.name}.partial")
        rest = target.with_name(f".{target.name}.rest")
        key = "COALESCE({0}.event_id, '') || '|' || COALESCE({0}.vendor_record, '')"
        # Rows in class order. 'exact' sorts first: those (nearly all) rows go out as stored, no
        # sort; only when some of them carry a hint (paired records far apart in time: an offset)
        # are they joined on their two ids with those few hints. The other classes are joined
        # with their hints, sorted by class and appended.
        if any(item not in self._not_exact for item in hints):
            exact = f"""
SELECT i.class, {columns}, COALESCE(h.hint, '') AS cause_hint
FROM (SELECT * FROM recon_items WHERE class = '{EXACT}') AS i
LEFT JOIN (SELECT * FROM item_hints WHERE event_id IS NOT NULL AND vendor_record IS NOT NULL) AS h
  ON h.event_id = i.event_id AND h.vendor_record = i.vendor_record"""
        else:
            exact = f"SELECT i.class, {columns}, '' AS cause_hint FROM recon_items AS i WHERE i.class = '{EXACT}'"
        db.execute(f"COPY ({exact}) TO {_quote(str(temporary))} (HEADER, DELIMITER ',')")
        db.execute(f"""COPY (
SELECT i.class, {columns}, COALESCE(h.hint, '') AS cause_hint
FROM recon_exceptions AS i
LEFT JOIN (SELECT {key.format("item_hints")} AS k, hint FROM item_hints) AS h ON h.k = {key.format("i")}
ORDER BY i.class
) TO {_quote(str(rest))} (HEADER false, DELIMITER ',')""")
        with open(temporary, "ab") as out, open(rest, "rb") as more:
            shutil.copyfileobj(more, out, 1 << 20)
        rest.unlink()
        os.replace(temporary, target)
        return db.execute("SELECT count(*) FROM recon_items").fetchone()[0]

    def release_inputs(self) -> None:
        """Drop both loaded sides once matched (the rejected vendor rows are kept): the items are
        written next, and the memory the sides held is what keeps them from spilling to disk."""
        db = self.db
        db.execute("CREATE OR REPLACE TABLE vendor_rejects_kept AS SELECT * FROM vendor_rejects")
        for view in ("vendor_cdrs", "vendor_rejects", "vendor_lines"):
            db.execute(f"DROP VIEW IF EXISTS {view}")
        db.execute("CREATE VIEW vendor_rejects AS SELECT * FROM vendor_rejects_kept")
        db.execute("DROP TABLE IF EXISTS vendor_checked")
        db.execute("DROP TABLE IF EXISTS our_cdrs")

    def vendor_rejects(self) -> list[dict]:
        return self._rows("SELECT * FROM vendor_rejects ORDER BY source_file, source_line")

    def normalised_vendor_rows(self) -> list[dict]:
        """The normalised vendor rows (what the cloud function loads into BigQuery ``vendor_cdrs``)."""
        return self._rows("SELECT * FROM vendor_cdrs ORDER BY source_file, source_line")

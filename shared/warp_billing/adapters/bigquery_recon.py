"""Reconciliation in the cloud: the shared matching query, transpiled by sqlglot to BigQuery,
over ``rated_usage`` and ``vendor_cdrs``; results in ``recon_items``, ``recon_runs``, ``disputes``.

Every write is keyed by the run id (``<vendor>-<period>``): a re-run deletes its own rows before
writing them again, and a dispute row is written once per run id (MERGE), so a daily re-run of a
period never opens a second dispute.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from ..reconciliation.analysis import Reconciliation
from ..reconciliation.mapping import VendorMapping
from ..reconciliation.matching_sql import EXACT, ITEM_COLUMNS, NORMALISED_COLUMNS, matching_query, offset_query
from ..reconciliation.outcome import MatchOutcome
from .bigquery_usage import RATED_USAGE, TableSpec, _BigQueryDataset, deduplicated
from .duckdb_recon import e164_sql

# A vendor_cdrs row: the normalised match columns with the file and line they came from.
VENDOR_ROW_COLUMNS = ("source_file", "source_line", *NORMALISED_COLUMNS)

VENDOR_CDRS = TableSpec("vendor_cdrs", "event_date", ("vendor_id",), ("record_id",), ("rate", "cost"))
RECON_ITEMS = TableSpec("recon_items", "period_start", ("vendor_id", "class"), ("run_id", "event_id", "vendor_record"))
RECON_RUNS = TableSpec("recon_runs", "period_start", ("vendor_id",), ("run_id",))
DISPUTES = TableSpec("disputes", "period_start", ("vendor_id",), ("dispute_id",))
RECON_TABLES = (VENDOR_CDRS, RECON_ITEMS, RECON_RUNS, DISPUTES)
DOMESTIC = ("interstate", "intrastate", "indeterminate", "tollfree")
VENDOR_SIDE, OUR_SIDE = "vendor_side_relation", "our_side_relation"


def to_bigquery(sql: str) -> str:
    """The DuckDB-dialect query as BigQuery SQL (sqlglot)."""
    import logging  # noqa: PLC0415

    import sqlglot  # noqa: PLC0415 - the transpiler is needed only by the cloud engine

    # DuckDB's regexp_replace(..., 'g') is BigQuery's REGEXP_REPLACE (always global); sqlglot
    # warns that it drops the flag, which is exactly right here
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    return sqlglot.transpile(sql, read="duckdb", write="bigquery")[0]


def _number(column: str) -> str:
    """The E.164 normalisation the DuckDB loader applies, as BigQuery SQL (one source)."""
    return to_bigquery(f"SELECT {e164_sql(column, '1')} AS n").removeprefix("SELECT ").removesuffix(" AS n")


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


class BigQueryReconEngine(_BigQueryDataset):
    """The matching engine on BigQuery (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        settings: Any = None,
        *,
        vendor_id: str,
        period: str,
        period_start: date,
        period_end: date,
        **options: Any,
    ):
        super().__init__(client, settings, **options)
        self.vendor_id, self.period = vendor_id, period
        self.period_start, self.period_end = period_start, period_end
        self.run_id = f"{vendor_id}-{period}"

    def ensure_recon_schema(self) -> None:
        self.ensure_schema((RATED_USAGE, *RECON_TABLES))

    # -- loading ----------------------------------------------------------------------------------

    def load_vendor_rows(self, rows: Sequence[dict], files: Iterable[str]) -> int:
        """Replace the rows of these files for this vendor and period by ``rows`` (normalised)."""
        files = sorted(set(files))
        if files:
            self._run(
                f"DELETE FROM `{self.table_ref(VENDOR_CDRS)}` WHERE {self._days('event_date')} "
                f"AND vendor_id = {_literal(self.vendor_id)} AND period = {_literal(self.period)} "
                f"AND source_file IN ({', '.join(_literal(f) for f in files)})"
            )
        if not rows:
            return 0
        loaded_at = datetime.now(UTC).isoformat()
        lines = []
        for row in rows:
            day = datetime.fromtimestamp(int(row["start_ms"]) / 1000, tz=UTC).date().isoformat()
            record = {key: _json_value(row[key]) for key in VENDOR_ROW_COLUMNS}
            record.update(vendor_id=self.vendor_id, period=self.period, event_date=day, loaded_at=loaded_at)
            lines.append(orjson.dumps(record))
        self._load(VENDOR_CDRS, b"\n".join(lines) + b"\n")
        return len(rows)

    def _load(self, spec: TableSpec, ndjson: bytes) -> None:
        from google.cloud import bigquery  # noqa: PLC0415 - cloud SDK only inside the adapter

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            schema=[bigquery.SchemaField.from_api_repr(field) for field in spec.schema_json()],
        )
        job = self.client.load_table_from_file(io.BytesIO(ndjson), self.table_ref(spec), job_config=config)
        job.result(timeout=self.deadline_s)

    def _days(self, column: str) -> str:
        # the partition filter every query on these tables must carry (end exclusive)
        return f"{column} >= DATE '{self.period_start.isoformat()}' AND {column} < DATE '{self.period_end.isoformat()}'"

    def _run(self, sql: str) -> list[dict]:
        job = self.client.query(sql, retry=self._retry(), timeout=self.deadline_s)
        return [dict(row.items()) for row in job.result(timeout=self.deadline_s)]

    # -- the two sides ------------------------------------------------------------------------------

    def vendor_relation(self) -> str:
        return (
            f"(SELECT record_id, FARM_FINGERPRINT(record_id) AS record_key, call_id, start_ms, calling, called, "
            f"duration_ms, billed_s, rate, cost, jurisdiction, dest, source_file, source_line "
            f"FROM `{self.table_ref(VENDOR_CDRS)}` "
            f"WHERE {self._days('event_date')} AND vendor_id = {_literal(self.vendor_id)} "
            f"AND period = {_literal(self.period)})"
        )

    def our_relation(self) -> str:
        rated = deduplicated(self.table_ref(RATED_USAGE), RATED_USAGE, self._days("event_date"))
        domestic = ", ".join(_literal(d) for d in DOMESTIC)
        return (
            f"(SELECT event_id AS record_id, FARM_FINGERPRINT(event_id) AS record_key, "
            f"NULLIF(call_id, '') AS call_id, UNIX_MILLIS(start_time) AS start_ms, "
            f"{_number('calling_number')} AS calling, {_number('called_number')} AS called, "
            f"duration_s * 1000 AS duration_ms, vendor_billed_units AS billed_s, vendor_rate AS rate, "
            f"vendor_cost AS cost, jurisdiction, "
            f"CASE WHEN jurisdiction IN ({domestic}) THEN jurisdiction "
            f"ELSE COALESCE(destination, jurisdiction, 'unknown') END AS dest "
            f"FROM ({rated}) WHERE kind = 'voice' AND vendor_id = {_literal(self.vendor_id)} "
            f"AND vendor_cost IS NOT NULL AND duration_s > 0)"
        )

    def matching_sql(self, mapping: VendorMapping) -> str:
        sql = to_bigquery(matching_query(VENDOR_SIDE, OUR_SIDE, mapping.match_tolerances))
        return sql.replace(VENDOR_SIDE, self.vendor_relation()).replace(OUR_SIDE, self.our_relation())

    def our_count(self) -> int:
        return int(self._run(f"SELECT COUNT(*) AS n FROM {self.our_relation()} AS o")[0]["n"])

    # -- matching ---------------------------------------------------------------------------------

    def _items(self) -> str:
        return (
            f"(SELECT * FROM `{self.table_ref(RECON_ITEMS)}` WHERE {self._days('period_start')} "
            f"AND run_id = {_literal(self.run_id)})"
        )

    def match(self, mapping: VendorMapping) -> MatchOutcome:
        table = self.table_ref(RECON_ITEMS)
        self._run(f"DELETE FROM `{table}` WHERE {self._days('period_start')} AND run_id = {_literal(self.run_id)}")
        columns = ", ".join(f"`{name}`" for name in ITEM_COLUMNS)
        self._run(
            f"INSERT INTO `{table}` (run_id, vendor_id, period_start, {columns}, cause_hint) "
            f"SELECT {_literal(self.run_id)}, {_literal(self.vendor_id)}, DATE '{self.period_start}', "
            f"{columns}, CAST(NULL AS STRING) FROM ({self.matching_sql(mapping)})"
        )
        items = self._items()
        aggregates = self._run(
            f"SELECT dest, class, COUNT(*) AS n, COALESCE(SUM(our_duration_ms), 0) AS om, "
            f"COALESCE(SUM(their_duration_ms), 0) AS tm, COALESCE(SUM(our_cost), 0) AS oc, "
            f"COALESCE(SUM(their_cost), 0) AS tc FROM {items} AS i GROUP BY dest, class ORDER BY dest, class"
        )
        per_day = self._run(
            f"SELECT dest, FORMAT_DATE('%Y-%m-%d', DATE(TIMESTAMP_MILLIS(our_start_ms))) AS day, COUNT(*) AS n "
            f"FROM {items} AS i WHERE event_id IS NOT NULL AND vendor_record IS NOT NULL GROUP BY dest, day"
        )
        exceptions = [
            {name: row.get(name) for name in ITEM_COLUMNS}
            for row in self._run(
                f"SELECT * FROM {items} AS i WHERE class <> '{EXACT}' "
                f"ORDER BY class, dest, our_start_ms, their_start_ms, event_id, vendor_record"
            )
        ]
        pairs = self._run(to_bigquery(offset_query("recon_items_relation")).replace("recon_items_relation", items))
        return MatchOutcome(
            aggregates=[
                (r["dest"], r["class"], int(r["n"]), int(r["om"]), int(r["tm"]), Decimal(r["oc"]), Decimal(r["tc"]))
                for r in aggregates
            ],
            exceptions=exceptions,
            offset_pairs=pairs,
            paired_per_day={(r["dest"], r["day"]): int(r["n"]) for r in per_day},
        )

    def items(self) -> list[dict]:
        return self._run(f"SELECT * FROM {self._items()} AS i ORDER BY class, event_id, vendor_record")

    # -- results ----------------------------------------------------------------------------------

    def record_hints(self, hints: dict[tuple[str | None, str | None], str]) -> None:
        """Write each record's cause hint into ``recon_items`` (one UPDATE per hint code)."""
        table = self.table_ref(RECON_ITEMS)
        by_code: dict[str, list[tuple[str | None, str | None]]] = {}
        for key, code in hints.items():
            by_code.setdefault(code, []).append(key)
        for code, keys in by_code.items():
            conditions = " OR ".join(
                "("
                + " AND ".join(
                    f"{column} = {_literal(value)}" if value is not None else f"{column} IS NULL"
                    for column, value in (("event_id", event), ("vendor_record", vendor))
                )
                + ")"
                for event, vendor in keys
            )
            self._run(
                f"UPDATE `{table}` SET cause_hint = {_literal(code)} WHERE {self._days('period_start')} "
                f"AND run_id = {_literal(self.run_id)} AND ({conditions})"
            )

    def record_run(self, recon: Reconciliation, outputs: dict[str, str]) -> None:
        summary = recon.summary()
        record = {
            "run_id": recon.run_id,
            "vendor_id": recon.vendor_id,
            "period_start": self.period_start.isoformat(),
            "period": recon.period,
            "ran_at": datetime.now(UTC).isoformat(),
            "dispute": recon.decision.dispute,
            "reason": recon.decision.reason,
            "summary": orjson.dumps(summary).decode(),
            "outputs": orjson.dumps(outputs).decode(),
        }
        self._run(
            f"DELETE FROM `{self.table_ref(RECON_RUNS)}` WHERE {self._days('period_start')} "
            f"AND run_id = {_literal(recon.run_id)}"
        )
        self._load(RECON_RUNS, orjson.dumps(record) + b"\n")

    def open_dispute(self, recon: Reconciliation, package: dict[str, str]) -> bool:
        """Record the dispute once per run id; True when this call opened it."""
        table = self.table_ref(DISPUTES)
        dispute_id = f"vendor-dispute:{recon.run_id}"
        existing = self._run(
            f"SELECT dispute_id FROM `{table}` WHERE {self._days('period_start')} "
            f"AND dispute_id = {_literal(dispute_id)}"
        )
        if existing:
            return False
        total = recon.total.figures
        record = {
            "dispute_id": dispute_id,
            "vendor_id": recon.vendor_id,
            "period_start": self.period_start.isoformat(),
            "period": recon.period,
            "opened_at": datetime.now(UTC).isoformat(),
            "status": "open",
            "reason": recon.decision.reason,
            "disputed_records": len(recon.disputed),
            "cost_ours": format(total.our_cost, "f"),
            "cost_theirs": format(total.their_cost, "f"),
            "package": orjson.dumps(package).decode(),
            "send_to": recon.send_to,
        }
        self._load(DISPUTES, orjson.dumps(record) + b"\n")
        return True

    def items_csv(self) -> bytes:
        """items.csv as the CLI writes it (class, ids, both sides' figures, cause hint)."""
        import csv  # noqa: PLC0415

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*ITEM_COLUMNS, "cause_hint"])
        for row in self._run(
            f"SELECT * FROM {self._items()} AS i "
            f"ORDER BY class, dest, COALESCE(our_start_ms, their_start_ms), event_id, vendor_record"
        ):
            writer.writerow(
                ["" if row.get(name) is None else _json_value(row[name]) for name in (*ITEM_COLUMNS, "cause_hint")]
            )
        return out.getvalue().encode("utf-8")

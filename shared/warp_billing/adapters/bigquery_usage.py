"""Rated usage, rejects and the balance ledger on BigQuery (``UsageStore`` and ``LedgerStore``).

Tables (one schema definition: the JSON files in ``bigquery_schemas/``, which Terraform's
``google_bigquery_table`` resources load too):

* ``rated_usage``   partitioned by DAY on ``event_date`` (UTC day of start_time), clustered by
  ``customer_id``; insertId = event_id.
* ``usage_rejects`` partitioned by DAY on ``event_date``, clustered by ``customer_id``;
  insertId = reject_id.
* ``balance_ledger`` partitioned by DAY on ``at``, clustered by ``customer_id``; insertId = entry_id.

Delivery is at least once, and BigQuery's insertId deduplication is best effort (about a
minute; the local emulator has none), so every read here goes through ``deduplicated()``: a
``QUALIFY ROW_NUMBER() OVER (PARTITION BY <key> ORDER BY inserted_at) = 1`` that keeps the
first write of each key. Every query filters on the partition column (the tables also
require it), so a daily rollup scans one day, not the history.

Money crosses this module as decimal strings into NUMERIC columns and comes back as the same
strings; a float is refused before anything is sent. The client is built on first use (or
passed in), never at import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

from ..charging.errors import TransientCode, TransientError
from ..money import MoneyError, format_rate, to_decimal
from ..ports import LedgerEntry, PermanentStoreError, chunks
from ..timeutil import InstantError, parse_instant
from .lazy_client import LazyClient

INSERT_BATCH = 500  # rows per insertAll request (BigQuery's recommended maximum)
NUMERIC_MAX_PLACES = 9
NUMERIC_MAX_INTEGER_DIGITS = 29
LEDGER_EPOCH = date(2000, 1, 1)


class UsageRecordError(PermanentStoreError):
    """A record that cannot become a row (a float or malformed amount, a missing key): permanent.

    Attributes:
        table: the table the record was meant for.
        key: its idempotency key, when it had one.
    """

    def __init__(self, table: str, key: str | None, problem: str):
        super().__init__(f"{table} row {key or '(no key)'}: {problem}")
        self.table, self.key = table, key


class BigQueryInsertError(TransientError):
    """BigQuery failed some rows of an insert for a reason a retry can cure (backend error, timeout).

    The writes are idempotent by insertId and deduplicated on read, so the caller retries the
    whole batch (the charging service turns this into a redelivery).

    Attributes:
        table: the table written to.
        row_errors: BigQuery's per-row errors ({"index": i, "errors": [...]}).
    """

    def __init__(self, table: str, row_errors: list[dict]):
        first = row_errors[0] if row_errors else {}
        super().__init__(_unavailable(table), f"{table}: {len(row_errors)} row(s) failed; first: {first}")
        self.table, self.row_errors = table, row_errors


class BigQueryRowsRefused(PermanentStoreError):
    """BigQuery refused rows for their content (reason ``invalid``: too large, bad value): never retried."""

    def __init__(self, table: str, detail: str):
        super().__init__(f"{table}: {detail}")
        self.table = table


# insertAll row-error reasons that describe the row itself (the others, e.g. backendError, are transient).
_PERMANENT_ROW_REASONS = {"invalid", "stopped"}


def classify_insert_failure(table: str, error: Exception) -> Exception:
    """The port's verdict on an insertAll call that raised: permanent (4xx but 408/429) or transient."""
    status = getattr(error, "code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return BigQueryRowsRefused(table, f"HTTP {status}: {error}")
    return TransientError(_unavailable(table), f"{table}: {type(error).__name__}: {error}")


def _unavailable(table: str) -> TransientCode:
    if table == "balance_ledger":
        return TransientCode.LEDGER_STORE_UNAVAILABLE
    return TransientCode.USAGE_STORE_UNAVAILABLE


class SchemaMismatch(RuntimeError):
    """An existing table whose partitioning or clustering differs from ours (needs a migration)."""


@dataclass(frozen=True)
class TableSpec:
    """How one table is laid out: its schema file, partition column and clustering."""

    name: str
    partition_field: str
    clustering: tuple[str, ...]
    dedup_key: tuple[str, ...]
    money_columns: tuple[str, ...] = ()

    def schema_json(self) -> list[dict]:
        return load_schema_json(self.name)


RATED_USAGE = TableSpec("rated_usage", "event_date", ("customer_id",), ("event_id",),
                        ("rate", "amount", "vendor_cost", "margin_pct", "vendor_rate"))
USAGE_REJECTS = TableSpec("usage_rejects", "event_date", ("customer_id",), ("reject_id",))
BALANCE_LEDGER = TableSpec("balance_ledger", "at", ("customer_id",), ("customer_id", "entry_id"))
# The cycle close's tables (adapters/bigquery_close.py).
USAGE_HOURLY = TableSpec("usage_hourly", "hour", ("customer_id",), ("customer_id", "hour", "kind", "sub_kind"),
                         ("amount", "vendor_cost"))
CYCLE_RUNS = TableSpec("cycle_runs", "run_date", ("customer_id",), ("run_id", "customer_id", "period"))
TABLES = {spec.name: spec for spec in (RATED_USAGE, USAGE_REJECTS, BALANCE_LEDGER, USAGE_HOURLY, CYCLE_RUNS)}

# Places each money column is written with in the record (contracts.md section 5); NUMERIC hands
# back 9 places, trimmed to these so a row reads back as the exact string that was written.
_RECORD_PLACES = {"amount": 6, "vendor_cost": 6, "margin_pct": 2}


def load_schema_json(table: str) -> list[dict]:
    """The BigQuery JSON schema of ``table`` (package data shared with Terraform)."""
    text = resources.files(__package__).joinpath("bigquery_schemas", f"{table}.json").read_text("utf-8")
    return json.loads(text)


def bigquery_client(project: str, endpoint: str | None = None, location: str | None = None):
    """A BigQuery client: the real API, or an emulator at ``endpoint`` with anonymous credentials."""
    from google.cloud import bigquery

    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(project=project, location=location, credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": endpoint})
    return bigquery.Client(project=project, location=location)


def deduplicated(table_ref: str, spec: TableSpec, where: str) -> str:
    """SQL selecting the first write of each key of ``table_ref`` among rows matching ``where``.

    ``where`` must filter on the partition column; the caller binds its parameters.
    """
    if spec.partition_field not in where:
        raise ValueError(f"{spec.name}: the filter must use the partition column {spec.partition_field}")
    key = ", ".join(spec.dedup_key)
    return (f"SELECT * FROM `{table_ref}` WHERE {where} "
            f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY inserted_at) = 1")


class _BigQueryDataset:
    """The dataset both stores live in, and the client they share (built once, lazily)."""

    def __init__(self, client: Any, settings: Any = None, *, project: str | None = None,
                 dataset: str | None = None, location: str = "US", deadline_s: float = 60.0):
        """``client`` is a ``bigquery.Client`` or a zero-argument callable that builds one on first use.

        ``settings`` (``warp_billing.settings.Settings``) supplies the project and dataset
        unless ``project`` / ``dataset`` are given.
        """
        self._client = LazyClient(client)
        self.project = project or getattr(settings, "bigquery_project_id", None)
        self.dataset = dataset or getattr(settings, "bigquery_dataset", None)
        if not self.project or not self.dataset:
            raise ValueError("BigQuery stores need a project and a dataset (settings or arguments)")
        self.location = location
        self.deadline_s = deadline_s

    @property
    def client(self):
        return self._client.get()

    def table_ref(self, spec: TableSpec) -> str:
        return f"{self.project}.{self.dataset}.{spec.name}"

    def _retry(self):
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_deadline(self.deadline_s)

    def ensure_schema(self, specs: Sequence[TableSpec] = tuple(TABLES.values())) -> None:
        """Create the dataset and tables if missing; add new nullable columns; idempotent.

        An existing table with other partitioning or clustering raises ``SchemaMismatch``
        (BigQuery cannot change those in place).
        """
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
        dataset.location = self.location
        self.client.create_dataset(dataset, exists_ok=True, retry=self._retry(), timeout=self.deadline_s)
        for spec in specs:
            wanted = [bigquery.SchemaField.from_api_repr(field) for field in spec.schema_json()]
            table = bigquery.Table(self.table_ref(spec), schema=wanted)
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=spec.partition_field)
            table.clustering_fields = list(spec.clustering)
            table.require_partition_filter = True
            existing = self.client.create_table(table, exists_ok=True, retry=self._retry(), timeout=self.deadline_s)
            self._check_layout(spec, existing)
            have = {field.name for field in existing.schema}
            missing = [field for field in wanted if field.name not in have]
            if missing:
                if any(field.mode == "REQUIRED" for field in missing):
                    raise SchemaMismatch(f"{spec.name}: cannot add REQUIRED column(s) to an existing table: "
                                         f"{[f.name for f in missing if f.mode == 'REQUIRED']}")
                existing.schema = list(existing.schema) + missing
                self.client.update_table(existing, ["schema"], retry=self._retry(), timeout=self.deadline_s)

    @staticmethod
    def _check_layout(spec: TableSpec, table) -> None:
        partitioning = table.time_partitioning
        field = partitioning.field if partitioning is not None else None
        if field != spec.partition_field or list(table.clustering_fields or []) != list(spec.clustering):
            raise SchemaMismatch(
                f"{spec.name}: partitioned by {field!r} and clustered by {table.clustering_fields!r}, "
                f"expected {spec.partition_field!r} and {list(spec.clustering)!r}")

    def _insert(self, spec: TableSpec, rows: list[dict], row_ids: list[str]) -> None:
        """insertAll in batches; raises ``BigQueryRowsRefused`` (permanent) or a ``TransientError``."""
        table = self.table_ref(spec)
        for batch in chunks(range(len(rows)), INSERT_BATCH):
            try:
                errors = self.client.insert_rows_json(
                    table, [rows[i] for i in batch], row_ids=[row_ids[i] for i in batch],
                    retry=self._retry(), timeout=self.deadline_s)
            except Exception as exc:  # HTTP / transport failure: classified here, at the port
                raise classify_insert_failure(spec.name, exc) from exc
            if errors:
                reasons = {error.get("reason") for row in errors for error in row.get("errors", [])}
                if reasons and reasons <= _PERMANENT_ROW_REASONS and "invalid" in reasons:
                    raise BigQueryRowsRefused(spec.name, f"{len(errors)} row(s) invalid; first: {errors[0]}")
                raise BigQueryInsertError(spec.name, list(errors))

    def _query(self, sql: str, parameters: list) -> Iterator[Any]:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=parameters)
        job = self.client.query(sql, job_config=config, retry=self._retry(), timeout=self.deadline_s)
        yield from job.result(timeout=self.deadline_s)


def _day_parameters(first_day: date, last_day: date) -> list:
    from google.cloud import bigquery

    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    return [bigquery.ScalarQueryParameter("first_day", "DATE", first_day),
            bigquery.ScalarQueryParameter("last_day", "DATE", last_day)]


def _customer_filter(customer_id: str | None, parameters: list) -> str:
    if customer_id is None:
        return ""
    from google.cloud import bigquery

    parameters.append(bigquery.ScalarQueryParameter("customer_id", "STRING", customer_id))
    return " AND customer_id = @customer_id"


@dataclass(frozen=True)
class UsageTotal:
    """Deduplicated totals of rated usage for one customer and kind over a range of days.

    Attributes:
        amount, vendor_cost: exact sums of the NUMERIC columns (Decimal).
    """

    customer_id: str
    kind: str
    events: int
    billed_units: int
    amount: Decimal
    vendor_cost: Decimal


class BigQueryUsageStore(_BigQueryDataset):
    """``UsageStore`` on ``rated_usage`` and ``usage_rejects``, with deduplicated reads for rollups."""

    def insert_rated(self, records: Sequence[Mapping]) -> None:
        """Stream rated records (``RatedEvent.to_record()``); insertId = event_id."""
        now = _timestamp(datetime.now(UTC))
        rows = [_rated_row(record, now) for record in records]
        self._insert(RATED_USAGE, rows, [row["event_id"] for row in rows])

    def insert_rejects(self, records: Sequence[Mapping]) -> None:
        """Stream reject records (``RejectedEvent.to_record()`` + delivery fields); insertId = reject_id."""
        received = datetime.now(UTC)
        rows = [_reject_row(record, received) for record in records]
        self._insert(USAGE_REJECTS, rows, [row["reject_id"] for row in rows])

    def rated_event_ids(self, keys: Sequence[tuple[str, str]]) -> set[str]:
        """Event ids among (event_id, UTC start day) that have a rated row: RAW rows (any copy counts)."""
        from google.cloud import bigquery

        if not keys:
            return set()
        found: set[str] = set()
        for batch in chunks(sorted(set(keys)), 1000):
            parameters = [bigquery.ArrayQueryParameter("days", "DATE", sorted({day for _, day in batch})),
                          bigquery.ArrayQueryParameter("ids", "STRING", sorted({event_id for event_id, _ in batch}))]
            sql = (f"SELECT DISTINCT event_id FROM `{self.table_ref(RATED_USAGE)}` "
                   "WHERE event_date IN UNNEST(@days) AND event_id IN UNNEST(@ids)")
            found |= {row["event_id"] for row in self._query(sql, parameters)}
        return found

    def rated_amounts(self, customer_id: str, first_day: str, last_day: str) -> Iterator[tuple[str, str, str]]:
        """(event_id, start_time, amount) of the customer's rated rows, first write of each event_id."""
        parameters = _day_parameters(date.fromisoformat(first_day), date.fromisoformat(last_day))
        where = "event_date BETWEEN @first_day AND @last_day" + _customer_filter(customer_id, parameters)
        sql = deduplicated(self.table_ref(RATED_USAGE), RATED_USAGE, where)
        for row in self._query(sql, parameters):
            yield row["event_id"], _iso(row["start_time"]) or "", format(row["amount"], "f")

    def rated_records(self, first_day: date, last_day: date, customer_id: str | None = None) -> Iterator[dict]:
        """Rated records of event days ``first_day``..``last_day`` (UTC), one per event_id, as written."""
        parameters = _day_parameters(first_day, last_day)
        where = "event_date BETWEEN @first_day AND @last_day" + _customer_filter(customer_id, parameters)
        sql = deduplicated(self.table_ref(RATED_USAGE), RATED_USAGE, where) + " ORDER BY start_time, event_id"
        for row in self._query(sql, parameters):
            yield _record_from_rated_row(row)

    def reject_records(self, first_day: date, last_day: date, customer_id: str | None = None) -> Iterator[dict]:
        """Rejects of event days ``first_day``..``last_day``, one per reject_id."""
        parameters = _day_parameters(first_day, last_day)
        where = "event_date BETWEEN @first_day AND @last_day" + _customer_filter(customer_id, parameters)
        sql = deduplicated(self.table_ref(USAGE_REJECTS), USAGE_REJECTS, where) + " ORDER BY inserted_at, reject_id"
        for row in self._query(sql, parameters):
            # a BigQuery Row iterates its values, not its keys
            record = {key: row[key] for key in row.keys() if key not in ("event_date", "inserted_at")}  # noqa: SIM118
            record["received_at"] = _iso(record.get("received_at"))
            yield record

    def usage_totals(self, first_day: date, last_day: date, customer_id: str | None = None) -> list[UsageTotal]:
        """Per customer and kind: events, billed units, amount and vendor cost, duplicates excluded."""
        parameters = _day_parameters(first_day, last_day)
        where = "event_date BETWEEN @first_day AND @last_day" + _customer_filter(customer_id, parameters)
        sql = (f"WITH rated AS ({deduplicated(self.table_ref(RATED_USAGE), RATED_USAGE, where)}) "
               "SELECT customer_id, kind, COUNT(*) AS events, SUM(billed_units) AS billed_units, "
               "SUM(amount) AS amount, SUM(vendor_cost) AS vendor_cost "
               "FROM rated GROUP BY customer_id, kind ORDER BY customer_id, kind")
        return [UsageTotal(row["customer_id"], row["kind"], row["events"], row["billed_units"] or 0,
                           row["amount"] or Decimal(0), row["vendor_cost"] or Decimal(0))
                for row in self._query(sql, parameters)]

    def row_count(self, spec: TableSpec, first_day: date, last_day: date) -> int:
        """Physical rows (duplicates included) in a range of partitions: for checks and tests."""
        column = spec.partition_field
        day = f"DATE(`{column}`)" if column == "at" else column
        sql = f"SELECT COUNT(*) AS n FROM `{self.table_ref(spec)}` WHERE {day} BETWEEN @first_day AND @last_day"
        return next(iter(self._query(sql, _day_parameters(first_day, last_day))))["n"]


class BigQueryLedgerStore(_BigQueryDataset):
    """``LedgerStore`` on ``balance_ledger``: the persisted movements Redis balances are rebuilt from."""

    def append(self, entries: Sequence[LedgerEntry]) -> None:
        """Stream entries in order; insertId = entry_id (a repeated append is read back once)."""
        now = _timestamp(datetime.now(UTC))
        rows = [_ledger_row(entry, position, now) for position, entry in enumerate(entries)]
        self._insert(BALANCE_LEDGER, rows, [row["entry_id"] for row in rows])

    def entries(self, customer_id: str | None = None, *, since: date = LEDGER_EPOCH,
                until: date | None = None) -> Iterator[LedgerEntry]:
        """Entries (one per entry_id) in the order they were made, for days ``since``..``until``.

        The defaults cover the whole ledger, as a balance rebuild needs; the range is still an
        explicit filter on the partition column, which the table requires.
        """
        from google.cloud import bigquery

        until = until or (datetime.now(UTC).date() + timedelta(days=1))
        parameters = [bigquery.ScalarQueryParameter("since", "TIMESTAMP", _midnight(since)),
                      bigquery.ScalarQueryParameter("until", "TIMESTAMP", _midnight(until + timedelta(days=1)))]
        # `at` is quoted: a plain identifier in BigQuery, a keyword in some SQL dialects (the emulator's).
        where = "`at` >= @since AND `at` < @until" + _customer_filter(customer_id, parameters)
        sql = (deduplicated(self.table_ref(BALANCE_LEDGER), BALANCE_LEDGER, where)
               + " ORDER BY `at`, inserted_at, batch_position, entry_id")
        for row in self._query(sql, parameters):
            yield _ledger_entry(row)

    def raw_entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        """EVERY row (no QUALIFY): duplicates and conflicting movements under one entry id included."""
        from google.cloud import bigquery

        until = datetime.now(UTC).date() + timedelta(days=2)
        parameters = [bigquery.ScalarQueryParameter("since", "TIMESTAMP", _midnight(LEDGER_EPOCH)),
                      bigquery.ScalarQueryParameter("until", "TIMESTAMP", _midnight(until))]
        where = "`at` >= @since AND `at` < @until" + _customer_filter(customer_id, parameters)
        sql = (f"SELECT * FROM `{self.table_ref(BALANCE_LEDGER)}` WHERE {where} "
               "ORDER BY `at`, inserted_at, batch_position, entry_id")
        for row in self._query(sql, parameters):
            yield _ledger_entry(row)


def _ledger_entry(row: Any) -> LedgerEntry:
    sequence = row.get("sequence") if hasattr(row, "get") else None
    return LedgerEntry(
        entry_id=row["entry_id"], customer_id=row["customer_id"], kind=row["kind"],
        amount_micros=row["amount_micros"], balance_after_micros=row["balance_after_micros"],
        at=_iso(row["at"]) or "", reference=row["reference"] or "", sequence=sequence)


# ------------------------------------------------------------------------------ row mapping


# contracts.md section 5: the call's identity (voice) and the message's numbers (messaging).
IDENTITY_COLUMNS = ("calling_number", "called_number", "lrn", "call_id", "trunk_id", "from_number", "to_number")
_IDENTITY_OF_KIND = {"voice": IDENTITY_COLUMNS[:5], "sms": IDENTITY_COLUMNS[5:], "mms": IDENTITY_COLUMNS[5:]}


def _rated_row(record: Mapping, inserted_at: str) -> dict:
    key = record.get("event_id")
    if not isinstance(key, str) or not key:
        raise UsageRecordError(RATED_USAGE.name, None, "event_id is missing")
    customer_id = record.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        raise UsageRecordError(RATED_USAGE.name, key, "customer_id is missing")
    try:
        start = parse_instant(record.get("start_time"))
    except InstantError as exc:
        raise UsageRecordError(RATED_USAGE.name, key, f"start_time: {exc}") from None
    row = {
        "event_id": key,
        "event_date": start.astimezone(UTC).date().isoformat(),
        "customer_id": customer_id,
        "kind": record.get("kind"),
        "start_time": _timestamp(start),
        "inserted_at": inserted_at,
    }
    for column in ("jurisdiction", "matched_prefix", "destination", "direction", "query_type", "vendor_id",
                   *IDENTITY_COLUMNS):
        row[column] = record.get(column)
    for column in ("duration_s", "billed_units", "vendor_billed_units"):
        value = record.get(column)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise UsageRecordError(RATED_USAGE.name, key, f"{column} must be an integer, got {value!r}")
        row[column] = value
    for column in RATED_USAGE.money_columns:
        row[column] = _numeric(record.get(column), RATED_USAGE.name, key, column)
    if row["amount"] is None:
        raise UsageRecordError(RATED_USAGE.name, key, "amount is missing")
    row["low_margin"] = bool(record.get("low_margin", False))
    return row


def _reject_row(record: Mapping, received: datetime) -> dict:
    key = record.get("reject_id") or record.get("event_id") or (
        f"message:{record['message_id']}" if record.get("message_id") else None)
    if not key:
        raise UsageRecordError(USAGE_REJECTS.name, None, "a reject needs a reject_id, event_id or message_id")
    if not record.get("reason"):
        raise UsageRecordError(USAGE_REJECTS.name, key, "reason is missing")
    received_at = _parsed_or(record.get("received_at"), received)
    start_time = record.get("start_time")
    day = _parsed_or(start_time, received_at).astimezone(UTC).date()
    return {
        "reject_id": key,
        "event_date": day.isoformat(),
        "customer_id": record.get("customer_id"),
        "event_id": record.get("event_id"),
        "message_id": record.get("message_id"),
        "kind": record.get("kind"),
        "reason": str(record["reason"]),
        "detail": record.get("detail"),
        "start_time": start_time if isinstance(start_time, str) else None,
        "received_at": _timestamp(received_at),
        "raw": record.get("raw"),
        "inserted_at": _timestamp(datetime.now(UTC)),
    }


def _ledger_row(entry: LedgerEntry, position: int, inserted_at: str) -> dict:
    for name in ("amount_micros", "balance_after_micros"):
        value = getattr(entry, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageRecordError(BALANCE_LEDGER.name, entry.entry_id, f"{name} must be integer micro-units")
    try:
        at = parse_instant(entry.at)
    except InstantError as exc:
        raise UsageRecordError(BALANCE_LEDGER.name, entry.entry_id, f"at: {exc}") from None
    return {
        "entry_id": entry.entry_id,
        "customer_id": entry.customer_id,
        "kind": entry.kind,
        "amount_micros": entry.amount_micros,
        "balance_after_micros": entry.balance_after_micros,
        "at": _timestamp(at),
        "reference": entry.reference,
        "sequence": entry.sequence,
        "batch_position": position,
        "inserted_at": inserted_at,
    }


def _numeric(value: object, table: str, key: str, column: str) -> str | None:
    """A money value as the decimal text BigQuery parses exactly into NUMERIC; floats refused."""
    if value is None:
        return None
    try:
        amount = to_decimal(value, field=column, max_places=NUMERIC_MAX_PLACES)
    except MoneyError as exc:
        raise UsageRecordError(table, key, str(exc)) from None
    if abs(amount) >= Decimal(10) ** NUMERIC_MAX_INTEGER_DIGITS:
        raise UsageRecordError(table, key, f"{column}: {value!r} is out of NUMERIC range")
    return format(amount, "f")


# voice: the vendor deck's rate and billed seconds, written only when the call had a vendor cost
_VENDOR_COLUMNS = ("vendor_rate", "vendor_billed_units")


def _record_from_rated_row(row: Any) -> dict:
    record = {key: row[key] for key in row.keys() if key not in ("event_date", "inserted_at")}  # noqa: SIM118 (a Row)
    record["status"] = "rated"
    record["start_time"] = _iso(record["start_time"])
    record["rate"] = format_rate(record["rate"]) if record["rate"] is not None else None
    for column in _VENDOR_COLUMNS:
        if record.get(column) is None:
            record.pop(column, None)
    if record.get("vendor_rate") is not None:
        record["vendor_rate"] = format_rate(record["vendor_rate"])
    for column, places in _RECORD_PLACES.items():
        record[column] = _trimmed(record[column], places)
    kept = _IDENTITY_OF_KIND.get(str(record.get("kind")), ())   # the identity fields warp rate writes for the kind
    for column in IDENTITY_COLUMNS:
        if column not in kept:
            record.pop(column, None)
    return record


def _trimmed(value: Decimal | None, min_places: int) -> str | None:
    """NUMERIC's 9-place value written with trailing zeros removed down to ``min_places``."""
    if value is None:
        return None
    text = format(value, "f")
    if "." not in text:
        return text + ("." + "0" * min_places if min_places else "")
    whole, fraction = text.split(".")
    fraction = fraction.rstrip("0").ljust(min_places, "0")
    return f"{whole}.{fraction}" if fraction else whole


def _parsed_or(value: object, fallback: datetime) -> datetime:
    try:
        return parse_instant(value)
    except InstantError:
        return fallback


def _timestamp(instant: datetime) -> str:
    """A TIMESTAMP value in BigQuery's canonical text form, in UTC, to the microsecond."""
    return instant.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    """An instant read back as ISO 8601 UTC: milliseconds when exact (as the charging clock writes)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds" if value.microsecond % 1000 == 0 else "microseconds")

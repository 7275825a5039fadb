"""The cycle close on BigQuery: usage lines by one query, the conservation check on raw rows,
the hourly MERGE into ``usage_hourly``, and ``cycle_runs`` rows.

``BigQueryRatedSource.close_usage`` (``RatedUsageSource``) runs ONE aggregation query for every
customer of a close. The windows go in as one ARRAY<STRUCT> parameter (customer, period, zone,
anchor day, watermark, previous watermark); in BigQuery each event's service period is its
start in the customer's own zone, shifted back by the anchor day, truncated to the month
(``2026-11`` with anchor 15 = 15 November .. 14 December local). Each ``event_id`` counts once
(its first write, ``QUALIFY ROW_NUMBER()``); the first write's ``inserted_at`` decides current,
late (prior-period) or next cycle (billing.close_usage). The partition column is filtered to
the days the windows (and the late-usage lookback) can reach. Python receives one row per
customer, service period and product line (voice lines: one per deck destination, which the
invoice's voice-by-destination table sums): never events.

The conservation check is a second, independent query on the raw rows (``GROUP BY event_id``
instead of the window function): per customer the amount and count of the same selection,
and the event_ids written twice with different amounts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from google.cloud import bigquery

from ..billing.close_usage import CloseUsage, CloseWindow, UnbillableUsageError, UsageBatch, check_group
from ..billing.usage_lines import CustomerUsage, UsageTotals
from ..products import VOICE, products
from .bigquery_usage import CYCLE_RUNS, RATED_USAGE, USAGE_HOURLY, _BigQueryDataset

log = logging.getLogger(__name__)
NO_PREVIOUS = datetime(9999, 12, 31, tzinfo=UTC)  # "no previous close": nothing is later than it

# The service period of a rated row in its customer's zone and anchor day; the sub-kind of its line.
_PERIOD = ("FORMAT_DATE('%Y-%m', DATE_SUB(DATE(r.start_time, w.zone), INTERVAL w.anchor_day - 1 DAY))")


def _sub_kind_sql() -> str:
    """Each product's line group in SQL, from the product table (voice: jurisdiction; messaging:
    direction, outbound when absent; API: query type). Field names are the table's own constants."""
    cases = []
    for item in products():
        if not (item.kind.isidentifier() and item.group_field.isidentifier()):
            raise ValueError(f"product {item.kind!r}: {item.group_field!r} is not a column name")
        column = f"r.{item.group_field}"
        if item.group_default is not None:
            column = f"COALESCE({column}, '{item.group_default}')"
        cases.append(f"WHEN '{item.kind}' THEN {column}")
    return f"CASE r.kind {' '.join(cases)} END"


_SUB_KIND = _sub_kind_sql()
# Voice lines also split by the deck destination they were priced at (the invoice's voice-by-destination
# table, as the file scan keys them; "" when the line names none); other kinds have no destination.
_DESTINATION = f"CASE WHEN r.kind = '{VOICE.kind}' THEN COALESCE(r.destination, '') END"
_WINDOWS = """windows AS (
  SELECT w.customer_id, w.period, w.zone, w.anchor_day, w.mark, w.previous_mark FROM UNNEST(@windows) AS w)"""
_SELECTED = ("inserted_at <= mark AND (service_period = period "
             "OR (service_period < period AND inserted_at > previous_mark))")


@dataclass(frozen=True)
class HourlyRollup:
    """What one ``hourly_rollup`` run did."""

    since: datetime
    until: datetime
    rows_merged: int


class BigQueryRatedSource(_BigQueryDataset):
    """``RatedUsageSource`` on ``rated_usage`` (see the module docstring)."""

    def __init__(self, client: Any, settings: Any = None, *, lookback_days: int | None = None, **kwargs):
        super().__init__(client, settings, **kwargs)
        self.lookback_days = lookback_days or getattr(settings, "late_usage_lookback_days", None) or 92

    def close_usage(self, windows: Sequence[CloseWindow]) -> UsageBatch:
        if not windows:
            return UsageBatch({})
        parameters = self._window_parameters(windows)
        table = self.table_ref(RATED_USAGE)
        lines_sql = f"""
WITH {_WINDOWS},
rated AS (
  SELECT r.customer_id, r.kind, {_SUB_KIND} AS sub_kind, {_DESTINATION} AS destination, r.billed_units,
         r.amount, r.vendor_cost, r.inserted_at, {_PERIOD} AS service_period, w.period, w.mark, w.previous_mark
  FROM `{table}` AS r JOIN windows AS w ON r.customer_id = w.customer_id
  WHERE r.event_date BETWEEN @first_day AND @last_day AND r.customer_id IN UNNEST(@customer_ids)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY r.event_id ORDER BY r.inserted_at) = 1)
SELECT customer_id, service_period, kind, sub_kind, destination, COUNT(*) AS events,
       SUM(billed_units) AS billed_units, SUM(amount) AS amount, SUM(vendor_cost) AS vendor_cost
FROM rated WHERE {_SELECTED}
GROUP BY customer_id, service_period, kind, sub_kind, destination
ORDER BY customer_id, service_period, kind, sub_kind, destination"""
        rows = list(self._query(lines_sql, parameters))
        usage, failures = _usage_from_lines(windows, rows)
        checks = self._conservation(parameters)
        for customer, check in checks.items():
            found = usage[customer]
            usage[customer] = CloseUsage(customer, found.current, found.prior, check["amount"], check["events"],
                                         check["conflicts"])
        for window in windows:
            if window.customer_id not in checks:  # no rated rows at all: zero, checked
                found = usage[window.customer_id]
                usage[window.customer_id] = CloseUsage(window.customer_id, found.current, found.prior,
                                                       Decimal(0), 0, 0)
        return UsageBatch(usage, failures, rows_returned=len(rows))

    def _conservation(self, parameters: list) -> dict[str, dict]:
        table = self.table_ref(RATED_USAGE)
        sql = f"""
WITH {_WINDOWS},
events AS (
  SELECT event_id, MIN(customer_id) AS customer_id, MIN(start_time) AS start_time,
         MIN(inserted_at) AS inserted_at, MIN(amount) AS amount, MAX(amount) AS max_amount
  FROM `{table}`
  WHERE event_date BETWEEN @first_day AND @last_day AND customer_id IN UNNEST(@customer_ids)
  GROUP BY event_id),
placed AS (
  SELECT r.customer_id, r.amount, r.max_amount, r.inserted_at, {_PERIOD} AS service_period,
         w.period, w.mark, w.previous_mark
  FROM events AS r JOIN windows AS w ON r.customer_id = w.customer_id)
SELECT customer_id, COUNT(*) AS events, SUM(amount) AS amount,
       COUNTIF(amount != max_amount) AS conflicts
FROM placed WHERE {_SELECTED}
GROUP BY customer_id"""
        return {row["customer_id"]: {"events": row["events"], "amount": row["amount"] or Decimal(0),
                                     "conflicts": row["conflicts"]}
                for row in self._query(sql, parameters)}

    def _window_parameters(self, windows: Sequence[CloseWindow]) -> list:
        first = min(w.cycle.starts_at for w in windows) - timedelta(days=self.lookback_days + 1)
        last = max(w.cycle.ends_at for w in windows) + timedelta(days=1)
        scalar = bigquery.ScalarQueryParameter
        structs = [bigquery.StructQueryParameter(
            None, scalar("customer_id", "STRING", w.customer_id), scalar("period", "STRING", w.cycle.label),
            scalar("zone", "STRING", w.cycle.timezone), scalar("anchor_day", "INT64", w.cycle.anchor_day),
            scalar("mark", "TIMESTAMP", w.watermark),
            scalar("previous_mark", "TIMESTAMP", w.previous_watermark or NO_PREVIOUS)) for w in windows]
        return [
            bigquery.ArrayQueryParameter("windows", "STRUCT", structs),
            bigquery.ArrayQueryParameter("customer_ids", "STRING", [w.customer_id for w in windows]),
            scalar("first_day", "DATE", first.date()),
            scalar("last_day", "DATE", last.date()),
        ]

    # -- usage_hourly -----------------------------------------------------------------------

    def hourly_rollup(self, now: datetime, *, lag: timedelta = timedelta(minutes=10),
                      lookback: timedelta = timedelta(days=3)) -> HourlyRollup:
        """MERGE the hours that closed since the last run, and every hour that got late rows.

        ``until`` = now - lag: rows written up to it are included (the next run starts there).
        Dirty (customer, hour) pairs are the closed hours from the last run's ``until`` (its
        hour, which was still open then) and the hours of rows written in (last until, until];
        each is recomputed whole from the deduplicated rows, so a rerun changes nothing.
        """
        until = now.astimezone(UTC) - lag
        closed_before = until.replace(minute=0, second=0, microsecond=0)
        earliest = until - lookback
        since = self._last_rollup(earliest, until) or earliest
        since_hour = since.replace(minute=0, second=0, microsecond=0)
        scalar = bigquery.ScalarQueryParameter
        parameters = [scalar("first_day", "DATE", (earliest - timedelta(days=1)).date()),
                      scalar("last_day", "DATE", until.date()),
                      scalar("since", "TIMESTAMP", since), scalar("since_hour", "TIMESTAMP", since_hour),
                      scalar("until", "TIMESTAMP", until), scalar("closed_before", "TIMESTAMP", closed_before),
                      scalar("first_hour", "TIMESTAMP", earliest - timedelta(days=1))]
        rated, hourly = self.table_ref(RATED_USAGE), self.table_ref(USAGE_HOURLY)
        sql = f"""
MERGE `{hourly}` AS t
USING (
  WITH dirty AS (
    SELECT DISTINCT customer_id, TIMESTAMP_TRUNC(start_time, HOUR) AS hour
    FROM `{rated}`
    WHERE event_date BETWEEN @first_day AND @last_day AND start_time < @closed_before
      AND (start_time >= @since_hour OR (inserted_at > @since AND inserted_at <= @until))),
  rated AS (
    SELECT * FROM `{rated}` WHERE event_date BETWEEN @first_day AND @last_day
    QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY inserted_at) = 1)
  SELECT r.customer_id, TIMESTAMP_TRUNC(r.start_time, HOUR) AS hour, r.kind,
         {_SUB_KIND} AS sub_kind, COUNT(*) AS events, SUM(r.billed_units) AS billed_units,
         SUM(r.amount) AS amount, SUM(r.vendor_cost) AS vendor_cost
  FROM rated AS r JOIN dirty AS d
    ON r.customer_id = d.customer_id AND TIMESTAMP_TRUNC(r.start_time, HOUR) = d.hour
  WHERE r.inserted_at <= @until
  GROUP BY r.customer_id, TIMESTAMP_TRUNC(r.start_time, HOUR), r.kind, sub_kind) AS s
ON t.hour >= @first_hour AND t.hour = s.hour AND t.customer_id = s.customer_id AND t.kind = s.kind
   AND t.sub_kind = s.sub_kind
WHEN MATCHED THEN UPDATE SET events = s.events, billed_units = s.billed_units, amount = s.amount,
  vendor_cost = s.vendor_cost, through = @until, inserted_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (hour, customer_id, kind, sub_kind, events, billed_units, amount, vendor_cost,
  through, inserted_at)
  VALUES (s.hour, s.customer_id, s.kind, s.sub_kind, s.events, s.billed_units, s.amount, s.vendor_cost,
  @until, CURRENT_TIMESTAMP())"""
        config = bigquery.QueryJobConfig(query_parameters=parameters)
        job = self.client.query(sql, job_config=config, retry=self._retry(), timeout=self.deadline_s)
        job.result(timeout=self.deadline_s)
        merged = job.num_dml_affected_rows or 0
        if merged == 0:
            # Nothing to write, but the run still covered up to `until`: record that in a marker row
            # (no hour of its own) so the next run starts there.
            self._mark(until, earliest)
        return HourlyRollup(since, until, merged)

    def _last_rollup(self, earliest: datetime, until: datetime) -> datetime | None:
        sql = (f"SELECT MAX(through) AS through FROM `{self.table_ref(USAGE_HOURLY)}` "
               "WHERE hour >= @first_hour AND through <= @until")
        parameters = [bigquery.ScalarQueryParameter("first_hour", "TIMESTAMP", earliest - timedelta(days=1)),
                      bigquery.ScalarQueryParameter("until", "TIMESTAMP", until)]
        row = next(iter(self._query(sql, parameters)), None)
        return row["through"] if row is not None else None

    def _mark(self, until: datetime, earliest: datetime) -> None:
        """A marker row (customer '', kind '') at the run's own hour carrying ``through``."""
        hour = until.replace(minute=0, second=0, microsecond=0)
        sql = (f"MERGE `{self.table_ref(USAGE_HOURLY)}` AS t USING (SELECT @hour AS hour) AS s "
               "ON t.hour >= @first_hour AND t.hour = s.hour AND t.customer_id = '' AND t.kind = '' "
               "WHEN MATCHED THEN UPDATE SET through = @until, inserted_at = CURRENT_TIMESTAMP() "
               "WHEN NOT MATCHED THEN INSERT (hour, customer_id, kind, sub_kind, events, billed_units, amount, "
               "vendor_cost, through, inserted_at) "
               "VALUES (s.hour, '', '', '', 0, 0, 0, 0, @until, CURRENT_TIMESTAMP())")
        parameters = [bigquery.ScalarQueryParameter("hour", "TIMESTAMP", hour),
                      bigquery.ScalarQueryParameter("first_hour", "TIMESTAMP", earliest - timedelta(days=1)),
                      bigquery.ScalarQueryParameter("until", "TIMESTAMP", until)]
        list(self._query(sql, parameters))

    def hourly_rows(self, first_day: date, last_day: date) -> list[dict]:
        """``usage_hourly`` rows of a range of days (marker rows excluded): for checks and tests."""
        sql = (f"SELECT * FROM `{self.table_ref(USAGE_HOURLY)}` WHERE hour >= @start AND hour < @end "
               "AND customer_id != '' ORDER BY customer_id, hour, kind, sub_kind")
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
        end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
        return [dict(row.items()) for row in self._query(sql, [
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", end)])]


class BigQueryRunLog(_BigQueryDataset):
    """``CloseRunLog`` on ``cycle_runs`` (insertId = run_id:customer:period)."""

    def record(self, rows: Sequence[Mapping]) -> None:
        if not rows:
            return
        prepared = [dict(row) for row in rows]
        self._insert(CYCLE_RUNS, prepared, [f"{r['run_id']}:{r['customer_id']}:{r['period']}" for r in prepared])

    def rows(self, first_day: date, last_day: date, run_id: str | None = None) -> list[dict]:
        parameters = [bigquery.ScalarQueryParameter("first_day", "DATE", first_day),
                      bigquery.ScalarQueryParameter("last_day", "DATE", last_day)]
        where = "run_date BETWEEN @first_day AND @last_day"
        if run_id is not None:
            parameters.append(bigquery.ScalarQueryParameter("run_id", "STRING", run_id))
            where += " AND run_id = @run_id"
        sql = f"SELECT * FROM `{self.table_ref(CYCLE_RUNS)}` WHERE {where} ORDER BY customer_id, period"
        return [dict(row.items()) for row in self._query(sql, parameters)]


def _usage_from_lines(windows: Sequence[CloseWindow], rows: list) -> tuple[dict[str, CloseUsage], dict]:
    """Per customer: the cycle's groups and late groups by service period, from the line rows."""
    periods = {w.customer_id: w.cycle.label for w in windows}
    groups: dict[str, dict[str, dict[tuple[str, str], UsageTotals]]] = {w.customer_id: {} for w in windows}
    destinations: dict[str, dict[str, dict[str, UsageTotals]]] = {w.customer_id: {} for w in windows}
    failures: dict[str, UnbillableUsageError] = {}
    for row in rows:
        customer = row["customer_id"]
        try:
            check_group(row["kind"], row["sub_kind"])
        except UnbillableUsageError as error:
            failures.setdefault(customer, UnbillableUsageError(
                f"{customer} {row['service_period']}: {error} ({row['events']} events)"))
            continue
        period = row["service_period"]
        totals = UsageTotals(row["events"], row["billed_units"] or 0, row["amount"] or Decimal(0))
        _add(groups[customer].setdefault(period, {}), (row["kind"], row["sub_kind"]), totals)
        if row["kind"] == VOICE.kind:   # one row per destination: folded into the line, kept for the table
            _add(destinations[customer].setdefault(period, {}), row["destination"] or "", totals)
    usage = {}
    for customer, by_period in groups.items():
        named = destinations[customer]
        label = periods[customer]
        current = CustomerUsage(customer, by_period.pop(label, {}), destinations=named.pop(label, {}))
        prior = {period: CustomerUsage(customer, found, destinations=named.get(period, {}))
                 for period, found in by_period.items()}
        usage[customer] = CloseUsage(customer, current, prior)
    return usage, failures


def _add(totals_by_key: dict, key: Any, totals: UsageTotals) -> None:
    found = totals_by_key.get(key)
    totals_by_key[key] = totals if found is None else found + totals

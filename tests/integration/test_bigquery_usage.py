"""Rated usage, rejects and the ledger against the local BigQuery stand-in (bqemulator).

The emulator has no insertId deduplication, so the duplicate-delivery tests see the duplicate
rows physically and prove that every read the adapter offers keeps one row per key.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from local_stack import PROJECT  # tools/ is put on sys.path by tests/integration/conftest.py
from warp_billing.adapters.bigquery_usage import (
    BALANCE_LEDGER,
    RATED_USAGE,
    TABLES,
    USAGE_REJECTS,
    BigQueryUsageStore,
    SchemaMismatch,
    UsageRecordError,
    bigquery_client,
    deduplicated,
    load_schema_json,
)
from warp_billing.ports import LedgerEntry
from warp_billing.rating.rated_event import RatedEvent, RejectedEvent
from warp_billing.timeutil import parse_instant

pytestmark = pytest.mark.integration


def rated(event_id: str, customer_id: str = "acme", start_time: str = "2026-03-01T10:00:00+00:00",
          amount: str = "0.001342", rate: str = "0.00671", vendor_cost: str | None = "0.000800",
          margin_pct: str | None = "40.38", kind: str = "voice") -> dict:
    return RatedEvent(
        event_id=event_id, kind=kind, customer_id=customer_id, start_time=start_time,
        jurisdiction="interstate" if kind == "voice" else None, matched_prefix="1212", destination="US-NY",
        rate=Decimal(rate), billed_units=12, amount=Decimal(amount), vendor_id="V1",
        vendor_cost=None if vendor_cost is None else Decimal(vendor_cost),
        margin_pct=None if margin_pct is None else Decimal(margin_pct), low_margin=False,
        direction="termination", duration_s=8,
        identity=("+13125550000", "+12125551234", None, "call-1@switch", None) if kind == "voice"
        else ("+13125550000", "+12125551234"),
    ).to_record()


def reject(reject_id: str, **fields) -> dict:
    record = RejectedEvent(event_id=fields.pop("event_id", None), kind="voice",
                           customer_id=fields.pop("customer_id", "acme"),
                           reason=fields.pop("reason", "NO_RATE"), detail="no deck row for 999",
                           start_time=fields.pop("start_time", "2026-03-02T08:00:00Z")).to_record()
    record.update({"reject_id": reject_id, "message_id": "4200000000000001",
                   "received_at": "2026-03-02T08:00:01.000+00:00", "raw": '{"event_id": "x"}'}, **fields)
    return record


def comparable(record: dict) -> dict:
    """A record with its start_time as an instant (BigQuery stores the instant, in UTC)."""
    return {**record, "start_time": parse_instant(record["start_time"])}


class RecordingClient:
    """Passes every call to the real client, keeping the SQL of each query."""

    def __init__(self, inner):
        self.inner, self.sql = inner, []

    def query(self, sql, **kwargs):
        self.sql.append(sql)
        return self.inner.query(sql, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# -- schema ---------------------------------------------------------------------------------------

def test_ensure_schema_is_idempotent_and_creates_every_column(usage_store):
    usage_store.ensure_schema()
    usage_store.ensure_schema()
    client = usage_store.client
    for spec in TABLES.values():
        table = client.get_table(usage_store.table_ref(spec))
        expected = [(f["name"], f["type"], f["mode"]) for f in load_schema_json(spec.name)]
        assert [(f.name, f.field_type, f.mode) for f in table.schema] == expected


@pytest.mark.parametrize("spec", list(TABLES.values()), ids=list(TABLES))
def test_tables_are_day_partitioned_and_clustered_by_customer(usage_store, spec):
    table = usage_store.client.get_table(usage_store.table_ref(spec))
    assert table.time_partitioning.type_ == "DAY"
    assert table.time_partitioning.field == spec.partition_field
    assert table.clustering_fields == ["customer_id"]


def test_partition_columns_are_the_event_day_and_the_ledger_instant():
    assert RATED_USAGE.partition_field == USAGE_REJECTS.partition_field == "event_date"
    assert BALANCE_LEDGER.partition_field == "at"
    columns = {f["name"]: f for f in load_schema_json("rated_usage")}
    assert columns["event_date"]["type"] == "DATE" and columns["event_date"]["mode"] == "REQUIRED"
    money = [name for name, f in columns.items() if f["type"] == "NUMERIC"]
    assert money == ["rate", "amount", "vendor_cost", "margin_pct"]


def test_an_existing_table_with_other_partitioning_is_reported_not_altered(bigquery_stack, bigquery_dataset):
    from google.cloud import bigquery

    client = bigquery_client(PROJECT, bigquery_stack)
    dataset = f"{bigquery_dataset}_legacy"
    client.create_dataset(dataset, exists_ok=True)
    try:
        legacy = bigquery.Table(f"{PROJECT}.{dataset}.rated_usage",
                                schema=[bigquery.SchemaField.from_api_repr(f) for f in load_schema_json("rated_usage")])
        legacy.time_partitioning = bigquery.TimePartitioning(field="inserted_at")
        client.create_table(legacy)
        store = BigQueryUsageStore(client, project=PROJECT, dataset=dataset, deadline_s=30)
        with pytest.raises(SchemaMismatch, match="partitioned by 'inserted_at'"):
            store.ensure_schema([RATED_USAGE])
    finally:
        client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


# -- rated usage and rejects ---------------------------------------------------------------------

def test_rated_rows_round_trip_numeric_money_exactly(usage_store):
    records = [
        rated("rt-1", customer_id="rt", amount="0.000001", rate="0.00000001", vendor_cost="0.000000",
              margin_pct="100.00"),
        rated("rt-2", customer_id="rt", amount="0.100000", rate="0.1", vendor_cost="0.200000", margin_pct="-100.00"),
        rated("rt-3", customer_id="rt", amount="12345678901234567890.123456", rate="0.00671"),
        rated("rt-4", customer_id="rt", kind="sms", amount="0.007000", rate="0.007", vendor_cost=None, margin_pct=None,
              start_time="2026-03-01T23:59:59.999999-05:00"),
    ]
    usage_store.insert_rated(records)
    back = list(usage_store.rated_records(date(2026, 3, 1), date(2026, 3, 2), customer_id="rt"))
    assert sorted((comparable(r) for r in back), key=lambda r: r["event_id"]) == [comparable(r) for r in records]
    by_id = {r["event_id"]: r for r in back}
    assert by_id["rt-3"]["amount"] == "12345678901234567890.123456"
    assert by_id["rt-1"]["rate"] == "0.00000001"
    assert by_id["rt-4"]["vendor_cost"] is None


def test_an_event_late_in_the_evening_west_of_utc_lands_in_the_next_utc_day(usage_store):
    usage_store.insert_rated([rated("tz-1", customer_id="tz", start_time="2026-03-05T22:00:00-05:00")])
    assert list(usage_store.rated_records(date(2026, 3, 5), date(2026, 3, 5), customer_id="tz")) == []
    assert [r["event_id"] for r in usage_store.rated_records(date(2026, 3, 6), date(2026, 3, 6),
                                                             customer_id="tz")] == ["tz-1"]


def test_floats_and_unstorable_amounts_are_refused_before_anything_is_sent(usage_store):
    bad_float = {**rated("bad-1", customer_id="bad"), "amount": 0.1}
    with pytest.raises(UsageRecordError, match="float"):
        usage_store.insert_rated([rated("bad-0", customer_id="bad"), bad_float])
    with pytest.raises(UsageRecordError, match="more than 9 decimal places"):
        usage_store.insert_rated([{**rated("bad-2", customer_id="bad"), "rate": "0.0000000001"}])
    with pytest.raises(UsageRecordError, match="start_time"):
        usage_store.insert_rated([{**rated("bad-3", customer_id="bad"), "start_time": "yesterday"}])
    assert list(usage_store.rated_records(date(2026, 3, 1), date(2026, 3, 1), customer_id="bad")) == []


def test_a_duplicate_delivery_of_an_event_reads_back_as_one_row(usage_store):
    record = rated("dup-1", customer_id="dup", amount="1.250000", start_time="2026-03-10T12:00:00Z")
    usage_store.insert_rated([record])
    usage_store.insert_rated([record])  # the redelivery
    usage_store.insert_rated([record, rated("dup-2", customer_id="dup", amount="0.750000",
                                            start_time="2026-03-10T12:00:01Z")])
    day = date(2026, 3, 10)
    assert usage_store.row_count(RATED_USAGE, day, day) >= 2  # the emulator keeps duplicates
    assert sorted(r["event_id"] for r in usage_store.rated_records(day, day, customer_id="dup")) == ["dup-1", "dup-2"]
    [total] = usage_store.usage_totals(day, day, customer_id="dup")
    assert (total.events, total.billed_units, total.amount) == (2, 24, Decimal("2.000000"))


def test_rejects_are_stored_once_each_even_without_an_event_id_or_a_valid_start_time(usage_store):
    records = [
        reject("rj-1", event_id="rj-1", customer_id="rj"),
        reject("message:4200000000000009", customer_id="rj", start_time="not-a-time",
               received_at="2026-03-03T00:00:05.000+00:00", reason="BAD_FIELD"),
    ]
    usage_store.insert_rejects(records)
    usage_store.insert_rejects(records)
    back = {r["reject_id"]: r for r in usage_store.reject_records(date(2026, 3, 2), date(2026, 3, 3), customer_id="rj")}
    assert sorted(back) == ["message:4200000000000009", "rj-1"]
    # An unparseable start_time is kept as received, and the row lands on the day it was received.
    assert back["message:4200000000000009"]["start_time"] == "not-a-time"
    assert list(usage_store.reject_records(date(2026, 3, 3), date(2026, 3, 3),
                                           customer_id="rj"))[0]["reason"] == "BAD_FIELD"
    assert back["rj-1"]["raw"] == '{"event_id": "x"}'


def test_every_read_filters_on_the_partition_column(usage_store, ledger_store, bigquery_stack):
    recording = RecordingClient(usage_store.client)
    store = BigQueryUsageStore(recording, project=usage_store.project, dataset=usage_store.dataset)
    store.insert_rated([rated("pf-1", customer_id="pf", start_time="2026-03-20T01:00:00Z"),
                        rated("pf-2", customer_id="pf", start_time="2026-03-21T01:00:00Z")])
    assert [r["event_id"] for r in store.rated_records(date(2026, 3, 20), date(2026, 3, 20), "pf")] == ["pf-1"]
    list(store.reject_records(date(2026, 3, 20), date(2026, 3, 20)))
    store.usage_totals(date(2026, 3, 1), date(2026, 3, 31))
    ledger = type(ledger_store)(recording, project=usage_store.project, dataset=usage_store.dataset)
    list(ledger.entries("pf"))
    assert len(recording.sql) == 4
    for sql in recording.sql:
        where = sql.split(" WHERE ", 1)[1]
        partitioned = "event_date BETWEEN @first_day AND @last_day" in where
        assert partitioned or "`at` >= @since AND `at` < @until" in where, sql
    with pytest.raises(ValueError, match="partition column"):
        deduplicated("p.d.rated_usage", RATED_USAGE, "customer_id = @customer_id")


# -- ledger ---------------------------------------------------------------------------------------

def entry(entry_id: str, amount: int, after: int, at: str, customer_id: str = "led",
          kind: str = "debit") -> LedgerEntry:
    return LedgerEntry(entry_id, customer_id, kind, amount, after, at, reference=f"ref {entry_id}")


def test_ledger_entries_read_back_in_order_once_each(ledger_store):
    first = [entry("top-1", 10_000_000, 10_000_000, "2026-03-01T09:00:00.000+00:00", kind="topup"),
             entry("ev-1", -50_000, 9_950_000, "2026-03-01T09:00:01.000+00:00"),
             # same millisecond: the order of the append call decides
             entry("ev-2", -50_000, 9_900_000, "2026-03-01T09:00:02.000+00:00"),
             entry("auto-1", 5_000_000, 14_900_000, "2026-03-01T09:00:02.000+00:00", kind="auto_recharge")]
    later = [entry("ev-3", -1, 14_899_999, "2026-03-02T00:00:00.000+00:00")]
    ledger_store.append(first)
    ledger_store.append(first[1:3])  # a redelivery re-appends some entries
    ledger_store.append(later)
    ledger_store.append([entry("other-1", 7, 7, "2026-03-01T09:00:00.000+00:00", customer_id="led-other")])
    got = list(ledger_store.entries("led"))
    assert got == first + later
    assert sum(e.amount_micros for e in got) == got[-1].balance_after_micros
    everyone = list(ledger_store.entries(None))
    assert [e.entry_id for e in everyone if e.customer_id in ("led", "led-other")] == [
        "top-1", "other-1", "ev-1", "ev-2", "auto-1", "ev-3"]


def test_ledger_range_reads_only_the_days_asked(ledger_store):
    ledger_store.append([entry("r-1", 1, 1, "2026-04-01T23:59:59.999+00:00", customer_id="rng"),
                         entry("r-2", 1, 2, "2026-04-02T00:00:00.000+00:00", customer_id="rng")])
    assert [e.entry_id for e in ledger_store.entries("rng", since=date(2026, 4, 2), until=date(2026, 4, 2))] == ["r-2"]
    assert [e.entry_id for e in ledger_store.entries("rng", since=date(2026, 4, 1), until=date(2026, 4, 1))] == ["r-1"]

"""Embedded stores on SQLite: rated usage, rejects and the ledger on one machine, no cloud.

The same idempotency as the cloud stores: a rated row is keyed by event_id, a reject by its
reject_id, a ledger entry by entry_id, and a repeated write of the same key is ignored (the
first write stands, as with BigQuery's insertId). WAL mode lets several function processes
of the local stack write one file; each thread has its own connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import orjson

from ..ports import LedgerEntry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rated_usage (event_id TEXT PRIMARY KEY, customer_id TEXT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejects (reject_id TEXT PRIMARY KEY, customer_id TEXT, reason TEXT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    entry_id TEXT NOT NULL, customer_id TEXT NOT NULL, kind TEXT NOT NULL,
    amount_micros INTEGER NOT NULL, balance_after_micros INTEGER NOT NULL, at TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '', PRIMARY KEY (customer_id, entry_id));
"""


class _Database:
    """One SQLite file, one connection per thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self.connection() as connection:
            connection.executescript(_SCHEMA)

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    def write(self, sql: str, rows: list[tuple]) -> None:
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(sql, rows)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


class SqliteUsageStore:
    """``UsageStore``: rated rows by event_id, rejects by reject_id (first write stands)."""

    def __init__(self, path: str | Path):
        self._db = _Database(path)

    def insert_rated(self, records: Sequence[Mapping]) -> None:
        self._db.write("INSERT OR IGNORE INTO rated_usage VALUES (?, ?, ?)",
                       [(record["event_id"], record.get("customer_id"),
                         orjson.dumps(record).decode()) for record in records])

    def insert_rejects(self, records: Sequence[Mapping]) -> None:
        rows = []
        for record in records:
            key = record.get("reject_id") or record.get("event_id") or record.get("message_id")
            if not key:
                raise ValueError("a reject needs a reject_id, event_id or message_id")
            rows.append((key, record.get("customer_id"), record.get("reason"), orjson.dumps(record).decode()))
        self._db.write("INSERT OR IGNORE INTO rejects VALUES (?, ?, ?, ?)", rows)

    def rated(self) -> Iterator[dict]:
        for (record,) in self._db.connection().execute("SELECT record FROM rated_usage ORDER BY rowid"):
            yield orjson.loads(record)

    def rejects(self) -> Iterator[dict]:
        for (record,) in self._db.connection().execute("SELECT record FROM rejects ORDER BY rowid"):
            yield orjson.loads(record)

    def counts(self) -> tuple[int, int]:
        """(rated rows, rejects)."""
        connection = self._db.connection()
        rated = connection.execute("SELECT COUNT(*) FROM rated_usage").fetchone()[0]
        rejected = connection.execute("SELECT COUNT(*) FROM rejects").fetchone()[0]
        return rated, rejected


class SqliteLedgerStore:
    """``LedgerStore``: the persisted ledger, one row per (customer, entry id)."""

    def __init__(self, path: str | Path):
        self._db = _Database(path)

    def append(self, entries: Sequence[LedgerEntry]) -> None:
        self._db.write(
            "INSERT OR IGNORE INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.entry_id, e.customer_id, e.kind, e.amount_micros, e.balance_after_micros, e.at, e.reference)
             for e in entries],
        )

    def entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        connection = self._db.connection()
        columns = "entry_id, customer_id, kind, amount_micros, balance_after_micros, at, reference"
        if customer_id is None:
            cursor = connection.execute(f"SELECT {columns} FROM ledger ORDER BY rowid")
        else:
            cursor = connection.execute(f"SELECT {columns} FROM ledger WHERE customer_id = ? ORDER BY rowid",
                                        (customer_id,))
        for row in cursor:
            yield LedgerEntry(*row)

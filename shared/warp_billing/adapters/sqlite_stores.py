"""Embedded stores on SQLite: rated usage, rejects and the ledger on one machine, no cloud.

The same idempotency as the cloud stores: a rated row is keyed by event_id, a reject by its
reject_id, a ledger entry by entry_id, and a repeated write of the same key is ignored (the
first write stands, as with BigQuery's insertId). A ledger write that reuses an entry id for a
DIFFERENT movement is kept aside in ``ledger_conflicts`` so the raw read (``raw_entries``) shows
it to a reconcile. WAL mode lets several function processes of the local stack write one file;
each thread has its own connection. Errors are classified here: a locked or busy database is
transient, a constraint or type error permanent.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import orjson

from ..charging.errors import TransientCode, TransientError
from ..ports import LedgerEntry, PermanentStoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rated_usage (event_id TEXT PRIMARY KEY, customer_id TEXT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejects (reject_id TEXT PRIMARY KEY, customer_id TEXT, reason TEXT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    entry_id TEXT NOT NULL, customer_id TEXT NOT NULL, kind TEXT NOT NULL,
    amount_micros INTEGER NOT NULL, balance_after_micros INTEGER NOT NULL, at TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '', PRIMARY KEY (customer_id, entry_id));
CREATE TABLE IF NOT EXISTS ledger_conflicts (
    entry_id TEXT NOT NULL, customer_id TEXT NOT NULL, kind TEXT NOT NULL,
    amount_micros INTEGER NOT NULL, balance_after_micros INTEGER NOT NULL, at TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '', sequence INTEGER);
"""
_COLUMNS = "entry_id, customer_id, kind, amount_micros, balance_after_micros, at, reference, sequence"


class _Database:
    """One SQLite file, one connection per thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self.connection() as connection:
            connection.executescript(_SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(ledger)")}
            if "sequence" not in columns:  # files written before positions existed
                connection.execute("ALTER TABLE ledger ADD COLUMN sequence INTEGER")

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    def write(self, sql: str, rows: list[tuple], *more: tuple[str, list[tuple]]) -> None:
        """Run the statements in one transaction; failures classified (transient / permanent)."""
        try:
            connection = self.connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(sql, rows)
                for statement, values in more:
                    connection.executemany(statement, values)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as exc:
            raise PermanentStoreError(f"{self.path.name}: {exc}") from exc
        except sqlite3.Error as exc:  # locked, busy, disk I/O: a retry may succeed
            raise TransientError(TransientCode.USAGE_STORE_UNAVAILABLE, f"{self.path.name}: {exc}") from exc


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

    def rated_event_ids(self, keys: Sequence[tuple[str, str]]) -> set[str]:
        ids = sorted({event_id for event_id, _ in keys})
        found: set[str] = set()
        connection = self._db.connection()
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            found |= {row[0] for row in connection.execute(
                f"SELECT event_id FROM rated_usage WHERE event_id IN ({marks})", part)}
        return found

    def rated_amounts(self, customer_id: str, first_day: str, last_day: str) -> Iterator[tuple[str, str, str]]:
        for (record,) in self._db.connection().execute(
                "SELECT record FROM rated_usage WHERE customer_id = ? ORDER BY rowid", (customer_id,)):
            row = orjson.loads(record)  # every row of the customer: the caller keeps its cycles' events
            yield row["event_id"], row["start_time"], row["amount"]

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
        rows = [(e.entry_id, e.customer_id, e.kind, e.amount_micros, e.balance_after_micros, e.at, e.reference,
                 e.sequence) for e in entries]
        # A different movement under an existing entry id is kept aside (the first one stands).
        same = "entry_id = ?1 AND customer_id = ?2"
        movement = "kind = ?3 AND amount_micros = ?4 AND balance_after_micros = ?5"
        conflicting = (
            f"INSERT INTO ledger_conflicts ({_COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 "
            f"WHERE EXISTS (SELECT 1 FROM ledger WHERE {same} AND NOT ({movement})) "
            f"AND NOT EXISTS (SELECT 1 FROM ledger_conflicts WHERE {same} AND {movement})")
        self._db.write(conflicting, rows, (f"INSERT OR IGNORE INTO ledger ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                           rows))

    def entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        yield from self._select("ledger", customer_id)

    def raw_entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        """Every stored row: the ledger and the conflicting movements kept aside."""
        yield from self._select("ledger", customer_id)
        yield from self._select("ledger_conflicts", customer_id)

    def _select(self, table: str, customer_id: str | None) -> Iterator[LedgerEntry]:
        connection = self._db.connection()
        if customer_id is None:
            cursor = connection.execute(f"SELECT {_COLUMNS} FROM {table} ORDER BY rowid")
        else:
            cursor = connection.execute(f"SELECT {_COLUMNS} FROM {table} WHERE customer_id = ? ORDER BY rowid",
                                        (customer_id,))
        for row in cursor:
            yield LedgerEntry(*row)

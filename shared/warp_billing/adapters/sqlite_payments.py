"""The payment store on SQLite (the embedded default): payments, their applications, reversals, rejects.

Every decision runs in one ``BEGIN IMMEDIATE`` transaction (the file's single writer), so two
payments of a customer delivered at once are applied one after the other, each seeing what the
other paid, and a payment delivered twice at once is applied once (primary key on the transaction
id). Amounts are stored as decimal text and summed as Decimal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson

from ..billing.invoice_store import APPLICATIONS_SQL, net_applications
from ..charging.errors import TransientCode, TransientError
from ..payments.allocation import ZERO, Application
from ..payments.records import APPLIED, DECLINED, PENDING, PaymentHeader, PaymentRecord, ReversalRecord, remaining
from .sqlite_connections import ThreadConnections

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    transaction_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, billing TEXT NOT NULL, amount TEXT NOT NULL,
    currency TEXT NOT NULL, received_on TEXT NOT NULL, invoice_reference TEXT, source TEXT NOT NULL,
    status TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS payments_customer ON payments (customer_id);
CREATE TABLE IF NOT EXISTS payment_lines (
    transaction_id TEXT NOT NULL, movement_id TEXT NOT NULL, position INTEGER NOT NULL, target TEXT NOT NULL,
    amount TEXT NOT NULL, PRIMARY KEY (transaction_id, movement_id, position));
CREATE TABLE IF NOT EXISTS payment_reversals (
    reversal_id TEXT PRIMARY KEY, transaction_id TEXT NOT NULL, customer_id TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operator_flags (
    flag_id TEXT PRIMARY KEY, kind TEXT NOT NULL, customer_id TEXT NOT NULL, detail TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payment_rejects (
    reject_id TEXT PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL, body BLOB NOT NULL, at TEXT NOT NULL);
"""
_INSERT_LINE = ("INSERT INTO payment_lines (transaction_id, movement_id, position, target, amount) "
                "VALUES (?, ?, ?, ?, ?)")
_PAYMENT_COLUMNS = "transaction_id, customer_id, billing, amount, currency, received_on, invoice_reference, source"


class SqlitePaymentStore:
    """``PaymentStore`` in one SQLite file (WAL, a connection per thread)."""

    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path, _SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransientError(TransientCode.PAYMENT_STORE_UNAVAILABLE, f"payments store: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            conn.execute("ROLLBACK")
            raise TransientError(TransientCode.PAYMENT_STORE_UNAVAILABLE, f"payments store: {exc}") from exc

    # -- PaymentStore --------------------------------------------------------------------------

    def apply(self, header: PaymentHeader,
              decide: Callable[[Mapping[str, Decimal]], tuple[Application, ...]]) -> PaymentRecord:
        with self._writing() as conn:
            kept = self._read(conn, header.transaction_id)
            if kept is not None and kept.status in (APPLIED, DECLINED):
                return kept
            paid: dict[str, Decimal] = {}
            for target, amount in conn.execute(
                    "SELECT l.target, l.amount FROM payment_lines l JOIN payments p USING (transaction_id) "
                    "WHERE p.customer_id = ? AND l.target NOT LIKE '@%'", (header.customer_id,)):
                paid[target] = paid.get(target, ZERO) + Decimal(amount)
            applications = decide(paid)
            if kept is None:
                self._insert(conn, header, APPLIED)
            else:
                conn.execute("UPDATE payments SET status = ? WHERE transaction_id = ?",
                             (APPLIED, header.transaction_id))
            conn.executemany(_INSERT_LINE,
                [(header.transaction_id, header.transaction_id, position, item.target, str(item.amount))
                 for position, item in enumerate(applications)])
        return PaymentRecord(header, APPLIED, applications, ZERO, created=True)

    def hold(self, header: PaymentHeader) -> PaymentRecord:
        with self._writing() as conn:
            kept = self._read(conn, header.transaction_id)
            if kept is not None:
                return kept
            self._insert(conn, header, PENDING)
        return PaymentRecord(header, PENDING, created=True)

    def decline(self, transaction_id: str) -> PaymentRecord | None:
        with self._writing() as conn:
            kept = self._read(conn, transaction_id)
            if kept is None or kept.status != PENDING:
                return kept
            conn.execute("UPDATE payments SET status = ? WHERE transaction_id = ?", (DECLINED, transaction_id))
        return PaymentRecord(kept.header, DECLINED, created=True)

    def reverse(self, reversal_id: str, transaction_id: str, at: str,
                decide: Callable[[tuple[Application, ...]], tuple[Application, ...]]) -> ReversalRecord:
        with self._writing() as conn:
            row = conn.execute("SELECT transaction_id, customer_id, at FROM payment_reversals WHERE reversal_id = ?",
                               (reversal_id,)).fetchone()
            if row is not None:
                return ReversalRecord(reversal_id, row[0], row[1], self._lines(conn, row[0], reversal_id), row[2])
            kept = self._read(conn, transaction_id)
            if kept is None or kept.status != APPLIED:
                raise KeyError(transaction_id)
            taken = decide(kept.applications)
            conn.execute("INSERT INTO payment_reversals (reversal_id, transaction_id, customer_id, at) "
                         "VALUES (?, ?, ?, ?)", (reversal_id, transaction_id, kept.header.customer_id, at))
            conn.executemany(_INSERT_LINE,
                [(transaction_id, reversal_id, position, item.target, str(item.amount))
                 for position, item in enumerate(taken)])
        return ReversalRecord(reversal_id, transaction_id, kept.header.customer_id, taken, at, created=True)

    def get(self, transaction_id: str) -> PaymentRecord | None:
        return self._read(self._connection(), transaction_id)

    def applications(self, customer_id: str) -> list[tuple[str, str, Decimal, date]]:
        return net_applications(self._connection().execute(APPLICATIONS_SQL, (customer_id,)).fetchall())

    def reject(self, reject_id: str, reason: str, detail: str, body: bytes, at: str) -> bool:
        try:
            cursor = self._connection().execute(
                "INSERT OR IGNORE INTO payment_rejects (reject_id, reason, detail, body, at) VALUES (?, ?, ?, ?, ?)",
                (reject_id, reason, detail, bytes(body), at))
        except sqlite3.OperationalError as exc:
            raise TransientError(TransientCode.PAYMENT_STORE_UNAVAILABLE, f"payments store: {exc}") from exc
        return cursor.rowcount == 1

    def flag(self, flag_id: str, kind: str, customer_id: str, detail: Mapping, at: str) -> bool:
        try:
            cursor = self._connection().execute(
                "INSERT OR IGNORE INTO operator_flags (flag_id, kind, customer_id, detail, at) VALUES (?, ?, ?, ?, ?)",
                (flag_id, kind, customer_id, orjson.dumps(dict(detail)).decode(), at))
        except sqlite3.OperationalError as exc:
            raise TransientError(TransientCode.PAYMENT_STORE_UNAVAILABLE, f"payments store: {exc}") from exc
        return cursor.rowcount == 1

    def flags(self) -> list[tuple[str, str, str, dict]]:
        return [(row[0], row[1], row[2], orjson.loads(row[3])) for row in self._connection().execute(
            "SELECT flag_id, kind, customer_id, detail FROM operator_flags ORDER BY rowid")]

    # -- reading (checks, tests, status views) ---------------------------------------------------

    def payments(self, customer_id: str | None = None) -> list[PaymentRecord]:
        conn = self._connection()
        where = " WHERE customer_id = ?" if customer_id else ""
        sql = f"SELECT transaction_id FROM payments{where} ORDER BY rowid"
        ids = [row[0] for row in conn.execute(sql, (customer_id,) if customer_id else ())]
        return [record for record in (self._read(conn, txn) for txn in ids) if record is not None]

    def rejects(self) -> list[tuple[str, str, str]]:
        return [tuple(row) for row in self._connection().execute(
            "SELECT reject_id, reason, detail FROM payment_rejects ORDER BY rowid")]

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _insert(conn: sqlite3.Connection, header: PaymentHeader, status: str) -> None:
        conn.execute(f"INSERT INTO payments ({_PAYMENT_COLUMNS}, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (header.transaction_id, header.customer_id, header.billing, str(header.amount), header.currency,
                      header.received_on.isoformat(), header.invoice_reference, header.source, status))

    def _read(self, conn: sqlite3.Connection, transaction_id: str) -> PaymentRecord | None:
        row = conn.execute(f"SELECT {_PAYMENT_COLUMNS}, status FROM payments WHERE transaction_id = ?",
                           (transaction_id,)).fetchone()
        if row is None:
            return None
        header = PaymentHeader(row[0], row[1], row[2], Decimal(row[3]), row[4], date.fromisoformat(row[5]), row[6],
                               row[7])
        applied = self._lines(conn, transaction_id, transaction_id)
        reversal_ids = tuple(reversal_id for (reversal_id,) in conn.execute(
            "SELECT reversal_id FROM payment_reversals WHERE transaction_id = ? ORDER BY rowid", (transaction_id,)))
        reversals = [self._lines(conn, transaction_id, reversal_id) for reversal_id in reversal_ids]
        reversed_amount = -sum((item.amount for taken in reversals for item in taken), ZERO)
        return PaymentRecord(header, row[8], remaining(applied, reversals), reversed_amount,
                             reversal_ids=reversal_ids)

    @staticmethod
    def _lines(conn: sqlite3.Connection, transaction_id: str, movement_id: str) -> tuple[Application, ...]:
        return tuple(Application(target, Decimal(amount)) for target, amount in conn.execute(
            "SELECT target, amount FROM payment_lines WHERE transaction_id = ? AND movement_id = ? ORDER BY position",
            (transaction_id, movement_id)))

"""The dunning store and the email log on SQLite (the embedded default), create-only by business key.

``dunning_steps`` has the primary key (invoice, action): a step recorded twice is kept once.
``suspensions`` holds one row per suspended customer. ``email_log`` has the primary key
``<document>:<step>``: a claim is an INSERT (status ``sending``), the send marks it ``sent``; a
claim older than ``stale_claim_s`` (a crash between claim and send) may be taken again.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .sqlite_connections import ThreadConnections

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dunning_steps (
    invoice_number TEXT NOT NULL, action TEXT NOT NULL, customer_id TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (invoice_number, action));
CREATE INDEX IF NOT EXISTS dunning_steps_customer ON dunning_steps (customer_id);
CREATE TABLE IF NOT EXISTS suspensions (
    customer_id TEXT PRIMARY KEY, invoice_number TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suspension_history (
    customer_id TEXT NOT NULL, event TEXT NOT NULL, invoice_number TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS email_log (
    email_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL, claimed_at TEXT NOT NULL,
    sent_at TEXT, message_id TEXT);
"""


class _Sqlite:
    def __init__(self, path: str | Path):
        self._connections = ThreadConnections(path, _SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()


class SqliteDunningStore(_Sqlite):
    """``DunningStore`` in one SQLite file."""

    def record_step(self, customer_id: str, invoice_number: str, action: str, at: str) -> bool:
        cursor = self._conn().execute(
            "INSERT OR IGNORE INTO dunning_steps (invoice_number, action, customer_id, at) VALUES (?, ?, ?, ?)",
            (invoice_number, action, customer_id, at))
        return cursor.rowcount == 1

    def steps(self, customer_id: str) -> set[tuple[str, str]]:
        rows = self._conn().execute("SELECT invoice_number, action FROM dunning_steps WHERE customer_id = ?",
                                    (customer_id,)).fetchall()
        return {(row[0], row[1]) for row in rows}

    def step_log(self, customer_id: str) -> list[tuple[str, str, str]]:
        """(invoice, action, at) in the order they ran (for `warp account status`)."""
        return [tuple(row) for row in self._conn().execute(
            "SELECT invoice_number, action, at FROM dunning_steps WHERE customer_id = ? ORDER BY at, rowid",
            (customer_id,)).fetchall()]

    def suspension(self, customer_id: str) -> str | None:
        row = self._conn().execute("SELECT invoice_number FROM suspensions WHERE customer_id = ?",
                                   (customer_id,)).fetchone()
        return None if row is None else str(row[0])

    def set_suspended(self, customer_id: str, invoice_number: str, at: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO suspensions (customer_id, invoice_number, at) VALUES (?, ?, ?)",
                (customer_id, invoice_number, at))
            if cursor.rowcount == 1:
                conn.execute("INSERT INTO suspension_history VALUES (?, 'suspended', ?, ?)",
                             (customer_id, invoice_number, at))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def clear_suspended(self, customer_id: str, at: str) -> bool:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT invoice_number FROM suspensions WHERE customer_id = ?",
                               (customer_id,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM suspensions WHERE customer_id = ?", (customer_id,))
                conn.execute("INSERT INTO suspension_history VALUES (?, 'reinstated', ?, ?)",
                             (customer_id, row[0], at))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return row is not None

    def suspended_customers(self) -> list[str]:
        return [str(row[0]) for row in self._conn().execute("SELECT customer_id FROM suspensions ORDER BY 1")]

    def history(self, customer_id: str) -> list[tuple[str, str, str]]:
        """(event, invoice, at) of the customer's suspensions and reinstatements."""
        return [tuple(row) for row in self._conn().execute(
            "SELECT event, invoice_number, at FROM suspension_history WHERE customer_id = ? ORDER BY rowid",
            (customer_id,)).fetchall()]


class SqliteEmailLog(_Sqlite):
    """``EmailLog`` in one SQLite file."""

    def __init__(self, path: str | Path, *, stale_claim_s: int = 600):
        super().__init__(path)
        self._stale = timedelta(seconds=stale_claim_s)

    def claim(self, email_id: str, customer_id: str, at: str) -> bool:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT status, claimed_at FROM email_log WHERE email_id = ?", (email_id,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO email_log (email_id, customer_id, status, claimed_at) "
                             "VALUES (?, ?, 'sending', ?)", (email_id, customer_id, at))
                taken = True
            elif row[0] == "sending" and _age(row[1], at) > self._stale:
                conn.execute("UPDATE email_log SET claimed_at = ? WHERE email_id = ?", (at, email_id))
                taken = True
            else:
                taken = False
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return taken

    def sent(self, email_id: str, message_id: str, at: str) -> None:
        self._conn().execute("UPDATE email_log SET status = 'sent', sent_at = ?, message_id = ? WHERE email_id = ?",
                             (at, message_id, email_id))

    def release(self, email_id: str) -> None:
        self._conn().execute("DELETE FROM email_log WHERE email_id = ? AND status = 'sending'", (email_id,))

    def refused(self, email_id: str, detail: str, at: str) -> None:
        # the detail goes where a sent email's message id goes: one row per email, no new column
        self._conn().execute("UPDATE email_log SET status = 'refused', sent_at = ?, message_id = ? WHERE email_id = ?",
                             (at, detail[:500], email_id))

    def status(self, email_id: str) -> str | None:
        row = self._conn().execute("SELECT status FROM email_log WHERE email_id = ?", (email_id,)).fetchone()
        return None if row is None else str(row[0])

    def sent_ids(self, customer_id: str | None = None) -> list[str]:
        query = "SELECT email_id FROM email_log WHERE status = 'sent'"
        rows = (self._conn().execute(query + " AND customer_id = ? ORDER BY rowid", (customer_id,)) if customer_id
                else self._conn().execute(query + " ORDER BY rowid"))
        return [str(row[0]) for row in rows]


def _age(then: str, now: str) -> timedelta:
    try:
        return datetime.fromisoformat(now) - datetime.fromisoformat(then)
    except ValueError:
        return timedelta(0)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()

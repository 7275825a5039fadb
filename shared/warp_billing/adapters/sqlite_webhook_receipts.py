"""Webhook receipts on SQLite (the embedded default): one row per (source, event_id), create-only.

``INSERT OR IGNORE`` on the primary key makes the first delivery win atomically, even with several
function processes or threads writing the same file (WAL mode, one connection per thread), so a
notification redelivered concurrently is accepted exactly once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..charging.errors import TransientCode, TransientError
from .sqlite_connections import ThreadConnections

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_receipts (
    source TEXT NOT NULL, event_id TEXT NOT NULL, received_at TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (source, event_id));
"""


class SqliteWebhookReceipts:
    """``WebhookReceipts`` in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path, _SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    def record_once(self, source: str, event_id: str, received_at: str, body: bytes) -> bool:
        try:
            cursor = self._connection().execute(
                "INSERT OR IGNORE INTO webhook_receipts (source, event_id, received_at, body) VALUES (?, ?, ?, ?)",
                (source, event_id, received_at, bytes(body)),
            )
        except sqlite3.OperationalError as exc:  # locked / busy: the sender retries
            raise TransientError(TransientCode.WEBHOOK_STORE_UNAVAILABLE, str(exc)) from exc
        return cursor.rowcount == 1

    def count(self, source: str | None = None) -> int:
        """Rows kept (raw, for checks and tests)."""
        sql, args = "SELECT COUNT(*) FROM webhook_receipts", ()  # type: tuple[str, tuple[str, ...]]
        if source is not None:
            sql, args = sql + " WHERE source = ?", (source,)
        return int(self._connection().execute(sql, args).fetchone()[0])

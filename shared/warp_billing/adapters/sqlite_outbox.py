"""The ERP outbox and the ``sync_errors`` records on SQLite (the embedded default, one machine).

``SqliteSyncOutbox`` implements ``SyncOutbox``: a document revision is keyed by
(doc_id, revision), a second ``add`` of the same key changes nothing, and the views show the
latest revision of each document in issue order (``sequence``). ``SqliteSyncErrors`` implements
``SyncErrorLog``, keyed by (doc_id, revision, attempt). WAL mode lets the ``netsuite_sync``
function processes and the CLI share one file; each thread has its own connection.

(The invoice registers of the cycle close implement the outbox beside their documents; this one
serves the embedded configuration and the local stack until they are wired in.)
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson

from ..ports import OutboxDocument, SyncError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    doc_id TEXT NOT NULL, revision INTEGER NOT NULL, doc_type TEXT NOT NULL, customer_id TEXT NOT NULL,
    sequence INTEGER NOT NULL, issued_at TEXT NOT NULL, payload TEXT NOT NULL, prerequisites TEXT NOT NULL,
    status TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', PRIMARY KEY (doc_id, revision));
CREATE INDEX IF NOT EXISTS outbox_sequence ON outbox (sequence);
CREATE TABLE IF NOT EXISTS sync_errors (
    doc_id TEXT NOT NULL, revision INTEGER NOT NULL, attempt INTEGER NOT NULL, doc_type TEXT NOT NULL,
    customer_id TEXT NOT NULL, code TEXT NOT NULL, detail TEXT NOT NULL, path TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (doc_id, revision, attempt));
"""

_LATEST = """
SELECT o.doc_id, o.revision, o.doc_type, o.customer_id, o.sequence, o.issued_at, o.payload, o.prerequisites,
       o.status, o.detail
FROM outbox o
WHERE o.revision = (SELECT MAX(revision) FROM outbox WHERE doc_id = o.doc_id)
"""


class _Database:
    """One SQLite file, one connection per thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.connection().executescript(_SCHEMA)

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection


def _document(row: tuple) -> OutboxDocument:
    return OutboxDocument(
        doc_id=row[0], revision=row[1], doc_type=row[2], customer_id=row[3], sequence=row[4], issued_at=row[5],
        payload=orjson.loads(row[6]), prerequisites=tuple(orjson.loads(row[7])), status=row[8], detail=row[9])


class SqliteSyncOutbox:
    """``SyncOutbox`` on a SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path):
        self._db = _Database(path)

    def add(self, document: OutboxDocument) -> None:
        self._db.connection().execute(
            "INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document.doc_id, document.revision, document.doc_type, document.customer_id, document.sequence,
             document.issued_at, orjson.dumps(document.payload), orjson.dumps(list(document.prerequisites)),
             document.status, document.detail))

    def pending(self, limit: int = 100) -> list[OutboxDocument]:
        rows = self._db.connection().execute(
            _LATEST + " AND o.status != 'synced' ORDER BY o.sequence, o.doc_id LIMIT ?", (limit,)).fetchall()
        return [_document(row) for row in rows]

    def get(self, doc_id: str) -> OutboxDocument | None:
        row = self._db.connection().execute(
            _LATEST + " AND o.doc_id = ?", (doc_id,)).fetchone()
        return _document(row) if row else None

    def mark(self, doc_id: str, revision: int, status: str, detail: str = "") -> None:
        cursor = self._db.connection().execute(
            "UPDATE outbox SET status = ?, detail = ? WHERE doc_id = ? AND revision = ?",
            (status, detail, doc_id, revision))
        if cursor.rowcount == 0:
            raise KeyError(f"{doc_id} revision {revision} is not in the outbox")

    def documents(self, customer_id: str | None = None) -> list[OutboxDocument]:
        if customer_id is None:
            rows = self._db.connection().execute(_LATEST + " ORDER BY o.sequence, o.doc_id").fetchall()
        else:
            rows = self._db.connection().execute(
                _LATEST + " AND o.customer_id = ? ORDER BY o.sequence, o.doc_id", (customer_id,)).fetchall()
        return [_document(row) for row in rows]

    def next_sequence(self) -> int:
        """The sequence number the next added document should carry."""
        row = self._db.connection().execute("SELECT COALESCE(MAX(sequence), 0) + 1 FROM outbox").fetchone()
        return int(row[0])


class SqliteSyncErrors:
    """``SyncErrorLog`` on a SQLite file."""

    def __init__(self, path: str | Path):
        self._db = _Database(path)

    def record(self, error: SyncError) -> None:
        self._db.connection().execute(
            "INSERT OR IGNORE INTO sync_errors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (error.doc_id, error.revision, error.attempt, error.doc_type, error.customer_id, error.code,
             error.detail, error.path, error.at))

    def errors(self, doc_id: str | None = None, customer_id: str | None = None) -> list[SyncError]:
        sql = "SELECT * FROM sync_errors WHERE 1=1"
        params: list = []
        if doc_id is not None:
            sql += " AND doc_id = ?"
            params.append(doc_id)
        if customer_id is not None:
            sql += " AND customer_id = ?"
            params.append(customer_id)
        rows = self._db.connection().execute(sql + " ORDER BY at, doc_id, revision, attempt", params).fetchall()
        return [SyncError(*row) for row in rows]

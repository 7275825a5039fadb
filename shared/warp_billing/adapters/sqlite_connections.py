"""One SQLite file, one connection per thread (WAL), its schema applied when a connection opens.

Opening is serialised: two threads switching a new file to WAL at once got "database is locked"
(seen in the file register's outbox), so one connection at a time is opened and set up.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class ThreadConnections:
    """Per-thread connections to ``path`` (autocommit; callers BEGIN their own transactions)."""

    def __init__(self, path: str | Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._schema = schema
        self._local = threading.local()
        self._opening = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._opening:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(self._schema)
            self._local.conn = conn
        return conn

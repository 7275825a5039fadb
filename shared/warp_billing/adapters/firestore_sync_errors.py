"""The ``sync_errors`` records on Firestore (``SyncErrorLog``): one document per refused delivery.

``sync_errors/{doc_id}:{revision}:{attempt}`` (the document id escaped), created once: a
redelivered task that fails the same way finds its row and adds none. Reads filter on one field
(``doc_id`` or ``customer_id``) and sort in Python, so no composite index is needed.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

from google.api_core.exceptions import AlreadyExists, Conflict
from google.cloud.firestore_v1.base_query import FieldFilter

from ..ports import SyncError
from .lazy_client import LazyClient


def error_document_id(error: SyncError) -> str:
    return f"{quote(error.doc_id, safe='')}:{error.revision}:{error.attempt}"


class FirestoreSyncErrors:
    """``SyncErrorLog`` on a Firestore collection (``sync_errors`` by default)."""

    def __init__(self, client: Any, *, collection: str = "sync_errors", timeout_s: float = 30.0):
        """``client``: a ``firestore.Client`` or a zero-argument callable building one on first use."""
        self._client = LazyClient(client)
        self.collection = collection
        self.timeout_s = timeout_s

    def record(self, error: SyncError) -> None:
        ref = self._client.get().collection(self.collection).document(error_document_id(error))
        # The same delivery generation failed before: keep its one row.
        with contextlib.suppress(AlreadyExists, Conflict):
            ref.create(asdict(error), timeout=self.timeout_s)

    def errors(self, doc_id: str | None = None, customer_id: str | None = None) -> list[SyncError]:
        query = self._client.get().collection(self.collection)
        if doc_id is not None:
            query = query.where(filter=FieldFilter("doc_id", "==", doc_id))
        elif customer_id is not None:
            query = query.where(filter=FieldFilter("customer_id", "==", customer_id))
        rows = [SyncError(**snapshot.to_dict()) for snapshot in query.stream(timeout=self.timeout_s)]
        if doc_id is not None and customer_id is not None:
            rows = [row for row in rows if row.customer_id == customer_id]
        return sorted(rows, key=lambda row: (row.at, row.doc_id, row.revision, row.attempt))

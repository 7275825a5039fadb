"""The balance ledger on Firestore (``LedgerStore``): strongly consistent reads, first write wins.

One document per movement in ``ledger_entries/{customer_id}:{entry_id}`` (both escaped for a
document id). ``append`` creates documents and never overwrites: a redelivered append finds
its entries present and leaves them; an entry id reused for a different movement keeps the
first one (the rebuild reports such conflicts). ``order_key`` (instant, write time, position
in the append) orders entries made in the same instant the way they were appended.

Reading one customer's entries in order uses the composite index (customer_id, order_key)
declared in terraform/firestore.tf. Compared with the BigQuery ledger, reads here see every
committed write at once (no streaming buffer, no best-effort dedup), at a higher cost per entry.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ..ports import LedgerEntry, chunks
from ..timeutil import InstantError, parse_instant
from .lazy_client import LazyClient

MAX_BATCH_WRITES = 500  # Firestore's limit of writes per commit
_EPOCH_US = 62_135_596_800_000_000  # microseconds from 0001-01-01 to 1970-01-01: keeps keys positive


class LedgerEntryError(ValueError):
    """An entry that cannot be stored (not integer micro-units, an instant that does not parse)."""


def entry_document_id(customer_id: str, entry_id: str) -> str:
    return f"{quote(customer_id, safe='')}:{quote(entry_id, safe='')}"


class FirestoreLedgerStore:
    """``LedgerStore`` on the Firestore collection ``ledger_entries`` (see the module docstring)."""

    def __init__(self, client: Any, settings: Any = None, *, collection: str = "ledger_entries",
                 timeout_s: float = 60.0):
        """``client``: a ``firestore.Client`` or a zero-argument callable building one on first use."""
        self._client = LazyClient(client)
        self.collection = collection
        self.timeout_s = timeout_s

    @property
    def client(self):
        return self._client.get()

    def append(self, entries: Sequence[LedgerEntry]) -> None:
        """Create each entry's document unless it exists (idempotent by customer and entry id)."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        written_ns = time.time_ns()
        documents = [(self._ref(entry), _document(entry, position, written_ns))
                     for position, entry in enumerate(entries)]
        for batch_items in chunks(documents, MAX_BATCH_WRITES):
            batch = self.client.batch()
            for ref, document in batch_items:
                batch.create(ref, document)
            try:
                batch.commit(timeout=self.timeout_s)
            except (AlreadyExists, Conflict):
                # Some entries were written by an earlier delivery: the commit was all-or-nothing,
                # so create them one by one and keep those that exist.
                for ref, document in batch_items:
                    with contextlib.suppress(AlreadyExists, Conflict):
                        ref.create(document, timeout=self.timeout_s)

    def entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        """Entries in the order they were made (all customers when ``customer_id`` is None)."""
        query = self.client.collection(self.collection)
        if customer_id is not None:
            query = query.where(filter=_field_filter("customer_id", "==", customer_id))
        for snapshot in query.order_by("order_key").stream(timeout=self.timeout_s):
            data = snapshot.to_dict()
            yield LedgerEntry(entry_id=data["entry_id"], customer_id=data["customer_id"], kind=data["kind"],
                              amount_micros=data["amount_micros"], balance_after_micros=data["balance_after_micros"],
                              at=data["at"], reference=data.get("reference") or "", sequence=data.get("sequence"))

    def raw_entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        """Every stored document. One document per (customer, entry id): a second, different movement
        under an existing id is never stored here (create() refuses it), so this equals ``entries``."""
        yield from self.entries(customer_id)

    def _ref(self, entry: LedgerEntry):
        return self.client.collection(self.collection).document(entry_document_id(entry.customer_id, entry.entry_id))


def _document(entry: LedgerEntry, position: int, written_ns: int) -> dict:
    for name in ("amount_micros", "balance_after_micros"):
        value = getattr(entry, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise LedgerEntryError(f"ledger entry {entry.entry_id}: {name} must be integer micro-units, got {value!r}")
    try:
        instant = parse_instant(entry.at)
    except InstantError as exc:
        raise LedgerEntryError(f"ledger entry {entry.entry_id}: at: {exc}") from None
    epoch_us = _epoch_microseconds(instant)
    return {
        "entry_id": entry.entry_id,
        "customer_id": entry.customer_id,
        "kind": entry.kind,
        "amount_micros": entry.amount_micros,
        "balance_after_micros": entry.balance_after_micros,
        "at": entry.at,
        "reference": entry.reference,
        "sequence": entry.sequence,
        "order_key": f"{epoch_us + _EPOCH_US:018d}.{written_ns:020d}.{position:06d}",
    }


def _epoch_microseconds(instant: datetime) -> int:
    delta = instant - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _field_filter(field: str, op: str, value: object):
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(field, op, value)

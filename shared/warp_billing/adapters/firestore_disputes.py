"""Customer disputes on Firestore (``ports.DisputeStore``), beside the Firestore register.

Layout (``collection_prefix`` in front of the collection name, as for the register)::

    customer_disputes/{dispute_id}                   customer_id, number, dispute_id, record (its JSON text)
    customer_disputes/{dispute_id}/versions/{n}      record after its n-th history entry (append-only)

Opening numbers the dispute in one transaction: it reads the customer's disputes, takes the
highest number + 1 and ``create``s that document. Uniqueness does not rest on transaction
contention alone (the local emulator loses concurrent updates and ignores update preconditions):
two opens that read the same disputes try to create the same id, the loser's commit fails and is
run again from fresh reads, so numbers stay gapless and never repeat. A change works the same
way: every change adds one history entry, and its transaction ``create``s the version document of
that length, so of two changes from the same state (two accepts, an accept and a reject) only one
commits; the other reads again and finds the dispute moved on.
Reads filter on ``customer_id`` alone and sort in Python (no composite index).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from ..reconciliation.customer_disputes import CustomerDispute, DisputeError
from ..safe_names import safe_name
from .lazy_client import LazyClient

T = TypeVar("T")
ATTEMPTS = 8
SEPARATOR = "-DSP-"



def dispute_number(dispute_id: str) -> tuple[str, int] | None:
    """(customer, number) of ``<customer>-DSP-<n>``, or None when the id is not one."""
    customer_id, separator, digits = dispute_id.rpartition(SEPARATOR)
    if not customer_id or not separator or not digits.isdigit():
        return None
    return customer_id, int(digits)


class FirestoreDisputes:
    """``DisputeStore`` on the ``customer_disputes`` collection (module docstring)."""

    def __init__(self, client: Any, *, collection_prefix: str = "", timeout_s: float = 60.0):
        """``client``: a ``firestore.Client`` or a zero-argument callable building one on first use."""
        self._client = LazyClient(client)
        self.collection = f"{collection_prefix}customer_disputes"
        self.timeout_s = timeout_s

    @property
    def client(self):
        return self._client.get()

    def open(self, customer_id: str,
             make: Callable[[str, Sequence[CustomerDispute]], CustomerDispute]) -> CustomerDispute:
        def body(transaction) -> CustomerDispute:
            snapshots = list(self._of_customer_query(customer_id).stream(transaction=transaction))
            existing = sorted((_dispute(s.to_dict()) for s in snapshots), key=lambda d: d.dispute_id)
            number = max((int(s.get("number")) for s in snapshots), default=0) + 1
            dispute_id = f"{customer_id}{SEPARATOR}{number:06d}"
            opened = make(dispute_id, existing)
            if (opened.dispute_id, opened.customer_id) != (dispute_id, customer_id):
                raise DisputeError(f"{opened.dispute_id} is not the next dispute of {customer_id}")
            # ``create``: an id another open took in the meantime fails here and is read again
            transaction.create(self._ref(dispute_id), _fields(opened, number))
            transaction.create(self._version_ref(dispute_id, len(opened.history)), {"record": _record(opened)})
            return opened

        return self._retried(body, f"{customer_id}: could not open a dispute")

    def change(self, dispute_id: str, move: Callable[[CustomerDispute], CustomerDispute]) -> CustomerDispute:
        def body(transaction) -> CustomerDispute:
            snapshot = self._ref(dispute_id).get(transaction=transaction)
            current = self._checked(dispute_id, snapshot)
            moved = move(current)
            if (moved.dispute_id, moved.customer_id) != (current.dispute_id, current.customer_id):
                raise DisputeError(f"a change of {dispute_id} cannot make it {moved.dispute_id} of {moved.customer_id}")
            if len(moved.history) <= len(current.history):
                raise DisputeError(f"a change of {dispute_id} must add to its history")
            # ``create`` of the version the change makes: of two changes from the same state one fails
            # here and is read again (the emulator ignores update preconditions; it honours create)
            transaction.create(self._version_ref(dispute_id, len(moved.history)), {"record": _record(moved)})
            transaction.update(self._ref(dispute_id), {"record": _record(moved)})
            return moved

        return self._retried(body, f"{dispute_id}: could not change it")

    def get(self, dispute_id: str) -> CustomerDispute:
        return self._checked(dispute_id, self._ref(dispute_id).get(timeout=self.timeout_s))

    def of_customer(self, customer_id: str) -> list[CustomerDispute]:
        snapshots = self._of_customer_query(customer_id).stream(timeout=self.timeout_s)
        return sorted((_dispute(s.to_dict()) for s in snapshots), key=lambda d: d.dispute_id)

    def all(self) -> list[CustomerDispute]:
        snapshots = self.client.collection(self.collection).stream(timeout=self.timeout_s)
        return sorted((_dispute(s.to_dict()) for s in snapshots), key=lambda d: (d.customer_id, d.dispute_id))

    # -- internals ----------------------------------------------------------------------------

    def _retried(self, body: Callable[[Any], T], failure: str) -> T:
        for attempt in range(ATTEMPTS):
            try:
                return firestore.transactional(body)(self.client.transaction())
            except (AlreadyExists, Conflict, FailedPrecondition):
                time.sleep(0.05 * (attempt + 1))  # someone else wrote first: read again
        raise DisputeError(f"{failure} after {ATTEMPTS} attempts (contention)")

    def _checked(self, dispute_id: str, snapshot) -> CustomerDispute:
        parsed = dispute_number(dispute_id)
        if parsed is None or not snapshot.exists:
            raise DisputeError(f"no dispute {dispute_id}")
        found = _dispute(snapshot.to_dict())
        if (found.dispute_id, found.customer_id) != (dispute_id, parsed[0]):
            # a record is only ever its own id's customer's
            raise DisputeError(f"{self.collection}/{snapshot.id} holds {found.dispute_id} of {found.customer_id}, "
                               f"not {dispute_id}")
        return found

    def _of_customer_query(self, customer_id: str):
        return self.client.collection(self.collection).where(filter=FieldFilter("customer_id", "==", customer_id))

    def _ref(self, dispute_id: str):
        return self.client.collection(self.collection).document(safe_name(dispute_id))

    def _version_ref(self, dispute_id: str, version: int):
        return self._ref(dispute_id).collection("versions").document(f"{version:04d}")


def _record(dispute: CustomerDispute) -> str:
    return orjson.dumps(dispute.to_record()).decode()


def _fields(dispute: CustomerDispute, number: int) -> dict:
    return {"dispute_id": dispute.dispute_id, "customer_id": dispute.customer_id, "number": number,
            "record": _record(dispute)}


def _dispute(fields: dict) -> CustomerDispute:
    return CustomerDispute.from_record(orjson.loads(fields["record"]))

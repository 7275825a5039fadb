"""The dunning store and the email log on Firestore (the deployed functions share them).

Collections (``prefix`` for tests and tenants):

* ``dunning_steps/{invoice}:{action}`` created once (``create``: AlreadyExists = it ran already);
* ``dunning_suspensions/{customer}`` while suspended; ``dunning_history/{customer}:{event}:{at}``;
* ``email_log/{document}:{step}`` created at the claim (``sending``), then ``sent``; a claim older
  than ``stale_claim_s`` (a crash between claim and send) may be taken again; a failed send
  deletes it.

Ids are escaped (``quote``) so invoice numbers and customer ids never make a path.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from google.api_core.exceptions import AlreadyExists, Conflict, NotFound
from google.cloud.firestore_v1.base_query import FieldFilter

from .lazy_client import LazyClient


def _id(*parts: str) -> str:
    return ":".join(quote(part, safe="") for part in parts)


class _Firestore:
    def __init__(self, client: Any, *, prefix: str = "", timeout_s: float = 30.0):
        self._client = LazyClient(client)
        self.prefix = prefix
        self.timeout_s = timeout_s

    def _collection(self, name: str):
        return self._client.get().collection(self.prefix + name)


class FirestoreDunningStore(_Firestore):
    """``DunningStore`` on Firestore."""

    def record_step(self, customer_id: str, invoice_number: str, action: str, at: str) -> bool:
        try:
            self._collection("dunning_steps").document(_id(invoice_number, action)).create(
                {"customer_id": customer_id, "invoice_number": invoice_number, "action": action, "at": at},
                timeout=self.timeout_s)
        except (AlreadyExists, Conflict):
            return False
        return True

    def _step_rows(self, customer_id: str) -> list[dict]:
        query = self._collection("dunning_steps").where(filter=FieldFilter("customer_id", "==", customer_id))
        return sorted((snapshot.to_dict() for snapshot in query.stream(timeout=self.timeout_s)),
                      key=lambda row: (row["at"], row["invoice_number"], row["action"]))

    def steps(self, customer_id: str) -> set[tuple[str, str]]:
        return {(row["invoice_number"], row["action"]) for row in self._step_rows(customer_id)}

    def step_log(self, customer_id: str) -> list[tuple[str, str, str]]:
        return [(row["invoice_number"], row["action"], row["at"]) for row in self._step_rows(customer_id)]

    def suspension(self, customer_id: str) -> str | None:
        snapshot = self._collection("dunning_suspensions").document(_id(customer_id)).get(timeout=self.timeout_s)
        return str(snapshot.to_dict()["invoice_number"]) if snapshot.exists else None

    def set_suspended(self, customer_id: str, invoice_number: str, at: str) -> None:
        try:
            self._collection("dunning_suspensions").document(_id(customer_id)).create(
                {"customer_id": customer_id, "invoice_number": invoice_number, "at": at}, timeout=self.timeout_s)
        except (AlreadyExists, Conflict):
            return
        self._history(customer_id, "suspended", invoice_number, at)

    def clear_suspended(self, customer_id: str, at: str) -> bool:
        ref = self._collection("dunning_suspensions").document(_id(customer_id))
        snapshot = ref.get(timeout=self.timeout_s)
        if not snapshot.exists:
            return False
        ref.delete(timeout=self.timeout_s)
        self._history(customer_id, "reinstated", str(snapshot.to_dict()["invoice_number"]), at)
        return True

    def suspended_customers(self) -> list[str]:
        return sorted(str(snapshot.to_dict()["customer_id"])
                      for snapshot in self._collection("dunning_suspensions").stream(timeout=self.timeout_s))

    def history(self, customer_id: str) -> list[tuple[str, str, str]]:
        query = self._collection("dunning_history").where(filter=FieldFilter("customer_id", "==", customer_id))
        rows = sorted((snapshot.to_dict() for snapshot in query.stream(timeout=self.timeout_s)),
                      key=lambda row: (row["at"], row["event"] != "suspended"))
        return [(row["event"], row["invoice_number"], row["at"]) for row in rows]

    def _history(self, customer_id: str, event: str, invoice_number: str, at: str) -> None:
        with contextlib.suppress(AlreadyExists, Conflict):
            self._collection("dunning_history").document(_id(customer_id, event, at)).create(
                {"customer_id": customer_id, "event": event, "invoice_number": invoice_number, "at": at},
                timeout=self.timeout_s)


class FirestoreEmailLog(_Firestore):
    """``EmailLog`` on Firestore."""

    def __init__(self, client: Any, *, prefix: str = "", timeout_s: float = 30.0, stale_claim_s: int = 600):
        super().__init__(client, prefix=prefix, timeout_s=timeout_s)
        self._stale = timedelta(seconds=stale_claim_s)

    def _ref(self, email_id: str):
        return self._collection("email_log").document(_id(email_id))

    def claim(self, email_id: str, customer_id: str, at: str) -> bool:
        ref = self._ref(email_id)
        try:
            ref.create({"email_id": email_id, "customer_id": customer_id, "status": "sending", "claimed_at": at},
                       timeout=self.timeout_s)
            return True
        except (AlreadyExists, Conflict):
            pass
        snapshot = ref.get(timeout=self.timeout_s)
        row = snapshot.to_dict() if snapshot.exists else None
        if row is None:
            return self.claim(email_id, customer_id, at)     # released meanwhile
        if row["status"] == "sending" and _age(row["claimed_at"], at) > self._stale:
            ref.update({"claimed_at": at}, timeout=self.timeout_s)
            return True
        return False

    def sent(self, email_id: str, message_id: str, at: str) -> None:
        self._ref(email_id).update({"status": "sent", "sent_at": at, "message_id": message_id},
                                   timeout=self.timeout_s)

    def release(self, email_id: str) -> None:
        ref = self._ref(email_id)
        snapshot = ref.get(timeout=self.timeout_s)
        if snapshot.exists and snapshot.to_dict().get("status") == "sending":
            with contextlib.suppress(NotFound):
                ref.delete(timeout=self.timeout_s)

    def refused(self, email_id: str, detail: str, at: str) -> None:
        self._ref(email_id).update({"status": "refused", "refused_at": at, "detail": detail[:500]},
                                   timeout=self.timeout_s)

    def status(self, email_id: str) -> str | None:
        snapshot = self._ref(email_id).get(timeout=self.timeout_s)
        return str(snapshot.to_dict()["status"]) if snapshot.exists else None


def _age(then: str, now: str) -> timedelta:
    try:
        return datetime.fromisoformat(now) - datetime.fromisoformat(then)
    except ValueError:
        return timedelta(0)

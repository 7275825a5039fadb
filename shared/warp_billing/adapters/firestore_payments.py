"""The payment store and the webhook receipts on Firestore (the cloud's ``PaymentStore`` / ``WebhookReceipts``).

Layout (``collection_prefix`` in front of each top-level name)::

    payment_accounts/{customer}                      seq (movements so far), paid {invoice: "amount"}
    payment_accounts/{customer}/movements/{seq}      one per applied payment or reversal (create-only)
    payments/{transaction id}                        header, status, applications [{target, amount}],
                                                     reversals [ids], reversed_amount
    payment_reversals/{reversal id}                  transaction_id, customer_id, taken [...], at
    payment_rejects/{id}, operator_flags/{id}        create-only
    webhook_receipts/{source}:{event id}             create-only

Every apply or reversal is one transaction that reads the payment and the customer's account
document, decides, and writes the payment, the account (the paid amounts per invoice) and a
movement numbered ``seq + 1`` with ``create``: two concurrent decisions for one customer cannot
both commit (the second ``create`` fails and is retried from fresh reads), which does not rest on
transaction contention alone (the local emulator loses concurrent updates). Amounts are decimal text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from google.api_core import exceptions as google_errors
from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from ..billing.invoice_store import net_applications
from ..charging.errors import TransientCode, TransientError
from ..payments.allocation import ZERO, Application, net
from ..payments.records import APPLIED, DECLINED, PENDING, PaymentHeader, PaymentRecord, ReversalRecord
from ..safe_names import safe_name
from .lazy_client import LazyClient

ATTEMPTS = 20
TRANSIENT = (google_errors.ServiceUnavailable, google_errors.DeadlineExceeded, google_errors.InternalServerError,
             google_errors.TooManyRequests, google_errors.Aborted)


class _Contended(RuntimeError):
    """Another decision for the customer committed first (retried from fresh reads)."""


def _lines(items: tuple[Application, ...]) -> list[dict[str, str]]:
    return [{"target": item.target, "amount": str(item.amount)} for item in items]


def _applications(lines: Any) -> tuple[Application, ...]:
    return tuple(Application(str(line["target"]), Decimal(str(line["amount"]))) for line in lines or ())


class FirestorePaymentStore:
    """``PaymentStore`` on Firestore (module docstring)."""

    def __init__(self, client: Any, *, collection_prefix: str = "", timeout_s: float = 30.0):
        self._client = LazyClient(client)
        self.prefix = collection_prefix
        self.timeout_s = timeout_s

    @property
    def client(self):
        return self._client.get()

    def _collection(self, name: str):
        return self.client.collection(f"{self.prefix}{name}")

    def _payment_ref(self, transaction_id: str):
        return self._collection("payments").document(safe_name(transaction_id))

    def _account_ref(self, customer_id: str):
        return self._collection("payment_accounts").document(safe_name(customer_id))

    # -- PaymentStore --------------------------------------------------------------------------

    def apply(self, header: PaymentHeader,
              decide: Callable[[Mapping[str, Decimal]], tuple[Application, ...]]) -> PaymentRecord:
        def body(transaction) -> PaymentRecord:
            payment_ref, account_ref = self._payment_ref(header.transaction_id), self._account_ref(header.customer_id)
            kept = payment_ref.get(transaction=transaction)
            if kept.exists and kept.get("status") in (APPLIED, DECLINED):
                return _record(kept.to_dict())
            account = account_ref.get(transaction=transaction)
            seq = int(account.get("seq")) if account.exists else 0
            paid = _paid(account)
            applications = decide(dict(paid))
            for item in applications:
                if item.is_invoice:
                    paid[item.target] = paid.get(item.target, ZERO) + item.amount
            transaction.create(account_ref.collection("movements").document(f"{seq + 1:012d}"),
                               {"movement": header.transaction_id, "lines": _lines(applications)})
            transaction.set(account_ref, {"seq": seq + 1, "paid": {k: str(v) for k, v in paid.items()}})
            fields = {**_header_fields(header), "status": APPLIED, "applications": _lines(applications),
                      "reversals": [], "reversed_amount": "0.00"}
            if kept.exists:
                transaction.set(payment_ref, fields)
            else:
                transaction.create(payment_ref, fields)
            return PaymentRecord(header, APPLIED, applications, ZERO, created=True)

        return self._transact(body)

    def hold(self, header: PaymentHeader) -> PaymentRecord:
        def body(transaction) -> PaymentRecord:
            ref = self._payment_ref(header.transaction_id)
            kept = ref.get(transaction=transaction)
            if kept.exists:
                return _record(kept.to_dict())
            transaction.create(ref, {**_header_fields(header), "status": PENDING, "applications": [],
                                     "reversals": [], "reversed_amount": "0.00"})
            return PaymentRecord(header, PENDING, created=True)

        return self._transact(body)

    def decline(self, transaction_id: str) -> PaymentRecord | None:
        def body(transaction) -> PaymentRecord | None:
            ref = self._payment_ref(transaction_id)
            kept = ref.get(transaction=transaction)
            if not kept.exists:
                return None
            record = _record(kept.to_dict())
            if record.status != PENDING:
                return record
            transaction.update(ref, {"status": DECLINED})
            return PaymentRecord(record.header, DECLINED, created=True)

        return self._transact(body)

    def reverse(self, reversal_id: str, transaction_id: str, at: str,
                decide: Callable[[tuple[Application, ...]], tuple[Application, ...]]) -> ReversalRecord:
        def body(transaction) -> ReversalRecord:
            reversal_ref = self._collection("payment_reversals").document(safe_name(reversal_id))
            payment_ref = self._payment_ref(transaction_id)
            done, kept = reversal_ref.get(transaction=transaction), payment_ref.get(transaction=transaction)
            if done.exists:
                data = done.to_dict()
                return ReversalRecord(reversal_id, data["transaction_id"], data["customer_id"],
                                      _applications(data["taken"]), data["at"])
            if not kept.exists or kept.get("status") != APPLIED:
                raise KeyError(transaction_id)
            record = _record(kept.to_dict())
            customer_id = record.header.customer_id
            account_ref = self._account_ref(customer_id)
            account = account_ref.get(transaction=transaction)
            seq = int(account.get("seq")) if account.exists else 0
            paid = _paid(account)
            taken = decide(record.applications)
            for item in taken:
                if item.is_invoice:
                    paid[item.target] = paid.get(item.target, ZERO) + item.amount
            transaction.create(account_ref.collection("movements").document(f"{seq + 1:012d}"),
                               {"movement": reversal_id, "lines": _lines(taken)})
            transaction.set(account_ref, {"seq": seq + 1, "paid": {k: str(v) for k, v in paid.items() if v != 0}})
            reversed_amount = record.reversed_amount - sum((item.amount for item in taken), ZERO)
            transaction.update(payment_ref, {
                "applications": _lines(net(record.applications + taken)),
                "reversals": [*kept.get("reversals"), reversal_id], "reversed_amount": str(reversed_amount)})
            transaction.create(reversal_ref, {"transaction_id": transaction_id, "customer_id": customer_id,
                                              "taken": _lines(taken), "at": at})
            return ReversalRecord(reversal_id, transaction_id, customer_id, taken, at, created=True)

        return self._transact(body)

    def get(self, transaction_id: str) -> PaymentRecord | None:
        snapshot = self._call(lambda: self._payment_ref(transaction_id).get(timeout=self.timeout_s))
        return _record(snapshot.to_dict()) if snapshot.exists else None

    def applications(self, customer_id: str) -> list[tuple[str, str, Decimal, date]]:
        """(transaction id, invoice number, net amount, received on), as the SQLite store gives them."""
        query = (self._collection("payments").where(filter=FieldFilter("customer_id", "==", customer_id))
                 .where(filter=FieldFilter("status", "==", APPLIED)))
        rows: list[tuple[str, str, Decimal, date]] = []
        for snapshot in self._call(lambda: list(query.stream(timeout=self.timeout_s))):
            record = _record(snapshot.to_dict())
            rows.extend((record.transaction_id, item.target, item.amount, record.header.received_on)
                        for item in record.applications if item.is_invoice)
        return net_applications(rows)

    def payments(self, customer_id: str | None = None) -> list[PaymentRecord]:
        query = self._collection("payments")
        if customer_id is not None:
            query = query.where(filter=FieldFilter("customer_id", "==", customer_id))
        snapshots = self._call(lambda: list(query.stream(timeout=self.timeout_s)))
        return [_record(snapshot.to_dict()) for snapshot in snapshots]

    def reject(self, reject_id: str, reason: str, detail: str, body: bytes, at: str) -> bool:
        return self._create("payment_rejects", reject_id, {"reason": reason, "detail": detail,
                                                           "body": bytes(body)[:900_000], "at": at})

    def flag(self, flag_id: str, kind: str, customer_id: str, detail: Mapping, at: str) -> bool:
        return self._create("operator_flags", flag_id, {"kind": kind, "customer_id": customer_id,
                                                        "detail": dict(detail), "at": at})

    # -- internals -----------------------------------------------------------------------------

    def _create(self, collection: str, key: str, fields: dict) -> bool:
        try:
            self._call(
                lambda: self._collection(collection).document(safe_name(key)).create(fields, timeout=self.timeout_s)
            )
        except AlreadyExists:
            return False
        return True

    def _transact(self, body: Callable[[Any], Any]) -> Any:
        for attempt in range(ATTEMPTS):
            try:
                return firestore.transactional(body)(self.client.transaction())
            except (AlreadyExists, Conflict, FailedPrecondition, _Contended):
                time.sleep(0.02 * (attempt + 1))
            except TRANSIENT as exc:
                raise TransientError(TransientCode.PAYMENT_STORE_UNAVAILABLE, f"payments store: {exc}") from exc
        raise TransientError(TransientCode.PAYMENT_STORE_UNAVAILABLE,
                             f"payments store: still contended after {ATTEMPTS} attempts")

    @staticmethod
    def _call(function: Callable[[], Any]) -> Any:
        try:
            return function()
        except TRANSIENT as exc:
            raise TransientError(TransientCode.PAYMENT_STORE_UNAVAILABLE, f"payments store: {exc}") from exc


class FirestoreWebhookReceipts:
    """``WebhookReceipts`` on Firestore: one document per (source, event id), ``create`` only."""

    def __init__(self, client: Any, *, collection_prefix: str = "", timeout_s: float = 30.0):
        self._client = LazyClient(client)
        self.collection = f"{collection_prefix}webhook_receipts"
        self.timeout_s = timeout_s

    def record_once(self, source: str, event_id: str, received_at: str, body: bytes) -> bool:
        ref = self._client.get().collection(self.collection).document(safe_name(f"{source}:{event_id}"))
        try:
            ref.create({"source": source, "event_id": event_id, "received_at": received_at,
                        "body": bytes(body)[:900_000]}, timeout=self.timeout_s)
        except AlreadyExists:
            return False
        except TRANSIENT as exc:
            raise TransientError(TransientCode.WEBHOOK_STORE_UNAVAILABLE, f"webhook receipts: {exc}") from exc
        return True


def _paid(account: Any) -> dict[str, Decimal]:
    """The paid amounts per invoice kept on a customer's account document (empty when it does not exist)."""
    if not account.exists:
        return {}
    return {key: Decimal(value) for key, value in (account.get("paid") or {}).items()}


def _header_fields(header: PaymentHeader) -> dict[str, Any]:
    return {"transaction_id": header.transaction_id, "customer_id": header.customer_id, "billing": header.billing,
            "amount": str(header.amount), "currency": header.currency, "received_on": header.received_on.isoformat(),
            "invoice_reference": header.invoice_reference, "source": header.source}


def _record(data: dict[str, Any]) -> PaymentRecord:
    header = PaymentHeader(data["transaction_id"], data["customer_id"], data["billing"], Decimal(data["amount"]),
                           data["currency"], date.fromisoformat(data["received_on"]), data.get("invoice_reference"),
                           data.get("source") or "authorize-net")
    return PaymentRecord(header, data["status"], _applications(data.get("applications")),
                         Decimal(str(data.get("reversed_amount") or "0")),
                         reversal_ids=tuple(str(item) for item in data.get("reversals") or ()))

"""NetSuite -> WARP: the events the SuiteScript User Event (netsuite/suitescript/warp_events_ue.js) posts.

The body (our contract; the receiver has already checked ``X-Warp-Signature`` within the tolerance):

    {"id": "<event id>", "type": "<type>", "occurred_at": "<ISO 8601>", "record": {...}}

* ``customer_payment.created`` / ``customer_payment.edited``: a payment recorded in NetSuite
  (``record``: ``internal_id``, ``external_id``, ``customer_id`` (ours), ``amount``, ``currency``,
  ``date``, ``applies_to`` [{``invoice_number``, ``amount``}]) -> applied to our invoices as told
  (payment id ``netsuite:<internal id>``, once), never sent back to NetSuite. A payment whose
  externalId is ``payment:...`` is one WE put in NetSuite: its echo is ignored.
* ``invoice.voided`` / ``invoice.credited`` (``record``: ``invoice_number``, ``customer_id``,
  ``internal_id``, ``credit_memo``...) -> an operator flag (kept once per event id) and a
  ``netsuite_change_flagged`` alert; nothing in the register changes (a correction is ours to issue).
* ``customer.terms_changed`` (``record``: ``customer_id``, ``net_days``, ``credit_limit``) -> a new
  plan version with those terms, unless the current plan already has them (a replay changes nothing).

Anything else is answered ``ignored``. Unusable events are kept as rejects with a reason code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import yaml

from ..payments.allocation import Application
from ..payments.errors import PaymentReason, PaymentRejected
from ..payments.gateway_events import parse_amount
from ..payments.records import PaymentHeader
from ..payments.service import NETSUITE_SOURCE, PaymentService
from ..plan import PlanError, parse_plan
from ..ports import AlertPublisher, PaymentStore, PlanStore
from ..rating.rater import deck_paths

log = logging.getLogger(__name__)
FLAGGED = "netsuite_change_flagged"
FLAG_TYPES = {"invoice.voided": "invoice_voided", "invoice.credited": "invoice_credited"}


class NetSuiteEvents:
    def __init__(self, payments: PaymentService, store: PaymentStore, plans: PlanStore, alerts: AlertPublisher):
        self.payments = payments
        self.store = store
        self.plans = plans
        self.alerts = alerts

    def handle(self, body: bytes) -> dict[str, Any]:
        try:
            event = orjson.loads(body)
            if not isinstance(event, dict) or not isinstance(event.get("record"), dict):
                raise PaymentRejected(PaymentReason.MALFORMED, "expected {id, type, record{...}}")
            return self._handle(event)
        except orjson.JSONDecodeError:
            return self._reject(body, PaymentRejected(PaymentReason.MALFORMED, "not JSON"))
        except PaymentRejected as exc:
            return self._reject(body, exc)

    def _handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        kind, record = str(event.get("type") or ""), event["record"]
        event_id = str(event.get("id"))
        if kind in ("customer_payment.created", "customer_payment.edited"):
            return self._payment(record)
        if kind in FLAG_TYPES:
            return self._flag(event_id, FLAG_TYPES[kind], record, str(event.get("occurred_at") or ""))
        if kind == "customer.terms_changed":
            return self._terms(record)
        return {"status": "ignored", "type": kind}

    def _payment(self, record: Mapping[str, Any]) -> dict[str, Any]:
        if str(record.get("external_id") or "").startswith("payment:"):
            return {"status": "ignored", "reason": "our own payment, synced to NetSuite"}
        internal_id, customer_id = _text(record, "internal_id"), _text(record, "customer_id")
        amount = parse_amount(record.get("amount"), "record.amount")
        account = self.payments.accounts(customer_id)
        if account is None:
            raise PaymentRejected(PaymentReason.UNKNOWN_CUSTOMER, f"no plan for customer {customer_id!r}")
        told = []
        for item in record.get("applies_to") or ():
            if isinstance(item, dict) and item.get("invoice_number"):
                told.append(Application(str(item["invoice_number"]),
                                        parse_amount(item.get("amount"), "record.applies_to.amount")))
        try:
            on = date.fromisoformat(str(record.get("date")))
        except ValueError:
            on = datetime.now(UTC).date()
        header = PaymentHeader(f"netsuite:{internal_id}", customer_id, account.billing, amount,
                               str(record.get("currency") or account.currency), on,
                               told[0].target if told else None, NETSUITE_SOURCE)
        applied = self.payments.apply(header, told=tuple(told))
        return {"status": applied.status, "transaction_id": header.transaction_id,
                "invoice_numbers": list(applied.invoice_numbers)}

    def _flag(self, event_id: str, kind: str, record: Mapping[str, Any], occurred_at: str) -> dict[str, Any]:
        customer_id = _text(record, "customer_id")
        at = occurred_at or datetime.now(UTC).isoformat()
        created = self.store.flag(f"netsuite:{event_id}", kind, customer_id, dict(record), at)
        self.alerts.publish({"alert_id": f"{FLAGGED}:{customer_id}:{event_id}", "type": FLAGGED,
                             "customer_id": customer_id, "change": kind, "record": dict(record), "at": at,
                             "action": "review in WARP: nothing was changed (issue a credit note if it stands)"})
        log.warning("netsuite change flagged for an operator",
                    extra={"event_id": event_id, "change": kind, "customer_id": customer_id, "new": created})
        return {"status": "flagged", "change": kind, "new": created}

    def _terms(self, record: Mapping[str, Any]) -> dict[str, Any]:
        customer_id = _text(record, "customer_id")
        version = self.plans.current_version(customer_id)
        if version is None:
            raise PaymentRejected(PaymentReason.UNKNOWN_CUSTOMER, f"no plan for customer {customer_id!r}")
        document = dict(self.plans.plan_document(customer_id, version))
        changed = dict(document)
        if record.get("net_days") is not None:
            net_days = record["net_days"]
            if isinstance(net_days, bool) or not isinstance(net_days, int | str) or not str(net_days).isdigit():
                raise PaymentRejected(PaymentReason.MALFORMED, f"net_days {net_days!r} is not a whole number of days")
            changed["terms"] = {**(document.get("terms") or {}), "net_days": int(net_days)}
        if "credit_limit" in record:
            limit = record["credit_limit"]
            limit_text = None if limit in (None, "") else str(parse_amount(limit, "record.credit_limit"))
            changed["postpaid"] = {**(document.get("postpaid") or {}), "credit_limit": limit_text}
        try:
            old, new = parse_plan(document, customer_id), parse_plan(changed, customer_id)
        except PlanError as exc:
            raise PaymentRejected(PaymentReason.MALFORMED, f"terms of {customer_id}: {exc}") from None
        if (old.terms, old.postpaid) == (new.terms, new.postpaid):
            return {"status": "unchanged", "customer_id": customer_id, "version": version}
        references = set(deck_paths(new))
        if new.voice is not None and new.voice.npa_nxx:
            references.add(new.voice.npa_nxx)
        decks = {reference: self.plans.deck_text(reference) for reference in sorted(references)}
        created = self.plans.put_plan(customer_id, yaml.safe_dump(_plain(changed), sort_keys=False), decks)
        log.info("plan terms changed in netsuite", extra={"customer_id": customer_id, "version": created})
        return {"status": "new_plan_version", "customer_id": customer_id, "version": created}

    def _reject(self, body: bytes, exc: PaymentRejected) -> dict[str, Any]:
        import hashlib

        reject_id = "netsuite:sha256:" + hashlib.sha256(body).hexdigest()
        self.store.reject(reject_id, exc.reason.value, exc.detail, body, datetime.now(UTC).isoformat())
        log.error("netsuite event rejected", extra={"reason": exc.reason.value, "detail": exc.detail})
        return {"status": "rejected", "reason": exc.reason.value, "detail": exc.detail}


def _text(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PaymentRejected(PaymentReason.MALFORMED, f"record.{field} missing")
    return value.strip()


def _plain(value: Any) -> Any:
    """A plan document as YAML-safe plain data (Decimal as text)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    return value

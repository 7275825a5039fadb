"""Auto-recharge on a stored card: requested at the low-balance crossing, charged by a Cloud Task.

1. ``request``: a prepaid customer whose plan has ``prepaid.recharge_profile`` crossed below its
   recharge trigger (the LOW_BALANCE alert, decided atomically with the charge by the balance
   store). The recharge id is deterministic (customer + the crossing's entry id); it is marked in
   flight per customer (``RechargeLocks``, its own Redis namespace), so while one recharge is in
   flight a second crossing (or the same one redelivered) requests nothing. Then a task named
   after the recharge goes on the ``recharge`` queue (a task name is used once per queue).
2. ``run`` (the task): counts the attempt for the day (at most ``daily_attempts``; a task delivered
   again after it got that far is never charged twice: its charge, if approved, is credited by
   the gateway's webhook), charges the
   profile (``createTransactionRequest``, ``authCaptureTransaction``, refId = the recharge id).
   Approved: the payment is applied through ``PaymentService.apply`` under the gateway's
   transaction id (``payment:<transId>``), so the webhook that follows changes nothing more.
   Declined or failed: nothing is credited, ``recharge_declined`` is published, and the next
   attempt is enqueued after ``retry_s`` while the day's cap allows; at the cap the recharge ends.
   Held for review: the ``payment.fraud.approved`` webhook applies it later.

Every task body carries an HMAC-SHA256 (``mac``) over its fields with the recharge task key: the
webhooks function is publicly reachable, and only a task we made may charge a card.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from ..billing.amounts import money_text
from ..charging.clock import iso_from_ms
from ..charging.errors import TransientError
from ..plan import RechargeProfile
from ..ports import AlertPublisher, Clock, PaymentGateway, RechargeLocks, TaskQueue
from .gateway import HELD, ChargeOutcome, ProfileCharge
from .records import PaymentHeader
from .service import PaymentService

log = logging.getLogger(__name__)
RECHARGE_DECLINED = "recharge_declined"
TRIGGERS = frozenset({"low_balance", "suspend_pending"})


@dataclass(frozen=True, slots=True)
class CardRecharge:
    """A customer's card auto-recharge terms (from its plan)."""

    customer_id: str
    profile: RechargeProfile
    amount: Decimal
    currency: str


class BadTask(ValueError):
    """A task body that is not ours (no or a wrong mac) or not well formed."""


def recharge_id(customer_id: str, trigger_entry_id: str) -> str:
    """The deterministic id (and refId, <= 20 characters) of the recharge one crossing asks for."""
    digest = hashlib.sha256(f"{customer_id}\n{trigger_entry_id}".encode()).hexdigest()
    return "rc" + digest[:18]


def sign_task(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    fields = {name: value for name, value in body.items() if name != "mac"}
    mac = hmac.new(key.encode(), orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), hashlib.sha256).hexdigest()
    return {**fields, "mac": mac}


def verify_task(raw: bytes, key: str) -> dict[str, Any]:
    """The task's fields when its mac is right; BadTask otherwise."""
    if not key:
        raise BadTask("no recharge task key configured")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadTask("not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("mac"), str):
        raise BadTask("no mac")
    expected = sign_task(body, key)["mac"]
    if not hmac.compare_digest(expected.encode(), body["mac"].encode()):
        raise BadTask("wrong mac")
    for name in ("customer_id", "recharge_id"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise BadTask(f"{name} missing")
    if not isinstance(body.get("attempt"), int) or body["attempt"] < 1:
        raise BadTask("attempt missing")
    return {name: value for name, value in body.items() if name != "mac"}


class RechargeService:
    def __init__(self, terms: Callable[[str], CardRecharge | None], locks: RechargeLocks, queue: TaskQueue,
                 gateway: Callable[[], PaymentGateway], payments: Callable[[], PaymentService], alerts: AlertPublisher,
                 clock: Clock, *,
                 task_key: str, daily_attempts: int = 3, retry_s: int = 3600, in_flight_s: int = 900):
        self.terms = terms
        self.locks = locks
        self.queue = queue
        self._gateway = gateway      # built on first use: the rating functions only ever call request()
        self._payments = payments
        self.alerts = alerts
        self.clock = clock
        self.task_key = task_key
        self.daily_attempts = daily_attempts
        self.retry_s = retry_s
        self.in_flight_s = in_flight_s

    # -- 1. the crossing -----------------------------------------------------------------------

    def request(self, customer_id: str, trigger_entry_id: str) -> str | None:
        """Ask for a recharge; its id when this call put one in flight, None otherwise."""
        terms = self.terms(customer_id)
        if terms is None:
            return None
        rid = recharge_id(customer_id, trigger_entry_id)
        if not self.locks.acquire(customer_id, rid, self.in_flight_s):
            holder = self.locks.holder(customer_id)
            if holder != rid:
                log.info("recharge already in flight", extra={"customer_id": customer_id, "in_flight": holder})
                return None
        self._enqueue(customer_id, rid, 1, 0)
        return rid

    # -- 2. the task ---------------------------------------------------------------------------

    def run(self, task: Mapping[str, Any]) -> dict[str, Any]:
        customer_id, rid, attempt = task["customer_id"], task["recharge_id"], int(task["attempt"])
        if self.locks.holder(customer_id) != rid:
            return {"status": "not_in_flight", "recharge_id": rid}
        terms = self.terms(customer_id)
        if terms is None:
            self.locks.release(customer_id, rid)
            return {"status": "no_recharge_terms", "recharge_id": rid}
        now_ms = self.clock.now_ms()
        day = datetime.fromtimestamp(now_ms / 1000, UTC).date().isoformat()
        attempt_id = f"{rid}-{attempt}"
        count, first_delivery = self.locks.count_attempt(customer_id, day, attempt_id)
        if not first_delivery:
            # an earlier delivery of this task got as far as the charge and did not finish: the card may
            # have been charged, so it is not charged again; an approved charge is credited by its webhook
            self.locks.release(customer_id, rid)
            log.error("recharge attempt redelivered after its charge; not charged again",
                      extra={"customer_id": customer_id, "recharge_id": rid, "attempt": attempt})
            return {"status": "attempt_already_made", "recharge_id": rid}
        if count > self.daily_attempts:
            self.locks.release(customer_id, rid)
            self._declined(terms, rid, attempt, None, f"daily cap of {self.daily_attempts} attempts reached")
            return {"status": "cap_reached", "recharge_id": rid}
        charge = ProfileCharge(rid, customer_id, terms.profile.customer_profile_id, terms.profile.payment_profile_id,
                               terms.amount, rid, f"WARP auto-recharge {customer_id}")
        try:
            outcome = self._gateway().charge_profile(charge)
        except TransientError as exc:
            outcome = ChargeOutcome(3, None, None, f"gateway unavailable: {exc}")
        if outcome.approved and outcome.transaction_id:
            header = PaymentHeader(outcome.transaction_id, customer_id, "prepaid", terms.amount, terms.currency,
                                   datetime.fromtimestamp(now_ms / 1000, UTC).date(), rid, "auto-recharge")
            self._payments().apply(header)
            self.locks.release(customer_id, rid)
            log.info("recharge approved", extra={"customer_id": customer_id, "recharge_id": rid,
                                                 "transaction_id": outcome.transaction_id})
            return {"status": "approved", "recharge_id": rid, "transaction_id": outcome.transaction_id}
        if outcome.response_code == HELD:
            self.locks.release(customer_id, rid)
            return {"status": "held", "recharge_id": rid, "transaction_id": outcome.transaction_id}
        self._declined(terms, rid, attempt, outcome.transaction_id, outcome.message)
        if count < self.daily_attempts:
            self.locks.extend(customer_id, rid, self.retry_s + self.in_flight_s)
            self._enqueue(customer_id, rid, attempt + 1, self.retry_s)
            return {"status": "declined", "recharge_id": rid, "retry_in_s": self.retry_s}
        self.locks.release(customer_id, rid)
        return {"status": "declined", "recharge_id": rid, "retry_in_s": None}

    # -- internals -----------------------------------------------------------------------------

    def _enqueue(self, customer_id: str, rid: str, attempt: int, delay_s: int) -> None:
        body = sign_task({"customer_id": customer_id, "recharge_id": rid, "attempt": attempt}, self.task_key)
        self.queue.enqueue(f"{rid}-{attempt}", body, delay_s=delay_s)

    def _declined(self, terms: CardRecharge, rid: str, attempt: int, transaction_id: str | None, reason: str) -> None:
        self.alerts.publish({
            "alert_id": f"{RECHARGE_DECLINED}:{terms.customer_id}:{rid}:{attempt}", "type": RECHARGE_DECLINED,
            "customer_id": terms.customer_id, "recharge_id": rid, "attempt": attempt,
            "amount": money_text(terms.amount), "currency": terms.currency, "transaction_id": transaction_id,
            "reason": reason, "daily_attempts": self.daily_attempts, "at": iso_from_ms(self.clock.now_ms()),
        })
        log.warning("recharge declined", extra={"customer_id": terms.customer_id, "recharge_id": rid,
                                                "attempt": attempt, "reason": reason})


class RechargeTrigger:
    """An ``AlertPublisher`` that also requests a card recharge at a prepaid low-balance crossing."""

    def __init__(self, inner: AlertPublisher, recharges: Callable[[], RechargeService]):
        self.inner = inner
        self._recharges = recharges

    def publish(self, alert: Mapping) -> None:
        self.inner.publish(alert)
        if alert.get("type") in TRIGGERS and alert.get("customer_id") and alert.get("event_id"):
            self._recharges().request(str(alert["customer_id"]), str(alert["event_id"]))


def handle_task(raw: bytes, key: str, service: Callable[[], RechargeService]) -> tuple[int, dict[str, Any]]:
    """One ``recharge`` task delivered over HTTP: 401 when it is not ours, else the run's answer."""
    try:
        task = verify_task(raw, key)
    except BadTask as exc:
        log.warning("recharge task refused", extra={"reason": str(exc)})
        return 401, {"error": "task_refused", "reason": str(exc)}
    try:
        return 200, service().run(task)
    except TransientError as exc:
        return 503, {"error": exc.code.value}

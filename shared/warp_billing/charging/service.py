"""The real-time charging service: one delivered usage event in, every durable effect out.

For each delivery ``ChargingService.handle``:

1. turns a delivery that could not be decoded into a reject (MALFORMED_JSON / BAD_FIELD);
2. checks the event's age: older than ``max_event_age_s`` is EVENT_TOO_OLD, unless the event
   was already charged (a late redelivery), whose original result is then completed;
3. rates it with the shared core under the customer's current plan version;
4. charges it: prepaid debit or postpaid running total, atomically with the dedup mark;
5. writes the ledger entries (LedgerStore), the rated row or the reject (UsageStore), then
   publishes the alerts (low balance, suspension, auto-recharge, low margin, credit limit).

Delivery semantics: permanent problems become rejects and the delivery is acknowledged;
anything a retry can cure raises ``TransientError`` so Pub/Sub redelivers. Every write is
keyed by a business id (event_id, ledger entry id, alert id), and a redelivered event gets
the ORIGINAL charge result from the balance store, so a crash at any point (between the debit
and the usage write, say) neither charges twice nor loses the row: the redelivery writes the
same row and entries again, and the stores keep one of each.

``handle_batch`` does the same for many deliveries with one balance-store round trip and one
write per store (pull subscribers, `warp rejects replay`, benchmarks).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from ..money import MoneyError, format_amount, from_micros, to_micros
from ..ports import AlertPublisher, BalanceStore, Clock, LedgerEntry, LedgerStore, UsageStore
from ..rating.event_check import check_event, is_key
from ..rating.rated_event import RatedEvent, RejectedEvent
from ..rating.rater import rejected_event
from ..rating.rejections import Reason, Rejection
from ..timeutil import UTC, InstantError, parse_instant
from .accounts import ChargeRequest, ChargeResult, PostpaidTerms
from .alerts import account_alert, low_margin_alert
from .clock import SystemClock, iso_from_ms, ms_from_datetime
from .errors import TransientCode, TransientError
from .plan_catalog import CompiledPlan, PlanCatalog
from .postpaid import postpaid_terms

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RATED = "rated"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One usage message as delivered (decoded by the entry point).

    Attributes:
        event: the decoded JSON body (a dict for a usable event).
        message_id: Pub/Sub messageId (the reject's key when the event has no event_id).
        raw: the message body as text, kept with a reject so it can be corrected and replayed.
        problem: why the message could not be decoded (then ``event`` is None).
        attributes: Pub/Sub message attributes.
    """

    event: object | None
    message_id: str | None = None
    raw: str | None = None
    problem: Rejection | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_event(cls, event: object, message_id: str | None = None) -> Delivery:
        """A delivery of an already decoded event (tests, replays, benchmarks)."""
        raw = orjson.dumps(event).decode() if isinstance(event, dict) else None
        return cls(event, message_id, raw)


@dataclass(frozen=True, slots=True)
class Handled:
    """What became of one delivery (for logs, summaries and tests).

    Attributes:
        status: "rated" or "rejected".
        duplicate: the charge was a stored result (a redelivery); nothing moved again.
        balance_micros: prepaid balance / postpaid cycle total after the charge, when charged.
    """

    status: str
    event_id: str | None
    customer_id: str | None
    reason: str | None = None
    amount: Decimal | None = None
    duplicate: bool = False
    balance_micros: int | None = None


@dataclass(slots=True)
class _Checked:
    """An event that passed the shared check: its clean common fields and its start instant."""

    event: dict[str, Any]
    event_id: str
    kind: str
    customer_id: str
    vendor_id: str | None
    start_text: object
    start: datetime = EPOCH

    def rejected(self, reason: Reason, detail: str) -> RejectedEvent:
        start_text = self.start_text if isinstance(self.start_text, str) else None
        return RejectedEvent(self.event_id, self.kind, self.customer_id, reason.value, detail, start_text)


@dataclass(slots=True)
class _Rated:
    delivery: Delivery
    compiled: CompiledPlan
    rated: RatedEvent
    request: ChargeRequest
    prior: ChargeResult | None = None  # set when the event is too old but was charged before


@dataclass(slots=True)
class _Effects:
    """Everything one or more deliveries write, deduplicated by business key."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejects: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: dict[str, LedgerEntry] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)


class ChargingService:
    """Rates, charges and records usage events (see the module docstring)."""

    def __init__(self, catalog: PlanCatalog, balances: BalanceStore, usage: UsageStore, ledger: LedgerStore,
                 alerts: AlertPublisher, *, max_event_age_s: int, clock: Clock | None = None):
        self.catalog = catalog
        self.balances = balances
        self.usage = usage
        self.ledger = ledger
        self.alerts = alerts
        self.clock = clock or SystemClock()
        self._max_age_ms = max_event_age_s * 1000

    # -- entry points -----------------------------------------------------------------------

    def handle(self, delivery: Delivery, *, replay: bool = False) -> Handled:
        """Handle one delivery; raise ``TransientError`` when it must be retried."""
        now_ms = self.clock.now_ms()
        effects = _Effects()
        step = self._prepare(delivery, now_ms, replay)
        if isinstance(step, _Rated):
            result = step.prior if step.prior is not None else self.balances.charge(step.request)
            handled = self._settle(step, result, now_ms, effects)
        else:
            handled = self._reject(delivery, step, now_ms, effects)
        self._write(effects)
        _log_handled(handled)
        return handled

    def handle_batch(self, deliveries: Sequence[Delivery], *, replay: bool = False) -> list[Handled | TransientError]:
        """Handle many deliveries with one balance-store round trip and one write per store.

        An item that must be retried comes back as its ``TransientError`` (the others are
        done); a failed write raises ``TransientError`` for the whole batch (all idempotent).
        """
        now_ms = self.clock.now_ms()
        effects = _Effects()
        outcomes: list[Handled | TransientError | _Rated] = []
        charges: list[_Rated] = []
        for delivery in deliveries:
            try:
                step = self._prepare(delivery, now_ms, replay)
            except TransientError as exc:
                outcomes.append(exc)
                continue
            if isinstance(step, _Rated):
                outcomes.append(step)
                if step.prior is None:
                    charges.append(step)
            else:
                outcomes.append(self._reject(delivery, step, now_ms, effects))
        results = iter(self.balances.charge_many([step.request for step in charges]))
        charged = {id(step): next(results) for step in charges}
        final: list[Handled | TransientError] = []
        for outcome in outcomes:
            if not isinstance(outcome, _Rated):
                final.append(outcome)
                continue
            result = outcome.prior if outcome.prior is not None else charged[id(outcome)]
            settled = result if isinstance(result, TransientError) else self._settle(outcome, result, now_ms, effects)
            final.append(settled)
        self._write(effects)
        for outcome in final:
            if isinstance(outcome, Handled):
                _log_handled(outcome)
        return final

    # -- steps --------------------------------------------------------------------------------

    def _prepare(self, delivery: Delivery, now_ms: int, replay: bool) -> _Rated | RejectedEvent:
        """Decode checks, age, plan and rating: a charge to make, or a reject.

        Each step returns what the next needs or the reject that ends the delivery; a new check
        (a start_time too far in the future, a durable dedup lookup) is one more step here.
        """
        checked = self._check_event(delivery)
        if isinstance(checked, RejectedEvent):
            return checked
        prior = None
        if not replay and now_ms - ms_from_datetime(checked.start) > self._max_age_ms:
            prior = self.balances.prior_result(checked.customer_id, checked.event_id, checked.kind)
            if prior is None:
                return checked.rejected(Reason.EVENT_TOO_OLD, f"started {checked.start_text}, more than "
                                                              f"{self._max_age_ms // 1000} s before it was processed")
        compiled = self._plan_for(checked.customer_id, prior)
        if compiled is None:
            return checked.rejected(Reason.UNKNOWN_CUSTOMER, f"no plan for customer {checked.customer_id!r}")
        return self._rate(delivery, checked, compiled, prior, now_ms, replay)

    def _check_event(self, delivery: Delivery) -> _Checked | RejectedEvent:
        """The shared event check (``rating.event_check``) plus what charging adds: a start_time."""
        if delivery.problem is not None:
            return RejectedEvent(None, None, None, delivery.problem.reason.value, delivery.problem.detail)
        event = delivery.event
        if type(event) is not dict:
            return RejectedEvent(None, None, None, Reason.MALFORMED_JSON.value, "the message body is not a JSON object")
        try:
            event_id, kind, customer_id, vendor_id = check_event(event)
        except Rejection as rejection:
            rejected = rejected_event(event, rejection)
            if rejection.reason is Reason.BAD_FIELD and rejected.event_id is not None and not is_key(rejected.event_id):
                rejected.event_id = None  # an invalid event_id must not become the reject's key
            return rejected
        start_text = event.get("start_time")
        checked = _Checked(event, event_id, kind, customer_id, vendor_id, start_text)
        if "{" in customer_id or "}" in customer_id:
            # braces are Redis Cluster hash-tag syntax: such an id could address another customer's keys
            return checked.rejected(Reason.UNKNOWN_CUSTOMER, f"no plan for customer {customer_id!r}")
        try:
            checked.start = parse_instant(start_text)
        except InstantError as exc:
            return checked.rejected(Reason.BAD_FIELD, f"start_time: {'missing' if start_text is None else exc}")
        return checked

    def _plan_for(self, customer_id: str, prior: ChargeResult | None) -> CompiledPlan | None:
        """The plan to rate with: the current version, or the one a late redelivery was charged under."""
        compiled = self.catalog.current(customer_id)
        if prior is not None and (compiled is None or compiled.version != prior.plan_version):
            compiled = self.catalog.at_version(customer_id, prior.plan_version) or compiled
        return compiled

    def _rate(self, delivery: Delivery, checked: _Checked, compiled: CompiledPlan, prior: ChargeResult | None,
              now_ms: int, replay: bool) -> _Rated | RejectedEvent:
        """Rate under ``compiled`` and build the charge request."""
        try:
            rated = compiled.rater.rate(checked.event, checked.event_id, checked.kind, checked.vendor_id)
            amount_micros = to_micros(rated.amount)
        except Rejection as rejection:
            if prior is not None and prior.charged:
                log.error("a charged event can no longer be rated; its ledger entries stand",
                          extra={"event_id": checked.event_id, "customer_id": checked.customer_id,
                                 "reason": rejection.reason.value})
            return checked.rejected(rejection.reason, rejection.detail)
        except MoneyError as exc:
            return checked.rejected(Reason.BAD_FIELD, str(exc))
        terms = compiled.prepaid if compiled.prepaid is not None else postpaid_terms(compiled.plan, checked.start)
        request = ChargeRequest(checked.customer_id, checked.event_id, amount_micros, now_ms, checked.kind,
                                compiled.version, terms, replay)
        return _Rated(delivery, compiled, rated, request, prior)

    def _settle(self, step: _Rated, result: ChargeResult, now_ms: int, effects: _Effects) -> Handled:
        """Turn a charge result into the rows, entries and alerts to write."""
        rated, compiled, request = step.rated, step.compiled, step.request
        if result.duplicate and result.plan_version and result.plan_version != compiled.version:
            rated, compiled = self._rerate_at(step, result.plan_version)
        for entry in result.entries:
            effects.entries[entry.entry_id] = entry
        currency = compiled.currency
        threshold = compiled.prepaid.low_balance_threshold_micros if compiled.prepaid is not None else None
        for alert in result.alerts:
            document = account_alert(alert, request.customer_id, request.entry_id, result.at_ms, currency, threshold)
            effects.alerts[document["alert_id"]] = document
        if not result.charged:
            reason = result.reason or Reason.INSUFFICIENT_BALANCE
            reject = RejectedEvent(rated.event_id, rated.kind, rated.customer_id, reason.value,
                                   _refusal_detail(reason, result, request, currency), rated.start_time)
            return self._reject(step.delivery, reject, now_ms, effects, duplicate=result.duplicate)
        record = rated.to_record()
        if result.amount_micros != to_micros(rated.amount):
            # Re-rated under another plan version than the one charged: the row must equal the debit.
            log.error("re-rated amount differs from the stored charge; the row keeps the charged amount",
                      extra={"event_id": rated.event_id, "customer_id": rated.customer_id,
                             "rated_amount": record["amount"], "charged_micros": result.amount_micros})
            record["amount"] = format_amount(from_micros(result.amount_micros))
        effects.rows[rated.event_id] = record
        if rated.low_margin:
            document = low_margin_alert(rated, result.at_ms, currency, compiled.plan.margin.alert_below_pct)
            effects.alerts[document["alert_id"]] = document
        return Handled(RATED, rated.event_id, rated.customer_id, None, from_micros(result.amount_micros),
                       result.duplicate, result.balance_micros)

    def _rerate_at(self, step: _Rated, version: str) -> tuple[RatedEvent, CompiledPlan]:
        """Rate a redelivered event under the plan version it was charged with."""
        earlier = self.catalog.at_version(step.request.customer_id, version)
        if earlier is None:
            return step.rated, step.compiled
        event = step.delivery.event
        if not isinstance(event, dict):  # a rated step always came from a decoded object
            return step.rated, step.compiled
        try:
            vendor_id = event.get("vendor_id") or None
            return earlier.rater.rate(event, step.rated.event_id, step.rated.kind, vendor_id), earlier
        except Rejection:
            return step.rated, step.compiled

    def _reject(self, delivery: Delivery, reject: RejectedEvent, now_ms: int, effects: _Effects,
                duplicate: bool = False) -> Handled:
        record = reject.to_record()
        record["message_id"] = delivery.message_id
        record["received_at"] = iso_from_ms(now_ms)
        record["raw"] = delivery.raw
        record["reject_id"] = reject_id(reject.event_id, delivery)
        effects.rejects[record["reject_id"]] = record
        return Handled(REJECTED, reject.event_id, reject.customer_id, reject.reason, None, duplicate)

    def _write(self, effects: _Effects) -> None:
        """Persist in the order that keeps money safe: ledger, usage rows, rejects, alerts."""
        if effects.entries:
            _attempt(TransientCode.LEDGER_STORE_UNAVAILABLE, self.ledger.append, list(effects.entries.values()))
        if effects.rows:
            _attempt(TransientCode.USAGE_STORE_UNAVAILABLE, self.usage.insert_rated, list(effects.rows.values()))
        if effects.rejects:
            _attempt(TransientCode.USAGE_STORE_UNAVAILABLE, self.usage.insert_rejects, list(effects.rejects.values()))
        for document in effects.alerts.values():
            _attempt(TransientCode.ALERTS_UNAVAILABLE, self.alerts.publish, document)


def reject_id(event_id: str | None, delivery: Delivery) -> str:
    """The reject's idempotency key: the event_id, else the Pub/Sub messageId, else a digest of the body."""
    if event_id:
        return event_id
    if delivery.message_id:
        return f"message:{delivery.message_id}"
    return "raw:" + hashlib.sha256((delivery.raw or "").encode("utf-8", "replace")).hexdigest()[:32]


def _attempt(code: TransientCode, write: Callable[[Any], None], argument: Any) -> None:
    try:
        write(argument)
    except TransientError:
        raise
    except Exception as exc:  # a store that fails is retried by redelivery; every write is idempotent
        raise TransientError(code, f"{type(exc).__name__}: {exc}") from exc


def _refusal_detail(reason: Reason, result: ChargeResult, request: ChargeRequest, currency: str) -> str:
    amount = format_amount(from_micros(result.amount_micros))
    after = format_amount(from_micros(result.balance_micros))
    if reason is Reason.SUSPENDED:
        since = iso_from_ms(result.deadline_ms) if result.deadline_ms is not None else "the notice deadline"
        return f"prepaid account suspended since {since} (balance {after} {currency}); top up, then replay"
    if reason is Reason.CREDIT_LIMIT:
        terms = request.terms
        limit = (format_amount(from_micros(terms.credit_limit_micros))
                 if isinstance(terms, PostpaidTerms) and terms.credit_limit_micros is not None else "?")
        return (f"cycle total {after} {currency} + {amount} would exceed the credit limit {limit}; "
                f"raise the limit, then replay")
    return f"prepaid balance {after} {currency} cannot cover {amount}; top up, then replay"


def _log_handled(handled: Handled) -> None:
    if handled.status == REJECTED:
        log.info("usage event rejected", extra={"event_id": handled.event_id, "customer_id": handled.customer_id,
                                                "reason": handled.reason, "duplicate": handled.duplicate})
    elif log.isEnabledFor(logging.DEBUG):
        log.debug("usage event charged", extra={"event_id": handled.event_id, "customer_id": handled.customer_id,
                                                "amount": format_amount(handled.amount),
                                                "duplicate": handled.duplicate})

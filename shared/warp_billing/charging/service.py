"""The real-time charging service: one delivered usage event in, every durable effect out.

For each delivery ``ChargingService.handle``:

1. turns a delivery that could not be decoded into a reject (MALFORMED_JSON / BAD_FIELD);
2. checks the event's age: older than ``max_event_age_s`` is EVENT_TOO_OLD, unless the event
   was already charged (a late redelivery), whose original result is then completed;
3. rates it with the shared core under the customer's current plan version;
4. charges it: prepaid debit or postpaid running total, atomically with the dedup mark;
5. writes the ledger entries (LedgerStore), the rated row or the reject (UsageStore), then
   publishes the alerts (low balance, suspension, auto-recharge, low margin, credit limit).

Money safety (``admission.py``): ids shaped like another movement's ledger key are BAD_FIELD;
an event that starts more than ``max_future_skew_s`` ahead is EVENT_IN_FUTURE; an event whose
Redis dedup mark may have expired, and every replay, is first looked up in the durable usage
store by event_id (found: acknowledged as a duplicate, nothing charged). The Lua step that debits
also records the ledger entries in the customer's Redis outbox; once the ledger store holds them
the outbox is cleared (the sweep drains whatever a crash left). A customer whose Redis state is
not verified against the ledger (restart, restore, failover: BALANCES_STALE) or missing is
reconciled from the ledger first when a ``reconcile`` callable is given, else retried.

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
from ..ports import AlertPublisher, BalanceStore, Clock, LedgerEntry, LedgerStore, PermanentStoreError, UsageStore
from ..rating.event_check import check_event, is_key
from ..rating.rated_event import RatedEvent, RejectedEvent
from ..rating.rater import rejected_event
from ..rating.rejections import Reason, Rejection
from ..timeutil import UTC, InstantError, parse_instant
from .accounts import MAX_MICROS, ChargeRequest, ChargeResult, PostpaidTerms
from .admission import beyond_dedup_horizon, future_problem, reserved_id_problem, truncated_raw
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
    durable_check: bool = False        # its Redis dedup mark may be gone: look in the usage store first


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
                 alerts: AlertPublisher, *, max_event_age_s: int, clock: Clock | None = None,
                 dedup_ttl_s: int | None = None, max_future_skew_s: int = 300,
                 reconcile: Callable[[str], bool] | None = None):
        """``reconcile(customer_id)`` brings one customer's Redis state up to the ledger (None: leave
        it to the sweep / `warp balance rebuild` and answer transient meanwhile)."""
        self.catalog = catalog
        self.balances = balances
        self.usage = usage
        self.ledger = ledger
        self.alerts = alerts
        self.clock = clock or SystemClock()
        self._max_age_ms = max_event_age_s * 1000
        self._dedup_ttl_s = dedup_ttl_s if dedup_ttl_s is not None else max_event_age_s
        self._skew_s = max_future_skew_s
        self._reconcile = reconcile

    # -- entry points -----------------------------------------------------------------------

    def handle(self, delivery: Delivery, *, replay: bool = False) -> Handled:
        """Handle one delivery; raise ``TransientError`` when it must be retried."""
        now_ms = self.clock.now_ms()
        effects = _Effects()
        step = self._prepare(delivery, now_ms, replay)
        if isinstance(step, _Rated) and step.durable_check and self._already_rated([step]):
            handled = self._durable_duplicate(step)
        elif isinstance(step, _Rated):
            result = step.prior if step.prior is not None else self._charge_healing(step.request)
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
        known = self._already_rated([step for step in charges if step.durable_check])
        charged = self._charge_many_healing([step for step in charges if step.rated.event_id not in known])
        final: list[Handled | TransientError] = []
        for outcome in outcomes:
            if not isinstance(outcome, _Rated):
                final.append(outcome)
                continue
            if outcome.prior is None and outcome.rated.event_id in known:
                final.append(self._durable_duplicate(outcome))
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
        refused = self._money_safety_refusal(checked, now_ms)
        if refused is not None:
            return refused
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
        if amount_micros > MAX_MICROS:
            return checked.rejected(Reason.BAD_FIELD, f"amount {rated.amount} is above {from_micros(MAX_MICROS)}, the "
                                                      "largest amount the balance store keeps exact")
        terms = compiled.prepaid if compiled.prepaid is not None else postpaid_terms(compiled.plan, checked.start)
        request = ChargeRequest(checked.customer_id, checked.event_id, amount_micros, now_ms, checked.kind,
                                compiled.version, terms, replay)
        start_ms = ms_from_datetime(checked.start)
        durable = prior is None and (replay or beyond_dedup_horizon(start_ms, now_ms, self._dedup_ttl_s, self._skew_s))
        return _Rated(delivery, compiled, rated, request, prior, durable)

    # -- money safety: reserved ids, the future bound, durable dedup, self-healing charges ----------

    def _money_safety_refusal(self, checked: _Checked, now_ms: int) -> RejectedEvent | None:
        """An id shaped like another movement's ledger key, or a start too far ahead (``admission.py``)."""
        reserved = reserved_id_problem(checked.event_id)
        if reserved is not None:
            return checked.rejected(Reason.BAD_FIELD, reserved)
        future = future_problem(ms_from_datetime(checked.start), now_ms, self._skew_s, str(checked.start_text))
        if future is not None:
            return checked.rejected(Reason.EVENT_IN_FUTURE, future)
        return None

    def _already_rated(self, steps: list[_Rated]) -> set[str]:
        """Event ids among ``steps`` that the durable usage store already holds a rated row for."""
        if not steps:
            return set()
        try:
            return self.usage.rated_event_ids(_utc_days(steps))
        except TransientError:
            raise
        except Exception as exc:  # cannot tell whether it was charged: never guess, retry
            raise TransientError(TransientCode.USAGE_STORE_UNAVAILABLE, f"durable dedup lookup: {exc}") from exc

    def _durable_duplicate(self, step: _Rated) -> Handled:
        rated = step.rated
        log.info("event already rated in the usage store; not charged again",
                 extra={"event_id": rated.event_id, "customer_id": rated.customer_id})
        return Handled(RATED, rated.event_id, rated.customer_id, None, rated.amount, True, None)

    def _charge_healing(self, request: ChargeRequest) -> ChargeResult:
        """Charge; a customer whose Redis copy is stale or missing is reconciled first, once."""
        try:
            return self.balances.charge(request)
        except TransientError as exc:
            if not self._healed(exc):
                raise
        return self.balances.charge(request)

    def _charge_many_healing(self, steps: list[_Rated]) -> dict[int, ChargeResult | TransientError]:
        results = self.balances.charge_many([step.request for step in steps])
        charged = {id(step): result for step, result in zip(steps, results, strict=True)}
        retry = [step for step, result in zip(steps, results, strict=True)
                 if isinstance(result, TransientError) and self._healed(result)]
        again = self.balances.charge_many([step.request for step in retry]) if retry else []
        for step, result in zip(retry, again, strict=True):
            charged[id(step)] = result
        return charged

    def _healed(self, error: TransientError) -> bool:
        """Reconcile the customer a stale / missing-account error names; True when it is now verified."""
        customer = getattr(error, "customer_id", None)
        if self._reconcile is None or customer is None or error.code not in _HEALABLE:
            return False
        try:
            return self._reconcile(customer)
        except Exception as exc:  # the delivery is retried; the sweep reconciles too
            log.warning("reconcile on demand failed", extra={"customer_id": customer, "detail": str(exc)})
            return False

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
        record["raw"] = truncated_raw(delivery.raw)
        record["reject_id"] = reject_id(reject.event_id, delivery)
        effects.rejects[record["reject_id"]] = record
        return Handled(REJECTED, reject.event_id, reject.customer_id, reject.reason, None, duplicate)

    def _write(self, effects: _Effects) -> None:
        """Persist in the order that keeps money safe: ledger, usage rows, rejects, alerts.

        Each store answers transient (raised: the delivery is retried) or permanent (the record
        can never be stored as it is): a refused rated row becomes a STORE_REFUSED reject, a
        refused reject is kept without its raw payload, a refused alert is logged.
        """
        entries = list(effects.entries.values())
        if entries:
            _attempt(TransientCode.LEDGER_STORE_UNAVAILABLE, self.ledger.append, entries)
        if effects.rows:
            try:
                _attempt(TransientCode.USAGE_STORE_UNAVAILABLE, self.usage.insert_rated, list(effects.rows.values()))
            except PermanentStoreError as exc:
                self._rows_refused(effects, exc)
        if entries or effects.rows:
            self._clear_outbox(entries, [(row["customer_id"], event_id) for event_id, row in effects.rows.items()])
        if effects.rejects:
            try:
                _attempt(TransientCode.USAGE_STORE_UNAVAILABLE, self.usage.insert_rejects,
                         list(effects.rejects.values()))
            except PermanentStoreError as exc:
                self._rejects_refused(effects, exc)
        for document in effects.alerts.values():
            try:
                _attempt(TransientCode.ALERTS_UNAVAILABLE, self.alerts.publish, document)
            except PermanentStoreError as exc:
                log.error("alert refused by the topic for its content; not retried",
                          extra={"alert_id": document.get("alert_id"), "detail": str(exc)})

    def _clear_outbox(self, entries: list[LedgerEntry], rated: list[tuple[str, str]]) -> None:
        """The stores hold these now: one round trip drops them from the Redis outboxes."""
        persisted = getattr(self.balances, "persisted", None)
        if persisted is None:
            return
        try:
            persisted(entries, rated, deferred=True)
        except Exception as exc:  # the work is done; the sweep drains the outbox later
            log.warning("outbox not cleared; the sweep will", extra={"entries": len(entries), "detail": str(exc)})

    def _rows_refused(self, effects: _Effects, error: PermanentStoreError) -> None:
        """Rated rows the store will never take: kept as STORE_REFUSED rejects (the charge stands)."""
        log.error("rated rows refused by the usage store for their content; kept as STORE_REFUSED rejects",
                  extra={"rows": len(effects.rows), "detail": str(error)})
        refused = []
        for event_id, row in effects.rows.items():
            raw = truncated_raw(orjson.dumps(row, default=str).decode())
            refused.append({"reject_id": event_id, "event_id": event_id, "customer_id": row.get("customer_id"),
                            "kind": row.get("kind"), "start_time": row.get("start_time"),
                            "reason": Reason.STORE_REFUSED.value,
                            "detail": f"charged {row.get('amount')}; {error}"[:1000],
                            "raw": raw, "received_at": None})
        _attempt_permanent_reject(self.usage, refused)

    def _rejects_refused(self, effects: _Effects, error: PermanentStoreError) -> None:
        log.error("rejects refused by the usage store for their content; kept without their raw payload",
                  extra={"rejects": len(effects.rejects), "detail": str(error)})
        minimal = []
        for record in effects.rejects.values():
            raw = record.get("raw") or ""
            digest = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
            minimal.append({**record, "raw": f"[not stored: {len(raw)} characters, sha256 {digest}]",
                            "detail": (str(record.get("detail") or ""))[:1000]})
        _attempt_permanent_reject(self.usage, minimal)


def reject_id(event_id: str | None, delivery: Delivery) -> str:
    """The reject's idempotency key: the event_id, else the Pub/Sub messageId, else a digest of the body."""
    if event_id:
        return event_id
    if delivery.message_id:
        return f"message:{delivery.message_id}"
    return "raw:" + hashlib.sha256((delivery.raw or "").encode("utf-8", "replace")).hexdigest()[:32]


_HEALABLE = (TransientCode.BALANCES_STALE, TransientCode.ACCOUNT_NOT_LOADED)


def _utc_days(steps: list[_Rated]) -> list[tuple[str, str]]:
    """(event_id, UTC start day): the usage store's partition of each event."""
    return [(step.rated.event_id, parse_instant(step.rated.start_time).astimezone(UTC).date().isoformat())
            for step in steps]


def _attempt(code: TransientCode, write: Callable[[Any], None], argument: Any) -> None:
    """Write; a ``PermanentStoreError`` (the adapter's verdict) passes through, anything else is retried."""
    try:
        write(argument)
    except (TransientError, PermanentStoreError):
        raise
    except Exception as exc:  # an adapter that did not classify: retried by redelivery; every write is idempotent
        raise TransientError(code, f"{type(exc).__name__}: {exc}") from exc


def _attempt_permanent_reject(usage: UsageStore, records: list[dict[str, Any]]) -> None:
    try:
        _attempt(TransientCode.USAGE_STORE_UNAVAILABLE, usage.insert_rejects, records)
    except PermanentStoreError as exc:  # even the minimal record: logged with its keys, acknowledged
        log.error("reject not storable even without its payload; acknowledged",
                  extra={"reject_ids": [record.get("reject_id") for record in records][:20], "detail": str(exc)})


def _refusal_detail(reason: Reason, result: ChargeResult, request: ChargeRequest, currency: str) -> str:
    amount = format_amount(from_micros(result.amount_micros))
    after = format_amount(from_micros(result.balance_micros))
    if reason is Reason.SUSPENDED:
        since = iso_from_ms(result.deadline_ms) if result.deadline_ms is not None else "the notice deadline"
        return f"prepaid account suspended since {since} (balance {after} {currency}); top up, then replay"
    if reason is Reason.ACCOUNT_SUSPENDED:
        return (f"account {request.customer_id} is suspended for an overdue invoice (dunning); "
                f"replay after it is reinstated (`warp account status {request.customer_id}`)")
    if reason is Reason.CREDIT_LIMIT:
        terms = request.terms
        limit = (format_amount(from_micros(terms.credit_limit_micros))
                 if isinstance(terms, PostpaidTerms) and terms.credit_limit_micros is not None
                 else f"(none; the exact-integer bound {format_amount(from_micros(MAX_MICROS))})")
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

"""Hand-written fakes of the ports, for unit tests of the charging service and the CLI.

Each fake keeps what was written in plain attributes and is idempotent by the same business
keys as the real adapter (event_id, reject_id, entry_id, alert_id), so tests can assert "exactly
once" the way the production stores behave. ``fail_next`` injects a failure on the next call.

``FakeBalances`` implements the prepaid / postpaid policy of the Lua scripts in Python; the
integration tests check that it and the Redis adapter agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import yaml

from warp_billing.charging.accounts import (
    CHARGED,
    MAX_MICROS,
    REFUSED,
    AccountAlert,
    AccountState,
    AlertCode,
    ChargeRequest,
    ChargeResult,
    PostpaidTerms,
    PrepaidTerms,
)
from warp_billing.charging.clock import iso_from_ms
from warp_billing.charging.errors import BalanceOutOfRange, LedgerConflict, TransientCode, TransientError
from warp_billing.ports import LedgerEntry
from warp_billing.rating.rejections import Reason

CREDIT_NAMESPACE = "\x00credit:"


class StoreDown(ConnectionError):
    """What a fake raises when told to fail (stands for a network / service error)."""


class _Failing:
    def __init__(self):
        self._failures: list[Exception] = []
        self.calls = 0

    def fail_next(self, error: Exception | None = None, times: int = 1) -> None:
        self._failures.extend([error or StoreDown(f"{type(self).__name__} is down")] * times)

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self._failures:
            raise self._failures.pop(0)


class FakeUsageStore(_Failing):
    """UsageStore: rated rows by event_id, rejects by reject_id; the first write stands."""

    def __init__(self):
        super().__init__()
        self.rated: dict[str, dict] = {}
        self.rejects: dict[str, dict] = {}
        self.rated_writes = 0

    def insert_rated(self, records: Sequence[Mapping]) -> None:
        self._maybe_fail()
        for record in records:
            self.rated_writes += 1
            self.rated.setdefault(record["event_id"], dict(record))

    def insert_rejects(self, records: Sequence[Mapping]) -> None:
        self._maybe_fail()
        for record in records:
            key = record.get("reject_id") or record.get("event_id") or record.get("message_id")
            assert key, f"a reject without a key: {record}"
            self.rejects.setdefault(key, dict(record))

    def rated_event_ids(self, keys) -> set[str]:
        self._maybe_fail()
        return {event_id for event_id, _ in keys if event_id in self.rated}

    def rated_amounts(self, customer_id, first_day, last_day):
        for record in list(self.rated.values()):
            if record.get("customer_id") == customer_id:
                yield record["event_id"], record["start_time"], record["amount"]


class FakeLedgerStore(_Failing):
    """LedgerStore: one entry per (customer, entry_id); ``rows`` keeps every append (duplicates too)."""

    def __init__(self):
        super().__init__()
        self.by_id: dict[tuple[str, str], LedgerEntry] = {}
        self.rows: list[LedgerEntry] = []

    def append(self, entries: Sequence[LedgerEntry]) -> None:
        self._maybe_fail()
        for entry in entries:
            self.rows.append(entry)
            self.by_id.setdefault((entry.customer_id, entry.entry_id), entry)

    def entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        for entry in list(self.by_id.values()):
            if customer_id is None or entry.customer_id == customer_id:
                yield entry

    def raw_entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        """Every appended row, plus rows a test planted in ``by_id`` directly."""
        planted = [entry for key, entry in self.by_id.items() if key != (entry.customer_id, entry.entry_id)]
        for entry in self.rows + planted:
            if customer_id is None or entry.customer_id == customer_id:
                yield entry

    def balance(self, customer_id: str) -> int:
        return sum(entry.amount_micros for entry in self.entries(customer_id))


class FakeAlertPublisher(_Failing):
    """AlertPublisher: every publish kept in order; ``by_id`` dedups as a consumer would."""

    def __init__(self):
        super().__init__()
        self.published: list[dict] = []

    def publish(self, alert: Mapping) -> None:
        self._maybe_fail()
        self.published.append(dict(alert))

    @property
    def by_id(self) -> dict[str, dict]:
        return {alert["alert_id"]: alert for alert in self.published}

    def of_type(self, kind: str) -> list[dict]:
        return [alert for alert in self.by_id.values() if alert["type"] == kind]


class FakePlanStore(_Failing):
    """PlanStore: versions "v1", "v2"... per customer; deck ids are the names the plan uses."""

    def __init__(self):
        super().__init__()
        self.documents: dict[tuple[str, str], dict] = {}
        self.pointer: dict[str, str] = {}
        self.decks: dict[str, str] = {}
        self._serial = itertools.count(1)
        self.pointer_reads = 0

    def current_version(self, customer_id: str) -> str | None:
        self._maybe_fail()
        self.pointer_reads += 1
        return self.pointer.get(customer_id)

    def plan_document(self, customer_id: str, version: str) -> Mapping:
        self._maybe_fail()
        try:
            return self.documents[(customer_id, version)]
        except KeyError:
            raise LookupError(f"no plan {customer_id}@{version}") from None

    def deck_text(self, deck_id: str) -> str:
        self._maybe_fail()
        try:
            return self.decks[deck_id]
        except KeyError:
            raise LookupError(f"no deck {deck_id!r}") from None

    def put_plan(self, customer_id: str, plan_yaml: str, decks: Mapping[str, str]) -> str:
        self._maybe_fail()
        version = f"v{next(self._serial)}"
        self.decks.update(decks)
        self.documents[(customer_id, version)] = yaml.safe_load(plan_yaml)
        self.pointer[customer_id] = version
        return version


class FakeClock:
    """A settable clock (epoch milliseconds)."""

    def __init__(self, now_ms: int = 1_793_750_400_000):  # 2026-11-04T00:00:00Z
        self.ms = now_ms

    def now_ms(self) -> int:
        return self.ms

    def now_iso(self) -> str:
        return iso_from_ms(self.ms)

    def advance(self, seconds: int) -> None:
        self.ms += seconds * 1000


class FakeMonotonic:
    """A settable monotonic clock (nanoseconds) for the plan catalog's refresh interval."""

    def __init__(self):
        self.ns = 0

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: int) -> None:
        self.ns += seconds * 1_000_000_000


@dataclass
class _Account:
    balance: int = 0
    low: bool = False
    suspend_at: int | None = None
    suspended_alerted: bool = False
    opened_ms: int = 0
    seq: int = 0
    ledger: list[LedgerEntry] = field(default_factory=list)


class FakeBalances(_Failing):
    """BalanceStore in memory, with the policy of prepaid_debit.lua / postpaid_charge.lua."""

    def __init__(self):
        super().__init__()
        self.accounts: dict[str, _Account] = {}
        self.results: dict[tuple[str, str], ChargeResult] = {}
        self.cycles: dict[tuple[str, str], dict] = {}
        self.outbox: dict[tuple[str, str], LedgerEntry] = {}
        self.fences: dict[str, str] = {}
        self.held: set[str] = set()   # suspended for non-payment (the warp:{C}:hold key of the scripts)
        self.charge_calls = 0

    # -- BalanceStore -----------------------------------------------------------------------

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self._maybe_fail()
        self.charge_calls += 1
        prior = self.results.get((request.customer_id, request.entry_id))
        if prior is not None and not (request.replay and prior.outcome == REFUSED):
            return replace(prior, duplicate=True)
        if request.customer_id in self.fences:
            raise TransientError(TransientCode.BALANCES_FENCED, f"{request.customer_id} is being reconciled")
        if isinstance(request.terms, PostpaidTerms):
            result = self._postpaid(request, request.terms)
        else:
            account = self.accounts.get(request.customer_id)
            if account is None:
                raise TransientError(TransientCode.ACCOUNT_NOT_LOADED, f"no prepaid account for {request.customer_id}")
            result = self._prepaid(request, request.terms, account)
        self.results[(request.customer_id, request.entry_id)] = result
        return result

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list:
        self._maybe_fail()
        out = []
        for request in requests:
            try:
                out.append(self.charge(request))
            except TransientError as exc:
                out.append(exc)
        return out

    def prior_result(self, customer_id: str, entry_id: str, reference: str) -> ChargeResult | None:
        self._maybe_fail()
        prior = self.results.get((customer_id, entry_id))
        return replace(prior, duplicate=True) if prior is not None else None

    def credit(self, customer_id, entry_id, amount_micros, kind, reference, at_ms, terms) -> ChargeResult:
        self._maybe_fail()
        key = (customer_id, CREDIT_NAMESPACE + entry_id)   # credits have a namespace of their own, as in Redis
        prior = self.results.get(key)
        if prior is not None:
            if prior.amount_micros != amount_micros:
                raise LedgerConflict(f"{entry_id} already booked {prior.amount_micros}")
            return replace(prior, duplicate=True)
        account = self.accounts.setdefault(customer_id, _Account(opened_ms=at_ms))
        if abs(account.balance + amount_micros) > MAX_MICROS or abs(amount_micros) > MAX_MICROS:
            raise BalanceOutOfRange(f"{entry_id}: the balance would pass {MAX_MICROS} micro-units")
        entries = [self._book(account, customer_id, entry_id, kind, amount_micros, at_ms, reference)]
        alerts = self._after(account, customer_id, terms, at_ms, [])
        result = ChargeResult(CHARGED, None, amount_micros, account.balance, at_ms, tuple(entries), tuple(alerts),
                              deadline_ms=account.suspend_at)
        self.results[key] = result
        return result

    def open_account(self, customer_id: str, at_ms: int) -> None:
        self._maybe_fail()
        self.accounts.setdefault(customer_id, _Account(opened_ms=at_ms))

    def account(self, customer_id: str) -> AccountState | None:
        account = self.accounts.get(customer_id)
        if account is None:
            return None
        return AccountState(customer_id, account.balance, account.low, account.suspend_at, account.opened_ms)

    def cycle_total(self, customer_id: str, cycle: str) -> tuple[int, int]:
        state = self.cycles.get((customer_id, cycle), {"total": 0, "events": 0})
        return state["total"], state["events"]

    def recent_ledger(self, customer_id: str, count: int = 20) -> list[LedgerEntry]:
        account = self.accounts.get(customer_id)
        return list(reversed(account.ledger))[:count] if account else []

    def is_verified(self, customer_id: str) -> bool:
        return customer_id not in self.fences

    def pending_charges(self, customers=None) -> list:
        return []

    def persisted(self, entries, rated=(), *, deferred: bool = False) -> None:
        for entry in entries:
            self.outbox.pop((entry.customer_id, entry.entry_id), None)

    # -- RebuildTarget ------------------------------------------------------------------------

    def fence(self, customers, lease_s: int):
        token = f"t{len(self.fences) + 1}"
        for customer in customers:
            self.fences[customer] = token
        return token, []

    def pending_entries(self, customers=None) -> list[LedgerEntry]:
        wanted = None if customers is None else set(customers)
        return [entry for (customer, _), entry in self.outbox.items() if wanted is None or customer in wanted]

    def customers_with(self, suffix: str) -> list[str]:
        if suffix == "account":
            return sorted(self.accounts)
        if suffix == "outbox":
            return sorted({customer for customer, _ in self.outbox})
        return sorted(self.fences)

    def release(self, image, token: str) -> bool:
        if self.fences.get(image.customer_id) != token:
            return False
        del self.fences[image.customer_id]
        if image.prepaid is not None:
            balance, seq, low, suspend_at, opened = image.prepaid
            kept = self.accounts.get(image.customer_id)
            self.accounts[image.customer_id] = _Account(balance, low, suspend_at, False,
                                                        kept.opened_ms if kept else opened, seq,
                                                        kept.ledger if kept else [])
        for cycle, (total, events) in image.cycles.items():
            state = self.cycles.setdefault((image.customer_id, cycle), {"total": 0, "events": 0, "soft": False,
                                                                        "hard": False})
            state.update(total=total, events=events)
        return True

    def restore_postpaid_results(self, customer_id, marks) -> int:
        for event_id, amount, start_ms, _ttl_s in marks:
            self.results.setdefault((customer_id, event_id), ChargeResult(CHARGED, None, amount, 0, start_ms))
        return len(marks)

    def restore_results(self, customer_id, results) -> int:
        count = 0
        for entry_id, result, ttl_s in results:  # ttl None: a credit (kept for ever)
            self.results.setdefault((customer_id, entry_id if ttl_s is not None else CREDIT_NAMESPACE + entry_id),
                                    result)
            count += 1
        return count

    # -- policy -------------------------------------------------------------------------------

    def _book(self, account: _Account, customer_id, entry_id, kind, change, at_ms, reference) -> LedgerEntry:
        account.balance += change
        account.seq += 1
        entry = LedgerEntry(entry_id, customer_id, kind, change, account.balance, iso_from_ms(at_ms), reference,
                            account.seq)
        account.ledger.append(entry)
        self.outbox[(customer_id, entry_id)] = entry
        return entry

    def _prepaid(self, request: ChargeRequest, terms: PrepaidTerms, account: _Account) -> ChargeResult:
        entries: list[LedgerEntry] = []
        alerts: list[AccountAlert] = []
        at = request.at_ms

        def recharge() -> None:
            if terms.auto_recharge and account.balance < terms.recharge_below_micros and not any(
                    entry.kind == "auto_recharge" for entry in entries):
                entries.append(self._book(account, request.customer_id, request.entry_id + "#recharge",
                                          "auto_recharge", terms.recharge_amount_micros, at,
                                          f"auto-recharge for {request.entry_id}"))

        outcome, reason = CHARGED, None
        if request.customer_id in self.held:   # before anything moves, no auto-recharge either
            outcome, reason = REFUSED, Reason.ACCOUNT_SUSPENDED
        else:
            recharge()
        if outcome == REFUSED:
            pass
        elif account.suspend_at is not None and at >= account.suspend_at and account.balance <= 0:
            outcome, reason = REFUSED, Reason.SUSPENDED
            if not account.suspended_alerted:
                alerts.append(AccountAlert(AlertCode.SUSPENDED, account.balance, account.suspend_at))
                account.suspended_alerted = True
        elif request.amount_micros > 0 and account.balance <= 0:
            outcome, reason = REFUSED, Reason.INSUFFICIENT_BALANCE
        else:
            if request.amount_micros > 0:
                entries.append(self._book(account, request.customer_id, request.entry_id, "debit",
                                          -request.amount_micros, at, request.reference))
            recharge()
        alerts = self._after(account, request.customer_id, terms, at, alerts)
        if any(entry.kind == "auto_recharge" for entry in entries):
            recharged = next(entry for entry in entries if entry.kind == "auto_recharge")
            alerts.append(AccountAlert(AlertCode.AUTO_RECHARGE, account.balance, amount_micros=recharged.amount_micros))
        return ChargeResult(outcome, reason, request.amount_micros, account.balance, at, tuple(entries), tuple(alerts),
                            request.plan_version, False, account.suspend_at)

    def _after(self, account: _Account, customer_id, terms: PrepaidTerms, at: int, alerts: list) -> list:
        if terms.low_balance_threshold_micros > 0:
            if account.balance < terms.low_balance_threshold_micros:
                if not account.low:
                    alerts.append(AccountAlert(AlertCode.LOW_BALANCE, account.balance))
                    account.low = True
            else:
                account.low = False
        if account.balance <= 0:
            if account.suspend_at is None:
                account.suspend_at = at + terms.suspend_after_s * 1000
                alerts.append(AccountAlert(AlertCode.SUSPEND_PENDING, account.balance, account.suspend_at))
        else:
            account.suspend_at = None
            account.suspended_alerted = False
        # The Lua script reports every alert with the final deadline; keep the same shape.
        return [replace(alert, deadline_ms=account.suspend_at)
                if alert.code in (AlertCode.SUSPEND_PENDING, AlertCode.SUSPENDED) else alert for alert in alerts]

    def _postpaid(self, request: ChargeRequest, terms: PostpaidTerms) -> ChargeResult:
        cycle = self.cycles.setdefault((request.customer_id, terms.cycle), {"total": 0, "events": 0, "soft": False,
                                                                          "hard": False})
        alerts = []
        amount = request.amount_micros
        if request.customer_id in self.held:
            return ChargeResult(REFUSED, Reason.ACCOUNT_SUSPENDED, amount, cycle["total"], request.at_ms, (), (),
                                request.plan_version)
        if terms.credit_limit_micros is not None and amount > 0 and cycle["total"] + amount > terms.credit_limit_micros:
            if not cycle["hard"]:
                cycle["hard"] = True
                alerts.append(AccountAlert(AlertCode.CREDIT_LIMIT_REACHED, cycle["total"]))
            return ChargeResult(REFUSED, Reason.CREDIT_LIMIT, amount, cycle["total"], request.at_ms, (), tuple(alerts),
                                request.plan_version)
        cycle["total"] += amount
        cycle["events"] += 1
        if terms.soft_limit_micros is not None and cycle["total"] >= terms.soft_limit_micros and not cycle["soft"]:
            cycle["soft"] = True
            alerts.append(AccountAlert(AlertCode.CREDIT_SOFT_LIMIT, cycle["total"]))
        return ChargeResult(CHARGED, None, amount, cycle["total"], request.at_ms, (), tuple(alerts),
                            request.plan_version)

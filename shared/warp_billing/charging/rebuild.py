"""Reconcile Redis with the durable stores: the ledger is the truth, Redis a fenced copy of it.

Safe under live traffic, per customer (``rebuild_balances``):

1. **fence**: charging for the customer answers BALANCES_FENCED (a transient error: Pub/Sub
   redelivers) while a lease runs; another live reconcile of the same customer is left alone;
2. **settle**: optionally wait ``settle_s`` for in-flight handlers (prepaid needs no wait: every
   debit made in Redis is in the customer's outbox, written in the same Lua step, and so is
   every postpaid charge until its rated row is written);
3. **drain**: the outbox (debits Redis made that the ledger store may not hold yet) is appended
   to the ledger, idempotently by entry id, then removed from Redis;
4. **compute** from the RAW ledger rows (never a deduplicated view, so two different movements
   under one entry id are seen and reported): balance = the sum of the entries, to the
   micro-unit; position (seq) = the highest sequence; the low-balance mark and suspension notice
   it implies; postpaid cycle totals of the cycles that can still receive events, from the usage
   store's rated rows plus the charges still pending in the outbox (by event_id);
5. **write and release** atomically (one Lua step that checks the lease is still ours): the
   account, the cycles, the generation stamp (this server's run_id) and no more fence. Dedup
   marks are ADDED (never overwritten): top-ups for ever, debits still inside the dedup window,
   so a redelivery of an event charged before a loss is recognised, not charged again.

The generation stamp is what makes a stale Redis detectable: a restarted, restored or promoted
server has another run_id, so its accounts and totals are refused (BALANCES_STALE) until they
are reconciled here. Alerts already sent are not resent; refusals (which move no money) are not
in the ledger, so a refused event redelivered after a loss is decided again.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..plan import Plan
from ..ports import Clock, LedgerEntry, LedgerStore, UsageStore
from ..rating.rejections import Reason
from ..timeutil import InstantError, parse_instant
from .accounts import CHARGED, REFUSED, AccountImage, ChargeResult, PrepaidTerms
from .clock import SystemClock, iso_from_ms, ms_from_datetime
from .postpaid import cycle_start

log = logging.getLogger(__name__)
RECHARGE_SUFFIX = "#recharge"
CREDIT_KINDS = ("topup", "adjustment")
DEFAULT_LEASE_S = 120


class RebuildTarget(Protocol):
    """What a reconcile needs from the balance store (``adapters.redis_balances.RedisBalances``)."""

    def fence(self, customers: Iterable[str], lease_s: int) -> tuple[str, list[str]]: ...

    def pending_entries(self, customers: Iterable[str] | None = None) -> list[LedgerEntry]: ...

    def persisted(self, entries: Iterable[LedgerEntry], rated: Iterable[tuple[str, str]] = ()) -> None: ...

    def pending_charges(self, customers: Iterable[str] | None = None) -> list[tuple[str, str, str, int]]: ...

    def restore_results(self, customer_id: str, results: Iterable[tuple[str, ChargeResult, int | None]]) -> int: ...

    def restore_postpaid_results(self, customer_id: str, marks: Iterable[tuple[str, int, int, int]]) -> int: ...

    def release(self, image: AccountImage, token: str) -> bool: ...

    def customers_with(self, suffix: str) -> list[str]: ...


@dataclass
class RebuildReport:
    """What a reconcile did.

    Attributes:
        balances: customer -> rebuilt balance in micro-units (= the sum of its ledger entries).
        positions: customer -> rebuilt position (sequence of its last ledger entry).
        cycle_totals: customer -> {cycle start: total micro-units} rebuilt from rated rows.
        duplicate_rows: raw ledger rows that repeat a movement already read (same entry id, same movement).
        conflicts: "customer/entry_id" for entry ids seen with two different movements in the raw
            rows (the first read is kept; both movements are logged).
        position_conflicts: "customer#seq: id, id" where two different entries claim one position
            (a Redis that charged from a stale copy before fencing existed).
        drained: outbox entries appended to the ledger.
        busy: customers another reconcile held (left to it); lost: customers whose lease ran out.
    """

    balances: dict[str, int] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    cycle_totals: dict[str, dict[str, int]] = field(default_factory=dict)
    entries: int = 0
    duplicate_rows: int = 0
    conflicts: list[str] = field(default_factory=list)
    position_conflicts: list[str] = field(default_factory=list)
    dedup_marks: int = 0
    drained: int = 0
    busy: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


@dataclass
class CustomerLedger:
    """One customer's raw ledger rows, deduplicated by entry id with conflicts kept aside."""

    entries: dict[str, LedgerEntry] = field(default_factory=dict)
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)


def _movement(entry: LedgerEntry) -> tuple[str, int, int]:
    return entry.kind, entry.amount_micros, entry.balance_after_micros


def group_raw_rows(rows: Iterable[LedgerEntry]) -> dict[str, CustomerLedger]:
    """customer -> its entries (first row of each entry id), duplicate count and conflicts."""
    by_customer: dict[str, CustomerLedger] = defaultdict(CustomerLedger)
    for entry in rows:
        book = by_customer[entry.customer_id]
        kept = book.entries.get(entry.entry_id)
        if kept is None:
            book.entries[entry.entry_id] = entry
        elif _movement(kept) == _movement(entry):
            book.duplicates += 1
        else:
            book.conflicts.append(f"{entry.customer_id}/{entry.entry_id}")
            log.error("ledger entry id used for two different movements; the first one read is kept",
                      extra={"customer_id": entry.customer_id, "entry_id": entry.entry_id,
                             "kept": f"{kept.kind} {kept.amount_micros}",
                             "other": f"{entry.kind} {entry.amount_micros}"})
    return by_customer


def read_ledger(ledger: LedgerStore, customers: Iterable[str] | None = None) -> tuple[dict[str, dict[str, LedgerEntry]],
                                                                                      int, list[str]]:
    """customer -> entry id -> entry (raw rows, one per id); plus duplicate rows and conflicts."""
    rows = _raw_rows(ledger, customers)
    grouped = group_raw_rows(rows)
    return ({customer: book.entries for customer, book in grouped.items()},
            sum(book.duplicates for book in grouped.values()),
            [conflict for book in grouped.values() for conflict in book.conflicts])


def _raw_rows(ledger: LedgerStore, customers: Iterable[str] | None) -> list[LedgerEntry]:
    if customers is None:
        return list(ledger.raw_entries(None))
    return [entry for customer in customers for entry in ledger.raw_entries(customer)]


@dataclass(frozen=True)
class PostpaidWindow:
    """Which postpaid cycles a reconcile rebuilds: those that can still receive events."""

    max_event_age_s: int
    max_future_skew_s: int


def rebuild_balances(
    ledger: LedgerStore,
    redis: RebuildTarget,
    *,
    dedup_ttl_s: int,
    customers: Iterable[str] | None = None,
    terms_for: Callable[[str], PrepaidTerms | None] = lambda customer_id: None,
    postpaid_plan_for: Callable[[str], Plan | None] = lambda customer_id: None,
    usage: UsageStore | None = None,
    window: PostpaidWindow = PostpaidWindow(3 * 86_400, 300),
    settle_s: float = 0,
    lease_s: int = DEFAULT_LEASE_S,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RebuildReport:
    """Reconcile these customers (default: every customer the ledger or Redis knows); see the module docstring.

    ``terms_for`` gives a prepaid customer's terms (low-balance mark, suspension notice);
    ``postpaid_plan_for`` a postpaid customer's plan, whose open cycles are rebuilt from ``usage``.
    """
    clock = clock or SystemClock()
    wanted = sorted(set(customers)) if customers is not None else None
    names = wanted if wanted is not None else _known_customers(ledger, redis)
    report = RebuildReport()
    token, busy = redis.fence(names, lease_s)
    report.busy = busy
    held = [name for name in names if name not in set(busy)]
    if settle_s > 0:
        sleep(settle_s)
    pending = redis.pending_entries(held)
    if pending:
        ledger.append(pending)                      # idempotent by entry id
        redis.persisted(pending)
        report.drained = len(pending)
    grouped = group_raw_rows(_raw_rows(ledger, held if wanted is not None else None))
    charges: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for customer, event_id, cycle, amount in redis.pending_charges(held):
        charges[customer].append((event_id, cycle, amount))
    now_ms = clock.now_ms()
    for customer in held:
        book = grouped.get(customer, CustomerLedger())
        report.duplicate_rows += book.duplicates
        report.conflicts += book.conflicts
        image = _image(customer, book, terms_for(customer), postpaid_plan_for(customer), usage, window, now_ms, report,
                       charges.get(customer, []))
        if image.prepaid is not None:
            report.dedup_marks += redis.restore_results(customer, _dedup_marks(list(book.entries.values()), now_ms,
                                                                             dedup_ttl_s))
        if image.charged:   # postpaid events rated inside the dedup window: a redelivery must find its mark
            report.dedup_marks += redis.restore_postpaid_results(customer, [
                (event_id, amount, start_ms, dedup_ttl_s + window.max_future_skew_s - (now_ms - start_ms) // 1000)
                for event_id, amount, start_ms in image.charged])
        if not redis.release(image, token):
            report.lost.append(customer)
            log.error("reconcile lease lost; the customer must be reconciled again", extra={"customer_id": customer})
    for conflict in report.position_conflicts:
        log.error("two ledger entries claim one position", extra={"entry": conflict})
    log.info("balances reconciled with the ledger", extra={
        "customers": len(held), "entries": report.entries, "dedup_marks": report.dedup_marks,
        "drained": report.drained, "busy": len(report.busy), "lost": len(report.lost)})
    return report


def _known_customers(ledger: LedgerStore, redis: RebuildTarget) -> list[str]:
    names = {entry.customer_id for entry in ledger.raw_entries(None)}
    for suffix in ("account", "fence", "outbox"):
        names |= set(redis.customers_with(suffix))
    return sorted(names)


def _image(customer: str, book: CustomerLedger, terms: PrepaidTerms | None, plan: Plan | None,
           usage: UsageStore | None, window: PostpaidWindow, now_ms: int, report: RebuildReport,
           pending: list[tuple[str, str, int]]) -> AccountImage:
    """The state to write for one customer: its prepaid account (when it has one) and open cycles."""
    image = AccountImage(customer)
    entries = list(book.entries.values())
    if terms is not None or entries:
        terms = terms or PrepaidTerms()
        balance = sum(entry.amount_micros for entry in entries)
        instants = [_ms(entry.at) for entry in entries]
        suspend_at = max(instants) + terms.suspend_after_s * 1000 if balance <= 0 and entries else None
        low = terms.low_balance_threshold_micros > 0 and balance < terms.low_balance_threshold_micros
        seq = _positions(customer, entries, report)
        image.prepaid = (balance, seq, low, suspend_at, min(instants) if instants else now_ms)
        report.balances[customer] = balance
        report.positions[customer] = seq
        report.entries += len(entries)
    if plan is not None and usage is not None:
        image.cycles = cycle_totals(plan, customer, open_cycles(plan, now_ms, window), usage, pending, image.charged)
        report.cycle_totals[customer] = {cycle: total for cycle, (total, _) in image.cycles.items()}
    return image


def _positions(customer: str, entries: list[LedgerEntry], report: RebuildReport) -> int:
    claimed: dict[int, str] = {}
    for entry in entries:
        if entry.sequence is None:
            continue
        other = claimed.setdefault(entry.sequence, entry.entry_id)
        if other != entry.entry_id:
            report.position_conflicts.append(f"{customer}#{entry.sequence}: {other}, {entry.entry_id}")
    return max([len(entries), *claimed])


def _dedup_marks(entries: list[LedgerEntry], now_ms: int,
                 dedup_ttl_s: int) -> Iterator[tuple[str, ChargeResult, int | None]]:
    """(entry id, stored result, ttl) for top-ups (kept for ever) and recent debits."""
    by_event: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        if entry.kind in CREDIT_KINDS:
            at = _ms(entry.at)
            yield entry.entry_id, ChargeResult(CHARGED, None, entry.amount_micros, entry.balance_after_micros, at,
                                               (entry,)), None
        elif entry.kind == "auto_recharge" and entry.entry_id.endswith(RECHARGE_SUFFIX):
            by_event[entry.entry_id[: -len(RECHARGE_SUFFIX)]].append(entry)
        elif entry.kind == "debit":
            by_event[entry.entry_id].append(entry)
    for event_id, group in by_event.items():
        at = _ms(group[0].at)
        ttl = dedup_ttl_s - (now_ms - at) // 1000
        if ttl <= 0:
            continue
        debit = next((entry for entry in group if entry.kind == "debit"), None)
        recharge = next((entry for entry in group if entry.kind == "auto_recharge"), None)
        if debit is not None and recharge is not None:
            after_debit = recharge.balance_after_micros == debit.balance_after_micros + recharge.amount_micros
            ordered: tuple[LedgerEntry, ...] = (debit, recharge) if after_debit else (recharge, debit)
        else:
            ordered = tuple(entry for entry in (debit, recharge) if entry is not None)
        outcome = CHARGED if debit is not None else REFUSED
        yield event_id, ChargeResult(
            outcome, None if debit is not None else Reason.INSUFFICIENT_BALANCE,
            -debit.amount_micros if debit is not None else 0, ordered[-1].balance_after_micros, at, ordered,
        ), ttl


def open_cycles(plan: Plan, now_ms: int, window: PostpaidWindow) -> list[str]:
    """Cycle starts (ISO dates) of the cycles an accepted event can still fall in."""
    now = parse_instant(iso_from_ms(now_ms))
    first = cycle_start(plan, now - timedelta(seconds=window.max_event_age_s))
    last = cycle_start(plan, now + timedelta(seconds=window.max_future_skew_s))
    cycles = {first.isoformat(), last.isoformat()}
    probe = now - timedelta(seconds=window.max_event_age_s)
    while probe < now + timedelta(seconds=window.max_future_skew_s):  # any cycle in between (short windows)
        cycles.add(cycle_start(plan, probe).isoformat())
        probe += timedelta(days=1)
    return sorted(cycles)


def cycle_totals(plan: Plan, customer: str, cycles: list[str], usage: UsageStore,
                 pending: Iterable[tuple[str, str, int]] = (),
                 charged: list[tuple[str, int, int]] | None = None) -> dict[str, tuple[int, int]]:
    """(total micro-units, events) per cycle from the customer's rated rows (one per event_id) and the
    charges (event_id, cycle, amount) still pending in Redis, each event counted once.

    ``charged`` collects (event_id, amount, start ms) of the rows read (to restore dedup marks)."""
    from ..money import to_decimal, to_micros

    totals = {cycle: [0, 0] for cycle in cycles}
    first_day = (datetime.fromisoformat(cycles[0]) - timedelta(days=1)).date().isoformat()
    last_day = (datetime.fromisoformat(cycles[-1]) + timedelta(days=33)).date().isoformat()
    seen: set[str] = set()
    for event_id, start_time, amount in usage.rated_amounts(customer, first_day, last_day):
        if event_id in seen:
            continue
        seen.add(event_id)
        try:
            start = parse_instant(start_time)
        except InstantError:
            continue
        cycle = cycle_start(plan, start).isoformat()
        if cycle in totals:
            micros = to_micros(to_decimal(amount))
            totals[cycle][0] += micros
            totals[cycle][1] += 1
            if charged is not None:
                charged.append((event_id, micros, ms_from_datetime(start)))
    for event_id, cycle, micros in pending:
        if event_id not in seen and cycle in totals:
            seen.add(event_id)
            totals[cycle][0] += micros
            totals[cycle][1] += 1
    return {cycle: (total, events) for cycle, (total, events) in totals.items()}


def _ms(iso: str) -> int:
    instant: datetime = parse_instant(iso)
    return ms_from_datetime(instant)


def customer_terms(catalog: Any) -> tuple[Callable[[str], PrepaidTerms | None], Callable[[str], Plan | None]]:
    """(prepaid terms, postpaid plan) lookups on a ``PlanCatalog`` (None: no such plan / unreachable)."""

    def compiled(customer: str) -> Any:
        try:
            return catalog.current(customer)
        except Exception:  # a plan store that cannot answer: rebuild the ledger side only
            return None

    def terms_for(customer: str) -> PrepaidTerms | None:
        plan = compiled(customer)
        return plan.prepaid if plan is not None else None

    def postpaid_plan_for(customer: str) -> Plan | None:
        plan = compiled(customer)
        return plan.plan if plan is not None and plan.prepaid is None else None

    return terms_for, postpaid_plan_for


def customer_reconciler(ledger: LedgerStore, target: RebuildTarget, usage: UsageStore, catalog: Any, *,
                        dedup_ttl_s: int, window: PostpaidWindow, clock: Clock | None = None) -> Callable[[str], bool]:
    """``reconcile(customer_id) -> verified?``: what the charging service calls on a stale or missing customer."""
    terms_for, postpaid_plan_for = customer_terms(catalog)

    def reconcile(customer_id: str) -> bool:
        report = rebuild_balances(ledger, target, dedup_ttl_s=dedup_ttl_s, customers=[customer_id],
                                  terms_for=terms_for, postpaid_plan_for=postpaid_plan_for, usage=usage,
                                  window=window, clock=clock)
        return not report.busy and not report.lost

    return reconcile

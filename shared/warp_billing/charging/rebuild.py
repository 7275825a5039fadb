"""Rebuild prepaid balances in Redis exactly from the persisted ledger (after a Memorystore loss).

The ledger (LedgerStore: BigQuery / Firestore / SQLite) is the source of truth for prepaid
money: every debit, auto-recharge, top-up and adjustment is an entry keyed by its entry id.
``rebuild_balances``:

1. reads every entry, keeping one per entry id (BigQuery's insertId dedup is best effort, so
   the table may hold a row twice; two different movements under one id are reported);
2. deletes the customers' accounts, dedup marks and ledger streams in Redis: from that moment
   their charging answers ACCOUNT_NOT_LOADED and Pub/Sub retries, so nothing is decided on a
   half-built balance. With ``settle_s`` > 0 it then waits for in-flight handlers to finish
   their ledger writes and reads the ledger again (use it when Redis did NOT lose its data);
3. writes each balance = the sum of its entries, to the micro-unit, with the low-balance mark
   and suspension notice it implies, and restores the dedup marks: top-ups for ever, debits
   (with their auto-recharge) still inside the dedup window, so a redelivery of an event
   charged before the loss is still recognised and not charged twice.

Alerts already sent are not resent; refusals (which move no money) are not in the ledger,
so a refused event redelivered after the rebuild is decided again.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..ports import Clock, LedgerEntry, LedgerStore
from ..rating.rejections import Reason
from ..timeutil import parse_instant
from .accounts import CHARGED, REFUSED, ChargeResult, PrepaidTerms
from .clock import SystemClock, ms_from_datetime

log = logging.getLogger(__name__)
RECHARGE_SUFFIX = "#recharge"
CREDIT_KINDS = ("topup", "adjustment")


class RebuildTarget(Protocol):
    """What a rebuild writes (implemented by ``adapters.redis_balances.RedisBalances``)."""

    def clear_prepaid_state(self, customer_ids: Iterable[str]) -> int: ...

    def restore_account(self, customer_id: str, balance_micros: int, low_balance_alerted: bool,
                        suspend_at_ms: int | None, opened_ms: int) -> None: ...

    def restore_results(self, customer_id: str, results: Iterable[tuple[str, ChargeResult, int | None]]) -> int: ...


@dataclass
class RebuildReport:
    """What a rebuild did.

    Attributes:
        balances: customer -> rebuilt balance in micro-units (= the sum of its ledger entries).
        duplicate_rows: ledger rows dropped because their entry id was already read (same movement).
        conflicts: entry ids seen with two different movements (the first read is kept).
    """

    balances: dict[str, int] = field(default_factory=dict)
    entries: int = 0
    duplicate_rows: int = 0
    conflicts: list[str] = field(default_factory=list)
    dedup_marks: int = 0
    keys_cleared: int = 0


def read_ledger(ledger: LedgerStore, customers: Iterable[str] | None = None) -> tuple[dict[str, dict[str, LedgerEntry]],
                                                                                      int, list[str]]:
    """customer -> entry id -> entry, one per entry id; plus duplicates dropped and conflicts."""
    by_customer: dict[str, dict[str, LedgerEntry]] = defaultdict(dict)
    duplicates, conflicts = 0, []
    sources = [ledger.entries(customer) for customer in customers] if customers is not None else [ledger.entries(None)]
    for source in sources:
        for entry in source:
            kept = by_customer[entry.customer_id].get(entry.entry_id)
            if kept is None:
                by_customer[entry.customer_id][entry.entry_id] = entry
            elif (kept.amount_micros, kept.balance_after_micros, kept.kind) == (entry.amount_micros,
                                                                                entry.balance_after_micros, entry.kind):
                duplicates += 1
            else:
                conflicts.append(f"{entry.customer_id}/{entry.entry_id}")
    return by_customer, duplicates, conflicts


def rebuild_balances(
    ledger: LedgerStore,
    redis: RebuildTarget,
    *,
    dedup_ttl_s: int,
    customers: Iterable[str] | None = None,
    terms_for: Callable[[str], PrepaidTerms | None] = lambda customer_id: None,
    settle_s: int = 0,
    clock: Clock | None = None,
    sleep: Callable[[int], None] = time.sleep,
) -> RebuildReport:
    """Rebuild the prepaid state in Redis from the ledger (see the module docstring).

    ``customers`` limits the rebuild (and opens accounts at zero for those with no entries);
    ``terms_for`` gives a customer's prepaid terms (low-balance mark, suspension notice).
    """
    clock = clock or SystemClock()
    wanted = list(customers) if customers is not None else None
    by_customer, duplicates, conflicts = read_ledger(ledger, wanted)
    names = set(by_customer) | set(wanted or ())
    report = RebuildReport(keys_cleared=redis.clear_prepaid_state(names))
    if settle_s > 0:
        sleep(settle_s)
        by_customer, duplicates, conflicts = read_ledger(ledger, wanted)
        names |= set(by_customer)
    report.duplicate_rows, report.conflicts = duplicates, conflicts
    for entry_id in conflicts:
        log.error("ledger entry id used for two different movements; the first one read is kept",
                  extra={"entry": entry_id})
    now_ms = clock.now_ms()
    for customer in sorted(names):
        entries = list(by_customer.get(customer, {}).values())
        balance = sum(entry.amount_micros for entry in entries)
        instants = [_ms(entry.at) for entry in entries]
        terms = terms_for(customer) or PrepaidTerms()
        suspend_at = None
        if balance <= 0 and entries:
            suspend_at = max(instants) + terms.suspend_after_s * 1000
        low = terms.low_balance_threshold_micros > 0 and balance < terms.low_balance_threshold_micros
        redis.restore_account(customer, balance, low, suspend_at, min(instants) if instants else now_ms)
        report.dedup_marks += redis.restore_results(customer, _dedup_marks(entries, now_ms, dedup_ttl_s))
        report.balances[customer] = balance
        report.entries += len(entries)
    log.info("balances rebuilt from the ledger", extra={"customers": len(report.balances), "entries": report.entries,
                                                        "dedup_marks": report.dedup_marks})
    return report


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


def _ms(iso: str) -> int:
    instant: datetime = parse_instant(iso)
    return ms_from_datetime(instant)

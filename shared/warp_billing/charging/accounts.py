"""Charging values and the balance-store port.

A ``ChargeRequest`` asks the balance store to take one rated event's amount from a prepaid
balance (``PrepaidTerms``) or add it to a postpaid running total (``PostpaidTerms``), atomically
with its dedup mark. The answer, a ``ChargeResult``, is stored under the event id: a redelivered
event gets the ORIGINAL result back (``duplicate=True``) with the same ledger entries and alerts,
so re-writing them is idempotent and nothing is charged twice.

All amounts are integer micro-units (1 USD = 1,000,000). ``BalanceStore`` is the port; the
Redis adapter (``adapters.redis_balances``) implements it with one Lua script per step.
The port itself is declared in ``ports.py`` with the others (re-exported here for old imports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..ports import BalanceStore, LedgerEntry  # noqa: F401  (BalanceStore re-exported: the port lives in ports.py)
from ..rating.rejections import Reason

CHARGED = "charged"
REFUSED = "refused"

# Lua numbers are IEEE doubles: integers are exact below 2**53 micro-units (~9 billion USD).
# Every amount, balance and running total stays at or below 2**50 in magnitude (~1.1 billion USD),
# so any sum of two of them is still exact; the scripts refuse what would pass it.
MAX_MICROS = 2**50


class AlertCode(str, Enum):
    """Billing alerts published to the billing-alerts topic (stable type names)."""

    LOW_BALANCE = "low_balance"                    # prepaid balance crossed below the plan threshold
    SUSPEND_PENDING = "suspend_pending"            # balance exhausted: suspension at the deadline unless topped up
    SUSPENDED = "suspended"                        # the deadline passed: traffic is refused
    AUTO_RECHARGE = "auto_recharge"                # an automatic top-up was booked: collect the payment
    LOW_MARGIN = "low_margin"                      # an event priced below the plan's margin threshold
    CREDIT_SOFT_LIMIT = "credit_soft_limit"        # postpaid cycle total crossed soft_limit_pct of the credit limit
    CREDIT_LIMIT_REACHED = "credit_limit_reached"  # postpaid traffic refused at the hard credit limit

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class AccountAlert:
    """An alert decided atomically with the charge (at most once per crossing).

    Attributes:
        code: what happened.
        balance_micros: the prepaid balance (or postpaid cycle total) after the step.
        deadline_ms: suspension deadline (SUSPEND_PENDING, SUSPENDED).
        amount_micros: the auto-recharge amount (AUTO_RECHARGE).
    """

    code: AlertCode
    balance_micros: int
    deadline_ms: int | None = None
    amount_micros: int | None = None


@dataclass(frozen=True, slots=True)
class PrepaidTerms:
    """A prepaid plan's charging terms in micro-units (from ``Plan.prepaid``).

    Attributes:
        low_balance_threshold_micros: alert once when the balance falls below it (0 = never).
        suspend_after_s: notice between exhaustion (balance <= 0) and suspension.
        recharge_below_micros, recharge_amount_micros: auto-recharge (both set, or neither).
    """

    low_balance_threshold_micros: int = 0
    suspend_after_s: int = 24 * 3600
    recharge_below_micros: int | None = None
    recharge_amount_micros: int | None = None

    @property
    def auto_recharge(self) -> bool:
        return bool(self.recharge_below_micros is not None and self.recharge_amount_micros)


@dataclass(frozen=True, slots=True)
class PostpaidTerms:
    """A postpaid plan's credit terms for the billing cycle an event falls in.

    Attributes:
        cycle: first day of the billing cycle (ISO date, customer's zone): the running total's key.
        credit_limit_micros: hard limit; None = unlimited.
        soft_limit_micros: alert threshold (credit_limit x soft_limit_pct / 100); None = none.
    """

    cycle: str
    credit_limit_micros: int | None = None
    soft_limit_micros: int | None = None


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """Charge one rated event.

    Attributes:
        entry_id: the event_id: dedup key and the debit's ledger entry id.
        amount_micros: the rated amount (>= 0).
        at_ms: processing instant (epoch ms): the ledger time and the suspension clock.
        reference: recorded on the ledger entry (the event kind).
        plan_version: the plan version the amount was rated under (kept with the result).
        replay: an operator replay: an earlier REFUSAL is decided again (a charge never is).
    """

    customer_id: str
    entry_id: str
    amount_micros: int
    at_ms: int
    reference: str
    plan_version: str
    terms: PrepaidTerms | PostpaidTerms
    replay: bool = False


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """The outcome of a charge, as first decided (``duplicate`` says it is a stored replay).

    Attributes:
        outcome: CHARGED or REFUSED.
        reason: SUSPENDED, INSUFFICIENT_BALANCE, CREDIT_LIMIT or ACCOUNT_SUSPENDED when refused.
        amount_micros: the amount charged (or the amount that was refused).
        balance_micros: prepaid balance / postpaid cycle total after the step.
        entries: ledger entries the step made (debit, auto-recharge; top-up or adjustment).
        alerts: alerts the step decided.
        deadline_ms: the account's suspension deadline after the step, if one is running.
    """

    outcome: str
    reason: Reason | None
    amount_micros: int
    balance_micros: int
    at_ms: int
    entries: tuple[LedgerEntry, ...] = ()
    alerts: tuple[AccountAlert, ...] = ()
    plan_version: str = ""
    duplicate: bool = False
    deadline_ms: int | None = None

    @property
    def charged(self) -> bool:
        return self.outcome == CHARGED


@dataclass(frozen=True, slots=True)
class AccountState:
    """A prepaid account as Redis holds it (for `warp balance show`)."""

    customer_id: str
    balance_micros: int
    low_balance_alerted: bool
    suspend_at_ms: int | None
    opened_ms: int | None


@dataclass
class AccountImage:
    """What a reconcile writes for one customer (computed from the ledger and the usage store).

    Attributes:
        prepaid: (balance, seq, low-balance mark, suspend_at ms or None, opened_ms); None for a
            customer without a prepaid account (postpaid only).
        cycles: postpaid cycle start (ISO date) -> (total micro-units, events).
        charged: postpaid events read from the rated rows (event_id, amount, start ms): their dedup marks.
    """

    customer_id: str
    prepaid: tuple[int, int, bool, int | None, int] | None = None
    cycles: dict[str, tuple[int, int]] = field(default_factory=dict)
    charged: list[tuple[str, int, int]] = field(default_factory=list)

"""Prepaid charging policy, and a plan's prepaid terms in micro-units.

Policy ("charge while positive, then refuse"), applied atomically per event by the balance
store (``adapters/prepaid_debit.lua``):

1. A redelivered event gets its original result back; nothing moves again.
2. Auto-recharge (plan ``prepaid.auto_recharge_below`` / ``auto_recharge_amount``): when the
   balance is below the trigger, before or after the debit, ``auto_recharge_amount`` is booked
   as an ``auto_recharge`` ledger entry (id ``<event_id>#recharge``, at most one per event) and
   an AUTO_RECHARGE alert asks the payments side to collect it.
3. After the suspension deadline (see 6) every event is refused with SUSPENDED.
4. An event with a positive amount is refused with INSUFFICIENT_BALANCE when the balance is
   already <= 0. Refused events are rejects: replay them after a top-up (`warp rejects replay`).
5. Otherwise the event is charged IN FULL, even when that takes the balance below zero: the
   traffic was carried, and the rated row always equals its debit (no partial charges). The
   balance therefore never goes below zero by more than one event's amount.
6. When a step leaves the balance <= 0 and no deadline is running, the account becomes
   "suspend pending": deadline = now + ``prepaid.suspend_after_hours`` (default 24 h), alert
   SUSPEND_PENDING. A top-up that brings the balance above zero clears it.
7. LOW_BALANCE is alerted once per crossing below ``prepaid.low_balance_threshold``; the mark
   resets when the balance is back at or above the threshold.
Zero-amount events (unanswered calls) are charged (no ledger entry) until suspension.
"""

from __future__ import annotations

from ..money import round_micro, to_micros
from ..plan import Plan
from .accounts import PrepaidTerms


def prepaid_terms(plan: Plan) -> PrepaidTerms:
    """The plan's prepaid section in micro-units (thresholds of more than 6 places rounded half up)."""
    section = plan.prepaid
    below = section.auto_recharge_below
    amount = section.auto_recharge_amount
    recharge_below = recharge_amount = None
    low = to_micros(round_micro(section.low_balance_threshold))
    if section.recharge_profile is not None and below is not None:
        # a card recharge: nothing is booked before the gateway approves it; the LOW_BALANCE crossing
        # (at the recharge trigger, or the plan's own threshold if higher) is what asks for the charge
        low = max(low, to_micros(round_micro(below)))
    elif below is not None and amount is not None and amount > 0:  # auto-recharge needs both, and a real amount
        recharge_below, recharge_amount = to_micros(round_micro(below)), to_micros(round_micro(amount))
    return PrepaidTerms(
        low_balance_threshold_micros=low,
        suspend_after_s=section.suspend_after_hours * 3600,
        recharge_below_micros=recharge_below,
        recharge_amount_micros=recharge_amount,
    )

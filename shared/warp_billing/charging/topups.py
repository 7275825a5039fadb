"""Booking a prepaid top-up: the one path shared by `warp balance topup` and received payments.

A top-up is a credit on the balance store (Redis), idempotent by its ledger entry id for ever,
then appended to the ledger and marked persisted, so Redis stays a copy of the ledger. A lost or
restored Redis account is brought up to the ledger first (``reconcile``). The caller chooses the
entry id's namespace: an operator's ``topup:<id>``, a gateway payment ``payment:<transaction id>``
(reserved for usage ids in ``admission.RESERVED_PREFIXES``), so neither can book over the other.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ports import AlertPublisher, BalanceStore, LedgerStore
from .accounts import ChargeResult, PrepaidTerms
from .alerts import account_alert

TOPUP_PREFIX = "topup:"
PAYMENT_PREFIX = "payment:"


def book_credit(balances: BalanceStore, ledger: LedgerStore, reconcile: Callable[[str], bool] | None, *,
                customer_id: str, entry_id: str, amount_micros: int, kind: str, reference: str, at_ms: int,
                terms: PrepaidTerms) -> ChargeResult:
    """Credit ``amount_micros`` (signed: a reversal is negative) under ``entry_id``, ledger first-class.

    ``reconcile`` None: the caller has no ledger reconciliation (a Redis copy is taken as it is).
    Raises what the stores raise (``LedgerConflict`` for the same id with another amount,
    ``BalanceOutOfRange``, transient errors); every step is idempotent, so the caller retries
    the whole call.
    """
    if reconcile is not None and not balances.is_verified(customer_id):   # lost / restored Redis: ledger first
        reconcile(customer_id)
    result = balances.credit(customer_id, entry_id, amount_micros, kind, reference, at_ms, terms)
    ledger.append(list(result.entries))
    balances.persisted(list(result.entries))
    return result


def publish_credit_alerts(result: ChargeResult, publisher: AlertPublisher, *, customer_id: str, entry_id: str,
                          currency: str, terms: PrepaidTerms) -> list[tuple[str, Exception]]:
    """Publish the alerts a credit decided (e.g. still low); the failures, as (alert type, error)."""
    failures: list[tuple[str, Exception]] = []
    threshold = terms.low_balance_threshold_micros or None
    for alert in result.alerts:
        try:
            publisher.publish(account_alert(alert, customer_id, entry_id, result.at_ms, currency, threshold))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the credit itself stands
            failures.append((alert.code.value, exc))
    return failures

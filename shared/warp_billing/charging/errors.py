"""Named charging errors with stable codes.

A ``TransientError`` means "this delivery could not be finished now; nothing was lost and
retrying is safe": the function entry point raises it so Pub/Sub redelivers the message.
Permanent problems are never raised: they become rejects (``rating.rejections.Reason``).
"""

from __future__ import annotations

from enum import Enum


class TransientCode(str, Enum):
    """Why a delivery is to be retried (log and metric label; stable once released)."""

    BALANCES_UNAVAILABLE = "BALANCES_UNAVAILABLE"      # Redis / Memorystore unreachable, loading, read-only
    # prepaid account absent in Redis (data loss: run `warp balance rebuild`)
    ACCOUNT_NOT_LOADED = "ACCOUNT_NOT_LOADED"
    PLAN_STORE_UNAVAILABLE = "PLAN_STORE_UNAVAILABLE"  # Firestore / plan files unreachable
    # the current plan version cannot be compiled and no earlier one is cached
    PLAN_INVALID = "PLAN_INVALID"
    # BigQuery (or the embedded store) refused the rated rows / rejects
    USAGE_STORE_UNAVAILABLE = "USAGE_STORE_UNAVAILABLE"
    LEDGER_STORE_UNAVAILABLE = "LEDGER_STORE_UNAVAILABLE"  # the persisted ledger refused the entries
    ALERTS_UNAVAILABLE = "ALERTS_UNAVAILABLE"          # the billing-alerts topic refused an alert
    BALANCES_FENCED = "BALANCES_FENCED"                # a reconcile holds this customer for a moment
    BALANCES_STALE = "BALANCES_STALE"                  # Redis not verified against the ledger since it loaded its data
    WEBHOOK_STORE_UNAVAILABLE = "WEBHOOK_STORE_UNAVAILABLE"  # the webhook receipts store refused a write
    PAYMENT_STORE_UNAVAILABLE = "PAYMENT_STORE_UNAVAILABLE"  # the payments store refused a write
    GATEWAY_UNAVAILABLE = "GATEWAY_UNAVAILABLE"        # the card gateway (Authorize.Net) did not answer usably
    # a vendor dispute package (folder or bucket) could not be read to attach it
    DISPUTE_PACKAGE_UNAVAILABLE = "DISPUTE_PACKAGE_UNAVAILABLE"

    def __str__(self) -> str:
        return self.value


class TransientError(Exception):
    """A failure worth retrying: the platform redelivers the event, every step is idempotent."""

    def __init__(self, code: TransientCode, detail: str):
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail


class LedgerConflict(ValueError):
    """The same ledger entry id was used for a different movement (e.g. a top-up id reused
    with another amount): refused, because the first movement already stands."""


class BalanceOutOfRange(ValueError):
    """A credit that would take a balance past the exact-integer bound (2**50 micro-units): refused."""

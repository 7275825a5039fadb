"""Suspension for non-payment in Redis: the ``warp:{C}:hold`` key both charging scripts check.

While the key exists every usage event of the customer, prepaid or postpaid, is refused with
ACCOUNT_SUSPENDED (a reject, kept and replayable) inside the same Lua step that would charge it,
so a suspension takes effect on the next event with no extra round trip. The value says why:
``<since ms>|<invoice number>|<actor>``. Suspending is SET (idempotent: the first reason is kept),
reinstating is DEL. The durable record of the suspension is the dunning store; the dunning task
sets the key again each day for a customer still suspended, so a Redis that lost its data is
brought back to the decision within a day (and by `warp account suspend` at once).
"""

from __future__ import annotations

import redis
from redis import exceptions as redis_errors

from ..charging.errors import TransientCode, TransientError
from ..dunning.holds import AccountHold
from .redis_balances import TRANSIENT_REDIS_ERRORS, hold_key


class HoldsUnavailable(TransientError):
    def __init__(self, detail: str):
        super().__init__(TransientCode.BALANCES_UNAVAILABLE, detail)


class RedisAccountHolds:
    """``AccountHolds`` on the charging Redis (the same client as the balance store)."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def suspend(self, hold: AccountHold) -> bool:
        """Set the hold; True when it is new (an existing hold keeps its first reason)."""
        value = f"{hold.since_ms}|{hold.invoice_number}|{hold.actor}"
        try:
            return bool(self.client.set(hold_key(hold.customer_id), value, nx=True))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise HoldsUnavailable(f"suspending {hold.customer_id}: {exc}") from exc

    def reinstate(self, customer_id: str) -> bool:
        """Lift the hold; True when there was one."""
        try:
            return bool(self.client.delete(hold_key(customer_id)))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise HoldsUnavailable(f"reinstating {customer_id}: {exc}") from exc

    def hold(self, customer_id: str) -> AccountHold | None:
        try:
            value = self.client.get(hold_key(customer_id))
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise HoldsUnavailable(f"reading the hold of {customer_id}: {exc}") from exc
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        since, invoice, actor = (text.split("|", 2) + ["", ""])[:3]
        return AccountHold(customer_id, int(since or 0), invoice, actor)

"""``RechargeLocks`` on Redis: the one auto-recharge in flight per customer and the day's attempts.

Keys live in their own namespace, ``warp:recharge:{CUSTOMER}:...`` (the customer's hash tag, so a
cluster keeps them in one slot), apart from the balance keys ``warp:{CUSTOMER}:...``:

* ``warp:recharge:{C}:inflight`` = the recharge id, ``SET NX PX`` (the TTL frees a customer whose
  task was lost); extend and release compare the holder first (one Lua step each);
* ``warp:recharge:{C}:attempts:<day>``: a set of attempt ids (a redelivered task counts once),
  kept two days.
"""

from __future__ import annotations

from typing import Any

from ..charging.errors import TransientCode, TransientError
from .redis_balances import TRANSIENT_REDIS_ERRORS, customer_tag

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_COUNT = """
local new = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {redis.call('SCARD', KEYS[1]), new}
"""
ATTEMPTS_TTL_S = 2 * 86_400


def inflight_key(customer_id: str) -> str:
    return f"warp:recharge:{customer_tag(customer_id)}:inflight"


def attempts_key(customer_id: str, day: str) -> str:
    return f"warp:recharge:{customer_tag(customer_id)}:attempts:{day}"


class RedisRechargeLocks:
    def __init__(self, client: Any):
        self._redis = client
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)
        self._count = client.register_script(_COUNT)

    def acquire(self, customer_id: str, recharge_id: str, ttl_s: int) -> bool:
        return bool(self._call(self._redis.set, inflight_key(customer_id), recharge_id, nx=True, px=ttl_s * 1000))

    def holder(self, customer_id: str) -> str | None:
        value = self._call(self._redis.get, inflight_key(customer_id))
        return value.decode() if isinstance(value, bytes) else value

    def extend(self, customer_id: str, recharge_id: str, ttl_s: int) -> bool:
        return bool(self._call(self._extend, keys=[inflight_key(customer_id)], args=[recharge_id, ttl_s * 1000]))

    def release(self, customer_id: str, recharge_id: str) -> None:
        self._call(self._release, keys=[inflight_key(customer_id)], args=[recharge_id])

    def count_attempt(self, customer_id: str, day: str, attempt_key: str) -> tuple[int, bool]:
        count, new = self._call(self._count, keys=[attempts_key(customer_id, day)], args=[attempt_key, ATTEMPTS_TTL_S])
        return int(count), bool(int(new))

    @staticmethod
    def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except TRANSIENT_REDIS_ERRORS as exc:
            raise TransientError(TransientCode.BALANCES_UNAVAILABLE, f"recharge state: {exc}") from exc

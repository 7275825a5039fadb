"""Redis (Memorystore) balance store: prepaid balances and postpaid running totals.

One Lua script call per event does the whole charging step atomically: dedup by event_id
(a redelivered event gets its ORIGINAL stored result back), suspension check, balance check
and debit in integer micro-units, ledger entry, low-balance crossing, auto-recharge and the
suspension notice (``prepaid_debit.lua``); postpaid events add to the cycle's running total
under the credit limits (``postpaid_charge.lua``). Policies: ``charging/prepaid.py`` and
``charging/postpaid.py``.

Key layout (every key of one customer shares the hash tag ``{CUSTOMER}``, so one script call
touches a single cluster slot and the store runs unchanged on Redis Cluster / Memorystore
cluster mode):

    warp:{C}:account             hash    balance, low, suspend_at, suspended_alerted, opened_ms
    warp:{C}:dedup:<entry_id>    string  stored charge result (TTL = dedup window; top-ups: none)
    warp:{C}:ledger              stream  recent ledger entries (capped), persisted via LedgerStore
    warp:{C}:cycle:<YYYY-MM-DD>  hash    postpaid total, events, soft_alerted, hard_alerted

Redis errors that a retry can cure (connection refused or reset, timeouts, loading after a
restart, read-only replica after failover, cluster down) become ``BalancesUnavailable``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources

import redis
from redis import exceptions as redis_errors

from ..charging.accounts import (
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
from ..charging.clock import iso_from_ms
from ..charging.errors import LedgerConflict, TransientCode, TransientError
from ..ports import LedgerEntry
from ..rating.rejections import Reason

PREPAID_FORMAT = "1"
POSTPAID_FORMAT = "2"
TOPUP_PREFIX = "topup:"
RECHARGE_SUFFIX = "#recharge"
TRANSIENT_REDIS_ERRORS = (
    redis_errors.ConnectionError,   # includes BusyLoadingError (a restarted server loading its data)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,     # a replica promoted late / writes to a replica after failover
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)
_FLAG_ALERTS = {"L": AlertCode.LOW_BALANCE, "S": AlertCode.SUSPEND_PENDING, "X": AlertCode.SUSPENDED,
                "W": AlertCode.CREDIT_SOFT_LIMIT, "H": AlertCode.CREDIT_LIMIT_REACHED}
_ALERT_FLAGS = {code: flag for flag, code in _FLAG_ALERTS.items()}


class BalancesUnavailable(TransientError):
    """Redis could not answer; the step may or may not have run (a retry is idempotent)."""

    def __init__(self, detail: str):
        super().__init__(TransientCode.BALANCES_UNAVAILABLE, detail)


class AccountNotLoaded(TransientError):
    """No prepaid account in Redis for this customer: Redis lost its data (rebuild from the
    ledger) or the customer's prepaid plan was never loaded (`warp plans load` opens it)."""

    def __init__(self, customer_id: str):
        super().__init__(
            TransientCode.ACCOUNT_NOT_LOADED,
            f"no prepaid account for {customer_id!r} in Redis; run `warp balance rebuild` "
            "(after data loss) or `warp plans load` (new customer)",
        )
        self.customer_id = customer_id


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def customer_tag(customer_id: str) -> str:
    """``{CUSTOMER}``: the hash tag that puts every key of a customer in one cluster slot."""
    if not customer_id or "{" in customer_id or "}" in customer_id:
        raise ValueError(f"customer id {customer_id!r} cannot be a Redis hash tag (empty, or has braces)")
    return "{" + customer_id + "}"


def account_key(customer_id: str) -> str:
    return f"warp:{customer_tag(customer_id)}:account"


def dedup_key(customer_id: str, entry_id: str) -> str:
    return f"warp:{customer_tag(customer_id)}:dedup:{entry_id}"


def ledger_key(customer_id: str) -> str:
    return f"warp:{customer_tag(customer_id)}:ledger"


def cycle_key(customer_id: str, cycle: str) -> str:
    return f"warp:{customer_tag(customer_id)}:cycle:{cycle}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_result(
    stored: str, customer_id: str, entry_id: str, reference: str, *, duplicate: bool, credit_kind: str | None = None
) -> ChargeResult:
    """A stored result (see prepaid_debit.lua) as a ChargeResult with its ledger entries and alerts."""
    fields = stored.split("|", 10)
    if len(fields) != 11 or fields[0] not in (PREPAID_FORMAT, POSTPAID_FORMAT):
        raise ValueError(f"unreadable stored charge result for {customer_id}/{entry_id}: {stored!r}")
    kind, outcome, reason, amount, balance, at_ms, recharge, first, flags, deadline, version = fields
    amount_micros, balance_micros, at, recharge_micros = int(amount), int(balance), int(at_ms), int(recharge)
    at_iso = iso_from_ms(at)
    charged = outcome == "C"
    entries: list[LedgerEntry] = []
    if kind == POSTPAID_FORMAT:
        pass  # a postpaid running total moves no balance: no ledger entry
    elif credit_kind is not None:
        entries.append(LedgerEntry(entry_id, customer_id, credit_kind, amount_micros, balance_micros, at_iso,
                                   reference))
    else:
        recharge_entry = debit_entry = None
        pre = "P" in flags
        if recharge_micros:
            recharge_entry = LedgerEntry(
                entry_id + RECHARGE_SUFFIX, customer_id, "auto_recharge", recharge_micros,
                int(first) if pre else balance_micros, at_iso, f"auto-recharge for {entry_id}",
            )
        if charged and amount_micros > 0:
            debit_entry = LedgerEntry(
                entry_id, customer_id, "debit", -amount_micros,
                int(first) if recharge_entry is not None and not pre else balance_micros, at_iso, reference,
            )
        ordered = (recharge_entry, debit_entry) if pre else (debit_entry, recharge_entry)
        entries.extend(entry for entry in ordered if entry is not None)
    deadline_ms = int(deadline) if deadline else None
    alerts = [AccountAlert(_FLAG_ALERTS[flag], balance_micros, deadline_ms if flag in "SX" else None)
              for flag in flags if flag in _FLAG_ALERTS]
    if recharge_micros:
        alerts.append(AccountAlert(AlertCode.AUTO_RECHARGE, balance_micros, amount_micros=recharge_micros))
    return ChargeResult(
        CHARGED if charged else REFUSED, Reason(reason) if reason else None, amount_micros, balance_micros, at,
        tuple(entries), tuple(alerts), version, duplicate, deadline_ms,
    )


def encode_result(result: ChargeResult) -> str:
    """The stored form of a prepaid result (used to restore dedup marks from the ledger)."""
    recharges = [entry for entry in result.entries if entry.kind == "auto_recharge"]
    flags = ""
    if recharges:
        flags += "P" if result.entries[0].kind == "auto_recharge" else "R"
    flags += "".join(_ALERT_FLAGS[alert.code] for alert in result.alerts if alert.code in _ALERT_FLAGS)
    first = str(result.entries[0].balance_after_micros) if result.entries else ""
    return "|".join((
        PREPAID_FORMAT, "C" if result.charged else "R", result.reason.value if result.reason else "",
        str(result.amount_micros), str(result.balance_micros), str(result.at_ms),
        str(recharges[0].amount_micros) if recharges else "0", first, flags,
        "" if result.deadline_ms is None else str(result.deadline_ms), result.plan_version,
    ))


def _checked_amount(amount_micros: int) -> str:
    if type(amount_micros) is not int or abs(amount_micros) > MAX_MICROS:
        raise ValueError(f"amount {amount_micros!r} micro-units is not an integer below 2**50")
    return str(amount_micros)


class RedisBalances:
    """``BalanceStore`` on Redis: prepaid accounts and postpaid cycle totals.

    ``client`` is a ``redis.Redis`` (or ``redis.RedisCluster``); the store registers its two
    scripts and calls them by SHA (EVALSHA), reloading them after a server restart.
    """

    def __init__(self, client: redis.Redis, *, dedup_ttl_s: int, ledger_stream_maxlen: int = 10_000,
                 postpaid_cycle_ttl_s: int = 100 * 86_400):
        self.client = client
        self._dedup_ttl_s = dedup_ttl_s
        self._maxlen = str(ledger_stream_maxlen)
        self._cycle_ttl_s = str(postpaid_cycle_ttl_s)
        self._prepaid = client.register_script(_script("prepaid_debit.lua"))
        self._postpaid = client.register_script(_script("postpaid_charge.lua"))

    # -- charging ---------------------------------------------------------------------------

    def charge(self, request: ChargeRequest) -> ChargeResult:
        try:
            reply = self._call(request, None)
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"charging {request.customer_id}/{request.entry_id}: {exc}") from exc
        return self._result(request, reply)

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | TransientError]:
        """Many charges in one round trip (pipelined EVALSHA, executed in order).

        A request whose account is not loaded comes back as its ``AccountNotLoaded`` error;
        a lost connection fails the whole batch with ``BalancesUnavailable`` (some steps may
        have run: retrying the batch is idempotent).
        """
        if not requests:
            return []
        try:
            if isinstance(self.client, redis.RedisCluster):
                replies = self._execute_per_node(requests)
            else:
                pipe = self.client.pipeline(transaction=False)
                for request in requests:
                    self._call(request, pipe)
                replies = pipe.execute()
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"charging a batch of {len(requests)}: {exc}") from exc
        results: list[ChargeResult | TransientError] = []
        for request, reply in zip(requests, replies, strict=True):
            try:
                results.append(self._result(request, reply))
            except AccountNotLoaded as missing:
                results.append(missing)
        return results

    def prior_result(self, customer_id: str, entry_id: str, reference: str) -> ChargeResult | None:
        try:
            stored = self.client.get(dedup_key(customer_id, entry_id))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"reading the result of {customer_id}/{entry_id}: {exc}") from exc
        if stored is None:
            return None
        return decode_result(_text(stored), customer_id, entry_id, reference, duplicate=True)

    def credit(self, customer_id: str, entry_id: str, amount_micros: int, kind: str, reference: str, at_ms: int,
               terms: PrepaidTerms) -> ChargeResult:
        """Top-up or adjustment (signed), idempotent by ``entry_id`` for ever (no TTL).

        Reusing an entry id with a different amount raises ``LedgerConflict``.
        """
        args = self._prepaid_args("credit", entry_id, _checked_amount(amount_micros), at_ms, 0, terms, False, "",
                                  kind, reference)
        keys = (account_key(customer_id), dedup_key(customer_id, entry_id), ledger_key(customer_id))
        try:
            status, stored = self._prepaid(keys=keys, args=args)
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"crediting {customer_id}/{entry_id}: {exc}") from exc
        result = decode_result(_text(stored), customer_id, entry_id, reference, duplicate=_text(status) == "dup",
                               credit_kind=kind)
        if result.amount_micros != amount_micros:
            raise LedgerConflict(
                f"ledger entry {entry_id!r} of {customer_id} already booked {result.amount_micros} micro-units, "
                f"not {amount_micros}"
            )
        return result

    def open_account(self, customer_id: str, at_ms: int) -> None:
        keys = (account_key(customer_id), dedup_key(customer_id, "-"), ledger_key(customer_id))
        try:
            self._prepaid(keys=keys, args=("open", "-", "0", str(at_ms)))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"opening the account of {customer_id}: {exc}") from exc

    # -- reading ----------------------------------------------------------------------------

    def account(self, customer_id: str) -> AccountState | None:
        values = self.client.hmget(account_key(customer_id), "balance", "low", "suspend_at", "opened_ms")
        if values[0] is None:
            return None
        balance = _text(values[0])
        low, suspend_at, opened = (None if value is None else _text(value) for value in values[1:])
        return AccountState(customer_id, int(balance), low == "1", int(suspend_at) if suspend_at else None,
                            int(opened) if opened else None)

    def recent_ledger(self, customer_id: str, count: int = 20) -> list[LedgerEntry]:
        """The newest ledger entries kept in Redis, newest first."""
        entries = []
        for _, fields in self.client.xrevrange(ledger_key(customer_id), count=count) or []:
            item = {_text(key): _text(value) for key, value in (fields or {}).items()}
            entries.append(LedgerEntry(item["id"], customer_id, item["kind"], int(item["amount"]),
                                       int(item["balance"]), iso_from_ms(int(item["at_ms"])), item.get("ref", "")))
        return entries

    def cycle_total(self, customer_id: str, cycle: str) -> tuple[int, int]:
        """(total micro-units, events) of a postpaid cycle."""
        total, events = self.client.hmget(cycle_key(customer_id, cycle), "total", "events")
        return int(_text(total)) if total is not None else 0, int(_text(events)) if events is not None else 0

    # -- rebuilding from the ledger -----------------------------------------------------------

    def clear_prepaid_state(self, customer_ids: Iterable[str]) -> int:
        """Delete the account, dedup marks and ledger stream of these customers; return keys deleted.

        Postpaid cycle totals are kept. One SCAN over ``warp:*`` (every node of a cluster).
        """
        tags = {customer_tag(customer) for customer in customer_ids}
        deleted = 0
        pipe = self.client.pipeline(transaction=False)
        for raw_key in self.client.scan_iter(match="warp:*", count=1000):
            key = _text(raw_key)
            tag_end = key.find("}")
            if tag_end < 0 or key[5:tag_end + 1] not in tags or ":cycle:" in key[tag_end:]:
                continue
            pipe.delete(key)
            deleted += 1
            if len(pipe) >= 500:
                pipe.execute()
        pipe.execute()
        return deleted

    def restore_account(self, customer_id: str, balance_micros: int, low_balance_alerted: bool,
                        suspend_at_ms: int | None, opened_ms: int) -> None:
        """Write a prepaid account exactly (after ``clear_prepaid_state``)."""
        fields = {"balance": str(balance_micros), "low": "1" if low_balance_alerted else "0",
                  "suspended_alerted": "0", "opened_ms": str(opened_ms)}
        if suspend_at_ms is not None:
            fields["suspend_at"] = str(suspend_at_ms)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(account_key(customer_id))
        pipe.hset(account_key(customer_id), mapping=fields)  # type: ignore[arg-type]  # redis' Mapping key is invariant
        pipe.execute()

    def restore_results(self, customer_id: str, results: Iterable[tuple[str, ChargeResult, int | None]]) -> int:
        """Store (entry_id, result, ttl seconds or None = keep) dedup marks; return how many."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for entry_id, result, ttl_s in results:
            stored = encode_result(result)
            if ttl_s is None:
                pipe.set(dedup_key(customer_id, entry_id), stored)
            elif ttl_s > 0:
                pipe.set(dedup_key(customer_id, entry_id), stored, ex=ttl_s)
            else:
                continue
            count += 1
            if len(pipe) >= 500:
                pipe.execute()
        pipe.execute()
        return count

    # -- internals ----------------------------------------------------------------------------

    def _execute_per_node(self, requests: Sequence[ChargeRequest]) -> list:
        """Cluster mode: one plain pipeline per primary node (redis-py's cluster pipeline refuses
        EVALSHA). Order is kept within a customer, whose keys all live on one node. A slot that
        moved meanwhile (MOVED / ASK during resharding) is charged again through the cluster
        client, which follows redirections; the script makes that repeat harmless."""
        cluster = self.client
        assert isinstance(cluster, redis.RedisCluster)  # called only for a cluster client (see charge_many)
        by_node: dict[str, tuple[object, list[int]]] = {}
        for index, request in enumerate(requests):
            node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(account_key(request.customer_id)))
            by_node.setdefault(node.name, (node, []))[1].append(index)
        replies: list = [None] * len(requests)
        for node, indexes in by_node.values():
            pipe = cluster.get_redis_connection(node).pipeline(transaction=False)
            for index in indexes:
                self._call(requests[index], pipe)
            for index, reply in zip(indexes, pipe.execute(raise_on_error=False), strict=True):
                moved = isinstance(reply, (redis_errors.MovedError, redis_errors.AskError, redis_errors.TryAgainError))
                replies[index] = self._call(requests[index], None) if moved else reply
        return replies

    def _prepaid_args(self, op: str, entry_id: str, amount: str, at_ms: int, ttl_s: int, terms: PrepaidTerms,
                      replay: bool, version: str, kind: str, reference: str) -> tuple[str, ...]:
        return (
            op, entry_id, amount, str(at_ms), str(ttl_s), self._maxlen,
            str(terms.low_balance_threshold_micros), str(terms.suspend_after_s * 1000),
            "" if not terms.auto_recharge else str(terms.recharge_below_micros),
            str(terms.recharge_amount_micros or 0), "1" if replay else "0", version, kind, reference,
        )

    def _call(self, request: ChargeRequest, pipe):
        amount = _checked_amount(request.amount_micros)
        if request.amount_micros < 0:
            raise ValueError(f"a charge cannot be negative ({request.amount_micros})")
        customer, entry_id, terms = request.customer_id, request.entry_id, request.terms
        if isinstance(terms, PrepaidTerms):
            keys: tuple[str, ...] = (account_key(customer), dedup_key(customer, entry_id), ledger_key(customer))
            args = self._prepaid_args("debit", entry_id, amount, request.at_ms, self._dedup_ttl_s, terms,
                                      request.replay, request.plan_version, "debit", request.reference)
            return self._prepaid(keys=keys, args=args, client=pipe)
        if isinstance(terms, PostpaidTerms):
            keys = (cycle_key(customer, terms.cycle), dedup_key(customer, entry_id))
            args = (
                entry_id, amount, str(request.at_ms), str(self._dedup_ttl_s),
                "" if terms.credit_limit_micros is None else str(terms.credit_limit_micros),
                "" if terms.soft_limit_micros is None else str(terms.soft_limit_micros),
                "1" if request.replay else "0", request.plan_version, self._cycle_ttl_s,
            )
            return self._postpaid(keys=keys, args=args, client=pipe)
        raise TypeError(f"unknown charging terms {type(terms).__name__}")

    def _result(self, request: ChargeRequest, reply) -> ChargeResult:
        if isinstance(reply, Exception):
            raise reply
        status, stored = _text(reply[0]), _text(reply[1])
        if status == "no_account":
            raise AccountNotLoaded(request.customer_id)
        return decode_result(stored, request.customer_id, request.entry_id, request.reference,
                             duplicate=status == "dup")

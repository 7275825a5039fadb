"""Redis (Memorystore) balance store: prepaid balances and postpaid running totals.

One Lua script call per event does the whole charging step atomically: dedup by event_id
(a redelivered event gets its ORIGINAL stored result back), suspension check, balance check
and debit in integer micro-units, ledger entry, low-balance crossing, auto-recharge and the
suspension notice (``prepaid_debit.lua``); postpaid events add to the cycle's running total
under the credit limits (``postpaid_charge.lua``). Policies: ``charging/prepaid.py`` and
``charging/postpaid.py``.

Key layout (every key of one customer shares the hash tag ``{CUSTOMER}``, so one script call
touches a single cluster slot and the store runs unchanged on Redis Cluster / Memorystore
cluster mode). Each caller-chosen id lives in its own namespace, so no event id can reach a
top-up's key whatever its text:

    warp:{C}:account             hash    balance, seq, low, suspend_at, suspended_alerted, opened_ms
    warp:{C}:event:<event_id>    string  stored charge result of a usage event (TTL = dedup window)
    warp:{C}:credit:<entry_id>   string  stored result of a top-up / adjustment (kept for ever)
    warp:{C}:ledger              stream  recent ledger entries (capped), for `warp balance show`
    warp:{C}:outbox              hash    entry_id -> ledger entry the ledger store may not have yet
    warp:{C}:fence               hash    gen (run_id of the server the state was verified on),
                                         lock + lock_until while a reconcile holds the customer
    warp:{C}:cycle:<YYYY-MM-DD>  hash    postpaid total, events, soft_alerted, hard_alerted
    warp:{C}:hold                string  set while the customer is suspended for non-payment (dunning,
                                         ``adapters.redis_holds``): every event is refused ACCOUNT_SUSPENDED

(Auto-recharges have no key of their own: they are part of their event's stored result, and
their ledger entry id is ``<event_id>#recharge``; alerts are deduplicated by their alert_id.)

Redis errors that a retry can cure (connection refused or reset, timeouts, loading after a
restart, read-only replica after failover, cluster down) become ``BalancesUnavailable``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from importlib import resources

import redis
from redis import exceptions as redis_errors

from ..charging.accounts import (
    CHARGED,
    MAX_MICROS,
    REFUSED,
    AccountAlert,
    AccountImage,
    AccountState,
    AlertCode,
    ChargeRequest,
    ChargeResult,
    PostpaidTerms,
    PrepaidTerms,
)
from ..charging.clock import iso_from_ms
from ..charging.errors import BalanceOutOfRange, LedgerConflict, TransientCode, TransientError
from ..ports import LedgerEntry
from ..rating.rejections import Reason
from .redis_round_trip import ScriptCall, round_trip

PREPAID_FORMAT = "1"
POSTPAID_FORMAT = "2"
TOPUP_PREFIX = "topup:"
RECHARGE_SUFFIX = "#recharge"
PENDING_PREFIX = "p:"   # outbox field of a postpaid charge awaiting its rated row
MAX_DEFERRED_CLEARS = 5000
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


class BalancesFenced(TransientError):
    """A reconcile holds this customer (seconds): the charge is retried by redelivery."""

    def __init__(self, customer_id: str):
        super().__init__(TransientCode.BALANCES_FENCED, f"{customer_id!r} is being reconciled with the ledger; retry")
        self.customer_id = customer_id


class BalancesStale(TransientError):
    """Redis holds a copy of this customer's state that was not verified against the durable
    ledger / usage store on this server (restart, restored snapshot, promoted replica, flush):
    it may be behind, so nothing is charged until a reconcile brings it up to the ledger."""

    def __init__(self, customer_id: str):
        super().__init__(
            TransientCode.BALANCES_STALE,
            f"Redis state of {customer_id!r} is not verified against the ledger on this server (restart, restore "
            "or failover); `warp balance sweep` / `warp balance rebuild` brings it up to the ledger",
        )
        self.customer_id = customer_id


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


def event_key(customer_id: str, event_id: str) -> str:
    """The dedup mark (stored result) of a usage event."""
    return f"warp:{customer_tag(customer_id)}:event:{event_id}"


def credit_key(customer_id: str, entry_id: str) -> str:
    """The dedup mark of a top-up or adjustment (entry id ``topup:<id>`` / ``adjustment:<id>``)."""
    return f"warp:{customer_tag(customer_id)}:credit:{entry_id}"


def fence_key(customer_id: str) -> str:
    return f"warp:{customer_tag(customer_id)}:fence"


def outbox_key(customer_id: str) -> str:
    return f"warp:{customer_tag(customer_id)}:outbox"


def ledger_key(customer_id: str) -> str:
    return f"warp:{customer_tag(customer_id)}:ledger"


def hold_key(customer_id: str) -> str:
    """Present while the customer is suspended for non-payment (dunning): both scripts refuse its events."""
    return f"warp:{customer_tag(customer_id)}:hold"


def cycle_key(customer_id: str, cycle: str) -> str:
    return f"warp:{customer_tag(customer_id)}:cycle:{cycle}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_result(
    stored: str, customer_id: str, entry_id: str, reference: str, *, duplicate: bool, credit_kind: str | None = None
) -> ChargeResult:
    """A stored result (see prepaid_debit.lua) as a ChargeResult with its ledger entries and alerts."""
    fields = stored.split("|", 11)
    if len(fields) == 11:
        fields.append("")  # stored before positions existed
    if len(fields) != 12 or fields[0] not in (PREPAID_FORMAT, POSTPAID_FORMAT):
        raise ValueError(f"unreadable stored charge result for {customer_id}/{entry_id}: {stored!r}")
    kind, outcome, reason, amount, balance, at_ms, recharge, first, flags, deadline, version, seq_text = fields
    amount_micros, balance_micros, at, recharge_micros = int(amount), int(balance), int(at_ms), int(recharge)
    seq = int(seq_text) if seq_text else None
    at_iso = iso_from_ms(at)
    charged = outcome == "C"
    entries: list[LedgerEntry] = []
    if kind == POSTPAID_FORMAT:
        pass  # a postpaid running total moves no balance: no ledger entry
    elif credit_kind is not None:
        entries.append(LedgerEntry(entry_id, customer_id, credit_kind, amount_micros, balance_micros, at_iso, reference,
                                   seq))
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
        ordered = [entry for entry in ((recharge_entry, debit_entry) if pre else (debit_entry, recharge_entry))
                   if entry is not None]
        if seq is not None:  # the step's entries took the positions up to seq, in order
            ordered = [replace(entry, sequence=seq - len(ordered) + 1 + index) for index, entry in enumerate(ordered)]
        entries.extend(ordered)
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
    last_seq = result.entries[-1].sequence if result.entries else None
    return "|".join((
        PREPAID_FORMAT, "C" if result.charged else "R", result.reason.value if result.reason else "",
        str(result.amount_micros), str(result.balance_micros), str(result.at_ms),
        str(recharges[0].amount_micros) if recharges else "0", first, flags,
        "" if result.deadline_ms is None else str(result.deadline_ms), result.plan_version,
        "" if last_seq is None else str(last_seq),
    ))


def encode_outbox_entry(entry: LedgerEntry, at_ms: int) -> str:
    """An outbox value as prepaid_debit.lua writes it: kind|amount|balance|at_ms|seq|reference."""
    return "|".join((entry.kind, str(entry.amount_micros), str(entry.balance_after_micros), str(at_ms),
                     "" if entry.sequence is None else str(entry.sequence), entry.reference))


def decode_outbox_entry(customer_id: str, entry_id: str, value: str) -> LedgerEntry:
    kind, amount, balance, at_ms, seq, reference = value.split("|", 5)
    return LedgerEntry(entry_id, customer_id, kind, int(amount), int(balance), iso_from_ms(int(at_ms)), reference,
                       int(seq) if seq else None)


def _checked_amount(amount_micros: int) -> str:
    if type(amount_micros) is not int or abs(amount_micros) > MAX_MICROS:
        raise BalanceOutOfRange(f"amount {amount_micros!r} micro-units is not an integer of at most 2**50 "
                                f"({MAX_MICROS}) in magnitude, the bound that keeps Redis arithmetic exact")
    return str(amount_micros)


class RedisBalances:
    """``BalanceStore`` on Redis: prepaid accounts and postpaid cycle totals.

    ``client`` is a ``redis.Redis`` (or ``redis.RedisCluster``); the store registers its
    scripts and calls them by SHA (EVALSHA), reloading them after a server restart.
    """

    def __init__(self, client: redis.Redis, *, dedup_ttl_s: int, ledger_stream_maxlen: int = 10_000,
                 postpaid_cycle_ttl_s: int = 100 * 86_400):
        self.client = client
        self._dedup_ttl_s = dedup_ttl_s
        self._maxlen = str(ledger_stream_maxlen)
        self._cycle_ttl_s = str(postpaid_cycle_ttl_s)
        self._bound = str(MAX_MICROS)
        self._clears: list[tuple[str, str]] = []      # outbox fields to delete with the next charge
        self._clear_lock = threading.Lock()
        self._prepaid = client.register_script(_script("prepaid_debit.lua"))
        self._postpaid = client.register_script(_script("postpaid_charge.lua"))
        self._fence = client.register_script(_script("reconcile_fence.lua"))
        self._release = client.register_script(_script("reconcile_release.lua"))

    # -- charging ---------------------------------------------------------------------------

    def charge(self, request: ChargeRequest) -> ChargeResult:
        try:
            clears = self._take_clears()
            if isinstance(self.client, redis.RedisCluster):
                self._flush_clears(clears)
                reply = self._call(request, None)
            else:
                # The outbox clears of earlier events ride in this call's round trip (no extra one).
                reply = round_trip(self.client, [*self._clear_commands(clears), self._script_call(request)])[-1]
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"charging {request.customer_id}/{request.entry_id}: {exc}") from exc
        return self._result(request, reply)

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | TransientError]:
        """Many charges in one round trip (EVALSHA calls sent together, executed in order).

        A request whose customer cannot be charged now (account not loaded, fenced, stale)
        comes back as its ``TransientError``; a lost connection fails the whole batch with
        ``BalancesUnavailable`` (some steps may have run: retrying the batch is idempotent).
        """
        if not requests:
            return []
        try:
            if isinstance(self.client, redis.RedisCluster):
                replies = self._execute_per_node(requests)
            else:
                clears = self._clear_commands(self._take_clears())
                replies = round_trip(self.client, [*clears, *map(self._script_call, requests)])[len(clears):]
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"charging a batch of {len(requests)}: {exc}") from exc
        results: list[ChargeResult | TransientError] = []
        for request, reply in zip(requests, replies, strict=True):
            try:
                results.append(self._result(request, reply))
            except TransientError as refused:
                results.append(refused)
        return results

    def prior_result(self, customer_id: str, entry_id: str, reference: str) -> ChargeResult | None:
        try:
            stored = self.client.get(event_key(customer_id, entry_id))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"reading the result of {customer_id}/{entry_id}: {exc}") from exc
        if stored is None:
            return None
        return decode_result(_text(stored), customer_id, entry_id, reference, duplicate=True)

    def credit(self, customer_id: str, entry_id: str, amount_micros: int, kind: str, reference: str, at_ms: int,
               terms: PrepaidTerms) -> ChargeResult:
        """Top-up or adjustment (signed), idempotent by ``entry_id`` for ever (no TTL).

        Reusing an entry id with a different amount raises ``LedgerConflict``; a credit past the
        exact-integer bound raises ``BalanceOutOfRange`` (nothing moves).
        """
        args = self._prepaid_args("credit", entry_id, _checked_amount(amount_micros), at_ms, 0, terms, False, "",
                                  kind, reference)
        try:
            status, stored = self._run_one(ScriptCall(self._prepaid, self._prepaid_keys(
                customer_id, credit_key(customer_id, entry_id)), args))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"crediting {customer_id}/{entry_id}: {exc}") from exc
        status = _text(status)
        if status == "out_of_range":
            raise BalanceOutOfRange(
                f"{kind} {entry_id!r} of {amount_micros} micro-units would take the balance of {customer_id} "
                f"({_text(stored)}) past {MAX_MICROS} micro-units (2**50), the bound that keeps Redis arithmetic "
                "exact; refused, nothing booked")
        _raise_refusal(status, customer_id)
        result = decode_result(_text(stored), customer_id, entry_id, reference, duplicate=status == "dup",
                               credit_kind=kind)
        if result.amount_micros != amount_micros:
            raise LedgerConflict(
                f"ledger entry {entry_id!r} of {customer_id} already booked {result.amount_micros} micro-units, "
                f"not {amount_micros}"
            )
        return result

    def open_account(self, customer_id: str, at_ms: int) -> None:
        """Create a prepaid account at zero, verified on this server, if it does not exist.

        Only for a customer with no ledger history (a lost account is rebuilt by a reconcile,
        which is what the `warp` commands use)."""
        try:
            self._run_one(ScriptCall(self._prepaid, self._prepaid_keys(customer_id, credit_key(customer_id, "-")),
                                     ("open", "-", "0", str(at_ms)) + ("",) * 11))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise BalancesUnavailable(f"opening the account of {customer_id}: {exc}") from exc

    def persisted(self, entries: Iterable[LedgerEntry], rated: Iterable[tuple[str, str]] = (), *,
                  deferred: bool = False) -> None:
        """Drop from the outboxes the ledger entries the ledger store now holds and the postpaid charges
        whose rated rows (customer, event_id) the usage store now holds (idempotent).

        ``deferred``: send the deletions with this store's next charge, in the same round trip (the
        charging path: one Redis round trip per event). Until then, or if the instance stops first,
        the entries stay in the outbox, where a sweep or rebuild finds them already in the ledger:
        appending them again changes nothing.
        """
        fields: list[tuple[str, str]] = [(entry.customer_id, entry.entry_id) for entry in entries]
        fields += [(customer, PENDING_PREFIX + event_id) for customer, event_id in rated]
        if not fields:
            return
        with self._clear_lock:
            self._clears.extend(fields)
            if deferred and len(self._clears) < MAX_DEFERRED_CLEARS:
                return
        self._flush_clears(self._take_clears())

    def _take_clears(self) -> list[tuple[str, str]]:
        with self._clear_lock:
            clears, self._clears = self._clears, []
        return clears

    @staticmethod
    def _clear_commands(clears: list[tuple[str, str]]) -> list[tuple[str, ...]]:
        """One HDEL per customer for these (customer, outbox field) pairs."""
        by_customer: dict[str, list[str]] = {}
        for customer, name in clears:
            by_customer.setdefault(customer, []).append(name)
        return [("HDEL", outbox_key(customer), *names) for customer, names in by_customer.items()]

    def _flush_clears(self, clears: list[tuple[str, str]]) -> None:
        if not clears:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for command in self._clear_commands(clears):
                pipe.execute_command(*command)
            pipe.execute()
        except TRANSIENT_REDIS_ERRORS as exc:  # the sweep drains what is left; nothing is lost
            raise BalancesUnavailable(f"clearing the outbox: {exc}") from exc

    # -- reading ----------------------------------------------------------------------------

    def account(self, customer_id: str) -> AccountState | None:
        values = self.client.hmget(account_key(customer_id), "balance", "low", "suspend_at", "opened_ms")
        if values[0] is None:
            return None
        balance = _text(values[0])
        low, suspend_at, opened = (None if value is None else _text(value) for value in values[1:])
        return AccountState(customer_id, int(balance), low == "1", int(suspend_at) if suspend_at else None,
                            int(opened) if opened else None)

    def position(self, customer_id: str) -> int:
        """The account's sequence: the position of its last ledger entry (0 when none)."""
        seq = self.client.hget(account_key(customer_id), "seq")
        return int(_text(seq)) if seq is not None else 0

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

    def pending_entries(self, customers: Iterable[str] | None = None) -> list[LedgerEntry]:
        """Outbox entries (debits made in Redis the ledger store may not hold yet)."""
        names = list(customers) if customers is not None else self.customers_with("outbox")
        pipe = self.client.pipeline(transaction=False)
        for customer in names:
            pipe.hgetall(outbox_key(customer))
        entries = []
        for customer, values in zip(names, pipe.execute() if names else [], strict=True):
            for entry_id, value in values.items():
                if not _text(entry_id).startswith(PENDING_PREFIX):
                    entries.append(decode_outbox_entry(customer, _text(entry_id), _text(value)))
        return entries

    def pending_charges(self, customers: Iterable[str] | None = None) -> list[tuple[str, str, str, int]]:
        """(customer, event_id, cycle, amount) of postpaid charges whose rated row may not be written yet."""
        names = list(customers) if customers is not None else self.customers_with("outbox")
        pipe = self.client.pipeline(transaction=False)
        for customer in names:
            pipe.hgetall(outbox_key(customer))
        pending = []
        for customer, values in zip(names, pipe.execute() if names else [], strict=True):
            for raw_field, value in values.items():
                name = _text(raw_field)
                if name.startswith(PENDING_PREFIX):
                    cycle, amount = _text(value).split("|")
                    pending.append((customer, name[len(PENDING_PREFIX):], cycle, int(amount)))
        return pending

    def customers_with(self, suffix: str) -> list[str]:
        """Customers that have a ``warp:{C}:<suffix>`` key (one SCAN; every node of a cluster)."""
        names = set()
        for raw_key in self.client.scan_iter(match=f"warp:{{*}}:{suffix}", count=1000):
            key = _text(raw_key)
            names.add(key[6:key.index("}")])
        return sorted(names)

    def unverified_customers(self) -> list[str]:
        """Customers whose Redis state was not verified on this server (restart, restore, failover)."""
        run_id = self.run_id()
        names = set(self.customers_with("account")) | set(self.customers_with("fence"))
        names |= {key[6:key.index("}")] for key in map(_text, self.client.scan_iter(match="warp:{*}:cycle:*",
                                                                                        count=1000))}
        ordered = sorted(names)
        pipe = self.client.pipeline(transaction=False)
        for customer in ordered:
            pipe.hget(fence_key(customer), "gen")
        generations = pipe.execute() if ordered else []
        return [customer for customer, gen in zip(ordered, generations, strict=True) if gen != run_id]

    def is_verified(self, customer_id: str) -> bool:
        """True when the customer's Redis state was reconciled on this server (or opened here)."""
        gen = self.client.hget(fence_key(customer_id), "gen")
        return gen is not None and _text(gen) == self.run_id()

    def run_id(self) -> str:
        return _text(self.client.info("server")["run_id"])

    # -- reconciling with the ledger ---------------------------------------------------------------

    def fence(self, customers: Iterable[str], lease_s: int) -> tuple[str, list[str]]:
        """Stop charging for these customers (a lease of ``lease_s``); return (token, busy customers).

        A customer held by another live reconcile is 'busy' and left to it.
        """
        token = uuid.uuid4().hex
        names = list(customers)
        args = (token, str(lease_s * 1000))
        if isinstance(self.client, redis.RedisCluster):  # its pipeline refuses EVALSHA: one call each
            answers = [self._fence(keys=(fence_key(customer),), args=args) for customer in names]
        else:
            pipe = self.client.pipeline(transaction=False)
            for customer in names:
                self._fence(keys=(fence_key(customer),), args=args, client=pipe)
            answers = pipe.execute() if names else []
        return token, [customer for customer, answer in zip(names, answers, strict=True) if _text(answer) != "ok"]

    def restore_results(self, customer_id: str, results: Iterable[tuple[str, ChargeResult, int | None]]) -> int:
        """Add (entry_id, result, ttl seconds or None = keep) dedup marks that are missing; return how many
        were sent. A mark already present is a stored decision and is kept (SET NX)."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for entry_id, result, ttl_s in results:
            stored = encode_result(result)
            if ttl_s is None:
                pipe.set(credit_key(customer_id, entry_id), stored, nx=True)
            elif ttl_s > 0:
                pipe.set(event_key(customer_id, entry_id), stored, ex=ttl_s, nx=True)
            else:
                continue
            count += 1
            if len(pipe) >= 500:
                pipe.execute()
        pipe.execute()
        return count

    def restore_postpaid_results(self, customer_id: str, marks: Iterable[tuple[str, int, int, int]]) -> int:
        """Add missing dedup marks of rated postpaid events: (event_id, amount, start ms, ttl seconds).

        The stored result is the charge (format 2, outcome C); a mark already present is kept."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for event_id, amount, start_ms, ttl_s in marks:
            if ttl_s <= 0:
                continue            # beyond the window: the durable usage store answers for it
            stored = "|".join((POSTPAID_FORMAT, "C", "", str(amount), "0", str(start_ms), "0", "", "", "", "", ""))
            pipe.set(event_key(customer_id, event_id), stored, ex=ttl_s, nx=True)
            count += 1
            if len(pipe) >= 500:
                pipe.execute()
        pipe.execute()
        return count

    def release(self, image: AccountImage, token: str) -> bool:
        """Write the reconciled state and lift the fence, atomically; False when the lease was lost
        (expired or taken over): nothing is written and the customer must be reconciled again."""
        prepaid = image.prepaid
        args = [token, "1" if prepaid else "0"]
        if prepaid:
            balance, seq, low, suspend_at, opened = prepaid
            args += [str(balance), str(seq), "1" if low else "0", "" if suspend_at is None else str(suspend_at),
                     str(opened)]
        else:
            args += ["", "", "", "", ""]
        args.append(self._cycle_ttl_s)
        keys = [fence_key(image.customer_id), account_key(image.customer_id)]
        for cycle, (total, events) in sorted(image.cycles.items()):
            keys.append(cycle_key(image.customer_id, cycle))
            args += [str(total), str(events)]
        return _text(self._release(keys=keys, args=args)) == "ok"

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
            node_replies = round_trip(cluster.get_redis_connection(node),
                                      [self._script_call(requests[index]) for index in indexes])
            for index, reply in zip(indexes, node_replies, strict=True):
                moved = isinstance(reply, (redis_errors.MovedError, redis_errors.AskError, redis_errors.TryAgainError))
                replies[index] = self._call(requests[index], None) if moved else reply
        return replies

    @staticmethod
    def _prepaid_keys(customer_id: str, dedup: str) -> tuple[str, ...]:
        return (account_key(customer_id), dedup, ledger_key(customer_id), fence_key(customer_id),
                outbox_key(customer_id), hold_key(customer_id))

    def _prepaid_args(self, op: str, entry_id: str, amount: str, at_ms: int, ttl_s: int, terms: PrepaidTerms,
                      replay: bool, version: str, kind: str, reference: str) -> tuple[str, ...]:
        return (
            op, entry_id, amount, str(at_ms), str(ttl_s), self._maxlen,
            str(terms.low_balance_threshold_micros), str(terms.suspend_after_s * 1000),
            "" if not terms.auto_recharge else str(terms.recharge_below_micros),
            str(terms.recharge_amount_micros or 0), "1" if replay else "0", version, kind, reference, self._bound,
        )

    def _script_call(self, request: ChargeRequest) -> ScriptCall:
        """The charging script call of one request (the server run_id is appended when it is sent)."""
        amount = _checked_amount(request.amount_micros)
        if request.amount_micros < 0:
            raise ValueError(f"a charge cannot be negative ({request.amount_micros})")
        customer, entry_id, terms = request.customer_id, request.entry_id, request.terms
        if isinstance(terms, PrepaidTerms):
            args = self._prepaid_args("debit", entry_id, amount, request.at_ms, self._dedup_ttl_s, terms,
                                      request.replay, request.plan_version, "debit", request.reference)
            return ScriptCall(self._prepaid, self._prepaid_keys(customer, event_key(customer, entry_id)), args)
        if isinstance(terms, PostpaidTerms):
            keys = (cycle_key(customer, terms.cycle), event_key(customer, entry_id), fence_key(customer),
                    outbox_key(customer), hold_key(customer))
            args = (
                entry_id, amount, str(request.at_ms), str(self._dedup_ttl_s),
                "" if terms.credit_limit_micros is None else str(terms.credit_limit_micros),
                "" if terms.soft_limit_micros is None else str(terms.soft_limit_micros),
                "1" if request.replay else "0", request.plan_version, self._cycle_ttl_s, self._bound, terms.cycle,
            )
            return ScriptCall(self._postpaid, keys, args)
        raise TypeError(f"unknown charging terms {type(terms).__name__}")

    def _call(self, request: ChargeRequest, pipe):
        """The script call through redis-py (cluster client or a node's pipeline): the script reads
        the run_id itself (an empty last argument)."""
        call = self._script_call(request)
        return call.script(keys=call.keys, args=(*call.args, ""), client=pipe)

    def _run_one(self, call: ScriptCall):
        if isinstance(self.client, redis.RedisCluster):
            return call.script(keys=call.keys, args=(*call.args, ""))
        reply = round_trip(self.client, [call])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _result(self, request: ChargeRequest, reply) -> ChargeResult:
        if isinstance(reply, Exception):
            raise reply
        status, stored = _text(reply[0]), _text(reply[1])
        _raise_refusal(status, request.customer_id)
        return decode_result(stored, request.customer_id, request.entry_id, request.reference,
                             duplicate=status == "dup")


def _raise_refusal(status: str, customer_id: str) -> None:
    """The script's answer when it decided nothing: a transient error for the caller to retry."""
    if status == "no_account":
        raise AccountNotLoaded(customer_id)
    if status == "fenced":
        raise BalancesFenced(customer_id)
    if status == "stale":
        raise BalancesStale(customer_id)


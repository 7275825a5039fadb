"""Compiled customer plans for a warm function instance, following the store's version pointer.

A ``PlanStore`` keeps each customer's plans by version with a pointer to the current one. The
catalog compiles a version once (plan + rate decks -> ``CustomerRater``) and re-reads the
pointer at most every ``refresh_s`` seconds, so a new plan or deck version is picked up without
a redeploy. Decks are compiled once per content (sha256), however many versions share them.

Failure handling: when the store cannot be reached and a compiled version is cached, the cached
version keeps rating (logged); without one the delivery is retried (``TransientError``). A new
version that does not compile (bad plan or deck) is logged and the previous version stays in
use; with no previous version the delivery is retried until an operator fixes the plan.

Port convention: every deck reference in a plan document (``voice.deck``, ``vendor_decks``
values, ``messaging.deck``, ``voice.npa_nxx``...) is a deck id that ``PlanStore.deck_text`` answers.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..plan import Plan, PlanError, parse_plan
from ..ports import PlanStore
from ..rating.deck import DeckError, RateDeck, read_deck_rows
from ..rating.numbering import NumberingError, NumberingPlan
from ..rating.rater import CustomerRater, deck_paths
from .accounts import PrepaidTerms
from .errors import TransientCode, TransientError
from .prepaid import prepaid_terms

log = logging.getLogger(__name__)
KEPT_VERSIONS = 16
KEPT_DECKS = 64


@dataclass(frozen=True)
class CompiledPlan:
    """One version of a customer's plan, ready to rate.

    Attributes:
        prepaid: the plan's prepaid terms in micro-units (None for a postpaid plan).
    """

    customer_id: str
    version: str
    plan: Plan
    rater: CustomerRater
    prepaid: PrepaidTerms | None

    @property
    def currency(self) -> str:
        return self.plan.currency


@dataclass
class _Pointer:
    compiled: CompiledPlan | None
    checked_ns: int


class PlanCatalog:
    """Customer id -> the compiled current plan (refreshed at most every ``refresh_s`` seconds)."""

    def __init__(self, store: PlanStore, refresh_s: int, numbering: NumberingPlan | None = None,
                 monotonic_ns: Callable[[], int] = time.monotonic_ns):
        self._store = store
        self._refresh_ns = refresh_s * 1_000_000_000
        self._numbering = numbering
        self._monotonic_ns = monotonic_ns
        self._pointers: dict[str, _Pointer] = {}
        self._versions: OrderedDict[tuple[str, str], CompiledPlan] = OrderedDict()
        self._decks: OrderedDict[str, RateDeck] = OrderedDict()
        self._lock = threading.RLock()

    def current(self, customer_id: str) -> CompiledPlan | None:
        """The customer's current plan, or None when the store has no plan for the customer."""
        pointer = self._pointers.get(customer_id)
        now = self._monotonic_ns()
        if pointer is not None and now - pointer.checked_ns < self._refresh_ns:
            return pointer.compiled
        with self._lock:
            pointer = self._pointers.get(customer_id)
            if pointer is not None and now - pointer.checked_ns < self._refresh_ns:
                return pointer.compiled
            return self._refresh(customer_id, pointer, now)

    def at_version(self, customer_id: str, version: str) -> CompiledPlan | None:
        """A specific (possibly earlier) version, or None when the store no longer has it."""
        with self._lock:
            compiled = self._versions.get((customer_id, version))
            if compiled is not None:
                self._versions.move_to_end((customer_id, version))
                return compiled
            try:
                return self._compile(customer_id, version)
            except (PlanError, DeckError, NumberingError, LookupError, ValueError) as exc:
                log.warning("plan version not available", extra={"customer_id": customer_id, "plan_version": version,
                                                                  "error": str(exc)})
                return None

    def _refresh(self, customer_id: str, pointer: _Pointer | None, now: int) -> CompiledPlan | None:
        cached = pointer.compiled if pointer is not None else None
        try:
            version = self._store.current_version(customer_id)
        except Exception as exc:  # any store failure: keep rating on the cached version if there is one
            if cached is not None:
                log.warning("plan store unreachable; rating on the cached plan version",
                            extra={"customer_id": customer_id, "plan_version": cached.version, "error": str(exc)})
                self._pointers[customer_id] = _Pointer(cached, now)
                return cached
            raise TransientError(TransientCode.PLAN_STORE_UNAVAILABLE, f"plan pointer of {customer_id}: {exc}") from exc
        if version is None:
            self._pointers[customer_id] = _Pointer(None, now)
            return None
        if cached is not None and cached.version == version:
            self._pointers[customer_id] = _Pointer(cached, now)
            return cached
        try:
            compiled = self._compile(customer_id, version)
        except (PlanError, DeckError, NumberingError, LookupError, ValueError) as exc:
            log.error("plan version cannot be compiled", extra={"customer_id": customer_id, "plan_version": version,
                                                                "error": str(exc)})
            if cached is not None:
                self._pointers[customer_id] = _Pointer(cached, now)
                return cached
            raise TransientError(TransientCode.PLAN_INVALID, f"plan {customer_id}@{version}: {exc}") from exc
        except Exception as exc:
            if cached is not None:
                self._pointers[customer_id] = _Pointer(cached, now)
                return cached
            raise TransientError(TransientCode.PLAN_STORE_UNAVAILABLE, f"plan {customer_id}@{version}: {exc}") from exc
        if cached is not None:
            log.info("plan version changed", extra={"customer_id": customer_id, "plan_version": version,
                                                    "previous_version": cached.version})
        self._pointers[customer_id] = _Pointer(compiled, now)
        return compiled

    def _compile(self, customer_id: str, version: str) -> CompiledPlan:
        document = self._store.plan_document(customer_id, version)
        plan = parse_plan(dict(document), f"plan {customer_id}@{version}")
        if plan.customer_id != customer_id:
            raise PlanError(f"plan {customer_id}@{version}: customer_id is {plan.customer_id!r}")
        decks = {deck_id: self._deck(deck_id) for deck_id in deck_paths(plan)}
        numbering = self._numbering or NumberingPlan.embedded()
        if plan.voice is not None and plan.voice.npa_nxx:
            numbering = _with_lerg_text(numbering, plan.voice.npa_nxx, self._store.deck_text(plan.voice.npa_nxx))
        compiled = CompiledPlan(customer_id, version, plan, CustomerRater(plan, decks, numbering),
                                prepaid_terms(plan) if plan.billing == "prepaid" else None)
        self._versions[(customer_id, version)] = compiled
        while len(self._versions) > KEPT_VERSIONS:
            self._versions.popitem(last=False)
        return compiled

    def _deck(self, deck_id: str) -> RateDeck:
        text = self._store.deck_text(deck_id)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        deck = self._decks.get(digest)
        if deck is None:
            deck = RateDeck(read_deck_rows(io.StringIO(text.lstrip("\ufeff"), newline=""), deck_id), name=deck_id)
            self._decks[digest] = deck
            while len(self._decks) > KEPT_DECKS:
                self._decks.popitem(last=False)
        else:
            self._decks.move_to_end(digest)
        return deck


def _with_lerg_text(numbering: NumberingPlan, deck_id: str, text: str) -> NumberingPlan:
    """``NumberingPlan.with_lerg_csv`` for a LERG file held by the plan store (it reads a path)."""
    handle, path = tempfile.mkstemp(prefix="warp-lerg-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        return numbering.with_lerg_csv(path)
    finally:
        os.unlink(path)

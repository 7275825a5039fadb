"""PlanCatalog: compiled plans follow the store's version pointer, and survive a store outage."""

from __future__ import annotations

import pytest
import yaml
from tests.charging_world import DECKS, PREPAID_PLAN
from tests.fakes import FakeMonotonic, FakePlanStore

from warp_billing.charging.errors import TransientCode, TransientError
from warp_billing.charging.plan_catalog import PlanCatalog


@pytest.fixture
def store():
    store = FakePlanStore()
    store.put_plan("ACME", yaml.safe_dump(PREPAID_PLAN), DECKS)
    return store


def test_the_version_pointer_is_read_at_most_once_per_refresh_interval(store):
    clock = FakeMonotonic()
    catalog = PlanCatalog(store, 30, monotonic_ns=clock)

    for _ in range(100):
        catalog.current("ACME")
    clock.advance(29)
    catalog.current("ACME")
    assert store.pointer_reads == 1
    clock.advance(2)
    catalog.current("ACME")
    assert store.pointer_reads == 2


def test_a_new_version_is_compiled_and_an_unchanged_deck_is_not_recompiled(store):
    clock = FakeMonotonic()
    catalog = PlanCatalog(store, 0, monotonic_ns=clock)
    first = catalog.current("ACME")
    store.put_plan("ACME", yaml.safe_dump({**PREPAID_PLAN, "margin": {"alert_below_pct": "5"}}), DECKS)
    clock.advance(1)

    second = catalog.current("ACME")

    assert (first.version, second.version) == ("v1", "v2")
    assert second.rater is not first.rater
    assert len(catalog._decks) == len(DECKS)    # same deck texts: compiled once for both versions


def test_a_customer_without_a_plan_is_none_and_that_answer_is_cached(store):
    catalog = PlanCatalog(store, 30, monotonic_ns=FakeMonotonic())

    assert catalog.current("NOBODY") is None
    assert catalog.current("NOBODY") is None
    assert store.pointer_reads == 1


def test_an_unreachable_store_keeps_the_cached_version_in_use(store):
    clock = FakeMonotonic()
    catalog = PlanCatalog(store, 30, monotonic_ns=clock)
    cached = catalog.current("ACME")
    store.fail_next()
    clock.advance(31)

    assert catalog.current("ACME") is cached


def test_an_unreachable_store_with_nothing_cached_is_transient(store):
    store.fail_next()

    with pytest.raises(TransientError) as failure:
        PlanCatalog(store, 30).current("ACME")

    assert failure.value.code is TransientCode.PLAN_STORE_UNAVAILABLE


def test_a_broken_new_version_leaves_the_previous_one_in_use(store):
    clock = FakeMonotonic()
    catalog = PlanCatalog(store, 30, monotonic_ns=clock)
    previous = catalog.current("ACME")
    store.put_plan("ACME", yaml.safe_dump(PREPAID_PLAN), {"voice.csv": "prefix,rate\n"})   # no effective_date
    clock.advance(31)

    assert catalog.current("ACME") is previous


def test_a_broken_first_version_is_retried_as_plan_invalid():
    store = FakePlanStore()
    store.put_plan("ACME", yaml.safe_dump({**PREPAID_PLAN, "billing": "barter"}), DECKS)

    with pytest.raises(TransientError) as failure:
        PlanCatalog(store, 30).current("ACME")

    assert failure.value.code is TransientCode.PLAN_INVALID


def test_an_earlier_version_can_be_compiled_again(store):
    catalog = PlanCatalog(store, 0, monotonic_ns=FakeMonotonic())
    store.put_plan("ACME", yaml.safe_dump(PREPAID_PLAN), DECKS)

    assert catalog.at_version("ACME", "v1").version == "v1"
    assert catalog.at_version("ACME", "v9") is None


def test_prepaid_terms_come_in_micro_units(store):
    terms = PlanCatalog(store, 30).current("ACME").prepaid

    assert (terms.low_balance_threshold_micros, terms.suspend_after_s, terms.auto_recharge) == (
        1_000_000, 86_400, False)

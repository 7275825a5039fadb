"""Properties of charging under any mix of deliveries, redeliveries, crashes and top-ups."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.charging_world import make_world, voice_event

from warp_billing.charging.errors import TransientError

operations = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(0, 24), st.integers(0, 900)),
        st.tuples(st.just("crash_after_debit"), st.integers(0, 24), st.integers(0, 900)),
        st.tuples(st.just("topup"), st.integers(1, 3_000_000), st.integers(0, 5)),
        st.tuples(st.just("wait_hours"), st.integers(1, 30), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_money_is_never_charged_twice_and_the_ledger_always_equals_the_balance(script):
    world = make_world(max_event_age_s=10 * 365 * 86_400)
    durations: dict[int, int] = {}
    pending: set[int] = set()
    topups: dict[int, int] = {}
    for operation, first, second in script:
        if operation in ("deliver", "crash_after_debit"):
            seconds = durations.setdefault(first, second)   # a redelivery carries the same event
            if operation == "crash_after_debit":
                world.usage.fail_next()
            try:
                world.handle(voice_event(f"e{first}", seconds=seconds))
                pending.discard(first)
            except TransientError:
                pending.add(first)
            world.usage._failures.clear()          # the crash hit this delivery only
        elif operation == "topup":
            amount = topups.setdefault(second, first)      # a repeated top-up id is the same payment
            world.topup("ACME", amount, topup_id=f"t{second}")
        else:
            world.clock.advance(first * 3600)
    for number in sorted(pending):                          # Pub/Sub redelivers what was not acked
        world.handle(voice_event(f"e{number}", seconds=durations[number]))

    balance = world.balances.account("ACME").balance_micros
    assert balance == world.ledger.balance("ACME")
    debits = [e for e in world.ledger.by_id.values() if e.kind == "debit"]
    assert len({e.entry_id for e in debits}) == len(debits)
    for entry in debits:                                    # each debit has its row, at the same amount
        row = world.usage.rated[entry.entry_id]
        assert -entry.amount_micros == int(row["amount"].replace(".", ""))
    delivered = {f"e{number}" for number in durations}
    assert set(world.usage.rated) | set(world.usage.rejects) == delivered
    assert not set(world.usage.rated) & set(world.usage.rejects)
    largest_call = max((50_000 * ((s + 5) // 6) * 6 // 60 for s in durations.values()), default=0)
    assert balance >= -largest_call

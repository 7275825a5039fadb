"""A small world for charging tests: plans in a fake plan store, fake stores, a settable clock."""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from tests.fakes import (
    FakeAlertPublisher,
    FakeBalances,
    FakeClock,
    FakeLedgerStore,
    FakeMonotonic,
    FakePlanStore,
    FakeUsageStore,
)

from warp_billing.charging.plan_catalog import PlanCatalog
from warp_billing.charging.service import ChargingService, Delivery

VOICE_DECK = """prefix,destination,rate,interstate_rate,intrastate_rate,effective_date
1,US,0.010000,0.010000,0.008000,2020-01-01
44,UNITED KINGDOM,0.050000,,,2020-01-01
"""
VENDOR_DECK = """prefix,destination,rate,interstate_rate,intrastate_rate,effective_date
1,US,0.009900,0.009900,0.007000,2020-01-01
44,UNITED KINGDOM,0.010000,,,2020-01-01
"""
MESSAGING_DECK = """prefix,destination,rate,effective_date
1,US/CANADA,0.004000,2020-01-01
"""

PREPAID_PLAN = {
    "customer_id": "ACME",
    "billing": "prepaid",
    "timezone": "UTC",
    "voice": {"deck": "voice.csv", "vendor_decks": {"V1": "vendor-v1.csv"}},
    "messaging": {"deck": "messaging.csv"},
    "api_queries": {"prices": {"lrn": "0.001"}},
    "margin": {"alert_below_pct": "15"},
    "prepaid": {"low_balance_threshold": "1.00", "suspend_after_hours": 24},
}
POSTPAID_PLAN = {
    "customer_id": "BETA",
    "billing": "postpaid",
    "timezone": "America/New_York",
    "voice": {"deck": "voice.csv"},
    "postpaid": {"credit_limit": "1.00", "soft_limit_pct": "80"},
}
DECKS = {"voice.csv": VOICE_DECK, "vendor-v1.csv": VENDOR_DECK, "messaging.csv": MESSAGING_DECK}
NOW_ISO = "2026-11-04T00:00:00Z"


def voice_event(event_id: str, customer: str = "ACME", seconds: int = 60, to: str = "+442071234567",
                start: str = "2026-11-03T12:00:00Z", **extra) -> dict:
    """A voice call: to the UK at 0.05/min, so 60 s costs exactly 0.050000."""
    return {"event_id": event_id, "kind": "voice", "customer_id": customer, "start_time": start,
            "duration_s": seconds, "calling_number": "+12125551234", "called_number": to,
            "direction": "termination", **extra}


@dataclass
class World:
    plans: FakePlanStore
    balances: FakeBalances
    usage: FakeUsageStore
    ledger: FakeLedgerStore
    alerts: FakeAlertPublisher
    clock: FakeClock
    monotonic: FakeMonotonic
    catalog: PlanCatalog
    service: ChargingService

    def load(self, plan: dict) -> str:
        return self.plans.put_plan(plan["customer_id"], yaml.safe_dump(plan), DECKS)

    def handle(self, event, **kwargs):
        return self.service.handle(Delivery.of_event(event, message_id=f"m-{id(event)}"), **kwargs)

    def topup(self, customer: str, micros: int, topup_id: str = "t1"):
        terms = self.catalog.current(customer).prepaid
        result = self.balances.credit(customer, f"topup:{topup_id}", micros, "topup", topup_id, self.clock.now_ms(),
                                      terms)
        self.ledger.append(list(result.entries))
        return result


def make_world(max_event_age_s: int = 3 * 86_400, refresh_s: int = 30) -> World:
    plans, balances = FakePlanStore(), FakeBalances()
    usage, ledger, alerts = FakeUsageStore(), FakeLedgerStore(), FakeAlertPublisher()
    clock, monotonic = FakeClock(), FakeMonotonic()
    catalog = PlanCatalog(plans, refresh_s, monotonic_ns=monotonic)
    service = ChargingService(catalog, balances, usage, ledger, alerts, max_event_age_s=max_event_age_s, clock=clock)
    world = World(plans, balances, usage, ledger, alerts, clock, monotonic, catalog, service)
    world.load(PREPAID_PLAN)
    world.load(POSTPAID_PLAN)
    balances.open_account("ACME", clock.now_ms())
    return world

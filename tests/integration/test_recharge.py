"""Card auto-recharge with a real redis-server (balances and the recharge locks), the SQLite ledger and
payment store, the plan folder; the queue and the gateway are in-memory doubles that record calls.

* two low-balance crossings at once -> one recharge task, one charge, credited once; the gateway's
  webhook for the same transaction changes nothing more;
* a declined card -> no credit, a ``recharge_declined`` alert per attempt, retries up to the day's cap;
* a task that is not ours (no or a wrong mac) -> 401, no charge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import pytest
import redis
import yaml
from tests.charging_world import DECKS
from tests.erp_builders import FakeQueue
from tests.fakes import FakeAlertPublisher
from tests.integration.test_payment_webhooks import free_port

from warp_billing import bootstrap
from warp_billing.charging.accounts import AccountAlert, AlertCode
from warp_billing.charging.alerts import account_alert
from warp_billing.payments.gateway import ChargeOutcome
from warp_billing.payments.recharge import RechargeTrigger
from warp_billing.settings import Settings
from warp_billing.webhooks.signatures import authorize_net_signature

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
TASK_KEY = "recharge-task-key"
SIGNATURE_KEY = "CAFE" * 32
pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs the redis-server binary")


@dataclass
class FakeGateway:
    codes: list[int] = field(default_factory=list)    # response codes to answer, in order (then approve)
    charges: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def charge_profile(self, charge):
        with self.lock:
            self.charges.append(charge)
            code = self.codes.pop(0) if self.codes else 1
            number = len(self.charges)
        return ChargeOutcome(code, f"7000{number:04d}" if code == 1 else None, "OK" if code == 1 else None,
                             "approved" if code == 1 else "This transaction has been declined.")

    def transaction_details(self, transaction_id):
        raise KeyError(transaction_id)


@pytest.fixture(scope="module")
def redis_port():
    port = free_port()
    folder = tempfile.mkdtemp(prefix="warp-redis-")
    process = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", folder],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield port
    process.kill()
    process.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def world(tmp_path, redis_port):
    redis.Redis(port=redis_port).flushall()
    settings = Settings(redis_url=f"redis://127.0.0.1:{redis_port}/0", data_dir=tmp_path / "data",
                        plans_dir=tmp_path / "plans", register_dir=tmp_path / "register", sync_outbox="register",
                        recharge_trigger=True, recharge_task_key=TASK_KEY, recharge_daily_attempts=3,
                        recharge_retry_s=600, authorize_net_signature_key=SIGNATURE_KEY)
    gateway, queue, alerts = FakeGateway(), FakeQueue(), FakeAlertPublisher()
    # the alerts land in a recording sink, behind the same trigger bootstrap puts in front of the real one
    container = bootstrap.Container(settings, payment_gateway=gateway, recharge_queue=queue,
                                    alert_publisher=RechargeTrigger(alerts, lambda: container.recharges))
    plan = {"customer_id": "CARD", "billing": "prepaid", "timezone": "UTC", "voice": {"deck": "voice.csv"},
            "prepaid": {"low_balance_threshold": "5.00", "auto_recharge_below": "10.00",
                        "auto_recharge_amount": "50.00",
                        "recharge_profile": {"customer_profile_id": "cp-9", "payment_profile_id": "pp-9"}}}
    container.plan_store.put_plan("CARD", yaml.safe_dump(plan), {"voice.csv": DECKS["voice.csv"]})
    assert container.reconcile_customer("CARD")
    bootstrap.reset(container)
    yield container, gateway, queue, alerts
    bootstrap.reset()


def crossing(container, entry_id: str) -> dict:
    return account_alert(AccountAlert(AlertCode.LOW_BALANCE, 9_000_000), "CARD", entry_id,
                         container.clock.now_ms(), "USD", 10_000_000)


def run_task(name: str, queue) -> tuple[int, dict]:
    return bootstrap.webhook("/tasks/recharge", {}, orjson.dumps(queue.tasks[name]))


def balance(container) -> int:
    return container.balances.account("CARD").balance_micros


def test_plan_terms_book_nothing_ahead_and_alert_at_the_recharge_trigger(world):
    container, *_ = world
    terms = container.plan_catalog.current("CARD").prepaid
    assert terms.recharge_below_micros is None and terms.low_balance_threshold_micros == 10_000_000


def test_two_crossings_at_once_make_one_recharge_credited_once(world):
    container, gateway, queue, alerts = world
    start = balance(container)
    barrier = threading.Barrier(2)

    def cross(entry_id: str) -> None:
        barrier.wait()
        container.alert_publisher.publish(crossing(container, entry_id))

    threads = [threading.Thread(target=cross, args=(f"ev-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(queue.created) == 1
    status, answer = run_task(queue.created[0], queue)
    assert status == 200 and answer["status"] == "approved"
    assert balance(container) == start + 50_000_000
    # the task redelivered, and the gateway's webhook for the same transaction: nothing more
    assert run_task(queue.created[0], queue)[1]["status"] == "not_in_flight"
    txn = answer["transaction_id"]
    body = orjson.dumps({"notificationId": "wh-1", "eventType": "net.authorize.payment.authcapture.created",
                         "payload": {"id": txn, "authAmount": "50.00", "responseCode": 1,
                                     "customerId": "CARD", "invoiceNumber": answer["recharge_id"]}})
    status, _ = bootstrap.webhook("/authorize-net", {"X-ANET-Signature": authorize_net_signature(body, SIGNATURE_KEY)},
                                  body)
    assert status == 200
    assert balance(container) == start + 50_000_000 and len(gateway.charges) == 1
    assert [e.entry_id for e in container.ledger_store.entries("CARD") if e.entry_id.startswith("payment:")] == \
        [f"payment:{txn}"]
    assert [a["transaction_id"] for a in alerts.of_type("payment_received")] == [txn]
    assert gateway.charges[0].ref_id == answer["recharge_id"] and gateway.charges[0].amount == Decimal("50.00")
    # a later crossing (after the recharge ended) asks for a new one
    container.alert_publisher.publish(crossing(container, "ev-later"))
    assert len(queue.created) == 2


def test_a_declined_card_credits_nothing_alerts_and_retries_up_to_the_daily_cap(world):
    container, gateway, queue, alerts = world
    gateway.codes = [2, 2, 2, 2]
    start = balance(container)
    container.alert_publisher.publish(crossing(container, "ev-d"))
    statuses = []
    while len(statuses) < 5 and len(queue.created) > len(statuses):
        statuses.append(run_task(queue.created[len(statuses)], queue)[1])
    assert [s["status"] for s in statuses] == ["declined", "declined", "declined"]
    assert statuses[-1]["retry_in_s"] is None and statuses[0]["retry_in_s"] == 600
    assert balance(container) == start and len(gateway.charges) == 3
    declined = alerts.of_type("recharge_declined")
    assert sorted(a["attempt"] for a in declined) == [1, 2, 3]
    assert all(a["customer_id"] == "CARD" and a["amount"] == "50.00" for a in declined)
    assert not [e for e in container.ledger_store.entries("CARD") if e.entry_id.startswith("payment:")]
    # the cap holds for the day: a new crossing's recharge is refused before any charge
    container.alert_publisher.publish(crossing(container, "ev-d2"))
    assert run_task(queue.created[-1], queue)[1]["status"] == "cap_reached" and len(gateway.charges) == 3


def test_a_task_redelivered_after_its_charge_crashed_never_charges_twice(world):
    container, gateway, queue, _ = world
    start = balance(container)
    original = gateway.charge_profile

    def charge_then_crash(charge):
        original(charge)
        raise RuntimeError("instance lost after the gateway answered")

    gateway.charge_profile = charge_then_crash
    container.alert_publisher.publish(crossing(container, "ev-c"))
    with pytest.raises(RuntimeError):
        container.recharges.run(orjson.loads(run_task_body(queue)))
    gateway.charge_profile = original
    status, answer = run_task(queue.created[0], queue)
    assert status == 200 and answer["status"] == "attempt_already_made"
    assert len(gateway.charges) == 1 and balance(container) == start
    assert container.recharges.locks.holder("CARD") is None


def run_task_body(queue) -> bytes:
    return orjson.dumps({k: v for k, v in queue.tasks[queue.created[0]].items() if k != "mac"})


def test_a_task_that_is_not_ours_is_refused(world):
    container, gateway, queue, _ = world
    container.alert_publisher.publish(crossing(container, "ev-f"))
    forged = dict(queue.tasks[queue.created[0]], mac="0" * 64)
    assert bootstrap.webhook("/tasks/recharge", {}, orjson.dumps(forged))[0] == 401
    unsigned = {k: v for k, v in queue.tasks[queue.created[0]].items() if k != "mac"}
    assert bootstrap.webhook("/tasks/recharge", {}, orjson.dumps(unsigned))[0] == 401
    assert gateway.charges == []

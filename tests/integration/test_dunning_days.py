"""Dunning over 40 simulated days on real components: a real redis-server (charging refuses a
suspended customer), the SendGrid stand-in over HTTP (each email once, sandbox mode), the file
invoice register's aging, SQLite dunning store and email log; the day is an injected clock.

BETA (postpaid) pays on day 20 (the payment applied to the invoice in the register + a
``payment_received`` alert): reminded day 1, warned day 7, suspended day 15, reinstated day 20.
GAMMA (prepaid) never pays: remind, warn, suspend, collections, each once; still refused on day 40.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import redis
import yaml
from tests.charging_world import DECKS, make_world, voice_event
from tests.erp_builders import FakeQueue, draft
from tests.integration.test_redis_charging import REDIS_SERVER, RedisProcess, on_redis

from warp_billing.adapters.document_files import DocumentFolder
from warp_billing.adapters.redis_balances import RedisBalances
from warp_billing.adapters.redis_holds import RedisAccountHolds
from warp_billing.adapters.register_receivables import RegisterReceivables
from warp_billing.adapters.sendgrid import SendGridMailer
from warp_billing.adapters.sqlite_dunning import SqliteDunningStore, SqliteEmailLog
from warp_billing.billing.close_service import document_stem
from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.dunning.alerts import AlertHandler
from warp_billing.dunning.attachments import invoice_pdf
from warp_billing.dunning.crm import CrmUpdates
from warp_billing.dunning.notifier import Notifier
from warp_billing.dunning.service import DunningService
from warp_billing.plan import parse_plan

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not __import__("os").path.exists(REDIS_SERVER), reason="needs redis-server")]
LADDER = {"ladder": [{"after_days": 1, "action": "remind"}, {"after_days": 7, "action": "warn"},
                     {"after_days": 15, "action": "suspend"}, {"after_days": 30, "action": "collections"}]}
TEMPLATES = {kind: f"d-{kind}" for kind in ("remind", "warn", "suspend", "collections", "reinstated",
                                             "low_balance", "recharge_declined", "payment_receipt")}


def plan_dict(customer: str, billing: str) -> dict:
    plan = {"customer_id": customer, "billing": billing, "timezone": "UTC", "voice": {"deck": "voice.csv"},
            "collections": LADDER,
            "billing_profile": {"name": f"{customer} Telecom", "address": ["1 Main St"],
                                "account_number": f"{customer}-1", "email": f"ap@{customer.lower()}.example"}}
    if billing == "prepaid":
        plan["prepaid"] = {"low_balance_threshold": "1.00"}
    return plan


class Payments:
    """What the payment store answers (``applications``): payments applied to invoices in the register."""

    def __init__(self):
        self.rows: list[tuple[str, str, Decimal, date]] = []

    def applications(self, customer_id: str):
        return [row for row in self.rows if row[1].startswith(customer_id + "-")]


class Day:
    """The injected clock: noon UTC of the simulated day."""

    def __init__(self, day: date):
        self.day = day

    def now_ms(self) -> int:
        return int(datetime(self.day.year, self.day.month, self.day.day, 12, tzinfo=UTC).timestamp() * 1000)

    def iso(self) -> str:
        return datetime.fromtimestamp(self.now_ms() / 1000, UTC).isoformat()


@pytest.fixture
def redis_server():
    process = RedisProcess().start()
    yield process
    process.stop()


def test_forty_days_of_dunning_each_email_once_suspension_on_day_15_reinstatement_on_payment(
        tmp_path, sendgrid, redis_server):
    client = redis.Redis(port=redis_server.port, decode_responses=True, socket_timeout=2)
    store = RedisBalances(client, dedup_ttl_s=3 * 86_400, ledger_stream_maxlen=1000)
    world = on_redis(make_world(max_event_age_s=400 * 86_400), store)
    plans = {}
    for customer, billing in (("BETA", "postpaid"), ("GAMMA", "prepaid")):
        raw = plan_dict(customer, billing)
        world.plans.put_plan(customer, yaml.safe_dump(raw), DECKS)
        plans[customer] = parse_plan(raw)
    store.open_account("GAMMA", world.clock.now_ms())
    world.topup("GAMMA", 50_000_000)

    register = InvoiceRegister(tmp_path / "register")
    beta_invoice = register.issue(draft("BETA", "2026-11", net_days=15)).invoice
    gamma_invoice = register.issue(draft("GAMMA", "2026-11", net_days=15)).invoice
    assert beta_invoice.due_date == date(2026, 12, 16)
    documents = DocumentFolder(tmp_path / "documents")
    documents.put(document_stem("BETA", "2026-11", str(beta_invoice.number)) + ".pdf", b"%PDF-1.7 beta",
                  "application/pdf")

    payments = Payments()
    day = Day(beta_invoice.due_date)
    dunning_store = SqliteDunningStore(tmp_path / "dunning.sqlite")
    email_log = SqliteEmailLog(tmp_path / "dunning.sqlite")
    mailer = SendGridMailer(f"http://127.0.0.1:{sendgrid.server_address[1]}", lambda: "SG.test",
                            sender="billing@warp.example", sender_name="WARP Billing", templates=TEMPLATES,
                            sandbox=True)
    notifier = Notifier(mailer, email_log, now=day.iso, attachment=invoice_pdf(documents))
    queue = FakeQueue()
    crm = CrmUpdates(queue)
    service = DunningService(RegisterReceivables(register, payments), dunning_store, RedisAccountHolds(client),
                             notifier, crm, now_ms=day.now_ms)
    alerts = AlertHandler(notifier, service, plans.get, crm)

    def charge(customer: str, n: int):
        start = datetime.fromtimestamp(day.now_ms() / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return world.handle(voice_event(f"{customer}-call-{n}", customer=customer, seconds=6, start=start))

    refused_on = {}
    for offset in range(0, 41):
        day.day = beta_invoice.due_date + timedelta(days=offset)
        world.clock.ms = day.now_ms()
        run = service.run(plans, day.day)
        assert run.errors == []
        if offset == 20:  # BETA pays in full: the register shows it paid, then the alert arrives (twice)
            payments.rows.append(("T-BETA-1", str(beta_invoice.number), beta_invoice.total, day.day))
            alert = {"alert_id": "payment_received:BETA:T-BETA-1", "type": "payment_received", "customer_id": "BETA",
                     "transaction_id": "T-BETA-1", "amount": str(beta_invoice.total), "currency": "USD",
                     "invoice_numbers": [str(beta_invoice.number)], "received_on": day.day.isoformat()}
            assert alerts.handle(alert, day.day)["reinstated"] is True
            assert alerts.handle(alert, day.day)["reinstated"] is False   # redelivered: nothing more
        for customer in ("BETA", "GAMMA"):
            handled = charge(customer, offset)
            if handled.status == "rejected":
                assert handled.reason == "ACCOUNT_SUSPENDED"
                refused_on.setdefault(customer, []).append(offset)

    # charging refused BETA from day 15 until the payment on day 20; GAMMA from day 15 to the end
    assert refused_on["BETA"] == list(range(15, 20))
    assert refused_on["GAMMA"] == list(range(15, 41))
    assert [r for r in world.usage.rejects.values() if r["reason"] == "ACCOUNT_SUSPENDED"]  # kept as rejects

    mails = sendgrid.mails
    ids = [mail["body"]["personalizations"][0]["custom_args"]["warp_email_id"] for mail in mails]
    assert len(ids) == len(set(ids)), "an email was sent twice"
    beta, gamma = str(beta_invoice.number), str(gamma_invoice.number)
    assert sorted(ids) == sorted([
        f"{beta}:remind", f"{beta}:warn", f"{beta}:suspend", "T-BETA-1:receipt", f"{beta}:reinstated",
        f"{gamma}:remind", f"{gamma}:warn", f"{gamma}:suspend", f"{gamma}:collections"])
    assert all(mail["sandbox"] for mail in mails)
    by_id = dict(zip(ids, mails, strict=True))
    remind = by_id[f"{beta}:remind"]["body"]
    assert remind["template_id"] == "d-remind"
    assert remind["personalizations"][0]["to"][0]["email"] == "ap@beta.example"
    assert remind["personalizations"][0]["dynamic_template_data"]["balance_due"] == str(beta_invoice.total)
    assert remind["attachments"][0]["filename"] == f"{beta}.pdf"
    assert "attachments" not in by_id[f"{gamma}:remind"]["body"]   # no PDF stored for GAMMA's invoice

    # the days each step ran (the store keeps (invoice, action) once)
    log = {(invoice, action): at[:10] for invoice, action, at in dunning_store.step_log("BETA")}
    assert log == {(beta, "remind"): "2026-12-17", (beta, "warn"): "2026-12-23", (beta, "suspend"): "2026-12-31"}
    assert dunning_store.suspended_customers() == ["GAMMA"]
    assert [event for event, _, _ in dunning_store.history("BETA")] == ["suspended", "reinstated"]

    # HubSpot: the company stage followed the ladder (tasks on the queue, one per batch)
    stages = [task["inputs"][0]["properties"].get("warp_collections_stage") for task in queue.tasks.values()
              if task["inputs"][0]["id"] == "BETA"]
    assert [stage for stage in stages if stage] == ["remind", "warn", "suspend", "active"]
    # the daily account upserts: balance due and last invoice of every customer (batched), the
    # payment visible as BETA's balance due dropping to zero
    daily = [item["properties"] for task in queue.tasks.values() for item in task["inputs"]
             if item["id"] == "BETA" and "warp_last_invoice_date" in item["properties"]]
    assert {props["warp_last_invoice"] for props in daily} == {beta}
    balances = [props["warp_balance_due"] for props in daily]
    assert [value for index, value in enumerate(balances) if index == 0 or balances[index - 1] != value] == [
        str(beta_invoice.total), "0.00"]
    assert [props["warp_overdue_invoices"] for props in daily] == ["0", "1", "0"]   # due day, overdue, paid

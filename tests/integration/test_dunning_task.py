"""The `dunning` task of the rollup function's request handler, on the configured adapters: a plan
folder, the file register, SQLite stores, a real redis-server for the hold and the SendGrid stand-in.
The day comes from the container's clock (never the wall clock)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
import redis
import yaml
from tests.erp_builders import draft
from tests.fakes import FakeClock
from tests.integration.test_redis_charging import REDIS_SERVER, RedisProcess

from warp_billing.adapters.redis_balances import hold_key
from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.bootstrap import Container
from warp_billing.closing import handle_request
from warp_billing.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="redis-server")]


@pytest.fixture
def redis_server():
    process = RedisProcess().start()
    yield process
    process.stop()


def test_the_dunning_task_runs_the_due_steps_once_and_suspends(tmp_path, sendgrid, redis_server, monkeypatch):
    for name in [name for name in os.environ if name.startswith("WARP_")]:
        monkeypatch.delenv(name)
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "voice.csv").write_text("prefix,destination,rate,effective_date\n1,US,0.01,2020-01-01\n")
    (plans / "beta.yaml").write_text(yaml.safe_dump({
        "customer_id": "BETA", "timezone": "UTC", "voice": {"deck": "voice.csv"}, "terms": {"net_days": 15},
        "billing_profile": {"name": "Beta", "address": ["1 Main"], "account_number": "B-1",
                            "email": "ap@beta.example"},
        "collections": {"ladder": [{"after_days": 1, "action": "remind"}, {"after_days": 7, "action": "warn"},
                                   {"after_days": 15, "action": "suspend"}]}}))
    invoice = InvoiceRegister(tmp_path / "register").issue(draft("BETA", "2026-11", net_days=15)).invoice
    settings = Settings(plans_dir=plans, register_dir=tmp_path / "register", data_dir=tmp_path / "data",
                        documents_dir=tmp_path / "documents", redis_url=f"redis://127.0.0.1:{redis_server.port}/0",
                        sendgrid_url=f"http://127.0.0.1:{sendgrid.server_address[1]}", sendgrid_api_key="SG.k",
                        sendgrid_sandbox=True, hubspot_sync=False,
                        sendgrid_templates={"remind": "d-r", "warn": "d-w", "suspend": "d-s"})
    day_16 = int(datetime(2026, 12, 24, 12, tzinfo=UTC).timestamp() * 1000)    # due 2026-12-16 + 8 days
    container = Container(settings, clock=FakeClock(day_16))

    body, status = handle_request({"task": "dunning"}, container)
    assert status == 200, body
    assert [(step["action"], step["days_overdue"]) for step in body["steps"]] == [("remind", 8), ("warn", 8)]
    assert body["errors"] == [] and body["suspended"] == []

    container.clock.advance(7 * 86_400)                                        # 15 days overdue
    body, status = handle_request({"task": "dunning"}, container)
    assert [step["action"] for step in body["steps"]] == ["suspend"] and body["suspended"] == ["BETA"]
    assert redis.Redis(port=redis_server.port).get(hold_key("BETA")).decode().split("|")[1] == str(invoice.number)

    body, _ = handle_request({"task": "dunning"}, container)                   # the same day again: nothing
    assert body["steps"] == []
    sent = [mail["body"]["personalizations"][0]["custom_args"]["warp_email_id"] for mail in sendgrid.mails]
    assert sent == [f"{invoice.number}:{action}" for action in ("remind", "warn", "suspend")]

    assert handle_request({"task": "dunning", "customer": "BETA"}, container)[1] == 400

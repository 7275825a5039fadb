"""`warp account suspend|reinstate|status` on a real redis-server: charging refuses a suspended
customer (ACCOUNT_SUSPENDED) and accepts it again once reinstated."""

from __future__ import annotations

import os

import orjson
import pytest
import redis
from click.testing import CliRunner
from tests.charging_world import make_world, voice_event
from tests.integration.test_redis_charging import REDIS_SERVER, RedisProcess, on_redis

from warp_billing import bootstrap
from warp_billing.adapters.redis_balances import RedisBalances
from warp_billing.cli import main
from warp_billing.settings import Settings

pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs the redis-server binary")


@pytest.fixture
def server():
    process = RedisProcess().start()
    yield process
    process.stop()


def run(*args):
    return CliRunner().invoke(main, ["account", *args], catch_exceptions=False)


def test_suspend_status_and_reinstate_act_on_what_charging_checks(tmp_path, server):
    client = redis.Redis(port=server.port, decode_responses=True)
    world = on_redis(make_world(), RedisBalances(client, dedup_ttl_s=3 * 86_400))
    settings = Settings(data_dir=tmp_path / "data", redis_url=f"redis://127.0.0.1:{server.port}/0")
    bootstrap.reset(bootstrap.Container(settings, clock=world.clock))
    try:
        assert "BETA: active" in run("status", "BETA").output
        assert run("suspend", "BETA", "--invoice", "BETA-INV-000001").output.strip() == "BETA: suspended"
        assert run("suspend", "BETA").output.strip() == "BETA: already suspended"
        state = orjson.loads(run("status", "BETA", "--json").output)
        assert state["suspended"] and state["invoice_number"] == "BETA-INV-000001" and state["actor"] == "operator"

        refused = world.handle(voice_event("b1", customer="BETA"))
        assert (refused.status, refused.reason) == ("rejected", "ACCOUNT_SUSPENDED")
        assert "suspended for an overdue invoice" in world.usage.rejects["b1"]["detail"]

        assert run("reinstate", "BETA").output.strip() == "BETA: reinstated"
        assert run("reinstate", "BETA").output.strip() == "BETA: was not suspended"
        assert world.handle(voice_event("b1", customer="BETA"), replay=True).status == "rated"
    finally:
        bootstrap.reset()

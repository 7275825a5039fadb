"""`warp plans load`, `warp balance show|topup|rebuild`, `warp rejects replay` on embedded stores."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner
from tests.charging_world import DECKS, PREPAID_PLAN, voice_event
from tests.fakes import FakeBalances, FakeClock

from warp_billing import bootstrap
from warp_billing.cli.ops_commands import balance, plans, rejects
from warp_billing.settings import Settings


@pytest.fixture
def ops(tmp_path):
    """A container on a plan folder and SQLite stores in tmp_path, with fake balances."""
    source = tmp_path / "source"
    source.mkdir()
    for name, text in DECKS.items():
        (source / name).write_text(text)
    (source / "acme-plan.yaml").write_text(yaml.safe_dump(PREPAID_PLAN))
    settings = Settings(data_dir=tmp_path / "data", plans_dir=tmp_path / "plans", plan_refresh_s=0)
    container = bootstrap.Container(settings, balances=FakeBalances(), clock=FakeClock())
    bootstrap.reset(container)
    yield container, source
    bootstrap.reset()


def run(command, *args):
    return CliRunner().invoke(command, [str(arg) for arg in args], catch_exceptions=False)


def test_loading_a_plan_stores_it_with_its_decks_and_opens_the_prepaid_account(ops):
    container, source = ops

    result = run(plans, "load", source / "acme-plan.yaml")

    assert result.exit_code == 0, result.output
    assert "ACME: plan version" in result.output and "prepaid account open" in result.output
    assert (Path(container.settings.plans_dir) / "voice.csv").read_text() == DECKS["voice.csv"]
    assert container.balances.account("ACME").balance_micros == 0
    assert container.plan_catalog.current("ACME").prepaid.low_balance_threshold_micros == 1_000_000


def test_a_plan_with_a_bad_deck_is_refused_naming_the_row(ops):
    _, source = ops
    (source / "voice.csv").write_text("prefix,destination,rate,effective_date\n44,UK,abc,2020-01-01\n")

    result = run(plans, "load", source / "acme-plan.yaml")

    assert result.exit_code == 1 and "row 2" in result.output


def test_a_topup_is_booked_once_per_id(ops):
    container, source = ops
    run(plans, "load", source / "acme-plan.yaml")

    first = run(balance, "topup", "ACME", "25.50", "--id", "pay-1")
    again = run(balance, "topup", "ACME", "25.50", "--id", "pay-1")

    assert first.exit_code == 0 and "booked; balance 25.500000" in first.output
    assert again.exit_code == 0 and "already booked" in again.output
    assert container.balances.account("ACME").balance_micros == 25_500_000
    assert [e.entry_id for e in container.ledger_store.entries("ACME")] == ["topup:pay-1"]


@pytest.mark.parametrize("amount, message", [("abc", "not a decimal"), ("0.00", "positive"),
                                              ("0.0000001", "more than 6 decimal places")])
def test_a_bad_topup_amount_is_refused(ops, amount, message):
    _, source = ops
    run(plans, "load", source / "acme-plan.yaml")

    result = run(balance, "topup", "ACME", amount, "--id", "x")

    assert result.exit_code == 1 and message in result.output


def test_a_topup_id_reused_with_another_amount_is_refused(ops):
    _, source = ops
    run(plans, "load", source / "acme-plan.yaml")
    run(balance, "topup", "ACME", "10", "--id", "pay-1")

    result = run(balance, "topup", "ACME", "11", "--id", "pay-1")

    assert result.exit_code == 1 and "already booked" in result.output


def test_show_prints_the_balance_and_recent_entries(ops):
    _, source = ops
    run(plans, "load", source / "acme-plan.yaml")
    run(balance, "topup", "ACME", "0.50", "--id", "pay-1")

    result = run(balance, "show", "ACME", "--json")

    report = orjson.loads(result.output)
    assert report["balance"] == "0.500000" and report["low_balance_alerted"] is True
    assert report["recent_entries"][0]["entry_id"] == "topup:pay-1"


def test_show_gives_a_postpaid_customer_its_cycle_total(ops, tmp_path):
    container, source = ops
    beta = {"customer_id": "BETA", "billing": "postpaid", "timezone": "UTC", "voice": {"deck": "voice.csv"},
            "postpaid": {"credit_limit": "100.00"}}
    (source / "beta-plan.yaml").write_text(yaml.safe_dump(beta))
    run(plans, "load", source / "beta-plan.yaml")
    from warp_billing.charging.service import Delivery

    container.charging.handle(Delivery.of_event(voice_event("p1", customer="BETA", start="2026-11-03T12:00:00Z")))
    result = run(balance, "show", "BETA")

    assert result.exit_code == 0, result.output
    assert "BETA: postpaid, cycle 2026-11-01: 0.050000 of credit limit 100.00 (1 events)" in result.output


def test_show_for_an_unknown_customer_fails_with_a_message(ops):
    result = run(balance, "show", "NOBODY")

    assert result.exit_code == 1 and "no prepaid account" in result.output


def test_rebuild_restores_balances_from_the_ledger(ops):
    container, source = ops
    run(plans, "load", source / "acme-plan.yaml")
    run(balance, "topup", "ACME", "5", "--id", "pay-1")
    container.charging.handle(__import__("warp_billing.charging.service", fromlist=["Delivery"]).Delivery.of_event(
        voice_event("e1", start="2026-11-03T12:00:00Z")))
    container.balances.accounts.clear()
    container.balances.results.clear()

    result = run(balance, "rebuild", "--json")

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["balances"] == {"ACME": "4.950000"}
    assert container.balances.account("ACME").balance_micros == 4_950_000
    assert run(balance, "topup", "ACME", "5", "--id", "pay-1").output.count("already booked") == 1


def test_replaying_corrected_rejects_charges_them_once(ops, tmp_path):
    container, source = ops
    run(plans, "load", source / "acme-plan.yaml")
    service = container.charging
    from warp_billing.charging.service import Delivery

    service.handle(Delivery.of_event(voice_event("e1")))                 # balance 0: refused
    service.handle(Delivery.of_event({**voice_event("e2"), "called_number": "442071234567"}))  # bad number
    records = list(container.usage_store.rejects())
    assert {r["reason"] for r in records} == {"INSUFFICIENT_BALANCE", "INVALID_NUMBER"}
    for record in records:                                                # the operator corrects the raw text
        record["raw"] = record["raw"].replace('"442071234567"', '"+442071234567"')
    rejects_file = tmp_path / "rejects.jsonl"
    rejects_file.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n{broken\n")
    run(balance, "topup", "ACME", "1", "--id", "pay-1")

    result = run(rejects, "replay", rejects_file)
    again = run(rejects, "replay", rejects_file)

    assert result.exit_code == 0, result.output
    assert "rated: 2" in result.output and "1 unreadable line(s) skipped: 3" in result.output
    assert "rated: 2" in again.output
    assert container.balances.account("ACME").balance_micros == 1_000_000 - 2 * 50_000

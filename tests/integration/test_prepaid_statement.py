"""A prepaid customer's month: a statement (nothing due, drawn on deposits) whose recurring charges
and fees are debited from the balance on a real redis-server, into the SQLite ledger, once per
statement line however often the close runs; the balance box comes from that ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import redis
import yaml
from tests.integration.test_redis_charging import REDIS_SERVER, RedisProcess
from tests.unit.billing.billing_builders import lines_of, plan_from, rated

from warp_billing.adapters.redis_balances import RedisBalances
from warp_billing.adapters.sqlite_stores import SqliteLedgerStore
from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.invoice import STATEMENT, build_invoice
from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.billing.prepaid_statement import statement_box, statement_debits
from warp_billing.billing.revenue_recognition import journal_record
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow
from warp_billing.charging.clock import ms_from_datetime
from warp_billing.charging.prepaid import prepaid_terms
from warp_billing.charging.statement_debits import post_statement_debits

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs the redis-server binary"),
]
WARP = Path(sys.executable).with_name("warp")

PREPAID = {
    "customer_id": "BETA",
    "billing": "prepaid",
    "timezone": "America/Chicago",
    "voice": {"deck": "beta-voice.csv"},
    "recurring": [
        {
            "sku": "TF-NUMBER",
            "description": "Toll-free number",
            "quantity": 40,
            "unit_price": "2.50",
            "start": "2026-05-01",
        }
    ],
    "fees": {"e911_per_did": "0.25"},
    "prepaid": {"low_balance_threshold": "50.00"},
}


@pytest.fixture(scope="module")
def server():
    process = RedisProcess().start()
    yield process
    process.stop()


@pytest.fixture
def balances(server):
    connection = redis.Redis(port=server.port, decode_responses=True, socket_timeout=2)
    connection.flushall()
    yield RedisBalances(connection, dedup_ttl_s=86_400, ledger_stream_maxlen=1000)
    connection.close()


def ms(text: str) -> int:
    return ms_from_datetime(datetime.fromisoformat(text).replace(tzinfo=UTC))


def june_statement(usage_amount: str = "12.345000"):
    plan = plan_from(**PREPAID)
    cycle = plan_cycle(plan, "2026-06")
    aggregator = UsageAggregator({"BETA": UsageWindow.for_cycle("BETA", cycle)})
    aggregator.consume(lines_of(rated(units=600, amount=usage_amount, customer="BETA", start="2026-06-10T12:00:00Z")))
    return plan, build_invoice(plan, cycle, aggregator.result()["BETA"], OfflineTaxEngine())


def test_a_prepaid_month_is_a_statement_drawn_on_customer_deposits():
    _, statement = june_statement()
    assert statement.document_type == STATEMENT and statement.due_date == statement.issue_date
    entry = journal_record(statement)["entries"][0]
    accounts = {line["account"]: line for line in entry["lines"]}
    assert accounts["2200"]["debit"] == statement.to_record()["total"]  # customer deposits, not receivable
    assert "1200" not in accounts


def test_statement_debits_are_posted_once_per_line_and_the_box_follows_the_ledger(tmp_path, balances):
    plan, draft = june_statement()
    ledger = SqliteLedgerStore(tmp_path / "ledger.sqlite")
    terms = prepaid_terms(plan)
    topup = balances.credit("BETA", "topup:may", 500_000_000, "topup", "wire", ms("2026-05-20T12:00:00"), terms)
    ledger.append(list(topup.entries))
    june_topup = balances.credit("BETA", "topup:june", 100_000_000, "topup", "card", ms("2026-06-15T12:00:00"), terms)
    ledger.append(list(june_topup.entries))
    statement = InvoiceRegister(tmp_path / "register").issue(draft).invoice
    assert statement.number == "BETA-ST-000001"
    # 40 x 2.50 = 100.00 recurring, E911 40 x 0.25 = 10.00: two debits, named by statement line
    assert [(debit.entry_id, debit.amount) for debit in statement_debits(statement)] == [
        ("statement:BETA-ST-000001:2", Decimal("100.00")),
        ("statement:BETA-ST-000001:3", Decimal("10.00")),
    ]
    first = post_statement_debits(statement, plan, balances, ledger, ms("2026-07-01T06:00:00"))
    again = post_statement_debits(statement, plan, balances, ledger, ms("2026-07-02T06:00:00"))
    assert (first.booked, first.already_booked, again.booked, again.already_booked) == (2, 0, 0, 2)
    assert again.balance_micros == first.balance_micros == 490_000_000  # 600.00 - 110.00
    assert balances.account("BETA").balance_micros == 490_000_000
    raw = list(ledger.entries("BETA"))  # the raw ledger: no duplicates
    assert sorted(entry.entry_id for entry in raw) == [
        "statement:BETA-ST-000001:2",
        "statement:BETA-ST-000001:3",
        "topup:june",
        "topup:may",
    ]
    box = statement_box(statement, raw)
    assert box == {
        "opening_balance": "500.00",
        "topups_and_payments": "100.00",
        "adjustments": "0.00",
        "usage_drawn": "0.00",
        "usage_on_statement": "12.35",
        "charges_drawn": "110.00",
        "closing_balance": "490.00",
    }
    # July's statement sees June's debits in its opening balance although they were posted in July
    july_box = statement_box(replace(statement, cycle=plan_cycle(plan, "2026-07"), lines=(), fees=()), raw)
    assert (july_box["opening_balance"], july_box["closing_balance"]) == ("490.00", "490.00")


def test_a_posting_cut_off_halfway_is_completed_by_the_next_run(tmp_path, balances):
    plan, draft = june_statement()
    ledger = SqliteLedgerStore(tmp_path / "ledger.sqlite")
    statement = InvoiceRegister(tmp_path / "register").issue(draft).invoice
    first = statement_debits(statement)[0]  # the process died after booking the first line only
    balances.credit(
        "BETA",
        first.entry_id,
        first.amount_micros,
        "adjustment",
        first.reference,
        ms("2026-07-01T06:00:00"),
        prepaid_terms(plan),
    )
    done = post_statement_debits(statement, plan, balances, ledger, ms("2026-07-01T07:00:00"))
    assert (done.booked, done.already_booked, done.balance_micros) == (1, 1, -110_000_000)
    assert len(list(ledger.entries("BETA"))) == 2  # the first line's entry reached the ledger on the rerun


def test_a_corrected_statement_gives_the_old_debits_back_before_drawing_again(tmp_path, balances):
    plan, draft = june_statement()
    ledger = SqliteLedgerStore(tmp_path / "ledger.sqlite")
    terms = prepaid_terms(plan)
    ledger.append(
        list(balances.credit("BETA", "topup:1", 300_000_000, "topup", "", ms("2026-05-20T12:00:00"), terms).entries)
    )
    register = InvoiceRegister(tmp_path / "register")
    post_statement_debits(register.issue(draft).invoice, plan, balances, ledger, ms("2026-07-01T06:00:00"))
    changed = plan_from(**{**PREPAID, "recurring": [{**PREPAID["recurring"][0], "quantity": 20}]})
    cycle = plan_cycle(changed, "2026-06")
    redone = build_invoice(changed, cycle, draft_usage(cycle), OfflineTaxEngine())
    outcome = register.issue(redone, as_of=date(2026, 7, 3))
    assert outcome.credit_note is not None
    for document in (outcome.credit_note, outcome.invoice):
        post_statement_debits(document, changed, balances, ledger, ms("2026-07-03T06:00:00"))
    # 300.00 - 110.00 + 110.00 (credit note) - 55.00 (20 numbers: 50.00 + 5.00 E911)
    assert balances.account("BETA").balance_micros == 245_000_000
    assert sum(entry.amount_micros for entry in ledger.entries("BETA")) == 245_000_000


def draft_usage(cycle):
    aggregator = UsageAggregator({"BETA": UsageWindow.for_cycle("BETA", cycle)})
    aggregator.consume(lines_of(rated(units=600, amount="12.345000", customer="BETA", start="2026-06-10T12:00:00Z")))
    return aggregator.result()["BETA"]


def test_warp_invoice_posts_a_statement_and_a_rerun_posts_nothing_more(tmp_path, server):
    redis.Redis(port=server.port).flushall()
    plan_path = tmp_path / "beta-plan.yaml"
    plan_path.write_text(yaml.safe_dump(PREPAID), encoding="utf-8")
    rated_path = tmp_path / "rated.jsonl"
    rated_path.write_bytes(
        orjson.dumps(rated(units=600, amount="12.345000", customer="BETA", start="2026-06-10T12:00:00Z")) + b"\n"
    )
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("WARP_")},
        "WARP_REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
        "WARP_DATA_DIR": str(tmp_path / "data"),
        "WARP_LEDGER_STORE": "sqlite",
        "WARP_LOG_LEVEL": "WARNING",
    }
    args = [
        str(WARP),
        "invoice",
        "--plan",
        str(plan_path),
        "--rated",
        str(rated_path),
        "--period",
        "2026-06",
        "--out",
        str(tmp_path / "BETA.json"),
        "--register",
        str(tmp_path / "register"),
        "--post-debits",
        "--no-pdf",
    ]
    first = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert first.returncode == 0, first.stderr
    assert "BETA-ST-000001: 2 statement debit(s) posted, 0 already posted; balance -110.00" in first.stdout
    again = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert again.returncode == 0, again.stderr
    assert "0 statement debit(s) posted, 2 already posted; balance -110.00" in again.stdout
    statement = orjson.loads((tmp_path / "BETA.json").read_bytes())
    assert statement["document_type"] == "statement" and statement["statement"]["closing_balance"] == "-110.00"
    assert "Closing balance" in (tmp_path / "BETA.html").read_text(encoding="utf-8")

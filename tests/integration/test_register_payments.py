"""The invoice standings with payments, from the Firestore register (the emulator of the local stack) and
from the file register, for the same sequence of payments through the same payment service.

Each world is real: the file register + its SQLite payment store beside it (`warp invoices list`'s), or
the Firestore register + the Firestore payment store in collections of this test's own (the cloud's).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from tests.erp_builders import FakeOutbox, draft
from tests.fakes import FakeAlertPublisher, FakeBalances, FakeClock, FakeLedgerStore
from tests.integration.conftest import PROJECT, RUN_ID
from tests.unit.payments.payment_world import notification

from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.billing.revenue_recognition import AccountMap
from warp_billing.erp.outbox_documents import customer_document
from warp_billing.payments.service import CustomerAccount, PaymentService, PrepaidBook

D = Decimal
AS_OF = date(2026, 12, 20)   # after the due dates: what is left is overdue


class FileWorld:
    def __init__(self, tmp_path, customer: str):
        from warp_billing.adapters.sqlite_payments import SqlitePaymentStore

        self.register = InvoiceRegister(tmp_path / "register")
        self.store = SqlitePaymentStore(tmp_path / "register" / "payments.sqlite")   # where the register reads it
        self.customer = customer

    def issue(self, period: str, amount: str):
        return self.register.issue(draft(self.customer, period, lines=(("VOICE-INTERSTATE", "1", amount),),
                                         fees=())).invoice


class FirestoreWorld:
    def __init__(self, host: str, customer: str):
        from warp_billing.adapters.firestore_payments import FirestorePaymentStore
        from warp_billing.adapters.firestore_plans import firestore_client
        from warp_billing.adapters.firestore_register import FirestoreRegister

        prefix = f"rp{RUN_ID}{uuid.uuid4().hex[:6]}_"
        self.prefix, self.register_host = prefix, host
        self.register = FirestoreRegister(lambda: firestore_client(PROJECT, host), collection_prefix=prefix,
                                          timeout_s=30)
        self.store = FirestorePaymentStore(lambda: firestore_client(PROJECT, host), collection_prefix=prefix)
        self.customer = customer

    def issue(self, period: str, amount: str):
        document = draft(self.customer, period, lines=(("VOICE-INTERSTATE", "1", amount),), fees=())
        customer = customer_document(self.customer, {"currency": "USD"}, sequence=0,
                                     issued_at="2026-12-01T00:00:00Z")
        return self.register.issue_close(document, watermark=datetime(2026, 12, 1, tzinfo=UTC), customer=customer,
                                         accounts=AccountMap()).invoice


def service(world) -> PaymentService:
    accounts = {world.customer: CustomerAccount("postpaid", "USD")}
    return PaymentService(world.store, world.register.documents, accounts.get,
                          PrepaidBook(FakeBalances(), FakeLedgerStore(), lambda customer: True),
                          FakeOutbox(), FakeAlertPublisher(), FakeClock())


def standing_rows(world) -> list[dict]:
    return [row.to_record() for row in world.register.standings(AS_OF, world.customer)]


@pytest.fixture
def worlds(tmp_path, firestore_stack):
    customer = f"RP{uuid.uuid4().hex[:6].upper()}"
    return FileWorld(tmp_path, customer), FirestoreWorld(firestore_stack, customer)


def test_partial_then_full_payment_gives_the_same_standings_from_the_firestore_and_the_file_register(worlds):
    seen: dict[str, list] = {}
    for world in worlds:
        name = type(world).__name__
        payments = service(world)
        number = str(world.issue("2026-10", "100.00").number)
        steps = [standing_rows(world)]
        payments.handle_notification(notification("authcapture.created", "T1", "40.00", invoiceNumber=number))
        steps.append(standing_rows(world))
        payments.handle_notification(notification("authcapture.created", "T2", "60.00", invoiceNumber=number))
        steps.append(standing_rows(world))
        payments.handle_notification(notification("refund.created", "R1", "15.00", refTransId="T2"))
        steps.append(standing_rows(world))
        # the next invoice's account box counts what was paid (and given back) since
        steps.append(world.issue("2026-12", "50.00").account)
        seen[name] = steps
        by_step = [[(row["paid"], row["balance_due"], row["status"]) for row in rows] for rows in steps[:4]]
        assert by_step == [[("0.00", "100.00", "overdue")], [("40.00", "60.00", "overdue")],
                           [("100.00", "0.00", "paid")], [("85.00", "15.00", "overdue")]], name
        assert standing_rows(world)[0]["days_overdue"] > 0
    file_steps, cloud_steps = seen["FileWorld"], seen["FirestoreWorld"]
    assert cloud_steps == file_steps
    assert cloud_steps[-1]["payments"] == "-85.00"   # shown as a credit on the box, as the file register does


def test_the_firestore_register_lists_every_customer_with_its_payments(firestore_stack):
    world = FirestoreWorld(firestore_stack, f"RP{uuid.uuid4().hex[:6].upper()}")
    number = str(world.issue("2026-10", "70.00").number)
    service(world).handle_notification(notification("authcapture.created", "T9", "70.00", invoiceNumber=number))
    assert world.register.customers() == [world.customer]
    [row] = world.register.standings(AS_OF)
    assert (row.invoice.number, row.paid, row.balance_due, row.status) == (number, D("70.00"), D("0.00"), "paid")


def test_warp_invoices_list_and_show_read_the_configured_firestore_register_as_they_read_the_files(
        worlds, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import orjson

    warp = Path(sys.executable).with_name("warp")
    file_world, cloud_world = worlds
    numbers = []
    for world in worlds:
        number = str(world.issue("2026-10", "100.00").number)
        service(world).handle_notification(notification("authcapture.created", "T1", "35.00", invoiceNumber=number))
        numbers.append(number)
    base = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
    cloud_env = {**base, "WARP_REGISTER_STORE": "firestore", "WARP_PAYMENT_STORE": "firestore",
                 "WARP_FIRESTORE_PROJECT": PROJECT, "WARP_FIRESTORE_EMULATOR_HOST": cloud_world.register_host,
                 "WARP_FIRESTORE_COLLECTION_PREFIX": cloud_world.prefix, "WARP_DATA_DIR": str(tmp_path / "data")}

    def run(env, *args) -> str:
        done = subprocess.run([str(warp), *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = [run({**base, "WARP_DATA_DIR": str(tmp_path / "data")}, "invoices", "list", "--register",
                  str(tmp_path / "register"), "--customer", file_world.customer, "--as-of", "2026-12-20", "--json"),
              run(cloud_env, "invoices", "list", "--customer", cloud_world.customer, "--as-of", "2026-12-20", "--json")]
    file_rows, cloud_rows = ([orjson.loads(line) for line in text.splitlines()] for text in listed)
    assert cloud_rows == file_rows
    assert [(row["paid"], row["balance_due"], row["status"]) for row in cloud_rows] == [("35.00", "65.00", "overdue")]
    shown = orjson.loads(run(cloud_env, "invoice", "show", numbers[1], "--as-of", "2026-12-20", "--json"))
    assert shown["standing"]["balance_due"] == "65.00" and shown["document"]["invoice_number"] == numbers[1]

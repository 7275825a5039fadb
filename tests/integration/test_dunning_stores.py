"""The dunning store and the email log, SQLite and Firestore (the emulator), held to the same rules:
steps create-only by (invoice, action), one suspension record per customer with its history,
an email claimed once, released on failure, re-claimable when its claim is stale."""

from __future__ import annotations

import pytest
from tests.integration.conftest import PROJECT, RUN_ID

from warp_billing.adapters.firestore_dunning import FirestoreDunningStore, FirestoreEmailLog
from warp_billing.adapters.firestore_plans import firestore_client
from warp_billing.adapters.sqlite_dunning import SqliteDunningStore, SqliteEmailLog

pytestmark = pytest.mark.integration
T0, T1, T2 = "2026-12-17T12:00:00+00:00", "2026-12-17T12:05:00+00:00", "2026-12-17T12:11:00+00:00"


@pytest.fixture(params=["sqlite", "firestore"])
def stores(request, tmp_path):
    if request.param == "sqlite":
        return SqliteDunningStore(tmp_path / "d.sqlite"), SqliteEmailLog(tmp_path / "d.sqlite")
    host = request.getfixturevalue("firestore_stack")
    prefix = f"it{RUN_ID}_{tmp_path.name}_"
    return (FirestoreDunningStore(lambda: firestore_client(PROJECT, host), prefix=prefix),
            FirestoreEmailLog(lambda: firestore_client(PROJECT, host), prefix=prefix))


def test_each_step_is_recorded_once_per_invoice(stores):
    store, _ = stores
    assert store.record_step("ACME", "ACME-INV-000001", "remind", T0)
    assert not store.record_step("ACME", "ACME-INV-000001", "remind", T1)
    assert store.record_step("ACME", "ACME-INV-000001", "warn", T1)
    assert store.record_step("BETA", "BETA-INV-000001", "remind", T0)
    assert store.steps("ACME") == {("ACME-INV-000001", "remind"), ("ACME-INV-000001", "warn")}
    assert [action for _, action, _ in store.step_log("ACME")] == ["remind", "warn"]


def test_a_suspension_is_recorded_once_and_cleared_with_its_history(stores):
    store, _ = stores
    store.set_suspended("ACME", "ACME-INV-000001", T0)
    store.set_suspended("ACME", "ACME-INV-000002", T1)      # already suspended: the first reason stands
    assert store.suspension("ACME") == "ACME-INV-000001"
    assert store.suspended_customers() == ["ACME"]
    assert store.clear_suspended("ACME", T2) is True
    assert store.clear_suspended("ACME", T2) is False
    assert store.suspension("ACME") is None and store.suspended_customers() == []
    assert [event for event, _, _ in store.history("ACME")] == ["suspended", "reinstated"]


def test_an_email_is_claimed_once_released_on_failure_and_reclaimed_when_stale(stores):
    _, log = stores
    assert log.claim("INV-1:remind", "ACME", T0)
    assert not log.claim("INV-1:remind", "ACME", T1)        # a fresh claim: someone is sending it
    assert log.claim("INV-1:remind", "ACME", T2)            # stale (> 10 min): the sender died
    log.sent("INV-1:remind", "m-1", T2)
    assert log.status("INV-1:remind") == "sent"
    assert not log.claim("INV-1:remind", "ACME", "2026-12-18T12:00:00+00:00")
    assert log.claim("INV-1:warn", "ACME", T0)
    log.release("INV-1:warn")
    assert log.status("INV-1:warn") is None
    assert log.claim("INV-1:warn", "ACME", T1)


def test_a_refused_email_is_recorded_and_never_claimed_again_even_when_stale(stores):
    _, log = stores
    assert log.claim("vendor-dispute:V2-2026-06:package", "V2", T0)
    log.refused("vendor-dispute:V2-2026-06:package", "SendGrid refused it: HTTP 400", T0)
    assert log.status("vendor-dispute:V2-2026-06:package") == "refused"
    assert not log.claim("vendor-dispute:V2-2026-06:package", "V2", T2)
    log.release("vendor-dispute:V2-2026-06:package")          # a release never undoes the record
    assert log.status("vendor-dispute:V2-2026-06:package") == "refused"

"""Customer disputes in the cloud: `warp dispute` on the Firestore register and dispute store (the emulator).

The settings are the local stack's (``WARP_REGISTER_STORE=firestore``, ``WARP_DISPUTE_STORE=firestore``)
with collections of this test's own; the command takes no ``--register``. An accepted dispute's
credit note is in the Firestore register with its credit memo in the register's ``erp_outbox``, the
collection the NetSuite sync drains. Dispute numbers are taken in a Firestore transaction: opens at
the same moment never share an id, and the numbers stay gapless.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from tests.integration.conftest import require_stand_in, settings_from_env
from tests.unit.billing.billing_builders import close_november, rated

import local_stack
from warp_billing import bootstrap
from warp_billing.adapters.firestore_disputes import FirestoreDisputes
from warp_billing.adapters.firestore_register import FirestoreRegister
from warp_billing.billing.invoice import CREDIT_NOTE
from warp_billing.cli import dispute_commands
from warp_billing.cli import main as warp
from warp_billing.reconciliation.customer_disputes import DisputeError
from warp_billing.reconciliation.dispute_resolution import accept_dispute, open_line_dispute

pytestmark = pytest.mark.integration


@pytest.fixture()
def cloud():
    """The stack's settings in collections of this test's own, as the process-wide container."""
    require_stand_in("firestore")
    settings = settings_from_env(local_stack.stack_env(),
                                 firestore_collection_prefix=f"dsp{uuid.uuid4().hex[:8]}_")
    assert (settings.register_store, settings.dispute_store) == ("firestore", "firestore")
    container = bootstrap.Container(settings)
    bootstrap.reset(container)
    yield container
    bootstrap.reset()


def run(*args):
    return CliRunner().invoke(warp, ["dispute", *[str(a) for a in args]], catch_exceptions=False)


def issue(register: FirestoreRegister):
    """ACME's November invoice with three lines: voice interstate, voice intrastate and SMS."""
    return close_november(register, rated(amount="10.000000", event_id="a"),
                          rated(amount="4.000000", event_id="b", jurisdiction="intrastate"),
                          rated("sms", units=1, amount="0.500000", event_id="c")).invoice


def test_a_dispute_is_opened_reviewed_and_accepted_into_a_credit_memo_of_the_firestore_register(cloud, monkeypatch):
    register, disputes = cloud.close_register, cloud.dispute_store
    assert isinstance(register, FirestoreRegister) and isinstance(disputes, FirestoreDisputes)
    invoice = issue(register)
    line = next(line for line in invoice.lines if line.sku == "VOICE-INTERSTATE")

    opened = run("open", "--invoice", invoice.number, "--sku", line.sku, "--amount", "2.50", "--reason", "not made")
    assert opened.exit_code == 0, opened.output
    assert opened.output.split()[0] == "ACME-DSP-000001"
    assert disputes.get("ACME-DSP-000001").amount == Decimal("2.50")
    assert run("review", "ACME-DSP-000001", "--note", "checking the CDRs").exit_code == 0
    accepted = run("accept", "ACME-DSP-000001", "--as-of", "2026-12-05")
    assert accepted.exit_code == 0, accepted.output
    assert "credit note ACME-CN-000001 for 2.50" in accepted.output

    [note] = [d for d in register.documents("ACME") if d.document_type == CREDIT_NOTE]
    assert (note.number, note.credits, note.total) == ("ACME-CN-000001", invoice.number, Decimal("-2.50"))
    assert dict(note.lines[0].details)["dispute_id"] == "ACME-DSP-000001"
    memos = [d for d in register.outbox_documents("ACME") if d.doc_type == "credit_memo"]
    assert [(m.doc_id, m.prerequisites, m.status) for m in memos] == [
        ("ACME-CN-000001", ("customer:ACME", invoice.number), "pending")]
    assert register.outbox.get("journal:ACME-CN-000001") is not None

    # accepting again is refused and issues nothing more
    outbox = register.outbox_documents()
    again = run("accept", "ACME-DSP-000001")
    assert again.exit_code == 1 and "is accepted; only a dispute under review can be accepted" in again.output
    assert [d.number for d in register.documents("ACME") if d.document_type == CREDIT_NOTE] == ["ACME-CN-000001"]
    assert register.outbox_documents() == outbox

    # the list shows each dispute's age: whole days from opening to its close
    later = datetime.now(UTC) + timedelta(days=3)
    monkeypatch.setattr(dispute_commands, "_now", lambda: later)
    opened = run("open", "--invoice", invoice.number, "--sku", "SMS-OUTBOUND", "--reason", "never sent")
    assert opened.exit_code == 0, opened.output
    monkeypatch.setattr(dispute_commands, "_now", lambda: later + timedelta(days=4, hours=1))
    listed = [json.loads(row) for row in run("list", "--json").output.splitlines()]
    assert [(r["dispute_id"], r["status"], r["age_days"], r["credit_note"]) for r in listed] == [
        ("ACME-DSP-000001", "accepted", 0, "ACME-CN-000001"), ("ACME-DSP-000002", "open", 4, None)]
    assert [entry[1] for entry in listed[0]["history"]] == ["open", "under_review", "accepted"]


def test_a_rejected_dispute_keeps_its_reason_in_firestore_and_issues_nothing(cloud):
    register = cloud.close_register
    invoice = issue(register)
    before = register.outbox_documents()
    dispute_id = run("open", "--invoice", invoice.number, "--sku", "VOICE-INTRASTATE", "--reason", "too dear"
                     ).output.split()[0]
    early = run("reject", dispute_id, "--reason", "contract rate applies")
    assert early.exit_code == 1 and "can move to under_review" in early.output
    assert run("review", dispute_id).exit_code == 0
    no_reason = run("reject", dispute_id, "--reason", "  ")
    assert no_reason.exit_code == 1 and "needs its reason" in no_reason.output
    rejected = run("reject", dispute_id, "--reason", "contract rate applies")
    assert rejected.exit_code == 0, rejected.output

    kept = cloud.dispute_store.get(dispute_id)
    assert (kept.status, kept.rejection_reason, kept.credit_note) == ("rejected", "contract rate applies", None)
    assert [d.document_type for d in register.documents("ACME")] == ["invoice"]
    assert register.outbox_documents() == before
    listed = run("list", "--status", "rejected")
    assert dispute_id in listed.output and "contract rate applies" in listed.output
    refused = run("accept", dispute_id)
    assert refused.exit_code == 1 and "is rejected" in refused.output


def test_concurrent_opens_on_different_lines_get_distinct_gapless_ids(cloud):
    register, disputes = cloud.close_register, cloud.dispute_store
    invoice = issue(register)
    skus = [line.sku for line in invoice.lines]
    assert len(skus) == 3
    opened: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(skus) * 2)

    def open_line(sku: str) -> None:
        start.wait()
        try:
            opened.append(open_line_dispute(register, disputes, invoice.number, sku, None, "r",
                                            datetime.now(UTC)).dispute_id)
        except DisputeError as exc:
            errors.append(exc)

    # every line twice at once: one open per line wins, the other finds it already disputed
    threads = [threading.Thread(target=open_line, args=(sku,)) for sku in skus * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(opened) == ["ACME-DSP-000001", "ACME-DSP-000002", "ACME-DSP-000003"]
    assert len(errors) == 3 and all("is already disputed" in str(error) for error in errors)
    kept = disputes.of_customer("ACME")
    assert [d.dispute_id for d in kept] == sorted(opened)
    assert sorted(d.sku for d in kept) == sorted(skus)


def test_a_dispute_id_of_another_customer_or_a_forged_record_is_refused(cloud):
    register, disputes = cloud.close_register, cloud.dispute_store
    invoice = issue(register)
    dispute_id = run("open", "--invoice", invoice.number, "--sku", "VOICE-INTERSTATE", "--reason", "r"
                     ).output.split()[0]
    for other in ("BETA-DSP-000001", "ACME-DSP-1", "../ACME-DSP-000001", "ACME-INV-000001"):
        result = run("review", other)
        assert result.exit_code == 1 and f"no dispute {other}" in result.output
    # a record of ACME's copied under BETA's id is never taken for BETA's dispute
    ref = disputes.client.collection(disputes.collection)
    ref.document("BETA-DSP-000001").set(ref.document(dispute_id).get().to_dict())
    forged = run("review", "BETA-DSP-000001")
    assert forged.exit_code == 1 and "holds ACME-DSP-000001 of ACME, not BETA-DSP-000001" in forged.output
    assert disputes.get(dispute_id).status == "open"


def test_concurrent_accepts_of_one_dispute_issue_one_credit_note_and_one_credit_memo(cloud):
    register, disputes = cloud.close_register, cloud.dispute_store
    invoice = issue(register)
    dispute_id = run("open", "--invoice", invoice.number, "--sku", "VOICE-INTERSTATE", "--amount", "1.00",
                     "--reason", "r").output.split()[0]
    assert run("review", dispute_id).exit_code == 0
    results: list[str] = []
    start = threading.Barrier(4)

    def accept() -> None:
        start.wait()
        try:
            accept_dispute(register, disputes, dispute_id, date(2026, 12, 5), "", datetime.now(UTC))
            results.append("accepted")
        except DisputeError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=accept) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count("accepted") == 1, results
    assert all("is accepted; only a dispute under review" in r for r in results if r != "accepted"), results
    kept = disputes.get(dispute_id)
    assert [entry[1] for entry in kept.history] == ["open", "under_review", "accepted"]
    assert [d.number for d in register.documents("ACME") if d.document_type == CREDIT_NOTE] == [kept.credit_note]
    assert [m.doc_id for m in register.outbox_documents("ACME") if m.doc_type == "credit_memo"] == [kept.credit_note]

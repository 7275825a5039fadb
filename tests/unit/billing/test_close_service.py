"""The cycle close service on the embedded adapters (rated file, file register + SQLite outbox,
document folder, JSONL run log): issue once, retries, concurrency, late usage, broken plans."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from tests.unit.billing.billing_builders import plan_from, rated

from warp_billing.adapters.document_files import DocumentFolder
from warp_billing.adapters.file_register import FileCloseRegister
from warp_billing.adapters.rated_files import RatedFileSource
from warp_billing.adapters.run_log_files import JsonlRunLog
from warp_billing.billing.close_service import CloseTarget, CycleCloser, due_periods, prior_period_lines
from warp_billing.billing.close_usage import CloseUsage, UsageBatch
from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import CustomerUsage, UsageTotals

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self):
        self.published = []

    def publish(self, document):
        self.published.append(dict(document))


def closer(tmp_path, source, *, clock=lambda: NOW, publisher=None):
    register = FileCloseRegister(tmp_path / "register")
    return CycleCloser(source, register, DocumentFolder(tmp_path / "documents"), publisher or Recorder(),
                       JsonlRunLog(tmp_path / "runs.jsonl"), OfflineTaxEngine(), clock=clock), register


def acme(**sections):
    return plan_from(customer_id="ACME", **sections)


def test_a_close_issues_stores_announces_and_records_the_outbox(tmp_path, rated_file):
    path = rated_file(rated(event_id="a1", amount="1.000000"), rated(event_id="a2", amount="2.500001"))
    publisher = Recorder()
    service, register = closer(tmp_path, RatedFileSource(path), publisher=publisher)
    run = service.close([CloseTarget(acme(), "2026-11")])
    [row] = run.rows
    assert row["status"] == "issued" and row["document_number"] == "ACME-INV-000001"
    assert row["events"] == 2 and row["usage_amount"] == "3.500001" and row["conservation_ok"] is None
    stored = orjson.loads((tmp_path / "documents" / "ACME" / "2026-11" / "ACME-INV-000001.json").read_bytes())
    assert stored["invoice_number"] == "ACME-INV-000001" and stored["total"] == "3.50"
    assert {ref.rsplit("/", 1)[-1] for ref in row["documents"]} == {
        "ACME-INV-000001.json", "ACME-INV-000001.html", "ACME-INV-000001.journal.json"}
    assert publisher.published[0]["invoice_number"] == "ACME-INV-000001"
    outbox = register.outbox_documents()
    assert [(d.doc_id, d.doc_type, d.prerequisites) for d in outbox] == [
        ("customer:ACME", "customer", ()),
        ("ACME-INV-000001", "invoice", ("customer:ACME",)),
        ("journal:ACME-INV-000001", "journal_entry", ("ACME-INV-000001",)),
    ]
    assert [d.sequence for d in outbox] == sorted(d.sequence for d in outbox)
    assert outbox[1].payload == stored
    assert JsonlRunLog(tmp_path / "runs.jsonl").rows() == run.rows


def test_a_close_with_a_pdf_renderer_stores_each_documents_pdf_beside_its_html(tmp_path, rated_file):
    from tests.invoice_page import pdf_text

    from warp_billing.billing.render_pdf import render_invoice_pdf

    path = rated_file(rated(event_id="a1", amount="1.000000"), rated(event_id="a2", amount="2.500001"))
    service = CycleCloser(RatedFileSource(path), FileCloseRegister(tmp_path / "register"),
                          DocumentFolder(tmp_path / "documents"), Recorder(), JsonlRunLog(tmp_path / "runs.jsonl"),
                          OfflineTaxEngine(), clock=lambda: NOW, pdf=render_invoice_pdf)
    [row] = service.close([CloseTarget(acme(), "2026-11")]).rows
    assert row["status"] == "issued"
    assert {ref.rsplit("/", 1)[-1] for ref in row["documents"]} == {
        "ACME-INV-000001.json", "ACME-INV-000001.html", "ACME-INV-000001.pdf", "ACME-INV-000001.journal.json"}
    text = pdf_text(tmp_path / "documents" / "ACME" / "2026-11" / "ACME-INV-000001.pdf")
    assert "ACME-INV-000001" in text and "3.50" in text


def test_a_close_whose_pdf_cannot_be_made_fails_that_customer_by_name_and_a_rerun_completes_it(tmp_path, rated_file):
    from warp_billing.billing.render_pdf import PdfUnavailable

    def broken(page: str) -> bytes:
        raise PdfUnavailable("cannot make the PDF: WeasyPrint is not usable here (test)")

    path = rated_file(rated(event_id="a1", amount="1.000000"))
    register = FileCloseRegister(tmp_path / "register")
    documents = DocumentFolder(tmp_path / "documents")
    args = (RatedFileSource(path), register, documents, Recorder(), JsonlRunLog(tmp_path / "runs.jsonl"),
            OfflineTaxEngine())
    [failed] = CycleCloser(*args, clock=lambda: NOW, pdf=broken).close([CloseTarget(acme(), "2026-11")]).rows
    assert failed["status"] == "failed" and "PdfUnavailable" in failed["error"]
    [again] = CycleCloser(*args, clock=lambda: NOW).close([CloseTarget(acme(), "2026-11")]).rows
    assert again["document_number"] == "ACME-INV-000001"   # the number issued the first time, not a second one
    assert (tmp_path / "documents" / "ACME" / "2026-11" / "ACME-INV-000001.html").exists()


def test_a_retried_close_reuses_its_watermark_and_issues_nothing_new(tmp_path, rated_file):
    path = rated_file(rated(event_id="a1", amount="1.000000"))
    clock = iter([NOW, NOW, NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=1), NOW + timedelta(hours=1)])
    service, register = closer(tmp_path, RatedFileSource(path), clock=lambda: next(clock))
    first = service.close([CloseTarget(acme(), "2026-11")])
    again = service.close([CloseTarget(acme(), "2026-11")])
    assert first.rows[0]["status"] == "issued"
    assert again.rows[0]["status"] == "unchanged" and again.rows[0]["document_number"] == "ACME-INV-000001"
    assert again.rows[0]["watermark"] == first.rows[0]["watermark"]
    assert [d.number for d in register.documents("ACME")] == ["ACME-INV-000001"]
    assert len(register.outbox_documents()) == 3


def test_a_changed_plan_on_an_operator_rerun_is_credited_and_rebilled(tmp_path, rated_file):
    path = rated_file(rated(event_id="a1", amount="1.000000"))
    service, register = closer(tmp_path, RatedFileSource(path))
    service.close([CloseTarget(acme(), "2026-11")])
    changed = acme(recurring=[{"sku": "DID", "description": "DID", "quantity": 1, "unit_price": "5.00",
                               "start": "2026-01-01"}])
    scheduled = service.close([CloseTarget(changed, "2026-11")])           # the schedule never rebills
    assert scheduled.rows[0]["status"] == "already_issued"
    rerun = service.close([CloseTarget(changed, "2026-11")], rebill=True)  # the operator does
    row = rerun.rows[0]
    assert (row["status"], row["document_number"], row["credit_note_number"]) == (
        "reissued", "ACME-INV-000002", "ACME-CN-000001")
    kinds = [(d.doc_id, d.doc_type, d.prerequisites) for d in register.outbox_documents()][3:]
    assert kinds == [("ACME-CN-000001", "credit_memo", ("customer:ACME", "ACME-INV-000001")),
                     ("journal:ACME-CN-000001", "journal_entry", ("ACME-CN-000001",)),
                     ("ACME-INV-000002", "invoice", ("customer:ACME",)),
                     ("journal:ACME-INV-000002", "journal_entry", ("ACME-INV-000002",))]


def test_concurrent_closes_of_one_customer_issue_one_number(tmp_path, rated_file):
    path = rated_file(rated(event_id="a1", amount="1.000000"))
    results = []
    barrier = threading.Barrier(4)

    def close():
        service, _ = closer(tmp_path, RatedFileSource(path))
        barrier.wait()
        results.append(service.close([CloseTarget(acme(), "2026-11")]).rows[0])

    threads = [threading.Thread(target=close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(row["status"] for row in results) == ["issued", "unchanged", "unchanged", "unchanged"]
    assert {row["document_number"] for row in results} == {"ACME-INV-000001"}
    assert [d.number for d in FileCloseRegister(tmp_path / "register").documents("ACME")] == ["ACME-INV-000001"]


def test_one_failing_customer_does_not_stop_the_others(tmp_path, rated_file):
    path = rated_file(rated(event_id="a1", amount="1.000000"), rated(event_id="b1", customer="BETA", amount="2.000000"))
    service, register = closer(tmp_path, RatedFileSource(path), clock=lambda: datetime(2032, 1, 5, tzinfo=UTC))
    # BETA's USF needs a contribution factor the offline table does not have for 2031.
    beta = plan_from(customer_id="BETA", fees={"usf": {"applies": True}})
    run = service.close([CloseTarget(acme(), "2026-11"), CloseTarget(beta, "2031-11")],
                        failed_plans={"GAMMA": "PlanError: plan GAMMA: voice.deck is missing"})
    by_customer = {row["customer_id"]: row for row in run.rows}
    assert by_customer["ACME"]["status"] == "issued"
    assert by_customer["BETA"]["status"] == "failed"
    assert by_customer["BETA"]["error"].startswith("ContributionFactorMissing: ")
    assert by_customer["GAMMA"] == {**by_customer["GAMMA"], "status": "failed",
                                    "error": "PlanError: plan GAMMA: voice.deck is missing"}
    assert {f["customer_id"] for f in run.summary()["failed"]} == {"BETA", "GAMMA"}


def test_a_cycle_that_has_not_ended_is_not_closed(tmp_path, rated_file):
    service, _ = closer(tmp_path, RatedFileSource(rated_file(rated(event_id="a1"))))
    row = service.close([CloseTarget(acme(), "2026-12")]).rows[0]
    assert row["status"] == "failed" and "has not ended" in row["error"]


def test_a_period_with_no_usage_issues_the_recurring_charges_only(tmp_path, rated_file):
    path = rated_file(rated(event_id="x", customer="OTHER"))
    service, _ = closer(tmp_path, RatedFileSource(path))
    plan = acme(recurring=[{"sku": "DID", "description": "DID", "quantity": 2, "unit_price": "1.00",
                            "start": "2026-01-01"}])
    row = service.close([CloseTarget(plan, "2026-11")]).rows[0]
    assert row["status"] == "issued" and row["events"] == 0 and row["subtotal"] == "2.00"


class PriorSource:
    """A source with late usage of 2026-10 (as BigQuery returns it after that cycle's watermark)."""

    def __init__(self):
        self.windows = []

    def close_usage(self, windows):
        self.windows.extend(windows)
        late = CustomerUsage("ACME", {("voice", "interstate"): UsageTotals(3, 180, Decimal("0.018001")),
                                      ("sms", "outbound"): UsageTotals(2, 2, Decimal("0.008000"))})
        current = CustomerUsage("ACME", {("voice", "interstate"): UsageTotals(1, 60, Decimal("1.000000"))})
        usage = CloseUsage("ACME", current, {"2026-10": late}, Decimal("1.026001"), 6, 0)
        return UsageBatch({"ACME": usage}, rows_returned=3)


def test_late_usage_is_billed_on_prior_period_lines_naming_their_service_period(tmp_path):
    source = PriorSource()
    service, register = closer(tmp_path, source)
    register._claim(type("D", (), {"customer_id": "ACME", "cycle": acme_cycle("2026-10")})(), NOW - timedelta(days=30))
    row = service.close([CloseTarget(acme(), "2026-11")]).rows[0]
    assert source.windows[0].previous_watermark == NOW - timedelta(days=30)
    assert row["late_events"] == 5 and row["events"] == 6 and row["conservation_ok"] is True
    invoice = register.documents("ACME")[0].to_record()
    prior = [line for line in invoice["lines"] if line.get("prior_period")]
    assert [(line["sku"], line["service_period"], line["service_start"], line["service_end"], line["amount"])
            for line in prior] == [("VOICE-INTERSTATE", "2026-10", "2026-10-01", "2026-11-01", "0.02"),
                                   ("SMS-OUTBOUND", "2026-10", "2026-10-01", "2026-11-01", "0.01")]
    assert all("service period 2026-10" in line["description"] for line in prior)


def acme_cycle(label):
    return plan_cycle(acme(), label)


def test_prior_period_lines_use_the_customer_anchor_day():
    plan = plan_from(customer_id="ACME", terms={"anchor_day": 15})
    lines = prior_period_lines(plan, {"2026-09": CustomerUsage("ACME", {
        ("api_query", "lrn"): UsageTotals(10, 10, Decimal("0.010000"))})})
    assert [(line.sku, str(line.service_start), str(line.service_end)) for line in lines] == [
        ("API-LRN", "2026-09-15", "2026-10-15")]


def test_a_conservation_mismatch_is_reported_on_the_row(tmp_path):
    class Short(PriorSource):
        def close_usage(self, windows):
            batch = super().close_usage(windows)
            found = batch.usage["ACME"]
            batch.usage["ACME"] = CloseUsage("ACME", found.current, found.prior, Decimal("1.026002"), 6, 0)
            return batch

    service, _ = closer(tmp_path, Short())
    row = service.close([CloseTarget(acme(), "2026-11")]).rows[0]
    assert row["conservation_ok"] is False and row["status"] == "issued"
    assert service.close([CloseTarget(acme(), "2026-11")]).rows[0]["conservation_ok"] is False


def test_due_periods_follow_the_zone_and_anchor_day():
    lag = timedelta(minutes=10)
    ny = plan_from(customer_id="A", timezone="America/New_York")
    assert due_periods(ny, datetime(2026, 12, 1, 4, 59, tzinfo=UTC), lag, back=1) == ["2026-10"]
    assert due_periods(ny, datetime(2026, 12, 1, 5, 11, tzinfo=UTC), lag, back=1) == ["2026-11"]
    anchored = plan_from(customer_id="B", timezone="UTC", terms={"anchor_day": 15})
    assert due_periods(anchored, datetime(2026, 12, 14, 23, 0, tzinfo=UTC), lag, back=1) == ["2026-10"]
    assert due_periods(anchored, datetime(2026, 12, 15, 0, 11, tzinfo=UTC), lag, back=1) == ["2026-11"]


def test_a_run_log_that_cannot_be_written_is_reported_not_fatal(tmp_path, rated_file):
    class Broken:
        def record(self, rows):
            raise OSError("disk full")

    service, _ = closer(tmp_path, RatedFileSource(rated_file(rated(event_id="a1"))))
    service.run_log = Broken()
    run = service.close([CloseTarget(acme(), "2026-11")])
    assert run.rows[0]["status"] == "issued" and run.summary()["run_log_error"] == "OSError: disk full"


# -- prepaid customers: the statement's balance box and its debits ----------------------------------

def prepaid_book(topup_micros: int = 50_000_000):
    from tests.fakes import FakeBalances, FakeClock, FakeLedgerStore

    from warp_billing.charging.prepaid import prepaid_terms
    from warp_billing.charging.statement_debits import LedgerPrepaidStatements

    balances, ledger = FakeBalances(), FakeLedgerStore()
    plan = prepaid_plan()
    topup = balances.credit("BETA", "topup:PAY-1", topup_micros, "topup", "", 1_793_750_400_000, prepaid_terms(plan))
    ledger.append(list(topup.entries))                                   # 2026-11-04: a 50.00 top-up
    return LedgerPrepaidStatements(balances, ledger, FakeClock(1_796_000_000_000)), balances, ledger


def prepaid_plan(**sections):
    return plan_from(customer_id="BETA", billing="prepaid", recurring=[
        {"sku": "DID-LOCAL", "description": "Local DID", "quantity": 10, "unit_price": "1.00", "start": "2026-01-01"}],
        **sections)


def test_a_prepaid_statement_gets_its_balance_box_and_its_charges_debited_once(tmp_path, rated_file):
    path = rated_file(rated(event_id="b1", customer="BETA", amount="0.500000"))
    book, balances, ledger = prepaid_book()
    register = FileCloseRegister(tmp_path / "register")
    service = CycleCloser(RatedFileSource(path), register, DocumentFolder(tmp_path / "documents"), Recorder(),
                          JsonlRunLog(tmp_path / "runs.jsonl"), OfflineTaxEngine(), clock=lambda: NOW, prepaid=book)

    first = service.close([CloseTarget(prepaid_plan(), "2026-11")]).rows[0]
    again = service.close([CloseTarget(prepaid_plan(), "2026-11")]).rows[0]

    assert (first["status"], first["document_number"]) == ("issued", "BETA-ST-000001")
    assert again["status"] == "unchanged"
    [statement] = register.documents("BETA")
    assert statement.statement["opening_balance"] == "0.00"
    assert statement.statement["topups_and_payments"] == "50.00"
    assert statement.statement["charges_drawn"] == "10.00"
    debits = [entry for entry in ledger.entries("BETA") if entry.entry_id.startswith("statement:")]
    assert [(entry.entry_id, entry.amount_micros) for entry in debits] == [("statement:BETA-ST-000001:2", -10_000_000)]
    assert balances.accounts["BETA"].balance == 40_000_000                # debited once, not on the re-run


def test_a_prepaid_close_whose_debits_fail_is_reported_failed_and_a_rerun_completes_it(tmp_path, rated_file):
    path = rated_file(rated(event_id="b1", customer="BETA", amount="0.500000"))
    book, balances, ledger = prepaid_book()
    service = CycleCloser(RatedFileSource(path), FileCloseRegister(tmp_path / "register"),
                          DocumentFolder(tmp_path / "documents"), Recorder(), JsonlRunLog(tmp_path / "runs.jsonl"),
                          OfflineTaxEngine(), clock=lambda: NOW, prepaid=book)
    balances.fail_next()

    failed = service.close([CloseTarget(prepaid_plan(), "2026-11")]).rows[0]
    rerun = service.close([CloseTarget(prepaid_plan(), "2026-11")]).rows[0]

    assert failed["status"] == "failed"
    assert "BETA-ST-000001 issued, but its debits were not all posted" in failed["error"]
    assert rerun["status"] == "unchanged" and rerun["document_number"] == "BETA-ST-000001"
    assert balances.accounts["BETA"].balance == 40_000_000

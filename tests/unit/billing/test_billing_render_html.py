"""The printable HTML rendering shows the document's own figures."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from tests.unit.billing.billing_builders import lines_of, plan_from, rated

from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.invoice import build_invoice
from warp_billing.billing.render_html import render_invoice_html
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow


def invoice(plan):
    cycle = plan_cycle(plan, "2026-11")
    aggregator = UsageAggregator({"ACME": UsageWindow.for_cycle("ACME", cycle)})
    aggregator.consume(lines_of(rated(units=60_000, amount="12345.600000")))
    return build_invoice(plan, cycle, aggregator.result()["ACME"], OfflineTaxEngine())


PLAN = plan_from(recurring=[{"sku": "DID", "description": "Local <DID> & more", "quantity": 2, "unit_price": "1.00",
                             "start": "2026-11-16"}], fees={"e911_per_did": "0.25"})


def test_the_page_shows_lines_fees_totals_and_an_inclusive_period():
    page = render_invoice_html(invoice(PLAN))
    assert "<!DOCTYPE html>" in page and "@media print" in page
    assert "1 Nov 2026 to 30 Nov 2026" in page
    assert "VOICE-INTERSTATE" in page and "12,345.60" in page and "1,000" in page
    assert "16 Nov 2026 to 30 Nov 2026" in page and "1.00" in page            # 2 x 1.00 x 15/30
    assert "E911" in page and "0.50" in page
    assert "12,347.10" in page                                               # total
    assert "DRAFT" in page


def test_descriptions_are_escaped():
    page = render_invoice_html(invoice(PLAN))
    assert "Local &lt;DID&gt; &amp; more" in page and "<DID>" not in page


def test_a_credit_note_is_titled_as_one_and_names_the_invoice_it_credits():
    issued = invoice(PLAN)
    note = issued.credit_note("ACME-CN-000001", date(2026, 12, 5))
    page = render_invoice_html(replace(note, credits="ACME-INV-000007"))
    assert '<h1 class="doc-title">Credit note' in page and "ACME-INV-000007" in page and "-12,347.10" in page

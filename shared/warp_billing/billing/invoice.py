"""The invoice document (contracts.md section 6) and how a cycle's charges compose into it.

Line order: voice usage by jurisdiction, ``VOICE-TIER-ADJ``, the commitment line,
messaging (SMS then MMS, outbound then inbound), API queries by type each followed by its
``API-<TYPE>-DISCOUNT``, then recurring charges in plan order. ``subtotal`` is the sum of
the lines, ``total`` = subtotal + fees. Every line and fee was rounded once to cents where
it was computed; sums of cents are exact.

The JSON keeps the contract's keys and adds optional ones: per line ``category``,
``service_start``/``service_end`` (``end`` = first day not included, as ``period.end``)
and details such as ``events``, ``billed_seconds``, ``unit_price``, ``active_days``;
per document ``document_type`` (invoice | statement | credit_note), ``invoice_number``,
``status``, ``billing_period``, ``timezone``, ``terms``, ``replaces``/``credits``,
``billing`` (postpaid | prepaid), ``voice_destinations`` (the top destinations table),
``seller`` and ``bill_to`` (the billing profiles), ``account`` (the register's account box),
``statement`` (a prepaid statement's balance box) and a ``content_hash`` of the billed
content (what makes re-invoicing idempotent).

A prepaid customer's document is a ``STATEMENT``: its usage was drawn from its balance, so
it is due on its issue date, carries no payment terms and its journal draws on deposits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any

import orjson

from ..plan import Plan
from ..ports import TaxEngine
from ..products import API_QUERY, VOICE, products
from .amounts import cents, exact, iso, money_text, quantity_text, rate_text
from .bulk_discounts import bulk_discount, discount_description, discount_sku
from .commitments import commitment_outcome, committed_minutes
from .cycles import BillingCycle, cycle_for
from .destinations import destination_table
from .fees import Fee, e911_fee
from .recurring import recurring_lines
from .taxes import TaxableLine, TaxRequest
from .tiers import TIER_ADJUSTMENT_SKU, tier_adjustment, tier_description
from .usage_lines import CustomerUsage, UsageTotals, ordered_groups, usage_line, usage_sku

INVOICE = "invoice"
STATEMENT = "statement"        # a prepaid customer's month: drawn from its balance, nothing due
CREDIT_NOTE = "credit_note"
DRAFT = "draft"
ISSUED = "issued"

USAGE = "usage"
VOLUME_PRICING = "volume_pricing"
COMMITMENT = "commitment"
DISCOUNT = "discount"

LINE_KEYS = ("sku", "description", "quantity", "unit", "amount", "category", "service_start", "service_end")
# Not billed content: numbering and dates, who the parties are, the account/balance box and the
# destination breakdown (derived from the same usage as the lines). Keys added later are listed
# here too, so that the hash of a document issued before they existed does not change.
VOLATILE_KEYS = ("invoice_number", "status", "issue_date", "due_date", "replaces", "credits", "content_hash",
                 "seller", "bill_to", "account", "statement", "voice_destinations", "billing")


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice line.

    Attributes:
        quantity: exact (minutes may be fractions of billed seconds / 60).
        amount: in cents, rounded once where it was computed.
        category: usage | volume_pricing | commitment | discount | recurring | recurring_advance
            (drives revenue recognition).
        service_start, service_end: the service days ``[start, end)`` the line bills.
        details: further keys written with the line (events, billed_seconds, unit_price, ...).
    """

    sku: str
    description: str
    quantity: Fraction
    unit: str
    amount: Decimal
    category: str
    service_start: date
    service_end: date
    details: tuple[tuple[str, Any], ...] = ()

    def to_record(self) -> dict[str, Any]:
        record = {
            "sku": self.sku,
            "description": self.description,
            "quantity": quantity_text(self.quantity),
            "unit": self.unit,
            "amount": money_text(self.amount),
            "category": self.category,
            "service_start": iso(self.service_start),
            "service_end": iso(self.service_end),
        }
        record.update(self.details)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> InvoiceLine:
        return cls(
            record["sku"], record["description"], exact(Decimal(record["quantity"])), record["unit"],
            Decimal(record["amount"]), record["category"], date.fromisoformat(record["service_start"]),
            date.fromisoformat(record["service_end"]),
            tuple((key, value) for key, value in record.items() if key not in LINE_KEYS),
        )

    def negated(self) -> InvoiceLine:
        return replace(self, amount=cents(-self.amount))


@dataclass(frozen=True)
class Invoice:
    """An invoice or credit note of one customer for one cycle."""

    customer_id: str
    cycle: BillingCycle
    issue_date: date
    due_date: date
    currency: str
    net_days: int
    lines: tuple[InvoiceLine, ...]
    fees: tuple[Fee, ...]
    document_type: str = INVOICE
    number: str | None = None
    status: str = DRAFT
    replaces: str | None = None
    credits: str | None = None
    billing: str = "postpaid"
    voice_destinations: tuple[Mapping[str, Any], ...] = ()
    bill_to: Mapping[str, Any] | None = None
    seller: Mapping[str, Any] | None = None
    account: Mapping[str, Any] | None = None
    statement: Mapping[str, Any] | None = None

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def fees_total(self) -> Decimal:
        return sum((fee.amount for fee in self.fees), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.fees_total

    def to_record(self) -> dict[str, Any]:
        record = {
            "document_type": self.document_type,
            "invoice_number": self.number,
            "status": self.status,
            "customer_id": self.customer_id,
            "period": {"start": iso(self.cycle.start), "end": iso(self.cycle.end)},
            "billing_period": self.cycle.label,
            "timezone": self.cycle.timezone,
            "issue_date": iso(self.issue_date),
            "due_date": iso(self.due_date),
            "currency": self.currency,
            "terms": {"net_days": self.net_days, "anchor_day": self.cycle.anchor_day},
            "lines": [line.to_record() for line in self.lines],
            "subtotal": money_text(self.subtotal),
            "fees": [fee.to_record() for fee in self.fees],
            "total": money_text(self.total),
            "replaces": self.replaces,
            "credits": self.credits,
            "billing": self.billing,
            "voice_destinations": [dict(row) for row in self.voice_destinations],
            "seller": None if self.seller is None else dict(self.seller),
            "bill_to": None if self.bill_to is None else dict(self.bill_to),
            "account": None if self.account is None else dict(self.account),
            "statement": None if self.statement is None else dict(self.statement),
        }
        record["content_hash"] = billed_content_hash(record)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Invoice:
        terms = record.get("terms", {})
        cycle = cycle_for(record["billing_period"], timezone=record["timezone"], anchor_day=terms.get("anchor_day", 1))
        return cls(
            record["customer_id"], cycle, date.fromisoformat(record["issue_date"]),
            date.fromisoformat(record["due_date"]), record["currency"], terms.get("net_days", 0),
            tuple(InvoiceLine.from_record(line) for line in record["lines"]),
            tuple(Fee.from_record(fee) for fee in record["fees"]),
            record.get("document_type", INVOICE), record.get("invoice_number"), record.get("status", DRAFT),
            record.get("replaces"), record.get("credits"), billing=record.get("billing", "postpaid"),
            voice_destinations=tuple(record.get("voice_destinations") or ()), bill_to=record.get("bill_to"),
            seller=record.get("seller"), account=record.get("account"), statement=record.get("statement"),
        )

    @cached_property
    def content_hash(self) -> str:
        """Digest of the billed content (cached: the invoice is immutable)."""
        return str(self.to_record()["content_hash"])

    def credit_note(self, number: str, on: date) -> Invoice:
        """The credit note cancelling this invoice in full, dated ``on``."""
        return replace(
            self, issue_date=on, due_date=on, lines=tuple(line.negated() for line in self.lines),
            fees=tuple(fee.negated() for fee in self.fees), document_type=CREDIT_NOTE, number=number,
            status=ISSUED, replaces=None, credits=self.number, account=None, statement=None, voice_destinations=(),
        )


def billed_content_hash(record: dict[str, Any]) -> str:
    """A digest of what an invoice bills (lines, fees, period, terms), not of its number or dates."""
    content = {key: value for key, value in record.items() if key not in VOLATILE_KEYS}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def build_invoice(plan: Plan, cycle: BillingCycle, usage: CustomerUsage, taxes: TaxEngine,
                  seller: Mapping[str, Any] | None = None, extra_lines: Iterable[InvoiceLine] = ()) -> Invoice:
    """The draft invoice (a prepaid customer's: statement) closing ``cycle`` from its usage.

    ``extra_lines`` (late usage of earlier cycles) follow the cycle's lines and are taxed with them.
    """
    lines = [*_usage_lines(plan, cycle, usage), *_recurring(plan, cycle), *extra_lines]
    fees: list[Fee] = []
    e911 = e911_fee(plan, cycle)
    if e911 is not None:
        fees.append(e911)
    request = TaxRequest(
        plan.customer_id, f"{plan.customer_id}-{cycle.label}", cycle, cycle.issue_date,
        tuple(TaxableLine(line.sku, line.amount, line.quantity, line.unit) for line in lines),
        plan.fees.usf.applies,
    )
    fees.extend(taxes.taxes(request))
    prepaid = plan.billing == "prepaid"
    bill_to = plan.billing_profile.model_dump(mode="json") if plan.billing_profile is not None else None
    return Invoice(
        plan.customer_id, cycle, cycle.issue_date, cycle.issue_date if prepaid else cycle.due_date(plan.terms.net_days),
        plan.currency, 0 if prepaid else plan.terms.net_days, tuple(lines), tuple(fees),
        document_type=STATEMENT if prepaid else INVOICE, billing=plan.billing,
        voice_destinations=tuple(destination_table(usage.destinations)), bill_to=bill_to,
        seller=None if seller is None else dict(seller),
    )


def _usage(cycle: BillingCycle, kind: str, sub: str, totals: UsageTotals) -> InvoiceLine:
    priced = usage_line(kind, sub, totals)
    details: list[tuple[str, Any]] = [("events", priced.events)]
    if priced.billed_seconds is not None:
        details.append(("billed_seconds", priced.billed_seconds))
    return InvoiceLine(priced.sku, priced.description, priced.quantity, priced.unit, priced.amount, USAGE,
                       cycle.start, cycle.end, tuple(details))


def _usage_lines(plan: Plan, cycle: BillingCycle, usage: CustomerUsage) -> Iterable[InvoiceLine]:
    """Usage lines product by product in table order, each group followed by its adjustments."""
    for item in products():
        printed = []
        for sub, totals in ordered_groups(usage, item.kind):
            line = _usage(cycle, item.kind, sub, totals)
            printed.append(line)
            yield line
            if item.kind == API_QUERY.kind:
                yield from _api_discount(plan, cycle, sub, totals)
        if item.kind == VOICE.kind:
            yield from _voice_adjustments(plan, cycle, usage, printed)


def _voice_adjustments(plan: Plan, cycle: BillingCycle, usage: CustomerUsage,
                       printed: list[InvoiceLine]) -> Iterable[InvoiceLine]:
    """Volume pricing (tiers, on the ``applies_to`` lines as printed) and the commitment (all voice minutes)."""
    voice_plan = plan.voice
    if voice_plan is None:
        return
    minutes = usage.voice_minutes
    voice_after_tiers = sum((line.amount for line in printed), Decimal("0.00"))   # voice as printed
    tiers = voice_plan.tiers
    if tiers is not None:
        scope = [line for line in printed if line.sku in tiers.applies_to]
        if scope:
            in_scope = UsageTotals()
            for (kind, sub), totals in usage.groups.items():
                if kind == VOICE.kind and usage_sku(kind, sub) in tiers.applies_to:
                    in_scope = in_scope + totals
            scope_printed = sum((line.amount for line in scope), Decimal("0.00"))
            tiered, adjustment = tier_adjustment(tiers, in_scope, scope_printed)
            scope_minutes = Fraction(in_scope.units, 60)
            voice_after_tiers += adjustment
            yield InvoiceLine(
                TIER_ADJUSTMENT_SKU, tier_description(tiers, scope_minutes), scope_minutes, "minute", adjustment,
                VOLUME_PRICING, cycle.start, cycle.end,
                (("tier_mode", tiers.mode), ("applies_to", list(tiers.applies_to)),
                 ("tiered_price", money_text(tiered)), ("lines_as_printed", money_text(scope_printed))),
            )
    if voice_plan.commitment is not None:
        outcome = commitment_outcome(voice_plan.commitment, cycle, minutes, voice_after_tiers)
        if outcome is not None:
            yield InvoiceLine(outcome.sku, outcome.description, outcome.quantity, "minute", outcome.amount,
                              COMMITMENT, cycle.start, cycle.end,
                              (("committed_minutes", quantity_text(committed_minutes(voice_plan.commitment, cycle))),))


def _api_discount(plan: Plan, cycle: BillingCycle, query_type: str, totals: UsageTotals) -> Iterable[InvoiceLine]:
    """The bulk discount of one query type, when the plan has one and the volume reaches it."""
    discount = plan.api_queries.bulk_discount if plan.api_queries is not None else None
    if discount is None:
        return
    amount = bulk_discount(discount, totals)
    if amount is not None:
        yield InvoiceLine(
            discount_sku(query_type), discount_description(query_type, discount), Fraction(totals.units),
            "query", amount, DISCOUNT, cycle.start, cycle.end,
            (("percent", rate_text(discount.percent)), ("threshold", discount.threshold)),
        )


def _recurring(plan: Plan, cycle: BillingCycle) -> Iterable[InvoiceLine]:
    for line in recurring_lines(plan.recurring, cycle):
        yield InvoiceLine(
            line.sku, line.description, Fraction(line.quantity), "each", line.amount, line.category,
            line.service_start, line.service_end,
            (("unit_price", format(line.unit_price, "f")), ("active_days", line.active_days),
             ("period_days", line.period_days)),
        )

"""Fees on an invoice: the document shape, and the plan's E911 fee per active number.

Every fee shows its base and rate with ``amount = base x rate`` rounded once to cents.

E911: ``fees.e911_per_did`` x the numbers in service during the cycle. A number counts
once, in full, if it was active on at least one day of the cycle (a number added and
removed in the same month counts once): 911 surcharges are levied per number per month,
not per day. It follows the service cycle, not the billing timing: a number billed in
advance pays its E911 on the invoice of the cycle it is in service in. Only recurring
charges marked ``e911`` (the default) are numbers for this purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..plan import Plan
from .amounts import cents, exact, money_text, quantity_text
from .cycles import BillingCycle
from .recurring import active_numbers

E911_CODE = "E911"


@dataclass(frozen=True, slots=True)
class Fee:
    """One fee or tax line.

    Attributes:
        base: what the rate applies to: an amount of money (``base_is_money``) or a count.
        rate: per unit of base (E911: money per number; USF: a fraction, 0.376 for 37.6%).
        rate_percent: the rate as the percentage it is published as, when it is one.
        account_hint: the kind of liability or revenue it is (for the journal): "e911",
            "usf" or "tax".
    """

    code: str
    description: str
    base: Decimal
    rate: Decimal
    amount: Decimal
    base_is_money: bool = True
    rate_percent: Decimal | None = None
    account_hint: str = "tax"

    def to_record(self) -> dict[str, Any]:
        record = {
            "code": self.code,
            "description": self.description,
            "base": money_text(self.base) if self.base_is_money else quantity_text(self.base),
            "rate": format(self.rate, "f"),
            "amount": money_text(self.amount),
        }
        if self.rate_percent is not None:
            record["rate_percent"] = format(self.rate_percent, "f")
        record["base_kind"] = "amount" if self.base_is_money else "count"
        record["account_hint"] = self.account_hint
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Fee:
        percent = record.get("rate_percent")
        return cls(
            record["code"], record["description"], Decimal(record["base"]), Decimal(record["rate"]),
            Decimal(record["amount"]), record.get("base_kind", "amount") == "amount",
            None if percent is None else Decimal(percent), record.get("account_hint", "tax"),
        )

    def negated(self) -> Fee:
        return Fee(self.code, self.description, self.base, self.rate, cents(-self.amount), self.base_is_money,
                   self.rate_percent, self.account_hint)


def e911_fee(plan: Plan, cycle: BillingCycle) -> Fee | None:
    """The E911 fee of the cycle, or None when the plan charges none or no number is active."""
    rate = plan.fees.e911_per_did
    numbers = active_numbers(plan.recurring, cycle)
    if rate == 0 or numbers == 0:
        return None
    return Fee(
        E911_CODE, f"E911 fee, {numbers:,} active numbers at {rate} each",
        Decimal(numbers), rate, cents(exact(rate) * numbers), base_is_money=False, account_hint="e911",
    )

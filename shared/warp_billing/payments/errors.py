"""Why a payment notification could not be applied (kept as a reject with its reason code)."""

from __future__ import annotations

from enum import Enum


class PaymentReason(str, Enum):
    """Stable reason codes of payment rejects."""

    MALFORMED = "MALFORMED"                  # not a JSON object / missing or mistyped fields
    BAD_AMOUNT = "BAD_AMOUNT"                # amount missing, not a decimal, not positive, more than 2 places
    UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"    # no customer in the payload or details, or no plan for it
    UNKNOWN_INVOICE = "UNKNOWN_INVOICE"      # an invoice number named that is not ours / not the customer's
    UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT"      # a reversal of a transaction we never applied
    OVER_REVERSAL = "OVER_REVERSAL"          # reversing more than is left of the payment
    NOT_APPROVED = "NOT_APPROVED"            # the gateway's response code is not an approval

    def __str__(self) -> str:
        return self.value


class PaymentRejected(ValueError):
    """A notification that is authentic but cannot be applied; ``reason`` says why."""

    def __init__(self, reason: PaymentReason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

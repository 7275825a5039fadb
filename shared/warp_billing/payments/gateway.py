"""Gateway values (what ``ports.PaymentGateway`` exchanges), pure.

``TransactionDetails`` is the part of ``getTransactionDetailsResponse`` payments need;
``ProfileCharge`` an ``authCaptureTransaction`` on a stored customer payment profile, with the
deterministic ``refId`` that names the attempt; ``ChargeOutcome`` the gateway's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

APPROVED, DECLINED, ERROR, HELD = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class TransactionDetails:
    transaction_id: str
    status: str                      # transactionStatus, e.g. capturedPendingSettlement, refundSettledSuccessfully
    amount: Decimal | None           # settleAmount / authAmount
    invoice_number: str | None
    customer_id: str | None          # customer.id: our customer id (we set it on every charge)
    ref_transaction_id: str | None   # a refund's original transaction
    response_code: int | None


@dataclass(frozen=True, slots=True)
class ProfileCharge:
    ref_id: str                      # deterministic per recharge attempt (<= 20 characters)
    customer_id: str
    customer_profile_id: str
    payment_profile_id: str
    amount: Decimal
    invoice_number: str              # order.invoiceNumber (<= 20 characters)
    description: str


@dataclass(frozen=True, slots=True)
class ChargeOutcome:
    response_code: int               # 1 approved, 2 declined, 3 error, 4 held for review
    transaction_id: str | None
    auth_code: str | None
    message: str                     # the gateway's message or error text

    @property
    def approved(self) -> bool:
        return self.response_code == APPROVED and bool(self.transaction_id)

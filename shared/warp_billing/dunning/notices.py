"""Customer emails: what is sent, to whom, with which template data (SendGrid dynamic templates).

One ``Mail`` per (document, step): ``email_id`` = ``<document>:<step>`` is the idempotency key of
the email log (an invoice number and a dunning action; an alert id and its type; a payment's
transaction id and ``receipt``). Template ids are settings (``WARP_SENDGRID_TEMPLATES``), keyed
by ``kind``; the template data carries money as decimal strings, never JSON numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# kinds of email (keys of the template map)
REMIND, WARN, SUSPEND, COLLECTIONS = "remind", "warn", "suspend", "collections"
REINSTATED = "reinstated"
LOW_BALANCE, RECHARGE_DECLINED, PAYMENT_RECEIPT = "low_balance", "recharge_declined", "payment_receipt"
# prepaid: the balance is exhausted (suspension at ``suspend_at`` unless topped up), then suspended
SUSPEND_PENDING, PREPAID_SUSPENDED = "suspend_pending", "suspended"
# not a customer's: a vendor dispute package, to the operator or the vendor (``vendor_disputes``)
VENDOR_DISPUTE = "vendor_dispute"
KINDS = (REMIND, WARN, SUSPEND, COLLECTIONS, REINSTATED, LOW_BALANCE, RECHARGE_DECLINED, PAYMENT_RECEIPT,
         SUSPEND_PENDING, PREPAID_SUSPENDED, VENDOR_DISPUTE)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Mail:
    """One email to send.

    Attributes:
        email_id: ``<document>:<step>``, the idempotency key (also sent as custom arg ``warp_email_id``).
        kind: one of ``KINDS``; selects the dynamic template.
        to: the recipient address (the plan's ``billing_profile.email``).
        data: the template's ``dynamic_template_data``.
    """

    email_id: str
    kind: str
    customer_id: str
    to: str
    to_name: str
    data: dict[str, Any]
    attachments: tuple[Attachment, ...] = field(default=())


def email_id(document: str, step: str) -> str:
    return f"{document}:{step}"

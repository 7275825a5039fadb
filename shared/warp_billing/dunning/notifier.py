"""Sending a customer email once per (document, step), through the email log and the mailer.

The log is claimed before the send and marked sent after it; a failed send releases the claim
(retried by the caller's retry: the dunning task's next run, the alert's redelivery). A customer
without ``billing_profile.email`` gets no email: that is logged as a named outcome, not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ..billing.invoice import Invoice
from ..plan import Plan
from ..ports import EmailLog, Mailer
from .notices import Attachment, Mail, email_id

log = logging.getLogger(__name__)
SENT, ALREADY, NO_RECIPIENT = "sent", "already_sent", "no_recipient"


class Notifier:
    """Emails to customers (``notify``), each once per (document, step)."""

    def __init__(self, mailer: Mailer, email_log: EmailLog, *, now: Callable[[], str],
                 attachment: Callable[[Invoice], Attachment | None] | None = None):
        self.mailer = mailer
        self.log = email_log
        self._now = now
        self._attachment = attachment

    def notify(self, kind: str, plan: Plan, document: str, step: str, data: dict[str, Any],
               invoice: Invoice | None = None, *, invoices: Sequence[Invoice] = ()) -> str:
        """Send the ``kind`` email about ``document`` once; SENT, ALREADY or NO_RECIPIENT.

        The PDF of ``invoice`` (and of each of ``invoices``: the ones a receipt paid) is attached
        where the document store has one."""
        profile = plan.billing_profile
        identifier = email_id(document, step)
        if profile is None or not profile.email:
            log.warning("no billing_profile.email in the plan: email not sent",
                        extra={"customer_id": plan.customer_id, "email_id": identifier, "kind": kind})
            return NO_RECIPIENT
        if not self.log.claim(identifier, plan.customer_id, self._now()):
            return ALREADY
        attachments: tuple[Attachment, ...] = ()
        if self._attachment is not None:
            found = [self._attachment(item) for item in ([invoice] if invoice is not None else []) + list(invoices)]
            attachments = tuple(item for item in found if item is not None)
        mail = Mail(identifier, kind, plan.customer_id, profile.email, profile.attention or profile.name,
                    {"customer_name": profile.name, "account_number": profile.account_number, **data}, attachments)
        try:
            message_id = self.mailer.send(mail)
        except BaseException:
            self.log.release(identifier)
            raise
        self.log.sent(identifier, message_id, self._now())
        log.info("email sent", extra={"customer_id": plan.customer_id, "email_id": identifier, "kind": kind,
                                      "attachments": len(attachments)})
        return SENT

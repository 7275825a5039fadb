"""The vendor dispute package emailed when a dispute opens (``notify``, alert ``vendor_dispute_opened``).

The reconciliation (``reconciliation.service.dispute_alert``) decides the recipient and publishes
where the package was written; here it becomes one ``vendor_dispute`` mail (template
``WARP_SENDGRID_TEMPLATES["vendor_dispute"]``) with ``letter.pdf`` and ``disputed-records.csv``
attached, read back through the ``ReportReader`` (the folder, or the bucket the reconciliation
wrote to). Sent once per alert: the email log's key is ``<alert id>:package``
(``vendor-dispute:<run id>:package``).

Outcomes: ``sent``; ``already_sent`` (a redelivery, or a send refused earlier); ``unaddressed``
(no recipient in the alert: logged, acknowledged); ``unusable`` (no alert id, vendor or package;
a location the reader may never read); ``refused`` (SendGrid refused the mail for good: logged and
recorded in the email log, never retried). A package that cannot be read now, or a mailer that is
down, raises ``TransientError``: Pub/Sub redelivers; a mail never goes without its package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..charging.errors import TransientCode, TransientError
from ..ports import EmailLog, Mailer, PermanentStoreError, ReportReader
from .notices import VENDOR_DISPUTE, Attachment, Mail, email_id

log = logging.getLogger(__name__)
VENDOR_DISPUTE_OPENED = "vendor_dispute_opened"
SENT, ALREADY, UNADDRESSED, UNUSABLE, REFUSED = "sent", "already_sent", "unaddressed", "unusable", "refused"
PACKAGE_STEP = "package"
# what is attached, in this order: (name in the package, content type)
ATTACHED = (("dispute/letter.pdf", "application/pdf"), ("dispute/disputed-records.csv", "text/csv"))
_DATA_FIELDS = ("run_id", "vendor_id", "period", "reason", "threshold_pct", "disputed_records", "total")


class DisputePackageUnavailable(TransientError):
    """A file of the dispute package could not be read now (absent yet, storage unreachable)."""

    def __init__(self, location: str, detail: str):
        super().__init__(TransientCode.DISPUTE_PACKAGE_UNAVAILABLE, f"{location}: {detail}")


class VendorDisputeMail:
    """Emails a dispute package once per ``vendor_dispute_opened`` alert."""

    def __init__(self, mailer: Mailer, email_log: EmailLog, reports: ReportReader, *, now: Callable[[], str]):
        self.mailer = mailer
        self.log = email_log
        self.reports = reports
        self._now = now

    def handle(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        alert_id, vendor = alert.get("alert_id"), alert.get("vendor_id")
        result: dict[str, Any] = {"type": VENDOR_DISPUTE_OPENED, "alert_id": alert_id, "vendor_id": vendor}
        package = alert.get("package")
        if not (isinstance(alert_id, str) and alert_id and isinstance(vendor, str) and vendor
                and isinstance(package, Mapping) and all(isinstance(package.get(name), str) for name, _ in ATTACHED)):
            log.error("vendor dispute alert not usable: no alert_id, vendor_id or package; acknowledged", extra=result)
            return {**result, "outcome": UNUSABLE}
        given = alert.get("email")
        email: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        address = email.get("address")
        if not isinstance(address, str) or "@" not in address:
            # decided (and logged) when the alert was built: send_to operator with no operator email
            log.error("vendor dispute package not emailed: the alert has no recipient (WARP_RECON_OPERATOR_EMAIL "
                      "unset when it was reconciled); acknowledged", extra={**result, "send_to": email.get("send_to")})
            return {**result, "outcome": UNADDRESSED}
        identifier = email_id(alert_id, PACKAGE_STEP)
        result.update({"email_id": identifier, "to": address})
        if self.log.status(identifier) in ("sent", "refused"):
            return {**result, "outcome": ALREADY}
        try:
            attachments = tuple(self._attachment(alert_id, package[name], content_type)
                                for name, content_type in ATTACHED)
        except PermanentStoreError as exc:
            log.error("vendor dispute package not readable from where the alert says; acknowledged",
                      extra={**result, "detail": str(exc)})
            return {**result, "outcome": UNUSABLE}
        if not self.log.claim(identifier, vendor, self._now()):
            return {**result, "outcome": ALREADY}
        data = {key: alert[key] for key in _DATA_FIELDS if key in alert}
        to_name = vendor if email.get("send_to") == "vendor" else "Billing operations"
        mail = Mail(identifier, VENDOR_DISPUTE, vendor, address, to_name,
                    {**data, "send_to": email.get("send_to")}, attachments)
        try:
            message_id = self.mailer.send(mail)
        except PermanentStoreError as exc:
            self.log.refused(identifier, str(exc), self._now())
            log.error("vendor dispute package refused by the mailer; recorded, not retried",
                      extra={**result, "detail": str(exc)})
            return {**result, "outcome": REFUSED, "detail": str(exc)}
        except BaseException:
            self.log.release(identifier)
            raise
        self.log.sent(identifier, message_id, self._now())
        log.info("vendor dispute package emailed", extra={**result, "attachments": len(attachments)})
        return {**result, "outcome": SENT}

    def _attachment(self, alert_id: str, location: str, content_type: str) -> Attachment:
        try:
            data = self.reports.read(location)
        except PermanentStoreError:
            raise
        except Exception as exc:
            raise DisputePackageUnavailable(location, f"{type(exc).__name__}: {exc}") from exc
        run = alert_id.split(":", 1)[-1]
        return Attachment(f"{run}-{location.rsplit('/', 1)[-1]}", content_type, data)

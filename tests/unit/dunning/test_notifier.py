"""Emails once per (document, step): the log is claimed first, released when the send fails."""

import pytest

from warp_billing.adapters.sendgrid import SendGridMailer
from warp_billing.adapters.sqlite_dunning import SqliteEmailLog
from warp_billing.charging.errors import TransientCode, TransientError
from warp_billing.dunning.notices import Attachment, Mail
from warp_billing.dunning.notifier import ALREADY, NO_RECIPIENT, SENT, Notifier
from warp_billing.plan import parse_plan
from warp_billing.ports import PermanentStoreError

PLAN = parse_plan({"customer_id": "ACME", "timezone": "UTC",
                   "billing_profile": {"name": "Acme", "address": ["1 Main"], "account_number": "A-1",
                                       "email": "ap@acme.example"}})


class Mailer:
    def __init__(self, *failures):
        self.failures = list(failures)
        self.sent = []

    def send(self, mail):
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(mail)
        return f"m{len(self.sent)}"


def test_an_email_is_sent_once_per_document_and_step(tmp_path):
    mailer = Mailer()
    notifier = Notifier(mailer, SqliteEmailLog(tmp_path / "log.sqlite"), now=lambda: "2026-12-17T12:00:00+00:00")
    assert notifier.notify("remind", PLAN, "ACME-INV-000001", "remind", {"x": 1}) == SENT
    assert notifier.notify("remind", PLAN, "ACME-INV-000001", "remind", {"x": 1}) == ALREADY
    assert notifier.notify("warn", PLAN, "ACME-INV-000001", "warn", {}) == SENT
    assert [mail.email_id for mail in mailer.sent] == ["ACME-INV-000001:remind", "ACME-INV-000001:warn"]


def test_a_failed_send_releases_the_claim_so_a_retry_sends_it(tmp_path):
    mailer = Mailer(TransientError(TransientCode.ALERTS_UNAVAILABLE, "SendGrid down"))
    log = SqliteEmailLog(tmp_path / "log.sqlite")
    notifier = Notifier(mailer, log, now=lambda: "2026-12-17T12:00:00+00:00")
    with pytest.raises(TransientError):
        notifier.notify("remind", PLAN, "INV-1", "remind", {})
    assert log.status("INV-1:remind") is None
    assert notifier.notify("remind", PLAN, "INV-1", "remind", {}) == SENT
    assert log.status("INV-1:remind") == "sent"


def test_a_stale_claim_may_be_taken_again_but_a_fresh_one_not(tmp_path):
    log = SqliteEmailLog(tmp_path / "log.sqlite", stale_claim_s=600)
    assert log.claim("X:remind", "ACME", "2026-12-17T12:00:00+00:00")
    assert not log.claim("X:remind", "ACME", "2026-12-17T12:05:00+00:00")
    assert log.claim("X:remind", "ACME", "2026-12-17T12:11:00+00:00")


def test_no_billing_email_is_a_named_outcome_not_an_error(tmp_path):
    plan = parse_plan({"customer_id": "B", "timezone": "UTC"})
    notifier = Notifier(Mailer(), SqliteEmailLog(tmp_path / "log.sqlite"), now=lambda: "t")
    assert notifier.notify("remind", plan, "B-INV-1", "remind", {}) == NO_RECIPIENT


def test_the_sendgrid_body_uses_the_dynamic_template_sandbox_mode_and_base64_attachments():
    mailer = SendGridMailer("http://127.0.0.1:1", lambda: "k", sender="b@warp.example", sender_name="WARP",
                            templates={"remind": "d-123"}, sandbox=True)
    mail = Mail("INV-1:remind", "remind", "ACME", "ap@acme.example", "Acme", {"balance_due": "10.00"},
                (Attachment("INV-1.pdf", "application/pdf", b"%PDF"),))
    body = mailer.body(mail)
    assert body["template_id"] == "d-123"
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["personalizations"][0]["dynamic_template_data"] == {"balance_due": "10.00"}
    assert body["personalizations"][0]["custom_args"]["warp_email_id"] == "INV-1:remind"
    assert body["attachments"] == [{"content": "JVBERg==", "filename": "INV-1.pdf", "type": "application/pdf",
                                    "disposition": "attachment"}]
    with pytest.raises(PermanentStoreError, match="no SendGrid template for 'warn'"):
        mailer.body(Mail("INV-1:warn", "warn", "ACME", "a@b.c", "A", {}))

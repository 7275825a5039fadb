"""SendGrid v3 ``POST /v3/mail/send`` with dynamic templates (the ``Mailer`` port).

Body: ``personalizations[{to[{email,name}], dynamic_template_data, custom_args}]``, ``from``,
``template_id`` (``d-...``, from ``WARP_SENDGRID_TEMPLATES`` by the mail's kind), ``attachments``
(base64 content, filename, type, disposition), ``mail_settings.sandbox_mode.enable`` when
``WARP_SENDGRID_SANDBOX`` is on (tests and the local stack: SendGrid validates and sends nothing).
202 (200 in sandbox mode) is success and its ``X-Message-Id`` the message id; 429 and 5xx are
transient (retried); any other 4xx is the request's fault: ``PermanentStoreError`` with SendGrid's
``errors[].message`` (retrying would not help). A kind without a template is refused by name.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import requests

from ..charging.errors import TransientCode, TransientError
from ..dunning.notices import Mail
from ..ports import PermanentStoreError


class MailUnavailable(TransientError):
    def __init__(self, detail: str):
        super().__init__(TransientCode.ALERTS_UNAVAILABLE, f"SendGrid: {detail}")


class SendGridMailer:
    """``Mailer`` on SendGrid's v3 API (one lazily built ``requests.Session``)."""

    def __init__(self, base_url: str, api_key: Callable[[], str], *, sender: str, sender_name: str,
                 templates: Mapping[str, str], sandbox: bool, timeout_s: float = 10.0):
        self.url = base_url.rstrip("/") + "/v3/mail/send"
        self._api_key = api_key
        self.sender = sender
        self.sender_name = sender_name
        self.templates = dict(templates)
        self.sandbox = sandbox
        self.timeout_s = timeout_s
        self._session: requests.Session | None = None

    def body(self, mail: Mail) -> dict[str, Any]:
        template = self.templates.get(mail.kind)
        if not template:
            raise PermanentStoreError(f"no SendGrid template for {mail.kind!r} (WARP_SENDGRID_TEMPLATES)")
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": mail.to, "name": mail.to_name}],
                                  "dynamic_template_data": mail.data,
                                  "custom_args": {"warp_email_id": mail.email_id,
                                                  "warp_customer_id": mail.customer_id}}],
            "from": {"email": self.sender, "name": self.sender_name},
            "template_id": template,
        }
        if mail.attachments:
            body["attachments"] = [{"content": base64.b64encode(item.data).decode("ascii"), "filename": item.filename,
                                    "type": item.content_type, "disposition": "attachment"}
                                   for item in mail.attachments]
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    def send(self, mail: Mail) -> str:
        body = self.body(mail)
        if self._session is None:
            self._session = requests.Session()
        try:
            response = self._session.post(self.url, json=body, timeout=self.timeout_s,
                                          headers={"Authorization": f"Bearer {self._api_key()}"})
        except requests.RequestException as exc:
            raise MailUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (200, 202):
            return response.headers.get("X-Message-Id", "")
        if response.status_code == 429 or response.status_code >= 500:
            raise MailUnavailable(f"HTTP {response.status_code} for {mail.email_id}")
        raise PermanentStoreError(f"SendGrid refused {mail.email_id}: HTTP {response.status_code} {_errors(response)}")


def _errors(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(f"{item.get('field') or ''}: {item.get('message')}" for item in errors)[:500]
    except ValueError:
        return response.text[:200]

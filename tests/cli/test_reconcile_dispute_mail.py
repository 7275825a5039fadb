"""A dispute opened by `warp reconcile` is emailed by `notify`, package attached, once per alert.

Real components end to end on one machine: the CLI (DuckDB, WeasyPrint, the folder sink), the
alert it publishes delivered as a Pub/Sub CloudEvent to functions/notify, the SQLite email log
and the SendGrid stand-in (tools/sendgrid_standin.py) behind the real SendGrid adapter.
"""

from __future__ import annotations

import base64
import csv
import importlib.util
import io
import os
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from cloudevents.http import CloudEvent
from tests.fakes import FakeAlertPublisher, FakeClock
from tests.recon_builders import VendorFileBuilder, mapping_yaml, ours_for, rated_month
from tools.sendgrid_standin import SendGridStandIn

from warp_billing import bootstrap
from warp_billing.adapters.sqlite_dunning import SqliteEmailLog
from warp_billing.charging.errors import TransientCode, TransientError
from warp_billing.cli import main as warp
from warp_billing.dunning.vendor_disputes import ALREADY, REFUSED, SENT, UNADDRESSED
from warp_billing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OPERATOR, VENDOR = "ops@warp.example", "billing@v2.example"


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    folder = tmp_path_factory.mktemp("month")
    return folder, rated_month(folder)


@pytest.fixture(scope="module")
def notify():
    spec = importlib.util.spec_from_file_location("function_notify", ROOT / "functions" / "notify" / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.notify


class Stage:
    """One instance's wiring: the CLI publishes into ``alerts``, notify mails through the stand-in."""

    def __init__(self, tmp_path: Path, sendgrid: SendGridStandIn, **settings):
        self.tmp_path = tmp_path
        self.alerts = FakeAlertPublisher()
        (tmp_path / "plans").mkdir(exist_ok=True)
        wiring = {"data_dir": tmp_path / "data", "plans_dir": tmp_path / "plans", "register_dir": tmp_path / "register",
                  "documents_dir": tmp_path / "documents", "hubspot_sync": False,
                  "sendgrid_url": f"http://127.0.0.1:{sendgrid.server_address[1]}", "sendgrid_api_key": "SG.k",
                  "sendgrid_sandbox": True, "sendgrid_templates": {"vendor_dispute": "d-vendor-dispute"}}
        self.settings = Settings(**{**wiring, **settings})
        bootstrap.reset(bootstrap.Container(self.settings, alert_publisher=self.alerts, clock=FakeClock()))

    def email_status(self, identifier: str) -> str | None:
        return SqliteEmailLog(self.tmp_path / "data" / "dunning.sqlite").status(identifier)


@pytest.fixture
def stage(tmp_path, sendgrid, monkeypatch):
    for name in [name for name in os.environ if name.startswith("WARP_")]:
        monkeypatch.delenv(name)
    made = []

    def make(**settings) -> Stage:
        made.append(Stage(tmp_path, sendgrid, **settings))
        return made[-1]

    yield make
    bootstrap.reset()


def reconcile_over_five_percent(month, tmp_path: Path, dispute: str = "", *extra: str):
    """V2 billing on 60/60 increments against our per-second rating: its cost is far over 5 %."""
    folder, rated = month
    builder = VendorFileBuilder(ours_for(rated, "V2"))
    builder.inject_increments((60, 60))
    builder.write(tmp_path / "v2.tsv.gz", layout="local")
    mapping = tmp_path / "V2.yaml"
    mapping.write_text(mapping_yaml("V2", "local", dispute))
    args = ["reconcile", "--vendor", "V2", "--period", "2026-06", "--mapping", str(mapping),
            "--cdrs", str(tmp_path / "v2.tsv.gz"), "--rated", str(folder / "rated.jsonl"),
            "--out-dir", str(tmp_path / "out"), *extra]
    return CliRunner().invoke(warp, args, catch_exceptions=False)


def pubsub_event(alert: dict, message_id: str = "m-1") -> CloudEvent:
    message = {"data": base64.b64encode(orjson.dumps(alert)).decode(), "attributes": {}, "messageId": message_id,
               "publishTime": "2026-12-02T12:00:00.000Z"}
    return CloudEvent({"id": message_id, "type": "google.cloud.pubsub.topic.v1.messagePublished",
                       "source": "//pubsub.googleapis.com/projects/warp-local/topics/billing-alerts",
                       "specversion": "1.0"}, {"subscription": "projects/warp-local/subscriptions/notify",
                                               "message": message})


def attachments(mail: dict) -> dict[str, bytes]:
    return {item["filename"]: base64.b64decode(item["content"]) for item in mail["body"]["attachments"]}


def test_a_dispute_is_emailed_to_the_operator_by_default_with_the_letter_and_the_disputed_records(
        month, tmp_path, stage, sendgrid, notify):
    staged = stage(recon_operator_email=OPERATOR)
    result = reconcile_over_five_percent(month, tmp_path)
    assert result.exit_code == 0, result.output
    [alert] = staged.alerts.published
    assert alert["type"] == "vendor_dispute_opened" and alert["alert_id"] == "vendor-dispute:V2-2026-06"
    assert alert["email"] == {"send_to": "operator", "address": OPERATOR, "status": "to_send"}
    assert "cost (their CDRs)" in alert["reason"] and alert["disputed_records"] > 0
    assert alert["total"]["cost_theirs"] != alert["total"]["cost_ours"]

    notify(pubsub_event(alert))

    [mail] = sendgrid.mails
    body = mail["body"]
    personalization = body["personalizations"][0]
    assert personalization["to"][0]["email"] == OPERATOR
    assert body["template_id"] == "d-vendor-dispute"
    assert personalization["custom_args"]["warp_email_id"] == "vendor-dispute:V2-2026-06:package"
    data = personalization["dynamic_template_data"]
    assert (data["vendor_id"], data["period"], data["run_id"]) == ("V2", "2026-06", "V2-2026-06")
    assert data["reason"] == alert["reason"] and data["disputed_records"] == alert["disputed_records"]
    assert data["total"]["cost_variance_pct"] == alert["total"]["cost_variance_pct"] and data["threshold_pct"] == "5"
    files = attachments(mail)
    assert sorted(files) == ["V2-2026-06-disputed-records.csv", "V2-2026-06-letter.pdf"]
    assert files["V2-2026-06-letter.pdf"].startswith(b"%PDF")
    assert files["V2-2026-06-letter.pdf"] == (tmp_path / "out" / "dispute" / "letter.pdf").read_bytes()
    rows = list(csv.DictReader(io.StringIO(files["V2-2026-06-disputed-records.csv"].decode("utf-8"))))
    assert len(rows) == alert["disputed_records"]
    assert all(row["class"] == "mismatch" and row["cause_hint"] == "increment:60/60" for row in rows)
    assert staged.email_status("vendor-dispute:V2-2026-06:package") == "sent"


def test_the_package_goes_to_the_vendor_when_the_mapping_says_so(month, tmp_path, stage, sendgrid, notify):
    staged = stage(recon_operator_email=OPERATOR)
    dispute = f'dispute: {{threshold_pct: "5", send_to: vendor, vendor_email: {VENDOR}}}\n'
    assert reconcile_over_five_percent(month, tmp_path, dispute).exit_code == 0
    [alert] = staged.alerts.published
    assert alert["email"] == {"send_to": "vendor", "address": VENDOR, "status": "to_send"}
    notify(pubsub_event(alert))
    [mail] = sendgrid.mails
    assert mail["body"]["personalizations"][0]["to"] == [{"email": VENDOR, "name": "V2"}]
    assert len(mail["body"]["attachments"]) == 2


def test_a_redelivered_alert_sends_nothing_twice(month, tmp_path, stage, sendgrid):
    staged = stage(recon_operator_email=OPERATOR)
    assert reconcile_over_five_percent(month, tmp_path).exit_code == 0
    [alert] = staged.alerts.published
    handler = bootstrap.alert_handler()
    first = handler.handle(alert, None)  # type: ignore[arg-type]  (the dispute mail reads no date)
    again = handler.handle(alert, None)  # type: ignore[arg-type]
    assert (first["outcome"], again["outcome"]) == (SENT, ALREADY)
    assert len(sendgrid.mails) == 1


def test_send_to_vendor_without_a_vendor_email_is_refused_when_the_mapping_is_read(month, tmp_path, stage):
    staged = stage(recon_operator_email=OPERATOR)
    result = reconcile_over_five_percent(month, tmp_path, 'dispute: {threshold_pct: "5", send_to: vendor}\n')
    assert result.exit_code == 1
    assert "dispute" in result.output and "send_to: vendor needs vendor_email" in result.output
    assert staged.alerts.published == [] and not (tmp_path / "out").exists()


def test_no_operator_email_opens_the_dispute_unaddressed_and_notify_sends_nothing(
        month, tmp_path, stage, sendgrid, notify):
    staged = stage()
    result = reconcile_over_five_percent(month, tmp_path)
    assert result.exit_code == 0 and "will not be emailed" in result.output
    [alert] = staged.alerts.published
    assert alert["email"] == {"send_to": "operator", "address": None, "status": "unaddressed"}
    assert bootstrap.alert_handler().handle(alert, None)["outcome"] == UNADDRESSED  # type: ignore[arg-type]
    notify(pubsub_event(alert))   # acknowledged: returns
    assert sendgrid.mails == []


def test_the_operator_email_option_wins_over_the_setting(month, tmp_path, stage):
    staged = stage(recon_operator_email=OPERATOR)
    assert reconcile_over_five_percent(month, tmp_path, "", "--operator-email", "desk@warp.example").exit_code == 0
    assert staged.alerts.published[0]["email"]["address"] == "desk@warp.example"


def test_a_package_that_cannot_be_read_is_retried_never_sent_without_it(month, tmp_path, stage, sendgrid, notify):
    staged = stage(recon_operator_email=OPERATOR)
    assert reconcile_over_five_percent(month, tmp_path).exit_code == 0
    [alert] = staged.alerts.published
    letter = tmp_path / "out" / "dispute" / "letter.pdf"
    kept = letter.read_bytes()
    letter.unlink()
    with pytest.raises(TransientError) as raised:
        notify(pubsub_event(alert))
    assert raised.value.code == TransientCode.DISPUTE_PACKAGE_UNAVAILABLE and str(letter) in raised.value.detail
    assert sendgrid.mails == [] and staged.email_status("vendor-dispute:V2-2026-06:package") is None
    letter.write_bytes(kept)                    # the redelivery finds it
    notify(pubsub_event(alert))
    assert len(sendgrid.mails) == 1 and len(sendgrid.mails[0]["body"]["attachments"]) == 2


def test_sendgrid_down_is_retried_and_a_refused_mail_is_recorded_not_retried(month, tmp_path, stage, sendgrid):
    staged = stage(recon_operator_email=OPERATOR, sendgrid_url="http://127.0.0.1:9")   # nothing listens
    assert reconcile_over_five_percent(month, tmp_path).exit_code == 0
    [alert] = staged.alerts.published
    with pytest.raises(TransientError):
        bootstrap.alert_handler().handle(alert, None)  # type: ignore[arg-type]
    assert staged.email_status("vendor-dispute:V2-2026-06:package") is None      # released: a redelivery sends

    staged = stage(recon_operator_email=OPERATOR, sendgrid_templates={})           # no vendor_dispute template
    handler = bootstrap.alert_handler()
    refused = handler.handle(alert, None)  # type: ignore[arg-type]
    assert refused["outcome"] == REFUSED and "no SendGrid template for 'vendor_dispute'" in refused["detail"]
    assert staged.email_status("vendor-dispute:V2-2026-06:package") == "refused"
    assert handler.handle(alert, None)["outcome"] == ALREADY  # type: ignore[arg-type]
    assert sendgrid.mails == []

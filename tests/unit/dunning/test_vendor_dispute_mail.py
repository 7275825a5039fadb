"""The dispute package mail's edges that need no reconciliation run: where a package may be read from,
and an alert that names no package. (The whole path, CLI to SendGrid stand-in: tests/cli.)"""

from __future__ import annotations

import pytest

from warp_billing.adapters.report_locations import ReportLocationRefused, ReportLocations
from warp_billing.adapters.sqlite_dunning import SqliteEmailLog
from warp_billing.dunning.vendor_disputes import SENT, UNUSABLE, VendorDisputeMail


class Bucket:
    """A ``VendorFileSource`` of one bucket (object name -> bytes)."""

    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def read(self, name: str) -> bytes:
        if name not in self.objects:
            raise FileNotFoundError(name)
        return self.objects[name]


class Mailer:
    def __init__(self):
        self.sent = []

    def send(self, mail):
        self.sent.append(mail)
        return "m1"


PACKAGE = {"dispute/letter.pdf": b"%PDF-1.7 letter", "dispute/disputed-records.csv": b"class\nmismatch\n"}


def alert(package: dict[str, str]) -> dict:
    return {"alert_id": "vendor-dispute:V2-2026-06", "type": "vendor_dispute_opened", "vendor_id": "V2",
            "period": "2026-06", "run_id": "V2-2026-06", "package": package,
            "email": {"send_to": "operator", "address": "ops@warp.example", "status": "to_send"}}


def locations(buckets: dict[str, Bucket]) -> ReportLocations:
    return ReportLocations(buckets.__getitem__, buckets)


def test_an_object_of_the_reconciliation_bucket_is_read_and_another_bucket_is_refused():
    reader = locations({"recon": Bucket({"reports/V2/dispute/letter.pdf": b"%PDF"})})
    assert reader.read("gs://recon/reports/V2/dispute/letter.pdf") == b"%PDF"
    with pytest.raises(ReportLocationRefused, match="gs://elsewhere/x: not an object of recon"):
        reader.read("gs://elsewhere/x")
    with pytest.raises(ReportLocationRefused):
        reader.read("gs://recon")
    with pytest.raises(FileNotFoundError):
        reader.read("gs://recon/reports/V2/dispute/absent.pdf")


def test_the_package_is_read_from_the_bucket_and_a_foreign_location_is_acknowledged_unsent(tmp_path):
    objects = {f"reports/V2/{name}": data for name, data in PACKAGE.items()}
    mailer = Mailer()
    mail = VendorDisputeMail(mailer, SqliteEmailLog(tmp_path / "log.sqlite"), locations({"recon": Bucket(objects)}),
                             now=lambda: "2026-12-02T12:00:00+00:00")
    foreign = alert({name: f"gs://elsewhere/reports/V2/{name}" for name in PACKAGE})
    assert mail.handle(foreign)["outcome"] == UNUSABLE
    assert mail.handle(alert({name: f"gs://recon/reports/V2/{name}" for name in PACKAGE}))["outcome"] == SENT
    [sent] = mailer.sent
    assert {item.filename: item.data for item in sent.attachments} == {
        "V2-2026-06-letter.pdf": PACKAGE["dispute/letter.pdf"],
        "V2-2026-06-disputed-records.csv": PACKAGE["dispute/disputed-records.csv"]}


def test_an_alert_without_its_package_is_unusable_not_sent_bare(tmp_path):
    mailer = Mailer()
    mail = VendorDisputeMail(mailer, SqliteEmailLog(tmp_path / "log.sqlite"), locations({}),
                             now=lambda: "2026-12-02T12:00:00+00:00")
    assert mail.handle(alert({"dispute/letter.pdf": "/nowhere/letter.pdf"}))["outcome"] == UNUSABLE
    assert mailer.sent == []

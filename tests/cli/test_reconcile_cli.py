"""`warp reconcile` on vendor files made from our own rated events with injected differences.

Every injected difference must come back with its class and cause hint, and every call that
was left alone must be ``exact``.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.fakes import FakeAlertPublisher
from tests.recon_builders import VendorFileBuilder, mapping_yaml, ours_for, rated_month

from warp_billing import bootstrap
from warp_billing.cli import main as warp
from warp_billing.settings import Settings


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    folder = tmp_path_factory.mktemp("month")
    rated = rated_month(folder)
    return folder, rated


@pytest.fixture
def alerts(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("WARP_"):
            monkeypatch.delenv(name)
    recording = FakeAlertPublisher()
    bootstrap.reset(bootstrap.Container(Settings(), alert_publisher=recording))
    yield recording
    bootstrap.reset()


def reconcile(folder: Path, vendor: str, cdrs: list[Path], mapping: str, out: Path, *extra: str):
    (folder / f"{vendor}-{out.name}.yaml").write_text(mapping)
    args = [
        "reconcile",
        "--vendor",
        vendor,
        "--period",
        "2026-06",
        "--mapping",
        str(folder / f"{vendor}-{out.name}.yaml"),
        *[a for c in cdrs for a in ("--cdrs", str(c))],
        "--rated",
        str(folder / "rated.jsonl"),
        "--out-dir",
        str(out),
        *extra,
    ]
    return CliRunner().invoke(warp, args, catch_exceptions=False)


def items(out: Path) -> list[dict]:
    with open(out / "items.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def check_every_item(rows: list[dict], builder: VendorFileBuilder, refs: list[str]) -> None:
    """Each item has the class and hint its injection predicts; untouched calls are exact."""
    seen_ours, seen_theirs = set(), set()
    for row in rows:
        if row["event_id"]:
            expected = builder.injected.ours.get(row["event_id"], ("exact", ""))
            seen_ours.add(row["event_id"])
        else:
            line = int(row["vendor_record"].rsplit(":", 1)[1])
            ref = refs[line - 2]
            expected = builder.injected.theirs[ref]
            seen_theirs.add(ref)
        assert row["class"] == expected[0], (dict(row), expected)
        assert row["cause_hint"].startswith(expected[1]), (dict(row), expected)
        if not expected[1]:
            assert row["cause_hint"] == "", row
    assert set(builder.injected.ours) <= seen_ours, set(builder.injected.ours) - seen_ours
    assert set(builder.injected.theirs) <= seen_theirs


def test_mixed_differences_are_each_found_with_class_and_hint(month, alerts, tmp_path):
    folder, rated = month
    builder = VendorFileBuilder(ours_for(rated, "V1"))
    builder.inject_longer(0.05, 3)
    builder.drop(0.01)
    builder.add_unknown(10)
    builder.duplicate(0.005)
    builder.rate_change("intrastate", day=15)
    refs = builder.write(tmp_path / "v1.csv")
    result = reconcile(folder, "V1", [tmp_path / "v1.csv"], mapping_yaml("V1"), tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = items(tmp_path / "out")
    check_every_item(rows, builder, refs)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["vendor_only"] == 10
    assert summary["counts"]["vendor_duplicate"] == sum(
        1 for c, _ in builder.injected.theirs.values() if c == "vendor_duplicate"
    )
    assert {h["hint"] for h in summary["hints"]} >= {"answer_time:+3s", "rate_change:2026-06-15"}
    assert sum(summary["counts"].values()) == len(rows)


def test_a_vendor_on_60_60_increments_is_named_and_opens_a_dispute(month, alerts, tmp_path):
    folder, rated = month
    builder = VendorFileBuilder(ours_for(rated, "V2"))
    builder.inject_increments((60, 60))
    refs = builder.write(tmp_path / "v2.tsv.gz", layout="local")
    result = reconcile(folder, "V2", [tmp_path / "v2.tsv.gz"], mapping_yaml("V2", "local"), tmp_path / "out")
    assert result.exit_code == 0, result.output
    check_every_item(items(tmp_path / "out"), builder, refs)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert any(
        h["hint"] == "increment:60/60" and "6/6" in h["explanation"] or h["hint"] == "increment:60/60"
        for h in summary["hints"]
    )
    assert summary["dispute"] is True and "cost (their CDRs)" in summary["dispute_reason"]
    package = tmp_path / "out" / "dispute"
    assert (package / "letter.pdf").read_bytes().startswith(b"%PDF")
    assert "60/60" in (package / "letter.html").read_text()
    with open(package / "disputed-records.csv", newline="") as handle:
        disputed = list(csv.DictReader(handle))
    assert disputed and all(row["class"] == "mismatch" and row["cause_hint"] == "increment:60/60" for row in disputed)
    assert "<svg" in (tmp_path / "out" / "report.html").read_text()
    assert [a["type"] for a in alerts.published] == ["vendor_dispute_opened"]
    assert alerts.published[0]["email"]["send_to"] == "operator"


def test_a_vendor_one_hour_off_is_a_time_offset_not_missing_calls(month, alerts, tmp_path):
    folder, rated = month
    builder = VendorFileBuilder(ours_for(rated, "V1"))
    builder.inject_offset(3600)
    refs = builder.write(tmp_path / "v1.csv", layout="minutes")
    result = reconcile(folder, "V1", [tmp_path / "v1.csv"], mapping_yaml("V1", "minutes"), tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = [row for row in items(tmp_path / "out")]
    # calls pushed out of June by the hour are refused OUT_OF_PERIOD, and their our side is still ours_only
    rejects = list(csv.DictReader(open(tmp_path / "out" / "rejects.csv")))
    late = {refs[int(r["source_line"]) - 2] for r in rejects}
    assert all(r["reason"] == "OUT_OF_PERIOD" for r in rejects)
    for ref in late:
        builder.injected.theirs.pop(ref, None)
        builder.injected.ours[ref] = ("ours_only", "")
    check_every_item(rows, builder, refs)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {h["hint"] for h in summary["hints"]} == {"time_offset:+3600s"}


def test_variance_is_zero_and_no_dispute_when_the_vendor_agrees(month, alerts, tmp_path):
    folder, rated = month
    ours = ours_for(rated, "V1")
    builder = VendorFileBuilder(ours)
    refs = builder.write(tmp_path / "v1.csv")
    invoice = tmp_path / "invoice.csv"
    invoice.write_text("destination,minutes,amount\nall,1,1\n")
    result = reconcile(folder, "V1", [tmp_path / "v1.csv"], mapping_yaml("V1"), tmp_path / "out")
    assert result.exit_code == 0, result.output
    check_every_item(items(tmp_path / "out"), builder, refs)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["dispute"] is False and summary["total"]["cost_variance_pct"] == "0.00"
    assert summary["counts"]["exact"] == len(ours)
    assert not (tmp_path / "out" / "dispute").exists()
    assert alerts.published == []


def test_bad_rows_are_kept_aside_with_a_reason_and_counted(month, alerts, tmp_path):
    folder, rated = month
    builder = VendorFileBuilder(ours_for(rated, "V1")[:20])
    builder.write(tmp_path / "v1.csv")
    text = (tmp_path / "v1.csv").read_text().splitlines()
    text += [
        ",not a time,+12125550000,+13125550000,10,0.01,0.001,USD,INTER,US-NY,bad1",
        ",2026-06-02 10:00:00,+12125550000,+13125550000,ten,0.01,0.001,USD,INTER,US-NY,bad2",
        ",2026-06-02 10:00:00,+12125550000,+13125550000,10,0.01,0.001,EUR,INTER,US-NY,bad3",
        ",2026-06-02 10:00:00,+12125550000,,10,0.01,0.001,USD,INTER,US-NY,bad4",
        # a cost of a billion or more is not a call's cost (money is DECIMAL(18, 9) in the engine)
        ",2026-06-02 10:00:00,+12125550000,+13125550000,10,0.01,1000000000.5,USD,INTER,US-NY,bad5",
    ]
    (tmp_path / "v1.csv").write_text("\n".join(text) + "\n")
    result = reconcile(folder, "V1", [tmp_path / "v1.csv"], mapping_yaml("V1"), tmp_path / "out")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["vendor_rows"] == {
        "read": 25,
        "loaded": 20,
        "rejected": {"BAD_COST": 1, "BAD_CURRENCY": 1, "BAD_DURATION": 1, "BAD_NUMBER": 1, "BAD_START_TIME": 1},
    }


def test_a_misspelt_mapping_key_is_named(month, alerts, tmp_path):
    folder, _ = month
    (tmp_path / "v.csv").write_text("a\n")
    result = reconcile(
        folder, "V1", [tmp_path / "v.csv"], mapping_yaml("V1", extra="tolerance: {start_s: 5}\n"), tmp_path / "out"
    )
    assert result.exit_code == 1
    assert "tolerance: unknown key" in result.output


def test_a_mapped_column_missing_from_the_file_is_named(month, alerts, tmp_path):
    folder, _ = month
    (tmp_path / "v.csv").write_text("CallID,Start\nx,2026-06-01 00:00:00\n")
    result = reconcile(folder, "V1", [tmp_path / "v.csv"], mapping_yaml("V1"), tmp_path / "out")
    assert result.exit_code == 1
    assert "ANI" in result.output and "not in the file" in result.output


def test_a_non_utf8_file_is_a_clear_error_and_latin1_reads_it(month, alerts, tmp_path):
    folder, rated = month
    builder = VendorFileBuilder(ours_for(rated, "V1")[:5])
    builder.write(tmp_path / "v.csv")
    data = (tmp_path / "v.csv").read_bytes().replace(b"USD,INTER,", b"USD,INTER,\xe9", 1)
    (tmp_path / "v.csv").write_bytes(data)
    result = reconcile(folder, "V1", [tmp_path / "v.csv"], mapping_yaml("V1"), tmp_path / "out")
    assert result.exit_code == 1 and "v.csv" in result.output
    result = reconcile(
        folder, "V1", [tmp_path / "v.csv"], mapping_yaml("V1", extra="encoding: latin-1\n"), tmp_path / "out2"
    )
    assert result.exit_code == 0, result.output


def test_out_dir_that_is_an_input_file_is_refused(month, alerts, tmp_path):
    folder, rated = month
    VendorFileBuilder(ours_for(rated, "V1")[:5]).write(tmp_path / "v.csv")
    result = reconcile(folder, "V1", [tmp_path / "v.csv"], mapping_yaml("V1"), tmp_path / "v.csv")
    assert result.exit_code == 1 and "is one of the input files" in result.output


def test_the_same_file_twice_is_billed_twice_so_every_second_copy_is_a_duplicate(month, alerts, tmp_path):
    folder, rated = month
    ours = ours_for(rated, "V1")[:30]
    VendorFileBuilder(ours).write(tmp_path / "v.csv")
    result = reconcile(folder, "V1", [tmp_path / "v.csv", tmp_path / "v.csv"], mapping_yaml("V1"), tmp_path / "out")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["vendor_duplicate"] == 30


def test_a_rerun_replaces_its_outputs(month, alerts, tmp_path):
    folder, rated = month
    VendorFileBuilder(ours_for(rated, "V1")).write(tmp_path / "v.csv")
    for _ in range(2):
        result = reconcile(folder, "V1", [tmp_path / "v.csv"], mapping_yaml("V1"), tmp_path / "out")
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "items.csv",
        "rejects.csv",
        "report.html",
        "summary.json",
    ]
    assert gzip  # gzip input is covered by the 60/60 test

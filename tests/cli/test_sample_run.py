"""The `make run` path on a small scale: sample generation, then rating it through the console script."""

import json
import subprocess
import sys
from pathlib import Path

WARP = Path(sys.executable).with_name("warp")


def test_sample_day_rates_with_every_jurisdiction_product_and_reject_kind(tmp_path):
    made = subprocess.run([str(WARP), "sample", "--out", str(tmp_path), "--events", "6000", "--us-rows", "2000",
                           "--international-rows", "300"], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    plans = [str(tmp_path / f"{name}-plan.yaml") for name in ("acme", "beta", "gamma")]
    args = [str(WARP), "rate"]
    for plan in plans:
        args += ["--plan", plan]
    args += ["--in", str(tmp_path / "usage.jsonl"), "--out", str(tmp_path / "rated.jsonl"),
             "--rejects", str(tmp_path / "rejects.jsonl"), "--summary", str(tmp_path / "summary.json")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["accepted"] == 6000 and summary["balanced"]
    groups = {(total["product"], total["group"]) for total in summary["totals"]}
    assert {("voice", j) for j in ("interstate", "intrastate", "indeterminate", "international")} <= groups
    assert {("sms", "outbound"), ("sms", "inbound"), ("mms", "outbound"), ("api_query", "lrn"), ("api_query",
                                                                                                 "cnam")} <= groups
    assert {"MALFORMED_JSON", "BAD_FIELD", "DUPLICATE_EVENT", "UNKNOWN_KIND"} <= set(summary["rejected_by_reason"])
    customers = {json.loads(line)["customer_id"] for line in (tmp_path / "rated.jsonl").read_text().splitlines()}
    assert {"ACME", "BETA", "GAMMA"} <= customers
    rated_lines = (tmp_path / "rated.jsonl").read_text().splitlines()
    assert len(rated_lines) == 6000


def test_sample_is_reproducible_from_its_seed(tmp_path):
    for folder in ("a", "b"):
        subprocess.run([str(WARP), "sample", "--out", str(tmp_path / folder), "--events", "500", "--us-rows", "500",
                        "--international-rows", "100"], check=True, capture_output=True, timeout=300)
    assert (tmp_path / "a" / "usage.jsonl").read_bytes() == (tmp_path / "b" / "usage.jsonl").read_bytes()
    assert (tmp_path / "a" / "acme-voice.csv").read_bytes() == (tmp_path / "b" / "acme-voice.csv").read_bytes()

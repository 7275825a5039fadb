"""`warp close` on the embedded adapters, through the console script: the same documents as
`warp invoice`, idempotent re-runs, a broken plan failing alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WARP = Path(sys.executable).with_name("warp")
CUSTOMERS = ("ACME", "BETA", "GAMMA")


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(WARP), *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
                          check=False)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A small sample day, rated, and closed by `warp invoice` into a register."""
    root = tmp_path_factory.mktemp("close")
    assert run("sample", "--out", str(root), "--events", "2000", "--us-rows", "500").returncode == 0
    plans = [f"--plan={root / f'{c.lower()}-plan.yaml'}" for c in CUSTOMERS]
    rated = run("rate", *plans, "--in", str(root / "usage.jsonl"), "--out", str(root / "rated.jsonl"),
                "--rejects", str(root / "rejects.jsonl"))
    assert rated.returncode == 0, rated.stderr
    invoiced = run("invoice", *plans, "--rated", str(root / "rated.jsonl"), "--period", "2026-06",
                   "--out-dir", str(root / "invoices"), "--register", str(root / "invoices" / "register"))
    assert invoiced.returncode == 0, invoiced.stderr
    return root


def embedded_env(root: Path, folder: str) -> dict:
    """The caller's environment without any WARP_* setting, plus the embedded adapters' paths."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
    plans = root / folder / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    for path in root.iterdir():
        if path.suffix in (".yaml", ".csv"):
            shutil.copy(path, plans / path.name)
    env.update(WARP_PLANS_DIR=str(plans), WARP_RATED_FILE=str(root / "rated.jsonl"),
               WARP_DATA_DIR=str(root / folder / "data"), WARP_REGISTER_DIR=str(root / folder / "register"),
               WARP_DOCUMENTS_DIR=str(root / folder / "documents"))
    return env


def test_warp_close_writes_the_same_documents_as_warp_invoice(sample):
    env = embedded_env(sample, "same")
    done = run("close", "--period", "2026-06", env=env, cwd=sample)
    assert done.returncode == 0, done.stderr
    lines = [line.split()[:4] for line in done.stdout.splitlines()]
    # A prepaid customer's document is a statement (-ST-), the others invoices (-INV-).
    assert [(c, period, status) for c, period, _, status in lines] == [(c, "2026-06", "(issued):") for c in CUSTOMERS]
    numbers = {c: number for c, _, number, _ in lines}
    assert all(numbers[c] in (f"{c}-INV-000001", f"{c}-ST-000001") for c in CUSTOMERS)
    for customer in CUSTOMERS:
        ours = sample / "same" / "documents" / customer / "2026-06"
        for suffix in (".json", ".html", ".journal.json"):
            assert (ours / f"{numbers[customer]}{suffix}").read_bytes() == \
                (sample / "invoices" / f"{customer}-2026-06{suffix}").read_bytes()


def test_a_second_close_finds_everything_issued_and_a_customer_rerun_is_unchanged(sample):
    env = embedded_env(sample, "again")
    assert run("close", "--period", "2026-06", env=env, cwd=sample).returncode == 0
    again = run("close", "--period", "2026-06", env=env, cwd=sample)
    assert again.returncode == 0 and "nothing to close for 2026-06" in again.stdout
    rerun = run("close", "--period", "2026-06", "--customer", "BETA", "--json", env=env, cwd=sample)
    assert rerun.returncode == 0, rerun.stderr
    [summary] = json.loads(rerun.stdout)
    assert summary["by_status"] == {"unchanged": 1}
    runs = [json.loads(line) for line in (sample / "again" / "data" / "cycle_runs.jsonl").read_text().splitlines()]
    assert [(r["customer_id"], r["status"]) for r in runs] == [
        ("ACME", "issued"), ("BETA", "issued"), ("GAMMA", "issued"), ("BETA", "unchanged")]


def test_a_broken_plan_fails_its_customer_only_and_names_why(sample):
    env = embedded_env(sample, "broken")
    (Path(env["WARP_PLANS_DIR"]) / "zeta-plan.yaml").write_text("customer_id: ZETA\nvoice: {deck: missing.csv}\n"
                                                               "terms: {anchor_day: 31}\n", encoding="utf-8")
    done = run("close", "--period", "2026-06", env=env, cwd=sample)
    assert done.returncode == 1
    assert [line.split()[0] for line in done.stdout.splitlines()] == list(CUSTOMERS)
    assert "warp: error: ZETA" in done.stderr and "anchor" in done.stderr


def test_a_period_that_is_not_a_month_is_refused(sample):
    done = run("close", "--period", "2026-13", env=embedded_env(sample, "bad"), cwd=sample)
    assert done.returncode == 1 and "2026-13" in done.stderr

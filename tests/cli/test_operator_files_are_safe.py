"""Issue 9: the command line never clobbers, truncates or double-bills an operator's files.

Every test runs the installed `warp` console script as a real process, the way an operator
types it: same path for input and output, a missing folder, Ctrl-C halfway, the same file
twice, a repeated option, a typo in a plan key, a Latin-1 or binary deck.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml

WARP = Path(sys.executable).with_name("warp")

DECK = """prefix,destination,rate,interstate_rate,intrastate_rate,indeterminate_rate,effective_date
1212,NY - NEW YORK,,0.0050,0.0040,0.0045,2026-01-01
44,UNITED KINGDOM,0.0200,,,,2026-01-01
"""
PLAN = {"customer_id": "ACME", "timezone": "America/New_York", "currency": "USD",
        "voice": {"deck": "deck.csv", "increments": "60/60"}}


def call(serial: int, seconds: int = 61) -> bytes:
    return orjson.dumps({"event_id": f"e{serial}", "kind": "voice", "customer_id": "ACME",
                         "start_time": "2026-06-15T12:00:00Z", "duration_s": seconds,
                         "calling_number": "+13125550000", "called_number": "+12125551234"})


def warp(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(WARP), *args], cwd=cwd, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "deck.csv").write_text(DECK, encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(PLAN), encoding="utf-8")
    (tmp_path / "usage.jsonl").write_bytes(b"\n".join(call(n) for n in range(1, 201)) + b"\n")
    return tmp_path


def rate(work: Path, *extra: str) -> subprocess.CompletedProcess:
    return warp("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", *extra, cwd=work)


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*.partial"))


# --- item 1: outputs never alias inputs, missing folders refused before anything is read -----

@pytest.mark.parametrize("args", [
    ("--out", "usage.jsonl"),
    ("--out", "rated.jsonl", "--rejects", "usage.jsonl"),
    ("--out", "rated.jsonl", "--rejects", "rated.jsonl"),
    ("--out", "rated.jsonl", "--summary", "plan.yaml"),
    ("--out", "deck.csv"),
    ("--out", "./sub/../usage.jsonl"),
])
def test_rate_refuses_an_output_that_is_an_input_or_another_output(work, args):
    (work / "sub").mkdir()
    before = {path.name: path.read_bytes() for path in work.iterdir() if path.is_file()}
    done = rate(work, *args)
    assert done.returncode == 2, done.stderr
    assert "same file as" in done.stderr and "Traceback" not in done.stderr
    assert {path.name: path.read_bytes() for path in work.iterdir() if path.is_file()} == before


def test_rate_refuses_a_hard_link_to_its_input(work):
    os.link(work / "usage.jsonl", work / "alias.jsonl")
    done = rate(work, "--out", "alias.jsonl")
    assert done.returncode == 2 and "same file as the input --in" in done.stderr
    assert (work / "usage.jsonl").read_bytes().count(b"\n") == 200


def test_a_missing_folder_is_refused_before_an_existing_output_is_touched(work):
    (work / "rated.jsonl").write_bytes(b"PREVIOUS RUN\n")
    done = rate(work, "--out", "rated.jsonl", "--rejects", "missing/rejects.jsonl")
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert (work / "rated.jsonl").read_bytes() == b"PREVIOUS RUN\n"
    done = rate(work, "--out", "rated.jsonl", "--summary", "missing/summary.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (work / "rated.jsonl").read_bytes() == b"PREVIOUS RUN\n"


def test_rate_replaces_its_outputs_only_when_complete(work):
    (work / "rated.jsonl").write_bytes(b"PREVIOUS RUN\n")
    done = rate(work, "--out", "rated.jsonl", "--summary", "summary.json")
    assert done.returncode == 0, done.stderr
    assert (work / "rated.jsonl").read_bytes().count(b"\n") == 200
    assert leftovers(work) == []


def test_ctrl_c_during_rate_leaves_no_partial_output_under_its_final_name(work):
    """A real `warp rate` process interrupted by SIGINT halfway through a large file."""
    deck = "prefix,destination,rate,effective_date\n" + "".join(
        f"1{npa}{nxx},US,0.0050,2026-01-01\n" for npa in range(201, 260) for nxx in range(200, 400))
    (work / "deck.csv").write_text(deck, encoding="utf-8")
    with open(work / "big.jsonl", "wb") as out:
        for serial in range(400_000):
            out.write(call(serial) + b"\n")
    (work / "rated.jsonl").write_bytes(b"PREVIOUS RUN\n")
    process = subprocess.Popen([str(WARP), "rate", "--plan", "plan.yaml", "--in", "big.jsonl", "--out", "rated.jsonl",
                                "--rejects", "rejects.jsonl"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:   # wait until rated lines are being written to the temporary
        partial = [path for path in work.glob(".rated.jsonl.*.partial") if path.stat().st_size > 0]
        if partial or process.poll() is not None:
            break
        time.sleep(0.05)
    assert process.poll() is None, "warp rate finished before it could be interrupted"
    assert partial, "no temporary output seen"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert (work / "rated.jsonl").read_bytes() == b"PREVIOUS RUN\n"
    assert not (work / "rejects.jsonl").exists()
    assert leftovers(work) == [] and not list(work.glob(".rated.jsonl.*"))


def test_sigterm_during_rate_also_removes_the_temporary(work):
    with open(work / "big.jsonl", "wb") as out:
        for serial in range(400_000):
            out.write(call(serial) + b"\n")
    process = subprocess.Popen([str(WARP), "rate", "--plan", "plan.yaml", "--in", "big.jsonl", "--out", "rated.jsonl"],
                               cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.stat().st_size for p in work.glob(".rated.jsonl.*.partial")):
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert not (work / "rated.jsonl").exists() and leftovers(work) == []


# --- warp invoice: aliasing outputs --------------------------------------------------------

def rated_file(work: Path, name: str = "rated.jsonl", events: range = range(1, 11)) -> Path:
    done = warp("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--out", "all-rated.jsonl", cwd=work)
    assert done.returncode == 0, done.stderr
    lines = (work / "all-rated.jsonl").read_bytes().splitlines()
    path = work / name
    path.write_bytes(b"".join(lines[n - 1] + b"\n" for n in events))
    return path


@pytest.mark.parametrize("args", [
    ("--out", "rated.jsonl"),
    ("--out", "inv.json", "--html", "inv.json"),
    ("--out", "inv.json", "--journal", "rated.jsonl"),
    ("--out", "inv.json", "--html", "plan.yaml"),
])
def test_invoice_refuses_outputs_that_alias(work, args):
    rated = rated_file(work)
    before = rated.read_bytes()
    done = warp("invoice", "--plan", "plan.yaml", "--rated", "rated.jsonl", "--period", "2026-06", *args, cwd=work)
    assert done.returncode == 2, done.stderr
    assert "same file as" in done.stderr
    assert rated.read_bytes() == before and not (work / "inv.json").exists()


def test_invoice_out_dir_refuses_to_overwrite_a_rated_file_named_like_an_invoice(work):
    (work / "out").mkdir()
    rated = rated_file(work, "out/ACME-2026-06.json")
    before = rated.read_bytes()
    done = warp("invoice", "--plan", "plan.yaml", "--rated", str(rated), "--period", "2026-06", "--out-dir", "out",
                cwd=work)
    assert done.returncode == 2 and "same file as" in done.stderr
    assert rated.read_bytes() == before


# --- item 2: repeatable options take every value, single ones refuse a second value ------------

def test_repeated_rated_closes_over_every_file(work):
    rated_file(work, "a.jsonl", range(1, 101))
    rated_file(work, "b.jsonl", range(101, 201))
    rated_file(work, "all.jsonl", range(1, 201))
    both = warp("invoice", "--plan", "plan.yaml", "--rated", "a.jsonl", "--rated", "b.jsonl", "--period", "2026-06",
                "--out", "both.json", cwd=work)
    whole = warp("invoice", "--plan", "plan.yaml", "--rated", "all.jsonl", "--period", "2026-06", "--out", "whole.json",
                 cwd=work)
    assert both.returncode == 0 and whole.returncode == 0, both.stderr + whole.stderr
    assert "200 events billed" in both.stdout
    totals = [orjson.loads((work / name).read_bytes())["total"] for name in ("both.json", "whole.json")]
    assert totals[0] == totals[1]


@pytest.mark.parametrize("args", [
    ("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--out", "a.jsonl", "--out", "b.jsonl"),
    ("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--in", "usage.jsonl", "--out", "a.jsonl"),
    ("invoice", "--plan", "plan.yaml", "--rated", "r.jsonl", "--period", "2026-06", "--period", "2026-07",
     "--out", "i.json"),
    ("sample", "--out", "s", "--events", "10", "--events", "20"),
    ("netsuite", "status", "--customer", "A", "--customer", "B"),     # a command declared elsewhere, made strict
])
def test_a_single_value_option_given_twice_is_refused(work, args):
    done = warp(*args, cwd=work)
    assert done.returncode == 2
    assert "given more than once" in done.stderr
    assert not (work / "a.jsonl").exists() and not (work / "b.jsonl").exists() and not (work / "s").exists()


# --- item 3: the same events twice are billed once ---------------------------------------------

def test_the_same_rated_file_twice_or_concatenated_is_billed_once(work):
    rated = rated_file(work, "rated.jsonl", range(1, 201))
    (work / "twice.jsonl").write_bytes(rated.read_bytes() * 2)
    once = warp("invoice", "--plan", "plan.yaml", "--rated", "rated.jsonl", "--period", "2026-06", "--out", "once.json",
                cwd=work)
    doubled = warp("invoice", "--plan", "plan.yaml", "--rated", "rated.jsonl", "--rated", "rated.jsonl", "--period",
                   "2026-06", "--out", "doubled.json", cwd=work)
    cat = warp("invoice", "--plan", "plan.yaml", "--rated", "twice.jsonl", "--period", "2026-06", "--out", "cat.json",
               cwd=work)
    for done in (once, doubled, cat):
        assert done.returncode == 0, done.stderr
    names = ("once.json", "doubled.json", "cat.json")
    totals = {orjson.loads((work / name).read_bytes())["subtotal"] for name in names}
    assert len(totals) == 1
    assert "identical duplicate lines counted once 200" in cat.stdout and "200 events billed" in cat.stdout


def test_two_different_rated_versions_of_one_event_stop_the_close_naming_both_lines(work):
    rated = rated_file(work, "rated.jsonl", range(1, 11))
    lines = rated.read_bytes().splitlines()
    changed = orjson.loads(lines[3])
    changed["amount"] = "9.999999"
    (work / "fix.jsonl").write_bytes(orjson.dumps({**changed, "rated_at": "2026-07-02T00:00:00Z"}) + b"\n")
    done = warp("invoice", "--plan", "plan.yaml", "--rated", "rated.jsonl", "--rated", "fix.jsonl",
                "--period", "2026-06", "--out", "inv.json", cwd=work)
    assert done.returncode == 1
    assert "two different rated versions" in done.stderr
    assert "rated.jsonl line 4" in done.stderr and "fix.jsonl line 1" in done.stderr
    assert not (work / "inv.json").exists()
    latest = warp("invoice", "--plan", "plan.yaml", "--rated", "rated.jsonl", "--rated", "fix.jsonl", "--period",
                  "2026-06", "--out", "inv.json", "--prefer", "latest", cwd=work)
    assert latest.returncode == 0, latest.stderr
    assert "replaced by a later one (--prefer latest) 1" in latest.stdout and "10 events billed" in latest.stdout


# --- item 4: strict plans, plan check, decks that never trace back ------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"voice": {"deck": "deck.csv", "incremnts": "60/60"}}, "voice.incremnts: unknown key; did you mean 'increments'?"),
    ({"terms": {"net_dayz": 30}}, "terms.net_dayz: unknown key; did you mean 'net_days'?"),
    ({"recuring": []}, "recuring: unknown key; did you mean 'recurring'?"),
    ({"currency": "DOLLARS"}, "currency 'DOLLARS' is not an ISO 4217 code"),
    ({"timezone": None}, "timezone"),
])
def test_plan_mistakes_are_errors_naming_the_key(work, change, message):
    plan = {**PLAN, **change}
    plan = {key: value for key, value in plan.items() if value is not None}
    (work / "plan.yaml").write_text(yaml.safe_dump(plan), encoding="utf-8")
    done = rate(work, "--out", "rated.jsonl")
    assert done.returncode == 1 and message in done.stderr
    assert not (work / "rated.jsonl").exists()
    checked = warp("plan", "check", "plan.yaml", cwd=work)
    assert checked.returncode == 1 and message in checked.stderr and "Traceback" not in checked.stderr


def test_plan_check_validates_the_plan_and_its_decks_without_rating(work):
    done = warp("plan", "check", "plan.yaml", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout and "deck.csv (2 prefixes)" in done.stdout
    latin = "prefix,destination,rate,effective_date\n33,FRAN\xc7E,0.01,2026-01-01\n"
    (work / "deck.csv").write_bytes(latin.encode("latin-1"))
    done = warp("plan", "check", "plan.yaml", cwd=work)
    assert done.returncode == 1 and "line 2" in done.stderr and "byte offset" in done.stderr


@pytest.mark.parametrize(("content", "message"), [
    ("prefix,destination,rate,effective_date\n33,FRAN\xc7E,0.01,2026-01-01\n".encode("latin-1"),
     "deck.csv row 2 column -: line 2, byte offset 46: byte 0xc7 is not UTF-8"),
    (bytes(range(256)) * 4, "is not UTF-8"),
    (b"prefix,destination,rate,effective_date\n33,\x00,0.01,2026-01-01\n", "line 2, byte offset 42: a NUL byte"),
    (b"", "empty file"),
    (b"prefix,rate,rate,effective_date\n33,0.01,0.02,2026-01-01\n", "column appears twice"),
    (None, "cannot open"),
    ("folder", "cannot open"),
])
def test_deck_check_names_the_problem_and_never_traces_back(work, content, message):
    path = work / "deck.csv"
    path.unlink()
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    done = warp("deck", "check", "deck.csv", cwd=work)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    rated = rate(work, "--out", "rated.jsonl")
    assert rated.returncode == 1 and "Traceback" not in rated.stderr and "deck.csv" in rated.stderr


# --- item 5: suspicious input to a close is loud ------------------------------------------------

def test_a_rated_file_of_another_customer_warns_and_names_it(work):
    rated = rated_file(work, "rated.jsonl", range(1, 11))
    other = rated.read_bytes().replace(b'"customer_id":"ACME"', b'"customer_id":"ZETA"')
    (work / "other.jsonl").write_bytes(other)
    done = warp("invoice", "--plan", "plan.yaml", "--rated", "other.jsonl", "--period", "2026-06", "--out", "inv.json",
                cwd=work)
    assert done.returncode == 0, done.stderr
    assert "plan ACME matches no line of the rated file(s)" in done.stderr
    assert "10 rated line(s) of 1 customer(s) without a plan were not invoiced: ZETA (10)" in done.stderr
    assert "warning: plan ACME matches no line" in done.stdout


def test_a_negative_amount_is_refused_with_its_line_number(work):
    rated = rated_file(work, "rated.jsonl", range(1, 11))
    lines = rated.read_bytes().splitlines()
    record = orjson.loads(lines[6])
    record["amount"] = "-" + record["amount"]
    lines[6] = orjson.dumps(record)
    rated.write_bytes(b"\n".join(lines) + b"\n")
    done = warp("invoice", "--plan", "plan.yaml", "--rated", "rated.jsonl", "--period", "2026-06", "--out", "inv.json",
                cwd=work)
    assert done.returncode == 1
    assert "line 7: negative usage" in done.stderr and not (work / "inv.json").exists()

"""`warp rate` and `warp deck check` through the installed console script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.builders import HEADER

WARP = Path(sys.executable).with_name("warp")

DECK = HEADER + """1212,NY - NEW YORK,,0.0050,0.0040,,2026-01-01,,,,
44,UNITED KINGDOM,0.0200,,,,2026-01-01,,60,60,0.01
"""
PLAN = """customer_id: ACME
billing: postpaid
timezone: America/New_York
voice:
  deck: deck.csv
  increments: "6/6"
  indeterminate: {policy: piu, piu: 60}
"""
EVENTS = [
    '{"event_id":"e1","kind":"voice","customer_id":"ACME","start_time":"2026-11-03T02:00:00Z","duration_s":8,"calling_number":"+13125550000","called_number":"+12125551234"}',
    '{"event_id":"e2","kind":"voice","customer_id":"ACME","start_time":"2026-11-03T02:00:00Z","duration_s":61,"called_number":"+447700900123"}',
    '{"event_id":"e2","kind":"voice","customer_id":"ACME","start_time":"2026-11-03T02:00:00Z","duration_s":61,"called_number":"+447700900123"}',
    '{"event_id":"e3","kind":"voice","customer_id":"ACME","start_time":"2026-11-03T02:00:00Z","duration_s":-4,"called_number":"+447700900123"}',
    "{broken",
    "",
    '{"event_id":"e4","kind":"voice","customer_id":"ACME","start_time":"2026-11-03T02:00:00Z","duration_s":30,"called_number":"+33123456789"}',
]


def warp(*args, cwd):
    return subprocess.run([str(WARP), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "deck.csv").write_text(DECK, encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(PLAN, encoding="utf-8")
    (tmp_path / "usage.jsonl").write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    return tmp_path


def test_rate_writes_one_line_per_input_line_in_order(workdir):
    done = warp("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--out", "rated.jsonl", "--rejects",
                "rejects.jsonl", cwd=workdir)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (workdir / "rated.jsonl").read_text().splitlines()]
    assert len(lines) == len(EVENTS)
    assert [line["status"] for line in lines] == ["rated", "rated", "rejected", "rejected", "rejected", "rejected",
                                                  "rejected"]
    assert [line.get("reason") for line in lines[2:]] == ["DUPLICATE_EVENT", "BAD_FIELD", "MALFORMED_JSON",
                                                          "MALFORMED_JSON", "NO_RATE"]
    first = lines[0]
    assert {key: first[key] for key in ("event_id", "jurisdiction", "matched_prefix", "rate", "billed_units", "amount",
                                        "vendor_cost", "margin_pct", "low_margin")} == {
        "event_id": "e1", "jurisdiction": "interstate", "matched_prefix": "1212", "rate": "0.005", "billed_units": 12,
        "amount": "0.001000", "vendor_cost": None, "margin_pct": None, "low_margin": False,
    }
    assert lines[1]["amount"] == "0.050000" and lines[1]["jurisdiction"] == "international"


def test_rejects_file_keeps_line_numbers_and_raw_text_for_replay(workdir):
    warp("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--out", "rated.jsonl", "--rejects", "rejects.jsonl",
         cwd=workdir)
    rejects = [json.loads(line) for line in (workdir / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (3, "DUPLICATE_EVENT"), (4, "BAD_FIELD"), (5, "MALFORMED_JSON"), (6, "MALFORMED_JSON"), (7, "NO_RATE")]
    assert rejects[2]["raw"] == "{broken"


def test_summary_balances_and_totals_by_product(workdir):
    done = warp("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--out", "rated.jsonl", "--summary",
                "summary.json", cwd=workdir)
    assert "accepted 7 = rated 2 + rejected 5" in done.stdout
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["balanced"] is True
    assert summary["rejected_by_reason"] == {"BAD_FIELD": 1, "DUPLICATE_EVENT": 1, "MALFORMED_JSON": 2, "NO_RATE": 1}
    assert {(t["product"], t["group"], t["amount"]) for t in summary["totals"]} == {
        ("voice", "interstate", "0.001000"), ("voice", "international", "0.050000")}
    assert summary["total_amount"] == "0.051000"


@pytest.mark.parametrize(
    "plan_text, message",
    [
        ("customer_id: ACME\ntimezone: UTC\nvoice: {deck: missing.csv}\n", "missing.csv"),
        ("customer_id: ACME\ntimezone: UTC\nvoice: {deck: deck.csv, increments: 'six'}\n", "increments"),
        ("customer_id: ACME\ntimezone: UTC\nmessaging: {mms_surcharge: 0.003}\n", "float 0.003 refused"),
        ("customer_id: ACME\ntimezone: Mars/Olympus\n", "unknown time zone"),
        (": : :\n", "not valid YAML"),
    ],
)
def test_an_unusable_plan_exits_non_zero_with_one_line_naming_the_problem(workdir, plan_text, message):
    (workdir / "bad.yaml").write_text(plan_text, encoding="utf-8")
    done = warp("rate", "--plan", "bad.yaml", "--in", "usage.jsonl", "--out", "rated.jsonl", cwd=workdir)
    assert done.returncode != 0
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("warp: error")]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_a_bad_deck_exits_non_zero_naming_file_row_and_column(workdir):
    (workdir / "deck.csv").write_text(DECK + "4420,LONDON,zero,,,,2026-01-01,,,,\n", encoding="utf-8")
    done = warp("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--out", "rated.jsonl", cwd=workdir)
    assert done.returncode == 1
    assert "deck.csv row 4 column rate" in done.stderr


def test_missing_input_and_bad_arguments_fail_cleanly(workdir):
    done = warp("rate", "--plan", "plan.yaml", "--in", "nothere.jsonl", "--out", "rated.jsonl", cwd=workdir)
    assert done.returncode == 1 and "nothere.jsonl" in done.stderr
    assert warp("rate", "--plan", "plan.yaml", cwd=workdir).returncode == 2


def test_several_plans_route_events_by_customer(workdir):
    (workdir / "beta.yaml").write_text(PLAN.replace("ACME", "BETA"), encoding="utf-8")
    (workdir / "mixed.jsonl").write_text(EVENTS[0] + "\n" + EVENTS[0].replace("ACME", "BETA") + "\n"
                                         + EVENTS[0].replace("ACME", "ZED").replace("e1",
                                                                                    "z1") + "\n", encoding="utf-8")
    done = warp("rate", "--plan", "plan.yaml", "--plan", "beta.yaml", "--in", "mixed.jsonl", "--out", "rated.jsonl",
                cwd=workdir)
    lines = [json.loads(line) for line in (workdir / "rated.jsonl").read_text().splitlines()]
    assert [(line["customer_id"], line["status"], line.get("reason")) for line in lines] == [
        ("ACME", "rated", None), ("BETA", "rejected", "DUPLICATE_EVENT"), ("ZED", "rejected", "UNKNOWN_CUSTOMER")]
    assert done.returncode == 0


def test_progress_bar_can_be_forced_on(workdir):
    done = warp("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--out", "rated.jsonl", "--progress", cwd=workdir)
    assert "rating" in done.stderr and "100%" in done.stderr


def test_lerg_file_option_replaces_the_embedded_states(workdir):
    (workdir / "lerg.csv").write_text("npa_nxx,state\n312555,NY\n", encoding="utf-8")
    warp("rate", "--plan", "plan.yaml", "--in", "usage.jsonl", "--out", "rated.jsonl", "--npa-nxx", "lerg.csv",
         cwd=workdir)
    first = json.loads((workdir / "rated.jsonl").read_text().splitlines()[0])
    assert first["jurisdiction"] == "intrastate"


def test_deck_check_summarizes_a_good_deck(workdir):
    done = warp("deck", "check", "deck.csv", "--json", cwd=workdir)
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert (report["rows"], report["prefixes"], report["prefix_lengths"]) == (2, 2, "2-4")
    assert report["rate"] == "1 rows, 0.02 to 0.02"


def test_deck_check_lists_every_problem(workdir):
    (workdir / "bad.csv").write_text(DECK + "4420,X,abc,,,,2026-01-01,,,,\n44,UK,0.01,,,,2026-06-01,,,,\n",
                                     encoding="utf-8")
    done = warp("deck", "check", "bad.csv", cwd=workdir)
    assert done.returncode == 1
    assert "bad.csv row 4 column rate" in done.stderr
    assert "rows 3 and 5" in done.stderr
    assert "2 problem(s)" in done.stderr


def test_a_byte_order_mark_and_windows_line_ends_are_tolerated(workdir):
    (workdir / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(EVENTS[:2]).encode() + b"\r\n")
    done = warp("rate", "--plan", "plan.yaml", "--in", "bom.jsonl", "--out", "rated.jsonl", cwd=workdir)
    assert done.returncode == 0
    lines = [json.loads(line) for line in (workdir / "rated.jsonl").read_text().splitlines()]
    assert [line["status"] for line in lines] == ["rated", "rated"]


def test_invalid_utf8_is_a_malformed_line_not_a_crash(workdir):
    latin1 = '{"event_id":"caf\xe9"}'.encode("latin-1")
    (workdir / "latin1.jsonl").write_bytes(EVENTS[0].encode() + b"\n" + latin1 + b"\n")
    done = warp("rate", "--plan", "plan.yaml", "--in", "latin1.jsonl", "--out", "rated.jsonl", "--rejects", "rej.jsonl",
                cwd=workdir)
    assert done.returncode == 0
    lines = [json.loads(line) for line in (workdir / "rated.jsonl").read_text().splitlines()]
    assert [line["status"] for line in lines] == ["rated", "rejected"]
    assert lines[1]["reason"] == "MALFORMED_JSON"
    assert "caf" in json.loads((workdir / "rej.jsonl").read_text().splitlines()[0])["raw"]

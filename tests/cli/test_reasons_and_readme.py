"""`warp reasons` prints the reason codes from the enum; the README shows exactly that list,
its product table lists every kind and its port table every port of ports.py."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from warp_billing import ports
from warp_billing.cli.reasons_command import reasons_text
from warp_billing.products import products
from warp_billing.rating.rejections import MEANINGS, Reason

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
WARP = Path(sys.executable).with_name("warp")


def test_every_reason_has_a_meaning_and_warp_reasons_prints_them_in_enum_order():
    assert set(MEANINGS) == set(Reason)
    result = subprocess.run([str(WARP), "reasons"], capture_output=True, text=True, timeout=60, check=True)
    assert [line.split()[0] for line in result.stdout.splitlines()] == [reason.value for reason in Reason]


def test_the_readme_reason_list_is_the_generated_one():
    block = re.search(r"<!-- reasons:begin[^>]*-->\n(.*?)\n<!-- reasons:end -->", README, re.S)
    assert block is not None, "README.md lost its generated reason list markers"
    assert block.group(1) == reasons_text(markdown=True), "regenerate it with: warp reasons --markdown"


def test_the_readme_layout_shows_every_kind_and_every_port():
    for item in products():
        assert f"| `{item.kind}` | `{item.plan_section}` |" in README, item.kind
    protocols = [name for name, value in vars(ports).items()
                 if inspect.isclass(value) and issubclass(value, Protocol) and value.__module__ == ports.__name__]
    assert protocols
    for name in protocols:
        assert f"| `{name}` |" in README, name

"""Reading an invoice page the way a reader does: the printed figures of its tables, the PDF's text,
and the page in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class _Tables(HTMLParser):
    """Rows of cell texts of every table that has an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._stack: list[str | None] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._stack.append(dict(attrs).get("id"))
        elif tag == "tr" and self._stack and self._stack[-1]:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self._stack:
            self._stack.pop()
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables.setdefault(str(self._stack[-1]), []).append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def printed_tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def printed_sums(html: str) -> dict[str, Decimal]:
    """The page's printed figures: its charge lines, fees, subtotal and total, as a reader adds them."""
    tables = printed_tables(html)
    lines = [money(row[-1]) for row in tables.get("charges", [])[1:] if len(row) > 1]
    fees = [money(row[-1]) for row in tables.get("fees", [])[1:]]
    totals = {row[0]: money(row[-1]) for row in tables["totals"]}
    subtotal = totals.pop("Subtotal")
    totals.pop("Taxes and fees", None)
    (total,) = totals.values()
    return {"lines": sum(lines, Decimal(0)), "fees": sum(fees, Decimal(0)), "subtotal": subtotal, "total": total}


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError("Debian's chromium is not installed: run `make system-deps-test` (make test does)")
    return found


def in_browser(page: Path, screenshot: Path, *, width: int = 1024, height: int = 2400) -> str:
    """Open ``page`` in headless chromium: save a screenshot and return the DOM it rendered."""
    profile = tempfile.mkdtemp(prefix="warp-chromium-")
    try:
        base = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        shot = subprocess.run(
            check=False,
            args=[*base, f"--window-size={width},{height}", f"--screenshot={screenshot}", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
        dom = subprocess.run(
            check=False, args=[*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        return dom.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def keep_artifact(path: Path) -> Path:
    """Copy a test artifact (screenshot, PDF page) to build/test-artifacts for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / path.name
    shutil.copyfile(path, target)
    return target

"""The invoice's PDF: its HTML rendering laid out by WeasyPrint (a maintained HTML-to-PDF library).

WeasyPrint needs the system's Pango libraries (Debian ``libpango-1.0-0``,
``libpangoft2-1.0-0``; ``make venv`` installs them when missing). It is imported on first
use, so rating and the functions never load it; a machine without it gets a named error
instead of a traceback. The PDF is made from the same HTML that is written beside it, so
both show the same figures.
"""

from __future__ import annotations

from .errors import BillingError


class PdfUnavailable(BillingError):
    """The PDF cannot be made on this machine (WeasyPrint or its Pango libraries missing)."""


def render_invoice_pdf(html: str) -> bytes:
    """The PDF bytes of an invoice's HTML page (A4, the page's own print CSS)."""
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]  # noqa: PLC0415 - loaded on the first PDF only
    except (ImportError, OSError) as exc:   # OSError: libpango missing
        raise PdfUnavailable(f"cannot make the PDF: WeasyPrint is not usable here ({exc}); "
                             "run `make venv`, or pass --no-pdf") from None
    return bytes(HTML(string=html).write_pdf())

"""PDF renderings of HTML documents (the dispute letter) with WeasyPrint, as the invoice PDF is made.

The PDF is laid out from the same HTML page that is written beside it (its own CSS and
``<title>``), so both show the same figures. WeasyPrint needs the system's Pango libraries
(``make venv`` installs them); it is imported on first use, and a machine without it gets the
named ``PdfUnavailable`` error instead of a traceback.
"""

from __future__ import annotations

from ..billing.render_pdf import PdfUnavailable

__all__ = ["PdfUnavailable", "html_to_pdf"]


def html_to_pdf(document: str, title: str = "") -> bytes:
    """The PDF bytes of ``document`` (an HTML page); ``title`` overrides the page's ``<title>``."""
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]  # noqa: PLC0415 - loaded on the first PDF only
    except (ImportError, OSError) as exc:   # OSError: libpango missing
        raise PdfUnavailable(f"cannot make the PDF: WeasyPrint is not usable here ({exc})") from None
    rendered = HTML(string=document).render()
    if title:
        rendered.metadata.title = title
    return bytes(rendered.write_pdf())

"""PDF renderings of HTML documents (the dispute letter) with fpdf2: pure Python, no system libraries.

fpdf2's HTML support covers what the letter uses (headings, paragraphs, lists, tables); the
``<head>`` (title, CSS) is not rendered, and the core fonts need Latin-1 text, so anything
outside it is replaced rather than failing the whole package.
"""

from __future__ import annotations

import re

HEAD = re.compile(r"<head>.*?</head>", re.DOTALL | re.IGNORECASE)
CODE = re.compile(r"</?code>", re.IGNORECASE)


def html_to_pdf(document: str, title: str = "") -> bytes:
    """The PDF bytes of ``document`` (an HTML page), A4 portrait."""
    from fpdf import FPDF  # noqa: PLC0415 - loaded only when a letter is rendered

    body = CODE.sub("", HEAD.sub("", document))
    body = body.encode("latin-1", "replace").decode("latin-1")
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("WARP Billing")
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.write_html(body)
    return bytes(pdf.output())

"""The reissue 신청서 as PDF: fpdf2 lays out `reissue/form_pdf.html.j2` in Noto Sans KR.

The font comes inside the `pylopdf-fonts-ko` package (SIL OFL), so no system font is needed. Without fpdf2
or that package the PDF is simply not made (`form_pdf` returns None) and users get the HTML form only.
"""
from __future__ import annotations

import functools
import importlib.util
import re
from typing import TYPE_CHECKING, Any

from bot.render import to_plain

if TYPE_CHECKING:
    from bot.helpdesk import Helpdesk

FONT = "NotoSansKR"


@functools.cache
def pdf_available() -> bool:
    """Whether the PDF can be made (checked without importing fpdf2, which the bot rarely needs)."""
    return all(importlib.util.find_spec(name) is not None for name in ("fpdf", "pylopdf_fonts_ko"))


def form_pdf(hd: "Helpdesk", view: dict[str, Any]) -> bytes | None:
    """The filled form as A4 PDF bytes, or None when the PDF libraries are not installed."""
    if not pdf_available():
        return None
    import pylopdf_fonts_ko
    from fpdf import FPDF
    from fpdf.fonts import TextStyle

    # fpdf2 turns the newlines between tags into blank lines: the template's layout is for people.
    html = re.sub(r">\s+<", "><", hd.text("reissue/form_pdf.html.j2", f=view))
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title(to_plain(hd.msg("reissue.form_caption", ref=view["ref"])))
    # One face only (the package ships Regular): each face costs a parse and a subset of a 4.6 MB font.
    pdf.add_font(FONT, "", str(pylopdf_fonts_ko.sans_path()))
    pdf.set_font(FONT, size=10)
    pdf.add_page()
    pdf.write_html(html, font_family=FONT, table_line_separators=True, tag_styles={
        "h1": TextStyle(font_family=FONT, font_style="", font_size_pt=18, color="#000000", b_margin=2),
        "p": TextStyle(font_family=FONT, font_style="", t_margin=2, b_margin=1),
    })
    return bytes(pdf.output())

"""The certificate as PDF (fpdf2), from the same view as the HTML one.

The font is DejaVu Sans, shipped inside the package (``fonts/``, with its licence) and embedded
as a subset, because the PDF core fonts have no Vietnamese letters and a user's machine may
have no suitable font installed. Every text is NFC-normalised first: a name typed with
combining accents (NFD) would otherwise be drawn as a letter followed by a loose accent, since
fpdf2 places glyphs without shaping. A character the font lacks is drawn as "?" and listed in
:attr:`PdfCertificate.missing_glyphs` (and logged) instead of as an empty box.

A draft carries a large diagonal "BẢN NHÁP / DRAFT" on every page and in the footer.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .certificate import LABELS, CertificateView, Table, bi, certificate_view
from .chart import ENVELOPE_COLOUR, Chart, tick_text
from .laboratory import Laboratory

LOG = logging.getLogger(__name__)

FONT_FAMILY = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
CHART_HEIGHT = 70.0
VERDICT_RGB = {"pass": (23, 107, 44), "fail": (176, 0, 0), "conditional_pass": (166, 95, 0),
               "conditional_fail": (166, 95, 0), "overdue": (176, 0, 0)}


def font_path(style: str = "") -> Path:
    """The bundled TTF file (found from a source checkout and from an installed wheel)."""
    ref = resources.files("benchctl.reports") / "fonts" / FONT_FILES[style]
    return Path(str(ref))


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


@dataclass
class PdfCertificate:
    data: bytes
    pages: int
    final: bool
    #: Characters of the certificate that the embedded font cannot draw (printed as "?").
    missing_glyphs: set[str] = field(default_factory=set)


def render_pdf(doc: dict[str, Any], *, lang: str = "vi",
               laboratory: Laboratory | None = None) -> PdfCertificate:
    view = certificate_view(doc, lang=lang, laboratory=laboratory)
    when = _document_time(doc)
    return _Builder(view, when).build()


def write_pdf(doc: dict[str, Any], path: str | Path, *, lang: str = "vi",
              laboratory: Laboratory | None = None) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(render_pdf(doc, lang=lang, laboratory=laboratory).data)
    return p


def _document_time(doc: dict[str, Any]) -> dt.datetime:
    """The PDF's creation date: the approval (or the end of the run), so the same record
    always gives the same file."""
    people = doc.get("people") or {}
    for value in ((people.get("approved_by") or {}).get("at"), doc.get("ended_at"),
                  doc.get("started_at")):
        if value:
            try:
                t = dt.datetime.fromisoformat(str(value))
            except ValueError:
                continue
            return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class _Builder:
    def __init__(self, view: CertificateView, when: dt.datetime) -> None:
        from fpdf import FPDF

        self.view = view
        self.missing: set[str] = set()
        builder = self

        class _Pdf(FPDF):
            def header(self) -> None:
                builder.page_header()

            def footer(self) -> None:
                builder.page_footer()

        pdf = _Pdf(orientation="portrait", unit="mm", format="A4")
        for style in FONT_FILES:
            pdf.add_font(FONT_FAMILY, style, str(font_path(style)))
        ttf: Any = pdf.fonts[FONT_FAMILY.lower()]
        self.cmap: set[int] = set(ttf.cmap)
        pdf.set_margins(15, 15, 15)
        pdf.set_auto_page_break(True, margin=18)
        pdf.set_creation_date(when)
        pdf.set_title(self.t(f"{view.number} — {view.title}"))
        pdf.set_author(self.t(view.laboratory.display_name(view.lang)))
        pdf.set_creator("benchctl")
        pdf.set_lang(view.lang)
        pdf.alias_nb_pages()
        self.pdf = pdf

    # -- text ---------------------------------------------------------------------------

    def t(self, text: Any) -> str:
        """Text as drawn: NFC, control characters made visible, glyphs the font lacks as ?."""
        s = unicodedata.normalize("NFC", str(text))
        out = []
        for ch in s:
            if ch in "\n":
                out.append(ch)
            elif unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029":
                out.append(" ")
            elif ord(ch) not in self.cmap:
                self.missing.add(ch)
                out.append("?")
            else:
                out.append(ch)
        return "".join(out)

    def font(self, size: float, bold: bool = False) -> None:
        self.pdf.set_font(FONT_FAMILY, "B" if bold else "", size)

    # -- page furniture -----------------------------------------------------------------

    def page_header(self) -> None:
        pdf, v = self.pdf, self.view
        if not v.final:
            self.watermark()
        lab = v.laboratory
        self.font(10.5, True)
        pdf.set_text_color(0)
        pdf.cell(0, 5, self.t(lab.display_name(v.lang)), align="C",
                 new_x="LMARGIN", new_y="NEXT")
        alt = lab.display_name(v.other)
        self.font(8)
        if alt != lab.display_name(v.lang):
            pdf.cell(0, 4, self.t(alt), align="C", new_x="LMARGIN", new_y="NEXT")
        contact = " · ".join(x for x in (lab.address, lab.city, lab.phone, lab.email, lab.code)
                             if x)
        if contact:
            pdf.cell(0, 4, self.t(contact), align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(120)
        pdf.line(15, pdf.get_y() + 1, 195, pdf.get_y() + 1)
        pdf.ln(3)

    def watermark(self) -> None:
        pdf = self.pdf
        word = f"{LABELS['draft_short'][self.view.lang]} / {LABELS['draft_short'][self.view.other]}"
        with pdf.local_context(text_color=(200, 40, 40), fill_opacity=0.22):
            self.font(54, True)
            with pdf.rotation(35, 105, 150):
                pdf.text(105 - pdf.get_string_width(self.t(word)) / 2, 160, self.t(word))

    def page_footer(self) -> None:
        pdf, v = self.pdf, self.view
        pdf.set_y(-14)
        self.font(7)
        pdf.set_text_color(90)
        page = f"{LABELS['page'][v.lang]} {pdf.page_no()}/{{nb}}"
        pdf.cell(150, 4, self.t(v.footer))
        pdf.cell(0, 4, self.t(page), align="R")
        pdf.set_text_color(0)

    # -- blocks -------------------------------------------------------------------------

    def heading(self, key: str, need: float = 18.0) -> None:
        """A section title, on a new page unless ``need`` mm of what follows fit under it."""
        pdf = self.pdf
        if pdf.will_page_break(need):
            pdf.add_page()
        pdf.ln(2)
        self.font(9.5, True)
        pdf.cell(0, 5.5, self.t(bi(key, self.view.lang)), new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(140)
        pdf.line(15, pdf.get_y(), 195, pdf.get_y())
        pdf.ln(1.2)

    def key_values(self, rows: list[tuple[str, str]], *, bold_first: bool = False) -> None:
        """Label and value side by side; the next row starts below the taller of the two."""
        pdf = self.pdf
        for i, (k, val) in enumerate(rows):
            self.font(8)
            label = self.t(k + ":")
            lines: Any = pdf.multi_cell(62, 4.2, label, dry_run=True, output="LINES")
            label_lines = len(lines)
            if pdf.will_page_break(4.2 * label_lines):
                pdf.add_page()
            y = pdf.get_y()
            pdf.set_text_color(60)
            pdf.multi_cell(62, 4.2, label, new_x="RIGHT", new_y="TOP")
            pdf.set_text_color(0)
            big = bold_first and i == 0
            self.font(9 if big else 8, big)
            pdf.multi_cell(0, 4.2, self.t(val), new_x="LMARGIN", new_y="NEXT")
            if pdf.get_y() < y + 4.2 * label_lines and pdf.get_y() > y:
                pdf.set_y(y + 4.2 * label_lines)

    def paragraph(self, text: str, size: float = 8, colour: int = 0, bold: bool = False) -> None:
        self.font(size, bold)
        self.pdf.set_text_color(colour)
        self.pdf.multi_cell(0, size * 0.5, self.t(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_text_color(0)

    def table(self, t: Table, widths: list[float], size: float = 7) -> None:
        from fpdf.fonts import FontFace

        pdf = self.pdf
        self.font(size)
        aligns = tuple("LEFT" if i in t.text_columns else "RIGHT" for i in range(len(t.head)))
        heading = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
        with pdf.table(col_widths=tuple(widths), text_align=aligns, headings_style=heading,
                       line_height=size * 0.5, padding=(0.6, 0.8), width=180,
                       borders_layout="ALL") as table:
            row = table.row()
            for h in t.head:
                row.cell(self.t(h), align="CENTER")
            for i, cells in enumerate(t.rows):
                mark = t.marks[i] if i < len(t.marks) else ""
                row = table.row()
                for j, c in enumerate(cells):
                    style = None
                    if j == len(cells) - 1 and mark in VERDICT_RGB:
                        style = FontFace(emphasis="BOLD", color=VERDICT_RGB[mark])
                    row.cell(self.t(c), style=style)
        pdf.ln(1)

    def chart(self, chart: Chart) -> None:
        pdf = self.pdf
        height = CHART_HEIGHT
        x0, top = 32.0, pdf.get_y() + 6
        w, h = 158.0, height - 14

        def px(x: float, slot: int = 0, slots: int = 1) -> float:
            return x0 + w * chart.u(x) + (slot - (slots - 1) / 2) * 1.6

        def py(y: float) -> float:
            return top + h * (1 - chart.v(y))

        pdf.set_line_width(0.2)
        pdf.set_draw_color(150)
        pdf.rect(x0, top, w, h)
        with pdf.local_context(dash_pattern={"dash": 1.2, "gap": 0.8}):
            pdf.set_draw_color(180)
            pdf.line(x0, py(0), x0 + w, py(0))
        if chart.levels:
            pdf.set_draw_color(*_rgb(ENVELOPE_COLOUR))
            pdf.set_text_color(*_rgb(ENVELOPE_COLOUR))
            self.font(6.5)
            with pdf.local_context(dash_pattern={"dash": 2.0, "gap": 1.0}, line_width=0.35):
                for m in chart.levels:
                    for sign in (1, -1):
                        pdf.line(x0, py(sign * m), x0 + w, py(sign * m))
            for m in chart.levels:
                label = "±" + tick_text(m)
                pdf.text(x0 + w - 1 - pdf.get_string_width(label), py(m) - 1, label)
            pdf.set_text_color(0)
        elif chart.envelope:
            pdf.set_draw_color(*_rgb(ENVELOPE_COLOUR))
            pdf.set_line_width(0.4)
            steps = chart.envelope_steps()
            for sign in (1, -1):
                pdf.polyline([(px(x), py(sign * m)) for x, m in steps])
            pdf.set_line_width(0.2)
        for pt in chart.points:
            rgb = _rgb(chart.colour(pt.group))
            x = px(pt.x, pt.slot, pt.slots)
            pdf.set_draw_color(*rgb)
            pdf.set_fill_color(*rgb)
            if pt.U:
                lo, hi = py(pt.error - pt.U), py(pt.error + pt.U)
                pdf.line(x, lo, x, hi)
                pdf.line(x - 0.8, lo, x + 0.8, lo)
                pdf.line(x - 0.8, hi, x + 0.8, hi)
            pdf.circle(x, py(pt.error), 0.9, style="F")
        self.font(6.5)
        pdf.set_text_color(0)
        for tk in chart.x_ticks:
            label = self.t(tick_text(tk))
            pdf.text(px(tk) - pdf.get_string_width(label) / 2, top + h + 3.5, label)
        for tk in chart.y_ticks:
            label = self.t(tick_text(tk))
            pdf.text(x0 - 1.5 - pdf.get_string_width(label), py(tk) + 0.9, label)
        self.font(7.5)
        xl = self.t(chart.x_label)
        pdf.text(x0 + w / 2 - pdf.get_string_width(xl) / 2, top + h + 8, xl)
        yl = self.t(chart.y_label)
        with pdf.rotation(90, 22, top + h / 2):
            pdf.text(22 - pdf.get_string_width(yl) / 2, top + h / 2, yl)
        lx = x0 + 2
        self.font(6.5)
        for _, text, colour in chart.groups:
            pdf.set_fill_color(*_rgb(colour))
            pdf.circle(lx + 1, top - 2.4, 0.9, style="F")
            pdf.text(lx + 2.6, top - 1.6, self.t(text))
            lx += 6 + pdf.get_string_width(self.t(text))
        if chart.envelope:
            pdf.set_draw_color(*_rgb(ENVELOPE_COLOUR))
            pdf.set_line_width(0.4)
            pdf.line(lx, top - 2.4, lx + 5, top - 2.4)
            pdf.set_line_width(0.2)
            pdf.text(lx + 6, top - 1.6, "MPE")
        pdf.set_draw_color(0)
        pdf.set_fill_color(255)
        pdf.set_y(top + h + 10)

    # -- the document -------------------------------------------------------------------

    def build(self) -> PdfCertificate:
        pdf, v = self.pdf, self.view
        lang = v.lang
        pdf.add_page()
        self.font(13, True)
        pdf.multi_cell(0, 7, self.t(v.title), align="C", new_x="LMARGIN", new_y="NEXT")
        if not v.final:
            pdf.set_draw_color(176, 0, 0)
            pdf.set_text_color(176, 0, 0)
            self.font(9, True)
            pdf.multi_cell(0, 6, self.t(bi("draft", lang)), border=1, align="C",
                           new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0)
            pdf.set_draw_color(0)
        pdf.ln(1.5)
        self.key_values(v.header, bold_first=True)

        self.heading("instrument")
        self.key_values(v.instrument)
        self.heading("method")
        self.key_values(v.method)

        self.heading("references")
        self.table(v.references, [24, 17, 22, 12, 12, 13])
        if v.overrides:
            self.paragraph(bi("overrides", lang) + ":", 8, bold=True)
            for line in v.overrides:
                self.paragraph("• " + line, 7.5)

        self.heading("environment")
        self.table(v.environment, [40, 20, 20, 20])

        self.heading("results")
        self.table(v.results, self._result_widths(v.results), size=6.5)
        if v.uncertainty_note:
            self.paragraph(v.uncertainty_note, 7, colour=60)

        if v.chart is not None:
            self.heading("chart", need=CHART_HEIGHT + 12)
            self.chart(v.chart)

        self.heading("decision_rule")
        self.paragraph(v.rule_text[0], 8)
        if v.rule_text[1]:
            self.paragraph(v.rule_text[1], 7, colour=80)
        self.heading("conformity")
        for main, alt in v.conformity:
            self.paragraph(main, 8)
            self.paragraph(alt, 7, colour=80)
        self.font(9, True)
        pdf.set_text_color(*VERDICT_RGB.get(v.verdict, (0, 0, 0)))
        pdf.multi_cell(0, 5.5, self.t(f"{v.overall[0]}: {v.overall[1]}"),
                       new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)

        if v.stamp:
            self.heading("stamp")
            self.key_values(v.stamp)

        self.heading("people", need=32)
        people = Table(["", "", bi("time", lang)],
                       [[r, n, at] for r, n, at in v.people], [], frozenset({0, 1}))
        self.table(people, [30, 50, 20], size=7.5)
        pdf.ln(1)
        for note in v.notes:
            self.paragraph(note, 6.5, colour=70)

        data = bytes(pdf.output())
        if self.missing:
            LOG.warning("certificate %s: the font has no glyph for %s (printed as ?)",
                        v.number, "".join(sorted(self.missing)))
        return PdfCertificate(data=data, pages=pdf.pages_count, final=v.final,
                              missing_glyphs=set(self.missing))

    @staticmethod
    def _result_widths(t: Table) -> list[float]:
        """Relative column widths: the test/place and the verdict need the most room."""
        widths = []
        for i, h in enumerate(t.head):
            if i == 0:
                widths.append(26.0)
            elif i == len(t.head) - 1:
                widths.append(15.0)
            elif h == "k":
                widths.append(6.0)
            elif h.startswith("U"):
                widths.append(9.0)
            else:
                widths.append(13.0)
        return widths

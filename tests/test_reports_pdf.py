"""The PDF certificate: Vietnamese text really drawn with the embedded DejaVu Sans.

The page is rendered to an image with PDFium (pypdfium2), an engine independent of fpdf2:
the text layer must give back the exact Vietnamese strings, every character must come from
the embedded TrueType font, and the stacked accents of "Ấ" must be ink on the page above the
cap height, where a missing-glyph box or a bare "A" leaves white.
"""

from __future__ import annotations

import ctypes
import unicodedata
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from reportshelp import Runs, approved, pressure_doc

from benchctl.reports.pdf import font_path, render_pdf

#: The session fixture ``runs`` (real balance runs, made once for all report tests).
pytest_plugins = ("reportsplugin",)

VIETNAMESE = ("GIẤY CHỨNG NHẬN HIỆU CHUẨN", "Độ không đảm bảo đo", "Người thực hiện",
              "Điều kiện môi trường", "Công bố phù hợp", "Quy tắc quyết định",
              "Chuẩn đo lường sử dụng", "Kết luận chung")


def pages_text(data: bytes) -> list[str]:
    pdf = pdfium.PdfDocument(data)
    return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]


def char_fonts(data: bytes) -> set[str]:
    """The font of every character on every page, as PDFium reads it."""
    pdf = pdfium.PdfDocument(data)
    names = set()
    buf = ctypes.create_string_buffer(256)
    flags = ctypes.c_int()
    for i in range(len(pdf)):
        tp = pdf[i].get_textpage()
        for c in range(tp.count_chars()):
            if pdfium_c.FPDFText_GetUnicode(tp.raw, c) in (0x0D, 0x0A, 0x20, 0xFFFE):
                continue
            pdfium_c.FPDFText_GetFontInfo(tp.raw, c, buf, 256, ctypes.byref(flags))
            names.add(buf.value.decode())
    return names


def test_vietnamese_text_layer_and_embedded_font(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    result = render_pdf(doc, lang="vi")
    assert result.missing_glyphs == set()
    assert result.data.startswith(b"%PDF-")
    text = "\n".join(pages_text(result.data))
    flat = " ".join(text.split())
    for phrase in VIETNAMESE:
        assert phrase in flat, phrase
    assert doc["dut"]["customer"] in flat  # typed Vietnamese (and hostile) text, as typed
    assert "Lệch tâm · trước trái" in flat and "ĐẠT" in flat
    # Every character is drawn with the embedded DejaVu Sans (regular or bold) ...
    assert char_fonts(result.data) == {"MPDFAA+DejaVuSansBook", "MPDFAA+DejaVuSansBold"}
    # ... embedded as TrueType (FontFile2), and no standard font without Vietnamese.
    assert result.data.count(b"/FontFile2") == 2
    assert b"/Helvetica" not in result.data and b"/Times" not in result.data


def _char_boxes(page: Any, wanted: str) -> list[tuple[float, float, float, float]]:
    tp = page.get_textpage()
    return [tp.get_charbox(i) for i in range(tp.count_chars())
            if pdfium_c.FPDFText_GetUnicode(tp.raw, i) == ord(wanted)]


def test_stacked_accents_are_ink_on_the_rendered_page(runs: Runs, tmp_path: Path) -> None:
    data = render_pdf(approved(runs.doc(runs.calibrate)), lang="vi").data
    pdf = pdfium.PdfDocument(data)
    page = pdf[0]
    scale = 4.0
    image = page.render(scale=scale).to_pil().convert("L")
    image.save(tmp_path / "certificate-page1.png")
    height = page.get_height()
    # The title "GIẤY ...": "Ấ" (A, circumflex, acute) and its neighbour "G".
    a_box = _char_boxes(page, "Ấ")[0]
    g_box = _char_boxes(page, "G")[0]
    assert a_box[3] > g_box[3] + 1.0, "Ấ must reach above the cap height of G"

    def ink(box: tuple[float, float, float, float], top: float, bottom: float) -> int:
        left, _, right, _ = box
        region = image.crop((int(left * scale), int((height - top) * scale),
                             int(right * scale) + 1, int((height - bottom) * scale)))
        return sum(region.histogram()[:128])

    # Above the cap height (between G's top and Ấ's top) there is ink over Ấ only.
    accents = ink(a_box, a_box[3], g_box[3] + 0.3)
    assert accents > 20, f"no accent drawn above Ấ ({accents} dark pixels)"
    assert ink(g_box, a_box[3], g_box[3] + 0.3) == 0
    # The letter itself is drawn (not an empty box) under the accents.
    assert ink(a_box, g_box[3], a_box[1]) > 50


def test_decomposed_input_is_drawn_composed(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    composed = "Công ty Cổ phần Xăng dầu Quảng Trị"
    doc["dut"]["customer"] = unicodedata.normalize("NFD", composed)
    assert doc["dut"]["customer"] != composed
    result = render_pdf(doc, lang="vi")
    assert result.missing_glyphs == set()
    assert composed in " ".join("\n".join(pages_text(result.data)).split())


def test_a_character_the_font_lacks_is_reported_not_boxed(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    doc["dut"]["customer"] = "東京 Trading"
    result = render_pdf(doc, lang="en")
    assert result.missing_glyphs == {"東", "京"}
    assert "?? Trading" in " ".join(pages_text(result.data))


def test_draft_is_marked_on_every_page_and_final_is_not(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    draft = render_pdf(doc, lang="vi")
    assert not draft.final and draft.pages >= 2
    texts = pages_text(draft.data)
    assert len(texts) == draft.pages
    for t in texts:
        assert "BẢN NHÁP / DRAFT" in t  # the watermark and the footer of every page
    assert "HC-2025/0042" not in "".join(texts)
    final = render_pdf(approved(doc), lang="vi")
    assert final.final
    texts = pages_text(final.data)
    assert all("BẢN NHÁP" not in t and "DRAFT" not in t for t in texts)
    joined = " ".join(" ".join(texts).split())
    assert "HC-2025/0042" in joined and "Lê Hoàng Cường" in joined
    assert "2025-11-21 09:30 UTC" in joined


def test_same_record_same_file(runs: Runs) -> None:
    doc = approved(runs.doc(runs.verify), stamp="TKĐ-1", valid_until="2026-11-20")
    one = render_pdf(doc, lang="vi").data
    assert render_pdf(doc, lang="vi").data == one
    assert "Số tem / Stamp number" in " ".join(" ".join(pages_text(one)).split())


def test_pressure_certificate_renders(tmp_path: Path) -> None:
    result = render_pdf(pressure_doc(), lang="en")
    assert result.missing_glyphs == set()
    text = " ".join(" ".join(pages_text(result.data)).split())
    assert "Pressure / Áp suất (kgf/cm²)" in text and "Pressure (kgf/cm²)" in text


def test_font_ships_inside_the_package_with_its_licence() -> None:
    regular, bold = font_path(""), font_path("B")
    assert regular.is_file() and bold.is_file()
    assert "benchctl" in regular.parts and regular.parent.name == "fonts"
    licence = (regular.parent / "LICENSE").read_text(encoding="utf-8")
    assert "Bitstream Vera Fonts Copyright" in licence and "Arev Fonts Copyright" in licence

"""The HTML certificate: escaping of every typed text, draft versus final, overrides, people,
the verification stamp, and a chart that follows the kind of instrument."""

from __future__ import annotations

import copy
from html.parser import HTMLParser

from reportshelp import (
    BENCH_NAME,
    HOSTILE,
    ISSUER,
    SCRIPT,
    Runs,
    approved,
    dispenser_doc,
    pressure_doc,
)

from benchctl.reports.certificate import certificate_view, render_html
from benchctl.reports.chart import chart_model, error_chart_svg

#: The session fixture ``runs`` (real balance runs, made once for all report tests).
pytest_plugins = ("reportsplugin",)


class Elements(HTMLParser):
    """Every element and attribute the browser would build from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Elements:
    p = Elements()
    p.feed(html)
    p.close()
    return p


def test_every_typed_text_is_escaped(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    # Texts a person typed that the store does not carry yet are put in as the store will.
    doc = approved(doc)
    doc.update(performed_by=SCRIPT, amend_reason=f"sai số {SCRIPT}", revision=2,
               replaces_run_id=1)
    doc["people"]["approved_by"]["name"] = "<b onmouseover=alert(6)>Lê</b>"
    doc["overrides"] = [{"asset": "WS-F1-DEMO", "certificate": "KLC-2025-0412",
                         "due_date": "2024-01-01", "reason": f"chuẩn thay thế đang sửa {SCRIPT}",
                         "by": "<i>An</i>", "at": "2025-11-20T08:00:00+00:00"}]
    doc["dut"]["params"]["note<script>"] = "x\"'><script>alert(7)</script>"
    for lang in ("vi", "en"):
        html = render_html(doc, lang=lang)
        page = parse(html)
        # The only elements are the template's own: no script, img, iframe, b/i from data.
        assert not {"script", "img", "iframe"} & set(page.tags)
        assert "b" in page.tags  # the template's own bold certificate number ...
        assert page.tags.count("b") == 1  # ... and no <b> from a typed name
        assert "i" not in page.tags
        assert not any(name.startswith("on") for name, _ in page.attrs)
        # Each hostile text is there, as text, exactly as typed.
        text = "".join(page.text)
        for value in (*HOSTILE.values(), ISSUER, BENCH_NAME, SCRIPT,
                      "<b onmouseover=alert(6)>Lê</b>", "x\"'><script>alert(7)</script>"):
            assert value in text, value
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&#34;Sông Hương&#34;" in html or "&quot;Sông Hương&quot;" in html


def test_draft_has_no_number_and_says_so(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    assert doc["approved"] is False
    html = render_html(doc, lang="vi")
    assert 'id="draft"' in html
    assert "BẢN NHÁP — chưa được phê duyệt" in html and "DRAFT — not approved" in html
    assert "chưa cấp số (bản nháp, lần đo" in html
    assert "BC-" not in html  # no certificate number of any form
    assert "chưa phê duyệt / not approved" in html
    view = certificate_view(doc, lang="en")
    assert not view.final and view.number == f"not issued (draft of run {doc['run_id']})"


def test_approved_run_gives_the_final_certificate_with_people_and_times(runs: Runs) -> None:
    doc = approved(runs.doc(runs.calibrate))
    html = render_html(doc, lang="vi")
    assert 'id="draft"' not in html and "BẢN NHÁP" not in html
    assert "HC-2025/0042" in html
    text = "".join(parse(html).text)
    assert "Người thực hiện / Performed by" in text and "Nguyễn Văn An" in text
    assert "Người soát xét / Reviewed by" in text and "Trần Thị Bình" in text
    assert "Người phê duyệt / Approved by" in text and "Lê Hoàng Cường" in text
    assert "2025-11-21 09:30 UTC" in text and "2025-11-21 08:30 UTC" in text
    assert "Ngày ban hành / Date of issue" in text and "2025-11-21" in text


def test_approval_without_a_time_or_of_an_unfinished_run_stays_a_draft(runs: Runs) -> None:
    doc = approved(runs.doc(runs.calibrate))
    no_time = copy.deepcopy(doc)
    no_time["people"]["approved_by"]["at"] = None
    assert not certificate_view(no_time).final
    paused = copy.deepcopy(doc)
    paused["state"] = "paused"
    assert not certificate_view(paused).final
    assert certificate_view(doc).final


def test_certificate_contents_iso_17025(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    html = render_html(doc, lang="en")
    text = " ".join(parse(html).text)
    ref = doc["references"][0]
    # Laboratory header, method with procedure version, references with number and due date.
    assert "Technical Centre for Standards, Metrology and Quality" in text
    assert f"nawi_balance v{doc['procedure_version']}" in text
    assert ref["certificate"] in text and ref["due_date"] in text
    # Ambient conditions, U and k columns, the uncertainty note, the rule, the chart.
    t0 = doc["environment"]["start"]["temperature_c"]
    assert f"{t0:.4g}" in text
    assert "U (g)" in text and ">k<" in html
    assert "coverage factor k" in text
    assert "Simple acceptance (ILAC G8:09/2019" in text
    assert "covers every result in the table above" in text
    assert "<svg" in html and "Load (g)" in html
    # Every point of the run has its row.
    for p in doc["points"]:
        if p["error"] is not None:
            assert f"{p['error']:.6g}" in text


def test_overdue_reference_and_its_override_are_on_the_certificate(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    doc["references"][0].update(overdue=True, due_date="2025-01-01",
                                override_reason="Chuẩn mới đang hiệu chuẩn tại VMI")
    doc["overrides"] = [{"asset": doc["references"][0]["asset"],
                         "certificate": doc["references"][0]["certificate"],
                         "due_date": "2025-01-01", "reason": "Chuẩn mới đang hiệu chuẩn tại VMI",
                         "by": "Lê Hoàng Cường", "at": "2025-11-20T07:55:00+00:00"}]
    html = render_html(doc, lang="vi")
    text = " ".join(parse(html).text)
    assert "QUÁ HẠN — sử dụng ngoại lệ" in text
    assert "Sử dụng chuẩn quá hạn (ngoại lệ đã ghi nhận)" in text
    assert "lý do: Chuẩn mới đang hiệu chuẩn tại VMI" in text
    assert "ghi nhận bởi Lê Hoàng Cường, 2025-11-20 07:55 UTC" in text
    # In date: no override section.
    clean = runs.doc(runs.calibrate)
    assert "QUÁ HẠN" not in render_html(clean, lang="vi")
    assert "ngoại lệ đã ghi nhận" not in render_html(clean, lang="vi")


def test_verification_certificate_carries_stamp_and_validity(runs: Runs) -> None:
    doc = approved(runs.doc(runs.verify), stamp="TKĐ-123456", valid_until="2026-11-20")
    text = " ".join(parse(render_html(doc, lang="vi")).text)
    assert "GIẤY CHỨNG NHẬN KIỂM ĐỊNH / VERIFICATION CERTIFICATE" in text
    assert "Số tem / Stamp number" in text and "TKĐ-123456" in text
    assert "Hiệu lực đến / Valid until" in text and "2026-11-20" in text
    # A calibration has no stamp section.
    assert "Số tem" not in render_html(approved(runs.doc(runs.calibrate)), lang="vi")


def test_amendment_is_stated(runs: Runs) -> None:
    doc = approved(runs.doc(runs.calibrate))
    doc.update(revision=2, replaces_run_id=5, amend_reason="Sửa số sản xuất")
    text = " ".join(parse(render_html(doc, lang="vi")).text)
    assert "Lần ban hành / Revision" in text and "Sửa số sản xuất" in text
    assert "Thay thế giấy chứng nhận của lần đo / Replaces the certificate of run" in text


def test_chart_of_a_balance_plots_weighing_points_against_load(runs: Runs) -> None:
    doc = runs.doc(runs.calibrate)
    chart = chart_model(doc, "en")
    assert chart is not None
    weighing = [p for p in doc["points"] if p["test"] == "weighing"]
    assert len(chart.points) == len(weighing)  # eccentricity, repeatability stay out
    assert chart.x_label == "Load (g)" and chart.y_label == "Error (g)"
    # U bars and the MPE envelope: the plotted range holds every error ± U and every MPE.
    for pt in chart.points:
        assert pt.U is not None and abs(pt.error) + pt.U <= chart.y_max
    assert {m for _, m in chart.envelope} == {p["mpe"] for p in weighing}
    # The staircase holds each load's MPE up to that load.
    steps = chart.envelope_steps()
    for x, m in chart.envelope:
        assert (x, m) in steps
    # Up and down at the same load are drawn side by side, not on top of each other.
    at_2000 = [pt for pt in chart.points if pt.x == 2000.0]
    assert sorted(pt.slot for pt in at_2000) == list(range(len(at_2000))) and len(at_2000) == 2
    svg = error_chart_svg(chart)
    assert svg.count("<circle") == len(chart.points) + len(chart.groups)


def test_chart_of_a_pressure_gauge_uses_pressure_and_its_unit() -> None:
    doc = pressure_doc()
    chart = chart_model(doc, "vi")
    assert chart is not None
    assert chart.x_label == "Áp suất (kgf/cm²)" and chart.y_label == "Sai số (kgf/cm²)"
    assert len(chart.points) == 10 and chart.envelope[-1] == (10.0, 0.16)
    assert [g[1] for g in chart.groups] == ["series1 · tăng", "series1 · giảm"]
    html = render_html(doc, lang="vi")
    assert "Áp suất / Pressure (kgf/cm²)" in html and "Áp kế / Pressure gauge" in html


def test_chart_of_a_dispenser_uses_flow_and_percent_and_leaves_the_price_out() -> None:
    doc = dispenser_doc()
    chart = chart_model(doc, "en")
    assert chart is not None
    assert chart.x_label == "Flow rate (L/min)" and chart.y_label == "Error (%)"
    assert sorted({pt.x for pt in chart.points}) == [5.0, 40.0]
    assert len(chart.points) == 6  # the price check (error in đồng) is not a flow point
    assert chart.envelope == [(5.0, 0.3), (40.0, 0.3)]
    # Three deliveries at one flow are spread apart.
    assert sorted(pt.slot for pt in chart.points if pt.x == 40.0) == [0, 1, 2]
    html = render_html(doc, lang="en")
    text = " ".join(parse(html).text)
    assert "Flow rate / Lưu lượng (L/min)" in text
    assert "Volume / Thể tích (L)" in text
    assert "0 đồng" in text  # the price check keeps its own unit in the table


def test_chart_plots_the_evaluated_points_with_u_not_the_raw_series() -> None:
    """A gauge's calibration states U on its evaluated points (test "point"), not on each
    series reading: the chart shows the points with their U bars."""
    doc = pressure_doc()
    for p in doc["points"]:
        p["U"] = p["k"] = None
    doc["points"] += [{**doc["points"][i], "key": f"point.{x:g}", "test": "point", "U": 0.03,
                       "k": 2.0, "direction": None, "series": None, "error": 0.01}
                      for i, x in enumerate((0.0, 2.5, 5.0, 7.5, 10.0))]
    chart = chart_model(doc, "en")
    assert chart is not None
    assert len(chart.points) == 5 and all(pt.U == 0.03 for pt in chart.points)
    assert [g[1] for g in chart.groups] == ["result"]
    # Without any U (a verification), every series point is plotted, labelled by series.
    for p in doc["points"]:
        p["U"] = None
    chart = chart_model(doc, "en")
    assert chart is not None and len(chart.points) == 15
    assert [g[1] for g in chart.groups] == ["series1 · up", "series1 · down", "result"]


def test_several_limits_at_one_flow_are_drawn_as_levels() -> None:
    """A dispenser's MMQ deliveries (MPE 1 %) run at the same flow as the 20 L ones (0.3 %):
    the limit is no function of the flow, so each MPE is its own level, not a staircase."""
    doc = dispenser_doc()
    doc["points"].append({**doc["points"][0], "key": "mmq.delivery1", "nominal": 2.0,
                          "mpe": 1.0, "series": 1})
    chart = chart_model(doc, "vi")
    assert chart is not None and chart.levels == [0.3, 1.0]
    assert [g[1] for g in chart.groups] == ["kết quả", "lần 1"]
    svg = error_chart_svg(chart)
    assert "<polyline" not in svg and svg.count('stroke-dasharray="6 3"') == 4
    assert chart.y_max >= 1.0


def test_chart_labels_are_escaped() -> None:
    doc = pressure_doc()
    doc["dut"]["unit"] = "kPa<script>alert(8)</script>"
    for p in doc["points"]:
        p["error_unit"] = None
    html = render_html(doc, lang="en")
    assert "script" not in parse(html).tags
    assert "Pressure (kPa&lt;script&gt;alert(8)&lt;/script&gt;)" in html


def test_a_run_without_chartable_points_has_no_chart() -> None:
    doc = pressure_doc()
    for p in doc["points"]:
        p["error"] = None
    assert chart_model(doc) is None
    assert "<svg" not in render_html(doc)


def test_english_first_certificate(runs: Runs) -> None:
    html = render_html(runs.doc(runs.verify), lang="en")
    assert '<html lang="en">' in html
    assert "VERIFICATION CERTIFICATE / GIẤY CHỨNG NHẬN KIỂM ĐỊNH" in html

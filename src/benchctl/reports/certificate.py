"""The certificate as HTML (Vietnamese and English side by side, the bench's language first).

Jinja2 with autoescaping: every text a person typed (customer, serial, notes) is escaped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

from ..metrology.decision import RULE_TEXT, DecisionRule
from .chart import error_chart_svg

LABELS: dict[str, dict[str, str]] = {
    "title_verify": {"vi": "GIẤY CHỨNG NHẬN KIỂM ĐỊNH", "en": "VERIFICATION CERTIFICATE"},
    "title_calibrate": {"vi": "GIẤY CHỨNG NHẬN HIỆU CHUẨN", "en": "CALIBRATION CERTIFICATE"},
    "draft": {"vi": "BẢN NHÁP — chưa được phê duyệt", "en": "DRAFT — not approved"},
    "number": {"vi": "Số giấy chứng nhận", "en": "Certificate number"},
    "instrument": {"vi": "Phương tiện đo", "en": "Instrument"},
    "maker": {"vi": "Nhà sản xuất", "en": "Manufacturer"},
    "model": {"vi": "Kiểu", "en": "Model"},
    "serial": {"vi": "Số sản xuất", "en": "Serial number"},
    "customer": {"vi": "Khách hàng", "en": "Customer"},
    "characteristics": {"vi": "Đặc trưng kỹ thuật", "en": "Characteristics"},
    "method": {"vi": "Phương pháp", "en": "Method"},
    "procedure": {"vi": "Quy trình", "en": "Procedure"},
    "references": {"vi": "Chuẩn đo lường sử dụng", "en": "Reference standards used"},
    "ref_cert": {"vi": "Giấy chứng nhận", "en": "Certificate"},
    "due": {"vi": "Hạn hiệu chuẩn", "en": "Due date"},
    "environment": {"vi": "Điều kiện môi trường", "en": "Ambient conditions"},
    "start": {"vi": "Bắt đầu", "en": "Start"},
    "end": {"vi": "Kết thúc", "en": "End"},
    "results": {"vi": "Kết quả", "en": "Results"},
    "test": {"vi": "Phép thử", "en": "Test"},
    "load": {"vi": "Tải", "en": "Load"},
    "reference": {"vi": "Giá trị chuẩn", "en": "Reference"},
    "indication": {"vi": "Số chỉ", "en": "Indication"},
    "error": {"vi": "Sai số", "en": "Error"},
    "mpe": {"vi": "MPE", "en": "MPE"},
    "verdict": {"vi": "Kết luận", "en": "Verdict"},
    "decision_rule": {"vi": "Quy tắc quyết định", "en": "Decision rule"},
    "conformity": {"vi": "Công bố phù hợp", "en": "Statement of conformity"},
    "overall": {"vi": "Kết luận chung", "en": "Overall result"},
    "uncertainty_note": {
        "vi": "Độ không đảm bảo đo mở rộng U được công bố với hệ số phủ k, tương ứng mức tin "
              "cậy xấp xỉ 95 % (JCGM 100:2008).",
        "en": "The expanded uncertainty U is stated with the coverage factor k for a coverage "
              "probability of approximately 95 % (JCGM 100:2008)."},
    "performed": {"vi": "Người thực hiện", "en": "Performed by"},
    "date": {"vi": "Ngày thực hiện", "en": "Date"},
    "run": {"vi": "Lần đo", "en": "Run"},
    "chart": {"vi": "Sai số theo tải, thanh U và giới hạn MPE",
              "en": "Error against load, with U bars and the MPE envelope"},
    "eccentricity": {"vi": "Lệch tâm", "en": "Eccentricity"},
    "repeatability": {"vi": "Độ lặp lại", "en": "Repeatability"},
    "weighing": {"vi": "Cân", "en": "Weighing"},
    "up": {"vi": "tăng", "en": "up"},
    "down": {"vi": "giảm", "en": "down"},
    "pass": {"vi": "ĐẠT", "en": "PASS"},
    "fail": {"vi": "KHÔNG ĐẠT", "en": "FAIL"},
    "conditional_pass": {"vi": "ĐẠT CÓ ĐIỀU KIỆN", "en": "CONDITIONAL PASS"},
    "conditional_fail": {"vi": "KHÔNG ĐẠT CÓ ĐIỀU KIỆN", "en": "CONDITIONAL FAIL"},
}


def _fmt(value: Any, digits: int = 6) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def certificate_number(doc: dict[str, Any]) -> str:
    started = doc.get("started_at") or dt.datetime.now(dt.UTC).isoformat()
    return f"BC-{started[:4]}-{int(doc['run_id']):05d}"


def render_html(doc: dict[str, Any], *, lang: str = "vi", laboratory: str | None = None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True, trim_blocks=True, lstrip_blocks=True)
    other = "en" if lang == "vi" else "vi"

    def label(key: str) -> str:
        entry = LABELS[key]
        return f"{entry[lang]} / {entry[other]}"

    rows = doc["points"]
    unit = doc["dut"].get("unit") or ""
    chart = error_chart_svg(rows, x_label=f"{LABELS['load'][lang]} ({unit})",
                            y_label=f"{LABELS['error'][lang]} ({unit})")
    rule = doc.get("decision_rule") or "simple"
    rule_text: dict[str, str] = {}
    with contextlib.suppress(ValueError):
        rule_text = RULE_TEXT.get(DecisionRule(rule), {})
    template = env.get_template("certificate.html.j2")
    return template.render(
        doc=doc, lang=lang, label=label, fmt=_fmt, number=certificate_number(doc),
        laboratory=laboratory or "benchctl — Technical Centre for Standards, Metrology and "
        "Quality", chart=chart, rule_text=rule_text, labels=LABELS, other=other,
        draft=True, generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))


def write_html(doc: dict[str, Any], path: str | Path, *, lang: str = "vi") -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(doc, lang=lang), encoding="utf-8")
    return p

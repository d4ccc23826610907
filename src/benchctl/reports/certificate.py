"""The certificate: one view of a run document, rendered as HTML here and as PDF in :mod:`.pdf`.

:func:`certificate_view` decides everything a certificate says (ISO/IEC 17025 7.8: laboratory,
number, item and customer, method, references with their certificates and due dates, ambient
conditions, results with U and k, chart, decision rule and conformity, people with times;
Circular 24/2013 for the stamp and validity of a verification), in both languages with the
chosen one first. The renderers only lay it out, so HTML and PDF cannot drift apart.

Draft versus final: only a completed run that has been approved gives a final certificate with
its number; anything else is a draft, marked as such on every page and without a number.

Jinja2 autoescapes every value: customer, serial, notes and every other text a person typed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..metrology.decision import RULE_TEXT, DecisionRule
from .chart import Chart, chart_model, error_chart_svg
from .laboratory import Laboratory

LABELS: dict[str, dict[str, str]] = {
    "title_verify": {"vi": "GIẤY CHỨNG NHẬN KIỂM ĐỊNH", "en": "VERIFICATION CERTIFICATE"},
    "title_calibrate": {"vi": "GIẤY CHỨNG NHẬN HIỆU CHUẨN", "en": "CALIBRATION CERTIFICATE"},
    "draft": {"vi": "BẢN NHÁP — chưa được phê duyệt, không có giá trị chứng nhận",
              "en": "DRAFT — not approved, not valid as a certificate"},
    "draft_short": {"vi": "BẢN NHÁP", "en": "DRAFT"},
    "draft_number": {"vi": "chưa cấp số (bản nháp, lần đo {run})",
                     "en": "not issued (draft of run {run})"},
    "number": {"vi": "Số giấy chứng nhận", "en": "Certificate number"},
    "issue_date": {"vi": "Ngày ban hành", "en": "Date of issue"},
    "revision": {"vi": "Lần ban hành", "en": "Revision"},
    "replaces": {"vi": "Thay thế giấy chứng nhận của lần đo",
                 "en": "Replaces the certificate of run"},
    "amend_reason": {"vi": "Lý do sửa đổi", "en": "Reason for the amendment"},
    "replaces_number": {"vi": "Thay thế giấy chứng nhận số", "en": "Replaces certificate number"},
    "superseded": {"vi": "Đã được thay thế bởi bản sửa đổi của lần đo {run}",
                   "en": "Superseded by the revision of run {run}"},
    "instrument": {"vi": "Phương tiện đo", "en": "Instrument"},
    "kind": {"vi": "Tên phương tiện đo", "en": "Instrument type"},
    "maker": {"vi": "Nhà sản xuất", "en": "Manufacturer"},
    "model": {"vi": "Kiểu", "en": "Model"},
    "serial": {"vi": "Số sản xuất", "en": "Serial number"},
    "asset": {"vi": "Mã quản lý", "en": "Asset id"},
    "customer": {"vi": "Khách hàng", "en": "Customer"},
    "characteristics": {"vi": "Đặc trưng kỹ thuật", "en": "Characteristics"},
    "method": {"vi": "Phương pháp", "en": "Method"},
    "procedure": {"vi": "Quy trình", "en": "Procedure"},
    "documents": {"vi": "Văn bản áp dụng", "en": "Documents followed"},
    "parameters": {"vi": "Tham số", "en": "Parameters"},
    "references": {"vi": "Chuẩn đo lường sử dụng", "en": "Reference standards used"},
    "ref_cert": {"vi": "Giấy chứng nhận", "en": "Certificate"},
    "issuer": {"vi": "Nơi cấp", "en": "Issuer"},
    "due": {"vi": "Hạn hiệu chuẩn", "en": "Due date"},
    "status": {"vi": "Tình trạng", "en": "Status"},
    "in_date": {"vi": "còn hạn", "en": "in date"},
    "overdue": {"vi": "QUÁ HẠN — sử dụng ngoại lệ", "en": "PAST DUE — used under override"},
    "override_used": {"vi": "sử dụng ngoại lệ", "en": "used under override"},
    "overrides": {"vi": "Sử dụng chuẩn quá hạn (ngoại lệ đã ghi nhận)",
                  "en": "Use of past-due reference standards (recorded overrides)"},
    "override_line": {"vi": "{asset}, giấy chứng nhận {certificate}, hạn {due}{problem}: lý do: "
                            "{reason}",
                      "en": "{asset}, certificate {certificate}, due {due}{problem}: reason: "
                            "{reason}"},
    "override_by": {"vi": "ghi nhận bởi {by}", "en": "recorded by {by}"},
    "environment": {"vi": "Điều kiện môi trường", "en": "Ambient conditions"},
    "start": {"vi": "Bắt đầu", "en": "Start"},
    "end": {"vi": "Kết thúc", "en": "End"},
    "not_measured": {"vi": "không đo", "en": "not measured"},
    "results": {"vi": "Kết quả", "en": "Results"},
    "test": {"vi": "Phép thử", "en": "Test"},
    "load": {"vi": "Tải", "en": "Load"},
    "pressure": {"vi": "Áp suất", "en": "Pressure"},
    "volume": {"vi": "Thể tích", "en": "Volume"},
    "nominal": {"vi": "Danh định", "en": "Nominal"},
    "flow": {"vi": "Lưu lượng", "en": "Flow rate"},
    "reference": {"vi": "Giá trị chuẩn", "en": "Reference"},
    "indication": {"vi": "Số chỉ", "en": "Indication"},
    "error": {"vi": "Sai số", "en": "Error"},
    "mpe": {"vi": "MPE", "en": "MPE"},
    "verdict": {"vi": "Kết luận", "en": "Verdict"},
    "decision_rule": {"vi": "Quy tắc quyết định", "en": "Decision rule"},
    "conformity": {"vi": "Công bố phù hợp", "en": "Statement of conformity"},
    "conformity_scope": {
        "vi": "Công bố phù hợp áp dụng cho mọi kết quả trong bảng trên, so với sai số lớn nhất "
              "cho phép (MPE) ghi trong bảng.",
        "en": "The statement of conformity covers every result in the table above, against "
              "the maximum permissible error (MPE) stated there."},
    "overall": {"vi": "Kết luận chung", "en": "Overall result"},
    "uncertainty_note": {
        "vi": "Độ không đảm bảo đo mở rộng U được công bố với hệ số phủ k, tương ứng mức tin "
              "cậy xấp xỉ 95 % (JCGM 100:2008).",
        "en": "The expanded uncertainty U is stated with the coverage factor k for a coverage "
              "probability of approximately 95 % (JCGM 100:2008)."},
    "stamp": {"vi": "Tem kiểm định", "en": "Verification stamp"},
    "stamp_number": {"vi": "Số tem", "en": "Stamp number"},
    "valid_until": {"vi": "Hiệu lực đến", "en": "Valid until"},
    "people": {"vi": "Người thực hiện và phê duyệt", "en": "Performed and approved by"},
    "performed_by": {"vi": "Người thực hiện", "en": "Performed by"},
    "reviewed_by": {"vi": "Người soát xét", "en": "Reviewed by"},
    "approved_by": {"vi": "Người phê duyệt", "en": "Approved by"},
    "not_approved": {"vi": "chưa phê duyệt", "en": "not approved"},
    "not_reviewed": {"vi": "chưa soát xét", "en": "not reviewed"},
    "time": {"vi": "Thời gian", "en": "Time"},
    "performed": {"vi": "Người thực hiện", "en": "Performed by"},
    "date": {"vi": "Ngày thực hiện", "en": "Date of measurement"},
    "run": {"vi": "Lần đo", "en": "Run"},
    "operator_bench": {"vi": "kênh vận hành {operator}, bàn đo {bench}",
                       "en": "operator channel {operator}, bench {bench}"},
    "chart": {"vi": "Sai số, thanh độ không đảm bảo đo U và giới hạn MPE",
              "en": "Error with U bars and the MPE envelope"},
    "eccentricity": {"vi": "Lệch tâm", "en": "Eccentricity"},
    "repeatability": {"vi": "Độ lặp lại", "en": "Repeatability"},
    "weighing": {"vi": "Cân", "en": "Weighing"},
    "series": {"vi": "Loạt đo", "en": "Series"},
    "point": {"vi": "Điểm đo", "en": "Calibration point"},
    "delivery": {"vi": "Lần đo", "en": "Delivery"},
    "rate": {"vi": "Tổng hợp theo lưu lượng", "en": "Flow-rate summary"},
    "price": {"vi": "Tính tiền", "en": "Price calculation"},
    "hysteresis": {"vi": "Độ trễ", "en": "Hysteresis"},
    "zero": {"vi": "Điểm không", "en": "Zero"},
    "up": {"vi": "tăng", "en": "up"},
    "down": {"vi": "giảm", "en": "down"},
    "pass": {"vi": "ĐẠT", "en": "PASS"},
    "fail": {"vi": "KHÔNG ĐẠT", "en": "FAIL"},
    "conditional_pass": {"vi": "ĐẠT CÓ ĐIỀU KIỆN", "en": "CONDITIONAL PASS"},
    "conditional_fail": {"vi": "KHÔNG ĐẠT CÓ ĐIỀU KIỆN", "en": "CONDITIONAL FAIL"},
    "balance": {"vi": "Cân không tự động", "en": "Non-automatic weighing instrument"},
    "pressure_gauge": {"vi": "Áp kế", "en": "Pressure gauge"},
    "fuel_dispenser": {"vi": "Cột đo xăng dầu", "en": "Fuel dispenser"},
    "relate_only": {
        "vi": "Kết quả chỉ có giá trị đối với phương tiện đo nêu trên, tại thời điểm đo.",
        "en": "The results relate only to the item above, at the time of measurement."},
    "no_reproduction": {
        "vi": "Không được sao chép một phần giấy chứng nhận này nếu không có sự đồng ý bằng văn "
              "bản của phòng thí nghiệm.",
        "en": "This certificate shall not be reproduced except in full without the written "
              "approval of the laboratory."},
    "page": {"vi": "Trang", "en": "Page"},
    "software": {"vi": "Lập bởi benchctl", "en": "Produced by benchctl"},
}

#: Positions of a balance's pan (the engine's i18n ids are ``position.<name>``).
POSITIONS: dict[str, dict[str, str]] = {
    "centre": {"vi": "giữa", "en": "centre"},
    "front_left": {"vi": "trước trái", "en": "front left"},
    "back_left": {"vi": "sau trái", "en": "back left"},
    "back_right": {"vi": "sau phải", "en": "back right"},
    "front_right": {"vi": "trước phải", "en": "front right"},
}
VERDICT_CLASSES = ("pass", "fail", "conditional_pass", "conditional_fail")


def other_lang(lang: str) -> str:
    return "en" if lang == "vi" else "vi"


def bi(key: str, lang: str, **kw: Any) -> str:
    """A label in both languages, the chosen one first."""
    entry = LABELS[key]
    first, second = entry[lang], entry[other_lang(lang)]
    if kw:
        first, second = first.format(**kw), second.format(**kw)
    return f"{first} / {second}"


def one(key: str, lang: str, **kw: Any) -> str:
    text = LABELS[key][lang]
    return text.format(**kw) if kw else text


def fmt(value: Any, digits: int = 8) -> str:
    """A stored number as printed: up to ``digits`` significant digits, no binary noise."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)


def fmt_time(value: Any) -> str:
    """An ISO time from the store, as "2025-11-21 10:42 UTC" (the store keeps UTC)."""
    if not value:
        return "—"
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def certificate_number(doc: dict[str, Any]) -> str:
    """The number of a final certificate: the store's, else one made from the run id."""
    if doc.get("certificate_number"):
        return str(doc["certificate_number"])
    started = doc.get("started_at") or dt.datetime.now(dt.UTC).isoformat()
    return f"BC-{started[:4]}-{int(doc['run_id']):05d}"


def is_final(doc: dict[str, Any]) -> bool:
    """A final certificate needs a completed run that was approved (by whom and when)."""
    people = doc.get("people") or {}
    approved = people.get("approved_by") or {}
    return bool(doc.get("state") == "completed" and doc.get("approved")
                and approved.get("name") and approved.get("at"))


@dataclass
class Table:
    head: list[str]
    rows: list[list[str]]
    #: Per row: a CSS class for the verdict cell (pass, fail, ...) or "" (references: overdue).
    marks: list[str] = field(default_factory=list)
    #: Columns to align left (text), the rest are numbers aligned right.
    text_columns: frozenset[int] = frozenset({0})


@dataclass
class CertificateView:
    lang: str
    final: bool
    laboratory: Laboratory
    title: str
    number: str
    header: list[tuple[str, str]]
    instrument: list[tuple[str, str]]
    method: list[tuple[str, str]]
    references: Table
    overrides: list[str]
    environment: Table
    results: Table
    uncertainty_note: str | None
    chart: Chart | None
    rule_text: tuple[str, str]
    conformity: list[tuple[str, str]]
    overall: tuple[str, str]
    #: The run's verdict ("pass", "fail", ...; "" when none): the CSS class of the overall line.
    verdict: str
    stamp: list[tuple[str, str]]
    people: list[tuple[str, str, str]]
    notes: list[str]
    footer: str

    @property
    def other(self) -> str:
        return other_lang(self.lang)


def _place(p: dict[str, Any], lang: str) -> str:
    test = str(p.get("test") or "")
    parts = [LABELS[test][lang] if test in LABELS else test or str(p.get("key") or "")]
    if p.get("series") not in (None, ""):
        parts.append(str(p["series"]))
    rate = (p.get("extra") or {}).get("rate_label")
    if rate:
        parts.append(str(rate))
    if p.get("position"):
        pos = str(p["position"])
        parts.append(POSITIONS[pos][lang] if pos in POSITIONS else pos)
    if p.get("direction"):
        d = str(p["direction"])
        parts.append(LABELS[d][lang] if d in ("up", "down") else d)
    return " · ".join(parts)


def _verdict_text(verdict: Any, lang: str) -> str:
    v = str(verdict or "")
    return LABELS[v][lang] if v in VERDICT_CLASSES else (v or "—")


def _results_table(doc: dict[str, Any], lang: str) -> Table:
    unit = str(doc["dut"].get("unit") or "")
    kind = str(doc["dut"].get("kind") or "")
    calib = doc.get("mode") == "calibrate"
    points = doc.get("points") or []
    error_units = {str(p.get("error_unit") or unit) for p in points if p.get("error") is not None}
    err_unit = error_units.pop() if len(error_units) == 1 else ""
    x_word = {"balance": "load", "pressure_gauge": "pressure",
              "fuel_dispenser": "volume"}.get(kind, "nominal")
    has_flow = any(p.get("flow") is not None for p in points)

    def with_unit(label: str, u: str) -> str:
        return f"{label} ({u})" if u else label

    head = [bi("test", lang), with_unit(bi(x_word, lang), unit)]
    if has_flow:
        head.append(with_unit(bi("flow", lang), "L/min"))
    head += [with_unit(bi("reference", lang), unit), with_unit(bi("indication", lang), unit),
             with_unit(bi("error", lang), err_unit)]
    if calib:
        head += [with_unit("U", err_unit), "k"]
    head += [with_unit("± " + bi("mpe", lang), err_unit), bi("verdict", lang)]
    rows, marks = [], []
    for p in points:
        extra = p.get("extra") or {}
        if p.get("indicated") is None and ("s" in extra or "range" in extra):
            stats = [f"s = {fmt(extra['s'], 3)}"] if extra.get("s") is not None else []
            if extra.get("range") is not None:
                stats.append(f"max−min = {fmt(extra['range'], 3)}")
            indication = "; ".join(stats) or "—"
        else:
            indication = fmt(p.get("indicated"))
        cell_unit = "" if err_unit else f" {p.get('error_unit') or unit}"
        error = fmt(p.get("error"), 6)
        row = [_place(p, lang), fmt(p.get("nominal"))]
        if has_flow:
            row.append(fmt(p.get("flow"), 6))
        row += [fmt(p.get("reference")), indication,
                error + (cell_unit if p.get("error") is not None else "")]
        if calib:
            row += [fmt(p.get("U"), 2), fmt(p.get("k"), 3)]
        row += [fmt(p.get("mpe"), 6), _verdict_text(p.get("verdict"), lang)]
        rows.append(row)
        marks.append(str(p.get("verdict") or ""))
    return Table(head, rows, marks, frozenset({0, len(head) - 1}))


def _references_table(doc: dict[str, Any], lang: str) -> Table:
    head = [bi("asset", lang), bi("ref_cert", lang), bi("issuer", lang), bi("due", lang),
            "U (k)", bi("status", lang)]
    rows, marks = [], []
    for r in doc.get("references") or []:
        u = ""
        if r.get("U") is not None:
            u = f"{fmt(r['U'], 3)}{' ' + str(r['U_unit']) if r.get('U_unit') else ''}"
            if r.get("k") is not None:
                u += f" ({fmt(r['k'], 3)})"
        overdue = bool(r.get("overdue"))
        overridden = bool(r.get("override_reason"))
        status = (one("overdue", lang) if overdue else one("override_used", lang) if overridden
                  else one("in_date", lang))
        name = str(r.get("asset") or "")
        what = " ".join(str(r[k]) for k in ("maker", "model") if r.get(k))
        if what:
            name += f" ({what})"
        rows.append([name, str(r.get("certificate") or "—"), str(r.get("issuer") or "—"),
                     str(r.get("due_date") or "—"), u or "—", status])
        marks.append("overdue" if overdue or overridden else "")
    return Table(head, rows, marks, frozenset({0, 1, 2, 5}))


def _environment_table(doc: dict[str, Any], lang: str) -> Table:
    env = doc.get("environment") or {}
    head = ["", "t (°C)", "RH (%)", "p (hPa)"]
    rows = []
    for name in ("start", "end"):
        e = env.get(name)
        if isinstance(e, dict) and e.get("measured", True):
            rows.append([bi(name, lang), fmt(e.get("temperature_c"), 4),
                         fmt(e.get("humidity_pct"), 3), fmt(e.get("pressure_hpa"), 5)])
        else:
            rows.append([bi(name, lang), "—", "—", "—"])
    return Table(head, rows, [], frozenset({0}))


def _characteristics(doc: dict[str, Any]) -> str:
    unit = str(doc["dut"].get("unit") or "")
    with_unit = {"max", "min", "d", "e", "resolution", "range"}
    parts = []
    for k, v in (doc["dut"].get("params") or {}).items():
        text = ", ".join(fmt(x) for x in v) if isinstance(v, list | tuple) else fmt(v)
        if isinstance(v, list | tuple):
            text = f"[{text}]"
        parts.append(f"{k} = {text}{' ' + unit if k in with_unit and unit else ''}")
    return "; ".join(parts) or "—"


def certificate_view(doc: dict[str, Any], *, lang: str = "vi",
                     laboratory: Laboratory | None = None) -> CertificateView:
    if lang not in ("vi", "en"):
        raise ValueError(f"certificate language {lang!r}: expected vi or en")
    lab = laboratory or Laboratory()
    final = is_final(doc)
    verify = doc.get("mode") == "verify"
    people = doc.get("people") or {}
    number = certificate_number(doc) if final else one("draft_number", lang, run=doc["run_id"])
    approved_at = (people.get("approved_by") or {}).get("at")

    header = [(bi("number", lang), number)]
    if final:
        header.append((bi("issue_date", lang), str(approved_at)[:10]))
    header.append((bi("date", lang), _period(doc)))
    header.append((bi("run", lang), f"{doc['run_id']} ({doc.get('state')})"))
    revision = int(doc.get("revision") or 1)
    if revision > 1 or doc.get("replaces_run_id"):
        header.append((bi("revision", lang), str(revision)))
        if doc.get("replaces_certificate_number"):
            header.append((bi("replaces_number", lang), str(doc["replaces_certificate_number"])))
        if doc.get("replaces_run_id"):
            header.append((bi("replaces", lang), str(doc["replaces_run_id"])))
        if doc.get("amend_reason"):
            header.append((bi("amend_reason", lang), str(doc["amend_reason"])))
    if doc.get("replaced_by_run_id"):
        # ISO/IEC 17025 7.8.8: a replaced certificate must be identifiable as such.
        header.append((bi("status", lang), bi("superseded", lang, run=doc["replaced_by_run_id"])))

    dut = doc["dut"]
    kind = str(dut.get("kind") or "")
    instrument = [
        (bi("kind", lang), bi(kind, lang) if kind in LABELS else kind or "—"),
        (bi("maker", lang), str(dut.get("maker") or "—")),
        (bi("model", lang), str(dut.get("model") or "—")),
        (bi("serial", lang), str(dut.get("serial") or "—")),
        (bi("asset", lang), str(dut.get("asset") or "—")),
        (bi("characteristics", lang), _characteristics(doc)),
        (bi("customer", lang), str(dut.get("customer") or "—")),
    ]
    params = "; ".join(f"{k} = {fmt(v)}" for k, v in (doc.get("params") or {}).items())
    method = [
        (bi("procedure", lang), f"{doc.get('procedure_title')} ({doc.get('procedure')} "
                                f"v{doc.get('procedure_version')})"),
        (bi("documents", lang), str(doc.get("procedure_documents") or "—")),
        ("SHA-256", str(doc.get("procedure_sha256") or "—")),
    ]
    if params:
        method.append((bi("parameters", lang), params))

    overrides = []
    for o in doc.get("overrides") or []:
        line = one("override_line", lang, asset=o.get("asset") or o.get("asset_id") or "—",
                   certificate=o.get("certificate") or "—", due=o.get("due_date") or "—",
                   problem=f" ({o['problem']})" if o.get("problem") else "",
                   reason=o.get("reason") or o.get("override_reason") or "—")
        by = o.get("by") or o.get("actor")
        if by:
            line += f" ({one('override_by', lang, by=by)}"
            line += f", {fmt_time(o.get('at'))})" if o.get("at") else ")"
        overrides.append(line)

    rule = str(doc.get("decision_rule") or "simple")
    texts: dict[str, str] = {}
    with contextlib.suppress(ValueError):
        texts = RULE_TEXT.get(DecisionRule(rule), {})
    rule_text = (texts.get(lang, rule), texts.get(other_lang(lang), ""))
    verdict = str(doc.get("verdict") or "")
    overall = (bi("overall", lang), _verdict_text(verdict, lang) + (
        f" / {_verdict_text(verdict, other_lang(lang))}" if verdict in VERDICT_CLASSES else ""))
    conformity = [(LABELS["conformity_scope"][lang], LABELS["conformity_scope"][other_lang(lang)])]

    stamp: list[tuple[str, str]] = []
    if verify:
        stamp = [(bi("stamp_number", lang), str(doc.get("stamp_number") or "—")),
                 (bi("valid_until", lang), str(doc.get("valid_until") or "—"))]

    people_rows = []
    for role in ("performed_by", "reviewed_by", "approved_by"):
        who = people.get(role) or {}
        name = str(who.get("name") or "")
        if role == "performed_by":
            how = one("operator_bench", lang, operator=doc.get("operator"), bench=doc.get("bench"))
            name = f"{name or '—'} ({how})"
        elif not name:
            name = "— (" + bi("not_approved" if role == "approved_by" else "not_reviewed",
                              lang) + ")"
        people_rows.append((bi(role, lang), name, fmt_time(who.get("at"))))

    title = bi("title_verify" if verify else "title_calibrate", lang)
    footer = f"{number} · {lab.display_name(lang)}"
    if not final:
        footer = f"{one('draft_short', lang)} / {one('draft_short', other_lang(lang))} · {footer}"
    return CertificateView(
        lang=lang, final=final, laboratory=lab, title=title, number=number, header=header,
        instrument=instrument, method=method, references=_references_table(doc, lang),
        overrides=overrides, environment=_environment_table(doc, lang),
        results=_results_table(doc, lang),
        uncertainty_note=bi("uncertainty_note", lang) if doc.get("mode") == "calibrate" else None,
        chart=chart_model(doc, lang), rule_text=rule_text, conformity=conformity,
        overall=overall, verdict=verdict if verdict in VERDICT_CLASSES else "", stamp=stamp,
        people=people_rows,
        notes=[bi("relate_only", lang), bi("no_reproduction", lang)], footer=footer)


def _period(doc: dict[str, Any]) -> str:
    start = str(doc.get("started_at") or "")[:10]
    end = str(doc.get("ended_at") or "")[:10]
    if end and end != start:
        return f"{start} … {end}"
    return start or "—"


def render_html(doc: dict[str, Any], *, lang: str = "vi",
                laboratory: Laboratory | str | None = None) -> str:
    import jinja2

    if isinstance(laboratory, str):
        laboratory = Laboratory(name=laboratory, name_en=laboratory)
    view = certificate_view(doc, lang=lang, laboratory=laboratory)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined)
    template = env.get_template("certificate.html.j2")
    return template.render(v=view, label=lambda key: bi(key, lang),
                           chart_svg=error_chart_svg(view.chart))


def write_html(doc: dict[str, Any], path: str | Path, *, lang: str = "vi",
               laboratory: Laboratory | None = None) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(doc, lang=lang, laboratory=laboratory), encoding="utf-8")
    return p

"""One message catalogue for everything a technician reads: Vietnamese and English.

Procedures and the engine refer to messages by id; the text comes from here, so a translation
is fixed in one place and the TUI, the terminal and the certificate say the same thing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

#: The languages every message exists in; the first is the default of a bench file.
LOCALES = ("vi", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    "place_load": {
        "en": "Place {load} on the pan at position: {position}.",
        "vi": "Đặt tải {load} lên đĩa cân tại vị trí: {position}.",
    },
    "remove_load": {
        "en": "Remove all weights from the pan.",
        "vi": "Lấy hết quả cân ra khỏi đĩa cân.",
    },
    "zero_balance": {
        "en": "Empty the pan and zero the balance.",
        "vi": "Để trống đĩa cân và đặt cân về không.",
    },
    "read_value": {
        "en": "Read {instrument} and enter the indication in {unit} (resolution {resolution}).",
        "vi": "Đọc {instrument} và nhập số chỉ theo {unit} (độ phân giải {resolution}).",
    },
    "instrument_fault": {
        "en": "Instrument {instrument} did not answer properly: {error}. Check it, then retry "
              "or abort (the run can be resumed later).",
        "vi": "Thiết bị {instrument} không trả lời đúng: {error}. Kiểm tra thiết bị rồi thử lại "
              "hoặc dừng (có thể tiếp tục phép đo sau).",
    },
    "retry": {"en": "retry", "vi": "thử lại"},
    "abort": {"en": "abort", "vi": "dừng"},
    "position.centre": {"en": "centre", "vi": "giữa"},
    "position.front_left": {"en": "front left", "vi": "trước trái"},
    "position.back_left": {"en": "back left", "vi": "sau trái"},
    "position.back_right": {"en": "back right", "vi": "sau phải"},
    "position.front_right": {"en": "front right", "vi": "trước phải"},
    "step.ambient_start": {"en": "Ambient conditions at start", "vi": "Điều kiện môi trường lúc bắt đầu"},
    "step.ambient_end": {"en": "Ambient conditions at end", "vi": "Điều kiện môi trường lúc kết thúc"},
    "step.zero": {"en": "Zero indication", "vi": "Chỉ thị không"},
    "step.eccentricity": {"en": "Eccentricity test", "vi": "Kiểm tra độ lệch tâm"},
    "step.repeatability": {"en": "Repeatability test", "vi": "Kiểm tra độ lặp lại"},
    "step.weighing_up": {"en": "Weighing test, increasing loads", "vi": "Kiểm tra cân, tải tăng dần"},
    "step.weighing_down": {"en": "Weighing test, decreasing loads", "vi": "Kiểm tra cân, tải giảm dần"},
    "verdict.pass": {"en": "PASS", "vi": "ĐẠT"},
    "verdict.fail": {"en": "FAIL", "vi": "KHÔNG ĐẠT"},
    "verdict.conditional_pass": {"en": "CONDITIONAL PASS", "vi": "ĐẠT CÓ ĐIỀU KIỆN"},
    "verdict.conditional_fail": {"en": "CONDITIONAL FAIL", "vi": "KHÔNG ĐẠT CÓ ĐIỀU KIỆN"},
}


def register(messages: dict[str, dict[str, str]]) -> None:
    """Add a procedure's or driver's own messages (each with "en" and "vi") to the catalogue.

    Library modules outside the engine bring their texts with them; an id already in the
    catalogue must not be redefined differently.
    """
    for message_id, entry in messages.items():
        if "en" not in entry or "vi" not in entry:
            raise ValueError(f"message {message_id!r} needs both 'en' and 'vi'")
        existing = CATALOGUE.get(message_id)
        if existing is not None and existing != entry:
            raise ValueError(f"message {message_id!r} is already defined differently")
        CATALOGUE[message_id] = dict(entry)


def t(message_id: str, locale: str = "en", **params: Any) -> str:
    """The text of ``message_id`` in ``locale`` (English when a translation is missing)."""
    entry = CATALOGUE.get(message_id)
    if entry is None:
        return message_id.format(**params) if params else message_id
    text = entry.get(locale) or entry["en"]
    return text.format(**params) if params else text


def bilingual(message_id: str, primary: str = "vi", **params: Any) -> str:
    """Both languages, the bench's own first: for prompts read by any technician."""
    other = "en" if primary == "vi" else "vi"
    return f"{t(message_id, primary, **params)} / {t(message_id, other, **params)}"


# -- locale formats ------------------------------------------------------------------------
# A technician reads and types numbers and dates the way the country writes them: a
# Vietnamese certificate says 1.234,5 g on 21/11/2026, an English one 1,234.5 g on
# 2026-11-21. One place decides, so the TUI, the terminal and the certificate agree.

#: (thousands separator, decimal separator) per locale.
SEPARATORS: dict[str, tuple[str, str]] = {"vi": (".", ","), "en": (",", ".")}
DATE_FORMATS: dict[str, str] = {"vi": "%d/%m/%Y", "en": "%Y-%m-%d"}
#: pint spellings a technician would not write.
UNIT_DISPLAY: dict[str, str] = {"degC": "°C", "degree_Celsius": "°C", "percent": "%",
                                "percent_RH": "%RH", "liter": "L", "l": "L"}


def _separators(locale: str) -> tuple[str, str]:
    return SEPARATORS.get(locale, SEPARATORS["en"])


def _plain(x: float) -> str:
    """The shortest decimal text that reads back as ``x``, never in exponent form."""
    from decimal import Decimal

    text = format(Decimal(repr(x)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_number(value: float | int | None, locale: str = "en", *, decimals: int | None = None,
                  digits: int | None = None, group: bool = True, sign: bool = False) -> str:
    """``value`` as this locale writes it: vi ``1.234,5``, en ``1,234.5``.

    ``decimals`` fixes the places after the separator (a reading shown to its resolution);
    ``digits`` rounds to significant digits first (a computed error); otherwise the shortest
    text that reads back as the value. None (no value) is an em dash.
    """
    if value is None or isinstance(value, bool):
        return "—"
    x = float(value)
    if not math.isfinite(x):
        return "—"
    if decimals is not None:
        text = f"{abs(x):.{max(0, decimals)}f}"
    else:
        if digits is not None and x != 0:
            x = float(f"{x:.{digits}g}")
        text = _plain(abs(x))
    whole, _, frac = text.partition(".")
    sep, point = _separators(locale)
    if group and len(whole) > 3:
        head = len(whole) % 3 or 3
        whole = whole[:head] + "".join(sep + whole[i:i + 3] for i in range(head, len(whole), 3))
    out = whole + (point + frac if frac else "")
    if x < 0 and any(c not in "0.," for c in text):
        return "-" + out
    return ("+" + out) if sign and x > 0 else out


def resolution_decimals(step: float | None) -> int | None:
    """Places after the separator of a scale division (0.1 -> 1, 0.05 -> 2, 5 -> 0)."""
    if step is None or not step > 0:
        return None
    text = _plain(float(step))
    return len(text.partition(".")[2])


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def parse_number(text: str, locale: str = "en") -> float:
    """A number typed by a technician of this locale; ValueError when it is not one.

    Both separators are understood where unambiguous: ``1.234,5`` (vi), ``1,234.5`` (en),
    and a lone separator that cannot be a thousands group is the decimal one, so a keypad's
    ``0.5`` is accepted on a Vietnamese bench and ``0,5`` on an English one. Exponents,
    ``inf`` and ``nan`` are refused: nobody reads them off an instrument.
    """
    s = text.strip().replace(" ", "").replace("\u00a0", "").replace("\u2212", "-")
    if not s:
        raise ValueError("empty")
    sep, point = _separators(locale)
    grouped = re.compile(r"[+-]?\d{1,3}(" + re.escape(sep) + r"\d{3})+(" + re.escape(point)
                         + r"\d*)?")
    if sep in s and point in s:
        if s.rfind(sep) > s.rfind(point) or not grouped.fullmatch(s):
            raise ValueError(f"{text!r} is not a number")
        s = s.replace(sep, "").replace(point, ".")
    elif sep in s:
        if grouped.fullmatch(s):
            s = s.replace(sep, "")
        elif s.count(sep) == 1:
            s = s.replace(sep, ".")
        else:
            raise ValueError(f"{text!r} is not a number")
    else:
        s = s.replace(point, ".")
    if not _NUMBER.fullmatch(s):
        raise ValueError(f"{text!r} is not a number")
    return float(s)


def format_date(value: dt.date | None, locale: str = "en") -> str:
    """vi ``21/11/2026``, en ``2026-11-21``."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.strftime(DATE_FORMATS.get(locale, DATE_FORMATS["en"]))


def format_datetime(value: dt.datetime | None, locale: str = "en",
                    tz: dt.tzinfo | None = None) -> str:
    """A moment in the bench's local time (or ``tz``), to the minute."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(tz) if tz is not None else value.astimezone()
    return f"{format_date(value.date(), locale)} {value:%H:%M}"


def parse_date(text: str, locale: str = "en") -> dt.date:
    """A date typed in this locale's format, or ISO (always accepted); ValueError otherwise."""
    s = text.strip()
    for fmt in (DATE_FORMATS.get(locale, DATE_FORMATS["en"]), "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    expected = format_date(dt.date(2026, 11, 21), locale)
    raise ValueError(f"{text!r} is not a date like {expected}")


def display_unit(unit: str | None) -> str:
    """A unit as printed on a display, not as pint spells it (degC -> °C)."""
    if not unit:
        return ""
    return UNIT_DISPLAY.get(unit, unit)


# -- the technician's TUI ------------------------------------------------------------------
# Every text of benchctl.tui (labels, keys, dialogs, notes). Ids start with "tui.".

_TUI: dict[str, dict[str, str]] = {
    # screens and the top bar
    "tui.screen.bench": {"en": "Bench", "vi": "Bàn kiểm"},
    "tui.screen.run": {"en": "Run", "vi": "Phép đo"},
    "tui.screen.history": {"en": "History", "vi": "Lịch sử"},
    "tui.screen.register": {"en": "Register", "vi": "Sổ thiết bị"},
    "tui.top.run": {"en": "Run {run}", "vi": "Phép đo {run}"},
    # footer keys
    "tui.key.help": {"en": "Help", "vi": "Trợ giúp"},
    "tui.key.bench": {"en": "Bench", "vi": "Bàn kiểm"},
    "tui.key.run": {"en": "Run", "vi": "Phép đo"},
    "tui.key.history": {"en": "History", "vi": "Lịch sử"},
    "tui.key.register": {"en": "Register", "vi": "Sổ thiết bị"},
    "tui.key.language": {"en": "Tiếng Việt", "vi": "English"},
    "tui.key.quit": {"en": "Quit", "vi": "Thoát"},
    "tui.key.start": {"en": "Start", "vi": "Bắt đầu"},
    "tui.key.pause": {"en": "Pause", "vi": "Tạm dừng"},
    "tui.key.resume": {"en": "Resume", "vi": "Tiếp tục"},
    "tui.key.abort": {"en": "Abort", "vi": "Hủy"},
    "tui.key.new_run": {"en": "New run", "vi": "Phép đo mới"},
    "tui.key.details": {"en": "Details", "vi": "Chi tiết"},
    "tui.key.export_certificate": {"en": "Export certificate", "vi": "Xuất giấy chứng nhận"},
    "tui.key.export_data": {"en": "Export data", "vi": "Xuất dữ liệu"},
    "tui.key.resume_run": {"en": "Resume run", "vi": "Tiếp tục phép đo"},
    "tui.key.refresh": {"en": "Refresh", "vi": "Làm mới"},
    "tui.key.new_asset": {"en": "New asset", "vi": "Thêm thiết bị"},
    "tui.key.edit_asset": {"en": "Edit asset", "vi": "Sửa thiết bị"},
    "tui.key.new_certificate": {"en": "Add certificate", "vi": "Thêm giấy chứng nhận"},
    "tui.key.close": {"en": "Close", "vi": "Đóng"},
    # buttons
    "tui.btn.done": {"en": "Done", "vi": "Xong"},
    "tui.btn.ok": {"en": "OK", "vi": "Đồng ý"},
    "tui.btn.yes": {"en": "Yes", "vi": "Có"},
    "tui.btn.no": {"en": "No", "vi": "Không"},
    "tui.btn.abort_run": {"en": "Abort run", "vi": "Hủy phép đo"},
    "tui.btn.start": {"en": "Start run", "vi": "Bắt đầu phép đo"},
    "tui.btn.search": {"en": "Search", "vi": "Tìm"},
    "tui.btn.save": {"en": "Save", "vi": "Lưu"},
    "tui.btn.cancel": {"en": "Cancel", "vi": "Bỏ qua"},
    "tui.btn.close": {"en": "Close", "vi": "Đóng"},
    "tui.btn.use_anyway": {"en": "Use it anyway", "vi": "Vẫn dùng"},
    # run states
    "tui.state.setup": {"en": "not started", "vi": "chưa bắt đầu"},
    "tui.state.idle": {"en": "idle", "vi": "chờ"},
    "tui.state.starting": {"en": "starting", "vi": "đang khởi động"},
    "tui.state.running": {"en": "running", "vi": "đang đo"},
    "tui.state.paused": {"en": "paused", "vi": "tạm dừng"},
    "tui.state.aborting": {"en": "aborting", "vi": "đang hủy"},
    "tui.state.aborted": {"en": "aborted", "vi": "đã hủy"},
    "tui.state.completed": {"en": "completed", "vi": "hoàn thành"},
    "tui.state.failed": {"en": "failed", "vi": "lỗi"},
    "tui.state.refused": {"en": "not started", "vi": "không bắt đầu được"},
    "tui.mode.verify": {"en": "verification", "vi": "kiểm định"},
    "tui.mode.calibrate": {"en": "calibration", "vi": "hiệu chuẩn"},
    # instruments
    "tui.bench.none": {"en": "No bench file: start with `benchctl tui --bench bench.toml` to see the instruments. History and register work without one.", "vi": "Chưa có tệp bàn kiểm: chạy `benchctl tui --bench bench.toml` để xem thiết bị. Lịch sử và sổ thiết bị vẫn dùng được."},
    "tui.bench.summary": {"en": "{bench} · {count} instruments · {file}", "vi": "{bench} · {count} thiết bị · {file}"},
    "tui.bench.col.name": {"en": "Instrument", "vi": "Thiết bị"},
    "tui.bench.col.role": {"en": "Role", "vi": "Vai trò"},
    "tui.bench.col.status": {"en": "Connection", "vi": "Kết nối"},
    "tui.bench.col.value": {"en": "Value", "vi": "Giá trị"},
    "tui.bench.col.minute": {"en": "Last minute", "vi": "Một phút qua"},
    "tui.status.connecting": {"en": "connecting", "vi": "đang kết nối"},
    "tui.status.connected": {"en": "connected", "vi": "đã kết nối"},
    "tui.status.disconnected": {"en": "disconnected", "vi": "mất kết nối"},
    "tui.status.held": {"en": "in use by the run", "vi": "đang dùng cho phép đo"},
    "tui.status.manual": {"en": "read by hand", "vi": "đọc thủ công"},
    "tui.status.no_live": {"en": "no live value", "vi": "không có giá trị trực tiếp"},
    "tui.status.error": {"en": "not usable", "vi": "không dùng được"},
    "tui.role.balance": {"en": "balance", "vi": "cân"},
    "tui.role.environment_monitor": {"en": "environment", "vi": "môi trường"},
    "tui.role.pressure_indicator": {"en": "pressure gauge", "vi": "áp kế"},
    "tui.role.pressure_controller": {"en": "pressure controller", "vi": "bộ điều khiển áp suất"},
    "tui.role.flow_meter": {"en": "master meter", "vi": "đồng hồ chuẩn"},
    "tui.role.fuel_dispenser": {"en": "fuel dispenser", "vi": "cột đo nhiên liệu"},
    "tui.bench_role.dut": {"en": "DUT", "vi": "PTĐ"},
    "tui.bench_role.reference": {"en": "reference", "vi": "chuẩn"},
    "tui.bench_role.environment": {"en": "environment", "vi": "môi trường"},
    "tui.kind.balance": {"en": "balance", "vi": "cân"},
    "tui.kind.pressure_gauge": {"en": "pressure gauge", "vi": "áp kế"},
    "tui.kind.fuel_dispenser": {"en": "fuel dispenser", "vi": "cột đo nhiên liệu"},
    "tui.kind.weight_set": {"en": "weight set", "vi": "bộ quả cân"},
    "tui.kind.pressure_controller": {"en": "pressure controller", "vi": "bộ điều khiển áp suất"},
    "tui.kind.flow_meter": {"en": "master meter", "vi": "đồng hồ chuẩn"},
    "tui.kind.proving_measure": {"en": "proving measure", "vi": "bình chuẩn"},
    "tui.kind.environment_monitor": {"en": "environment monitor", "vi": "thiết bị đo môi trường"},
    # run setup
    "tui.run.setup_title": {"en": "New run", "vi": "Phép đo mới"},
    "tui.run.procedure": {"en": "Procedure", "vi": "Quy trình"},
    "tui.run.dut": {"en": "DUT", "vi": "PTĐ"},
    "tui.run.mode": {"en": "Kind of run", "vi": "Loại phép đo"},
    "tui.run.params": {"en": "Parameters (KEY=VALUE …)", "vi": "Tham số (KHÓA=GIÁ TRỊ …)"},
    "tui.run.references": {"en": "Reference standards", "vi": "Chuẩn đo lường"},
    "tui.run.performed_by": {"en": "Performed by", "vi": "Người thực hiện"},
    "tui.run.override": {"en": "Override reason", "vi": "Lý do vẫn dùng chuẩn"},
    "tui.run.override_hint": {"en": "only to use a reference past its due date or outside its calibrated range: recorded and printed on the certificate", "vi": "chỉ khi dùng chuẩn đã quá hạn hoặc ngoài phạm vi đã hiệu chuẩn: được ghi lại và in trên giấy chứng nhận"},
    "tui.run.choose_performer": {"en": "Choose who performs the run.", "vi": "Hãy chọn người thực hiện."},
    "fitness.refused": {"en": "reference {asset} (certificate {certificate}) {problems}", "vi": "chuẩn {asset} (giấy chứng nhận {certificate}) {problems}"},
    "fitness.past_due": {"en": "was due for recalibration on {due} ({days} days before {on})", "vi": "đã đến hạn hiệu chuẩn lại ngày {due} (quá hạn {days} ngày tính đến {on})"},
    "fitness.past_due_1": {"en": "was due for recalibration on {due} ({days} day before {on})", "vi": "đã đến hạn hiệu chuẩn lại ngày {due} (quá hạn {days} ngày tính đến {on})"},
    "fitness.range_unstated": {"en": "is used over {needed} but neither its certificate nor the register states the range it covers", "vi": "được dùng trong khoảng {needed} nhưng giấy chứng nhận và sổ đăng ký đều không ghi phạm vi hiệu chuẩn của chuẩn"},
    "fitness.range_incomparable": {"en": "is used over {needed} but its certificate covers {covered}, which is not comparable ({why})", "vi": "được dùng trong khoảng {needed} nhưng giấy chứng nhận ghi phạm vi {covered}, không so sánh được ({why})"},
    "fitness.range_outside": {"en": "is used over {needed}, outside the range its certificate covers ({covered})", "vi": "được dùng trong khoảng {needed}, ngoài phạm vi ghi trên giấy chứng nhận ({covered})"},
    "tui.override.title": {"en": "Reference refused for this run", "vi": "Chuẩn bị từ chối cho phép đo này"},
    "tui.override.text": {"en": "To use it anyway, give the reason (for example: recalibration booked, checked against another standard today). It is recorded with the run and printed on the certificate.", "vi": "Để vẫn dùng chuẩn này, hãy ghi lý do (ví dụ: đã đặt lịch hiệu chuẩn lại, hôm nay đã kiểm tra với chuẩn khác). Lý do được lưu cùng phép đo và in trên giấy chứng nhận."},
    "tui.override.placeholder": {"en": "reason to use this reference anyway", "vi": "lý do vẫn dùng chuẩn này"},
    "tui.override.empty": {"en": "Give a reason, or Cancel.", "vi": "Hãy nhập lý do, hoặc chọn Bỏ qua."},
    "tui.run.no_references": {"en": "The bench file names no reference standard.", "vi": "Tệp bàn kiểm không có chuẩn nào."},
    "tui.run.cert": {"en": "certificate {number}", "vi": "giấy chứng nhận {number}"},
    "tui.run.due": {"en": "due", "vi": "hạn"},
    "tui.run.source.file": {"en": "from its file", "vi": "từ tệp"},
    "tui.run.source.register": {"en": "from the register", "vi": "từ sổ thiết bị"},
    "tui.run.source.instrument": {"en": "instrument of the bench", "vi": "thiết bị của bàn kiểm"},
    "tui.run.reference_missing": {"en": "{slot}: no {kind} on this bench (add [references.{slot}] to the bench file)", "vi": "{slot}: bàn kiểm không có {kind} (thêm [references.{slot}] vào tệp bàn kiểm)"},
    "tui.run.keep_reference": {"en": "use {asset} (bench file)", "vi": "dùng {asset} (tệp bàn kiểm)"},
    "tui.run.no_asset": {"en": "reference {asset} is not in the register", "vi": "chuẩn {asset} không có trong sổ thiết bị"},
    "tui.run.choose_procedure": {"en": "Choose a procedure.", "vi": "Hãy chọn quy trình."},
    "tui.run.choose_dut": {"en": "Choose the DUT.", "vi": "Hãy chọn phương tiện đo."},
    "tui.run.bad_params": {"en": "The parameters are not KEY=VALUE pairs.", "vi": "Tham số không đúng dạng KHÓA=GIÁ TRỊ."},
    "tui.run.no_bench": {"en": "No bench file: a run needs `--bench bench.toml`.", "vi": "Chưa có tệp bàn kiểm: phép đo cần `--bench bench.toml`."},
    "tui.run.busy": {"en": "A run is already in progress on this bench.", "vi": "Bàn kiểm đang có một phép đo."},
    # following a run
    "tui.run.points": {"en": "{count} points", "vi": "{count} điểm đo"},
    "tui.run.waiting_operator": {"en": "waiting for you", "vi": "đang chờ kỹ thuật viên"},
    "tui.run.waiting_instrument": {"en": "waiting for {what}", "vi": "đang chờ {what}"},
    "tui.run.verdict_so_far": {"en": "verdict so far:", "vi": "kết luận tạm thời:"},
    "tui.run.verdict": {"en": "verdict:", "vi": "kết luận:"},
    "tui.run.paused_because": {"en": "Paused: ", "vi": "Tạm dừng: "},
    "tui.run.confirm_abort": {"en": "Abort this run? It stops at the next safe point; the points taken are kept and it can be resumed later from History.", "vi": "Hủy phép đo này? Phép đo dừng ở điểm an toàn kế tiếp; các điểm đã đo được giữ lại và có thể tiếp tục sau ở mục Lịch sử."},
    "tui.quit.confirm_run": {"en": "A run is in progress. Abort it and quit? It can be resumed later.", "vi": "Đang có phép đo. Hủy phép đo và thoát? Có thể tiếp tục phép đo sau."},
    "tui.note.finished": {"en": "Run {run} {state}.", "vi": "Phép đo {run}: {state}."},
    "tui.note.paused": {"en": "Run paused: {reason}", "vi": "Phép đo tạm dừng: {reason}"},
    "tui.col.point": {"en": "Point", "vi": "Điểm đo"},
    "tui.col.nominal": {"en": "Nominal", "vi": "Danh định"},
    "tui.col.reference": {"en": "Reference", "vi": "Chuẩn"},
    "tui.col.indicated": {"en": "Indication", "vi": "Số chỉ"},
    "tui.col.error": {"en": "Error", "vi": "Sai số"},
    "tui.col.U": {"en": "U", "vi": "U"},
    "tui.col.mpe": {"en": "MPE", "vi": "MPE"},
    "tui.col.verdict": {"en": "Verdict", "vi": "Kết luận"},
    "tui.chart.title": {"en": "Error / {unit}", "vi": "Sai số / {unit}"},
    "tui.chart.x": {"en": "load / {unit}", "vi": "tải / {unit}"},
    "tui.chart.point": {"en": "error", "vi": "sai số"},
    "tui.chart.empty": {"en": "The chart fills in as points are taken.", "vi": "Biểu đồ hiện dần khi có điểm đo."},
    "tui.due.none": {"en": "no certificate", "vi": "không có giấy chứng nhận"},
    "tui.due.past": {"en": "PAST DUE", "vi": "QUÁ HẠN"},
    "tui.due.soon": {"en": "⚠ due in {days} d", "vi": "⚠ còn {days} ngày"},
    # operator dialogs
    "tui.prompt.instruction": {"en": "Instruction", "vi": "Hướng dẫn"},
    "tui.prompt.confirm": {"en": "Confirm", "vi": "Xác nhận"},
    "tui.prompt.number": {"en": "Enter the reading", "vi": "Nhập số đọc"},
    "tui.prompt.choice": {"en": "Choose", "vi": "Lựa chọn"},
    "tui.prompt.fault": {"en": "Run paused: instrument fault", "vi": "Phép đo tạm dừng: lỗi thiết bị"},
    "tui.action.zero": {"en": "Zero {instrument} (empty pan), then confirm.", "vi": "Đặt {instrument} về không (đĩa cân trống), rồi xác nhận."},
    "tui.action.tare": {"en": "Tare {instrument}, then confirm.", "vi": "Trừ bì {instrument}, rồi xác nhận."},
    "tui.action.deliver": {"en": "Deliver {volume} at {flow}, then confirm.", "vi": "Bơm {volume} với lưu lượng {flow}, rồi xác nhận."},
    "tui.action.set_pressure": {"en": "Set the pressure to {pressure} with the hand pump, then confirm.", "vi": "Tạo áp suất {pressure} bằng bơm tay, rồi xác nhận."},
    "tui.fault.text": {"en": "Instrument {instrument} stopped answering properly ({resource}): {error}", "vi": "Thiết bị {instrument} không trả lời đúng ({resource}): {error}"},
    "tui.fault.waiting": {"en": "{instrument} is disconnected. Check the cable and power: the run goes on by itself as soon as {instrument} answers again.", "vi": "{instrument} mất kết nối. Kiểm tra cáp và nguồn: phép đo tự tiếp tục ngay khi {instrument} trả lời lại."},
    "tui.fault.back": {"en": "{instrument} is back: retrying.", "vi": "{instrument} đã kết nối lại: đang đo lại."},
    "tui.fault.connected": {"en": "{instrument} answers the live view. Choose retry to go on.", "vi": "{instrument} vẫn trả lời ở màn hình trực tiếp. Chọn thử lại để tiếp tục."},
    "tui.fault.manual_retry": {"en": "Fix the instrument, then choose retry (or abort: the run can be resumed later).", "vi": "Khắc phục thiết bị rồi chọn thử lại (hoặc hủy: có thể tiếp tục phép đo sau)."},
    "tui.number.nan": {"en": "Not a number.", "vi": "Không phải là số."},
    "tui.number.below": {"en": "Below the minimum {minimum} {unit}.", "vi": "Nhỏ hơn giá trị tối thiểu {minimum} {unit}."},
    "tui.number.above": {"en": "Above the maximum {maximum} {unit}.", "vi": "Lớn hơn giá trị tối đa {maximum} {unit}."},
    "tui.number.step": {"en": "Not on a scale division of {resolution} {unit}.", "vi": "Không đúng vạch chia {resolution} {unit}."},
    "tui.number.range": {"en": "range {minimum} … {maximum} {unit}", "vi": "phạm vi {minimum} … {maximum} {unit}"},
    "tui.number.resolution": {"en": "resolution {resolution} {unit}", "vi": "độ phân giải {resolution} {unit}"},
    "tui.number.format": {"en": "write numbers like {example}", "vi": "viết số dạng {example}"},
    # history
    "tui.history.col.run": {"en": "Run", "vi": "Số"},
    "tui.history.col.started": {"en": "Started", "vi": "Bắt đầu"},
    "tui.history.col.procedure": {"en": "Procedure", "vi": "Quy trình"},
    "tui.history.col.mode": {"en": "Kind", "vi": "Loại"},
    "tui.history.col.dut": {"en": "DUT", "vi": "PTĐ"},
    "tui.history.col.customer": {"en": "Customer", "vi": "Khách hàng"},
    "tui.history.col.state": {"en": "State", "vi": "Trạng thái"},
    "tui.history.col.verdict": {"en": "Verdict", "vi": "Kết luận"},
    "tui.history.filter.dut": {"en": "DUT asset id", "vi": "Mã PTĐ"},
    "tui.history.filter.customer": {"en": "Customer", "vi": "Khách hàng"},
    "tui.history.filter.since": {"en": "From ({example})", "vi": "Từ ngày ({example})"},
    "tui.history.filter.until": {"en": "To ({example})", "vi": "Đến ngày ({example})"},
    "tui.history.bad_date": {"en": "{text!r} is not a date like {example}.", "vi": "{text!r} không phải ngày dạng {example}."},
    "tui.history.pick": {"en": "Choose a run in the list (Enter) to see it here.", "vi": "Chọn một phép đo trong danh sách (Enter) để xem ở đây."},
    "tui.history.started": {"en": "started {at}", "vi": "bắt đầu {at}"},
    "tui.history.customer": {"en": "customer {customer}", "vi": "khách hàng {customer}"},
    "tui.history.references": {"en": "references: {refs}", "vi": "chuẩn: {refs}"},
    "tui.history.exported": {"en": "Written: {files}", "vi": "Đã ghi: {files}"},
    "tui.history.not_resumable": {"en": "A {state} run cannot be resumed.", "vi": "Phép đo {state} không thể tiếp tục."},
    # register
    "tui.register.assets": {"en": "Assets", "vi": "Thiết bị"},
    "tui.register.summary": {"en": "{assets} assets in the register.", "vi": "Sổ có {assets} thiết bị."},
    "tui.register.past_due": {"en": "Past due: {count}", "vi": "Quá hạn: {count}"},
    "tui.register.due_soon": {"en": "Due within {days} days: {count}", "vi": "Hết hạn trong {days} ngày tới: {count}"},
    "tui.register.certificates": {"en": "Certificates of {asset}", "vi": "Giấy chứng nhận của {asset}"},
    "tui.register.certificates_none": {"en": "Certificates", "vi": "Giấy chứng nhận"},
    "tui.register.superseded": {"en": "(superseded)", "vi": "(đã thay thế)"},
    "tui.register.col.asset": {"en": "Asset", "vi": "Mã thiết bị"},
    "tui.register.col.kind": {"en": "Kind", "vi": "Loại"},
    "tui.register.col.maker_model": {"en": "Maker, model", "vi": "Hãng, kiểu"},
    "tui.register.col.serial": {"en": "Serial", "vi": "Số máy"},
    "tui.register.col.customer": {"en": "Customer / owner", "vi": "Khách hàng / chủ sở hữu"},
    "tui.register.col.next_due": {"en": "Certificate due", "vi": "Hạn giấy chứng nhận"},
    "tui.register.col.certificate": {"en": "Certificate", "vi": "Số giấy"},
    "tui.register.col.issuer": {"en": "Issuer", "vi": "Nơi cấp"},
    "tui.register.col.issued": {"en": "Issued", "vi": "Ngày cấp"},
    "tui.register.col.due": {"en": "Due", "vi": "Hạn"},
    "tui.register.col.U": {"en": "U", "vi": "U"},
    "tui.register.new_asset": {"en": "New asset", "vi": "Thêm thiết bị"},
    "tui.register.edit_asset": {"en": "Edit asset", "vi": "Sửa thiết bị"},
    "tui.register.new_certificate": {"en": "New certificate of {asset}", "vi": "Giấy chứng nhận mới của {asset}"},
    "tui.register.pick": {"en": "Choose an asset first.", "vi": "Hãy chọn thiết bị trước."},
    "tui.register.saved": {"en": "Asset {asset} saved.", "vi": "Đã lưu thiết bị {asset}."},
    "tui.register.cert_saved": {"en": "Certificate {number} of {asset} saved.", "vi": "Đã lưu giấy chứng nhận {number} của {asset}."},
    "tui.register.due_before_issue": {"en": "The due date must come after the issue date.", "vi": "Ngày hết hạn phải sau ngày cấp."},
    "tui.field.asset_id": {"en": "Asset id", "vi": "Mã thiết bị"},
    "tui.field.kind": {"en": "Kind", "vi": "Loại"},
    "tui.field.maker": {"en": "Maker", "vi": "Hãng sản xuất"},
    "tui.field.model": {"en": "Model", "vi": "Kiểu"},
    "tui.field.serial": {"en": "Serial number", "vi": "Số máy"},
    "tui.field.customer": {"en": "Customer", "vi": "Khách hàng"},
    "tui.field.owner": {"en": "Owner", "vi": "Chủ sở hữu"},
    "tui.field.unit": {"en": "Unit", "vi": "Đơn vị"},
    "tui.field.class": {"en": "Accuracy class", "vi": "Cấp chính xác"},
    "tui.field.resolution": {"en": "Resolution d", "vi": "Độ phân giải d"},
    "tui.field.range_min": {"en": "Range from", "vi": "Phạm vi đo từ"},
    "tui.field.range_max": {"en": "Range to (Max)", "vi": "Phạm vi đo đến (Max)"},
    "tui.field.params": {"en": "Parameters (key = value; …)", "vi": "Tham số (khóa = giá trị; …)"},
    "tui.field.cert_number": {"en": "Certificate number", "vi": "Số giấy chứng nhận"},
    "tui.field.issuer": {"en": "Issued by", "vi": "Nơi cấp"},
    "tui.field.issued_on": {"en": "Issued on", "vi": "Ngày cấp"},
    "tui.field.due_on": {"en": "Due on", "vi": "Ngày hết hạn"},
    "tui.field.U": {"en": "Expanded uncertainty U", "vi": "Độ không đảm bảo đo mở rộng U"},
    "tui.field.k": {"en": "Coverage factor k", "vi": "Hệ số phủ k"},
    "tui.field.U_unit": {"en": "Unit of U (empty: the asset's)", "vi": "Đơn vị của U (để trống: như thiết bị)"},
    "tui.form.required": {"en": "{field}: required.", "vi": "{field}: bắt buộc."},
    "tui.form.invalid": {"en": "{field}: {text!r} is not valid; write e.g. {expected}.", "vi": "{field}: {text!r} không hợp lệ; ví dụ đúng: {expected}."},
    # help
    "tui.help.title": {"en": "benchctl — help", "vi": "benchctl — trợ giúp"},
    "tui.help.global": {"en": "Everywhere", "vi": "Mọi màn hình"},
    "tui.help.global.text": {"en": "F-keys switch screens from anywhere; the mouse works on buttons, tabs and tables.", "vi": "Phím F chuyển màn hình ở bất cứ đâu; có thể dùng chuột cho nút, bảng."},
    "tui.help.bench.text": {"en": "Every instrument of the bench file, live: connection, value with unit, stability (● stable, ○ moving) and the last minute. A lost instrument shows disconnected and reconnects by itself.", "vi": "Mọi thiết bị của tệp bàn kiểm, trực tiếp: kết nối, giá trị và đơn vị, độ ổn định (● ổn định, ○ đang dao động) và một phút qua. Thiết bị mất kết nối được đánh dấu và tự kết nối lại."},
    "tui.help.run.text": {"en": "Choose procedure, DUT and references, start, then follow the points, the verdict so far and the error chart. The run's questions open as dialogs.", "vi": "Chọn quy trình, phương tiện đo và chuẩn, bắt đầu, rồi theo dõi điểm đo, kết luận tạm thời và biểu đồ sai số. Các câu hỏi của phép đo hiện thành hộp thoại."},
    "tui.help.history.text": {"en": "Runs filtered by DUT, customer, dates and verdict; Enter shows a run; export its certificate or data; resume an interrupted run.", "vi": "Phép đo lọc theo PTĐ, khách hàng, ngày và kết luận; Enter để xem; xuất giấy chứng nhận hoặc dữ liệu; tiếp tục phép đo bị gián đoạn."},
    "tui.help.register.text": {"en": "Assets and reference certificates: past due in red, due within 30 days marked.", "vi": "Thiết bị và giấy chứng nhận của chuẩn: quá hạn màu đỏ, sắp hết hạn trong 30 ngày được đánh dấu."},
    "tui.help.dialogs": {"en": "Dialogs", "vi": "Hộp thoại"},
    "tui.help.dialogs.text": {"en": "Enter answers with the highlighted button, Tab moves between buttons, Esc closes a form without saving. Numbers are typed as the language writes them.", "vi": "Enter chọn nút đang sáng, Tab chuyển nút, Esc đóng biểu mẫu không lưu. Số được viết theo ngôn ngữ đang dùng."},
}

register(_TUI)

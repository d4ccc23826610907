"""One message catalogue for everything a technician reads: Vietnamese and English.

Procedures and the engine refer to messages by id; the text comes from here, so a translation
is fixed in one place and the TUI, the terminal and the certificate say the same thing.
"""

from __future__ import annotations

from typing import Any

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

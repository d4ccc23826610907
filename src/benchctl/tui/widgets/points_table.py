"""The points of a run as they are taken: nominal, reference, indication, error, U, MPE,
verdict (coloured). Rows are added as points arrive and updated in place when the preview
or the final results fill in their error and verdict."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from ... import i18n
from ..l10n import lang_of

VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "conditional_pass": "bold yellow",
                 "conditional_fail": "bold dark_orange"}
#: (column key, catalogue id of the header, width)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("key", "tui.col.point", 24),
    ("nominal", "tui.col.nominal", 10),
    ("reference", "tui.col.reference", 11),
    ("indicated", "tui.col.indicated", 11),
    ("error", "tui.col.error", 10),
    ("U", "tui.col.U", 7),
    ("mpe", "tui.col.mpe", 8),
    ("verdict", "tui.col.verdict", 16),
)

Row = tuple[str, dict[str, Any], dict[str, Any] | None]


def verdict_text(verdict: str | None, lang: str) -> Text:
    if not verdict:
        return Text("")
    return Text(i18n.t(f"verdict.{verdict}", lang), style=VERDICT_STYLE.get(verdict, "bold"))


def _num(x: Any, lang: str, digits: int = 9) -> str:
    return i18n.format_number(x, lang, digits=digits) if isinstance(x, int | float) else ""


def cells(row: Row, lang: str) -> tuple[str | Text, ...]:
    key, point, result = row
    r = result or {}
    nominal = r.get("nominal", point.get("nominal"))
    reference = r.get("reference", point.get("reference"))
    indicated = r.get("indicated", point.get("indicated"))
    verdict = r.get("verdict")
    error = r.get("error")
    if error is None and r.get("range") is not None:  # repeatability: the spread is the result
        error_text = "Δ " + _num(r["range"], lang, 4)
    else:
        error_text = _num(error, lang, 4)
    mpe = r.get("mpe")
    return (
        key,
        _num(nominal, lang),
        _num(reference, lang),
        _num(indicated, lang),
        Text(error_text, style="red" if verdict == "fail" else ""),
        _num(r.get("U"), lang, 2),
        ("±" + _num(mpe, lang, 4)) if isinstance(mpe, int | float) else "",
        verdict_text(verdict, lang),
    )


class PointsTable(DataTable[Any]):
    def __init__(self, **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.unit = ""
        self._shown: dict[str, tuple[str, ...]] = {}
        self._rows: dict[str, Row] = {}

    def on_mount(self) -> None:
        for key, _label, width in COLUMNS:
            self.add_column(key, width=width, key=key)
        self.retranslate()

    def header(self, column: str, message_id: str) -> str:
        """The column's title, with the unit when it fits (the status line names it too)."""
        lang = lang_of(self)
        text = i18n.t(message_id, lang)
        unit = i18n.display_unit(self.unit)
        width = next(w for key, _m, w in COLUMNS if key == column)
        if unit and column in ("nominal", "reference", "indicated", "error", "U", "mpe"):
            with_unit = f"{text} / {unit}"
            if len(with_unit) <= width:
                return with_unit
        return text

    def retranslate(self) -> None:
        for key, message_id, _w in COLUMNS:
            column = self.columns.get(key)  # type: ignore[call-overload]
            if column is not None:
                column.label = Text(self.header(key, message_id))
        self._refresh_all()

    def set_unit(self, unit: str) -> None:
        if unit != self.unit:
            self.unit = unit
            self.retranslate()

    def _refresh_all(self) -> None:
        rows = list(self._rows.values())
        self._shown.clear()
        self.show(rows)
        self.refresh()

    def show(self, rows: Iterable[Row]) -> None:
        """Add new rows and update changed cells in place (no clear: the cursor stays).

        Rows keep the given order: when a new point must come before a row already shown
        (a summary row such as repeatability stays last), the table is rebuilt.
        """
        lang = lang_of(self)
        rows = list(rows)
        if not self.columns:  # not mounted yet: drawn from _rows once the columns exist
            for row in rows:
                self._rows[row[0]] = row
            return
        shown = [str(k.value) for k in self.rows]
        wanted = [row[0] for row in rows]
        if wanted[:len(shown)] != shown and set(shown) <= set(wanted):
            self.clear()
            self._shown.clear()
        for row in rows:
            key = row[0]
            self._rows[key] = row
            new = cells(row, lang)
            plain = tuple(str(c) for c in new)
            old = self._shown.get(key)
            if old == plain:
                continue
            if key not in self.rows:
                self.add_row(*new, key=key)
            else:
                for (column, _m, _w), value, before in zip(
                        COLUMNS, new, old or ("",) * len(COLUMNS), strict=True):
                    if str(value) != before:
                        self.update_cell(key, column, value)
            self._shown[key] = plain

    def reset(self) -> None:
        self.clear()
        self._shown.clear()
        self._rows.clear()

"""One instrument of the bench: name, role, connection, live value, stability, last minute."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from ... import i18n
from ..l10n import lang_of
from ..live import InstrumentView, Status
from .sparkline_row import sparkline_text

STATUS_STYLE = {
    Status.CONNECTED: ("●", "green"),
    Status.CONNECTING: ("…", "yellow"),
    Status.DISCONNECTED: ("✕", "bold red"),
    Status.HELD: ("⏸", "cyan"),
    Status.MANUAL: ("✎", "magenta"),
    Status.NO_LIVE: ("–", "dim"),
    Status.ERROR: ("!", "bold red"),
}
_NUMBER = re.compile(rb"[-+]?\d+(?:\.\d+)?")


def decimals_from_raw(raw: bytes, value: float | None) -> int | None:
    """The places the instrument itself showed for ``value`` (``S S  100.00 g`` -> 2), so a
    reading is displayed to its resolution, not to float noise."""
    if value is None or not raw:
        return None
    for m in _NUMBER.finditer(raw):
        token = m.group()
        try:
            if abs(float(token) - value) <= 1e-9 * max(1.0, abs(value)):
                return len(token.partition(b".")[2])
        except ValueError:
            continue
    return None


def role_text(view: InstrumentView, lang: str) -> str:
    role = i18n.t(f"tui.role.{view.role}", lang) if view.role else "?"
    if view.bench_role:
        role += " · " + i18n.t(f"tui.bench_role.{view.bench_role}", lang)
    return role


#: Cells of the sparkline at the right of each panel (and the gap before it).
SPARK_WIDTH = 32


class InstrumentPanel(Widget):
    """One instrument in two lines: name, role, connection, value with unit and stability;
    below, the resource and the other quantities (or the error); at the right, the last
    minute. One render per redraw, only when what it shows changed."""

    def __init__(self, name: str, **kw: Any) -> None:
        super().__init__(id=f"inst-{name}", classes="instrument-panel", **kw)
        self.instrument = name
        self.view: InstrumentView | None = None
        self._spark: list[Text] = []
        self._spark_drawn = False
        self._shown: tuple[Any, ...] | None = None
        self._strips: list[Strip] | None = None
        self._strips_key: tuple[Any, ...] | None = None

    def show(self, view: InstrumentView, now: float, *, spark: bool = True) -> None:
        """New data; ``spark`` also recomputes the sparkline (it moves at its own pace)."""
        self.view = view
        if spark or (view.history and not self._spark_drawn):
            self._spark = sparkline_text(view.history, now, SPARK_WIDTH)
            self._spark_drawn = bool(view.history)
        elif not self._spark:
            self._spark = [Text(" " * SPARK_WIDTH) for _ in range(2)]
        key = (self._left_key(), tuple(t.plain for t in self._spark), self.size.width)
        if key != self._shown:
            self._shown = key
            self.refresh()

    def _left_key(self) -> tuple[Any, ...]:
        v = self.view
        if v is None:
            return ()
        last = v.last
        return (v.status, v.error, v.stable, lang_of(self),
                None if last is None else (last.value, last.unit, last.extra, last.raw))

    def retranslate(self) -> None:
        self._shown = None
        self.refresh()

    @property
    def line(self) -> InstrumentPanel:
        """The panel itself (what tests read: ``panel.line.render().plain``)."""
        return self

    def render(self) -> Text:
        return Text("\n").join(self.lines_text(self.size.width))

    def lines_text(self, width: int) -> list[Text]:
        left = self.left_lines()
        room = max(0, width - SPARK_WIDTH - 1)
        out = []
        for i, text in enumerate(left):
            text = text.copy()
            text.truncate(room, overflow="ellipsis", pad=True)
            text.append(" ")
            if i < len(self._spark):
                text.append_text(self._spark[i])
            out.append(text)
        return out

    # Line API: the two lines are rendered to strips once per change and cached; Textual's
    # generic path (content -> visual -> strips, on every repaint) cost several times more at
    # sixteen instruments redrawn a few times a second.
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        key = (self._shown, width, base)
        if self._strips is None or self._strips_key != key:
            console = self.app.console
            self._strips = [Strip(list(text.render(console))).apply_style(base)
                            .adjust_cell_length(width, base)
                            for text in self.lines_text(width)]
            self._strips_key = key
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, base)

    def left_lines(self) -> list[Text]:
        v = self.view
        if v is None:
            return [Text(self.instrument, style="bold"), Text("")]
        lang = lang_of(self)
        mark, style = STATUS_STYLE[v.status]
        live = v.status == Status.CONNECTED and v.last is not None
        value = Text("—", style="dim")
        stable = Text("  ")
        if live and v.last is not None and v.last.value is not None:
            digits = decimals_from_raw(v.last.raw, v.last.value)
            shown = i18n.format_number(v.last.value, lang, decimals=digits, digits=8)
            value = Text(f"{shown} {i18n.display_unit(v.last.unit)}", style="bold")
            if v.stable is True:
                stable = Text("● ", style="green")
            elif v.stable is False:
                stable = Text("○ ", style="yellow")
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{v.name:<14.14} ", style="bold")
        line.append(f"{role_text(v, lang):<26.26} ")
        line.append(f"{mark} {i18n.t(f'tui.status.{v.status.value}', lang):<16.16}", style=style)
        value.align("right", 20)
        line.append_text(value)
        line.append(" ")
        line.append_text(stable)
        detail = Text(no_wrap=True, overflow="ellipsis", style="dim")
        detail.append(f"{'':14} {v.resource}")
        if v.status in (Status.DISCONNECTED, Status.ERROR) and v.error:
            detail.append("  " + v.error, style="red")
        elif live and v.last is not None:
            for label, x, unit in v.last.extra:
                detail.append(f"  {label} {i18n.format_number(x, lang, digits=6)} "
                              f"{i18n.display_unit(unit)}")
        return [line, detail]

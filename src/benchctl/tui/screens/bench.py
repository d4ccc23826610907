"""The bench: every instrument of the bench file, live.

Drawn from the live buffer on the app's tick: only instruments whose data changed are
redrawn; every second all sparklines move on, so a silent instrument's line visibly stops.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from ... import i18n
from ..l10n import Msg, lang_of
from ..widgets.instrument_panel import InstrumentPanel
from .base import BaseScreen


class ColumnsHeader(Horizontal):
    """Column titles above the instrument panels, laid out as a panel is (the last title
    sits over the sparklines whatever the terminal's width)."""

    def compose(self) -> ComposeResult:
        yield Static(classes="instrument-line header-left")
        yield Static(classes="instrument-spark header-right")

    def on_mount(self) -> None:
        self.retranslate()

    def retranslate(self) -> None:
        lang = lang_of(self)

        def h(message_id: str) -> str:
            return i18n.t(message_id, lang)

        left = (f"{h('tui.bench.col.name'):<14.14} {h('tui.bench.col.role'):<26.26} "
                f"{h('tui.bench.col.status'):<18.18}{h('tui.bench.col.value'):>20.20}")
        self.query_one(".header-left", Static).update(Text(left, style="bold"))
        self.query_one(".header-right", Static).update(
            Text(h("tui.bench.col.minute"), style="bold"))


class BenchScreen(BaseScreen):
    title_id = "tui.screen.bench"

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[str, int] = {}
        self._panels: dict[str, InstrumentPanel] = {}
        self._last_full = -1e9

    def compose(self) -> ComposeResult:
        yield self.top_bar()
        live = self.bench_app.live
        if live is None:
            yield Msg("tui.bench.none", classes="empty-note")
        else:
            yield Msg("tui.bench.summary", id="bench-summary", classes="section-title")
            yield ColumnsHeader(classes="columns-header")
            with VerticalScroll(id="instruments"):
                for name in live.buffer.names():
                    yield InstrumentPanel(name)
        yield self.footer()

    def on_ready(self) -> None:
        live = self.bench_app.live
        if live is not None:
            bench = self.bench_app.bench
            self.query_one("#bench-summary", Msg).set_message(
                "tui.bench.summary", bench=self.bench_app.bench_name,
                file=bench.path.name if bench else "", count=len(live.buffer.names()))
        self._last_full = -1e9

    def refresh_view(self, full: bool = False) -> None:
        """Values as they change (a few times a second); the sparklines once a second, so
        sixteen lines that move every tick do not cost sixteen bucketings every tick."""
        super().refresh_view()
        live = self.bench_app.live
        if live is None or not self.ready:
            return
        now = live.buffer.clock()
        wall = time.monotonic()
        spark = full or wall - self._last_full >= 1.0
        if spark:
            self._last_full = wall
            self._seen.clear()
        for view in live.buffer.changed(self._seen):
            panel = self._panels.get(view.name)
            if panel is None:
                try:
                    panel = self.query_one(f"#inst-{view.name}", InstrumentPanel)
                except Exception:
                    continue
                self._panels[view.name] = panel
            panel.show(view, now, spark=spark)

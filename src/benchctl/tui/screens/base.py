"""What every screen of the TUI shares: the top bar, the translated footer, the language,
background work off the UI thread, and the app's tick."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

from ... import i18n
from ..l10n import lang_of, retranslate_tree, show

if TYPE_CHECKING:
    from ..app import BenchApp

T = TypeVar("T")

RUN_STATE_STYLE = {"running": ("▶", "green"), "starting": ("…", "yellow"),
                   "paused": ("⏸", "bold yellow"), "completed": ("✓", "green"),
                   "aborted": ("■", "yellow"), "failed": ("✕", "bold red"),
                   "refused": ("✕", "bold red")}


class LocalFooter(Footer):
    """Footer whose key descriptions are catalogue ids, shown in the current language.

    It is rebuilt only when what it shows changes: Textual recomposes a footer whenever the
    bindings *may* have changed (every dialog closing), and a rebuild costs more than a
    redraw of the whole screen.
    """

    _signature: tuple[Any, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        try:
            signature = (lang_of(self), tuple(
                (key, b.action, b.description, enabled)
                for key, (_node, b, enabled, _tip) in screen.active_bindings.items() if b.show))
        except Exception:
            signature = None
        if signature is not None and signature == self._signature:
            return
        self._signature = signature
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        lang = lang_of(self)
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.description:
                widget.description = i18n.t(widget.description, lang)
            yield widget


class TopBar(Static):
    """benchctl · bench · screen · the run's state (seen from every screen) · language."""

    def __init__(self, title_id: str) -> None:
        super().__init__(classes="top-bar")
        self.title_id = title_id

    def on_mount(self) -> None:
        self.refresh_bar()

    def retranslate(self) -> None:
        self.refresh_bar()

    def refresh_bar(self) -> None:
        app = cast("BenchApp", self.app)
        lang = lang_of(self)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" benchctl ", style="bold reverse")
        text.append(f" {app.bench_name} ", style="bold")
        text.append("│ ", style="dim")
        text.append(i18n.t(self.title_id, lang), style="bold cyan")
        model = app.run_model
        if model.state != "setup":
            mark, style = RUN_STATE_STYLE.get(model.state, ("·", ""))
            text.append("  │ ", style="dim")
            label = i18n.t("tui.top.run", lang, run=model.run_id or "…")
            text.append(f"{label} {mark} {i18n.t(f'tui.state.{model.state}', lang)}",
                        style=style)
        text.append("  │ ", style="dim")
        text.append(f"{lang.upper()}", style="bold")
        show(self, text)


#: From this many columns, a table and its chart sit side by side.
WIDE_COLUMNS = 150


class BaseScreen(Screen[None]):
    title_id = ""

    def __init__(self) -> None:
        super().__init__()
        self._lang_shown = ""
        self.ready = False

    @property
    def bench_app(self) -> BenchApp:
        return cast("BenchApp", self.app)

    @property
    def lang(self) -> str:
        return lang_of(self)

    def t(self, message_id: str, **params: Any) -> str:
        return i18n.t(message_id, self.lang, **params)

    def top_bar(self) -> TopBar:
        return TopBar(self.title_id)

    def footer(self) -> LocalFooter:
        return LocalFooter(compact=True)

    def on_mount(self) -> None:
        self._lang_shown = self.lang
        # Nested children may still be mounting when Mount arrives (a screen pushed and at
        # once covered by another is composed later): set up once the screen has drawn.
        self.call_after_refresh(self._become_ready)

    def _become_ready(self) -> None:
        self.ready = True
        self._apply_width(self.app.size.width)
        self.on_ready()
        self.refresh_view()

    def on_ready(self) -> None:
        """Set-up that needs every child mounted (columns of tables, first queries)."""

    def on_resize(self, event: events.Resize) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        for node in self.query(".split"):
            node.set_class(width >= WIDE_COLUMNS, "wide")

    def on_screen_resume(self) -> None:
        if not self.ready:
            return
        if self._lang_shown != self.lang:
            self.retranslate()
        self.refresh_view()

    def retranslate(self) -> None:
        if not self.ready:
            return
        self._lang_shown = self.lang
        retranslate_tree(self)
        self.refresh_bindings()

    def refresh_view(self) -> None:
        """Called a few times a second by the app: draw what changed."""
        if not self.ready:
            return
        for bar in self.query(TopBar):
            bar.refresh_bar()

    def background(self, work: Callable[[], T], then: Callable[[T], None],
                   *, group: str = "db") -> None:
        """``work`` in a thread (database, files: never on the UI thread), ``then`` back on
        the UI with its result; a failure is shown, not raised."""
        app = self.app

        def job() -> None:
            try:
                result = work()
            except Exception as exc:  # shown to the technician
                _call(app, self.show_error, exc)
                return
            _call(app, then, result)

        self.run_worker(job, thread=True, group=group, exit_on_error=False)

    def show_error(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        self.notify(message, severity="error", timeout=10)


def _call(app: Any, fn: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the app is closing
        app.call_from_thread(fn, *args)

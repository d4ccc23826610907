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
                widget.message_id = widget.description  # type: ignore[attr-defined]
                widget.description = i18n.t(widget.description, lang)
            yield widget

    def retranslate(self) -> None:
        """The keys' descriptions in the current language, in place: the screen shows the
        new language in its next frame, not after a rebuild of the footer."""
        lang = lang_of(self)
        for key in self.query(FooterKey):
            message_id = getattr(key, "message_id", "")
            if message_id:
                key.description = i18n.t(message_id, lang)
                key.refresh(layout=True)
        if self._signature is not None:
            self._signature = (lang, *self._signature[1:])


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
        self._styled_for: frozenset[str] | None = None
        self._latest: dict[str, int] = {}

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

    def on_screen_suspend(self) -> None:
        self._styled_for = self.app.pseudo_classes

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Textual re-applies the whole stylesheet to a screen each time it is shown (and a
        # table restyled forgets the lines it rendered): 10-40 ms a switch. Classes set
        # while the screen was away were styled when set, and switch_mode re-applies a
        # stylesheet that changed; only a change of the app's own state (focus, theme)
        # needs it. (Handlers run subclass first, so this is before Textual's.)
        if self._styled_for is not None and self._styled_for == self.app.pseudo_classes:
            event.refresh_styles = False
        if not self.ready:
            return
        if self._lang_shown != self.lang:
            self.retranslate()
        self.refresh_view()
        # Work the screen starts when shown (queries) waits until it has been drawn.
        self.call_after_refresh(self.on_shown)

    def on_shown(self) -> None:
        """Called once the screen, shown again, has been drawn (e.g. to query afresh)."""

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
                   *, group: str = "db", latest: str | None = None) -> None:
        """``work`` in a thread (database, files: never on the UI thread), ``then`` back on
        the UI with its result; a failure is shown, not raised.

        With ``latest``, only the result of the newest call of that name is used: a query
        started earlier that comes back later (a reload on showing the screen, then one
        after a save) cannot put older data on the screen."""
        app = self.app
        seq = self._latest.get(latest, 0) + 1 if latest else 0
        if latest:
            self._latest[latest] = seq

        def deliver(result: T) -> None:
            if latest and self._latest.get(latest) != seq:
                return
            then(result)

        def job() -> None:
            try:
                result = work()
            except Exception as exc:  # shown to the technician
                _call(app, self.show_error, exc)
                return
            _call(app, deliver, result)

        self.run_worker(job, thread=True, group=group, exit_on_error=False)

    def show_error(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        self.notify(message, severity="error", timeout=10)


def _call(app: Any, fn: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the app is closing
        app.call_from_thread(fn, *args)

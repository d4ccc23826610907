"""Help: what each screen is for and every key, in the current language."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ... import i18n
from ..l10n import LButton, lang_of


def _key(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    key = binding.key.split(",")[0]
    if key.startswith("f") and key[1:].isdigit():
        return key.upper()
    return key.replace("ctrl+", "Ctrl+")


def help_sections(app: Any) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(title id, text id, [(key, description id)]) for the app and each screen."""
    from .bench import BenchScreen
    from .history import HistoryScreen
    from .register import RegisterScreen
    from .run import RunScreen

    def keys(bindings: list[Any]) -> list[tuple[str, str]]:
        out = []
        for b in bindings:
            if isinstance(b, Binding) and b.show:
                out.append((_key(b), b.description))
        return out

    return [
        ("tui.help.global", "tui.help.global.text", keys(list(type(app).BINDINGS))),
        ("tui.screen.bench", "tui.help.bench.text", keys(list(BenchScreen.BINDINGS))),
        ("tui.screen.run", "tui.help.run.text", keys(list(RunScreen.BINDINGS))),
        ("tui.screen.history", "tui.help.history.text", keys(list(HistoryScreen.BINDINGS))),
        ("tui.screen.register", "tui.help.register.text",
         keys(list(RegisterScreen.BINDINGS))),
        ("tui.help.dialogs", "tui.help.dialogs.text", []),
    ]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "close", "tui.key.close")]

    def __init__(self) -> None:
        super().__init__(classes="prompt-screen")

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog help"):
            with VerticalScroll(id="help-body"):
                yield Static(id="help-text")
            yield LButton("tui.btn.close", id="help-close", variant="primary")

    def on_mount(self) -> None:
        self.call_after_refresh(self.retranslate)

    def retranslate(self) -> None:
        lang = lang_of(self)
        parts: list[Any] = [Text(i18n.t("tui.help.title", lang), style="bold")]
        for title_id, text_id, keys in help_sections(self.app):
            parts.append(Text(""))
            parts.append(Text(i18n.t(title_id, lang), style="bold underline"))
            parts.append(Text(i18n.t(text_id, lang)))
            if keys:
                table = Table.grid(padding=(0, 2))
                table.add_column(style="bold cyan", no_wrap=True, min_width=8)
                table.add_column()
                for key, description in keys:
                    table.add_row(key, i18n.t(description, lang))
                parts.append(table)
        self.query_one("#help-text", Static).update(Group(*parts))

    def on_button_pressed(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)

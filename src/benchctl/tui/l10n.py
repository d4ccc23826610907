"""Texts of the TUI come from the one catalogue (benchctl.i18n) and follow the app's language.

Widgets that show catalogue texts keep the message id, not the text, so switching the
language at run time only has to ask every widget to ``retranslate()``.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.widget import Widget
from textual.widgets import Button, Static

from .. import i18n


def lang_of(node: Any) -> str:
    """The language of the app ``node`` belongs to (English before it is mounted)."""
    try:
        app = node if isinstance(node, App) else node.app
    except Exception:
        return "en"
    return str(getattr(app, "lang", "en"))


def tr(node: Any, message_id: str, **params: Any) -> str:
    return i18n.t(message_id, lang_of(node), **params)


def retranslate_tree(root: Widget | Any) -> None:
    """Ask every widget under ``root`` (not ``root`` itself: it is the caller) to show its
    texts in the current language."""
    for node in list(root.walk_children(with_self=False)):
        method = getattr(node, "retranslate", None)
        if callable(method):
            method()


class Msg(Static):
    """A catalogue message, re-rendered on a language switch."""

    def __init__(self, message_id: str = "", *, markup: bool = False, **kw: Any) -> None:
        super().__init__("", markup=markup, **kw)
        self.message_id = message_id
        self.params: dict[str, Any] = {}

    def on_mount(self) -> None:
        self.retranslate()

    def set_message(self, message_id: str, **params: Any) -> None:
        self.message_id, self.params = message_id, params
        self.retranslate()

    def retranslate(self) -> None:
        self.update(tr(self, self.message_id, **self.params) if self.message_id else "")


class LButton(Button):
    """A button whose label is a catalogue message."""

    def __init__(self, message_id: str, **kw: Any) -> None:
        super().__init__(i18n.t(message_id, "en"), **kw)
        self.message_id = message_id

    def on_mount(self) -> None:
        self.retranslate()

    def retranslate(self) -> None:
        self.label = tr(self, self.message_id)


def show(widget: Static, content: Any, *, layout: bool = False) -> bool:
    """Update a Static only when its content changed (a repaint, and with ``layout`` a
    re-layout of the screen, is the expensive part of a redraw a few times a second)."""
    if getattr(widget, "_benchctl_shown", None) == content:
        return False
    widget._benchctl_shown = content  # type: ignore[attr-defined]
    widget.update(content, layout=layout)
    return True

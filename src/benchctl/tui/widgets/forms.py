"""Forms of the register: an asset (add or edit) and a reference certificate (add).

A form checks what it can alone (required fields, numbers and dates in the locale's
format) and then asks the screen's ``check`` (e.g. the R76 rules of a balance) before it
closes, so the technician sees every mistake next to the field, not after a failed save.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from ... import i18n
from ..l10n import LButton, Msg, lang_of

ASSET_KINDS = ("balance", "pressure_gauge", "fuel_dispenser", "weight_set",
               "pressure_controller", "flow_meter", "proving_measure", "environment_monitor")

Check = Callable[[dict[str, Any]], str | None]

#: (field, catalogue id of the label, kind: text | number | date | kind | params)
ASSET_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("id", "tui.field.asset_id", "text"),
    ("kind", "tui.field.kind", "kind"),
    ("maker", "tui.field.maker", "text"),
    ("model", "tui.field.model", "text"),
    ("serial", "tui.field.serial", "text"),
    ("customer", "tui.field.customer", "text"),
    ("owner", "tui.field.owner", "text"),
    ("unit", "tui.field.unit", "text"),
    ("accuracy_class", "tui.field.class", "text"),
    ("resolution", "tui.field.resolution", "number"),
    ("range_min", "tui.field.range_min", "number"),
    ("range_max", "tui.field.range_max", "number"),
    ("params", "tui.field.params", "params"),
)
CERT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("number", "tui.field.cert_number", "text"),
    ("issuer", "tui.field.issuer", "text"),
    ("issued_on", "tui.field.issued_on", "date"),
    ("due_on", "tui.field.due_on", "date"),
    ("U", "tui.field.U", "number"),
    ("k", "tui.field.k", "number"),
    ("U_unit", "tui.field.U_unit", "text"),
)
EXAMPLE_DATE = dt.date(2026, 11, 21)
REQUIRED = {"id", "kind", "number", "issuer", "issued_on", "due_on"}


def format_params(params: dict[str, Any], lang: str) -> str:
    return "; ".join(f"{k} = {i18n.format_number(v, lang) if isinstance(v, int | float) else v}"
                     for k, v in params.items())


def parse_params(text: str, lang: str) -> dict[str, Any]:
    """``max = 6200; d = 0,1; class = II`` -> {"max": 6200.0, "d": 0.1, "class": "II"}."""
    out: dict[str, Any] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(part.strip())
        key, _, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not key.isidentifier():
            raise ValueError(key)
        try:
            out[key] = i18n.parse_number(value, lang)
        except ValueError:
            out[key] = value
    return out


class FormDialog(ModalScreen[dict[str, Any] | None]):
    title_id = ""
    fields: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, initial: dict[str, Any] | None = None, *, check: Check | None = None,
                 locked: tuple[str, ...] = ()) -> None:
        super().__init__(classes="form-screen")
        self.initial = dict(initial or {})
        self.check = check
        self.locked = locked

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog form"):
            yield Msg(self.title_id, classes="dialog-title")
            with Grid(classes="form-grid"):
                for name, label_id, kind in self.fields:
                    yield Msg(label_id, classes="form-label")
                    if kind == "kind":
                        yield Select([(k, k) for k in ASSET_KINDS], id=f"f-{name}",
                                     allow_blank=True, prompt="—")
                    else:
                        yield Input(id=f"f-{name}", classes="form-input")
            yield Static(id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield LButton("tui.btn.save", id="form-save", variant="primary")
                yield LButton("tui.btn.cancel", id="form-cancel")

    def on_mount(self) -> None:
        self.call_after_refresh(self.fill)

    def fill(self) -> None:
        """The initial values, in the locale's formats (once every field is mounted)."""
        lang = lang_of(self)
        for name, _l, kind in self.fields:
            value = self.initial.get(name)
            if kind == "kind":
                select = self.query_one(f"#f-{name}", Select)
                if value in ASSET_KINDS:
                    select.value = value
                select.disabled = name in self.locked
                continue
            widget = self.query_one(f"#f-{name}", Input)
            if value is None or value == "" or value == {}:
                text = ""
            elif kind == "number":
                text = i18n.format_number(value, lang)
            elif kind == "date":
                text = i18n.format_date(value, lang)
            elif kind == "params":
                text = format_params(dict(value), lang)
            else:
                text = str(value)
            widget.value = text
            widget.disabled = name in self.locked
            if kind == "date":
                widget.placeholder = i18n.format_date(EXAMPLE_DATE,
                                                      lang)
        first = next((w for w in self.query(Input) if not w.disabled), None)
        if first is not None:
            first.focus()

    def collect(self) -> tuple[dict[str, Any], str | None]:
        lang = lang_of(self)
        out: dict[str, Any] = {}
        for name, label_id, kind in self.fields:
            label = i18n.t(label_id, lang)
            if kind == "kind":
                choice = self.query_one(f"#f-{name}", Select)
                value = choice.value
                if choice.is_blank() or value is None:  # (Select.NULL is truthy)
                    if name in REQUIRED:
                        return out, i18n.t("tui.form.required", lang, field=label)
                    continue
                out[name] = str(value)
                continue
            text = self.query_one(f"#f-{name}", Input).value.strip()
            if not text:
                if name in REQUIRED:
                    return out, i18n.t("tui.form.required", lang, field=label)
                out[name] = {} if kind == "params" else None
                continue
            try:
                if kind == "number":
                    out[name] = i18n.parse_number(text, lang)
                elif kind == "date":
                    out[name] = i18n.parse_date(text, lang)
                elif kind == "params":
                    out[name] = parse_params(text, lang)
                else:
                    out[name] = text
            except ValueError:
                expected = {"number": i18n.format_number(1234.5, lang),
                            "date": i18n.format_date(EXAMPLE_DATE,
                                                     lang),
                            "params": "max = 6200; d = " + i18n.format_number(0.1, lang)
                            }.get(kind, "")
                return out, i18n.t("tui.form.invalid", lang, field=label, text=text,
                                   expected=expected)
        return out, None

    @on(Button.Pressed, "#form-save")
    def _save(self) -> None:
        data, problem = self.collect()
        if problem is None and self.check is not None:
            problem = self.check(data)
        if problem:
            self.query_one("#form-error", Static).update(Text(problem, style="bold red"))
            return
        self.dismiss(data)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._save()

    @on(Button.Pressed, "#form-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    def key_escape(self) -> None:
        self.dismiss(None)


class AssetForm(FormDialog):
    fields = ASSET_FIELDS

    def __init__(self, initial: dict[str, Any] | None = None, *, check: Check | None = None
                 ) -> None:
        editing = bool(initial and initial.get("id"))
        super().__init__(initial, check=check, locked=("id",) if editing else ())
        self.title_id = "tui.register.edit_asset" if editing else "tui.register.new_asset"


class CertificateForm(FormDialog):
    fields = CERT_FIELDS

    def __init__(self, asset_id: str, *, check: Check | None = None) -> None:
        super().__init__({}, check=check)
        self.asset_id = asset_id
        self.title_id = "tui.register.new_certificate"

    def fill(self) -> None:
        super().fill()
        title = self.query_one(".dialog-title", Msg)
        title.set_message(self.title_id, asset=self.asset_id)

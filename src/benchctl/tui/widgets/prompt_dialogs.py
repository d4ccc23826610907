"""The procedure's questions as modal dialogs: instructions, confirmations, numeric entry
with unit, range and resolution, choices, and the instrument-fault pause.

A dialog answers its :class:`~benchctl.tui.operator.PendingPrompt` itself and closes; if the
prompt is answered elsewhere (the run was aborted), the dialog closes on the next tick.
Texts are rebuilt from the request's machine-readable action in the current language, so a
Vietnamese technician reads Vietnamese whatever language the run was started in; the
procedure's own text is the fallback for actions the catalogue does not know.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ... import i18n
from ...engine.operators import check_number
from ...operator import OperatorAnswer, OperatorRequest
from ..l10n import LButton, lang_of, tr
from ..live import Status
from ..operator import PendingPrompt, answer_for


def _quantity(q: Any, lang: str) -> str:
    if isinstance(q, dict) and isinstance(q.get("value"), int | float):
        return f"{i18n.format_number(q['value'], lang)} {i18n.display_unit(q.get('unit'))}"
    return str(q or "")


def request_text(request: OperatorRequest, lang: str, names: dict[str, str] | None = None
                 ) -> str:
    """What to tell the technician, in ``lang``, from the request's action."""
    action = request.action or {}
    kind = action.get("type")
    names = names or {}
    if kind == "place_load":
        load = _quantity(action.get("load"), lang)
        weights = action.get("weights") or []
        if weights:
            load += " (" + " + ".join(map(str, weights)) + ")"
        position = i18n.t(f"position.{action.get('position', 'centre')}", lang)
        return i18n.t("place_load", lang, load=load, position=position)
    if kind == "remove_load":
        return i18n.t("remove_load", lang)
    if kind in ("zero", "tare"):
        return i18n.t(f"tui.action.{kind}", lang, instrument=action.get("instrument", ""))
    if kind == "read":
        resolution = (i18n.format_number(request.resolution, lang) if request.resolution
                      else "—")
        return i18n.t("read_value", lang, instrument=action.get("instrument", ""),
                      unit=i18n.display_unit(request.unit or action.get("unit")),
                      resolution=resolution)
    if kind == "deliver":
        return i18n.t("tui.action.deliver", lang, volume=_quantity(action.get("volume"), lang),
                      flow=_quantity(action.get("flow"), lang))
    if kind == "set_pressure":
        return i18n.t("tui.action.set_pressure", lang,
                      pressure=_quantity(action.get("pressure"), lang))
    if kind == "instrument_fault":
        resource = str(action.get("resource", ""))
        return i18n.t("tui.fault.text", lang, instrument=names.get(resource, resource),
                      resource=resource, error=action.get("error", ""))
    return request.text


def option_label(option: str, lang: str) -> str:
    return i18n.t(option, lang) if option in i18n.CATALOGUE else option


def number_problem(request: OperatorRequest, value: float, lang: str) -> str | None:
    """Why ``value`` cannot be the answer, in ``lang`` (None when it can)."""
    unit = i18n.display_unit(request.unit)
    if not math.isfinite(value):
        return i18n.t("tui.number.nan", lang)
    if request.minimum is not None and value < request.minimum:
        return i18n.t("tui.number.below", lang,
                      minimum=i18n.format_number(request.minimum, lang), unit=unit)
    if request.maximum is not None and value > request.maximum:
        return i18n.t("tui.number.above", lang,
                      maximum=i18n.format_number(request.maximum, lang), unit=unit)
    if request.resolution:
        steps = value / request.resolution
        if abs(steps - round(steps)) > 1e-6:
            return i18n.t("tui.number.step", lang,
                          resolution=i18n.format_number(request.resolution, lang), unit=unit)
    # The channels' shared rule has the last word (same check as stdio-json and terminal).
    return check_number(request, value, request.unit)


#: Kinds of dialog: the catalogue id of their title.
KIND_TITLES = {"instruction": "tui.prompt.instruction", "confirm": "tui.prompt.confirm",
               "number": "tui.prompt.number", "choice": "tui.prompt.choice",
               "fault": "tui.prompt.fault"}
#: Choice buttons kept ready (a procedure offering more is shown the first ones).
MAX_CHOICES = 6


def dialog_kind(prompt: PendingPrompt) -> str:
    return "fault" if prompt.is_fault else prompt.request.kind


class PromptDialog(ModalScreen[None]):
    """The one dialog for every question of the run, built once and shown per question.

    Mounting a fresh modal screen (and pruning it afterwards) for each of the sixty
    questions of a calibration would cost more than everything else the UI does; this
    screen stays installed and only its texts and the visibility of its parts change.

    Kinds: instruction (Done), confirm (Yes/No), number (entry checked against unit, range,
    resolution, in the locale's number format), choice (one button per option) and fault
    (an instrument stopped answering: the run is paused; when the live view sees the
    instrument come back, the dialog answers "retry" by itself). Every kind can abort the
    run. The answer completes the :class:`PendingPrompt`; a prompt answered elsewhere (the
    run was aborted) closes the dialog on the next tick.
    """

    #: Presses within this time of a new question are ignored: a double Enter or a double
    #: click must not confirm the next instruction unread (weights not placed, yet "done").
    DEBOUNCE_S = 0.25

    def __init__(self, names: dict[str, str] | None = None) -> None:
        super().__init__(classes="prompt-screen")
        self.names = names or {}
        self.shown_at = 0.0
        self.prompt: PendingPrompt | None = None
        self.kind = "instruction"
        self.instrument: str | None = None
        self.seen_down = False
        self._composed = False

    @property
    def request(self) -> OperatorRequest:
        assert self.prompt is not None
        return self.prompt.request

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog prompt"):
            yield Static(id="prompt-title", classes="dialog-title")
            yield Static(id="prompt-text", classes="prompt-text")
            yield Static(id="fault-status", classes="fault-status")
            with Horizontal(id="number-row", classes="number-row"):
                yield Input(id="prompt-value", classes="number-input")
                yield Static(id="number-unit", classes="number-unit")
            yield Static(id="prompt-limits", classes="number-limits")
            yield Static(id="prompt-echo", classes="number-echo")
            with Horizontal(classes="dialog-buttons"):
                yield LButton("tui.btn.done", id="prompt-ok", variant="primary")
                yield LButton("tui.btn.no", id="prompt-no")
                for i in range(MAX_CHOICES):
                    yield Button("", id=f"choice-{i}", classes="choice")
                yield LButton("tui.btn.abort_run", id="prompt-abort", variant="error")

    def on_mount(self) -> None:
        self.call_after_refresh(self._become_ready)

    def _become_ready(self) -> None:
        self._composed = True
        if self.prompt is not None:
            self.show_prompt(self.prompt)

    def on_screen_resume(self) -> None:
        # The question is readable from when it is on screen, not from when it was asked.
        self.shown_at = time.monotonic()

    @property
    def ready(self) -> bool:
        """Composed and showing its question (what a test waits for before answering)."""
        return self._composed and self.prompt is not None

    # -- showing a question --------------------------------------------------------------
    def show_prompt(self, prompt: PendingPrompt) -> None:
        """Fill the dialog for ``prompt`` (before the first mount: when it mounts)."""
        self.prompt = prompt
        self.shown_at = time.monotonic()
        if not self._composed:
            return
        self.kind = dialog_kind(prompt)
        resource = str((prompt.request.action or {}).get("resource", ""))
        self.instrument = self.names.get(resource)
        self.seen_down = False
        kind = self.kind
        self.query_one("#fault-status").display = kind == "fault"
        for wid in ("#number-row", "#prompt-limits", "#prompt-echo"):
            self.query_one(wid).display = kind == "number"
        self.query_one("#prompt-ok").display = kind in ("instruction", "confirm", "number")
        self.query_one("#prompt-no").display = kind == "confirm"
        options = list(prompt.request.options)[:MAX_CHOICES] if kind in ("choice", "fault") \
            else []
        for i in range(MAX_CHOICES):
            button = self.query_one(f"#choice-{i}", Button)
            button.display = i < len(options) and options[i] != "abort"
            button.variant = "primary" if i == 0 else "default"
        self.query_one("#prompt-abort").display = True
        if kind == "number":
            field = self.query_one("#prompt-value", Input)
            field.value = ""
            self.query_one("#number-unit", Static).update(
                i18n.display_unit(prompt.request.unit))
        self.retranslate()
        self.refresh_view()
        self.focus_first()

    def focus_first(self) -> None:
        if self.kind == "number":
            self.query_one("#prompt-value", Input).focus()
        elif self.kind in ("choice", "fault"):
            self.query_one("#choice-0", Button).focus()
        else:
            self.query_one("#prompt-ok", Button).focus()

    def retranslate(self) -> None:
        if self.prompt is None or not self._composed:
            return
        lang = lang_of(self)
        request = self.request
        title = Text(i18n.t(KIND_TITLES.get(self.kind, "tui.prompt.instruction"), lang),
                     style="bold")
        title.append(f"   {request.key}", style="dim")
        self.query_one("#prompt-title", Static).update(title)
        self.query_one("#prompt-text", Static).update(request_text(request, lang, self.names))
        ok = self.query_one("#prompt-ok", LButton)
        ok.message_id = {"confirm": "tui.btn.yes", "number": "tui.btn.ok"}.get(
            self.kind, "tui.btn.done")
        for button in self.query(LButton):
            button.retranslate()
        for i, option in enumerate(list(request.options)[:MAX_CHOICES]):
            self.query_one(f"#choice-{i}", Button).label = option_label(option, lang)
        if self.kind == "number":
            self._limits(lang)
            self._echo()

    # -- answers -------------------------------------------------------------------------
    def accepting(self) -> bool:
        """Whether a press may answer the question on screen now."""
        return (self.prompt is not None and not self.prompt.answered
                and time.monotonic() - self.shown_at >= self.DEBOUNCE_S)

    def finish(self, answer: OperatorAnswer, *, debounce: bool = True) -> None:
        if self.prompt is None or (debounce and not self.accepting()):
            return
        if self.prompt.answer(answer):
            self.close()

    def close(self) -> None:
        if self.is_current:
            self.app.pop_screen()
            opened = getattr(self.app, "prompt_closed", None)
            if opened is not None:
                opened()

    def refresh_view(self) -> None:
        """Called by the app's tick: close when someone else answered (abort); for a fault,
        follow the instrument in the live view."""
        prompt = self.prompt
        if prompt is None or not self._composed:
            return
        if prompt.answered:
            self.close()
            return
        if self.kind == "fault":
            self._fault_status()

    @on(Button.Pressed, "#prompt-abort")
    def _abort(self) -> None:
        if self.prompt is not None:
            self.finish(answer_for(self.prompt, ok=False, abort=True, raw=b"tui:abort"))

    @on(Button.Pressed, "#prompt-ok")
    def _ok(self) -> None:
        if self.prompt is None:
            return
        if self.kind == "number":
            self._number_ok()
            return
        self.finish(answer_for(self.prompt, ok=True))

    @on(Button.Pressed, "#prompt-no")
    def _no(self) -> None:
        if self.prompt is not None:
            self.finish(answer_for(self.prompt, ok=False))

    @on(Button.Pressed, ".choice")
    def _chosen(self, event: Button.Pressed) -> None:
        if self.prompt is None:
            return
        i = int(str(event.button.id).split("-")[1])
        option = self.request.options[i]
        if option == "abort":
            self.finish(answer_for(self.prompt, ok=False, abort=True, value="abort"))
        else:
            self.finish(answer_for(self.prompt, value=option))

    # -- numbers -------------------------------------------------------------------------
    def _limits(self, lang: str) -> None:
        r = self.request
        unit = i18n.display_unit(r.unit)
        parts = []
        if r.minimum is not None or r.maximum is not None:
            lo = i18n.format_number(r.minimum, lang) if r.minimum is not None else "…"
            hi = i18n.format_number(r.maximum, lang) if r.maximum is not None else "…"
            parts.append(i18n.t("tui.number.range", lang, minimum=lo, maximum=hi, unit=unit))
        if r.resolution:
            parts.append(i18n.t("tui.number.resolution", lang,
                                resolution=i18n.format_number(r.resolution, lang), unit=unit))
        parts.append(i18n.t("tui.number.format", lang,
                            example=i18n.format_number(1234.5, lang)))
        self.query_one("#prompt-limits", Static).update(" · ".join(parts))
        self.query_one("#prompt-value", Input).placeholder = i18n.format_number(
            0.0, lang, decimals=1)

    def parse(self) -> tuple[float | None, str | None]:
        lang = lang_of(self)
        text = self.query_one("#prompt-value", Input).value
        if not text.strip():
            return None, None
        try:
            value = i18n.parse_number(text, lang)
        except ValueError:
            return None, i18n.t("tui.number.nan", lang)
        return value, number_problem(self.request, value, lang)

    def _echo(self) -> None:
        value, problem = self.parse()
        echo = self.query_one("#prompt-echo", Static)
        if problem:
            echo.update(Text(problem, style="bold red"))
        elif value is not None:
            echo.update(Text(f"= {i18n.format_number(value, lang_of(self))} "
                             f"{i18n.display_unit(self.request.unit)}", style="green"))
        else:
            echo.update("")

    @on(Input.Changed, "#prompt-value")
    def _changed(self) -> None:
        if self.prompt is not None and self.kind == "number":
            self._echo()

    @on(Input.Submitted, "#prompt-value")
    def _submitted(self) -> None:
        if self.prompt is not None and self.kind == "number":
            self._number_ok()

    def _number_ok(self) -> None:
        assert self.prompt is not None
        value, problem = self.parse()
        if value is None or problem:
            self._echo()
            if value is None and not problem:
                self.query_one("#prompt-echo", Static).update(
                    Text(tr(self, "tui.number.nan"), style="bold red"))
            return
        text = self.query_one("#prompt-value", Input).value
        self.finish(OperatorAnswer(value=value, unit=self.request.unit,
                                   raw=f"tui:{text}".encode()))

    # -- faults --------------------------------------------------------------------------
    def _fault_status(self) -> None:
        assert self.prompt is not None
        lang = lang_of(self)
        view = getattr(self.app, "live_view", lambda _n: None)(self.instrument)
        status = self.query_one("#fault-status", Static)
        if view is None or view.status in (Status.HELD, Status.MANUAL, Status.NO_LIVE):
            status.update(Text(i18n.t("tui.fault.manual_retry", lang), style="yellow"))
            return
        if view.status != Status.CONNECTED:
            self.seen_down = True
            status.update(Text(i18n.t("tui.fault.waiting", lang, instrument=view.name),
                               style="bold red"))
            return
        if self.seen_down and "retry" in self.request.options:
            status.update(Text(i18n.t("tui.fault.back", lang, instrument=view.name),
                               style="bold green"))
            self.finish(answer_for(self.prompt, value="retry", raw=b"tui:auto-retry"),
                        debounce=False)
            return
        status.update(Text(i18n.t("tui.fault.connected", lang, instrument=view.name),
                           style="yellow"))


class ConfirmQuestion(ModalScreen[bool]):
    """A yes/no question of the TUI itself (abort the run? quit?)."""

    def __init__(self, message_id: str, **params: Any) -> None:
        super().__init__(classes="prompt-screen")
        self.message_id = message_id
        self.params = params

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog question"):
            yield Static(id="question-text", classes="prompt-text")
            with Horizontal(classes="dialog-buttons"):
                yield LButton("tui.btn.yes", id="question-yes", variant="error")
                yield LButton("tui.btn.no", id="question-no", variant="primary")

    def on_mount(self) -> None:
        self.call_after_refresh(self._become_ready)

    def _become_ready(self) -> None:
        self.retranslate()
        self.query_one("#question-no", Button).focus()

    def retranslate(self) -> None:
        for text in self.query("#question-text").results(Static):
            text.update(tr(self, self.message_id, **self.params))

    @on(Button.Pressed, "#question-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#question-no")
    def _no(self) -> None:
        self.dismiss(False)

    def key_escape(self) -> None:
        self.dismiss(False)


class OverrideReason(ModalScreen[str | None]):
    """A reference standard was refused for the run (past its due date, or outside the
    range its certificate covers): say why, and ask for the reason to use it anyway, as
    ``--override-reason`` does. The reason is recorded with the run and printed on the
    certificate; Cancel (or Esc) leaves the run refused."""

    def __init__(self, refusal: str | Mapping[str, str]) -> None:
        """``refusal``: why, by language (the engine's English text when no other)."""
        super().__init__(classes="prompt-screen")
        self.refusal = refusal

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog question"):
            yield Static(id="override-title", classes="dialog-title")
            yield Static(id="override-text", classes="prompt-text")
            yield Input(id="override-reason")
            yield Static(id="override-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield LButton("tui.btn.use_anyway", id="override-ok", variant="warning")
                yield LButton("tui.btn.cancel", id="override-cancel", variant="primary")

    def on_mount(self) -> None:
        self.call_after_refresh(self._become_ready)

    def _become_ready(self) -> None:
        self.retranslate()
        self.query_one("#override-reason", Input).focus()

    def retranslate(self) -> None:
        for title in self.query("#override-title").results(Static):
            title.update(tr(self, "tui.override.title"))
        for text in self.query("#override-text").results(Static):
            refusal = self.refusal
            if not isinstance(refusal, str):
                refusal = refusal.get(lang_of(self)) or refusal.get("en") or ""
            body = Text(refusal, style="bold red")
            body.append("\n\n" + tr(self, "tui.override.text"), style="")
            text.update(body)
        for field in self.query("#override-reason").results(Input):
            field.placeholder = tr(self, "tui.override.placeholder")

    @on(Button.Pressed, "#override-ok")
    @on(Input.Submitted, "#override-reason")
    def _ok(self) -> None:
        reason = self.query_one("#override-reason", Input).value.strip()
        if not reason:
            self.query_one("#override-error", Static).update(
                Text(tr(self, "tui.override.empty"), style="bold red"))
            return
        self.dismiss(reason)

    @on(Button.Pressed, "#override-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    def key_escape(self) -> None:
        self.dismiss(None)

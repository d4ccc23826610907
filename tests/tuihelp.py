"""Driving the TUI in tests: answer the run's questions through its dialog, read the screen.

Pilot's ``press``/``click`` wait for the whole process to go idle, which never quite happens
with simulators, pollers and a run in the same process (each would cost up to a second), and
``pilot.pause`` visits every widget of the screen first; so buttons are pressed with
``Button.press()`` and the polling loops yield with ``asyncio.sleep``.
Deadlines here only stop a hung test; nothing asserts on durations.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Button, Input

from benchctl.tui.app import BenchApp
from benchctl.tui.widgets.prompt_dialogs import PromptDialog

HANG_S = 60.0
TERMINAL = ("completed", "failed", "aborted", "refused")

OnPrompt = Callable[[PromptDialog], Awaitable[bool]]


def screen_text(app: BenchApp) -> str:
    """What the terminal shows now, as plain text (for assertions on what a person reads)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system=None, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text()


def describe(app: Any, what: str) -> str:
    """Why a test gave up: what the app was doing."""
    model = app.run_model
    return (f"gave up waiting for {what}: run state {model.state!r}, message "
            f"{model.message!r}, points {list(model.points)[-3:]}, waiting {model.waiting!r}, "
            f"screen {app.screen!r}, stack {app.screen_stack!r}, pending "
            f"{[p.request.key for p in app.operator.pending]}, queued "
            f"{[p.request.key for p in app._prompts]}")


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str,
                   timeout: float = HANG_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(describe(pilot.app, what))
        await asyncio.sleep(0.02)


def act_on_world(world: Any, action: dict[str, Any]) -> None:
    """What the technician does on the bench for an instruction (loads on the pan)."""
    kind = action.get("type")
    if kind == "place_load":
        world.apply({"type": "remove_load"})
        assert world.apply(action)["ok"] is True
    elif kind == "remove_load":
        world.apply(action)


#: The robot technician of these tests reads fast: no guard against double presses (the
#: guard has its own test).
PromptDialog.DEBOUNCE_S = 0.0
#: Screens are built on first visit in these tests (each test visits one or two; building
#: all four at start-up is for the technician's first key presses, and `benchctl tui` in
#: test_tui_cli runs with it).
BenchApp.PREPARE_SCREENS = False


async def answer(pilot: Pilot[Any], dialog: PromptDialog, button: str = "#prompt-ok") -> None:
    """Press a button of the dialog, and wait until that press has answered the question
    (acting again on the same question before would do the technician's work twice)."""
    prompt = dialog.prompt
    assert prompt is not None
    dialog.query_one(button, Button).press()
    deadline = time.monotonic() + HANG_S
    while not prompt.answered:
        if time.monotonic() > deadline:
            raise AssertionError(describe(pilot.app, f"the answer to {prompt.request.key}"))
        await asyncio.sleep(0.002)


async def type_into(pilot: Pilot[Any], field: Input, text: str) -> None:
    """Type as a person would: key by key into the focused field."""
    field.focus()
    field.value = ""
    for ch in text:
        field.insert_text_at_cursor(ch)
    await pilot.pause(0.01)


async def current_prompt(pilot: Pilot[Any], app: BenchApp) -> PromptDialog | None:
    dialog = app.prompt_dialog
    if dialog is None or not dialog.ready:
        return None
    return dialog


async def drive_run(pilot: Pilot[Any], app: BenchApp, world: Any, *,
                    until: Callable[[], bool] | None = None,
                    on_prompt: OnPrompt | None = None, timeout: float = HANG_S) -> int:
    """Answer every question of the run like a technician who does what is asked, until
    ``until()`` (default: the run ended). ``on_prompt`` may take a question over (return
    True when it answered it). Returns how many questions were answered."""
    done = until or (lambda: app.run_model.state in TERMINAL)
    answered = 0
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(describe(app, "the run to go on"))
        dialog = await current_prompt(pilot, app)
        if dialog is not None and not dialog.prompt.answered:  # type: ignore[union-attr]
            # The question is posted at once, the points before it only reach the run model
            # at the app's next tick: apply them now, so that ``until`` sees every point
            # taken before this question, however loaded the machine (else the run goes on
            # past the point the test wanted to stop at).
            app.tick()
            if done():
                break
            if on_prompt is not None and await on_prompt(dialog):
                answered += 1
                continue
            act_on_world(world, dialog.request.action or {})
            await answer(pilot, dialog)
            answered += 1
            continue
        await asyncio.sleep(0.01)
    return answered


async def start_from_setup(pilot: Pilot[Any], app: BenchApp, *, mode: str = "verify",
                           params: str = "", procedure: str = "nawi_balance",
                           fields: dict[str, str] | None = None) -> None:
    """On the run screen: choose procedure, DUT (the only one), mode and parameters (and any
    other ``fields``: input id -> text); start."""
    app.switch_mode("run")
    await wait_for(pilot, lambda: getattr(app.screen, "setup", None) is not None, "setup")
    screen = app.screen
    screen.query_one("#procedure").value = procedure
    await pilot.pause(0.05)
    screen.query_one("#mode").value = mode
    screen.query_one("#params", Input).value = params
    for wid, text in (fields or {}).items():
        screen.query_one(wid, Input).value = text
    await pilot.pause(0.02)
    screen.query_one("#start", Button).press()
    await wait_for(pilot, lambda: app.run_model.state != "setup", "the run to start")

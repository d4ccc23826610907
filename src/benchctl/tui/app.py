"""``benchctl tui``: where a technician spends the day at the bench.

One app, four screens (bench, run, history, register; Textual modes so each keeps its
state), help on F1 and the language on F8. A single tick, a few times a second, drains the
live buffer and the run's events and redraws what changed: acquisition and the run live in
their own threads and never wait for the UI, the UI never waits for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import getpass
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widget import AwaitMount

from ..config import BenchConfig
from ..i18n import LOCALES
from .l10n import retranslate_tree, tr
from .live import InstrumentView, LiveBench
from .operator import PendingPrompt, TuiOperator
from .runctl import RunController, RunJob, RunModel
from .screens.base import BaseScreen
from .screens.bench import BenchScreen
from .screens.help import HelpScreen
from .screens.history import HistoryScreen
from .screens.register import RegisterScreen
from .screens.run import RunScreen
from .widgets.prompt_dialogs import ConfirmQuestion, OverrideReason, PromptDialog

#: Redraws per second: enough to look live, few enough to stay calm over SSH.
TICK_HZ = 5.0


class PromptArrived(Message):
    """A question of the run (posted from the run's thread: post_message is thread-safe)."""

    def __init__(self, prompt: PendingPrompt) -> None:
        super().__init__()
        self.prompt = prompt


class BenchApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "benchctl"
    ENABLE_COMMAND_PALETTE = False
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "bench": BenchScreen, "run": RunScreen, "history": HistoryScreen,
        "register": RegisterScreen}
    DEFAULT_MODE = "bench"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "tui.key.help"),
        Binding("f2", "switch_mode('bench')", "tui.key.bench"),
        Binding("f3", "switch_mode('run')", "tui.key.run"),
        Binding("f4", "switch_mode('history')", "tui.key.history"),
        Binding("f5", "switch_mode('register')", "tui.key.register"),
        # Priority: the language switches in a dialog too (a question, a refusal), where
        # Textual would otherwise not pass the key to the app.
        Binding("f8", "toggle_language", "tui.key.language", priority=True),
        Binding("ctrl+q", "quit", "tui.key.quit", priority=True),
    ]

    lang: reactive[str] = reactive("vi", init=False)
    #: Build every screen at start-up (see prepare_screens); tests of one screen may skip it.
    PREPARE_SCREENS = True

    def __init__(self, bench: BenchConfig | None, db: Any, *, lang: str | None = None,
                 speed: float | None = None, poll: bool = True, rate_hz: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 today: Callable[[], dt.date] | None = None, tz: dt.tzinfo | None = None,
                 export_dir: Path | None = None, actor: str | None = None,
                 job: RunJob | None = None) -> None:
        super().__init__()
        self.bench = bench
        self.db = db
        self.set_reactive(BenchApp.lang, lang or (bench.locale if bench else "vi"))
        self.today: Callable[[], dt.date] = today or dt.date.today
        self.tz = tz
        self.poll = poll
        self.live: LiveBench | None = (LiveBench(bench, rate_hz=rate_hz, clock=clock)
                                       if bench is not None else None)
        self.operator = TuiOperator(self._deliver)
        self.runs = RunController(self.operator, db, speed=speed, today=self.today,
                                  hold=self._hold_for_run, release=self._release_after_run)
        self.run_model = RunModel()
        folder = Path(bench.path).parent if bench is not None else Path.cwd()
        self.export_dir = export_dir or folder / "exports"
        self.actor = actor or f"tui:{_user()}"
        self.initial_job = job
        self.job_requested = job is not None
        self.resource_names: dict[str, str] = (
            {cfg.resource: name for name, cfg in bench.instruments.items()} if bench else {})
        self.prompt_screen = PromptDialog(self.resource_names)
        self._prompts: deque[PendingPrompt] = deque()
        self._switch_at_once = False
        self._gc_frozen = False
        self.tick_seconds: deque[float] = deque(maxlen=2000)
        """How long each tick took (drain + redraw): the benchmark reads it."""
        self.ticks = 0

    @property
    def bench_name(self) -> str:
        return self.bench.name if self.bench is not None else "—"

    # -- lifecycle -----------------------------------------------------------------------
    def on_mount(self) -> None:
        self.install_screen(self.prompt_screen, name="prompt")
        if self.live is not None and self.poll:
            self.live.start()
        self.set_interval(1.0 / TICK_HZ, self.tick)
        if self.PREPARE_SCREENS:
            self.call_after_refresh(self.prepare_screens)
        elif self.initial_job is not None:
            job, self.initial_job = self.initial_job, None
            self.call_after_refresh(self.start_run, job)

    def switch_mode(self, mode: str) -> AwaitMount:
        """Textual's switch, without its 50 ms pause when the screen is already built.

        Textual holds every screen update for 50 ms after a switch (``delay_update``), so
        that a screen composed on its first visit is not seen half built. Ours are built at
        start-up (:meth:`prepare_screens`); switching to one that is ready is painted at the
        next frame.
        """
        self._switch_at_once = self._mode_ready(mode)
        try:
            return super().switch_mode(mode)
        finally:
            self._switch_at_once = False

    def delay_update(self, delay: float = 0.05) -> None:
        if not self._switch_at_once:
            super().delay_update(delay)

    def _mode_ready(self, mode: str) -> bool:
        try:
            stack = self.get_screen_stack(mode)
        except KeyError:
            return False
        return bool(stack) and all(getattr(s, "ready", True) and s.is_mounted for s in stack)

    async def prepare_screens(self) -> None:
        """Build every screen once the first one is on screen, without painting them.

        A screen composed on its first visit (and the styles re-applied with it) costs the
        technician a few hundred milliseconds on the first press of each F-key; built here,
        behind the bench screen, F2-F5 only switch. Then the run asked for on the command
        line, if any, starts.
        """
        home = self.current_mode
        others = [m for m in self.MODES if m != home]
        with self.batch_update():  # compose them (nothing is painted meanwhile)
            for mode in others:
                self.switch_mode(mode)
            self.switch_mode(home)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not all(
                stack and stack[0].is_mounted
                for stack in (self.get_screen_stack(m) for m in others)):
            await asyncio.sleep(0.05)
        with self.batch_update():  # and style them once, now that they are mounted
            for mode in others:
                self.switch_mode(mode)
            self.switch_mode(home)
        # Their first data (queries in threads) has come in a second later: lay them out
        # and draw them then, off screen.
        self.set_timer(1.0, lambda: self.warm_screens(others))
        # What is built by now lives as long as the app: out of the garbage collector's
        # way, or a full collection (70-80 ms with every screen built) lands on a key press
        # now and then. Collected once first, so no garbage is kept for good.
        gc.collect()
        gc.freeze()
        self._gc_frozen = True
        if self.initial_job is not None:
            job, self.initial_job = self.initial_job, None
            self.start_run(job)

    def warm_screens(self, modes: list[str]) -> None:
        """Lay out and render the screens of ``modes`` that are not on show.

        A screen is laid out at the terminal's size, and each widget renders its lines, the
        first time it is shown: 25-80 ms on the first press of its key. Done here, the
        first showing costs what the next ones do. This uses Textual's internals
        (``_refresh_layout``, ``_compositor``, ``_update_timer``); should they change,
        screens are simply laid out when first shown, as before.
        """
        for mode in modes:
            try:
                stack = self.get_screen_stack(mode)
            except KeyError:
                continue
            for screen in stack:
                if screen is self.screen or not screen.is_mounted:
                    continue
                try:
                    screen._refresh_layout(self.size)
                    screen._compositor.render_full_update()
                    # Its update timer waits a whole period on its first start: started
                    # now, the first frame shown comes at the next tick, as later ones do.
                    screen._update_timer.resume()
                except Exception:  # an optimisation, never a failure
                    return

    def on_unmount(self) -> None:
        if self._gc_frozen:
            gc.unfreeze()
            self._gc_frozen = False
        self.operator.cancel_all(b"the tui closed")
        self.runs.abort()
        self.runs.wait(10.0)
        self.runs.close()
        if self.live is not None:
            self.live.stop()

    def tick(self) -> None:
        started = time.perf_counter()
        for event in self.runs.drain():
            self.run_model.apply(event)
            self._tell(event)
        if self._prompts:
            self.show_next_prompt()
        for screen in list(self.screen_stack):
            refresh = getattr(screen, "refresh_view", None)
            if refresh is None or not screen.is_attached:
                continue
            try:
                refresh()
            except NoMatches:  # a screen being taken down as the app closes
                continue
        self.ticks += 1
        self.tick_seconds.append(time.perf_counter() - started)

    def _tell(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "finished":
            state = str(event.get("state"))
            self.notify(tr(self, "tui.note.finished", run=self.run_model.run_id or "",
                           state=tr(self, f"tui.state.{state}")),
                        severity="information" if state == "completed" else "warning")
        elif kind == "refused":
            job = event.get("job")
            if event.get("fitness") and isinstance(job, RunJob) and not job.override_reason:
                self.ask_override(job, event.get("messages") or str(event.get("message")))
            else:
                self.notify(str(event.get("message")), severity="error", timeout=15)
        elif kind == "paused" and event.get("reason"):
            self.notify(tr(self, "tui.note.paused", reason=event["reason"]),
                        severity="warning", timeout=8)

    # -- runs ----------------------------------------------------------------------------
    def start_run(self, job: RunJob) -> None:
        if self.bench is None:
            self.notify(tr(self, "tui.run.no_bench"), severity="error")
            return
        if self.runs.active:
            self.notify(tr(self, "tui.run.busy"), severity="warning")
            return
        self.switch_mode("run")
        self.runs.start(job, self.bench, self._spawn)

    def ask_override(self, job: RunJob, refusal: str | Mapping[str, str]) -> None:
        """A reference was refused as unfit: ask for the reason to use it anyway; with one,
        the same run starts (or resumes) again and records it (as ``run --override-reason``,
        ``resume --override-reason``)."""

        def answered(reason: str | None) -> None:
            if reason:
                self._start_when_free(dataclasses.replace(job, override_reason=reason))

        self.push_screen(OverrideReason(refusal), answered)

    def _start_when_free(self, job: RunJob, tries: int = 50) -> None:
        # The refused run's thread may still be letting go of the instruments.
        if self.runs.active and tries > 0:
            self.set_timer(0.1, lambda: self._start_when_free(job, tries - 1))
            return
        self.start_run(job)

    def _spawn(self, fn: Callable[[], None]) -> Any:
        return self.run_worker(fn, thread=True, group="run", name="run", exit_on_error=False)

    def _hold_for_run(self, bench: BenchConfig) -> list[str]:
        """In the run's thread: let go of the instruments the run cannot share."""
        if self.live is None:
            return []
        names = self.live.unshareable(bench.instruments)
        self.live.hold(names)
        return names

    def _release_after_run(self, names: list[str]) -> None:
        if self.live is not None:
            self.live.release(names)

    def ask_abort(self) -> None:
        if not self.runs.active:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.runs.abort()

        self.push_screen(ConfirmQuestion("tui.run.confirm_abort"), answered)

    # -- the operator's questions --------------------------------------------------------
    def _deliver(self, prompt: PendingPrompt) -> bool:
        return self.post_message(PromptArrived(prompt))

    def on_prompt_arrived(self, message: PromptArrived) -> None:
        self._prompts.append(message.prompt)
        self.show_next_prompt()

    def show_next_prompt(self) -> None:
        """One question on screen at a time; the next when it is answered. A question
        waits while the technician is in another dialog (a form, help, "abort the run?"):
        it never lands on top of what they are reading; the tick tries again."""
        if self.prompt_screen in self.screen_stack:
            return
        if isinstance(self.screen, ModalScreen):
            return
        while self._prompts and self._prompts[0].answered:
            self._prompts.popleft()
        if not self._prompts:
            return
        prompt = self._prompts.popleft()
        if self.current_mode != "run":
            self.switch_mode("run")
        self.prompt_screen.show_prompt(prompt)
        self.push_screen("prompt")

    def prompt_closed(self) -> None:
        self.call_later(self.show_next_prompt)

    @property
    def prompt_dialog(self) -> PromptDialog | None:
        """The question on screen now, if any (tests and the benchmark answer it)."""
        screen = self.screen
        if isinstance(screen, PromptDialog) and screen.prompt is not None \
                and not screen.prompt.answered:
            return screen
        return None

    def live_view(self, name: str | None) -> InstrumentView | None:
        if self.live is None or name is None or name not in self.live.buffer.names():
            return None
        return self.live.buffer.view(name)

    # -- keys ----------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_language(self) -> None:
        i = LOCALES.index(self.lang) if self.lang in LOCALES else 0
        self.lang = LOCALES[(i + 1) % len(LOCALES)]

    def watch_lang(self, _old: str, _new: str) -> None:
        for screen in list(self.screen_stack):
            if isinstance(screen, BaseScreen):
                screen.retranslate()
            else:
                retranslate_tree(screen)
                method = getattr(screen, "retranslate", None)
                if callable(method):
                    method()
        self.screen.refresh_bindings()

    async def action_quit(self) -> None:
        # The model, not the thread: a run whose end is on screen has ended, even if its
        # thread is still letting go of the instruments (on_unmount waits for it).
        if not self.run_model.active:
            self.exit(self.exit_code())
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.runs.abort()
                self.exit(self.exit_code())

        self.push_screen(ConfirmQuestion("tui.quit.confirm_run"), answered)

    def exit_code(self) -> int:
        """0 unless a run was asked for on the command line and did not complete."""
        if not self.job_requested:
            return 0
        return 0 if self.run_model.state == "completed" else 1


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "operator"

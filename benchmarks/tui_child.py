"""The TUI figure's measured process: ``python -m benchmarks.tui_child OPTIONS``.

Runs one Textual app headless (Textual's own headless driver: everything is laid out and
composited, nothing is written to a terminal) and prints one JSON object:

- ``cpu_percent``: CPU time of this whole process (the UI thread and the instruments' poller
  threads) over a ``--seconds`` window, as a percentage of one core;
- ``latencies_s``: for each key press, the time from the key event entering the app (as the
  terminal driver hands it over) to the first screen update written that makes the terminal
  show its effect: another screen, with its title and footer in the language expected (or,
  for F8, the same screen in the other language). Updates are kept as the driver would
  write them (not those Textual holds back and drops) and replayed on a model of the
  terminal once the app has had time to answer, so the harness does no work meanwhile;
- ``frames_to_show``: how many updates were written up to that one.

``--app benchctl`` is benchctl's TUI on the bench file given; ``--app bare`` is the baseline:
a bare Textual app of the same shape (four screens, a table with a row per instrument, updated
at the same rate
with values made up in process, the same keys).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any, ClassVar

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

#: Keys pressed, in order: screen changes and the language switch, back to the start.
KEYS = ("f4", "f2", "f5", "f2", "f3", "f2", "f8", "f8")


class Terminal:
    """What a terminal shows after the screen updates written to it: a grid of cells.

    Updates are applied as a terminal applies the escape sequences the driver writes
    (move the cursor, write the text), so "the screen shows X" means what a technician would
    read, not what the app has decided internally.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rows = [[" "] * width for _ in range(height)]

    def apply(self, update: Any, console: Any) -> None:
        from rich.segment import ControlType

        x = y = 0
        for segment in update.__rich_console__(console, console.options):
            if segment.control:
                for control in segment.control:
                    if control[0] == ControlType.CURSOR_MOVE_TO:
                        x, y = int(control[1]), int(control[2])
            elif segment.text == "\n":
                x, y = 0, y + 1
            else:
                x = self.write(x, y, segment.text)

    def seed(self, strips: list[Any]) -> None:
        """Start from what a screen shows now (one strip per line)."""
        for y, strip in enumerate(strips[: self.height]):
            self.write(0, y, "".join(segment.text for segment in strip))

    def write(self, x: int, y: int, text: str) -> int:
        """Write ``text`` from column ``x`` of line ``y``; the column after it."""
        from rich.cells import cell_len

        if not 0 <= y < self.height:
            return x + cell_len(text)
        row = self.rows[y]
        if text.isascii():
            end = min(x + len(text), self.width)
            if x < end:
                row[x:end] = text[: end - x]
            return x + len(text)
        for char in text:
            width = cell_len(char)
            if width == 0 and x > 0:  # a combining mark joins the cell before it
                row[min(x, self.width) - 1] += char
            elif 0 <= x < self.width:
                row[x] = char
                if width == 2 and x + 1 < self.width:
                    row[x + 1] = ""
            x += width
        return x

    def text(self) -> str:
        return "\n".join("".join(row) for row in self.rows)


class PaintLog:
    """Mixed into an app: while a key press is timed, keeps every screen update the driver
    would write, with the time it was ready to be written.

    An update counts when the driver would write it: Textual hands ``_display`` frames it
    then drops while updates are held (``batch_update``, and the 50 ms ``delay_update`` of
    ``switch_mode``); those never reach a terminal. An update's time is taken once it has
    been turned into the bytes a terminal would get (``render_segments``: the headless driver
    skips it, a real one does it on the UI thread), so that cost is counted. Nothing else is
    done meanwhile: the updates are replayed on a model of the terminal afterwards
    (:func:`key_latency`), so the measuring does not slow the app it measures.
    """

    frames: list[tuple[float, int, Any]] | None = None

    def _record(self, screen: Any, renderable: Any) -> None:
        frames = self.frames
        if frames is None or renderable is None or getattr(self, "_batch_count", 0):
            return
        renderable.render_segments(self.console)  # type: ignore[attr-defined]
        frames.append((time.perf_counter(), id(screen), renderable))

    def expected_texts(self, key: str) -> tuple[str, ...]:
        """What the terminal shows once ``key`` has taken effect (set by each app)."""
        raise NotImplementedError

    def changes_screen(self, key: str) -> bool:
        return key in SCREEN_KEYS


#: Screen keys and the mode each shows; F8 switches the language.
SCREEN_KEYS = {"f2": "bench", "f3": "run", "f4": "history", "f5": "register"}


def other_language(lang: str) -> str:
    return "vi" if lang == "en" else "en"


def measured_benchctl(bench_path: str, db_url: str, rate: float) -> App[Any]:
    from pathlib import Path

    from benchctl.config import load_bench
    from benchctl.store import open_database
    from benchctl.tui import app as tui_app
    from benchctl.tui.app import BenchApp

    class Measured(BenchApp, PaintLog):
        # Textual finds a relative CSS_PATH next to the module of the class using it.
        CSS_PATH = str(Path(tui_app.__file__).parent / str(BenchApp.CSS_PATH))

        def _display(self, screen: Screen[Any], renderable: Any) -> None:
            super()._display(screen, renderable)
            self._record(screen, renderable)

        def expected_texts(self, key: str) -> tuple[str, ...]:
            # The top bar names the screen and the language; the footer's keys are in it.
            from benchctl import i18n

            if key in SCREEN_KEYS:
                lang, screen = self.lang, self.MODES[SCREEN_KEYS[key]]
            else:
                lang, screen = other_language(self.lang), type(self.screen)
            title = i18n.t(str(screen.title_id), lang)  # type: ignore[union-attr]
            return (f"│ {title}", f"│ {lang.upper()}", f"f1 {i18n.t('tui.key.help', lang)}")

    return Measured(load_bench(bench_path), open_database(db_url), lang="en", rate_hz=rate)


# -- the baseline ------------------------------------------------------------------------------

class BareTable(Screen[None]):
    SUB_TITLE = "bench"

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="table")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in ("instrument", "role", "status", "value"):
            table.add_column(column, key=column)
        for i in range(self.app.rows):  # type: ignore[attr-defined]
            table.add_row(f"inst{i:02d}", "balance", "connected", "0.0000 g", key=str(i))
        self.set_interval(1 / self.app.rate, self.update_values)  # type: ignore[attr-defined]

    def update_values(self) -> None:
        table = self.query_one(DataTable)
        for i in range(self.app.rows):  # type: ignore[attr-defined]
            table.update_cell(str(i), "value", f"{random.uniform(0, 200):.4f} g")


class BareOther(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{self.__class__.__name__}: {self.app.lang}")  # type: ignore[attr-defined]
        yield Footer()


class BareRun(BareOther):
    SUB_TITLE = "run"


class BareHistory(BareOther):
    SUB_TITLE = "history"


class BareRegister(BareOther):
    SUB_TITLE = "register"


class BareApp(App[None], PaintLog):
    MODES: ClassVar[dict[str, Any]] = {"bench": BareTable, "run": BareRun,
                                       "history": BareHistory, "register": BareRegister}
    DEFAULT_MODE = "bench"
    BINDINGS: ClassVar[list[Any]] = [
        Binding("f2", "switch_mode('bench')"), Binding("f3", "switch_mode('run')"),
        Binding("f4", "switch_mode('history')"), Binding("f5", "switch_mode('register')"),
        Binding("f8", "toggle_language")]
    lang: reactive[str] = reactive("en")

    def __init__(self, rate: float, rows: int = 16) -> None:
        super().__init__()
        self.rate = rate
        self.rows = rows

    def action_toggle_language(self) -> None:
        self.lang = "vi" if self.lang == "en" else "en"

    def watch_lang(self, lang: str) -> None:
        self.title = f"bare app ({lang})"

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        super()._display(screen, renderable)
        self._record(screen, renderable)

    def expected_texts(self, key: str) -> tuple[str, ...]:
        # The header: "bare app (LANG) — SCREEN".
        if key in SCREEN_KEYS:
            return (f"bare app ({self.lang}) — {SCREEN_KEYS[key]}",)
        return (f"bare app ({other_language(self.lang)}) — {self.screen.sub_title}",)


# -- measuring ------------------------------------------------------------------------------------

def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's threads, by group: the UI (main) thread, the
    live pollers with their instrument threads, and the rest (Linux /proc)."""
    import os
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    main_id = threading.main_thread().native_id
    ticks = os.sysconf("SC_CLK_TCK")
    out = {"ui": 0.0, "instruments": 0.0, "other": 0.0}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        name = names.get(int(task), "")
        group = ("ui" if int(task) == main_id else "instruments"
                 if name.startswith(("live-", "instrument-")) else "other")
        out[group] += cpu
    return out

async def key_latency(app: Any, key: str, timeout: float = 5.0,
                      gap: float = 0.25) -> tuple[float, int]:
    """Seconds from the key event to the screen update that makes the terminal show its
    effect (every expected text; for a screen key, painted by another screen), and how many
    updates were written up to that one.

    The updates written after the key are applied to a model of the terminal only ``gap``
    seconds later (then every 50 ms until ``timeout``): while the app works, the harness
    sleeps.
    """
    screen = app.screen
    terminal = Terminal(*app.size)
    terminal.seed(screen._compositor.render_strips())  # as it is now
    old = id(screen) if app.changes_screen(key) else 0
    expected = app.expected_texts(key)
    app.frames = frames = []
    event = events.Key(key, None)
    event.set_sender(app)
    seen = 0
    try:
        t0 = time.perf_counter()
        app._driver.send_message(event)  # what the terminal driver does with a key it read
        await asyncio.sleep(gap)
        while True:
            for t, painted, update in frames[seen:]:
                seen += 1
                terminal.apply(update, app.console)
                if painted != old and all(text in terminal.text() for text in expected):
                    return t - t0, seen
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"the terminal did not show {expected} within {timeout} s "
                                   f"of key {key}:\n{terminal.text()}")
            await asyncio.sleep(0.05)
    finally:
        app.frames = None


async def measure(app: Any, seconds: float, rounds: int, expect: int,
                  keys: tuple[str, ...] = KEYS, settle: float = 1.0) -> dict[str, Any]:
    async with app.run_test(headless=True, size=(180, 60)):
        live = getattr(app, "live", None)
        deadline = time.monotonic() + 60
        if live is not None:  # every instrument connected and reading before the window
            while time.monotonic() < deadline:
                views = live.buffer.views()
                if sum(1 for v in views if v.samples > 0) >= expect:
                    break
                await asyncio.sleep(0.1)
            else:
                states = {v.name: (v.status.value, v.error) for v in live.buffer.views()}
                raise RuntimeError(f"instruments not all reading after 60 s: {states}")
        await asyncio.sleep(settle)
        pushes0 = live.buffer.pushes if live is not None else 0
        ticks0 = getattr(app, "ticks", 0)
        c0, w0, threads0 = time.process_time(), time.monotonic(), thread_cpu()
        await asyncio.sleep(seconds)
        cpu, wall, threads1 = time.process_time() - c0, time.monotonic() - w0, thread_cpu()
        pushes = (live.buffer.pushes - pushes0) if live is not None else None
        ticks = getattr(app, "ticks", 0) - ticks0
        latencies, frames = [], []
        for _ in range(rounds):
            for key in keys:
                latency, written = await key_latency(app, key, gap=max(0.25, settle / 5))
                latencies.append(latency)
                frames.append(written)
        tick_s = list(getattr(app, "tick_seconds", []))
    return {"cpu_s": cpu, "wall_s": wall, "cpu_percent": 100 * cpu / wall,
            "cpu_percent_by_thread": {k: 100 * (threads1[k] - threads0[k]) / wall
                                      for k in threads0},
            "samples_per_s": pushes / wall if pushes is not None else None,
            "instruments": expect, "ticks_per_s": ticks / wall, "latencies_s": latencies,
            "frames_to_show": frames,
            "keys": list(keys) * rounds,
            "tick_median_s": sorted(tick_s)[len(tick_s) // 2] if tick_s else None}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--app", choices=("benchctl", "bare"), required=True)
    p.add_argument("--bench")
    p.add_argument("--db")
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--instruments", type=int, default=16)
    p.add_argument("--keys", default=",".join(KEYS), help="keys to press, comma-separated")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds to let the app settle before the window (a fifth between keys)")
    args = p.parse_args(argv)
    app: Any
    if args.app == "benchctl":
        app = measured_benchctl(args.bench, args.db, args.rate)
    else:
        app = BareApp(args.rate, args.instruments)
    result = asyncio.run(measure(app, args.seconds, args.rounds, args.instruments,
                                 tuple(args.keys.split(",")), args.settle))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

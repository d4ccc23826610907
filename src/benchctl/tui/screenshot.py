"""A screenshot of the run screen, taken from a real run on the simulated demo bench.

    python -m benchctl.tui.screenshot docs/img/run-screen.svg [--lang en] [--size 160x46]

The demo bench's simulators are started in this process, a calibration of the demo balance
is driven through the TUI by a simulated technician who places the weights the dialogs ask
for (through the simulated world, as `--operator sim` does) and answers in the dialog; the
SVG is Textual's own export of the screen at the end. Nothing is drawn by hand, so the
picture in the README is what the TUI shows.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from textual.widgets import Button


async def _drive(app: Any, world: Any, pilot: Any, timeout: float = 300.0) -> None:
    """Do what each dialog asks to the simulated bench, then press its first button."""
    deadline = time.monotonic() + timeout
    while app.run_model.state not in ("completed", "failed", "aborted", "refused"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the run did not finish (state {app.run_model.state})")
        dialog = app.prompt_dialog
        if dialog is None or not dialog.ready or not dialog.accepting():
            await asyncio.sleep(0.02)
            continue
        action = dialog.request.action or {}
        if action.get("type") == "place_load":
            world.apply({"type": "remove_load"})
            world.apply(action)
        elif action.get("type") == "remove_load":
            world.apply(action)
        prompt = dialog.prompt
        dialog.query_one("#prompt-ok", Button).press()
        while not prompt.answered and time.monotonic() < deadline:
            await asyncio.sleep(0.005)


def take(out: Path, *, lang: str = "en", size: tuple[int, int] = (160, 46),
         mode: str = "calibrate", speed: float = 100.0) -> Path:
    from importlib import resources

    from ..commands import simulated_bench, start_bench_simulation
    from ..config import load_bench
    from ..store import open_database
    from .app import BenchApp
    from .runctl import RunJob

    demo = resources.files("benchctl") / "demo_data"
    with tempfile.TemporaryDirectory(prefix="benchctl-shot-") as tmp:
        folder = Path(tmp)
        for name in ("demo-bench.toml", "demo-balance.toml", "demo-weights-F1.toml"):
            (folder / name).write_text((demo / name).read_text(encoding="utf-8"),
                                       encoding="utf-8")
        bench = load_bench(folder / "demo-bench.toml")
        sim = start_bench_simulation(bench, speed)
        try:
            live = simulated_bench(bench, sim)
            live = dataclasses.replace(live, database=f"sqlite:///{folder / 'demo.db'}")
            app = BenchApp(live, open_database(live.database), lang=lang, speed=speed,
                           job=RunJob("nawi_balance", str(folder / "demo-balance.toml"), mode))

            async def scenario() -> None:
                async with app.run_test(size=size) as pilot:
                    await _drive(app, sim.world, pilot)
                    await asyncio.sleep(1.0)
                    app.clear_notifications()
                    await asyncio.sleep(0.3)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(app.export_screenshot(title="benchctl tui"),
                                   encoding="utf-8")

            asyncio.run(scenario())
        finally:
            sim.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchctl.tui.screenshot",
                                description="SVG screenshot of the run screen after a "
                                            "simulated calibration")
    p.add_argument("output", type=Path)
    p.add_argument("--lang", choices=("vi", "en"), default="en")
    p.add_argument("--size", default="160x46", help="COLUMNSxLINES")
    p.add_argument("--mode", choices=("verify", "calibrate"), default="calibrate")
    args = p.parse_args(argv)
    cols, _, lines = args.size.partition("x")
    path = take(args.output, lang=args.lang, size=(int(cols), int(lines)), mode=args.mode)
    print(f"screenshot written to {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

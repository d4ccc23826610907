"""One instrument dies in the middle of a session: its simulator server is stopped, then a
new one is started on the same port. The bench screen shows it disconnected while the room
monitor goes on updating; the run pauses with a message naming the instrument and resumes
by itself when the instrument answers again."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

from tuihelp import (
    act_on_world,
    answer,
    current_prompt,
    drive_run,
    screen_text,
    start_from_setup,
    wait_for,
)

from benchctl.config import load_bench
from benchctl.reports.document import run_document
from benchctl.store import open_database
from benchctl.tui.app import BenchApp
from benchctl.tui.live import Status
from benchctl.tui.widgets.instrument_panel import InstrumentPanel


def test_dead_instrument_mid_run(bench_dir: Path, simulation: Any) -> None:
    bench = load_bench(bench_dir / "bench.toml")
    app = BenchApp(bench, open_database(bench.database), speed=100.0, lang="en", rate_hz=10.0)
    servers = importlib.import_module(type(simulation.servers["balance"]).__module__)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with app.run_test(size=(150, 40)) as pilot:
            live = app.live
            assert live is not None
            await wait_for(pilot, lambda: all(
                v.status == Status.CONNECTED and v.samples > 2 for v in live.buffer.views()),
                "both instruments live")
            await start_from_setup(pilot, app, params="loads=5,6200 rep_n=2 down=false")
            # Up to the eccentricity question after the centre one (by the question on
            # screen: the run model is drawn on the tick and may lag a question behind).
            await drive_run(pilot, app, simulation.world, until=lambda: (
                app.prompt_dialog is not None and app.prompt_dialog.ready
                and app.prompt_dialog.request.key.startswith("eccentricity.")
                and app.prompt_dialog.request.key != "eccentricity.centre"))
            # The next question: place the load at front left. Kill the balance first.
            await wait_for(pilot, lambda: app.prompt_dialog is not None, "the next question")
            dialog = await current_prompt(pilot, app)
            assert dialog is not None
            seen["killed_at"] = dialog.request.key
            old = simulation.servers["balance"]
            port = old.port
            old.stop()
            act_on_world(simulation.world, dialog.request.action or {})
            await answer(pilot, dialog)

            # The run pauses on the fault; the dialog says what happened.
            await wait_for(pilot, lambda: app.run_model.state == "paused", "the pause")
            await wait_for(pilot, lambda: app.prompt_dialog is not None
                           and app.prompt_dialog.kind == "fault", "the fault dialog")
            await wait_for(pilot, lambda: live.buffer.view("balance").status
                           == Status.DISCONNECTED, "the balance shown disconnected")
            seen["message"] = app.run_model.message
            await pilot.pause(0.3)
            seen["fault_text"] = screen_text(app)
            run_screen = app.get_screen_stack("run")[0]
            seen["run_message"] = str(run_screen.query_one("#run-message").render())
            # The room monitor goes on while the balance is away.
            room_before = live.buffer.view("room").samples
            balance_before = live.buffer.view("balance").samples
            await wait_for(pilot, lambda: live.buffer.view("room").samples >= room_before + 2,
                           "the room monitor to go on")
            assert live.buffer.view("balance").samples == balance_before
            assert live.buffer.view("room").status == Status.CONNECTED
            # The bench screen shows it (the question waits in the run screen meanwhile).
            app.switch_mode("bench")
            await pilot.pause(0.3)
            panel = app.screen.query_one("#inst-balance", InstrumentPanel)
            seen["panel"] = panel.line.render().plain
            seen["bench_text"] = screen_text(app)
            app.switch_mode("run")
            assert app.run_model.state == "paused"

            # The balance comes back on the same port: the run goes on by itself.
            new = servers.TcpLineServer(old.factory, "127.0.0.1", port, name="balance")
            simulation.servers["balance"] = new
            await wait_for(pilot, lambda: app.run_model.state == "running", "the retry")
            seen["after"] = list(app.run_model.points)
            await drive_run(pilot, app, simulation.world)

    asyncio.run(scenario())
    assert seen["killed_at"].startswith("eccentricity.")
    resource = bench.instruments["balance"].resource
    assert resource in seen["message"]
    assert "balance is disconnected" in seen["fault_text"]  # the dialog
    assert seen["run_message"].startswith("Paused:") and resource in seen["run_message"]
    assert "disconnected" in seen["panel"]
    assert "room" in seen["bench_text"] and "connected" in seen["bench_text"]
    assert app.run_model.state == "completed", app.run_model.message
    doc = run_document(app.db, app.run_model.run_id)  # type: ignore[arg-type]
    keys = [p["key"] for p in doc["points"]]
    assert keys.count(seen["killed_at"]) == 1  # the interrupted point, taken once
    assert doc["state"] == "completed"

"""SVG snapshots of the screens in Vietnamese and English, from deterministic simulated data.

The run screen replays the events of a real simulated run (noise 0, fixed seed) recorded
once per module; the bench screen shows readings computed by the simulators' physics on a
manual clock; the register has fixed dates and a fixed "today". Nothing on screen depends on
the wall clock, the machine or the order of the tests. Update with ``--snapshot-update``
after checking the pictures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchhelp import BALANCE_SIM, DUT, WEIGHTS, bench_text
from simhelp import load as load_sim
from textual.pilot import Pilot
from tuihelp import drive_run, start_from_setup, wait_for

from benchctl.config import load_bench
from benchctl.store import open_database
from benchctl.store import repository as repo
from benchctl.tui.app import BenchApp
from benchctl.tui.live import Sample, Status

SIZE = (120, 36)
TODAY = dt.date(2026, 11, 21)
LANGS = ["vi", "en"]
QUIET_ROOM = {"type": "vaisala_ptu", "transport": "tcp", "temperature_c": 21.0,
              "humidity_pct": 50.0, "pressure_hpa": 1010.0, "variation": 0.0, "noise": 0.0}


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Any]]]:
    """A verification driven through the TUI on a quiet simulated bench; its events."""
    from benchctl import library

    folder = tmp_path_factory.mktemp("snaprun")
    library.configure([])
    sim = library.load("simulators", "bench").start_simulation(
        {"balance": dict(BALANCE_SIM), "room": dict(QUIET_ROOM)}, speed=100.0, seed=3)
    try:
        (folder / "weights.toml").write_text(WEIGHTS, encoding="utf-8")
        (folder / "dut.toml").write_text(DUT, encoding="utf-8")
        (folder / "bench.toml").write_text(bench_text(
            dict(sim.resources), control=sim.control_address,
            db=f"sqlite:///{folder / 'bench.db'}"), encoding="utf-8")
        bench = load_bench(folder / "bench.toml")
        app = BenchApp(bench, open_database(bench.database), speed=100.0, poll=False)
        events: list[Any] = []
        push = app.runs.push

        def record(event: dict[str, Any]) -> None:
            events.append(event)
            push(event)

        app.runs.push = record  # type: ignore[method-assign]
        app.runs.preview._deliver = record

        async def scenario() -> None:
            async with app.run_test(size=SIZE) as pilot:
                await start_from_setup(pilot, app, params="loads=5,2000,6200 rep_n=2")
                await drive_run(pilot, app, sim.world)

        asyncio.run(scenario())
        assert app.run_model.state == "completed", app.run_model.message
        yield folder, events
    finally:
        sim.stop()


def _replay(events: list[Any]) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        for event in events:
            app.runs.push(dict(event))
        app.switch_mode("run")
        await wait_for(pilot, lambda: app.run_model.state == "completed", "the replay")
        await pilot.pause(0.5)
        app.clear_notifications()
        await pilot.pause(0.1)
    return run_before


@pytest.mark.parametrize("lang", LANGS)
def test_run_screen(snap_compare: Any, recorded_run: tuple[Path, list[Any]], lang: str) -> None:
    folder, events = recorded_run
    bench = load_bench(folder / "bench.toml")
    app = BenchApp(bench, open_database(bench.database), lang=lang, poll=False,
                   today=lambda: TODAY)
    assert snap_compare(app, terminal_size=SIZE, run_before=_replay(events))


# -- the bench, from the simulators' physics on a manual clock ------------------------------

BENCH_FILE = """
[bench]
name = "Bàn cân 1"
locale = "vi"

[instruments.balance]
driver = "mettler_sics"
resource = "socket://192.168.10.21:4001"
role = "dut"

[instruments.room]
driver = "vaisala_ptu"
resource = "/dev/ttyUSB0"

[instruments.reference]
driver = "mettler_sics"
resource = "socket://192.168.10.22:4001"
role = "reference"

[instruments.dial]
driver = "manual"
resource = ""
unit = "g"
resolution = 1.0
"""


def _feed(app: BenchApp) -> None:
    """One minute of readings at 2 Hz: a 2 kg load placed at 20 s on a balance with 5 mg
    noise (seeded), the room drifting slowly; the reference balance lost at 45 s."""
    world_mod = load_sim("world")
    physics = load_sim("balance_physics")
    ptu_mod = load_sim("vaisala_ptu")
    clock = world_mod.ManualClock()
    world = world_mod.SimWorld(seed=7, clock=clock)
    balance = physics.SimBalance(clock, world.rng_for("balance"), max=6200.0, d=0.01,
                                 unit="g", noise=0.005, settle_time=4.0)
    env = ptu_mod.SimEnvironment(clock, world.rng_for("room"), temperature_c=21.5,
                                 humidity_pct=48.0, pressure_hpa=1009.8, variation=40.0,
                                 noise=0.2)
    buffer = app.live.buffer  # type: ignore[union-attr]
    for i in range(121):
        t = i * 0.5
        clock._now = t
        if i == 40:
            balance.place_load(2000.0)
        r = balance.reading()
        buffer.push("balance", Sample(t, r.value, "g", r.stable,
                                      raw=f"S S {r.text:>10} g".encode()))
        if i % 2 == 0:
            a = env.sample()
            buffer.push("room", Sample(
                t, round(a["temperature_c"], 1), "degC", None,
                (("RH", round(a["humidity_pct"], 1), "%RH"),
                 ("p", round(a["pressure_hpa"], 1), "hPa")),
                raw=f"T= {a['temperature_c']:.1f} 'C".encode()))
        if t <= 45:
            buffer.push("reference", Sample(t, 0.0, "g", True, raw=b"S S      0.00 g"))
    buffer.set_status("reference", Status.DISCONNECTED,
                      "socket://192.168.10.22:4001: cannot open: [Errno 111] "
                      "Connection refused")


@pytest.mark.parametrize("lang", LANGS)
def test_bench_screen(snap_compare: Any, tmp_path: Path, lang: str) -> None:
    (tmp_path / "bench.toml").write_text(BENCH_FILE, encoding="utf-8")
    bench = load_bench(tmp_path / "bench.toml")
    app = BenchApp(bench, open_database(f"sqlite:///{tmp_path / 'b.db'}"), lang=lang,
                   poll=False, clock=lambda: 60.0)

    async def run_before(pilot: Pilot[Any]) -> None:
        _feed(app)
        await pilot.pause(0.4)

    assert snap_compare(app, terminal_size=(140, 20), run_before=run_before)


# -- register and help ----------------------------------------------------------------------

def _register_db(path: Path) -> Any:
    db = open_database(f"sqlite:///{path}")
    with db.session() as s:
        for asset, kind, due, maker in (
                ("WS-F1-01", "weight_set", TODAY - dt.timedelta(days=3), "Häfner"),
                ("PACE-6000", "pressure_controller", TODAY + dt.timedelta(days=12), "Druck"),
                ("PTU-300", "environment_monitor", TODAY + dt.timedelta(days=300), "Vaisala")):
            repo.upsert_asset(s, asset, kind=kind, maker=maker, model="—", serial="S-1")
            repo.add_certificate(s, asset, number=f"VMI-{asset}", issuer="VMI",
                                 issued_on=due - dt.timedelta(days=365), due_on=due,
                                 U=0.02, k=2.0)
        repo.upsert_asset(s, "BAL-0007", kind="balance", maker="Mettler Toledo",
                          model="XS6002S", serial="B123", customer="Công ty Sông Hương",
                          unit="g", params={"max": 6200.0, "d": 0.1, "class": "II"})
    return db


@pytest.mark.parametrize("lang", LANGS)
def test_register_screen(snap_compare: Any, tmp_path: Path, lang: str) -> None:
    app = BenchApp(None, _register_db(tmp_path / "r.db"), lang=lang, poll=False,
                   today=lambda: TODAY)

    async def run_before(pilot: Pilot[Any]) -> None:
        app.switch_mode("register")
        await wait_for(pilot, lambda: app.screen.data is not None, "the register")
        app.screen.selected = "WS-F1-01"
        app.screen.fill()
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen_vi(snap_compare: Any, tmp_path: Path) -> None:
    app = BenchApp(None, open_database(f"sqlite:///{tmp_path / 'h.db'}"), lang="vi",
                   poll=False)
    assert snap_compare(app, terminal_size=SIZE, press=["f1"])

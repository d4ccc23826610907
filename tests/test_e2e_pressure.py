"""The pressure bench end to end: the PACE over pyvisa-py, the gauge over Modbus TCP (pymodbus),
the room on TCP, the simulated operator; injected gauge errors found again; a dial gauge read
by the operator; faults that pause the run, abort it, and a resume that completes it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from benchhelp import ROOT, benchctl, toml_value
from replay import load_driver
from simhelp import load

from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, resume_run, start_run
from benchctl.operator import OperatorAnswer, OperatorRequest
from benchctl.reports.document import run_document
from benchctl.store import open_database

bench_mod = load("bench")
manifold_mod = load("manifold")
manual = load_driver("manual")

SPEED = 200.0
FAST = 1000.0
REFERENCE = (ROOT / "src/benchctl/demo_data/demo-pace-reference.toml").read_text("utf-8")
DUT = """
asset = "PG-TEST-1"
kind = "pressure_gauge"
maker = "KELLER"
model = "LEO 2"
serial = "T-1"
unit = "kPa"
range = [0.0, 1000.0]
class = 0.6
resolution = 0.1
"""
# The gauge's own errors, in its unit (bar): +0.3 kPa at zero, +0.08 % of reading, and
# falling readings 0.4 kPa above rising ones.
GAUGE_SIM: dict[str, Any] = {
    "type": "modbus_pressure_gauge", "transport": "tcp", "unit": "bar", "zero_offset": 0.003,
    "span_error_pct": 0.08, "hysteresis": 0.004, "resolution": 0.001, "noise": 0.0,
}
CONTROLLER_SIM: dict[str, Any] = {"type": "druck_pace", "noise": 0.001, "settle_tau": 1.0}
RESOLUTION = 0.1  # kPa


def injected(pressure_kpa: float, direction: str) -> float:
    """The error the gauge simulator adds, in kPa."""
    sign = 1.0 if direction == "down" else -1.0
    return 0.3 + pressure_kpa * 0.0008 + sign * 0.2


def bench_toml(resources: dict[str, str], control: str, db: str, *, dial: bool = False,
               speed: float = SPEED) -> str:
    lines = ["[bench]", 'name = "Pressure test bench"', 'locale = "en"', f"speed = {speed}",
             f"database = {toml_value(db)}", "", "[simulation]",
             f"control = {toml_value(control)}", "",
             "[instruments.controller]", 'driver = "druck_pace"',
             f"resource = {toml_value(resources['controller'])}", 'role = "reference"',
             "timeout = 5.0", "slew = 100.0", "inl_band_pct = 0.01", "inl_time = 2.0", ""]
    if dial:
        lines += ["[instruments.gauge]", 'driver = "manual"', 'resource = "manual:gauge"',
                  'role = "dut"', 'plays = "pressure_indicator"', 'unit = "kgf/cm2"',
                  "resolution = 0.05", "minimum = -1.0", "maximum = 12.0", ""]
    else:
        lines += ["[instruments.gauge]", 'driver = "modbus_pressure_gauge"',
                  f"resource = {toml_value(resources['gauge'])}", 'role = "dut"',
                  'unit = "bar"', "timeout = 1.0", ""]
    lines += ["[instruments.room]", 'driver = "vaisala_ptu"',
              f"resource = {toml_value(resources['room'])}", "",
              "[references.controller]", 'file = "pace.toml"', ""]
    return "\n".join(lines)


@contextlib.contextmanager
def simulated_bench(tmp_path: Path, *, dial: bool = False, speed: float = SPEED
                    ) -> Iterator[Any]:
    """Start the simulated pressure bench and write its bench, DUT and reference files."""
    gauge: dict[str, Any] = (
        {"type": "dial_gauge", "unit": "kgf/cm2", "zero_offset": 0.1, "hysteresis": 0.1,
         "resolution": 0.05} if dial else dict(GAUGE_SIM))
    sim = bench_mod.start_simulation({
        "controller": dict(CONTROLLER_SIM), "gauge": gauge,
        "room": {"type": "vaisala_ptu", "transport": "tcp", "temperature_c": 21.0}},
        speed=speed, seed=5)
    try:
        db = f"sqlite:///{tmp_path / 'bench.db'}"
        (tmp_path / "bench.toml").write_text(
            bench_toml(sim.resources, sim.control_address, db, dial=dial, speed=speed),
            encoding="utf-8")
        (tmp_path / "pace.toml").write_text(REFERENCE, encoding="utf-8")
        dut = DUT if not dial else DUT.replace('unit = "kPa"', 'unit = "kgf/cm2"').replace(
            "range = [0.0, 1000.0]", "range = [0.0, 10.0]").replace(
            "class = 0.6", "class = 1.6").replace("resolution = 0.1", "resolution = 0.05")
        (tmp_path / "dut.toml").write_text(dut, encoding="utf-8")
        sim.dir = tmp_path
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def pressure_bench(tmp_path: Path) -> Iterator[Any]:
    with simulated_bench(tmp_path) as sim:
        yield sim


@pytest.fixture
def fast_bench(tmp_path: Path) -> Iterator[Any]:
    with simulated_bench(tmp_path, speed=FAST) as sim:
        yield sim


@pytest.fixture
def dial_bench(tmp_path: Path) -> Iterator[Any]:
    with simulated_bench(tmp_path, dial=True) as sim:
        yield sim


class RecordingOperator(SimulatedOperator):
    """The simulated technician, keeping every request it was asked."""

    def __init__(self, control: str) -> None:
        super().__init__(control)
        self.requests: list[OperatorRequest] = []

    async def ask(self, request: OperatorRequest) -> OperatorAnswer:
        self.requests.append(request)
        return await super().ask(request)


def options(sim: Any, operator: SimulatedOperator | None = None,
            listeners: list[Callable[[dict[str, Any]], None]] | None = None) -> RunOptions:
    bench = load_bench(sim.dir / "bench.toml")
    return RunOptions(bench=bench, operator=operator or SimulatedOperator(sim.control_address),
                      db=open_database(bench.database), speed=SPEED, handle_signals=False,
                      listeners=listeners or [])


def series(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["key"]: p for p in doc["points"] if p["test"] == "series"}


def summary(doc: dict[str, Any]) -> dict[float, dict[str, Any]]:
    return {p["nominal"]: p for p in doc["points"] if p["test"] == "point"}


# -- the injected errors, found again -------------------------------------------------------------


def test_sequence_b_calibration_finds_the_injected_errors(fast_bench: Any) -> None:
    """The whole CLI path at --speed 1000: a sequence B calibration of 9 points (27 readings,
    2 preloads, 30 s holds and 2-minute holds at the top) takes seconds, and its errors are
    the gauge's."""
    sim = fast_bench
    result = benchctl("run", "pressure_gauge", "--bench", str(sim.dir / "bench.toml"),
                      "--dut", str(sim.dir / "dut.toml"), "--operator", "sim",
                      "--mode", "calibrate", "--param", "sequence=B", "--param", "points=9",
                      "--speed", str(FAST), "--json", check=True)
    doc = json.loads(result.stdout)
    assert doc["state"] == "completed" and doc["verdict"] == "pass"
    readings = series(doc)
    assert len(readings) == 27
    assert {"series1.up.500kPa", "series2.down.500kPa", "series3.up.500kPa"} <= set(readings)
    for key, p in readings.items():
        assert p["unit"] == "kPa" and p["error_unit"] == "kPa" and p["mpe"] == 6.0
        assert abs(p["extra"]["skew_s"]) < 1.0  # reference and gauge read together
        if 0.0 < p["nominal"] < 1000.0:
            # one rounding to the gauge's 0.1 kPa digit, plus the reference's noise
            assert p["error"] == pytest.approx(injected(p["nominal"], p["direction"]),
                                               abs=RESOLUTION / 2 + 0.01), key
    points = summary(doc)
    assert sorted(points) == [0.0, 125.0, 250.0, 375.0, 500.0, 625.0, 750.0, 875.0, 1000.0]
    for nominal, p in points.items():
        assert p["k"] == 2.0 and 0.0 < p["U"] < 1.0
        if 0.0 < nominal < 1000.0:
            assert p["extra"]["hysteresis"] == pytest.approx(0.4, abs=RESOLUTION + 0.02)
            assert p["extra"]["repeatability"] <= RESOLUTION + 0.02
            assert p["error"] == pytest.approx(0.3 + 0.0008 * nominal,
                                               abs=RESOLUTION / 2 + 0.02)
    # 27 readings, 2 preloads, the zero after, ambient at start and end
    assert doc["measured_points"] == 32
    assert doc["environment"]["start"]["temperature_c"] == pytest.approx(21.0, abs=1.5)
    assert doc["references"][0]["certificate"] == "P-2025-001"


def test_verification_fails_a_gauge_beyond_its_class(pressure_bench: Any) -> None:
    """+0.8 % of reading on a class 0.6 gauge: beyond ±6 kPa near the top."""
    sim = pressure_bench
    sim.world.get("gauge").span_error_pct = 0.8
    outcome = start_run("pressure_gauge", str(sim.dir / "dut.toml"), "verify",
                        ["points=5", "hold_s=5", "hold_max_s=10"], options(sim))
    assert outcome.state == "completed", outcome.message
    doc = run_document(open_database(load_bench(sim.dir / "bench.toml").database),
                       outcome.run_id)
    points = summary(doc)
    assert points[250.0]["verdict"] == "pass" and points[1000.0]["verdict"] == "fail"
    assert doc["verdict"] == "fail"
    assert series(doc)["series1.up.1000kPa"]["verdict"] == "fail"


# -- a dial gauge read by the technician ----------------------------------------------------------


def test_manual_driver_plays_a_pressure_indicator() -> None:
    assert manual.role_for({}) == "balance"
    assert manual.role_for({"plays": "pressure_indicator"}) == "pressure_indicator"
    with pytest.raises(Exception, match="plays"):
        manual.role_for({"plays": "flow_meter"})


def test_dial_gauge_read_by_the_simulated_operator(dial_bench: Any) -> None:
    sim = dial_bench
    operator = RecordingOperator(sim.control_address)
    outcome = start_run("pressure_gauge", str(sim.dir / "dut.toml"), "verify",
                        ["points=5", "hold_s=5", "hold_max_s=10"], options(sim, operator))
    assert outcome.state == "completed", outcome.message
    doc = run_document(open_database(load_bench(sim.dir / "bench.toml").database),
                       outcome.run_id)
    readings = series(doc)
    assert set(readings) == {f"series{s}.{d}.{p:g}kgfcm2" for s, d in ((1, "up"), (2, "down"))
                             for p in (0, 2.5, 5, 7.5, 10)}
    for key, p in readings.items():
        if 0 < p["nominal"] < 10:
            expected = 0.1 + (0.05 if p["direction"] == "down" else -0.05)
            assert p["error"] == pytest.approx(expected, abs=0.025 + 0.001), key
    assert doc["verdict"] == "pass"
    reads = [r for r in operator.requests if r.kind == "number"]
    assert len(reads) == 11  # ten series readings and the zero after
    first = next(r for r in reads if r.key == "series1.up.5kgfcm2")
    assert first.unit == "kgf/cm2" and first.resolution == 0.05
    assert first.action == {"type": "read", "instrument": "gauge", "unit": "kgf/cm2",
                            "resolution": 0.05, "point": "series1.up.5kgfcm2"}
    assert "Point series1.up.5kgfcm2" in first.text and "resolution 0.05 kgf/cm2" in first.text
    assert "Điểm series1.up.5kgfcm2" in first.text
    mount = next(r for r in operator.requests if r.key == "setup.mount")
    assert mount.action and mount.action["type"] == "mount_gauge"


# -- faults: pause, abort, resume -----------------------------------------------------------------


FAULTS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # name: (action that breaks it, action that mends it, what the pause says)
    "modbus_exception": ({"type": "fault", "instrument": "gauge", "mode": "error",
                          "count": 100},
                         {"type": "fault", "instrument": "gauge", "mode": "clear"},
                         "answered Modbus exception 0x04, server device failure"),
    "dropped_connection": ({"type": "fault", "instrument": "gauge", "mode": "disconnect",
                            "count": 100},
                           {"type": "fault", "instrument": "gauge", "mode": "clear"},
                           "lost"),
}
PARAMS = ["sequence=C", "points=5", "hold_s=5", "hold_max_s=10", "inlimits_timeout_s=20"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_gauge_fault_pauses_the_run_then_resume_completes_it(pressure_bench: Any,
                                                               fault: str) -> None:
    """The gauge fails in the middle of the falling series: the run pauses with a clear
    message, the operator retries three times and aborts, the controller is vented; once the
    gauge is mended the run resumes from the next point and completes."""
    sim = pressure_bench
    breaks, mends, says = FAULTS[fault]
    trigger = "series2.down.750kPa"
    events: list[dict[str, Any]] = []

    def listener(event: dict[str, Any]) -> None:
        events.append(event)
        if event.get("event") == "point" and event.get("key") == trigger:
            assert sim.world.apply(breaks)["ok"]

    opts = options(sim, listeners=[listener])
    outcome = start_run("pressure_gauge", str(sim.dir / "dut.toml"), "calibrate", PARAMS, opts)
    assert outcome.state == "aborted"
    paused = [e for e in events if e.get("event") == "paused"]
    assert len(paused) == 4  # the first fault, then each of the operator's three retries
    assert all(e["key"] == "series2.down.500kPa" for e in paused)
    assert says in paused[0]["reason"]
    assert paused[0]["reason"].startswith(sim.resources["gauge"])
    doc = run_document(opts.db, outcome.run_id)
    assert doc["state"] == "aborted" and says in doc["state_message"]
    assert manifold_mod.manifold_for(sim.world).mode == "vent"  # left safe

    assert sim.world.apply(mends)["ok"]
    again = resume_run(outcome.run_id, options(sim))
    assert again.state == "completed", again.message
    doc = run_document(opts.db, outcome.run_id)
    assert doc["state"] == "completed" and doc["verdict"] == "pass"
    readings = series(doc)
    assert len(readings) == 10  # sequence C: up and down through 5 points
    # The first point after the resume is still approached from above: the hysteresis the
    # falling series measures is the gauge's, not an artefact of the pause.
    assert readings["series2.down.500kPa"]["error"] == pytest.approx(
        injected(500.0, "down"), abs=RESOLUTION / 2 + 0.01)
    assert readings["series1.up.500kPa"]["error"] == pytest.approx(
        injected(500.0, "up"), abs=RESOLUTION / 2 + 0.01)


def test_a_controller_that_never_reaches_in_limits_then_benchctl_resume(
        fast_bench: Any) -> None:
    """Through the command line, as a technician would: the controller hunts around its
    setpoint, so the run pauses, the operator retries and aborts (exit 3, "aborted"); once the
    control loop is mended `benchctl resume` completes the run."""
    sim = fast_bench
    assert sim.world.apply({"type": "set_manifold", "hunting": {"value": 5, "unit": "kPa"}})["ok"]
    bench = load_bench(sim.dir / "bench.toml")
    args = ["--operator", "sim", "--json", "--db", bench.database or "", "--speed", str(FAST)]
    first = benchctl("run", "pressure_gauge", "--bench", str(sim.dir / "bench.toml"), "--dut",
                     str(sim.dir / "dut.toml"), "--mode", "calibrate",
                     *[a for p in PARAMS for a in ("--param", p)], *args)
    assert first.returncode != 0
    doc = json.loads(first.stdout)
    assert doc["state"] == "aborted"
    says = "controller did not reach in-limits at 1000 kPa within 20 s"
    assert says in doc["state_message"]
    assert sim.resources["controller"] in doc["state_message"]
    assert manifold_mod.manifold_for(sim.world).mode == "vent"  # left safe

    assert sim.world.apply({"type": "set_manifold", "hunting": 0})["ok"]
    resumed = benchctl("resume", str(doc["run_id"]), *args, check=True)
    doc = json.loads(resumed.stdout)
    assert doc["state"] == "completed" and doc["verdict"] == "pass"
    assert len(series(doc)) == 10

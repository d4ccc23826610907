"""A reply that arrives after the driver gave up on it must never become the answer to a later
question: the value the probe records at the next point is the instrument's value THEN, not
the one it had when the late reply was made.

The probe asks the same question at every point, the hardest case for a driver: a line
protocol without sequence numbers cannot tell a late answer from a fresh one by its header.
Each test changes what the instrument measures right after the point that met the late reply,
so a late answer taken for the next point's shows as the old value.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from benchhelp import BALANCE_SIM, DUT, ROOM_SIM, bench_text
from crashhelp import simulated_job
from faulthelp import Fault, record_row, run_probe, slow

from benchctl import library
from benchctl.config import BenchConfig, load_bench, parse_bench


def _fast(bench: Any, name: str, **options: Any) -> Any:
    from test_faults_matrix import _fast as fast

    return fast(bench, name, **options)


def _row(bench: str, name: str, driver: str, fault: str, result: Any,
         got: list[tuple[float, str]], want: list[tuple[float, str]],
         tolerance: float = 1e-9) -> None:
    """The table row for what happened at the point after the late reply."""
    good = [u for _, u in got] == [u for _, u in want] and all(
        abs(a - b) <= tolerance for (a, _), (b, _) in zip(got, want, strict=True))
    shown = ", ".join(f"{v:g} {u}" for v, u in got)
    record = (f"the new value recorded ({shown})" if good else
              f"BAD VALUE RECORDED: {shown} for {want[0][0]:g} {want[0][1]} (the late reply "
              "answered the next query)")
    record_row(bench, name, driver, fault, result.observed[0].behaviour(), record)


def test_balance_late_weight_is_not_the_next_points(tmp_path: Path) -> None:
    library.configure([])
    sim = library.load("simulators", "bench").start_simulation(
        {"balance": dict(BALANCE_SIM), "room": dict(ROOM_SIM)}, speed=100.0, seed=3)
    try:
        text = bench_text(dict(sim.resources), control=sim.control_address).replace(
            '[references.weights]\nfile = "weights.toml"\n', "")
        bench = _fast(parse_bench(text, tmp_path / "bench.toml"), "balance", timeout=1.0,
                      stability_margin=0.5)
        dut = tmp_path / "dut.toml"
        dut.write_text(DUT, encoding="utf-8")

        def load_the_pan(key: str) -> None:
            if key == "probe.01":  # after the late reply's point: 100 g on the pan
                assert sim.world.apply({"type": "place_load", "load": 100.0})["ok"]
                time.sleep(0.1)  # settled (2 s simulated)

        result = run_probe(bench=bench, instrument="balance", world=sim.world,
                           control=sim.control_address, tmp=tmp_path, dut_file=dut,
                           faults=[Fault("slow", delay=300.0)], on_point=load_the_pan)
    finally:
        sim.stop()
    assert result.outcome.state == "completed"
    values = result.values("balance")
    _row("balance", "balance", "mettler_sics", "late reply (3 s), then 100 g on the pan",
         result, values["probe.02"], [(100.0, "g")])
    assert result.observed[0].retries >= 1
    assert values["probe.02"] == [(100.0, "g")], values


@slow
@pytest.mark.parametrize("instrument, driver, expected, tolerance", [
    ("controller", "druck_pace", (500.0, "kPa"), 5.0),
    # Modbus TCP: the transaction id of a late response is not the next request's (pymodbus
    # skips it), and the transport starts the next request on a fresh connection anyway.
    ("gauge", "modbus_pressure_gauge", (5.0, "bar"), 0.05),
])
def test_late_pressure_is_not_the_next_points(instrument: str, driver: str,
                                              expected: tuple[float, str], tolerance: float,
                                              tmp_path: Path) -> None:
    with simulated_job("pressure", tmp_path / "sim") as job:
        world = job.sim.world
        bench = _fast(load_bench(job.bench), instrument, timeout=1.0)
        dut = tmp_path / "dut.toml"
        dut.write_text(DUT, encoding="utf-8")

        def pressurise(key: str) -> None:
            if key == "probe.01":
                pace = world.get("controller")
                pace.set_setpoint(500.0)
                pace.set_output(True)
                time.sleep(0.2)  # 200 s simulated: at 500 kPa

        result = run_probe(bench=bench, instrument=instrument, world=world,
                           control=job.sim.control_address, tmp=tmp_path, dut_file=dut,
                           faults=[Fault("slow", delay=3.0 * job.speed)], on_point=pressurise)
        world.get("controller").vent()
    assert result.outcome.state == "completed"
    values = result.values(instrument)
    (value, unit), = values["probe.02"]
    _row("pressure", instrument, driver, "late reply (3 s), then 500 kPa", result,
         values["probe.02"], [expected], tolerance=tolerance)
    assert result.observed[0].retries >= 1
    assert unit == expected[1] and abs(value - expected[0]) < tolerance, values


def _transmitter_bench(resource: str, control: str, path: Path) -> BenchConfig:
    text = "\n".join([
        "[bench]", 'name = "Transmitter bench"', 'locale = "en"', "speed = 100.0", "",
        "[simulation]", f'control = "{control}"', "",
        "[instruments.transmitter]", 'driver = "keysight_344xx"', f'resource = "{resource}"',
        "range_low = 0.0", "range_high = 1000.0", 'unit = "kPa"', "timeout = 1.0", ""])
    return parse_bench(text, path)


@slow
def test_transmitter_dmm_late_reading_is_not_the_next_points(tmp_path: Path) -> None:
    """2 s late: the driver waits 1.2 s (1 s + NPLC 10), so the late line arrives while the
    retry waits for its own answer, and that answer then waits for the next point."""
    library.configure([])
    sim = library.load("simulators", "bench").start_simulation(
        {"transmitter": {"type": "keysight_344xx", "range_low": 0.0, "range_high": 1000.0,
                         "unit": "kPa"}}, speed=100.0, seed=3)
    try:
        manifold = library.load("simulators", "manifold").manifold_for(sim.world)
        manifold.pump_time = 0.01
        bench = _transmitter_bench(sim.resources["transmitter"], sim.control_address,
                                   tmp_path / "bench.toml")
        dut = tmp_path / "dut.toml"
        dut.write_text(DUT, encoding="utf-8")

        def pressurise(key: str) -> None:
            if key == "probe.01":  # after the late reply's point: 500 kPa in the manifold
                manifold.pump_to(500_000.0)
                time.sleep(0.05)

        result = run_probe(bench=bench, instrument="transmitter", world=sim.world,
                           control=sim.control_address, tmp=tmp_path, dut_file=dut,
                           faults=[Fault("slow", delay=200.0)], on_point=pressurise)
    finally:
        sim.stop()
    assert result.outcome.state == "completed"
    values = result.values("transmitter")
    (value, unit), = values["probe.02"]
    _row("pressure", "transmitter", "keysight_344xx", "late reply (2 s), then 500 kPa", result,
         values["probe.02"], [(500.0, "kPa")], tolerance=0.5)
    assert result.observed[0].retries >= 1
    assert unit == "kPa" and abs(value - 500.0) < 0.5, values


@slow
def test_dispenser_late_totals_are_not_the_next_points(tmp_path: Path) -> None:
    with simulated_job("dispenser", tmp_path / "sim") as job:
        world = job.sim.world
        bench = _fast(load_bench(job.bench), "dispenser", timeout=1.0)
        dut = tmp_path / "dut.toml"
        dut.write_text(DUT, encoding="utf-8")

        def deliver(key: str) -> None:
            if key == "probe.01":  # after the late reply's point: 2 L more on the totalizer
                reply = world.apply({"type": "deliver", "instrument": "dispenser",
                                     "volume": {"value": 2.0, "unit": "L"},
                                     "flow": {"value": 40.0, "unit": "L/min"}})
                assert reply["ok"], reply

        result = run_probe(bench=bench, instrument="dispenser", world=world,
                           control=job.sim.control_address, tmp=tmp_path, dut_file=dut,
                           faults=[Fault("slow", delay=3.0 * job.speed)], on_point=deliver)
    assert result.outcome.state == "completed"
    values = result.values("dispenser")
    (before, _), = values["probe.01"]
    (after, unit), = values["probe.02"]
    _row("dispenser", "dispenser", "sim_dispenser", "late reply (3 s), then 2 L delivered",
         result, values["probe.02"], [(before + 2.0, "L")], tolerance=0.005)
    assert result.observed[0].retries >= 1
    assert unit == "L" and abs(after - (before + 2.0)) < 0.005, values


@slow
def test_room_monitor_late_reading_is_not_recorded(tmp_path: Path) -> None:
    """The driver flushes before every SEND, so the late line must land while a retry waits:
    the room warms to 25 °C half a second after the reading was asked, the answer computed
    before (21 °C) comes 3 s late, and no point may record it."""
    library.configure([])
    sim = library.load("simulators", "bench").start_simulation(
        {"balance": dict(BALANCE_SIM), "room": dict(ROOM_SIM)}, speed=100.0, seed=3)
    sim.world.environment.variation = 0.0
    timers: list[threading.Timer] = []
    try:
        text = bench_text(dict(sim.resources), control=sim.control_address).replace(
            '[references.weights]\nfile = "weights.toml"\n', "")
        bench = _fast(parse_bench(text, tmp_path / "bench.toml"), "room", timeout=1.0)
        dut = tmp_path / "dut.toml"
        dut.write_text(DUT, encoding="utf-8")

        def warm_the_room_soon(key: str) -> None:
            if key == "probe.00":  # the next reading is the late one
                timers.append(threading.Timer(0.5, sim.world.apply, [
                    {"type": "set_ambient", "temperature_c": 25.0}]))
                timers[-1].start()

        result = run_probe(bench=bench, instrument="room", world=sim.world,
                           control=sim.control_address, tmp=tmp_path, dut_file=dut,
                           faults=[Fault("slow", delay=300.0)], on_point=warm_the_room_soon)
    finally:
        for timer in timers:
            timer.join()
        sim.stop()
    assert result.outcome.state == "completed"
    values = result.values("room")
    got = [values[key][0] for key in ("probe.01", "probe.02")]
    _row("balance", "room", "vaisala_ptu", "late reply (3 s), the room at 25 °C meanwhile",
         result, got, [(25.0, "degC")] * 2, tolerance=0.2)
    assert result.observed[0].retries >= 1
    assert all(u == "degC" and abs(v - 25.0) < 0.2 for v, u in got), values

"""Every fault mode against every simulated instrument of the three benches (balance,
pressure, dispenser), through the real driver, transport and engine (the probe procedure of
faulthelp.py).

What must hold for every instrument and fault: the run ends completed (after an abort, by a
resume), no reading from a faulty exchange is in the record, and every message names the
resource. A single transient fault (garbage, a half line, silence, a late or busy reply, a
dropped connection) is retried within the bounded policy without bothering the operator;
a persistent one pauses the run, the operator aborts, and a resume completes the run. The rows
feed docs/reliability.md (tools/reliability_table.py).

All marked slow (``pytest -m slow``; ``make reliability`` runs them): about 15 s per
instrument. test_faults_balance.py covers the balance in the default run.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from benchhelp import BALANCE_SIM, DUT, ROOM_SIM, bench_text
from crashhelp import simulated_job
from faulthelp import Fault, Observed, record_rows, run_probe, slow

from benchctl import library
from benchctl.config import BenchConfig, load_bench, parse_bench

# "slow" comes last: a driver that only flushed after a timeout took the late replies for the
# answers to its next identical queries, which shifted any fault after it by a point. The line
# drivers now resynchronise (test_faults_stale.py proves it with values that change); keeping
# "slow" last keeps a regression there from blurring the other rows.
LINE_FAULTS = [
    Fault("garbage"), Fault("truncated"), Fault("silence"), Fault("stall"),
    Fault("busy", count=2), Fault("error"), Fault("wrong_unit"), Fault("disconnect"),
    Fault("power_cycle"), Fault("refuse", count=3),
    Fault("error", count=1000, persistent=True), Fault("silence", count=1000, persistent=True),
    Fault("slow"),
]
MODBUS_FAULTS = [
    Fault("garbage"), Fault("truncated"), Fault("silence"), Fault("stall"),
    Fault("busy", count=2), Fault("error"), Fault("exception", code=2), Fault("disconnect"),
    Fault("power_cycle"),
    Fault("error", count=1000, persistent=True), Fault("silence", count=1000, persistent=True),
    Fault("slow"),
]
#: Faults a bounded retry must cure without a pause, per protocol family.
TRANSIENT = {"line": {"garbage", "truncated", "silence", "slow", "busy", "disconnect"},
             "modbus": {"garbage", "truncated", "silence", "slow", "disconnect"}}


def _check_common(observed: list[Observed], name: str, family: str) -> None:
    for obs in observed:
        where = f"{name} {obs.fault.label} at {obs.key}: {obs.behaviour()} / {obs.errors}"
        assert obs.value_ok, f"bad value recorded: {where}"
        assert obs.recorded, f"point never completed: {where}"
        for error in obs.errors:
            assert re.search(r"socket://|/dev/|TCPIP|modbus-", error), f"no resource: {where}"
        if obs.fault.persistent:
            assert obs.pauses >= 1 and obs.aborted and obs.resumed, where
        elif obs.fault.mode in TRANSIENT[family]:
            assert obs.retries >= 1, where
            assert obs.pauses == 0, f"a single transient fault bothered the operator: {where}"


def _fast(bench: BenchConfig, name: str, **options: Any) -> BenchConfig:
    """Short timeouts: a silent instrument costs one timeout per attempt."""
    inst = bench.instruments[name]
    return replace(bench, instruments={**bench.instruments,
                                       name: replace(inst, options={**inst.options, **options})})


def _matrix(bench: BenchConfig, name: str, world: Any, control: str, tmp: Path,
            faults: list[Fault], family: str, label: str) -> list[Observed]:
    dut = tmp / "dut.toml"
    dut.write_text(DUT, encoding="utf-8")
    # A late reply: 3 real seconds, well past the 1 s timeout, on this simulation's clock.
    faults = [replace(f, delay=3.0 * world.clock.speed, note="3 s late")
              if f.mode == "slow" else f for f in faults]
    result = run_probe(bench=bench, instrument=name, world=world, control=control, tmp=tmp,
                       dut_file=dut, faults=faults)
    assert result.outcome.state == "completed", result.outcome.message
    _check_common(result.observed, name, family)
    record_rows(label, name, bench.instruments[name].driver, result.observed)
    return result.observed


@pytest.fixture
def balance_sim() -> Any:
    library.configure([])
    sim = library.load("simulators", "bench").start_simulation(
        {"balance": dict(BALANCE_SIM), "room": dict(ROOM_SIM)}, speed=100.0, seed=3)
    sim.world.environment.variation = 0.0
    try:
        yield sim
    finally:
        sim.stop()


def _balance_bench(tmp_path: Path, sim: Any) -> BenchConfig:
    text = bench_text(dict(sim.resources), control=sim.control_address)
    text = text.replace('[references.weights]\nfile = "weights.toml"\n', "")
    bench = parse_bench(text, tmp_path / "bench.toml")
    bench = _fast(bench, "balance", timeout=1.0, stability_margin=0.5)
    return _fast(bench, "room", timeout=1.0)


@slow
def test_every_line_fault_on_the_balance(tmp_path: Path, balance_sim: Any) -> None:
    observed = _matrix(_balance_bench(tmp_path, balance_sim), "balance", balance_sim.world,
                       balance_sim.control_address, tmp_path, LINE_FAULTS, "line", "balance")
    by_mode = {(o.fault.mode, o.fault.persistent): o for o in observed}
    # A command the instrument refuses is not retried blindly: the run pauses, the operator
    # retries, and the point is then measured.
    err = by_mode[("error", False)]
    assert err.pauses == 1 and err.operator_retried, err
    # The balance answers in kg: the reading is not recorded, the run pauses.
    wrong = by_mode[("wrong_unit", False)]
    assert wrong.pauses == 1 and any("kg" in e for e in wrong.errors), wrong
    # Unplugged for a while: new connections are refused; the handle reconnects once the
    # balance takes them again, and the run goes on by itself.
    refused = by_mode[("refuse", False)]
    assert refused.retries >= 1 and not refused.aborted, refused
    assert any("reset" in e or "refused" in e or "lost" in e for e in refused.errors)
    # It restarted: the driver says so (zero and tare are lost) and the exchange is retried.
    restarted = by_mode[("power_cycle", False)]
    assert restarted.retries == 1 and "restarted" in restarted.errors[0], restarted


@slow
def test_every_line_fault_on_the_room_monitor(tmp_path: Path, balance_sim: Any) -> None:
    observed = _matrix(_balance_bench(tmp_path, balance_sim), "room", balance_sim.world,
                       balance_sim.control_address, tmp_path, LINE_FAULTS, "line", "balance")
    by_mode = {(o.fault.mode, o.fault.persistent): o for o in observed}
    # 'F instead of 'C is converted, not refused: the value recorded is the right one.
    assert by_mode[("wrong_unit", False)].value_ok


PRESSURE = {"controller": (LINE_FAULTS, "line", {"timeout": 1.0}),
            "gauge": (MODBUS_FAULTS, "modbus", {"timeout": 1.0})}
DISPENSER = {"dispenser": (LINE_FAULTS, "line", {"timeout": 1.0}),
             "master_meter": (MODBUS_FAULTS, "modbus", {"timeout": 1.0})}


@slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("job, name", [*(("pressure", n) for n in PRESSURE),
                                       *(("dispenser", n) for n in DISPENSER)])
def test_every_fault_on_the_pressure_and_dispenser_benches(job: str, name: str,
                                                          tmp_path: Path) -> None:
    faults, family, options = {**PRESSURE, **DISPENSER}[name]
    if job == "dispenser":  # its console has no units to get wrong
        faults = [f for f in faults if f.mode != "wrong_unit"]
    with simulated_job(job, tmp_path / "sim") as j:
        bench = _fast(load_bench(j.bench), name, **options)
        _matrix(bench, name, j.sim.world, j.sim.control_address, tmp_path, faults, family,
                job)

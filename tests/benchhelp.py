"""Helpers for end-to-end tests: bench files for simulated benches, the benchctl command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHCTL = [sys.executable, "-m", "benchctl.cli"]

WEIGHTS = (ROOT / "src/benchctl/demo_data/demo-weights-F1.toml").read_text(encoding="utf-8")
DUT = (ROOT / "src/benchctl/demo_data/demo-balance.toml").read_text(encoding="utf-8")

BALANCE_SIM: dict[str, Any] = {
    "type": "mettler_sics", "transport": "tcp", "max": 6200.0, "d": 0.1, "unit": "g",
    "settle_time": 2.0, "noise": 0.0,
    "linearity": [[0.0, 0.0], [2000.0, 0.1], [4000.0, 0.3], [6200.0, 0.2]],
    "eccentricity": {"centre": 0.0, "front_left": 0.2, "back_left": 0.0,
                     "back_right": -0.3, "front_right": 0.1},
    "ecc_load": 2000.0,
}
ROOM_SIM: dict[str, Any] = {"type": "vaisala_ptu", "transport": "tcp", "temperature_c": 21.0,
                            "humidity_pct": 50.0, "pressure_hpa": 1010.0}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return repr(v)


def bench_text(resources: dict[str, str], *, control: str | None = None, db: str | None = None,
               balance_sim: dict[str, Any] | None = None, room: bool = True,
               speed: float = 100.0) -> str:
    lines = ["[bench]", 'name = "Test bench"', 'locale = "en"', f"speed = {speed}"]
    if db:
        lines.append(f"database = {toml_value(db)}")
    if control:
        lines += ["", "[simulation]", f"control = {toml_value(control)}"]
    lines += ["", "[instruments.balance]", 'driver = "mettler_sics"',
              f"resource = {toml_value(resources['balance'])}", 'role = "dut"', "timeout = 5.0"]
    if balance_sim is not None:
        lines.append("[instruments.balance.simulator]")
        lines += [f"{k} = {toml_value(v)}" for k, v in balance_sim.items()]
    if room:
        lines += ["", "[instruments.room]", 'driver = "vaisala_ptu"',
                  f"resource = {toml_value(resources['room'])}"]
        if "room_sim" in resources:
            lines.append("[instruments.room.simulator]")
            lines += [f"{k} = {toml_value(v)}" for k, v in ROOM_SIM.items()]
    lines += ["", "[references.weights]", 'file = "weights.toml"', ""]
    return "\n".join(lines)


def benchctl(*args: str, timeout: float = 120, check: bool = False, **kw: Any
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("BENCHCTL_DATABASE_URL", None)
    proc = subprocess.run([*BENCHCTL, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"benchctl {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def aborted_after_a_point(bench_dir: Path, simulation: Any, **start: Any) -> tuple[Any, Any]:
    """A balance run started in this process and aborted after its first point: (the run's
    outcome, the options to resume it with)."""
    from benchctl.config import load_bench
    from benchctl.engine.operators import SimulatedOperator
    from benchctl.engine.runner import RunOptions, start_run
    from benchctl.store import open_database

    bench = load_bench(bench_dir / "bench.toml")
    db = open_database(bench.database)
    contexts: list[Any] = []

    def listener(event: dict[str, Any]) -> None:
        if event.get("event") == "point" and contexts:
            contexts[0].request_abort()

    def options() -> Any:
        return RunOptions(bench=bench, operator=SimulatedOperator(simulation.control_address),
                          db=db, speed=100.0, handle_signals=False, listeners=[listener],
                          on_context=contexts.append)

    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "calibrate",
                        ["loads=5,6200", "rep_n=2"], options(), **start)
    assert outcome.state == "aborted", outcome.message
    contexts.clear()
    listener_off = RunOptions(bench=bench, operator=SimulatedOperator(
        simulation.control_address), db=db, speed=100.0, handle_signals=False)
    return outcome, listener_off

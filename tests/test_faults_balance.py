"""Garbled, truncated, error and silent replies from the balance during a run: a bounded
retry or a pause with a clear message, never a recorded value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from faulthelp import record_row

from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, resume_run, start_run
from benchctl.reports.document import run_document
from benchctl.store import open_database
from benchctl.store import repository as repo

WEIGHT_LINE = re.compile(rb"^S S +-?\d+\.\d g$")
SHORT = ["loads=5,2000,6200", "rep_n=2"]


def _options(bench_dir: Path, simulation: Any, events: list[dict[str, Any]]) -> RunOptions:
    bench = load_bench(bench_dir / "bench.toml")
    return RunOptions(bench=bench, operator=SimulatedOperator(simulation.control_address),
                      db=open_database(bench.database), speed=100.0, handle_signals=False,
                      listeners=[events.append])


def _inject_when(simulation: Any, key: str, fault: dict[str, Any]):
    """A listener that injects ``fault`` as point ``key`` starts, so that its own reading
    meets it. (Not at the ``point`` event of the point before: that comes once the point is
    committed, behind the procedure, which may be measuring a later point by then.)"""
    done = []

    def listener(event: dict[str, Any]) -> None:
        if event.get("event") == "point_started" and event.get("key") == key and not done:
            done.append(True)
            assert simulation.world.apply({"type": "fault", "instrument": "balance",
                                           **fault})["ok"]
    return listener


def _balance_readings(opts: RunOptions, run_id: int) -> list[Any]:
    with opts.db.session() as s:
        return [r for r in repo.readings_of(s, run_id) if r.instrument == "balance"]


def test_transient_faults_are_retried_and_never_recorded(bench_dir: Path,
                                                         simulation: Any) -> None:
    events: list[dict[str, Any]] = []
    opts = _options(bench_dir, simulation, events)
    for key, mode, count in (("zero.start", "garbage", 1),
                             ("eccentricity.centre", "truncated", 1),
                             ("eccentricity.front_left", "busy", 2),
                             ("eccentricity.back_left", "silence", 1),
                             ("eccentricity.back_right", "wrong_unit", 1)):
        opts.listeners.append(_inject_when(simulation, key, {"mode": mode, "count": count}))
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", SHORT, opts)
    retries = [e for e in events if e["event"] == "retry"]
    paused = [e for e in events if e["event"] == "paused"]
    assert outcome.state == "completed", outcome.message
    # garbage, truncated (timeout), 2 × busy (S I), silence: each retried, each named.
    assert len(retries) >= 5, retries
    assert all("socket://127.0.0.1" in e["error"] for e in retries)
    assert any("S I" in e["error"] or "not executable" in e["error"] or "busy" in
               e["error"].lower() for e in retries)
    # A reading in kg where the balance should answer in g is not transient: the run paused
    # with the reason, the simulated operator chose retry, and the point was measured again.
    assert any("kg" in e["reason"] for e in paused), paused
    readings = _balance_readings(opts, outcome.run_id)
    assert readings, "no balance readings recorded"
    for r in readings:
        assert WEIGHT_LINE.match(r.raw), r.raw
        assert r.unit == "g"


def test_persistent_error_pauses_then_aborts_and_resume_completes(bench_dir: Path,
                                                                   simulation: Any) -> None:
    events: list[dict[str, Any]] = []
    opts = _options(bench_dir, simulation, events)
    opts.listeners.append(_inject_when(simulation, "eccentricity.front_left",
                                       {"mode": "error", "count": 1000}))
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", SHORT, opts)
    assert outcome.state == "aborted"
    assert "syntax error" in (outcome.message or "")
    assert "socket://127.0.0.1" in (outcome.message or "")
    paused = [e for e in events if e["event"] == "paused"]
    assert len(paused) == 4  # the first fault and three retries chosen by the operator
    assert all(e["key"] == "eccentricity.front_left" for e in paused)
    doc = run_document(opts.db, outcome.run_id)
    assert doc["state"] == "aborted"
    with opts.db.session() as s:
        taken = set(repo.completed_points(s, outcome.run_id))
    assert "eccentricity.centre" in taken and "eccentricity.front_left" not in taken
    for r in _balance_readings(opts, outcome.run_id):
        assert WEIGHT_LINE.match(r.raw), r.raw

    # The technician fixes the balance; the run continues at the next point.
    simulation.world.apply({"type": "fault", "instrument": "balance", "mode": "clear"})
    events.clear()
    opts2 = _options(bench_dir, simulation, events)
    resumed = resume_run(outcome.run_id, opts2)
    assert resumed.state == "completed", resumed.message
    started = [e["key"] for e in events if e["event"] == "point_started"]
    assert started[0] == "eccentricity.front_left"
    assert "eccentricity.centre" not in started
    doc = run_document(opts2.db, outcome.run_id)
    assert doc["state"] == "completed" and doc["verdict"] in ("pass", "fail")


def test_dead_balance_at_start_is_a_clear_error(bench_dir: Path, simulation: Any) -> None:
    simulation.servers["balance"].stop()
    events: list[dict[str, Any]] = []
    opts = _options(bench_dir, simulation, events)
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", SHORT, opts)
    assert outcome.state == "failed"
    assert "socket://127.0.0.1" in (outcome.message or "")


def test_balance_down_pauses_then_continues_when_it_returns(bench_dir: Path,
                                                            simulation: Any) -> None:
    """The cable is pulled mid-run (the server goes away); the run pauses with a clear
    message, reconnects by itself when the balance is back, and completes."""
    import threading

    from benchctl_simulators.servers import TcpLineServer

    events: list[dict[str, Any]] = []
    bench = load_bench(bench_dir / "bench.toml")
    opts = RunOptions(bench=bench, db=open_database(bench.database), speed=100.0,
                      handle_signals=False, listeners=[events.append],
                      operator=SimulatedOperator(simulation.control_address,
                                                 fault_patience=30.0))
    old = simulation.servers["balance"]
    restarted: list[Any] = []

    pulled: list[bool] = []

    def pull_cable(event: dict[str, Any]) -> None:  # as the point after the centre starts
        if event.get("event") == "point_started" and event.get("key") == \
                "eccentricity.front_left" and not pulled:
            pulled.append(True)
            old.stop()

            def plug_back() -> None:
                restarted.append(TcpLineServer(old.factory, "127.0.0.1", old.port,
                                               name="balance"))
            threading.Timer(1.0, plug_back).start()

    opts.listeners.append(pull_cable)
    try:
        outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", SHORT, opts)
    finally:
        for server in restarted:
            server.stop()
    assert outcome.state == "completed", outcome.message
    paused = [e for e in events if e["event"] == "paused"]
    assert paused and paused[0]["key"] == "eccentricity.front_left"
    assert "socket://127.0.0.1" in paused[0]["reason"]
    withdrawn = [e for e in events if e["event"] == "request_withdrawn"]
    assert withdrawn and "balance answers again" in withdrawn[0]["reason"]
    keys = [e["key"] for e in events if e["event"] == "point"]
    assert keys.count("eccentricity.front_left") == 1


def test_a_late_reply_is_never_recorded_for_a_later_point(bench_dir: Path,
                                                          simulation: Any) -> None:
    """The balance answers one weighing long after the driver gave up on it (a draught kept it
    unstable). The retries that follow must not pair the late answers with later commands:
    the next point, with another load on the pan, records its own weight, not the old one."""
    text = (bench_dir / "bench.toml").read_text(encoding="utf-8")
    (bench_dir / "bench.toml").write_text(
        text.replace("timeout = 5.0", "timeout = 1.0\nstability_margin = 0.3"),
        encoding="utf-8")
    events: list[dict[str, Any]] = []
    opts = _options(bench_dir, simulation, events)
    # S waits max(1.3 s + 0.3 s, 1 s) = 1.6 s; the reply comes 2.5 s late (250 s simulated).
    opts.listeners.append(_inject_when(simulation, "zero.start",
                                       {"mode": "slow", "count": 1, "delay": 250.0}))
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", SHORT, opts)
    assert outcome.state == "completed", outcome.message
    assert [e for e in events if e["event"] == "retry"], "the late reply was not noticed"
    doc = run_document(opts.db, outcome.run_id)
    wrong = [p["key"] for p in doc["points"] if abs(p["indicated"] - p["reference"]) >= 1.0]
    record_row("balance", "balance", "mettler_sics", "late reply (2.5 s) in a nawi_balance run",
               f"retried ({len([e for e in events if e['event'] == 'retry'])}×), "
               "resynchronised before the next command",
               f"BAD VALUES RECORDED at {wrong}" if wrong else "every point its own weight")
    for p in doc["points"]:
        # The simulated balance has known errors of at most 0.3 g: anything larger is a
        # weight that belongs to another load.
        assert abs(p["indicated"] - p["reference"]) < 1.0, p

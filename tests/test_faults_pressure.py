"""Faults on the pressure bench during real pressure_gauge runs: a late controller reply is
never recorded for a later point, an error the controller queued pauses the run, and whatever
ends the run (abort, crash) leaves the controller safe: control off and venting."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from crashhelp import simulated_job
from faulthelp import record_row, slow

from benchctl.config import BenchConfig, load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, resume_run, start_run
from benchctl.reports.document import run_document
from benchctl.store import open_database


def _options(bench: BenchConfig, job: Any, db: Path, events: list[dict[str, Any]],
             **operator: Any) -> RunOptions:
    return RunOptions(bench=bench, db=open_database(f"sqlite:///{db}"), speed=job.speed,
                      handle_signals=False, listeners=[events.append],
                      operator=SimulatedOperator(job.sim.control_address, **operator))


def _bench(job: Any, **controller: Any) -> BenchConfig:
    bench = load_bench(job.bench)
    inst = bench.instruments["controller"]
    return replace(bench, instruments={**bench.instruments, "controller": replace(
        inst, options={**inst.options, **controller})})


def _safe(job: Any) -> None:
    pace = job.sim.world.get("controller")
    assert pace.output is False, "control is still on"
    assert pace.vent_state() in (1, 2), "the controller was not vented"


def _after_first_series_point(world_action: dict[str, Any], world: Any) -> Any:
    done: list[bool] = []

    def listener(event: dict[str, Any]) -> None:
        if event.get("event") == "point" and str(event["key"]).startswith("series1.up.") \
                and not done:
            done.append(True)
            assert world.apply(world_action)["ok"]
    return listener


@slow
def test_a_late_controller_reply_is_never_the_reference_of_a_later_point(
        tmp_path: Path) -> None:
    with simulated_job("pressure", tmp_path / "sim") as job:
        events: list[dict[str, Any]] = []
        bench = _bench(job, timeout=1.0)
        opts = _options(bench, job, tmp_path / "run.db", events)
        # The reply comes 3 s late (the driver waits 1 s), between two setpoints.
        opts.listeners.append(_after_first_series_point(
            {"type": "fault", "instrument": "controller", "mode": "slow", "count": 1,
             "delay": 3.0 * job.speed}, job.sim.world))
        outcome = start_run(job.procedure, str(job.dut), job.mode, job.params, opts)
        assert outcome.state == "completed", outcome.message
        assert [e for e in events if e["event"] == "retry"], "the late reply went unnoticed"
        doc = run_document(opts.db, outcome.run_id)
    for p in doc["points"]:
        if p.get("reference") is not None and p.get("nominal") is not None:
            # The controller holds within 0.1 kPa; another setpoint is ≥ 100 kPa away.
            assert abs(p["reference"] - p["nominal"]) < 5.0, p
    record_row("pressure", "controller", "druck_pace", "late reply (3 s) during a series",
               "retried, late reply discarded", "every reference belongs to its own setpoint")


@slow
def test_an_error_queued_by_the_controller_pauses_then_the_run_goes_on(tmp_path: Path) -> None:
    with simulated_job("pressure", tmp_path / "sim") as job:
        events: list[dict[str, Any]] = []
        opts = _options(_bench(job), job, tmp_path / "run.db", events)
        opts.listeners.append(_after_first_series_point(
            {"type": "fault", "instrument": "controller", "mode": "queue_error", "count": 1,
             "code": -222}, job.sim.world))
        outcome = start_run(job.procedure, str(job.dut), job.mode, job.params, opts)
    assert outcome.state == "completed", outcome.message
    paused = [e for e in events if e["event"] == "paused"]
    assert len(paused) == 1 and "-222" in paused[0]["reason"], paused
    record_row("pressure", "controller", "druck_pace", "error in its queue (-222)",
               "paused (the setting is refused), continued on the operator's retry",
               "nothing recorded for the refused setting")


def test_a_crash_of_the_run_leaves_the_controller_safe_and_resumable(tmp_path: Path) -> None:
    with simulated_job("pressure", tmp_path / "sim") as job:
        events: list[dict[str, Any]] = []
        opts = _options(_bench(job), job, tmp_path / "run.db", events)

        def crash(event: dict[str, Any]) -> None:
            if event.get("event") == "point" and event["key"] == "series1.up.500kPa":
                raise RuntimeError("simulated crash inside the run (a bug)")

        opts.listeners.append(crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            start_run(job.procedure, str(job.dut), job.mode, job.params, opts)
        _safe(job)
        with opts.db.session() as s:
            from benchctl.store import repository as repo

            run = repo.get_run(s, 1)
            assert run is not None and run.state == "running"  # as a crashed process leaves it
        opts.listeners.remove(crash)
        resumed = resume_run(1, replace(opts, operator=SimulatedOperator(
            job.sim.control_address)))
        assert resumed.state == "completed", resumed.message
        _safe(job)
    record_row("pressure", "controller", "druck_pace", "crash of the run (exception)",
               "controller vented and control off; resumed → completed", "nothing lost")


@slow
def test_an_abort_at_pressure_leaves_the_controller_safe(tmp_path: Path) -> None:
    with simulated_job("pressure", tmp_path / "sim") as job:
        events: list[dict[str, Any]] = []
        opts = _options(_bench(job), job, tmp_path / "run.db", events, max_retries=0,
                        fault_patience=0.05)
        opts.listeners.append(_after_first_series_point(
            {"type": "fault", "instrument": "gauge", "mode": "error", "count": 1000},
            job.sim.world))
        outcome = start_run(job.procedure, str(job.dut), job.mode, job.params, opts)
        assert outcome.state == "aborted"
        _safe(job)
    record_row("pressure", "gauge", "modbus_pressure_gauge", "gauge keeps failing, operator "
               "aborts at pressure", "aborted; controller vented and control off",
               "nothing recorded for the failed point")

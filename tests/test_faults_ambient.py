"""Ambient conditions outside a procedure's limits pause the run, with hysteresis and a settle
time, and the run continues by itself once the room has been back long enough."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faulthelp import record_row, slow

from benchctl.config import load_bench
from benchctl.engine import ambient
from benchctl.engine.ambient import AmbientLimits, AmbientLimitsError, GuardState
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, resume_run, start_run
from benchctl.errors import BenchctlError
from benchctl.reports.document import run_document
from benchctl.store import open_database
from benchctl.store import repository as repo

LIMITS = AmbientLimits({"temperature_c": (18.0, 27.0), "humidity_pct": (30.0, 80.0)},
                       settle_s=300.0)
SHORT = ["loads=5,2000,6200", "rep_n=2"]


def room(t: float | None = 21.0, rh: float | None = 50.0) -> dict[str, float | None]:
    return {"temperature_c": t, "humidity_pct": rh, "pressure_hpa": 1010.0}


# -- the decision, pure ---------------------------------------------------------------------

def test_guard_trips_only_outside_the_limits() -> None:
    g = GuardState(LIMITS)
    assert g.update(room(27.0), 0) == "ok"  # limits inclusive
    assert g.update(room(18.0, 30.0), 1) == "ok"
    assert g.update(room(27.1), 2) == "out"
    assert g.tripped


def test_hysteresis_and_settle_time() -> None:
    g = GuardState(LIMITS)
    assert g.update(room(27.4), 0) == "out"
    # Back below the limit but within the hysteresis band (27 − 0.5): still out.
    assert g.update(room(26.8), 10) == "out"
    assert g.update(room(26.4), 20) == "settling"
    assert g.update(room(26.0), 200) == "settling"
    # A blip into the band restarts the settle time.
    assert g.update(room(26.6), 250) == "out"
    assert g.update(room(25.0), 260) == "settling"
    assert g.update(room(25.0), 559) == "settling"
    assert g.update(room(25.0), 560) == "ok"
    assert not g.tripped
    # Running again: the band no longer matters, only the limits.
    assert g.update(room(26.9), 561) == "ok"


def test_a_missing_reading_is_not_inside() -> None:
    g = GuardState(LIMITS)
    assert g.update(room(rh=85.0), 0) == "out"
    assert g.update(room(rh=50.0), 10) == "settling"
    assert g.update(None, 20) == "out"  # the monitor did not answer: start again
    assert g.update(room(rh=None), 30) == "out"
    assert g.update(room(rh=50.0), 40) == "settling"
    assert g.inside_since == 40


def test_violations_name_quantity_value_and_limits() -> None:
    assert LIMITS.violations(room(29.25, 85.0)) == [
        "temperature 29.25 °C (limits 18 … 27 °C)", "humidity 85 %RH (limits 30 … 80 %RH)"]


@pytest.mark.parametrize("limits, hysteresis, words", [
    ({"temperature_c": (27.0, 18.0)}, {}, "low < high"),
    ({"temperature_c": (20.0, 21.0)}, {"temperature_c": 0.5}, "leaves nothing"),
    ({"colour": (1.0, 2.0)}, {}, "unknown quantity"),
    ({"temperature_c": (18.0, float("nan"))}, {}, "low < high"),
])
def test_impossible_limits_are_refused(limits: Any, hysteresis: Any, words: str) -> None:
    with pytest.raises(AmbientLimitsError, match=words):
        AmbientLimits(limits, hysteresis)


def test_parameters_override_the_procedure_limits() -> None:
    declared = {"temperature_c": (18.0, 27.0)}
    built = ambient.build(declared, {"ambient_temperature_c": [20.0, 25.0],
                                     "ambient_settle_s": 60.0})
    assert built is not None
    assert built.limits == {"temperature_c": (20.0, 25.0)} and built.settle_s == 60.0
    assert ambient.build(declared, {"ambient_guard": False}) is None
    with pytest.raises(AmbientLimitsError, match="ambient_temperature_c: expected low,high"):
        ambient.build(declared, {"ambient_temperature_c": [25.0]})
    params = ambient.parameters(declared)
    assert set(params) == {"ambient_temperature_c", "ambient_settle_s", "ambient_guard"}


# -- a balance run in a room that warms up -----------------------------------------------------

def _options(bench_dir: Path, simulation: Any, events: list[dict[str, Any]],
             operator: SimulatedOperator) -> RunOptions:
    bench = load_bench(bench_dir / "bench.toml")
    return RunOptions(bench=bench, operator=operator, db=open_database(bench.database),
                      speed=100.0, handle_signals=False, listeners=[events.append])


def test_warm_room_pauses_the_run_until_it_has_cooled_for_the_settle_time(
        bench_dir: Path, simulation: Any) -> None:
    world = simulation.world
    world.environment.variation = 0.0
    world.environment.noise = 0.0
    events: list[dict[str, Any]] = []
    # The operator waits for the room rather than retry or abort.
    opts = _options(bench_dir, simulation, events,
                    SimulatedOperator(simulation.control_address, fault_patience=60.0))
    stage: list[str] = []

    def weather(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "point" and event["key"] == "eccentricity.centre" and not stage:
            stage.append("warming")  # the air conditioner fails: +600 °C/h
            assert world.apply({"type": "set_ambient", "drift": {"temperature_c": 600.0}})["ok"]
        elif kind == "paused" and event.get("cause") == "ambient" and stage == ["warming"]:
            stage.append("band")  # repaired: the room comes back just under the limit
            world.apply({"type": "set_ambient", "temperature_c": 26.8,
                         "drift": {"temperature_c": 0.0}})
        elif kind == "ambient" and stage[-1:] == ["band"] and event["status"] == "out" \
                and event["ambient"]["temperature_c"] == pytest.approx(26.8, abs=0.05):
            stage.append("cool")  # inside the limits, not yet by the hysteresis: still out
            world.apply({"type": "set_ambient", "temperature_c": 22.0})

    opts.listeners.append(weather)
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify",
                        [*SHORT, "ambient_settle_s=120"], opts)
    assert outcome.state == "completed", outcome.message
    assert stage == ["warming", "band", "cool"]
    paused = [e for e in events if e["event"] == "paused"]
    assert len(paused) == 1 and paused[0]["cause"] == "ambient"
    assert "temperature" in paused[0]["reason"] and "(limits 18 … 27 °C)" in paused[0]["reason"]
    i_pause = events.index(paused[0])
    i_back = next(i for i, e in enumerate(events)
                  if i > i_pause and e["event"] == "state" and e.get("cause") == "ambient")
    between = events[i_pause:i_back]
    assert not [e for e in between if e["event"] in ("point", "point_started")], \
        "a point was measured while the room was out of limits"
    settling = [e for e in between if e["event"] == "ambient" and e["status"] == "settling"]
    assert settling, "the room never counted as back"
    # The settle time is procedure time, measured on the run's clock: ≥ 120 s.
    assert events[i_back]["t"] - settling[0]["t"] >= 120.0 - 15.0  # one poll before the first
    assert [e for e in between if e["event"] == "request_withdrawn"]
    doc = run_document(opts.db, outcome.run_id)
    assert doc["environment"]["end"]["temperature_c"] == pytest.approx(22.0, abs=0.2)
    record_row("balance", "room", "vaisala_ptu", "room warms past the limit (drift)",
               "paused (ambient), continued by itself after the settle time",
               "nothing recorded while out of limits")


@slow
def test_operator_aborts_while_the_room_is_out_then_resumes(bench_dir: Path,
                                                            simulation: Any) -> None:
    world = simulation.world
    world.environment.variation = 0.0
    world.apply({"type": "set_ambient", "humidity_pct": 88.0})
    events: list[dict[str, Any]] = []
    opts = _options(bench_dir, simulation, events,
                    SimulatedOperator(simulation.control_address, fault_patience=0.05,
                                      max_retries=0))
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", SHORT, opts)
    assert outcome.state == "aborted"
    assert "humidity 88" in (outcome.message or "")
    with opts.db.session() as s:
        assert not repo.completed_points(s, outcome.run_id)  # not even ambient.start
    world.apply({"type": "set_ambient", "humidity_pct": 50.0})
    events.clear()
    resumed = resume_run(outcome.run_id, _options(
        bench_dir, simulation, events, SimulatedOperator(simulation.control_address)))
    assert resumed.state == "completed", resumed.message
    assert not [e for e in events if e["event"] == "paused"]
    record_row("balance", "room", "vaisala_ptu", "humidity out of limits, operator aborts",
               "paused (ambient), aborted (operator), resumed → completed",
               "nothing recorded while out of limits")


@slow
def test_guard_off_by_parameter_and_bad_limits_refused_before_the_run(
        bench_dir: Path, simulation: Any) -> None:
    simulation.world.environment.variation = 0.0
    simulation.world.apply({"type": "set_ambient", "temperature_c": 29.0})
    events: list[dict[str, Any]] = []
    opts = _options(bench_dir, simulation, events,
                    SimulatedOperator(simulation.control_address))
    with pytest.raises(BenchctlError, match="ambient_temperature_c"):
        start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify",
                  [*SHORT, "ambient_temperature_c=25"], opts)
    with pytest.raises(AmbientLimitsError, match="low < high"):
        start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify",
                  [*SHORT, "ambient_temperature_c=25,20"], opts)
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify",
                        [*SHORT, "ambient_guard=false"], opts)
    assert outcome.state == "completed"
    assert not [e for e in events if e["event"] == "paused"]
    # A lab's wider limits: 29 °C is inside them.
    events.clear()
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify",
                        [*SHORT, "ambient_temperature_c=15,30"], opts)
    assert outcome.state == "completed"
    assert not [e for e in events if e["event"] == "paused"]

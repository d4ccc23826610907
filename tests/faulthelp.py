"""Fault tests' shared machinery: a probe procedure, fault plans, what the run did about each
fault, and the rows of the reliability table (docs/reliability.md, tools/reliability_table.py).

The probe is a real procedure loaded from a library folder: it reads ONE instrument of a
simulated bench at every point, through the real driver, transport and engine, and refuses
(pauses on) a reading in another unit than the first one, as every bundled procedure does.
A fault plan injects one fault per point, so everything the engine does between
``point_started`` and ``point`` of that key is the answer to that fault.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from benchctl import library
from benchctl.config import BenchConfig
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, RunOutcome, resume_run, start_run
from benchctl.store import open_database
from benchctl.store import repository as repo

RELIABILITY_ENV = "BENCHCTL_RELIABILITY_OUT"

#: The long fault tests (every fault × every instrument, every crash boundary) run with
#: BENCHCTL_SLOW=1 (``make reliability`` sets it), so ``make test`` stays within its budget.
SLOW_MARKS = (pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("BENCHCTL_SLOW") != "1",
    reason="long fault test: run with BENCHCTL_SLOW=1 (make reliability does)"))


def slow(test: Any) -> Any:
    for mark in SLOW_MARKS:
        test = mark(test)
    return test

PROBE = '''"""Fault probe: read one {role} at every point (tests only)."""
from typing import Any

from benchctl.errors import InstrumentError
from benchctl.instruments import Ambient, Reading

ID = "{pid}"
TITLE = "Fault probe ({role})"
VERSION = "1"
DOCUMENTS = "tests/faulthelp.py"
DUT_KIND = None
MODES = ("verify",)
INSTRUMENTS = {{"target": {{"role": "{role}"}}}}
REFERENCES: dict[str, str] = {{}}
PARAMETERS: dict[str, tuple[type, Any, str]] = {{
    "points": (int, 12, "how many points"),
}}
METHOD = {{"balance": ("read_stable", 0.5), "environment_monitor": ("read_ambient",),
          "pressure_indicator": ("read",), "pressure_controller": ("read",),
          "flow_meter": ("read_flow",), "fuel_dispenser": ("totals",)}}


def _readings(result: Any) -> list[Reading]:
    if isinstance(result, Reading):
        return [result]
    if isinstance(result, Ambient):
        return [Reading(v, u, True, result.timestamp, result.raw, result.instrument)
                for v, u in ((result.temperature_c, "degC"), (result.humidity_pct, "percent"),
                             (result.pressure_hpa, "hPa")) if v is not None]
    volume = getattr(result, "volume", None)  # dispenser totals
    if isinstance(volume, Reading):
        return [volume]
    raise TypeError(f"probe cannot record {{result!r}}")


async def run(ctx: Any) -> None:
    units: list[list[str]] = []
    method, *args = METHOD["{role}"]
    for i in range(int(ctx.params.get("points", 12))):
        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            readings = _readings(await ctx.call("target", method, *args))
            got = [r.unit for r in readings]
            if units and got != units[0]:
                raise InstrumentError(ctx.instrument("target").config.resource,
                                      f"answers in {{got}}; the run expects {{units[0]}}")
            return {{"test": "probe", "values": [r.value for r in readings],
                    "units": got}}, readings
        data = await ctx.point(f"probe.{{i:02d}}", measure)
        if not units:
            units.append(list(data["units"]))
    ctx.set_results([], "pass")
'''


def probe_library(folder: Path, role: str) -> tuple[Path, str]:
    """A library folder holding the probe procedure for ``role``; (folder, procedure id)."""
    pid = f"fault_probe_{role}"
    (folder / "procedures").mkdir(parents=True, exist_ok=True)
    (folder / "procedures" / f"{pid}.py").write_text(PROBE.format(role=role, pid=pid),
                                                    encoding="utf-8")
    return folder, pid


def single_instrument_bench(bench: BenchConfig, name: str, library_root: Path,
                            database: str) -> BenchConfig:
    """The bench with only instrument ``name`` (no asset, no references): the probe's bench."""
    inst = replace(bench.instruments[name], asset=None, role=None)
    return replace(bench, instruments={name: inst}, references={}, library=(library_root,),
                   database=database)


@dataclass
class Fault:
    """One fault of a plan: injected once point ``at - 1`` is committed."""

    mode: str
    count: int = 1
    delay: float | None = None
    persistent: bool = False
    """The operator gives up at once (abort); the test then clears it and resumes."""
    code: int | None = None
    note: str = ""
    """Shown in the table instead of the simulated delay (e.g. "3 s late")."""

    @property
    def label(self) -> str:
        extra = f", {self.note}" if self.note else (
            f", delay {self.delay:g} s simulated" if self.delay is not None else "")
        extra += f", code {self.code}" if self.code is not None else ""
        return f"{self.mode} × {self.count}{extra}"


@dataclass
class Observed:
    """What the engine did about one fault, from the run's events and the record."""

    fault: Fault
    key: str
    retries: int = 0
    pauses: int = 0
    continued_by_itself: bool = False
    operator_retried: bool = False
    aborted: bool = False
    resumed: bool = False
    recorded: bool = False
    value_ok: bool = True
    errors: list[str] = field(default_factory=list)

    def behaviour(self) -> str:
        parts = []
        if self.retries:
            parts.append(f"retried ({self.retries}×)")
        if self.pauses:
            parts.append("paused")
        if self.continued_by_itself:
            parts.append("continued by itself when it answered")
        elif self.operator_retried:
            parts.append("continued on the operator's retry")
        if self.aborted:
            parts.append("aborted (operator)")
        if self.resumed:
            parts.append("resumed → completed")
        if not parts:
            parts.append("no effect on the run")
        return ", ".join(parts)

    def record(self) -> str:
        if not self.recorded:
            return "nothing recorded"
        return "good value recorded" if self.value_ok else "BAD VALUE RECORDED"


def good_value(baseline: list[tuple[float, str]], got: list[tuple[float, str]],
               tolerance: float) -> bool:
    """A recorded reading agrees with the fault-free one: same units, values within ``tolerance``
    (relative to the value, absolute near zero)."""
    if [u for _, u in got] != [u for _, u in baseline]:
        return False
    for (v0, _), (v, _) in zip(baseline, got, strict=True):
        if not math.isfinite(v) or abs(v - v0) > tolerance * max(1.0, abs(v0)):
            return False
    return True


@dataclass
class ProbeRun:
    outcome: RunOutcome
    observed: list[Observed]
    events: list[dict[str, Any]]
    db: Any = None

    def values(self, instrument: str) -> dict[str, list[tuple[float, str]]]:
        """point key -> [(value, unit)] of ``instrument``'s recorded readings."""
        out: dict[str, list[tuple[float, str]]] = {}
        with self.db.session() as s:
            for r in repo.readings_of(s, self.outcome.run_id):
                if r.instrument == instrument:
                    out.setdefault(r.point_key, []).append((float(r.value), str(r.unit)))
        return out


def run_probe(*, bench: BenchConfig, instrument: str, world: Any, control: str, tmp: Path,
              dut_file: Path, faults: list[Fault], speed: float = 100.0,
              tolerance: float = 0.02, patience: float = 1.5,
              on_point: Callable[[str], None] | None = None) -> ProbeRun:
    """Run the probe against ``instrument`` of a running simulation, one fault per point from
    point 2 on, injected as that point starts; a persistent fault is cleared after the abort
    and the run resumed. ``on_point(key)`` is called once point ``key`` is taken, before the
    next one starts."""
    role = _role_of(bench, instrument)
    root, pid = probe_library(tmp / f"lib-{instrument}", role)
    db_url = f"sqlite:///{tmp / f'probe-{instrument}.db'}"
    probe_bench = single_instrument_bench(bench, instrument, root, db_url)
    db = open_database(db_url)
    events: list[dict[str, Any]] = []
    plan = {f"probe.{i + 1:02d}": f for i, f in enumerate(faults)}
    operator = SimulatedOperator(control, fault_patience=patience)
    started: set[int] = set()

    def inject(event: dict[str, Any]) -> None:
        # When a point starts, before its first exchange: the point before it is taken (it
        # may not be shown yet: a point is shown once committed, while the run goes on).
        if event.get("event") != "point_started":
            return
        number = int(str(event["key"]).rsplit(".", 1)[1])
        if number in started:  # once: a resumed run starts its first point again
            return
        started.add(number)
        if on_point is not None and number > 0:
            on_point(f"probe.{number - 1:02d}")
        fault = plan.get(f"probe.{number:02d}")
        if fault is None:
            return
        if fault.persistent:
            operator.max_retries = 0
            operator.fault_patience = 0.05
        action: dict[str, Any] = {"type": "fault", "instrument": instrument,
                                  "mode": fault.mode, "count": fault.count}
        if fault.delay is not None:
            action["delay"] = fault.delay
        if fault.code is not None:
            action["code"] = fault.code
        reply = world.apply(action)
        assert reply.get("ok"), reply

    opts = RunOptions(bench=probe_bench, operator=operator, db=db, speed=speed,
                      handle_signals=False, listeners=[events.append, inject])
    try:
        outcome = start_run(pid, str(dut_file), "verify", [f"points={len(faults) + 2}"], opts)
        while outcome.state == "aborted":
            world.apply({"type": "fault", "instrument": instrument, "mode": "clear"})
            events.append({"event": "test_resume", "key": _last_started(events)})
            operator = SimulatedOperator(control, fault_patience=patience)
            outcome = resume_run(outcome.run_id, replace(opts, operator=operator))
    finally:
        library.configure([])
    observed = [_observe(events, key, fault) for key, fault in plan.items()]
    if on_point is None:  # the values stay as they were: compare with the first
        _check_record(db, outcome.run_id, instrument, observed, tolerance)
    return ProbeRun(outcome, observed, events, db)


def _role_of(bench: BenchConfig, instrument: str) -> str:
    from benchctl.engine.handles import driver_module, driver_role

    cfg = bench.instruments[instrument]
    role = driver_role(driver_module(cfg), cfg)
    assert role is not None
    return role


def _last_started(events: list[dict[str, Any]]) -> str:
    started = [e["key"] for e in events if e.get("event") == "point_started"]
    return started[-1] if started else ""


def _observe(events: list[dict[str, Any]], key: str, fault: Fault) -> Observed:
    obs = Observed(fault, key)
    for e in events:
        if e.get("key") != key:
            continue
        kind = e.get("event")
        if kind == "retry":
            obs.retries += 1
            obs.errors.append(str(e.get("error")))
        elif kind == "paused":
            obs.pauses += 1
            obs.errors.append(str(e.get("reason")))
        elif kind == "request_withdrawn":
            obs.continued_by_itself = True
        elif kind == "state" and e.get("state") == "running":
            obs.operator_retried = obs.operator_retried or not obs.continued_by_itself
        elif kind == "test_resume":
            obs.aborted = obs.resumed = True
    return obs


def _check_record(db: Any, run_id: int, instrument: str, observed: list[Observed],
                  tolerance: float) -> None:
    with db.session() as s:
        readings = [r for r in repo.readings_of(s, run_id) if r.instrument == instrument]
        points = repo.completed_points(s, run_id)
    by_key: dict[str, list[tuple[float, str]]] = {}
    for r in readings:
        by_key.setdefault(r.point_key, []).append((float(r.value), str(r.unit)))
    baseline = by_key.get("probe.00", [])
    assert baseline, "the probe recorded nothing before the first fault"
    for obs in observed:
        got = by_key.get(obs.key)
        obs.recorded = obs.key in points and bool(got)
        obs.value_ok = got is None or good_value(baseline, got, tolerance)


# -- the reliability table's rows -------------------------------------------------------------

def record_rows(bench: str, instrument: str, driver: str, observed: Iterable[Observed]) -> None:
    """Append rows for docs/reliability.md when tools/reliability_table.py runs the tests."""
    out = os.environ.get(RELIABILITY_ENV)
    if not out:
        return
    with _LOCK, open(out, "a", encoding="utf-8") as fh:
        for obs in observed:
            fh.write(json.dumps({
                "bench": bench, "instrument": instrument, "driver": driver,
                "fault": obs.fault.label, "behaviour": obs.behaviour(), "record": obs.record(),
                "error": obs.errors[0] if obs.errors else "",
            }, ensure_ascii=False) + "\n")


def record_row(bench: str, instrument: str, driver: str, fault: str, behaviour: str,
               record: str, error: str = "") -> None:
    """One hand-observed row (a scenario that is not a single injected fault)."""
    out = os.environ.get(RELIABILITY_ENV)
    if not out:
        return
    with _LOCK, open(out, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"bench": bench, "instrument": instrument, "driver": driver,
                             "fault": fault, "behaviour": behaviour, "record": record,
                             "error": error}, ensure_ascii=False) + "\n")


_LOCK = threading.Lock()

Check = Callable[[Observed], None]

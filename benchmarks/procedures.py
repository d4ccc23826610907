"""Figure 4: each full procedure at ``--speed`` against its simulated real-time duration.

Each bundled procedure runs end to end as ``benchctl demo`` runs it (its demo bench, the
simulators in process, the simulated technician, SQLite), with the procedure's own default
parameters (full holds and series, not the demo's shortened ones) and the simulators' random
noise off (see :func:`without_noise`), twice: at a low speed N1
and at the benchmark speed N2, after one warm-up run at N2 (imports, first connections).

A run's wall time is W(N) = S/N + C: S seconds of simulated waiting (holds, settling,
deliveries), which ``--speed`` shrinks, and C seconds of everything that does not shrink
(protocol round trips, commits, computing). Two speeds give both, so the simulated real-time
duration S + C (what the run would take at ``--speed 1``) is measured, not assumed, without
waiting for it; the figure is (S + C) / W(N2). The results of the runs (every point's
nominal, reference, indication, error, U, k, MPE and verdict, and the run's verdict) must be
identical at both speeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .common import Context, Figure

NAME = "procedures"
NUMBER = 4
TITLE = "Simulated procedures: wall time at --speed against the simulated real-time duration"

TARGET = 100.0

#: demo job, mode, parameters (full), parameters (--quick), N1, N2, N1 and N2 with --quick
JOBS: tuple[tuple[str, str, list[str], list[str], float, float, float, float], ...] = (
    ("balance", "calibrate", [], ["loads=5,6200", "rep_n=2", "down=false"], 50, 2000, 1000,
     4000),
    ("pressure", "calibrate", [], ["points=3", "hold_s=2", "hold_max_s=4", "poll_s=0.5"],
     100, 2000, 1000, 4000),
    ("dispenser", "verify", ["method=master_meter"],
     ["method=master_meter", "deliveries=1", "rates=qmax", "mmq_test=false"], 50, 1000, 1000,
     4000),
)

RESULT_FIELDS = ("key", "nominal", "reference", "indicated", "error", "U", "k", "mpe",
                 "verdict")


def _results(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = [tuple(p.get(f) for f in RESULT_FIELDS) for p in doc["points"]]
    return [*rows, ("verdict", doc["verdict"])]


def _differences(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> list[str]:
    if len(a) != len(b):
        return [f"{len(a)} result rows against {len(b)}"]
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y:
            changed = [f"{f} {u!r}→{v!r}" for f, u, v in zip(RESULT_FIELDS, x, y, strict=False)
                       if u != v]
            out.append(f"{x[0]}: {', '.join(changed)}")
    return out


def without_noise(bench: Any) -> Any:
    """The bench with its simulators' random noise off (the room's slow variation too).

    The simulators draw their noise afresh at every reading, so the number of readings a
    procedure takes, which depends on timing, changes the values: two runs differ at any
    speed. Without noise, a difference can only come from the speed itself, which is what
    the figure is about. Random effects drawn once per loading or per delivery stay.
    """
    from dataclasses import replace

    instruments = {}
    for name, inst in bench.instruments.items():
        sim = dict(inst.simulator or {})
        if "noise" in sim:
            sim["noise"] = 0.0
        if sim.get("type") == "vaisala_ptu":
            sim["noise"] = sim["variation"] = 0.0
        instruments[name] = replace(inst, simulator=sim or inst.simulator)
    return replace(bench, instruments=instruments)


class JobRunner:
    """One demo job (its bench, DUT and reference files, a database) run at any speed."""

    def __init__(self, ctx: Context, name: str, db: Any = None, *, quiet: bool = False
                 ) -> None:
        from benchctl.config import load_bench
        from benchctl.demo import copy_demo_files, demo_jobs
        from benchctl.store import open_database

        self.job = next(j for j in demo_jobs() if j["name"] == name)
        self.folder = Path(ctx.workdir) / f"procedure-{name}"
        copy_demo_files(self.folder, [self.job])
        self.bench = load_bench(self.folder / self.job["bench"])
        if quiet:
            self.bench = without_noise(self.bench)
        self.own_db = db is None
        self.db = open_database(f"sqlite:///{self.folder / 'runs.db'}") if db is None else db

    def run(self, mode: str, params: list[str], speed: float
            ) -> tuple[float, float, dict[str, Any]]:
        """(wall seconds, simulated seconds the world saw, the run document)."""
        from benchctl.commands import simulated_bench, start_bench_simulation
        from benchctl.engine.operators import SimulatedOperator
        from benchctl.engine.runner import RunOptions, start_run
        from benchctl.reports.document import run_document

        sim = start_bench_simulation(self.bench, speed)
        try:
            opts = RunOptions(bench=simulated_bench(self.bench, sim),
                              operator=SimulatedOperator(sim.control_address), db=self.db,
                              speed=speed, listeners=[], handle_signals=False)
            t0, s0 = time.perf_counter(), sim.world.clock.now()
            outcome = start_run(self.job["procedure"], str(self.folder / self.job["dut"]),
                                mode, params, opts)
            wall, simulated = time.perf_counter() - t0, sim.world.clock.now() - s0
        finally:
            sim.stop()
        if outcome.state != "completed":
            raise RuntimeError(f"{self.job['procedure']} at speed {speed:g} ended "
                               f"{outcome.state}: {outcome.message}")
        return wall, simulated, run_document(self.db, outcome.run_id)

    def close(self) -> None:
        if self.own_db:
            self.db.dispose()


def run(ctx: Context) -> list[Figure]:
    figures: list[Figure] = []
    for name, mode, full, quick, n1, n2, q1, q2 in JOBS:
        params = quick if ctx.quick else full
        low, high = (q1, q2) if ctx.quick else (n1, n2)
        job = JobRunner(ctx, name, quiet=True)
        try:
            procedure = job.job["procedure"]
            warm: dict[str, Any] | None = None
            if not ctx.quick:  # --quick: the first run pays for the imports; no matter
                ctx.log(f"   {procedure}: warm-up at {high:g}×")
                warm = job.run(mode, params, high)[2]
            ctx.log(f"   {procedure}: {low:g}×")
            w1, s1, doc1 = job.run(mode, params, low)
            ctx.log(f"   {procedure}: {high:g}× ({w1:.2f} s at {low:g}×)")
            w2, s2, doc2 = job.run(mode, params, high)
        finally:
            job.close()
        simulated = (w1 - w2) / (1 / low - 1 / high)
        fixed = w2 - simulated / high
        realtime = simulated + max(fixed, 0.0)
        differences = _differences(_results(doc1), _results(doc2))
        if warm is not None:
            differences += [f"warm-up run: {d}"
                            for d in _differences(_results(doc1), _results(warm))]
        label = f"{procedure} ({mode}{', ' + ' '.join(params) if params else ''})"
        if simulated <= 0:
            figures.append(Figure(
                NUMBER, f"procedure {label}", w2, "s", None, "", target=f"≥ {TARGET:g}×",
                skipped=(f"the waits could not be told from the noise: {w1:.2f} s at "
                         f"{low:g}×, {w2:.2f} s at {high:g}×")))
            continue
        speedup = realtime / w2
        identical = not differences
        figures.append(Figure(
            NUMBER, f"procedure {label} at --speed {high:g}", w2, "s", realtime,
            "simulated real-time duration", speedup, "real time ÷ at speed",
            f"≥ {TARGET:g}× faster, identical results", speedup >= TARGET and identical,
            note=(f"{w1:.2f} s at {low:g}×, {w2:.2f} s at {high:g}× → "
                  f"{simulated:.0f} s of simulated waiting + {fixed:.2f} s that no speed "
                  f"shortens = {realtime:.0f} s in real time; {len(doc2['points'])} result "
                  f"rows, simulator noise off; results at {low:g}× and {high:g}× "
                  + ("identical" if identical else
                     f"DIFFER ({len(differences)}): " + "; ".join(differences[:4]))),
            details={"wall_low": w1, "wall_high": w2, "simulated_low": s1,
                     "simulated_high": s2, "differences": differences}))
    return figures

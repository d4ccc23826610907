"""Figure 3: readings persisted per second, each durable within 100 ms.

benchctl's side is the engine's own write path: a run's ``RunContext.point`` hands each point
with its readings (reference and DUT, with their raw replies) to the ``RunRecorder``, whose
point writer (a thread per database) commits the points waiting, as many as it commits in about
25 ms at the database's recent pace, with their audit events and row digests; as the runner
does, each run holds the heap frozen for the garbage collector (``engine/heap.py``). A reading
is durable when the commit that carries it returns; its latency is measured from its hand-over
to that moment, and the run ends, as the runner ends one, only once every point is committed.
Two cases: one run (what a bench does: the command line and the TUI run one run per process),
and several runs recording at the same time in one process, each in a thread with its own event
loop as the runner starts one, sharing the writer. The same points are recorded in both cases,
spread over the runs, and the benchmark counts the readings stored afterwards. SQLite runs as
benchctl configures it (WAL, ``synchronous=FULL``); PostgreSQL in a scratch database on the
configured server.

The baseline is QCoDeS's DataSaver writing the same points (time, both values, both raw
replies) to SQLite, in its own environment (:mod:`benchmarks.qcodes_baseline`), with its
``write_period`` set so that its readings too are on disk within the figure's 100 ms: it
keeps results in memory until then, as benchctl's writer keeps points until their commit.

Every case and the baseline run once a round, for :data:`ROUNDS` rounds interleaved (the order
reversed every other round); each figure is the median round, and a case is durable only if
every reading of every round was.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    ROOT,
    Context,
    Figure,
    percentile,
    postgres_problem,
    scratch_postgres,
)

NAME = "store"
NUMBER = 3
TITLE = "Store: readings persisted per second, each durable within 100 ms"

DURABLE_S = 0.100
#: QCoDeS keeps results in memory up to its write period, then flushes them; half the
#: durability budget leaves the other half for the flush itself.
QCODES_WRITE_PERIOD_S = 0.05
#: Runs recording at the same time in the second case (several benches served by one
#: process); they share the point writer, whose commits then carry points of several runs.
RUNS_AT_ONCE = 8
#: Interleaved rounds of every case and of the baseline; each figure is the median round (on
#: a small shared machine one round of a second varies by ±25 %).
ROUNDS = 3


def _setup_runs(db: Any, runs: int) -> list[int]:
    """Runs to record into: procedure, DUT and runs, as the runner makes them."""
    from benchctl.store import repository as repo

    with db.session() as s:
        pv = repo.register_procedure(s, "store_benchmark", "1.0", "Store benchmark",
                                     "none", "# the store benchmark's points\n")
        repo.upsert_asset(s, "BAL-BENCH", kind="balance", maker="Mettler Toledo",
                          model="XS205", serial="B000000001", unit="g")
        ids = []
        for _ in range(runs):
            run = repo.create_run(s, procedure=pv, dut_asset_id="BAL-BENCH", mode="calibrate",
                                  params={}, decision_rule="simple", bench="benchmark",
                                  operator_kind="sim", references=[])
            ids.append(int(run.id))
        return ids


class _Quiet:
    """An operator channel nobody watches (the progress events go nowhere)."""

    kind = "benchmark"

    async def ask(self, request: Any) -> Any:  # pragma: no cover - no point asks
        raise AssertionError(f"the store benchmark asks nothing: {request}")

    async def event(self, event: dict[str, Any]) -> None:
        pass

    def bind(self, ctx: Any) -> None:
        pass


def _timed_recorder(db: Any, latencies: list[float], refused: list[str]) -> Any:
    """The engine's recorder, noting for each point, as the writer finishes it, how long
    after its hand-over it was committed (its durability latency). Only the figure is kept,
    not the point: a benchmark that kept every point alive would slow the garbage
    collector's passes, which the engine alone does not."""
    from benchctl.engine.recorder import RunRecorder

    class TimedRecorder(RunRecorder):
        def _finished(self, ticket: Any) -> None:
            if ticket.error is not None:
                refused.append(f"{ticket.item.key}: {ticket.error}")
            latencies.append(ticket.durable - ticket.submitted)
            super()._finished(ticket)

    return TimedRecorder(db)


async def _drive_run(db: Any, run_id: int, indices: list[int], latencies: list[float]) -> None:
    """One run as the engine drives it: ``RunContext.point`` per point, which hands the
    reading to the recorder and goes on; the run ends as the runner ends one, once every
    point is committed (``RunContext.durable``)."""
    from types import SimpleNamespace

    from benchctl.engine.clock import RunClock
    from benchctl.engine.context import RunContext, RunInfo
    from benchctl.engine.heap import frozen_while_running
    from benchctl.engine.states import RunState, StateMachine

    # What the context needs of the bench's instruments here: their names, for the roles.
    instruments: Any = {"reference": SimpleNamespace(name="reference"),
                        "dut": SimpleNamespace(name="balance")}
    refused: list[str] = []
    recorder = _timed_recorder(db, latencies, refused)
    ctx = RunContext(RunInfo(run_id, "store_benchmark", "calibrate", {}, "en", None),
                     clock=RunClock(), operator=_Quiet(),  # type: ignore[arg-type]
                     instruments=instruments, store=recorder, done={},
                     state=StateMachine(RunState.RUNNING))
    # As the runner does: the collector's full passes skip what the process held before.
    with frozen_while_running():
        await _record(ctx, indices)
    if refused or len(latencies) < len(indices):
        raise AssertionError(f"points not committed: {refused or len(indices) - len(latencies)}")


async def _record(ctx: Any, indices: list[int]) -> None:
    try:
        for i in indices:
            key, data, readings = _point(i)

            async def measure(data: dict[str, Any] = data, readings: list[Any] = readings
                              ) -> tuple[dict[str, Any], list[Any]]:
                return data, readings

            await ctx.point(key, measure)
        await ctx.durable()
    finally:
        ctx.close()


def benchctl_store(url: str, points: int, runs: int = 1) -> dict[str, Any]:
    """Record ``points`` points of two readings each through the engine's path, spread over
    ``runs`` runs recording at the same time in this process (each in a thread with its own
    event loop, as the runner starts a run); each point's latency runs from its hand-over to
    its commit, and the time from the first hand-over to the last commit."""
    import asyncio
    import threading

    from benchctl.engine.recorder import point_writer
    from benchctl.store import open_database

    db = open_database(url)
    try:
        run_ids = _setup_runs(db, runs)
        writer = point_writer(db)
        commits0, points0 = writer.commits, writer.points
        latencies: list[float] = []
        errors: list[BaseException] = []
        start = threading.Barrier(runs + 1)

        def run_thread(n: int) -> None:
            start.wait()
            try:
                mine: list[float] = []
                asyncio.run(_drive_run(db, run_ids[n], list(range(n, points, runs)), mine))
                latencies.extend(mine)
            except BaseException as exc:  # reported below: a benchmark must not half-run
                errors.append(exc)

        threads = [threading.Thread(target=run_thread, args=(n,)) for n in range(runs)]
        for t in threads:
            t.start()
        cpu0, started = time.process_time(), time.perf_counter()
        start.wait()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        if errors:
            raise errors[0]
        commits, grouped = writer.commits - commits0, writer.points - points0
        with db.session() as s:
            from benchctl.store import repository as repo

            stored = sum(len(repo.readings_of(s, rid)) for rid in run_ids)
    finally:
        db.dispose()
    if stored != 2 * points:
        raise AssertionError(f"{stored} readings stored, not {2 * points}")
    return {"readings": 2 * points, "runs": runs, "seconds": seconds,
            "readings_per_s": 2 * points / seconds,
            "cpu_ms_per_point": cpu / points * 1000,
            "points_per_commit": grouped / commits if commits else None,
            "latency_max_s": max(latencies), "latency_p99_s": percentile(latencies, 99),
            "latency_median_s": percentile(latencies, 50)}


def _point(i: int) -> tuple[str, dict[str, Any], list[Any]]:
    """Point ``i``: a reference and a DUT reading with their raw replies, and its data."""
    from benchctl.instruments import Reading

    ref, dut = 100.0 + i * 1e-4, 100.01 + i * 1e-4
    now = dt.datetime.now(dt.UTC)
    readings = [Reading(ref, "g", True, now, f"S S {ref:10.4f} g".encode(), "reference"),
                Reading(dut, "g", True, now, f"S S {dut:10.2f} g".encode(), "balance")]
    data = {"test": "weighing", "nominal": 100.0, "reference": ref, "indicated": dut,
            "skew_s": 0.0004}
    return f"series.{i}", data, readings


def qcodes_store(ctx: Context, points: int, write_period: float = QCODES_WRITE_PERIOD_S,
                 tag: str = "") -> dict[str, Any] | str:
    """The baseline's figures, or why there are none."""
    python = ctx.qcodes_python
    if not Path(python).exists():
        return (f"QCoDeS is not installed: {python} does not exist (`make bench` installs "
                "QCoDeS into .venv/bench-qcodes)")
    path = ctx.workdir / f"qcodes-{write_period:g}{tag}.db"
    env = {**os.environ, "QCODES_USER_PATH": str(ctx.workdir / "qcodes-home")}
    proc = subprocess.run(
        [python, str(ROOT / "benchmarks" / "qcodes_baseline.py"), str(path), str(points),
         str(write_period)], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"the QCoDeS baseline did not run under {python}: {tail}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _median_round(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose rate is the median (the lower middle one of an even count)."""
    ranked = sorted(results, key=lambda r: float(r["readings_per_s"]))
    return ranked[(len(ranked) - 1) // 2]


def _rates(results: list[dict[str, Any]]) -> str:
    return ", ".join(f"{float(r['readings_per_s']):,.0f}".replace(",", " ") for r in results)


def run(ctx: Context) -> list[Figure]:
    from benchctl.engine.recorder import COMMIT_BUDGET_S

    points = ctx.size(4000, 40)
    rounds = ctx.size(ROUNDS, 1)
    cases = [(backend, runs) for backend in ("SQLite", "PostgreSQL")
             for runs in (1, RUNS_AT_ONCE)]
    pg_problem = postgres_problem(ctx.pg_url)
    baselines: list[dict[str, Any]] = []
    baseline_problem: str | None = None
    got: dict[tuple[str, int], list[dict[str, Any]]] = {case: [] for case in cases}
    # Rounds interleaved (every contender once a round, the order reversed every other round),
    # so that a change in the machine's pace hits all of them alike; each figure is the
    # median round.
    for n in range(rounds):
        measured = qcodes_store(ctx, points, tag=f"-{n}")
        if isinstance(measured, str):
            baseline_problem = measured
        else:
            baselines.append(measured)
        for backend, runs in (cases if n % 2 == 0 else list(reversed(cases))):
            if backend == "SQLite":
                got[(backend, runs)].append(benchctl_store(
                    f"sqlite:///{ctx.workdir / f'store-{runs}-{n}.db'}", points, runs))
            elif pg_problem is None:
                with scratch_postgres(ctx.pg_url) as pg_url:
                    got[(backend, runs)].append(benchctl_store(pg_url, points, runs))
    if baseline_problem is not None:
        ctx.log(f"   baseline: {baseline_problem}")
        base_rate = None
        baseline: dict[str, Any] | str = baseline_problem
        base_label = "QCoDeS DataSaver, SQLite: not measured"
        base_note = f"QCoDeS baseline not measured: {baseline_problem}"
    else:
        baseline = _median_round(baselines)
        base_rate = float(baseline["readings_per_s"])
        base_label = "QCoDeS DataSaver, SQLite"
        base_note = (f"QCoDeS {baseline['qcodes']} DataSaver, write_period "
                     f"{baseline['write_period_s'] * 1000:.0f} ms, journal "
                     f"{baseline['journal_mode']}, synchronous={baseline['synchronous']}: "
                     f"each result durable at the flush after its add_result, within "
                     f"{baseline.get('latency_median_s', float('nan')) * 1000:.0f} ms (median), "
                     f"{baseline['latency_p99_s'] * 1000:.0f} ms (p99), "
                     f"{max(b['latency_max_s'] for b in baselines) * 1000:.0f} ms (max); "
                     f"readings/s in the {len(baselines)} rounds: {_rates(baselines)}")
    figures: list[Figure] = []
    for backend, runs in cases:
        how = ("one run: RunContext.point -> RunRecorder -> the point writer, which "
               "commits the points waiting (as many as it commits in "
               f"{COMMIT_BUDGET_S * 1000:.0f} ms at its recent pace)" if runs == 1
               else f"{runs} runs recording at once in one process (a thread and event "
               "loop each), the same path, sharing the writer")
        label = f"store, {backend}" + ("" if runs == 1 else f", {runs} runs at once")
        results = got[(backend, runs)]
        if not results:
            figures.append(Figure(NUMBER, label, None, "readings/s", base_rate, base_label,
                                  target=_target(), skipped=pg_problem or "not measured"))
            continue
        median_round = _median_round(results)
        rate = float(median_round["readings_per_s"])
        worst = max(r["latency_max_s"] for r in results)  # every reading of every round
        durable = worst <= DURABLE_S
        ratio = rate / base_rate if base_rate else None
        met = None if ratio is None else (ratio > 1.0 and durable)
        figures.append(Figure(
            NUMBER, label, rate, "readings/s", base_rate, base_label, ratio,
            "benchctl ÷ QCoDeS", _target(), met,
            unjudged="" if base_rate else "no QCoDeS baseline (see the notes)",
            note=(f"{points} points of 2 readings, {how}; median of {len(results)} "
                  f"interleaved rounds ({_rates(results)} readings/s); in the median round "
                  f"{median_round['points_per_commit']:.1f} points per commit, "
                  f"{median_round['cpu_ms_per_point']:.2f} ms of CPU per point, each durable "
                  f"(committed) within {median_round['latency_median_s'] * 1000:.1f} ms "
                  f"(median), {median_round['latency_p99_s'] * 1000:.1f} ms (p99); "
                  f"{worst * 1000:.1f} ms at most in any round. {base_note}."),
            details={"benchctl": results, "qcodes": baselines or baseline}))
    return figures


def _target() -> str:
    return f"ahead of QCoDeS (ratio > 1), every reading durable ≤ {DURABLE_S * 1000:.0f} ms"


if __name__ == "__main__":  # pragma: no cover - handy for profiling one backend
    # python -m benchmarks.store URL POINTS [RUNS]
    print(benchctl_store(sys.argv[1], int(sys.argv[2]),
                         int(sys.argv[3]) if len(sys.argv) > 3 else 1))

"""Figure 3: readings persisted per second, each durable within 100 ms.

benchctl's side is the engine's own write path: ``RunRecorder.record_point`` commits each
point with its readings (reference and DUT, with their raw replies) in one transaction, with
the audit event that vouches for them, and returns only when the commit did; so a reading is
durable when its call returns, and that call's duration is its latency. SQLite runs as
benchctl configures it (WAL, ``synchronous=FULL``); PostgreSQL in a scratch database on the
configured server.

The baseline is QCoDeS's DataSaver writing the same points (time, both values, both raw
replies) to SQLite, in its own environment (:mod:`benchmarks.qcodes_baseline`), with its
``write_period`` set so that its readings too are on disk within the figure's 100 ms.
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
#: The group commit variant: points taken within this time share one transaction.
GROUP_S = 0.05


def _setup_run(db: Any) -> int:
    """A run to record into: procedure, DUT and run, as the runner makes them."""
    from benchctl.store import repository as repo

    with db.session() as s:
        pv = repo.register_procedure(s, "store_benchmark", "1.0", "Store benchmark",
                                     "none", "# the store benchmark's points\n")
        repo.upsert_asset(s, "BAL-BENCH", kind="balance", maker="Mettler Toledo",
                          model="XS205", serial="B000000001", unit="g")
        run = repo.create_run(s, procedure=pv, dut_asset_id="BAL-BENCH", mode="calibrate",
                              params={}, decision_rule="simple", bench="benchmark",
                              operator_kind="sim", references=[])
        return int(run.id)


def benchctl_store(url: str, points: int, group_s: float | None = None) -> dict[str, Any]:
    """Record ``points`` points of two readings each; with ``group_s``, several points share
    one transaction (the repository's functions in one session, committed once ``group_s``
    has passed), which is what a group commit in the recorder would do."""
    from benchctl.engine.recorder import RunRecorder
    from benchctl.store import open_database
    from benchctl.store import repository as repo

    db = open_database(url)
    try:
        run_id = _setup_run(db)
        recorder = RunRecorder(db)
        roles = {"reference": "reference", "balance": "dut"}
        latencies: list[float] = []
        cpu0, started = time.process_time(), time.perf_counter()
        i = 0
        while i < points:
            if group_s is None:
                key, data, readings = _point(i)
                t0 = time.perf_counter()
                recorder.record_point(run_id, key, data, readings, roles)
                latencies.append(time.perf_counter() - t0)
                i += 1
                continue
            taken: list[float] = []
            with db.session() as s:
                first = time.perf_counter()
                while i < points and (not taken or time.perf_counter() - first < group_s):
                    key, data, readings = _point(i)
                    taken.append(time.perf_counter())
                    repo.record_point(s, run_id, key, data, readings, roles)
                    i += 1
            committed = time.perf_counter()
            latencies += [committed - t for t in taken]
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    finally:
        db.dispose()
    return {"readings": 2 * points, "seconds": seconds, "readings_per_s": 2 * points / seconds,
            "cpu_ms_per_point": cpu / points * 1000,
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


def qcodes_store(ctx: Context, points: int) -> dict[str, Any] | str:
    """The baseline's figures, or why there are none."""
    python = ctx.qcodes_python
    if not Path(python).exists():
        return (f"QCoDeS is not installed: {python} does not exist (`make bench` installs "
                "QCoDeS into .venv/bench-qcodes)")
    path = ctx.workdir / "qcodes.db"
    env = {**os.environ, "QCODES_USER_PATH": str(ctx.workdir / "qcodes-home")}
    proc = subprocess.run(
        [python, str(ROOT / "benchmarks" / "qcodes_baseline.py"), str(path), str(points),
         str(QCODES_WRITE_PERIOD_S)], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"the QCoDeS baseline did not run under {python}: {tail}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> list[Figure]:
    points = ctx.size(1000, 40)
    baseline = qcodes_store(ctx, points)
    if isinstance(baseline, str):
        ctx.log(f"   baseline: {baseline}")
        base_rate = None
        base_label = "QCoDeS DataSaver, SQLite: not measured"
        base_note = f"QCoDeS baseline not measured: {baseline}"
    else:
        base_rate = float(baseline["readings_per_s"])
        base_label = "QCoDeS DataSaver, SQLite"
        base_note = (f"QCoDeS {baseline['qcodes']} DataSaver, write_period "
                     f"{baseline['write_period_s'] * 1000:.0f} ms, journal "
                     f"{baseline['journal_mode']}, synchronous={baseline['synchronous']}: "
                     f"durable within {baseline['latency_max_s'] * 1000:.0f} ms at most")
    figures: list[Figure] = []
    for backend in ("SQLite", "PostgreSQL"):
        for group_s in (None, GROUP_S):
            how = ("one commit per point (RunRecorder.record_point, the engine's path)"
                   if group_s is None else
                   f"points grouped into one commit every {group_s * 1000:.0f} ms "
                   "(repository.record_point in one session)")
            label = f"store, {backend}" + ("" if group_s is None else ", grouped commits")
            if backend == "SQLite":
                got = benchctl_store(f"sqlite:///{ctx.workdir / f'store-{group_s}.db'}",
                                     points, group_s)
            else:
                problem = postgres_problem(ctx.pg_url)
                if problem is not None:
                    figures.append(Figure(NUMBER, label, None, "readings/s", base_rate,
                                          base_label, target=_target(), skipped=problem))
                    continue
                with scratch_postgres(ctx.pg_url) as pg_url:
                    got = benchctl_store(pg_url, points, group_s)
            rate = float(got["readings_per_s"])
            durable = got["latency_max_s"] <= DURABLE_S
            ratio = rate / base_rate if base_rate else None
            met = None if ratio is None else (ratio > 1.0 and durable)
            figures.append(Figure(
                NUMBER, label, rate, "readings/s", base_rate, base_label, ratio,
                "benchctl ÷ QCoDeS", _target(), met,
                unjudged="" if base_rate else "no QCoDeS baseline (see the notes)",
                note=(f"{points} points of 2 readings, {how}; "
                      f"{got['cpu_ms_per_point']:.1f} ms of CPU per point; durable within "
                      f"{got['latency_median_s'] * 1000:.1f} ms (median), "
                      f"{got['latency_p99_s'] * 1000:.1f} ms (p99), "
                      f"{got['latency_max_s'] * 1000:.1f} ms (max). {base_note}."),
                details={"benchctl": got, "qcodes": baseline}))
    return figures


def _target() -> str:
    return f"ahead of QCoDeS (ratio > 1), every reading durable ≤ {DURABLE_S * 1000:.0f} ms"


if __name__ == "__main__":  # pragma: no cover - handy for profiling one backend
    print(benchctl_store(sys.argv[1], int(sys.argv[2])))

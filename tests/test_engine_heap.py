"""The collector's full passes skip what the process held before a run (engine/heap.py)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

from benchctl.config import load_bench
from benchctl.engine import heap
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, start_run
from benchctl.store import open_database


def test_the_heap_is_frozen_while_any_run_runs_and_thawed_after() -> None:
    assert heap.runs_frozen() == 0 and gc.get_freeze_count() == 0
    kept = [object() for _ in range(3)]  # something the process holds
    with heap.frozen_while_running():
        assert gc.get_freeze_count() > 0
        with heap.frozen_while_running():  # a second run begun meanwhile
            assert heap.runs_frozen() == 2
        assert heap.runs_frozen() == 1 and gc.get_freeze_count() > 0  # the first still runs
    assert heap.runs_frozen() == 0 and gc.get_freeze_count() == 0
    assert kept


def test_a_run_that_fails_still_thaws_the_heap() -> None:
    try:
        with heap.frozen_while_running():
            raise RuntimeError("the run crashed")
    except RuntimeError:
        pass
    assert heap.runs_frozen() == 0 and gc.get_freeze_count() == 0


def test_runs_in_threads_thaw_when_the_last_ends() -> None:
    started, finish = threading.Barrier(3), threading.Event()

    def run() -> None:
        with heap.frozen_while_running():
            started.wait()
            finish.wait(10)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    started.wait()
    assert heap.runs_frozen() == 2 and gc.get_freeze_count() > 0
    finish.set()
    for t in threads:
        t.join(10)
    assert heap.runs_frozen() == 0 and gc.get_freeze_count() == 0


def test_the_runner_freezes_the_heap_for_the_run(bench_dir: Path, simulation: Any) -> None:
    seen: list[tuple[int, int]] = []

    def listener(event: dict[str, Any]) -> None:
        if event.get("event") == "point":
            seen.append((heap.runs_frozen(), gc.get_freeze_count()))

    bench = load_bench(bench_dir / "bench.toml")
    db = open_database(bench.database)
    opts = RunOptions(bench=bench, operator=SimulatedOperator(simulation.control_address),
                      db=db, speed=100.0, handle_signals=False, listeners=[listener])
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", [], opts)
    db.dispose()
    assert outcome.state == "completed", outcome.message
    assert seen and all(runs == 1 and frozen > 0 for runs, frozen in seen)
    assert heap.runs_frozen() == 0 and gc.get_freeze_count() == 0

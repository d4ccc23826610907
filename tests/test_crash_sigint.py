"""Ctrl-C at random moments, during commits included: the run stops at the next safe point as
aborted (or, before the run has started, the process simply ends), the SQLite file is intact,
the pressure controller is left safe (control off, venting), and ``benchctl resume`` completes
the run as the uninterrupted one."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from crashhelp import (
    differences,
    finish,
    points_taken,
    record_problems,
    resume_args,
    run_exists,
    simulated_job,
    start,
)
from faulthelp import SLOW_MARKS, record_row

SEED = 7_2026


def _state(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return str(con.execute("SELECT state FROM runs WHERE id = 1").fetchone()[0])


def _integrity(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _interrupt(proc: Any, db: Path, points: int, delays: list[float]) -> bool:
    """Ctrl-C once ``points`` are committed, once per delay (a burst when several); False if
    the run had ended first."""
    deadline = time.monotonic() + 120
    while not (run_exists(db) and points_taken(db) >= points):
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the run got stuck"
        time.sleep(0.003)
    for delay in delays:
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    except Exception:
        proc.kill()
        raise
    return True


def _controller_safe(job: Any) -> None:
    pace = job.sim.world.get("controller")
    assert pace.output is False, "the controller is still controlling after the abort"
    assert pace.vent_state() in (1, 2), "the controller was not vented"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name, interrupts", [
    pytest.param("balance", 8, marks=SLOW_MARKS), ("pressure", 3)])
def test_ctrl_c_at_random_moments_then_resume(name: str, interrupts: int,
                                              tmp_path: Path) -> None:
    rnd = random.Random(f"{SEED}:{name}")
    with simulated_job(name, tmp_path / "ref") as job:
        ref_db = tmp_path / "ref" / "ref.db"
        ref = finish(start(job.run_args(ref_db)), f"uninterrupted {name} run")
        total = points_taken(ref_db)
    marks = sorted(rnd.sample(range(1, total), interrupts))
    with simulated_job(name, tmp_path / "run") as job:
        db = tmp_path / "run" / "run.db"
        proc = start(job.run_args(db))
        seen: list[tuple[int, str, int]] = []
        doc: dict[str, Any] | None = None
        for mark in marks:
            target = max(mark, points_taken(db) + 1)
            # Mostly one Ctrl-C a few ms after a commit, sometimes an impatient burst.
            burst = [rnd.uniform(0, 0.02)] + ([0.005, 0.005] if rnd.random() < 0.3 else [])
            if not _interrupt(proc, db, target, burst):
                break  # the run ended before this mark
            _integrity(db)
            state = _state(db)
            seen.append((points_taken(db), state, proc.returncode))
            # 1: aborted; 130: interrupted before the run started or after it ended; 0: the
            # signal came as the process was leaving with the run completed; -SIGINT: one
            # more Ctrl-C of a burst came after the run had ended and its instruments were
            # closed, and Python ended the process by the signal, as Unix programs do (what
            # the file holds is checked below either way).
            assert proc.returncode in (1, 130, -signal.SIGINT) or (
                proc.returncode == 0 and state == "completed"), (proc.returncode, state)
            if state == "completed":  # the Ctrl-C came after the last write
                from benchctl.reports.document import run_document
                from benchctl.store import open_database

                doc = run_document(open_database(f"sqlite:///{db}"), 1)
                break
            assert state in ("aborted", "running"), state
            if name == "pressure" and state == "aborted":
                _controller_safe(job)
            proc = start(resume_args(db))
        if doc is None:
            doc = finish(proc, f"{name} after Ctrl-C at {seen}")
    assert len(seen) >= interrupts - 1, seen
    assert any(state == "aborted" for _, state, _ in seen)
    assert not differences(doc, ref, job.tolerance)
    assert not record_problems(db, ref_db)
    record_row(name, "(operator)", "-", f"Ctrl-C × {len(seen)} at random moments",
               "aborted at the next safe point, resumed → completed" +
               (", controller vented and control off" if name == "pressure" else ""),
               "integrity_check ok; no reading lost or doubled")

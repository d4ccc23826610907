"""A run killed with SIGKILL midway resumes and ends as an uninterrupted run would.

The run is a separate process (so it can be killed for real); the simulated balance lives in
this process and keeps its state while the run process dies.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from benchhelp import aborted_after_a_point, benchctl


def _points(db: Path, run_id: int) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            row = con.execute("SELECT count(*) FROM points WHERE run_id = ?",
                              (run_id,)).fetchone()
    except sqlite3.OperationalError:  # the schema is still being created
        return 0
    return int(row[0])


def _start(bench_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchctl.cli", "run", "nawi_balance", "--bench",
         str(bench_dir / "bench.toml"), "--dut", str(bench_dir / "dut.toml"), "--operator",
         "sim", "--mode", "calibrate", "--json", "--speed", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _measured(doc: dict[str, Any]) -> dict[str, Any]:
    return {p["key"]: (p["indicated"], p["reference"], p["error"], p["U"], p["verdict"])
            for p in doc["points"]}


@pytest.mark.parametrize("kill_after", [2, 9, 21])
def test_sigkill_then_resume_equals_uninterrupted(bench_dir: Path, simulation: Any,
                                                  kill_after: int) -> None:
    db = bench_dir / "bench.db"
    proc = _start(bench_dir)
    deadline = time.monotonic() + 60
    try:
        while not (db.exists() and _points(db, 1) >= kill_after):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run did not get far enough"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    taken_before = _points(db, 1)
    assert taken_before >= kill_after

    resumed = benchctl("resume", "1", "--operator", "sim", "--json", "--db",
                       f"sqlite:///{db}", check=True)
    doc = json.loads(resumed.stdout)
    assert doc["state"] == "completed"
    # The resumed run started from the points already taken, not from the beginning.
    assert f"resumed after {taken_before} points already taken" in resumed.stderr

    fresh = benchctl("run", "nawi_balance", "--bench", str(bench_dir / "bench.toml"), "--dut",
                     str(bench_dir / "dut.toml"), "--operator", "sim", "--mode", "calibrate",
                     "--json", "--speed", "100", check=True)
    ref = json.loads(fresh.stdout)
    assert _measured(doc) == _measured(ref)
    assert doc["verdict"] == ref["verdict"]
    assert doc["measured_points"] == ref["measured_points"]
    # No reading lost or duplicated: one per balance point, three per ambient point, and
    # every reading belongs to exactly one committed point.
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for run_id in (1, 2):
            keys = [r[0] for r in con.execute(
                "SELECT key FROM points WHERE run_id = ? ORDER BY seq", (run_id,))]
            assert len(keys) == len(set(keys))
            orphans = con.execute("SELECT count(*) FROM readings WHERE run_id = ? AND "
                                  "point_id IS NULL", (run_id,)).fetchone()[0]
            assert orphans == 0
        counts = [con.execute("SELECT count(*) FROM readings WHERE run_id = ?",
                              (run_id,)).fetchone()[0] for run_id in (1, 2)]
        assert counts[0] == counts[1]
        seqs = [r[0] for r in con.execute("SELECT seq FROM points WHERE run_id = 1 ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))


def test_resume_refuses_a_completed_run(bench_dir: Path, simulation: Any) -> None:
    r = benchctl("run", "nawi_balance", "--bench", str(bench_dir / "bench.toml"), "--dut",
                 str(bench_dir / "dut.toml"), "--operator", "sim", "--param", "loads=5,6200",
                 "--param", "rep_n=2")
    assert r.returncode == 0, r.stderr
    r = benchctl("resume", "1", "--operator", "sim", "--db",
                 f"sqlite:///{bench_dir / 'bench.db'}")
    assert r.returncode == 2
    assert "run 1 is completed" in r.stderr


def _weights_due_on(opts: Any) -> Any:
    from sqlalchemy import select

    from benchctl.store.models import ReferenceCertificate

    with opts.db.session() as s:
        return s.scalars(select(ReferenceCertificate.due_on)).one()


def test_resume_refuses_a_reference_that_fell_due_since_the_run_started(
        bench_dir: Path, simulation: Any) -> None:
    """ISO/IEC 17025 6.4: the rest of the run would be measured with weights whose certificate
    is past due. The points taken while it was valid stay; the run goes on once it may."""
    import datetime as dt

    from benchctl.engine.runner import resume_run
    from benchctl.errors import BenchctlError

    outcome, opts = aborted_after_a_point(bench_dir, simulation)
    due = _weights_due_on(opts)
    with pytest.raises(BenchctlError) as refused:
        resume_run(outcome.run_id, opts, today=due + dt.timedelta(days=3))
    assert f"run {outcome.run_id} cannot be resumed" in str(refused.value)
    assert "KLC-2025-0412" in str(refused.value) and due.isoformat() in str(refused.value)
    assert "points taken before stay recorded" in (refused.value.detail or "")
    with opts.db.session() as s:  # refused before anything changed: still resumable
        from benchctl.store import repository as repo

        assert repo.get_run(s, outcome.run_id).state == "aborted"
    resumed = resume_run(outcome.run_id, opts, today=due)  # the due date is the last day
    assert resumed.state == "completed", resumed.message
    opts.db.dispose()


def test_resume_keeps_an_override_given_when_the_run_started(bench_dir: Path,
                                                             simulation: Any) -> None:
    """Weights already past due when the run started, used on a recorded override: resuming
    later does not refuse them again (the decision on record covers them)."""
    import datetime as dt

    from benchhelp import WEIGHTS

    from benchctl.engine.runner import resume_run

    (bench_dir / "weights.toml").write_text(
        WEIGHTS.replace('due = "2027-12-01"', 'due = "2026-01-10"'), encoding="utf-8")
    outcome, opts = aborted_after_a_point(
        bench_dir, simulation,
        override_reason="re-calibration booked; weights checked against the working set")
    assert _weights_due_on(opts) == dt.date(2026, 1, 10)
    resumed = resume_run(outcome.run_id, opts, today=dt.date.today() + dt.timedelta(days=5))
    assert resumed.state == "completed", resumed.message
    opts.db.dispose()


def test_resume_goes_on_with_a_reference_that_fell_due_on_a_recorded_override(
        bench_dir: Path, simulation: Any) -> None:
    """The technician may go on with weights whose certificate fell due while the run was
    stopped, for a stated reason: it is recorded with that reference and in the audit trail
    (and so printed on the certificate), as an override at the start is."""
    import datetime as dt

    from benchctl.engine.runner import resume_run
    from benchctl.records.fitness import FitnessError
    from benchctl.reports.document import run_document
    from benchctl.store import repository as repo

    outcome, opts = aborted_after_a_point(bench_dir, simulation)
    later = _weights_due_on(opts) + dt.timedelta(days=3)
    with pytest.raises(FitnessError) as refused:  # what the TUI asks a reason for
        resume_run(outcome.run_id, opts, today=later)
    assert "--override-reason" in (refused.value.detail or "")
    reason = "the new certificate is on its way; weights checked against the working set"
    resumed = resume_run(outcome.run_id, opts, today=later, override_reason=f"  {reason} ")
    assert resumed.state == "completed", resumed.message
    with opts.db.session() as s:
        [override] = repo.run_overrides(s, outcome.run_id)
        assert override["reason"] == reason
        due = later - dt.timedelta(days=3)
        assert override["problem"].startswith(f"was due for recalibration on {due}")
        assert "valid when the run started on" in override["problem"]
        [event] = [e for e in repo.audit_events(s) if e.action == "run.override"]
        assert event.entity_id == str(outcome.run_id)
        assert event.after["references"][0]["override_reason"] == reason
        assert repo.verify_audit(s) == (True, None)  # the event vouches for the changed row
    doc = run_document(opts.db, outcome.run_id)
    assert [r["override_reason"] for r in doc["references"]] == [reason]
    opts.db.dispose()


def test_resume_command_takes_an_override_reason(bench_dir: Path, simulation: Any) -> None:
    """``benchctl resume --override-reason``: the command line's way to the same decision.
    (Two days are made to pass in the database: the run started the day before yesterday, in
    a process long gone, and its weights fell due yesterday.)"""
    import datetime as dt

    outcome, opts = aborted_after_a_point(bench_dir, simulation)
    opts.db.dispose()
    db = bench_dir / "bench.db"
    started = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(tzinfo=None)
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET started_at = ?, pid = ? WHERE id = ?",
                    (started.isoformat(" ", "microseconds"), _pid_nobody_has(), outcome.run_id))
        con.execute("UPDATE reference_certificates SET due_on = ?", (yesterday.isoformat(),))
    args = ("resume", str(outcome.run_id), "--operator", "sim", "--json", "--db",
            f"sqlite:///{db}")
    refused = benchctl(*args)
    assert refused.returncode == 2
    assert f"run {outcome.run_id} cannot be resumed (weights)" in refused.stderr
    assert "--override-reason" in refused.stderr
    reason = "weights checked against the working set this morning"
    resumed = benchctl(*args, "--override-reason", reason, check=True)
    doc = json.loads(resumed.stdout)
    assert doc["state"] == "completed"
    assert [r["override_reason"] for r in doc["references"]] == [reason]


def _pid_nobody_has() -> int:
    """A process id no process has now (from the top of the range, where few are)."""
    import os

    pid = int(Path("/proc/sys/kernel/pid_max").read_text()) - 1
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1

"""Power failure exactly between two writes of a run, not just somewhere: the run process
SIGKILLs itself right before or after a given write of its recorder (the moment is chosen by
wrapping RunRecorder's methods in the child process; the death is real). After each, the run
resumes and ends as the uninterrupted one, with nothing doubled.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from crashhelp import (
    BENCHCTL,
    differences,
    finish,
    record_problems,
    resume_args,
    simulated_job,
    start,
)
from faulthelp import SLOW_MARKS, record_row

#: Runs ``benchctl`` in this process after arming the kill: argv[1] = "before|after",
#: argv[2] = recorder method, argv[3] = what its arguments must contain ("" = the first call
#: of that method; "N#" = the N-th call), then the benchctl arguments.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from benchctl.engine import recorder
    from benchctl.store import repository
    when, method, match = sys.argv[1:4]
    calls = []

    def hit(args):
        calls.append(1)
        if match.endswith("#"):
            return len(calls) == int(match[:-1])
        return not match or any(match == str(a) for a in args)

    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    if method == "record_point":
        # The engine hands points over (submit_point); a point is written when the writer
        # thread has committed it: "after" dies right then, in the writer's thread.
        submit = recorder.RunRecorder.submit_point

        def armed_submit(self, *args, **kw):
            mine = hit(args)
            if mine and when == "before":
                die()
            if mine and when == "after":
                args, later = args[:5], (args[5:] or [kw.pop("on_durable", None)])[0]

                def then(ticket):
                    if later is not None:
                        later(ticket)
                    die()

                kw["on_durable"] = then
            return submit(self, *args, **kw)

        recorder.RunRecorder.submit_point = armed_submit
    else:
        original = getattr(recorder.RunRecorder, method)

        def armed(self, *args, **kw):
            mine = hit(args)
            if mine and when == "before":
                die()
            result = original(self, *args, **kw)
            if mine and when == "after":
                die()
            return result

        setattr(recorder.RunRecorder, method, armed)
    interrupt_at = int(os.environ.get("INTERRUPT_AT_POINT", "0"))
    in_commit = os.environ.get("INTERRUPT_IN_COMMIT") == "1"
    if in_commit:  # Ctrl-C while the commit that carries that point is being written
        write = repository.record_points
        written = []

        def writing(conn, items, **kw):
            if len(written) < interrupt_at <= len(written) + len(items):
                os.kill(os.getpid(), signal.SIGINT)
            written.extend(items)
            return write(conn, items, **kw)

        repository.record_points = writing
    elif interrupt_at:  # Ctrl-C once that many points are committed
        handed = recorder.RunRecorder.submit_point
        points = []

        def counted(self, *args, **kw):
            points.append(1)
            if len(points) == interrupt_at:
                args, later = args[:5], (args[5:] or [kw.pop("on_durable", None)])[0]

                def then(ticket):
                    if later is not None:
                        later(ticket)
                    os.kill(os.getpid(), signal.SIGINT)

                kw["on_durable"] = then
            return handed(self, *args, **kw)

        recorder.RunRecorder.submit_point = counted
    from benchctl.cli import main
    sys.exit(main(sys.argv[4:]))
""")



def _state(db: Path) -> str:
    with sqlite3.connect(db) as con:
        return str(con.execute("SELECT state FROM runs WHERE id = 1").fetchone()[0])


def _result_sets(db: Path) -> int:
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "results" not in tables:
            return 0
        cols = {r[1] for r in con.execute("PRAGMA table_info(results)")}
        if "revision" in cols:
            return int(con.execute("SELECT count(DISTINCT revision) FROM results WHERE "
                                   "run_id = 1").fetchone()[0])
        return 1 if con.execute("SELECT count(*) FROM results WHERE run_id = 1").fetchone()[0] \
            else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("ref")
    with simulated_job("balance", folder) as job:
        db = folder / "ref.db"
        return finish(start(job.run_args(db)), "uninterrupted balance run"), db


@pytest.mark.parametrize("when, method, match, state", [
    pytest.param("after", "record_point", "3#", "running", marks=SLOW_MARKS),
    pytest.param("before", "record_point", "3#", "running", marks=SLOW_MARKS),
    pytest.param("after", "set_environment", "start", "running", marks=SLOW_MARKS),
    # results saved, "completed" not yet written
    pytest.param("after", "save_results", "", "running", marks=SLOW_MARKS),
    pytest.param("before", "set_state", "completed", "running", marks=SLOW_MARKS),
])
def test_killed_between_two_writes_then_resumed(when: str, method: str, match: str,
                                                state: str, tmp_path: Path,
                                                reference: tuple[dict, Path]) -> None:
    ref_doc, ref_db = reference
    with simulated_job("balance", tmp_path) as job:
        db = tmp_path / "run.db"
        args = job.run_args(db)[len(BENCHCTL):]
        child = subprocess.run([sys.executable, "-c", CHILD, when, method, match, *args],
                               capture_output=True, text=True, timeout=180)
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
        assert _state(db) == state
        doc = finish(start(resume_args(db)), f"resume after a kill {when} {method}")
    assert not differences(doc, ref_doc, 0.0)
    assert not record_problems(db, ref_db)
    assert _result_sets(db) == 1, "results saved twice"
    record_row("balance", "(power)", "-", f"SIGKILL {when} {method}({match or 'first'})",
               f"left {state}; benchctl resume → completed, equal to the uninterrupted run",
               "no point or result doubled")


def test_killed_while_aborting_is_still_resumable(tmp_path: Path,
                                                  reference: tuple[dict, Path]) -> None:
    """The technician aborts; the power fails between "aborting" and "aborted". The run must
    not be stuck: resume takes it from where it stopped."""
    ref_doc, ref_db = reference
    with simulated_job("balance", tmp_path) as job:
        db = tmp_path / "run.db"
        args = job.run_args(db)[len(BENCHCTL):]
        child = subprocess.run([sys.executable, "-c", CHILD, "after", "set_state", "aborting",
                                *args], capture_output=True, text=True, timeout=180,
                               env={**os.environ, "INTERRUPT_AT_POINT": "7"})
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
        assert _state(db) == "aborting"
        resumed = subprocess.run(resume_args(db), capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    doc = json.loads(resumed.stdout)
    assert not differences(doc, ref_doc, 0.0)
    assert not record_problems(db, ref_db)
    record_row("balance", "(power)", "-", "SIGKILL between \"aborting\" and \"aborted\"",
               "left aborting; benchctl resume → completed", "nothing lost")


def test_ctrl_c_in_the_middle_of_a_commit(tmp_path: Path, reference: tuple[dict, Path]) -> None:
    """Ctrl-C lands while point 9 is being written: the write completes (it runs in the
    recorder's writer thread, the signal is handled by the event loop), the run aborts at
    the next safe point (the point being measured meanwhile is finished and kept), the file is
    intact, and resume completes the run."""
    ref_doc, ref_db = reference
    with simulated_job("balance", tmp_path) as job:
        db = tmp_path / "run.db"
        args = job.run_args(db)[len(BENCHCTL):]
        child = subprocess.run([sys.executable, "-c", CHILD, "after", "save_results", "0#",
                                *args], capture_output=True, text=True, timeout=180,
                               env={**os.environ, "INTERRUPT_AT_POINT": "9",
                                    "INTERRUPT_IN_COMMIT": "1"})
        assert child.returncode == 1, child.stderr[-2000:]  # 1: the run did not complete
        assert _state(db) == "aborted"
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert con.execute("SELECT count(*) FROM points").fetchone()[0] in (9, 10)
        doc = finish(start(resume_args(db)), "resume after Ctrl-C during a commit")
    assert not differences(doc, ref_doc, 0.0)
    assert not record_problems(db, ref_db)
    record_row("balance", "(operator)", "-", "Ctrl-C during a commit",
               "the commit completes; aborted at the next safe point; resumed → completed",
               "integrity_check ok; the point kept once")

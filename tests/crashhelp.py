"""Kill a real run process and resume it: the machinery of the crash tests.

A job is one of the bundled demo jobs (balance, pressure, dispenser) on its own simulated
bench, started in this process so the instruments keep their state while the run process
dies, with the simulators' noise turned off so two runs of the same job take the same values.
The run is ``python -m benchctl.cli run`` (a separate process, so SIGKILL is real); the test
watches the database for committed points and kills the process at chosen moments.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchctl.commands import _write_bench_copy, start_bench_simulation
from benchctl.config import load_bench
from benchctl.demo import copy_demo_files, demo_jobs

BENCHCTL = [sys.executable, "-m", "benchctl.cli"]

#: Per job: the speed, the mode and how two runs' values are compared (absolute tolerance in
#: the point's unit: 0 for the balance, whose simulator is exact; the controlled pressure and
#: the delivered volume depend on where in a simulated millisecond a reading falls).
JOBS: dict[str, dict[str, Any]] = {
    "balance": {"speed": 1000.0, "mode": "calibrate", "tolerance": 0.0},
    "pressure": {"speed": 1000.0, "mode": "calibrate", "tolerance": 0.05},
    "dispenser": {"speed": 1000.0, "mode": "verify", "tolerance": 0.05},
}


@dataclass
class Job:
    name: str
    procedure: str
    bench: Path
    dut: Path
    mode: str
    params: list[str]
    speed: float
    tolerance: float
    sim: Any = None
    """The running simulation (its world holds the instruments' state)."""

    def run_args(self, db: Path) -> list[str]:
        args = [*BENCHCTL, "run", self.procedure, "--bench", str(self.bench), "--dut",
                str(self.dut), "--operator", "sim", "--mode", self.mode, "--json", "--speed",
                f"{self.speed:g}", "--db", f"sqlite:///{db}"]
        for p in self.params:
            args += ["--param", p]
        return args


@contextlib.contextmanager
def simulated_job(name: str, folder: Path, seed: int = 0) -> Iterator[Job]:
    """The demo job ``name`` with its simulators running (noise off) and a bench copy that
    names their resources."""
    jobs = {j["name"]: j for j in demo_jobs()}
    spec = jobs[name]
    folder.mkdir(parents=True, exist_ok=True)
    copy_demo_files(folder, [spec])
    path = folder / spec["bench"]
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^(noise|repeatability|hunting|ripple) = .*$", r"\1 = 0.0", text,
                  flags=re.M)
    text = re.sub(r"^seed = .*$", f"seed = {seed}", text, flags=re.M)
    path.write_text(text, encoding="utf-8")
    bench = load_bench(path)
    cfg = JOBS[name]
    sim = start_bench_simulation(bench, cfg["speed"])
    try:
        live = folder / "live-bench.toml"
        _write_bench_copy(bench, sim, live)
        params = list(spec.get("params", []))
        runs = spec.get("runs") or [[]]
        params += list(runs[0])
        yield Job(name, spec["procedure"], live, folder / spec["dut"], cfg["mode"], params,
                  cfg["speed"], cfg["tolerance"], sim)
    finally:
        sim.stop()


def points_taken(db: Path, run_id: int = 1) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True,
                                                timeout=5)) as con:
            row = con.execute("SELECT count(*) FROM points WHERE run_id = ?",
                              (run_id,)).fetchone()
    except sqlite3.OperationalError:  # not created yet, or the schema is being made
        return 0
    return int(row[0])


def run_exists(db: Path, run_id: int = 1) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True,
                                                timeout=5)) as con:
            return con.execute("SELECT count(*) FROM runs WHERE id = ?",
                               (run_id,)).fetchone()[0] == 1
    except sqlite3.OperationalError:
        return False


def kill_when(proc: subprocess.Popen[str], db: Path, points: int, extra_s: float,
              sig: int = signal.SIGKILL, timeout: float = 120.0) -> int | None:
    """Send ``sig`` once ``points`` points are committed (and the run row exists), after
    ``extra_s`` more seconds; the points committed when it died, or None when the process
    ended (completed) first."""
    deadline = time.monotonic() + timeout
    while not (run_exists(db) and points_taken(db) >= points):
        if proc.poll() is not None:
            return None
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the run did not reach {points} points in {timeout:g} s")
        time.sleep(0.003)
    if extra_s:
        time.sleep(extra_s)
    if proc.poll() is not None:
        return None
    proc.send_signal(sig)
    proc.wait(timeout=30)
    return points_taken(db)


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen[str], what: str, timeout: float = 180.0) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{what} exited {proc.returncode}\nstdout:\n{out[-2000:]}\n"
                             f"stderr:\n{err[-3000:]}")
    doc: dict[str, Any] = json.loads(out)
    return doc


def resume_args(db: Path, run_id: int = 1) -> list[str]:
    return [*BENCHCTL, "resume", str(run_id), "--operator", "sim", "--json", "--db",
            f"sqlite:///{db}"]


# -- what "the same run" means ----------------------------------------------------------------

COMPARED = ("key", "test", "position", "direction", "series", "flow", "nominal", "unit",
            "error_unit", "verdict")
VALUES = ("reference", "indicated", "error", "U", "mpe")


def differences(doc: dict[str, Any], ref: dict[str, Any], tolerance: float) -> list[str]:
    """Why the resumed run's results differ from the uninterrupted one's (empty: equal)."""
    out = []
    if doc["state"] != "completed":
        out.append(f"state {doc['state']}")
    if doc["verdict"] != ref["verdict"]:
        out.append(f"verdict {doc['verdict']} != {ref['verdict']}")
    if doc.get("measured_points") != ref.get("measured_points"):
        out.append(f"measured points {doc.get('measured_points')} != "
                   f"{ref.get('measured_points')}")
    keys, ref_keys = [p["key"] for p in doc["points"]], [p["key"] for p in ref["points"]]
    if keys != ref_keys:
        out.append(f"result rows {keys} != {ref_keys}")
        return out
    for p, q in zip(doc["points"], ref["points"], strict=True):
        for k in COMPARED:
            if p.get(k) != q.get(k):
                out.append(f"{p['key']}.{k}: {p.get(k)!r} != {q.get(k)!r}")
        for k in VALUES:
            a, b = p.get(k), q.get(k)
            differs = (a is None) != (b is None) or (
                a is not None and abs(float(a) - float(b)) > tolerance + 1e-9)
            if differs:
                out.append(f"{p['key']}.{k}: {a!r} != {b!r}")
    return out


def record_problems(db: Path, ref_db: Path) -> list[str]:
    """The database after a crash and a resume: intact, every point once, every reading of a
    committed point and as many per point as in the uninterrupted run."""
    out = []
    with contextlib.closing(sqlite3.connect(db)) as con:
        check = con.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            out.append(f"integrity_check: {check}")
        fk = con.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            out.append(f"foreign_key_check: {fk[:5]}")
        keys = [r[0] for r in con.execute("SELECT key FROM points WHERE run_id = 1 "
                                          "ORDER BY seq")]
        if len(keys) != len(set(keys)):
            out.append(f"a point recorded twice: {keys}")
        seqs = [r[0] for r in con.execute("SELECT seq FROM points WHERE run_id = 1 "
                                          "ORDER BY seq")]
        if seqs != list(range(1, len(seqs) + 1)):
            out.append(f"point sequence has gaps: {seqs}")
        orphans = con.execute("SELECT count(*) FROM readings WHERE run_id = 1 AND "
                              "(point_id IS NULL OR point_id NOT IN (SELECT id FROM points))"
                              ).fetchone()[0]
        if orphans:
            out.append(f"{orphans} readings belong to no committed point")
        per_point = dict(con.execute("SELECT point_key, count(*) FROM readings WHERE "
                                     "run_id = 1 GROUP BY point_key").fetchall())
    with contextlib.closing(sqlite3.connect(ref_db)) as con:
        ref_keys = [r[0] for r in con.execute("SELECT key FROM points WHERE run_id = 1 "
                                              "ORDER BY seq")]
        ref_per_point = dict(con.execute("SELECT point_key, count(*) FROM readings WHERE "
                                         "run_id = 1 GROUP BY point_key").fetchall())
    if sorted(keys) != sorted(ref_keys):
        out.append(f"points {sorted(set(keys) ^ set(ref_keys))} differ from the "
                   "uninterrupted run")
    if per_point != ref_per_point:
        diff = {k: (per_point.get(k), ref_per_point.get(k))
                for k in set(per_point) | set(ref_per_point)
                if per_point.get(k) != ref_per_point.get(k)}
        out.append(f"readings per point differ (resumed, uninterrupted): {diff}")
    return out

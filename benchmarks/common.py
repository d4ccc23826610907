"""What every benchmark shares: the figure record, the run context, simulators in a process
of their own, scratch PostgreSQL databases and a few statistics.

Benchmarks are not tests: nothing here asserts a time. A figure that cannot be measured says
why (``Figure.skipped``) instead of inventing a number.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: The server the PostgreSQL figures use (trust auth); scratch databases are made next to it.
DEFAULT_PG_URL = os.environ.get(
    "BENCHCTL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: QCoDeS lives in a virtual environment of its own (``make bench`` makes it), so its many
#: dependencies never change what benchctl's own environment imports.
DEFAULT_QCODES_PYTHON = os.environ.get(
    "BENCHCTL_BENCH_QCODES_PYTHON", str(ROOT / ".venv" / "bench-qcodes" / "bin" / "python"))


@dataclass
class Figure:
    """One row of the table: a value, the baseline it is compared with, and the verdict."""

    number: int
    """Which figure of the issue (1 driver overhead ... 7 history at scale)."""
    label: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    ratio_label: str = ""
    """What the ratio is (e.g. "benchctl ÷ raw"), so a reader knows which way is better."""
    target: str = ""
    met: bool | None = None
    """None: not judged (no target, no baseline, or not measured)."""
    unjudged: str = ""
    """Why a measured figure is not judged (e.g. its baseline could not be measured)."""
    note: str = ""
    skipped: str | None = None
    """Why the figure was not measured (a missing server or package), or None."""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    """Options of this run of the suite, handed to every benchmark."""

    quick: bool
    workdir: Path
    pg_url: str = DEFAULT_PG_URL
    qcodes_python: str = DEFAULT_QCODES_PYTHON
    log: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr,
                                                                  flush=True))
    cache: dict[str, Any] = field(default_factory=dict)
    """Shared between benchmarks of one run (e.g. template runs for the history figure)."""

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# -- statistics -------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank: a value that was actually observed."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def sig(value: float | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, in plain notation for everyday sizes."""
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 10 ** digits:
        return f"{value:,.0f}".replace(",", " ")
    if magnitude < 1e-3:
        return f"{value:.{digits - 1}e}"
    decimals = digits - 1 - math.floor(math.log10(magnitude))
    return f"{value:.{max(0, decimals)}f}"


# -- simulators in their own process -----------------------------------------------------------

class SimProcess:
    """Simulators in a child process (``python -m benchmarks.simproc``).

    The simulated instruments then compete with the client for CPU cores, not for the client's
    GIL, as a real instrument on the other end of a cable would. ``cpus``: run the simulators
    (every thread of them) on these CPUs only (Linux), see :func:`simulator_cpus`.
    """

    def __init__(self, instruments: dict[str, dict[str, Any]], *, speed: float = 1.0,
                 seed: int = 1, timeout: float = 60.0, cpus: set[int] | None = None) -> None:
        spec = json.dumps({"instruments": instruments, "speed": speed, "seed": seed,
                           "cpus": sorted(cpus) if cpus else None})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.simproc", spec], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.proc.wait(timeout)
            raise RuntimeError(f"the simulators did not start: {err.strip()[-2000:]}")
        started = json.loads(line)
        self.resources: dict[str, str] = started["resources"]
        self.control: str | None = started.get("control")
        self.pid = self.proc.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def simulator_cpus() -> set[int] | None:
    """One CPU of those this process may use, for the simulators; None where there are not
    two (or, outside Linux, no way to pin).

    Why: a line simulator serves each connection from a thread of its own, and the scheduler
    places threads on CPUs as it likes. A client whose server thread shares the client's CPU
    gets its replies without a cross-CPU wake-up, which on a 2-vCPU VM halves the cost of an
    exchange; two clients of one simulator then differ by up to 2x, whoever they are, for as
    long as the placement lasts. A/A runs of the driver figure (two identical raw pyvisa
    clients) gave median ratios from 0.67 to 2.1 with nothing pinned; with every simulator
    thread on one CPU, 0.97 to 1.01. The client stays free to move, so a busy CPU is shared
    by both sides of a comparison rather than pinned under one of them (pinning the client
    to the other CPU as well made the Modbus A/A runs spread several times wider under load).
    """
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return {allowed[-1]} if len(allowed) >= 2 else None


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- PostgreSQL ----------------------------------------------------------------------------------

def postgres_problem(url: str) -> str | None:
    """Why the PostgreSQL server at ``url`` cannot be used, or None when it answers."""
    try:
        from sqlalchemy import create_engine, text

        from benchctl.store.db import _reason, mask_url, normalise_url
    except ImportError as exc:  # pragma: no cover - benchctl's environment has both
        return f"cannot import the PostgreSQL client: {exc}"
    try:
        engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any failure to reach the server: say which and why
        return f"PostgreSQL not reachable at {mask_url(url)}: {_reason(exc)}"
    return None


def postgres_version(url: str) -> str | None:
    from sqlalchemy import create_engine, text

    from benchctl.store.db import normalise_url

    try:
        engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                return str(conn.execute(text("SHOW server_version")).scalar())
        finally:
            engine.dispose()
    except Exception:
        return None


@contextlib.contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    """A new, empty database ``benchctl_bench_<random>`` on the server; dropped afterwards."""
    from sqlalchemy import create_engine, text

    from benchctl.store.db import normalise_url

    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 5})
    name = f"benchctl_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield normalise_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


# -- timing ---------------------------------------------------------------------------------------

def interleaved(rounds: int, *runs: Callable[[], float],
                alternate: bool = False) -> list[list[float]]:
    """Run each measurement once per round, alternating, so a change in the machine's load
    hits every contender alike; returns one list of results per contender.

    ``alternate``: every other round runs the contenders in reverse order (A B, B A, ...), so
    none of them is always the one that runs right after another's burst of work."""
    results: list[list[float]] = [[] for _ in runs]
    order = list(range(len(runs)))
    for n in range(rounds):
        for i in (reversed(order) if alternate and n % 2 else order):
            results[i].append(runs[i]())
    return results


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- bench files ----------------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def bench_toml(name: str, instruments: dict[str, dict[str, Any]], *,
               database: str | None = None, locale: str = "en") -> str:
    """A bench file: ``instruments`` maps a name to its table (driver, resource, options)."""
    lines = ["[bench]", f"name = {toml_value(name)}", f"locale = {toml_value(locale)}"]
    if database:
        lines.append(f"database = {toml_value(database)}")
    for inst, table in instruments.items():
        lines += ["", f"[instruments.{inst}]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"

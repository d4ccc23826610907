"""Figure 7: history at scale: 10 000 runs and 1 000 000 readings, in SQLite and PostgreSQL.

The records are real ones, multiplied: the three bundled procedures are run once each on
their simulated benches (the templates), then copied, with new ids and start times, into the
database under test with bulk inserts through the store's tables (SQLAlchemy Core,
``executemany``), not through the engine, until there are 10 000 runs with 100 readings each.
The copies carry no audit events (``audit verify`` would rightly call them inserted behind
benchctl's back); nothing timed here reads the audit trail.

Then ``runs list`` (first page), ``runs show`` and the certificate (PDF) are timed through the
command line's own entry point (``benchctl.cli.main`` in this process, output captured), so
each includes opening the database as the command does. The baseline is the same command on
a database holding only the template runs: the ratio says how much the 10 000 runs cost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import Context, Figure, median, postgres_problem, scratch_postgres

NAME = "history"
NUMBER = 7
TITLE = "History at scale: runs list, runs show and the certificate with 10 000 runs"

TARGETS_S = {"runs list": 0.1, "runs show": 0.1, "certificate (HTML)": 1.0,
             "certificate (PDF)": 1.0}

#: Template jobs: demo job, mode, parameters (the demo's own, short holds).
TEMPLATE_JOBS: tuple[tuple[str, str, list[str]], ...] = (
    ("balance", "calibrate", []),
    ("pressure", "calibrate", ["hold_s=2", "hold_max_s=5", "poll_s=0.5"]),
    ("dispenser", "verify", ["method=master_meter"]),
)
QUICK_TEMPLATE_JOBS: tuple[tuple[str, str, list[str]], ...] = (
    ("balance", "calibrate", ["loads=5,6200", "rep_n=2", "down=false"]),)
#: Tables copied once (the register), then the per-run tables, parents first.
STATIC_TABLES = ("persons", "procedure_versions", "assets", "reference_certificates",
                 "certified_weights")
RUN_TABLES = ("runs", "run_references", "points", "readings", "results")


class Template:
    """Every row of the template database, by table."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine, select

        from benchctl.store.db import normalise_url
        from benchctl.store.models import Base

        engine = create_engine(normalise_url(url))
        self.rows: dict[str, list[dict[str, Any]]] = {}
        try:
            with engine.connect() as conn:
                for name in (*STATIC_TABLES, *RUN_TABLES):
                    table = Base.metadata.tables[name]
                    pk = list(table.primary_key.columns)
                    self.rows[name] = [dict(r._mapping)
                                       for r in conn.execute(select(table).order_by(*pk))]
        finally:
            engine.dispose()
        self.runs = self.rows["runs"]
        by_run: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for name in RUN_TABLES[1:]:
            by_run[name] = {}
            for row in self.rows[name]:
                by_run[name].setdefault(row["run_id"], []).append(row)
        self.by_run = by_run


def make_templates(ctx: Context) -> str:
    """A SQLite database with one completed run of each bundled procedure (cached per suite)."""
    cached = ctx.cache.get("history_templates")
    if cached:
        return str(cached)
    from benchctl.store import open_database

    from .procedures import JobRunner

    url = f"sqlite:///{Path(ctx.workdir) / 'templates.db'}"
    db = open_database(url)
    try:
        for name, mode, params in QUICK_TEMPLATE_JOBS if ctx.quick else TEMPLATE_JOBS:
            job = JobRunner(ctx, name, db)
            try:
                job.run(mode, params, 2000.0)
            finally:
                job.close()
    finally:
        db.dispose()
    ctx.cache["history_templates"] = url
    return url


def _copies(template: Template, runs: int, readings_per_run: int, batch_runs: int
            ) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Batches of new rows: ``runs`` copies of the template runs in turn, newest last."""
    start = dt.datetime(2021, 1, 4, 1, 0, tzinfo=dt.UTC)
    point_id = reading_id = result_id = 0
    batch: dict[str, list[dict[str, Any]]] = {name: [] for name in RUN_TABLES}
    for n in range(runs):
        src = template.runs[n % len(template.runs)]
        run_id = n + 1
        shift = start + dt.timedelta(minutes=53 * n) - src["started_at"]
        run = {**src, "id": run_id, "started_at": src["started_at"] + shift,
               "updated_at": src["updated_at"] + shift,
               "ended_at": src["ended_at"] + shift if src["ended_at"] else None}
        batch["runs"].append(run)
        for ref in template.by_run["run_references"].get(src["id"], []):
            batch["run_references"].append({**ref, "run_id": run_id})
        new_point: dict[int, int] = {}
        for p in template.by_run["points"].get(src["id"], []):
            point_id += 1
            new_point[p["id"]] = point_id
            batch["points"].append({**p, "id": point_id, "run_id": run_id,
                                    "created_at": p["created_at"] + shift})
        readings = template.by_run["readings"].get(src["id"], [])
        for i in range(readings_per_run if readings else 0):
            r = readings[i % len(readings)]
            reading_id += 1
            batch["readings"].append({
                **r, "id": reading_id, "run_id": run_id,
                "point_id": new_point.get(r["point_id"]) if r["point_id"] else None,
                "taken_at": r["taken_at"] + shift + dt.timedelta(milliseconds=i)})
        for res in template.by_run["results"].get(src["id"], []):
            result_id += 1
            batch["results"].append({**res, "id": result_id, "run_id": run_id,
                                     "created_at": res["created_at"] + shift})
        if run_id % batch_runs == 0 or run_id == runs:
            yield batch
            batch = {name: [] for name in RUN_TABLES}


def populate(url: str, template: Template, runs: int, readings_per_run: int,
             log: Any = None) -> tuple[float, int]:
    """Fill a migrated, empty database; (seconds, readings written)."""
    from sqlalchemy import create_engine, text

    from benchctl.store import open_database
    from benchctl.store.db import normalise_url
    from benchctl.store.models import Base

    open_database(url).dispose()  # the schema, through the migrations
    engine = create_engine(normalise_url(url))
    t0 = time.perf_counter()
    written = 0
    try:
        with engine.begin() as conn:
            for name in STATIC_TABLES:
                if template.rows[name]:
                    conn.execute(Base.metadata.tables[name].insert(), template.rows[name])
        for batch in _copies(template, runs, readings_per_run, batch_runs=500):
            with engine.begin() as conn:
                for name in RUN_TABLES:
                    if batch[name]:
                        conn.execute(Base.metadata.tables[name].insert(), batch[name])
            written += len(batch["readings"])
            if log is not None and written % 200_000 < len(batch["readings"]):
                log(f"   … {written:,} readings".replace(",", " "))
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:  # sequences past the copied ids; fresh statistics
                for name in ("runs", "points", "readings", "results"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                      f"(SELECT max(id) FROM {name}))"))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - t0, written


def cli(*args: str) -> tuple[float, float]:
    """(wall, CPU) seconds ``benchctl ARGS`` takes in this process, output discarded; raises
    if the command fails."""
    from benchctl.cli import main

    out, err = io.StringIO(), io.StringIO()
    c0, t0 = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if status != 0:
        raise RuntimeError(f"benchctl {' '.join(args)} exited {status}: {err.getvalue()[-500:]}")
    return elapsed, cpu


def operations(url: str, run_id: int, folder: Path, quick: bool = False
               ) -> dict[str, list[str]]:
    """The commands timed (with ``quick``, the PDF, the slowest, is left out)."""
    ops = {
        "runs list": ["runs", "list", "--db", url, "--json"],
        "runs show": ["runs", "show", str(run_id), "--db", url, "--json"],
        "certificate (HTML)": ["report", str(run_id), "--format", "html", "-o",
                               str(folder / f"certificate-{run_id}.html"), "--reports-dir",
                               str(folder), "--db", url],
        "certificate (PDF)": ["report", str(run_id), "--format", "pdf", "-o",
                              str(folder / f"certificate-{run_id}.pdf"), "--reports-dir",
                              str(folder), "--db", url],
    }
    if quick:
        del ops["certificate (PDF)"]
    return ops


def time_operations(url: str, run_id: int, folder: Path, repeats: int
                    ) -> dict[str, tuple[float, float, float]]:
    """{operation: (first call, median wall and median CPU of the next ``repeats``)}, s;
    ``repeats`` 0 (``--quick``): the first call only, and no PDF."""
    out: dict[str, tuple[float, float, float]] = {}
    for name, args in operations(url, run_id, folder, quick=repeats == 0).items():
        first = cli(*args)
        got = [cli(*args) for _ in range(repeats)] or [first]  # --quick: the first call
        out[name] = (first[0], median([w for w, _ in got]), median([c for _, c in got]))
    return out


def run(ctx: Context) -> list[Figure]:
    runs = ctx.size(10_000, 60)
    per_run = 100
    repeats = ctx.size(7, 0)
    folder = Path(ctx.workdir) / "history"
    folder.mkdir(exist_ok=True)
    template_url = make_templates(ctx)
    template = Template(template_url)
    # The baseline: the same commands on the template runs alone, on the run with the most
    # result rows (the longest certificate).
    n_base = len(template.runs)
    index = max(range(n_base), key=lambda i: len(template.by_run["results"].get(
        template.runs[i]["id"], [])))
    base_run = int(template.runs[index]["id"])
    small = f"{n_base} template run{'' if n_base == 1 else 's'}"
    baseline = time_operations(template_url, base_run, folder, repeats)
    figures: list[Figure] = []
    for backend in ("SQLite", "PostgreSQL"):
        if backend == "PostgreSQL":
            problem = postgres_problem(ctx.pg_url)
            if problem is not None:
                figures += [Figure(NUMBER, f"{op}, {backend}", None, "s", baseline[op][1],
                                   small, target=f"≤ {TARGETS_S[op] * 1000:.0f} ms",
                                   skipped=problem) for op in baseline]
                continue
        with contextlib.ExitStack() as stack:
            if backend == "SQLite":
                url = f"sqlite:///{folder / 'history.db'}"
            else:
                url = stack.enter_context(scratch_postgres(ctx.pg_url))
            ctx.log(f"   {backend}: writing {runs} runs, {runs * per_run} readings")
            seconds, written = populate(url, template, runs, per_run, ctx.log)
            ctx.log(f"   {backend}: written in {seconds:.1f} s")
            # A run from the middle of the history, a copy of the baseline's run.
            run_id = runs // 2 - (runs // 2) % n_base + index + 1
            got = time_operations(url, run_id, folder, repeats)
        for op, (first, warm, cpu) in got.items():
            target = TARGETS_S[op]
            base_first, base_warm, base_cpu = baseline[op]
            figures.append(Figure(
                NUMBER, f"{op}, {backend}, {runs} runs", warm, "s", base_warm,
                small, warm / base_warm, f"at scale ÷ {small}",
                f"≤ {target * 1000:.0f} ms", warm <= target,
                note=(f"median of {repeats} after a first call of "
                      f"{first * 1000:.0f} ms ({small}: {base_first * 1000:.0f} ms); CPU "
                      f"{cpu * 1000:.0f} ms ({small}: {base_cpu * 1000:.0f} ms); database "
                      f"of {runs} runs and {written} readings written in {seconds:.0f} s "
                      "with Core bulk inserts; `benchctl "
                      + " ".join(a if not a.startswith(("sqlite", "postgresql", "/"))
                                 else "…" for a in operations("URL", run_id, folder)[op])
                      + "`"),
                details={"first_s": first, "median_s": warm, "cpu_s": cpu, "runs": runs,
                         "readings": written, "populate_s": seconds}))
    return figures

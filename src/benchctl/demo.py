"""``benchctl demo``: the bundled jobs on simulated instruments, in under a minute.

For each job of ``demo_data/demos.toml``: start its simulators in process, register its
references and DUT, run the procedure in each mode with the simulated operator, print the
result table and write the certificates.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any


def demo_jobs() -> list[dict[str, Any]]:
    pkg = resources.files("benchctl") / "demo_data"
    data = tomllib.loads((pkg / "demos.toml").read_text(encoding="utf-8"))
    return list(data["demo"])


def copy_demo_files(out: Path, jobs: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pkg = resources.files("benchctl") / "demo_data"
    names = {n for job in jobs for n in (job["bench"], job["dut"], *job.get("files", []))}
    for name in sorted(names):
        with resources.as_file(pkg / name) as src:
            shutil.copyfile(src, out / name)


def run_demo(args: argparse.Namespace) -> int:
    from .commands import format_table, simulated_bench, start_bench_simulation
    from .config import load_bench
    from .engine.operators import SimulatedOperator
    from .engine.runner import RunOptions, start_run
    from .reports import write_report
    from .reports.certificate import write_html
    from .reports.document import run_document
    from .store import open_database

    t0 = time.monotonic()
    out = Path(args.out).resolve()
    jobs = demo_jobs()
    only = getattr(args, "only", None)
    if only:
        jobs = [j for j in jobs if j["name"] in only]
    copy_demo_files(out, jobs)
    db_url = args.db or f"sqlite:///{out / 'benchctl-demo.db'}"
    db = open_database(db_url)
    written: list[Path] = []
    status = 0
    for job in jobs:
        bench = load_bench(out / job["bench"])
        # A job whose simulated process is long (deliveries at Qmin) may run faster still.
        speed = args.speed * float(job.get("speed_factor", 1.0))
        sim = start_bench_simulation(bench, speed)
        try:
            sim_bench = simulated_bench(bench, sim)
            print(f"\n### {job['title']}")
            print("simulators: " + ", ".join(f"{n} at {r}" for n, r in sim.resources.items()))
            # ``runs``: one run per parameter list (e.g. the two methods of one procedure).
            runs = [(mode, list(params)) for mode in job["modes"]
                    for params in job.get("runs", [job.get("params", [])])]
            for mode, params in runs:
                shown = f", {' '.join(params)}" if "runs" in job else ""
                print(f"\n== {job['procedure']}, {mode}{shown} ==", flush=True)
                opts = RunOptions(bench=sim_bench, operator=SimulatedOperator(
                    sim.control_address), db=db, speed=speed, listeners=[])
                outcome = start_run(job["procedure"], str(out / job["dut"]), mode,
                                    params, opts)
                doc = run_document(db, outcome.run_id)
                print(format_table(doc), flush=True)
                for lang in ("vi", "en"):
                    path = out / f"certificate-run{outcome.run_id}-{lang}.html"
                    write_html(doc, path, lang=lang)
                    written.append(path)
                # The PDF in the bench's language: drafts until a signatory approves the run.
                pdf = out / f"certificate-run{outcome.run_id}-vi.pdf"
                write_report(db, outcome.run_id, "pdf", pdf, lang="vi", folder=out)
                written.append(pdf)
                if outcome.state != "completed":
                    print(f"run {outcome.run_id} {outcome.state}: {outcome.message}",
                          file=sys.stderr)
                    status = 1
        finally:
            sim.stop()
    print(f"\ndatabase:     {db.url_masked}")
    for p in written:
        print(f"certificate:  {p}")
    print(f"demo finished in {time.monotonic() - t0:.1f} s")
    return status

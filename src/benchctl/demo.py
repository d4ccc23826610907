"""``benchctl demo``: the whole balance job on simulated instruments, in under a minute.

Starts the simulators in process, registers the demo weight set and balance, runs the balance
procedure in verification and in calibration mode with the simulated operator, prints the
result tables and writes the certificates.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from importlib import resources
from pathlib import Path

DEMO_FILES = ("demo-bench.toml", "demo-weights-F1.toml", "demo-balance.toml")


def copy_demo_files(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pkg = resources.files("benchctl") / "demo_data"
    for name in DEMO_FILES:
        with resources.as_file(pkg / name) as src:
            shutil.copyfile(src, out / name)


def run_demo(args: argparse.Namespace) -> int:
    from .commands import format_table, simulated_bench, start_bench_simulation
    from .config import load_bench
    from .engine.operators import SimulatedOperator
    from .engine.runner import RunOptions, start_run
    from .progress import ProgressPrinter
    from .reports.certificate import write_html
    from .reports.document import run_document
    from .store import open_database

    t0 = time.monotonic()
    out = Path(args.out).resolve()
    copy_demo_files(out)
    db_url = args.db or f"sqlite:///{out / 'benchctl-demo.db'}"
    db = open_database(db_url)
    bench = load_bench(out / "demo-bench.toml")
    sim = start_bench_simulation(bench, args.speed)
    written: list[Path] = []
    status = 0
    try:
        sim_bench = simulated_bench(bench, sim)
        print("simulators: " + ", ".join(f"{n} at {r}" for n, r in sim.resources.items()))
        for mode in ("verify", "calibrate"):
            print(f"\n== nawi_balance, {mode} ==", flush=True)
            operator = SimulatedOperator(sim.control_address)
            opts = RunOptions(bench=sim_bench, operator=operator, db=db, speed=args.speed,
                              listeners=[ProgressPrinter(sys.stderr, live=False)]
                              if getattr(args, "verbose", False) else [],
                              handle_signals=True)
            outcome = start_run("nawi_balance", str(out / "demo-balance.toml"), mode, [], opts)
            doc = run_document(db, outcome.run_id)
            print(format_table(doc))
            for lang in ("vi", "en"):
                path = out / f"certificate-run{outcome.run_id}-{lang}.html"
                write_html(doc, path, lang=lang)
                written.append(path)
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

"""Run the benchmarks, print every figure, and write the Markdown table (``docs/benchmarks.md``).

Each figure module has ``NAME``, ``TITLE`` and ``run(ctx) -> list[Figure]``. A module that
raises becomes an error row (and exit status 1), so a broken benchmark is noticed by the smoke
test instead of silently dropping out of the table; a figure that cannot be measured here (no
PostgreSQL server, no QCoDeS) is a row that says why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .common import (
    DEFAULT_PG_URL,
    DEFAULT_QCODES_PYTHON,
    ROOT,
    Context,
    Figure,
    postgres_version,
    sig,
)

#: name -> module, in the order of the issue's figures.
BENCHMARKS: dict[str, str] = {
    "driver": "benchmarks.driver_overhead",
    "skew": "benchmarks.sampling",
    "store": "benchmarks.store",
    "procedures": "benchmarks.procedures",
    "tui": "benchmarks.tui",
    "startup": "benchmarks.startup",
    "history": "benchmarks.history",
}

DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
README = ROOT / "README.md"
#: The README shows the last full run's table between these two lines, rewritten by a full
#: ``make bench`` so that it can never drift from docs/benchmarks.md.
README_START = "<!-- benchmarks table: written by make bench -->"
README_END = "<!-- end of the benchmarks table -->"

PACKAGES = ("benchctl", "pyserial", "PyVISA", "PyVISA-py", "pymodbus", "SQLAlchemy", "textual",
            "psycopg", "alembic", "fpdf2", "numpy")


# -- the machine ----------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return None


def machine() -> dict[str, Any]:
    mem = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": cores(),
        "ram": f"{mem:.1f} GiB" if mem is not None else "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
    }


def versions(ctx: Context) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    out["PostgreSQL server"] = postgres_version(ctx.pg_url) or "not reachable"
    out["QCoDeS (baseline, own venv)"] = qcodes_version(ctx.qcodes_python)
    return out


def qcodes_version(python: str) -> str:
    if not Path(python).exists():
        return f"not installed ({python} does not exist)"
    proc = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('qcodes'))"],
        capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return "not installed"
    return proc.stdout.strip()


# -- the table ------------------------------------------------------------------------------------

def _value(f: Figure) -> str:
    return f"{sig(f.value)} {f.unit}".strip() if f.value is not None else "—"


def _baseline(f: Figure) -> str:
    if f.baseline is None:
        return f.baseline_label or "—"
    text = f"{sig(f.baseline)} {f.unit}".strip()
    return f"{text} ({f.baseline_label})" if f.baseline_label else text


def _ratio(f: Figure) -> str:
    if f.ratio is None:
        return "—"
    return f"{sig(f.ratio)} ({f.ratio_label})" if f.ratio_label else sig(f.ratio)


def _result(f: Figure) -> str:
    if f.skipped:
        return f"not measured: {f.skipped}"
    if f.met is None:
        return f"not judged: {f.unjudged}" if f.unjudged else "—"
    return "**met**" if f.met else "**missed**"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def figures_table(figures: list[Figure]) -> str:
    lines = ["| # | figure | value | baseline | ratio | target | result |",
             "|---|---|---|---|---|---|---|"]
    for f in figures:
        cells = [str(f.number), f.label, _value(f), _baseline(f), _ratio(f), f.target,
                 _result(f)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def readme_with_table(readme: str, figures: list[Figure], info: dict[str, Any]) -> str:
    """The README with its benchmarks block replaced by this run's table; unchanged when the
    README has no such block (a fork that removed it keeps its own text)."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        return readme
    m = info["machine"]
    block = (f"{README_START}\n\nThe last run ({info['date']}, {m['cores']} cores, load average "
             f"{sig(info.get('load_start'))} at the start; ratios are what to read):\n\n"
             f"{figures_table(figures)}\n\n")
    return readme[:start] + block + readme[end:]


def markdown(figures: list[Figure], info: dict[str, Any]) -> str:
    m = info["machine"]
    load0, load1 = info.get("load_start"), info.get("load_end")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`python -m benchmarks{' --quick' if info['quick'] else ''}`)"
        f" on {info['date']}, {sig(info['seconds'])} s in all. Every figure is compared with a "
        "baseline measured in the same run on the same machine; the ratio is what to read.",
        "",
    ]
    busy = load0 is not None and load0 > 0.5 * m["cores"]
    if busy or info.get("note"):
        text = info.get("note") or ""
        if busy:
            text = (f"This machine was shared while the suite ran (load average {sig(load0)} "
                    f"at the start, {sig(load1)} at the end, on {m['cores']} cores): absolute "
                    "times are inflated and noisy; the ratios against baselines taken in the "
                    "same run are what matter. " + text)
        lines += [f"> {text.strip()}", ""]
    if info["quick"]:
        lines += ["> `--quick`: tiny sizes for the smoke test; these numbers mean nothing.", ""]
    lines += ["## Machine", "", "| | |", "|---|---|",
              f"| CPU | {m['cpu']} ({m['cores']} cores available) |",
              f"| RAM | {m['ram']} |",
              f"| OS | {m['os']} |",
              f"| Python | {m['python']} |",
              f"| load average (1 min) | {sig(load0)} at the start, {sig(load1)} at the end |",
              "", "## Versions", "", "| package | version |", "|---|---|"]
    lines += [f"| {name} | {ver} |" for name, ver in info["versions"].items()]
    lines += ["", "## Figures", "", figures_table(figures), "", "## Notes", ""]
    for f in figures:
        if f.note:
            lines.append(f"- **{f.number}. {f.label}**: {f.note}")
    lines.append("")
    return "\n".join(lines)


# -- running ------------------------------------------------------------------------------------

def run_benchmarks(names: list[str], ctx: Context) -> tuple[list[Figure], list[str]]:
    """Run the named benchmarks; (figures, errors)."""
    figures: list[Figure] = []
    errors: list[str] = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        number = int(getattr(module, "NUMBER", 0))
        ctx.log(f"== {number}. {module.TITLE}")
        t0 = time.monotonic()
        try:
            got: list[Figure] = module.run(ctx)
        except Exception as exc:
            detail = traceback.format_exc()
            ctx.log(detail)
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            got = [Figure(number, module.TITLE, None, "", skipped=None,
                          note=f"the benchmark failed: {type(exc).__name__}: {exc}")]
        for f in got:
            ctx.log(f"   {f.label}: {_value(f)} | baseline {_baseline(f)} | ratio {_ratio(f)} | "
                    f"target {f.target or '—'} | {_result(f).replace('**', '')}")
        ctx.log(f"   ({time.monotonic() - t0:.1f} s)")
        figures.extend(got)
    return figures, errors


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (the smoke test): checks that every benchmark still works")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help=f"run only this benchmark ({', '.join(BENCHMARKS)}); repeatable")
    p.add_argument("--out", default=None, metavar="FILE",
                   help=f"Markdown file to write (default {DEFAULT_OUT.relative_to(ROOT)} and "
                   "the README's table, for a full run; with --quick or --only nothing is "
                   "written unless --out is given)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--postgres", default=DEFAULT_PG_URL, metavar="URL",
                   help="PostgreSQL server for the store and history figures "
                   "(scratch databases are created there and dropped)")
    p.add_argument("--qcodes-python", default=DEFAULT_QCODES_PYTHON, metavar="PYTHON",
                   help="interpreter of the environment QCoDeS is installed in (store baseline)")
    p.add_argument("--note", default="", help="a sentence to put at the top of the Markdown")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names: list[str] = []
    for item in args.only:
        for name in item.split(","):
            name = name.strip()
            if name not in BENCHMARKS:
                print(f"--only {name}: no such benchmark; expected one of "
                      f"{', '.join(BENCHMARKS)}", file=sys.stderr)
                return 2
            names.append(name)
    names = [n for n in BENCHMARKS if n in names] or list(BENCHMARKS)  # the order
    started = time.monotonic()
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="benchctl-bench-") as tmp:
        ctx = Context(quick=args.quick, workdir=Path(tmp), pg_url=args.postgres,
                      qcodes_python=args.qcodes_python)
        figures, errors = run_benchmarks(names, ctx)
        info = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": args.quick,
            "machine": machine(),
            "versions": versions(ctx),
            "load_start": load_start,
            "load_end": loadavg(),
            "seconds": time.monotonic() - started,
            "note": args.note,
            "benchmarks": names,
        }
    text = markdown(figures, info)
    print(figures_table(figures))
    full = not args.quick and not args.only
    out = args.out or (str(DEFAULT_OUT) if full else None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        print(f"written: {out}", file=sys.stderr)
    if full and args.out is None and README.exists():
        readme = README.read_text(encoding="utf-8")
        updated = readme_with_table(readme, figures, info)
        if updated != readme:
            README.write_text(updated, encoding="utf-8")
            print(f"written: {README.name} (its benchmarks table)", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"info": info, "figures": [f.as_dict() for f in figures], "errors": errors},
            indent=2, default=str), encoding="utf-8")
    for error in errors:
        print(f"benchmark failed: {error}", file=sys.stderr)
    return 1 if errors else 0

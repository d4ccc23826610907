"""Figure 6: start-up, ``benchctl --help`` against ``python -c pass``.

A technician types ``benchctl`` many times a day, and automation calls it in loops; the
command line imports only what the chosen command needs (SQLAlchemy, pyvisa, Textual and the
like are imported inside the commands). Both commands run as fresh processes, alternately,
and the median wall time of each is taken. The figure also lists the slowest imports of
``benchctl --help`` (``python -X importtime``), which is where a regression shows first.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .common import Context, Figure, interleaved, median

NAME = "startup"
NUMBER = 6
TITLE = "Start-up: benchctl --help against python -c pass"

TARGET_S = 0.3


def benchctl_command() -> list[str]:
    """The console script next to this interpreter (what a technician runs), else ``-m``."""
    script = Path(sys.executable).with_name("benchctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "benchctl.cli"]


def cached_env(folder: Path) -> dict[str, str]:
    """The environment of an installed benchctl: compiled bytecode is written and reused.

    Some shells (CI, sandboxes) set PYTHONDONTWRITEBYTECODE, and then every start compiles
    benchctl's modules again; the bytecode goes to a folder of the benchmark's own rather
    than next to the sources.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(folder)
    return env


def _wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
                          env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def slowest_imports(env: dict[str, str], top: int = 5) -> list[tuple[str, float]]:
    """(module, cumulative ms) of the slowest top-level imports of ``benchctl --help``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "benchctl.cli", "--help"],
                          capture_output=True, text=True, timeout=60, env=env)
    found: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)", line)
        if m and len(m.group(2)) == 1:  # top level only: nested ones are inside these
            found.append((m.group(3), int(m.group(1)) / 1000))
    return sorted(found, key=lambda x: -x[1])[:top]


def run(ctx: Context) -> list[Figure]:
    rounds = ctx.size(15, 2)
    help_cmd = [*benchctl_command(), "--help"]
    pass_cmd = [sys.executable, "-c", "pass"]
    env = cached_env(Path(ctx.workdir) / "pycache")
    _wall(help_cmd, env)  # writes the bytecode, and reads the files into the OS cache
    _wall(pass_cmd, env)
    ours, baseline = interleaved(rounds, lambda: _wall(help_cmd, env),
                                 lambda: _wall(pass_cmd, env))
    value, base = median(ours), median(baseline)
    uncached = ""
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        plain = median([_wall(help_cmd) for _ in range(max(3, rounds // 3))])
        uncached = (f"; this shell sets PYTHONDONTWRITEBYTECODE, and without bytecode "
                    f"benchctl --help takes {plain:.3f} s")
    imports = ", ".join(f"{name} {ms:.0f} ms" for name, ms in slowest_imports(env))
    return [Figure(
        NUMBER, "start-up, benchctl --help", value, "s", base, "python -c pass",
        value / base, "benchctl ÷ python", f"≤ {TARGET_S:g} s", value <= TARGET_S,
        note=(f"median of {rounds} alternating starts of each, bytecode compiled once as an "
              f"installed package has it; benchctl's own share (the difference) "
              f"{(value - base) * 1000:.0f} ms; slowest top-level imports: {imports}"
              f"{uncached}"),
        details={"benchctl": ours, "python": baseline})]

"""Figure 5: the TUI with 16 live instruments at 10 Hz: CPU, and key press to screen update.

benchctl's TUI runs in a process of its own (:mod:`benchmarks.tui_child`), headless, on a
bench file of 16 instruments (MT-SICS and A&D balances, Modbus gauges, PACE controllers over
VISA, Coriolis meters over Modbus) read live at 10 readings per second each; the simulators
run in another process, so the CPU measured is the TUI's: its UI thread and its 16 poller
threads with their drivers and transports. Then keys that change the screen (F2…F5) and the
language (F8) are pressed, each timed from the key event to the screen update that makes the
terminal show its effect: the updates the driver would write are replayed on a model of the
terminal afterwards, and the press counts as shown when the terminal holds the new screen's
title and footer in the right language (updates Textual holds back, as during the 50 ms it
pauses after a screen switch, are never written and do not count).

The baseline is a bare Textual app of the same shape in the same harness: four screens, a
16-row table whose values change at the same rate (made up in process: no instruments), and
the same keys. The ratio says what benchctl adds to what Textual itself costs.
"""


from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .common import ROOT, Context, Figure, SimProcess, bench_toml, median, percentile

NAME = "tui"
NUMBER = 5
TITLE = "TUI: 16 instruments at 10 Hz, headless: CPU and key press to screen update"

TARGET_CPU_PERCENT = 25.0
TARGET_LATENCY_S = 0.050
RATE_HZ = 10.0

#: (simulator table, bench table without resource) per instrument kind, and how many.
KINDS: tuple[tuple[str, int, dict[str, Any], dict[str, Any]], ...] = (
    ("sics", 6, {"type": "mettler_sics", "max": 220.0, "d": 0.0001, "noise": 0.0002},
     {"driver": "mettler_sics"}),
    ("and", 2, {"type": "and_balance", "max": 620.0, "d": 0.01, "noise": 0.002},
     {"driver": "and_balance"}),
    ("gauge", 4, {"type": "modbus_pressure_gauge", "unit": "bar", "noise": 0.0002},
     {"driver": "modbus_pressure_gauge", "unit": "bar"}),
    ("pace", 2, {"type": "druck_pace", "full_scale": 2000.0, "unit": "kPa", "noise": 0.002},
     {"driver": "druck_pace"}),
    ("coriolis", 2, {"type": "micromotion_modbus"}, {"driver": "micromotion_modbus"}),
)


def instruments(quick: bool = False) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """name -> (simulator table, bench table); with ``quick``, one instrument of each kind."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for prefix, count, sim, table in KINDS:
        for i in range(1, (1 if quick else count) + 1):
            out[f"{prefix}{i}"] = (dict(sim), dict(table))
    return out


def child(ctx: Context, args: list[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.tui_child", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the TUI process failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-1500:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> list[Figure]:
    seconds = ctx.size(30, 1)
    rounds = ctx.size(3, 1)
    extra = ["--keys", "f4,f2", "--settle", "0.2"] if ctx.quick else []
    insts = instruments(ctx.quick)
    timeout = seconds + 180
    with SimProcess({n: s for n, (s, _t) in insts.items()}, speed=1.0, seed=1) as sim:
        tables = {n: {**t, "resource": sim.resources[n]} for n, (_s, t) in insts.items()}
        path = Path(ctx.workdir) / "tui-bench.toml"
        path.write_text(bench_toml("TUI benchmark bench", tables), encoding="utf-8")
        db = f"sqlite:///{Path(ctx.workdir) / 'tui.db'}"
        sims_cpu0 = sim.cpu_seconds()
        ours = child(ctx, ["--app", "benchctl", "--bench", str(path), "--db", db,
                           "--rate", str(RATE_HZ), "--seconds", str(seconds), "--rounds",
                           str(rounds), "--instruments", str(len(insts)), *extra], timeout)
        sims_cpu = sim.cpu_seconds() - sims_cpu0
    bare = child(ctx, ["--app", "bare", "--rate", str(RATE_HZ), "--seconds", str(seconds),
                       "--rounds", str(rounds), "--instruments", str(len(insts)), *extra],
                 timeout)
    cpu, base_cpu = float(ours["cpu_percent"]), float(bare["cpu_percent"])
    lat = [float(x) for x in ours["latencies_s"]]
    base_lat = [float(x) for x in bare["latencies_s"]]
    rate = ours["samples_per_s"] / len(insts) if ours.get("samples_per_s") else 0.0
    keys, base_keys = per_key(ours["keys"], lat), per_key(bare["keys"], base_lat)
    lat_value, base_value = percentile(lat, 90), percentile(base_lat, 90)
    return [
        Figure(NUMBER, f"TUI CPU, {len(insts)} instruments at {RATE_HZ:g} Hz", cpu,
               "% of a core", base_cpu,
               f"bare Textual app, {len(insts)}-row table at {RATE_HZ:g} Hz",
               cpu / base_cpu if base_cpu else None,
               "benchctl ÷ bare", f"≤ {TARGET_CPU_PERCENT:g} %", cpu <= TARGET_CPU_PERCENT,
               note=(f"{seconds} s window after all {len(insts)} instruments read; CPU by "
                     "thread: "
                     + ", ".join(f"{k} {v:.1f} %" for k, v in
                                 ours["cpu_percent_by_thread"].items())
                     + f" (bare app: {base_cpu:.1f} %, all UI); {rate:.1f} readings/s "
                     f"per instrument achieved ({ours['samples_per_s']:.0f}/s in all), "
                     f"{ours['ticks_per_s']:.1f} UI ticks/s, median tick "
                     f"{(ours['tick_median_s'] or 0) * 1000:.1f} ms; the simulators' own "
                     f"process used {100 * sims_cpu / max(ours['wall_s'], 1e-9):.0f} % "
                     "(not counted)"),
               details={"benchctl": ours, "bare": bare}),
        Figure(NUMBER, "TUI key press to screen update (p90)", lat_value * 1000, "ms",
               base_value * 1000, "bare Textual app, same keys",
               lat_value / base_value if base_value else None, "benchctl ÷ bare",
               f"≤ {TARGET_LATENCY_S * 1000:.0f} ms", lat_value <= TARGET_LATENCY_S,
               note=(f"{len(lat)} key presses ({', '.join(ours['keys'][:len(lat) // rounds])}"
                     f" × {rounds}) while the instruments keep reading; median "
                     f"{median(lat) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms; per key "
                     f"(median / p90): {keys}; bare app median {median(base_lat) * 1000:.0f} "
                     f"ms, max {max(base_lat) * 1000:.0f} ms, per key {base_keys}; each from "
                     "the key event to the first update written that makes the terminal show "
                     "the new screen or language (Textual's switch_mode holds updates for "
                     "50 ms, which the bare app pays on every switch)")),
    ]


def per_key(keys: list[str], latencies: list[float]) -> str:
    """"f4 12/30 ms, ...": median and p90 of each key, in the order first pressed."""
    by_key: dict[str, list[float]] = {}
    for key, t in zip(keys, latencies, strict=True):
        by_key.setdefault(key, []).append(t)
    return ", ".join(f"{k} {median(v) * 1000:.0f}/{percentile(v, 90) * 1000:.0f} ms"
                     for k, v in by_key.items())

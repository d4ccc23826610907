"""Figure 2: how far apart in time are a reference reading and a DUT reading taken together?

Through the engine's own path: the bench's instruments opened by ``open_bench`` (one worker
thread each) and read by ``RunContext.read_together``, exactly as a procedure does; the skew
is the difference of the two readings' timestamps, as the procedure stores it. The baseline
reads the same two instruments one after the other (``ctx.call`` then ``ctx.call``), the way a
single-threaded program would. Simulators run in a process of their own, over loopback.

Two pairs: the pressure bench (PACE controller over a VISA socket, gauge over Modbus TCP) and
the dispenser bench (the dispenser's console link, the Coriolis master meter's totals over
Modbus TCP).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .common import Context, Figure, SimProcess, bench_toml, median, percentile

NAME = "skew"
NUMBER = 2
TITLE = "Simultaneous sampling: time skew of reference and DUT readings taken together"

TARGET_MS = 2.0

PAIRS: tuple[tuple[str, dict[str, Any], tuple[str, str], tuple[str, str]], ...] = (
    ("pressure bench: PACE (VISA) + gauge (Modbus TCP)", {
        "controller": {"sim": {"type": "druck_pace", "transport": "tcp", "full_scale": 2000.0,
                               "unit": "kPa", "noise": 0.002},
                       "bench": {"driver": "druck_pace", "role": "reference"}},
        "gauge": {"sim": {"type": "modbus_pressure_gauge", "transport": "tcp", "unit": "bar"},
                  "bench": {"driver": "modbus_pressure_gauge", "role": "dut", "unit": "bar"}},
    }, ("controller", "read"), ("gauge", "read")),
    ("dispenser bench: console link + Coriolis totals (Modbus TCP)", {
        "dispenser": {"sim": {"type": "sim_dispenser"},
                      "bench": {"driver": "sim_dispenser", "role": "dut"}},
        "master_meter": {"sim": {"type": "micromotion_modbus", "transport": "tcp",
                                 "float_order": 1},
                         "bench": {"driver": "micromotion_modbus", "role": "reference",
                                   "word_order": "little"}},
    }, ("dispenser", "delivery"), ("master_meter", "read_totals")),
)


def _timestamp(value: Any) -> Any:
    """The time a reading was taken: a Reading's, a Delivery's volume's, FlowTotals' mass."""
    for attr in ("timestamp",):
        if hasattr(value, attr):
            return getattr(value, attr)
    for attr in ("volume", "mass"):
        inner = getattr(value, attr, None)
        if inner is not None and hasattr(inner, "timestamp"):
            return inner.timestamp
    raise TypeError(f"no timestamp in {value!r}")


async def _measure(bench: Any, control: str | None, a: tuple[str, str], b: tuple[str, str],
                   pairs: int) -> tuple[list[float], list[float]]:
    from benchctl.engine.clock import RunClock
    from benchctl.engine.context import RunContext, RunInfo
    from benchctl.engine.handles import open_bench
    from benchctl.engine.operators import SimulatedOperator
    from benchctl.engine.states import StateMachine

    handles = await asyncio.to_thread(open_bench, bench, None)
    operator = SimulatedOperator(control) if control else None
    try:
        # read_together and call touch neither the store nor the operator's questions.
        ctx = RunContext(RunInfo(0, "benchmark", "calibrate", {}, "en", None),
                         clock=RunClock(1.0), operator=operator,  # type: ignore[arg-type]
                         instruments=dict(handles), store=None, done={},
                         state=StateMachine())
        together: list[float] = []
        one_by_one: list[float] = []
        for _ in range(5):  # warm the worker threads and connections up
            await ctx.read_together(a, b)
        for _ in range(pairs):
            first, second = await ctx.read_together(a, b)
            together.append(abs((_timestamp(second) - _timestamp(first)).total_seconds()))
            first = await ctx.call(*a)
            second = await ctx.call(*b)
            one_by_one.append(abs((_timestamp(second) - _timestamp(first)).total_seconds()))
        return together, one_by_one
    finally:
        for h in handles.values():
            h.close()
        if operator is not None:
            await operator.close()


def run(ctx: Context) -> list[Figure]:
    from benchctl import library
    from benchctl.config import load_bench

    library.configure([])
    pairs = ctx.size(400, 10)
    figures: list[Figure] = []
    sims = {name: spec["sim"] for _l, instruments, _a, _b in PAIRS
            for name, spec in instruments.items()}
    with SimProcess(sims, speed=1.0, seed=1) as sim:
        for label, instruments, a, b in PAIRS:
            tables = {name: {**spec["bench"], "resource": sim.resources[name]}
                      for name, spec in instruments.items()}
            path = Path(ctx.workdir) / f"skew-{a[0]}.toml"
            path.write_text(bench_toml(f"skew {a[0]}", tables), encoding="utf-8")
            bench = load_bench(path)
            together, one_by_one = asyncio.run(_measure(bench, sim.control, a, b, pairs))
            value, baseline = median(together) * 1000, median(one_by_one) * 1000
            figures.append(Figure(
                NUMBER, f"skew, {label}", value, "ms", baseline, "read one after the other",
                baseline / value if value > 0 else None, "one after the other ÷ together",
                f"median ≤ {TARGET_MS:g} ms", value <= TARGET_MS,
                note=(f"{pairs} pairs each way, {a[0]}.{a[1]}() with "
                      f"{b[0]}.{b[1]}(); together p90 {percentile(together, 90) * 1000:.2f} "
                      f"ms, max {max(together) * 1000:.2f} ms; one after the other p90 "
                      f"{percentile(one_by_one, 90) * 1000:.2f} ms"),
                details={"together_s": together, "one_by_one_s": one_by_one}))
    return figures

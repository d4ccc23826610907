"""The store figure's baseline: QCoDeS's DataSaver writing the same points to SQLite.

Runs under the interpreter of the environment QCoDeS is installed in (``make bench`` makes
``.venv/bench-qcodes``), never imports benchctl, and prints one JSON object::

    python benchmarks/qcodes_baseline.py DB_PATH POINTS WRITE_PERIOD

Each point is what benchctl stores for a point read together: a time, the reference and DUT
values, and each one's raw reply (as text). ``write_period`` is how long the DataSaver may
keep results in memory; it is set to the durability the figure asks for, so QCoDeS is held to
the same promise. A result is durable when the flush that follows it returns: the latency of
each is measured from its ``add_result`` to the end of that flush.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time


def main(argv: list[str]) -> int:
    path, points, write_period = argv[0], int(argv[1]), float(argv[2])
    t_import = time.perf_counter()
    from qcodes.dataset import (
        Measurement,
        initialise_or_create_database_at,
        load_or_create_experiment,
    )

    import_s = time.perf_counter() - t_import
    initialise_or_create_database_at(path)
    exp = load_or_create_experiment("benchctl store benchmark", sample_name="dut")
    meas = Measurement(exp=exp, name="points")
    meas.register_custom_parameter("t", unit="s")
    for name in ("ref", "dut"):
        meas.register_custom_parameter(name, unit="g", setpoints=("t",))
        meas.register_custom_parameter(f"{name}_raw", setpoints=("t",), paramtype="text")
    meas.write_period = write_period
    latencies: list[float] = []
    pending: list[float] = []
    started = time.perf_counter()
    with meas.run() as saver:
        last_save = saver._last_save_time
        for i in range(points):
            now = time.time()
            ref, dut = 100.0 + i * 1e-4, 100.01 + i * 1e-4
            added = time.perf_counter()
            saver.add_result(("t", now), ("ref", ref), ("dut", dut),
                             ("ref_raw", f"S S {ref:10.4f} g"), ("dut_raw", f"S S {dut:10.2f} g"))
            pending.append(added)
            if saver._last_save_time != last_save:  # this call flushed everything pending
                last_save = saver._last_save_time
                done = time.perf_counter()
                latencies += [done - a for a in pending]
                pending.clear()
    done = time.perf_counter()  # leaving the block flushed the rest
    latencies += [done - a for a in pending]
    seconds = done - started
    with sqlite3.connect(path) as conn:
        synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    import qcodes

    print(json.dumps({
        "qcodes": qcodes.__version__, "points": points, "readings": 2 * points,
        "seconds": seconds, "readings_per_s": 2 * points / seconds,
        "latency_max_s": max(latencies), "latency_p99_s": sorted(latencies)[
            max(0, round(0.99 * len(latencies)) - 1)],
        "latency_median_s": sorted(latencies)[max(0, round(0.5 * len(latencies)) - 1)],
        "write_period_s": write_period, "import_s": import_s,
        "journal_mode": journal, "synchronous": synchronous}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

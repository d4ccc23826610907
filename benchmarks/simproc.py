"""Run simulators in this process until stdin closes: ``python -m benchmarks.simproc SPEC``.

SPEC is JSON: ``{"instruments": {name: simulator table}, "speed": N, "seed": S, "cpus": [..]}``
(the ``[instruments.NAME.simulator]`` tables of a bench file; ``cpus``, optional: the CPUs
every simulator thread runs on). Prints one JSON line with the
resource strings and the control address, then serves until its parent closes stdin (or dies).
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    from benchctl import library

    spec = json.loads(argv[0])
    if spec.get("cpus"):
        # Before any simulator thread exists: threads inherit the CPUs of their creator.
        os.sched_setaffinity(0, set(spec["cpus"]))
    library.configure([])
    bench = library.load("simulators", "bench")
    sim = bench.start_simulation(spec["instruments"], speed=float(spec.get("speed", 1.0)),
                                 seed=int(spec.get("seed", 1)))
    try:
        print(json.dumps({"resources": sim.resources, "control": sim.control_address}),
              flush=True)
        sys.stdin.read()  # returns when the parent closes the pipe or exits
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

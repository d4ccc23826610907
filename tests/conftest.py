"""Shared fixtures: a simulated balance bench and the bench files that point at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchhelp import BALANCE_SIM, DUT, ROOM_SIM, WEIGHTS, bench_text


@pytest.fixture
def simulation() -> Iterator[Any]:
    """The balance and the room monitor, simulated in this process at speed 100."""
    from benchctl import library

    library.configure([])
    sim_bench = library.load("simulators", "bench")
    sim = sim_bench.start_simulation({"balance": dict(BALANCE_SIM), "room": dict(ROOM_SIM)},
                                     speed=100.0, seed=3)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def bench_dir(tmp_path: Path, simulation: Any) -> Path:
    """A folder with bench.toml (pointing at ``simulation``), weights.toml and dut.toml."""
    (tmp_path / "weights.toml").write_text(WEIGHTS, encoding="utf-8")
    (tmp_path / "dut.toml").write_text(DUT, encoding="utf-8")
    (tmp_path / "bench.toml").write_text(
        bench_text(dict(simulation.resources), control=simulation.control_address,
                   db=f"sqlite:///{tmp_path / 'bench.db'}"), encoding="utf-8")
    return tmp_path

"""The session fixture ``runs``: real balance runs on the simulated bench, made once for all
report tests (test modules load it with ``pytest_plugins = ("reportsplugin",)``).

The DUT, the weight set's certificate and the bench name carry hostile and Vietnamese text
(see reportshelp), so every report test also exercises escaping and diacritics on data that
went through the real engine and store.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from benchhelp import BALANCE_SIM, ROOM_SIM, WEIGHTS, bench_text
from reportshelp import BENCH_NAME, ISSUER, Runs, dut_text, toml_text


@pytest.fixture(scope="session", name="runs")
def runs_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """A calibration and a verification of the hostile balance, in one SQLite database."""
    from benchctl import library
    from benchctl.config import load_bench
    from benchctl.engine.operators import SimulatedOperator
    from benchctl.engine.runner import RunOptions, start_run
    from benchctl.store import open_database

    folder = tmp_path_factory.mktemp("reports")
    library.configure([])
    sim_bench = library.load("simulators", "bench")
    sim = sim_bench.start_simulation({"balance": dict(BALANCE_SIM), "room": dict(ROOM_SIM)},
                                     speed=100.0, seed=3)
    try:
        (folder / "weights.toml").write_text(
            WEIGHTS.replace('issuer = "Vietnam Metrology Institute (VMI)"',
                            f"issuer = {toml_text(ISSUER)}"), encoding="utf-8")
        (folder / "dut.toml").write_text(dut_text(), encoding="utf-8")
        db_url = f"sqlite:///{folder / 'bench.db'}"
        text = bench_text(dict(sim.resources), control=sim.control_address, db=db_url)
        text = text.replace('name = "Test bench"', f"name = {toml_text(BENCH_NAME)}")
        (folder / "bench.toml").write_text(text, encoding="utf-8")
        bench = load_bench(folder / "bench.toml")
        db = open_database(db_url)
        ids = {}
        for mode in ("calibrate", "verify"):
            opts = RunOptions(bench=bench, operator=SimulatedOperator(sim.control_address),
                              db=db, speed=100.0, handle_signals=False)
            outcome = start_run("nawi_balance", str(folder / "dut.toml"), mode,
                                ["loads=5,2000,3100,6200", "rep_n=3"], opts)
            assert outcome.state == "completed", outcome.message
            ids[mode] = outcome.run_id
        yield Runs(folder, db_url, ids["calibrate"], ids["verify"])
    finally:
        sim.stop()

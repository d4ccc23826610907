"""The worked example of docs/extending.md runs as documented: a centre's own driver,
simulator and procedure, loaded from its own library folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from benchhelp import ROOT

from benchctl import library
from benchctl.commands import simulated_bench, start_bench_simulation
from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, start_run
from benchctl.errors import InstrumentTimeout
from benchctl.reports.document import run_document
from benchctl.store import open_database

SITE = ROOT / "examples" / "site-library"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    dest = tmp_path / "site-library"
    shutil.copytree(SITE, dest, ignore=shutil.ignore_patterns("*.db*", "__pycache__"))
    return dest


def test_worked_example_runs(site: Path) -> None:
    bench = load_bench(site / "bench.toml")
    assert bench.library == (site.resolve(),)
    sim = start_bench_simulation(bench, 50.0)
    try:
        live = simulated_bench(bench, sim)
        db = open_database(live.database)
        opts = RunOptions(bench=live, operator=SimulatedOperator(sim.control_address), db=db,
                          speed=50.0, handle_signals=False)
        outcome = start_run("balance_check", str(site / "dut.toml"), "verify", [], opts)
        assert outcome.state == "completed", outcome.message
        doc = run_document(db, outcome.run_id)
    finally:
        sim.stop()
        library.configure([])
    assert doc["procedure"] == "balance_check"
    assert [p["nominal"] for p in doc["points"]] == pytest.approx([62.0, 310.0, 620.0])
    # The injected linearity (+0.02 g at 620 g) is seen within d/2.
    top = doc["points"][-1]
    assert abs(top["error"] - 0.02) <= 0.005 + 0.001
    assert doc["verdict"] == "pass"


def test_site_modules_load_only_from_configured_folders(site: Path) -> None:
    library.configure([])
    try:
        with pytest.raises(library.LibraryError, match="no driver named 'ohaus_balance'"):
            library.load("drivers", "ohaus_balance")
        with pytest.raises(library.LibraryError, match="not in a configured procedures folder"):
            library.load_file("procedures", site / "procedures" / "balance_check.py")
        library.configure([site])
        assert library.load("drivers", "ohaus_balance").ROLE == "balance"
        assert "balance_check" in library.available("procedures")
    finally:
        library.configure([])


def test_worked_example_driver_drops_a_late_reply() -> None:
    """The example driver's late-reply handling (docs/extending.md), byte for byte: the
    100 g answer to the first IP comes after the timeout; the second IP gets its own 200 g."""
    from replay import ReplayServer

    library.configure([SITE])
    try:
        ohaus = library.load("drivers", "ohaus_balance")
        script = [(b"IP\r\n", [0.5, b"    100.00 g\r\n"]), (b"IP\r\n", b"    200.00 g\r\n")]
        with ReplayServer(script) as srv:
            bal = ohaus.connect("dut", srv.socket_url,
                                {"timeout": 0.3, "baudrate": 9600, "poll_interval": 0.05,
                                 "model": "", "serial": ""})
            try:
                with pytest.raises(InstrumentTimeout):
                    bal.read_now()
                assert bal.read_now().value == 200.0
            finally:
                bal.close()
    finally:
        library.configure([])

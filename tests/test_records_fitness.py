"""Fitness of references: a run refuses a reference past its due date or used outside the
range its certificate covers, naming the asset and the date or range; ``--override-reason``
lets it go on, recorded with the reference, in the audit trail and on the certificate."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from benchctl.assets import DutSpec
from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, start_run
from benchctl.errors import BenchctlError
from benchctl.records.fitness import (
    FitnessError,
    UseRange,
    assess_reference,
    certificate_range,
    check_reference,
    due_problem,
    needed_ranges,
    range_problem,
)
from benchctl.reports.document import run_document
from benchctl.store import Database, open_database
from benchctl.store import repository as repo

pytest_plugins = ["dbfixtures"]

QUICK = ["loads=2000", "rep_n=2", "down=false"]
REASON = "VMI recalibration delayed; weights checked against the E2 set on 2026-01-05"


# --- the rules, pure ------------------------------------------------------------------------


def test_due_date_is_the_last_day_of_use() -> None:
    due = dt.date(2026, 6, 1)
    assert due_problem(due, dt.date(2026, 5, 31)) is None
    assert due_problem(due, due) is None
    assert due_problem(due, dt.date(2026, 6, 2)) == (
        "was due for recalibration on 2026-06-01 (1 day before 2026-06-02)")
    assert "(30 days before 2026-07-01)" in (due_problem(due, dt.date(2026, 7, 1)) or "")


def test_range_of_use_against_the_certified_range() -> None:
    covered = UseRange(0.0, 11.0, "kg")
    assert range_problem(UseRange(0.0, 6200.0, "g"), covered) is None
    assert range_problem(UseRange(0.0, 11000.0, "g"), covered) is None  # the limit is inside
    problem = range_problem(UseRange(0.0, 15000.0, "g"), covered)
    assert problem == ("is used over 0 … 15000 g, outside the range its certificate covers "
                       "(0 … 11 kg)")
    assert "below" not in (range_problem(UseRange(-5.0, 10.0, "kPa"),
                                         UseRange(0.0, 100.0, "kPa")) or "below")
    assert range_problem(UseRange(0.0, 1.0, "MPa"), UseRange(0.0, 10.0, "bar")) is None
    assert "states the range" in (range_problem(UseRange(0.0, 1.0, "g"), None) or "")
    assert "not comparable" in (range_problem(UseRange(0.0, 1.0, "g"), covered.to("kg")
                                              and UseRange(0.0, 1.0, "kPa")) or "")
    with pytest.raises(BenchctlError, match="low ≤ high"):
        UseRange(2.0, 1.0, "g")


def test_where_the_certified_range_comes_from() -> None:
    weights = [2000.0, 1000.0, 1000.0, 500.0]
    # 1. the certificate's own range, 2. a weight set's total, 3. the register's range.
    assert certificate_range(data={"range": [0, 700], "range_unit": "kPa"},
                             weights_nominal_g=weights, asset_range=(0.0, 1000.0),
                             asset_unit="bar") == UseRange(0.0, 700.0, "kPa")
    assert certificate_range(data={}, weights_nominal_g=weights, asset_range=(None, None),
                             asset_unit="g") == UseRange(0.0, 4500.0, "g")
    assert certificate_range(data=None, weights_nominal_g=[], asset_range=(-100.0, 1000.0),
                             asset_unit="kPa") == UseRange(-100.0, 1000.0, "kPa")
    assert certificate_range(data={}, weights_nominal_g=[], asset_range=(None, None),
                             asset_unit=None) is None


def test_check_reference_names_asset_certificate_date_and_range() -> None:
    check_reference(asset_id="WS-1", certificate="C-1", due_on=dt.date(2027, 1, 1),
                    on=dt.date(2026, 1, 1), needed=UseRange(0, 100, "g"),
                    covered=UseRange(0, 200, "g"))
    with pytest.raises(FitnessError) as err:
        check_reference(asset_id="WS-1", certificate="C-1", due_on=dt.date(2025, 1, 1),
                        on=dt.date(2026, 1, 1), needed=UseRange(0, 300, "g"),
                        covered=UseRange(0, 200, "g"))
    msg = str(err.value)
    assert msg.startswith("reference WS-1 (certificate C-1) was due for recalibration on "
                          "2025-01-01"), msg
    assert "0 … 300 g, outside the range its certificate covers (0 … 200 g)" in msg
    assert err.value.asset_id == "WS-1" and len(err.value.problems) == 2
    assert "--override-reason" in (err.value.detail or "")
    assert assess_reference(due_on=dt.date(2025, 1, 1), on=dt.date(2025, 1, 1)) == []


def test_balance_procedure_states_its_range_of_use() -> None:
    from benchctl import library

    library.configure([])
    module = library.load("procedures", "nawi_balance")
    dut = DutSpec("BAL-1", "balance", "g",
                  params={"max": 6200.0, "d": 0.1, "e": 0.1, "class": "II"})
    assert needed_ranges(module, dut, {}) == {"weights": UseRange(0.0, 6200.0, "g")}
    assert needed_ranges(module, dut, {"loads": [100.0, 500.0], "ecc_load": 2000.0,
                                       "rep_load": 3000.0}) == {
        "weights": UseRange(0.0, 3000.0, "g")}
    big = DutSpec("BAL-2", "balance", "g", params={"max": 30000.0, "d": 10.0, "e": 10.0,
                                                   "class": "III"})
    assert needed_ranges(module, big, {}) == {"weights": UseRange(0.0, 30000.0, "g")}


# --- on the bench ---------------------------------------------------------------------------


def _overdue_weights(bench_dir: Path, *, due: str = "2025-01-01") -> None:
    text = (bench_dir / "weights.toml").read_text(encoding="utf-8")
    text = re.sub(r'date = "[^"]*"', 'date = "2024-01-01"', text, count=1)
    text = re.sub(r'due = "[^"]*"', f'due = "{due}"', text, count=1)
    text = text.replace('number = "KLC-2025-0412"', 'number = "KLC-2024-0001"')
    (bench_dir / "weights.toml").write_text(text, encoding="utf-8")


def _options(bench_dir: Path, simulation: Any, db: Database) -> RunOptions:
    return RunOptions(bench=load_bench(bench_dir / "bench.toml"), db=db, speed=100.0,
                      operator=SimulatedOperator(simulation.control_address),
                      handle_signals=False)


def test_overdue_reference_is_refused_on_the_command_line(
    bench_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchctl import cli

    _overdue_weights(bench_dir)
    db = f"sqlite:///{bench_dir / 'bench.db'}"
    capsys.readouterr()
    rc = cli.main(["run", "nawi_balance", "--bench", str(bench_dir / "bench.toml"), "--dut",
                   str(bench_dir / "dut.toml"), "--operator", "sim", "--db", db])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert ("benchctl: error: reference WS-F1-DEMO (certificate KLC-2024-0001) was due for "
            "recalibration on 2025-01-01") in err
    assert "--override-reason" in err
    assert cli.main(["runs", "list", "--json", "--db", db]) == 0
    assert capsys.readouterr().out.strip() == "[]"  # refused before any run was recorded


def test_overdue_reference_with_override_is_recorded_and_on_the_certificate(
    bench_dir: Path, simulation: Any, db: Database
) -> None:
    _overdue_weights(bench_dir)
    opts = _options(bench_dir, simulation, db)
    with pytest.raises(FitnessError, match=r"WS-F1-DEMO .* was due for recalibration on "
                                           r"2025-01-01"):
        start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", QUICK, opts)
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", QUICK, opts,
                        override_reason=REASON, performed_by="Nguyễn Văn A")
    assert outcome.state == "completed", outcome.message

    with db.session() as s:
        [override] = repo.run_overrides(s, outcome.run_id)
        [created] = [e for e in repo.audit_events(s, entity="run", entity_id=str(outcome.run_id))
                     if e.action == "run.create"]
        run = repo.get_run(s, outcome.run_id)
        assert run is not None and run.performed_by == "Nguyễn Văn A"
    assert override["asset"] == "WS-F1-DEMO" and override["certificate"] == "KLC-2024-0001"
    assert override["reason"] == REASON
    assert override["problem"].startswith("was due for recalibration on 2025-01-01")
    [ref] = created.after["references"]
    assert ref["override_reason"] == REASON and "2025-01-01" in ref["override_detail"]

    doc = run_document(db, outcome.run_id)
    [reference] = doc["references"]
    assert reference["override_reason"] == REASON
    from benchctl.reports.certificate import render_html

    html = render_html(doc, lang="en")
    assert REASON in html and "KLC-2024-0001" in html
    with db.session() as s:
        assert repo.verify_audit(s) == (True, None)


def test_a_fit_reference_records_no_override(bench_dir: Path, simulation: Any) -> None:
    db = open_database(f"sqlite:///{bench_dir / 'fit.db'}")
    try:
        outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", QUICK,
                            _options(bench_dir, simulation, db), override_reason=REASON)
        assert outcome.state == "completed", outcome.message
        with db.session() as s:
            assert repo.run_overrides(s, outcome.run_id) == []
        assert run_document(db, outcome.run_id)["references"][0]["override_reason"] is None
    finally:
        db.dispose()


def test_weights_short_of_the_largest_load_are_refused_naming_the_range(
    bench_dir: Path, simulation: Any
) -> None:
    """A set without its 5 kg weight totals less than Max 6200 g: refused before the run."""
    text = (bench_dir / "weights.toml").read_text(encoding="utf-8")
    text = re.sub(r'\[\[weights\]\]\nid = "5kg"\n[^\[]*', "", text, count=1)
    assert 'id = "5kg"' not in text
    (bench_dir / "weights.toml").write_text(text, encoding="utf-8")
    db = open_database(f"sqlite:///{bench_dir / 'range.db'}")
    try:
        with pytest.raises(FitnessError) as err:
            start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", [],
                      _options(bench_dir, simulation, db))
        msg = str(err.value)
        assert msg.startswith("reference WS-F1-DEMO (certificate KLC-2025-0412) is used over "
                              "0 … 6200 g, outside the range its certificate covers (0 … "), msg
        with db.session() as s:
            assert repo.list_runs(s) == []
        # Loads the set can make are fine.
        outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify",
                            [*QUICK, "ecc_load=2000", "rep_load=2000"],
                            _options(bench_dir, simulation, db))
        assert outcome.state == "completed", outcome.message
    finally:
        db.dispose()


def test_register_asset_past_due_is_refused_too(bench_dir: Path, simulation: Any,
                                                db: Database) -> None:
    """A reference named by asset id (not a file) is checked the same way."""
    with db.session() as s:
        repo.upsert_asset(s, "WS-OLD", kind="weight_set", unit="g")
        repo.add_certificate(s, "WS-OLD", number="OLD-7", issuer="VMI",
                             issued_on=dt.date(2023, 1, 1), due_on=dt.date(2024, 1, 1),
                             weights=[{"id": "5kg", "nominal_g": 5000.0, "correction_mg": 0.0,
                                       "U_mg": 8.0, "class": "F1"}])
    bench = (bench_dir / "bench.toml").read_text(encoding="utf-8")
    (bench_dir / "bench.toml").write_text(
        bench.replace('file = "weights.toml"', 'asset = "WS-OLD"'), encoding="utf-8")
    with pytest.raises(FitnessError, match=r"reference WS-OLD \(certificate OLD-7\) was due for "
                                           r"recalibration on 2024-01-01"):
        start_run("nawi_balance", str(bench_dir / "dut.toml"), "verify", QUICK,
                  _options(bench_dir, simulation, db))

"""Immutability: a correction is a new revision that replaces the run, never an edit; the old
run, its points, readings and results stay exactly as they were. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, start_run
from benchctl.records import approval
from benchctl.records.amend import AmendError, amend_run, parse_correction
from benchctl.records.approval import ApprovalError
from benchctl.reports.document import run_document
from benchctl.store import Database
from benchctl.store import repository as repo

pytest_plugins = ["dbfixtures"]

QUICK = ["loads=2000", "rep_n=2", "down=false"]


def _snapshot(db: Database, run_id: int) -> dict[str, Any]:
    with db.session() as s:
        run = repo.get_run(s, run_id)
        assert run is not None
        return {
            "run": {c.name: getattr(run, c.name) for c in run.__table__.columns},
            "points": {k: (p.seq, p.data) for k, p in repo.completed_points(s, run_id).items()},
            "readings": [(r.point_key, r.instrument, r.value, r.unit, r.taken_at, r.raw)
                         for r in repo.readings_of(s, run_id)],
            "results": [(r.key, r.revision, r.data) for r in repo.latest_results(s, run_id)],
            "references": [(r.certificate_id, r.role) for r in run.references],
        }


@pytest.fixture
def completed(bench_dir: Path, simulation: Any, db: Database) -> int:
    with db.session() as s:
        for name, roles in (("Op A", ["operator"]), ("Rev B", ["reviewer"]),
                            ("Sig C", ["signatory"])):
            repo.add_person(s, name, roles)
    opts = RunOptions(bench=load_bench(bench_dir / "bench.toml"), db=db, speed=100.0,
                      operator=SimulatedOperator(simulation.control_address),
                      handle_signals=False)
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "calibrate", QUICK, opts,
                        performed_by="Op A")
    assert outcome.state == "completed", outcome.message
    return outcome.run_id


def test_parse_correction() -> None:
    c = parse_correction("weighing.up.2000g.indicated=2000.4")
    assert (c.key, c.field, c.value) == ("weighing.up.2000g", "indicated", 2000.4)
    assert parse_correction("a.b=text").value == "text"
    for bad in ("indicated=1", "weighing.up.2000g.indicated", ".x=1"):
        with pytest.raises(AmendError, match=r"expected POINT_KEY\.FIELD=VALUE"):
            parse_correction(bad)


def test_amendment_is_a_new_revision_and_the_old_run_is_untouched(
    db: Database, completed: int
) -> None:
    run_id = completed
    approval.review(db, run_id, "Rev B")
    old_number = approval.approve(db, run_id, "Sig C")["certificate_number"]
    before = _snapshot(db, run_id)

    new_id = amend_run(db, run_id, reason="In-service MPE agreed with the customer",
                       by="Rev B", params=["mpe_level=in_service"])
    assert new_id != run_id
    assert _snapshot(db, run_id) == before  # nothing of the old run changed
    new = _snapshot(db, new_id)
    assert new["points"] == before["points"]
    assert new["readings"] == before["readings"]  # the raw bytes too
    assert new["references"] == before["references"]
    old_mpe = {k: d["mpe"] for k, _, d in before["results"]}
    new_mpe = {k: d["mpe"] for k, _, d in new["results"]}
    assert new_mpe == {k: 2 * v for k, v in old_mpe.items()}  # in service: 2 × MPE (R76)
    assert new["run"]["params"]["mpe_level"] == "in_service"
    assert new["run"]["started_at"] == before["run"]["started_at"]  # measured then, not now

    with db.session() as s:
        people = repo.run_people(s, new_id)
        old_people = repo.run_people(s, run_id)
        [event] = [e for e in repo.audit_events(s, entity="run", entity_id=str(new_id))]
        assert repo.verify_audit(s) == (True, None)
    assert people["revision"] == 2 and people["replaces_run_id"] == run_id
    assert people["replaces_certificate_number"] == old_number
    assert people["amend_reason"] == "In-service MPE agreed with the customer"
    assert people["performed_by"] == "Op A"
    assert people["amended_by"] == "Rev B" and people["amended_at"]
    assert people["status"] == "draft" and people["certificate_number"] is None
    assert old_people["replaced_by_run_id"] == new_id and old_people["status"] == "approved"
    assert event.action == "run.amend" and event.actor == "Rev B"
    assert event.after["changes"]["params"] == {
        "mpe_level": {"before": None, "after": "in_service"}}

    doc = run_document(db, new_id)
    assert doc["revision"] == 2 and doc["replaces_run_id"] == run_id
    assert doc["amend_reason"] == "In-service MPE agreed with the customer"

    # The new revision is approved on its own, with a new number.
    approval.review(db, new_id, "Rev B")
    assert approval.approve(db, new_id, "Sig C")["certificate_number"] != old_number
    with pytest.raises(AmendError, match=f"already replaced by run {new_id}; amend run {new_id}"):
        amend_run(db, run_id, reason="again", by="Rev B")


def test_a_corrected_reading_is_re_evaluated(db: Database, completed: int) -> None:
    run_id = completed
    before = _snapshot(db, run_id)
    key = "weighing.up.2000g"
    old_point = before["points"][key][1]
    new_id = amend_run(db, run_id, reason="indication transcribed wrongly", by="Op A",
                       corrections=[f"{key}.indicated={old_point['indicated'] + 0.2}"])
    new = _snapshot(db, new_id)
    assert new["points"][key][1]["indicated"] == pytest.approx(old_point["indicated"] + 0.2)
    assert _snapshot(db, run_id) == before
    # The reading stays what the balance said; the result follows the corrected value.
    assert new["readings"] == before["readings"]
    old_error = {k: d for k, _, d in before["results"]}[key]["error"]
    new_error = {k: d for k, _, d in new["results"]}[key]["error"]
    assert new_error == pytest.approx(old_error + 0.2, abs=0.01)
    with db.session() as s:
        [event] = repo.audit_events(s, entity="run", entity_id=str(new_id))
    [change] = event.after["changes"]["points"]
    assert change["point"] == key and change["field"] == "indicated"
    assert change["before"] == old_point["indicated"]


def test_amendments_that_cannot_be_made(db: Database, completed: int) -> None:
    run_id = completed
    with pytest.raises(AmendError, match="--reason is required"):
        amend_run(db, run_id, reason="  ", by="Op A")
    with pytest.raises(ApprovalError, match="'Mallory' is not in the person register"):
        amend_run(db, run_id, reason="x", by="Mallory")
    with pytest.raises(AmendError, match="the run has no point 'nope'"):
        amend_run(db, run_id, reason="x", by="Op A", corrections=["nope.indicated=1"])
    with pytest.raises(AmendError, match=r"has no field 'indicted' \(it has .*indicated"):
        amend_run(db, run_id, reason="x", by="Op A",
                  corrections=["weighing.up.2000g.indicted=1"])
    with pytest.raises(AmendError, match="indicated is a number"):
        amend_run(db, run_id, reason="x", by="Op A",
                  corrections=["weighing.up.2000g.indicated=heavy"])
    with pytest.raises(AmendError, match=r"wants a new point 'weighing\.up\.5g'|asks the operator"):
        amend_run(db, run_id, reason="x", by="Op A", params=["loads=5,2000"])
    with pytest.raises(AmendError, match="run 999 does not exist"):
        amend_run(db, 999, reason="x", by="Op A")
    with db.session() as s:
        assert repo.replaced_by(s, [run_id]) == {}  # nothing was made by the refusals


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the CLI is the same on both
def test_runs_amend_on_the_command_line(db: Database, completed: int,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from benchctl import cli

    url = db.url.render_as_string(hide_password=False)
    capsys.readouterr()
    assert cli.main(["runs", "amend", str(completed), "--reason", "decision rule agreed",
                     "--param", "decision_rule=guarded", "--by", "Op A", "--json",
                     "--db", url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["replaces_run_id"] == completed and out["revision"] == 2
    assert out["status"] == "draft"
    assert cli.main(["runs", "amend", str(completed), "--reason", "again", "--by", "Op A",
                     "--db", url]) == 2
    assert f"already replaced by run {out['run_id']}" in capsys.readouterr().err
    assert cli.main(["runs", "show", str(out["run_id"]), "--json", "--db", url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["decision_rule"] == "guarded" and shown["revision"] == 2

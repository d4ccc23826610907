"""People and approval: who may perform, review and sign; certificate numbers; draft versus
final. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from benchctl.errors import StoreError
from benchctl.records import approval
from benchctl.records.approval import ApprovalError
from benchctl.store import Database
from benchctl.store import repository as repo

pytest_plugins = ["dbfixtures"]

TODAY = dt.datetime.now(dt.UTC).astimezone().date()


def _people(db: Database) -> None:
    with db.session() as s:
        repo.add_person(s, "Op A", ["operator"])
        repo.add_person(s, "Rev B", ["reviewer"])
        repo.add_person(s, "Sig C", ["signatory"])
        repo.add_person(s, "Sig D", ["signatory", "reviewer"])
        repo.add_person(s, "Gone E", ["signatory"], active=False)


def _run(db: Database, *, mode: str = "calibrate", verdict: str = "pass",
         state: str = "completed", performer: str = "Op A", dut: str = "BAL-1") -> int:
    with db.session() as s:
        if repo.get_asset(s, dut) is None:
            repo.upsert_asset(s, dut, kind="balance", unit="g")
        proc = repo.register_procedure(s, "nawi_balance", "1.0", "NAWI", "R76", "text\n")
        run = repo.create_run(s, procedure=proc, dut_asset_id=dut, mode=mode, params={},
                              decision_rule="simple", bench="B1", operator_kind="sim",
                              references=[], performed_by=performer)
        run_id = int(run.id)
    with db.session() as s:
        repo.save_results(s, run_id, [{"key": "p", "verdict": verdict}], verdict)
        if state != "running":
            repo.set_run_state(s, run_id, state)
    return run_id


# --- people ---------------------------------------------------------------------------------


def test_person_register(db: Database) -> None:
    _people(db)
    with db.session() as s:
        assert [p.name for p in repo.list_people(s)] == [
            "Gone E", "Op A", "Rev B", "Sig C", "Sig D"]
        assert next(p.name for p in repo.list_people(s, active_only=True)) == "Op A"
        with pytest.raises(StoreError, match=r"unknown role.*boss.*expected some of operator"):
            repo.add_person(s, "X", ["boss"])
        with pytest.raises(StoreError, match="at least one role"):
            repo.add_person(s, "X", [])
        repo.add_person(s, "Op A", ["operator", "reviewer"], actor="QM")
        repo.add_person(s, "Op A", ["reviewer", "operator"], actor="QM")  # no change: no event
        events = [e for e in repo.audit_events(s, entity="person", entity_id="Op A")]
    assert [e.action for e in events] == ["person.create", "person.update"]
    assert events[1].before["roles"] == ["operator"]
    assert events[1].after["roles"] == ["operator", "reviewer"] and events[1].actor == "QM"


def test_who_performs_a_run(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHCTL_OPERATOR", "Someone")
    with db.session() as s:  # an empty register: whoever is named (else the login) is recorded
        assert approval.resolve_performer(s, None) == "Someone"
        assert approval.resolve_performer(s, "Anyone") == "Anyone"
    _people(db)
    with db.session() as s:
        assert approval.resolve_performer(s, "Op A") == "Op A"
        with pytest.raises(ApprovalError, match="'Someone' is not in the person register"):
            approval.resolve_performer(s, None)
        with pytest.raises(ApprovalError, match="Rev B does not hold the role operator "
                                                r"\(holds: reviewer\)"):
            approval.resolve_performer(s, "Rev B")
        repo.add_person(s, "Op A", ["operator"], active=False)
        with pytest.raises(ApprovalError, match="Op A is no longer active"):
            approval.resolve_performer(s, "Op A")


# --- review and approval --------------------------------------------------------------------


def test_review_rules(db: Database) -> None:
    _people(db)
    run_id = _run(db)
    running = _run(db, state="running")
    for by, message in (("Nobody", "'Nobody' is not in the person register"),
                        ("Op A", "Op A does not hold the role reviewer or signatory"),
                        ("Gone E", "Gone E is no longer active")):
        with pytest.raises(ApprovalError, match=message):
            approval.review(db, run_id, by)
    with pytest.raises(StoreError, match=f"run {running} is running; only a completed run"):
        approval.review(db, running, "Rev B")
    people = approval.review(db, run_id, "Rev B")
    assert people["reviewed_by"] == "Rev B" and people["status"] == "reviewed"
    assert not people["final"] and people["certificate_number"] is None
    with pytest.raises(StoreError, match="already reviewed by Rev B"):
        approval.review(db, run_id, "Sig D")
    # Nobody reviews their own work.
    with db.session() as s:
        repo.add_person(s, "Op A", ["operator", "reviewer"])
    own = _run(db)
    with pytest.raises(ApprovalError, match="Op A performed it; another person reviews it"):
        approval.review(db, own, "Op A")


def test_approval_rules_and_certificate_numbers(db: Database) -> None:
    _people(db)
    first, second = _run(db), _run(db)
    with pytest.raises(StoreError, match=f"run {first} has not been reviewed"):
        approval.approve(db, first, "Sig C")
    approval.review(db, first, "Rev B")
    with pytest.raises(ApprovalError, match="Rev B does not hold the role signatory"):
        approval.approve(db, first, "Rev B")
    with pytest.raises(ApprovalError, match=r"valid-until .* is not after the approval date"):
        approval.approve(db, first, "Sig C", valid_until=TODAY)
    people = approval.approve(db, first, "Sig C")
    year = TODAY.year
    assert people["certificate_number"] == f"BC-{year}-00001"
    assert people["approved_by"] == "Sig C" and people["approved_at"]
    assert people["status"] == "approved" and people["final"] is True
    with pytest.raises(StoreError, match=f"already approved by Sig C \\(certificate BC-{year}"):
        approval.approve(db, first, "Sig D")
    approval.review(db, second, "Sig D")
    assert approval.approve(db, second, "Sig C")["certificate_number"] == f"BC-{year}-00002"
    with db.session() as s:  # a new year starts again at 1
        assert repo.next_certificate_number(s, year + 1) == f"BC-{year + 1}-00001"
        assert repo.next_certificate_number(s, year + 1, prefix="TT1") == f"TT1-{year + 1}-00002"
        events = [e.action for e in repo.audit_events(s, entity="run", entity_id=str(first))]
    assert events[-2:] == ["run.review", "run.approve"]  # the number: its own event before
    with db.session() as s:
        assert repo.verify_audit(s) == (True, None)


def test_verification_stamp_and_validity(db: Database) -> None:
    _people(db)
    passed, failed = _run(db, mode="verify"), _run(db, mode="verify", verdict="fail")
    for run_id in (passed, failed):
        approval.review(db, run_id, "Rev B")
    with pytest.raises(ApprovalError, match="give --stamp and --valid-until"):
        approval.approve(db, passed, "Sig C")
    with pytest.raises(ApprovalError, match="give --valid-until"):
        approval.approve(db, passed, "Sig C", stamp_number="TD-001234")
    until = TODAY.replace(year=TODAY.year + 1)
    people = approval.approve(db, passed, "Sig C", stamp_number="TD-001234",
                              valid_until=until)
    assert (people["stamp_number"], people["valid_until"]) == ("TD-001234", until.isoformat())
    with pytest.raises(ApprovalError, match="verdict is fail; an instrument that failed "
                                            "verification gets no stamp"):
        approval.approve(db, failed, "Sig C", stamp_number="TD-001235", valid_until=until)
    assert approval.approve(db, failed, "Sig C")["stamp_number"] is None


def test_draft_until_approved(db: Database) -> None:
    _people(db)
    run_id = _run(db)
    with pytest.raises(ApprovalError, match="only a draft certificate, marked DRAFT, can be "
                                            "produced; it still needs review"):
        approval.require_final(db, run_id)
    approval.review(db, run_id, "Rev B")
    with pytest.raises(ApprovalError, match="it still needs approval"):
        approval.require_final(db, run_id)
    approval.approve(db, run_id, "Sig C")
    people = approval.require_final(db, run_id)
    assert approval.certificate_status(people) == "final"
    assert [people[k] is not None for k in ("performed_at", "reviewed_at", "approved_at")] == [
        True, True, True]


def test_two_signatories_approving_at_once(db: Database) -> None:
    """Same run: exactly one approval; different runs: different numbers."""
    _people(db)
    runs = [_run(db) for _ in range(6)]
    for run_id in runs:
        approval.review(db, run_id, "Rev B")
    outcomes: list[Any] = []
    barrier = threading.Barrier(2)

    def signatory(name: str) -> None:
        barrier.wait()
        for run_id in runs:
            try:
                outcomes.append((run_id, approval.approve(db, run_id, name)
                                 ["certificate_number"]))
            except StoreError as e:
                outcomes.append((run_id, str(e)))

    threads = [threading.Thread(target=signatory, args=(n,)) for n in ("Sig C", "Sig D")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = [o for _, o in outcomes if o.startswith("BC-")]
    refused = [o for _, o in outcomes if "already approved" in o]
    assert len(numbers) == len(runs) == len(set(numbers)) and len(refused) == len(runs)
    assert sorted(int(n[-5:]) for n in numbers) == list(range(1, len(runs) + 1))


# --- on the command line and the certificate ------------------------------------------------


def test_review_and_approve_on_the_command_line(bench_dir: Path, simulation: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A real run: its certificate is a draft until a signatory approves the reviewed run."""
    from benchctl import cli
    from benchctl.config import load_bench
    from benchctl.engine.operators import SimulatedOperator
    from benchctl.engine.runner import RunOptions, start_run
    from benchctl.reports.certificate import is_final, render_html
    from benchctl.reports.document import run_document
    from benchctl.store import open_database

    url = f"sqlite:///{bench_dir / 'bench.db'}"
    db = open_database(url)
    try:
        with db.session() as s:
            for name, role in (("Op A", "operator"), ("Rev B", "reviewer"),
                               ("Sig C", "signatory")):
                repo.add_person(s, name, [role])
        opts = RunOptions(bench=load_bench(bench_dir / "bench.toml"), db=db, speed=100.0,
                          operator=SimulatedOperator(simulation.control_address),
                          handle_signals=False)
        with pytest.raises(ApprovalError, match="'Nobody' is not in the person register"):
            start_run("nawi_balance", str(bench_dir / "dut.toml"), "calibrate",
                      ["loads=2000", "rep_n=2", "down=false"], opts, performed_by="Nobody")
        outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), "calibrate",
                            ["loads=2000", "rep_n=2", "down=false"], opts, performed_by="Op A")
        assert outcome.state == "completed", outcome.message
        run = str(outcome.run_id)
        draft = run_document(db, outcome.run_id)
        assert not is_final(draft) and "DRAFT" in render_html(draft, lang="en")

        capsys.readouterr()
        assert cli.main(["runs", "approve", run, "--by", "Sig C", "--db", url]) == 2
        assert "has not been reviewed" in capsys.readouterr().err
        assert cli.main(["runs", "review", run, "--by", "Rev B", "--db", url]) == 0
        assert "reviewed by Rev B" in capsys.readouterr().out
        assert cli.main(["runs", "approve", run, "--by", "Sig C", "--db", url, "--json"]) == 0
        people = json.loads(capsys.readouterr().out)
        number = people["certificate_number"]
        assert number.startswith("BC-") and people["performed_by"] == "Op A"
        final = run_document(db, outcome.run_id)
        assert is_final(final) and final["certificate_number"] == number
        html = render_html(final, lang="en")
        assert number in html and "DRAFT —" not in html
        assert "Rev B" in html and "Sig C" in html and "Op A" in html
    finally:
        db.dispose()

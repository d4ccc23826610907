"""Tampering behind benchctl's back: UPDATE, DELETE and INSERT with plain SQL on every audited
table (and on the audit trail itself) make ``benchctl audit verify`` exit non-zero and name
the first broken link; on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbhelp import PostgresServer, seed_everything, sql, sql_time
from sqlalchemy import text
from sqlalchemy.orm import Session

from benchctl import cli
from benchctl.store import Database, open_database
from benchctl.store import repository as repo
from benchctl.store.integrity import AUDITED_TABLES

pytest_plugins = ["dbfixtures"]

#: table -> {"update"|"delete"|"insert": SQL}; :run, :spare_run, :cert, :t, :sha, :raw are
#: bound from the seeded records. Each touches one row, which no foreign key protects.
TAMPER: dict[str, dict[str, str]] = {
    "persons": {
        "update": """UPDATE persons SET roles = '["signatory"]' WHERE name = 'Op A'""",
        "delete": "DELETE FROM persons WHERE name = 'Spare P'",
        "insert": "INSERT INTO persons (id, name, roles, active) "
                  """VALUES (99, 'Forger', '["signatory"]', TRUE)""",
    },
    "assets": {
        "update": "UPDATE assets SET serial = 'FORGED' WHERE id = 'BAL-0007'",
        "delete": "DELETE FROM assets WHERE id = 'SPARE-1'",
        "insert": "INSERT INTO assets (id, kind, params, created_at) "
                  "VALUES ('FAKE-1', 'balance', '{}', :t)",
    },
    "reference_certificates": {
        "update": "UPDATE reference_certificates SET due_on = '2030-01-01' "
                  "WHERE number = 'M-2025-0456'",
        "delete": "DELETE FROM reference_certificates WHERE number = 'OLD-1'",
        "insert": "INSERT INTO reference_certificates (id, asset_id, number, issuer, issued_on, "
                  "due_on, data, created_at) VALUES (99, 'WS-E2-01', 'FAKE', 'x', '2025-01-01', "
                  "'2030-01-01', '{}', :t)",
    },
    "certified_weights": {
        "update": "UPDATE certified_weights SET correction_mg = 0.0 WHERE weight_id = '2000g'",
        "delete": "DELETE FROM certified_weights WHERE weight_id = '1000g*'",
        "insert": "INSERT INTO certified_weights (id, certificate_id, weight_id, nominal_g, "
                  "correction_mg, u_mg, k, weight_class) "
                  "VALUES (99, :cert, '500g', 500.0, 0.0, 1.0, 2.0, 'E2')",
    },
    "procedure_versions": {
        "update": "UPDATE procedure_versions SET text = 'async def run(ctx): pass' "
                  "WHERE procedure_id = 'nawi_balance'",
        "delete": "DELETE FROM procedure_versions WHERE procedure_id = 'spare'",
        "insert": "INSERT INTO procedure_versions (id, procedure_id, version, title, documents, "
                  "sha256, text, created_at) VALUES (99, 'x', '1', 'x', 'x', :sha, 'x', :t)",
    },
    "runs": {
        "update": "UPDATE runs SET verdict = 'fail' WHERE id = :run",
        "delete": "DELETE FROM runs WHERE id = :spare_run",
        "insert": "INSERT INTO runs (id, procedure_version_id, dut_asset_id, mode, params, state, "
                  "bench, operator_kind, started_at, updated_at, environment, host, pid, "
                  "revision) SELECT 99, procedure_version_id, dut_asset_id, mode, params, state, "
                  "bench, operator_kind, started_at, updated_at, environment, host, pid, 1 "
                  "FROM runs WHERE id = :run",
    },
    "run_references": {
        "update": "UPDATE run_references SET override_reason = 'forged' WHERE run_id = :run",
        "delete": "DELETE FROM run_references WHERE run_id = :run",
        "insert": "INSERT INTO run_references (run_id, certificate_id, role) "
                  "VALUES (:spare_run, :cert, 'weights')",
    },
    "points": {
        "update": """UPDATE points SET data = '{"test": "weighing", "nominal": 2000.5}' """
                  "WHERE key = 'p1'",
        "delete": "DELETE FROM points WHERE key = 'p3'",
        "insert": "INSERT INTO points (id, run_id, key, seq, data, created_at) "
                  "VALUES (99, :run, 'p9', 9, '{}', :t)",
    },
    "readings": {
        "update": "UPDATE readings SET value = 2000.0 "
                  "WHERE instrument = 'balance' AND point_key = 'p1'",
        "delete": "DELETE FROM readings WHERE point_key = 'p2'",
        "insert": "INSERT INTO readings (id, run_id, point_id, point_key, instrument, role, "
                  "value, unit, stable, taken_at, raw) VALUES (99, :run, (SELECT id FROM points "
                  "WHERE run_id = :run AND key = 'p1'), 'p1', 'balance', 'dut', 1.0, 'g', "
                  "TRUE, :t, :raw)",
    },
    "results": {
        "update": """UPDATE results SET data = '{"key": "p1", "error": 0.0, "verdict": "pass"}' """
                  "WHERE key = 'p1'",
        "delete": "DELETE FROM results WHERE key = 'p2'",
        "insert": "INSERT INTO results (id, run_id, key, revision, data, created_at) "
                  """VALUES (99, :run, 'p1', 2, '{"key": "p1"}', :t)""",
    },
    "certificate_sequences": {
        "update": "UPDATE certificate_sequences SET last = 0",
        "delete": "DELETE FROM certificate_sequences",
        "insert": "INSERT INTO certificate_sequences (year, last) VALUES (2099, 1)",
    },
}
WORDS = {"update": "altered", "delete": "deleted", "insert": "inserted"}


def test_every_audited_table_has_its_tampering_cases() -> None:
    assert set(TAMPER) == set(AUDITED_TABLES)
    assert all(set(cases) == set(WORDS) for cases in TAMPER.values())


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, pg_server: PostgresServer, sqlite_template: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, dict[str, Any]]]:
    """One database per back end with every audited table filled, shared by the matrix below:
    each case tampers inside a transaction it rolls back."""
    if request.param == "postgresql":
        url = pg_server.checkout()
    else:
        path = tmp_path_factory.mktemp("tamper") / "bench.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
    database = open_database(url)
    try:
        yield database, seed_everything(database)
    finally:
        database.dispose()
        if request.param == "postgresql":
            pg_server.release(url)


def _verify(db: Database, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(["audit", "verify", "--db", db.url.render_as_string(hide_password=False)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _params(db: Database, seeded: dict[str, Any], statement: str) -> dict[str, Any]:
    values = {"run": seeded["run_id"], "spare_run": seeded["spare_run_id"],
              "cert": seeded["cert_id"], "t": sql_time(db, dt.datetime.now(dt.UTC)),
              "sha": "f" * 64, "raw": b"\x00"}
    return {k: v for k, v in values.items() if f":{k}" in statement}


@pytest.mark.parametrize("operation", ["update", "delete", "insert"])
@pytest.mark.parametrize("table", list(AUDITED_TABLES))
def test_plain_sql_on_an_audited_table_is_detected(
    seeded: tuple[Database, dict[str, Any]], table: str, operation: str
) -> None:
    """What ``audit verify`` checks (repository.audit_problems), run in the tamperer's own
    transaction, which is then rolled back for the next case."""
    db, info = seeded
    statement = TAMPER[table][operation]
    with db.engine.connect() as conn:
        with Session(bind=conn) as s:
            assert repo.audit_problems(s) == []
        trans = conn.begin() if not conn.in_transaction() else conn.get_transaction()
        assert trans is not None
        try:
            result = conn.execute(text(statement), _params(db, info, statement))
            assert result.rowcount == 1, f"{statement} changed {result.rowcount} rows"
            with Session(bind=conn) as s:
                problems = repo.audit_problems(s)
        finally:
            trans.rollback()
    assert len(problems) == 1, problems  # exactly the tampered row, nothing else
    assert problems[0].startswith(f"row {table}:"), problems
    assert f": {WORDS[operation]} behind benchctl's back" in problems[0], problems


def _tampered(db: Database, statement: str, **params: Any) -> list[str]:
    """audit_problems after ``statement``, in a transaction that is rolled back."""
    with db.engine.connect() as conn:
        trans = conn.begin() if not conn.in_transaction() else conn.get_transaction()
        assert trans is not None
        try:
            conn.execute(text(statement), params)
            with Session(bind=conn) as s:
                return repo.audit_problems(s)
        finally:
            trans.rollback()


@pytest.mark.parametrize("operation", ["update", "delete", "insert"])
def test_plain_sql_on_the_audit_trail_itself_is_detected(
    seeded: tuple[Database, dict[str, Any]], operation: str
) -> None:
    db, _ = seeded
    with db.session() as s:
        last = max(e.id for e in repo.audit_events(s, limit=100_000))
    statement = {
        "update": "UPDATE audit_events SET actor = 'Someone else' WHERE id = 5",
        "delete": "DELETE FROM audit_events WHERE id = 5",
        # A forged event at the end, linked to the real last one, with a made-up hash.
        "insert": "INSERT INTO audit_events (id, at, actor, action, entity, entity_id, "
                  "prev_hash, hash) SELECT id + 1, at, 'forger', 'run.approve', 'run', '1', "
                  f"hash, :h FROM audit_events WHERE id = {last}",
    }[operation]
    problems = _tampered(db, statement, **({"h": "e" * 64} if operation == "insert" else {}))
    expected = {"update": "event 5: altered", "delete": "event 5: deleted",
                "insert": f"event {last + 1}: altered"}[operation]
    assert problems and problems[0].startswith(expected), problems


def test_cutting_off_the_newest_events_is_detected(
    seeded: tuple[Database, dict[str, Any]],
) -> None:
    """A chain cut short is still a valid chain; but the rows the lost events wrote no longer
    match the events left (here the approval: the run and the year's number)."""
    db, info = seeded
    with db.session() as s:
        last = max(e.id for e in repo.audit_events(s, limit=100_000))
        approve = next(e.id for e in repo.audit_events(s, entity="run", limit=100_000)
                       if e.action == "run.approve")
    assert approve == last
    problems = _tampered(db, "DELETE FROM audit_events WHERE id >= :n", n=last - 1)
    assert problems[:2] == [
        f"row runs:{info['run_id']}: altered behind benchctl's back (it does not match "
        f"event {approve - 2}, its last recorded change)",
        f"row certificate_sequences:{dt.date.today().year}: inserted behind benchctl's back "
        "(no audit event records it)"], problems


def test_a_row_rewritten_together_with_a_forged_digest_breaks_the_chain(
    seeded: tuple[Database, dict[str, Any]],
) -> None:
    """Updating a result and the digest its event carries does not help: the event's hash
    covers the digest (the digest itself is no secret: anyone can recompute it)."""
    from benchctl.store.integrity import row_digest
    from benchctl.store.models import AuditEvent, Result

    db, _ = seeded
    with db.session() as s:
        [event] = [e for e in repo.audit_events(s, entity="run", limit=100_000)
                   if e.action == "results.save"]
        result = s.query(Result).filter_by(key="p1").one()
        forged_data = {**result.data, "error": 0.0}
        row = {c.name: getattr(result, c.name) for c in Result.__table__.columns}
        row["data"] = forged_data
        forged_after = dict(event.after)
        forged_after["_rows"] = {**forged_after["_rows"],
                                 f"results:{result.id}": row_digest(row)}
        event_id, result_id = event.id, result.id
    with db.engine.connect() as conn:
        trans = conn.begin() if not conn.in_transaction() else conn.get_transaction()
        assert trans is not None
        try:
            conn.execute(Result.__table__.update().where(Result.id == result_id)
                         .values(data=forged_data))
            conn.execute(AuditEvent.__table__.update().where(AuditEvent.id == event_id)
                         .values(after=forged_after))
            with Session(bind=conn) as s:
                problems = repo.audit_problems(s)
        finally:
            trans.rollback()
    assert problems == [f"event {event_id}: altered (its content does not match its hash)"]


def test_audit_verify_names_the_first_broken_link(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command itself, on committed tampering of two tables: exit status 1, the first
    broken link (readings come before results), and the rest counted."""
    info = seed_everything(db)
    rc, out, err = _verify(db, capsys)
    assert rc == 0 and "intact" in out, err
    for statement in (TAMPER["results"]["update"], TAMPER["readings"]["delete"]):
        sql(db, statement, **_params(db, info, statement))
    rc, out, err = _verify(db, capsys)
    assert rc == 1, out
    first, more = err.splitlines()[:2]
    assert "BROKEN: row readings:" in first and "deleted behind benchctl's back" in first, err
    assert "and 1 more problem" in more and "row results:" in err, err


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the process is the same
def test_audit_verify_as_a_command_exits_non_zero(db: Database) -> None:
    """The console script in its own process: the exit status is what a cron job sees."""
    seed_everything(db)
    url = db.url.render_as_string(hide_password=False)
    sql(db, "UPDATE readings SET value = value + 0.001 WHERE point_key = 'p2'")
    bad = subprocess.run([sys.executable, "-m", "benchctl.cli", "audit", "verify", "--db", url],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "BROKEN: row readings:" in bad.stderr and "altered behind benchctl's back" in bad.stderr


def test_unaudited_orm_changes_are_refused_at_commit(db: Database) -> None:
    """Code that writes records without an audit event cannot commit them."""
    from benchctl.errors import StoreError
    from benchctl.store.models import Asset

    with pytest.raises(StoreError, match="no audit event records: assets:X-9"), \
            db.session() as s:
        s.add(Asset(id="X-9", kind="balance", params={}))
    with db.session() as s:
        assert repo.get_asset(s, "X-9") is None
        repo.upsert_asset(s, "X-9", kind="balance")  # through the repository: audited
    with db.session() as s:
        assert repo.verify_audit(s) == (True, None)


def test_verify_reads_one_snapshot_while_benches_write(db: Database) -> None:
    """A run recorded between verify's read of the chain and its read of the tables is no
    false alarm: verify sees the database as of one moment."""
    from benchctl.store.models import Point

    info = seed_everything(db)
    with db.session() as verifier:
        assert repo.read_snapshot(verifier) is True
        assert verifier.query(Point).count() == 3
        with db.session() as bench:  # another bench commits a point and its event meanwhile
            repo.record_point(bench, info["spare_run_id"], "late", {"x": 1}, [])
        assert verifier.query(Point).count() == 3  # not seen: the snapshot is older
        assert repo.audit_problems(verifier) == []
    with db.session() as s:
        assert s.query(Point).count() == 4 and repo.audit_problems(s) == []

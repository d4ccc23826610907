"""Alembic upgrade and downgrade on SQLite and PostgreSQL, with records in the database.

0001 -> 0002 keeps every record, adds the review/approval/override columns and the
certificate sequences, and vouches for the records already there (a ``schema.baseline``
event), so the audit verifies right after the upgrade. 0002 -> 0001 -> base drops it all
again, and the audit chain left behind still verifies with the older rules.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from dbhelp import sql, sql_time
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from benchctl.errors import StoreError
from benchctl.records import approval
from benchctl.store import Database, open_database
from benchctl.store import repository as repo
from benchctl.store.integrity import GENESIS_HASH, event_hash

pytest_plugins = ["dbfixtures"]

NEW_RUN_COLUMNS = {"amend_reason", "reviewed_by", "reviewed_at", "approved_by", "approved_at",
                   "certificate_number", "stamp_number", "valid_until"}


def _columns(db: Database, table: str) -> set[str]:
    with db.engine.connect() as conn:
        return {c["name"] for c in inspect(conn).get_columns(table)}


def _tables(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def _records_of_0001(db: Database) -> None:
    """What benchctl 0.1 left: a register, a completed run with a point, a reading and a
    result, and an audit chain of its own (hash formula of 0001, no row digests)."""
    now = dt.datetime(2025, 11, 3, 2, 0, tzinfo=dt.UTC)
    t = sql_time(db, now)
    sql(db, "INSERT INTO assets (id, kind, unit, params, created_at) "
            "VALUES ('WS-1', 'weight_set', 'g', '{}', :t)", t=t)
    sql(db, "INSERT INTO assets (id, kind, unit, params, serial, created_at) "
            """VALUES ('BAL-1', 'balance', 'g', '{"max": 200.0}', 'S-1', :t)""", t=t)
    sql(db, "INSERT INTO reference_certificates (id, asset_id, number, issuer, issued_on, "
            "due_on, data, created_at) VALUES (1, 'WS-1', 'C-1', 'VMI', '2025-01-01', "
            "'2027-01-01', '{}', :t)", t=t)
    sql(db, "INSERT INTO certified_weights (id, certificate_id, weight_id, nominal_g, "
            "correction_mg, u_mg, k, weight_class) VALUES (1, 1, '100g', 100.0, 0.1, 0.5, 2.0, "
            "'F1')")
    sql(db, "INSERT INTO procedure_versions (id, procedure_id, version, title, documents, "
            "sha256, text, created_at) VALUES (1, 'nawi_balance', '1.0', 'NAWI', 'R76', :sha, "
            "'text', :t)", sha="a" * 64, t=t)
    sql(db, "INSERT INTO runs (id, procedure_version_id, dut_asset_id, mode, params, "
            "decision_rule, state, bench, operator_kind, performed_by, started_at, ended_at, "
            "updated_at, verdict, environment, host, pid, revision) VALUES (1, 1, 'BAL-1', "
            "'calibrate', '{}', 'simple', 'completed', 'Bench', 'sim', 'Op A', :t, :t, :t, "
            "'pass', '{}', 'h', 1, 1)", t=t)
    sql(db, "INSERT INTO run_references (run_id, certificate_id, role) VALUES (1, 1, 'weights')")
    sql(db, "INSERT INTO points (id, run_id, key, seq, data, created_at) "
            """VALUES (1, 1, 'weighing.up.100g', 1, '{"indicated": 100.01}', :t)""", t=t)
    sql(db, "INSERT INTO readings (id, run_id, point_id, point_key, instrument, role, value, "
            "unit, stable, taken_at, raw) VALUES (1, 1, 1, 'weighing.up.100g', 'balance', 'dut', "
            "100.01, 'g', TRUE, :t, :raw)", t=t, raw=b"S S 100.01 g\r\n")
    sql(db, "INSERT INTO results (id, run_id, key, revision, data, created_at) "
            """VALUES (1, 1, 'weighing.up.100g', 1, '{"error": 0.01}', :t)""", t=t)
    prev = GENESIS_HASH
    for i in (1, 2):
        after = {"i": i}
        h = event_hash(i, now, "benchctl", "asset.create", "asset", f"A{i}", None, after, prev)
        sql(db, "INSERT INTO audit_events (id, at, actor, action, entity, entity_id, before, "
                """"after", prev_hash, hash) VALUES (:i, :t, 'benchctl', 'asset.create', """
                "'asset', :e, NULL, :a, :p, :h)",
            i=i, t=t, e=f"A{i}", a=json.dumps(after), p=prev, h=h)
        prev = h


def test_upgrade_keeps_the_records_and_vouches_for_them(make_url: Callable[..., str]) -> None:
    db = open_database(make_url(migrated=False), upgrade=False)
    try:
        db.upgrade("0001")
        assert db.current_revision() == "0001" and not db.is_at_head()
        assert not NEW_RUN_COLUMNS & _columns(db, "runs")
        _records_of_0001(db)

        db.upgrade()
        assert db.is_at_head()
        assert _columns(db, "runs") >= NEW_RUN_COLUMNS
        assert {"override_reason", "override_detail"} <= _columns(db, "run_references")
        assert "certificate_sequences" in _tables(db)
        with db.session() as s:
            assert repo.verify_audit(s) == (True, None)
            [baseline] = [e for e in repo.audit_events(s) if e.action == "schema.baseline"]
            assert baseline.id == 3 and baseline.entity_id == "0002"
            assert baseline.after["rows"] == 10  # every record 0.1 left, one digest each
            run = repo.get_run(s, 1)
            assert run is not None and run.performed_by == "Op A" and run.revision == 1
            assert run.certificate_number is None and run.references[0].override_reason is None
        # The new schema at work on the old records: review and approval of the old run.
        with db.session() as s:
            repo.add_person(s, "Rev B", ["reviewer"])
            repo.add_person(s, "Sig C", ["signatory"])
        approval.review(db, 1, "Rev B")
        people = approval.approve(db, 1, "Sig C")
        assert people["certificate_number"].startswith("BC-")
        # ... and tampering with an old record is seen, thanks to the baseline.
        sql(db, "UPDATE readings SET value = 100.0 WHERE id = 1")
        with db.session() as s:
            ok, why = repo.verify_audit(s)
        assert not ok and why is not None and why.startswith("row readings:1: altered"), why
    finally:
        db.dispose()


def test_downgrade_to_0001_and_to_base_then_upgrade_again(make_url: Callable[..., str]) -> None:
    from dbhelp import seed_everything

    db = open_database(make_url())
    try:
        info = seed_everything(db)  # every table of 0002 has rows, run 1 is approved
        db.downgrade("0001")
        assert db.current_revision() == "0001"
        assert not NEW_RUN_COLUMNS & _columns(db, "runs")
        assert not {"override_reason", "override_detail"} & _columns(db, "run_references")
        assert "certificate_sequences" not in _tables(db)
        with db.engine.connect() as conn:
            runs = conn.execute(text("SELECT count(*) FROM runs")).scalar()
            readings = conn.execute(text("SELECT count(*) FROM readings")).scalar()
        assert (runs, readings) == (2, 3)  # the records of 0001's columns stay
        with db.session() as s:
            # The chain is intact by 0001's rules (same hash formula; digests are data).
            assert repo.verify_audit(s, rows=False) == (True, None)

        db.downgrade("base")
        assert _tables(db) <= {"alembic_version"}
        assert db.current_revision() is None

        db.upgrade()
        assert db.is_at_head()
        with db.session() as s:
            assert repo.verify_audit(s) == (True, None)
            assert repo.list_runs(s) == []
        assert info["certificate_number"]
    finally:
        db.dispose()


def test_fresh_database_has_no_baseline_event(make_url: Callable[..., str]) -> None:
    db = open_database(make_url(migrated=False))
    try:
        with db.session() as s:
            assert repo.audit_events(s) == []
            assert repo.verify_audit(s) == (True, None)
    finally:
        db.dispose()


def _second_run_of_0001(db: Database) -> None:
    """Another run of run 1's kind, with a point of its own (id 2)."""
    t = sql_time(db, dt.datetime(2025, 11, 4, 2, 0, tzinfo=dt.UTC))
    sql(db, "INSERT INTO runs (id, procedure_version_id, dut_asset_id, mode, params, "
            "decision_rule, state, bench, operator_kind, started_at, updated_at, environment, "
            "host, pid, revision) VALUES (2, 1, 'BAL-1', 'calibrate', '{}', 'simple', "
            "'completed', 'Bench', 'sim', :t, :t, '{}', 'h', 1, 1)", t=t)
    sql(db, "INSERT INTO points (id, run_id, key, seq, data, created_at) "
            "VALUES (2, 2, 'weighing.up.100g', 1, '{}', :t)", t=t)


def _reading_sql(reading_id: int, run_id: int, point_id: int | None) -> str:
    point = "NULL" if point_id is None else str(point_id)
    return ("INSERT INTO readings (id, run_id, point_id, point_key, instrument, role, value, "
            f"unit, stable, taken_at, raw) VALUES ({reading_id}, {run_id}, {point}, "
            "'weighing.up.100g', 'balance', 'dut', 100.02, 'g', TRUE, :t, :raw)")


def test_0003_ties_each_reading_to_its_points_run(make_url: Callable[..., str]) -> None:
    """From 0003 a reading's (point, run) must be a point of that run: the two single foreign
    keys of 0001 let a reading name run 2 and a point of run 1."""
    db = open_database(make_url(migrated=False), upgrade=False)
    try:
        db.upgrade("0002")
        _records_of_0001(db)
        _second_run_of_0001(db)
        t = sql_time(db, dt.datetime(2025, 11, 4, 2, 0, tzinfo=dt.UTC))
        sql(db, _reading_sql(2, 2, 2), t=t, raw=b"")  # run 2's own point: fine
        db.upgrade()
        assert db.current_revision() == "0003" and db.is_at_head()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM readings")).scalar() == 2
        with pytest.raises(IntegrityError):  # run 2, but run 1's point
            sql(db, _reading_sql(3, 2, 1), t=t, raw=b"")
        with pytest.raises(IntegrityError):  # no point at all
            sql(db, _reading_sql(4, 1, None), t=t, raw=b"")
        sql(db, _reading_sql(5, 1, 1), t=t, raw=b"")  # run 1's point, in run 1

        db.downgrade("0002")  # the single keys again: the mismatch is no longer refused
        sql(db, _reading_sql(6, 2, 1), t=t, raw=b"")
        with pytest.raises(StoreError, match=r"cannot upgrade database .*: 1 reading\(s\) have "
                           r"no point, or a run other than their point's \(first ids: 6\)"):
            db.upgrade()
        assert db.current_revision() == "0002"
        sql(db, "DELETE FROM readings WHERE id = 6")
        db.upgrade()
        assert db.is_at_head()
    finally:
        db.dispose()

"""Helpers for the store and records tests (the fixtures are in dbfixtures.py)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from benchctl.store import Database, open_database
from benchctl.store.db import _reason, _script_heads, mask_url, normalise_url
from benchctl.store.models import Base

PG_URL = os.environ.get(
    "BENCHCTL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("BENCHCTL_REQUIRE_POSTGRES", "").strip() not in ("", "0")


class PostgresServer:
    """The test server: connects on first use; lends out emptied test databases."""

    def __init__(self) -> None:
        self._admin: Engine | None = None
        self._error: str | None = None
        self.created: list[str] = []
        self._free: list[str] = []

    def admin(self) -> Engine:
        """The admin connection, or skip (fail under BENCHCTL_REQUIRE_POSTGRES=1) with why."""
        if self._admin is None and self._error is None:
            try:
                engine = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT",
                                       connect_args={"connect_timeout": 5})
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                self._admin = engine
            except Exception as e:  # any failure to reach the server: say why
                self._error = f"PostgreSQL not reachable at {mask_url(PG_URL)}: {_reason(e)}"
        if self._admin is None:
            assert self._error is not None
            if REQUIRE_PG:
                pytest.fail(f"{self._error} (BENCHCTL_REQUIRE_POSTGRES=1: a PostgreSQL server "
                            "is required)", pytrace=False)
            pytest.skip(self._error)
        return self._admin

    def url(self, name: str) -> str:
        return normalise_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    def checkout(self, *, migrated: bool = True) -> str:
        """A database of its own for the caller until :meth:`release`: empty, or migrated
        to the newest schema with no rows."""
        admin = self.admin()
        if self._free:
            name = self._free.pop()
        else:
            name = f"benchctl_test_{uuid.uuid4().hex[:12]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
        self._reset(admin, name, migrated)
        return self.url(name)

    def release(self, url: str) -> None:
        self._free.append(str(normalise_url(url).database))

    def _reset(self, admin: Engine, name: str, migrated: bool) -> None:
        with admin.connect() as conn:  # whatever a test left connected
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name})
        engine = create_engine(self.url(name), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                # One round trip: which revision, and which sequences to restart.
                state = conn.exec_driver_sql(
                    "SELECT (SELECT string_agg(version_num, ',') FROM alembic_version), "
                    "(SELECT string_agg(quote_ident(sequence_name), ',') FROM "
                    "information_schema.sequences WHERE sequence_schema = 'public')"
                    if self._has_version_table(conn) else "SELECT NULL, NULL").one()
                at_head = state[0] is not None and set(state[0].split(",")) == _script_heads()
                if migrated and at_head:
                    # DELETE, children first, and restart the sequences, in one batch: far
                    # faster than TRUNCATE on tables this small.
                    statements = [f'DELETE FROM "{t.name}"'
                                  for t in reversed(Base.metadata.sorted_tables)]
                    statements += [f"ALTER SEQUENCE {seq} RESTART WITH 1"
                                   for seq in (state[1] or "").split(",") if seq]
                    conn.exec_driver_sql("; ".join(statements))
                    return
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            engine.dispose()
        if migrated:
            open_database(self.url(name)).dispose()

    @staticmethod
    def _has_version_table(conn: Any) -> bool:
        return conn.exec_driver_sql("SELECT to_regclass('public.alembic_version')").scalar() \
            is not None

    def drop_all(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            for name in reversed(self.created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


def sql(db: Database, statement: str, **params: Any) -> None:
    """Plain SQL behind benchctl's back (what a tamperer does)."""
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def sql_time(db: Database, at: dt.datetime) -> str:
    """A time literal as each back end stores it: SQLite UTC text without an offset,
    PostgreSQL with one."""
    at = at.astimezone(dt.UTC)
    if db.dialect == "sqlite":
        return at.replace(tzinfo=None).isoformat(sep=" ")
    return at.isoformat(sep=" ")


ICT = dt.timezone(dt.timedelta(hours=7))  # Vietnam


def reading(value: float, instrument: str = "balance", raw: bytes = b"\x00\xff\r\n") -> Any:
    from benchctl.instruments import Reading

    return Reading(value, "g", True, dt.datetime(2025, 11, 3, 9, 15, 30, 123456, tzinfo=ICT),
                   raw, instrument)


def seed_everything(db: Database) -> dict[str, Any]:
    """A small register and two runs that put rows into every audited table, including a
    reviewed and approved run (certificate_sequences). Each table also has a row nothing
    refers to (a "spare"), so a plain-SQL DELETE of it is not stopped by a foreign key."""
    from benchctl.records import approval
    from benchctl.store import repository as repo

    with db.session() as s:
        for name, roles in (("Op A", ["operator"]), ("Rev B", ["reviewer"]),
                            ("Sig C", ["signatory"]), ("Spare P", ["operator"])):
            repo.add_person(s, name, roles, actor="setup")
        repo.upsert_asset(s, "WS-E2-01", kind="weight_set", maker="Häfner", unit="g",
                          accuracy_class="E2")
        cert = repo.add_certificate(
            s, "WS-E2-01", number="M-2025-0456", issuer="VMI", issued_on=dt.date(2025, 3, 1),
            due_on=dt.date(2027, 3, 1),
            weights=[{"id": "2000g", "nominal_g": 2000.0, "correction_mg": 0.3, "U_mg": 3.0},
                     {"id": "1000g", "nominal_g": 1000.0, "correction_mg": -0.1, "U_mg": 1.6},
                     {"id": "1000g*", "nominal_g": 1000.0, "correction_mg": 0.2, "U_mg": 1.6}])
        spare_cert = repo.add_certificate(s, "WS-E2-01", number="OLD-1", issuer="VMI",
                                          issued_on=dt.date(2023, 3, 1),
                                          due_on=dt.date(2025, 3, 1))
        repo.upsert_asset(s, "BAL-0007", kind="balance", maker="Mettler Toledo",
                          serial="B123", customer="Công ty ABC", unit="g",
                          params={"max": 6200.0, "d": 0.1, "e": 0.1, "class": "II"})
        repo.upsert_asset(s, "SPARE-1", kind="balance", unit="g")
        proc = repo.register_procedure(s, "nawi_balance", "1.0", "NAWI", "OIML R76-1",
                                       "async def run(ctx): ...\n")
        repo.register_procedure(s, "spare", "0.1", "Spare", "-", "# spare\n")
        run = repo.create_run(s, procedure=proc, dut_asset_id="BAL-0007", mode="calibrate",
                              params={"decision_rule": "simple"}, decision_rule="simple",
                              bench="Bench 1", operator_kind="sim",
                              references=[(cert, "weights")], performed_by="Op A")
        spare_run = repo.create_run(s, procedure=proc, dut_asset_id="BAL-0007", mode="verify",
                                    params={}, decision_rule="simple", bench="Bench 1",
                                    operator_kind="sim", references=[], performed_by="Op A")
        run_id, spare_run_id = int(run.id), int(spare_run.id)
        cert_id, spare_cert_id = int(cert.id), int(spare_cert.id)
    # The points as the engine's recorder writes them: together, in one transaction.
    with db.transaction() as conn:
        repo.record_points(conn, [
            repo.prepare_point(run_id, "p1", {"test": "weighing", "nominal": 2000.0},
                               [reading(2000.02), reading(2000.0003, "weights")],
                               roles={"balance": "dut", "weights": "reference"}),
            repo.prepare_point(run_id, "p2", {"test": "weighing", "nominal": 1000.0},
                               [reading(1000.01)]),
            repo.prepare_point(run_id, "p3", {"test": "note"}, [])])
    with db.session() as s:
        repo.set_environment(s, run_id, "start", {"temperature_c": 20.5})
        repo.save_results(s, run_id, [{"key": "p1", "error": 0.02, "verdict": "pass"},
                                      {"key": "p2", "error": 0.01, "verdict": "pass"}], "pass")
        repo.set_run_state(s, run_id, "completed")
    approval.review(db, run_id, "Rev B")
    people = approval.approve(db, run_id, "Sig C")
    return {"run_id": run_id, "spare_run_id": spare_run_id, "cert_id": cert_id,
            "spare_cert_id": spare_cert_id, "certificate_number": people["certificate_number"]}

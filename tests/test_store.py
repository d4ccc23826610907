"""Records: migrations, durability, round trips, traceability and the audit chain.

Every test taking ``db`` or ``make_url`` runs on SQLite and on PostgreSQL (see dbhelp.py);
the few that are about one back end's own behaviour say so in their name.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dbhelp import sql, sql_time
from sqlalchemy import Column, Integer, create_engine, text
from sqlalchemy.orm import Session

import benchctl
from benchctl.engine.recorder import RunRecorder
from benchctl.errors import StoreError
from benchctl.instruments import Reading
from benchctl.store import Database, open_database
from benchctl.store import repository as repo
from benchctl.store.db import MIGRATIONS_DIR, _script_heads, mask_url, normalise_url
from benchctl.store.models import (
    Asset,
    AuditEvent,
    Base,
    Person,
    Point,
    ProcedureVersion,
    Result,
    Run,
    RunReference,
)

pytest_plugins = ["dbfixtures"]  # fixtures: db, make_url, backend (SQLite and PostgreSQL)

ICT = dt.timezone(dt.timedelta(hours=7))  # Vietnam
RAW = b"\x00\xff\r\n"


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'bench.db'}")
    yield database
    database.dispose()


def seed(db: Database, *, dut: str = "BAL-0007") -> int:
    """Register a weight set with its certificate, a DUT, a procedure, and start a run."""
    with db.session() as s:
        repo.upsert_asset(
            s,
            "WS-E2-01",
            kind="weight_set",
            maker="Häfner",
            model="E2 1 mg - 2 kg",
            serial="H-123",
            owner="Trung tâm Kỹ thuật TĐC 1",
            unit="g",
            accuracy_class="E2",
        )
        cert = repo.add_certificate(
            s,
            "WS-E2-01",
            number="M-2025-0456",
            issuer="Viện Đo lường Việt Nam (VMI)",
            issued_on=dt.date(2025, 3, 1),
            due_on=dt.date(2027, 3, 1),
            data={"set": "E2"},
            weights=[
                {"id": "2000g", "nominal_g": 2000.0, "correction_mg": 0.3, "U_mg": 3.0},
                {"id": "1000g", "nominal_g": 1000.0, "correction_mg": -0.1, "U_mg": 1.6},
                {"id": "1000g*", "nominal_g": 1000.0, "correction_mg": 0.2, "U_mg": 1.6},
            ],
        )
        repo.upsert_asset(
            s,
            dut,
            kind="balance",
            maker="Mettler Toledo",
            model="MS6002TS",
            serial="B123456789",
            customer="Công ty ABC",
            unit="g",
            range_min=0.0,
            range_max=6200.0,
            resolution=0.01,
            accuracy_class="II",
            params={"max": 6200.0, "d": 0.01, "e": 0.1},
        )
        proc = repo.register_procedure(
            s,
            "nawi_balance",
            "1.0",
            "Non-automatic weighing instruments",
            "OIML R76-1:2006, EURAMET cg-18 v4.0",
            "# procedure text\nasync def run(ctx): ...\n",
        )
        run = repo.create_run(
            s,
            procedure=proc,
            dut_asset_id=dut,
            mode="verify",
            params={"profile": "oiml", "loads": [500, 2000]},
            decision_rule="simple",
            bench="Balance bench 1",
            operator_kind="sim",
            references=[(cert, "weights")],
            performed_by="Nguyễn Văn A",
        )
        return run.id


def reading(value: float, instrument: str = "balance", raw: bytes = RAW) -> Reading:
    return Reading(
        value,
        "g",
        True,
        dt.datetime(2025, 11, 3, 9, 15, 30, 123456, tzinfo=ICT),
        raw,
        instrument,
    )


# --- schema ---------------------------------------------------------------------------------


def test_migration_from_empty_gives_exactly_the_models_schema(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import MetaData

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    assert _script_heads() == heads
    assert db.current_revision() == ",".join(sorted(heads))
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        # The comparison is live: a column the migrations do not create is reported.
        other = MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(other)
        other.tables["persons"].append_column(Column("extra", Integer))
        diffs = compare_metadata(MigrationContext.configure(conn), other)
        assert [d[0] for d in diffs] == ["add_column"]


def test_migrations_are_bundled_with_the_package() -> None:
    assert MIGRATIONS_DIR.is_relative_to(Path(benchctl.__file__).parent)
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))


def test_sqlite_file_is_created_in_a_new_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'bench.db'}"
    open_database(url).dispose()
    assert (tmp_path / "nested" / "dir" / "bench.db").is_file()


def test_schema_comes_from_alembic_and_reopening_is_a_no_op(make_url: Callable[..., str]) -> None:
    url = make_url(migrated=False)
    first = open_database(url)
    with first.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    first.dispose()
    second = open_database(url)
    assert second.is_at_head()
    second.dispose()


def test_not_upgraded_database_stays_empty(make_url: Callable[..., str]) -> None:
    db = open_database(make_url(migrated=False), upgrade=False)
    assert db.current_revision() is None
    db.upgrade()
    assert db.is_at_head()
    db.dispose()


def test_unknown_newer_revision_is_a_store_error(
    make_url: Callable[..., str], backend: str
) -> None:
    url = make_url()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match=f"cannot upgrade database {backend}"):
        open_database(url)


def test_sqlite_wal_and_synchronous_full_on_a_fresh_connection(sqlite_db: Database) -> None:
    db = sqlite_db
    db.dispose()  # drop pooled connections: the next one is fresh
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 1000


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(StoreError, match=r"(?i)foreign key"), db.session() as s:
        s.add(Point(run_id=999, key="x", seq=1, data={}, created_at=dt.datetime.now(dt.UTC)))


# --- URLs -----------------------------------------------------------------------------------


def test_url_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENCHCTL_DATABASE_URL", raising=False)
    db = open_database()
    assert db.url_masked == "sqlite:///benchctl.db"
    assert (tmp_path / "benchctl.db").is_file()
    db.dispose()
    monkeypatch.setenv("BENCHCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    db = open_database()
    assert db.url_masked.endswith("env.db")
    db.dispose()
    db = open_database(f"sqlite:///{tmp_path / 'arg.db'}")
    assert db.url_masked.endswith("arg.db")
    db.dispose()


def test_masked_urls() -> None:
    assert mask_url("postgresql+psycopg://bench:s3cr@t@db.local/lab") == (
        "postgresql+psycopg://bench:***@db.local/lab"
    )
    assert mask_url(normalise_url("postgresql://bench:p%40ss:w/rd@db.local:5433/lab")) == (
        "postgresql+psycopg://bench:***@db.local:5433/lab"
    )
    assert mask_url("postgresql://bench@db.local/lab") == "postgresql://bench@db.local/lab"
    assert mask_url("sqlite:///bench.db") == "sqlite:///bench.db"
    assert mask_url("not a url://u:pw@h/x") == "not a url://u:***@h/x"
    assert normalise_url("postgresql://bench:pw@h/lab").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://bench:pw@h/lab").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg2://h/lab").drivername == "postgresql+psycopg2"


def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError) as err:
        open_database(f"postgresql://bench:topsecret@127.0.0.1:{port}/lab")
    msg = str(err.value)
    assert msg.startswith(
        f"cannot open database postgresql+psycopg://bench:***@127.0.0.1:{port}/lab: "
    )
    assert "topsecret" not in msg and "topsecret" not in (err.value.detail or "")


def test_unopenable_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "adir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open database sqlite:///"):
        open_database(f"sqlite:///{tmp_path / 'adir.db'}")


def test_invalid_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="invalid database URL ::nonsense"):
        open_database("::nonsense")
    with pytest.raises(StoreError, match=r"invalid database URL postgresql://u:\*\*\*@h:x/db"):
        open_database("postgresql://u:pw@h:x/db")
    with pytest.raises(StoreError, match=r"postgresql://u:\*\*\*@h/db: a password containing"):
        open_database("postgresql://u:p@ss@h/db")
    with pytest.raises(StoreError, match=r"cannot open database nosuchdb://u:\*\*\*@h/db"):
        open_database("nosuchdb://u:pw@h/db")


# --- sessions -------------------------------------------------------------------------------


def test_session_rolls_back_on_exception(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        repo.upsert_asset(s, "X-1", kind="balance")
        raise RuntimeError("boom")
    with db.session() as s:
        assert repo.get_asset(s, "X-1") is None
        assert s.query(AuditEvent).count() == 0


# --- round trips ----------------------------------------------------------------------------


def test_round_trip_of_every_model(db: Database) -> None:
    run_id = seed(db)
    with db.session() as s:
        repo.add_person(s, "Trần Thị B", ["operator", "signatory"])
        repo.record_point(
            s,
            run_id,
            "weighing.up.2000g",
            {"test": "weighing", "direction": "up", "nominal": 2000.0, "unit": "g"},
            [reading(2000.02), reading(2000.0003, "weights")],
            roles={"balance": "dut", "weights": "reference"},
        )
        repo.set_environment(s, run_id, "start", {"temperature_c": 21.3, "humidity_pct": 55.0})
        repo.save_results(
            s,
            run_id,
            [{"key": "weighing.up.2000g", "error": 0.02, "mpe": 0.1, "verdict": "pass"}],
            "pass",
        )
        repo.set_run_state(s, run_id, "completed", "all points done")

    with db.session() as s:
        person = s.query(Person).one()
        assert (person.name, person.roles, person.active) == (
            "Trần Thị B",
            ["operator", "signatory"],
            True,
        )
        run = repo.get_run(s, run_id)
    assert run is not None
    # Everything below is read after the session closed: it was loaded eagerly.
    assert run.state == "completed" and run.state_message == "all points done"
    assert run.verdict == "pass"
    assert run.mode == "verify" and run.decision_rule == "simple"
    assert run.params == {"profile": "oiml", "loads": [500, 2000]}
    assert run.environment == {"start": {"temperature_c": 21.3, "humidity_pct": 55.0}}
    assert run.performed_by == "Nguyễn Văn A"
    assert run.host == socket.gethostname() and run.pid == os.getpid()
    assert run.revision == 1 and run.replaces_run_id is None
    assert run.ended_at is not None and run.ended_at >= run.started_at
    assert run.procedure.procedure_id == "nawi_balance"
    assert run.procedure.documents == "OIML R76-1:2006, EURAMET cg-18 v4.0"
    assert len(run.procedure.sha256) == 64
    dut = run.dut
    assert (dut.id, dut.kind, dut.customer, dut.range_max, dut.resolution) == (
        "BAL-0007",
        "balance",
        "Công ty ABC",
        6200.0,
        0.01,
    )
    assert dut.params == {"max": 6200.0, "d": 0.01, "e": 0.1}
    [ref] = run.references
    assert isinstance(ref, RunReference) and ref.role == "weights"
    cert = ref.certificate
    assert cert.number == "M-2025-0456" and cert.asset.maker == "Häfner"
    assert cert.issued_on == dt.date(2025, 3, 1) and cert.due_on == dt.date(2027, 3, 1)
    assert cert.data == {"set": "E2"}
    assert [(w.weight_id, w.nominal_g, w.correction_mg, w.U_mg, w.k) for w in cert.weights] == [
        ("2000g", 2000.0, 0.3, 3.0, 2.0),
        ("1000g", 1000.0, -0.1, 1.6, 2.0),
        ("1000g*", 1000.0, 0.2, 1.6, 2.0),
    ]
    [point] = run.points
    assert (point.key, point.seq) == ("weighing.up.2000g", 1)
    assert point.data["nominal"] == 2000.0
    [result] = run.results
    assert isinstance(result, Result) and result.revision == 1
    assert result.data["verdict"] == "pass"
    with db.session() as s:
        rows = repo.readings_of(s, run_id)
    assert [(r.instrument, r.role, r.value, r.unit, r.stable, r.point_key) for r in rows] == [
        ("balance", "dut", 2000.02, "g", True, "weighing.up.2000g"),
        ("weights", "reference", 2000.0003, "g", True, "weighing.up.2000g"),
    ]
    assert rows[0].point_id == point.id


def test_raw_bytes_preserved_exactly(db: Database) -> None:
    run_id = seed(db)
    every_byte = bytes(range(256))
    with db.session() as s:
        repo.record_point(s, run_id, "a", {}, [reading(1.0, raw=RAW)])
        repo.record_point(s, run_id, "b", {}, [reading(2.0, raw=every_byte)])
        repo.record_point(s, run_id, "c", {}, [reading(3.0, raw=b"")])
    with db.session() as s:
        assert [r.raw for r in repo.readings_of(s, run_id)] == [RAW, every_byte, b""]
    with db.engine.connect() as conn:
        raw = conn.execute(text("SELECT raw FROM readings ORDER BY id LIMIT 1")).scalar()
        assert bytes(raw) == RAW


def test_datetimes_come_back_timezone_aware_utc(db: Database) -> None:
    run_id = seed(db)
    taken = dt.datetime(2025, 11, 3, 9, 15, 30, 123456, tzinfo=ICT)
    with db.session() as s:
        repo.record_point(s, run_id, "a", {}, [reading(1.0)])
    with db.session() as s:
        [r] = repo.readings_of(s, run_id)
        run = repo.get_run(s, run_id)
        events = s.query(AuditEvent).all()
    assert r.taken_at == taken
    assert r.taken_at.tzinfo == dt.UTC and r.taken_at.hour == 2
    assert run is not None
    for value in (run.started_at, run.updated_at, run.points[0].created_at, events[0].at):
        assert value.tzinfo == dt.UTC
    assert run.started_at <= dt.datetime.now(dt.UTC)  # aware vs aware: no TypeError
    with db.engine.connect() as conn:  # SQLite: stored as UTC text; PostgreSQL: timestamptz
        stored = conn.execute(text("SELECT taken_at FROM readings")).scalar()
    if db.dialect == "sqlite":
        assert str(stored).startswith("2025-11-03 02:15:30.123456")
    else:
        assert stored == taken


def test_naive_datetimes_are_refused(db: Database) -> None:
    run_id = seed(db)
    naive = Reading(1.0, "g", True, dt.datetime(2025, 1, 1, 12, 0), b"", "balance")
    with pytest.raises(StoreError, match="naive"), db.session() as s:
        repo.record_point(s, run_id, "a", {}, [naive])


# --- points and runs ------------------------------------------------------------------------


def test_duplicate_point_key_rejected(db: Database) -> None:
    run_id = seed(db)
    with db.session() as s:
        p1 = repo.record_point(s, run_id, "weighing.up.500g", {}, [reading(500.0)])
        p2 = repo.record_point(s, run_id, "weighing.up.2000g", {}, [reading(2000.0)])
        assert (p1.seq, p2.seq) == (1, 2)
    dup = r"point weighing\.up\.500g is already recorded"
    with pytest.raises(StoreError, match=dup), db.session() as s:
        repo.record_point(s, run_id, "weighing.up.500g", {}, [reading(500.1)])
    with db.session() as s:
        points = repo.completed_points(s, run_id)
        assert list(points) == ["weighing.up.500g", "weighing.up.2000g"]
        assert points["weighing.up.500g"].readings[0].value == 500.0
        assert len(repo.readings_of(s, run_id)) == 2


def test_unique_constraint_backs_the_duplicate_check(db: Database) -> None:
    run_id = seed(db)
    with db.session() as s:
        repo.record_point(s, run_id, "k", {}, [])
    with pytest.raises(StoreError, match=r"(?i)unique"), db.session() as s:
        s.add(Point(run_id=run_id, key="k", seq=9, data={}, created_at=dt.datetime.now(dt.UTC)))


def test_points_refused_in_a_finished_run(db: Database) -> None:
    run_id = seed(db)
    with db.session() as s:
        repo.set_run_state(s, run_id, "completed")
    with pytest.raises(StoreError, match="is completed"), db.session() as s:
        repo.record_point(s, run_id, "late", {}, [])


def test_json_refuses_nan(db: Database) -> None:
    run_id = seed(db)
    with pytest.raises(StoreError, match="JSON"), db.session() as s:
        repo.record_point(s, run_id, "a", {"error": float("nan")}, [])


CHILD = textwrap.dedent(
    """
    import datetime as dt, os, sys
    from benchctl.instruments import Reading
    from benchctl.store import open_database
    from benchctl.store import repository as repo
    sys.path.insert(0, {tests!r})
    from test_store import seed

    db = open_database({url!r})
    run_id = seed(db)
    for i, key in enumerate(["weighing.up.500g", "weighing.up.1000g", "weighing.up.2000g"]):
        with db.session() as s:
            rd = Reading(float(i), "g", raw=b"\\x00\\xff")
            repo.record_point(s, run_id, key, {{"i": i}}, [rd])
    s = db._sessions()          # a unit of work in flight when the process dies
    repo.record_point(s, run_id, "weighing.up.5000g", {{}}, [Reading(5.0, "g")])
    s.flush()
    print(run_id, flush=True)
    os._exit(1)
    """
)


def test_committed_points_survive_a_crash(make_url: Callable[..., str]) -> None:
    url = make_url()
    src = str(Path(benchctl.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    script = CHILD.format(url=url, tests=str(Path(__file__).parent))
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, proc.stderr
    run_id = int(proc.stdout.strip())

    db = open_database(url)
    try:
        with db.session() as s:
            points = repo.completed_points(s, run_id)
            run = repo.get_run(s, run_id)
            assert run is not None
            owner_alive = repo.run_owner_alive(run)
        assert list(points) == ["weighing.up.500g", "weighing.up.1000g", "weighing.up.2000g"]
        assert [p.readings[0].raw for p in points.values()] == [b"\x00\xff"] * 3
        assert run.state == "running" and run.pid != os.getpid()
        assert owner_alive is False
        ok, why = _verify(db)
        assert ok, why
        # Resume: the dead owner's run passes to this process, and continues at the next point.
        with db.session() as s:
            repo.set_run_state(s, run_id, "running", "resumed after crash")
            repo.record_point(s, run_id, "weighing.up.5000g", {}, [reading(5000.0)])
        with db.session() as s:
            assert list(repo.completed_points(s, run_id))[-1] == "weighing.up.5000g"
            run = repo.get_run(s, run_id)
            assert run is not None and run.pid == os.getpid()
    finally:
        db.dispose()


def test_resume_refused_while_the_owner_lives(db: Database) -> None:
    run_id = seed(db)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with db.engine.begin() as conn:
            conn.execute(
                text("UPDATE runs SET pid = :p WHERE id = :r"), {"p": sleeper.pid, "r": run_id}
            )
        with pytest.raises(StoreError, match="still alive"), db.session() as s:
            repo.set_run_state(s, run_id, "running")
        with pytest.raises(StoreError, match="owned by process"), db.session() as s:
            repo.record_point(s, run_id, "x", {}, [])
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE runs SET host = 'bench-2' WHERE id = :r"), {"r": run_id})
        with pytest.raises(StoreError, match="on host bench-2"), db.session() as s:
            repo.set_run_state(s, run_id, "running")
        with db.session() as s:
            run = repo.set_run_state(s, run_id, "running", force=True)
            assert (run.host, run.pid) == (socket.gethostname(), os.getpid())
    finally:
        sleeper.kill()
        sleeper.wait()


def test_state_transitions(db: Database) -> None:
    run_id = seed(db)
    legal = ["paused", "running", "aborting", "aborted", "running", "failed", "running"]
    for state in legal:
        with db.session() as s:
            repo.set_run_state(s, run_id, state)
    for bad in ["aborted", "idle"]:  # running -> aborted skips aborting
        msg = f"cannot go from running to {bad}"
        with pytest.raises(StoreError, match=msg), db.session() as s:
            repo.set_run_state(s, run_id, bad)
    with pytest.raises(StoreError, match="unknown state"), db.session() as s:
        repo.set_run_state(s, run_id, "exploded")
    with db.session() as s:
        run = repo.set_run_state(s, run_id, "completed")
        assert run.ended_at is not None
    msg = "cannot go from completed to running"
    with pytest.raises(StoreError, match=msg), db.session() as s:
        repo.set_run_state(s, run_id, "running")
    with db.session() as s:
        states = [e.after["state"] for e in s.query(AuditEvent).filter_by(action="run.state")]
    assert states == [*legal, "completed"]
    assert all(
        to in repo.RUN_TRANSITIONS and frm in repo.RUN_TRANSITIONS
        for frm, tos in repo.RUN_TRANSITIONS.items()
        for to in tos
    )


def test_state_may_be_a_str_enum(db: Database) -> None:
    import enum

    class RunState(enum.StrEnum):
        PAUSED = "paused"

    run_id = seed(db)
    with db.session() as s:
        repo.set_run_state(s, run_id, RunState.PAUSED)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM runs")).scalar() == "paused"


def test_claim_run(db: Database) -> None:
    run_id = seed(db)
    with db.session() as s:  # already ours: nothing happens
        repo.claim_run(s, run_id)
        assert s.query(AuditEvent).filter_by(action="run.claim").count() == 0
    _sql(db, "UPDATE runs SET pid = 999999999 WHERE id = :r", r=run_id)  # a dead owner
    with db.session() as s:
        run = repo.claim_run(s, run_id)
        assert run.pid == os.getpid()
        [event] = s.query(AuditEvent).filter_by(action="run.claim").all()
        assert event.before == {"host": socket.gethostname(), "pid": 999999999}


def test_latest_results(db: Database) -> None:
    run_id = seed(db)
    with db.session() as s:
        repo.save_results(s, run_id, [{"key": "b", "e": 1}, {"key": "a", "e": 2}], "pass")
        s.add(Result(run_id=run_id, key="b", revision=2, data={"key": "b", "e": 3}))
        repo.append_audit(s, "tester", "results.revise", "run", str(run_id), None, {"b": 2})
    with db.session() as s:
        latest = repo.latest_results(s, run_id)
    assert [(r.key, r.revision, r.data["e"]) for r in latest] == [("b", 2, 3), ("a", 1, 2)]


def test_list_runs_newest_first_through_an_index(db: Database) -> None:
    ids = [seed(db, dut=f"BAL-{i}") for i in range(3)]
    with db.session() as s:
        runs = repo.list_runs(s)
        assert [r.id for r in runs] == ids[::-1]
        assert runs[0].procedure.procedure_id == "nawi_balance"
        assert runs[0].dut.id == "BAL-2"
        assert [r.id for r in repo.list_runs(s, limit=1, offset=1)] == [ids[1]]
    if db.dialect != "sqlite":  # the plan check below is SQLite's; PostgreSQL plans by stats
        return
    stmt = repo._list_runs_stmt(50, 0).compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {stmt}"))
    assert "TEMP B-TREE" not in plan.upper(), plan


def test_save_results_once(db: Database) -> None:
    run_id = seed(db)
    results = [{"key": "a", "error": 0.01, "verdict": "pass"}]
    with db.session() as s:
        repo.save_results(s, run_id, results, "pass")
    with db.session() as s:  # the same again is fine (e.g. a retried unit of work)
        repo.save_results(s, run_id, results, "pass")
    with pytest.raises(StoreError, match="new revision"), db.session() as s:
        repo.save_results(s, run_id, [{"key": "a", "error": 0.02}], "fail")
    with pytest.raises(StoreError, match="no key"), db.session() as s:
        repo.save_results(s, run_id, [{"error": 0.02}], "fail")


# --- register -------------------------------------------------------------------------------


def test_asset_upsert_is_audited(db: Database) -> None:
    with db.session() as s:
        repo.upsert_asset(s, "BAL-1", kind="balance", unit="g")
        repo.upsert_asset(s, "BAL-1", unit="g")  # nothing changes: no event
        repo.upsert_asset(s, "BAL-1", serial="S-1")
        with pytest.raises(StoreError, match="unknown field"):
            repo.upsert_asset(s, "BAL-1", colour="red")
        events = s.query(AuditEvent).order_by(AuditEvent.id).all()
    assert [e.action for e in events] == ["asset.create", "asset.update"]
    assert events[1].before["serial"] is None and events[1].after["serial"] == "S-1"
    with pytest.raises(StoreError, match="needs a kind"), db.session() as s:
        repo.upsert_asset(s, "BAL-2", unit="g")


def test_certificates(db: Database) -> None:
    seed(db)
    with db.session() as s:
        old = repo.add_certificate(
            s,
            "WS-E2-01",
            number="M-2023-0100",
            issuer="VMI",
            issued_on=dt.date(2023, 3, 1),
            due_on=dt.date(2025, 3, 1),
        )
        same = repo.add_certificate(
            s,
            "WS-E2-01",
            number="M-2023-0100",
            issuer="VMI",
            issued_on=dt.date(2023, 3, 1),
            due_on=dt.date(2025, 3, 1),
        )
        assert same.id == old.id
        with pytest.raises(StoreError, match="different due_on"):
            repo.add_certificate(
                s,
                "WS-E2-01",
                number="M-2023-0100",
                issuer="VMI",
                issued_on=dt.date(2023, 3, 1),
                due_on=dt.date(2026, 3, 1),
            )
        with pytest.raises(StoreError, match="not in the register"):
            repo.add_certificate(
                s,
                "NOPE",
                number="1",
                issuer="VMI",
                issued_on=dt.date(2023, 3, 1),
                due_on=dt.date(2026, 3, 1),
            )
        cur = repo.current_certificate(s, "WS-E2-01", dt.date(2025, 11, 1))
        assert cur is not None and cur.number == "M-2025-0456" and len(cur.weights) == 3
        by_id = repo.get_certificate(s, cur.id)
        assert by_id is not None and by_id.asset.kind == "weight_set"
        assert repo.find_certificate(s, "WS-E2-01", "M-2023-0100") is not None
        assert repo.get_certificate(s, 12345) is None
        past = repo.current_certificate(s, "WS-E2-01", dt.date(2024, 6, 1))
        assert past is not None and past.number == "M-2023-0100"
        assert repo.current_certificate(s, "WS-E2-01", dt.date(2020, 1, 1)) is None
    assert not old.is_due(dt.date(2025, 3, 1))  # the due date itself is still usable
    assert old.is_due(dt.date(2025, 3, 2))
    with pytest.raises(StoreError, match="given twice"), db.session() as s:
        repo.add_certificate(
            s,
            "WS-E2-01",
            number="X",
            issuer="VMI",
            issued_on=dt.date(2025, 1, 1),
            due_on=dt.date(2026, 1, 1),
            weights=[
                {"id": "1g", "nominal_g": 1, "correction_mg": 0, "U_mg": 0.01},
                {"id": "1g", "nominal_g": 1, "correction_mg": 0, "U_mg": 0.01},
            ],
        )


def test_procedure_dedupe_by_sha256(db: Database) -> None:
    with db.session() as s:
        a = repo.register_procedure(s, "p", "1", "P", "doc", "text ấ")
        b = repo.register_procedure(s, "p", "1", "P", "doc", "text ấ")
        c = repo.register_procedure(s, "p", "1.1", "P", "doc", "text ấ 2")
        assert a.id == b.id != c.id
        assert s.query(ProcedureVersion).count() == 2
    import hashlib

    assert a.sha256 == hashlib.sha256("text ấ".encode()).hexdigest()


# --- audit ----------------------------------------------------------------------------------


def _verify(db: Database) -> tuple[bool, str | None]:
    with db.session() as s:
        return repo.verify_audit(s)


def _audited(db: Database, n: int = 6) -> None:
    with db.session() as s:
        for i in range(n):
            repo.append_audit(s, "tester", "test.event", "thing", str(i), {"i": i}, {"i": i + 1})


def test_audit_chain_verifies(db: Database) -> None:
    assert _verify(db) == (True, None)
    seed(db)
    _audited(db)
    with db.session() as s:
        events = s.query(AuditEvent).order_by(AuditEvent.id).all()
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == repo.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert _verify(db) == (True, None)


_sql = sql


def test_audit_detects_an_altered_event(db: Database) -> None:
    _audited(db)
    _sql(db, """UPDATE audit_events SET "after" = '{"i": 99}' WHERE id = 3""")
    ok, why = _verify(db)
    assert not ok and why is not None and why.startswith("event 3: altered"), why


def test_audit_detects_a_deleted_event(db: Database) -> None:
    _audited(db)
    _sql(db, "DELETE FROM audit_events WHERE id = 3")
    ok, why = _verify(db)
    assert not ok and why is not None and why.startswith("event 3: deleted"), why


def test_audit_detects_an_inserted_event(db: Database) -> None:
    _audited(db)
    # A forged event appended at the end with a made-up hash.
    _sql(
        db,
        "INSERT INTO audit_events (id, at, actor, action, entity, entity_id, prev_hash, hash) "
        "SELECT 7, at, 'forger', 'test.event', 'thing', '99', hash, :h "
        "FROM audit_events WHERE id = 6",
        h="f" * 64,
    )
    ok, why = _verify(db)
    assert not ok and why is not None and why.startswith("event 7: altered"), why


def test_audit_detects_an_event_inserted_in_the_middle(db: Database) -> None:
    _audited(db)
    with db.session() as s:
        second = s.get(AuditEvent, 2)
        assert second is not None
        prev = second.hash
    # Make room at id 3, then insert a forged event with a correct hash chained to event 2.
    for i in range(6, 2, -1):
        _sql(db, "UPDATE audit_events SET id = :n WHERE id = :o", n=i + 1, o=i)
    at = dt.datetime.now(dt.UTC)
    forged = repo._event_hash(3, at, "forger", "x", "thing", "1", None, None, prev)
    _sql(
        db,
        "INSERT INTO audit_events (id, at, actor, action, entity, entity_id, prev_hash, hash) "
        "VALUES (3, :at, 'forger', 'x', 'thing', '1', :p, :h)",
        at=sql_time(db, at),
        p=prev,
        h=forged,
    )
    ok, why = _verify(db)
    assert not ok and why is not None and why.startswith("event 3: inserted"), why


def test_concurrent_audit_appends_stay_linear(db: Database) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(25):
                with db.session() as s:
                    repo.append_audit(s, name, "test.event", "thing", str(i), None, {"i": i})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(f"bench{n}",)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with db.session() as s:
        assert s.query(AuditEvent).count() == 50
    assert _verify(db) == (True, None)


def test_every_record_is_audited(db: Database) -> None:
    run_id = seed(db)
    with db.session() as s:
        repo.record_point(s, run_id, "p1", {"x": 1}, [reading(1.0)])
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.id)]
        [point_event] = s.query(AuditEvent).filter_by(action="points.record").all()
    assert actions == [
        "asset.create",
        "certificate.add",
        "asset.create",
        "procedure.register",
        "run.create",
        "points.record",
    ]
    assert (point_event.entity, point_event.entity_id) == ("run", str(run_id))
    assert point_event.actor == "Nguyễn Văn A"
    [p1] = point_event.after["points"]
    assert (p1["key"], p1["seq"], p1["data"]) == ("p1", 1, {"x": 1})
    [rd] = p1["readings"]
    assert rd["value"] == 1.0 and len(rd["raw_sha256"]) == 64


def test_models_are_the_ones_exported() -> None:
    assert {Asset, Run, Point}.issubset({m.class_ for m in Base.registry.mappers})
    assert Run.__tablename__ == "runs"


def test_row_digest_is_the_same_whichever_back_end_loaded_the_row() -> None:
    from benchctl.store.integrity import row_digest

    aware = dt.datetime(2025, 11, 3, 9, 15, 30, 123456, tzinfo=ICT)
    naive_utc = dt.datetime(2025, 11, 3, 2, 15, 30, 123456)  # how SQLite hands it back
    row = {"id": 1, "at": aware, "raw": memoryview(b"\x00\xff"), "data": {"b": 1, "a": 2.5},
           "on": dt.date(2025, 1, 2)}
    same = {"data": {"a": 2.5, "b": 1}, "on": dt.date(2025, 1, 2), "raw": b"\x00\xff",
            "at": naive_utc, "id": 1, "added_later": None}
    assert row_digest(row) == row_digest(same)  # NULL columns do not count: migrations
    for changed in ({"id": 2}, {"raw": b"\x00\xfe"}, {"data": {"a": 2.5, "b": 2}},
                    {"added_later": 0}, {"at": naive_utc + dt.timedelta(microseconds=1)}):
        assert row_digest({**same, **changed}) != row_digest(same), changed
    assert row_digest({"v": float("nan")}) == row_digest({"v": float("nan")})


# --- the recorder's hot path: several points in one transaction, and the point writer ------


def more_runs(db: Database, run_id: int, n: int) -> list[int]:
    """``n`` more runs like ``run_id`` (same procedure, DUT and performer)."""
    with db.session() as s:
        first = s.get(Run, run_id)
        assert first is not None
        return [int(repo.create_run(s, procedure=first.procedure, dut_asset_id=first.dut_asset_id,
                                    mode="verify", params={}, decision_rule="simple",
                                    bench=f"Balance bench {i + 2}", operator_kind="sim",
                                    references=[], performed_by="Nguyễn Văn A").id)
                for i in range(n)]


def test_points_of_several_runs_in_one_transaction_verify(db: Database) -> None:
    """record_points writes several points (of several runs) at once and computes the digests
    its events carry from the values written: verify must find every row as recorded, and a
    plain-SQL change of any of those rows must still be caught."""
    run_a = seed(db)
    [run_b] = more_runs(db, run_a, 1)
    items = [
        repo.prepare_point(run_a, "weighing.up.500g", {"nominal": 500.0, "at": dt.date(2025, 1, 2)},
                           [reading(500.01), reading(500.0002, "weights", raw=b"")],
                           {"balance": "dut", "weights": "reference"}),
        repo.prepare_point(run_b, "weighing.up.500g", {"nominal": 500.0},
                           [reading(499.99, raw=bytes(range(256)))], {"balance": "dut"}),
        repo.prepare_point(run_a, "weighing.up.2000g", {"nominal": 2000.0}, []),
        repo.prepare_point(run_b, "note", {"text": "Đường"}, [reading(-0.0), reading(1e-300)]),
        # Values a back end might hand back otherwise than they were written.
        repo.prepare_point(run_a, "edge", {"big": 10**30, "tiny": 5e-324, "neg": -0.0, "": []},
                           [Reading(1.7976931348623157e308, "", False,
                                    dt.datetime(2025, 11, 3, 23, 59, 59, 999999,
                                                tzinfo=dt.timezone(dt.timedelta(hours=5,
                                                                                minutes=45))),
                                    b"\r\n", "cân Đức"),
                            Reading(5e-324, "kPa", True, dt.datetime(2024, 2, 29, tzinfo=dt.UTC),
                                    b"", "x" * 100)],
                           {"cân Đức": "dut"}),
    ]
    with db.transaction() as conn:
        ids = repo.record_points(conn, items)
    assert len(set(ids)) == 5
    assert _verify(db) == (True, None)
    with db.session() as s:
        a = repo.completed_points(s, run_a)
        b = repo.completed_points(s, run_b)
        assert [(p.key, p.seq) for p in a.values()] == [("weighing.up.500g", 1),
                                                       ("weighing.up.2000g", 2), ("edge", 3)]
        assert [(p.key, p.seq) for p in b.values()] == [("weighing.up.500g", 1), ("note", 2)]
        assert [r.raw for r in b["weighing.up.500g"].readings] == [bytes(range(256))]
        assert [(r.role, r.value) for r in a["weighing.up.500g"].readings] == [
            ("dut", 500.01), ("reference", 500.0002)]
        # One event per run of the commit, naming its points in the order taken.
        events = s.query(AuditEvent).filter_by(action="points.record").order_by(AuditEvent.id)
        assert [(e.entity_id, [p["key"] for p in e.after["points"]]) for e in events] == [
            (str(run_a), ["weighing.up.500g", "weighing.up.2000g", "edge"]),
            (str(run_b), ["weighing.up.500g", "note"])]
    # Recorded from the values written, the digests are those verify computes from the rows.
    with db.engine.connect() as conn:
        conn.execute(text("UPDATE readings SET value = 499.98 WHERE run_id = :r"), {"r": run_b})
        with Session(bind=conn) as s:
            problems = repo.audit_problems(s)
        conn.rollback()
    assert len(problems) == 3 and all("altered behind benchctl's back" in p for p in problems)
    # Another point later: each run goes on at its next seq, and the chain goes on.
    with db.transaction() as conn:
        repo.record_points(conn, [repo.prepare_point(run_a, "late", {}, [reading(1.0)])])
    with db.session() as s:
        assert list(repo.completed_points(s, run_a))[-1] == "late"
        assert repo.completed_points(s, run_a)["late"].seq == 4
    assert _verify(db) == (True, None)


def test_a_group_refusing_a_point_writes_nothing(db: Database) -> None:
    run_id = seed(db)
    with db.session() as s:
        repo.record_point(s, run_id, "a", {}, [reading(1.0)])
    for keys in (["b", "a"], ["c", "c"]):
        with pytest.raises(StoreError, match="already recorded"), db.transaction() as conn:
            repo.record_points(conn, [repo.prepare_point(run_id, k, {}, [reading(2.0)])
                                      for k in keys])
    with db.session() as s:
        assert list(repo.completed_points(s, run_id)) == ["a"]
    assert _verify(db) == (True, None)


def test_reading_values_json_cannot_hold_are_refused(db: Database) -> None:
    run_id = seed(db)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(StoreError, match="JSON"):
            repo.prepare_point(run_id, "a", {}, [reading(bad)])


def _hold_first_commit(monkeypatch: pytest.MonkeyPatch, writer: Any, behind: int,
                       fail_first: BaseException | None = None) -> list[int]:
    """Hold the writer's first commit until ``behind`` more points wait for the next one; the
    sizes of the groups written, in order."""
    real = repo.record_points
    sizes: list[int] = []

    def held(conn: Any, items: Any, **kw: Any) -> list[int]:
        sizes.append(len(items))
        if len(sizes) == 1:
            deadline = time.monotonic() + 20
            while len(writer._queue) < behind and time.monotonic() < deadline:
                time.sleep(0.002)
            if fail_first is not None:
                raise fail_first
        return real(conn, items, **kw)

    monkeypatch.setattr(repo, "record_points", held)
    return sizes


def _record_in_threads(recorders: dict[int, RunRecorder], calls: list[tuple[int, str]]
                       ) -> dict[str, BaseException | None]:
    """Each (run, key) recorded by its run's recorder in a thread of its own (the first one
    first, the others once it is being written), each waiting for its commit."""
    outcome: dict[str, BaseException | None] = {}

    def record(run_id: int, key: str) -> None:
        try:
            recorders[run_id].record_point(run_id, key, {"k": key}, [reading(1.0)],
                                           {"balance": "dut"})
            outcome[f"{run_id}:{key}"] = None
        except BaseException as exc:  # collected for the test to look at
            outcome[f"{run_id}:{key}"] = exc

    threads = [threading.Thread(target=record, args=call) for call in calls]
    threads[0].start()
    writer = next(iter(recorders.values())).writer
    while writer._thread is None or writer._queue:
        time.sleep(0.001)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a record_point call never returned"
    return outcome


def test_points_arriving_during_a_commit_share_the_next_one(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchctl.engine.recorder import point_writer

    run_id = seed(db)
    runs = [run_id, *more_runs(db, run_id, 3)]
    recorders = {r: RunRecorder(db) for r in runs}
    writer = recorders[run_id].writer
    assert all(rec.writer is writer for rec in recorders.values())
    assert point_writer(db) is writer  # one writer per database
    sizes = _hold_first_commit(monkeypatch, writer, behind=3)
    outcome = _record_in_threads(recorders, [(r, "p1") for r in runs])
    assert outcome == {f"{r}:p1": None for r in runs}
    assert sizes == [1, 3]  # the first alone, the three that arrived meanwhile together
    assert (writer.commits, writer.points) == (2, 4)
    with db.session() as s:
        assert all(list(repo.completed_points(s, r)) == ["p1"] for r in runs)
    assert _verify(db) == (True, None)


def test_a_refused_point_fails_its_own_run_only(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = seed(db)
    other, finished = more_runs(db, run_id, 2)
    with db.session() as s:
        repo.record_point(s, run_id, "dup", {}, [])
        repo.set_run_state(s, finished, "running")
        repo.set_run_state(s, finished, "completed")
    recorders = {r: RunRecorder(db) for r in (run_id, other, finished)}
    _hold_first_commit(monkeypatch, recorders[run_id].writer, behind=3)
    outcome = _record_in_threads(recorders, [(run_id, "first"), (run_id, "dup"),
                                             (other, "fine"), (finished, "late")])
    assert outcome[f"{run_id}:first"] is None and outcome[f"{other}:fine"] is None
    assert "already recorded" in str(outcome[f"{run_id}:dup"])
    assert "is completed" in str(outcome[f"{finished}:late"])
    # The refused run goes no further: its recorder refuses the next point at once.
    with pytest.raises(StoreError, match="already recorded"):
        recorders[run_id].submit_point(run_id, "after", {}, [reading(1.0)], {})
    with db.session() as s:
        assert list(repo.completed_points(s, run_id)) == ["dup", "first"]
        assert list(repo.completed_points(s, other)) == ["fine"]
    assert _verify(db) == (True, None)


def test_points_after_a_refused_one_are_not_recorded(db: Database,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's record is the first points it took: once one is refused, the points it handed
    over after it are refused too, even those the writer takes in the same commit."""
    run_id = seed(db)
    with db.session() as s:
        repo.record_point(s, run_id, "b", {}, [])
    recorder = RunRecorder(db)
    sizes = _hold_first_commit(monkeypatch, recorder.writer, behind=3)
    tickets = [recorder.submit_point(run_id, "a", {}, [reading(1.0)], {})]
    while recorder.writer._queue:  # the writer has taken "a" alone
        time.sleep(0.001)
    tickets += [recorder.submit_point(run_id, k, {}, [reading(1.0)], {}) for k in "bcd"]
    recorder.wait_durable(raise_failure=False)
    assert sizes[:2] == [1, 3]  # "a" alone, then b, c, d together (refused), then b alone
    assert [t.error is None for t in tickets] == [True, False, False, False]
    assert "already recorded" in str(tickets[1].error)
    assert "an earlier point was not" in str(tickets[2].error)
    with pytest.raises(StoreError, match="already recorded"):
        recorder.wait_durable()
    with db.session() as s:
        assert list(repo.completed_points(s, run_id)) == ["b", "a"]
    assert _verify(db) == (True, None)


def test_an_interrupted_commit_leaves_no_caller_waiting(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = seed(db)
    runs = [run_id, *more_runs(db, run_id, 2)]
    recorders = {r: RunRecorder(db) for r in runs}
    _hold_first_commit(monkeypatch, recorders[run_id].writer, behind=2,
                       fail_first=KeyboardInterrupt())
    outcome = _record_in_threads(recorders, [(r, "p1") for r in runs])
    assert isinstance(outcome[f"{run_id}:p1"], StoreError)
    assert "interrupted: KeyboardInterrupt" in str(outcome[f"{run_id}:p1"])
    # The two queued behind it were committed by the next commit.
    assert [outcome[f"{r}:p1"] for r in runs[1:]] == [None, None]
    # The writer goes on: a point of another run goes through at once.
    recorders[runs[1]].record_point(runs[1], "p2", {}, [reading(2.0)], {})
    with db.session() as s:
        assert list(repo.completed_points(s, runs[1])) == ["p1", "p2"]
        assert list(repo.completed_points(s, run_id)) == []
    assert _verify(db) == (True, None)


def test_the_hot_path_texts_are_the_general_ones() -> None:
    """record_points builds its digests and its audit event as text from pieces: they must be
    byte for byte what integrity.row_digest, canonical and event_hash make, for awkward
    values too (quotes, control characters, non-ASCII, line separators, float extremes)."""
    import json
    import random

    from benchctl.store import integrity, points

    rnd = random.Random(7)
    texts = ["", "cân Đức", 'a"b\\c', "\u2028\x00\x1f\t", "x" * 300, "🙂", "\ud7ff"]
    floats = [0.0, 1e-300, 5e-324, 1.7976931348623157e308, -2.5, 100.0105, 1 / 3, 1e16, 12.0]
    zones = [dt.UTC, dt.timezone(dt.timedelta(hours=7)),
             dt.timezone(dt.timedelta(hours=-3, minutes=-30))]
    for i in range(300):
        at = dt.datetime(2025, 1, 1, tzinfo=zones[i % 3]) + dt.timedelta(
            seconds=rnd.uniform(0, 1e8))
        instrument, role, unit, key = (rnd.choice(texts) for _ in range(4))
        raw = rnd.randbytes(rnd.randint(0, 40))
        data = {rnd.choice(texts): rnd.choice(floats), "n": i, "nested": {"b": [1, None, True],
                                                                           "a": "x"}}
        item = points.prepare_point(5, key or "k", data,
                                    [Reading(rnd.choice(floats), unit, i % 2 == 0, at, raw,
                                             instrument)], {instrument: role})
        [r] = item.readings
        value = r.sqlite_row[3]
        assert r.pg_row[3] == value and (r.pg_row[5], r.sqlite_row[5]) == (i % 2 == 0, i % 2 == 0)
        row = {"id": i + 1, "run_id": 5, "point_id": 9, "point_key": key or "k",
               "instrument": instrument, "role": role, "value": value, "unit": unit,
               "stable": i % 2 == 0, "taken_at": at, "raw": raw}
        assert points._sha(points.reading_digest_text(i + 1, 9, r)) == integrity.row_digest(row)
        created = dt.datetime.now(dt.UTC)
        assert points._sha(points.point_digest_text(
            3, item, 2, created.isoformat(timespec="microseconds"))) == integrity.row_digest(
            {"id": 3, "run_id": 5, "key": key or "k", "seq": 2,
             "data": json.loads(item.data_text), "created_at": created})
        assert item.data_text == integrity.canonical(json.loads(item.data_text)).decode()
        assert r.summary == integrity.canonical(json.loads(r.summary)).decode()
        entry = f"{item.entry_head}2}}"
        assert entry == integrity.canonical(json.loads(entry)).decode()
        assert json.loads(entry) == {"data": json.loads(item.data_text), "key": key or "k",
                                     "readings": [json.loads(r.summary)], "seq": 2}
        after = {"_rows": {"points:3": "ab" * 32}, "points": [json.loads(entry)],
                 "run_id": 5}
        after_text = integrity.canonical(after).decode()
        assert points.event_hash_of_text(
            i, created.isoformat(timespec="microseconds"), instrument, "points.record", "run",
            key, after_text, "f" * 64) == integrity.event_hash(
            i, created, instrument, "points.record", "run", key, None, after, "f" * 64)
    # Keys JSON would turn into text sort as text: the general way is taken.
    item = points.prepare_point(5, "k", {10: "a", 9: "b", "x": {2: 1}}, [])
    assert item.data_text == '{"10":"a","9":"b","x":{"2":1}}'




# --- the engine's side: points shown once committed, nothing asked before ------------------


class _Listening:
    """An operator channel that notes every event and question, and answers "ok"."""

    kind = "test"

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def ask(self, request: Any) -> Any:
        from benchctl.operator import OperatorAnswer

        self.seen.append(f"ask {request.key}")
        return OperatorAnswer(value="ok")

    async def event(self, event: dict[str, Any]) -> None:
        if event["event"] in ("point", "point_started"):
            self.seen.append(f"{event['event']} {event['key']}")

    def bind(self, ctx: Any) -> None:
        pass


def _context(db: Database, run_id: int, operator: _Listening) -> Any:
    from types import SimpleNamespace

    from benchctl.engine.clock import RunClock
    from benchctl.engine.context import RunContext, RunInfo
    from benchctl.engine.states import RunState, StateMachine

    return RunContext(RunInfo(run_id, "p", "verify", {}, "en", None), clock=RunClock(),
                      operator=operator,  # type: ignore[arg-type]
                      instruments={"dut": SimpleNamespace(name="balance")},  # type: ignore
                      store=RunRecorder(db), done={}, state=StateMachine(RunState.RUNNING))


def _hold_commits(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Every commit of the writer waits until the event returned is set."""
    release = threading.Event()
    real = repo.record_points

    def held(conn: Any, items: Any, **kw: Any) -> list[int]:
        release.wait(20)
        return real(conn, items, **kw)

    monkeypatch.setattr(repo, "record_points", held)
    return release


def _measured(value: float) -> Callable[[], Any]:
    async def measure() -> tuple[dict[str, Any], list[Reading]]:
        return {"indicated": value}, [reading(value)]

    return measure


def _run_points(db: Database, run_id: int, points: int,
                while_running: Callable[[Any, Any], Awaitable[None]],
                measure: Callable[[int], Callable[[], Any]] = lambda i: _measured(float(i)),
                ) -> None:
    """A procedure of ``points`` points (p0, p1, ...) in a run context: ``while_running(ctx,
    task)`` looks at it as it goes (with the writer held) and lets the writer go; the run
    then ends, as the runner ends one, once every point is committed."""
    import asyncio

    async def run() -> None:
        ctx = _context(db, run_id, _Listening())
        try:
            async def procedure() -> None:
                for i in range(points):
                    await ctx.point(f"p{i}", measure(i))

            task = asyncio.ensure_future(procedure())
            await while_running(ctx, task)
            await task
            await ctx.durable()
        finally:
            ctx.close()

    asyncio.run(run())


def test_a_point_is_shown_and_the_operator_asked_only_once_it_is_committed(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The procedure goes on while its point is written, but nobody sees the point, and the
    operator is asked nothing, before the point is committed."""
    import asyncio

    run_id = seed(db)
    release = _hold_commits(monkeypatch)
    operator = _Listening()

    async def run() -> None:
        ctx = _context(db, run_id, operator)
        try:
            assert await ctx.point("a", _measured(1.0)) == {"indicated": 1.0}
            assert ctx.store.pending == 1  # handed over, not yet committed
            asking = asyncio.ensure_future(ctx.instruct("load", "Đặt quả cân / Load"))
            await asyncio.sleep(0.2)
            assert operator.seen == ["point_started a"], "shown or asked before the commit"
            release.set()
            await asking
            assert operator.seen == ["point_started a", "point a", "ask load"]
        finally:
            ctx.close()

    asyncio.run(run())
    with db.session() as s:
        assert list(repo.completed_points(s, run_id)) == ["a"]


def test_a_refused_point_stops_the_run_at_its_next_step(db: Database) -> None:
    import asyncio

    run_id = seed(db)
    with db.session() as s:
        repo.record_point(s, run_id, "b", {}, [])
    operator = _Listening()

    async def run() -> None:
        ctx = _context(db, run_id, operator)
        try:
            await ctx.point("a", _measured(1.0))
            await ctx.point("b", _measured(2.0))  # refused by the database, a moment later
            with pytest.raises(StoreError, match="already recorded"):
                await ctx.durable()
            with pytest.raises(StoreError, match="already recorded"):
                await ctx.point("c", _measured(3.0))
        finally:
            ctx.close()

    asyncio.run(run())
    assert "point a" in operator.seen and "point b" not in operator.seen
    with db.session() as s:
        assert list(repo.completed_points(s, run_id)) == ["b", "a"]
    assert _verify(db) == (True, None)


def test_a_procedure_ahead_of_the_writer_waits_for_it(db: Database,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-pressure: with the writer held, a procedure hands over at most MAX_PENDING points,
    and goes on no further than AHEAD_AT_MOST_S past the oldest one not committed, before it
    waits; released, everything lands in order."""
    import asyncio

    from benchctl.engine.recorder import AHEAD_AT_MOST_S, MAX_PENDING

    run_id = seed(db)
    release = _hold_commits(monkeypatch)
    total = MAX_PENDING + 40

    async def while_running(ctx: Any, task: Any) -> None:
        await asyncio.sleep(0.3)
        assert not task.done()
        assert 1 <= ctx.store.pending <= MAX_PENDING
        assert ctx.store.behind() > AHEAD_AT_MOST_S
        release.set()

    _run_points(db, run_id, total, while_running)
    with db.session() as s:
        assert list(repo.completed_points(s, run_id)) == [f"p{i}" for i in range(total)]
    assert _verify(db) == (True, None)


def test_a_procedure_goes_no_further_than_its_record_allows(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow procedure (a point every 20 ms) with the writer stuck: it stops handing over
    points once the oldest one waiting is AHEAD_AT_MOST_S old, far below MAX_PENDING, so a
    power cut could take only its last moments of work."""
    import asyncio

    from benchctl.engine.recorder import AHEAD_AT_MOST_S, MAX_PENDING

    run_id = seed(db)
    release = _hold_commits(monkeypatch)

    def slowly(i: int) -> Callable[[], Any]:
        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            await asyncio.sleep(0.02)
            return {"i": i}, [reading(float(i))]

        return measure

    async def while_running(ctx: Any, task: Any) -> None:
        await asyncio.sleep(0.5)
        assert not task.done()
        # A point every 20 ms (or slower): the one handed over first, those within 50 ms of
        # it, and the one that found it older than that.
        assert 1 <= ctx.store.pending <= int(AHEAD_AT_MOST_S / 0.02) + 2 < MAX_PENDING
        release.set()

    _run_points(db, run_id, 40, while_running, slowly)
    with db.session() as s:
        assert len(repo.completed_points(s, run_id)) == 40


def test_commits_shorten_the_switch_interval_while_they_last(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer asks for prompt GIL hand-offs only while it commits, and puts back what
    was there, also when two writers overlap."""
    from benchctl.engine import recorder as rec

    run_id = seed(db)
    seen: list[float] = []
    real = repo.record_points

    def watching(conn: Any, items: Any, **kw: Any) -> list[int]:
        seen.append(sys.getswitchinterval())
        return real(conn, items, **kw)

    monkeypatch.setattr(repo, "record_points", watching)
    before = sys.getswitchinterval()
    recorder = RunRecorder(db)
    recorder.record_point(run_id, "a", {}, [reading(1.0)], {})
    assert recorder.writer.drain(10)  # the commit's end is a moment after the point's
    assert seen == [pytest.approx(min(before, rec.COMMIT_SWITCH_INTERVAL_S))]
    assert sys.getswitchinterval() == pytest.approx(before)
    with rec._prompt_handoffs():
        with rec._prompt_handoffs():
            assert sys.getswitchinterval() <= rec.COMMIT_SWITCH_INTERVAL_S
        assert sys.getswitchinterval() <= rec.COMMIT_SWITCH_INTERVAL_S
    assert sys.getswitchinterval() == pytest.approx(before)


def test_the_writer_sizes_its_commits_to_the_database_s_pace(db: Database) -> None:
    """A commit takes no more points than the writer commits in COMMIT_BUDGET_S at its recent
    pace, within MIN_GROUP..MAX_GROUP; small commits teach it nothing (their fixed cost would
    make points look dear and shrink the next commits for ever)."""
    from benchctl.engine import recorder as rec

    writer = RunRecorder(db).writer
    writer.seconds_per_point, writer.group_limit = None, 128
    writer._paced(rec.MIN_GROUP - 1, 10.0)  # small and slow: not learnt from
    assert writer.seconds_per_point is None and writer.group_limit == 128
    writer._paced(100, 0.1)  # 1 ms a point: 25 of them in 25 ms, so the floor
    assert writer.seconds_per_point == pytest.approx(0.001)
    assert writer.group_limit == max(rec.MIN_GROUP, int(rec.COMMIT_BUDGET_S / 0.001))
    for _ in range(30):  # the database got fast (10 µs a point): the ceiling
        writer._paced(500, 0.005)
    assert writer.group_limit == rec.MAX_GROUP
    for _ in range(30):  # and slow again: 200 µs a point
        writer._paced(150, 0.03)
    assert writer.group_limit == pytest.approx(rec.COMMIT_BUDGET_S / 0.0002, abs=2)


def test_a_commit_takes_no_more_than_the_writer_s_limit(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchctl.engine import recorder as rec

    run_id = seed(db)
    recorder = RunRecorder(db)
    writer = recorder.writer
    monkeypatch.setattr(rec, "COMMIT_BUDGET_S", 1e-9)  # whatever the pace: MIN_GROUP
    monkeypatch.setattr(writer, "group_limit", rec.MIN_GROUP)
    sizes = _hold_first_commit(monkeypatch, writer, behind=100)
    recorder.submit_point(run_id, "p0", {}, [reading(0.0)], {})
    while writer._queue:  # the writer has taken p0 alone
        time.sleep(0.001)
    for i in range(1, 101):
        recorder.submit_point(run_id, f"p{i}", {}, [reading(float(i))], {})
    recorder.wait_durable()
    assert sizes == [1, 32, 32, 32, 4]
    with db.session() as s:
        assert list(repo.completed_points(s, run_id)) == [f"p{i}" for i in range(101)]


def test_a_run_waits_while_a_commit_s_worth_is_waiting(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-pressure by the writer's queue: with the writer held, a fast procedure stops
    handing over once a commit's worth (group_limit) waits behind the commit under way, long
    before MAX_PENDING would stop it (the age rule is set aside here)."""
    import asyncio

    from benchctl.engine import recorder as rec

    run_id = seed(db)
    release = _hold_commits(monkeypatch)
    monkeypatch.setattr(rec, "AHEAD_AT_MOST_S", 60.0)  # the queue's rule alone, here
    writer = RunRecorder(db).writer
    monkeypatch.setattr(writer, "group_limit", 20)

    async def while_running(ctx: Any, task: Any) -> None:
        for _ in range(200):
            await asyncio.sleep(0.005)
            if ctx.store.pending > 1 and ctx.store.must_catch_up():
                break
        # Once the writer took what it could into the commit it is held in, the procedure
        # queued a commit's worth behind it, and stops there.
        for _ in range(200):
            await asyncio.sleep(0.005)
            if len(writer._queue) >= writer.group_limit:
                break
        pending = ctx.store.pending
        await asyncio.sleep(0.02)  # it does not go on
        assert not task.done() and ctx.store.pending == pending
        assert len(writer._queue) == writer.group_limit
        assert pending <= 2 * writer.group_limit  # the commit held takes a commit's worth
        release.set()

    _run_points(db, run_id, 60, while_running)
    with db.session() as s:
        assert list(repo.completed_points(s, run_id)) == [f"p{i}" for i in range(60)]


def test_no_point_is_stranded_when_the_writer_goes_idle_as_it_arrives(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Points are queued without a lock: one that arrives just as the writer's thread falls
    asleep or ends must still wake it or start a new one. Many runs, a writer that ends after
    a millisecond of nothing to do, and points at random moments: all are committed."""
    import random

    from benchctl.engine import recorder as rec

    monkeypatch.setattr(rec, "IDLE_S", 0.001)
    runs = [seed(db), *more_runs(db, seed(db, dut="BAL-0008"), 3)]
    recorders = {r: RunRecorder(db) for r in runs}
    errors: list[BaseException] = []

    def run(run_id: int, seed_: int) -> None:
        rng = random.Random(seed_)
        try:
            for i in range(40):
                recorders[run_id].submit_point(run_id, f"p{i}", {}, [reading(float(i))], {})
                time.sleep(rng.choice((0, 0, 0.0005, 0.001, 0.002)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r, n)) for n, r in enumerate(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    writer = recorders[runs[0]].writer
    assert writer.drain(10), f"{len(writer._queue)} points stranded in the queue"
    with db.session() as s:
        for r in runs:
            assert len(repo.completed_points(s, r)) == 40


def test_the_writer_keeps_no_points_while_idle(db: Database) -> None:
    """Once written, a group is let go: an idle writer holds no run alive (nor makes the
    collector's passes longer)."""
    import weakref

    run_id = seed(db)
    recorder = RunRecorder(db)
    recorder.record_point(run_id, "a", {}, [reading(1.0)], {})
    writer = recorder.writer
    assert writer.drain(10)
    gone = weakref.ref(recorder)
    del recorder
    gc_collect()
    assert gone() is None
    assert writer._thread is not None  # still running, idle: it kept nothing


def test_an_idle_writer_is_not_ended_by_a_wake_up_without_a_point(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's thread ends after IDLE_S with nothing to write, not at the first time
    its condition is notified (drain, recorders and runs wait on it too)."""
    from benchctl.engine import recorder as rec

    monkeypatch.setattr(rec, "IDLE_S", 0.5)
    run_id = seed(db)
    recorder = RunRecorder(db)
    recorder.record_point(run_id, "a", {}, [reading(1.0)], {})
    writer = recorder.writer
    assert writer.drain(10)
    thread = writer._thread
    assert thread is not None
    for _ in range(20):  # woken for 0.1 s, well inside IDLE_S
        with writer._cond:
            writer._cond.notify_all()
        time.sleep(0.005)
    assert writer._thread is thread and thread.is_alive()
    thread.join(5)  # then, left alone, it ends
    assert writer._thread is None and not thread.is_alive()


def gc_collect() -> None:
    import gc

    gc.collect()


def test_when_room_calls_once_the_writer_takes_the_queue_or_a_commit_ends(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = seed(db)
    recorder = RunRecorder(db)
    writer = recorder.writer
    assert writer.drain(10)
    called: list[str] = []
    writer.when_room(lambda: called.append("idle"))  # nothing under way: at once
    assert called == ["idle"]
    release = _hold_commits(monkeypatch)
    recorder.submit_point(run_id, "a", {}, [reading(1.0)], {})
    while writer._queue:
        time.sleep(0.001)
    writer.when_room(lambda: called.append("after a"))
    time.sleep(0.05)
    assert called == ["idle"]  # the commit of "a" is held
    release.set()
    assert writer.drain(10)
    deadline = time.monotonic() + 5
    while len(called) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert called == ["idle", "after a"]
    recorder.record_point(run_id, "b", {}, [reading(2.0)], {})
    assert called == ["idle", "after a"]  # once, not at every commit


def test_a_run_waiting_for_room_goes_on_when_the_commit_under_way_ends(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose points all wait in the queue behind another run's commit goes on as soon
    as that commit ends (the writer has then taken the queue), not a commit later when its
    own first point is committed."""
    import asyncio

    from benchctl.engine import recorder as rec

    first, second = seed(db), seed(db, dut="BAL-0008")
    held = _hold_commits_in_turn(monkeypatch, 2)
    monkeypatch.setattr(rec, "AHEAD_AT_MOST_S", 60.0)  # the queue's rule alone, here
    writer = RunRecorder(db).writer
    monkeypatch.setattr(writer, "group_limit", 10)
    other = RunRecorder(db)
    other.submit_point(first, "x", {}, [reading(0.0)], {})  # the first commit, held
    while writer._queue:
        time.sleep(0.001)

    async def while_running(ctx: Any, task: Any) -> None:
        await asyncio.sleep(0.1)
        assert not task.done() and ctx.store.pending == 10  # all queued, none in flight
        held[0].set()  # the first commit ends; the second (its 10 points) is held
        for _ in range(400):
            await asyncio.sleep(0.005)
            if ctx.store.pending > 10:
                break
        assert ctx.store.pending > 10, "it waited for its own points' commit"
        assert writer.commits == 1
        held[1].set()

    _run_points(db, second, 12, while_running)
    with db.session() as s:
        assert list(repo.completed_points(s, second)) == [f"p{i}" for i in range(12)]


def _hold_commits_in_turn(monkeypatch: pytest.MonkeyPatch, n: int) -> list[threading.Event]:
    """The writer's first ``n`` commits each wait until their event is set."""
    events = [threading.Event() for _ in range(n)]
    real = repo.record_points
    calls = itertools.count()

    def held(conn: Any, items: Any, **kw: Any) -> list[int]:
        i = next(calls)
        if i < n:
            events[i].wait(20)
        return real(conn, items, **kw)

    monkeypatch.setattr(repo, "record_points", held)
    return events

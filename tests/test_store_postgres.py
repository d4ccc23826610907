"""Records on PostgreSQL: the essentials of test_store.py, plus several benches at once.

Needs a server: ``BENCHCTL_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``) names a database to connect to; each
test session creates its own ``benchctl_test_<random>`` databases there and drops them after.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from benchctl.errors import StoreError
from benchctl.instruments import Reading
from benchctl.store import Database, open_database
from benchctl.store import repository as repo
from benchctl.store.db import _reason, mask_url, normalise_url
from benchctl.store.models import AuditEvent, Base

pytestmark = pytest.mark.postgres

BASE_URL = os.environ.get(
    "BENCHCTL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ICT = dt.timezone(dt.timedelta(hours=7))
RAW = b"\x00\xff\r\n"


def _admin() -> Engine:
    engine = create_engine(
        normalise_url(BASE_URL),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return engine


try:
    ADMIN = _admin()
except Exception as e:  # any failure to reach the server means: skip, and say why
    pytest.skip(
        f"PostgreSQL not reachable at {mask_url(BASE_URL)}: {_reason(e)}",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def make_db() -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty databases (URLs); all dropped at the end of the session."""
    created: list[str] = []

    def make() -> str:
        name = f"benchctl_test_{uuid.uuid4().hex[:12]}"
        with ADMIN.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return normalise_url(BASE_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    with ADMIN.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def db(make_db: Callable[[], str]) -> Iterator[Database]:
    database = open_database(make_db())
    yield database
    database.dispose()


def seed(db: Database, dut: str) -> int:
    with db.session() as s:
        repo.upsert_asset(s, "WS-E2-01", kind="weight_set", maker="Häfner", unit="g")
        cert = repo.add_certificate(
            s,
            "WS-E2-01",
            number="M-2025-0456",
            issuer="Viện Đo lường Việt Nam (VMI)",
            issued_on=dt.date(2025, 3, 1),
            due_on=dt.date(2027, 3, 1),
            weights=[
                {"id": "2000g", "nominal_g": 2000.0, "correction_mg": 0.3, "U_mg": 3.0},
                {"id": "1000g*", "nominal_g": 1000.0, "correction_mg": 0.2, "U_mg": 1.6},
            ],
        )
        repo.upsert_asset(
            s, dut, kind="balance", unit="g", customer="Công ty ABC", params={"max": 6200.0}
        )
        proc = repo.register_procedure(
            s, "nawi_balance", "1.0", "NAWI", "OIML R76-1:2006", "async def run(ctx): ...\n"
        )
        run = repo.create_run(
            s,
            procedure=proc,
            dut_asset_id=dut,
            mode="calibrate",
            params={"profile": "dlvn"},
            decision_rule="guarded",
            bench="Balance bench 2",
            operator_kind="stdio-json",
            references=[(cert, "weights")],
            performed_by="Lê Văn C",
        )
        return run.id


def reading(value: float, raw: bytes = RAW, instrument: str = "balance") -> Reading:
    taken = dt.datetime(2025, 11, 3, 9, 15, 30, 123456, tzinfo=ICT)
    return Reading(value, "g", True, taken, raw, instrument)


def _verify(db: Database) -> tuple[bool, str | None]:
    with db.session() as s:
        return repo.verify_audit(s)


def test_migration_from_empty_gives_exactly_the_models_schema(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert db.url_masked.startswith("postgresql+psycopg://")
    assert db.is_at_head()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        kinds: dict[str, str] = dict(
            conn.execute(
                text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'readings'"
                )
            ).all()
        )
    assert kinds["taken_at"] == "timestamp with time zone"
    assert kinds["raw"] == "bytea"


def test_concurrent_first_upgrades(make_db: Callable[[], str]) -> None:
    url = make_db()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def bench() -> None:
        try:
            barrier.wait()
            open_database(url).dispose()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=bench) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    database = open_database(url, upgrade=False)
    assert database.is_at_head()
    database.dispose()


def test_round_trip(db: Database) -> None:
    run_id = seed(db, "BAL-PG-1")
    every_byte = bytes(range(256))
    with db.session() as s:
        repo.record_point(
            s,
            run_id,
            "weighing.up.2000g",
            {"test": "weighing", "direction": "up", "nominal": 2000.0},
            [reading(2000.02), reading(2000.0003, every_byte, "weights")],
            roles={"balance": "dut", "weights": "reference"},
        )
        repo.set_environment(s, run_id, "start", {"temperature_c": 20.1})
        repo.save_results(s, run_id, [{"key": "weighing.up.2000g", "U": 0.03, "k": 2.0}], None)
        repo.set_run_state(s, run_id, "completed")
    with db.session() as s:
        run = repo.get_run(s, run_id)
        rows = repo.readings_of(s, run_id)
        assert repo.list_runs(s, limit=1)[0].id == run_id
    assert run is not None
    assert run.state == "completed" and run.ended_at is not None
    assert run.params == {"profile": "dlvn"} and run.decision_rule == "guarded"
    assert run.environment == {"start": {"temperature_c": 20.1}}
    assert run.dut.customer == "Công ty ABC" and run.dut.params == {"max": 6200.0}
    [ref] = run.references
    assert ref.certificate.issuer == "Viện Đo lường Việt Nam (VMI)"
    assert [w.weight_id for w in ref.certificate.weights] == ["2000g", "1000g*"]
    assert [p.key for p in run.points] == ["weighing.up.2000g"]
    assert run.results[0].data == {"key": "weighing.up.2000g", "U": 0.03, "k": 2.0}
    assert [(r.value, r.role, r.raw) for r in rows] == [
        (2000.02, "dut", RAW),
        (2000.0003, "reference", every_byte),
    ]
    expected = dt.datetime(2025, 11, 3, 2, 15, 30, 123456, tzinfo=dt.UTC)
    assert rows[0].taken_at == expected and rows[0].taken_at.tzinfo == dt.UTC
    assert run.started_at.tzinfo == dt.UTC


def test_duplicate_point_key_rejected_even_in_a_race(db: Database) -> None:
    run_id = seed(db, "BAL-PG-2")
    with db.session() as s:
        repo.record_point(s, run_id, "a", {}, [reading(1.0)])
    with pytest.raises(StoreError, match="already recorded"), db.session() as s:
        repo.record_point(s, run_id, "a", {}, [reading(1.0)])

    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def writer() -> None:
        barrier.wait()
        try:
            with db.session() as s:
                repo.record_point(s, run_id, "b", {}, [reading(2.0)])
            outcomes.append("ok")
        except StoreError as e:
            outcomes.append(str(e))

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[0] == "ok"
    assert "already recorded" in sorted(outcomes)[1]
    with db.session() as s:
        points = repo.completed_points(s, run_id)
    assert [(k, p.seq) for k, p in points.items()] == [("a", 1), ("b", 2)]


def test_audit_chain_verifies(db: Database) -> None:
    seed(db, "BAL-PG-3")
    assert _verify(db) == (True, None)


def test_concurrent_audit_appends_stay_linear(db: Database) -> None:
    with db.session() as s:
        before = s.query(AuditEvent).count()
    n = 40
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def bench(name: str) -> None:
        try:
            barrier.wait()
            for i in range(n):
                with db.session() as s:
                    repo.append_audit(s, name, "test.event", "thing", str(i), None, {"i": i})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=bench, args=(f"bench{k}",)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with db.session() as s:
        events = s.query(AuditEvent).order_by(AuditEvent.id).all()
    assert len(events) == before + 2 * n
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert len({e.prev_hash for e in events}) == len(events)  # no fork: every link used once
    assert _verify(db) == (True, None)


def test_audit_detects_tampering(make_db: Callable[[], str]) -> None:
    database = open_database(make_db())
    try:
        with database.session() as s:
            for i in range(5):
                repo.append_audit(s, "tester", "test.event", "thing", str(i), None, {"i": i})
        with database.engine.begin() as conn:
            conn.execute(text("""UPDATE audit_events SET "after" = '{"i": 7}' WHERE id = 2"""))
        ok, why = _verify(database)
        assert not ok and why is not None and why.startswith("event 2: altered"), why
        with database.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE id IN (1, 2)"))
        ok, why = _verify(database)
        assert not ok and why is not None and why.startswith("event 1: deleted"), why
    finally:
        database.dispose()


def test_errors_name_the_masked_url(db: Database) -> None:
    url = normalise_url(BASE_URL).set(password="hunter2", database="benchctl_no_such_db")
    with pytest.raises(StoreError) as err:
        open_database(url.render_as_string(hide_password=False))
    assert "hunter2" not in str(err.value)
    assert str(err.value).startswith("cannot open database postgresql+psycopg://")
    assert ":***@" in str(err.value) and "benchctl_no_such_db" in str(err.value)

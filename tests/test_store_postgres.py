"""Records on PostgreSQL only: its column types, several benches at once, its messages.

Everything else runs on both back ends in test_store.py and test_records_*.py. The server comes
from dbfixtures.py (``BENCHCTL_TEST_POSTGRES_URL``; skipped with the reason when none answers,
failed instead under ``BENCHCTL_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator

import pytest
from dbhelp import PG_URL, PostgresServer
from sqlalchemy import text

from benchctl.errors import StoreError
from benchctl.instruments import Reading
from benchctl.store import Database, open_database
from benchctl.store import repository as repo
from benchctl.store.db import normalise_url
from benchctl.store.models import AuditEvent

pytestmark = pytest.mark.postgres
pytest_plugins = ["dbfixtures"]

BASE_URL = PG_URL
ICT = dt.timezone(dt.timedelta(hours=7))
RAW = b"\x00\xff\r\n"


@pytest.fixture
def make_db(pg_server: PostgresServer) -> Iterator[Callable[[], str]]:
    """Fresh, empty PostgreSQL databases (URLs) for this test."""
    lent: list[str] = []

    def make() -> str:
        url = pg_server.checkout(migrated=False)
        lent.append(url)
        return url

    yield make
    for url in lent:
        pg_server.release(url)


@pytest.fixture
def db(make_db: Callable[[], str]) -> Iterator[Database]:
    """A migrated PostgreSQL database (this module's own: no SQLite variant)."""
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


def test_column_types_are_postgresqls_own(db: Database) -> None:
    assert db.url_masked.startswith("postgresql+psycopg://")
    assert db.is_at_head()
    with db.engine.connect() as conn:
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


def test_binary_copy_types_are_the_tables_own(db: Database) -> None:
    """The point writer COPYs points and readings in binary, naming each column's type; a
    type that no longer matches the table would be refused at the first point (the binary
    forms differ), so say which here. (The points' data goes as text: the binary form of
    json is its text.)"""
    from benchctl.store.points import _HotSQL

    sql = _HotSQL.of(db.engine.dialect)
    as_named = {"integer": "int4", "character varying": "varchar", "json": "text",
                "timestamp with time zone": "timestamptz", "double precision": "float8",
                "boolean": "bool", "bytea": "bytea"}
    with db.engine.connect() as conn:
        for statement, types in sql.copy_types.items():
            table = statement.split()[2]
            columns = [c.strip().strip('"') for c in
                       statement.partition("(")[2].partition(")")[0].split(",")]
            kinds: dict[str, str] = dict(conn.execute(text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = :t"), {"t": table}).all())
            assert [as_named[kinds[c]] for c in columns] == types, table


def test_large_audit_events_are_compressed_with_lz4(db: Database) -> None:
    """A commit's audit event carries every point it recorded (about 800 bytes each): lz4
    compresses it in a third of pglz's time, to about the same size."""
    with db.engine.connect() as conn:
        assert conn.execute(text("SHOW default_toast_compression")).scalar() == "lz4"
    run_id = seed(db, "BAL-LZ4")
    items = [repo.prepare_point(run_id, f"p{i}", {"nominal": float(i), "note": "x" * 40},
                                [reading(float(i))], {"balance": "dut"}) for i in range(40)]
    with db.transaction() as conn:
        repo.record_points(conn, items)
        after, method = conn.execute(text(
            "SELECT octet_length(after::text), pg_column_compression(after) "
            "FROM audit_events ORDER BY id DESC LIMIT 1")).one()
    assert after > 2048 and method == "lz4"  # large enough to be compressed at all
    assert _verify(db) == (True, None)


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


def test_errors_name_the_masked_url(db: Database) -> None:
    url = normalise_url(BASE_URL).set(password="hunter2", database="benchctl_no_such_db")
    with pytest.raises(StoreError) as err:
        open_database(url.render_as_string(hide_password=False))
    assert "hunter2" not in str(err.value)
    assert str(err.value).startswith("cannot open database postgresql+psycopg://")
    assert ":***@" in str(err.value) and "benchctl_no_such_db" in str(err.value)

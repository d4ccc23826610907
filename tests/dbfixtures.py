"""Databases for the store and records tests, as a pytest plugin: every test that takes ``db``
(or ``make_url``) runs twice, on SQLite and on a real PostgreSQL server.

Test modules load it with ``pytest_plugins = ["dbfixtures"]``.

PostgreSQL: ``BENCHCTL_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``) names a database to connect to. The
tests use a few ``benchctl_test_<random>`` databases they create there, each emptied for the
next test that checks it out (TRUNCATE, or a new schema), and drop them at the end; dropping a
used database costs the server a checkpoint (about a second), so they are reused rather than
made per test. When no server answers, the PostgreSQL variants skip with the reason, unless
``BENCHCTL_REQUIRE_POSTGRES=1`` (set by ``.ci/run``): then they fail, because in CI a missing
server is a broken machine, not a reason to test less.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dbhelp import PostgresServer

from benchctl.store import Database, open_database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database to copy (closed, so its WAL is checkpointed into it)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    open_database(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_url(backend: str, tmp_path: Path, pg_server: PostgresServer,
             sqlite_template: Path) -> Iterator[Callable[..., str]]:
    """A factory of fresh database URLs on the test's back end: migrated to the newest schema
    (no rows), or empty with ``migrated=False``."""
    count = 0
    lent: list[str] = []

    def make(*, migrated: bool = True) -> str:
        nonlocal count
        if backend == "postgresql":
            url = pg_server.checkout(migrated=migrated)
            lent.append(url)
            return url
        count += 1
        path = tmp_path / f"bench{count}.db"
        if migrated:
            shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"

    yield make
    for url in lent:
        pg_server.release(url)


@pytest.fixture
def db(make_url: Callable[..., str]) -> Iterator[Database]:
    database = open_database(make_url())
    yield database
    database.dispose()

"""Opening the database: URL resolution, SQLite durability settings, migrations, sessions.

``open_database()`` is the only way in. It resolves the URL (argument, else
``BENCHCTL_DATABASE_URL``, else ``sqlite:///benchctl.db``), connects, and brings the schema to
the newest revision through the bundled Alembic migrations, so a new database and an old one
follow the same path. Every message names the database by :attr:`Database.url_masked`, never
with its password.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from benchctl.errors import StoreError
from benchctl.store import integrity  # noqa: F401  (registers the audit listeners on Session)

ENV_DATABASE_URL = "BENCHCTL_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///benchctl.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: How long a SQLite writer waits for another one before giving up, in ms.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Connection timeout for PostgreSQL, in s (no call blocks forever).
PG_CONNECT_TIMEOUT_S = 10
#: pg_advisory_lock key serialising schema upgrades from several benches ("bnchmigr").
PG_MIGRATION_LOCK = 0x626E63686D696772

# Greedy to the last "@": a password with an unencoded "@" is masked whole (over-masking a
# query containing "@" is harmless; leaking part of a password is not).
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:).*@")


def resolve_url(url: str | None = None) -> str:
    """The database URL to use: ``url``, else ``$BENCHCTL_DATABASE_URL``, else the default."""
    if url:
        return url
    env = os.environ.get(ENV_DATABASE_URL, "").strip()
    return env or DEFAULT_DATABASE_URL


def mask_url(url: str | URL) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=False)
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def normalise_url(url: str) -> URL:
    """Parse ``url``; ``postgresql://`` (and ``postgres://``) mean psycopg 3."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        raise StoreError(f"invalid database URL {mask_url(url)}: {e}") from e
    if parsed.host and "@" in parsed.host:
        raise StoreError(
            f"invalid database URL {mask_url(url)}: a password containing '@' must be written %40"
        )
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _reason(exc: BaseException, url: URL | None = None) -> str:
    """One line saying why, without the password even if a driver echoed it."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    msg = lines[0].strip() if lines else type(exc).__name__
    if url is not None and url.password:
        msg = msg.replace(str(url.password), "***")
    return msg


@functools.cache
def _script_heads() -> frozenset[str] | None:
    """Head revision ids of the bundled migrations, read without importing Alembic (fast path).

    None when a file does not look as expected; the caller then asks Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    rev_re = re.compile(r"^revision(?:\s*:\s*[^=]+)?\s*=\s*['\"]([^'\"]+)['\"]", re.M)
    down_re = re.compile(r"^down_revision(?:\s*:\s*[^=]+)?\s*=\s*(.+)$", re.M)
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        body = path.read_text(encoding="utf-8")
        rev, down = rev_re.search(body), down_re.search(body)
        if rev is None or down is None:
            return None
        revisions.add(rev.group(1))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - parents
    return frozenset(heads) if heads else None


class Database:
    """An open database: an engine, a session factory and the masked URL for messages."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.url = url
        self.url_masked = mask_url(url)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        #: The connection :meth:`transaction` keeps on SQLite, and who is using it.
        self._kept: Connection | None = None
        self._kept_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Database({self.url_masked})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on an exception, always close.

        Database errors come out as :class:`StoreError` naming the (masked) database.
        """
        s = self._sessions()
        try:
            yield s
            s.commit()
        except DBAPIError as e:
            with contextlib.suppress(SQLAlchemyError):
                s.rollback()
            raise StoreError(
                f"database {self.url_masked}: {_reason(e, self.url)}", detail=str(e)
            ) from e
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):
                s.rollback()
            raise
        finally:
            s.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work on a plain connection, without an ORM session: commit on success,
        roll back on an exception. For the recorder's hot path (``points.record_points``),
        where a session's bookkeeping would cost more than the SQL it sends. Database errors
        come out as :class:`StoreError`, as from :meth:`session`.

        On SQLite the connection is one kept open for it while it is free (the recorder's
        point writer is one thread per database): checking a connection out of the pool and
        resetting it on return costs about as much as the point's SQL. A file has no server
        that could drop a kept connection; PostgreSQL's come from the pool, pinged first.
        """
        kept = self.dialect == "sqlite" and self._kept_lock.acquire(blocking=False)
        try:
            if kept:
                if self._kept is None:
                    self._kept = self.engine.connect()
                with self._kept.begin():
                    yield self._kept
            else:
                with self.engine.begin() as conn:
                    yield conn
        except DBAPIError as e:
            if kept:
                self._close_kept()  # not known to be usable: the next one opens a new one
            raise StoreError(
                f"database {self.url_masked}: {_reason(e, self.url)}", detail=str(e)
            ) from e
        finally:
            if kept:
                self._kept_lock.release()

    def _close_kept(self) -> None:
        conn, self._kept = self._kept, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()

    def current_revision(self) -> str | None:
        """The schema revision stored in the database (None for an empty database)."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError:
            return None
        return ",".join(sorted(r[0] for r in rows)) or None

    def is_at_head(self) -> bool:
        heads = _script_heads()
        current = self.current_revision()
        return heads is not None and current is not None and set(current.split(",")) == heads

    def upgrade(self, target: str = "head") -> None:
        """Bring the schema to ``target`` (the newest revision by default) through the bundled
        migrations."""
        if target == "head" and self.is_at_head():
            return
        self._migrate("upgrade", target)

    def downgrade(self, target: str) -> None:
        """Take the schema back to revision ``target`` ("base": no tables). For rolling back a
        release; every record the newer schema added is dropped."""
        self._migrate("downgrade", target)

    def _migrate(self, direction: str, target: str) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.util.exc import CommandError

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        sqlite = self.dialect == "sqlite"
        try:
            with self.engine.connect() as conn:
                if sqlite:
                    # Batch migrations copy tables; foreign keys are checked once at the end.
                    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                elif self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    with conn.begin():
                        cfg.attributes["connection"] = conn
                        getattr(command, direction)(cfg, target)
                finally:
                    if sqlite:
                        bad = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                        conn.commit()
                        if bad:
                            raise StoreError(
                                f"database {self.url_masked}: foreign keys broken after the "
                                f"schema {direction}: {bad[:5]}"
                            )
                    elif self.dialect == "postgresql":
                        conn.rollback()
                        conn.execute(
                            text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MIGRATION_LOCK}
                        )
                        conn.commit()
        except CommandError as e:
            raise StoreError(
                f"cannot {direction} database {self.url_masked}: {e}",
                detail="the database may have been written by a newer benchctl",
            ) from e
        except RuntimeError as e:  # a migration refused what it found (it says what)
            raise StoreError(f"cannot {direction} database {self.url_masked}: {e}") from e
        except DBAPIError as e:
            raise StoreError(
                f"cannot {direction} database {self.url_masked}: {_reason(e, self.url)}",
                detail=str(e),
            ) from e

    def dispose(self) -> None:
        """Close every pooled connection (and the one :meth:`transaction` keeps)."""
        with self._kept_lock:
            self._close_kept()
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLite's lower() folds ASCII only; customers' names are Vietnamese ("Đường").
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cur = dbapi_connection.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a reading is on disk when its commit returns, even if the power goes.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cur.close()


def _postgres_on_connect(dbapi_conn: Any, _record: Any) -> None:
    """Large values (the audit events of many points: about 800 bytes a point) compressed
    with lz4 rather than pglz: the same size on disk, a third of the server's time (1.9 ms
    against 0.7 for an event of 130 points, measured). PostgreSQL 14 and newer, where it was
    built with lz4; elsewhere the server's default stays."""
    if getattr(dbapi_conn.info, "server_version", 0) < 140000:
        return
    try:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET default_toast_compression = lz4")
        dbapi_conn.commit()
    except Exception:  # no lz4 in this server: pglz, as before
        with contextlib.suppress(Exception):
            dbapi_conn.rollback()


def _make_engine(url: URL) -> Engine:
    kwargs: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    backend = url.get_backend_name()
    if backend == "sqlite":
        db = url.database or ""
        if db and db != ":memory:" and not db.startswith("file:") and "mode=memory" not in db:
            try:
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot open database {mask_url(url)}: {e}") from e
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
    elif backend == "postgresql":
        kwargs["pool_pre_ping"] = True
        if url.get_driver_name() == "psycopg":
            if "connect_timeout" not in url.query:
                connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
            if "application_name" not in url.query:
                connect_args["application_name"] = "benchctl"
    try:
        engine = create_engine(url, connect_args=connect_args, **kwargs)
    except (ArgumentError, ImportError) as e:
        raise StoreError(f"cannot open database {mask_url(url)}: {e}") from e
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    elif backend == "postgresql" and url.get_driver_name() == "psycopg":
        event.listen(engine, "connect", _postgres_on_connect)
    return engine


def open_database(url: str | None = None, *, upgrade: bool = True) -> Database:
    """Open (and by default upgrade) the database at ``url``; see :func:`resolve_url`.

    Raises :class:`StoreError` naming the masked URL when it cannot be reached.
    """
    parsed = normalise_url(resolve_url(url))
    engine = _make_engine(parsed)
    db = Database(engine, parsed)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as e:
        engine.dispose()
        raise StoreError(
            f"cannot open database {db.url_masked}: {_reason(e, parsed)}", detail=str(e)
        ) from e
    if upgrade:
        try:
            db.upgrade()
        except BaseException:
            engine.dispose()
            raise
    return db

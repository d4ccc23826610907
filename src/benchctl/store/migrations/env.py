"""Alembic environment for benchctl's schema.

benchctl runs migrations programmatically (``benchctl db upgrade``, or any ``open_database()``),
handing its own connection over in ``config.attributes["connection"]``. For development,
``alembic -c <ini> revision --autogenerate`` also works: the URL then comes from the ini's
``sqlalchemy.url`` or from ``BENCHCTL_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from benchctl.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    from benchctl.store.db import normalise_url, resolve_url

    url = config.get_main_option("sqlalchemy.url") or resolve_url(None)
    context.configure(
        url=normalise_url(url),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    from benchctl.store.db import open_database

    url = config.get_main_option("sqlalchemy.url") or None
    db = open_database(url, upgrade=False)
    try:
        with db.engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        db.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

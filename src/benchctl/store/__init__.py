"""Records: SQLAlchemy models, sessions and Alembic migrations. The only code that speaks SQL."""

from benchctl.store.db import Database, open_database

__all__ = ["Database", "open_database"]

"""records: review and approval, certificate numbers, amendments, reference overrides, digests

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-12

- runs: who reviewed and approved it and when, the certificate number issued at approval
  (unique), the verification stamp and validity, the reason of an amendment; one revision
  replaces a run at most once (unique replaces_run_id).
- run_references: why an unfit reference (past due, outside its range) was used anyway.
- certificate_sequences: the last certificate number of each year.
- The audit trail starts to vouch for the rows themselves (row digests, see
  benchctl.store.integrity): rows already in the database are vouched for by a
  ``schema.baseline`` event.

Everything added is nullable or new, so SQLite adds it without copying a table (unique indexes
rather than unique constraints for the same reason). The downgrade drops it again; the audit
chain stays valid for the older benchctl (its hash formula is unchanged), which simply ignores
the digests.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("amend_reason", sa.Text()),
    ("reviewed_by", sa.String(length=200)),
    ("reviewed_at", sa.DateTime(timezone=True)),
    ("approved_by", sa.String(length=200)),
    ("approved_at", sa.DateTime(timezone=True)),
    ("certificate_number", sa.String(length=64)),
    ("stamp_number", sa.String(length=100)),
    ("valid_until", sa.Date()),
)
REFERENCE_COLUMNS = ("override_reason", "override_detail")


def upgrade() -> None:
    for name, type_ in RUN_COLUMNS:
        op.add_column("runs", sa.Column(name, type_, nullable=True))
    op.create_index("uq_runs_certificate_number", "runs", ["certificate_number"], unique=True)
    op.create_index("uq_runs_replaces_run_id", "runs", ["replaces_run_id"], unique=True)
    for name in REFERENCE_COLUMNS:
        op.add_column("run_references", sa.Column(name, sa.Text(), nullable=True))
    op.create_table(
        "certificate_sequences",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_certificate_sequences")),
    )
    from benchctl.store.integrity import append_baseline

    append_baseline(op.get_bind(), "0002")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        import sqlite3

        if sqlite3.sqlite_version_info < (3, 35, 0):
            raise RuntimeError(
                f"downgrading below 0002 drops columns, which needs SQLite 3.35 or newer "
                f"(this Python has {sqlite3.sqlite_version})")
    op.drop_table("certificate_sequences")
    for name in reversed(REFERENCE_COLUMNS):
        op.drop_column("run_references", name)
    op.drop_index("uq_runs_replaces_run_id", table_name="runs")
    op.drop_index("uq_runs_certificate_number", table_name="runs")
    for name, _ in reversed(RUN_COLUMNS):
        op.drop_column("runs", name)

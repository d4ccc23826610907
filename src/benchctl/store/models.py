"""The records benchctl keeps: SQLAlchemy 2 typed models, portable between SQLite and PostgreSQL.

Only store/ speaks SQL; everything else goes through :mod:`benchctl.store.repository`.

Conventions:

- Every timestamp is timezone-aware UTC (:class:`UTCDateTime`): SQLite hands back naive values,
  PostgreSQL hands back values in the session's time zone; both are normalised to UTC on load,
  and naive values are refused on write, so code never compares naive with aware.
- Column names are lower case (``u``, ``k``, ``u_mg``) even where the attribute follows the
  metrological symbol (``U``), so hand-written SQL on PostgreSQL needs no quoting.
- Constraint names follow :data:`NAMING_CONVENTION`, so Alembic can address them on both back ends.
- Schema changes go through a migration in ``store/migrations/versions``, never ``create_all``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Run states (the engine drives them; the store checks the transitions, see repository).
RUN_STATES: tuple[str, ...] = (
    "idle",
    "running",
    "paused",
    "aborting",
    "aborted",
    "completed",
    "failed",
)
RUN_MODES: tuple[str, ...] = ("verify", "calibrate")
#: Roles a person may hold in the register: who may perform a run, review it, sign (approve)
#: its certificate; a quality manager maintains the register.
PERSON_ROLES: tuple[str, ...] = ("operator", "reviewer", "signatory", "quality_manager")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always loads timezone-aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: benchctl stores UTC-aware times")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            # SQLite keeps the text without an offset; it is UTC by construction.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: e.g. ["operator", "reviewer", "signatory"]
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def __repr__(self) -> str:
        return f"Person({self.name!r}, roles={self.roles!r})"


class Asset(Base):
    """An entry of the asset register: a reference standard or a device under test."""

    __tablename__ = "assets"

    #: The register's asset id, e.g. "WS-E2-01" or "BAL-0007".
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: balance, weight_set, pressure_controller, pressure_gauge, environment_monitor, ...
    kind: Mapped[str] = mapped_column(String(64))
    maker: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    serial: Mapped[str | None] = mapped_column(String(200))
    customer: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(32))
    range_min: Mapped[float | None] = mapped_column(Float)
    range_max: Mapped[float | None] = mapped_column(Float)
    resolution: Mapped[float | None] = mapped_column(Float)
    accuracy_class: Mapped[str | None] = mapped_column(String(32))
    #: DUT parameters such as max, d, e.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    certificates: Mapped[list[ReferenceCertificate]] = relationship(
        back_populates="asset", order_by="ReferenceCertificate.issued_on"
    )

    def __repr__(self) -> str:
        return f"Asset({self.id!r}, kind={self.kind!r})"


class ReferenceCertificate(Base):
    """A calibration certificate of a reference standard (what makes a run traceable)."""

    __tablename__ = "reference_certificates"
    __table_args__ = (UniqueConstraint("asset_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    number: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(200))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    #: Expanded uncertainty, in the asset's unit or in ``U_unit`` (e.g. "%").
    U: Mapped[float | None] = mapped_column("u", Float)
    k: Mapped[float | None] = mapped_column("k", Float)
    U_unit: Mapped[str | None] = mapped_column("u_unit", String(32))
    #: Per-point corrections and anything else the certificate states.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="certificates")
    weights: Mapped[list[CertifiedWeight]] = relationship(
        back_populates="certificate", order_by="CertifiedWeight.id"
    )

    def is_due(self, on: dt.date) -> bool:
        """True when ``on`` is past the due date: the standard must not be used without an
        override recorded with a reason. The due date itself is still usable."""
        return on > self.due_on

    def __repr__(self) -> str:
        return f"ReferenceCertificate({self.asset_id!r}, {self.number!r}, due {self.due_on})"


class CertifiedWeight(Base):
    """One weight of a weight set as its certificate states it."""

    __tablename__ = "certified_weights"
    __table_args__ = (UniqueConstraint("certificate_id", "weight_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("reference_certificates.id"))
    #: e.g. "2000g", "1000g*" for the second 1 kg weight.
    weight_id: Mapped[str] = mapped_column(String(64))
    nominal_g: Mapped[float] = mapped_column(Float)
    #: Conventional mass minus nominal, mg.
    correction_mg: Mapped[float] = mapped_column(Float)
    U_mg: Mapped[float] = mapped_column("u_mg", Float)
    k: Mapped[float] = mapped_column(Float, default=2.0)
    weight_class: Mapped[str] = mapped_column(String(16), default="")

    certificate: Mapped[ReferenceCertificate] = relationship(back_populates="weights")

    def __repr__(self) -> str:
        return f"CertifiedWeight({self.weight_id!r}, {self.nominal_g} g)"


class ProcedureVersion(Base):
    """The exact text of a procedure file a run followed, identified by its SHA-256."""

    __tablename__ = "procedure_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    procedure_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(300))
    documents: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"ProcedureVersion({self.procedure_id!r}, {self.version!r}, {self.sha256[:12]})"


class Run(Base):
    """One execution of a procedure on one DUT; ``id`` is the RUN_ID of the command line."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint("mode IN ('verify', 'calibrate')", name="mode"),
        CheckConstraint(
            "state IN ('idle', 'running', 'paused', 'aborting', 'aborted', 'completed', 'failed')",
            name="state",
        ),
        # Unique indexes rather than constraints: SQLite can add those without copying the table.
        Index("uq_runs_certificate_number", "certificate_number", unique=True),
        # One revision replaces a run at most once: amendments never fork.
        Index("uq_runs_replaces_run_id", "replaces_run_id", unique=True),
        # A RUN_ID is never reused, even if the newest run row were ever removed.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    procedure_version_id: Mapped[int] = mapped_column(
        ForeignKey("procedure_versions.id"), index=True
    )
    dut_asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decision_rule: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="idle", index=True)
    state_message: Mapped[str | None] = mapped_column(Text)
    bench: Mapped[str] = mapped_column(String(200))
    operator_kind: Mapped[str] = mapped_column(String(64))
    performed_by: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    verdict: Mapped[str | None] = mapped_column(String(32))
    #: Ambient conditions, e.g. {"start": {...}, "end": {...}}.
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The process that owns the run (resume refuses to steal a live run).
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    replaces_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    #: Why this revision replaces ``replaces_run_id`` (null for a first revision).
    amend_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Issued at approval from a per-year sequence, e.g. "BC-2026-00042"; null until then.
    certificate_number: Mapped[str | None] = mapped_column(String(64))
    #: Verification stamp serial and the validity it gives (Circular 24/2013 Art. 39-40).
    stamp_number: Mapped[str | None] = mapped_column(String(100))
    valid_until: Mapped[dt.date | None] = mapped_column(Date)

    procedure: Mapped[ProcedureVersion] = relationship()
    dut: Mapped[Asset] = relationship()
    replaces: Mapped[Run | None] = relationship(remote_side="Run.id")
    references: Mapped[list[RunReference]] = relationship(
        back_populates="run", order_by="RunReference.certificate_id"
    )
    points: Mapped[list[Point]] = relationship(back_populates="run", order_by="Point.seq")
    #: Through their points (a reading's run is its point's; no foreign key of its own).
    readings: Mapped[list[Reading]] = relationship(
        primaryjoin="Run.id == foreign(Reading.run_id)", viewonly=True, order_by="Reading.id"
    )
    results: Mapped[list[Result]] = relationship(
        back_populates="run", order_by=lambda: (Result.key, Result.revision)
    )

    def __repr__(self) -> str:
        return f"Run({self.id}, {self.state!r})"


class RunReference(Base):
    """Traceability: the exact certificate of each reference standard a run used."""

    __tablename__ = "run_references"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    certificate_id: Mapped[int] = mapped_column(
        ForeignKey("reference_certificates.id"), primary_key=True
    )
    #: e.g. "weights", "controller", "room".
    role: Mapped[str] = mapped_column(String(64))
    #: Why the reference was used although unfit (past due, outside its certificate's range);
    #: null when it was fit. ``override_detail`` says what was wrong with it.
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_detail: Mapped[str | None] = mapped_column(Text)

    run: Mapped[Run] = relationship(back_populates="references")
    certificate: Mapped[ReferenceCertificate] = relationship()


class Point(Base):
    """One completed point of a run, committed the moment it was taken."""

    __tablename__ = "points"
    __table_args__ = (
        UniqueConstraint("run_id", "key"),
        UniqueConstraint("run_id", "seq"),
        # What a reading's foreign key refers to: its point, in its run.
        Index("uq_points_id_run_id", "id", "run_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    #: Stable point key, e.g. "weighing.up.2000g".
    key: Mapped[str] = mapped_column(String(200))
    #: Order taken within the run, from 1.
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    run: Mapped[Run] = relationship(back_populates="points")
    readings: Mapped[list[Reading]] = relationship(back_populates="point", order_by="Reading.id")

    def __repr__(self) -> str:
        return f"Point({self.run_id}, {self.key!r}, seq={self.seq})"


class Reading(Base):
    """One value from one instrument, with the raw bytes it came from."""

    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_run_id_point_key", "run_id", "point_key"),
        # A reading belongs to its point's run (migration 0003): one foreign key, checked
        # once a row, where a key each for the run and the point let them disagree.
        ForeignKeyConstraint(["point_id", "run_id"], ["points.id", "points.run_id"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer)
    point_id: Mapped[int] = mapped_column(Integer, index=True)
    point_key: Mapped[str] = mapped_column(String(200))
    instrument: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    stable: Mapped[bool] = mapped_column(Boolean)
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    raw: Mapped[bytes] = mapped_column(LargeBinary, default=b"")

    run: Mapped[Run] = relationship(
        primaryjoin="foreign(Reading.run_id) == Run.id", viewonly=True
    )
    point: Mapped[Point] = relationship(back_populates="readings")

    def __repr__(self) -> str:
        return f"Reading({self.point_key!r}, {self.instrument!r}, {self.value} {self.unit})"


class Result(Base):
    """A computed result of one point; a correction is a new revision, never an edit."""

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("run_id", "key", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    key: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    #: nominal, reference, indicated, error, error_unit, U, k, mpe, verdict, test, position, ...
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    run: Mapped[Run] = relationship(back_populates="results")

    def __repr__(self) -> str:
        return f"Result({self.run_id}, {self.key!r}, rev {self.revision})"


class CertificateSequence(Base):
    """The last certificate number issued in a year (numbers restart at 1 each year)."""

    __tablename__ = "certificate_sequences"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"CertificateSequence({self.year}, last={self.last})"


class AuditEvent(Base):
    """Append-only, hash-chained audit log (see repository.append_audit / verify_audit).

    ``id`` is assigned by the appender (last id + 1 under a lock), never by a sequence, so the
    ids are contiguous and a gap means a deleted event.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity_entity_id", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(100))
    entity_id: Mapped[str] = mapped_column(String(200))
    before: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    after: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"AuditEvent({self.id}, {self.action!r}, {self.entity}:{self.entity_id})"

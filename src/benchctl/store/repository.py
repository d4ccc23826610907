"""What the engine, the command line and the reports ask of the records.

Plain functions taking a :class:`~sqlalchemy.orm.Session`; the caller decides the unit of work
(``with db.session() as s: ...`` commits on success). Nothing here commits.

Rules kept here, whoever calls:

- Every change of the register, of a run's state and every recorded point appends an event to
  the hash-chained audit log (:func:`append_audit`, :func:`verify_audit`).
- A point key is recorded once per run; a second attempt raises :class:`StoreError`.
- A run changes state only along :data:`RUN_TRANSITIONS`, and only the process that owns it
  (host, pid) records points into it; resuming a run whose owner is still alive is refused.
- JSON fields are stored as JSON: dates and datetimes become ISO strings, bytes hex, tuples
  lists; NaN and infinities are refused (PostgreSQL's json type has no such tokens).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import numbers
import os
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from benchctl.errors import StoreError
from benchctl.store import integrity
from benchctl.store.models import (
    PERSON_ROLES,
    RUN_MODES,
    RUN_STATES,
    Asset,
    AuditEvent,
    CertificateSequence,
    CertifiedWeight,
    Person,
    Point,
    ProcedureVersion,
    Reading,
    ReferenceCertificate,
    Result,
    Run,
    RunReference,
    utcnow,
)

if TYPE_CHECKING:
    from benchctl import instruments

__all__ = [
    "ASSET_FIELDS",
    "GENESIS_HASH",
    "RECORDING_STATES",
    "RUN_TRANSITIONS",
    "SYSTEM_ACTOR",
    "TERMINAL_STATES",
    "PointWrite",
    "add_certificate",
    "add_person",
    "append_audit",
    "audit_events",
    "audit_problems",
    "claim_run",
    "completed_points",
    "create_revision",
    "create_run",
    "current_certificate",
    "due_certificates",
    "find_certificate",
    "find_runs",
    "format_certificate_number",
    "get_asset",
    "get_certificate",
    "get_person",
    "get_run",
    "latest_results",
    "list_assets",
    "list_certificates",
    "list_people",
    "list_runs",
    "lock_records",
    "next_certificate_number",
    "override_references",
    "prepare_point",
    "read_snapshot",
    "readings_of",
    "record_approval",
    "record_point",
    "record_points",
    "record_review",
    "register_procedure",
    "replaced_by",
    "run_overrides",
    "run_owner_alive",
    "run_people",
    "save_results",
    "set_environment",
    "set_run_state",
    "trace_asset",
    "upsert_asset",
    "verify_audit",
]

#: prev_hash of the first audit event.
GENESIS_HASH = integrity.GENESIS_HASH
#: Actor of events no person caused.
SYSTEM_ACTOR = "benchctl"
#: pg_advisory_xact_lock key serialising audit appends across benches ("bnchaudt").
AUDIT_LOCK_KEY = 0x626E636861756474

#: Legal run state changes (the engine has its own, stricter, machine; this one guards the
#: records). ``running -> running`` is the resume of a run whose process died (crash, power
#: loss); ``aborted``/``failed -> running`` is ``benchctl resume``.
RUN_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "idle": frozenset({"running"}),
    "running": frozenset({"paused", "aborting", "completed", "failed", "running"}),
    "paused": frozenset({"running", "aborting", "failed"}),
    # failed: the abort itself went wrong; running: resumed after the process died mid-abort
    "aborting": frozenset({"aborted", "failed", "running"}),
    "aborted": frozenset({"running"}),
    "failed": frozenset({"running"}),
    "completed": frozenset(),
}
#: States that end a run (ended_at is set); aborted and failed runs may be resumed.
TERMINAL_STATES: frozenset[str] = frozenset({"aborted", "completed", "failed"})
#: States in which points may be recorded (a point in flight when pause or abort is asked
#: still lands).
RECORDING_STATES: frozenset[str] = frozenset({"running", "paused", "aborting"})

#: Fields of the asset register that upsert_asset accepts.
ASSET_FIELDS: tuple[str, ...] = (
    "kind",
    "maker",
    "model",
    "serial",
    "customer",
    "owner",
    "unit",
    "range_min",
    "range_max",
    "resolution",
    "accuracy_class",
    "params",
)


# --------------------------------------------------------------------------------------------
# JSON and hashing


def _json_default(o: object) -> object:
    if isinstance(o, dt.datetime):
        if o.tzinfo is None:
            raise TypeError(f"naive datetime {o.isoformat()}")
        return o.astimezone(dt.UTC).isoformat()
    if isinstance(o, dt.date):
        return o.isoformat()
    if isinstance(o, bytes | bytearray | memoryview):
        return bytes(o).hex()
    if isinstance(o, set | frozenset):
        return sorted(o, key=repr)
    if type(o).__module__ == "numpy" and callable(getattr(o, "item", None)):
        return o.item()  # type: ignore[attr-defined]
    if isinstance(o, numbers.Integral):
        return int(o)
    if isinstance(o, numbers.Real):
        return float(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _json_text(value: Any, what: str = "value") -> str:
    """``value`` as JSON text; what the database hands back is ``json.loads`` of it."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot store {what} as JSON: {e}") from e


def _to_json(value: Any, what: str = "value") -> Any:
    """A plain-JSON copy of ``value`` (what will come back from the database)."""
    return json.loads(_json_text(value, what))


_canonical = integrity.canonical
_event_hash = integrity.event_hash


def _iso(at: dt.datetime) -> str:
    return integrity.iso_utc(at)


# --------------------------------------------------------------------------------------------
# Audit log


def _lock_audit(s: Session | Connection) -> None:
    """Serialise audit appends, and the reads and writes that precede them, across processes.

    Every writing function here takes it first, so a check-then-write (a duplicate point key, a
    state transition, a certificate already registered) cannot race with another bench.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: take the database write lock now (a
    no-op UPDATE), so the last event read next is the last one committed.
    """
    dialect = s.dialect.name if isinstance(s, Connection) else s.get_bind().dialect.name
    if dialect == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    elif dialect == "sqlite":
        s.execute(text("UPDATE audit_events SET id = id WHERE 0 = 1"))
    else:  # pragma: no cover - other back ends: lock the newest row
        s.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1).with_for_update())


def append_audit(
    s: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: Any,
    after: Any,
) -> AuditEvent:
    """Append one event to the hash-chained audit log, in the caller's transaction.

    The event also carries the digests of every audited row written in this transaction since
    the previous event (see :mod:`benchctl.store.integrity`), so the rows are vouched for too.
    """
    _lock_audit(s)
    last = s.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    new_id = last.id + 1 if last is not None else 1
    prev_hash = last.hash if last is not None else GENESIS_HASH
    before_j = _to_json(before, f"audit {action} before")
    after_j = integrity.with_rows(
        _to_json(after, f"audit {action} after"), integrity.take_touched(s))
    at = utcnow()
    event = AuditEvent(
        id=new_id,
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=before_j,
        after=after_j,
        prev_hash=prev_hash,
        hash=_event_hash(
            new_id, at, actor, action, entity, str(entity_id), before_j, after_j, prev_hash
        ),
    )
    s.add(event)
    s.flush()
    return event


def read_snapshot(s: Session) -> bool:
    """Make the rest of this unit of work read one consistent snapshot of the database.

    ``verify`` reads the audit chain, then every table: with benches writing meanwhile, a
    row committed between the two reads would look inserted behind benchctl's back. A
    snapshot sees the chain and the rows as of one moment, without blocking any bench.
    PostgreSQL: REPEATABLE READ, READ ONLY. SQLite (WAL): an explicit read transaction (the
    driver does not open one for SELECTs).

    True when it started one; False when the database connection is already inside a
    transaction (e.g. one that has written), whose own view is then what is read.
    """
    raw = s.connection().connection.dbapi_connection
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from psycopg import pq

        if raw.info.transaction_status != pq.TransactionStatus.IDLE:  # type: ignore[union-attr]
            return False
        s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    elif dialect == "sqlite":
        if raw.in_transaction:  # type: ignore[union-attr]
            return False
        s.connection().exec_driver_sql("BEGIN")
    else:  # pragma: no cover - other back ends: their default isolation
        return False
    # The snapshot starts with the first read.
    s.execute(select(func.count()).select_from(AuditEvent))
    return True


def audit_problems(s: Session, *, rows: bool = True, limit: int | None = None) -> list[str]:
    """Everything wrong with the audit trail, first broken link first; empty when intact.

    First the chain: each problem starts with ``"event <id>: "``: altered (content does not
    match its hash), deleted (a gap in the ids), inserted (the next event links past it) or
    chain broken (prev_hash mismatch); the chain is reported up to its first break only, since
    everything after it is unproven. Then, with ``rows``, the records themselves: each problem
    starts with ``"row <table>:<key>: "`` and says inserted, altered or deleted behind
    benchctl's back (a row must match the digest of the last event that wrote it).

    In a new unit of work it reads one snapshot (:func:`read_snapshot`), so benches writing
    meanwhile cause no false alarm.
    """
    read_snapshot(s)
    stmt = select(
        AuditEvent.id,
        AuditEvent.at,
        AuditEvent.actor,
        AuditEvent.action,
        AuditEvent.entity,
        AuditEvent.entity_id,
        AuditEvent.before,
        AuditEvent.after,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    ).order_by(AuditEvent.id)
    prev_id = 0
    prev_hash = GENESIS_HASH
    prev_prev_hash: str | None = None
    expected: dict[str, tuple[str | None, int]] = {}
    for row in s.execute(stmt.execution_options(yield_per=1000)):
        expected_id = prev_id + 1
        if row.id != expected_id:
            return [
                f"event {expected_id}: deleted (ids jump from {prev_id} to {row.id}; "
                f"or event {row.id} was inserted)"
            ]
        if row.prev_hash != prev_hash:
            if prev_prev_hash is not None and row.prev_hash == prev_prev_hash:
                return [
                    f"event {prev_id}: inserted (event {row.id} links to event {prev_id - 1}, "
                    f"not to it)"
                ]
            linked = f"event {prev_id}" if prev_id else "the start of the log"
            return [
                f"event {row.id}: chain broken (its prev_hash is not the hash of {linked}: "
                f"an event was altered, inserted or deleted before it)"
            ]
        computed = _event_hash(
            row.id,
            row.at,
            row.actor,
            row.action,
            row.entity,
            row.entity_id,
            row.before,
            row.after,
            row.prev_hash,
        )
        if computed != row.hash:
            return [f"event {row.id}: altered (its content does not match its hash)"]
        if rows:
            for key, digest in integrity.rows_of(row.after).items():
                expected[key] = (digest, row.id)
        prev_prev_hash, prev_hash, prev_id = prev_hash, row.hash, row.id
    if not rows:
        return []
    from benchctl.store.models import Base

    problems = integrity.check_tables(s, Base.metadata.tables, expected)
    return problems if limit is None else problems[:limit]


def audit_events(
    s: Session,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    since: dt.date | dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """Audit events, oldest first, optionally of one entity ("run", "asset", ...) or one
    record of it ("run", "5")."""
    stmt = select(AuditEvent).order_by(AuditEvent.id).limit(limit).offset(offset)
    if entity:
        stmt = stmt.where(AuditEvent.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEvent.entity_id == str(entity_id))
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= _day_start(since))
    return list(s.scalars(stmt))


def verify_audit(s: Session, *, rows: bool = True) -> tuple[bool, str | None]:
    """``(True, None)`` when the audit trail and the records it vouches for are intact, else
    ``(False, why)`` naming the first broken link (see :func:`audit_problems`)."""
    problems = audit_problems(s, rows=rows, limit=1)
    return (False, problems[0]) if problems else (True, None)


# --------------------------------------------------------------------------------------------
# Asset register and certificates


def _asset_snapshot(a: Asset) -> dict[str, Any]:
    return {"id": a.id, **{f: getattr(a, f) for f in ASSET_FIELDS}}


def get_asset(s: Session, asset_id: str) -> Asset | None:
    return s.get(Asset, asset_id)


def upsert_asset(s: Session, asset_id: str, *, actor: str = SYSTEM_ACTOR, **fields: Any) -> Asset:
    """Create the asset or update the given fields; an audit event records before and after
    (none when nothing changed). ``kind`` is required for a new asset."""
    unknown = sorted(set(fields) - set(ASSET_FIELDS))
    if unknown:
        raise StoreError(
            f"asset {asset_id}: unknown field(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(ASSET_FIELDS)}"
        )
    if not asset_id:
        raise StoreError("asset id must not be empty")
    if "params" in fields:
        fields["params"] = _to_json(fields["params"] or {}, f"asset {asset_id} params")
    _lock_audit(s)
    asset = s.get(Asset, asset_id)
    if asset is None:
        if not fields.get("kind"):
            raise StoreError(f"asset {asset_id}: a new asset needs a kind")
        fields.setdefault("params", {})
        asset = Asset(id=asset_id, **fields)
        s.add(asset)
        s.flush()
        append_audit(s, actor, "asset.create", "asset", asset_id, None, _asset_snapshot(asset))
        return asset
    before = _to_json(_asset_snapshot(asset))
    for name, value in fields.items():
        setattr(asset, name, value)
    after = _to_json(_asset_snapshot(asset))
    if after != before:
        s.flush()
        append_audit(s, actor, "asset.update", "asset", asset_id, before, after)
    return asset


def _weight_row(w: Mapping[str, Any], number: str) -> dict[str, Any]:
    def pick(*names: str, default: Any = ...) -> Any:
        for n in names:
            if n in w and w[n] is not None:
                return w[n]
        if default is ...:
            raise StoreError(f"certificate {number}: weight {dict(w)!r} has no {names[0]}")
        return default

    try:
        return {
            "weight_id": str(pick("weight_id", "id")),
            "nominal_g": float(pick("nominal_g")),
            "correction_mg": float(pick("correction_mg")),
            "U_mg": float(pick("U_mg", "u_mg")),
            "k": float(pick("k", default=2.0)),
            "weight_class": str(pick("weight_class", "class", default="")),
        }
    except (TypeError, ValueError) as e:
        raise StoreError(f"certificate {number}: weight {dict(w)!r}: {e}") from e


def _certificate_content(
    issuer: str,
    issued_on: dt.date,
    due_on: dt.date,
    U: float | None,
    k: float | None,
    U_unit: str | None,
    data: Any,
    weights: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "issued_on": issued_on.isoformat(),
        "due_on": due_on.isoformat(),
        "U": U,
        "k": k,
        "U_unit": U_unit,
        "data": data,
        "weights": sorted((dict(w) for w in weights), key=lambda w: w["weight_id"]),
    }


def _stored_content(c: ReferenceCertificate) -> dict[str, Any]:
    return _certificate_content(
        c.issuer,
        c.issued_on,
        c.due_on,
        c.U,
        c.k,
        c.U_unit,
        c.data,
        (
            {
                "weight_id": w.weight_id,
                "nominal_g": w.nominal_g,
                "correction_mg": w.correction_mg,
                "U_mg": w.U_mg,
                "k": w.k,
                "weight_class": w.weight_class,
            }
            for w in c.weights
        ),
    )


def get_certificate(s: Session, certificate_id: int) -> ReferenceCertificate | None:
    """The certificate with this id, with its asset and weights loaded."""
    return s.scalar(
        select(ReferenceCertificate)
        .where(ReferenceCertificate.id == certificate_id)
        .options(
            selectinload(ReferenceCertificate.asset), selectinload(ReferenceCertificate.weights)
        )
    )


def find_certificate(s: Session, asset_id: str, number: str) -> ReferenceCertificate | None:
    """The asset's certificate with this number, with its weights loaded."""
    return s.scalar(
        select(ReferenceCertificate)
        .where(ReferenceCertificate.asset_id == asset_id, ReferenceCertificate.number == number)
        .options(selectinload(ReferenceCertificate.weights))
    )


def add_certificate(
    s: Session,
    asset_id: str,
    *,
    number: str,
    issuer: str,
    issued_on: dt.date,
    due_on: dt.date,
    U: float | None = None,
    k: float | None = None,
    U_unit: str | None = None,
    data: Mapping[str, Any] | None = None,
    weights: list[dict[str, Any]] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> ReferenceCertificate:
    """Add a reference certificate (and a weight set's weights) to an asset in the register.

    The same (asset, number) with the same content returns the stored certificate; with
    different content it raises :class:`StoreError` naming what differs (a certificate is never
    edited: a new calibration has a new number).
    """
    if isinstance(issued_on, dt.datetime) or isinstance(due_on, dt.datetime):
        raise StoreError(f"certificate {number}: issued_on and due_on are dates, not datetimes")
    if due_on < issued_on:
        raise StoreError(
            f"certificate {number}: due date {due_on} is before issue date {issued_on}"
        )
    data_j = _to_json(dict(data or {}), f"certificate {number} data")
    rows = [_weight_row(w, number) for w in (weights or [])]
    ids = [r["weight_id"] for r in rows]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise StoreError(f"certificate {number}: weight id(s) given twice: {', '.join(dupes)}")
    wanted = _certificate_content(
        issuer,
        issued_on,
        due_on,
        None if U is None else float(U),
        None if k is None else float(k),
        U_unit,
        data_j,
        rows,
    )
    _lock_audit(s)
    if s.get(Asset, asset_id) is None:
        raise StoreError(f"certificate {number}: asset {asset_id} is not in the register")
    existing = find_certificate(s, asset_id, number)
    if existing is not None:
        stored = _stored_content(existing)
        if stored == wanted:
            return existing
        differ = sorted(key for key in wanted if wanted[key] != stored[key])
        raise StoreError(
            f"asset {asset_id}: certificate {number} is already registered with a different "
            f"{', '.join(differ)}",
            detail=f"stored {stored!r}, given {wanted!r}",
        )
    cert = ReferenceCertificate(
        asset_id=asset_id,
        number=number,
        issuer=issuer,
        issued_on=issued_on,
        due_on=due_on,
        U=wanted["U"],
        k=wanted["k"],
        U_unit=U_unit,
        data=data_j,
    )
    cert.weights = [CertifiedWeight(**r) for r in rows]
    s.add(cert)
    s.flush()
    append_audit(
        s,
        actor,
        "certificate.add",
        "certificate",
        str(cert.id),
        None,
        {"asset_id": asset_id, "number": number, **wanted},
    )
    return cert


def current_certificate(s: Session, asset_id: str, on: dt.date) -> ReferenceCertificate | None:
    """The asset's newest certificate (by issue date) issued on or before ``on``, with its
    weights; whether it is past due is the caller's question (:meth:`is_due`)."""
    return s.scalar(
        select(ReferenceCertificate)
        .where(ReferenceCertificate.asset_id == asset_id, ReferenceCertificate.issued_on <= on)
        .order_by(ReferenceCertificate.issued_on.desc(), ReferenceCertificate.id.desc())
        .limit(1)
        .options(selectinload(ReferenceCertificate.weights))
    )


# --------------------------------------------------------------------------------------------
# Procedures and runs


def register_procedure(
    s: Session,
    procedure_id: str,
    version: str,
    title: str,
    documents: str,
    text: str,
    *,
    actor: str = SYSTEM_ACTOR,
) -> ProcedureVersion:
    """The stored procedure version whose text has this SHA-256 (UTF-8), added if new."""
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    _lock_audit(s)
    existing = s.scalar(select(ProcedureVersion).where(ProcedureVersion.sha256 == sha))
    if existing is not None:
        return existing
    pv = ProcedureVersion(
        procedure_id=procedure_id,
        version=version,
        title=title,
        documents=documents,
        sha256=sha,
        text=text,
    )
    s.add(pv)
    s.flush()
    append_audit(
        s,
        actor,
        "procedure.register",
        "procedure",
        str(pv.id),
        None,
        {"procedure_id": procedure_id, "version": version, "title": title, "sha256": sha},
    )
    return pv


def _this_host() -> str:
    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return bool(kernel32.GetLastError() == 5)  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # Linux: a zombie (dead, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def run_owner_alive(run: Run) -> bool | None:
    """Whether the process that owns ``run`` is alive: True/False on this host, None (cannot
    tell) when it ran on another host."""
    if run.host != _this_host():
        return None
    if run.pid == os.getpid():
        return True
    return _pid_alive(run.pid)


def _owned_here(run: Run) -> bool:
    return run.host == _this_host() and run.pid == os.getpid()


def _check_takeover(run: Run, force: bool) -> None:
    """Refuse to take a run from a process that is (or may be) still working on it."""
    alive = run_owner_alive(run)
    if alive:
        raise StoreError(
            f"run {run.id} is {run.state} in process {run.pid} on {run.host}, which is still alive"
        )
    if alive is None and run.state in ("running", "paused", "aborting") and not force:
        raise StoreError(
            f"run {run.id} is {run.state} on host {run.host} (pid {run.pid}); resume it "
            f"there, or force if that process is gone"
        )


def claim_run(
    s: Session,
    run_id: int,
    host: str | None = None,
    pid: int | None = None,
    *,
    force: bool = False,
    actor: str | None = None,
) -> Run:
    """Make (host, pid) -- by default this process -- the owner of the run, with an audit
    event. A no-op when it already is; refused while another owner may be alive (see
    :func:`set_run_state`, which claims by itself when a run enters "running")."""
    host = host or _this_host()
    pid = os.getpid() if pid is None else pid
    _lock_audit(s)
    run = _run(s, run_id)
    if (run.host, run.pid) == (host, pid):
        return run
    if not _owned_here(run):
        _check_takeover(run, force)
    before = {"host": run.host, "pid": run.pid}
    run.host, run.pid = host, pid
    run.updated_at = utcnow()
    s.flush()
    append_audit(
        s,
        actor or run.performed_by or SYSTEM_ACTOR,
        "run.claim",
        "run",
        str(run_id),
        before,
        {"host": host, "pid": pid},
    )
    return run


def create_run(
    s: Session,
    *,
    procedure: ProcedureVersion,
    dut_asset_id: str,
    mode: str,
    params: Mapping[str, Any],
    decision_rule: str | None,
    bench: str,
    operator_kind: str,
    references: Sequence[tuple[ReferenceCertificate, str]],
    performed_by: str | None = None,
    actor: str | None = None,
    overrides: Mapping[str, tuple[str, str]] | None = None,
) -> Run:
    """A new run in state "running", owned by this process, linked to the exact certificates
    of its reference standards (``references``: (certificate, role) pairs).

    ``overrides`` maps a role to (reason, what was wrong) for a reference used although unfit
    (past due, outside its range): it is kept with the reference and in the audit trail.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {role for _, role in references})
    if unknown:
        raise StoreError(f"create_run: override for unknown reference role(s) {unknown}")
    for role, (reason, _detail) in overrides.items():
        if not (reason or "").strip():
            raise StoreError(f"create_run: the override of reference {role} needs a reason")
    if mode not in RUN_MODES:
        raise StoreError(f"run mode {mode!r}: expected one of {', '.join(RUN_MODES)}")
    if procedure.id is None:
        raise StoreError("create_run: register the procedure first (register_procedure)")
    if s.get(Asset, dut_asset_id) is None:
        raise StoreError(f"DUT {dut_asset_id} is not in the asset register")
    cert_ids = [c.id for c, _ in references]
    if None in cert_ids:
        raise StoreError("create_run: a reference certificate is not stored (add_certificate)")
    if len(set(cert_ids)) != len(cert_ids):
        raise StoreError("create_run: the same reference certificate is given twice")
    _lock_audit(s)
    now = utcnow()
    run = Run(
        procedure_version_id=procedure.id,
        dut_asset_id=dut_asset_id,
        mode=mode,
        params=_to_json(dict(params), "run params"),
        decision_rule=decision_rule,
        state="running",
        bench=bench,
        operator_kind=operator_kind,
        performed_by=performed_by,
        started_at=now,
        updated_at=now,
        environment={},
        host=_this_host(),
        pid=os.getpid(),
        revision=1,
    )
    s.add(run)
    s.flush()
    for cert, role in references:
        override = overrides.get(role)
        s.add(RunReference(run_id=run.id, certificate_id=cert.id, role=role,
                           override_reason=override[0] if override else None,
                           override_detail=override[1] if override else None))
    s.flush()
    dut = s.get(Asset, dut_asset_id)
    append_audit(
        s,
        actor or performed_by or SYSTEM_ACTOR,
        "run.create",
        "run",
        str(run.id),
        None,
        {
            "procedure_version_id": procedure.id,
            "procedure_sha256": procedure.sha256,
            "dut": dut_asset_id,
            "mode": mode,
            "params": run.params,
            "decision_rule": decision_rule,
            "bench": bench,
            "operator_kind": operator_kind,
            "performed_by": performed_by,
            "dut_snapshot": _asset_snapshot(dut) if dut is not None else None,
            "references": [
                {
                    "certificate_id": c.id,
                    "asset_id": c.asset_id,
                    "number": c.number,
                    "due_on": c.due_on,
                    "role": r,
                    **(
                        {"override_reason": overrides[r][0], "override_detail": overrides[r][1]}
                        if r in overrides
                        else {}
                    ),
                }
                for c, r in references
            ],
            "host": run.host,
            "pid": run.pid,
        },
    )
    return run


def _run(s: Session, run_id: int) -> Run:
    run = s.get(Run, run_id)
    if run is None:
        raise StoreError(f"run {run_id} does not exist")
    return run


def set_run_state(
    s: Session,
    run_id: int,
    state: str,
    message: str | None = None,
    *,
    force: bool = False,
    actor: str | None = None,
) -> Run:
    """Move a run to ``state`` along :data:`RUN_TRANSITIONS`, with an audit event.

    Entering "running" from another process (``benchctl resume``) makes this process the owner;
    it is refused while the previous owner is alive on this host, or, for a run still
    "running"/"paused" on another host, unless ``force`` (the operator says that process is gone).
    """
    state = str(getattr(state, "value", state))  # accepts the engine's RunState
    if state not in RUN_STATES:
        raise StoreError(f"run {run_id}: unknown state {state!r}")
    _lock_audit(s)
    run = _run(s, run_id)
    old = run.state
    if state not in RUN_TRANSITIONS.get(old, frozenset()):
        raise StoreError(f"run {run_id}: cannot go from {old} to {state}")
    if state == "running" and not _owned_here(run):
        _check_takeover(run, force)
    before = {"state": old, "message": run.state_message, "host": run.host, "pid": run.pid}
    now = utcnow()
    run.state = state
    run.state_message = message
    run.updated_at = now
    if state == "running":
        run.host = _this_host()
        run.pid = os.getpid()
        run.ended_at = None
    elif state in TERMINAL_STATES:
        run.ended_at = now
    s.flush()
    append_audit(
        s,
        actor or run.performed_by or SYSTEM_ACTOR,
        "run.state",
        "run",
        str(run_id),
        before,
        {"state": state, "message": message, "host": run.host, "pid": run.pid},
    )
    return run


def set_environment(s: Session, run_id: int, key: str, data: Any) -> Run:
    """Record ambient conditions under ``key`` (e.g. "start", "end") in the run."""
    _lock_audit(s)
    run = _run(s, run_id)
    value = _to_json(data, f"run {run_id} environment {key}")
    before = run.environment.get(key)
    run.environment = {**run.environment, key: value}
    run.updated_at = utcnow()
    s.flush()
    append_audit(
        s,
        run.performed_by or SYSTEM_ACTOR,
        "run.environment",
        "run",
        str(run_id),
        None if before is None else {key: before},
        {key: value},
    )
    return run


def record_point(
    s: Session,
    run_id: int,
    key: str,
    data: Mapping[str, Any],
    readings: Sequence[instruments.Reading],
    roles: Mapping[str, str] | None = None,
) -> Point:
    """Record a completed point and its readings in the caller's transaction.

    ``seq`` is the next number in the run. ``roles`` maps instrument names to roles ("dut",
    "reference", ...). A key already recorded raises :class:`StoreError`: a duplicate is
    impossible, also under a race (unique constraint). The writing is :func:`record_points`'s
    (the engine's recorder calls that directly, several points at a time).
    """
    item = prepare_point(run_id, key, data, readings, roles)
    s.flush()
    # Rows the ORM flushed in this transaction without an event yet: the point's event
    # vouches for them, as append_audit would.
    earlier = integrity.take_touched(s)
    [point_id] = record_points(s.connection(), [item], extra_rows=earlier)
    run = s.identity_map.get(s.identity_key(Run, run_id))
    if run is not None:  # its updated_at was written behind the ORM's back
        s.expire(run, ["updated_at"])
    point = s.get(Point, point_id)
    assert point is not None
    return point


def completed_points(s: Session, run_id: int) -> dict[str, Point]:
    """The run's recorded points by key, in the order taken (readings loaded)."""
    points = s.scalars(
        select(Point)
        .where(Point.run_id == run_id)
        .order_by(Point.seq)
        .options(selectinload(Point.readings))
    ).all()
    return {p.key: p for p in points}


def readings_of(s: Session, run_id: int) -> list[Reading]:
    """Every reading of the run, in the order stored."""
    return list(s.scalars(select(Reading).where(Reading.run_id == run_id).order_by(Reading.id)))


def save_results(
    s: Session,
    run_id: int,
    results: Sequence[Mapping[str, Any]],
    verdict: str | None,
    *,
    actor: str | None = None,
) -> list[Result]:
    """Store the run's results (revision 1, one per point ``key``) and its verdict.

    Saving the same results again returns the stored ones; different ones raise StoreError
    (a correction is a new revision, with a reason).
    """
    _lock_audit(s)
    run = _run(s, run_id)
    wanted: dict[str, Any] = {}
    for r in results:
        key = r.get("key")
        if not key:
            raise StoreError(f"run {run_id}: a result has no key: {dict(r)!r}")
        if key in wanted:
            raise StoreError(f"run {run_id}: result {key} given twice")
        wanted[str(key)] = _to_json(dict(r), f"run {run_id} result {key}")
    existing = s.scalars(
        select(Result).where(Result.run_id == run_id, Result.revision == 1).order_by(Result.id)
    ).all()
    if existing:
        if {e.key: e.data for e in existing} == wanted and run.verdict == verdict:
            return list(existing)
        raise StoreError(
            f"run {run_id} already has results; a correction is a new revision with a reason"
        )
    now = utcnow()
    rows = [
        Result(run_id=run_id, key=k, revision=1, data=d, created_at=now) for k, d in wanted.items()
    ]
    s.add_all(rows)
    before_verdict = run.verdict
    run.verdict = verdict
    run.updated_at = now
    s.flush()
    append_audit(
        s,
        actor or run.performed_by or SYSTEM_ACTOR,
        "results.save",
        "run",
        str(run_id),
        {"verdict": before_verdict},
        {"verdict": verdict, "revision": 1, "results": wanted},
    )
    return rows


def latest_results(s: Session, run_id: int) -> list[Result]:
    """The newest revision of each of the run's results, in the order they were first saved."""
    rows = s.scalars(select(Result).where(Result.run_id == run_id).order_by(Result.id)).all()
    newest: dict[str, Result] = {}
    for r in rows:  # dict keeps first-insertion order of the keys
        if r.key not in newest or r.revision > newest[r.key].revision:
            newest[r.key] = r
    return list(newest.values())


def _list_runs_stmt(limit: int, offset: int) -> Select[Any]:
    # Newest first by RUN_ID: a backward scan of the primary key, no sort.
    return select(Run).order_by(Run.id.desc()).limit(limit).offset(offset)


def list_runs(s: Session, limit: int = 50, offset: int = 0) -> list[Run]:
    """Runs, newest first, with their procedure and DUT loaded."""
    stmt = _list_runs_stmt(limit, offset).options(
        selectinload(Run.procedure), selectinload(Run.dut)
    )
    return list(s.scalars(stmt))


def get_run(s: Session, run_id: int) -> Run | None:
    """The run with its procedure, DUT, references (certificates, their assets and weights),
    points and results loaded (usable after the session closes). Readings: :func:`readings_of`."""
    return s.scalar(
        select(Run)
        .where(Run.id == run_id)
        .options(
            selectinload(Run.procedure),
            selectinload(Run.dut),
            selectinload(Run.references)
            .selectinload(RunReference.certificate)
            .options(
                selectinload(ReferenceCertificate.asset),
                selectinload(ReferenceCertificate.weights),
            ),
            selectinload(Run.points),
            selectinload(Run.results),
        )
    )


# --------------------------------------------------------------------------------------------
# Locking for callers that check before they write


def lock_records(s: Session) -> None:
    """Take the records' write lock for the rest of the caller's transaction.

    For a check-then-write outside this module (an approval checks the reviewer, then writes):
    the check and the write then see no other bench in between. Every writing function here
    takes it by itself too.
    """
    _lock_audit(s)


# --------------------------------------------------------------------------------------------
# People


def _person_snapshot(p: Person) -> dict[str, Any]:
    return {"name": p.name, "roles": list(p.roles), "active": p.active}


def get_person(s: Session, name: str) -> Person | None:
    return s.scalar(select(Person).where(Person.name == name))


def list_people(s: Session, *, active_only: bool = False) -> list[Person]:
    """The person register, by name."""
    stmt = select(Person).order_by(Person.name)
    if active_only:
        stmt = stmt.where(Person.active.is_(True))
    return list(s.scalars(stmt))


def add_person(
    s: Session,
    name: str,
    roles: Iterable[str],
    *,
    active: bool = True,
    actor: str = SYSTEM_ACTOR,
) -> Person:
    """Register a person with roles from :data:`PERSON_ROLES`, or set an existing person's
    roles and active flag (audited; nothing is recorded when nothing changes)."""
    name = (name or "").strip()
    if not name:
        raise StoreError("a person needs a name")
    wanted = sorted(set(roles))
    unknown = [r for r in wanted if r not in PERSON_ROLES]
    if unknown:
        raise StoreError(
            f"person {name}: unknown role(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(PERSON_ROLES)}"
        )
    if not wanted:
        raise StoreError(f"person {name}: give at least one role ({', '.join(PERSON_ROLES)})")
    _lock_audit(s)
    person = get_person(s, name)
    if person is None:
        person = Person(name=name, roles=wanted, active=active)
        s.add(person)
        s.flush()
        append_audit(s, actor, "person.create", "person", name, None, _person_snapshot(person))
        return person
    before = _person_snapshot(person)
    person.roles = wanted
    person.active = active
    after = _person_snapshot(person)
    if after != before:
        s.flush()
        append_audit(s, actor, "person.update", "person", name, before, after)
    return person


# --------------------------------------------------------------------------------------------
# Register queries


def list_assets(s: Session, kind: str | None = None) -> list[Asset]:
    """The asset register by id, optionally one kind only."""
    stmt = select(Asset).order_by(Asset.id)
    if kind:
        stmt = stmt.where(Asset.kind == kind)
    return list(s.scalars(stmt))


def list_certificates(s: Session, asset_id: str | None = None) -> list[ReferenceCertificate]:
    """Reference certificates (with asset and weights), by asset then issue date."""
    stmt = (
        select(ReferenceCertificate)
        .order_by(
            ReferenceCertificate.asset_id,
            ReferenceCertificate.issued_on,
            ReferenceCertificate.id,
        )
        .options(
            selectinload(ReferenceCertificate.asset), selectinload(ReferenceCertificate.weights)
        )
    )
    if asset_id is not None:
        stmt = stmt.where(ReferenceCertificate.asset_id == asset_id)
    return list(s.scalars(stmt))


def due_certificates(s: Session, within_days: int, on: dt.date) -> list[ReferenceCertificate]:
    """The current certificate of each reference standard that is due within ``within_days``
    of ``on`` or already past due, soonest first.

    Only an asset's newest certificate (issued on or before ``on``) counts: an old certificate
    replaced by a recalibration is not due any more.
    """
    if within_days < 0:
        raise StoreError(f"due within {within_days} days: expected 0 or more days")
    newest = (
        select(
            ReferenceCertificate.id,
            func.row_number()
            .over(
                partition_by=ReferenceCertificate.asset_id,
                order_by=(ReferenceCertificate.issued_on.desc(), ReferenceCertificate.id.desc()),
            )
            .label("rank"),
        )
        .where(ReferenceCertificate.issued_on <= on)
        .subquery()
    )
    stmt = (
        select(ReferenceCertificate)
        .join(newest, newest.c.id == ReferenceCertificate.id)
        .where(newest.c.rank == 1)
        .where(ReferenceCertificate.due_on <= on + dt.timedelta(days=within_days))
        .order_by(ReferenceCertificate.due_on, ReferenceCertificate.asset_id)
        .options(selectinload(ReferenceCertificate.asset))
    )
    return list(s.scalars(stmt))


def _day_start(d: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(d, dt.datetime):
        if d.tzinfo is None:
            raise StoreError(f"naive datetime {d.isoformat()}: give an aware time or a date")
        return d
    # A date is a local calendar day of the bench.
    return dt.datetime.combine(d, dt.time()).astimezone()


def find_runs(
    s: Session,
    *,
    dut: str | None = None,
    customer: str | None = None,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    verdict: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Run]:
    """Runs, newest first, with procedure and DUT loaded, filtered by DUT asset id, customer
    (case-insensitive part of the name), start time (``since``/``until`` inclusive; a date is
    a whole local day) and verdict."""
    stmt = select(Run).order_by(Run.id.desc()).limit(limit).offset(offset)
    if dut:
        stmt = stmt.where(Run.dut_asset_id == dut)
    if customer:
        stmt = stmt.join(Asset, Asset.id == Run.dut_asset_id).where(
            func.lower(Asset.customer).contains(customer.lower(), autoescape=True)
        )
    if since is not None:
        stmt = stmt.where(Run.started_at >= _day_start(since))
    if until is not None:
        end = (
            until
            if isinstance(until, dt.datetime)
            else _day_start(until + dt.timedelta(days=1)) - dt.timedelta(microseconds=1)
        )
        if isinstance(until, dt.datetime) and until.tzinfo is None:
            raise StoreError(f"naive datetime {until.isoformat()}: give an aware time or a date")
        stmt = stmt.where(Run.started_at <= end)
    if verdict:
        stmt = stmt.where(Run.verdict == verdict)
    stmt = stmt.options(selectinload(Run.procedure), selectinload(Run.dut))
    return list(s.scalars(stmt))


def trace_asset(
    s: Session, asset_id: str, since: dt.date | dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Every run that used a certificate of reference ``asset_id`` (started at or after
    ``since``), oldest first: for when a standard is found out of tolerance."""
    stmt = (
        select(Run, RunReference, ReferenceCertificate)
        .join(RunReference, RunReference.run_id == Run.id)
        .join(ReferenceCertificate, ReferenceCertificate.id == RunReference.certificate_id)
        .where(ReferenceCertificate.asset_id == asset_id)
        .order_by(Run.id)
        .options(selectinload(Run.procedure), selectinload(Run.dut))
    )
    if since is not None:
        stmt = stmt.where(Run.started_at >= _day_start(since))
    out: list[dict[str, Any]] = []
    rows = s.execute(stmt).all()
    replaced = replaced_by(s, [r.Run.id for r in rows])
    for run, ref, cert in rows:
        out.append(
            {
                "run_id": run.id,
                "revision": run.revision,
                "replaces_run_id": run.replaces_run_id,
                "replaced_by_run_id": replaced.get(run.id),
                "started_at": _iso(run.started_at),
                "procedure": run.procedure.procedure_id,
                "mode": run.mode,
                "state": run.state,
                "verdict": run.verdict,
                "dut": run.dut_asset_id,
                "dut_serial": run.dut.serial,
                "customer": run.dut.customer,
                "certificate_number": run.certificate_number,
                "approved_at": _iso(run.approved_at) if run.approved_at else None,
                "role": ref.role,
                "reference_certificate": cert.number,
                "reference_certificate_id": cert.id,
                "reference_due_date": cert.due_on.isoformat(),
                "override_reason": ref.override_reason,
            }
        )
    return out


def replaced_by(s: Session, run_ids: Sequence[int]) -> dict[int, int]:
    """For each of these runs that a newer revision replaces: that revision's run id."""
    if not run_ids:
        return {}
    rows = s.execute(
        select(Run.replaces_run_id, Run.id).where(Run.replaces_run_id.in_(list(run_ids)))
    ).all()
    return {int(old): int(new) for old, new in rows if old is not None}


# --------------------------------------------------------------------------------------------
# Review, approval and certificate numbers


def format_certificate_number(prefix: str, year: int, n: int) -> str:
    return f"{prefix}-{year}-{n:05d}"


def next_certificate_number(
    s: Session, year: int, prefix: str = "BC", *, actor: str = SYSTEM_ACTOR
) -> str:
    """Take the next number of ``year`` (in the caller's transaction, under the records'
    lock, so two benches never get the same one; a unique index on the runs backs that up).
    Numbers are never reused: one taken in a transaction that is then rolled back is not
    taken at all."""
    _lock_audit(s)
    seq = s.get(CertificateSequence, year, with_for_update=True)
    before = None if seq is None else seq.last
    if seq is None:
        seq = CertificateSequence(year=year, last=1)
        s.add(seq)
    else:
        seq.last += 1
    s.flush()
    number = format_certificate_number(prefix, year, seq.last)
    append_audit(s, actor, "certificate_number.issue", "certificate_number", number,
                 None if before is None else {"year": year, "last": before},
                 {"year": year, "last": seq.last})
    return number


def record_review(s: Session, run_id: int, by: str, at: dt.datetime | None = None) -> Run:
    """Record that ``by`` reviewed the completed run (once; whether ``by`` may is the caller's
    policy, see benchctl.records.approval)."""
    _lock_audit(s)
    run = _run(s, run_id)
    if run.state != "completed":
        raise StoreError(f"run {run_id} is {run.state}; only a completed run can be reviewed")
    if run.reviewed_by is not None:
        raise StoreError(f"run {run_id} was already reviewed by {run.reviewed_by}")
    at = at or utcnow()
    run.reviewed_by, run.reviewed_at = by, at
    s.flush()
    append_audit(s, by, "run.review", "run", str(run_id),
                 {"reviewed_by": None}, {"reviewed_by": by, "reviewed_at": at})
    return run


def record_approval(
    s: Session,
    run_id: int,
    by: str,
    *,
    at: dt.datetime | None = None,
    stamp_number: str | None = None,
    valid_until: dt.date | None = None,
    prefix: str = "BC",
    year: int | None = None,
) -> Run:
    """Approve the reviewed run: issue its certificate number (from ``year``'s sequence, by
    default the local year of ``at``), with the stamp and validity of a verification."""
    _lock_audit(s)
    run = _run(s, run_id)
    if run.state != "completed":
        raise StoreError(f"run {run_id} is {run.state}; only a completed run can be approved")
    if run.reviewed_by is None:
        raise StoreError(f"run {run_id} has not been reviewed; review comes before approval")
    if run.approved_by is not None:
        raise StoreError(
            f"run {run_id} was already approved by {run.approved_by} "
            f"(certificate {run.certificate_number})"
        )
    at = at or utcnow()
    number = next_certificate_number(s, year or at.astimezone().year, prefix, actor=by)
    run.approved_by, run.approved_at, run.certificate_number = by, at, number
    run.stamp_number, run.valid_until = stamp_number, valid_until
    s.flush()
    append_audit(
        s,
        by,
        "run.approve",
        "run",
        str(run_id),
        {"approved_by": None, "certificate_number": None},
        {
            "approved_by": by,
            "approved_at": at,
            "certificate_number": number,
            "stamp_number": stamp_number,
            "valid_until": valid_until,
        },
    )
    return run


def _iso_or_none(v: dt.date | dt.datetime | None) -> str | None:
    if v is None:
        return None
    return _iso(v) if isinstance(v, dt.datetime) else v.isoformat()


def run_people(s: Session, run_id: int) -> dict[str, Any]:
    """Who performed, reviewed and approved the run, and when; what the certificate is and
    what it replaces. ``status`` is "draft" until approval ("reviewed" in between), and only
    ``final`` (approved) runs may print a final certificate."""
    run = _run(s, run_id)
    replaced = s.get(Run, run.replaces_run_id) if run.replaces_run_id else None
    newer = replaced_by(s, [run_id]).get(run_id)
    status = "approved" if run.approved_at else ("reviewed" if run.reviewed_at else "draft")
    amended = (
        s.execute(
            select(AuditEvent.actor, AuditEvent.at).where(
                AuditEvent.entity == "run",
                AuditEvent.entity_id == str(run_id),
                AuditEvent.action == "run.amend",
            )
        ).first()
        if run.replaces_run_id
        else None
    )
    return {
        "performed_by": run.performed_by,
        "performed_at": _iso_or_none(run.started_at),
        "completed_at": _iso_or_none(run.ended_at),
        "reviewed_by": run.reviewed_by,
        "reviewed_at": _iso_or_none(run.reviewed_at),
        "approved_by": run.approved_by,
        "approved_at": _iso_or_none(run.approved_at),
        "certificate_number": run.certificate_number,
        "stamp_number": run.stamp_number,
        "valid_until": _iso_or_none(run.valid_until),
        "revision": run.revision,
        "replaces_run_id": run.replaces_run_id,
        "replaces_certificate_number": replaced.certificate_number if replaced else None,
        "replaced_by_run_id": newer,
        "amend_reason": run.amend_reason,
        "amended_by": amended.actor if amended else None,
        "amended_at": _iso(amended.at) if amended else None,
        "status": status,
        "final": run.approved_at is not None,
    }


def override_references(
    s: Session, run_id: int, overrides: Mapping[str, tuple[str, str]], actor: str | None = None
) -> None:
    """Record that the run goes on with references that became unfit while it was stopped
    (``overrides``: role -> (reason, what is wrong)), on the run's references and in the audit
    trail, as a run started with an unfit reference records it (``create_run``). A reference
    already used on an override keeps its first one: that decision stands."""
    _lock_audit(s)
    run = s.get(Run, run_id)
    if run is None:
        raise StoreError(f"run {run_id} does not exist")
    refs = {ref.role: ref for ref in run.references}
    unknown = sorted(set(overrides) - set(refs))
    if unknown:
        raise StoreError(f"run {run_id}: override for unknown reference role(s) {unknown}")
    recorded = []
    for role, (reason, detail) in sorted(overrides.items()):
        if not (reason or "").strip():
            raise StoreError(f"run {run_id}: the override of reference {role} needs a reason")
        ref = refs[role]
        if ref.override_reason is not None:
            continue
        ref.override_reason, ref.override_detail = reason.strip(), detail
        recorded.append({"role": role, "certificate_id": ref.certificate_id,
                         "override_reason": ref.override_reason, "override_detail": detail})
    if not recorded:
        return
    s.flush()
    append_audit(s, actor or run.performed_by or SYSTEM_ACTOR, "run.override", "run",
                 str(run_id), None, {"references": recorded})


def run_overrides(s: Session, run_id: int) -> list[dict[str, Any]]:
    """The references this run used although they were unfit, with the reason given."""
    _run(s, run_id)
    rows = s.execute(
        select(RunReference, ReferenceCertificate)
        .join(ReferenceCertificate, ReferenceCertificate.id == RunReference.certificate_id)
        .where(RunReference.run_id == run_id, RunReference.override_reason.is_not(None))
        .order_by(RunReference.role)
    ).all()
    return [
        {
            "role": ref.role,
            "asset": cert.asset_id,
            "certificate": cert.number,
            "due_date": cert.due_on.isoformat(),
            "reason": ref.override_reason,
            "problem": ref.override_detail,
        }
        for ref, cert in rows
    ]


# --------------------------------------------------------------------------------------------
# Revisions (amendments)


def create_revision(
    s: Session,
    run_id: int,
    *,
    reason: str,
    actor: str,
    params: Mapping[str, Any],
    points: Mapping[str, Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    verdict: str | None,
    environment: Mapping[str, Any] | None = None,
    changes: Mapping[str, Any] | None = None,
) -> Run:
    """A new, completed revision of a completed run that replaces it: the same procedure,
    DUT, references (and their overrides), times, people and readings, with ``params``, the
    points' data and the results as the amendment gives them. The old run is not touched.

    ``points`` must have exactly the old run's keys (an amendment re-evaluates, it does not
    measure). ``changes`` is what the amendment changed, for the audit trail.
    """
    reason = (reason or "").strip()
    if not reason:
        raise StoreError(f"run {run_id}: an amendment needs a reason")
    _lock_audit(s)
    old = get_run(s, run_id)
    if old is None:
        raise StoreError(f"run {run_id} does not exist")
    if old.state != "completed":
        raise StoreError(f"run {run_id} is {old.state}; only a completed run can be amended")
    newer = replaced_by(s, [run_id]).get(run_id)
    if newer is not None:
        raise StoreError(f"run {run_id} is already replaced by run {newer}; amend run {newer}")
    old_points = completed_points(s, run_id)
    if set(points) != set(old_points):
        extra = sorted(set(points) - set(old_points))
        missing = sorted(set(old_points) - set(points))
        raise StoreError(
            f"run {run_id}: an amendment keeps the recorded points "
            f"(new: {extra or 'none'}, missing: {missing or 'none'})"
        )
    now = utcnow()
    run = Run(
        procedure_version_id=old.procedure_version_id,
        dut_asset_id=old.dut_asset_id,
        mode=old.mode,
        params=_to_json(dict(params), f"run {run_id} amended params"),
        decision_rule=str(params.get("decision_rule", old.decision_rule or "simple")),
        state="completed",
        state_message=f"revision {old.revision + 1} of run {run_id}: {reason}",
        bench=old.bench,
        operator_kind=old.operator_kind,
        performed_by=old.performed_by,
        started_at=old.started_at,
        ended_at=old.ended_at,
        updated_at=now,
        verdict=verdict,
        environment=_to_json(dict(environment if environment is not None else old.environment),
                             f"run {run_id} amended environment"),
        host=_this_host(),
        pid=os.getpid(),
        revision=old.revision + 1,
        replaces_run_id=old.id,
        amend_reason=reason,
    )
    s.add(run)
    try:
        s.flush()
    except IntegrityError as e:  # another bench amended it at the same moment
        raise StoreError(f"run {run_id} was amended concurrently; amend the newest revision"
                         ) from e
    for ref in old.references:
        s.add(RunReference(run_id=run.id, certificate_id=ref.certificate_id, role=ref.role,
                           override_reason=ref.override_reason,
                           override_detail=ref.override_detail))
    readings = readings_of(s, run_id)
    for key, p in old_points.items():
        point = Point(run_id=run.id, key=key, seq=p.seq,
                      data=_to_json(dict(points[key]), f"run {run_id} amended point {key}"),
                      created_at=p.created_at)
        s.add(point)
        s.flush()
        s.add_all(
            Reading(run_id=run.id, point_id=point.id, point_key=key, instrument=r.instrument,
                    role=r.role, value=r.value, unit=r.unit, stable=r.stable,
                    taken_at=r.taken_at, raw=r.raw)
            for r in readings if r.point_id == p.id
        )
    wanted: dict[str, Any] = {}
    for res in results:
        rkey = res.get("key")
        if not rkey or rkey in wanted:
            raise StoreError(f"run {run_id} amendment: result key {rkey!r} missing or repeated")
        wanted[str(rkey)] = _to_json(dict(res), f"run {run_id} amended result {rkey}")
    s.add_all(Result(run_id=run.id, key=k, revision=1, data=d, created_at=now)
              for k, d in wanted.items())
    s.flush()
    append_audit(
        s,
        actor,
        "run.amend",
        "run",
        str(run.id),
        {"run_id": run_id, "revision": old.revision, "verdict": old.verdict,
         "certificate_number": old.certificate_number},
        {"run_id": run.id, "revision": run.revision, "replaces_run_id": run_id,
         "reason": reason, "changes": dict(changes or {}), "verdict": verdict,
         "results": wanted},
    )
    return run


# The hot path lives in its own module, which uses this one's rules (imported last).
from benchctl.store.points import PointWrite, prepare_point, record_points  # noqa: E402

"""What makes plain-SQL tampering with the records visible: row digests bound into the audit chain.

The audit log is hash-chained, so an event cannot be altered, inserted or deleted without
breaking the chain. That alone says nothing about the *records*: an ``UPDATE results ...`` in
psql leaves the chain intact. So every audit event also carries, under ``after["_rows"]``, the
SHA-256 digest of each audited row the change wrote (``None`` for a row it deleted). The event
hash covers those digests; ``verify`` then recomputes the digest of every row of every audited
table and compares it with the digest of the last event that wrote the row:

- a row whose digest differs was altered behind benchctl's back;
- a row no event recorded was inserted behind its back;
- a recorded row that is missing was deleted behind its back.

Which rows a change wrote is not left to each repository function: a session listener collects
every audited row the ORM flushes, :func:`take_touched` hands them to the audit appender, and a
commit with collected rows no event recorded is refused (an unaudited change is a bug).

One writer does not go through the ORM: the recorder's hot path,
``store.points.record_points``, writes points and readings with plain SQL and computes their
digests from the values it wrote (and the run's from the row it read under the audit lock),
instead of reading back rows it has just written. It builds the canonical texts from pieces
rather than through :func:`canonical` and :func:`row_digest`; a test checks they are the same
bytes. Those values are the ones a back end hands back (``points.prepare_point`` normalises
what one would not, such as -0.0), and the tests check that ``verify`` finds such rows as
recorded on both back ends.

Digests skip NULL columns, so a later migration that adds a nullable column does not make the
older digests wrong; setting a column to or from NULL still changes the digest.

The digests live inside ``after`` rather than in a column of their own so the event hash formula
is the one of the first schema: a downgrade keeps a chain that the older benchctl verifies.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from itertools import chain
from typing import Any

from sqlalchemy import Table, bindparam, event, inspect, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from benchctl.errors import StoreError

#: The tables whose rows the audit trail vouches for, parents before children (the order in
#: which ``verify`` reports). audit_events vouches for itself (the chain); alembic_version is
#: not a record.
AUDITED_TABLES: tuple[str, ...] = (
    "persons",
    "assets",
    "reference_certificates",
    "certified_weights",
    "procedure_versions",
    "runs",
    "run_references",
    "points",
    "readings",
    "results",
    "certificate_sequences",
)
#: Key in ``after`` under which an event carries the digests of the rows it wrote.
ROWS_KEY = "_rows"
#: prev_hash of the first audit event.
GENESIS_HASH = "0" * 64
#: Session.info key of the audited rows flushed since the last audit event.
_TOUCHED = "benchctl.touched_rows"
#: Session.info key: set to True to let a session commit unaudited rows (never in benchctl).
ALLOW_UNAUDITED = "benchctl.allow_unaudited"

_AUDITED = frozenset(AUDITED_TABLES)


# --------------------------------------------------------------------------------------------
# Canonical forms and hashes


def canonical(value: Any) -> bytes:
    """The bytes that are hashed: sorted keys, no spaces, UTF-8, NaN refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def iso_utc(at: dt.datetime) -> str:
    """An aware time as UTC ISO 8601 with microseconds; a naive one is taken as UTC (SQLite)."""
    if at.tzinfo is None or at.utcoffset() is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def event_hash(
    id: int,
    at: dt.datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: Any,
    after: Any,
    prev_hash: str,
) -> str:
    """The SHA-256 that links an audit event into the chain (unchanged since schema 0001)."""
    payload = {
        "id": id,
        "at": iso_utc(at),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(payload)).hexdigest()


def _sha_text(value: bytes | bytearray | memoryview) -> str:
    return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()


#: How a column value that is not plain JSON enters a digest, by its Python type (a dict
#: lookup, not a chain of isinstance: verify digests every row of every table).
_CONVERT: dict[type, Any] = {
    dt.datetime: iso_utc,
    dt.date: dt.date.isoformat,
    bytes: _sha_text,
    bytearray: _sha_text,
    memoryview: _sha_text,
    Decimal: str,
}


def _digest(names: Sequence[str], values: Sequence[Any]) -> str:
    content = {}
    for name, value in zip(names, values, strict=True):
        if value is None:
            continue
        conv = _CONVERT.get(type(value))
        content[name] = conv(value) if conv is not None else value
    # NaN and infinities are legal in a float column (and a forger may put them into JSON
    # text), so unlike canonical() this accepts them: a digest only has to be deterministic.
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_digest(row: Mapping[str, Any]) -> str:
    """SHA-256 of a row's non-NULL columns (by column name): datetimes as UTC ISO text (a
    naive one is UTC, as SQLite keeps them), dates ISO, bytes by their SHA-256, the rest as
    JSON."""
    return _digest(list(row), list(row.values()))


def row_key(table: str, pk: Iterable[Any]) -> str:
    """``"runs:5"``, ``"run_references:5/3"``: how events and messages name a row."""
    return f"{table}:{'/'.join(str(v) for v in pk)}"


# --------------------------------------------------------------------------------------------
# Reading rows


def _pk_columns(table: Table) -> list[Any]:
    return list(table.primary_key.columns)


def iter_digests(conn: Connection | Session, table: Table, batch: int = 2000
                 ) -> Iterator[tuple[str, str]]:
    """(row key, digest) of every row of ``table``, in primary-key order."""
    pk = _pk_columns(table)
    names = [c.name for c in table.columns]
    at = [names.index(c.name) for c in pk]
    stmt = select(*table.columns).order_by(*pk).execution_options(yield_per=batch)
    prefix = table.name + ":"
    for row in conn.execute(stmt):
        values = tuple(row)
        yield prefix + "/".join(str(values[i]) for i in at), _digest(names, values)


def digests_of(s: Session, table: Table, pks: Iterable[tuple[Any, ...]]) -> dict[str, str | None]:
    """Digest of each of these rows as the session sees them now; None for a missing row."""
    wanted = {row_key(table.name, pk): pk for pk in pks}
    out: dict[str, str | None] = dict.fromkeys(wanted)
    cols = _pk_columns(table)
    names = [c.name for c in table.columns]
    at = [names.index(c.name) for c in cols]
    keys = list(wanted.values())
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        if len(cols) == 1:  # the common case, once per audit event: a prepared statement
            rows = s.execute(_by_ids(table), {"ids": [k[0] for k in chunk]})
        else:
            rows = s.execute(select(*table.columns).where(tuple_(*cols).in_(chunk)))
        for row in rows:
            values = tuple(row)
            out[row_key(table.name, (values[i] for i in at))] = _digest(names, values)
    return out


@functools.cache
def _by_ids(table: Table) -> Any:
    """``SELECT * FROM table WHERE pk IN (:ids)``, built once: building it anew for every
    audit event costs more than running it."""
    [pk] = _pk_columns(table)
    return select(*table.columns).where(pk.in_(bindparam("ids", expanding=True)))


# --------------------------------------------------------------------------------------------
# Which rows a unit of work wrote


def _after_flush(session: Session, _ctx: Any) -> None:
    touched: set[tuple[str, tuple[Any, ...]]] = session.info.setdefault(_TOUCHED, set())
    for obj in chain(session.new, session.dirty, session.deleted):
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        state = inspect(obj)
        name = getattr(state.mapper.local_table, "name", None)
        if name not in _AUDITED:
            continue
        pk = state.mapper.primary_key_from_instance(obj)
        touched.add((str(name), tuple(pk)))


def _before_commit(session: Session) -> None:
    session.flush()
    touched = session.info.get(_TOUCHED)
    if touched and not session.info.get(ALLOW_UNAUDITED):
        names = sorted(row_key(t, pk) for t, pk in touched)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise StoreError(
            f"refusing to commit changes no audit event records: {shown}",
            detail="every change of the records goes through benchctl.store.repository",
        )


def _after_rollback(session: Session) -> None:
    session.info.pop(_TOUCHED, None)


event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "before_commit", _before_commit)
event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))


def take_touched(s: Session) -> dict[str, str | None]:
    """The digests of the audited rows written since the last call (flushing first); the
    audit appender puts them into the event it appends."""
    from benchctl.store.models import Base

    s.flush()
    touched: set[tuple[str, tuple[Any, ...]]] = s.info.pop(_TOUCHED, set())
    by_table: dict[str, list[tuple[Any, ...]]] = {}
    for table, pk in touched:
        by_table.setdefault(table, []).append(pk)
    out: dict[str, str | None] = {}
    for name in AUDITED_TABLES:
        if name in by_table:
            out.update(digests_of(s, Base.metadata.tables[name], by_table[name]))
    return out


def with_rows(after: Any, rows: Mapping[str, str | None]) -> Any:
    """``after`` carrying the row digests (a non-dict ``after`` is wrapped as ``value``)."""
    if not rows:
        return after
    if after is None:
        base: dict[str, Any] = {}
    elif isinstance(after, dict):
        base = dict(after)
    else:
        base = {"value": after}
    base[ROWS_KEY] = dict(sorted(rows.items()))
    return base


def rows_of(after: Any) -> Mapping[str, str | None]:
    """The row digests an event's ``after`` carries (empty when none)."""
    if isinstance(after, dict):
        rows = after.get(ROWS_KEY)
        if isinstance(rows, dict):
            return rows
    return {}


def without_rows(after: Any) -> Any:
    """``after`` as a person reads it: without the digests."""
    if isinstance(after, dict) and ROWS_KEY in after:
        return {k: v for k, v in after.items() if k != ROWS_KEY}
    return after


# --------------------------------------------------------------------------------------------
# Checking the tables against the chain


def check_tables(
    conn: Connection | Session,
    tables: Mapping[str, Table],
    expected: Mapping[str, tuple[str | None, int]],
) -> list[str]:
    """Problems found comparing every row of ``tables`` with ``expected`` (row key -> (digest
    the last event recorded, that event's id)), in table order then key order."""
    problems: list[str] = []
    for name in AUDITED_TABLES:
        table = tables.get(name)
        if table is None:
            continue
        seen: set[str] = set()
        for key, digest in iter_digests(conn, table):
            seen.add(key)
            recorded = expected.get(key)
            if recorded is None or recorded[0] is None:
                problems.append(
                    f"row {key}: inserted behind benchctl's back (no audit event records it)")
            elif recorded[0] != digest:
                problems.append(
                    f"row {key}: altered behind benchctl's back (it does not match event "
                    f"{recorded[1]}, its last recorded change)")
        prefix = f"{name}:"
        missing = sorted(
            (k for k, (d, _) in expected.items()
             if d is not None and k.startswith(prefix) and k not in seen),
            key=_natural)
        for key in missing:
            problems.append(
                f"row {key}: deleted behind benchctl's back (event {expected[key][1]} "
                f"recorded it)")
    return problems


def _natural(key: str) -> tuple[Any, ...]:
    table, _, pk = key.partition(":")
    return (table, *((0, int(p)) if p.isdigit() else (1, p) for p in pk.split("/")))


# --------------------------------------------------------------------------------------------
# Baseline for records written before the digests existed


def append_baseline(conn: Connection, label: str, *, chunk: int = 5000) -> int:
    """Vouch for every audited row already in the database, in events of ``chunk`` rows.

    A migration that brings the digests (or changes how a row is digested) calls this, so rows
    written before it verify; it states that the records were as found at that moment. Returns
    the number of events appended. Tables are reflected, not taken from the models, so the
    migration does not depend on the newest schema.
    """
    import sqlalchemy as sa

    from benchctl.store.models import UTCDateTime

    meta = sa.MetaData()
    existing = set(sa.inspect(conn).get_table_names())
    names = [n for n in AUDITED_TABLES if n in existing]
    meta.reflect(conn, only=names)
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer()),
        sa.column("at", UTCDateTime()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("entity", sa.String()),
        sa.column("entity_id", sa.String()),
        sa.column("before", sa.JSON(none_as_null=True)),
        sa.column("after", sa.JSON(none_as_null=True)),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    last = conn.execute(
        sa.select(events.c.id, events.c.hash).order_by(events.c.id.desc()).limit(1)).first()
    next_id = (last[0] + 1) if last is not None else 1
    prev = last[1] if last is not None else GENESIS_HASH
    appended = 0

    def flush(rows: dict[str, str | None]) -> None:
        nonlocal next_id, prev, appended
        at = dt.datetime.now(dt.UTC)
        after = {"schema": label, "rows": len(rows), ROWS_KEY: dict(sorted(rows.items()))}
        h = event_hash(next_id, at, "benchctl", "schema.baseline", "schema", label, None,
                       after, prev)
        conn.execute(events.insert().values(
            id=next_id, at=at, actor="benchctl", action="schema.baseline", entity="schema",
            entity_id=label, before=None, after=after, prev_hash=prev, hash=h))
        next_id, prev, appended = next_id + 1, h, appended + 1

    pending: dict[str, str | None] = {}
    for name in names:
        for key, digest in iter_digests(conn, meta.tables[name]):
            pending[key] = digest
            if len(pending) >= chunk:
                flush(pending)
                pending = {}
    if pending:
        flush(pending)
    return appended

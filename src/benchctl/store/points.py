"""The recorder's hot path: points and their readings, written many at a time.

Every point a run takes comes through :func:`record_points`, usually several at once (the
engine's point writer commits whatever arrived while the previous commit was on disk). So
this module does, per point, only what the record needs, and does it in the cheapest way that
gives exactly the bytes the slow, general code would give:

- :func:`prepare_point` checks a point and encodes it (its data as canonical JSON, each
  reading's times and raw-reply hash) in the caller's thread, before any lock is taken;
- :func:`record_points` then writes, under the audit lock, the points and readings with ids it
  chose itself (SQLite: the next rowids, the write lock being held; PostgreSQL: drawn from the
  tables' sequences), so every statement is one ``executemany`` and no id is read back;
- the row digests and the audit event are built as text from the pieces already encoded: the
  same bytes :func:`integrity.row_digest` and :func:`integrity.canonical` produce (the tests
  compare them on awkward values), without a JSON encoder pass per row.

One audit event per run per commit, ``points.record`` on the run, says which points were
recorded (key, seq, data, and what each reading was), and carries the digests of every row
written, so ``audit verify`` still vouches for each point and reading row by row.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring as _js
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError

from benchctl.errors import StoreError
from benchctl.store import integrity
from benchctl.store.models import utcnow

if TYPE_CHECKING:
    from benchctl import instruments

#: The audit action of a commit's points of one run.
ACTION = "points.record"

_UTC = dt.UTC


class ReadingWrite(NamedTuple):
    """A reading encoded for :func:`record_points`: everything but its ids, which are known
    only under the audit lock. (A named tuple: made twice per point, and a frozen dataclass
    costs a ``__setattr__`` per field.)"""

    #: Column values after (id, run_id, point_id), as SQLite and as PostgreSQL take them.
    sqlite_row: tuple[Any, ...]
    pg_row: tuple[Any, ...]
    #: Its digest text is ``{"id":ID`` + head + POINT_ID + tail.
    digest_head: str
    digest_tail: str
    #: Canonical JSON of what the audit event says of it.
    summary: str


class PointWrite(NamedTuple):
    """A point checked and encoded, ready for :func:`record_points`: the work that needs no
    lock is done by :func:`prepare_point` in the caller's thread, so the writer's own share
    (ids, seq, digests, the event) is small."""

    run_id: int
    key: str
    #: The point's data as canonical JSON text: the column's, the digest's and the event's.
    data_text: str
    readings: tuple[ReadingWrite, ...]
    #: ``,"key":KEY,"run_id":RUN`` of its digest text.
    key_and_run: str
    #: Its entry in the audit event, up to the seq: ``{"data":..,"readings":[..],"seq":``.
    entry_head: str


_SCALARS = frozenset({str, float, int, bool, type(None)})


def _keys_are_text(value: Any) -> bool:
    """Whether every mapping in ``value`` has only text keys: then sorting the keys while
    encoding gives the canonical text of what the database hands back (JSON turns other keys
    into text, which would sort otherwise)."""
    kind = type(value)
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _SCALARS and not _keys_are_text(v)):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(v) in _SCALARS or _keys_are_text(v) for v in value)
    return not isinstance(value, Mapping)


@functools.cache
def _encoder() -> json.JSONEncoder:
    """integrity.canonical's encoder, turning what JSON has no type for as the store does."""
    from benchctl.store.repository import _json_default

    return json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False, default=_json_default)


def _data_text(data: Mapping[str, Any], run_id: int, key: str) -> str:
    """Canonical JSON of ``data`` as the database will hand it back."""
    from benchctl.store.repository import _json_text

    if type(data) is not dict:
        data = dict(data)
    if _keys_are_text(data):
        try:
            return _encoder().encode(data)
        except (TypeError, ValueError):
            pass  # the general way below says what is wrong
    what = f"run {run_id} point {key} data"
    return integrity.canonical(json.loads(_json_text(data, what))).decode("utf-8")


def prepare_point(
    run_id: int,
    key: str,
    data: Mapping[str, Any],
    readings: Sequence[instruments.Reading],
    roles: Mapping[str, str] | None = None,
) -> PointWrite:
    """Check a point and encode it; raises :class:`StoreError` for what no database state can
    make right (no key, a naive timestamp, a value JSON cannot hold)."""
    if not key:
        raise StoreError(f"run {run_id}: a point needs a key")
    roles = roles or {}
    key_js = _js(key)
    out = []
    for r in readings:
        at = r.timestamp
        if at.tzinfo is None or at.utcoffset() is None:
            raise StoreError(
                f"run {run_id}: point {key}: reading of {r.instrument!r} has a naive timestamp"
            )
        # -0.0 is stored as 0 by SQLite: write what every back end hands back, so the digest
        # computed here is the one verify computes from the row.
        value = float(r.value) + 0.0
        if not math.isfinite(value):  # the audit event carries it, and JSON has no NaN
            raise StoreError(
                f"cannot store run {run_id} point {key} reading of {r.instrument!r} as JSON: "
                f"{value} is not a number JSON can hold"
            )
        utc = at.astimezone(_UTC)
        iso = utc.isoformat(timespec="microseconds")  # YYYY-MM-DDTHH:MM:SS.ffffff+00:00
        raw = bytes(r.raw)
        raw_sha = hashlib.sha256(raw).hexdigest()
        instrument, unit, stable = r.instrument, r.unit, bool(r.stable)
        role = roles.get(instrument, "")
        instrument_js, role_js, unit_js = _js(instrument), _js(role), _js(unit)
        flag, number = "true" if stable else "false", float.__repr__(value)
        out.append(ReadingWrite(
            (key, instrument, role, value, unit, int(stable), f"{iso[:10]} {iso[11:-6]}", raw),
            (key, instrument, role, value, unit, stable, utc, raw),
            f',"instrument":{instrument_js},"point_id":',
            f',"point_key":{key_js},"raw":"sha256:{raw_sha}","role":{role_js},'
            f'"run_id":{run_id},"stable":{flag},"taken_at":"{iso}","unit":{unit_js},'
            f'"value":{number}}}',
            f'{{"instrument":{instrument_js},"raw_sha256":"{raw_sha}","role":{role_js},'
            f'"stable":{flag},"taken_at":"{iso}","unit":{unit_js},"value":{number}}}'))
    data_text = _data_text(data, run_id, key)
    return PointWrite(
        run_id, key, data_text, tuple(out), f',"key":{key_js},"run_id":{run_id}',
        f'{{"data":{data_text},"key":{key_js},"readings":['
        f'{",".join(r.summary for r in out)}],"seq":')


# --------------------------------------------------------------------------------------------
# Canonical texts, built from their pieces (equal to integrity.row_digest's and canonical's)


def reading_digest_text(reading_id: int, point_id: int, r: ReadingWrite) -> str:
    """What :func:`integrity.row_digest` hashes for this readings row."""
    return f'{{"id":{reading_id}{r.digest_head}{point_id}{r.digest_tail}'


def point_digest_text(point_id: int, p: PointWrite, seq: int, created_iso: str) -> str:
    """What :func:`integrity.row_digest` hashes for this points row."""
    return (f'{{"created_at":"{created_iso}","data":{p.data_text},"id":{point_id}'
            f'{p.key_and_run},"seq":{seq}}}')


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_hash_of_text(id: int, at_iso: str, actor: str, action: str, entity: str,
                       entity_id: str, after_text: str, prev_hash: str) -> str:
    """:func:`integrity.event_hash` of an event with no ``before`` whose ``after`` is given as
    canonical JSON text (the payload's keys in canonical order)."""
    return _sha(f'{{"action":{_js(action)},"actor":{_js(actor)},"after":{after_text},'
                f'"at":"{at_iso}","before":null,"entity":{_js(entity)},'
                f'"entity_id":{_js(entity_id)},"id":{id},"prev_hash":{_js(prev_hash)}}}')


# --------------------------------------------------------------------------------------------
# Writing


def record_points(
    conn: Connection,
    points: Sequence[PointWrite],
    *,
    extra_rows: Mapping[str, str | None] | None = None,
) -> list[int]:
    """Record ``points`` (of one run or several) in the caller's transaction; their ids.

    Under the audit lock: one SELECT of the runs with their last seq, the last audit event and
    the ids to use; then one ``executemany`` each for the points, the readings, the runs'
    ``updated_at`` and the audit events (one ``points.record`` per run). ``extra_rows`` are
    digests of other rows of this transaction for the first event to carry. Any refusal raises
    :class:`StoreError` and writes nothing the caller should keep (roll back).
    """
    if not points:
        return []
    sql = _HotSQL.of(conn.dialect)
    dbapi_conn = conn.connection.dbapi_connection
    cur = dbapi_conn.cursor()  # type: ignore[union-attr]
    try:
        return _record_points(sql, cur, points, extra_rows)
    except sql.dbapi_error as e:
        # As SQLAlchemy would have raised it (the callers turn DBAPIError into StoreError
        # naming the database); a connection found broken is not handed out again.
        invalidated = conn.dialect.is_disconnect(e, dbapi_conn, cur)  # type: ignore[arg-type]
        if invalidated:
            conn.invalidate(e)
        err = DBAPIError.instance(None, None, e, sql.dbapi_error,
                                  connection_invalidated=invalidated, dialect=conn.dialect)
        if isinstance(err, IntegrityError):
            # Under the audit lock the seqs are free, so the unique (run_id, key) refused it.
            which = " or ".join(f"{p.key}" for p in points)
            one_run = len({p.run_id for p in points}) == 1
            raise StoreError(f"run {points[0].run_id}: point {which} is already recorded"
                             if one_run else
                             f"one of points {which} is already recorded in its run") from err
        raise err from e
    finally:
        if not conn.invalidated:
            cur.close()


def _check(points: Sequence[PointWrite], runs: Mapping[int, Mapping[str, Any]]) -> None:
    from benchctl.store.repository import RECORDING_STATES, _this_host

    host, pid = _this_host(), os.getpid()
    seen: set[tuple[int, str]] = set()
    for p in points:
        run = runs.get(p.run_id)
        if run is None:
            raise StoreError(f"run {p.run_id} does not exist")
        if run["state"] not in RECORDING_STATES:
            raise StoreError(f"run {p.run_id} is {run['state']}; point {p.key} cannot be "
                             "recorded")
        if run["host"] != host or run["pid"] != pid:
            raise StoreError(
                f"run {p.run_id} is owned by process {run['pid']} on {run['host']}; "
                f"point {p.key} cannot be recorded from here"
            )
        if (p.run_id, p.key) in seen:
            raise StoreError(f"run {p.run_id}: point {p.key} is already recorded")
        seen.add((p.run_id, p.key))


def _record_points(sql: _HotSQL, cur: Any, points: Sequence[PointWrite],
                   extra_rows: Mapping[str, str | None] | None) -> list[int]:
    from benchctl.store.repository import SYSTEM_ACTOR

    run_ids = sorted({p.run_id for p in points})
    n_readings = sum(len(p.readings) for p in points)
    found, (last_event_id, last_event_hash), point_ids, reading_ids = sql.lock_and_select(
        cur, run_ids, len(points), n_readings)
    runs = {row[0]: sql.run_row(row) for row in found}
    _check(points, runs)
    n_cols = len(sql.run_columns)
    last_seq = {row[0]: row[n_cols] or 0 for row in found}
    now = utcnow()
    now_db, now_iso = sql.time(now), now.isoformat(timespec="microseconds")

    point_rows = []
    reading_rows = []
    by_run: dict[int, tuple[list[str], dict[str, str | None]]] = {
        rid: ([], {}) for rid in run_ids}
    next_reading = iter(reading_ids)
    sqlite = sql.sqlite
    for p, point_id in zip(points, point_ids, strict=True):
        rid = p.run_id
        seq = last_seq[rid] = last_seq[rid] + 1
        point_rows.append((point_id, rid, p.key, seq, p.data_text, now_db))
        entries, digests = by_run[rid]
        digests[f"points:{point_id}"] = _sha(point_digest_text(point_id, p, seq, now_iso))
        for r in p.readings:
            reading_id = next(next_reading)
            reading_rows.append((reading_id, rid, point_id,
                                 *(r.sqlite_row if sqlite else r.pg_row)))
            digests[f"readings:{reading_id}"] = _sha(
                f'{{"id":{reading_id}{r.digest_head}{point_id}{r.digest_tail}')
        entries.append(f"{p.entry_head}{seq}}}")
    sql.insert_rows(cur, sql.insert_point, point_rows)
    sql.insert_rows(cur, sql.insert_reading, reading_rows)

    new_id = last_event_id + 1 if last_event_id is not None else 1
    prev_hash = str(last_event_hash) if last_event_id is not None else integrity.GENESIS_HASH
    events = []
    for i, rid in enumerate(run_ids):
        entries, digests = by_run[rid]
        # The run's row as written (its new updated_at), vouched for by its own event.
        digests[f"runs:{rid}"] = integrity.row_digest({**runs[rid], "updated_at": now})
        if i == 0 and extra_rows:
            digests = {**extra_rows, **digests}
        rows_text = ",".join(f"{_js(k)}:{'null' if v is None else _js(v)}"
                             for k, v in sorted(digests.items()))
        after_text = (f'{{"{integrity.ROWS_KEY}":{{{rows_text}}},'
                      f'"points":[{",".join(entries)}],"run_id":{rid}}}')
        actor = runs[rid]["performed_by"] or SYSTEM_ACTOR
        at = utcnow()
        entity_id = str(rid)
        h = event_hash_of_text(new_id, at.isoformat(timespec="microseconds"), actor, ACTION,
                               "run", entity_id, after_text, prev_hash)
        events.append((new_id, sql.time(at), actor, ACTION, "run", entity_id, after_text,
                       prev_hash, h))
        new_id, prev_hash = new_id + 1, h
    touches = [(now_db, rid) for rid in run_ids]
    if sql.sqlite:
        sql.executemany(cur, sql.touch_run, touches)
        sql.insert_rows(cur, sql.insert_event, events)
    else:  # both in one round trip
        with cur.connection.pipeline():
            sql.executemany(cur, sql.touch_run, touches)
            sql.executemany(cur, sql.insert_event, events)
    return point_ids


#: Rows one SQLite INSERT statement takes (see _HotSQL.insert_rows); a fixed size keeps the
#: statements few, so the sqlite3 module's statement cache holds them.
ROWS_PER_INSERT = 64


@functools.cache
def _sqlite_limit() -> int:
    import sqlite3

    # SQLITE_MAX_VARIABLE_NUMBER: 32766 since SQLite 3.32, 999 before.
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


def _sqlite_variables(cur: Any) -> int:
    """How many parameters one statement may have on this connection."""
    getlimit = getattr(cur.connection, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        import sqlite3

        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return _sqlite_limit()


@functools.cache
def _tables() -> Mapping[str, Table]:
    from benchctl.store.models import Base

    return Base.metadata.tables


class _HotSQL:
    """The statements of :func:`record_points` for one back end, and how values reach its
    driver: what SQLAlchemy's column types would do, done directly (its per-statement work
    costs more than the statement on SQLite). Built once per dialect.

    Values are written as SQLAlchemy writes them, so the rows read back through the models
    are the values the digests were computed from: times as UTC (SQLite: naive ISO text with
    microseconds, as its DATETIME stores them), JSON as its text, booleans as the
    driver takes them.
    """

    _made: ClassVar[dict[tuple[str, str], _HotSQL]] = {}

    @classmethod
    def of(cls, dialect: Dialect) -> _HotSQL:
        key = (dialect.name, dialect.driver)
        made = cls._made.get(key)
        if made is None:
            made = cls._made[key] = cls(dialect)
        return made

    def __init__(self, dialect: Dialect) -> None:
        from benchctl.store.repository import AUDIT_LOCK_KEY

        self.dialect = dialect
        quote = dialect.identifier_preparer.quote
        t = _tables()
        self.run_columns = [c.name for c in t["runs"].columns]
        # What SQLAlchemy does to each column of a runs row it reads (e.g. SQLite's time
        # text to an aware datetime), so the digest of the row is the one verify computes.
        self._run_procs = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                           for c in t["runs"].columns]
        self.sqlite = dialect.name == "sqlite"
        if self.sqlite:
            mark, as_json = "?", "?"
            self.lock = "UPDATE audit_events SET id = id WHERE 0 = 1"  # see _lock_audit
        elif dialect.name == "postgresql":
            mark, as_json = "%s", "%s::json"
            self.lock = f"SELECT pg_advisory_xact_lock({AUDIT_LOCK_KEY})"
        else:  # pragma: no cover - benchctl supports SQLite and PostgreSQL
            raise StoreError(f"record_points does not know the {dialect.name} back end")
        self._mark = mark
        cols = ", ".join(f"runs.{quote(c)}" for c in self.run_columns)
        self._select_runs = (
            f"SELECT {cols}, "
            "(SELECT max(points.seq) FROM points WHERE points.run_id = runs.id) "
            "FROM runs WHERE runs.id IN ({marks})")
        last_event = ("(SELECT id FROM audit_events ORDER BY id DESC LIMIT 1), "
                      "(SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1)")
        if self.sqlite:
            # The write lock is held: the next rowids are free, and SQLite would give these.
            self._select_ids = (f"SELECT {last_event}, (SELECT max(id) FROM points), "
                                "(SELECT max(id) FROM readings)")
        else:
            # Under the audit lock nobody else inserts points or readings, so a block of ids
            # is taken in one step (nextval, then setval past the block) rather than a
            # nextval per row, which cost more than the rows' COPY.
            def block(table: str) -> str:
                seq = f"pg_get_serial_sequence('{table}', 'id')"
                return (f"CASE WHEN %s > 0 THEN setval({seq}, nextval({seq}) + %s - 1) "
                        "ELSE 0 END")

            self._select_ids = f"SELECT {last_event}, {block('points')}, {block('readings')}"

        def insert(table: str, columns: list[str], json_columns: tuple[str, ...] = ()) -> str:
            marks = ", ".join(as_json if c in json_columns else mark for c in columns)
            return (f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
                    f"VALUES ({marks})")

        self.insert_point = insert("points", ["id", "run_id", "key", "seq", "data",
                                              "created_at"], ("data",))
        self.insert_reading = insert("readings", [
            "id", "run_id", "point_id", "point_key", "instrument", "role", "value", "unit",
            "stable", "taken_at", "raw"])
        self.insert_event = insert("audit_events", [
            "id", "at", "actor", "action", "entity", "entity_id", "after", "prev_hash",
            "hash"], ("after",))
        self.touch_run = f"UPDATE runs SET updated_at = {mark} WHERE id = {mark}"
        #: PostgreSQL: the columns' types, for a binary COPY (the server parses no text, and
        #: psycopg's binary dumpers cost half the client's CPU). The points' data is already
        #: JSON text, and the binary form of json is its text: so it goes as text (psycopg's
        #: json dumper would encode the text again, as a JSON string).
        self.copy_types = {
            self.insert_point: ["int4", "int4", "varchar", "int4", "text", "timestamptz"],
            self.insert_reading: ["int4", "int4", "int4", "varchar", "varchar", "varchar",
                                  "float8", "varchar", "bool", "timestamptz", "bytea"],
        }
        dbapi = dialect.loaded_dbapi
        self.dbapi_error: type[Exception] = dbapi.Error

    def run_row(self, row: Sequence[Any]) -> dict[str, Any]:
        """The runs columns of ``row`` as SQLAlchemy would hand them back."""
        return {name: (proc(value) if proc is not None else value)
                for name, proc, value in zip(self.run_columns, self._run_procs, row,
                                             strict=False)}

    def lock_and_select(self, cur: Any, run_ids: list[int], n_points: int, n_readings: int
                        ) -> tuple[list[Sequence[Any]], tuple[int | None, str | None],
                                   list[int], list[int]]:
        """Take the audit lock (see ``repository._lock_audit``), then read the runs, the
        last audit event, and the ids the new points and readings get. PostgreSQL: all in
        one round trip (a pipeline runs them in order, so the snapshot is taken once the lock
        is held)."""
        select_runs = self._select_runs.format(marks=", ".join([self._mark] * len(run_ids)))
        if self.sqlite:
            cur.execute(self.lock)
            runs = cur.execute(select_runs, run_ids).fetchall()
            event_id, event_hash, max_point, max_reading = cur.execute(
                self._select_ids).fetchone()
            first_point, first_reading = (max_point or 0) + 1, (max_reading or 0) + 1
            return (runs, (event_id, event_hash),
                    list(range(first_point, first_point + n_points)),
                    list(range(first_reading, first_reading + n_readings)))
        conn = cur.connection
        ids_cur = conn.cursor()
        try:
            with conn.pipeline():
                cur.execute(self.lock)
                cur.execute(select_runs, run_ids)
                ids_cur.execute(self._select_ids, (n_points, n_points, n_readings, n_readings))
            runs = cur.fetchall()
            event_id, event_hash, last_point, last_reading = ids_cur.fetchone()
        finally:
            ids_cur.close()
        return (runs, (event_id, event_hash),
                list(range(last_point - n_points + 1, last_point + 1)),
                list(range(last_reading - n_readings + 1, last_reading + 1)))

    def insert_rows(self, cur: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` with ``statement`` (a one-row INSERT) in few round trips and little
        Python per row.

        SQLite: as INSERTs of up to :data:`ROWS_PER_INSERT` rows each. Every row of an
        ``executemany`` is a step of its own, and the sqlite3 module lets go of the GIL around
        each one; with the run's event loop busy in the other thread, getting it back can take
        a switch interval (5 ms) per row.

        PostgreSQL: as one COPY, binary. psycopg's ``executemany`` costs about as much Python
        per row as the rest of the point (measured: 70–110 µs of CPU per point against 40–55
        with COPY); a multi-row INSERT was slower still; a binary COPY took 13 % less time
        than a text one (230 points, 460 readings: 7.1 ms against 8.2), and half the
        client's CPU."""
        if len(rows) < 2:
            self.executemany(cur, statement, rows)
            return
        head, _, one = statement.partition(" VALUES ")
        if not self.sqlite:
            types = self.copy_types.get(statement)
            binary = " (FORMAT BINARY)" if types else ""
            with cur.copy(f"{head.replace('INSERT INTO', 'COPY', 1)} FROM STDIN{binary}"
                          ) as copy:
                if types:
                    copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            return
        per = max(1, min(ROWS_PER_INSERT, _sqlite_variables(cur) // len(rows[0])))
        for start in range(0, len(rows), per):
            chunk = rows[start:start + per]
            cur.execute(f"{head} VALUES {', '.join([one] * len(chunk))}",
                        [v for row in chunk for v in row])

    def executemany(self, cur: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if len(rows) == 1:
            cur.execute(statement, rows[0])
        else:
            cur.executemany(statement, rows)

    def time(self, at: dt.datetime) -> Any:
        """An aware time as the column stores it (see ``models.UTCDateTime``)."""
        if self.sqlite:
            return at.astimezone(_UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return at.astimezone(_UTC)

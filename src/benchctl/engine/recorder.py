"""The run's writes to the store, each its own unit of work.

A reading is durable when ``record_point`` returns: the procedure does not go on before, so a
run interrupted anywhere resumes at the next point with nothing lost and nothing taken twice.

Points go through a *group commit*: ``record_point`` calls that arrive while another one is
committing wait, and the next commit takes all of them in one transaction (one fsync, one
audit lock), then each call returns. There is no timer: the window is the commit in flight,
so a lone run (points one after another) pays nothing for it, and runs recording at the same
time in one process (every :class:`RunRecorder` of one database shares the group) share their
commits instead of queueing for the database's write lock one by one. Each point keeps its
own audit event, with the digests of its rows (``repository.record_points``).

The command line and the TUI run one run per process today, and a run records its points one
after another, so there a group is one point: what makes that path fast is
``repository.record_points`` (SQL Core, digests from the values written), not the grouping.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreError
from ..instruments import Reading

#: Most points one group commit takes: bounds how long the last of them waits (a point costs
#: well under a millisecond to write, so a full group commits in a few tens of ms at most).
MAX_GROUP = 64


@dataclass(eq=False)
class _Waiter:
    """One ``record_point`` call waiting for its group's commit."""

    item: Any
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    done: bool = False
    point_id: int | None = None
    error: BaseException | None = None


class GroupCommit:
    """Points of every recorder of one database, committed together when they arrive together.

    The first caller to find no commit in flight becomes the leader: it takes every waiting
    point (its own first), writes them in one transaction, commits, and wakes them; if more
    arrived meanwhile, it hands the lead to the first of those and returns (its own point is
    durable: it does not stay to serve the others). A group that the database refuses is
    retried point by point, so a refused point (a duplicate key, a finished run) fails its
    own call only.
    """

    def __init__(self, db: Any) -> None:
        # Weak: the registry below maps the database to its group, and a strong reference
        # back would keep both alive for ever.
        self._db = weakref.ref(db)
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._busy = False
        #: Commits made and points they carried (the benchmark reports the mean group size).
        self.commits = 0
        self.points = 0

    def record(self, item: Any) -> int:
        """Write ``item`` (a ``repository.PointWrite``); its point id once committed."""
        me = _Waiter(item)
        with self._lock:
            self._queue.append(me)
            if not self._busy:
                self._busy = me.lead = True
        while not me.done:
            if me.lead:
                self._lead()
            else:
                me.wake.wait()
                me.wake.clear()
        if me.error is not None:
            raise me.error
        assert me.point_id is not None
        return me.point_id

    def _lead(self) -> None:
        with self._lock:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
        try:
            self._write(group)
        except BaseException as exc:  # interrupted: no caller may wait forever
            for w in group:
                if not w.done:
                    w.error = StoreError(f"the commit of point {w.item.key} was interrupted: "
                                         f"{type(exc).__name__}")
            raise
        finally:
            with self._lock:
                for w in group:
                    w.done, w.lead = True, False
                    w.wake.set()
                if self._queue:
                    nxt = self._queue[0]
                    nxt.lead = True
                    nxt.wake.set()
                else:
                    self._busy = False

    def _write(self, group: list[_Waiter]) -> None:
        from ..store import repository as repo

        db = self._db()
        if db is None:
            raise StoreError("the database of this recorder was closed")
        try:
            with db.transaction() as conn:
                ids = repo.record_points(conn, [w.item for w in group])
        except StoreError as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            for w in group:  # find which point was refused; the others still land
                self._write([w])
            return
        self.commits += 1
        self.points += len(group)
        for w, point_id in zip(group, ids, strict=True):
            w.point_id = point_id


_groups: weakref.WeakKeyDictionary[Any, GroupCommit] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def group_commit(db: Any) -> GroupCommit:
    """The group commit of database ``db`` (one per open database in this process)."""
    with _groups_lock:
        group = _groups.get(db)
        if group is None:
            group = _groups[db] = GroupCommit(db)
        return group


class RunRecorder:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.group = group_commit(db)

    def record_point(self, run_id: int, key: str, data: dict[str, Any],
                     readings: list[Reading], roles: dict[str, str]) -> None:
        """Record a point with its readings; returns once they are committed (durable)."""
        from ..store import repository as repo

        self.group.record(repo.prepare_point(run_id, key, data, readings, roles))

    def set_state(self, run_id: int, state: str, message: str | None) -> None:
        from ..store import repository as repo

        with self.db.session() as s:
            repo.set_run_state(s, run_id, str(state), message)

    def set_environment(self, run_id: int, label: str, data: dict[str, Any]) -> None:
        from ..store import repository as repo

        with self.db.session() as s:
            repo.set_environment(s, run_id, label, data)

    def save_results(self, run_id: int, results: list[dict[str, Any]], verdict: str | None
                     ) -> None:
        from ..store import repository as repo

        with self.db.session() as s:
            repo.save_results(s, run_id, results, verdict)

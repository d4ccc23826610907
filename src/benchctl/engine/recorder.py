"""The run's writes to the store: points written behind the procedure, everything else at once.

A point is committed by the database's *point writer*, a thread that takes the points
waiting (as many as it commits in :data:`COMMIT_BUDGET_S` at the database's recent pace) and
writes them in one transaction (one fsync, one audit lock), then the next ones, as they come.
The procedure hands its point over and goes on measuring; the point is durable a commit
later, and the procedure waits for the writer when it gets more than :data:`AHEAD_AT_MOST_S`
or :data:`MAX_PENDING` points ahead of its record, or when a commit's worth of points is
already waiting. What the run promises, and how (see ``RunContext.point``):

- a point is *shown* (the ``point`` event: the TUI, stdio-json) only once it is committed;
- nothing else the run writes (its state, environment, results) and no question to the
  operator comes before every point taken so far is committed: :meth:`RunRecorder.wait_durable`
  is the barrier, and the recorder's other writes go through it;
- a point the database refuses stops the run at its next step, and the points taken after it
  are refused too, so what is recorded is always the run's first points, in order.

So a run interrupted anywhere still resumes at the first point not recorded, with nothing
taken twice; a power cut can lose only points taken in the last moments (≤ 50 ms of the
run's work), which nobody has seen yet, and which the resumed run takes again.

Why not commit each point before going on, as the first versions did: a commit waits for the
disk (an fsync, about half a millisecond on a good SSD, tens on a busy one), so one point per
commit bounded a run to about a thousand points a second and charged every point the thread
hand-off; several points per commit cost little more than one.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import StoreError
from ..instruments import Reading

#: Most points one commit takes, whatever the database's pace.
MAX_GROUP = 512
#: Fewest points the pace lets a commit take (a commit's own cost is then spread thin).
MIN_GROUP = 32
#: How long one commit should take at most: the writer takes no more points into a commit
#: than it commits in this long at its recent pace, and runs hold back while a commit's
#: worth is already waiting. A point then waits for about the commit under way and its
#: own: twice this, up to three times when the pace changes under load (measured with eight
#: runs at once on PostgreSQL on two cores: 74-84 ms at most, against the figure's 100 ms;
#: 30 ms gave up to 96 ms for no more readings a second).
COMMIT_BUDGET_S = 0.025
#: The procedure does not go on while a point it handed over this long ago is still not
#: committed: what a power cut can take is at most the last 50 ms of the run's work. (The
#: figure the benchmark checks, every reading durable within 100 ms, leaves room for the
#: commit under way.)
AHEAD_AT_MOST_S = 0.050
#: Points a run may have handed over and not yet committed before it waits for the writer:
#: a commit's worth being written and one waiting, at the most a commit takes. (256 held a
#: single fast run back while its points were written: 12 % fewer readings a second on
#: PostgreSQL, measured; the time a run may be ahead is bounded by AHEAD_AT_MOST_S anyway.)
MAX_PENDING = 2 * MAX_GROUP
#: The writer thread ends after this long with nothing to write (the next point starts it).
IDLE_S = 2.0


class Ticket:
    """One point handed to the writer: what became of it, and when. (A plain class with
    slots: one is made per point.)"""

    __slots__ = ("durable", "error", "item", "on_durable", "point_id", "recorder", "submitted")

    def __init__(self, item: Any, recorder: RunRecorder,
                 on_durable: Callable[[Ticket], None] | None = None) -> None:
        self.item = item
        self.recorder = recorder
        self.on_durable = on_durable
        self.submitted = time.perf_counter()
        self.durable: float | None = None
        self.point_id: int | None = None
        self.error: BaseException | None = None


class PointWriter:
    """The points of every recorder of one database, committed in groups by one thread.

    Groups are what arrived while the previous commit was on disk, so there is no timer: a
    point that finds the writer idle is committed at once. A group the database refuses is
    written again point by point, so a refused point fails its own run only; the later points
    of that run fail with it (a run's record stays a prefix of what it took).
    """

    def __init__(self, db: Any) -> None:
        # Weak: the registry below maps the database to its writer, and a strong reference
        # back would keep both alive for ever.
        self._db = weakref.ref(db)
        self._cond = threading.Condition()
        self._queue: deque[Ticket] = deque()
        self._thread: threading.Thread | None = None
        #: The thread is (about to be) asleep on ``_cond``: a point must wake it. Set before
        #: the thread looks at the queue a last time, cleared after it has stopped looking.
        self._asleep = False
        self._writing = False
        #: When the oldest point of the commit under way was handed over.
        self._inflight_since: float | None = None
        #: Commits made and points they carried (the benchmark reports the mean group size).
        self.commits = 0
        self.points = 0
        #: Seconds per point of recent commits (None: none big enough yet), and the most
        #: points the next commit takes (see COMMIT_BUDGET_S).
        self.seconds_per_point: float | None = None
        self.group_limit = 128
        #: Called (in the writer's thread) once it next takes points from the queue or a
        #: commit ends: runs waiting for room in the queue go on then, not only when a point
        #: of their own is committed.
        self._when_room: list[Callable[[], None]] = []

    def drain(self, timeout: float) -> bool:
        """Wait until every point handed over is written (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def behind(self) -> float:
        """How long ago the oldest point not yet committed, of any run, was handed over."""
        since = self._inflight_since
        if since is None:
            try:
                since = self._queue[0].submitted
            except IndexError:
                return 0.0
        return time.perf_counter() - since

    def when_room(self, call: Callable[[], None]) -> None:
        """Have ``call`` called once the writer next takes points from the queue (there is
        room in it again) or the commit under way ends; at once if nothing is queued or
        being written. (The writer does both under ``_cond``, and takes the calls there.)"""
        with self._cond:
            if self._writing or self._queue:
                self._when_room.append(call)
                return
        call()

    def backlogged(self) -> bool:
        """Whether a commit's worth of points (or more) is waiting behind the one under way:
        a run should wait rather than queue more."""
        return len(self._queue) >= self.group_limit

    def _paced(self, points: int, seconds: float) -> None:
        """Learn the database's pace from a commit, and size the next ones to it. Small
        commits are not learnt from: their fixed cost (round trips, the fsync) would make
        points look dear, shrink the next commits, and so on down."""
        if points < MIN_GROUP:
            return
        per = seconds / points
        last = self.seconds_per_point
        self.seconds_per_point = per = per if last is None else 0.7 * last + 0.3 * per
        self.group_limit = max(MIN_GROUP, min(MAX_GROUP, int(COMMIT_BUDGET_S / per)))

    def submit(self, ticket: Ticket) -> None:
        """Queue a point. While the writer is busy this takes no lock: with several runs in
        one process, a lock taken per point made their threads queue behind each other (each
        wait a thread switch), which cost more than the points themselves."""
        self._queue.append(ticket)  # deque.append is atomic
        # Read in this order (see _run): if the writer is not asleep, it is either still
        # going to look at the queue, or already gone (and then _thread is None).
        if self._asleep or self._thread is None:
            with self._cond:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="benchctl point writer")
                    self._thread.start()
                else:
                    self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._asleep = True  # before the last look: see submit
                    try:
                        # Idle is IDLE_S with no point, not one wake-up without one (drain
                        # and the recorders wait on _cond too).
                        idle_until = time.monotonic() + IDLE_S
                        while not self._queue:
                            left = idle_until - time.monotonic()
                            if left <= 0:
                                self._thread = None  # before _asleep is cleared
                                return
                            self._cond.wait(left)
                    finally:
                        self._asleep = False
                n = min(len(self._queue), self.group_limit)
                group = [self._queue.popleft() for _ in range(n)]
                self._writing = True
                self._inflight_since = group[0].submitted
                waiting, self._when_room = self._when_room, []
            _call_all(waiting)
            try:
                with _prompt_handoffs():
                    self._write_group(group)
            except BaseException as exc:  # no run may wait for ever on a point
                for t in group:
                    if t.durable is None:
                        self._finish(t, None, StoreError(
                            f"the commit of point {t.item.key} was interrupted: "
                            f"{type(exc).__name__}: {exc}"))
            finally:
                with self._cond:
                    self._writing = False
                    self._inflight_since = None
                    self._cond.notify_all()
                    waiting, self._when_room = self._when_room, []
                _call_all(waiting)
            # Not kept while idle: the tickets hold their runs (and the garbage collector's
            # full passes scan whatever is kept).
            del group

    def _write_group(self, group: list[Ticket]) -> None:
        live = []
        for t in group:
            failed = t.recorder.failure
            if failed is not None:  # an earlier point of this run was refused
                self._finish(t, None, StoreError(
                    f"run {t.item.run_id}: point {t.item.key} was not recorded, because an "
                    f"earlier point was not: {failed}"))
            else:
                live.append(t)
        if not live:
            return
        try:
            ids = self._commit([t.item for t in live])
        except StoreError as exc:
            if len(live) == 1:
                self._finish(live[0], None, exc)
                return
            for t in live:  # find which point was refused; the ones before it still land
                self._write_group([t])
            return
        for t, point_id in zip(live, ids, strict=True):
            self._finish(t, point_id, None)

    def _commit(self, items: list[Any]) -> list[int]:
        from ..store import repository as repo

        db = self._db()
        if db is None:
            raise StoreError("the database of this recorder was closed")
        started = time.perf_counter()
        with db.transaction() as conn:
            ids = repo.record_points(conn, items)
        self._paced(len(items), time.perf_counter() - started)
        self.commits += 1
        self.points += len(items)
        return ids

    @staticmethod
    def _finish(t: Ticket, point_id: int | None, error: BaseException | None) -> None:
        t.point_id, t.error, t.durable = point_id, error, time.perf_counter()
        t.recorder._finished(t)
        if t.on_durable is not None:
            # Whoever listened may be gone (its loop closed): the point is committed anyway.
            with contextlib.suppress(Exception):
                t.on_durable(t)



def _call_all(calls: list[Callable[[], None]]) -> None:
    for call in calls:
        with contextlib.suppress(Exception):  # its loop may be closed
            call()


@functools.cache
def _prepare_point() -> Callable[..., Any]:
    """``repository.prepare_point``, imported on first use (the store is heavy to import)."""
    from ..store import repository as repo

    return repo.prepare_point


#: While a commit is under way, the interpreter hands the GIL on after this long (Python's
#: default is 5 ms): back from each database round trip the writer waits for the GIL, and
#: a busy event loop gives it up only at the switch interval, several times per commit.
COMMIT_SWITCH_INTERVAL_S = 0.001
_handoffs_lock = threading.Lock()
_handoffs_active = 0
_handoffs_saved = 0.0


@contextlib.contextmanager
def _prompt_handoffs() -> Iterator[None]:
    """Shorten the switch interval while any writer commits (process-wide, so counted)."""
    global _handoffs_active, _handoffs_saved
    with _handoffs_lock:
        if _handoffs_active == 0:
            _handoffs_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_handoffs_saved, COMMIT_SWITCH_INTERVAL_S))
        _handoffs_active += 1
    try:
        yield
    finally:
        with _handoffs_lock:
            _handoffs_active -= 1
            if _handoffs_active == 0:
                sys.setswitchinterval(_handoffs_saved)


_writers: weakref.WeakKeyDictionary[Any, PointWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


@atexit.register
def _drain_at_exit() -> None:
    """The writer's thread does not outlive the process: what it holds is written first (a
    run waits for its points itself; this is for whoever used a recorder without a run)."""
    with _writers_lock:
        writers = list(_writers.values())
    for writer in writers:
        writer.drain(10.0)


def point_writer(db: Any) -> PointWriter:
    """The point writer of database ``db`` (one per open database in this process)."""
    with _writers_lock:
        writer = _writers.get(db)
        if writer is None:
            writer = _writers[db] = PointWriter(db)
        return writer


class RunRecorder:
    """One run's writes. Points go to the database's writer; the other writes wait until the
    run's points are committed, so the record never shows a state, an environment or results
    ahead of the points they follow."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.writer = point_writer(db)
        self._cond = threading.Condition()
        #: Points handed over and not yet finished, in the order handed over. The run's
        #: thread appends without a lock (deque.append is atomic); the writer removes under
        #: ``_cond``, which is what waiters wait on.
        self._unfinished: deque[Ticket] = deque()
        #: The first point the database refused, if any: the run goes no further.
        self.failure: StoreError | None = None

    # -- points ------------------------------------------------------------------------

    def submit_point(self, run_id: int, key: str, data: dict[str, Any],
                     readings: list[Reading], roles: dict[str, str],
                     on_durable: Callable[[Ticket], None] | None = None) -> Ticket:
        """Hand a point to the writer; returns at once. A point no database could take (a
        naive timestamp, a value JSON cannot hold) and a run whose earlier point was refused
        raise :class:`StoreError` here."""
        if self.failure is not None:
            raise self.failure
        ticket = Ticket(_prepare_point()(run_id, key, data, readings, roles), self,
                        on_durable)
        self._unfinished.append(ticket)
        self.writer.submit(ticket)
        return ticket

    def record_point(self, run_id: int, key: str, data: dict[str, Any],
                     readings: list[Reading], roles: dict[str, str]) -> None:
        """Record a point and return once it is committed (durable)."""
        ticket = self.submit_point(run_id, key, data, readings, roles)
        with self._cond:
            while ticket.durable is None:
                self._cond.wait()
        if ticket.error is not None:
            raise ticket.error

    @property
    def pending(self) -> int:
        """Points handed over and not yet committed (or refused)."""
        return len(self._unfinished)

    def oldest(self) -> Ticket | None:
        """The oldest point handed over and not yet committed (or refused)."""
        try:
            return self._unfinished[0]
        except IndexError:
            return None

    def behind(self) -> float:
        """How long ago the oldest point not yet committed was handed over (0: none): this
        run's, or another's sharing the writer (runs recording at once in one process hold
        back together, so the writer is not starved of the interpreter by their loops)."""
        try:
            oldest = self._unfinished[0]
        except IndexError:
            return 0.0
        return max(time.perf_counter() - oldest.submitted, self.writer.behind())

    def must_catch_up(self) -> bool:
        """Whether the run should wait for the writer before its next point: it has
        :data:`MAX_PENDING` points waiting, or a point of any run has waited longer than
        :data:`AHEAD_AT_MOST_S`, or the writer has a commit's worth waiting already."""
        pending = len(self._unfinished)
        return bool(pending) and (pending >= MAX_PENDING or self.writer.backlogged()
                                  or self.behind() > AHEAD_AT_MOST_S)

    def _finished(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.error is not None and self.failure is None:
                err = ticket.error
                self.failure = err if isinstance(err, StoreError) else StoreError(str(err))
            if self._unfinished and self._unfinished[0] is ticket:
                self._unfinished.popleft()
            else:  # the writer finishes a run's points in order; should that ever change
                self._unfinished.remove(ticket)
            self._cond.notify_all()

    def wait_durable(self, below: int = 1, *, raise_failure: bool = True) -> None:
        """Wait until fewer than ``below`` points are pending (1: all committed); raise the
        refusal of any point as :class:`StoreError`."""
        with self._cond:
            while len(self._unfinished) >= below:
                self._cond.wait()
        if raise_failure and self.failure is not None:
            raise self.failure

    # -- the run's other writes (each after its points) ---------------------------------

    def set_state(self, run_id: int, state: str, message: str | None) -> None:
        from ..store import repository as repo

        # A failed point stops the run: its state is still recorded (failed, aborted).
        self.wait_durable(raise_failure=False)
        with self.db.session() as s:
            repo.set_run_state(s, run_id, str(state), message)

    def set_environment(self, run_id: int, label: str, data: dict[str, Any]) -> None:
        from ..store import repository as repo

        self.wait_durable()
        with self.db.session() as s:
            repo.set_environment(s, run_id, label, data)

    def save_results(self, run_id: int, results: list[dict[str, Any]], verdict: str | None
                     ) -> None:
        from ..store import repository as repo

        self.wait_durable()
        with self.db.session() as s:
            repo.save_results(s, run_id, results, verdict)

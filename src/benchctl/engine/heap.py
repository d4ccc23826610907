"""The collector's full passes during a run scan only what the run made.

CPython's cyclic garbage collector now and then makes a *full* pass over every object the
process holds, and every thread waits for it. By the time a run starts, the process holds
tens of thousands of objects it will keep for good (modules, SQLAlchemy's metadata, the
TUI's widgets), and on a small bench PC a full pass over them takes 40-80 ms: long enough to
hold a point's commit past its 100 ms, to skew a reading taken together with another, or to
freeze the live screen. While any run is under way those objects are *frozen*
(:func:`gc.freeze`): the passes skip them. They are still freed as usual when nothing refers
to them; only a reference cycle among them waits for the run to end, when they are thawed
(:func:`gc.unfreeze`) and the collector sees them again.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_runs = 0


@contextlib.contextmanager
def frozen_while_running() -> Iterator[None]:
    """Freeze what the process holds for as long as this run (or any other begun while it
    was under way) runs; counted, so the last run to end thaws it."""
    global _runs
    with _lock:
        if _runs == 0:
            gc.freeze()
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                gc.unfreeze()


def runs_frozen() -> int:
    """How many runs hold the heap frozen (for tests)."""
    return _runs

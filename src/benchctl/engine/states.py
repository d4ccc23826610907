"""The run state table.

Pause, resume and abort arrive from a person, a signal or a fault at any moment; an explicit
table means no combination of them can put a run in a state nobody designed.
"""

from __future__ import annotations

import enum
import threading


class RunState(enum.StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    ABORTING = "aborting"
    ABORTED = "aborted"
    COMPLETED = "completed"
    FAILED = "failed"


S = RunState
#: state -> states it may move to. ABORTED and FAILED may be resumed (back to RUNNING).
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    S.IDLE: frozenset({S.RUNNING}),
    S.RUNNING: frozenset({S.PAUSED, S.ABORTING, S.COMPLETED, S.FAILED}),
    S.PAUSED: frozenset({S.RUNNING, S.ABORTING, S.FAILED}),
    S.ABORTING: frozenset({S.ABORTED, S.FAILED}),
    S.ABORTED: frozenset({S.RUNNING}),
    S.FAILED: frozenset({S.RUNNING}),
    S.COMPLETED: frozenset(),
}
RESUMABLE = frozenset({S.ABORTED, S.FAILED, S.PAUSED, S.RUNNING, S.ABORTING})
"""States a stored run may be resumed from (RUNNING, PAUSED or ABORTING: its process died)."""


class IllegalTransition(RuntimeError):
    pass


class StateMachine:
    """Thread-safe holder of one run's state; every change goes through the table."""

    def __init__(self, state: RunState = RunState.IDLE) -> None:
        self._state = state
        self._lock = threading.Lock()

    @property
    def state(self) -> RunState:
        return self._state

    def can(self, target: RunState) -> bool:
        return target in TRANSITIONS[self._state]

    def to(self, target: RunState) -> RunState:
        with self._lock:
            if target not in TRANSITIONS[self._state]:
                raise IllegalTransition(f"a run cannot go from {self._state} to {target}")
            previous, self._state = self._state, target
            return previous

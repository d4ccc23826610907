"""The TUI as an operator channel: a procedure's question becomes a dialog on the screen.

The run has its own thread and event loop (``start_run`` calls ``asyncio.run``); the UI has
Textual's. A request crosses over as a :class:`PendingPrompt` holding a
``concurrent.futures.Future``: the run awaits it through ``asyncio.wrap_future`` (its loop
stays free), the UI completes it when the technician answers (``Future.set_result`` is
thread-safe). Nothing here blocks either side.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine.operators import OperatorChannel
from ..operator import OperatorAnswer, OperatorRequest

_ids = itertools.count(1)


@dataclass(eq=False)
class PendingPrompt:
    """A question waiting for the technician."""

    request: OperatorRequest
    future: concurrent.futures.Future[OperatorAnswer] = field(
        default_factory=concurrent.futures.Future)
    id: int = field(default_factory=lambda: next(_ids))
    opened: float = field(default_factory=time.monotonic)

    @property
    def answered(self) -> bool:
        return self.future.done()

    def answer(self, answer: OperatorAnswer) -> bool:
        """Complete the prompt once; later answers (a double click) are ignored."""
        try:
            self.future.set_result(answer)
        except concurrent.futures.InvalidStateError:
            return False
        return True

    @property
    def is_fault(self) -> bool:
        return (self.request.action or {}).get("type") == "instrument_fault"


#: What the TUI does with a new prompt (post it to the app); False when nobody can answer.
Deliver = Callable[[PendingPrompt], bool]
#: Called on the run's loop before "retry" of an instrument fault is handed back.
BeforeRetry = Callable[[OperatorRequest], Awaitable[None]]


class TuiOperator(OperatorChannel):
    kind = "tui"

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._lock = threading.Lock()
        self._pending: dict[int, PendingPrompt] = {}
        self.before_retry: BeforeRetry | None = None
        self.asked = 0

    @property
    def pending(self) -> list[PendingPrompt]:
        with self._lock:
            return list(self._pending.values())

    async def ask(self, request: OperatorRequest) -> OperatorAnswer:
        prompt = PendingPrompt(request)
        with self._lock:
            self._pending[prompt.id] = prompt
            self.asked += 1
        try:
            if not self._deliver(prompt):
                return OperatorAnswer(ok=False, abort=True, raw=b"tui closed")
            answer = await asyncio.wrap_future(prompt.future)
        finally:
            with self._lock:
                self._pending.pop(prompt.id, None)
        if prompt.is_fault and answer.value == "retry" and self.before_retry is not None:
            await self.before_retry(request)
        return answer

    def cancel_all(self, reason: bytes = b"aborted from the tui") -> None:
        """Answer every open prompt with abort (the run is being aborted, or the TUI quits)."""
        for prompt in self.pending:
            prompt.answer(OperatorAnswer(ok=False, abort=True, raw=reason))


def answer_for(prompt: PendingPrompt, **kw: Any) -> OperatorAnswer:
    """An answer with the raw bytes a record keeps of what the technician did."""
    raw = kw.pop("raw", None)
    if raw is None:
        shown = kw.get("value", "ok" if kw.get("ok", True) else "no")
        raw = f"tui:{shown}".encode()
    return OperatorAnswer(raw=raw, **kw)

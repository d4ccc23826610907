"""The run context: everything a procedure may touch, and nothing about I/O details.

A procedure asks for a point by its stable key; the context either returns the value already
recorded (on resume) or measures it and hands it to the recorder, which commits it within
100 ms while the procedure goes on (engine/recorder.py). The point is shown (the ``point``
event) once committed, and the run asks the operator nothing, and writes nothing else, before
every point taken is committed (:meth:`RunContext.durable`). So a run interrupted anywhere
resumes at the first point not recorded, with nothing lost that anyone has seen and nothing
taken twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .. import i18n
from ..errors import InstrumentError, OperatorAbort, RunAborted
from ..instruments import Ambient, Reading
from ..operator import OperatorAnswer, OperatorRequest
from .ambient import AmbientGuard
from .clock import RunClock
from .handles import InstrumentHandle, RetryPolicy
from .operators import OperatorChannel
from .states import RunState, StateMachine

Measure = Callable[[], Awaitable[tuple[dict[str, Any], list[Reading]]]]
Listener = Callable[[dict[str, Any]], None]


@dataclass
class RunInfo:
    run_id: int
    procedure_id: str
    mode: str
    params: dict[str, Any]
    locale: str
    dut: Any
    references: dict[str, Any] = field(default_factory=dict)


class RunContext:
    def __init__(self, info: RunInfo, *, clock: RunClock, operator: OperatorChannel,
                 instruments: dict[str, InstrumentHandle | None], store: Any,
                 done: dict[str, dict[str, Any]], state: StateMachine,
                 listeners: list[Listener] | None = None, retry: RetryPolicy | None = None,
                 ) -> None:
        self.info = info
        self.run_id = info.run_id
        self.mode = info.mode
        self.params = info.params
        self.locale = info.locale
        self.dut = info.dut
        self.references = info.references
        self.clock = clock
        self.operator = operator
        self.instruments = instruments
        self.store = store
        self.done = dict(done)
        #: The points committed and shown so far (``done`` also holds the ones handed over and
        #: not yet committed): what a display of the run's results may use.
        self.shown = dict(done)
        self.state = state
        self.listeners = listeners or []
        self.retry = retry or RetryPolicy()
        self.environment: dict[str, Any] = {}
        self.results: list[dict[str, Any]] | None = None
        self.verdict: str | None = None
        self.current_step: tuple[int, str] = (0, "")
        self.current_point: str = ""
        self._abort = asyncio.Event()
        self._resume = asyncio.Event()
        self._resume.set()
        self._seq = len(done)
        self._ambient: Any = None  # engine/ambient.py guard, made at the first point measured
        self._roles: dict[str, str] | None = None
        # Points committed, waiting to be shown (in order) by the task below.
        self._committed: asyncio.Queue[tuple[int, str, dict[str, Any], Any]] | None = None
        self._shower: asyncio.Task[None] | None = None
        #: A refused point, or what went wrong showing a committed one: the run stops.
        self._store_failure: BaseException | None = None
        self._arrived: list[tuple[int, str, dict[str, Any], Any]] = []
        self._arrived_lock = threading.Lock()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The point _catch_up waits for, and what it awaits.
        self._awaited: tuple[Any, asyncio.Future[None]] | None = None

    # -- messages and events -------------------------------------------------------------

    def t(self, message_id: str, **params: Any) -> str:
        return i18n.bilingual(message_id, self.locale, **params)

    async def emit(self, event: dict[str, Any]) -> None:
        event = {"run_id": self.run_id, "elapsed_s": round(self.clock.real_elapsed(), 3),
                 **event}
        for listener in self.listeners:
            listener(event)
        await self.operator.event(event)

    async def step(self, number: int, message_id: str) -> None:
        self.current_step = (number, message_id)
        await self.emit({"event": "step", "step": number, "id": message_id,
                         "title": i18n.t(message_id, self.locale)})

    async def waiting(self, what: str) -> None:
        await self.emit({"event": "waiting", "key": self.current_point, "for": what})

    # -- control -----------------------------------------------------------------------

    def request_abort(self) -> None:
        """Stop at the next safe point (between points); the run stays resumable."""
        self._abort.set()
        self._resume.set()

    def request_pause(self) -> None:
        """Pause at the next safe point: the point being measured is finished first."""
        self._resume.clear()

    def request_resume(self) -> None:
        self._resume.set()

    @property
    def pause_requested(self) -> bool:
        return not self._resume.is_set()

    async def checkpoint(self) -> None:
        """Between points: honour a pending pause or abort."""
        if not self._resume.is_set() and not self._abort.is_set():
            self.state.to(RunState.PAUSED)
            await self._persist_state(RunState.PAUSED, "paused by request")
            await self.emit({"event": "state", "state": "paused"})
            await self._resume.wait()
            self.state.to(RunState.RUNNING)
            if not self._abort.is_set():
                await self._persist_state(RunState.RUNNING, None)
                await self.emit({"event": "state", "state": "running"})
        if self._abort.is_set():
            raise RunAborted("run aborted on request")

    async def _persist_state(self, state: RunState, message: str | None) -> None:
        await self.durable(raise_failure=False)
        await asyncio.to_thread(self.store.set_state, self.run_id, state, message)

    async def durable(self, *, raise_failure: bool = True) -> None:
        """Wait until every point taken is committed and shown: before the run asks the
        operator anything, changes state or ends. Raises the refusal of a point
        (:class:`StoreError`) unless told not to."""
        if self.store.pending:
            await asyncio.to_thread(self.store.wait_durable, raise_failure=False)
        if self._committed is not None:
            await self._committed.join()
        if raise_failure and self._store_failure is not None:
            raise self._store_failure

    def close(self) -> None:
        """Stop showing points (the run is over; everything was shown by then)."""
        if self._shower is not None:
            self._shower.cancel()
            self._shower = None

    # -- the operator --------------------------------------------------------------------

    async def ask(self, request: OperatorRequest) -> OperatorAnswer:
        await self.durable()
        await self.emit({"event": "waiting", "key": request.key, "for": "operator",
                         "kind": request.kind})
        try:
            answer = await self.operator.ask(request)
        except OperatorAbort as exc:
            raise RunAborted(str(exc)) from None
        if answer.abort:
            raise RunAborted(f"the operator aborted at {request.key}")
        return answer

    async def instruct(self, key: str, text: str, action: dict[str, Any] | None = None) -> None:
        await self.ask(OperatorRequest(kind="instruction", key=key, text=text, action=action))

    # -- instruments -------------------------------------------------------------------

    def instrument(self, slot: str) -> InstrumentHandle:
        handle = self.instruments.get(slot)
        if handle is None:
            raise KeyError(f"the bench has no instrument for '{slot}'")
        return handle

    def has(self, slot: str) -> bool:
        return self.instruments.get(slot) is not None

    async def call(self, slot: str, method: str, *args: Any) -> Any:
        handle = self.instrument(slot)
        if not callable(getattr(handle.instrument, method, None)):
            raise AttributeError(f"instrument {handle.name} ({handle.role}) has no {method}()")
        if hasattr(handle.instrument, "point_key"):
            # A manual instrument asks the operator: the points before are committed first.
            await self.durable()
            handle.instrument.point_key = self.current_point  # manual instruments name the point

        def note(exc: InstrumentError, attempt: int) -> None:
            for listener in self.listeners:
                listener({"event": "retry", "key": self.current_point, "instrument": handle.name,
                          "attempt": attempt, "error": str(exc)})

        await self.waiting(f"{handle.name}.{method}")
        result = await handle.call(method, *args, retry=self.retry, on_retry=note)
        if isinstance(result, Reading | Ambient):
            result = _named(result, handle.name)
        return result

    async def read_together(self, *calls: tuple[str, str]) -> list[Any]:
        """Call several instruments at the same instant (reference and DUT), each in its own
        worker thread; the procedure stores the skew between their timestamps."""
        return list(await asyncio.gather(*(self.call(slot, method) for slot, method in calls)))

    # -- points --------------------------------------------------------------------------

    def is_done(self, key: str) -> bool:
        return key in self.done

    async def point(self, key: str, measure: Measure) -> dict[str, Any]:
        """The value of point ``key``: from the record if already taken, else measured now."""
        if key in self.done:
            return self.done[key]
        if self._store_failure is not None:
            raise self._store_failure
        await self.checkpoint()
        # Ambient guard (engine/ambient.py): pause while the room is outside the limits.
        if self._ambient is None:
            self._ambient = AmbientGuard.for_context(self) or False
        if self._ambient:
            await self._ambient.check(self, key)
        self.current_point = key
        await self.emit({"event": "point_started", "key": key})
        while True:
            try:
                data, readings = await measure()
                break
            except InstrumentError as exc:
                await self._instrument_fault(key, exc)
        if self._roles is None:
            self._roles = {h.name: slot for slot, h in self.instruments.items()
                           if h is not None}
        self._hand_over(self._seq + 1, key, data, readings)
        self._seq += 1
        self.done[key] = data
        # The writer is behind (a slow disk, a busy server): let it catch up.
        while self.store.must_catch_up():
            await self._catch_up()
        return data

    async def _catch_up(self) -> None:
        """Wait until the oldest point not yet committed is, or the writer makes room (it
        takes the points queued, or a commit ends), whichever comes first (the caller checks
        again): in the loop, woken by the writer (see _take_arrived), not by a thread waiting
        for it."""
        ticket = self.store.oldest()
        if ticket is None or ticket.durable is not None or self._loop is None:
            await asyncio.sleep(0)  # being finished this moment: the writer's thread goes on
            return
        done = self._loop.create_future()
        self._awaited = (ticket, done)
        # Or once the writer takes what was waiting (when the commit under way ends), and
        # there is room again: a run whose oldest point is still queued need not wait for
        # two commits.
        loop = self._loop

        def room_made() -> None:
            loop.call_soon_threadsafe(_settle, done)

        self.store.writer.when_room(room_made)
        if not self.store.must_catch_up():  # the writer made room before we listened
            _settle(done)
        try:
            await done
        finally:
            self._awaited = None

    def _hand_over(self, seq: int, key: str, data: dict[str, Any], readings: list[Reading]
                   ) -> None:
        """Give the point to the recorder, to be shown once it is committed."""
        if self._store_failure is not None:
            raise self._store_failure
        if self._committed is None:
            self._loop = asyncio.get_running_loop()
            self._committed = asyncio.Queue()
            self._shower = self._loop.create_task(self._show_committed())
        entry = (seq, key, data)
        self.store.submit_point(self.run_id, key, data, readings, self._roles or {},
                                lambda ticket: self._on_committed(entry, ticket))

    def _on_committed(self, entry: tuple[int, str, dict[str, Any]], ticket: Any) -> None:
        """In the writer's thread: pass the point to the loop, waking it once for all the
        points of a commit rather than once each."""
        with self._arrived_lock:
            self._arrived.append((*entry, ticket))
            if self._wake_pending:
                return
            self._wake_pending = True
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._take_arrived)

    def _take_arrived(self) -> None:
        with self._arrived_lock:
            arrived, self._arrived = self._arrived, []
            self._wake_pending = False
        assert self._committed is not None
        for item in arrived:
            self._committed.put_nowait(item)
        if self._awaited is not None:
            ticket, done = self._awaited
            if ticket.durable is not None and not done.done():
                done.set_result(None)

    async def _show_committed(self) -> None:
        """Emit ``point`` for each committed point, in order. What goes wrong here (a refused
        point, a listener that raises) is kept for the run to raise at its next step."""
        assert self._committed is not None
        while True:
            seq, key, data, ticket = await self._committed.get()
            try:
                if self._store_failure is not None:
                    continue
                if ticket.error is not None:
                    self._store_failure = ticket.error
                    continue
                self.shown[key] = data
                await self.emit({"event": "point", "key": key, "seq": seq, "data": data})
            except Exception as exc:  # the run raises it at its next step
                self._store_failure = exc
            finally:
                self._committed.task_done()

    async def _instrument_fault(self, key: str, exc: InstrumentError) -> None:
        """Pause the run with a clear message until the instrument answers again or the
        operator decides: retry now, or abort (the run stays resumable)."""
        message = str(exc)
        self.state.to(RunState.PAUSED)
        await self._persist_state(RunState.PAUSED, message)
        await self.emit({"event": "paused", "key": key, "reason": message})
        handle = next((h for h in self.instruments.values()
                       if h is not None and h.config.resource == exc.resource), None)
        ask = asyncio.ensure_future(self.operator.ask(OperatorRequest(
            kind="choice", key=key,
            text=self.t("instrument_fault", instrument=handle.name if handle else exc.resource,
                        error=message),
            options=("retry", "abort"),
            action={"type": "instrument_fault", "resource": exc.resource,
                    "instrument": handle.name if handle else None, "error": message})))
        waiters: set[asyncio.Future[Any]] = {ask}
        back: asyncio.Future[Any] | None = None
        if handle is not None and exc.transient:
            back = asyncio.ensure_future(self._wait_until_back(handle))
            waiters.add(back)
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                if not w.done():
                    w.cancel()
        if back is not None and back in done and not back.cancelled() and back.exception() is None:
            await self.emit({"event": "request_withdrawn", "key": key,
                             "reason": f"{handle.name if handle else exc.resource} answers again"})
            decision = "retry"
        else:
            try:
                answer = ask.result()
            except OperatorAbort as err:
                self.state.to(RunState.RUNNING)
                raise RunAborted(str(err)) from None
            decision = "abort" if answer.abort or answer.value != "retry" else "retry"
        if decision != "retry":
            self.state.to(RunState.RUNNING)  # back, so the runner can go through ABORTING
            raise RunAborted(f"aborted after instrument fault at {key}: {message}")
        self.state.to(RunState.RUNNING)
        await self._persist_state(RunState.RUNNING, None)
        await self.emit({"event": "state", "state": "running", "key": key})

    async def _wait_until_back(self, handle: InstrumentHandle) -> None:
        """Poll a dead instrument (reconnecting) until it answers; backoff up to 5 s."""
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                await handle.probe()
                return
            except InstrumentError:
                delay = min(5.0, delay * 1.5)

    # -- environment and results -------------------------------------------------------

    async def record_ambient(self, label: str, slot: str = "environment") -> dict[str, Any]:
        key = f"ambient.{label}"

        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            amb: Ambient = await self.call(slot, "read_ambient")
            data = {"test": "ambient", "label": label, "temperature_c": amb.temperature_c,
                    "humidity_pct": amb.humidity_pct, "pressure_hpa": amb.pressure_hpa,
                    "at": amb.timestamp.isoformat()}
            readings = []
            for value, unit in ((amb.temperature_c, "degC"), (amb.humidity_pct, "percent"),
                                (amb.pressure_hpa, "hPa")):
                if value is not None:
                    readings.append(Reading(value, unit, True, amb.timestamp, amb.raw,
                                            amb.instrument))
            return data, readings

        if not self.has(slot):
            data = {"test": "ambient", "label": label, "measured": False}
            await self.emit({"event": "warning", "message": "no environment monitor on this "
                             "bench: ambient conditions not recorded"})
            self.environment[label] = data
            return data
        data = await self.point(key, measure)
        self.environment[label] = data
        await self.durable()
        await asyncio.to_thread(self.store.set_environment, self.run_id, label, data)
        return data

    def set_results(self, results: list[dict[str, Any]], verdict: str | None) -> None:
        self.results = results
        self.verdict = verdict


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _named(value: Any, name: str) -> Any:
    if getattr(value, "instrument", "") == name:
        return value
    if isinstance(value, Reading):
        return value.with_instrument(name)
    if isinstance(value, Ambient):
        return Ambient(value.temperature_c, value.humidity_pct, value.pressure_hpa,
                       value.timestamp, value.raw, name)
    return value


def utc_iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()

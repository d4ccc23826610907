"""One run at a time, driven from the TUI: its thread, its events, and what the screen shows.

``start_run``/``resume_run`` call ``asyncio.run`` themselves, so a run lives in a thread of its
own with its own event loop. Its listener events go into a queue that the UI drains a few
times a second into a :class:`RunModel` (plain data, UI thread only); the run screen draws the
model. Pause, resume and abort are handed to the run's loop with ``call_soon_threadsafe``
(the context's asyncio events belong to that loop).

While points arrive, a *preview* of the results (error, U, MPE, verdict so far) is computed
off the run's loop from a snapshot of the points taken: by the procedure's optional
``preview(ctx)`` hook (the same pure evaluation as at the end), else by a generic
error = indication − reference. The final document replaces the preview when the run ends.
An uncertainty budget can take a good fraction of a second of pure Python; in a thread that
would hold the GIL against the UI, so a preview found to be slow moves to a worker process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import multiprocessing
import pickle
import queue
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import i18n
from ..config import BenchConfig, ReferenceConfig
from ..errors import BenchctlError
from .operator import TuiOperator

Event = dict[str, Any]
#: Start ``fn`` in a thread (the app's ``run_worker(..., thread=True)``).
Spawn = Callable[[Callable[[], None]], Any]


@dataclass
class RunJob:
    """What the technician chose on the run screen."""

    procedure: str
    dut: str
    mode: str = "verify"
    params: list[str] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)
    """Bench reference name -> register asset chosen instead of the bench file's."""
    resume_id: int | None = None
    performed_by: str | None = None
    """Who performs the run (checked against the person register when it has anyone)."""
    override_reason: str | None = None
    """Recorded reason to use a reference past its due date (printed on the certificate)."""


def bench_with_references(bench: BenchConfig, chosen: dict[str, str]) -> BenchConfig:
    """The bench with some reference entries pointing at other register assets."""
    if not chosen:
        return bench
    refs = dict(bench.references)
    for name, asset in chosen.items():
        refs[name] = ReferenceConfig(name, asset=asset)
    return dataclasses.replace(bench, references=refs)


def generic_preview(done: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Error = indication − reference for points that carry both; no MPE, no verdict."""
    rows: list[dict[str, Any]] = []
    for key, d in done.items():
        ind, ref = d.get("indicated"), d.get("reference")
        if d.get("test") in ("zero", "ambient"):
            continue
        if not (isinstance(ind, int | float) and isinstance(ref, int | float)):
            continue
        rows.append({"key": key, "test": d.get("test"), "nominal": d.get("nominal"),
                     "unit": d.get("unit"), "reference": ref, "indicated": ind,
                     "error": ind - ref, "error_unit": d.get("error_unit", d.get("unit")),
                     "U": d.get("U"), "k": d.get("k"), "mpe": d.get("mpe"),
                     "verdict": d.get("verdict"), "flow": d.get("flow"),
                     "direction": d.get("direction"), "position": d.get("position")})
    return rows, None


def compute_preview(module: Any, snapshot: Any) -> tuple[list[dict[str, Any]], str | None]:
    hook = getattr(module, "preview", None)
    if hook is None:
        return generic_preview(snapshot.done)
    rows, verdict = hook(snapshot)
    return [dict(r) for r in rows], verdict


def preview_in_process(roots: list[str], procedure_id: str, snapshot: Any
                       ) -> tuple[list[dict[str, Any]], str | None]:
    """The preview, computed in a worker process (which loads the library itself)."""
    from .. import library

    library.configure(roots)
    return compute_preview(library.load("procedures", procedure_id), snapshot)


#: A preview slower than this (seconds) is computed in a worker process from then on.
SLOW_PREVIEW_S = 0.05


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, while ``sys.stderr`` is the real one:
    under Textual it is a capture without a file descriptor, and a worker process started
    later could not hand it over."""
    try:
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    except Exception:  # no worker processes then: previews stay in a thread
        pass


class PreviewWorker:
    """Computes previews one at a time, always of the newest snapshot (older ones waiting
    are dropped: only the latest state of the run is worth showing)."""

    def __init__(self, deliver: Callable[[Event], None]) -> None:
        self._deliver = deliver
        self._lock = threading.Lock()
        self._latest: tuple[str, Any, list[str]] | None = None
        self._busy = False
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="run-preview")
        self._process: concurrent.futures.ProcessPoolExecutor | None = None
        self.slow = False
        self.computed = 0

    def submit(self, procedure_id: str, snapshot: Any, roots: list[str]) -> None:
        with self._lock:
            self._latest = (procedure_id, snapshot, roots)
            if self._busy:
                return
            self._busy = True
        with contextlib.suppress(RuntimeError):  # shut down
            self._threads.submit(self._loop)

    def _loop(self) -> None:
        while True:
            with self._lock:
                job, self._latest = self._latest, None
                if job is None:
                    self._busy = False
                    return
            self._compute(*job)

    def _compute(self, procedure_id: str, snapshot: Any, roots: list[str]) -> None:
        from .. import library

        started = time.perf_counter()
        try:
            if self.slow and self._picklable(snapshot):
                if self._process is None:
                    self._process = concurrent.futures.ProcessPoolExecutor(
                        max_workers=1, mp_context=multiprocessing.get_context("spawn"))
                rows, verdict = self._process.submit(
                    preview_in_process, roots, procedure_id, snapshot).result()
            else:
                rows, verdict = compute_preview(library.load("procedures", procedure_id),
                                                snapshot)
                self.slow = self.slow or time.perf_counter() - started > SLOW_PREVIEW_S
        except Exception as exc:  # a preview must never disturb the run
            rows, verdict = generic_preview(snapshot.done)
            self._deliver({"event": "warning",
                           "message": f"preview: {type(exc).__name__}: {exc}"})
        self.computed += 1
        self._deliver({"event": "preview", "rows": rows, "verdict": verdict})

    @staticmethod
    def _picklable(snapshot: Any) -> bool:
        try:
            pickle.dumps(snapshot)
        except Exception:
            return False
        return True

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._process is not None:
            self._process.shutdown(wait=False, cancel_futures=True)


class RunModel:
    """Everything the run screen shows. Updated from events on the UI thread only."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.state = "setup"
        self.run_id: int | None = None
        self.procedure: str | None = None
        self.mode: str | None = None
        self.dut: str | None = None
        self.unit: str = ""
        self.message: str | None = None
        self.message_kind = "info"
        self.steps: list[tuple[int, str, str]] = []
        """(number, message id, title as the run said it), in the order they came."""
        self.points: dict[str, dict[str, Any]] = {}
        self.seq: dict[str, int] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.verdict: str | None = None
        self.final = False
        self.waiting: str | None = None
        self.current_point: str | None = None
        self.resumed_points = 0
        self.document: dict[str, Any] | None = None
        self.version = 0

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running", "paused")

    def row_keys(self) -> list[str]:
        """Points in the order taken (ambient conditions aside), then result rows that are
        not points (aggregates such as repeatability)."""
        keys = [k for k in self.points if not k.startswith("ambient.")]
        keys += [k for k in self.results if k not in self.points]
        return keys

    def apply(self, event: Event) -> None:
        kind = event.get("event")
        self.version += 1
        if kind == "starting":
            self.reset()
            self.version = 1
            self.state = "starting"
            self.procedure = event.get("procedure")
            self.mode = event.get("mode")
        elif kind == "started":
            self.state = "running"
            self.run_id = event.get("run_id")
            self.procedure = event.get("procedure")
            self.mode = event.get("mode")
            self.dut = event.get("dut")
            self.unit = event.get("unit") or ""
            for key, data in (event.get("done") or {}).items():
                self.points[key] = dict(data)
        elif kind == "state":
            state = event.get("state")
            if state == "running":
                self.state = "running"
                self.message = None
                if event.get("resumed_points"):
                    self.resumed_points = int(event["resumed_points"])
            elif state == "paused":
                self.state = "paused"
                if not self.message:
                    self.message, self.message_kind = None, "info"
            elif state in ("completed", "aborted", "failed"):
                self.state = state
                if event.get("reason"):
                    self.message = str(event["reason"])
                    self.message_kind = "error" if state == "failed" else "warning"
                if event.get("verdict"):
                    self.verdict = event["verdict"]
        elif kind == "step":
            self.steps.append((int(event.get("step", 0)), str(event.get("id", "")),
                               str(event.get("title", ""))))
        elif kind == "waiting":
            self.waiting = str(event.get("for") or "")
            self.current_point = event.get("key") or self.current_point
        elif kind == "point_started":
            self.current_point = event.get("key")
        elif kind == "point":
            key = str(event["key"])
            self.points[key] = dict(event.get("data") or {})
            self.seq[key] = int(event.get("seq", len(self.points)))
        elif kind == "paused":
            self.state = "paused"
            self.message = str(event.get("reason") or "")
            self.message_kind = "error"
        elif kind == "retry":
            self.message = (f"{event.get('instrument')}: {event.get('error')} "
                            f"(retry {event.get('attempt')})")
            self.message_kind = "warning"
        elif kind == "warning":
            self.message = str(event.get("message") or "")
            self.message_kind = "warning"
        elif kind == "reconnected":
            self.message = None
        elif kind == "preview":
            if not self.final:
                self.results = {str(r["key"]): r for r in event.get("rows") or []}
                self.verdict = event.get("verdict")
        elif kind == "finished":
            self.state = str(event.get("state") or self.state)
            if event.get("message"):
                self.message = str(event["message"])
                self.message_kind = "error" if self.state == "failed" else "warning"
            doc = event.get("document")
            if doc:
                self.load_document(doc)
        elif kind == "refused":
            self.state = "refused"
            self.message = str(event.get("message") or "")
            self.message_kind = "error"

    def load_document(self, doc: dict[str, Any]) -> None:
        """The stored run: authoritative rows and verdict (replaces the preview)."""
        self.document = doc
        self.run_id = doc.get("run_id")
        self.procedure = doc.get("procedure")
        self.mode = doc.get("mode")
        self.dut = (doc.get("dut") or {}).get("asset")
        self.unit = (doc.get("dut") or {}).get("unit") or self.unit
        self.results = {}
        for p in doc.get("points") or []:
            row = dict(p)
            row.update(p.get("extra") or {})
            self.results[str(p["key"])] = row
        self.verdict = doc.get("verdict")
        self.final = True
        self.version += 1


class RunController:
    """Starts a run in a thread and relays control from the UI to the run's loop."""

    def __init__(self, operator: TuiOperator, db: Any, *, speed: float | None = None,
                 today: Callable[[], dt.date] = dt.date.today,
                 hold: Callable[[BenchConfig], list[str]] | None = None,
                 release: Callable[[list[str]], None] | None = None) -> None:
        self.operator = operator
        self.db = db
        self.speed = speed
        self.today = today
        self._hold = hold
        self._release = release
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.ctx: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.bench: BenchConfig | None = None
        self._running = threading.Event()
        self._abort_requested = False
        self._done = threading.Event()
        self._done.set()
        self.preview = PreviewWorker(self.push)
        _start_resource_tracker()
        operator.before_retry = self._reconnect

    @property
    def active(self) -> bool:
        return self._running.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def push(self, event: Event) -> None:
        self.events.put(event)

    def drain(self, limit: int = 10000) -> list[Event]:
        out: list[Event] = []
        while len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    # -- start ---------------------------------------------------------------------------
    def start(self, job: RunJob, bench: BenchConfig, spawn: Spawn) -> None:
        if self.active:
            raise BenchctlError("a run is already in progress on this bench")
        self._running.set()
        self._done.clear()
        self._abort_requested = False
        self.push({"event": "starting", "procedure": job.procedure, "mode": job.mode})
        spawn(lambda: self._run(job, bench))

    def _run(self, job: RunJob, bench: BenchConfig) -> None:
        from ..engine.runner import RunOptions, resume_run, start_run
        from ..reports.document import run_document

        held: list[str] = []
        try:
            bench = bench_with_references(bench, job.references)
            self.bench = bench
            if self._hold is not None:
                held = self._hold(bench)
            opts = RunOptions(bench=bench, operator=self.operator, db=self.db,
                              speed=self.speed, listeners=[self._listener],
                              handle_signals=False, on_context=self._on_context)
            if job.resume_id is not None:
                outcome = resume_run(job.resume_id, opts, today=self.today(),
                                     override_reason=job.override_reason)
            else:
                outcome = start_run(job.procedure, job.dut, job.mode, list(job.params), opts,
                                    today=self.today(), performed_by=job.performed_by,
                                    override_reason=job.override_reason)
            doc = run_document(self.db, outcome.run_id)
            self.push({"event": "finished", "state": outcome.state,
                       "message": outcome.message, "document": doc})
        except BenchctlError as exc:
            from ..records.fitness import FitnessError

            # A reference unfit for the run can be used with a recorded reason: the app
            # asks for one and starts the same job again with it.
            # Shown in the technician's language; the run records the English text.
            messages = ({lang: exc.message_in(lang) for lang in i18n.LOCALES}
                        if isinstance(exc, FitnessError) else {})
            self.push({"event": "refused", "message": str(exc), "detail": exc.detail,
                       "fitness": bool(messages), "job": job, "messages": messages})
        except Exception as exc:  # shown, never a crash of the whole TUI
            self.push({"event": "refused", "message": f"unexpected {type(exc).__name__}: {exc}"})
        finally:
            self.ctx, self.loop = None, None
            if held and self._release is not None:
                self._release(held)
            self._running.clear()
            self._done.set()

    # -- from the run's thread -----------------------------------------------------------
    def _on_context(self, ctx: Any) -> None:
        self.ctx = ctx
        self.loop = asyncio.get_running_loop()
        if self._abort_requested:
            ctx.request_abort()
        self.push({"event": "started", "run_id": ctx.run_id, "procedure": ctx.info.procedure_id,
                   "mode": ctx.mode, "dut": getattr(ctx.dut, "asset_id", None),
                   "unit": getattr(ctx.dut, "unit", ""),
                   "done": {k: dict(v) for k, v in ctx.done.items()}})
        if ctx.done:
            self._schedule_preview(ctx)

    def _listener(self, event: Event) -> None:
        self.push(dict(event))
        if event.get("event") == "point" and self.ctx is not None:
            self._schedule_preview(self.ctx)

    def _schedule_preview(self, ctx: Any) -> None:
        # The points shown (committed), not those still on their way to the database.
        snapshot = types.SimpleNamespace(
            run_id=ctx.run_id, done={k: dict(v) for k, v in ctx.shown.items()}, dut=ctx.dut,
            params=dict(ctx.params), mode=ctx.mode, references=ctx.references,
            locale=ctx.locale)
        roots = [str(p) for p in self.bench.library] if self.bench is not None else []
        self.preview.submit(ctx.info.procedure_id, snapshot, roots)

    async def _reconnect(self, request: Any) -> None:
        """Before "retry" after an instrument fault: open the instrument again.

        The run's connection to an instrument that went away (power cut, cable, restarted
        server) may be dead for good, and only a lost connection makes the engine reopen it
        by itself; a timeout would be retried through the same dead socket. The engine's
        handle reopens it in place (``InstrumentHandle.reconnect``), so the run's next call
        goes through the new connection.
        """
        ctx = self.ctx
        resource = (request.action or {}).get("resource")
        if ctx is None or not resource:
            return
        handle = next((h for h in ctx.instruments.values() if h is not None and resource in (
            h.config.resource, getattr(h.instrument, "resource", None))), None)
        if handle is None:
            return
        try:
            await handle.reconnect()
        except Exception as exc:  # still away: the run's retry says so (and pauses again)
            self.push({"event": "warning", "message": f"{handle.name}: {exc}"})
            return
        self.push({"event": "reconnected", "instrument": handle.name})

    # -- from the UI ---------------------------------------------------------------------
    def _call(self, method: str) -> bool:
        ctx, loop = self.ctx, self.loop
        if ctx is None or loop is None:
            return False
        try:
            loop.call_soon_threadsafe(getattr(ctx, method))
        except RuntimeError:  # the loop has just closed
            return False
        return True

    def pause(self) -> bool:
        return self._call("request_pause")

    def resume(self) -> bool:
        return self._call("request_resume")

    def abort(self) -> bool:
        """Abort the run; asked before the run has its context (still opening the
        instruments), the abort is delivered as soon as it has one."""
        self._abort_requested = self.active
        sent = self._call("request_abort")
        self.operator.cancel_all()
        return sent

    def close(self) -> None:
        self.preview.close()

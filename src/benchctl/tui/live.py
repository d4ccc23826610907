"""Live readings of every instrument of the bench, without ever blocking the UI.

Each instrument gets its own poller thread: drivers block, and a dead instrument (a read
waiting out its timeout, a refused connection) must stop only itself. Pollers write into a
:class:`LiveBuffer`; the UI drains what changed a few times a second. Neither
``call_from_thread`` (it would make every poller wait for the UI) nor one message per sample
(16 instruments at 10 Hz would flood the message queue) is used, so the redraw rate is the
UI's choice, not the instruments'.

A poller that loses its instrument marks it disconnected, closes it and opens it again with
backoff, forever, while the others go on. During a run, instruments that cannot be shared
(serial lines, ptys, GPIB) are *held*: the poller lets go so the run can open them.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..config import BenchConfig, InstrumentConfig
from ..errors import BenchctlError, InstrumentError

#: Seconds of history kept per instrument (the sparkline shows the last minute).
WINDOW_S = 60.0
#: Waits between reconnection attempts, then the last one repeated.
BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 5.0)
#: Environment monitors change slowly and often sit on slow serial lines.
AMBIENT_MAX_HZ = 1.0
#: Drivers whose reading comes from the technician: nothing to poll.
MANUAL_DRIVERS = ("manual",)

Clock = Callable[[], float]


class Status(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    HELD = "held"
    """Let go for a run that needs the (unshareable) port."""
    MANUAL = "manual"
    """Read by the technician: no live value."""
    NO_LIVE = "no_live"
    """The role has nothing to show continuously."""
    ERROR = "error"
    """Misconfigured (unknown driver, bad option): retried slowly, in case the file is fixed."""


@dataclass(frozen=True)
class Sample:
    """One live value. ``t`` is on the buffer's clock (monotonic seconds)."""

    t: float
    value: float | None
    unit: str = ""
    stable: bool | None = None
    """What the instrument says (a balance's stable flag); None when it does not say."""
    extra: tuple[tuple[str, float | None, str], ...] = ()
    """Further quantities of the same instrument: (label, value, unit), e.g. RH and p."""
    raw: bytes = b""
    """The reply it came from: the display shows the value to the places the instrument sent."""


@dataclass(frozen=True)
class InstrumentView:
    """An immutable snapshot of one instrument for the UI."""

    name: str
    driver: str
    role: str | None
    bench_role: str | None
    resource: str
    status: Status
    error: str | None
    last: Sample | None
    history: tuple[tuple[float, float], ...]
    samples: int
    version: int
    status_since: float
    stable: bool | None


@dataclass
class _Entry:
    name: str
    driver: str
    role: str | None
    bench_role: str | None
    resource: str
    status: Status
    error: str | None = None
    last: Sample | None = None
    history: deque[tuple[float, float]] = field(default_factory=deque)
    samples: int = 0
    version: int = 0
    status_since: float = 0.0


def derived_stable(history: Sequence[tuple[float, float]], now: float, *, window: float = 5.0,
                   relative: float = 2e-3, minimum: int = 3) -> bool | None:
    """Stability of an instrument that has no stable flag: the values of the last ``window``
    seconds stay within ``relative`` of their size. None while there are too few of them."""
    values = [v for t, v in history if t >= now - window]
    if len(values) < minimum:
        return None
    span = max(values) - min(values)
    size = max(abs(v) for v in values)
    return span <= max(relative * size, 1e-12)


def buckets(history: Sequence[tuple[float, float]], now: float, window: float = WINDOW_S,
            n: int = 30) -> list[float]:
    """The last ``window`` seconds as ``n`` equal time buckets (their mean) for a sparkline.

    Buckets without a sample repeat the one before (the line stays flat through a gap);
    buckets before the first sample are left out, so a fresh instrument's line grows from the
    left instead of starting with an invented zero.
    """
    if n <= 0 or not history:
        return []
    start = now - window
    width = window / n
    sums = [0.0] * n
    counts = [0] * n
    for t, v in history:
        if t < start or t > now or not math.isfinite(v):
            continue
        i = min(n - 1, int((t - start) / width))
        sums[i] += v
        counts[i] += 1
    out: list[float] = []
    previous: float | None = None
    for s, c in zip(sums, counts, strict=True):
        if c:
            previous = s / c
        if previous is not None:
            out.append(previous)
    return out


class LiveBuffer:
    """What the pollers have seen, shared with the UI. Every method is thread-safe and quick:
    a poller never waits for the UI, the UI never waits for an instrument."""

    def __init__(self, clock: Clock = time.monotonic, window: float = WINDOW_S) -> None:
        self.clock = clock
        self.window = window
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self.pushes = 0
        """Samples received since the start (for the benchmark)."""

    def add(self, name: str, *, driver: str = "", role: str | None = None,
            bench_role: str | None = None, resource: str = "",
            status: Status = Status.CONNECTING) -> None:
        with self._lock:
            self._entries[name] = _Entry(name, driver, role, bench_role, resource, status,
                                         status_since=self.clock())

    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def push(self, name: str, sample: Sample) -> None:
        with self._lock:
            e = self._entries[name]
            e.last = sample
            if sample.value is not None and math.isfinite(sample.value):
                e.history.append((sample.t, sample.value))
            horizon = sample.t - self.window
            while e.history and e.history[0][0] < horizon:
                e.history.popleft()
            e.samples += 1
            e.version += 1
            if e.status != Status.CONNECTED:
                e.status, e.error, e.status_since = Status.CONNECTED, None, sample.t
            self.pushes += 1

    def set_status(self, name: str, status: Status, error: str | None = None) -> None:
        with self._lock:
            e = self._entries[name]
            if e.status == status and e.error == error:
                return
            if e.status != status:
                e.status_since = self.clock()
            e.status, e.error = status, error
            e.version += 1

    def _view(self, e: _Entry) -> InstrumentView:
        history = tuple(e.history)
        stable = e.last.stable if e.last is not None else None
        if stable is None and e.last is not None:
            stable = derived_stable(history, e.last.t)
        return InstrumentView(e.name, e.driver, e.role, e.bench_role, e.resource, e.status,
                              e.error, e.last, history, e.samples, e.version, e.status_since,
                              stable)

    def view(self, name: str) -> InstrumentView:
        with self._lock:
            return self._view(self._entries[name])

    def views(self) -> list[InstrumentView]:
        with self._lock:
            return [self._view(e) for e in self._entries.values()]

    def changed(self, seen: dict[str, int]) -> list[InstrumentView]:
        """Views of the instruments whose version moved past ``seen`` (updated in place)."""
        with self._lock:
            out = [self._view(e) for e in self._entries.values()
                   if e.version != seen.get(e.name, -1)]
        for v in out:
            seen[v.name] = v.version
        return out


def read_sample(handle: Any, clock: Clock) -> Sample:
    """One live value of an open instrument, by its role."""
    inst, role = handle.instrument, handle.role
    if role == "balance":
        r = inst.read_now()
        return Sample(clock(), r.value, r.unit, r.stable, raw=r.raw)
    if role == "environment_monitor":
        a = inst.read_ambient()
        return Sample(clock(), a.temperature_c, "degC", None,
                      (("RH", a.humidity_pct, "%RH"), ("p", a.pressure_hpa, "hPa")), a.raw)
    if role in ("pressure_indicator", "pressure_controller"):
        r = inst.read()
        return Sample(clock(), r.value, r.unit, None, raw=r.raw)
    if role == "flow_meter":
        r = inst.read_flow()
        return Sample(clock(), r.value, r.unit, None, raw=r.raw)
    if role == "fuel_dispenser":
        d = inst.delivery()
        extra = () if d.flow is None else (("Q", d.flow, "L/min"),)
        return Sample(clock(), d.volume.value, d.volume.unit, None, extra)
    raise LookupError(role)


def is_shareable(resource: str) -> bool:
    """Whether a second connection (the run's, next to the live poller's) can be opened.

    TCP servers take several clients; a serial line, a pty, GPIB or an RS-485 bus has one
    owner at a time.
    """
    r = resource.strip()
    low = r.lower()
    if low.startswith(("socket://", "tcp://", "modbus-tcp://")):
        return True
    return low.startswith("tcpip")


Opener = Callable[[BenchConfig, InstrumentConfig], Any]


def _open(bench: BenchConfig, cfg: InstrumentConfig) -> Any:
    from ..engine.handles import open_instrument

    return open_instrument(bench, cfg, None, connect_timeout=0.0)


class Poller(threading.Thread):
    """Reads one instrument at ``rate_hz`` into the buffer; reconnects by itself."""

    def __init__(self, bench: BenchConfig, cfg: InstrumentConfig, buffer: LiveBuffer, *,
                 rate_hz: float, opener: Opener = _open,
                 backoff: Sequence[float] = BACKOFF_S) -> None:
        super().__init__(name=f"live-{cfg.name}", daemon=True)
        self.bench = bench
        self.cfg = cfg
        self.buffer = buffer
        self.period = 1.0 / rate_hz
        self.opener = opener
        self.backoff = tuple(backoff)
        self.handle: Any = None
        self.failures = 0
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self._hold = threading.Event()
        self.held = threading.Event()
        """Set while the poller has let go of the instrument for a run."""

    # -- control from other threads --------------------------------------------------------
    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()

    def hold(self) -> None:
        self._hold.set()
        self._wake.set()

    def release(self) -> None:
        self._hold.clear()
        self._wake.set()

    # -- the thread ------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        self._wake.wait(max(0.0, seconds))
        self._wake.clear()

    def _close(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.close()

    def run(self) -> None:
        name = self.cfg.name
        try:
            while not self._stop_event.is_set():
                if self._hold.is_set():
                    self._close()
                    self.buffer.set_status(name, Status.HELD)
                    self.held.set()
                    self._sleep(1.0)
                    continue
                self.held.clear()
                if self.handle is None and not self._connect():
                    continue
                started = time.monotonic()
                try:
                    sample = read_sample(self.handle, self.buffer.clock)
                except InstrumentError as exc:
                    self._lost(str(exc))
                    continue
                except LookupError:
                    self._close()
                    self.buffer.set_status(name, Status.NO_LIVE)
                    return
                except Exception as exc:  # a driver bug must not end the live view
                    self._lost(f"{type(exc).__name__}: {exc}")
                    continue
                self.failures = 0
                self.buffer.push(name, sample)
                self._sleep(self.period - (time.monotonic() - started))
        finally:
            self._close()

    def _connect(self) -> bool:
        name = self.cfg.name
        try:
            self.handle = self.opener(self.bench, self.cfg)
        except InstrumentError as exc:
            self._lost(str(exc))
            return False
        except BenchctlError as exc:
            self.buffer.set_status(name, Status.ERROR, str(exc))
            self._sleep(30.0)
            return False
        except Exception as exc:
            self.buffer.set_status(name, Status.ERROR, f"{type(exc).__name__}: {exc}")
            self._sleep(30.0)
            return False
        self.buffer.set_status(name, Status.CONNECTED)
        return True

    def _lost(self, error: str) -> None:
        self._close()
        self.buffer.set_status(self.cfg.name, Status.DISCONNECTED, error)
        wait = self.backoff[min(self.failures, len(self.backoff) - 1)]
        self.failures += 1
        self._sleep(wait)


class LiveBench:
    """Pollers for every instrument of a bench file, and the buffer they share."""

    def __init__(self, bench: BenchConfig, *, rate_hz: float = 5.0, clock: Clock = time.monotonic,
                 window: float = WINDOW_S, opener: Opener = _open,
                 backoff: Sequence[float] = BACKOFF_S) -> None:
        from .. import library
        from ..engine.handles import driver_module, driver_role

        self.bench = bench
        self.buffer = LiveBuffer(clock, window)
        self.pollers: dict[str, Poller] = {}
        library.configure(bench.library)
        for name, cfg in bench.instruments.items():
            role: str | None = None
            error: str | None = None
            try:
                role = driver_role(driver_module(cfg), cfg)
            except BenchctlError as exc:
                error = str(exc)
            status = (Status.MANUAL if cfg.driver in MANUAL_DRIVERS
                      else Status.ERROR if error else Status.CONNECTING)
            self.buffer.add(name, driver=cfg.driver, role=role, bench_role=cfg.role,
                            resource=cfg.resource, status=status)
            if error:
                self.buffer.set_status(name, Status.ERROR, error)
            if status != Status.CONNECTING:
                continue
            rate = min(rate_hz, AMBIENT_MAX_HZ) if role == "environment_monitor" else rate_hz
            self.pollers[name] = Poller(bench, cfg, self.buffer, rate_hz=rate, opener=opener,
                                        backoff=backoff)
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            for p in self.pollers.values():
                p.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop every poller; one stuck in a long read is left to finish on its own (daemon)."""
        for p in self.pollers.values():
            p.stop()
        deadline = time.monotonic() + timeout
        for p in self.pollers.values():
            if p.is_alive():
                p.join(max(0.0, deadline - time.monotonic()))

    def unshareable(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n in self.pollers
                and not is_shareable(self.bench.instruments[n].resource)]

    def hold(self, names: Iterable[str], timeout: float = 15.0) -> bool:
        """Let go of these instruments (for a run); True once every poller has closed them."""
        chosen = [self.pollers[n] for n in names if n in self.pollers]
        for p in chosen:
            p.hold()
        if not self.started:
            return True
        deadline = time.monotonic() + timeout
        return all(p.held.wait(max(0.0, deadline - time.monotonic())) for p in chosen)

    def release(self, names: Iterable[str]) -> None:
        for n in names:
            if n in self.pollers:
                self.pollers[n].release()

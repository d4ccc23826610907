"""Open the bench's instruments and give each one its own worker thread.

Drivers block; the engine is asyncio. One thread per instrument serialises access to it and
keeps a dead instrument from freezing the others (or the TUI).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import library
from ..config import BenchConfig, InstrumentConfig, validate_options
from ..errors import BenchctlError, InstrumentConnectionError, InstrumentError
from ..instruments import Instrument
from ..operator import OperatorPort

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """Bounded retries with backoff for transient faults (timeouts, garbled replies)."""

    attempts: int = 3
    backoff_s: float = 0.2


class InstrumentHandle:
    def __init__(self, config: InstrumentConfig, role: str, instrument: Instrument,
                 reopen: Callable[[], Instrument] | None = None) -> None:
        self.config = config
        self.name = config.name
        self.role = role
        self.instrument = instrument
        self._reopen = reopen
        self._broken = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"instrument-{config.name}")

    async def call(self, fn: str | Callable[..., Any], *args: Any,
                   retry: RetryPolicy | None = None,
                   on_retry: Callable[[InstrumentError, int], None] | None = None) -> Any:
        """Run a blocking driver call in this instrument's thread, retrying transient faults.

        ``fn`` is a method name or a callable taking the instrument; a name is looked up on the
        instrument at each attempt, so a reconnected instrument is used on the next one.
        """
        loop = asyncio.get_running_loop()
        attempts = retry.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                return await loop.run_in_executor(self._executor,
                                                  functools.partial(self._invoke, fn, *args))
            except InstrumentError as exc:
                if isinstance(exc, InstrumentConnectionError):
                    self._broken = True
                if not exc.transient or attempt == attempts:
                    raise
                if on_retry:
                    on_retry(exc, attempt)
                assert retry is not None
                await asyncio.sleep(retry.backoff_s * attempt)
        raise AssertionError("unreachable")

    def _invoke(self, fn: Any, *args: Any) -> Any:
        if self._broken:
            self._reconnect_now()
        if isinstance(fn, str):
            return getattr(self.instrument, fn)(*args)
        return fn(*args)

    def _reconnect_now(self) -> None:
        """Close the dead connection and open a new one (in this instrument's thread)."""
        if self._reopen is None:
            return
        with contextlib.suppress(Exception):
            self.instrument.close()
        point_key = getattr(self.instrument, "point_key", None)
        self.instrument = self._reopen()
        if point_key is not None and hasattr(self.instrument, "point_key"):
            self.instrument.point_key = point_key
        self._broken = False

    async def reconnect(self) -> None:
        """Reopen the instrument now (e.g. after the operator fixed a cable)."""
        self._broken = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._reconnect_now)

    async def probe(self) -> None:
        """Prove the instrument answers again: reconnect if needed, then ask its identity."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor,
                                   functools.partial(self._invoke, "identify"))

    def close(self) -> None:
        # Closing must never hide the run's own outcome.
        with contextlib.suppress(Exception):
            self._executor.submit(self.instrument.close).result(timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)


def driver_module(config: InstrumentConfig) -> Any:
    return library.load("drivers", config.driver)


def driver_role(module: Any, config: InstrumentConfig) -> str | None:
    """The role a bench instrument plays: the driver's ROLE, or for drivers that can play
    several (the manual driver), ``role_for(options)``."""
    role_for = getattr(module, "role_for", None)
    if role_for is not None:
        return str(role_for(config.options))
    role = getattr(module, "ROLE", None)
    return None if role is None else str(role)


def open_instrument(bench: BenchConfig, config: InstrumentConfig,
                    operator: OperatorPort | None, *, connect_timeout: float = 10.0,
                    ) -> InstrumentHandle:
    module = driver_module(config)
    role = driver_role(module, config)
    if role is None or not hasattr(module, "connect"):
        raise BenchctlError(f"driver {config.driver!r} has no ROLE and connect(); "
                            "see docs/extending.md")
    options = validate_options(str(bench.path), config.name, config.options,
                               getattr(module, "OPTIONS", {}))

    def connect() -> Instrument:
        instrument: Instrument = module.connect(config.name, config.resource, dict(options),
                                                operator=operator)
        return instrument

    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            instrument = connect()
            break
        except InstrumentError as exc:
            if not exc.transient or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return InstrumentHandle(config, role, instrument, reopen=connect)


def open_bench(bench: BenchConfig, operator: OperatorPort | None,
               names: list[str] | None = None) -> dict[str, InstrumentHandle]:
    handles: dict[str, InstrumentHandle] = {}
    try:
        for name, cfg in bench.instruments.items():
            if names is not None and name not in names:
                continue
            handles[name] = open_instrument(bench, cfg, operator)
    except BaseException:
        for h in handles.values():
            h.close()
        raise
    return handles


def assign_slots(bench: BenchConfig, slots: dict[str, dict[str, Any]]
                 ) -> dict[str, str | None]:
    """Procedure instrument slots -> bench instrument names, by role.

    A slot ``{"role": "balance", "dut": True}`` takes the one instrument whose driver plays
    that role; when two do, the one marked ``role = "dut"`` (or ``"reference"``) in bench.toml.
    """
    roles = {name: driver_role(driver_module(cfg), cfg) for name, cfg in bench.instruments.items()}
    out: dict[str, str | None] = {}
    for slot, req in slots.items():
        candidates = [n for n, r in roles.items() if r == req["role"]]
        if len(candidates) > 1:
            want = "dut" if req.get("dut") else "reference"
            marked = [n for n in candidates if bench.instruments[n].role == want]
            candidates = marked if len(marked) == 1 else candidates
        if len(candidates) > 1:
            raise BenchctlError(
                f"{bench.path}: instruments {', '.join(candidates)} all play role "
                f"{req['role']!r}; mark the one for '{slot}' with role = \"dut\" or \"reference\"")
        if not candidates:
            if req.get("optional"):
                out[slot] = None
                continue
            raise BenchctlError(f"{bench.path}: the procedure needs an instrument with role "
                                f"{req['role']!r} for '{slot}', and the bench has none")
        out[slot] = candidates[0]
    return out

"""The ambient guard: no point is taken while the room is outside the procedure's limits.

A balance calibrated at 31 °C or a pressure gauge read in a draught is not a result anyone
can use, and a technician does not watch the thermometer for hours. So a procedure declares
the conditions it needs::

    AMBIENT_LIMITS = {"temperature_c": (18.0, 27.0), "humidity_pct": (30.0, 80.0)}

and between points the engine reads the bench's environment monitor (at most every
``interval_s`` of procedure time). When a value is outside its limits the run pauses with a
message naming the quantity, its value and the limits, and asks the operator to wait or abort.
It continues by itself once every value has been back inside the limits narrowed by the
hysteresis for the settle time: a room hovering on a limit does not start and stop the run
every minute, and the DUT has time to follow the air before the next reading.

A lab whose own procedure differs sets the limits per run without editing the procedure:
:func:`parameters` gives the ``--param`` entries (``ambient_temperature_c=20,25``,
``ambient_settle_s=600``, ``ambient_guard=false``) that a procedure adds to its PARAMETERS.
Optional module constants ``AMBIENT_HYSTERESIS`` (per quantity) and ``AMBIENT_SETTLE_S``
change the defaults below.

The decision (:class:`GuardState`) is pure and works on procedure seconds, so it is tested
without a clock or a room; :class:`AmbientGuard` does the I/O for a :class:`RunContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import i18n
from ..errors import BenchctlError, InstrumentError, OperatorAbort, RunAborted
from ..operator import OperatorRequest
from .states import RunState

if TYPE_CHECKING:
    from .context import RunContext
    from .handles import InstrumentHandle

#: quantity -> (unit shown to people, default hysteresis in that unit)
QUANTITIES: dict[str, tuple[str, float]] = {
    "temperature_c": ("°C", 0.5),
    "humidity_pct": ("%RH", 2.0),
    "pressure_hpa": ("hPa", 2.0),
}
DEFAULT_SETTLE_S = 300.0
"""Procedure seconds every value must stay inside (minus hysteresis) before the run goes on."""
DEFAULT_INTERVAL_S = 60.0
"""Procedure seconds between two checks while the run goes on (one reading of the monitor)."""
DEFAULT_POLL_S = 15.0
"""Procedure seconds between two readings while the run waits for the room."""

i18n.register({
    "ambient_out_of_limits": {
        "en": "Ambient conditions are outside the limits of this procedure: {problems}. "
              "The run waits until they have been back inside for {settle}; choose retry to "
              "keep waiting, or abort (the run can be resumed later).",
        "vi": "Điều kiện môi trường nằm ngoài giới hạn của quy trình: {problems}. Phép đo "
              "tạm dừng cho đến khi điều kiện trở lại trong giới hạn đủ {settle}; chọn thử lại "
              "để tiếp tục chờ, hoặc dừng (có thể tiếp tục phép đo sau).",
    },
    "ambient_back": {
        "en": "ambient conditions back inside the limits for {settle}",
        "vi": "điều kiện môi trường đã trở lại trong giới hạn đủ {settle}",
    },
})


class AmbientLimitsError(BenchctlError):
    """A procedure's AMBIENT_LIMITS or an ``ambient_*`` parameter is impossible."""


@dataclass(frozen=True)
class AmbientLimits:
    """Limits (outer), hysteresis and timing of one run's guard."""

    limits: Mapping[str, tuple[float, float]]
    hysteresis: Mapping[str, float] = field(default_factory=dict)
    settle_s: float = DEFAULT_SETTLE_S
    interval_s: float = DEFAULT_INTERVAL_S
    poll_s: float = DEFAULT_POLL_S

    def __post_init__(self) -> None:
        for q, (lo, hi) in self.limits.items():
            if q not in QUANTITIES:
                raise AmbientLimitsError(f"ambient limit for unknown quantity {q!r}; expected "
                                         f"one of {', '.join(QUANTITIES)}")
            h = self.band(q)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise AmbientLimitsError(f"ambient limits for {q}: expected low < high, got "
                                         f"({lo:g}, {hi:g})")
            if h < 0 or lo + h >= hi - h:
                raise AmbientLimitsError(
                    f"ambient hysteresis {h:g} for {q} leaves nothing of ({lo:g}, {hi:g})")
        for name in ("settle_s", "interval_s", "poll_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise AmbientLimitsError(f"ambient {name} must be a number ≥ 0, got {value!r}")

    def band(self, quantity: str) -> float:
        return float(self.hysteresis.get(quantity, QUANTITIES[quantity][1]))

    def violations(self, values: Mapping[str, float | None]) -> list[str]:
        """Readable descriptions of the values outside the (outer) limits."""
        out = []
        for q, (lo, hi) in self.limits.items():
            v = values.get(q)
            if v is not None and not lo <= v <= hi:
                unit = QUANTITIES[q][0]
                out.append(f"{q.split('_')[0]} {v:g} {unit} (limits {lo:g} … {hi:g} {unit})")
        return out

    def comfortably_inside(self, values: Mapping[str, float | None]) -> bool:
        """Every limited value inside its limits narrowed by the hysteresis (a missing value
        is not inside: the guard does not continue on a guess)."""
        for q, (lo, hi) in self.limits.items():
            v = values.get(q)
            h = self.band(q)
            if v is None or not lo + h <= v <= hi - h:
                return False
        return True


class GuardState:
    """The pure decision: from a sequence of (values, procedure time) -> ok / out / settling.

    Running, the guard trips on the first value outside the outer limits. Tripped, it is
    "settling" while every value is inside the narrowed band, and "ok" again once that has
    lasted ``settle_s``; any value leaving the narrowed band (or a missing reading) restarts
    the settle time.
    """

    def __init__(self, limits: AmbientLimits) -> None:
        self.limits = limits
        self.tripped = False
        self.inside_since: float | None = None

    def update(self, values: Mapping[str, float | None] | None, t: float) -> str:
        if not self.tripped:
            if values is not None and self.limits.violations(values):
                self.tripped, self.inside_since = True, None
                return "out"
            return "ok"
        if values is None or not self.limits.comfortably_inside(values):
            self.inside_since = None
            return "out"
        if self.inside_since is None:
            self.inside_since = t
        if t - self.inside_since >= self.limits.settle_s:
            self.tripped, self.inside_since = False, None
            return "ok"
        return "settling"


# -- from the procedure module ------------------------------------------------------------------

def parameters(limits: Mapping[str, tuple[float, float]]) -> dict[str, tuple[type, Any, str]]:
    """PARAMETERS entries letting a lab change the guard per run (``--param``)."""
    out: dict[str, tuple[type, Any, str]] = {}
    for q, (lo, hi) in limits.items():
        unit = QUANTITIES.get(q, ("", 0.0))[0]
        out[f"ambient_{q}"] = (list, None, f"ambient limits low,high in {unit} "
                                           f"(default {lo:g},{hi:g})")
    out["ambient_settle_s"] = (float, None, "seconds the room must be back inside the limits "
                               f"before the run goes on (default {DEFAULT_SETTLE_S:g})")
    out["ambient_guard"] = (bool, True, "pause the run while ambient conditions are outside "
                                        "the limits")
    return out


def limits_for(module: Any, params: Mapping[str, Any]) -> AmbientLimits | None:
    """The guard settings of a procedure module with a run's parameters (None: no guard)."""
    declared = getattr(module, "AMBIENT_LIMITS", None)
    if not declared:
        return None
    return build(declared, params,
                 hysteresis=getattr(module, "AMBIENT_HYSTERESIS", None),
                 settle_s=getattr(module, "AMBIENT_SETTLE_S", DEFAULT_SETTLE_S),
                 interval_s=getattr(module, "AMBIENT_INTERVAL_S", DEFAULT_INTERVAL_S),
                 poll_s=getattr(module, "AMBIENT_POLL_S", DEFAULT_POLL_S))


def build(declared: Mapping[str, tuple[float, float]], params: Mapping[str, Any], *,
          hysteresis: Mapping[str, float] | None = None, settle_s: float = DEFAULT_SETTLE_S,
          interval_s: float = DEFAULT_INTERVAL_S, poll_s: float = DEFAULT_POLL_S,
          ) -> AmbientLimits | None:
    """A procedure's limits with the run's ``ambient_*`` parameters applied (None when the run
    turns the guard off). A procedure's ``validate()`` calls it to refuse bad limits early."""
    if not declared or params.get("ambient_guard", True) is False:
        return None
    limits: dict[str, tuple[float, float]] = {}
    for q, pair in dict(declared).items():
        override = params.get(f"ambient_{q}")
        if override is not None and not (isinstance(override, list | tuple)
                                         and len(override) == 2):
            raise AmbientLimitsError(f"--param ambient_{q}: expected low,high, got "
                                     f"{override!r}")
        lo, hi = pair if override is None else override
        limits[q] = (float(lo), float(hi))
    settle = params.get("ambient_settle_s")
    return AmbientLimits(limits, dict(hysteresis or {}),
                         settle_s=float(settle_s if settle is None else settle),
                         interval_s=float(interval_s), poll_s=float(poll_s))


def procedure_module(procedure_id: str) -> Any:
    """The loaded library module of a running procedure (the runner has imported it)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("benchctl_procedures.") and getattr(module, "ID", None) == \
                procedure_id:
            return module
    return None


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


# -- the guard of one run ---------------------------------------------------------------------

class AmbientGuard:
    """Checks the room between points of one run, pausing it while the room is out of limits."""

    def __init__(self, limits: AmbientLimits, monitor: InstrumentHandle | None) -> None:
        self.limits = limits
        self.monitor = monitor
        self.state = GuardState(limits)
        self._last_check: float | None = None
        self._warned = False

    @classmethod
    def for_context(cls, ctx: RunContext) -> AmbientGuard | None:
        limits = limits_for(procedure_module(ctx.info.procedure_id), ctx.params)
        if limits is None:
            return None
        monitor = next((h for h in ctx.instruments.values()
                        if h is not None and getattr(h, "role", None) == "environment_monitor"),
                       None)
        return cls(limits, monitor)

    async def check(self, ctx: RunContext, key: str) -> None:
        """Before point ``key``: read the room if due; pause while it is out of limits."""
        if self.monitor is None:
            if not self._warned:
                self._warned = True
                await ctx.emit({"event": "warning", "key": key, "message":
                                "no environment monitor on this bench: the procedure's ambient "
                                "limits are not checked"})
            return
        now = ctx.clock.elapsed()
        if self._last_check is not None and now - self._last_check < self.limits.interval_s:
            return
        values = await self._read_or_pause(ctx, key)
        self._last_check = ctx.clock.elapsed()
        if self.state.update(values, self._last_check) == "out":
            await self._pause(ctx, key, values)

    async def _read_or_pause(self, ctx: RunContext, key: str) -> dict[str, float | None]:
        """A reading with the engine's retries; a monitor that stays down pauses the run like
        any other instrument fault (the room is not assumed fine)."""
        assert self.monitor is not None
        while True:
            try:
                return await self._read(ctx.retry)
            except InstrumentError as exc:
                await ctx._instrument_fault(key, exc)

    async def _read(self, retry: Any = None) -> dict[str, float | None]:
        assert self.monitor is not None
        amb = await self.monitor.call("read_ambient", retry=retry)
        return {"temperature_c": amb.temperature_c, "humidity_pct": amb.humidity_pct,
                "pressure_hpa": amb.pressure_hpa}

    async def _pause(self, ctx: RunContext, key: str, values: Mapping[str, float | None]
                     ) -> None:
        problems = "; ".join(self.limits.violations(values))
        settle = _duration(self.limits.settle_s)
        message = f"ambient conditions out of limits: {problems}"
        ctx.state.to(RunState.PAUSED)
        await ctx._persist_state(RunState.PAUSED, message)
        await ctx.emit({"event": "paused", "key": key, "reason": message, "cause": "ambient",
                        "ambient": dict(values), "t": round(ctx.clock.elapsed(), 3)})
        back = asyncio.ensure_future(self._wait_until_settled(ctx, key))
        aborted = asyncio.ensure_future(ctx._abort.wait())
        try:
            while True:
                ask = asyncio.ensure_future(ctx.operator.ask(OperatorRequest(
                    kind="choice", key=key,
                    text=ctx.t("ambient_out_of_limits", problems=problems, settle=settle),
                    options=("retry", "abort"),
                    action={"type": "ambient_out_of_limits", "values": dict(values),
                            "limits": {q: list(v) for q, v in self.limits.limits.items()},
                            "settle_s": self.limits.settle_s})))
                done, _ = await asyncio.wait({back, ask, aborted},
                                             return_when=asyncio.FIRST_COMPLETED)
                if back in done:
                    ask.cancel()
                    back.result()  # a bug in the polling loop surfaces here
                    # Emitted before the cancelled question unwinds, so a stdio-json robot is
                    # told which request id no longer needs an answer.
                    await ctx.emit({"event": "request_withdrawn", "key": key,
                                    "reason": ctx.t("ambient_back", settle=settle)})
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await ask
                    break
                if aborted in done:
                    ask.cancel()
                    raise RunAborted(f"aborted while waiting for ambient conditions at {key}")
                try:
                    answer = ask.result()
                except OperatorAbort as err:
                    raise RunAborted(str(err)) from None
                if answer.abort or answer.value != "retry":
                    raise RunAborted(f"aborted at {key}: {message}")
                # "retry": keep waiting, and ask again so the operator can still abort later.
        except BaseException:
            if ctx.state.state == RunState.PAUSED:
                ctx.state.to(RunState.RUNNING)  # the runner goes through ABORTING from here
            raise
        finally:
            for w in (back, aborted):
                w.cancel()
            for w in (back, aborted):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w
        ctx.state.to(RunState.RUNNING)
        await ctx._persist_state(RunState.RUNNING, None)
        await ctx.emit({"event": "state", "state": "running", "key": key, "cause": "ambient",
                        "t": round(ctx.clock.elapsed(), 3)})

    async def _wait_until_settled(self, ctx: RunContext, key: str) -> None:
        """Read the room every ``poll_s`` until the guard says ok (back for the settle time).
        A failed reading counts as not inside: the settle time starts again."""
        while True:
            await ctx.clock.sleep(self.limits.poll_s)
            try:
                values: dict[str, float | None] | None = await self._read()
            except InstrumentError as exc:
                values = None
                await ctx.emit({"event": "ambient", "key": key, "status": "unknown",
                                "error": str(exc), "t": round(ctx.clock.elapsed(), 3)})
            t = ctx.clock.elapsed()
            status = self.state.update(values, t)
            if values is not None:
                await ctx.emit({"event": "ambient", "key": key, "status": status,
                                "ambient": values, "t": round(t, 3)})
            if status == "ok":
                self._last_check = t
                return

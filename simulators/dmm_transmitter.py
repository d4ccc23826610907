"""A Keysight 34461A/34465A-style DMM reading a 4–20 mA pressure transmitter on the manifold.

The transmitter: the manifold pressure through its own errors (:class:`GaugeModel`: zero
offset, span error, hysteresis, noise, in its pressure ``unit``), mapped linearly onto
4 … 20 mA over ``range_low`` … ``range_high`` and saturated at 3.8 / 20.5 mA (NAMUR NE 43).
``fault_current`` (mA, e.g. 3.6 or 21.0) makes it signal a fault instead.

The DMM (SCPI, LF, no header echo; PROTOCOLS.md)::

    *IDN?                    Keysight Technologies,34465A,MY54321012,A.03.01-03.15-03.01-...
    CONF:CURR:DC [range]     current function (range in A, AUTO, MIN, MAX)
    CONF?                    "CURR +1.000000E-01,+3.000000E-06"   (or "VOLT ...")
    [SENS:]CURR:DC:NPLC n    integration time in power-line cycles (0.02 … 100); query
    READ?                    +1.23456789E-02   after n/50 simulated seconds
    MEAS:CURR:DC?            configure for current and read
    SYST:ERR?                +0,"No error"  /  -113,"Undefined header"
    *RST, *CLS

At power-up the DMM measures DC voltage (``READ?`` then gives a few microvolts of noise).
Errors go to a queue (−102 syntax, −113 undefined header, −222 data out of range); commands are
not answered.  Faults apply to reply lines ("error": the reply is lost and −100 is queued).
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from .bench import Option, SimulatorType, register_simulator_type
from .manifold import PA_PER_UNIT, GaugeModel, manifold_for
from .servers import Item, LineSession, PtyLineServer, TcpLineServer
from .world import FaultInjector, SimClock, SimWorld

__all__ = ["DMM_OPTIONS", "DmmSession", "SimTransmitterDmm", "format_reading"]

LF = b"\n"
NAMUR_LOW, NAMUR_HIGH = 3.8, 20.5  # mA saturation of a healthy transmitter
_ERRORS = {-100: "Command error", -102: "Syntax error", -113: "Undefined header",
           -222: "Data out of range"}
_LONG = {"CONFIGURE": "CONF", "CURRENT": "CURR", "SENSE": "SENS", "MEASURE": "MEAS",
         "SYSTEM": "SYST", "ERROR": "ERR", "VOLTAGE": "VOLT"}


def format_reading(value: float) -> str:
    """``0.0123456789`` -> ``+1.23456789E-02`` (the 3446x reading format)."""
    return f"{value:+.8E}"


def _header(text: str) -> str:
    query = text.endswith("?")
    parts = [p for p in text.rstrip("?").upper().split(":") if p]
    parts = [_LONG.get(p, p) for p in parts]
    if parts and parts[0] == "SENS":
        parts = parts[1:]
    return ":".join(parts) + ("?" if query else "")


class SimTransmitterDmm:
    """The transmitter and the DMM measuring its loop current."""

    def __init__(self, gauge: GaugeModel, rng: np.random.Generator, *, range_low: float,
                 range_high: float, current_noise_ua: float = 0.0,
                 fault_current: float | None = None,
                 identity: str = "Keysight Technologies,34465A,MY54321012,"
                                 "A.03.01-03.15-03.01-00.52-03-02") -> None:
        if not range_low < range_high:
            raise ValueError(f"range_low {range_low!r} must be below range_high {range_high!r}")
        self.gauge = gauge
        self.rng = rng
        self.range_low = range_low
        self.range_high = range_high
        self.current_noise = current_noise_ua * 1e-6
        self.fault_current = fault_current
        self.identity = identity
        self._lock = threading.RLock()
        self.errors: deque[tuple[int, str]] = deque()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.function = "VOLT"
            self.range: float | None = None  # None = AUTO
            self.nplc = 10.0
            self.errors.clear()

    def power_cycle(self) -> None:
        self.reset()

    def push_error(self, code: int) -> None:
        with self._lock:
            if len(self.errors) < 20:
                self.errors.append((code, _ERRORS.get(code, "Error")))

    def pop_error(self) -> tuple[int, str]:
        with self._lock:
            return self.errors.popleft() if self.errors else (0, "No error")

    def loop_current_ma(self) -> float:
        if self.fault_current is not None:
            return self.fault_current
        indication = self.gauge.indicate()
        ma = 4.0 + 16.0 * (indication - self.range_low) / (self.range_high - self.range_low)
        return min(max(ma, NAMUR_LOW), NAMUR_HIGH)

    def measure(self) -> float:
        """What READ? returns now, in A (current) or V (voltage)."""
        with self._lock:
            function = self.function
        noise = float(self.rng.normal(0.0, self.current_noise)) if self.current_noise else 0.0
        if function == "CURR":
            return self.loop_current_ma() / 1000.0 + noise
        return float(self.rng.normal(0.0, 2e-6))


class DmmSession(LineSession):
    terminator = LF

    def __init__(self, dmm: SimTransmitterDmm, clock: SimClock,
                 faults: FaultInjector | None = None, rnd: random.Random | None = None) -> None:
        super().__init__(clock, faults, rnd)
        self.dmm = dmm

    def error_reply(self) -> bytes:
        self.dmm.push_error(-100)
        return b""

    def power_cycle_physics(self) -> None:
        self.dmm.power_cycle()

    def respond(self, line: bytes) -> Iterator[Item]:
        text = line.decode("ascii", "replace").strip()
        for command in (c.strip() for c in text.split(";")):
            if command:
                yield from self.execute(command)

    def execute(self, command: str) -> Iterator[Item]:
        dmm = self.dmm
        head, _, arg = command.partition(" ")
        arg = arg.strip()
        h = _header(head)
        if h == "*IDN?":
            yield 0.0, dmm.identity.encode() + LF
        elif h == "*RST":
            dmm.reset()
        elif h == "*CLS":
            with dmm._lock:
                dmm.errors.clear()
        elif h in ("CONF:CURR:DC", "CONF:CURR", "CONF:VOLT:DC", "CONF:VOLT"):
            rng = self._range(arg)
            if rng is False:
                return
            with dmm._lock:
                dmm.function = "CURR" if "CURR" in h else "VOLT"
                dmm.range = rng if isinstance(rng, float) else None
        elif h == "CONF?":
            with dmm._lock:
                fn, rng = dmm.function, dmm.range
            full = rng if rng is not None else (1.0 if fn == "CURR" else 10.0)
            yield 0.0, f'"{fn} {full:+.6E},{full * 3e-6:+.6E}"'.encode() + LF
        elif h in ("CURR:DC:NPLC", "CURR:NPLC", "VOLT:DC:NPLC", "VOLT:NPLC"):
            try:
                value = float(arg)
            except ValueError:
                dmm.push_error(-102)
                return
            if not 0.02 <= value <= 100.0:
                dmm.push_error(-222)
                return
            dmm.nplc = value
        elif h in ("CURR:DC:NPLC?", "CURR:NPLC?", "VOLT:DC:NPLC?", "VOLT:NPLC?"):
            yield 0.0, format_reading(dmm.nplc).encode() + LF
        elif h in ("READ?", "MEAS:CURR:DC?", "MEAS:CURR?"):
            if h.startswith("MEAS"):
                with dmm._lock:
                    dmm.function, dmm.range = "CURR", None
            # The integration time passes before the value exists (power line 50 Hz).
            yield dmm.nplc / 50.0, b""
            yield 0.0, format_reading(dmm.measure()).encode() + LF
        elif h in ("SYST:ERR?", "SYST:ERR:NEXT?"):
            code, text = dmm.pop_error()
            yield 0.0, f'{code:+d},"{text}"'.encode() + LF
        else:
            dmm.push_error(-113)

    def _range(self, arg: str) -> float | bool | None:
        """The range argument of CONF: a float, None for AUTO/none, False when bad (queued)."""
        if not arg or arg.upper() in ("AUTO", "DEF", "DEFAULT"):
            return None
        if arg.upper() == "MIN":
            return 1e-6
        if arg.upper() == "MAX":
            return 3.0
        try:
            value = float(arg)
        except ValueError:
            self.dmm.push_error(-102)
            return False
        if not (math.isfinite(value) and 0 < value <= 10.0):
            self.dmm.push_error(-222)
            return False
        return value


DMM_OPTIONS: dict[str, Option] = {
    "unit": Option("str", "kPa", "the transmitter's pressure unit"),
    "range_low": Option("number", 0.0, "pressure at 4 mA, in unit"),
    "range_high": Option("number", 1000.0, "pressure at 20 mA, in unit"),
    "zero_offset": Option("number", 0.0, "transmitter error at zero pressure, in unit"),
    "span_error_pct": Option("number", 0.0, "error proportional to the pressure, % of reading"),
    "hysteresis": Option("nonneg", 0.0, "falling minus rising, in unit"),
    "noise": Option("nonneg", 0.0, "standard deviation of the transmitter, in unit"),
    "current_noise_ua": Option("nonneg", 0.0, "standard deviation of the DMM reading, µA"),
    "fault_current": Option("nonneg", None, "signal this loop current (mA) instead, e.g. 3.6"),
}


def _serve_dmm(world: SimWorld, name: str, options: dict[str, Any], transport: str,
               host: str, port: int) -> tuple[Any, Any]:
    unit = options["unit"]
    if unit not in PA_PER_UNIT:
        raise ValueError(f"unit: expected one of {', '.join(PA_PER_UNIT)}, got {unit!r}")
    gauge = GaugeModel(manifold_for(world), world.rng_for(name), unit=unit,
                       zero_offset=options["zero_offset"],
                       span_error_pct=options["span_error_pct"],
                       hysteresis=options["hysteresis"], noise=options["noise"])
    dmm = SimTransmitterDmm(gauge, world.rng_for(f"{name}.dmm"),
                            range_low=options["range_low"], range_high=options["range_high"],
                            current_noise_ua=options["current_noise_ua"],
                            fault_current=options["fault_current"])
    faults, rnd = world.faults(name), world.random_for(name)

    def factory() -> LineSession:
        return DmmSession(dmm, world.clock, faults, rnd)

    server: TcpLineServer | PtyLineServer
    if transport == "tcp":
        server = TcpLineServer(factory, host, port, name=name)
        server.resource = f"TCPIP::{server.host}::{server.port}::SOCKET"
    else:
        server = PtyLineServer(factory, name=name)
        server.resource = f"ASRL{server.resource}::INSTR"
    return dmm, server


register_simulator_type(SimulatorType(
    "keysight_344xx", DMM_OPTIONS,
    description="Keysight 34461A/34465A DMM reading a 4–20 mA pressure transmitter",
    serve=_serve_dmm))

"""A Druck PACE 5000/6000-style pressure controller on the shared manifold, speaking SCPI.

Protocol (PROTOCOLS.md): LF-terminated lines; headers are case-insensitive, long or short form
(``:SENSe:PRESsure?`` = ``:SENS:PRES?``), and ``:LEV:IMM:AMPL`` is optional after
``:SOUR:PRES``.  Every reply echoes its header in short form, then a space and the value::

    *IDN?                            *IDN GE Druck,Pace5000 User Interface,58784,01.05.04
    :SENS:PRES?                      :SENS:PRES 1000.5120
    :SENS:PRES:INL?                  :SENS:PRES:INL 1000.5120, 1
    :SOUR:PRES 1000 / :SOUR:PRES?    :SOUR:PRES:LEV:IMM:AMPL 1000.0000000
    :OUTP:STAT 1 / :OUTP:STAT?       :OUTP:STAT 1
    :SOUR:PRES:SLEW 5 (unit/s); :SOUR:PRES:SLEW:MODE LIN|MAX (and queries)
    :SOUR:PRES:INL 0.01 (%FS); :SOUR:PRES:INL:TIME 5 (s) (and queries)
    :UNIT:PRES KPA (MBAR, BAR, KPA, MPA, PA, PSI) / :UNIT:PRES?   :UNIT:PRES KPA
    :SENS:PRES:RANG?                 :SENS:PRES:RANG "2.00MPag"
    :INST:LIM?                       :INST:LIM 2000.0000000       (full scale, current unit)
    :SOUR:PRES:LEV:IMM:AMPL:VENT 1   start venting (output off); query: 0 ok, 1 running,
                                     2 done
    :SYST:ERR?                       :SYST:ERR 0, No error   /  :SYST:ERR -222, Data out of range
    *RST, *CLS

Commands without ``?`` are not answered; what is wrong with them goes to the error queue (five
entries; the last becomes −350 Queue overflow when it is full): −102 syntax error (a bad
number or a missing one), −113 undefined header, −222 data out of range (a setpoint outside
the range, a negative slew).  Several commands may share a line, separated by ``;``.

Controller dynamics live in the manifold (slew, overshoot, settling, hunting, leak, vent).
In-limits: the pressure has stayed within ± band (% of full scale) of the setpoint for the
dwell time, computed from the manifold's trajectory (noise aside).  The reading adds the
controller's own ``noise`` and is rounded to ``decimals`` decimals of the current unit.

Faults (``world.faults(name)``) apply to reply lines as for every line protocol; "error" sends
``:SYST:ERR -100, Command error`` in place of the reply and "busy" ``<header> I``.
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
from .manifold import Manifold, from_pa, manifold_for, to_pa
from .servers import Item, LineSession, PtyLineServer, TcpLineServer
from .world import FaultInjector, SimClock, SimWorld

__all__ = ["PACE_OPTIONS", "PACE_UNITS", "PaceScpiSession", "SimPace", "canonical_header"]

LF = b"\n"

#: SCPI unit mnemonic -> the unit's symbol in the manifold's table.
PACE_UNITS: dict[str, str] = {"PA": "Pa", "KPA": "kPa", "MPA": "MPa", "MBAR": "mbar",
                              "BAR": "bar", "PSI": "psi"}

_LONG_FORMS: dict[str, str] = {
    "SENSE": "SENS", "PRESSURE": "PRES", "SOURCE": "SOUR", "OUTPUT": "OUTP", "STATE": "STAT",
    "LEVEL": "LEV", "IMMEDIATE": "IMM", "AMPLITUDE": "AMPL", "RANGE": "RANG",
    "INSTRUMENT": "INST", "LIMIT": "LIM", "LIMITS": "LIM", "SYSTEM": "SYST", "ERROR": "ERR",
    "INLIMITS": "INL", "INLIMIT": "INL",
}

ERRORS = {0: "No error", -100: "Command error", -102: "Syntax error",
          -113: "Undefined header", -222: "Data out of range", -350: "Queue overflow"}


def canonical_header(header: str) -> str:
    """``:sense:pressure?`` -> ``:SENS:PRES?``; ``:SOUR:PRES:LEVel:IMMediate:AMPLitude`` ->
    ``:SOUR:PRES`` (the default nodes are dropped), keeping ``:VENT`` after them."""
    text = header.strip().upper()
    query = text.endswith("?")
    if query:
        text = text[:-1]
    if text.startswith("*"):
        return text + ("?" if query else "")
    parts = [p for p in text.split(":") if p]
    parts = [_LONG_FORMS.get(p, p) for p in parts]
    joined = ":" + ":".join(parts)
    joined = joined.replace(":SOUR:PRES:LEV:IMM:AMPL", ":SOUR:PRES")
    return joined + ("?" if query else "")


class SimPace:
    """The controller's state; the pressure itself is the manifold's."""

    def __init__(self, manifold: Manifold, clock: SimClock, rng: np.random.Generator, *,
                 full_scale: float = 2000.0, unit: str = "kPa", minimum: float = 0.0,
                 slew: float = 50.0, overshoot_pct: float = 1.0, settle_tau: float = 2.0,
                 noise: float = 0.0, inl_band_pct: float = 0.01, inl_time: float = 5.0,
                 decimals: int = 4, serial: str = "58784", model: str = "Pace5000",
                 firmware: str = "01.05.04") -> None:
        mnemonic = {v: k for k, v in PACE_UNITS.items()}.get(unit)
        if mnemonic is None:
            raise ValueError(f"unit must be one of {', '.join(PACE_UNITS.values())}, got {unit!r}")
        if not minimum < full_scale:
            raise ValueError(f"minimum {minimum!r} must be below full_scale {full_scale!r}")
        self.manifold = manifold
        self.clock = clock
        self.rng = rng
        self.power_unit = mnemonic
        self.full_scale_pa = to_pa(full_scale, unit)
        self.minimum_pa = to_pa(minimum, unit)
        self.power_slew_pa = to_pa(slew, unit)
        self.overshoot = overshoot_pct / 100.0
        self.settle_tau = settle_tau
        self.noise_pa = to_pa(noise, unit)
        self.power_band_pct = inl_band_pct
        self.power_dwell = inl_time
        self.decimals = int(decimals)
        self.identity = f"GE Druck,{model} User Interface,{serial},{firmware}"
        self._lock = threading.RLock()
        self.errors: deque[tuple[int, str]] = deque()
        self.reset()

    def reset(self) -> None:
        """Power-up state (also ``*RST``): output off, power-up unit, slew and in-limits."""
        with self._lock:
            self.unit = self.power_unit
            self.setpoint_pa = 0.0
            self.output = False
            self.slew_pa = self.power_slew_pa
            self.slew_mode = "LIN"
            self.band_pct = self.power_band_pct
            self.dwell = self.power_dwell
            self.venting = 0  # 0 ok, 1 running, 2 done
            self.errors.clear()
        self.manifold.hold()

    def power_cycle(self) -> None:
        self.reset()

    # -- errors ---------------------------------------------------------------------------------
    def push_error(self, code: int) -> None:
        with self._lock:
            if len(self.errors) >= 5:
                self.errors[-1] = (-350, ERRORS[-350])
            else:
                self.errors.append((code, ERRORS.get(code, "Error")))

    def pop_error(self) -> tuple[int, str]:
        with self._lock:
            return self.errors.popleft() if self.errors else (0, ERRORS[0])

    # -- values in the current unit ----------------------------------------------------------
    @property
    def unit_symbol(self) -> str:
        return PACE_UNITS[self.unit]

    def to_unit(self, pa: float) -> float:
        return from_pa(pa, self.unit_symbol)

    def from_unit(self, value: float) -> float:
        return to_pa(value, self.unit_symbol)

    @property
    def band_pa(self) -> float:
        return self.band_pct / 100.0 * self.full_scale_pa

    def measured_pa(self) -> float:
        p = self.manifold.pressure()
        if self.noise_pa:
            p += float(self.rng.normal(0.0, self.noise_pa))
        return p

    def in_limits(self) -> bool:
        with self._lock:
            if not self.output:
                return False
            band, dwell = self.band_pa, self.dwell
        since = self.manifold.settled_since(band)
        return since is not None and self.clock.now() - since >= dwell

    def vent_state(self) -> int:
        with self._lock:
            if self.venting == 1 and self.manifold.vented(max(1e-3 * self.full_scale_pa, 50.0)):
                self.venting = 2
            return self.venting

    # -- actions --------------------------------------------------------------------------------
    def _control(self) -> None:
        slew = self.slew_pa if self.slew_mode == "LIN" else 20.0 * self.full_scale_pa
        self.manifold.control(self.setpoint_pa, slew=slew, overshoot=self.overshoot,
                              tau=self.settle_tau)

    def set_setpoint(self, value: float) -> int:
        pa = self.from_unit(value)
        tolerance = 1e-9 * self.full_scale_pa
        if not self.minimum_pa - tolerance <= pa <= self.full_scale_pa + tolerance:
            return -222
        with self._lock:
            self.setpoint_pa = pa
            if self.output:
                self.venting = 0
                self._control()
        return 0

    def set_output(self, on: bool) -> None:
        with self._lock:
            self.output = on
            if on:
                self.venting = 0
                self._control()
            else:
                self.manifold.hold()

    def vent(self) -> None:
        with self._lock:
            self.output = False
            self.venting = 1
            self.manifold.vent()

    def range_text(self) -> str:
        fs = self.full_scale_pa
        if fs >= 1e6:
            return f"{fs / 1e6:.2f}MPag"
        if fs >= 1e3:
            return f"{fs / 1e3:.2f}kPag"
        return f"{fs:.2f}Pag"


class PaceScpiSession(LineSession):
    """One client's conversation with the simulated PACE."""

    terminator = LF

    def __init__(self, pace: SimPace, clock: SimClock, faults: FaultInjector | None = None,
                 rnd: random.Random | None = None) -> None:
        super().__init__(clock, faults, rnd)
        self.pace = pace

    def error_reply(self) -> bytes:
        return b":SYST:ERR -100, Command error" + LF

    def power_cycle_physics(self) -> None:
        self.pace.power_cycle()

    def _number(self, value: float) -> str:
        return f"{value:.{self.pace.decimals}f}"

    def respond(self, line: bytes) -> Iterator[Item]:
        text = line.decode("ascii", "replace").strip()
        for command in (c.strip() for c in text.split(";")):
            if command:
                reply = self.execute(command)
                if reply is not None:
                    yield 0.0, reply.encode("ascii") + LF

    def execute(self, command: str) -> str | None:
        """One SCPI command -> its reply line (None for a setting or an error)."""
        pace = self.pace
        header, _, arg = command.partition(" ")
        arg = arg.strip()
        h = canonical_header(header)
        queries = {
            "*IDN?": lambda: f"*IDN {pace.identity}",
            ":SENS:PRES?": lambda: f":SENS:PRES {self._number(pace.to_unit(pace.measured_pa()))}",
            ":SENS:PRES:INL?": lambda: (f":SENS:PRES:INL "
                                        f"{self._number(pace.to_unit(pace.measured_pa()))}, "
                                        f"{int(pace.in_limits())}"),
            ":SOUR:PRES?": lambda: f":SOUR:PRES:LEV:IMM:AMPL "
                                   f"{pace.to_unit(pace.setpoint_pa):.7f}",
            ":OUTP:STAT?": lambda: f":OUTP:STAT {int(pace.output)}",
            ":SOUR:PRES:SLEW?": lambda: f":SOUR:PRES:SLEW {pace.to_unit(pace.slew_pa):.7f}",
            ":SOUR:PRES:SLEW:MODE?": lambda: f":SOUR:PRES:SLEW:MODE {pace.slew_mode}",
            ":SOUR:PRES:INL?": lambda: f":SOUR:PRES:INL {pace.band_pct:.7f}",
            ":SOUR:PRES:INL:TIME?": lambda: f":SOUR:PRES:INL:TIME {pace.dwell:.7f}",
            ":UNIT:PRES?": lambda: f":UNIT:PRES {pace.unit}",
            ":SENS:PRES:RANG?": lambda: f':SENS:PRES:RANG "{pace.range_text()}"',
            ":INST:LIM?": lambda: f":INST:LIM {pace.to_unit(pace.full_scale_pa):.7f}",
            ":SOUR:PRES:VENT?": lambda: f":SOUR:PRES:LEV:IMM:AMPL:VENT {pace.vent_state()}",
            ":SYST:ERR?": lambda: ":SYST:ERR {}, {}".format(*pace.pop_error()),
        }
        if h.endswith("?"):
            query = queries.get(h)
            if query is None or arg:
                pace.push_error(-113 if query is None else -102)
                return None
            return query()
        if h == "*RST":
            pace.reset()
            return None
        if h == "*CLS":
            with pace._lock:
                pace.errors.clear()
            return None
        setters = {
            ":SOUR:PRES": self._set_setpoint,
            ":OUTP:STAT": self._set_output,
            ":OUTP": self._set_output,
            ":SOUR:PRES:SLEW": self._set_slew,
            ":SOUR:PRES:SLEW:MODE": self._set_slew_mode,
            ":SOUR:PRES:INL": self._set_band,
            ":SOUR:PRES:INL:TIME": self._set_dwell,
            ":UNIT:PRES": self._set_unit,
            ":UNIT": self._set_unit,
            ":SOUR:PRES:VENT": self._set_vent,
        }
        setter = setters.get(h)
        if setter is None:
            pace.push_error(-113)
            return None
        code = setter(arg)
        if code:
            pace.push_error(code)
        return None

    # -- setters: return an error code (0 = fine) ------------------------------------------------
    @staticmethod
    def _float(arg: str) -> float | None:
        try:
            value = float(arg)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def _set_setpoint(self, arg: str) -> int:
        value = self._float(arg)
        return -102 if value is None else self.pace.set_setpoint(value)

    def _set_output(self, arg: str) -> int:
        value = {"1": True, "ON": True, "0": False, "OFF": False}.get(arg.upper())
        if value is None:
            return -102
        self.pace.set_output(value)
        return 0

    def _set_slew(self, arg: str) -> int:
        value = self._float(arg)
        if value is None:
            return -102
        if not value > 0:
            return -222
        self.pace.slew_pa = self.pace.from_unit(value)
        return 0

    def _set_slew_mode(self, arg: str) -> int:
        mode = arg.upper()
        if mode not in ("LIN", "MAX"):
            return -102
        self.pace.slew_mode = mode
        return 0

    def _set_band(self, arg: str) -> int:
        value = self._float(arg)
        if value is None:
            return -102
        if not 0.001 <= value <= 10.0:
            return -222
        self.pace.band_pct = value
        return 0

    def _set_dwell(self, arg: str) -> int:
        value = self._float(arg)
        if value is None:
            return -102
        if not 0.0 <= value <= 999.0:
            return -222
        self.pace.dwell = value
        return 0

    def _set_unit(self, arg: str) -> int:
        unit = arg.strip().upper()
        if not unit:
            return -102
        if unit not in PACE_UNITS:
            return -222
        self.pace.unit = unit
        return 0

    def _set_vent(self, arg: str) -> int:
        if arg.strip() != "1":
            return -102 if arg.strip() not in ("0",) else 0
        self.pace.vent()
        return 0


# -- the simulator type ----------------------------------------------------------------------------

PACE_OPTIONS: dict[str, Option] = {
    "full_scale": Option("positive", 2000.0, "full scale, in unit (a 2 MPa gauge controller)"),
    "unit": Option("str", "kPa", "unit of the options and at power-up: Pa, kPa, MPa, mbar, bar, "
                                 "psi"),
    "minimum": Option("number", 0.0, "lowest setpoint accepted, in unit"),
    "slew": Option("positive", 50.0, "slew rate at power-up, unit per simulated second"),
    "overshoot_pct": Option("nonneg", 1.0, "overshoot past the setpoint, % of the step"),
    "settle_tau": Option("positive", 2.0, "settling time constant, simulated seconds"),
    "noise": Option("nonneg", 0.0, "standard deviation of the controller's reading, in unit"),
    "hunting": Option("nonneg", 0.0, "amplitude of a control loop that never settles, in unit"),
    "leak_rate": Option("nonneg", 0.0, "leak of the sealed manifold, unit per simulated second"),
    "ripple": Option("nonneg", 0.0, "pressure ripple while controlling (seen by every gauge), "
                                    "in unit"),
    "inl_band_pct": Option("positive", 0.01, "in-limits band at power-up, % of full scale"),
    "inl_time": Option("nonneg", 5.0, "in-limits dwell at power-up, simulated seconds"),
    "vent_tau": Option("positive", 2.0, "vent time constant, simulated seconds"),
    "decimals": Option("int", 4, "decimals of the pressure readings"),
    "serial": Option("str", "58784", "serial number (*IDN?)"),
    "model": Option("str", "Pace5000", "model (*IDN?)"),
    "firmware": Option("str", "01.05.04", "firmware version (*IDN?)"),
}

_PHYSICS = ("full_scale", "unit", "minimum", "slew", "overshoot_pct", "settle_tau", "noise",
            "inl_band_pct", "inl_time", "decimals", "serial", "model", "firmware")


def _serve_pace(world: SimWorld, name: str, options: dict[str, Any], transport: str,
                host: str, port: int) -> tuple[Any, Any]:
    manifold = manifold_for(world)
    unit = options["unit"]
    if unit not in PACE_UNITS.values():
        raise ValueError(f"unit: expected one of {', '.join(PACE_UNITS.values())}, got {unit!r}")
    manifold.hunting = to_pa(options["hunting"], unit)
    manifold.leak_rate = to_pa(options["leak_rate"], unit)
    manifold.ripple = to_pa(options["ripple"], unit)
    manifold.vent_tau = options["vent_tau"]
    pace = SimPace(manifold, world.clock, world.rng_for(name),
                   **{k: options[k] for k in _PHYSICS})
    faults, rnd = world.faults(name), world.random_for(name)

    def factory() -> LineSession:
        return PaceScpiSession(pace, world.clock, faults, rnd)

    server: TcpLineServer | PtyLineServer
    if transport == "tcp":
        server = TcpLineServer(factory, host, port, name=name)
        server.resource = f"TCPIP::{server.host}::{server.port}::SOCKET"
    else:
        server = PtyLineServer(factory, name=name)
        server.resource = f"ASRL{server.resource}::INSTR"
    return pace, server


register_simulator_type(SimulatorType(
    "druck_pace", PACE_OPTIONS, description="Druck PACE 5000/6000 pressure controller (SCPI; "
    "VISA TCPIP SOCKET or ASRL on a pty)", serve=_serve_pace))

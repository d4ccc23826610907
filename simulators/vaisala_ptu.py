"""The room's air (temperature, humidity, pressure) and a Vaisala PTU300-style transmitter.

Environment model (simulated time t, seconds since the base value was last set at t0)::

    T(t)  = T0  + 0.3 °C  · v · (sin(2π (t−t0)/3600 s  + φT) − sin φT) + N(0, 0.02 °C · n)
    RH(t) = RH0 − 1.5 %RH · v · (sin(2π (t−t0)/3600 s  + φT) − sin φT) + N(0, 0.1 %RH · n)
    P(t)  = P0  + 0.4 hPa · v · (sin(2π (t−t0)/10800 s + φP) − sin φP) + N(0, 0.05 hPa · n)

with seeded phases φ, ``v`` = ``variation`` and ``n`` = ``noise`` scale factors (1 by default,
0 turns them off). Humidity falls as the room warms. ``set_ambient`` sets T0/RH0/P0 and
restarts the variation from there, so the reading right after it equals the value set (± noise).
The transmitter adds its own constant errors (``temperature_offset`` …) to what it measures.

Protocol (serial line, CR LF after every output line; commands are case-insensitive and may
end with CR, LF or CR LF)::

    SEND [addr]     P=  1013.1 hPa T=  22.3 'C RH=  35.2 %RH
                    i.e. "P=%8.1f hPa T=%6.1f 'C RH=%6.1f %%RH"
    R               the SEND line now and then every ``interval`` s (run mode) until S;
                    other commands are answered in between and run mode continues
    S               stop run mode (no reply)
    INTV [n [s|min|h]]  Output intrv. : <n> <unit>
    ?               PTU300 / <software>
                    Serial number  : <serial>
                    Output interval: <n> <unit>
                    Pressure unit  : hPa
                    Temperature unit: 'C
    ERRS            No errors
    VERS            PTU300 / <software>
    anything else   Unknown command

At power-up (``power_cycle``; on connect only with ``powerup_on_connect``) the transmitter
prints its ``VERS`` line. Faults: "error" → ``Unknown command``, "busy" → no reply,
"wrong_unit" → the temperature in 'F.
"""

from __future__ import annotations

import math
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .servers import Item, LineSession
from .world import FaultInjector, SimClock

__all__ = ["SimEnvironment", "SimPTU", "VaisalaPtuSession", "format_ptu_line"]

CRLF = b"\r\n"


@dataclass
class _Quantity:
    base: float
    t_ref: float
    amplitude: float
    period: float
    phase: float
    sigma: float
    sign: float = 1.0
    drift: float = 0.0  # per simulated second, from t_ref (the "drift" of set_ambient)

    def at(self, t: float, variation: float) -> float:
        x = 2 * math.pi * (t - self.t_ref) / self.period
        wave = math.sin(x + self.phase) - math.sin(self.phase)
        return (self.base + self.sign * variation * self.amplitude * wave
                + self.drift * (t - self.t_ref))


class SimEnvironment:
    """The ambient air of the simulated bench (one per world, ``world.environment``)."""

    def __init__(self, clock: SimClock, rng: np.random.Generator, *,
                 temperature_c: float = 22.0, humidity_pct: float = 45.0,
                 pressure_hpa: float = 1010.0, variation: float = 1.0,
                 noise: float = 1.0) -> None:
        self.clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self.variation = float(variation)
        self.noise = float(noise)
        now = clock.now()
        phase_t = float(rng.uniform(0, 2 * math.pi))
        phase_p = float(rng.uniform(0, 2 * math.pi))
        self._t = _Quantity(float(temperature_c), now, 0.3, 3600.0, phase_t, 0.02)
        self._rh = _Quantity(float(humidity_pct), now, 1.5, 3600.0, phase_t, 0.1, sign=-1.0)
        self._p = _Quantity(float(pressure_hpa), now, 0.4, 10800.0, phase_p, 0.05)
        self._check(temperature_c, humidity_pct, pressure_hpa)

    @staticmethod
    def _check(t: float | None, rh: float | None, p: float | None) -> None:
        if t is not None and not -60 <= t <= 100:
            raise ValueError(f"temperature_c {t} outside -60 … 100 °C")
        if rh is not None and not 0 <= rh <= 100:
            raise ValueError(f"humidity_pct {rh} outside 0 … 100 %")
        if p is not None and not 500 <= p <= 1200:
            raise ValueError(f"pressure_hpa {p} outside 500 … 1200 hPa")

    def set(self, temperature_c: float | None = None, humidity_pct: float | None = None,
            pressure_hpa: float | None = None) -> None:
        """New base values (the variation restarts from them)."""
        self._check(temperature_c, humidity_pct, pressure_hpa)
        now = self.clock.now()
        with self._lock:
            for quantity, value in ((self._t, temperature_c), (self._rh, humidity_pct),
                                    (self._p, pressure_hpa)):
                if value is not None:
                    quantity.base, quantity.t_ref = float(value), now

    def set_drift(self, **per_hour: float) -> None:
        """Let quantities drift steadily (units per simulated hour, 0 stops), from their value
        now: a failing air conditioner walks the room out of a procedure's limits."""
        now = self.clock.now()
        with self._lock:
            for key, quantity in (("temperature_c", self._t), ("humidity_pct", self._rh),
                                  ("pressure_hpa", self._p)):
                if key in per_hour:
                    quantity.base = quantity.at(now, self.variation)
                    quantity.t_ref = now
                    quantity.drift = float(per_hour[key]) / 3600.0

    def true_values(self) -> dict[str, float]:
        """The noise-free values now."""
        t = self.clock.now()
        with self._lock:
            return {
                "temperature_c": self._t.at(t, self.variation),
                "humidity_pct": min(100.0, max(0.0, self._rh.at(t, self.variation))),
                "pressure_hpa": self._p.at(t, self.variation),
            }

    def sample(self) -> dict[str, float]:
        """The values now with measurement noise."""
        values = self.true_values()
        with self._lock:
            for key, q in (("temperature_c", self._t), ("humidity_pct", self._rh),
                           ("pressure_hpa", self._p)):
                if self.noise > 0:
                    values[key] += float(self._rng.normal(0.0, q.sigma * self.noise))
        values["humidity_pct"] = min(100.0, max(0.0, values["humidity_pct"]))
        return values


def format_ptu_line(pressure_hpa: float, temperature_c: float, humidity_pct: float,
                    *, temperature_unit: str = "'C") -> bytes:
    """``P=  1013.1 hPa T=  22.3 'C RH=  35.2 %RH`` + CR LF."""
    text = (f"P={pressure_hpa:8.1f} hPa T={temperature_c:6.1f} {temperature_unit} "
            f"RH={humidity_pct:6.1f} %RH")
    return text.encode("ascii") + CRLF


class SimPTU:
    """A PTU300 transmitter in the simulated room: the environment plus its own errors."""

    def __init__(self, environment: SimEnvironment, *, temperature_offset: float = 0.0,
                 humidity_offset: float = 0.0, pressure_offset: float = 0.0) -> None:
        self.environment = environment
        self.temperature_offset = float(temperature_offset)
        self.humidity_offset = float(humidity_offset)
        self.pressure_offset = float(pressure_offset)

    def measure(self) -> dict[str, float]:
        v = self.environment.sample()
        return {
            "pressure_hpa": v["pressure_hpa"] + self.pressure_offset,
            "temperature_c": v["temperature_c"] + self.temperature_offset,
            "humidity_pct": min(100.0, max(0.0, v["humidity_pct"] + self.humidity_offset)),
        }

    def operator_read(self) -> dict[str, Any]:
        m = self.measure()
        return {**{k: round(v, 1) for k, v in m.items()},
                "text": format_ptu_line(m["pressure_hpa"], m["temperature_c"],
                                        m["humidity_pct"]).decode().strip()}

    def power_cycle(self) -> None:
        """Nothing to reset in the sensor itself."""


_PTU_LINE = re.compile(rb"^(P=.* hPa T=)( *-?\d+\.\d) 'C( RH=.*)\r\n$")
_INTV_UNITS = {"S": ("s", 1.0), "MIN": ("min", 60.0), "H": ("h", 3600.0)}


class VaisalaPtuSession(LineSession):
    """One client's conversation with the simulated PTU300."""

    def __init__(
        self,
        ptu: SimPTU,
        clock: SimClock | None = None,
        faults: FaultInjector | None = None,
        rnd: random.Random | None = None,
        *,
        serial: str = "A1234567",
        model: str = "PTU300",
        software: str = "5.10",
        interval: float = 2.0,
        powerup_on_connect: bool = False,
    ) -> None:
        super().__init__(clock or ptu.environment.clock, faults, rnd)
        if not interval > 0:
            raise ValueError("interval must be > 0 seconds")
        self.ptu = ptu
        self.serial = serial
        self.model = model
        self.software = software
        self.interval_value, self.interval_unit = interval, "s"
        self.powerup_on_connect = powerup_on_connect

    @property
    def interval(self) -> float:
        return self.interval_value * dict(_INTV_UNITS.values())[self.interval_unit]

    @staticmethod
    def line(text: str) -> bytes:
        return text.encode("latin-1") + CRLF

    def measurement(self) -> bytes:
        m = self.ptu.measure()
        return format_ptu_line(m["pressure_hpa"], m["temperature_c"], m["humidity_pct"])

    def _interval_text(self) -> str:
        value = self.interval_value
        number = f"{int(value)}" if float(value).is_integer() else f"{value:g}"
        return f"{number} {self.interval_unit}"

    # -- LineSession hooks --------------------------------------------------------------------
    def on_connect(self) -> bytes:
        return self.power_up_line() if self.powerup_on_connect else b""

    def power_up_line(self) -> bytes:
        return self.line(f"{self.model} / {self.software}")

    def error_reply(self) -> bytes:
        return self.line("Unknown command")

    def busy_reply(self, line: bytes) -> bytes:
        return b""

    def wrong_unit(self, line: bytes) -> bytes:
        m = _PTU_LINE.match(line)
        if not m:
            return line
        fahrenheit = float(m.group(2)) * 9 / 5 + 32
        return m.group(1) + f"{fahrenheit:6.1f} 'F".encode() + m.group(3) + CRLF

    # -- commands -----------------------------------------------------------------------------
    def respond(self, line: bytes) -> Iterator[Item]:
        try:
            text = line.decode("ascii").strip()
        except UnicodeDecodeError:
            text = "\x00"
        words = text.split()
        cmd = words[0].upper() if words else ""
        args = words[1:]
        if cmd == "SEND" and len(args) <= 1:
            yield 0.0, self.measurement()
        elif cmd == "R" and not args:
            self.stream = self._run_stream
        elif cmd == "S" and not args:
            self.stream = None
        elif cmd == "INTV":
            yield 0.0, self._intv(args)
        elif cmd == "?" and not args:
            for text_line in (
                f"{self.model} / {self.software}",
                f"Serial number  : {self.serial}",
                f"Output interval: {self._interval_text()}",
                "Pressure unit  : hPa",
                "Temperature unit: 'C",
            ):
                yield 0.0, self.line(text_line)
        elif cmd == "ERRS" and not args:
            yield 0.0, self.line("No errors")
        elif cmd == "VERS" and not args:
            yield 0.0, self.power_up_line()
        else:
            yield 0.0, self.error_reply()

    def _intv(self, args: list[str]) -> bytes:
        try:
            if len(args) > 2:
                raise ValueError
            value, unit = self.interval_value, self.interval_unit
            for arg in args:
                if arg.upper() in _INTV_UNITS:
                    unit = _INTV_UNITS[arg.upper()][0]
                else:
                    value = float(arg)
                    if not 0 < value <= 255:
                        raise ValueError
            self.interval_value, self.interval_unit = value, unit
        except ValueError:
            return self.error_reply()
        return self.line(f"Output intrv. : {self._interval_text()}")

    def _run_stream(self) -> Iterator[Item]:
        while True:
            yield 0.0, self.measurement()
            yield self.interval, b""

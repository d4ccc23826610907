"""The simulated pressure manifold: one pipe that the controller, the gauges, the transmitter
and the hand pump all share.

Pressure is gauge pressure in pascal, evaluated lazily from the world's clock (no ticking
thread): the manifold keeps the segment it is in (``hold``, ``control``, ``vent``, ``pump``),
when and where that segment started, and computes p(t) when asked.

- ``control``: the controller slews linearly at ``slew`` Pa/s to the setpoint, overshoots by
  a fraction of the step and settles as a damped sine with time constant ``tau``.  A
  ``hunting`` amplitude (a controller that cannot settle, e.g. a leak it keeps chasing) is
  added on top, so a band narrower than it is never reached.
- ``hold``: control off, the volume is sealed; a ``leak_rate`` (Pa/s) bleeds it toward 0.
- ``vent``: open to atmosphere, exponential decay to 0 with ``vent_tau``.
- ``pump``: the technician's hand pump, a linear ramp to the asked pressure in ``pump_time``
  seconds, then hold.

The manifold remembers the direction of the last movement (+1 rising, −1 falling): a gauge's
hysteresis depends on it.  :class:`GaugeModel` is what every simulated gauge (Modbus, dial,
4–20 mA transmitter) does to the manifold pressure: zero offset, span error, hysteresis,
noise and the rounding to its resolution.

One manifold per world, created on first use by :func:`manifold_for`; creating it also adds the
operator actions ``set_pressure`` (hand pump) and ``set_manifold`` (leak, hunting: fault
injection), and lets ``read`` answer for a dial gauge that has no simulator of its own (the
manifold pressure as a dial of the asked ``resolution`` shows it)::

    {"type": "set_pressure", "pressure": {"value": 500, "unit": "kPa"}}
    {"type": "set_manifold", "hunting": {"value": 2, "unit": "kPa"}, "leak_rate": 0}
    {"type": "read", "instrument": "gauge", "unit": "kPa", "resolution": 1}

Unit factors are the exact definitions (kgf/cm² = 98 066.5 Pa...): simulators use nothing from
benchctl, so no pint here.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .world import ActionError, SimClock, SimWorld

__all__ = [
    "PA_PER_UNIT",
    "GaugeModel",
    "Manifold",
    "from_pa",
    "manifold_for",
    "to_pa",
]

#: Pascal per unit, from the definitions (psi from the avoirdupois pound and g_n; mmHg and
#: mmH2O conventional; inHg at 0 °C conventional).
PA_PER_UNIT: dict[str, float] = {
    "Pa": 1.0,
    "hPa": 100.0,
    "kPa": 1000.0,
    "MPa": 1.0e6,
    "mbar": 100.0,
    "bar": 1.0e5,
    "psi": 6894.757293168361,
    "kgf/cm2": 98066.5,
    "kgf/cm²": 98066.5,
    "kgf/cm**2": 98066.5,
    "at": 98066.5,
    "mmHg": 133.322387415,
    "mmH2O": 9.80665,
    "inHg": 3386.388640341,
    "atm": 101325.0,
}


def _factor(unit: str) -> float:
    try:
        return PA_PER_UNIT[unit]
    except KeyError:
        known = ", ".join(PA_PER_UNIT)
        raise ValueError(f"unknown pressure unit {unit!r}; expected one of {known}") from None


def to_pa(value: float, unit: str) -> float:
    return float(value) * _factor(unit)


def from_pa(value: float, unit: str) -> float:
    return float(value) / _factor(unit)


#: Peak of e^(−x)·sin(πx/2) (at x = 0.639): scales the damped sine so its first swing past the
#: target is the overshoot.
_PEAK = 0.4452


@dataclass(frozen=True)
class _Segment:
    kind: str  # hold | control | vent | pump
    t0: float
    p0: float
    target: float = 0.0
    slew: float = 1.0  # Pa/s (control, pump)
    overshoot: float = 0.0  # Pa, signed: the first swing past the target
    tau: float = 1.0  # s, settling (control) or vent time constant


class Manifold:
    """The shared pipe.  Thread-safe; every time is simulated seconds on ``clock``."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._seg = _Segment("hold", clock.now(), 0.0)
        self._direction = 1
        self._leak = 0.0  # Pa/s while sealed
        self.hunting = 0.0  # Pa amplitude of a controller that cannot settle
        self.hunting_period = 7.0  # s
        self.ripple = 0.0  # Pa amplitude of the pressure ripple while controlling
        self.pump_time = 5.0  # s for the hand pump to reach the asked pressure
        self.vent_tau = 2.0  # s

    @property
    def leak_rate(self) -> float:
        """The leak of the sealed volume, Pa/s; a new rate applies from now on."""
        with self._lock:
            return self._leak

    @leak_rate.setter
    def leak_rate(self, rate: float) -> None:
        with self._lock:
            t = self.clock.now()
            p = self.pressure(t)
            seg = self._seg
            if seg.kind == "hold" or (seg.kind == "pump" and math.isclose(p, seg.target)):
                self._seg = _Segment("hold", t, p, p)
            self._leak = max(0.0, float(rate))

    # -- state ----------------------------------------------------------------------------------
    def pressure(self, t: float | None = None) -> float:
        """Gauge pressure in Pa at simulated time ``t`` (default now)."""
        with self._lock:
            seg = self._seg
            hunting, period, ripple = self.hunting, self.hunting_period, self.ripple
            leak = self._leak
        t = self.clock.now() if t is None else t
        return _evaluate(seg, t, leak) + (
            _wobble(seg, t, hunting, period, ripple) if seg.kind == "control" else 0.0)

    @property
    def mode(self) -> str:
        with self._lock:
            return self._seg.kind

    @property
    def target(self) -> float:
        with self._lock:
            return self._seg.target

    def direction(self) -> int:
        """+1 when the last movement was upward, −1 when downward."""
        with self._lock:
            return self._direction

    def _start(self, kind: str, target: float, **kw: Any) -> _Segment:
        """Begin a segment from the pressure now; the caller holds the lock."""
        t = self.clock.now()
        p = self.pressure(t)
        if abs(target - p) > 1e-9 * max(1.0, abs(target)):
            self._direction = 1 if target > p else -1
        seg = _Segment(kind, t, p, target, **kw)
        self._seg = seg
        return seg

    # -- what changes it ------------------------------------------------------------------------
    def control(self, target_pa: float, *, slew: float, overshoot: float = 0.0,
                tau: float = 1.0) -> None:
        """Controller on (or a new setpoint): slew to ``target_pa`` at ``slew`` Pa/s, overshoot
        by ``overshoot`` × the step, settle with time constant ``tau`` s."""
        if not slew > 0:
            raise ValueError(f"slew must be > 0 Pa/s, got {slew!r}")
        with self._lock:
            p = self.pressure()
            step = target_pa - p
            self._start("control", float(target_pa), slew=float(slew),
                        overshoot=float(overshoot) * step, tau=max(1e-6, float(tau)))

    def hold(self) -> None:
        """Control off: the volume is sealed where it is."""
        with self._lock:
            t = self.clock.now()
            p = self.pressure(t)
            self._seg = _Segment("hold", t, p, p)

    def vent(self) -> None:
        with self._lock:
            self._start("vent", 0.0, tau=self.vent_tau)

    def pump_to(self, target_pa: float) -> None:
        """The hand pump (or its volume adjuster): ramp to ``target_pa``, then hold."""
        with self._lock:
            p = self.pressure()
            rate = max(abs(target_pa - p) / max(self.pump_time, 1e-6), 1e-6)
            self._start("pump", float(target_pa), slew=rate)

    # -- what the controller needs --------------------------------------------------------------
    def settled_since(self, band_pa: float) -> float | None:
        """Simulated time from which the pressure stays within ±``band_pa`` of the setpoint
        for good (noise aside), or None when it never will (not controlling, or hunting wider
        than the band)."""
        with self._lock:
            seg = self._seg
            hunting, ripple = self.hunting, self.ripple
        if seg.kind != "control":
            return None
        margin = band_pa - hunting - ripple
        if margin <= 0:
            return None
        step = abs(seg.target - seg.p0)
        t_end = seg.t0 + step / seg.slew
        amplitude = abs(seg.overshoot) / _PEAK  # the envelope of the damped sine
        if amplitude <= margin:
            return max(seg.t0, t_end - margin / seg.slew)
        return t_end + seg.tau * math.log(amplitude / margin)

    def vented(self, threshold_pa: float) -> bool:
        with self._lock:
            kind = self._seg.kind
        return kind == "vent" and abs(self.pressure()) <= threshold_pa


def _evaluate(seg: _Segment, t: float, leak: float) -> float:
    dt = max(0.0, t - seg.t0)
    if seg.kind == "hold":
        if leak <= 0 or seg.p0 == 0:
            return seg.p0
        return math.copysign(max(0.0, abs(seg.p0) - leak * dt), seg.p0)
    if seg.kind == "vent":
        return seg.p0 * math.exp(-dt / seg.tau)
    step = seg.target - seg.p0
    ramp = abs(step) / seg.slew
    if dt < ramp:
        return seg.p0 + math.copysign(seg.slew * dt, step)
    if seg.kind == "pump":
        after = dt - ramp
        if leak <= 0 or seg.target == 0:
            return seg.target
        return math.copysign(max(0.0, abs(seg.target) - leak * after), seg.target)
    s = dt - ramp
    if seg.overshoot == 0:
        return seg.target
    # A damped sine: continuous at the end of the ramp, first swing past the target by the
    # overshoot, period 4 tau.
    omega = 2.0 * math.pi / (4.0 * seg.tau)
    return seg.target + seg.overshoot * math.exp(-s / seg.tau) * math.sin(omega * s) / _PEAK


def _wobble(seg: _Segment, t: float, hunting: float, period: float, ripple: float) -> float:
    out = 0.0
    if hunting:
        out += hunting * math.sin(2.0 * math.pi * (t - seg.t0) / max(period, 1e-6))
    if ripple:
        out += ripple * math.sin(2.0 * math.pi * t / 1.7)
    return out


class GaugeModel:
    """A gauge on the manifold: what it indicates, in its own unit.

    indication = zero_offset + p·(1 + span_error_pct/100) ∓ hysteresis/2 (− rising,
    + falling, so falling readings are higher by ``hysteresis``), + noise, rounded to
    ``resolution`` (0: no rounding).  All in ``unit``.
    """

    def __init__(self, manifold: Manifold, rng: np.random.Generator, *, unit: str = "kPa",
                 zero_offset: float = 0.0, span_error_pct: float = 0.0,
                 hysteresis: float = 0.0, noise: float = 0.0, resolution: float = 0.0,
                 maximum: float | None = None) -> None:
        _factor(unit)
        if resolution < 0 or noise < 0 or hysteresis < 0:
            raise ValueError("resolution, noise and hysteresis must be >= 0")
        self.manifold = manifold
        self.rng = rng
        self.unit = unit
        self.zero_offset = float(zero_offset)
        self.span_error_pct = float(span_error_pct)
        self.hysteresis = float(hysteresis)
        self.noise = float(noise)
        self.resolution = float(resolution)
        self.maximum = maximum
        self._lock = threading.Lock()

    def true_indication(self, pressure_pa: float | None = None,
                        direction: int | None = None) -> float:
        """What it would show without noise or rounding."""
        p = self.manifold.pressure() if pressure_pa is None else pressure_pa
        d = self.manifold.direction() if direction is None else direction
        value = from_pa(p, self.unit)
        return (self.zero_offset + value * (1.0 + self.span_error_pct / 100.0)
                - d * self.hysteresis / 2.0)

    def injected_error(self, pressure: float, direction: int) -> float:
        """The error the model adds at ``pressure`` (in ``unit``) moving in ``direction``."""
        return (self.zero_offset + pressure * self.span_error_pct / 100.0
                - direction * self.hysteresis / 2.0)

    def indicate(self) -> float:
        value = self.true_indication()
        if self.noise:
            with self._lock:
                value += float(self.rng.normal(0.0, self.noise))
        return self.round(value)

    def round(self, value: float) -> float:
        if self.resolution > 0:
            steps = round(value / self.resolution)
            decimals = max(0, -math.floor(math.log10(self.resolution)) + 1)
            return round(steps * self.resolution, decimals)
        return value

    def operator_read(self) -> dict[str, Any]:
        """What a technician reads off the dial or display (the ``read`` action)."""
        value = self.indicate()
        return {"value": value, "unit": self.unit, "stable": True, "text": f"{value:g}"}


# -- one manifold per world ------------------------------------------------------------------------

_MANIFOLDS: weakref.WeakKeyDictionary[SimWorld, Manifold] = weakref.WeakKeyDictionary()
_MANIFOLDS_LOCK = threading.Lock()


def manifold_for(world: SimWorld) -> Manifold:
    """The world's manifold, created (with its operator actions) on first use."""
    with _MANIFOLDS_LOCK:
        manifold = _MANIFOLDS.get(world)
        if manifold is None:
            manifold = Manifold(world.clock)
            _MANIFOLDS[world] = manifold
            _install_actions(world, manifold)
        return manifold


def _quantity(action: Mapping[str, Any], key: str, default_unit: str = "kPa") -> float:
    """``{"value": 500, "unit": "kPa"}`` or a bare number in ``default_unit`` -> Pa."""
    q = action.get(key)
    if isinstance(q, int | float) and not isinstance(q, bool):
        return to_pa(float(q), default_unit)
    if not isinstance(q, Mapping):
        raise ActionError(f"{key!r} must be an object like {{\"value\": 500, \"unit\": \"kPa\"}}")
    value = q.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ActionError(f"{key}.value must be a number, got {value!r}")
    unit = q.get("unit", default_unit)
    if not isinstance(unit, str) or unit not in PA_PER_UNIT:
        raise ActionError(f"{key}.unit {unit!r} is not a pressure unit "
                          f"({', '.join(PA_PER_UNIT)})")
    return to_pa(float(value), unit)


def _install_actions(world: SimWorld, manifold: Manifold) -> None:
    builtin_read = world._read  # the world's own read, for instruments it knows

    def set_pressure(action: Mapping[str, Any]) -> dict[str, Any]:
        target = _quantity(action, "pressure")
        manifold.pump_to(target)
        return {"ok": True, "pressure": {"value": from_pa(target, "kPa"), "unit": "kPa"}}

    def set_manifold(action: Mapping[str, Any]) -> dict[str, Any]:
        changed: dict[str, Any] = {}
        if "hunting" in action:
            manifold.hunting = abs(_quantity(action, "hunting"))
            changed["hunting_kPa"] = from_pa(manifold.hunting, "kPa")
        if "leak_rate" in action:  # kPa/s, or {"value", "unit"} per second
            manifold.leak_rate = abs(_quantity(action, "leak_rate"))
            changed["leak_rate_kPa_per_s"] = from_pa(manifold.leak_rate, "kPa")
        if "ripple" in action:
            manifold.ripple = abs(_quantity(action, "ripple"))
            changed["ripple_kPa"] = from_pa(manifold.ripple, "kPa")
        if not changed:
            raise ActionError("set_manifold needs hunting, leak_rate or ripple")
        return {"ok": True, **changed}

    def read(action: Mapping[str, Any]) -> dict[str, Any]:
        name = action.get("instrument")
        if isinstance(name, str) and name not in world.names():
            unit = action.get("unit", "kPa")
            if isinstance(unit, str) and unit in PA_PER_UNIT:
                # A dial gauge with no simulator of its own: a perfect dial of the asked
                # resolution on the manifold.
                resolution = action.get("resolution", 0.0)
                if isinstance(resolution, bool) or not isinstance(resolution, int | float) \
                        or resolution < 0:
                    raise ActionError(f"'resolution' must be a number >= 0, got {resolution!r}")
                dial = GaugeModel(manifold, world.rng_for(name), unit=unit,
                                  resolution=float(resolution))
                return {"ok": True, "instrument": name, **dial.operator_read()}
        return builtin_read(action)

    world.register_action("set_pressure", set_pressure)
    world.register_action("set_manifold", set_manifold)
    world.register_action("read", read)

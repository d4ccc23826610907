"""Physics of a simulated non-automatic weighing instrument (a balance).

The model, evaluated lazily at the clock's current time ``t``::

    L           = Σ m_i                       total mass on the pan (in ``unit``)
    signal(t)   = L + linearity(L) + Σ ecc(pos_i) · m_i / ecc_load + zero_offset + r
                  + transient(t) + drift(t) + noise
    gross(t)    = signal(t) − zero
    indication  = round_d(gross(t) − tare)

that is, for one load at one position on a zeroed, tare-free pan::

    indication = round_d(Σ masses + linearity(L) + ecc(pos)·L/ecc_load + drift(t) + noise
                         − zero − tare)

- ``linearity(L)``: piecewise-linear interpolation of the (load, error) points given, through an
  implicit (0, 0); 0 for L ≤ 0; the last point's error is held above the last point.
- ``ecc(pos)``: the error at ``ecc_load`` for each pan position (centre, front_left, back_left,
  back_right, front_right), scaled in proportion to the mass at that position.
- ``zero_offset``: the empty-pan signal relative to the power-up zero reference (what an
  un-zeroed balance shows with nothing on it); ``Z`` removes it.
- ``r``: a random offset N(0, ``repeatability``) drawn at every loading (the spread of repeated
  loadings); 0 by default.
- ``transient(t)``: after every change of load the signal moves from where it was to the new
  value exponentially with time constant ``tau`` (default ``settle_time / 5``); once at least
  ``settle_time`` has passed and what is left is within ``stability_band``, the balance's
  filter locks on and the term is exactly 0 (a stable reading shows the settled value).
- ``drift(t) = drift_per_hour · t / 3600``, t in simulated seconds since the balance was made.
- ``noise``: N(0, ``noise``) drawn at every reading.
- ``round_d``: round half away from zero to a whole number of ``d`` (done in integer counts).

States: overload when round_d(gross) > Max + 9 e; underload when round_d(gross) < −20 e
(``underload_e``). Stability: stable when at least ``settle_time`` has passed since the last
change and the detector's view of motion, ``|transient(t)| + 2·noise + |drift per second|``,
is within ``stability_band`` (default d/2); so a noise above about band/2 never settles.

Zero-setting (``Z``/``ZI``) takes the current signal as the new zero when it is within
±``zero_range_pct`` % of Max (default 2 %, OIML R76) of the power-up zero; outside, it is
refused with ``"+"`` or ``"-"``. Zeroing clears the tare. A power cycle clears the tare and sets
the power-up zero when the signal is within ±``initial_zero_range_pct`` % (default 10 %) of the
sensor's zero.

``injected_error(load, position)`` gives the error the physics adds to ``load`` before rounding,
without noise or the random loading offset, evaluated now (including the zero error that has
built up since the last zeroing), so an end-to-end test can compare a computed error with it.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from .world import MASS_UNITS, SimClock, convert_mass

__all__ = ["POSITIONS", "BalanceDisplay", "SimBalance", "format_counts", "round_half_away"]

POSITIONS: tuple[str, ...] = ("centre", "front_left", "back_left", "back_right", "front_right")


def round_half_away(x: float) -> int:
    """Round to the nearest integer, halves away from zero, tolerant of binary representation
    (2.4999999999999996 counts as 2.5)."""
    n = math.floor(abs(x) + 0.5 + 1e-9)
    return -n if x < 0 else n


def decimals_of(step: float) -> int:
    """Number of decimals of a resolution step such as 0.01 (2) or 5 (0)."""
    exponent = Decimal(str(step)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def format_counts(counts: int, step: float, extra_decimals: int = 0) -> str:
    """``counts`` × ``step`` as a fixed-point string with the decimals of ``step`` (plus
    ``extra_decimals``), exact (no float rounding): ``format_counts(-1234, 0.01) == "-12.34"``."""
    decimals = decimals_of(step) + extra_decimals
    value = (Decimal(counts) * Decimal(str(step))).quantize(Decimal(1).scaleb(-decimals))
    text = f"{value:f}"
    return text[1:] if text.startswith("-") and counts == 0 else text


@dataclass(frozen=True)
class BalanceDisplay:
    """What the balance shows at one instant."""

    counts: int  # net indication in whole d
    value: float  # counts × d
    text: str  # the value with the decimals of d, e.g. "100.00" or "-12.34"
    unit: str
    stable: bool
    state: str  # "ok" | "overload" | "underload"


def _number(name: str, value: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonneg and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


class SimBalance:
    """A simulated balance; see the module docstring for the error model. Thread-safe."""

    def __init__(
        self,
        clock: SimClock,
        rng: np.random.Generator | random.Random | None = None,
        *,
        max: float,
        d: float,
        unit: str = "g",
        e: float | None = None,
        settle_time: float = 2.0,
        tau: float | None = None,
        noise: float = 0.0,
        repeatability: float = 0.0,
        drift_per_hour: float = 0.0,
        eccentricity: Mapping[str, float] | None = None,
        ecc_load: float | None = None,
        linearity: Sequence[Sequence[float]] | None = None,
        zero_offset: float = 0.0,
        stability_band: float | None = None,
        zero_range_pct: float = 2.0,
        initial_zero_range_pct: float = 10.0,
        underload_e: float = 20.0,
    ) -> None:
        self.clock = clock
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self.max = _number("max", max, positive=True)
        self.d = _number("d", d, positive=True)
        if unit not in MASS_UNITS:
            raise ValueError(f"unit must be one of {', '.join(MASS_UNITS)}, got {unit!r}")
        self.unit = unit
        self.e = self.d if e is None else _number("e", e, positive=True)
        if self.e < self.d * (1 - 1e-9):
            raise ValueError(f"e ({self.e}) must be >= d ({self.d})")
        self.settle_time = _number("settle_time", settle_time, nonneg=True)
        self.tau = self.settle_time / 5 if tau is None else _number("tau", tau, nonneg=True)
        self.noise = _number("noise", noise, nonneg=True)
        self.repeatability = _number("repeatability", repeatability, nonneg=True)
        self.drift_per_hour = _number("drift_per_hour", drift_per_hour)
        self.eccentricity: dict[str, float] = {}
        for pos, err in dict(eccentricity or {}).items():
            if pos not in POSITIONS:
                raise ValueError(f"eccentricity position {pos!r} unknown; "
                                 f"expected {', '.join(POSITIONS)}")
            self.eccentricity[pos] = _number(f"eccentricity.{pos}", err)
        self.ecc_load = self.max / 3 if ecc_load is None else _number(
            "ecc_load", ecc_load, positive=True)
        points: list[tuple[float, float]] = []
        for i, point in enumerate(linearity or []):
            if isinstance(point, str | bytes) or len(point) != 2:
                raise ValueError(f"linearity[{i}] must be a pair (load, error), got {point!r}")
            points.append((_number(f"linearity[{i}] load", point[0], nonneg=True),
                           _number(f"linearity[{i}] error", point[1])))
        points.sort()
        if not points or points[0][0] > 0:
            points.insert(0, (0.0, 0.0))
        self.linearity_points = points
        self.zero_offset = _number("zero_offset", zero_offset)
        self.stability_band = self.d / 2 if stability_band is None else _number(
            "stability_band", stability_band, positive=True)
        self.zero_range_pct = _number("zero_range_pct", zero_range_pct, nonneg=True)
        self.initial_zero_range_pct = _number(
            "initial_zero_range_pct", initial_zero_range_pct, nonneg=True)
        self.underload_e = _number("underload_e", underload_e, nonneg=True)

        self.decimals = decimals_of(self.d)
        self._overload_counts = round_half_away((self.max + 9 * self.e) / self.d)
        self._underload_counts = round_half_away(self.underload_e * self.e / self.d)
        self._lock = threading.RLock()
        self._t_created = clock.now()
        self._loads: list[tuple[float, str]] = []
        self._offset = 0.0  # random loading offset r
        self._target = self._settled_signal()
        self._start = self._target
        self._t_change = self._t_created - 1e9  # settled long ago
        self.zero = 0.0
        self.powerup_zero = 0.0
        self.tare = 0.0
        self.message: str | None = None  # text written to the display (MT-SICS D)

    # -- model pieces -------------------------------------------------------------------------
    def linearity(self, load: float) -> float:
        """The linearity error at total load ``load`` (in ``unit``)."""
        if load <= 0:
            return 0.0
        xs = [p[0] for p in self.linearity_points]
        ys = [p[1] for p in self.linearity_points]
        return float(np.interp(load, xs, ys))

    def eccentricity_error(self, mass: float, position: str) -> float:
        return self.eccentricity.get(position, 0.0) * mass / self.ecc_load

    def drift(self, t: float) -> float:
        return self.drift_per_hour * (t - self._t_created) / 3600.0

    def _gauss(self, sigma: float) -> float:
        if sigma <= 0:
            return 0.0
        if isinstance(self._rng, random.Random):
            return self._rng.gauss(0.0, sigma)
        return float(self._rng.normal(0.0, sigma))

    def _settled_signal(self) -> float:
        total = sum(m for m, _ in self._loads)
        ecc = sum(self.eccentricity_error(m, p) for m, p in self._loads)
        return total + self.linearity(total) + ecc + self.zero_offset + self._offset

    def _transient(self, t: float) -> float:
        """What is left of the approach to the new value; exactly 0 once settled (at least
        ``settle_time`` and within the stability band: the filter locks on the final value)."""
        dt = t - self._t_change
        if self.tau <= 0 or dt / self.tau > 700:
            return 0.0
        left = (self._start - self._target) * math.exp(-dt / self.tau)
        if dt >= self.settle_time and abs(left) <= self.stability_band:
            return 0.0
        return left

    def _signal(self, t: float) -> float:
        """Noise-free signal at time t."""
        return self._target + self._transient(t) + self.drift(t)

    def _stable(self, t: float) -> bool:
        if t - self._t_change < self.settle_time:
            return False
        motion = abs(self._transient(t)) + 2 * self.noise + abs(self.drift_per_hour) / 3600.0
        return motion <= self.stability_band * (1 + 1e-9)

    def _changed(self) -> None:
        t = self.clock.now()
        self._start = self._target + self._transient(t)
        self._offset = self._gauss(self.repeatability)
        self._target = self._settled_signal()
        self._t_change = t

    def _counts(self, x: float) -> int:
        return round_half_away(x / self.d)

    # -- loads --------------------------------------------------------------------------------
    def place_load(self, mass: float, position: str = "centre", unit: str | None = None) -> None:
        """Put ``mass`` (in ``unit``, default the balance's) on the pan at ``position``."""
        if position not in POSITIONS:
            raise ValueError(f"position {position!r} unknown; expected {', '.join(POSITIONS)}")
        value = convert_mass(_number("mass", mass), unit or self.unit, self.unit)
        with self._lock:
            self._loads.append((value, position))
            self._changed()

    def remove_load(self, mass: float | None = None, position: str | None = None,
                    unit: str | None = None) -> int:
        """Take loads off: all of them (no ``mass``), or the first one of ``mass`` (at
        ``position`` if given). Returns how many were removed."""
        with self._lock:
            if mass is None:
                removed = len(self._loads)
                self._loads.clear()
            else:
                value = convert_mass(_number("mass", mass), unit or self.unit, self.unit)
                removed = 0
                for i, (m, p) in enumerate(self._loads):
                    if math.isclose(m, value, rel_tol=1e-9, abs_tol=1e-12) and (
                            position is None or p == position):
                        del self._loads[i]
                        removed = 1
                        break
            if removed:
                self._changed()
            return removed

    @property
    def loads(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self._loads)

    # -- reading ------------------------------------------------------------------------------
    def reading(self) -> BalanceDisplay:
        """The display now (one fresh noise draw)."""
        with self._lock:
            t = self.clock.now()
            sample = self._signal(t) + self._gauss(self.noise)
            gross = sample - self.zero
            gross_counts = self._counts(gross)
            if gross_counts > self._overload_counts:
                state = "overload"
            elif gross_counts < -self._underload_counts:
                state = "underload"
            else:
                state = "ok"
            counts = self._counts(gross - self.tare)
            return BalanceDisplay(
                counts=counts,
                value=float(Decimal(counts) * Decimal(str(self.d))),
                text=format_counts(counts, self.d),
                unit=self.unit,
                stable=self._stable(t),
                state=state,
            )

    def display(self) -> tuple[float, bool, str]:
        """(value, stable, state) shown now; state is "ok", "overload" or "underload"."""
        r = self.reading()
        return r.value, r.stable, r.state

    def is_stable(self) -> bool:
        with self._lock:
            return self._stable(self.clock.now())

    def operator_read(self) -> dict[str, Any]:
        """What a technician reads off the display (the ``read`` action)."""
        r = self.reading()
        if r.state != "ok":
            text = "OL" if r.state == "overload" else "-OL"
            return {"value": None, "unit": r.unit, "stable": r.stable, "state": r.state,
                    "text": text}
        return {"value": r.value, "unit": r.unit, "stable": r.stable, "state": r.state,
                "text": r.text}

    def injected_error(self, load: float, position: str = "centre") -> float:
        """The error the physics adds to ``load`` alone at ``position`` before rounding, no
        noise: linearity + eccentricity + the zero error accumulated now (zero_offset + drift
        − zero). Tare is not included (it cancels against the tared mass)."""
        if position not in POSITIONS:
            raise ValueError(f"position {position!r} unknown; expected {', '.join(POSITIONS)}")
        with self._lock:
            t = self.clock.now()
            zero_error = self.zero_offset + self.drift(t) - self.zero
            return self.linearity(load) + self.eccentricity_error(load, position) + zero_error

    # -- zero and tare ------------------------------------------------------------------------
    def zero_now(self) -> str:
        """Set zero to the current signal: "ok", or "+"/"-" when outside the zero-setting
        range (±zero_range_pct % of Max around the power-up zero). Clears the tare."""
        with self._lock:
            sample = self._signal(self.clock.now()) + self._gauss(self.noise)
            limit = self.zero_range_pct / 100.0 * self.max
            if sample - self.powerup_zero > limit:
                return "+"
            if sample - self.powerup_zero < -limit:
                return "-"
            self.zero = sample
            self.tare = 0.0
            return "ok"

    def tare_now(self) -> tuple[str, int]:
        """Tare the current gross: ("ok", tare counts), or ("+"/"-", 0) when the gross is above
        Max or below zero."""
        with self._lock:
            sample = self._signal(self.clock.now()) + self._gauss(self.noise)
            gross = sample - self.zero
            counts = self._counts(gross)
            if gross > self.max or counts > self._overload_counts:
                return "+", 0
            if counts < 0:
                return "-", 0
            self.tare = gross
            return "ok", counts

    def set_preset_tare(self, value: float) -> None:
        """A preset tare (MT-SICS ``TA value unit``), 0 ≤ value ≤ Max, in ``unit``."""
        value = _number("tare", value)
        if not 0 <= value <= self.max:
            raise ValueError(f"preset tare {value} outside 0 … {self.max} {self.unit}")
        with self._lock:
            self.tare = value

    def clear_tare(self) -> None:
        with self._lock:
            self.tare = 0.0

    @property
    def tare_counts(self) -> int:
        with self._lock:
            return self._counts(self.tare)

    def reset(self) -> None:
        """Interface reset (MT-SICS ``@``): tare and display text cleared, zero kept."""
        with self._lock:
            self.tare = 0.0
            self.message = None

    def power_cycle(self) -> None:
        """Switch off and on: tare and text cleared; initial zero-setting when the signal is
        within ±initial_zero_range_pct % of Max of the sensor zero."""
        with self._lock:
            self.tare = 0.0
            self.message = None
            signal = self._signal(self.clock.now())
            if abs(signal) <= self.initial_zero_range_pct / 100.0 * self.max:
                self.zero = signal
                self.powerup_zero = signal

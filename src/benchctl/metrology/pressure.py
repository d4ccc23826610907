"""Pressure gauges: EN 837-1 MPE, legal profiles, DKD-R 6-1 sequences, evaluation, budget.

Pure functions, no I/O (METROLOGY.md §2).  Sources and models:

- **MPE [src]**: EN 837-1 Table 11: the accuracy class is the MPE in % of the span, over the
  whole scale, rising and falling (0–10 bar class 1.6 → ±0.16 bar).  The legal in-service
  profile is data, not code (:data:`PROFILES`): the worked example of METROLOGY.md (German
  Eichordnung: 0.15, 0.4, 0.9, 1.5, 2.4, 3.8, 6.0 %).  ĐLVN 08:2011 verification uses the
  class (the ``en837`` profile) for spring gauges of accuracy 1 % … 6 %.
- **Sequences [model, after DKD-R 6-1:2014 and EURAMET cg-17]** (:data:`SEQUENCES`): A, B, C
  with their points, preloads and series; hold times are parameters (30 s at each point,
  2 min at the top by default).  Sequence from the class when not given
  (:func:`sequence_for_class`, [model]): class 0.1 → A, 0.25 and 0.6 → B, 1 and coarser → C
  (the expected U in % of span is taken as about a third of the class).
- **Per point [model]**: mean indication; zero deviation f0 = |zero after − zero before|;
  repeatability b′ = |up2 − up1| (A and B); hysteresis h = |mean(down) − mean(up)|.
- **Budget [model]** (:func:`error_budget`): reference standard U_ref/k_ref (normal) and its
  stated drift ±D (rectangular, u = D/√3); resolution r, f0, b′ and h as rectangular
  distributions of full width X (u = X/(2√3)); all ν = ∞, so k = 2 (through
  :func:`benchctl.metrology.gum.combine`).
- **Head correction [src: hydrostatics]**: Δp = ρ g Δh, Δh = height of the reference's
  reference level minus the DUT's (positive when the reference is higher: the DUT then sees
  more pressure than the reference shows).
- **Decision**: :mod:`benchctl.metrology.decision` (simple, or guarded w = U: the MSL TG 13
  example, class 1 span 4 000 kPa → MPE 40 kPa, U 25 kPa → conformity only for |E| ≤ 15 kPa).

Units go through :func:`benchctl.metrology.units.convert` (pint), never local factors.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from benchctl.errors import DutParameterError
from benchctl.metrology import decision, gum
from benchctl.metrology.units import UnitError, convert

__all__ = [
    "CLASSES",
    "MODEL",
    "PRESSURE_UNITS",
    "PROFILES",
    "SEQUENCES",
    "STANDARD_GRAVITY",
    "PressureSequence",
    "acceptance_limit",
    "budget_components",
    "check_class",
    "check_pressure_unit",
    "error_budget",
    "head_correction",
    "hysteresis",
    "mean",
    "mpe",
    "mpe_percent",
    "point_count",
    "points",
    "repeatability",
    "sequence_for_class",
    "span",
    "to_unit",
    "zero_deviation",
]

#: One line for the certificate: the model behind the numbers.
MODEL: Final = (
    "Pressure gauge calibration after DKD-R 6-1:2014 / EURAMET cg-17 (benchctl model): "
    "E = mean indication − reference; u² = (U_ref/k)² + (D/√3)² + Σ (X/(2√3))² for "
    "X = resolution, zero deviation f0, repeatability b′, hysteresis h; ν = ∞, k = 2. "
    "MPE per EN 837-1 (class % of span)."
)

#: EN 837-1 Table 11 accuracy classes (MPE in % of span).
CLASSES: Final = (0.1, 0.25, 0.6, 1.0, 1.6, 2.5, 4.0)

#: MPE in % of span per class, by profile.  ``en837``: EN 837-1 (and ĐLVN 08 verification);
#: ``in_service``: the legal in-service example of METROLOGY.md §2.1 (German Eichordnung).
PROFILES: Final[dict[str, dict[float, float]]] = {
    "en837": {c: c for c in CLASSES},
    "in_service": {0.1: 0.15, 0.25: 0.4, 0.6: 0.9, 1.0: 1.5, 1.6: 2.4, 2.5: 3.8, 4.0: 6.0},
}

#: Units a pressure gauge may be read in (METROLOGY.md §2.3); pint spellings.
PRESSURE_UNITS: Final = ("Pa", "kPa", "MPa", "bar", "mbar", "psi", "kgf/cm²", "mmHg", "mmH2O",
                         "atm", "inHg")

#: g_n, m/s² (CGPM 1901), the default for the head correction.
STANDARD_GRAVITY: Final = 9.80665

_SQRT3: Final = math.sqrt(3.0)


@dataclass(frozen=True)
class PressureSequence:
    """A calibration sequence of METROLOGY.md §2.2: points (including zero, for classes ≥ 1
    in sequence C), preloads to the maximum, and the series in order."""

    name: str
    points: int
    preloads: int
    series: tuple[str, ...]
    expected_U: str

    @property
    def has_repeatability(self) -> bool:
        """b′ needs two rising series (sequences A and B)."""
        return self.series.count("up") >= 2


SEQUENCES: Final[dict[str, PressureSequence]] = {
    "A": PressureSequence("A", 9, 3, ("up", "down", "up", "down"), "< 0.1 % of span"),
    "B": PressureSequence("B", 9, 2, ("up", "down", "up"), "0.1 … 0.6 % of span"),
    "C": PressureSequence("C", 5, 1, ("up", "down"), "> 0.6 % of span"),
}


def check_class(accuracy_class: float | str) -> float:
    """The EN 837-1 class as a number, or DutParameterError listing the classes."""
    try:
        value = float(accuracy_class)
    except (TypeError, ValueError):
        value = math.nan
    for c in CLASSES:
        if math.isclose(value, c, rel_tol=1e-9):
            return c
    raise DutParameterError(
        f"accuracy class {accuracy_class!r} is not an EN 837-1 class; expected one of "
        f"{', '.join(f'{c:g}' for c in CLASSES)}")


def span(range_low: float, range_high: float) -> float:
    """The span of the scale (EN 837-1: the MPE is a percentage of it)."""
    if not (math.isfinite(range_low) and math.isfinite(range_high)) or range_high <= range_low:
        raise DutParameterError(
            f"range [{range_low:g}, {range_high:g}] is empty: the high end must be above the "
            "low end")
    return range_high - range_low


def mpe_percent(accuracy_class: float | str, profile: str = "en837") -> float:
    """MPE in % of span for the class under ``profile`` (``en837`` or ``in_service``)."""
    c = check_class(accuracy_class)
    try:
        table = PROFILES[profile]
    except KeyError:
        raise DutParameterError(f"unknown MPE profile {profile!r}; expected "
                                f"{' or '.join(PROFILES)}") from None
    return table[c]


def mpe(range_low: float, range_high: float, accuracy_class: float | str,
        profile: str = "en837") -> float:
    """±MPE in the range's unit, the same at every point, rising and falling (EN 837-1)."""
    return span(range_low, range_high) * mpe_percent(accuracy_class, profile) / 100.0


def sequence_for_class(accuracy_class: float | str) -> PressureSequence:
    """[model] The sequence for a class when the job does not name one: 0.1 → A,
    0.25 and 0.6 → B, 1 and coarser → C."""
    c = check_class(accuracy_class)
    if c < 0.25:
        return SEQUENCES["A"]
    if c <= 0.6:
        return SEQUENCES["B"]
    return SEQUENCES["C"]


def point_count(sequence: PressureSequence | str, accuracy_class: float | str) -> int:
    """Points including zero: 9 for A and B; for C 5 (classes ≥ 1) or 10 (classes ≤ 0.6:
    EN 837 asks at least 10, so 9 + zero)."""
    seq = SEQUENCES[sequence] if isinstance(sequence, str) else sequence
    if seq.name == "C" and check_class(accuracy_class) < 1.0:
        return 10
    return seq.points


def points(range_low: float, range_high: float, count: int) -> list[float]:
    """``count`` points evenly spread from the low end (zero) to the top, inclusive.

    Values are rounded to 12 significant digits so that 0.1 × 3 prints as 0.3."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise DutParameterError(f"a calibration needs at least 2 points, got {count!r}")
    full = span(range_low, range_high)
    return [float(f"{range_low + full * i / (count - 1):.12g}") for i in range(count)]


def mean(values: Iterable[float]) -> float:
    vs = list(values)
    if not vs:
        raise ValueError("no values to average")
    return statistics.fmean(vs)


def zero_deviation(zero_before: float, zero_after: float) -> float:
    """f0 = |zero after − zero before|."""
    return abs(zero_after - zero_before)


def repeatability(up1: float, up2: float) -> float:
    """b′ = |up2 − up1| (same point, the first two rising series)."""
    return abs(up2 - up1)


def hysteresis(ups: Sequence[float], downs: Sequence[float]) -> float:
    """h = |mean(down) − mean(up)| at one point (0 when either side is missing)."""
    if not ups or not downs:
        return 0.0
    return abs(mean(downs) - mean(ups))


def head_correction(density: float, delta_h: float, g: float = STANDARD_GRAVITY) -> float:
    """Δp = ρ g Δh in Pa (ρ in kg/m³, Δh in m, g in m/s²).  Δh is the height of the reference
    level minus the DUT's: positive → the DUT sees more pressure than the reference shows."""
    for name, x in (("density", density), ("delta_h", delta_h), ("g", g)):
        if not math.isfinite(x):
            raise DutParameterError(f"{name} must be a finite number, got {x!r}")
    if density < 0 or g <= 0:
        raise DutParameterError(f"density must be ≥ 0 and g > 0, got {density!r}, {g!r}")
    return density * g * delta_h


def to_unit(value: float, from_unit: str, to_unit: str) -> float:
    """A pressure in another unit (pint); a non-pressure unit is refused."""
    check_pressure_unit(from_unit)
    check_pressure_unit(to_unit)
    return convert(value, from_unit, to_unit)


def check_pressure_unit(unit: str) -> str:
    """``unit`` if pint reads it as a pressure, else DutParameterError naming it."""
    try:
        convert(1.0, unit, "Pa")
    except UnitError as exc:
        raise DutParameterError(f"{unit!r} is not a pressure unit ({exc})") from None
    return unit


def budget_components(*, U_ref: float, k_ref: float, resolution: float,
                      zero_dev: float = 0.0, repeat: float = 0.0, hyst: float = 0.0,
                      drift: float = 0.0) -> list[gum.Component]:
    """The components of METROLOGY.md §2.2, in the model's order (for the budget table)."""
    for name, x in (("U_ref", U_ref), ("resolution", resolution), ("f0", zero_dev),
                    ("b′", repeat), ("h", hyst), ("drift", drift)):
        if not (math.isfinite(x) and x >= 0):
            raise DutParameterError(f"{name} must be a finite number ≥ 0, got {x!r}")
    if not (math.isfinite(k_ref) and k_ref > 0):
        raise DutParameterError(f"k of the reference certificate must be > 0, got {k_ref!r}")

    def full_width(x: float) -> float:
        return x / (2.0 * _SQRT3)

    return [
        gum.Component("reference standard", U_ref / k_ref, distribution="normal"),
        gum.Component("reference drift", drift / _SQRT3, distribution="rectangular"),
        gum.Component("resolution", full_width(resolution), distribution="rectangular"),
        gum.Component("zero deviation", full_width(zero_dev), distribution="rectangular"),
        gum.Component("repeatability", full_width(repeat), distribution="rectangular"),
        gum.Component("hysteresis", full_width(hyst), distribution="rectangular"),
    ]


def error_budget(*, U_ref: float, k_ref: float, resolution: float, zero_dev: float = 0.0,
                 repeat: float = 0.0, hyst: float = 0.0, drift: float = 0.0
                 ) -> gum.BudgetResult:
    """u, ν_eff (∞), k (2) and U of the error at one point; every input in the DUT's unit."""
    return gum.combine(budget_components(U_ref=U_ref, k_ref=k_ref, resolution=resolution,
                                         zero_dev=zero_dev, repeat=repeat, hyst=hyst,
                                         drift=drift))


def acceptance_limit(tolerance: float, U: float, rule: str | decision.DecisionRule) -> float:
    """The largest |E| that is a pass: TL (simple) or TL − U (guarded, may be ≤ 0: no pass)."""
    r = decision.parse_rule(rule)
    return tolerance if r is decision.DecisionRule.SIMPLE else tolerance - U

"""Fuel dispensers: MPE (OIML R117-1 / MID MI-005, ĐLVN 10), errors, corrections, checks.

Pure functions of numbers, as modelled in benchctl's METROLOGY.md §3:

- MPE for quantities ≥ 2 L is ``A`` % of the quantity, A the profile's percentage (OIML
  R117-1 / MID MI-005 class 0.5 measuring system: 0.5 %; ĐLVN 10:2013: 0.3 %) [src].
- Below 2 L the MID MI-005 Table 3 steps apply [src]: V < 0.1 L → 4 A % applied to 0.1 L;
  0.1 ≤ V < 0.2 L → 4 A %; 0.2 ≤ V < 0.4 L → 2 A % applied to 0.4 L; 0.4 ≤ V < 1 L → 2 A %;
  1 ≤ V < 2 L → A % applied to 2 L.
- E_min [src]: MMQ ≥ 2 L → 2 · MMQ · A/100 (2 L → 20 mL, 5 L → 50 mL at A = 0.5);
  MMQ < 2 L → 2 × the Table 3 value at the MMQ. The MPE that applies is the larger of the
  two. Condition 1: E_min ≥ 2 R, R the volume display interval (a DUT check).
- The ĐLVN 10 profile [model: ĐLVN 10 sets ±0.3 %; how it treats quantities below 2 L and
  E_min was not available to us]: the MPE is 0.3 % (and the Table 3 steps with A = 0.3 %
  below 2 L), while E_min keeps the dispenser's accuracy class 0.5 (2 · MMQ · 0.5 %), since
  E_min and condition 1 come from the class (with A = 0.3 the common MMQ 2 L with a 0.01 L
  display would break condition 1). Profiles are data (:data:`PROFILES`): a lab whose
  procedure differs adds or edits one entry, the code does not change.
- E = 100 (V_dispenser − V_ref) / V_ref (%); Q = V · 60 / t (L/min) [model].
- Proving measure: V_ref = V_read [1 + γ (t_measure − t_ref)] with γ the cubical expansion of
  its material and t_ref its reference temperature (20 °C unless its certificate says
  otherwise) [model]. V_read is the certified volume to the nominal mark plus the neck-scale
  reading.
- Fuel expansion: a volume of fuel measured at t_from occupies V [1 + β (t_to − t_from)] at
  t_to, β per product (:data:`PRODUCTS`, overridable per DUT and per job) [model].
- Master meter (Coriolis): V_ref = mass / density at line conditions, corrected for the
  meter's certified error e (%): V_ref = V_meter / (1 + e/100) [model].
- Repeatability: max − min of the errors at one rate ≤ 0.4 × MPE (the factor a parameter).
- Price: P = V × unit price; the check records the indicated amount minus that product.

Uncertainty of one delivery's error is a GUM budget (:func:`delivery_budget`) of relative
components in %, combined by :func:`benchctl.metrology.gum.combine`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DutParameterError

if TYPE_CHECKING:
    from .gum import BudgetResult

__all__ = [
    "MATERIALS",
    "PRODUCTS",
    "PROFILES",
    "SMALL_VOLUME_LIMIT_L",
    "DeliveryUncertainty",
    "Profile",
    "check_display_interval",
    "delivery_budget",
    "emin",
    "error_pct",
    "flow_rate",
    "fuel_expansion",
    "master_meter_volume",
    "mpe_pct",
    "mpe_volume",
    "price",
    "price_error",
    "product_beta",
    "profile",
    "proving_measure_volume",
    "reference_volume_proving",
    "repeatability",
    "table_mpe",
]

#: Quantities below this are "small" and use the MID MI-005 Table 3 steps (litres).
SMALL_VOLUME_LIMIT_L = 2.0


@dataclass(frozen=True)
class Profile:
    """A legal profile: the MPE percentage and the rules built on it."""

    name: str
    title: str
    document: str
    mpe_pct: float
    """A: the MPE in % for quantities ≥ 2 L (R117 line A, measuring systems)."""
    emin_pct: float
    """The A used in E_min = 2 · MMQ · A/100 (and for the Table 3 value at an MMQ < 2 L)."""
    repeatability_factor: float = 0.4
    """Repeatability limit as a fraction of the MPE (METROLOGY.md §3.2)."""


PROFILES: dict[str, Profile] = {
    "oiml": Profile(
        name="oiml",
        title="OIML R117-1 class 0.5 (measuring system)",
        document="OIML R117-1:2007 / EU MID MI-005, accuracy class 0.5",
        mpe_pct=0.5,
        emin_pct=0.5,
    ),
    "dlvn": Profile(
        name="dlvn",
        title="ĐLVN 10:2013 (±0.3 %)",
        document="ĐLVN 10:2013 (Decision 2503/QĐ-TĐC): ±0.3 %; R117 Table 3 below 2 L with "
                 "A = 0.3 % and E_min of accuracy class 0.5 [model]",
        mpe_pct=0.3,
        emin_pct=0.5,
    ),
}

#: Cubical expansion coefficient β of fuels near 15 … 35 °C, per °C [model: typical values
#: from the petroleum measurement tables' order of magnitude; a DUT file's ``beta`` or the
#: job's ``beta`` parameter overrides them]. Keys are lower case.
PRODUCTS: dict[str, float] = {
    "ron95": 1.20e-3,
    "ron92": 1.20e-3,
    "e5": 1.20e-3,
    "e5 ron92": 1.20e-3,
    "gasoline": 1.20e-3,
    "diesel": 8.3e-4,
    "do": 8.3e-4,
    "kerosene": 9.0e-4,
}


def profile(name: str) -> Profile:
    """The profile called ``name`` (``oiml`` or ``dlvn``), or a clear error."""
    try:
        return PROFILES[name]
    except KeyError:
        raise DutParameterError(
            f"unknown MPE profile {name!r}; expected one of {', '.join(PROFILES)}"
        ) from None


def product_beta(product: str) -> float:
    """β of a product by name (case-insensitive), or a clear error naming the known ones."""
    try:
        return PRODUCTS[product.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(PRODUCTS))
        raise DutParameterError(
            f"no expansion coefficient β known for product {product!r} (known: {known}); "
            "give beta = ... in the DUT file or --param beta=..."
        ) from None


def _positive(name: str, x: float) -> float:
    if not (math.isfinite(x) and x > 0):
        raise DutParameterError(f"{name} must be a positive number, got {x!r}")
    return float(x)


def table_mpe(volume_l: float, a_pct: float) -> float:
    """The MPE in litres from R117 line A (``a_pct``) and, below 2 L, MID MI-005 Table 3."""
    v = _positive("volume", volume_l)
    a = a_pct / 100.0
    if v >= SMALL_VOLUME_LIMIT_L:
        return a * v
    if v >= 1.0:
        return a * 2.0
    if v >= 0.4:
        return 2 * a * v
    if v >= 0.2:
        return 2 * a * 0.4
    if v >= 0.1:
        return 4 * a * v
    return 4 * a * 0.1


def emin(mmq_l: float, a_pct: float) -> float:
    """E_min in litres: 2 · MMQ · A/100 for MMQ ≥ 2 L, else twice the Table 3 value at MMQ."""
    mmq = _positive("MMQ", mmq_l)
    if mmq >= SMALL_VOLUME_LIMIT_L:
        return 2.0 * mmq * a_pct / 100.0
    return 2.0 * table_mpe(mmq, a_pct)


def mpe_volume(volume_l: float, prof: Profile, mmq_l: float) -> float:
    """The MPE in litres for a delivery of ``volume_l``: the larger of the table value and
    E_min."""
    return max(table_mpe(volume_l, prof.mpe_pct), emin(mmq_l, prof.emin_pct))


def mpe_pct(volume_l: float, prof: Profile, mmq_l: float) -> float:
    """The MPE as a % of the delivered quantity (what a dispenser error is compared with)."""
    return 100.0 * mpe_volume(volume_l, prof, mmq_l) / volume_l


def check_display_interval(resolution_l: float, mmq_l: float, prof: Profile) -> None:
    """R117 condition 1, E_min ≥ 2 R: refuse a display interval too coarse for the MMQ."""
    r = _positive("volume display interval", resolution_l)
    e = emin(mmq_l, prof.emin_pct)
    if e < 2 * r - 1e-12:
        raise DutParameterError(
            f"E_min = {e * 1000:g} mL for MMQ {mmq_l:g} L is below 2 × the display interval "
            f"({r * 1000:g} mL): the MMQ is too small for this display (R117 condition 1)"
        )


def error_pct(v_dispenser: float, v_ref: float) -> float:
    """E = 100 (V_dispenser − V_ref) / V_ref, in %."""
    _positive("reference volume", v_ref)
    return 100.0 * (v_dispenser - v_ref) / v_ref


def flow_rate(volume_l: float, seconds: float) -> float:
    """Q = V · 60 / t in L/min."""
    _positive("delivery time", seconds)
    return volume_l * 60.0 / seconds


def proving_measure_volume(v_read: float, gamma: float, t_measure: float,
                           t_ref: float = 20.0) -> float:
    """The measure's volume at its temperature: V_read [1 + γ (t_measure − t_ref)]."""
    return v_read * (1.0 + gamma * (t_measure - t_ref))


def fuel_expansion(volume: float, beta: float, t_from: float, t_to: float) -> float:
    """The volume a quantity of fuel measured at ``t_from`` occupies at ``t_to``."""
    return volume * (1.0 + beta * (t_to - t_from))


def reference_volume_proving(*, certified_volume: float, scale_reading: float, gamma: float,
                             t_measure: float, t_ref: float = 20.0, beta: float = 0.0,
                             t_meter: float | None = None) -> float:
    """The fuel volume the dispenser's meter should have indicated, from a proving measure.

    ``certified_volume`` (to the nominal mark at ``t_ref``) plus ``scale_reading`` (same unit)
    is V_read; the measure's expansion gives the fuel volume in the measure at ``t_measure``;
    with ``t_meter`` (the fuel temperature at the meter) it is brought to meter conditions.
    """
    v = proving_measure_volume(certified_volume + scale_reading, gamma, t_measure, t_ref)
    if t_meter is None:
        return v
    return fuel_expansion(v, beta, t_measure, t_meter)


def master_meter_volume(mass_g: float, density_g_cm3: float, meter_error_pct: float = 0.0
                        ) -> float:
    """Reference volume in litres from a Coriolis meter's mass total and line density,
    corrected for the meter's certified error."""
    _positive("density", density_g_cm3)
    v_l = mass_g / density_g_cm3 / 1000.0
    return v_l / (1.0 + meter_error_pct / 100.0)


def repeatability(errors: Sequence[float]) -> float:
    """max − min of the errors at one rate (same unit as the errors)."""
    if not errors:
        raise ValueError("repeatability needs at least one error")
    return max(errors) - min(errors)


def price(volume_l: float, unit_price: float) -> float:
    """P = V × unit price (đồng), unrounded."""
    return volume_l * unit_price


def price_error(amount: float, volume_l: float, unit_price: float) -> float:
    """Indicated amount minus V × unit price (đồng)."""
    return amount - price(volume_l, unit_price)


@dataclass(frozen=True)
class DeliveryUncertainty:
    """Inputs of one delivery's uncertainty budget (all standard uncertainties).

    Relative inputs are in %; absolute ones in the unit named.
    """

    volume_l: float
    """The delivered quantity (for turning absolute inputs into %)."""
    reference_rel_pct: float
    """u of the reference volume from its certificate (U/k), in %."""
    reference_reading_l: float = 0.0
    """Half-width of the reading of the reference (a neck-scale division / 2), in L."""
    display_interval_l: float = 0.0
    """The dispenser's volume display interval, in L (rounding of its indication)."""
    u_temperature_c: float = 0.0
    """u of each temperature measurement, °C."""
    gamma: float = 0.0
    beta: float = 0.0
    delta_t_c: float = 0.0
    """Meter minus measure temperature (the size of the fuel-expansion correction), °C."""
    beta_rel_u: float = 0.1
    """Relative standard uncertainty of β (10 % [model])."""
    two_temperatures: bool = False
    """Whether a separate meter temperature was measured (then both temperatures count)."""


def delivery_budget(inputs: DeliveryUncertainty) -> BudgetResult:
    """u, ν_eff, k and U (in %) of one delivery's error E.

    Components (all in % of the volume, independent, ν = ∞): the reference's certificate;
    the reading of the reference (rectangular over one scale division); the rounding of the
    dispenser's display (d/√12); the measure temperature, sensitivity (γ − β) when a separate
    meter temperature is used, else γ; the meter temperature, sensitivity β; β itself,
    sensitivity Δt.
    """
    from . import gum

    v = _positive("volume", inputs.volume_l)
    to_pct = 100.0 / v
    comps = [gum.Component("reference certificate", inputs.reference_rel_pct)]
    if inputs.reference_reading_l > 0:
        comps.append(gum.Component(
            "reference reading", gum.rectangular(inputs.reference_reading_l) * to_pct,
            distribution="rectangular"))
    if inputs.display_interval_l > 0:
        comps.append(gum.Component(
            "dispenser display rounding", gum.resolution(inputs.display_interval_l) * to_pct,
            distribution="resolution"))
    if inputs.u_temperature_c > 0 and (inputs.gamma or inputs.beta):
        s_measure = (inputs.gamma - inputs.beta) if inputs.two_temperatures else inputs.gamma
        comps.append(gum.Component("measure temperature", inputs.u_temperature_c,
                                   sensitivity=100.0 * s_measure))
        if inputs.two_temperatures:
            comps.append(gum.Component("meter temperature", inputs.u_temperature_c,
                                       sensitivity=100.0 * inputs.beta))
    if inputs.two_temperatures and inputs.beta and inputs.delta_t_c:
        comps.append(gum.Component("fuel expansion coefficient",
                                   inputs.beta_rel_u * inputs.beta,
                                   sensitivity=100.0 * inputs.delta_t_c))
    return gum.combine(comps)


#: Cubical expansion coefficient γ of proving-measure materials, per °C (METROLOGY.md §3.3);
#: a measure's record (``gamma`` in its reference file) overrides them. Keys are lower case.
MATERIALS: dict[str, float] = {
    "carbon steel": 3.5e-5,
    "mild steel": 3.5e-5,
    "stainless steel 304": 5.2e-5,
    "stainless 304": 5.2e-5,
}

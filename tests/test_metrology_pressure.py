"""Pressure metrology against the published numbers of METROLOGY.md §2 and §7."""

from __future__ import annotations

import math

import pytest

from benchctl.errors import DutParameterError
from benchctl.metrology import decision
from benchctl.metrology import pressure as pm
from benchctl.metrology.decision import Verdict

# -- EN 837-1 MPE and the legal profile -----------------------------------------------------------


def test_en837_vector_0_10_bar_class_1_6() -> None:
    """METROLOGY.md §2.1: 0–10 bar class 1.6 → ±0.16 bar."""
    assert pm.mpe(0.0, 10.0, 1.6) == pytest.approx(0.16, abs=1e-15)


@pytest.mark.parametrize(("cls", "en837", "in_service"), [
    (0.1, 0.1, 0.15), (0.25, 0.25, 0.4), (0.6, 0.6, 0.9), (1, 1.0, 1.5), (1.6, 1.6, 2.4),
    (2.5, 2.5, 3.8), (4, 4.0, 6.0),
])
def test_every_class_and_the_in_service_profile(cls: float, en837: float,
                                                 in_service: float) -> None:
    assert pm.mpe_percent(cls) == en837
    assert pm.mpe_percent(cls, "in_service") == in_service
    # the MPE is a percentage of the span, the same at every point of the scale
    assert pm.mpe(-100.0, 900.0, cls) == pytest.approx(10.0 * en837)


@pytest.mark.parametrize("bad", [0.5, 3, "II", None, -1.6])
def test_a_class_en837_does_not_have_is_refused(bad: object) -> None:
    with pytest.raises(DutParameterError, match="not an EN 837-1 class"):
        pm.check_class(bad)  # type: ignore[arg-type]


def test_an_empty_range_and_an_unknown_profile_are_refused() -> None:
    with pytest.raises(DutParameterError, match="range"):
        pm.mpe(10.0, 10.0, 1.0)
    with pytest.raises(DutParameterError, match="unknown MPE profile"):
        pm.mpe(0.0, 10.0, 1.0, "oiml")


# -- MSL TG 13 guard band -------------------------------------------------------------------------


def test_msl_tg13_guard_band() -> None:
    """Class 1 over a 4 000 kPa span → MPE 40 kPa; with U = 25 kPa conformity may be declared
    (guarded acceptance, w = U) only for corrections under 15 kPa."""
    limit = pm.mpe(0.0, 4000.0, 1)
    assert limit == pytest.approx(40.0)
    U = 25.0
    assert pm.acceptance_limit(limit, U, "guarded") == pytest.approx(15.0)
    for error in (0.0, 14.9, -14.9, 15.0):
        assert decision.decide(error, U, limit, "guarded") is Verdict.PASS
    for error in (15.1, -20.0, 39.9):
        assert decision.decide(error, U, limit, "guarded") is Verdict.CONDITIONAL_PASS
    assert decision.decide(40.1, U, limit, "guarded") is Verdict.CONDITIONAL_FAIL
    assert decision.decide(65.1, U, limit, "guarded") is Verdict.FAIL
    # Simple acceptance would pass everything up to the MPE itself.
    assert pm.acceptance_limit(limit, U, "simple") == limit
    assert decision.decide(39.9, U, limit, "simple") is Verdict.PASS


# -- units (pint) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "unit", "kpa"), [
    (1.0, "kgf/cm²", 98.0665),
    (1.0, "kgf/cm2", 98.0665),
    (1.0, "bar", 100.0),
    (1.0, "mbar", 0.1),
    (1.0, "MPa", 1000.0),
    (1.0, "psi", 6.894757293168361),
    (760.0, "mmHg", 101.325),
    (1.0, "mmH2O", 0.00980665),
    (1.0, "atm", 101.325),
])
def test_units(value: float, unit: str, kpa: float) -> None:
    assert pm.to_unit(value, unit, "kPa") == pytest.approx(kpa, rel=1e-6)
    assert pm.to_unit(pm.to_unit(value, unit, "kPa"), "kPa", unit) == pytest.approx(value)


def test_kgf_per_cm2_is_exact() -> None:
    assert pm.to_unit(1.0, "kgf/cm²", "kPa") == 98.0665
    assert pm.to_unit(6.0, "kgf/cm2", "MPa") == pytest.approx(0.588399, abs=1e-12)


def test_a_non_pressure_unit_is_refused() -> None:
    with pytest.raises(DutParameterError, match="not a pressure unit"):
        pm.to_unit(1.0, "kg", "kPa")
    with pytest.raises(DutParameterError, match="not a pressure unit"):
        pm.check_pressure_unit("furlongs")


# -- sequences and points -------------------------------------------------------------------------


def test_sequences_of_dkd_r_6_1() -> None:
    a, b, c = pm.SEQUENCES["A"], pm.SEQUENCES["B"], pm.SEQUENCES["C"]
    assert (a.points, a.preloads, a.series) == (9, 3, ("up", "down", "up", "down"))
    assert (b.points, b.preloads, b.series) == (9, 2, ("up", "down", "up"))
    assert (c.points, c.preloads, c.series) == (5, 1, ("up", "down"))
    assert a.has_repeatability and b.has_repeatability and not c.has_repeatability


@pytest.mark.parametrize(("cls", "seq", "count"), [
    (0.1, "A", 9), (0.25, "B", 9), (0.6, "B", 9), (1, "C", 5), (1.6, "C", 5), (4, "C", 5),
])
def test_sequence_from_the_class(cls: float, seq: str, count: int) -> None:
    chosen = pm.sequence_for_class(cls)
    assert chosen.name == seq
    assert pm.point_count(chosen, cls) == count


def test_sequence_c_for_a_fine_class_takes_nine_points_and_zero() -> None:
    assert pm.point_count("C", 0.6) == 10
    assert pm.point_count("C", 1.0) == 5


def test_points_are_evenly_spread_including_zero_and_the_top() -> None:
    assert pm.points(0.0, 1000.0, 9) == [0.0, 125.0, 250.0, 375.0, 500.0, 625.0, 750.0, 875.0,
                                         1000.0]
    assert pm.points(0.0, 0.6, 4) == [0.0, 0.2, 0.4, 0.6]
    assert pm.points(-1.0, 1.5, 6)[0] == -1.0
    with pytest.raises(DutParameterError):
        pm.points(0.0, 1.0, 1)


# -- per point ------------------------------------------------------------------------------------


def test_zero_deviation_repeatability_hysteresis() -> None:
    assert pm.zero_deviation(0.2, -0.1) == pytest.approx(0.3)
    assert pm.repeatability(500.3, 500.1) == pytest.approx(0.2)
    assert pm.hysteresis([500.3, 500.1], [500.6]) == pytest.approx(0.4)
    assert pm.hysteresis([500.3], []) == 0.0


def test_head_correction() -> None:
    """ρ g Δh: water, 1 m → 9 806.65 Pa; the reference 0.5 m above in oil of 860 kg/m³."""
    assert pm.head_correction(1000.0, 1.0) == pytest.approx(9806.65)
    assert pm.head_correction(860.0, 0.5) == pytest.approx(4216.8595)
    assert pm.head_correction(1.2, -2.0) == pytest.approx(-23.53596)
    with pytest.raises(DutParameterError):
        pm.head_correction(-1.0, 1.0)


# -- the budget -----------------------------------------------------------------------------------


def test_budget_by_hand() -> None:
    """U_ref 0.04 kPa (k 2), drift ±0.02, resolution 0.1, f0 0.1, b′ 0.2, h 0.3 (kPa):
    u² = 0.02² + (0.02/√3)² + Σ (X/(2√3))² for X = 0.1, 0.1, 0.2, 0.3."""
    result = pm.error_budget(U_ref=0.04, k_ref=2.0, resolution=0.1, zero_dev=0.1, repeat=0.2,
                             hyst=0.3, drift=0.02)
    u2 = 0.02**2 + 0.02**2 / 3 + (0.1**2 + 0.1**2 + 0.2**2 + 0.3**2) / 12
    assert result.u == pytest.approx(math.sqrt(u2), rel=1e-12)
    assert math.isinf(result.nu_eff) and result.k == 2.0
    expanded = result.U
    assert expanded == pytest.approx(2 * math.sqrt(u2), rel=1e-12)
    names = [name for name, _ in result.contributions]
    assert names == ["reference standard", "reference drift", "resolution", "zero deviation",
                     "repeatability", "hysteresis"]
    assert dict(result.contributions)["hysteresis"] == pytest.approx(0.3 / (2 * math.sqrt(3)))


def test_budget_refuses_impossible_inputs() -> None:
    with pytest.raises(DutParameterError, match="k of the reference"):
        pm.error_budget(U_ref=0.04, k_ref=0.0, resolution=0.1)
    with pytest.raises(DutParameterError, match="resolution"):
        pm.error_budget(U_ref=0.04, k_ref=2.0, resolution=-0.1)

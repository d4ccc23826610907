"""Fuel-dispenser metrology against METROLOGY.md §3 (R117 / MID MI-005, ĐLVN 10)."""

from __future__ import annotations

import math

import pytest

from benchctl.errors import DutParameterError
from benchctl.metrology import fuel

OIML = fuel.PROFILES["oiml"]
DLVN = fuel.PROFILES["dlvn"]


# -- MPE for quantities >= 2 L: ±0.5 % (R117 class 0.5 system), ±0.3 % (ĐLVN 10) ----------


@pytest.mark.parametrize(("volume", "prof", "expected_pct"), [
    (20.0, OIML, 0.5), (20.0, DLVN, 0.3), (2.0, OIML, 0.5), (100.0, DLVN, 0.3),
])
def test_mpe_percent_for_two_litres_and_more(volume: float, prof: fuel.Profile,
                                             expected_pct: float) -> None:
    # MMQ 2 L: E_min (20 mL at A = 0.5) does not govern at 20 L.
    assert fuel.mpe_pct(volume, prof, mmq_l=0.5) == pytest.approx(expected_pct, abs=1e-12)
    assert fuel.table_mpe(volume, prof.mpe_pct) == pytest.approx(volume * expected_pct / 100)


# -- E_min (METROLOGY.md §3.1: MMQ 2 L -> 20 mL, 5 L -> 50 mL) ---------------------------------


@pytest.mark.parametrize(("mmq", "emin_ml"), [(2.0, 20.0), (5.0, 50.0), (10.0, 100.0)])
def test_emin_published_values(mmq: float, emin_ml: float) -> None:
    assert fuel.emin(mmq, 0.5) * 1000 == pytest.approx(emin_ml, abs=1e-9)


def test_emin_below_two_litres_is_twice_the_table_value() -> None:
    # MMQ 1 L: Table 3 value is A % applied to 2 L = 10 mL, E_min = 20 mL.
    assert fuel.emin(1.0, 0.5) * 1000 == pytest.approx(20.0)
    # MMQ 0.5 L: 2 A % of 0.5 L = 5 mL, E_min = 10 mL.
    assert fuel.emin(0.5, 0.5) * 1000 == pytest.approx(10.0)


def test_the_larger_of_table_mpe_and_emin_applies() -> None:
    # A 2 L delivery of a dispenser with MMQ 2 L: table 10 mL, E_min 20 mL -> 1 %.
    assert fuel.mpe_volume(2.0, OIML, 2.0) * 1000 == pytest.approx(20.0)
    assert fuel.mpe_pct(2.0, OIML, 2.0) == pytest.approx(1.0)
    # 5 L with MMQ 5 L: 25 mL table, 50 mL E_min.
    assert fuel.mpe_volume(5.0, OIML, 5.0) * 1000 == pytest.approx(50.0)
    # 20 L with MMQ 5 L: the table (100 mL) governs.
    assert fuel.mpe_volume(20.0, OIML, 5.0) * 1000 == pytest.approx(100.0)


# -- Below 2 L: MID MI-005 Table 3 multipliers -------------------------------------------------


@pytest.mark.parametrize(("volume", "expected_ml"), [
    (0.05, 2.0),    # V < 0.1 L: 4 × 0.5 % applied to 0.1 L
    (0.1, 2.0),     # 0.1 ≤ V < 0.2: 4 × 0.5 % of V
    (0.15, 3.0),
    (0.2, 4.0),     # 0.2 ≤ V < 0.4: 2 × 0.5 % applied to 0.4 L
    (0.3, 4.0),
    (0.4, 4.0),     # 0.4 ≤ V < 1: 2 × 0.5 % of V
    (0.8, 8.0),
    (1.0, 10.0),    # 1 ≤ V < 2: 0.5 % applied to 2 L
    (1.5, 10.0),
    (2.0, 10.0),    # from 2 L: 0.5 % of V
])
def test_small_quantity_table(volume: float, expected_ml: float) -> None:
    assert fuel.table_mpe(volume, 0.5) * 1000 == pytest.approx(expected_ml, abs=1e-9)


def test_table_is_continuous_at_its_boundaries_from_below() -> None:
    # Just below each boundary, the step value equals (or joins) the next rule's value.
    for boundary in (0.1, 0.2, 0.4, 1.0, 2.0):
        below = fuel.table_mpe(boundary - 1e-9, 0.5)
        at = fuel.table_mpe(boundary, 0.5)
        assert below == pytest.approx(at, rel=1e-6), boundary


def test_profiles_are_data_and_unknown_names_are_refused() -> None:
    assert set(fuel.PROFILES) == {"oiml", "dlvn"}
    assert fuel.profile("dlvn").mpe_pct == 0.3
    with pytest.raises(DutParameterError, match="unknown MPE profile 'mid'"):
        fuel.profile("mid")


def test_display_interval_condition_one() -> None:
    fuel.check_display_interval(0.01, 2.0, OIML)  # E_min 20 mL ≥ 2 × 10 mL
    with pytest.raises(DutParameterError, match="below 2 × the display interval"):
        fuel.check_display_interval(0.02, 2.0, DLVN)  # E_min 12 mL < 40 mL


# -- error, flow, corrections ----------------------------------------------------------------


def test_error_and_flow() -> None:
    assert fuel.error_pct(20.024, 20.0) == pytest.approx(0.12)
    assert fuel.error_pct(19.96, 20.0) == pytest.approx(-0.2)
    assert fuel.flow_rate(20.0, 30.0) == pytest.approx(40.0)
    with pytest.raises(DutParameterError):
        fuel.flow_rate(20.0, 0.0)


def test_proving_measure_temperature_correction() -> None:
    # Stainless 304 (γ 5.2e-5 /°C) at 30 °C: +0.052 % on 20 L = +10.4 mL.
    v = fuel.proving_measure_volume(20.0, 5.2e-5, 30.0)
    assert v == pytest.approx(20.0104, abs=1e-12)
    assert fuel.proving_measure_volume(20.0, 3.5e-5, 20.0) == 20.0
    # Another reference temperature from the certificate.
    assert fuel.proving_measure_volume(20.0, 3.5e-5, 25.0, t_ref=15.0) == pytest.approx(20.007)


def test_fuel_expansion_per_product() -> None:
    assert fuel.product_beta("RON95") == pytest.approx(1.2e-3)
    assert fuel.product_beta("Diesel") < fuel.product_beta("ron95")
    with pytest.raises(DutParameterError, match="give beta"):
        fuel.product_beta("jet A1")
    # 20 L of petrol measured at 29 °C occupies 0.12 % less at 28 °C.
    assert fuel.fuel_expansion(20.0, 1.2e-3, 29.0, 28.0) == pytest.approx(19.976)


def test_reference_volume_from_a_proving_measure() -> None:
    v = fuel.reference_volume_proving(certified_volume=20.004, scale_reading=-0.015,
                                      gamma=5.2e-5, t_measure=28.4, beta=1.2e-3, t_meter=28.1)
    expected = 19.989 * (1 + 5.2e-5 * 8.4) * (1 + 1.2e-3 * (28.1 - 28.4))
    assert v == pytest.approx(expected, rel=1e-15)
    # Without a meter temperature there is no fuel-expansion correction.
    assert fuel.reference_volume_proving(certified_volume=20.0, scale_reading=0.0, gamma=0.0,
                                         t_measure=30.0, beta=1.2e-3) == 20.0


def test_master_meter_volume() -> None:
    # 14 800 g of petrol at 0.74 g/cm³ = 20 L; a meter reading 0.02 % high is corrected.
    assert fuel.master_meter_volume(14800.0, 0.74) == pytest.approx(20.0)
    assert fuel.master_meter_volume(14802.96, 0.74, 0.02) == pytest.approx(20.0, rel=1e-12)


def test_repeatability_and_price() -> None:
    assert fuel.repeatability([0.10, 0.14, 0.12]) == pytest.approx(0.04)
    with pytest.raises(ValueError):
        fuel.repeatability([])
    # PROTOCOLS.md example: 19.96 L at 23 450 đ/L = 468 062 đ (rounded).
    assert fuel.price(19.96, 23450) == pytest.approx(468062.0)
    assert fuel.price_error(468062, 19.96, 23450) == pytest.approx(0.0, abs=1e-6)
    assert fuel.price_error(468100, 19.96, 23450) == pytest.approx(38.0, abs=1e-6)


def test_delivery_budget() -> None:
    inputs = fuel.DeliveryUncertainty(
        volume_l=20.0, reference_rel_pct=0.005, reference_reading_l=0.0025,
        display_interval_l=0.01, u_temperature_c=0.1, gamma=5.2e-5, beta=1.2e-3,
        delta_t_c=-0.3, two_temperatures=True)
    b = fuel.delivery_budget(inputs)
    parts = dict(b.contributions)
    assert parts["reference certificate"] == pytest.approx(0.005)
    assert parts["reference reading"] == pytest.approx(0.0025 / math.sqrt(3) * 5)
    assert parts["dispenser display rounding"] == pytest.approx(0.01 / math.sqrt(12) * 5)
    assert parts["measure temperature"] == pytest.approx(0.1 * 100 * (1.2e-3 - 5.2e-5))
    assert parts["meter temperature"] == pytest.approx(0.1 * 100 * 1.2e-3)
    assert parts["fuel expansion coefficient"] == pytest.approx(0.1 * 1.2e-3 * 100 * 0.3)
    assert b.u == pytest.approx(math.sqrt(sum(v * v for v in parts.values())))
    assert b.k == 2.0
    assert pytest.approx(2 * b.u) == b.U
    # One temperature only: the measure temperature counts with γ, no β terms.
    single = fuel.delivery_budget(fuel.DeliveryUncertainty(
        volume_l=20.0, reference_rel_pct=0.005, u_temperature_c=0.1, gamma=5.2e-5,
        beta=1.2e-3))
    assert dict(single.contributions)["measure temperature"] == pytest.approx(0.1 * 5.2e-3)
    assert "meter temperature" not in dict(single.contributions)

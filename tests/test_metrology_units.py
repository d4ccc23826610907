"""Units through pint (METROLOGY.md §2.3): the factors come from their definitions."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchctl.errors import BenchctlError
from benchctl.metrology.units import UnitError, convert, normalize_unit_text, registry

G_N = 9.80665  # standard acceleration of gravity, m/s² (exact, CGPM 1901)
LB = 0.45359237  # kg (exact, 1959)
INCH = 0.0254  # m (exact)


@pytest.mark.parametrize("spelling", ["kgf/cm²", "kgf/cm2", "kgf/cm**2", "kgf/cm^2", " kgf/cm2 "])
def test_kgf_per_cm2_is_98_0665_kpa_exactly(spelling: str) -> None:
    assert convert(1.0, spelling, "kPa") == 98.0665
    assert convert(98.0665, "kPa", spelling) == 1.0


def test_pressure_factors() -> None:
    assert convert(1.0, "bar", "kPa") == 100.0
    assert convert(1.0, "mbar", "Pa") == 100.0
    assert convert(1.0, "mbar", "hPa") == 1.0
    assert convert(1.0, "MPa", "kPa") == 1000.0
    assert convert(10.0, "bar", "MPa") == 1.0
    assert convert(1.0, "atm", "kPa") == 101.325
    assert convert(1.0, "psi", "Pa") == pytest.approx(LB * G_N / INCH**2, rel=1e-14)
    assert convert(1.0, "psi", "kPa") == pytest.approx(6.894757293168361, rel=1e-14)
    # conventional mmHg (13 595.1 kg/m³) and mmH2O (1 000 kg/m³) with g_n
    assert convert(1.0, "mmHg", "Pa") == pytest.approx(13_595.1 * G_N * 1e-3, rel=1e-14)
    assert convert(1.0, "mmH2O", "Pa") == pytest.approx(1_000 * G_N * 1e-3, rel=1e-14)
    assert convert(1.0, "inHg", "Pa") == pytest.approx(13_595.1 * G_N * INCH, rel=1e-14)
    assert convert(1.0, "at", "kgf/cm2") == 1.0  # technical atmosphere


def test_mass_and_volume() -> None:
    assert convert(1.0, "g", "mg") == 1000.0
    assert convert(2500.0, "g", "kg") == 2.5
    assert convert(1.0, "mg", "kg") == 1e-6
    assert convert(0.1, "kg", "g") == 100.0
    assert convert(1.0, "L", "mL") == 1000.0  # not 1000.0000000000001
    assert convert(20.0, "L", "mL") == 20_000.0
    assert convert(60.0, "L/min", "L/s") == 1.0
    assert convert(1.0, "L", "mL", significant=None) == pytest.approx(1000.0, rel=1e-15)


@pytest.mark.parametrize("spelling", ["°C", "degC", "℃"])
def test_temperature(spelling: str) -> None:
    assert convert(20.0, spelling, "K") == 293.15
    assert convert(100.0, spelling, "degF") == 212.0


@pytest.mark.parametrize(
    "spelling",
    [
        "kgf/cm²",
        "kgf/cm2",
        "mmH2O",
        "mmHg",
        "inHg",
        "psi",
        "bar",
        "mbar",
        "kPa",
        "MPa",
        "hPa",
        "g",
        "mg",
        "kg",
        "L",
        "mL",
        "L/min",
        "°C",
        "degC",
        "atm",
    ],
)
def test_every_listed_spelling_parses(spelling: str) -> None:
    assert convert(1.0, spelling, spelling) == 1.0


def test_normalize_keeps_h2o() -> None:
    assert normalize_unit_text("kgf/cm2") == "kgf/cm**2"
    assert normalize_unit_text("m3/h") == "m**3/h"
    assert normalize_unit_text("mmH2O") == "mmH2O"


@pytest.mark.parametrize("bad", ["bogus_unit", "kgf/xyz", "kPa)", "", "   ", "2 kPa"])
def test_unknown_unit(bad: str) -> None:
    with pytest.raises(UnitError) as info:
        convert(1.0, bad, "kPa")
    assert isinstance(info.value, BenchctlError)
    assert "unit" in str(info.value)


def test_incompatible_units() -> None:
    with pytest.raises(UnitError, match="cannot convert 'kPa' to 'g'"):
        convert(1.0, "kPa", "g")


def test_registry_is_one_per_process() -> None:
    assert registry() is registry()


def test_pint_is_loaded_lazily() -> None:
    code = (
        "import sys, benchctl.metrology.units, benchctl.metrology.gum, "
        "benchctl.metrology.balance_budget\n"
        "heavy = [m for m in ('GTC', 'pint', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)

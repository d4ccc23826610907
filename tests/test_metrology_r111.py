"""OIML R111-1:2004 Table 1 MPE (METROLOGY.md §1.4): all 56 cells, written out from the table."""

from __future__ import annotations

import pytest

from benchctl.errors import DutParameterError
from benchctl.metrology.r111 import WeightClass, parse_weight_class, weight_mpe_mg

# nominal in g, then E2, F1, F2, M1 in mg — copied from METROLOGY.md §1.4 line by line
TABLE = [
    (1, 0.030, 0.10, 0.3, 1.0),
    (2, 0.040, 0.12, 0.4, 1.2),
    (5, 0.050, 0.16, 0.5, 1.6),
    (10, 0.060, 0.20, 0.6, 2.0),
    (20, 0.080, 0.25, 0.8, 2.5),
    (50, 0.10, 0.3, 1.0, 3.0),
    (100, 0.16, 0.5, 1.6, 5),
    (200, 0.30, 1.0, 3.0, 10),
    (500, 0.8, 2.5, 8.0, 25),
    (1_000, 1.6, 5, 16, 50),
    (2_000, 3.0, 10, 30, 100),
    (5_000, 8.0, 25, 80, 250),
    (10_000, 16, 50, 160, 500),
    (20_000, 30, 100, 300, 1_000),
]

CELLS = [
    (nominal, cls, value)
    for nominal, *row in TABLE
    for cls, value in zip(("E2", "F1", "F2", "M1"), row, strict=True)
]


def test_table_has_56_cells() -> None:
    assert len(CELLS) == 56


@pytest.mark.parametrize(("nominal_g", "cls", "expected_mg"), CELLS)
def test_every_cell(nominal_g: float, cls: str, expected_mg: float) -> None:
    assert weight_mpe_mg(nominal_g, cls) == expected_mg
    assert weight_mpe_mg(float(nominal_g), WeightClass(cls)) == expected_mg


def test_nominal_tolerates_float_noise_and_class_case() -> None:
    assert weight_mpe_mg(1000.0000000001, "f1") == 5.0
    noisy_100 = (0.1 + 0.2) * 1000 / 3  # 100.00000000000001
    assert noisy_100 != 100.0
    assert weight_mpe_mg(noisy_100, "E2") == 0.16
    assert parse_weight_class(" m1 ") is WeightClass.M1


@pytest.mark.parametrize("nominal_g", [0.5, 3.0, 25.0, 50_000.0, 0.0, -1.0, float("nan")])
def test_nominal_not_in_table(nominal_g: float) -> None:
    with pytest.raises(DutParameterError) as info:
        weight_mpe_mg(nominal_g, "F1")
    msg = str(info.value)
    assert repr(nominal_g) in msg
    assert "OIML R111-1:2004 Table 1" in msg
    assert "1 g to 20 kg" in msg


@pytest.mark.parametrize("cls", ["E1", "M2", "F3", ""])
def test_unknown_class(cls: str) -> None:
    with pytest.raises(DutParameterError, match="unknown weight class"):
        weight_mpe_mg(1.0, cls)

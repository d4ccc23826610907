"""OIML R76-1:2006 Tables 3 and 6 (METROLOGY.md §1.1, §1.2): every row, every boundary."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchctl.errors import DutParameterError
from benchctl.metrology.r76 import (
    AccuracyClass,
    check_balance,
    is_125,
    min_capacity,
    mpe,
    mpe_step_loads,
    parse_class,
)

# --- published test vectors, METROLOGY.md §1.2 ----------------------------------------------


@pytest.mark.parametrize(
    ("load", "e", "cls", "initial", "in_service"),
    [
        (5_000.0, 10.0, "III", 5.0, 10.0),  # Max 30 kg, e 10 g
        (10_000.0, 10.0, "III", 10.0, 20.0),
        (30_000.0, 10.0, "III", 15.0, 30.0),
        (1_240.0, 0.1, "II", 0.1, 0.2),  # e 0.1 g
        (6_200.0, 0.1, "II", 0.15, 0.3),
        (44.0, 0.001, "I", 0.0005, 0.001),  # e 1 mg
        (220.0, 0.001, "I", 0.0015, 0.003),
    ],
)
def test_published_mpe_vectors(
    load: float, e: float, cls: str, initial: float, in_service: float
) -> None:
    assert mpe(load, e, cls) == initial
    assert mpe(load, e, cls, in_service=True) == in_service


# --- Table 6, every band and inclusive boundary --------------------------------------------

# (class, load in e, MPE in e on initial verification), written out from R76-1 Table 6.
TABLE_6_POINTS = [
    ("I", 0, 0.5),
    ("I", 50_000, 0.5),
    ("I", 50_001, 1.0),
    ("I", 200_000, 1.0),
    ("I", 200_001, 1.5),
    ("I", 1_000_000, 1.5),
    ("II", 0, 0.5),
    ("II", 5_000, 0.5),
    ("II", 5_001, 1.0),
    ("II", 20_000, 1.0),
    ("II", 20_001, 1.5),
    ("II", 100_000, 1.5),
    ("III", 0, 0.5),
    ("III", 500, 0.5),
    ("III", 501, 1.0),
    ("III", 2_000, 1.0),
    ("III", 2_001, 1.5),
    ("III", 10_000, 1.5),
    ("IIII", 0, 0.5),
    ("IIII", 50, 0.5),
    ("IIII", 51, 1.0),
    ("IIII", 200, 1.0),
    ("IIII", 201, 1.5),
    ("IIII", 1_000, 1.5),
]


@pytest.mark.parametrize(("cls", "n", "mpe_in_e"), TABLE_6_POINTS)
def test_table6_every_band(cls: str, n: int, mpe_in_e: float) -> None:
    assert mpe(float(n), 1.0, cls) == mpe_in_e
    assert mpe(float(n), 1.0, cls, in_service=True) == 2 * mpe_in_e
    assert mpe(-float(n), 1.0, cls) == mpe_in_e  # negative net indication uses |load|


@pytest.mark.parametrize(("cls", "n", "mpe_in_e"), TABLE_6_POINTS)
@pytest.mark.parametrize("e", [0.1, 0.02, 0.0001, 5.0])
def test_table6_with_decimal_e(cls: str, n: int, mpe_in_e: float, e: float) -> None:
    # loads built as n * e carry binary noise; the band must not change because of it
    expected = mpe_in_e * e
    assert mpe(n * e, e, cls) == pytest.approx(expected, rel=1e-12)
    assert mpe(n * e * (1 + 1e-12), e, cls) == pytest.approx(expected, rel=1e-12)


def test_upper_bound_inclusive_and_just_above() -> None:
    # 500 e is still 0.5 e for class III; 500.01 e is in the 1 e band
    assert mpe(5_000.0, 10.0, "III") == 5.0
    assert mpe(5_000.1, 10.0, "III") == 10.0
    assert mpe(20_000.0, 10.0, "III") == 10.0
    assert mpe(20_000.1, 10.0, "III") == 15.0
    # a load summed from weights: 0.1 + 0.2 style noise at the 5 000 e boundary of class II
    noisy = sum([100.0] * 4) + 0.1 * 1000  # 500.0 g, e = 0.1 g -> 5 000 e
    assert mpe(noisy, 0.1, "II") == 0.05


def test_mpe_rejects_bad_e_and_load() -> None:
    with pytest.raises(DutParameterError, match="e must be a positive number"):
        mpe(10.0, 0.0, "III")
    with pytest.raises(DutParameterError, match="e must be a positive number"):
        mpe(10.0, -1.0, "III")
    with pytest.raises(DutParameterError, match="load must be a finite number"):
        mpe(float("nan"), 1.0, "III")


@pytest.mark.parametrize(
    ("cls", "e", "steps"),
    [
        ("I", 0.001, (50.0, 200.0)),
        ("II", 0.1, (500.0, 2_000.0)),
        ("III", 10.0, (5_000.0, 20_000.0)),
        ("IIII", 50.0, (2_500.0, 10_000.0)),
    ],
)
def test_mpe_step_loads(cls: str, e: float, steps: tuple[float, float]) -> None:
    assert mpe_step_loads(e, cls) == steps


# --- classes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I", AccuracyClass.I),
        ("ii", AccuracyClass.II),
        (" III ", AccuracyClass.III),
        ("iiii", AccuracyClass.IIII),
        ("Ⅱ", AccuracyClass.II),
        ("ⅲ", AccuracyClass.III),
        (AccuracyClass.IIII, AccuracyClass.IIII),
    ],
)
def test_parse_class(text: str, expected: AccuracyClass) -> None:
    assert parse_class(text) is expected


@pytest.mark.parametrize("text", ["", "V", "IV", "II+", "2", "class II"])
def test_parse_class_rejects(text: str) -> None:
    with pytest.raises(DutParameterError, match="accuracy class"):
        parse_class(text)


# --- Table 3: e range and n = Max/e, every row, both ends ------------------------------------

# (class, e in g, n = Max/e, accepted?), written out from R76-1 Table 3.
TABLE_3_POINTS = [
    # I: e >= 1 mg, n >= 50 000, no n max
    ("I", 0.001, 50_000, True),
    ("I", 0.001, 49_999, False),
    ("I", 0.001, 10_000_000, True),
    ("I", 0.01, 50_000, True),
    # II, 1 mg <= e <= 50 mg: 100 <= n <= 100 000
    ("II", 0.001, 100, True),
    ("II", 0.001, 99, False),
    ("II", 0.001, 100_000, True),
    ("II", 0.001, 100_001, False),
    ("II", 0.05, 100, True),
    ("II", 0.05, 100_000, True),
    # II, e >= 100 mg: 5 000 <= n <= 100 000
    ("II", 0.1, 5_000, True),
    ("II", 0.1, 4_999, False),
    ("II", 0.1, 100_000, True),
    ("II", 0.1, 100_001, False),
    ("II", 1.0, 5_000, True),
    # III, 100 mg <= e <= 2 g: 100 <= n <= 10 000
    ("III", 0.1, 100, True),
    ("III", 0.1, 99, False),
    ("III", 0.1, 10_000, True),
    ("III", 0.1, 10_001, False),
    ("III", 2.0, 100, True),
    ("III", 2.0, 10_000, True),
    # III, e >= 5 g: 500 <= n <= 10 000
    ("III", 5.0, 500, True),
    ("III", 5.0, 499, False),
    ("III", 5.0, 10_000, True),
    ("III", 5.0, 10_001, False),
    ("III", 10.0, 3_000, True),
    # IIII, e >= 5 g: 100 <= n <= 1 000
    ("IIII", 5.0, 100, True),
    ("IIII", 5.0, 99, False),
    ("IIII", 5.0, 1_000, True),
    ("IIII", 5.0, 1_001, False),
    ("IIII", 50.0, 1_000, True),
]


@pytest.mark.parametrize(("cls", "e", "n", "ok"), TABLE_3_POINTS)
def test_table3_n_limits(cls: str, e: float, n: int, ok: bool) -> None:
    max_capacity = n * e
    if ok:
        check_balance(max_capacity, e, e, cls)
    else:
        with pytest.raises(DutParameterError, match=r"n = Max/e = .* \(R76-1 Table 3\)"):
            check_balance(max_capacity, e, e, cls)


@pytest.mark.parametrize(
    ("cls", "e"),
    [
        ("I", 0.0005),  # below 1 mg
        ("II", 0.0005),  # below 1 mg
        ("III", 0.05),  # below 100 mg
        ("III", 0.001),
        ("IIII", 2.0),  # below 5 g
        ("IIII", 0.1),
    ],
)
def test_table3_e_range_rejected(cls: str, e: float) -> None:
    with pytest.raises(DutParameterError, match=r"e must be .* \(R76-1 Table 3\)"):
        check_balance(1000 * e, e, e, cls)


def test_message_names_rule_and_table() -> None:
    with pytest.raises(DutParameterError) as info:
        check_balance(20.0, 0.1, 0.1, "II")
    assert str(info.value) == (
        "class II with e = 0.1 g: n = Max/e = 200 is below the minimum 5 000 (R76-1 Table 3)"
    )
    with pytest.raises(DutParameterError) as info:
        check_balance(3.0, 0.001, 0.001, "III")
    assert str(info.value) == (
        "class III with e = 1 mg: e must be 100 mg ≤ e ≤ 2 g or e ≥ 5 g (R76-1 Table 3)"
    )


@pytest.mark.parametrize(
    ("max_capacity", "e", "d", "cls", "unit"),
    [
        (30.0, 0.01, 0.01, "III", "kg"),  # 30 kg x 10 g in kilograms
        (30_000.0, 10.0, 10.0, "III", "g"),
        (620_000.0, 100.0, 100.0, "II", "mg"),  # 620 g x 0.1 g in milligrams
        (6_200.0, 0.1, 0.01, "II", "g"),  # auxiliary indicating device, e = 10 d
        (220.0, 0.001, 0.0001, "I", "g"),  # analytical balance, e = 10 d
        (220.0, 0.001, 0.0005, "I", "g"),  # e = 2 d
        (220.0, 0.001, 0.00001, "I", "g"),  # class I with d < 1 mg: e = 1 mg (R76-1 3.4.2)
    ],
)
def test_valid_balances(max_capacity: float, e: float, d: float, cls: str, unit: str) -> None:
    check_balance(max_capacity, e, d, cls, unit=unit)


def test_unit_changes_the_e_range_check() -> None:
    # e = 100 in grams is a class II e >= 100 mg row; in mg it is 100 mg, the same row
    check_balance(620_000.0, 100.0, 100.0, "II", unit="mg")
    # e = 50 mg in mg: the 1 mg..50 mg row, n = 100 allowed there (not in the >= 100 mg row)
    check_balance(5_000.0, 50.0, 50.0, "II", unit="mg")
    with pytest.raises(DutParameterError, match="minimum 5 000"):
        check_balance(10_000.0, 100.0, 100.0, "II", unit="mg")  # n = 100 < 5 000


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((6_200.0, 0.3, 0.3, "II"), r"e = 0\.3 g is not 1, 2 or 5 × 10\^k"),
        ((6_200.0, 0.1, 0.03, "II"), r"d = 0\.03 g is not 1, 2 or 5 × 10\^k"),
        ((6_200.0, 0.1, 0.2, "II"), r"smaller than d .* requires d ≤ e"),
        ((220.0, 0.1, 0.001, "II"), r"more than 10 d .* d < e ≤ 10 d"),
        ((220.0, 0.001, 0.00001, "II"), r"more than 10 d"),  # exception is class I only
        ((3_000.0, 1.0, 0.1, "III"), r"only allowed for classes I and II"),
        ((3_000.0, 10.0, 5.0, "IIII"), r"only allowed for classes I and II"),
        ((0.0, 0.1, 0.1, "II"), r"Max must be a positive number"),
        ((-1.0, 0.1, 0.1, "II"), r"Max must be a positive number"),
        ((6_200.0, 0.0, 0.1, "II"), r"e must be a positive number"),
        ((6_200.0, 0.1, -0.1, "II"), r"d must be a positive number"),
        ((6_200.0, 0.1, 0.1, "V"), r"unknown accuracy class"),
    ],
)
def test_check_balance_rejects_each_rule(args: tuple[float, float, float, str], match: str) -> None:
    with pytest.raises(DutParameterError, match=match):
        check_balance(*args)


def test_check_balance_rejects_unknown_unit() -> None:
    with pytest.raises(DutParameterError, match="unknown mass unit 'lb'"):
        check_balance(30.0, 0.01, 0.01, "III", unit="lb")


@pytest.mark.parametrize(
    ("x", "ok"),
    [
        (1.0, True),
        (2.0, True),
        (5.0, True),
        (0.1, True),
        (0.0001, True),
        (0.02, True),
        (0.005, True),
        (50_000.0, True),
        (0.1 * 3 / 3, True),
        (3.0, False),
        (0.3, False),
        (2.5, False),
        (0.0, False),
        (-1.0, False),
        (2.000001, False),
        (float("inf"), False),
    ],
)
def test_is_125(x: float, ok: bool) -> None:
    assert is_125(x) is ok


# --- Table 3, Min column ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e", "cls", "unit", "expected"),
    [
        (0.001, "I", "g", 0.1),  # 100 e
        (0.01, "I", "g", 1.0),
        (0.001, "II", "g", 0.02),  # 20 e (1 mg <= e <= 50 mg)
        (0.05, "II", "g", 1.0),
        (0.1, "II", "g", 5.0),  # 50 e (e >= 100 mg)
        (1.0, "II", "g", 50.0),
        (0.1, "III", "g", 2.0),  # 20 e
        (2.0, "III", "g", 40.0),
        (5.0, "III", "g", 100.0),
        (10.0, "III", "g", 200.0),
        (5.0, "IIII", "g", 50.0),  # 10 e
        (50.0, "IIII", "g", 500.0),
        (50.0, "II", "mg", 1_000.0),  # 50 mg -> 20 e
        (100.0, "II", "mg", 5_000.0),  # 100 mg -> 50 e
        (0.01, "III", "kg", 0.2),
    ],
)
def test_min_capacity(e: float, cls: str, unit: str, expected: float) -> None:
    assert min_capacity(e, cls, unit=unit) == expected


def test_min_capacity_rejects() -> None:
    with pytest.raises(DutParameterError, match="R76-1 Table 3"):
        min_capacity(0.001, "III")
    with pytest.raises(DutParameterError, match="not 1, 2 or 5"):
        min_capacity(0.3, "II")
    with pytest.raises(DutParameterError, match="unknown mass unit"):
        min_capacity(0.1, "II", unit="oz")


def test_no_heavy_imports() -> None:
    code = (
        "import sys, benchctl.metrology.r76, benchctl.metrology.r111, "
        "benchctl.metrology.decision\n"
        "heavy = [m for m in ('GTC', 'pint', 'numpy', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)

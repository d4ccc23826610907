"""GUM budgets through GTC (METROLOGY.md §4) and the golden examples of METROLOGY.md §7."""

from __future__ import annotations

import math
import statistics

import pytest

from benchctl.metrology.gum import (
    P_K2,
    Component,
    arcsine,
    budget_from_ureal,
    combine,
    coverage_factor,
    format_with_uncertainty,
    rectangular,
    resolution,
    round_uncertainty,
    round_value,
    triangular,
    type_a,
)

# --- k = t_95.45(ν), METROLOGY.md §4 (GUM Table G.2), to the published digits ----------------

K_TABLE = [
    (1, "13.97"),
    (2, "4.53"),
    (3, "3.31"),
    (4, "2.87"),
    (5, "2.65"),
    (6, "2.52"),
    (7, "2.43"),
    (8, "2.37"),
    (9, "2.32"),
    (10, "2.28"),
    (15, "2.18"),
    (20, "2.13"),
    (30, "2.09"),
    (50, "2.05"),
    (100, "2.025"),
    (math.inf, "2.000"),
]


@pytest.mark.parametrize(("nu", "published"), K_TABLE)
def test_k_table(nu: float, published: str) -> None:
    decimals = len(published.split(".")[1])
    assert f"{coverage_factor(nu):.{decimals}f}" == published


def test_k_infinite_is_exactly_two() -> None:
    assert coverage_factor(math.inf) == 2.0
    assert abs(P_K2 - 0.9545) < 1e-6
    # the literal 0.9545 is a rounded probability: k(∞) is then not exactly 2
    assert coverage_factor(math.inf, 0.9545) == pytest.approx(2.0000024, abs=1e-7)


def test_non_integer_dof_continuous_and_truncated() -> None:
    k16, k17 = coverage_factor(16), coverage_factor(17)
    k = coverage_factor(16.7)
    assert k17 < k < k16  # GTC: Student t at the real ν_eff
    assert coverage_factor(16.7, truncate_dof=True) == k16  # cg-18: integer below
    assert coverage_factor(16.9999999999, truncate_dof=True) == k17  # noise is not truncated
    assert coverage_factor(math.inf, truncate_dof=True) == 2.0


def test_k_at_99_percent() -> None:
    # GUM Table G.2, p = 99 %: ν 16 -> 2.92, ν ∞ -> 2.576
    assert f"{coverage_factor(16, 0.99):.2f}" == "2.92"
    assert f"{coverage_factor(math.inf, 0.99):.3f}" == "2.576"


@pytest.mark.parametrize(("nu", "p"), [(0.5, P_K2), (math.nan, P_K2), (5, 0.0), (5, 1.0)])
def test_coverage_factor_rejects(nu: float, p: float) -> None:
    with pytest.raises(ValueError):
        coverage_factor(nu, p)


# --- helpers ------------------------------------------------------------------------------------


def test_distribution_helpers() -> None:
    assert rectangular(math.sqrt(3)) == pytest.approx(1.0, rel=1e-15)
    assert triangular(math.sqrt(6)) == pytest.approx(1.0, rel=1e-15)
    assert resolution(math.sqrt(12)) == pytest.approx(1.0, rel=1e-15)
    assert arcsine(math.sqrt(2)) == pytest.approx(1.0, rel=1e-15)
    assert resolution(0.1) == pytest.approx(0.028867513459481287, rel=1e-15)
    with pytest.raises(ValueError):
        rectangular(-1.0)


def test_type_a() -> None:
    values = [10.0012, 10.0009, 10.0015, 10.0011, 10.0008, 10.0013]
    mean, u, dof = type_a(values)
    assert mean == pytest.approx(statistics.fmean(values), rel=1e-15)
    assert u == pytest.approx(statistics.stdev(values) / math.sqrt(6), rel=1e-12)
    assert dof == 5
    with pytest.raises(ValueError):
        type_a([1.0])


# --- combine ------------------------------------------------------------------------------------


def test_combine_welch_satterthwaite_by_hand() -> None:
    comps = [
        Component("a", 0.3, dof=4, distribution="type A"),
        Component("b", 0.2, sensitivity=-2.0, distribution="rectangular"),
        Component("c", 0.1, dof=9),
    ]
    r = combine(comps)
    ci_ui = [0.3, 0.4, 0.1]
    u = math.sqrt(sum(x * x for x in ci_ui))
    nu = u**4 / (0.3**4 / 4 + 0.1**4 / 9)
    assert r.u == pytest.approx(u, rel=1e-12)
    assert r.nu_eff == pytest.approx(nu, rel=1e-9)
    assert r.k == coverage_factor(nu)
    assert math.isclose(r.U, r.k * u, rel_tol=1e-12)
    assert r.contributions == (
        ("a", pytest.approx(0.3)),
        ("b", pytest.approx(0.4)),
        ("c", pytest.approx(0.1)),
    )


def test_combine_all_infinite_dof_gives_k2() -> None:
    r = combine([Component("x", 3.0), Component("y", 4.0)])
    assert r.u == pytest.approx(5.0)
    assert r.nu_eff == math.inf
    assert r.k == 2.0
    assert math.isclose(r.U, 10.0, rel_tol=1e-12)


def test_combine_zero_component() -> None:
    r = combine([Component("zero", 0.0, dof=2), Component("y", 1.0, dof=10)])
    assert r.u == pytest.approx(1.0)
    assert r.nu_eff == pytest.approx(10.0)
    assert r.contributions[0] == ("zero", 0.0)
    r0 = combine([Component("zero", 0.0)])
    assert (r0.u, r0.U, r0.nu_eff) == (0.0, 0.0, math.inf)


def test_combine_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        combine([])
    with pytest.raises(ValueError, match="u must be"):
        Component("x", -1.0)
    with pytest.raises(ValueError, match="dof"):
        Component("x", 1.0, dof=0.5)
    with pytest.raises(ValueError, match="distribution"):
        Component("x", 1.0, distribution="gaussian")


# --- golden example: GUM H.1 end gauge (inputs as in GTC examples/GUM_H1.py) -------------------


def test_gum_h1_end_gauge_full_model() -> None:
    from GTC import result, type_b, ureal

    # lengths in nm, temperatures in °C
    d0 = ureal(215, 5.8, 24, label="d0")
    d1 = ureal(0.0, 3.9, 5, label="d1")
    d2 = ureal(0.0, 6.7, 8, label="d2")
    d = d0 + d1 + d2
    alpha_s = ureal(11.5e-6, type_b.uniform(2e-6), label="alpha_s")
    d_alpha = ureal(0.0, type_b.uniform(1e-6), 50, label="d_alpha")
    d_theta = ureal(0.0, type_b.uniform(0.05), 2, label="d_theta")
    theta_bar = ureal(-0.1, 0.2, label="theta_bar")
    delta = ureal(0.0, type_b.arcsine(0.5), label="Delta")
    theta = theta_bar + delta
    l_s = ureal(5.0000623e7, 25, 18, label="l_s")
    length = result(l_s + d - (l_s * d_alpha * theta + l_s * alpha_s * d_theta), label="l")

    r = budget_from_ureal(length)
    assert round(length.x) == 50_000_838  # GUM H.1.5: l = 50.000 838 mm
    assert round_uncertainty(r.u) == 32  # u_c(l) = 32 nm
    assert r.nu_eff == pytest.approx(16.7, abs=0.1)  # ν_eff ≈ 16.7
    contributions = dict(r.contributions)
    assert f"{contributions['l_s']:.0f}" == "25"  # GUM Table H.1: u_i(l) in nm
    assert f"{contributions['d_theta']:.1f}" == "16.6"
    assert f"{contributions['d_alpha']:.1f}" == "2.9"
    assert contributions["alpha_s"] == 0.0  # first order: c = 0
    # GUM H.1.6: U99 = t99(16) · u_c = 2.92 × 32 nm = 93 nm, with ν_eff truncated to 16
    r99 = budget_from_ureal(length, probability=0.99, truncate_dof=True)
    assert f"{r99.k:.2f}" == "2.92"
    assert round_uncertainty(r99.k * round_uncertainty(r99.u)) == 93
    assert format_with_uncertainty(length.x / 1e6, r.u / 1e6) == ("50.000838", "0.000032")


def test_gum_h1_end_gauge_linearised_components() -> None:
    l_s, theta_bar, alpha_s = 5.0000623e7, -0.1, 11.5e-6
    r = combine(
        [
            Component("l_s", 25.0, dof=18),
            Component("d0", 5.8, dof=24),
            Component("d1", 3.9, dof=5),
            Component("d2", 6.7, dof=8),
            Component("alpha_s", rectangular(2e-6), sensitivity=0.0, distribution="rectangular"),
            Component("theta", 0.2, sensitivity=0.0),
            Component(
                "d_alpha",
                rectangular(1e-6),
                dof=50,
                sensitivity=-l_s * theta_bar,
                distribution="rectangular",
            ),
            Component(
                "d_theta",
                rectangular(0.05),
                dof=2,
                sensitivity=-l_s * alpha_s,
                distribution="rectangular",
            ),
        ]
    )
    assert round_uncertainty(r.u) == 32
    assert r.nu_eff == pytest.approx(16.7, abs=0.1)


# --- golden example: EA-4/02 S2, 10 kg weight ---------------------------------------------------


def test_ea_4_02_s2_weight() -> None:
    # in g: m_S 10 000.005 g (U 45 mg, k 2), drift ±15 mg, δm 0.020 g (u 14.2 mg),
    # δm_C ±10 mg, δB ±10 mg
    r = combine(
        [
            Component("m_S", 0.045 / 2),
            Component("drift", rectangular(0.015), distribution="rectangular"),
            Component("δm", 0.0142, distribution="type A"),
            Component("δm_C", rectangular(0.010), distribution="rectangular"),
            Component("δB", rectangular(0.010), distribution="rectangular"),
        ]
    )
    m_x = 10_000.005 + 0.020
    assert f"{r.u * 1000:.1f}" == "29.1"  # u = 29.1 mg
    assert r.k == 2.0
    assert round_uncertainty(r.U) == 0.058  # U = 58 mg
    assert round_value(m_x, r.U) == 10_000.025
    assert format_with_uncertainty(m_x, r.U) == ("10000.025", "0.058")


# --- rounding (GUM 7.2.6) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("U", "mode", "digits", "expected"),
    [
        (0.058293, "nearest", 2, 0.058),
        (58.29, "nearest", 2, 58.0),
        (58.5, "nearest", 2, 59.0),  # half up
        (0.0145, "nearest", 2, 0.015),  # half up on the decimal reading, not the binary one
        (1.05, "nearest", 2, 1.1),
        (0.0996, "nearest", 2, 0.1),  # carries to 0.10
        (99.6, "nearest", 2, 100.0),
        (1234.0, "nearest", 2, 1200.0),
        (58.01, "up", 2, 59.0),
        (0.0581, "up", 2, 0.059),
        (0.058, "up", 2, 0.058),
        (0.024000000000000004, "up", 2, 0.024),  # float noise does not round up
        (0.0583, "nearest", 1, 0.06),
        (0.0, "nearest", 2, 0.0),
    ],
)
def test_round_uncertainty(U: float, mode: str, digits: int, expected: float) -> None:
    assert round_uncertainty(U, mode=mode, digits=digits) == expected  # type: ignore[arg-type]


def test_round_uncertainty_rejects() -> None:
    with pytest.raises(ValueError):
        round_uncertainty(-1.0)
    with pytest.raises(ValueError):
        round_uncertainty(math.inf)
    with pytest.raises(ValueError):
        round_uncertainty(1.0, mode="down")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "U", "strings"),
    [
        (10_000.0251, 0.0583, ("10000.025", "0.058")),
        (1.2, 0.0996, ("1.20", "0.10")),
        (0.1 + 0.2, 0.011, ("0.300", "0.011")),  # no 0.30000000000000004
        (-0.0004, 0.012, ("0.000", "0.012")),  # no "-0.000"
        (1234.5, 562.0, ("1230", "560")),
        (12.345, 0.5, ("12.35", "0.50")),  # half up
        (-2.25, 1.5, ("-2.3", "1.5")),  # ties away from zero
        (199.99999999999997, 0.15, ("200.00", "0.15")),
    ],
)
def test_format_with_uncertainty(value: float, U: float, strings: tuple[str, str]) -> None:
    assert format_with_uncertainty(value, U) == strings
    assert round_value(value, U) == float(strings[0])


def test_format_up_mode_and_errors() -> None:
    assert format_with_uncertainty(5.4321, 0.0581, mode="up") == ("5.432", "0.059")
    with pytest.raises(ValueError):
        format_with_uncertainty(1.0, 0.0)
    with pytest.raises(ValueError):
        round_value(math.nan, 0.1)

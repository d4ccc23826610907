"""The error-of-indication budget of METROLOGY.md §1.5, checked against hand computation.

Expected values are computed here with ``math`` from the formulas of §1.5 (not through
benchctl's code path); k is checked against scipy's Student t and GUM Table G.2.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats

from benchctl.errors import DutParameterError
from benchctl.metrology.balance_budget import (
    COMPONENT_NAMES,
    MODEL,
    error_of_indication_budget,
    error_of_indication_components,
)
from benchctl.metrology.gum import round_uncertainty

P = math.erf(math.sqrt(2))  # 95.45 %: the probability of ±2σ


def t_factor(nu: float) -> float:
    return 2.0 if math.isinf(nu) else float(stats.t.ppf((1 + P) / 2, nu))


def hand_budget(
    *,
    indication: float,
    d0: float,
    dL: float,
    s_rep: float,
    n_rep: int,
    ecc_delta_max: float,
    ecc_load: float,
    u_ref: float,
    mpe: float,
    drift: float,
) -> tuple[list[float], float, float]:
    us = [
        d0 / math.sqrt(12),
        dL / math.sqrt(12),
        s_rep,
        indication * ecc_delta_max / (2 * ecc_load * math.sqrt(3)),
        u_ref,
        mpe / (4 * math.sqrt(3)),
        drift / math.sqrt(3),
    ]
    u = math.sqrt(sum(x * x for x in us))
    nu = math.inf if s_rep == 0 else u**4 / (s_rep**4 / (n_rep - 1))
    return us, u, nu


# A class II balance, Max 620 g, d = 0.001 g, at 200 g with an F1 200 g weight (MPE 1.0 mg),
# certificate U = 0.3 mg (k = 2). Masses in g.
BASE = dict(
    indication=200.002,
    d0=0.001,
    dL=0.001,
    s_rep=0.0008,
    n_rep=10,
    ecc_delta_max=0.003,
    ecc_load=200.0,
    U_ref=0.0003,
    k_ref=2.0,
    weight_mpe=0.001,
)


def test_budget_matches_hand_computation() -> None:
    r = error_of_indication_budget(**BASE)  # type: ignore[arg-type]
    us, u, nu = hand_budget(
        indication=200.002,
        d0=0.001,
        dL=0.001,
        s_rep=0.0008,
        n_rep=10,
        ecc_delta_max=0.003,
        ecc_load=200.0,
        u_ref=0.00015,
        mpe=0.001,
        drift=0.001,
    )
    assert r.u == pytest.approx(u, rel=1e-12)
    assert r.nu_eff == pytest.approx(nu, rel=1e-9)
    assert r.k == pytest.approx(t_factor(nu), rel=1e-9)
    assert math.isclose(r.U, r.k * u, rel_tol=1e-12)
    assert [name for name, _ in r.contributions] == [
        "rounding at zero",
        "rounding at load",
        "repeatability",
        "eccentricity",
        "reference mass",
        "air buoyancy",
        "weight drift",
    ]
    for (_, got), expected in zip(r.contributions, us, strict=True):
        assert got == pytest.approx(expected, rel=1e-12)
    # by hand, in mg²: 2 x 0.0833 + 0.64 + 0.7500 + 0.0225 + 0.0208 + 0.3333 = 1.9334
    # -> u = 1.390 mg; ν_eff = 1.390⁴ / (0.8⁴/9) = 82.1; k = 2.03; U = 2.8 mg
    assert f"{r.u * 1000:.3f}" == "1.390"
    assert f"{r.nu_eff:.1f}" == "82.1"
    assert f"{r.k:.2f}" == "2.03"
    assert round_uncertainty(r.U) == 0.0028


def test_small_n_rep_gives_finite_nu_and_k_above_2() -> None:
    # 3 loadings, repeatability dominates: ν_eff is close to n − 1 = 2
    args = dict(BASE, s_rep=0.004, n_rep=3)
    r = error_of_indication_budget(**args)  # type: ignore[arg-type]
    _, u, nu = hand_budget(
        indication=200.002,
        d0=0.001,
        dL=0.001,
        s_rep=0.004,
        n_rep=3,
        ecc_delta_max=0.003,
        ecc_load=200.0,
        u_ref=0.00015,
        mpe=0.001,
        drift=0.001,
    )
    assert 2 < nu < 3
    assert r.nu_eff == pytest.approx(nu, rel=1e-9)
    assert r.k == pytest.approx(t_factor(nu), rel=1e-9)
    # between the Table G.2 values for ν = 3 (3.31) and ν = 2 (4.53)
    assert 3.31 < r.k < 4.53
    assert math.isclose(r.U, r.k * u, rel_tol=1e-12)
    # EURAMET cg-18 truncation: ν = 2 -> k = 4.53
    rt = error_of_indication_budget(**args, truncate_dof=True)  # type: ignore[arg-type]
    assert f"{rt.k:.2f}" == "4.53"


def test_reference_from_class_and_explicit_drift() -> None:
    args = dict(BASE, U_ref=None, k_ref=None, u_ref_from_class=True, drift=0.0002)
    r = error_of_indication_budget(**args)  # type: ignore[arg-type]
    _, u, _ = hand_budget(
        indication=200.002,
        d0=0.001,
        dL=0.001,
        s_rep=0.0008,
        n_rep=10,
        ecc_delta_max=0.003,
        ecc_load=200.0,
        u_ref=0.001 / math.sqrt(3),
        mpe=0.001,
        drift=0.0002,
    )
    assert r.u == pytest.approx(u, rel=1e-12)
    contributions = dict(r.contributions)
    assert contributions["reference mass"] == pytest.approx(0.001 / math.sqrt(3), rel=1e-12)
    assert contributions["weight drift"] == pytest.approx(0.0002 / math.sqrt(3), rel=1e-12)


def test_zero_load_point() -> None:
    # no weights on the pan: eccentricity, buoyancy, drift and reference vanish
    args = dict(BASE, indication=0.0, weight_mpe=0.0, U_ref=0.0, s_rep=0.0)
    r = error_of_indication_budget(**args)  # type: ignore[arg-type]
    assert r.u == pytest.approx(math.sqrt(2) * 0.001 / math.sqrt(12), rel=1e-12)
    assert r.nu_eff == math.inf
    assert r.k == 2.0


def test_different_d_at_zero_and_load_and_negative_delta() -> None:
    args = dict(BASE, d0=0.001, dL=0.01, ecc_delta_max=-0.003)
    r = error_of_indication_budget(**args)  # type: ignore[arg-type]
    contributions = dict(r.contributions)
    assert contributions["rounding at zero"] == pytest.approx(0.001 / math.sqrt(12))
    assert contributions["rounding at load"] == pytest.approx(0.01 / math.sqrt(12))
    assert contributions["eccentricity"] == pytest.approx(
        200.002 * 0.003 / (2 * 200.0 * math.sqrt(3))
    )


def test_components_carry_dof_and_distribution() -> None:
    comps = error_of_indication_components(**dict(BASE, n_rep=6))  # type: ignore[arg-type]
    assert tuple(c.name for c in comps) == COMPONENT_NAMES
    dofs = {c.name: c.dof for c in comps}
    assert dofs["repeatability"] == 5
    assert all(v == math.inf for k, v in dofs.items() if k != "repeatability")
    assert {c.name: c.distribution for c in comps}["rounding at zero"] == "resolution"


def test_model_is_named() -> None:
    assert "EURAMET cg-18" in MODEL
    assert "METROLOGY.md §1.5" in MODEL


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"weight_mpe": None}, "weight_mpe"),
        ({"n_rep": 1}, "n_rep must be an integer ≥ 2"),
        ({"n_rep": 2.5}, "n_rep must be an integer ≥ 2"),
        ({"d0": 0.0}, "d0"),
        ({"dL": -0.001}, "dL"),
        ({"s_rep": -0.1}, "s_rep"),
        ({"ecc_load": 0.0}, "ecc_load"),
        ({"U_ref": None}, "U_ref and k_ref"),
        ({"k_ref": 0.0}, "k_ref"),
        ({"U_ref": -0.1}, "U_ref"),
        ({"drift": -0.001}, "drift"),
        ({"indication": math.nan}, "indication"),
    ],
)
def test_rejects_impossible_inputs(change: dict[str, object], match: str) -> None:
    with pytest.raises(DutParameterError, match=match):
        error_of_indication_budget(**dict(BASE, **change))  # type: ignore[arg-type]

"""Uncertainty of the error of indication of a balance (METROLOGY.md §1.5, [model]).

E = I − m_ref. The budget is the model benchctl adopts after EURAMET cg-18 v4.0 §7, written
out in METROLOGY.md §1.5 because the full primary text was not at hand: a lab reviews it
through :data:`MODEL`, which the certificate prints. Standard uncertainties:

==================  ==========================================  ============
component           u                                           ν
==================  ==========================================  ============
rounding at zero    d0/√12                                      ∞
rounding at load    dL/√12                                      ∞
repeatability       s (repeatability test, applied at every     n − 1
                    load)
eccentricity        I · |ΔI_ecc|max / (2 · L_ecc · √3)          ∞
reference mass      U_cert/k_cert, or MPE/√3 (class only)       ∞
air buoyancy        MPE/(4√3) (air density not measured,        ∞
                    weights to R111)
weight drift        D/√3, D from the weight-set record          ∞
                    (default D = MPE)
==================  ==========================================  ============

u²(E) is their sum of squares, k from ν_eff (METROLOGY.md §4, :func:`gum.combine`), U = k·u.
Report U with two significant digits (:func:`gum.round_uncertainty`).

Units: every mass argument (``indication``, ``d0``, ``dL``, ``s_rep``, ``ecc_delta_max``,
``ecc_load``, ``U_ref``, ``weight_mpe``, ``drift``) is in one and the same unit, which should
be the DUT's display unit (g for the bundled balance procedure); u and U come out in that
unit. In particular the R111 MPEs (tabulated in mg by :mod:`r111`) must be converted by the
caller.

``weight_mpe`` is the MPE of the whole test load: the sum of the MPEs of the weights that
compose it (the caller adds them; they are bounds of the same sign, so they add linearly).
"""

from __future__ import annotations

import math
import numbers
from typing import Final

from benchctl.errors import DutParameterError
from benchctl.metrology.gum import P_K2, BudgetResult, Component, combine

__all__ = [
    "COMPONENT_NAMES",
    "MODEL",
    "error_of_indication_budget",
    "error_of_indication_components",
]

#: The model a certificate names (METROLOGY.md §1.5 is marked [model]).
MODEL: Final = "EURAMET cg-18 v4.0 §7 as adopted in benchctl METROLOGY.md §1.5"

#: Component names, in the order of METROLOGY.md §1.5 (and of the budget table).
COMPONENT_NAMES: Final = (
    "rounding at zero",
    "rounding at load",
    "repeatability",
    "eccentricity",
    "reference mass",
    "air buoyancy",
    "weight drift",
)

_SQRT3: Final = math.sqrt(3.0)
_SQRT12: Final = math.sqrt(12.0)


def _finite(name: str, x: float) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise DutParameterError(f"{name} must be a finite number, got {x!r}")
    return v


def _non_negative(name: str, x: float) -> float:
    v = _finite(name, x)
    if v < 0:
        raise DutParameterError(f"{name} must be ≥ 0, got {x!r} (METROLOGY.md §1.5)")
    return v


def _positive(name: str, x: float) -> float:
    v = _finite(name, x)
    if v <= 0:
        raise DutParameterError(f"{name} must be > 0, got {x!r} (METROLOGY.md §1.5)")
    return v


def error_of_indication_components(
    *,
    indication: float,
    d0: float,
    dL: float,
    s_rep: float,
    n_rep: int,
    ecc_delta_max: float,
    ecc_load: float,
    U_ref: float | None,
    k_ref: float | None,
    weight_mpe: float | None = None,
    drift: float | None = None,
    u_ref_from_class: bool = False,
) -> list[Component]:
    """The seven components of METROLOGY.md §1.5 for one test point, in the model's order.

    Arguments are described in :func:`error_of_indication_budget`. Returned separately so a
    certificate can print the budget table (u, distribution, ν per row).
    """
    indication = _finite("indication", indication)
    d0 = _positive("d0 (scale interval at zero)", d0)
    dL = _positive("dL (scale interval at the load)", dL)
    s_rep = _non_negative("s_rep (repeatability standard deviation)", s_rep)
    if isinstance(n_rep, bool) or not isinstance(n_rep, numbers.Integral) or n_rep < 2:
        raise DutParameterError(
            f"n_rep must be an integer ≥ 2 (ν = n − 1 for the repeatability, "
            f"METROLOGY.md §1.5), got {n_rep!r}"
        )
    ecc_delta_max = abs(_finite("ecc_delta_max", ecc_delta_max))
    ecc_load = _positive("ecc_load (eccentricity test load)", ecc_load)
    if weight_mpe is None:
        raise DutParameterError(
            "weight_mpe (MPE of the whole test load, sum of the weights' R111 MPEs) is needed "
            "for the air-buoyancy component u_B = MPE/(4√3) of METROLOGY.md §1.5"
        )
    mpe = _non_negative("weight_mpe", weight_mpe)
    drift_bound = mpe if drift is None else _non_negative("drift", drift)

    if u_ref_from_class:
        u_ref = mpe / _SQRT3
        ref_distribution = "rectangular"
    else:
        if U_ref is None or k_ref is None:
            raise DutParameterError(
                "U_ref and k_ref (from the weights' certificate) are needed unless "
                "u_ref_from_class=True (then u = MPE/√3, METROLOGY.md §1.5)"
            )
        u_ref = _non_negative("U_ref", U_ref) / _positive("k_ref", k_ref)
        ref_distribution = "normal"

    u_ecc = abs(indication) * ecc_delta_max / (2.0 * ecc_load * _SQRT3)
    return [
        Component("rounding at zero", d0 / _SQRT12, distribution="resolution"),
        Component("rounding at load", dL / _SQRT12, distribution="resolution"),
        Component("repeatability", s_rep, dof=float(int(n_rep) - 1), distribution="type A"),
        Component("eccentricity", u_ecc, distribution="rectangular"),
        Component("reference mass", u_ref, distribution=ref_distribution),
        Component("air buoyancy", mpe / (4.0 * _SQRT3), distribution="rectangular"),
        Component("weight drift", drift_bound / _SQRT3, distribution="rectangular"),
    ]


def error_of_indication_budget(
    *,
    indication: float,
    d0: float,
    dL: float,
    s_rep: float,
    n_rep: int,
    ecc_delta_max: float,
    ecc_load: float,
    U_ref: float | None,
    k_ref: float | None,
    weight_mpe: float | None = None,
    drift: float | None = None,
    u_ref_from_class: bool = False,
    probability: float = P_K2,
    truncate_dof: bool = False,
) -> BudgetResult:
    """u, ν_eff, k and U of the error of indication E = I − m_ref at one load (METROLOGY.md
    §1.5, model :data:`MODEL`). All masses in one unit (see the module docstring).

    - ``indication``: I at this load (its magnitude scales the eccentricity component).
    - ``d0``, ``dL``: scale interval at zero and at the load (both = d unless the DUT's
      resolution changes with load, e.g. multi-interval instruments).
    - ``s_rep``, ``n_rep``: standard deviation and number of loadings of the repeatability
      test; ν of this component is n_rep − 1, so a small n gives a finite ν_eff and k > 2.
    - ``ecc_delta_max``, ``ecc_load``: the largest |I_i − I_centre| of the eccentricity test
      and the load L_ecc it was made with.
    - ``U_ref``, ``k_ref``: expanded uncertainty and coverage factor of the test load from the
      weights' certificate (for a combination, the linear sum of the weights' U, as they are
      correlated — METROLOGY.md §1.4). Ignored, and may be None, with ``u_ref_from_class``.
    - ``weight_mpe``: MPE of the whole test load (required: it drives air buoyancy and the
      default drift; 0 at zero load).
    - ``drift``: bound D of the weights' drift from the weight-set record; default the MPE.
    - ``u_ref_from_class``: only the class of the weights is known: u = MPE/√3.
    - ``probability``, ``truncate_dof``: passed to :func:`gum.combine` (k at non-integer
      ν_eff by GTC; set ``truncate_dof=True`` for a lab that follows cg-18's truncation).

    Impossible inputs (d ≤ 0, n_rep < 2, L_ecc ≤ 0, negative s or U) raise DutParameterError.
    """
    components = error_of_indication_components(
        indication=indication,
        d0=d0,
        dL=dL,
        s_rep=s_rep,
        n_rep=n_rep,
        ecc_delta_max=ecc_delta_max,
        ecc_load=ecc_load,
        U_ref=U_ref,
        k_ref=k_ref,
        weight_mpe=weight_mpe,
        drift=drift,
        u_ref_from_class=u_ref_from_class,
    )
    return combine(components, probability=probability, truncate_dof=truncate_dof)

"""GUM uncertainty budgets through GTC, coverage factor and reporting rules (METROLOGY.md §4).

Source: JCGM 100:2008 (GUM) — law of propagation (5.1.2), Type A (4.2), Type B
distributions (4.3.7 rectangular, 4.3.9 triangular, F.2.2.1 resolution), Welch–Satterthwaite
(G.4.1), coverage factor from the t-distribution (G.3, Table G.2), reporting (7.2.6).

The arithmetic is done by GTC (the MSL "GUM Tree Calculator", ``GTC.ureal``,
``GTC.reporting``): each component becomes an elementary uncertain real number, so that
correlations (``GTC.set_correlation``) and non-linear models can be added later without a
private GUM engine. GTC (and scipy behind it) is imported inside the functions that need it,
not at module import, so that ``import benchctl.metrology.gum`` stays cheap for the CLI.

Decisions (state them on a certificate with :data:`COVERAGE_POLICY`):

- Non-integer ν_eff: k is the Student-t quantile at the real-valued ν_eff, as GTC's
  ``reporting.k_factor`` computes it (scipy ``stdtrit`` accepts a non-integer ν). GUM G.4.1
  note 1 allows either interpolation in Table G.2 or truncation to the integer below; the
  continuous quantile is the exact form of interpolation. EURAMET cg-18 and the published
  GUM H.1 numbers truncate: pass ``truncate_dof=True`` to do that (k slightly larger).
  GTC treats ν above 1e5 as infinite.
- Coverage probability: the default :data:`P_K2` = erf(√2) = 0.954 499 7… is the "95.45 %"
  of GUM Table G.2, defined there (footnote b) as the probability that gives k = 2 for a
  normal distribution. With it k(ν = ∞) is exactly 2, as EA-4/02 and every certificate
  print; the literal 0.9545 would give k(∞) = 2.000 002.
- Rounding: u and U are reported with two significant digits (GUM 7.2.6), half-up by
  default (``mode="nearest"``); ``mode="up"`` always rounds up, as some labs' procedures
  require. The value is rounded half-up (away from zero) to the last digit of the rounded U.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:  # GTC has no type information; the runtime import is lazy
    from GTC.lib import UncertainReal

__all__ = [
    "COVERAGE_POLICY",
    "DISTRIBUTIONS",
    "P_K2",
    "BudgetResult",
    "Component",
    "arcsine",
    "budget_from_ureal",
    "combine",
    "coverage_factor",
    "format_with_uncertainty",
    "rectangular",
    "resolution",
    "round_uncertainty",
    "round_value",
    "triangular",
    "type_a",
]

#: Coverage probability for which k = 2 exactly with infinite degrees of freedom:
#: erf(2/√2) = 0.954 499 736…, the "95.45 %" of GUM Table G.2 (footnote b).
P_K2: Final = math.erf(math.sqrt(2.0))

#: One line a certificate can print to say how k was obtained.
COVERAGE_POLICY: Final = (
    "k = Student-t quantile at ν_eff (Welch–Satterthwaite, JCGM 100:2008 G.4.1) for "
    "p = 95.45 % (k = 2 for ν_eff = ∞), evaluated at non-integer ν_eff by GTC "
    "reporting.k_factor unless truncation to the integer below is requested"
)

#: Descriptive distribution names accepted in :class:`Component` (typos are refused).
DISTRIBUTIONS: Final = ("normal", "rectangular", "triangular", "arcsine", "resolution", "type A")

RoundingMode = Literal["nearest", "up"]


@dataclass(frozen=True)
class Component:
    """One input of a budget: standard uncertainty ``u`` of an input quantity, its degrees of
    freedom ``dof`` (∞ for Type B evaluations taken as exactly known), the sensitivity
    coefficient c_i = ∂f/∂x_i (its contribution to u_c is |c_i u|), and the distribution the
    u was derived from (descriptive, printed in the budget table)."""

    name: str
    u: float
    dof: float = math.inf
    sensitivity: float = 1.0
    distribution: str = "normal"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.u) and self.u >= 0):
            raise ValueError(f"component {self.name!r}: u must be finite and ≥ 0, got {self.u}")
        if math.isnan(self.dof) or self.dof < 1:
            raise ValueError(f"component {self.name!r}: dof must be ≥ 1 or ∞, got {self.dof}")
        if not math.isfinite(self.sensitivity):
            raise ValueError(
                f"component {self.name!r}: sensitivity must be finite, got {self.sensitivity}"
            )
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"component {self.name!r}: distribution {self.distribution!r} is not one of "
                f"{', '.join(DISTRIBUTIONS)}"
            )

    @property
    def contribution(self) -> float:
        """|c_i · u(x_i)|, the component's share of u_c in the unit of the output."""
        return abs(self.sensitivity * self.u)


@dataclass(frozen=True)
class BudgetResult:
    """A combined result: u_c, ν_eff, k, U = k·u_c (unrounded: round for the certificate with
    :func:`round_uncertainty`), and the contributions |c_i u_i| by component name."""

    u: float
    nu_eff: float
    k: float
    U: float
    contributions: tuple[tuple[str, float], ...]


def _check_half_width(name: str, a: float) -> None:
    if not (math.isfinite(a) and a >= 0):
        raise ValueError(f"{name} must be finite and ≥ 0, got {a}")


def rectangular(half_width: float) -> float:
    """u of a rectangular distribution of half-width a: a/√3 (GUM 4.3.7)."""
    from GTC import type_b

    _check_half_width("half_width", half_width)
    return float(type_b.uniform(half_width))


def triangular(half_width: float) -> float:
    """u of a triangular distribution of half-width a: a/√6 (GUM 4.3.9)."""
    from GTC import type_b

    _check_half_width("half_width", half_width)
    return float(type_b.triangular(half_width))


def resolution(d: float) -> float:
    """u of the rounding of a digital indication with interval d: d/√12 (GUM F.2.2.1)."""
    from GTC import type_b

    _check_half_width("d", d)
    return float(type_b.uniform(d / 2.0))


def arcsine(a: float) -> float:
    """u of an arcsine (U-shaped) distribution of half-width a: a/√2 (e.g. a cyclic
    variation of room temperature, as in the GUM H.1 end-gauge example)."""
    from GTC import type_b

    _check_half_width("a", a)
    return float(type_b.arcsine(a))


def type_a(values: Sequence[float]) -> tuple[float, float, float]:
    """Type A evaluation of repeated observations (GUM 4.2): (mean, s/√n, n − 1)."""
    from GTC import type_a as ta

    if len(values) < 2:
        raise ValueError(f"a Type A evaluation needs at least 2 observations, got {len(values)}")
    est = ta.estimate(list(values))
    return float(est.x), float(est.u), float(est.df)


def coverage_factor(
    nu_eff: float, probability: float = P_K2, *, truncate_dof: bool = False
) -> float:
    """k = t_p(ν_eff), the Student-t factor for coverage ``probability`` (GUM G.3, Table G.2).

    Computed by GTC ``reporting.k_factor`` at the real-valued ν_eff (continuous in ν); with
    ``truncate_dof=True`` ν_eff is first truncated to the integer below (EURAMET cg-18, GUM
    G.4.1 note 1), with a 1e-9 allowance so that 16.9999999999 counts as 17. The result is
    rounded to 12 significant digits to drop binary noise (k(∞) at :data:`P_K2` is 2).
    """
    from GTC import reporting

    if not (0.0 < probability < 1.0):
        raise ValueError(f"probability must be between 0 and 1, got {probability}")
    if math.isnan(nu_eff) or nu_eff < 1:
        raise ValueError(f"ν_eff must be ≥ 1 or ∞, got {nu_eff}")
    nu = nu_eff
    if truncate_dof and math.isfinite(nu):
        nu = float(math.floor(nu + 1e-9))
    k = float(reporting.k_factor(nu, p=100.0 * probability))
    return float(f"{k:.12g}")


def budget_from_ureal(
    y: UncertainReal,
    *,
    probability: float = P_K2,
    truncate_dof: bool = False,
) -> BudgetResult:
    """Summarise a GTC uncertain real number as a :class:`BudgetResult`.

    For models written directly with GTC (non-linear, correlated, intermediate results, e.g.
    the GUM H.1 end gauge). Contributions are |u_i(y)| of every elementary input as reported
    by ``GTC.reporting.budget`` (largest first, nothing trimmed).
    """
    from GTC import reporting

    u = float(y.u)
    nu = float(y.df) if u > 0 else math.inf
    if math.isnan(nu):
        nu = math.inf
    k = coverage_factor(nu, probability, truncate_dof=truncate_dof)
    contributions = tuple((str(inf.label), float(inf.u)) for inf in reporting.budget(y, trim=0))
    return BudgetResult(u=u, nu_eff=nu, k=k, U=k * u, contributions=contributions)


def combine(
    components: Iterable[Component],
    *,
    probability: float = P_K2,
    truncate_dof: bool = False,
) -> BudgetResult:
    """Combine independent components: u_c² = Σ (c_i u_i)² (GUM 5.1.2), ν_eff by
    Welch–Satterthwaite (GUM G.4.1), k = t_p(ν_eff) (see :func:`coverage_factor`), U = k u_c.

    Each component is made a GTC ``ureal`` (value 0: only the uncertainty matters for the
    budget) and y = Σ c_i x_i is evaluated by GTC, which supplies u_c, ν_eff and the
    components of uncertainty. Contributions keep the caller's order (the order of the model
    on the certificate). A component with u = 0 contributes 0 and does not affect ν_eff.
    """
    from GTC import reporting, ureal

    comps = list(components)
    if not comps:
        raise ValueError("a budget needs at least one component")
    xs = [ureal(0.0, c.u, c.dof, label=c.name) for c in comps]
    terms = [c.sensitivity * x for c, x in zip(comps, xs, strict=True)]
    y = terms[0]
    for term in terms[1:]:
        y = y + term
    u = float(y.u)
    nu = float(y.df) if u > 0 else math.inf
    if math.isnan(nu):
        nu = math.inf
    k = coverage_factor(nu, probability, truncate_dof=truncate_dof)
    contributions = tuple(
        (c.name, abs(float(reporting.u_component(y, x)))) for c, x in zip(comps, xs, strict=True)
    )
    return BudgetResult(u=u, nu_eff=nu, k=k, U=k * u, contributions=contributions)


# --- reporting (GUM 7.2.6) -----------------------------------------------------------------

_MODES: Final[dict[str, str]] = {"nearest": ROUND_HALF_UP, "up": ROUND_CEILING}


def _round_u_decimal(U: float, mode: RoundingMode, digits: int) -> Decimal:
    """U rounded to ``digits`` significant digits as a Decimal whose exponent is the last kept
    decimal place. U is first read with 12 significant digits so that binary noise
    (0.024000000000000004) does not push ``mode="up"`` to the next step."""
    if mode not in _MODES:
        raise ValueError(f"rounding mode must be 'nearest' or 'up', got {mode!r}")
    if digits < 1:
        raise ValueError(f"digits must be ≥ 1, got {digits}")
    if not (math.isfinite(U) and U >= 0):
        raise ValueError(f"U must be finite and ≥ 0, got {U}")
    d = Decimal(f"{U:.12g}")
    if d == 0:
        return Decimal(0)
    rounding = _MODES[mode]
    exp = d.adjusted() - digits + 1
    q = d.quantize(Decimal(1).scaleb(exp), rounding=rounding)
    if q.adjusted() > d.adjusted():  # 0.0996 -> 0.100: keep two digits, 0.10
        q = q.quantize(Decimal(1).scaleb(exp + 1), rounding=rounding)
    return q


def round_uncertainty(U: float, *, mode: RoundingMode = "nearest", digits: int = 2) -> float:
    """U (or u) rounded to two significant digits for reporting (GUM 7.2.6).

    ``mode="nearest"`` rounds half up (0.0145 -> 0.015, 58.29 -> 58); ``mode="up"`` always
    rounds up (58.01 -> 59), for labs whose procedure says so. ``digits`` may be set to 1 by a
    lab that reports one significant digit. 0 stays 0.
    """
    return float(_round_u_decimal(U, mode, digits))


def _value_decimal(
    value: float, U: float, mode: RoundingMode, digits: int
) -> tuple[Decimal, Decimal]:
    if not math.isfinite(value):
        raise ValueError(f"value must be finite, got {value}")
    q = _round_u_decimal(U, mode, digits)
    if q == 0:
        raise ValueError("U must be > 0 to fix the decimal place of the value")
    place = Decimal(1).scaleb(int(q.as_tuple().exponent))
    v = Decimal(f"{value:.15g}").quantize(place, rounding=ROUND_HALF_UP)
    if v == 0:
        v = abs(v)  # no "-0.00"
    return v, q


def round_value(
    value: float, U: float, *, mode: RoundingMode = "nearest", digits: int = 2
) -> float:
    """The value rounded to the decimal place of the last digit of the rounded U (GUM 7.2.6):
    10 000.0251 g with U = 0.0583 g -> 10 000.025 g. Ties round away from zero."""
    v, _ = _value_decimal(value, U, mode, digits)
    return float(v)


def format_with_uncertainty(
    value: float, U: float, *, mode: RoundingMode = "nearest", digits: int = 2
) -> tuple[str, str]:
    """(value, U) as strings with the same number of decimals, ready for a certificate:
    (10000.0251, 0.0583) -> ("10000.025", "0.058"); (1.2, 0.1) -> ("1.20", "0.10");
    (1234.5, 562) -> ("1230", "560"). Plain decimal notation, no exponent, no float noise."""
    v, q = _value_decimal(value, U, mode, digits)
    return format(v, "f"), format(q, "f")

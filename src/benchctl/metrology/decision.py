"""Decision rules for statements of conformity (ILAC G8:09/2019; METROLOGY.md §5, [src]).

Two rules, chosen per job before the run, stored with it and printed on the certificate
(ISO/IEC 17025 7.1.3, 7.8.6):

- ``simple`` — simple acceptance, ILAC G8:09/2019 §4.2.1 (binary, guard band w = 0): pass when
  the measured error lies within the tolerance limits, fail otherwise. The false-accept risk
  reaches 50 % at the limit. Legal verification (ĐLVN/OIML) uses the MPE with this rule
  unless its procedure says otherwise.
- ``guarded`` — ILAC G8:09/2019 §4.2.3, non-binary statement with guard band w = U: pass when
  the error is inside the acceptance zone TL − w (false-accept risk < 2.5 % for a normal
  distribution), fail when it is beyond TL + w, and in between a *conditional* statement.

Decision on the conditional outcome: ILAC G8 §4.2.3 names four outcomes — Pass, Conditional
Pass, Conditional Fail, Fail — where "conditional pass" means the measured value is within the
tolerance but inside the guard band, and "conditional fail" means it is outside the tolerance
but within w of it. benchctl keeps that distinction (two :class:`Verdict` values) because the
certificate must say on which side of the limit the result fell; :attr:`Verdict.is_pass` is
true only for an unconditional pass.

Boundaries: "pass" includes its limit (|E| ≤ TL − w), "fail" excludes its limit (|E| > TL + w),
as written in METROLOGY.md §5. Comparisons have a relative tolerance of 1e-9 of the limits so
that float noise (0.3 − 0.1 = 0.19999999999999998) does not move a result across a boundary.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final

from benchctl.errors import DutParameterError

__all__ = [
    "REL_TOL",
    "RULE_TEXT",
    "VERDICT_TEXT",
    "DecisionRule",
    "Verdict",
    "decide",
    "decide_interval",
    "parse_rule",
]

#: Relative tolerance on boundary comparisons (of the largest of |limits| and U).
REL_TOL: Final = 1e-9


class Verdict(StrEnum):
    """Outcome of a conformity decision (ILAC G8:09/2019 §4.2.3, four-outcome form)."""

    PASS = "pass"
    CONDITIONAL_PASS = "conditional_pass"
    CONDITIONAL_FAIL = "conditional_fail"
    FAIL = "fail"

    @property
    def is_pass(self) -> bool:
        """True only for an unconditional pass."""
        return self is Verdict.PASS

    @property
    def is_conditional(self) -> bool:
        return self in (Verdict.CONDITIONAL_PASS, Verdict.CONDITIONAL_FAIL)


class DecisionRule(StrEnum):
    """The decision rule of a job (``--param decision_rule=simple|guarded``)."""

    SIMPLE = "simple"
    GUARDED = "guarded"


#: One-line statement of each rule for the certificate, English and Vietnamese.
RULE_TEXT: Final[dict[DecisionRule, dict[str, str]]] = {
    DecisionRule.SIMPLE: {
        "en": (
            "Simple acceptance (ILAC G8:09/2019 §4.2.1, guard band w = 0): a result conforms "
            "when the measured error is within the tolerance limit; the measurement "
            "uncertainty is not taken into account."
        ),
        "vi": (
            "Quy tắc chấp nhận đơn giản (ILAC G8:09/2019 §4.2.1, dải bảo vệ w = 0): kết quả "
            "phù hợp khi sai số đo nằm trong giới hạn cho phép; không tính đến độ không đảm "
            "bảo đo."
        ),
    },
    DecisionRule.GUARDED: {
        "en": (
            "Guarded acceptance (ILAC G8:09/2019 §4.2.3, guard band w = U): pass when "
            "|E| ≤ TL − U, fail when |E| > TL + U, otherwise conditional pass (within TL) "
            "or conditional fail (beyond TL)."
        ),
        "vi": (
            "Quy tắc chấp nhận có dải bảo vệ (ILAC G8:09/2019 §4.2.3, w = U): đạt khi "
            "|E| ≤ TL − U, không đạt khi |E| > TL + U, còn lại là đạt có điều kiện (trong "
            "TL) hoặc không đạt có điều kiện (ngoài TL)."
        ),
    },
}

#: Verdict labels for the certificate, English and Vietnamese.
VERDICT_TEXT: Final[dict[Verdict, dict[str, str]]] = {
    Verdict.PASS: {"en": "Pass", "vi": "Đạt"},
    Verdict.CONDITIONAL_PASS: {"en": "Conditional pass", "vi": "Đạt có điều kiện"},
    Verdict.CONDITIONAL_FAIL: {"en": "Conditional fail", "vi": "Không đạt có điều kiện"},
    Verdict.FAIL: {"en": "Fail", "vi": "Không đạt"},
}


def parse_rule(rule: str | DecisionRule) -> DecisionRule:
    """Parse a rule name, "simple" or "guarded" (case-insensitive), to a DecisionRule."""
    if isinstance(rule, DecisionRule):
        return rule
    try:
        return DecisionRule(str(rule).strip().lower())
    except ValueError:
        raise DutParameterError(
            f"unknown decision rule {rule!r}: expected 'simple' or 'guarded' (ILAC G8:09/2019)"
        ) from None


def _finite(name: str, x: float) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return v


def decide_interval(
    error: float,
    U: float,
    lower: float,
    upper: float,
    rule: str | DecisionRule,
    *,
    guard_factor: float = 1.0,
) -> Verdict:
    """Decide for tolerance limits [lower, upper] that need not be symmetric.

    ``guard_factor`` sets w = guard_factor · U for the guarded rule (ILAC G8 §4.2.3 uses
    w = U; a lab procedure may choose another multiple); it has no effect on the simple rule.
    With the guarded rule a guard band wider than half the interval leaves no pass zone: the
    best outcome is then a conditional pass.
    """
    r = parse_rule(rule)
    error = _finite("error", error)
    U = _finite("U", U)
    lower = _finite("lower limit", lower)
    upper = _finite("upper limit", upper)
    if U < 0:
        raise ValueError(f"U must be ≥ 0, got {U}")
    if not lower < upper:
        raise DutParameterError(
            f"tolerance interval [{lower:g}, {upper:g}] is empty: the lower limit must be "
            "below the upper limit"
        )
    if not (math.isfinite(guard_factor) and guard_factor >= 0):
        raise ValueError(f"guard_factor must be ≥ 0, got {guard_factor}")
    eps = REL_TOL * max(abs(lower), abs(upper), U)
    inside = lower - eps <= error <= upper + eps
    if r is DecisionRule.SIMPLE:
        return Verdict.PASS if inside else Verdict.FAIL
    w = guard_factor * U
    if lower + w - eps <= error <= upper - w + eps:
        return Verdict.PASS
    if error < lower - w - eps or error > upper + w + eps:
        return Verdict.FAIL
    return Verdict.CONDITIONAL_PASS if inside else Verdict.CONDITIONAL_FAIL


def decide(
    error: float,
    U: float,
    tolerance: float,
    rule: str | DecisionRule,
    *,
    guard_factor: float = 1.0,
) -> Verdict:
    """Decide for a symmetric tolerance ±``tolerance`` (e.g. an MPE): see
    :func:`decide_interval`. Simple: pass when |E| ≤ TL. Guarded: pass when |E| ≤ TL − U,
    fail when |E| > TL + U, otherwise conditional pass/fail."""
    tl = _finite("tolerance", tolerance)
    if tl <= 0:
        raise DutParameterError(f"tolerance must be > 0, got {tolerance!r}")
    return decide_interval(error, U, -tl, tl, rule, guard_factor=guard_factor)

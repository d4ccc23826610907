"""ILAC G8:09/2019 decision rules (METROLOGY.md §5) and the MSL TG 13 guard-band example (§7)."""

from __future__ import annotations

import pytest

from benchctl.errors import DutParameterError
from benchctl.metrology.decision import (
    RULE_TEXT,
    VERDICT_TEXT,
    DecisionRule,
    Verdict,
    decide,
    decide_interval,
    parse_rule,
)

# MSL TG 13: class 1 gauge, span 4 000 kPa -> MPE = 1 % of span = 40 kPa; U = 25 kPa.
# With w = U a correction must be under 40 − 25 = 15 kPa to declare compliance.
SPAN_KPA = 4_000.0
MPE_KPA = 1.0 / 100 * SPAN_KPA
U_KPA = 25.0


def test_msl_tg13_mpe() -> None:
    assert MPE_KPA == 40.0


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (0.0, Verdict.PASS),
        (14.9, Verdict.PASS),
        (-14.9, Verdict.PASS),
        (15.0, Verdict.PASS),  # TL − U is inside the acceptance zone (METROLOGY.md §5)
        (15.1, Verdict.CONDITIONAL_PASS),  # not a pass
        (-15.1, Verdict.CONDITIONAL_PASS),
        (40.0, Verdict.CONDITIONAL_PASS),  # on the tolerance limit
        (40.1, Verdict.CONDITIONAL_FAIL),
        (65.0, Verdict.CONDITIONAL_FAIL),  # TL + U: fail needs |E| > TL + U
        (65.1, Verdict.FAIL),
        (-65.1, Verdict.FAIL),
    ],
)
def test_msl_tg13_guarded(error: float, verdict: Verdict) -> None:
    assert decide(error, U_KPA, MPE_KPA, "guarded") is verdict


def test_msl_tg13_not_a_pass_above_15() -> None:
    assert decide(14.9, U_KPA, MPE_KPA, DecisionRule.GUARDED).is_pass
    assert not decide(15.1, U_KPA, MPE_KPA, DecisionRule.GUARDED).is_pass


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (0.0, Verdict.PASS),
        (39.9, Verdict.PASS),
        (40.0, Verdict.PASS),  # inclusive
        (-40.0, Verdict.PASS),
        (40.01, Verdict.FAIL),
        (-40.01, Verdict.FAIL),
    ],
)
def test_simple_acceptance(error: float, verdict: Verdict) -> None:
    # the uncertainty plays no part: w = 0
    assert decide(error, U_KPA, MPE_KPA, "simple") is verdict
    assert decide(error, 0.0, MPE_KPA, "simple") is verdict


def test_boundaries_survive_float_noise() -> None:
    # 0.3 − 0.1 = 0.19999999999999998: E = 0.2 is on the acceptance limit, so a pass
    assert decide(0.2, 0.1, 0.3, "guarded") is Verdict.PASS
    assert decide(0.1 + 0.2, 0.0, 0.3, "simple") is Verdict.PASS  # 0.30000000000000004


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (-5.0, Verdict.PASS),  # lower + U
        (10.0, Verdict.PASS),
        (25.0, Verdict.PASS),  # upper − U
        (26.0, Verdict.CONDITIONAL_PASS),
        (-6.0, Verdict.CONDITIONAL_PASS),
        (31.0, Verdict.CONDITIONAL_FAIL),
        (-15.0, Verdict.CONDITIONAL_FAIL),  # lower − U exactly
        (-15.1, Verdict.FAIL),
        (35.1, Verdict.FAIL),
    ],
)
def test_asymmetric_interval_guarded(error: float, verdict: Verdict) -> None:
    assert decide_interval(error, 5.0, -10.0, 30.0, "guarded") is verdict


def test_asymmetric_interval_simple() -> None:
    assert decide_interval(-10.0, 5.0, -10.0, 30.0, "simple") is Verdict.PASS
    assert decide_interval(30.0, 5.0, -10.0, 30.0, "simple") is Verdict.PASS
    assert decide_interval(30.5, 5.0, -10.0, 30.0, "simple") is Verdict.FAIL
    assert decide_interval(-10.5, 5.0, -10.0, 30.0, "simple") is Verdict.FAIL


def test_guard_band_wider_than_half_interval_has_no_pass_zone() -> None:
    assert decide(0.0, 25.0, 10.0, "guarded") is Verdict.CONDITIONAL_PASS


def test_guard_factor_and_zero_U() -> None:
    # w = 0.5 U = 12.5 kPa: acceptance up to 27.5 kPa
    assert decide(27.5, U_KPA, MPE_KPA, "guarded", guard_factor=0.5) is Verdict.PASS
    assert decide(27.6, U_KPA, MPE_KPA, "guarded", guard_factor=0.5) is Verdict.CONDITIONAL_PASS
    # with U = 0 the guarded rule is the simple rule
    assert decide(40.0, 0.0, MPE_KPA, "guarded") is Verdict.PASS
    assert decide(40.01, 0.0, MPE_KPA, "guarded") is Verdict.FAIL


def test_rejects_bad_input() -> None:
    with pytest.raises(DutParameterError, match="decision rule"):
        decide(1.0, 1.0, 10.0, "strict")
    with pytest.raises(DutParameterError, match="tolerance must be > 0"):
        decide(1.0, 1.0, 0.0, "simple")
    with pytest.raises(DutParameterError, match="empty"):
        decide_interval(1.0, 1.0, 5.0, 5.0, "simple")
    with pytest.raises(ValueError, match="U must be"):
        decide(1.0, -1.0, 10.0, "guarded")
    with pytest.raises(ValueError, match="finite"):
        decide(float("nan"), 1.0, 10.0, "guarded")


def test_parse_rule() -> None:
    assert parse_rule("Guarded") is DecisionRule.GUARDED
    assert parse_rule(" simple ") is DecisionRule.SIMPLE
    assert parse_rule(DecisionRule.SIMPLE) is DecisionRule.SIMPLE


def test_texts_for_certificate() -> None:
    for rule in DecisionRule:
        for lang in ("en", "vi"):
            text = RULE_TEXT[rule][lang]
            assert "ILAC G8:09/2019" in text
            assert "\n" not in text
    assert "w = U" in RULE_TEXT[DecisionRule.GUARDED]["en"]
    assert "w = 0" in RULE_TEXT[DecisionRule.SIMPLE]["vi"]
    assert set(VERDICT_TEXT) == set(Verdict)
    assert VERDICT_TEXT[Verdict.PASS]["vi"] == "Đạt"
    assert VERDICT_TEXT[Verdict.FAIL]["vi"] == "Không đạt"


def test_verdict_values_are_stable_tokens() -> None:
    # stored in the database and printed in --json output
    assert [v.value for v in Verdict] == ["pass", "conditional_pass", "conditional_fail", "fail"]
    assert Verdict.CONDITIONAL_FAIL.is_conditional
    assert not Verdict.FAIL.is_conditional

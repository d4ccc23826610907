"""Manual instruments: readings typed by the technician through a real OperatorPort."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay import load_driver

from benchctl.errors import (
    ConfigError,
    InstrumentCommandError,
    InstrumentError,
    OperatorAbort,
)
from benchctl.instruments import Balance
from benchctl.operator import OperatorAnswer, OperatorPort, OperatorRequest

manual = load_driver("manual")


class ScriptedOperator(OperatorPort):
    """An operator that gives the scripted answers in order and keeps the requests."""

    def __init__(self, answers: Iterable[OperatorAnswer]) -> None:
        self.answers = list(answers)
        self.requests: list[OperatorRequest] = []

    def ask(self, request: OperatorRequest) -> OperatorAnswer:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"no scripted answer left for {request}")
        return self.answers.pop(0)


def number(value: float | str | None, unit: str | None = "g", raw: bytes = b"") -> OperatorAnswer:
    return OperatorAnswer(value=value, unit=unit, raw=raw)


OPTIONS: dict[str, Any] = {"unit": "g", "resolution": 0.1, "minimum": 0.0, "maximum": 6200.0}


def scale(answers: Iterable[OperatorAnswer], **options: Any) -> tuple[Any, ScriptedOperator]:
    operator = ScriptedOperator(answers)
    bal = manual.connect("dut", "manual", {**OPTIONS, **options}, operator=operator)
    return bal, operator


# -- check_answer: pure -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (100.0, "g", 100.0),
        (0.3, "g", 0.3),  # 0.3 / 0.1 = 2.9999999999999996
        (6200.0, "g", 6200.0),
        (0.0, None, 0.0),  # no unit: the requested one
        ("12,5", "g", 12.5),  # decimal comma
        (" 12.5 ", "g", 12.5),
        (1000.0000000001, "g", 1000.0000000001),  # within 1e-9 relative of a division
        (7, "g", 7.0),
    ],
)
def test_check_answer_accepts(value: Any, unit: str | None, expected: float) -> None:
    got = manual.check_answer(
        OperatorAnswer(value=value, unit=unit),
        unit="g",
        resolution=0.1,
        minimum=0.0,
        maximum=6200.0,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("value", "unit", "en", "vi"),
    [
        (6200.1, "g", "above the maximum 6200 g", "lớn hơn giá trị lớn nhất"),
        (-0.1, "g", "below the minimum 0 g", "nhỏ hơn giá trị nhỏ nhất"),
        (12.34, "g", "not on a scale division of 0.1 g", "không đúng vạch chia 0,1 g"),
        (1000.05, "g", "not on a scale division", "vạch chia"),
        (12.3, "kg", "in 'kg' but the reading must be in g", "phải nhập theo g"),
        ("abc", "g", "is not a number", "không phải là số"),
        ("1.2.3", "g", "is not a number", "không phải là số"),
        ("1 000,1", "g", "is not a number", "không phải là số"),
        ("1.000,5", "g", "is not a number", "không phải là số"),
        ("nan", "g", "not a finite number", "hữu hạn"),
        (float("inf"), "g", "not a finite number", "hữu hạn"),
        (None, "g", "no number was given", "chưa nhập số"),
        (True, "g", "no number was given", "chưa nhập số"),
    ],
)
def test_check_answer_rejects(value: Any, unit: str, en: str, vi: str) -> None:
    with pytest.raises(manual.BadAnswer) as info:
        manual.check_answer(
            OperatorAnswer(value=value, unit=unit),
            unit="g",
            resolution=0.1,
            minimum=0.0,
            maximum=6200.0,
        )
    assert en in info.value.en
    assert vi in info.value.vi


def test_role_and_options() -> None:
    assert manual.ROLE == "balance"
    for key, (typ, default, text) in manual.OPTIONS.items():
        assert isinstance(typ, type) and isinstance(text, str) and text
        assert default is None or isinstance(default, typ), key


# -- the driver through the operator port ---------------------------------------------------


def test_read_stable_asks_a_number_request() -> None:
    bal, operator = scale([number(100.0, raw=b'{"id": 3, "value": 100.0, "unit": "g"}')])
    assert isinstance(bal, Balance)
    reading = bal.read_stable(30.0)
    assert (reading.value, reading.unit, reading.stable, reading.instrument) == (
        100.0,
        "g",
        True,
        "dut",
    )
    assert reading.raw == b'{"id": 3, "value": 100.0, "unit": "g"}'
    (request,) = operator.requests
    assert request.kind == "number"
    assert request.key == "dut"
    assert request.action == {"type": "read", "instrument": "dut", "unit": "g"}
    assert (request.unit, request.minimum, request.maximum, request.resolution) == (
        "g",
        0.0,
        6200.0,
        0.1,
    )
    assert "'dut'" in request.text and "resolution 0.1 g" in request.text
    assert "độ phân giải 0,1 g" in request.text and "cân" in request.text
    assert request.to_json(1)["action"]["type"] == "read"


def test_point_key_is_the_request_key() -> None:
    bal, operator = scale([number(200.0), number(200.0)])
    bal.point_key = "weighing.up.200g"
    bal.read_stable(30.0)
    bal.point_key = None
    bal.read_now()
    assert [r.key for r in operator.requests] == ["weighing.up.200g", "dut"]


def test_read_now_is_marked_not_stable() -> None:
    bal, _ = scale([number(5.0)])
    assert bal.read_now().stable is False


def test_raw_is_the_json_of_the_answer_when_the_channel_kept_no_bytes() -> None:
    bal, _ = scale([number(5.0)])
    assert json.loads(bal.read_stable(1.0).raw) == {"value": 5.0, "unit": "g"}


@pytest.mark.parametrize(
    ("bad", "en", "vi"),
    [
        (number(6300.0), "above the maximum 6200 g", "lớn hơn giá trị lớn nhất 6200 g"),
        (number(-1.0), "below the minimum 0 g", "nhỏ hơn giá trị nhỏ nhất 0 g"),
        (number(12.34), "not on a scale division of 0.1 g", "không đúng vạch chia 0,1 g"),
        (number(1.2, "kg"), "in 'kg'", "theo đơn vị 'kg'"),
        (number("twelve"), "is not a number", "không phải là số"),
    ],
)
def test_a_bad_answer_is_asked_again_with_the_reason(bad: OperatorAnswer, en: str, vi: str) -> None:
    bal, operator = scale([bad, number(12.3)])
    assert bal.read_stable(30.0).value == 12.3
    first, second = operator.requests
    assert "Not accepted" not in first.text
    assert second.text.startswith("Not accepted: ")
    assert en in second.text and vi in second.text
    assert second.key == first.key and second.action == first.action


def test_after_three_bad_answers_it_gives_up() -> None:
    bal, operator = scale([number(12.34), number(9999.0), number(1.0, "mg")])
    with pytest.raises(InstrumentError) as info:
        bal.read_stable(30.0)
    assert "after 3 answers" in str(info.value)
    assert "in 'mg'" in str(info.value)
    assert str(info.value).startswith("manual: ")
    assert len(operator.requests) == 3


def test_attempts_option() -> None:
    bal, operator = scale([number(12.34)], attempts=1)
    with pytest.raises(InstrumentError):
        bal.read_stable(30.0)
    assert len(operator.requests) == 1


def test_abort_raises_operator_abort() -> None:
    bal, _ = scale([OperatorAnswer(abort=True)])
    with pytest.raises(OperatorAbort):
        bal.read_stable(30.0)


def test_abort_after_a_bad_answer() -> None:
    bal, _ = scale([number(12.34), OperatorAnswer(abort=True)])
    with pytest.raises(OperatorAbort):
        bal.read_now()


def test_zero_asks_for_a_confirmation() -> None:
    bal, operator = scale([OperatorAnswer(ok=True)])
    bal.point_key = "zero.start"
    bal.zero()
    (request,) = operator.requests
    assert request.kind == "confirm"
    assert request.key == "zero.start"
    assert request.action == {"type": "zero", "instrument": "dut"}
    assert "Zero balance 'dut'" in request.text and "Đặt cân 'dut' về không" in request.text


def test_zero_refused_or_aborted() -> None:
    bal, _ = scale([OperatorAnswer(ok=False), OperatorAnswer(abort=True)])
    with pytest.raises(InstrumentCommandError):
        bal.zero()
    with pytest.raises(OperatorAbort):
        bal.zero()


def test_tare_reads_the_tare_value_then_confirms() -> None:
    bal, operator = scale([number(50.0), OperatorAnswer(ok=True)])
    tare = bal.tare()
    assert (tare.value, tare.unit) == (50.0, "g")
    assert [r.kind for r in operator.requests] == ["number", "confirm"]
    assert operator.requests[1].action == {"type": "tare", "instrument": "dut"}


def test_identify_from_options() -> None:
    bal, operator = scale([], maker="Nhơn Hòa", model="NHS-60", serial="123")
    ident = bal.identify()
    assert (ident.maker, ident.model, ident.serial) == ("Nhơn Hòa", "NHS-60", "123")
    assert operator.requests == []


def test_connect_needs_an_operator() -> None:
    with pytest.raises(InstrumentError) as info:
        manual.connect("dut", "manual", OPTIONS)
    assert "operator" in str(info.value)


@pytest.mark.parametrize("missing", ["unit", "resolution"])
def test_connect_needs_unit_and_resolution(missing: str) -> None:
    options = {k: v for k, v in OPTIONS.items() if k != missing}
    with pytest.raises(ConfigError) as info:
        manual.connect("dut", "manual", options, operator=ScriptedOperator([]))
    assert f"instruments.dut.{missing}" in str(info.value)


@pytest.mark.parametrize(
    "options", [{"resolution": 0.0}, {"resolution": -0.1}, {"minimum": 10.0, "maximum": 1.0}]
)
def test_connect_rejects_impossible_options(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        manual.connect("dut", "manual", {**OPTIONS, **options}, operator=ScriptedOperator([]))


def test_manual_indicator_is_role_agnostic() -> None:
    operator = ScriptedOperator([OperatorAnswer(value="101,5", unit="kPa")])
    gauge = manual.ManualIndicator("gauge", operator, unit="kPa", resolution=0.5, maximum=1000.0)
    gauge.label_en, gauge.label_vi = "pressure gauge", "đồng hồ áp suất"
    gauge.point_key = "series1.up.100kPa"
    reading = gauge.read()
    assert (reading.value, reading.unit, reading.instrument) == (101.5, "kPa", "gauge")
    request = operator.requests[0]
    assert request.key == "series1.up.100kPa"
    assert "pressure gauge 'gauge'" in request.text and "đồng hồ áp suất" in request.text
    assert request.minimum is None and request.maximum == 1000.0


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=12)),
    st.one_of(st.none(), st.sampled_from(["g", "kg", "", " g"])),
)
def test_check_answer_returns_a_valid_value_or_a_reason(value: Any, unit: str | None) -> None:
    try:
        got = manual.check_answer(
            OperatorAnswer(value=value, unit=unit),
            unit="g",
            resolution=0.5,
            minimum=-10.0,
            maximum=1000.0,
        )
    except manual.BadAnswer as bad:
        assert bad.en and bad.vi
    else:
        assert -10.0 <= got <= 1000.0
        assert abs(got / 0.5 - round(got / 0.5)) <= 1e-9 * max(1.0, abs(got / 0.5))

"""Every reply parser of every driver, fed arbitrary and almost-right bytes: it returns a value
made only of finite numbers, or raises the documented InstrumentError subclass that names the
resource and carries the raw bytes. Nothing else (no IndexError, no ValueError, no inf).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest
from fuzzhelp import FUZZ
from hypothesis import given, settings
from hypothesis import strategies as st
from replay import load_driver

from benchctl.errors import InstrumentConnectionError, InstrumentError, ProtocolError
from benchctl.operator import OperatorAnswer
from benchctl.transport.modbus import decode_float32, parse_modbus_resource

R = "socket://127.0.0.1:4001"

mettler = load_driver("mettler_sics")
and_balance = load_driver("and_balance")
vaisala = load_driver("vaisala_ptu")
pace = load_driver("druck_pace")
keysight = load_driver("keysight_344xx")
dispenser = load_driver("sim_dispenser")
micromotion = load_driver("micromotion_modbus")
gauge = load_driver("modbus_pressure_gauge")
manual = load_driver("manual")


def finite(value: Any, where: str = "result") -> None:
    """Every number inside ``value`` (dataclasses, tuples, dicts) is finite."""
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} is {value!r}"
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            finite(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, tuple | list):
        for i, x in enumerate(value):
            finite(x, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, x in value.items():
            finite(x, f"{where}[{k!r}]")


def check_line_parser(parse: Callable[[bytes], Any], line: bytes) -> None:
    try:
        result = parse(line)
    except InstrumentError as exc:
        assert str(exc).startswith(R + ": "), str(exc)
        assert len(str(exc)) > len(R) + 10, "the message must say what is wrong"
        assert exc.raw == line, (exc.raw, line)
        return
    finite(result)


# -- almost-right lines: the protocol's own shapes, with numbers of any length -----------------

SICS = st.from_regex(rb'\A(S|SI|Z|ZI|T|TA|I2|I4|ES|ET|EL|D)( [ABSDIL+-])?'
                     rb'( +[-+]?[0-9.]{0,14} (g|kg|mg|ct|lb|G|t)?| "[^"\r\n]{0,12}"( "x")?)?\Z')
AND = st.from_regex(rb"\A(ST|US|OL|QT|EC|AK),[-+ ]?[0-9. E]{0,12}[ a-zA-Z%]{0,4}\Z")
PTU = st.from_regex(rb"\A((P|T|RH|Td|x)= *[-+]?[0-9]{0,400}(\.[0-9]{0,3})? ?"
                    rb"('C|hPa|%RH|'F|K|mbar|psi|\*\*\*|%)? ?){1,4}\Z")
PACE = st.from_regex(rb"\A(:SENS:PRES|:SENS:PRES:INL|:SYST:ERR|\*IDN|:OUTP:STAT)"
                     rb"( [-+]?[0-9]{0,400}(\.[0-9]*)?([eE][-+]?[0-9]{1,4})?(, ?[-0-9]{0,3})?"
                     rb'(, ?"?[A-Za-z ]{0,10}"?)?)?\Z')
DMM = st.from_regex(rb'\A[-+]?[0-9]{0,400}(\.[0-9]*)?([eE][-+]?[0-9]{1,4})?(,"[a-z ]*")?\Z')
DISPENSER = st.from_regex(rb"\A(DELIVERY|TOTALS|STATUS|OK|ERR)( [0-9.]{0,400}){0,5}"
                          rb"( [A-Z]{0,10})?\Z")
ANY = st.binary(max_size=120)


@settings(FUZZ)
@given(st.one_of(ANY, SICS))
def test_mettler_sics_reply(line: bytes) -> None:
    check_line_parser(lambda b: mettler.parse_reply(b, R), line)


@settings(FUZZ)
@given(st.one_of(ANY, SICS))
def test_mettler_sics_reply_as_the_answer_to_s(line: bytes) -> None:
    def parse(b: bytes) -> Any:
        reply = mettler.parse_reply(b, R)
        error = mettler.reply_error(reply, "S", "S", "S", R)
        if error is not None:
            raise error
        return reply

    check_line_parser(parse, line)


@settings(FUZZ)
@given(st.one_of(ANY, AND))
def test_and_balance_reply(line: bytes) -> None:
    check_line_parser(lambda b: and_balance.parse_reply(b, R), line)


@settings(FUZZ)
@given(st.one_of(ANY, PTU))
def test_vaisala_ptu_reply(line: bytes) -> None:
    check_line_parser(lambda b: vaisala.parse_reply(b, R), line)


@settings(FUZZ)
@given(st.lists(st.one_of(ANY, st.from_regex(rb"\A[A-Za-z ]{0,16}: ?[^\r\n]{0,16}\Z")),
                max_size=6))
def test_vaisala_ptu_info_listing(lines: list[bytes]) -> None:
    try:
        finite(vaisala.parse_info(lines))
    except InstrumentError as exc:
        assert str(exc).startswith("Vaisala PTU") or R in str(exc) or str(exc)


@settings(FUZZ)
@given(st.one_of(ANY, PACE))
def test_druck_pace_replies(line: bytes) -> None:
    headers = (":SENS:PRES", ":SENS:PRES:INL", ":SYST:ERR", "*IDN", ":OUTP:STAT")

    def reply(b: bytes) -> Any:
        return pace.parse_reply(b, headers, R)

    check_line_parser(reply, line)
    for then in (pace.parse_number, pace.parse_in_limits, pace.parse_error):
        check_line_parser(lambda b, then=then: then(reply(b), R), line)


@settings(FUZZ)
@given(st.one_of(ANY, DMM))
def test_keysight_reading_and_error_queue(line: bytes) -> None:
    check_line_parser(lambda b: keysight.parse_reading(b, R), line)
    check_line_parser(lambda b: keysight.parse_error(b, R), line)


@settings(FUZZ)
@given(st.one_of(ANY, DISPENSER))
def test_sim_dispenser_reply(line: bytes) -> None:
    def parse(b: bytes) -> Any:
        reply = dispenser.parse_reply(b, R)
        for expected in ("DELIVERY", "TOTALS", "STATUS", "OK"):
            dispenser.reply_error(reply, "X", expected, R)
        return reply

    check_line_parser(parse, line)


REGISTER = st.integers(0, 0xFFFF)


@settings(FUZZ)
@given(st.lists(REGISTER, min_size=2, max_size=2), st.sampled_from(["big", "little"]),
       st.sampled_from(["big", "little"]))
def test_modbus_gauge_float_registers(registers: list[int], word: str, byte: str) -> None:
    raw = b"".join(r.to_bytes(2, "big") for r in registers)
    value = decode_float32(registers, word, byte)
    try:
        finite(gauge.check_value(value, raw, R, "pressure"))
    except ProtocolError as exc:
        assert str(exc).startswith(R) and "pressure" in str(exc) and raw.hex(" ") in str(exc)
        assert not math.isfinite(value)


@settings(FUZZ)
@given(st.lists(REGISTER, min_size=8, max_size=8), st.sampled_from(["big", "little"]))
def test_micromotion_register_block(registers: list[int], word: str) -> None:
    names = {"mass_flow": 247, "density": 249, "temperature": 251, "volume_flow": 253}
    try:
        out = micromotion.decode_block(registers, 247, names, word, "big", R)
    except ProtocolError as exc:
        assert str(exc).startswith(R) and exc.raw is not None and len(exc.raw) == 4
        return
    finite(out)
    assert set(out) == set(names)


@settings(FUZZ)
@given(st.one_of(st.text(max_size=60),
                 st.from_regex(r"\Amodbus-(tcp|rtu|x)://[^?]{0,20}(\?[a-z_]{0,10}=[^&]{0,6}"
                               r"(&[a-z_]{0,10}=[^&]{0,6}){0,2})?\Z")))
def test_modbus_resource_strings(resource: str) -> None:
    try:
        parsed = parse_modbus_resource(resource)
    except InstrumentConnectionError as exc:
        assert not exc.transient, "a misspelt resource does not heal by retrying"
        assert len(str(exc)) > 10
        return
    assert 0 <= parsed.device_id <= 247


@settings(FUZZ)
@given(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(),
                 st.text(max_size=20), st.from_regex(r"\A-?[0-9]{0,400}[.,]?[0-9]{0,3}\Z")),
       st.one_of(st.none(), st.sampled_from(["g", "kPa", " kPa", "bar", ""])))
def test_manual_operator_entries(value: Any, unit: str | None) -> None:
    answer = OperatorAnswer(value=value, unit=unit)
    try:
        got = manual.check_answer(answer, unit="kPa", resolution=0.1, minimum=-100.0,
                                  maximum=1e6)
    except manual.BadAnswer as exc:
        assert exc.en and exc.vi and exc.en != exc.vi
        return
    assert math.isfinite(got) and -100.0 <= got <= 1e6


@pytest.mark.parametrize("line", [
    b"P=" + b"9" * 400 + b" hPa T= 22.3 'C RH= 35.2 %RH",
    b"DELIVERY " + b"9" * 400 + b" 1 2 3",
])
def test_a_number_too_big_for_a_float_is_not_a_reading(line: bytes) -> None:
    """400 digits make float('inf'): an instrument sending that is broken, not at infinity."""
    parse = vaisala.parse_reply if line.startswith(b"P=") else dispenser.parse_reply
    check_line_parser(lambda b: parse(b, R), line)

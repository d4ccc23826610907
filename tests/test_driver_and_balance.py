"""A&D standard-format driver: byte-exact requests and every reply, over TCP, a pty and VISA."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay import PtyReplay, ReplayServer, Script, load_driver

from benchctl.errors import (
    InstrumentBusy,
    InstrumentCommandError,
    InstrumentError,
    InstrumentTimeout,
    OverloadError,
    ProtocolError,
    UnderloadError,
)
from benchctl.instruments import Balance

ad = load_driver("and_balance")

Q, S, C, R, T = b"Q\r\n", b"S\r\n", b"C\r\n", b"R\r\n", b"T\r\n"
AK = b"\x06\r\n"


@contextlib.contextmanager
def balance(
    script: Script,
    *,
    kind: str = "socket_url",
    server: type[ReplayServer] | type[PtyReplay] = ReplayServer,
    **options: Any,
) -> Iterator[Any]:
    with server(script) as srv:
        bal = ad.connect("dut", getattr(srv, kind), {"timeout": 0.3, **options})
        try:
            yield bal
        finally:
            bal.close()


# -- parse_reply: pure ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "header", "value", "unit"),
    [
        (b"ST,+00123.45  g", "ST", 123.45, "g"),
        (b"US,-00001.23  g", "US", -1.23, "g"),
        (b"ST,+0001.234 kg", "ST", 1.234, "kg"),
        (b"ST,+00000000  g", "ST", 0.0, "g"),
        (b"ST,-0.000012 mg", "ST", -0.000012, "mg"),
        (b"ST,+0012.345 ct", "ST", 12.345, "ct"),
        (b"ST,+12345678  g", "ST", 12345678.0, "g"),
        (b"\x06", "AK", None, None),
    ],
)
def test_parse_reply(line: bytes, header: str, value: float | None, unit: str | None) -> None:
    reply = ad.parse_reply(line)
    assert (reply.header, reply.value, reply.unit, reply.raw) == (header, value, unit, line)


@pytest.mark.parametrize(
    ("line", "error", "words"),
    [
        (b"OL,+9999999E+19", OverloadError, "overload"),
        (b"OL,-9999999E+19", UnderloadError, "underload"),
        (b"QT,+0000123 PC", ProtocolError, "counting mode"),
        (b"ST,+00000123 PC", ProtocolError, "counting"),
        (b"ST,+0100.000  %", ProtocolError, "percent"),
        (b"EC,E11", InstrumentBusy, "stability"),
        (b"EC,E2", InstrumentBusy, "not ready"),
        (b"EC,E1", InstrumentCommandError, "undefined command"),
        (b"EC,E01", InstrumentCommandError, "undefined command"),
        (b"EC,E7", InstrumentCommandError, "zero or tare refused"),
        (b"EC,E00", ProtocolError, "communication error"),
        (b"EC,E99", InstrumentCommandError, "EC,E99"),
        (b"ST,+00123.45 g", ProtocolError, "15 characters"),
        (b"ST,+00123.45   g", ProtocolError, "15 characters"),
        (b"ST,00123.456  g", ProtocolError, "signed zero-padded"),
        (b"ST,+  123.45  g", ProtocolError, "signed zero-padded"),
        (b"ST,+00123,45  g", ProtocolError, "signed zero-padded"),
        (b"ST,+0012.3.4  g", ProtocolError, "signed zero-padded"),
        (b"ST,+00123.45g  ", ProtocolError, "right-aligned"),
        (b"ST,+00123.45 g ", ProtocolError, "right-aligned"),
        (b"ST,+00123.45   ", ProtocolError, "right-aligned"),
        (b"ST,+00123.45  G", ProtocolError, "unknown unit"),
        (b"ST,+00123.45 lbs", ProtocolError, "15 characters"),
        (b"ST;+00123.45  g", ProtocolError, "15 characters"),
        (b"XX,+00123.45  g", ProtocolError, "not an A&D data line"),
        (b"st,+00123.45  g", ProtocolError, "not an A&D data line"),
        (b"", ProtocolError, "not an A&D data line"),
        (b"\x06\x06", ProtocolError, "control characters"),
        (b"ST,+00123.45\xb5 g", ProtocolError, "not ASCII"),
        (b"ST,+00123.45  g\r", ProtocolError, "control characters"),
    ],
)
def test_parse_reply_errors(line: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as info:
        ad.parse_reply(line, "res")
    assert type(info.value) is error
    assert words in str(info.value)
    assert info.value.raw == line
    assert str(info.value).startswith("res: ")


def test_role_and_options() -> None:
    assert ad.ROLE == "balance"
    for key, (typ, default, text) in ad.OPTIONS.items():
        assert isinstance(typ, type) and isinstance(text, str) and text
        assert default is None or isinstance(default, typ), key
    assert (ad.OPTIONS["baudrate"][1], ad.OPTIONS["bytesize"][1], ad.OPTIONS["parity"][1]) == (
        2400,
        7,
        "E",
    )


# -- the driver over a real socket --------------------------------------------------------


def test_identify_comes_from_the_options() -> None:
    with balance([], model="GX-6100", serial="T1234") as bal:
        assert isinstance(bal, Balance)
        ident = bal.identify()
    assert (ident.maker, ident.model, ident.serial) == ("A&D", "GX-6100", "T1234")


def test_read_now_is_q() -> None:
    with balance([(Q, b"US,-00001.23  g\r\n"), (Q, b"ST,+0001.234 kg\r\n")]) as bal:
        first, second = bal.read_now(), bal.read_now()
    assert (first.value, first.stable, first.unit, first.raw) == (
        -1.23,
        False,
        "g",
        b"US,-00001.23  g",
    )
    assert (second.value, second.stable, second.unit) == (1.234, True, "kg")
    assert second.instrument == "dut"


def test_read_stable_is_s() -> None:
    with balance([(S, b"ST,+00123.45  g\r\n")]) as bal:
        reading = bal.read_stable(1.0)
    assert (reading.value, reading.stable, reading.raw) == (123.45, True, b"ST,+00123.45  g")


def test_read_stable_silence_is_busy_and_cancels_with_c() -> None:
    with balance([(S, None), (C, None)]) as bal:
        start = time.monotonic()
        with pytest.raises(InstrumentBusy) as info:
            bal.read_stable(0.3)
        assert 0.25 < time.monotonic() - start < 0.8
    assert "no stable weight within 0.3 s" in str(info.value)
    assert bal.resource in str(info.value)


def test_read_stable_half_line_is_a_timeout_not_busy() -> None:
    with balance([(S, b"ST,+001")]) as bal, pytest.raises(InstrumentTimeout) as info:
        bal.read_stable(0.3)
    assert info.value.raw == b"ST,+001"


def test_read_stable_unstable_reply_is_a_protocol_error() -> None:
    with balance([(S, b"US,+00123.45  g\r\n")]) as bal, pytest.raises(ProtocolError):
        bal.read_stable(1.0)


@pytest.mark.parametrize(
    ("reply", "error", "words"),
    [
        (b"OL,+9999999E+19", OverloadError, "overload"),
        (b"OL,-9999999E+19", UnderloadError, "underload"),
        (b"QT,+0000123 PC", ProtocolError, "counting mode"),
        (b"EC,E1", InstrumentCommandError, "undefined command"),
        (b"EC,E2", InstrumentBusy, "not ready"),
        (b"ST,+0O123.45  g", ProtocolError, "zero-padded"),
        (b"garbage \xff", ProtocolError, "not ASCII"),
    ],
)
def test_q_error_replies(reply: bytes, error: type[Exception], words: str) -> None:
    with balance([(Q, reply + b"\r\n")]) as bal, pytest.raises(error) as info:
        bal.read_now()
    assert type(info.value) is error
    assert words in str(info.value)
    assert info.value.raw == reply


def test_silence_is_a_timeout() -> None:
    with balance([(Q, None)]) as bal, pytest.raises(InstrumentTimeout) as info:
        bal.read_now()
    assert bal.resource in str(info.value)


def test_stale_input_is_discarded_before_each_command() -> None:
    # a late weight line arrives between commands; the next Q must not read it
    script = [(Q, b"ST,+00001.00  g\r\n"), (R, [0.05, b"ST,+00099.00  g\r\n"]), (Q, None)]
    script[-1] = (Q, b"ST,+00002.00  g\r\n")
    with balance(script) as bal:
        assert bal.read_now().value == 1.0
        bal.zero()
        time.sleep(0.15)
        assert bal.read_now().value == 2.0


def test_a_late_weight_landing_during_the_next_q_is_not_taken() -> None:
    """No A&D answer can be told from a late one, so after a timeout the driver waits for the
    line to fall quiet (one timeout) before its next command: the late 99 g is dropped."""
    script = [(Q, [0.5, b"ST,+00099.00  g\r\n"]), (Q, b"ST,+00002.00  g\r\n")]
    with balance(script) as bal:
        with pytest.raises(InstrumentTimeout):
            bal.read_now()  # the driver waits 0.3 s; the 99 g line comes 0.2 s later
        assert bal.out_of_step
        assert bal.read_now().value == 2.0
        assert not bal.out_of_step


def test_a_balance_that_keeps_talking_is_still_out_of_step() -> None:
    """Lines keep coming (a stream the driver did not ask for): the quiet wait gives up with
    a timeout that says so, and the driver stays out of step; once the balance falls silent,
    the next command gets its own answer."""
    chatter = [x for _ in range(12) for x in (0.1, b"US,+00050.00  g\r\n")]
    script = [(Q, [0.5, *chatter]), (Q, b"ST,+00002.00  g\r\n")]
    with balance(script) as bal:
        with pytest.raises(InstrumentTimeout):
            bal.read_now()
        with pytest.raises(InstrumentTimeout, match="did not fall quiet"):
            bal.read_now()  # no Q sent: the chatter goes on past the 1.2 s allowed
        assert bal.out_of_step
        assert bal.read_now().value == 2.0


def test_an_error_answer_leaves_the_driver_in_step() -> None:
    with balance([(R, [AK, b"EC,E11\r\n"])], ack=True) as bal:
        with pytest.raises(InstrumentBusy):
            bal.zero()
        assert not bal.out_of_step


def test_stray_ack_before_a_weight_is_skipped() -> None:
    with balance([(Q, AK + b"ST,+00001.00  g\r\n")]) as bal:
        assert bal.read_now().value == 1.0


def test_zero_without_ack_is_fire_and_forget() -> None:
    with balance([(R, None)]) as bal:
        start = time.monotonic()
        bal.zero()
        assert time.monotonic() - start < 0.2


def test_zero_with_ack_waits_for_receipt_and_completion() -> None:
    with balance([(R, [AK, 0.1, AK])], ack=True) as bal:
        bal.zero()


@pytest.mark.parametrize(
    ("completion", "error"),
    [(b"EC,E11\r\n", InstrumentBusy), (b"EC,E7\r\n", InstrumentCommandError)],
)
def test_zero_with_ack_failures(completion: bytes, error: type[Exception]) -> None:
    with balance([(R, [AK, completion])], ack=True) as bal, pytest.raises(error):
        bal.zero()


def test_zero_with_ack_but_no_ack_is_a_timeout() -> None:
    with balance([(R, None)], ack=True) as bal, pytest.raises(InstrumentTimeout):
        bal.zero()


def test_tare_reads_the_stable_weight_then_tares() -> None:
    with balance([(S, b"ST,+00050.00  g\r\n"), (T, None)]) as bal:
        tare = bal.tare()
    assert (tare.value, tare.unit, tare.stable) == (50.0, "g", True)


def test_tare_with_ack() -> None:
    with balance([(S, b"ST,+00050.00  g\r\n"), (T, AK)], ack=True) as bal:
        assert bal.tare().value == 50.0


def test_tare_with_ack_refused() -> None:
    script = [(S, b"ST,+00050.00  g\r\n"), (T, b"EC,E7\r\n")]
    with balance(script, ack=True) as bal, pytest.raises(InstrumentCommandError):
        bal.tare()


def test_unit_option_rejects_another_unit() -> None:
    with (
        balance([(Q, b"ST,+0000.100 kg\r\n")], unit="g") as bal,
        pytest.raises(InstrumentError) as info,
    ):
        bal.read_now()
    assert type(info.value) is InstrumentError and "kg" in str(info.value)


# -- other transports ---------------------------------------------------------------------


def test_over_a_pty_at_2400_7e1() -> None:
    with balance(
        [(Q, b"ST,+00123.45  g\r\n"), (S, None), (C, None)], server=PtyReplay, kind="device"
    ) as bal:
        assert bal.read_now().value == 123.45
        with pytest.raises(InstrumentBusy):
            bal.read_stable(0.2)


def test_over_visa_asrl() -> None:
    with balance([(Q, b"ST,+00123.45  g\r\n"), (R, None)], kind="visa_asrl") as bal:
        assert bal.read_now().raw == b"ST,+00123.45  g"
        bal.zero()


# -- fuzzing the parser ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=24))
def test_parse_reply_only_returns_or_raises_instrument_errors(line: bytes) -> None:
    try:
        reply = ad.parse_reply(line)
    except InstrumentError as exc:
        assert exc.raw == line
    else:
        assert reply.raw == line


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=-9999999, max_value=99999999),
    st.integers(min_value=0, max_value=6),
    st.sampled_from(["ST", "US"]),
    st.sampled_from(sorted(ad.UNITS)),
)
def test_data_lines_round_trip(counts: int, decimals: int, header: str, unit: str) -> None:
    text = f"{abs(counts) / 10**decimals:.{decimals}f}"
    if len(text) > 8:
        return
    line = f"{header},{'-' if counts < 0 else '+'}{text.zfill(8)}{unit:>3}".encode()
    reply = ad.parse_reply(line)
    assert reply.value == pytest.approx(float(text) * (-1 if counts < 0 else 1))
    assert (reply.header, reply.unit) == (header, unit)

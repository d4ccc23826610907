"""Vaisala PTU driver: regex parsing of any layout, byte-exact S/SEND/?, over TCP and VISA."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay import ReplayServer, Script, load_driver

from benchctl.errors import InstrumentCommandError, InstrumentTimeout, ProtocolError
from benchctl.instruments import EnvironmentMonitor

ptu = load_driver("vaisala_ptu")

LINE = b"P=  1013.1 hPa T=  22.3 'C RH=  35.2 %RH"
STOP, SEND, INFO = b"S\r\n", b"SEND\r\n", b"?\r\n"


@contextlib.contextmanager
def monitor(
    script: Script, *, kind: str = "socket_url", on_connect: bytes = b"", **options: Any
) -> Iterator[Any]:
    with ReplayServer([(STOP, None), *script], on_connect=on_connect) as srv:
        dev = ptu.connect("room", getattr(srv, kind), {"timeout": 0.3, "settle": 0.05, **options})
        try:
            yield dev
        finally:
            dev.close()


# -- parse_reply: pure ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "t", "rh", "p"),
    [
        (LINE, 22.3, 35.2, 1013.1),
        (b"T=22.3'C RH=35.2%RH P=1013.1hPa", 22.3, 35.2, 1013.1),
        (b"RH= 35.2 %RH\tT= 22.3 'C", 22.3, 35.2, None),
        (b"T=  -5.0 'C", -5.0, None, None),
        (b"P= 1013.10 hPa", None, None, 1013.1),
        (b"P= 101.31 kPa T= 72.5 'F RH= 35.2 %", 22.5, 35.2, 1013.1),
        (b"P= 1013.1 mbar T= 295.65 K", 22.5, None, 1013.1),
        ("T= 22.3 °C RH= 35.2 %RH".encode(), 22.3, 35.2, None),
        (b"T= 22.3 \xb0C", 22.3, None, None),
        (b"T= 22.3 'C Td= 5.1 'C RH= 35.2 %RH a= 6.1 g/m3", 22.3, 35.2, None),
        (b"PTU300 P= 1013.1 hPa P3h= +0.4 hPa T= 22.3 'C", 22.3, None, 1013.1),
        (b"T= 22.3 RH= 35.2", 22.3, 35.2, None),
        (b"  P = 1013.1 hPa  ,  T = 22.3 'C", 22.3, None, 1013.1),
    ],
)
def test_parse_reply(line: bytes, t: float | None, rh: float | None, p: float | None) -> None:
    ambient = ptu.parse_reply(line)
    got = (ambient.temperature_c, ambient.humidity_pct, ambient.pressure_hpa)
    for value, expected in zip(got, (t, rh, p), strict=True):
        assert (value is None) if expected is None else value == pytest.approx(expected)
    assert ambient.raw == line


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"", "no P=, T= or RH="),
        (b"hello world", "no P=, T= or RH="),
        (b"Td= 5.1 'C", "no P=, T= or RH="),
        (b"\x00\xff\xfe", "no P=, T= or RH="),
        (b"T= ***.* 'C RH= 35.2 %RH", "not a number"),
        (b"T= 22.3 'X", "unknown unit"),
        (b"P= 1013.1 hPa P= 1013.2 hPa", "twice"),
        (b"RH= 35.2 hPa", "unknown unit"),
        (b"T= 22.3.4 'C", "unknown unit"),
        (b"T=", "not a number"),
    ],
)
def test_parse_reply_rejects_garbage(line: bytes, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        ptu.parse_reply(line, "res")
    assert words in str(info.value)
    assert info.value.raw == line
    assert str(info.value).startswith("res: ")


def test_unknown_command_is_a_command_error() -> None:
    with pytest.raises(InstrumentCommandError):
        ptu.parse_reply(b"Unknown command", "res")


def test_parse_info() -> None:
    lines = [b"PTU300 / 5.10", b"Serial number  : A1234567", b"Pressure unit  : hPa"]
    ident = ptu.parse_info(lines)
    assert (ident.maker, ident.model, ident.firmware, ident.serial) == (
        "Vaisala",
        "PTU300",
        "5.10",
        "A1234567",
    )
    assert ident.raw == b"\r\n".join(lines)


def test_role_and_options() -> None:
    assert ptu.ROLE == "environment_monitor"
    for key, (typ, default, text) in ptu.OPTIONS.items():
        assert isinstance(typ, type) and isinstance(text, str) and text
        assert default is None or isinstance(default, typ), key
    assert (ptu.OPTIONS["baudrate"][1], ptu.OPTIONS["bytesize"][1], ptu.OPTIONS["parity"][1]) == (
        4800,
        7,
        "E",
    )


# -- the driver over a real socket --------------------------------------------------------


def test_connect_stops_run_mode_and_read_ambient_sends_send() -> None:
    with monitor([(SEND, LINE + b"\r\n")]) as dev:
        assert isinstance(dev, EnvironmentMonitor)
        ambient = dev.read_ambient()
    assert (ambient.temperature_c, ambient.humidity_pct, ambient.pressure_hpa) == (
        22.3,
        35.2,
        1013.1,
    )
    assert ambient.raw == LINE
    assert ambient.instrument == "room"


def test_run_mode_output_at_connect_is_flushed() -> None:
    old = b"P=  999.9 hPa T=  10.0 'C RH=  10.0 %RH\r\n"
    with monitor([(SEND, LINE + b"\r\n")], on_connect=old * 3) as dev:
        assert dev.read_ambient().temperature_c == 22.3


def test_echo_of_the_command_is_skipped() -> None:
    with monitor([(SEND, b"SEND\r\n" + LINE + b"\r\n")]) as dev:
        assert dev.read_ambient().pressure_hpa == 1013.1


def test_identify_collects_the_info_lines_until_silence() -> None:
    info = (
        b"PTU300 / 5.10\r\nSerial number  : A1234567\r\nOutput interval: 2 s\r\n"
        b"Pressure unit  : hPa\r\nTemperature unit: 'C\r\n"
    )
    with monitor([(INFO, info)], info_timeout=0.1) as dev:
        ident = dev.identify()
    assert (ident.model, ident.firmware, ident.serial) == ("PTU300", "5.10", "A1234567")
    assert ident.raw.count(b"\r\n") == 4


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"garbage\r\n", ProtocolError),
        (b"T= ***.* 'C\r\n", ProtocolError),
        (b"Unknown command\r\n", InstrumentCommandError),
        (b"P=  1013", InstrumentTimeout),
        (None, InstrumentTimeout),
    ],
)
def test_bad_replies(reply: bytes | None, error: type[Exception]) -> None:
    with monitor([(SEND, reply)]) as dev, pytest.raises(error) as info:
        dev.read_ambient()
    assert dev.resource in str(info.value)


VERS = (b"VERS\r\n", b"PTU300 / 5.10\r\n")


def test_a_late_reading_is_dropped_by_the_resync() -> None:
    """SEND answered 0.6 s after it was sent (the driver waits 0.3 s): the late line is a
    reading like the next one, so only the VERS exchange can tell it is old."""
    old = b"P=  999.9 hPa T=  10.0 'C RH=  10.0 %RH\r\n"
    script: Script = [(SEND, [0.6, old]), VERS, (SEND, LINE + b"\r\n")]
    with monitor(script) as dev:
        with pytest.raises(InstrumentTimeout):
            dev.read_ambient()
        assert dev.read_ambient().temperature_c == 22.3


def test_a_line_that_is_not_a_reading_puts_the_driver_back_in_step() -> None:
    script: Script = [(SEND, b"PTU300 / 5.10\r\n"), (b"VERS\r\n", b"VERS\r\nPTU300 / 5.10\r\n"),
                      (SEND, LINE + b"\r\n")]
    with monitor(script) as dev:
        with pytest.raises(ProtocolError, match="no P=, T= or RH="):
            dev.read_ambient()
        assert dev.read_ambient().pressure_hpa == 1013.1  # the echo of VERS was dropped too


def test_a_resync_without_answer_is_a_timeout_and_the_next_command_tries_again() -> None:
    script: Script = [(SEND, None), (b"VERS\r\n", None), VERS, (SEND, LINE + b"\r\n")]
    with monitor(script) as dev:
        with pytest.raises(InstrumentTimeout):
            dev.read_ambient()
        with pytest.raises(InstrumentTimeout, match=r"no answer to b'VERS' within 0.6 s"):
            dev.read_ambient()
        assert dev.read_ambient().humidity_pct == 35.2


def test_write_termination_option() -> None:
    with ReplayServer([(b"S\r", None), (b"SEND\r", LINE + b"\r\n")]) as srv:
        dev = ptu.connect("room", srv.socket_url, {"write_termination": "\r", "settle": 0.0})
        try:
            assert dev.read_ambient().humidity_pct == 35.2
        finally:
            dev.close()


def test_over_visa_tcpip_socket() -> None:
    with monitor([(SEND, LINE + b"\r\n")], kind="visa_socket") as dev:
        assert dev.read_ambient().raw == LINE


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60) | st.text(alphabet="PTRH=.'C%hPa -0123456789*", max_size=60))
def test_parse_reply_only_returns_or_raises_protocol_errors(data: bytes | str) -> None:
    line = data.encode() if isinstance(data, str) else data
    try:
        ambient = ptu.parse_reply(line)
    except (ProtocolError, InstrumentCommandError) as exc:
        assert exc.raw == line
    else:
        assert ambient.raw == line
        assert any(
            v is not None
            for v in (ambient.temperature_c, ambient.humidity_pct, ambient.pressure_hpa)
        )

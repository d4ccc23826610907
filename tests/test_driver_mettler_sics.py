"""MT-SICS driver: byte-exact requests, every status/error reply, over TCP, a pty and VISA."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay import CLOSE, PtyReplay, ReplayServer, Script, load_driver

from benchctl.errors import (
    InstrumentBusy,
    InstrumentCommandError,
    InstrumentConnectionError,
    InstrumentError,
    InstrumentTimeout,
    OverloadError,
    ProtocolError,
    UnderloadError,
)
from benchctl.instruments import Balance
from benchctl.transport import open_resource

sics = load_driver("mettler_sics")

I2 = (b"I2\r\n", b'I2 A "XS204 Excellence 220.0090 g"\r\n')
POWER_UP = b'I4 A "B123456789"\r\n'
S, SI, Z, ZI, T = b"S\r\n", b"SI\r\n", b"Z\r\n", b"ZI\r\n", b"T\r\n"


@contextlib.contextmanager
def balance(
    script: Script,
    *,
    kind: str = "socket_url",
    server: type[ReplayServer] | type[PtyReplay] = ReplayServer,
    on_connect: bytes = b"",
    sync: bool = True,
    **options: Any,
) -> Iterator[Any]:
    """A replay server for ``script`` (after the connect-time I2) and the driver on it."""
    full = [I2, *script] if sync else list(script)
    with server(full, on_connect=on_connect) as srv:
        bal = sics.connect("dut", getattr(srv, kind), {"timeout": 0.3, **options})
        try:
            yield bal
        finally:
            bal.close()


# -- parse_reply: pure ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "ident", "status", "value", "unit"),
    [
        (b"S S     100.00 g", "S", "S", 100.0, "g"),
        (b"S D     -12.34 g", "S", "D", -12.34, "g"),
        (b"S S      0.000 kg", "S", "S", 0.0, "kg"),
        (b"S S  123456.78 mg", "S", "S", 123456.78, "mg"),
        (b"S S -1234567.8 g", "S", "S", -1234567.8, "g"),
        (b"S S       +5.0 g", "S", "S", 5.0, "g"),
        (b"S S 1234567890 g", "S", "S", 1234567890.0, "g"),
        (b"T S      50.00 g", "T", "S", 50.0, "g"),
        (b"TA A       0.00 g", "TA", "A", 0.0, "g"),
        (b"S S     10.000 ct", "S", "S", 10.0, "ct"),
        (b"S S     100.00 GN", "S", "S", 100.0, "GN"),
        (b"S I", "S", "I", None, None),
        (b"S +", "S", "+", None, None),
        (b"S -", "S", "-", None, None),
        (b"S L", "S", "L", None, None),
        (b"Z A", "Z", "A", None, None),
        (b"ZI D", "ZI", "D", None, None),
        (b"ES", "ES", "", None, None),
        (b"ET", "ET", "", None, None),
        (b"EL", "EL", "", None, None),
    ],
)
def test_parse_reply(
    line: bytes, ident: str, status: str, value: float | None, unit: str | None
) -> None:
    reply = sics.parse_reply(line)
    assert (reply.id, reply.status, reply.value, reply.unit, reply.raw) == (
        ident,
        status,
        value,
        unit,
        line,
    )


@pytest.mark.parametrize(
    ("line", "texts"),
    [
        (b'I4 A "B123456789"', ("B123456789",)),
        (b'I2 A "XS204 Excellence 220.0090 g"', ("XS204 Excellence 220.0090 g",)),
        (b'I1 A "01" "2.20" "2.20" "" ""', ("01", "2.20", "2.20", "", "")),
        (b'I3 A ""', ("",)),
    ],
)
def test_parse_reply_texts(line: bytes, texts: tuple[str, ...]) -> None:
    assert sics.parse_reply(line).texts == texts


@pytest.mark.parametrize(
    "line",
    [
        b"S S    100.00 g",  # 9-character field
        b"S S      100.00 g",  # 11-character field
        b"S S     100.00 G",  # units are case-sensitive
        b"S S     100.00 lbs",  # unknown unit
        b"S S     100.00  g",  # two spaces before the unit
        b"S S     100.00",  # no unit
        b"S S     100.00 ",  # empty unit
        b"S S     1O0.00 g",  # letter O
        b"S S    - 10.00 g",  # sign not against the first digit
        b"S S     10.0-0 g",
        b"S S   1.00e+02 g",  # no exponents
        b"S S        nan g",
        b"S S     100,00 g",  # decimal comma
        b"S S 100.00     g",  # left-aligned
        b"S S",  # weight status without the weight is fine for the parser? no: see below
        b"",
        b"S",
        b"s s     100.00 g",
        b"S X",
        b"S S \xff\xfe",
        b"S S     100.00 g\r",
        b"\x00\x00",
        b'I4 A "unterminated',
        b"I4 A B123",
        b"ESX",
        b" S S     100.00 g",
    ],
)
def test_parse_reply_rejects_garbage(line: bytes) -> None:
    if line == b"S S":  # a status without parameters parses; the driver then finds no weight
        assert sics.parse_reply(line).value is None
        return
    with pytest.raises(ProtocolError) as info:
        sics.parse_reply(line, "res")
    assert info.value.raw == line
    assert repr(line) in str(info.value)
    assert str(info.value).startswith("res: ")


@pytest.mark.parametrize(
    ("line", "command", "expected_id", "allowed", "error", "words"),
    [
        (b"S S     100.00 g", "S", "S", "S", None, ""),
        (b"S D     100.00 g", "SI", "S", "SD", None, ""),
        (b"S D     100.00 g", "S", "S", "S", ProtocolError, "unexpected status"),
        (b"S I", "S", "S", "S", InstrumentBusy, "not executable"),
        (b"Z I", "Z", "Z", "A", InstrumentBusy, "not executable"),
        (b"T I", "T", "T", "S", InstrumentBusy, "not executable"),
        (b"S +", "S", "S", "S", OverloadError, "overload"),
        (b"Z +", "Z", "Z", "A", OverloadError, "overload"),
        (b"S -", "S", "S", "S", UnderloadError, "underload"),
        (b"T -", "T", "T", "S", UnderloadError, "underload"),
        (b"S L", "S", "S", "S", InstrumentCommandError, "bad parameter"),
        (b"ES", "S", "S", "S", InstrumentCommandError, "syntax error"),
        (b"ET", "S", "S", "S", ProtocolError, "transmission error"),
        (b"EL", "S", "S", "S", InstrumentCommandError, "logical error"),
        (b"Z A", "S", "S", "S", ProtocolError, "does not belong"),
        (b'I4 A "B1"', "S", "S", "S", ProtocolError, "restarted"),
        (b'I4 A "B1"', "I4", "I4", "A", None, ""),
        (b"S B", "S", "S", "S", ProtocolError, "unexpected status"),
    ],
)
def test_reply_error(
    line: bytes,
    command: str,
    expected_id: str,
    allowed: str,
    error: type[Exception] | None,
    words: str,
) -> None:
    found = sics.reply_error(sics.parse_reply(line), command, expected_id, allowed, "res")
    if error is None:
        assert found is None
        return
    assert type(found) is error
    assert words in str(found)
    assert found.raw == line
    assert str(found).startswith(f"res: {command}: ")


def test_transient_flags_follow_the_errors_module() -> None:
    busy = sics.reply_error(sics.parse_reply(b"S I"), "S", "S", "S")
    reboot = sics.reply_error(sics.parse_reply(b'I4 A "x"'), "S", "S", "S")
    syntax = sics.reply_error(sics.parse_reply(b"ES"), "S", "S", "S")
    assert busy.transient and reboot.transient and not syntax.transient


def test_parse_model() -> None:
    assert sics.parse_model(("XS204 Excellence 220.0090 g",)) == (
        "XS204 Excellence",
        (220.009, "g"),
    )
    assert sics.parse_model(("XS204", "220.0090 g")) == ("XS204", (220.009, "g"))
    assert sics.parse_model(("Mystery",)) == ("Mystery", None)


# -- the driver over a real socket --------------------------------------------------------


def test_role_and_options() -> None:
    assert sics.ROLE == "balance"
    for key, (typ, default, text) in sics.OPTIONS.items():
        assert isinstance(typ, type) and isinstance(text, str) and text
        assert default is None or isinstance(default, typ), key
    assert sics.OPTIONS["baudrate"][1] == 9600
    assert sics.OPTIONS["parity"][1] == "N"


def test_connect_flushes_then_synchronises_on_i2() -> None:
    with balance([]) as bal:
        assert isinstance(bal, Balance)
        assert bal.model == "XS204 Excellence"
        assert bal.capacity == (220.009, "g")


def test_power_up_line_on_connect_is_never_taken_for_a_reply() -> None:
    script = [(S, b"S S     100.00 g\r\n")]
    with balance(script, on_connect=POWER_UP) as bal:
        assert bal.read_stable(1.0).value == 100.0


def test_power_up_line_after_the_flush_is_skipped() -> None:
    late = (b"I2\r\n", POWER_UP + b'I2 A "XS204 Excellence 220.0090 g"\r\n')
    with balance([late, (SI, b"S D       1.00 g\r\n")], sync=False) as bal:
        assert bal.read_now().value == 1.0


def test_reset_option_sends_at_first() -> None:
    script = [(b"@\r\n", POWER_UP), I2]
    with balance(script, sync=False, reset=True) as bal:
        assert bal.model == "XS204 Excellence"


def test_identify() -> None:
    script = [I2, (b"I3\r\n", b'I3 A "2.10.12"\r\n'), (b"I4\r\n", POWER_UP)]
    with balance(script) as bal:
        ident = bal.identify()
    assert ident.maker == "Mettler Toledo"
    assert ident.model == "XS204 Excellence"
    assert ident.serial == "B123456789"
    assert ident.firmware == "2.10.12"
    assert ident.raw == (
        b'I2 A "XS204 Excellence 220.0090 g"\r\nI3 A "2.10.12"\r\nI4 A "B123456789"'
    )


def test_read_stable_is_s_and_keeps_the_exact_bytes() -> None:
    with balance([(S, b"S S     100.00 g\r\n")]) as bal:
        reading = bal.read_stable(1.0)
    assert reading.value == 100.0
    assert reading.unit == "g"
    assert reading.stable is True
    assert reading.raw == b"S S     100.00 g"
    assert reading.instrument == "dut"


def test_read_now_is_si() -> None:
    with balance([(SI, b"S D     -12.34 g\r\n"), (SI, b"S S      0.000 kg\r\n")]) as bal:
        first, second = bal.read_now(), bal.read_now()
    assert (first.value, first.stable, first.unit) == (-12.34, False, "g")
    assert (second.value, second.stable, second.unit) == (0.0, True, "kg")


def test_zero_tare_and_zero_immediately() -> None:
    script = [
        (Z, b"Z A\r\n"),
        (T, b"T S      50.00 g\r\n"),
        (ZI, b"ZI D\r\n"),
        (ZI, b"ZI S\r\n"),
    ]
    with balance(script) as bal:
        assert bal.zero() is None
        tare = bal.tare()
        assert (tare.value, tare.unit, tare.raw) == (50.0, "g", b"T S      50.00 g")
        assert bal.zero_immediately() is False
        assert bal.zero_immediately() is True


@pytest.mark.parametrize(
    ("method", "request_", "reply", "error", "words"),
    [
        ("read_stable", S, b"S I", InstrumentBusy, "not executable"),
        ("read_stable", S, b"S +", OverloadError, "overload"),
        ("read_stable", S, b"S -", UnderloadError, "underload"),
        ("read_stable", S, b"ES", InstrumentCommandError, "syntax error"),
        ("read_stable", S, b"ET", ProtocolError, "transmission error"),
        ("read_stable", S, b"EL", InstrumentCommandError, "logical error"),
        ("read_stable", S, b"S L", InstrumentCommandError, "bad parameter"),
        ("read_stable", S, b"S D     100.00 g", ProtocolError, "unexpected status"),
        ("read_stable", S, b"S S     1O0.00 g", ProtocolError, "not a number"),
        ("read_stable", S, b"S S     100.00 G", ProtocolError, "unknown unit"),
        ("read_stable", S, b"S S   100.00 g", ProtocolError, "10-character"),
        ("read_stable", S, b"S S \x8f\x00garbage", ProtocolError, "not ASCII"),
        ("read_stable", S, b"Z A", ProtocolError, "does not belong"),
        ("read_stable", S, b"S S", ProtocolError, "no weight"),
        ("read_now", SI, b"S I", InstrumentBusy, "not executable"),
        ("read_now", SI, b"S +", OverloadError, "overload"),
        ("read_now", SI, b"S -", UnderloadError, "underload"),
        ("read_now", SI, b"ES", InstrumentCommandError, "syntax error"),
        ("zero", Z, b"Z I", InstrumentBusy, "not executable"),
        ("zero", Z, b"Z +", OverloadError, "overload"),
        ("zero", Z, b"Z -", UnderloadError, "underload"),
        ("zero", Z, b"EL", InstrumentCommandError, "logical error"),
        ("tare", T, b"T I", InstrumentBusy, "not executable"),
        ("tare", T, b"T +", OverloadError, "overload"),
        ("tare", T, b"T -", UnderloadError, "underload"),
        ("zero_immediately", ZI, b"ZI +", OverloadError, "overload"),
    ],
)
def test_every_status_and_error_reply(
    method: str, request_: bytes, reply: bytes, error: type[Exception], words: str
) -> None:
    with balance([(request_, reply + b"\r\n")]) as bal:
        call = getattr(bal, method)
        with pytest.raises(error) as info:
            call(1.0) if method == "read_stable" else call()
        resource = bal.resource
    assert type(info.value) is error
    assert words in str(info.value)
    assert str(info.value).startswith(resource)
    assert info.value.raw == reply


def test_power_up_line_in_the_middle_flushes_and_reports_a_restart() -> None:
    stale = POWER_UP + b"S S      99.00 g\r\n"  # one send: both lines arrive together
    script = [(S, stale), I2, (SI, b"S S       1.00 g\r\n")]  # back in step by I2
    with balance(script) as bal:
        with pytest.raises(ProtocolError) as info:
            bal.read_stable(1.0)
        assert info.value.transient
        assert "restarted" in str(info.value)
        assert bal.read_now().value == 1.0  # the stale 99.00 g was flushed


def test_silence_is_a_timeout_naming_the_resource() -> None:
    with balance([(SI, None)]) as bal:
        start = time.monotonic()
        with pytest.raises(InstrumentTimeout) as info:
            bal.read_now()
        assert time.monotonic() - start < 0.8
    assert bal.resource in str(info.value)


def test_truncated_line_is_a_timeout_with_the_partial_bytes() -> None:
    with balance([(SI, b"S S     10")]) as bal, pytest.raises(InstrumentTimeout) as info:
        bal.read_now()
    assert info.value.raw == b"S S     10"


def test_read_stable_waits_its_timeout_plus_the_margin() -> None:
    # transport timeout 0.3 s, but S may take timeout + margin = 0.5 s
    with balance([(S, [0.4, b"S S       5.00 g\r\n"])], stability_margin=0.2) as bal:
        assert bal.read_stable(0.3).value == 5.0


def test_a_late_reply_after_a_timeout_is_flushed_before_the_next_command() -> None:
    # Back in step by an I2 exchange before the next command (see test_faults_balance.py).
    script = [(S, [0.45, b"S S       5.00 g\r\n"]), I2, (SI, b"S D       7.00 g\r\n")]
    with balance(script, stability_margin=0.0) as bal:
        with pytest.raises(InstrumentTimeout):
            bal.read_stable(0.3)
        time.sleep(0.3)  # the late "S S 5.00 g" arrives meanwhile
        assert bal.read_now().value == 7.0


def test_a_stray_i2_from_a_timed_out_resync_does_not_leave_the_driver_one_behind() -> None:
    """The first resync's I2 is answered after its deadline: the second resync takes that
    answer, and its own I2 answer is then read where SI's was expected. Refused, and the
    driver resyncs again, so the answer to that SI (1.00 g) is never taken for the next."""
    script = [
        (SI, None),
        (b"I2\r\n", [0.9, I2[1]]),  # the resync waits 0.3 + 0.3 s
        I2,
        (SI, b"S S       1.00 g\r\n"),
        I2,
        (SI, b"S S       2.00 g\r\n"),
    ]
    with balance(script) as bal:
        with pytest.raises(InstrumentTimeout):
            bal.read_now()
        with pytest.raises(InstrumentTimeout):
            bal.read_now()
        with pytest.raises(ProtocolError, match="does not belong to this command"):
            bal.read_now()
        assert bal.read_now().value == 2.0


def test_a_capacity_too_large_for_a_float_is_no_capacity() -> None:
    model, capacity = sics.parse_model(("XS204 " + "9" * 400 + " g",))
    assert capacity is None and model.startswith("XS204")


def test_unit_option_rejects_another_unit() -> None:
    with (
        balance([(SI, b"S S      0.100 kg\r\n")], unit="g") as bal,
        pytest.raises(InstrumentError) as info,
    ):
        bal.read_now()
    assert type(info.value) is InstrumentError
    assert "kg" in str(info.value) and not info.value.transient


def test_dropped_connection_is_a_connection_error() -> None:
    with balance([(S, CLOSE)]) as bal, pytest.raises(InstrumentConnectionError):
        bal.read_stable(5.0)


def test_connect_to_a_dead_port_is_a_connection_error() -> None:
    from replay import free_port

    resource = f"socket://127.0.0.1:{free_port()}"
    with pytest.raises(InstrumentConnectionError) as info:
        sics.connect("dut", resource, {})
    assert resource in str(info.value)


def test_start_on_a_prepared_transport_discards_what_arrived_before() -> None:
    with ReplayServer([I2, (SI, b"S S       2.00 g\r\n")], on_connect=POWER_UP) as srv:
        transport = open_resource(srv.socket_url, timeout=0.3)
        assert srv.connected.wait(2)
        time.sleep(0.05)  # the power-up line is in the socket now
        bal = sics.MettlerSicsBalance("dut", transport)
        try:
            bal.start()
            assert bal.read_now().value == 2.0
        finally:
            bal.close()


# -- other transports ---------------------------------------------------------------------


def test_over_a_pty() -> None:
    script = [(S, b"S S     100.00 g\r\n"), (Z, b"Z A\r\n")]
    with balance(script, kind="device", server=PtyReplay) as bal:
        assert bal.read_stable(1.0).value == 100.0
        bal.zero()


def test_over_visa_tcpip_socket() -> None:
    script = [(S, b"S S     100.00 g\r\n"), (SI, b"S I\r\n"), (SI, b"S S  12")]
    with balance(script, kind="visa_socket") as bal:
        reading = bal.read_stable(1.0)
        assert (reading.value, reading.raw) == (100.0, b"S S     100.00 g")
        with pytest.raises(InstrumentBusy):
            bal.read_now()
        with pytest.raises(InstrumentTimeout):
            bal.read_now()


# -- fuzzing the parser ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_parse_reply_only_returns_or_raises_protocol_error(line: bytes) -> None:
    try:
        reply = sics.parse_reply(line)
    except ProtocolError as exc:
        assert exc.raw == line
    else:
        assert reply.raw == line


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(min_value=-99999, max_value=99999, places=3, allow_nan=False),
    st.sampled_from(["S", "D"]),
    st.sampled_from(sorted(sics.UNITS)),
)
def test_weight_lines_round_trip(value: Any, status: str, unit: str) -> None:
    text = f"{value:f}"
    line = f"S {status} {text:>10} {unit}".encode()
    reply = sics.parse_reply(line)
    assert (reply.value, reply.unit, reply.status) == (float(text), unit, status)

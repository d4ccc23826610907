"""Transports against real sockets and ptys: framing, deadlines, dropped links, bad resources."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from replay import CLOSE, PtyReplay, ReplayServer, Script, free_port
from simhelp import load

from benchctl.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from benchctl.transport import open_resource
from benchctl.transport.base import SerialSettings, Transport

T = 0.3  # short timeout for the timeout tests

#: The three ways to reach the replay server: pyserial URL, VISA SOCKET, VISA ASRL over a URL.
KINDS = ["socket_url", "visa_socket", "visa_asrl"]


@contextlib.contextmanager
def connected(
    script: Script,
    kind: str,
    *,
    timeout: float = 1.0,
    server: type[ReplayServer] | type[PtyReplay] = ReplayServer,
    on_connect: bytes = b"",
    **kwargs: Any,
) -> Iterator[tuple[Any, Transport]]:
    """A replay server and a transport opened on its resource ``kind`` (an attribute name)."""
    with server(script, on_connect=on_connect) as srv:
        transport = open_resource(getattr(srv, kind), timeout=timeout, **kwargs)
        try:
            yield srv, transport
        finally:
            transport.close()


@pytest.mark.parametrize("kind", KINDS)
def test_query_round_trip(kind: str) -> None:
    with connected([(b"PING\r\n", b"PONG 1\r\n"), (b"*IDN?\r\n", b"X,Y,Z\r\n")], kind) as (_srv, t):
        assert t.query(b"PING") == b"PONG 1"
        assert t.query(b"*IDN?") == b"X,Y,Z"


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_after_the_terminator_are_kept(kind: str) -> None:
    reply = [b"ONE\r\nTW", 0.05, b"O\r\nTHR", 0.05, b"EE\r\n"]
    with connected([(b"GO\r\n", reply)], kind) as (_srv, t):
        assert t.query(b"GO") == b"ONE"
        assert t.read_line() == b"TWO"
        assert t.read_line() == b"THREE"


@pytest.mark.parametrize("kind", KINDS)
def test_silence_times_out_naming_the_resource(kind: str) -> None:
    with connected([(b"S\r\n", None)], kind, timeout=T) as (srv, t):
        t.write(b"S")
        start = time.monotonic()
        with pytest.raises(InstrumentTimeout) as info:
            t.read_line()
        elapsed = time.monotonic() - start
    assert getattr(srv, kind) in str(info.value)
    assert info.value.resource == getattr(srv, kind)
    assert info.value.transient
    assert T * 0.8 <= elapsed < T + 3.0  # bounded (generous: the machine may be loaded)


@pytest.mark.parametrize("kind", KINDS)
def test_half_line_times_out_and_is_discarded(kind: str) -> None:
    with connected(
        [(b"S\r\n", b"S S    10"), (b"SI\r\n", b"S D      1.00 g\r\n")], kind, timeout=T
    ) as (srv, t):
        t.write(b"S")
        start = time.monotonic()
        with pytest.raises(InstrumentTimeout) as info:
            t.read_line()
        assert time.monotonic() - start < T + 0.5
        # the partial bytes are gone: the next reply is read clean
        assert t.query(b"SI") == b"S D      1.00 g"
    assert getattr(srv, kind) in str(info.value)


@pytest.mark.parametrize("kind", ["socket_url", "visa_socket"])
def test_half_line_carries_the_partial_bytes(kind: str) -> None:
    with connected([(b"S\r\n", b"S S    10")], kind, timeout=T) as (srv, t):
        t.write(b"S")
        with pytest.raises(InstrumentTimeout) as info:
            t.read_line()
    assert info.value.raw == b"S S    10"
    assert "incomplete reply" in str(info.value)
    assert getattr(srv, kind) in str(info.value)


def test_serial_deadline_is_overall_not_per_byte() -> None:
    trickle: list[bytes | float] = []
    for _ in range(60):  # 6 s of trickle: a per-byte timeout would never give up before it
        trickle += [b"x", 0.1]
    with connected([(b"S\r\n", trickle)], "socket_url", timeout=T) as (srv, t):
        t.write(b"S")
        start = time.monotonic()
        with pytest.raises(InstrumentTimeout):
            t.read_line()
        elapsed = time.monotonic() - start
        srv._stop.set()  # do not wait for the whole trickle
    assert elapsed < T + 3.0  # far below the 6 s a per-byte timeout would take


def test_serial_message_says_the_timeout() -> None:
    with connected([(b"S\r\n", None)], "socket_url", timeout=2.0) as (_srv, t):
        t.write(b"S")
        with pytest.raises(InstrumentTimeout) as info:
            t.read_line(timeout=0.2)
    assert "no reply within 0.2 s" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_closed_connection_is_a_connection_error_promptly(kind: str) -> None:
    with connected([(b"S\r\n", [0.05, CLOSE])], kind, timeout=2.0) as (srv, t):
        t.write(b"S")
        start = time.monotonic()
        with pytest.raises(InstrumentConnectionError) as info:
            t.read_line()
        elapsed = time.monotonic() - start
    assert getattr(srv, kind) in str(info.value)
    assert elapsed < 5.0  # promptly, not after a read timeout of its own


def test_visa_socket_closed_mid_line_is_a_connection_error() -> None:
    with connected([(b"S\r\n", [b"S S  ", 0.05, CLOSE])], "visa_socket", timeout=T) as (_srv, t):
        t.write(b"S")
        with pytest.raises(InstrumentConnectionError):
            t.read_line()


def test_visa_socket_closed_mid_line_is_reported_at_once() -> None:
    with connected([(b"S\r\n", [b"S S  ", 0.05, CLOSE])], "visa_socket", timeout=3.0) as (srv, t):
        t.write(b"S")
        start = time.monotonic()
        with pytest.raises(InstrumentConnectionError) as info:
            t.read_line()
        elapsed = time.monotonic() - start
    assert elapsed < 2.0  # not after the 3 s read timeout
    assert srv.visa_socket in str(info.value)
    assert info.value.raw == b"S S  "


def test_visa_socket_write_has_a_timeout() -> None:
    """An instrument that stops reading fills the connection: the write gives up in time
    (pyvisa-py's own write would wait for ever)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel completes the connection; nobody ever reads it
        resource = f"TCPIP::127.0.0.1::{listener.getsockname()[1]}::SOCKET"
        t = open_resource(resource, timeout=T)
        try:
            start = time.monotonic()
            with pytest.raises(InstrumentTimeout) as info:
                for _ in range(1000):  # far more than any socket buffer holds
                    t.write(b"x" * 1_000_000)
            elapsed = time.monotonic() - start
        finally:
            t.close()
    assert "could not send within 0.3 s" in str(info.value)
    assert resource in str(info.value)
    assert elapsed < T + 3.0


def test_visa_transport_used_after_close_says_it_is_closed() -> None:
    with connected([], "visa_socket") as (srv, t):
        t.close()
        for call in (lambda: t.write(b"S"), t.read_line, t.flush_input):
            with pytest.raises(InstrumentConnectionError, match="resource is closed") as info:
                call()
            assert srv.visa_socket in str(info.value)


def test_serial_closed_mid_line_is_a_connection_error() -> None:
    with connected([(b"S\r\n", [b"S S  ", 0.05, CLOSE])], "socket_url", timeout=2.0) as (_srv, t):
        t.write(b"S")
        start = time.monotonic()
        with pytest.raises(InstrumentConnectionError):
            t.read_line()
        assert time.monotonic() - start < 1.0


@pytest.mark.parametrize(
    "form",
    [
        "socket://127.0.0.1:{port}",
        "TCPIP::127.0.0.1::{port}::SOCKET",
        "ASRLsocket://127.0.0.1:{port}::INSTR",
    ],
)
def test_refused_port_is_a_connection_error(form: str) -> None:
    resource = form.format(port=free_port())
    with pytest.raises(InstrumentConnectionError) as info:
        open_resource(resource, timeout=T)
    assert resource in str(info.value)


@pytest.mark.parametrize(
    "resource", ["/dev/does-not-exist-benchctl", "ASRL/dev/does-not-exist-benchctl::INSTR"]
)
def test_missing_device_is_a_connection_error(resource: str) -> None:
    with pytest.raises(InstrumentConnectionError) as info:
        open_resource(resource, timeout=T)
    assert resource in str(info.value)


def test_gpib_without_a_gpib_library_is_a_connection_error() -> None:
    with pytest.raises(InstrumentConnectionError) as info:
        open_resource("GPIB0::22::INSTR", timeout=T)
    assert "GPIB0::22::INSTR" in str(info.value)
    assert not info.value.transient  # a missing library does not come back by retrying


@pytest.mark.parametrize(
    "settings",
    [SerialSettings(parity="X"), SerialSettings(bytesize=9), SerialSettings(stopbits=3)],
)
@pytest.mark.parametrize("form", ["{device}", "ASRL{device}::INSTR"])
def test_impossible_serial_settings_are_not_transient(settings: SerialSettings, form: str) -> None:
    with PtyReplay([]) as pty:
        resource = form.format(device=pty.device)
        with pytest.raises(InstrumentConnectionError) as info:
            open_resource(resource, serial=settings)
    assert resource in str(info.value)
    assert not info.value.transient


@pytest.mark.parametrize("resource", ["tcp:127.0.0.1:5025", "ttyUSB0", "http://x", ""])
def test_unknown_resource_form_lists_the_accepted_forms(resource: str) -> None:
    with pytest.raises(InstrumentConnectionError) as info:
        open_resource(resource)
    text = str(info.value)
    for form in ("/dev/ttyUSB0", "socket://", "TCPIP::", "ASRL", "GPIB0::22::INSTR", "modbus-tcp"):
        assert form in text
    assert not info.value.transient  # retrying cannot fix a misspelt resource
    if resource:
        assert text.startswith(resource)


@pytest.mark.parametrize(
    "resource", ["modbus-tcp://127.0.0.1:5020?device_id=1", "modbus-rtu:///dev/ttyUSB1"]
)
def test_modbus_is_not_a_line_transport(resource: str) -> None:
    with pytest.raises(InstrumentError) as info:
        open_resource(resource)
    assert "Modbus transport" in str(info.value)
    assert resource in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_flush_input_discards_buffered_and_pending(kind: str) -> None:
    script = [(b"A\r\n", b"X\r\nSTALE 1\r\nSTALE 2\r\n"), (b"B\r\n", b"FRESH\r\n")]
    with connected(script, kind) as (_srv, t):
        assert t.query(b"A") == b"X"
        time.sleep(0.1)  # let the stale lines arrive
        t.flush_input()
        assert t.query(b"B") == b"FRESH"


def test_power_up_line_is_flushed() -> None:
    power_up = b'I4 A "B123"\r\n'
    with connected([(b"S\r\n", b"OK\r\n")], "socket_url", on_connect=power_up) as (srv, t):
        assert srv.connected.wait(2)
        time.sleep(0.05)
        t.flush_input()
        assert t.query(b"S") == b"OK"


def test_other_terminations() -> None:
    term = {"read_termination": b"\n", "write_termination": b"\n"}
    with connected(
        [(b":SENS:PRES?\n", b":SENS:PRES 1.5\n")], "visa_socket", timeout=1.0, **term
    ) as (_srv, t):
        assert t.query(b":SENS:PRES?") == b":SENS:PRES 1.5"


# -- pty: a real serial device path ------------------------------------------------------


def test_pty_device_path() -> None:
    settings = SerialSettings(baudrate=2400, bytesize=7, parity="E", stopbits=1)
    with connected(
        [(b"Q\r\n", b"ST,+00123.45  g\r\nNEXT\r\n")],
        "device",
        timeout=1.0,
        serial=settings,
        server=PtyReplay,
    ) as (_pty, t):
        assert t.query(b"Q") == b"ST,+00123.45  g"
        assert t.read_line() == b"NEXT"


def test_pty_timeouts() -> None:
    with connected(
        [(b"Q\r\n", None), (b"Q\r\n", b"ST,+0")], "device", timeout=T, server=PtyReplay
    ) as (pty, t):
        t.write(b"Q")
        with pytest.raises(InstrumentTimeout) as info:
            t.read_line()
        assert info.value.raw is None and pty.device in str(info.value)
        t.write(b"Q")
        with pytest.raises(InstrumentTimeout) as info:
            t.read_line()
        assert info.value.raw == b"ST,+0"


def test_pty_hang_up_is_a_connection_error() -> None:
    with connected([(b"Q\r\n", [0.05, CLOSE])], "device", timeout=2.0, server=PtyReplay) as (
        pty,
        t,
    ):
        t.write(b"Q")
        start = time.monotonic()
        with pytest.raises(InstrumentConnectionError) as info:
            t.read_line()
        assert time.monotonic() - start < 1.0
    assert pty.device in str(info.value)


def test_visa_asrl_on_a_pty() -> None:
    # Baud only: Linux ptys reject a later change of data bits/parity (pyvisa-py sets them
    # after opening), which a real serial port accepts.
    settings = SerialSettings(baudrate=4800)
    with connected(
        [(b"SEND\r\n", b"T= 22.3 'C\r\n"), (b"SEND\r\n", None)],
        "visa_asrl",
        timeout=T,
        serial=settings,
        server=PtyReplay,
    ) as (pty, t):
        assert t.query(b"SEND") == b"T= 22.3 'C"
        t.write(b"SEND")
        with pytest.raises(InstrumentTimeout) as info:
            t.read_line()
    assert pty.visa_asrl in str(info.value)


# -- the process-wide VISA resource manager ---------------------------------------------


@pytest.fixture
def pace_sim() -> Iterator[Any]:
    """A simulated Druck PACE on a TCPIP SOCKET (the simulator speaks the real protocol)."""
    sim = load("bench").start_simulation({"controller": {"type": "druck_pace", "noise": 0.0}},
                                         speed=1.0, seed=1, control=None)
    try:
        yield sim
    finally:
        sim.stop()


def test_closing_another_resource_manager_does_not_break_later_opens(pace_sim: Any) -> None:
    """pyvisa hands every ``ResourceManager("@py")`` the same object: someone else closing
    theirs (a script, a notebook, another library in the process) closes benchctl's cached
    manager and every resource opened through it.  The open transport then says its resource
    is closed, naming it, and the next open (the engine's reconnect) gets a new manager."""
    import pyvisa

    resource = pace_sim.resources["controller"]
    term = {"read_termination": b"\n", "write_termination": b"\n"}
    first = open_resource(resource, timeout=2.0, **term)
    try:
        assert first.query(b"*IDN?").startswith(b"*IDN GE Druck")
        pyvisa.ResourceManager("@py").close()  # someone else's manager: the same object
        with pytest.raises(InstrumentConnectionError, match="resource is closed") as info:
            first.query(b"*IDN?")
        assert resource in str(info.value)
    finally:
        first.close()
    again = open_resource(resource, timeout=2.0, **term)  # InvalidSession before the fix
    try:
        assert again.query(b"*IDN?").startswith(b"*IDN GE Druck")
        assert again.query(b":SENS:PRES?").startswith(b":SENS:PRES ")
    finally:
        again.close()


def test_resource_manager_is_made_again_once_closed() -> None:
    from benchctl.transport.visa import resource_manager

    assert resource_manager() is resource_manager()
    old = resource_manager()
    old.close()
    new = resource_manager()
    assert new is not old
    assert new.session is not None


# -- import cost ------------------------------------------------------------------------


def test_importing_the_transport_package_does_not_import_pyvisa_or_pyserial() -> None:
    code = (
        "import sys, benchctl.transport\n"
        "bad = [m for m in ('pyvisa', 'serial', 'pyvisa_py') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

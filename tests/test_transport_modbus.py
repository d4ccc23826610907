"""Modbus transport: resource strings, float orders, byte-exact frames (TCP and RTU), errors,
one shared lock per bus; against a byte replay and against the pymodbus simulator server."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from replay import CLOSE, PtyReplay, ReplayServer, free_port
from simhelp import load

from benchctl.errors import (
    InstrumentCommandError,
    InstrumentConnectionError,
    InstrumentTimeout,
)
from benchctl.transport import modbus
from benchctl.transport.modbus import (
    ModbusExceptionError,
    decode_float32,
    encode_float32,
    open_modbus,
    parse_modbus_resource,
)

modbus_server = load("modbus_server")
world_mod = load("world")


def crc16(frame: bytes) -> bytes:
    """Modbus RTU CRC (poly 0xA001, init 0xFFFF), low byte first: written here from the
    specification, independently of pymodbus."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


def rtu(frame: bytes) -> bytes:
    return frame + crc16(frame)


def mbap(tid: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


F123 = struct.pack(">f", 123.456)  # 42 F6 E9 79


# -- resource strings (pure) --------------------------------------------------------------------


@pytest.mark.parametrize(("resource", "kind", "where", "device_id", "serial"), [
    ("modbus-tcp://127.0.0.1:5020?device_id=7", "tcp", "127.0.0.1:5020", 7, {}),
    ("modbus-tcp://gauge.lab", "tcp", "gauge.lab:502", 1, {}),
    ("modbus-tcp://[::1]:1502?device_id=2", "tcp", "::1:1502", 2, {}),
    ("modbus-rtu:///dev/ttyUSB1?baudrate=19200&device_id=3", "rtu", "/dev/ttyUSB1", 3,
     {"baudrate": 19200, "bytesize": 8, "parity": "N", "stopbits": 1}),
    ("modbus-rtu://COM3?parity=e&stopbits=2", "rtu", "COM3", 1,
     {"baudrate": 9600, "bytesize": 8, "parity": "E", "stopbits": 2}),
    ("modbus-rtu://socket://127.0.0.1:4001?device_id=5", "rtu", "socket://127.0.0.1:4001", 5,
     {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1}),
])
def test_resource_strings(resource: str, kind: str, where: str, device_id: int,
                          serial: dict[str, Any]) -> None:
    spec = parse_modbus_resource(resource)
    assert (spec.kind, spec.where, spec.device_id) == (kind, where, device_id)
    if kind == "rtu":
        assert spec.serial == serial


@pytest.mark.parametrize(("resource", "expected"), [
    ("modbus-tcp://127.0.0.1:5020?unit=1", "unknown query key 'unit'"),
    ("modbus-tcp://127.0.0.1:5020?device_id=300", "device_id must be a whole number 0 … 247"),
    ("modbus-tcp://127.0.0.1:99999", "port 1 … 65535"),
    ("modbus-tcp://", "expected modbus-tcp://HOST:PORT"),
    ("modbus-rtu://?device_id=1", "no serial port"),
    ("modbus-rtu:///dev/ttyUSB0?parity=X", "parity must be N, E, O, M or S"),
    ("modbus-rtu:///dev/ttyUSB0?baudrate=fast", "baudrate must be a whole number"),
    ("modbus-tcp://h:1?device_id=1&device_id=2", "given twice"),
    ("modbus-udp://127.0.0.1:502", "not a Modbus resource"),
])
def test_bad_resource_strings_say_what_is_wrong(resource: str, expected: str) -> None:
    with pytest.raises(InstrumentConnectionError) as info:
        open_modbus(resource)
    assert expected in str(info.value)
    assert str(info.value).startswith(resource)
    assert not info.value.transient  # a misspelt resource does not heal by retrying


def test_bad_word_order_is_refused() -> None:
    with pytest.raises(InstrumentConnectionError, match="word_order must be"):
        open_modbus("modbus-tcp://127.0.0.1:5020", word_order="middle")


# -- 32-bit values (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "byte", "registers"), [
    ("big", "big", [0x42F6, 0xE979]),        # ABCD
    ("little", "big", [0xE979, 0x42F6]),     # CDAB
    ("big", "little", [0xF642, 0x79E9]),     # BADC
    ("little", "little", [0x79E9, 0xF642]),  # DCBA
])
def test_float_orders(word: str, byte: str, registers: list[int]) -> None:
    assert encode_float32(123.456, word, byte) == registers
    assert decode_float32(registers, word, byte) == pytest.approx(123.456, rel=1e-7)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False),
       st.sampled_from(["big", "little"]), st.sampled_from(["big", "little"]))
def test_float_round_trip(value: float, word: str, byte: str) -> None:
    assert decode_float32(encode_float32(value, word, byte), word, byte) == value


# -- byte-exact frames ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_buses_left() -> Iterator[None]:
    """Every test closes what it opens: no bus may stay registered."""
    yield
    assert not modbus._buses, f"buses left open: {list(modbus._buses)}"


def test_tcp_frames_are_byte_exact() -> None:
    script = [
        (mbap(1, 1, b"\x03\x01\x00\x00\x02"), mbap(1, 1, b"\x03\x04" + F123)),
        (mbap(2, 1, b"\x10\x00\x0a\x00\x02\x04" + struct.pack(">f", 2.5)),
         mbap(2, 1, b"\x10\x00\x0a\x00\x02")),
        (mbap(3, 1, b"\x05\x00\x02\xff\x00"), mbap(3, 1, b"\x05\x00\x02\xff\x00")),
        (mbap(4, 1, b"\x04\x02\x02\x00\x02"), mbap(4, 1, b"\x04\x04\x00\xbc\x61\x4e")),
    ]
    with ReplayServer(script) as srv:
        dev = open_modbus(f"modbus-tcp://127.0.0.1:{srv.port}?device_id=1", timeout=1.0)
        try:
            assert dev.read_float32(0x0100) == (pytest.approx(123.456, rel=1e-7), F123)
            dev.write_float32(0x000A, 2.5)
            dev.write_coil(2, True)
            assert dev.read_uint32(0x0202, input_registers=True) == (12345678,
                                                                       b"\x00\xbc\x61\x4e")
        finally:
            dev.close()


def test_rtu_frames_are_byte_exact_on_a_serial_line() -> None:
    script = [
        (rtu(b"\x03\x03\x01\x00\x00\x02"), rtu(b"\x03\x03\x04" + F123)),
        (rtu(b"\x03\x03\x01\x00\x00\x02"), rtu(b"\x03\x83\x02")),
    ]
    with PtyReplay(script) as srv:
        dev = open_modbus(f"modbus-rtu://{srv.device}?baudrate=19200&device_id=3", timeout=1.0)
        try:
            assert dev.read_float32(0x0100)[0] == pytest.approx(123.456, rel=1e-7)
            with pytest.raises(InstrumentCommandError) as info:
                dev.read_holding(0x0100, 2)
        finally:
            dev.close()
    text = str(info.value)
    assert text.startswith(f"modbus-rtu://{srv.device}")
    assert "read holding registers (03) at address 0x0100" in text
    assert "exception 0x02, illegal data address" in text


@pytest.mark.parametrize(("code", "meaning", "transient"), [
    (0x01, "illegal function", False),
    (0x04, "server device failure", False),
    (0x06, "server device busy", True),
    (0x0B, "gateway target device failed to respond", True),
])
def test_exception_responses_name_the_function_address_and_meaning(
        code: int, meaning: str, transient: bool) -> None:
    script = [(mbap(1, 9, b"\x04\x00\x10\x00\x01"), mbap(1, 9, bytes([0x84, code])))]
    with ReplayServer(script) as srv:
        resource = f"modbus-tcp://127.0.0.1:{srv.port}?device_id=9"
        dev = open_modbus(resource, timeout=1.0)
        try:
            with pytest.raises(ModbusExceptionError) as info:
                dev.read_input(0x0010, 1)
        finally:
            dev.close()
    error = info.value
    assert isinstance(error, InstrumentCommandError)
    assert error.exception_code == code and error.transient is transient
    assert str(error).startswith(resource)
    assert "read input registers (04) at address 0x0010 (16)" in str(error)
    assert meaning in str(error)
    assert error.raw == mbap(1, 9, bytes([0x84, code]))


def test_silence_is_a_timeout_and_a_dropped_connection_a_connection_error() -> None:
    request = mbap(1, 1, b"\x03\x01\x00\x00\x02")
    with ReplayServer([(request, None)]) as srv:
        dev = open_modbus(f"modbus-tcp://127.0.0.1:{srv.port}", timeout=0.2)
        try:
            with pytest.raises(InstrumentTimeout, match=r"no reply from device 1 within 0\.2 s"):
                dev.read_holding(0x0100, 2)
        finally:
            dev.close()
    with ReplayServer([(request, CLOSE)]) as srv:
        dev = open_modbus(f"modbus-tcp://127.0.0.1:{srv.port}", timeout=1.0)
        try:
            with pytest.raises(InstrumentConnectionError,
                               match=r"connection to 127\.0\.0\.1:\d+ lost"):
                dev.read_holding(0x0100, 2)
        finally:
            dev.close()


def test_connection_refused_names_the_resource() -> None:
    resource = f"modbus-tcp://127.0.0.1:{free_port()}?device_id=1"
    with pytest.raises(InstrumentConnectionError) as info:
        open_modbus(resource, timeout=0.5)
    assert str(info.value).startswith(resource)
    assert "refused" in str(info.value).lower()
    assert info.value.transient


# -- against the simulator server ----------------------------------------------------------------


@pytest.fixture
def world() -> Any:
    return world_mod.SimWorld(speed=100.0, seed=1)


def address_values(address: int, count: int) -> list[int]:
    """Each register holds its own address: a reply can be checked against its request."""
    return [(address + i) & 0xFFFF for i in range(count)]


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_a_dropped_connection_is_reopened_on_the_next_call(world: Any, transport: str) -> None:
    faults = world.faults("dev")
    with modbus_server.serve_modbus(transport=transport, read=address_values,
                                    faults=faults) as server:
        dev = open_modbus(server.resource, timeout=0.5)
        try:
            assert dev.read_holding(100, 3) == [100, 101, 102]
            faults.set("disconnect", 1)
            with pytest.raises(InstrumentConnectionError) as info:
                dev.read_holding(100, 3)
            assert info.value.transient
            assert dev.read_holding(200, 2) == [200, 201]  # a new connection, same device
            faults.set("error", 1)
            with pytest.raises(ModbusExceptionError, match="0x04, server device failure"):
                dev.read_holding(100, 1)
            faults.set("silence", 1)
            with pytest.raises(InstrumentTimeout):
                dev.read_holding(100, 1)
            assert dev.read_holding(7, 1) == [7]  # no stale reply taken for this one
        finally:
            dev.close()


def test_devices_on_one_port_share_one_client_and_lock(world: Any) -> None:
    """Four threads hammer two devices opened on the same port: every reply matches its
    request, so no frames interleaved; the port closes with its last device."""
    with modbus_server.serve_modbus(transport="rtu", read=address_values) as server:
        resource = server.resource.replace("?", "?baudrate=115200&")
        a = open_modbus(resource, timeout=1.0)
        b = open_modbus(resource, timeout=1.0, word_order="little")
        assert a._bus is b._bus and len(modbus._buses) == 1
        errors: list[str] = []

        def hammer(dev: Any, base: int) -> None:
            for i in range(15):
                address = base + i
                got = dev.read_holding(address, 2)
                if got != [address, address + 1]:
                    errors.append(f"asked {address}, got {got}")

        threads = [threading.Thread(target=hammer, args=(dev, base))
                   for dev, base in ((a, 0), (b, 1000), (a, 2000), (b, 3000))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        # A sequence of requests holds the bus: the other device's request waits for it.
        done = threading.Event()
        other = threading.Thread(target=lambda: (b.read_holding(9, 1), done.set()))
        with a.exclusive():
            other.start()
            assert a.read_holding(1, 1) == [1]
            assert not done.wait(0.3)
        other.join(10)
        assert done.is_set()
        a.close()
        assert len(modbus._buses) == 1  # b still uses it
        assert b.read_holding(5, 1) == [5]
        b.close()
        assert not modbus._buses


def test_a_second_device_on_a_bus_must_use_the_same_line_settings(world: Any) -> None:
    with modbus_server.serve_modbus(transport="rtu", read=address_values) as server:
        a = open_modbus(server.resource, timeout=1.0)
        try:
            other = server.resource.replace("?", "?baudrate=19200&")
            with pytest.raises(InstrumentConnectionError, match="already open with 9600 baud"):
                open_modbus(other)
        finally:
            a.close()


def test_writes_reach_the_device_and_word_order_applies(world: Any) -> None:
    stored: dict[int, int] = {}

    def read(address: int, count: int) -> list[int]:
        return [stored.get(address + i, 0) for i in range(count)]

    def write(address: int, values: list[int]) -> None:
        stored.update({address + i: v for i, v in enumerate(values)})

    with modbus_server.serve_modbus(transport="tcp", read=read, write=write) as server:
        dev = open_modbus(server.resource, timeout=1.0, word_order="little")
        try:
            dev.write_float32(10, 123.456)
            assert [stored[10], stored[11]] == [0xE979, 0x42F6]  # CDAB on the wire
            value, raw = dev.read_float32(10)
            assert value == pytest.approx(123.456, rel=1e-7) and raw == b"\xe9\x79\x42\xf6"
        finally:
            dev.close()


def test_rtu_late_reply_is_not_the_next_requests_answer() -> None:
    """RTU has no transaction id: a reply that comes after the timeout would pass for the
    answer to the next identical request. After a timeout the transport waits for the line to
    fall quiet (dropping what comes) before it sends again."""
    request = rtu(b"\x03\x03\x01\x00\x00\x02")
    old, new = struct.pack(">f", 1.0), struct.pack(">f", 2.0)
    script = [(request, [0.5, rtu(b"\x03\x03\x04" + old)]),
              (request, rtu(b"\x03\x03\x04" + new))]
    with PtyReplay(script) as srv:
        dev = open_modbus(f"modbus-rtu://{srv.device}?baudrate=19200&device_id=3", timeout=0.3)
        try:
            with pytest.raises(InstrumentTimeout):
                dev.read_float32(0x0100)  # the 1.0 comes 0.2 s after the timeout
            assert dev.read_float32(0x0100)[0] == 2.0
        finally:
            dev.close()

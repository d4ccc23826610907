"""Modbus pressure gauge driver: byte-exact frames (Modbus TCP and RTU), the KELLER-style map,
word order, NaN and exception replies; then against the gauge simulator over TCP and RTU."""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest
from replay import PtyReplay, ReplayServer, load_driver
from simhelp import load
from test_transport_modbus import mbap, rtu

from benchctl.errors import ConfigError, InstrumentCommandError, ProtocolError
from benchctl.instruments import PressureIndicator

gauge_driver = load_driver("modbus_pressure_gauge")
bench_mod = load("bench")
manifold_mod = load("manifold")


def p1_request(tid: int, unit: int = 1) -> bytes:
    return mbap(tid, unit, b"\x03\x01\x00\x00\x02")


def p1_reply(tid: int, value: float, unit: int = 1, registers: bytes | None = None) -> bytes:
    data = registers if registers is not None else struct.pack(">f", value)
    return mbap(tid, unit, b"\x03\x04" + data)


def test_reads_are_byte_exact_over_modbus_tcp() -> None:
    script = [
        (p1_request(1), p1_reply(1, 0.0)),  # connect: one reading proves the link
        (p1_request(2), p1_reply(2, 5.0025)),
        (mbap(3, 1, b"\x03\x02\x02\x00\x02"), mbap(3, 1, b"\x03\x04\x01\x45\x85\x4e")),
        (mbap(4, 1, b"\x03\x01\x02\x00\x02"), mbap(4, 1, b"\x03\x04" +
                                                   struct.pack(">f", 23.5))),
    ]
    with ReplayServer(script) as srv:
        gauge = gauge_driver.connect("gauge", f"modbus-tcp://127.0.0.1:{srv.port}?device_id=1",
                                     {"timeout": 0.5})
        try:
            assert isinstance(gauge, PressureIndicator)
            reading = gauge.read()
            assert (reading.value, reading.unit) == (5.0025, "bar")  # not 5.002500057...
            assert reading.raw == struct.pack(">f", 5.0025)
            assert gauge.identify().serial == "21333326"
            assert gauge.read_temperature().value == 23.5
        finally:
            gauge.close()


def test_word_order_input_registers_and_another_map_over_rtu() -> None:
    """A gauge with CDAB floats in input registers at 0x0010, on an RS-485 line."""
    words = struct.pack(">f", 412.5)
    cdab = words[2:] + words[:2]
    request = rtu(b"\x05\x04\x00\x10\x00\x02")
    script = [(request, rtu(b"\x05\x04\x04" + cdab)), (request, rtu(b"\x05\x04\x04" + cdab))]
    with PtyReplay(script) as srv:
        gauge = gauge_driver.connect(
            "gauge", f"modbus-rtu://{srv.device}?baudrate=19200&device_id=5",
            {"timeout": 0.5, "unit": "kPa", "word_order": "little", "register_type": "input",
             "pressure_register": 0x10, "temperature_register": -1, "serial_register": -1})
        try:
            reading = gauge.read()
            assert (reading.value, reading.unit, reading.raw) == (412.5, "kPa", cdab)
            assert gauge.identify().serial == ""
            with pytest.raises(ProtocolError, match="no temperature register"):
                gauge.read_temperature()
        finally:
            gauge.close()


def test_nan_is_a_sensor_fault_not_a_reading() -> None:
    nan = struct.pack(">f", float("nan"))
    script = [(p1_request(1), p1_reply(1, 0.0)), (p1_request(2), p1_reply(2, 0, registers=nan))]
    with ReplayServer(script) as srv:
        gauge = gauge_driver.connect("gauge", f"modbus-tcp://127.0.0.1:{srv.port}",
                                     {"timeout": 0.5})
        try:
            with pytest.raises(ProtocolError, match="sensor fault or overrange") as info:
                gauge.read()
            assert info.value.raw == nan
        finally:
            gauge.close()


def test_an_exception_reply_at_connect_names_the_register() -> None:
    script = [(p1_request(1), mbap(1, 1, b"\x83\x02"))]
    with ReplayServer(script) as srv:
        resource = f"modbus-tcp://127.0.0.1:{srv.port}"
        with pytest.raises(InstrumentCommandError) as info:
            gauge_driver.connect("gauge", resource, {"timeout": 0.5})
    assert str(info.value).startswith(resource)
    assert "at address 0x0100 (256) (count 2)" in str(info.value)
    assert "illegal data address" in str(info.value)


@pytest.mark.parametrize(("options", "key"), [
    ({"word_order": "middle"}, "instruments.gauge.word_order"),
    ({"register_type": "coil"}, "instruments.gauge.register_type"),
    ({"pressure_register": -1}, "instruments.gauge.pressure_register"),
    ({"unit": "kg"}, "instruments.gauge.unit"),
])
def test_bad_options_name_the_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        gauge_driver.connect("gauge", "modbus-tcp://127.0.0.1:1", options)
    assert info.value.key == key


# -- against the simulator ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_reads_the_simulated_gauge(transport: str) -> None:
    sim = bench_mod.start_simulation({"gauge": {
        "type": "modbus_pressure_gauge", "transport": transport, "unit": "bar",
        "zero_offset": 0.01, "span_error_pct": 0.2, "resolution": 0.0001,
        "word_order": "little", "serial": 4242}}, speed=100.0, control=None)
    try:
        manifold = manifold_mod.manifold_for(sim.world)
        manifold.pump_time = 0.01
        manifold.pump_to(400_000.0)  # 4 bar
        time.sleep(0.05)
        gauge = gauge_driver.connect("gauge", sim.resources["gauge"],
                                     {"word_order": "little"})
        try:
            reading = gauge.read()
            assert reading.value == pytest.approx(4.0 + 0.01 + 0.008, abs=0.00011)
            assert gauge.identify().serial == "4242"
        finally:
            gauge.close()
    finally:
        sim.stop()

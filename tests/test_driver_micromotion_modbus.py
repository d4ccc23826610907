"""micromotion_modbus driver: register-exact requests and decoding over real Modbus TCP/RTU
frames (a recording pymodbus server), every float byte order, the connect-time check of
register 521, bad values, and a delivery measured against the Coriolis simulator."""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import simhelp
from replay import load_driver

from benchctl.errors import ConfigError, InstrumentError, ProtocolError
from benchctl.instruments import FlowMeter
from benchctl.transport.modbus import ModbusExceptionError

mm = load_driver("micromotion_modbus")
modbus_server = simhelp.load("modbus_server")
cor = simhelp.load("coriolis")

#: 1-based register -> value, as a transmitter would hold them.
VALUES = {247: 489.25, 249: 0.7335, 251: 28.65, 253: 0.6667, 259: 14657.22, 261: 19.981,
          263: 99999.5, 265: 136.25}


class Device:
    """A register image served over Modbus; every request is recorded."""

    def __init__(self, order: int = 0, values: dict[int, float] | None = None) -> None:
        self.order = order
        self.values = dict(VALUES if values is None else values)
        self.requests: list[tuple[str, int, Any]] = []

    def words(self) -> dict[int, int]:
        out: dict[int, int] = {520: self.order}
        for number, value in self.values.items():
            hi, lo = cor.encode_float(value, self.order)
            out[number - 1], out[number] = hi, lo
        return out

    def read(self, address: int, count: int) -> list[int]:
        self.requests.append(("read", address, count))
        words = self.words()
        try:
            return [words[a] for a in range(address, address + count)]
        except KeyError:
            raise modbus_server.ModbusReply(0x02) from None

    def write_coil(self, address: int, value: bool) -> None:
        self.requests.append(("coil", address, value))


@contextlib.contextmanager
def served(device: Device, transport: str = "tcp", **options: Any) -> Iterator[Any]:
    server = modbus_server.serve_modbus(transport=transport, device_id=3, read=device.read,
                                        write_coil=device.write_coil, name="mm")
    try:
        meter = mm.connect("master_meter", server.resource, {"timeout": 0.5, **options})
        try:
            yield meter
        finally:
            meter.close()
    finally:
        server.stop()


# -- pure ------------------------------------------------------------------------------------


def test_decode_block_every_byte_order() -> None:
    for code, (word, byte) in mm.FLOAT_ORDERS.items():
        regs = cor.encode_float(28.65, code) + cor.encode_float(0.7335, code)
        out = mm.decode_block(regs, 250, {"temperature": 250, "density": 252}, word, byte)
        assert out["temperature"][0] == pytest.approx(28.65, rel=1e-6), code
        assert out["density"][0] == pytest.approx(0.7335, rel=1e-6), code
        assert out["temperature"][1] == b"".join(r.to_bytes(2, "big") for r in regs[:2])


def test_decode_refuses_nan() -> None:
    nan = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    with pytest.raises(ProtocolError, match="density is not a number"):
        mm.decode_block(nan, 248, {"density": 248}, "big", "big")


def test_register_map_is_data_and_checked() -> None:
    m = mm.RegisterMap.build({"mass_total": 1001}, {"mass_total": "kg"})
    assert m.address("mass_total") == 1000 and m.unit("mass_total") == "kg"
    assert m.block("mass_total", "volume_total") is None  # no longer contiguous
    assert mm.RegisterMap.build().block("mass_total", "volume_total") == (258, 4)
    with pytest.raises(ConfigError, match=r"registers\.mass_totl"):
        mm.RegisterMap.build({"mass_totl": 259})
    with pytest.raises(ConfigError, match="overlap"):
        mm.RegisterMap.build({"density": 248})
    with pytest.raises(ConfigError, match="1-based register number"):
        mm.RegisterMap.build({"density": 0})


# -- on the wire -------------------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "word", "byte", "code"), [
    ("tcp", "big", "big", 0), ("tcp", "little", "big", 1), ("tcp", "big", "little", 2),
    ("rtu", "little", "little", 3),
])
def test_requests_are_register_exact(transport: str, word: str, byte: str, code: int) -> None:
    device = Device(order=code)
    with served(device, transport, word_order=word, byte_order=byte) as meter:
        assert isinstance(meter, FlowMeter)
        assert device.requests == [("read", 520, 1)]  # register 521 checked on connect
        totals = meter.read_totals()
        assert device.requests[-1] == ("read", 258, 4)  # 259 … 262 in one request
        assert totals.mass.value == pytest.approx(14657.22, rel=1e-7)
        assert totals.mass.unit == "g" and totals.volume.unit == "L"
        assert totals.volume.value == pytest.approx(19.981, rel=1e-7)
        assert totals.mass.raw == b"".join(
            r.to_bytes(2, "big") for r in cor.encode_float(14657.22, code))
        assert meter.read_flow().value == pytest.approx(0.6667, rel=1e-6)
        assert device.requests[-1] == ("read", 252, 2)
        assert meter.read_density().unit == "g/cm**3"
        assert device.requests[-1] == ("read", 248, 2)
        assert meter.read_temperature().value == pytest.approx(28.65, rel=1e-6)
        assert device.requests[-1] == ("read", 250, 2)
        assert meter.read_mass_flow().value == pytest.approx(489.25, rel=1e-6)
        assert device.requests[-1] == ("read", 246, 2)
        meter.reset_totals()
        meter.stop_totals()
        meter.start_totals()
        assert device.requests[-3:] == [("coil", 2, True), ("coil", 1, False),
                                        ("coil", 1, True)]


def test_request_frame_bytes() -> None:
    device = Device()
    with served(device) as meter:
        meter.read_totals()
        sent, received = meter.device.last_frames
        # MBAP (transaction id, protocol 0, length 6, unit 3) + PDU 03 0102 0004
        assert sent[2:] == b"\x00\x00\x00\x06\x03\x03\x01\x02\x00\x04"
        assert received[7:9] == b"\x03\x08"
        meter.reset_totals()
        sent, _ = meter.device.last_frames
        assert sent[7:] == b"\x05\x00\x02\xff\x00"  # write single coil 3 (address 2) on


def test_a_byte_order_mismatch_is_refused_with_the_fix() -> None:
    device = Device(order=1)
    server = modbus_server.serve_modbus(transport="tcp", device_id=3, read=device.read,
                                        name="mm")
    try:
        with pytest.raises(InstrumentError) as info:
            mm.connect("master_meter", server.resource, {"timeout": 0.5})
        text = str(info.value)
        assert "3-4 1-2 (register 521 = 1)" in text
        assert 'set word_order = "little" and byte_order = "big"' in text
        assert server.resource in text
        # Without the check the driver believes the bench file.
        meter = mm.connect("master_meter", server.resource,
                           {"timeout": 0.5, "check_byte_order": False})
        assert meter.read_temperature().value != pytest.approx(28.65)
        meter.close()
    finally:
        server.stop()


def test_overridden_registers_and_units() -> None:
    values = dict(VALUES)
    values[1001] = values.pop(259) / 1000.0  # a transmitter set to kg, totals elsewhere
    values[1003] = values.pop(261)
    device = Device(values=values)
    with served(device, registers={"mass_total": 1001, "volume_total": 1003},
                units={"mass_total": "kg"}) as meter:
        totals = meter.read_totals()
        assert device.requests[-1] == ("read", 1000, 4)
        assert totals.mass.value == pytest.approx(14.65722) and totals.mass.unit == "kg"


def test_device_errors_name_the_resource() -> None:
    device = Device(values={k: v for k, v in VALUES.items() if k != 249})  # no density
    with served(device) as meter:
        with pytest.raises(ModbusExceptionError, match="illegal data address") as info:
            meter.read_density()
        assert meter.resource in str(info.value)
        device.values[251] = math.nan
        with pytest.raises(ProtocolError, match="temperature is not a number"):
            meter.read_temperature()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="word_order"):
        mm.connect("m", "modbus-tcp://127.0.0.1:1?device_id=1", {"word_order": "middle"})


# -- against the simulated Coriolis meter -------------------------------------------------------


def test_a_delivery_measured_on_the_simulator() -> None:
    bench = simhelp.load("bench")
    with bench.start_simulation({
        "pump": {"type": "sim_dispenser", "ramp_time": 0.0, "slowdown_volume": 0.0,
                 "error_curve": [[0.0, 0.1]], "fuel_temperature": 28.0},
        "mm": {"type": "micromotion_modbus", "float_order": 2, "error_pct": 0.02},
    }, speed=400.0, control=None) as sim:
        meter = mm.connect("mm", sim.resources["mm"], {"timeout": 1.0, "byte_order": "little"})
        try:
            assert meter.identify().maker == "Micro Motion"
            meter.reset_totals()
            assert meter.read_totals().volume.value == 0.0
            reply = sim.world.apply({"type": "deliver", "volume": 20, "flow": 40})
            assert reply["ok"], reply
            true = sim.world.get("pump").last.true_volume
            totals = meter.read_totals()
            density = meter.read_density().value
            assert totals.volume.value == pytest.approx(true * 1.0002, rel=1e-6)
            assert totals.mass.value / density / 1000 == pytest.approx(true * 1.0002, rel=1e-6)
            assert meter.read_flow().value == 0.0
            assert meter.read_temperature().value == pytest.approx(28.0)
        finally:
            meter.close()

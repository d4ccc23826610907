"""Digital pressure gauges and transmitters with a KELLER-style Modbus map (the DUT).

Function 03 (or 04 with ``register_type = "input"``), float32: ``0x0100`` pressure P1,
``0x0102`` sensor temperature (°C); uint32 serial number at ``0x0202``.  The unit of P1 and the
float word order are options of the instrument (defaults bar, big = ABCD), as is the map, so a
gauge from another maker with the same layout at other addresses needs no new driver.

Modbus TCP (``modbus-tcp://HOST:502?device_id=1``) or RTU
(``modbus-rtu:///dev/ttyUSB1?baudrate=9600&device_id=1``; default line 9600 8N1).  Several
gauges on one RS-485 bus share its port and lock (benchctl.transport.modbus).

Every reading keeps the two registers' bytes as they came off the wire (``Reading.raw``).
A value that is not a finite number (NaN: the sensor's own fault or overrange signal) is not
a reading: ProtocolError naming the register.
"""

from __future__ import annotations

import math
from typing import Any

from benchctl.errors import ConfigError, ProtocolError
from benchctl.instruments import Identity, Instrument, PressureIndicator, Reading
from benchctl.operator import OperatorPort
from benchctl.transport.modbus import ModbusDevice, open_modbus

ROLE = "pressure_indicator"

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 1.0, "seconds to wait for a Modbus reply"),
    "unit": (str, "bar", "unit of P1 as configured in the gauge (pint spelling: bar, kPa, ...)"),
    "word_order": (str, "big", "float32 word order: big (ABCD) or little (CDAB)"),
    "byte_order": (str, "big", "byte order in each register: big or little"),
    "register_type": (str, "holding", "holding (function 03) or input (function 04)"),
    "pressure_register": (int, 0x0100, "address of the pressure float (P1)"),
    "temperature_register": (int, 0x0102, "address of the temperature float (-1: none)"),
    "serial_register": (int, 0x0202, "address of the uint32 serial number (-1: none)"),
    "maker": (str, "KELLER", "maker reported by identify()"),
    "model": (str, "", "model reported by identify()"),
}


def check_value(value: float, raw: bytes, resource: str, what: str,
                register: int | None = None) -> float:
    """A register value as the gauge meant it, or ProtocolError (NaN/inf: the gauge's fault)
    naming ``what`` (and the ``register`` it was read from: the message is built only then).

    A float32 carries 7 significant digits; the binary tail of its exact value (500.6 is
    500.6000061035156) is not the gauge's and is dropped, so the record shows 500.6.
    """
    if not math.isfinite(value):
        where = what if register is None else f"{what} at {register:#06x}"
        raise ProtocolError(resource, f"{where} is {value!r} (registers {raw.hex(' ')}): the "
                                      "gauge reports a sensor fault or overrange", raw=raw)
    return float(f"{value:.7g}")


class ModbusPressureGauge(PressureIndicator):
    def __init__(self, name: str, device: ModbusDevice, *, unit: str, input_registers: bool,
                 pressure_register: int, temperature_register: int, serial_register: int,
                 maker: str = "KELLER", model: str = "") -> None:
        self.name = name
        self.device = device
        self.resource = device.resource
        self.unit = unit
        self.input_registers = input_registers
        self.pressure_register = pressure_register
        self.temperature_register = temperature_register
        self.serial_register = serial_register
        self.maker = maker
        self.model = model

    def identify(self) -> Identity:
        serial, raw = "", b""
        if self.serial_register >= 0:
            number, raw = self.device.read_uint32(self.serial_register,
                                                  input_registers=self.input_registers)
            serial = str(number)
        return Identity(maker=self.maker, model=self.model, serial=serial, raw=raw)

    def read(self) -> Reading:
        value, raw = self.device.read_float32(self.pressure_register,
                                              input_registers=self.input_registers)
        value = check_value(value, raw, self.resource, "the pressure", self.pressure_register)
        return Reading(value=value, unit=self.unit, stable=True, raw=raw, instrument=self.name)

    def read_temperature(self) -> Reading:
        """The sensor temperature (°C), when the map has one."""
        if self.temperature_register < 0:
            raise ProtocolError(self.resource, "this gauge's map has no temperature register")
        value, raw = self.device.read_float32(self.temperature_register,
                                              input_registers=self.input_registers)
        value = check_value(value, raw, self.resource, "the temperature",
                            self.temperature_register)
        return Reading(value=value, unit="degC", stable=True, raw=raw, instrument=self.name)

    def close(self) -> None:
        self.device.close()

    def __repr__(self) -> str:
        return f"ModbusPressureGauge({self.name!r}, {self.resource!r})"


def connect(
    name: str, resource: str, options: dict[str, Any], *, operator: OperatorPort | None = None
) -> Instrument:
    opt = {key: options.get(key, default) for key, (_t, default, _d) in OPTIONS.items()}
    where = f"instruments.{name}"
    for key in ("word_order", "byte_order"):
        if opt[key] not in ("big", "little"):
            raise ConfigError("bench file", f"{where}.{key}", '"big" or "little"', got=opt[key])
    if opt["register_type"] not in ("holding", "input"):
        raise ConfigError("bench file", f"{where}.register_type", '"holding" or "input"',
                          got=opt["register_type"])
    for key in ("pressure_register", "temperature_register", "serial_register"):
        low = 0 if key == "pressure_register" else -1
        if not low <= int(opt[key]) <= 0xFFFE:
            raise ConfigError("bench file", f"{where}.{key}", f"a register address {low} … 65534",
                              got=opt[key])
    from benchctl.metrology.units import UnitError, convert

    try:
        convert(1.0, str(opt["unit"]), "kPa")
    except UnitError:
        raise ConfigError("bench file", f"{where}.unit", "a pressure unit (bar, kPa, MPa, psi, "
                          "kgf/cm2, ...)", got=opt["unit"]) from None
    device = open_modbus(resource, timeout=float(opt["timeout"]),
                         word_order=str(opt["word_order"]), byte_order=str(opt["byte_order"]))
    gauge = ModbusPressureGauge(
        name, device, unit=str(opt["unit"]), input_registers=opt["register_type"] == "input",
        pressure_register=int(opt["pressure_register"]),
        temperature_register=int(opt["temperature_register"]),
        serial_register=int(opt["serial_register"]), maker=str(opt["maker"]),
        model=str(opt["model"]))
    try:
        gauge.read()  # a gauge that does not answer is reported now, not at the first point
    except BaseException:
        device.close()
        raise
    return gauge

"""A digital pressure gauge with a KELLER-style Modbus map, and a dial gauge, on the manifold.

Modbus map (holding registers, function 03; input registers, function 04, read the same)::

    0x0100-0x0101  P1, float32 in ``unit`` (default bar), word order ``word_order``
    0x0102-0x0103  TOB1, sensor temperature in °C, float32 (the room's temperature + offset)
    0x0202-0x0203  serial number, uint32

Any other address answers exception 02 (illegal data address); writes answer 01 (the gauge has
nothing writable here).  The indication is the manifold pressure through the gauge's own
errors (zero offset, span error, hysteresis, noise, resolution: :class:`GaugeModel`), taken at
the moment the request arrives.  Transport "tcp" (Modbus TCP) or "rtu" (RTU framing over a
TCP socket, resource ``modbus-rtu://socket://HOST:PORT?device_id=N``).

``dial_gauge``: the same gauge model without any interface, for a DUT the technician reads
(the ``read`` action answers what the dial shows, rounded to its resolution).  It starts no
server; its resource is ``manual:NAME``.
"""

from __future__ import annotations

import struct
from typing import Any

from .bench import Option, SimulatorType, register_simulator_type
from .manifold import PA_PER_UNIT, GaugeModel, manifold_for
from .modbus_server import ModbusReply, serve_modbus
from .world import SimWorld

__all__ = ["DIAL_OPTIONS", "GAUGE_OPTIONS", "ModbusGaugeMap", "float_registers"]

P1 = 0x0100
TOB1 = 0x0102
SERIAL = 0x0202


def float_registers(value: float, word_order: str = "big") -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo] if word_order == "big" else [lo, hi]


class ModbusGaugeMap:
    """The gauge's register map, computed on each request."""

    def __init__(self, gauge: GaugeModel, world: SimWorld, *, word_order: str = "big",
                 serial: int = 12345678, temperature_offset: float = 0.0) -> None:
        if word_order not in ("big", "little"):
            raise ValueError(f"word_order must be \"big\" or \"little\", got {word_order!r}")
        if not 0 <= serial <= 0xFFFFFFFF:
            raise ValueError(f"serial must fit in 32 bits, got {serial!r}")
        self.gauge = gauge
        self.world = world
        self.word_order = word_order
        self.serial = serial
        self.temperature_offset = temperature_offset

    def read(self, address: int, count: int) -> list[int]:
        wanted = range(address, address + count)
        cells: dict[int, int] = {}
        if P1 in wanted or P1 + 1 in wanted:
            cells.update(zip((P1, P1 + 1),
                             float_registers(self.gauge.indicate(), self.word_order),
                             strict=True))
        if TOB1 in wanted or TOB1 + 1 in wanted:
            t = self.world.environment.true_values().get("temperature_c", 20.0)
            cells.update(zip((TOB1, TOB1 + 1),
                             float_registers(float(t) + self.temperature_offset,
                                             self.word_order), strict=True))
        if SERIAL in wanted or SERIAL + 1 in wanted:
            hi, lo = self.serial >> 16, self.serial & 0xFFFF
            cells.update({SERIAL: hi, SERIAL + 1: lo} if self.word_order == "big"
                         else {SERIAL: lo, SERIAL + 1: hi})
        missing = [a for a in wanted if a not in cells]
        if missing:
            raise ModbusReply(0x02, f"no register {missing[0]:#06x}")
        return [cells[a] for a in wanted]

    def write(self, address: int, values: list[int]) -> None:
        raise ModbusReply(0x01, "the gauge has no writable registers")


GAUGE_MODEL: dict[str, Option] = {
    "unit": Option("str", "bar", "the gauge's pressure unit (Pa, kPa, MPa, mbar, bar, psi, "
                                 "kgf/cm2, mmHg, mmH2O, ...)"),
    "zero_offset": Option("number", 0.0, "indication at zero pressure, in unit"),
    "span_error_pct": Option("number", 0.0, "error proportional to the pressure, % of reading"),
    "hysteresis": Option("nonneg", 0.0, "falling minus rising indication, in unit"),
    "noise": Option("nonneg", 0.0, "standard deviation of each reading, in unit"),
    "resolution": Option("nonneg", 0.0, "last digit step (or dial division), in unit; 0 none"),
}

GAUGE_OPTIONS: dict[str, Option] = {
    **GAUGE_MODEL,
    "device_id": Option("int", 1, "Modbus device id (1 … 247)"),
    "word_order": Option("str", "big", "float word order: big (ABCD) or little (CDAB)"),
    "serial": Option("number", 12345678, "serial number (uint32 at 0x0202)"),
    "temperature_offset": Option("number", 0.0, "sensor temperature minus room temperature, "
                                                "°C"),
}

DIAL_OPTIONS: dict[str, Option] = dict(GAUGE_MODEL)


def _gauge(world: SimWorld, name: str, options: dict[str, Any]) -> GaugeModel:
    unit = options["unit"]
    if unit not in PA_PER_UNIT:
        raise ValueError(f"unit: expected one of {', '.join(PA_PER_UNIT)}, got {unit!r}")
    return GaugeModel(manifold_for(world), world.rng_for(name),
                      **{k: options[k] for k in GAUGE_MODEL})


def _serve_gauge(world: SimWorld, name: str, options: dict[str, Any], transport: str,
                 host: str, port: int) -> tuple[Any, Any]:
    gauge = _gauge(world, name, options)
    device_id = int(options["device_id"])
    if not 1 <= device_id <= 247:
        raise ValueError(f"device_id: expected 1 … 247, got {device_id}")
    registers = ModbusGaugeMap(gauge, world, word_order=options["word_order"],
                               serial=int(options["serial"]),
                               temperature_offset=options["temperature_offset"])
    server = serve_modbus(transport=transport, host=host, port=port, device_id=device_id,
                          read=registers.read, write=registers.write,
                          faults=world.faults(name), clock=world.clock,
                          rnd=world.random_for(name), name=name)
    return gauge, server


class _NoServer:
    """A dial gauge has no interface: nothing to serve."""

    def __init__(self, name: str) -> None:
        self.resource = f"manual:{name}"

    def stop(self) -> None:
        pass


def _serve_dial(world: SimWorld, name: str, options: dict[str, Any], transport: str,
                host: str, port: int) -> tuple[Any, Any]:
    return _gauge(world, name, options), _NoServer(name)


register_simulator_type(SimulatorType(
    "modbus_pressure_gauge", GAUGE_OPTIONS,
    description="digital pressure gauge, KELLER-style Modbus map (TCP or RTU over a socket)",
    serve=_serve_gauge, transports=("tcp", "rtu")))
register_simulator_type(SimulatorType(
    "dial_gauge", DIAL_OPTIONS,
    description="dial pressure gauge read by the technician (no interface; transport ignored)",
    serve=_serve_dial, transports=("tcp", "pty", "manual")))

"""A Coriolis master meter (Micro Motion-style Modbus map) on the simulated fuel line.

The meter sees the same flow as the dispenser (:class:`~.dispenser.FuelLine`): for each flow
step it adds ρ(t_line) · q · dt · (1 + e/100) to its mass total, e its own error
(``error_pct``), and that mass divided by its measured density (true density +
``density_error``) to its volume total. Its temperature reads t_line + ``temperature_offset``.

Register map (PROTOCOLS.md; 1-based register numbers, wire address = number − 1), float32 in
holding registers, in the float byte order of register 521 (0 = 1-2 3-4, 1 = 3-4 1-2,
2 = 2-1 4-3, 3 = 4-3 2-1; writable; ``float_order`` sets it at power-up)::

    247 mass flow g/s      249 density g/cm³     251 temperature °C    253 volume flow l/s
    259 mass total g       261 volume total l    263 mass inventory g  265 volume inventory l
    521 float byte order (one register, 0 … 3)

Coils (1-based): 2 totalizers running (write 1 start, 0 stop), 3 reset all totals (write 1;
inventories are not reset). A read that touches an address outside the map is answered with
exception 02 (illegal data address).
"""

from __future__ import annotations

import math
import struct
import threading
from typing import Any

from .bench import Option, SimulatorType, register_simulator_type
from .dispenser import FuelLine, fuel_line
from .modbus_server import ModbusReply, serve_modbus
from .world import SimClock, SimWorld

__all__ = ["FLOAT_ORDERS", "REGISTERS", "CoriolisRegisters", "SimCoriolis", "encode_float"]

#: 1-based register number of each float32 quantity.
REGISTERS: dict[str, int] = {
    "mass_flow": 247, "density": 249, "temperature": 251, "volume_flow": 253,
    "mass_total": 259, "volume_total": 261, "mass_inventory": 263, "volume_inventory": 265,
}
BYTE_ORDER_REGISTER = 521
COIL_TOTALS_RUNNING = 2
COIL_RESET_TOTALS = 3
#: Register 521 code -> the order of the four bytes ABCD (the big-endian float) on the wire.
FLOAT_ORDERS: dict[int, tuple[int, int, int, int]] = {
    0: (0, 1, 2, 3),  # 1-2 3-4
    1: (2, 3, 0, 1),  # 3-4 1-2
    2: (1, 0, 3, 2),  # 2-1 4-3
    3: (3, 2, 1, 0),  # 4-3 2-1
}


def encode_float(value: float, order: int) -> list[int]:
    """A float32 as two registers in the float byte order ``order`` (register 521 code)."""
    abcd = struct.pack(">f", value)
    wire = bytes(abcd[i] for i in FLOAT_ORDERS[order])
    return [int.from_bytes(wire[0:2], "big"), int.from_bytes(wire[2:4], "big")]


class SimCoriolis:
    """The meter's physics: totals integrated from the line's flow, values now."""

    def __init__(self, clock: SimClock, line: FuelLine, *, error_pct: float = 0.0,
                 density_error: float = 0.0, temperature_offset: float = 0.0) -> None:
        self.clock = clock
        self.line = line
        self.error_pct = float(error_pct)
        self.density_error = float(density_error)
        self.temperature_offset = float(temperature_offset)
        self.mass_total = 0.0  # g
        self.volume_total = 0.0  # L
        self.mass_inventory = 0.0
        self.volume_inventory = 0.0
        self.running = True
        self._lock = threading.Lock()
        line.listeners.append(self._flow)

    def measured_density(self) -> float:
        """g/cm³ as the meter measures it."""
        return self.line.density() / 1000.0 + self.density_error

    def _flow(self, dt: float, q_lpm: float, t_line: float) -> None:
        mass = self.line.density(t_line) * q_lpm / 60.0 * dt * (1.0 + self.error_pct / 100.0)
        volume = mass / (self.measured_density() * 1000.0)
        with self._lock:
            self.mass_inventory += mass
            self.volume_inventory += volume
            if self.running:
                self.mass_total += mass
                self.volume_total += volume

    def values(self) -> dict[str, float]:
        """Every quantity of the map, now (flows included)."""
        self.line.sync()  # outside our lock: the line's sources call _flow back
        q = self.line.flow_now() * (1.0 + self.error_pct / 100.0)  # L/min, as measured
        rho = self.measured_density()
        with self._lock:
            return {
                "mass_flow": q / 60.0 * rho * 1000.0,
                "density": rho,
                "temperature": self.line.temperature_c + self.temperature_offset,
                "volume_flow": q / 60.0,
                "mass_total": self.mass_total, "volume_total": self.volume_total,
                "mass_inventory": self.mass_inventory,
                "volume_inventory": self.volume_inventory,
            }

    def reset_totals(self) -> None:
        self.line.sync()
        with self._lock:
            self.mass_total = self.volume_total = 0.0

    def set_running(self, running: bool) -> None:
        self.line.sync()
        with self._lock:
            self.running = bool(running)

    def operator_read(self) -> dict[str, Any]:
        v = self.values()
        return {"value": round(v["volume_total"], 3), "unit": "L", "mass_g": v["mass_total"]}


class CoriolisRegisters:
    """The Modbus map of one meter (what the server's callbacks answer)."""

    def __init__(self, meter: SimCoriolis, *, float_order: int = 0) -> None:
        if float_order not in FLOAT_ORDERS:
            raise ValueError(f"float_order: expected 0, 1, 2 or 3, got {float_order!r}")
        self.meter = meter
        self.float_order = float_order

    def read(self, address: int, count: int) -> list[int]:
        words: dict[int, int] = {}
        values = self.meter.values()
        for name, number in REGISTERS.items():
            hi, lo = encode_float(values[name], self.float_order)
            words[number - 1], words[number] = hi, lo
        words[BYTE_ORDER_REGISTER - 1] = self.float_order
        out = []
        for a in range(address, address + count):
            if a not in words:
                raise ModbusReply(0x02, f"no register at address {a}")
            out.append(words[a])
        return out

    def write(self, address: int, values: list[int]) -> None:
        if address != BYTE_ORDER_REGISTER - 1 or len(values) != 1:
            raise ModbusReply(0x02, f"register {address + 1} is read-only")
        if values[0] not in FLOAT_ORDERS:
            raise ModbusReply(0x03, f"float byte order {values[0]} is not 0 … 3")
        self.float_order = int(values[0])

    def write_coil(self, address: int, value: bool) -> None:
        if address == COIL_TOTALS_RUNNING - 1:
            self.meter.set_running(value)
        elif address == COIL_RESET_TOTALS - 1:
            if value:
                self.meter.reset_totals()
        else:
            raise ModbusReply(0x02, f"no coil {address + 1}")


CORIOLIS_OPTIONS: dict[str, Option] = {
    "device_id": Option("int", 1, "Modbus device id (1 … 247)"),
    "float_order": Option("int", 0, "register 521 at power-up: 0 = 1-2 3-4, 1 = 3-4 1-2, "
                                    "2 = 2-1 4-3, 3 = 4-3 2-1"),
    "error_pct": Option("number", 0.0, "the meter's own error on mass (and volume), %"),
    "density_error": Option("number", 0.0, "density measurement error, g/cm³"),
    "temperature_offset": Option("number", 0.0, "temperature measurement error, °C"),
    # The fuel line, when the meter is the first to make it (else the dispenser's wins).
    "product": Option("str", "RON95", "product in the line"),
    "density15": Option("positive", 745.0, "product density at 15 °C, g/L"),
    "beta": Option("nonneg", None, "product cubical expansion per °C (default by product)"),
    "fuel_temperature": Option("number", 28.0, "fuel temperature in the line, °C"),
}


def _serve(world: SimWorld, name: str, options: dict[str, Any], transport: str, host: str,
           port: int) -> tuple[Any, Any]:
    device_id = int(options["device_id"])
    if not 1 <= device_id <= 247:
        raise ValueError(f"device_id: expected 1 … 247, got {device_id}")
    line = fuel_line(world, {k: options[k] for k in ("product", "density15", "beta",
                                                      "fuel_temperature")
                             if options.get(k) is not None})
    meter = SimCoriolis(world.clock, line, error_pct=options["error_pct"],
                        density_error=options["density_error"],
                        temperature_offset=options["temperature_offset"])
    if not math.isfinite(meter.measured_density()) or meter.measured_density() <= 0:
        raise ValueError("density_error leaves no positive density")
    registers = CoriolisRegisters(meter, float_order=int(options["float_order"]))
    server = serve_modbus(transport=transport, host=host, port=port, device_id=device_id,
                          read=registers.read, write=registers.write,
                          write_coil=registers.write_coil, faults=world.faults(name),
                          clock=world.clock, rnd=world.random_for(name), name=name)
    return meter, server


register_simulator_type(SimulatorType(
    "micromotion_modbus", CORIOLIS_OPTIONS,
    description="Coriolis master meter, Micro Motion-style Modbus map, on the fuel line",
    serve=_serve, transports=("tcp", "rtu")))

"""Coriolis master meter with a Micro Motion-style Modbus map (the reference of a dispenser
verification by the master-meter method).

The register map is data (:data:`REGISTERS`, 1-based register numbers as the transmitter's
manual lists them; the wire address is the number − 1) and a bench file may move any entry
(``registers = { mass_total = 259 }``) or change a unit (``units = { mass_total = "kg" }``)
to match the transmitter's configuration: PROTOCOLS.md marks the map [mem], to be verified
against the manual of the transmitter at hand. Defaults (the factory units)::

    247 mass flow g/s     249 density g/cm³      251 temperature °C     253 volume flow l/s
    259 mass total g      261 volume total l     263 mass inventory g   265 volume inventory l

Floats are float32 in two holding registers; their byte order is the transmitter's register
521 (0 = 1-2 3-4, 1 = 3-4 1-2, 2 = 2-1 4-3, 3 = 4-3 2-1), matched by the ``word_order`` and
``byte_order`` options. On connect the driver reads register 521 and refuses a mismatch with
the setting that would fix it, rather than reading numbers that are silently wrong.
Coils: 2 totalizers start (1) / stop (0), 3 reset all totals.

Decoding lives in :func:`decode_block` (pure): registers -> named values.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from benchctl.errors import ConfigError, InstrumentError, ProtocolError
from benchctl.instruments import FlowMeter, FlowTotals, Identity, Instrument, Reading
from benchctl.operator import OperatorPort
from benchctl.transport.modbus import ModbusDevice, decode_float32, open_modbus

ROLE = "flow_meter"

#: name -> (1-based register number, unit as pint spells it).
REGISTERS: dict[str, tuple[int, str]] = {
    "mass_flow": (247, "g/s"),
    "density": (249, "g/cm**3"),
    "temperature": (251, "degC"),
    "volume_flow": (253, "L/s"),
    "mass_total": (259, "g"),
    "volume_total": (261, "L"),
    "mass_inventory": (263, "g"),
    "volume_inventory": (265, "L"),
}
BYTE_ORDER_REGISTER = 521
COIL_TOTALS_RUNNING = 2
COIL_RESET_TOTALS = 3
#: Register 521 code -> (word_order, byte_order) of the transport.
FLOAT_ORDERS: dict[int, tuple[str, str]] = {
    0: ("big", "big"),        # 1-2 3-4
    1: ("little", "big"),     # 3-4 1-2
    2: ("big", "little"),     # 2-1 4-3
    3: ("little", "little"),  # 4-3 2-1
}
ORDER_TEXT = {0: "1-2 3-4", 1: "3-4 1-2", 2: "2-1 4-3", 3: "4-3 2-1"}

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 1.0, "seconds to wait for a reply"),
    "word_order": (str, "big", "float word order: big (1-2 3-4) or little (3-4 1-2)"),
    "byte_order": (str, "big", "byte order within a register: big, or little (2-1 4-3)"),
    "check_byte_order": (bool, True, "read register 521 on connect and refuse a mismatch"),
    "registers": (dict, {}, "register numbers (1-based) that differ from the default map, "
                  "e.g. { mass_total = 259 }"),
    "units": (dict, {}, "units that differ from the factory ones, e.g. { mass_total = \"kg\" }"),
    "maker": (str, "Micro Motion", "maker reported by identify()"),
    "model": (str, "", "model reported by identify()"),
    "serial": (str, "", "serial number reported by identify()"),
}


@dataclass(frozen=True)
class RegisterMap:
    """Where each quantity lives and its unit."""

    entries: dict[str, tuple[int, str]]

    @classmethod
    def build(cls, registers: dict[str, Any] | None = None, units: dict[str, Any] | None = None,
              where: str = "bench file") -> RegisterMap:
        entries = dict(REGISTERS)
        for key, table, kind in (("registers", registers or {}, "number"),
                                 ("units", units or {}, "unit")):
            for name, value in table.items():
                if name not in entries:
                    raise ConfigError(where, f"{key}.{name}",
                                      f"one of {', '.join(REGISTERS)}", got=name)
                number, unit = entries[name]
                if kind == "number":
                    if isinstance(value, bool) or not isinstance(value, int) \
                            or not 1 <= value <= 65535:
                        raise ConfigError(where, f"{key}.{name}",
                                          "a 1-based register number 1 … 65535", got=value)
                    entries[name] = (value, unit)
                else:
                    if not isinstance(value, str) or not value:
                        raise ConfigError(where, f"{key}.{name}", "a unit such as \"kg\"",
                                          got=value)
                    entries[name] = (number, value)
        starts = sorted(number for number, _ in entries.values())
        for a, b in itertools.pairwise(starts):
            if b - a < 2:
                raise ConfigError(where, "registers",
                                  f"float32 values two registers apart (registers {a} and {b} "
                                  "overlap)")
        return cls(entries)

    def address(self, name: str) -> int:
        return self.entries[name][0] - 1

    def unit(self, name: str) -> str:
        return self.entries[name][1]

    def block(self, *names: str) -> tuple[int, int] | None:
        """(address, count) of one read covering ``names`` if they are contiguous."""
        addresses = sorted(self.address(n) for n in names)
        if all(b - a == 2 for a, b in itertools.pairwise(addresses)):
            return addresses[0], 2 * len(addresses)
        return None


def decode_block(registers: list[int], start: int, names: dict[str, int], word_order: str,
                 byte_order: str, resource: str = "micromotion_modbus"
                 ) -> dict[str, tuple[float, bytes]]:
    """Registers read from ``start`` -> {name: (value, wire bytes)} for each name's address.

    A non-finite float (NaN, ±inf: what a transmitter sends for a failed measurement) is a
    ProtocolError naming the quantity.
    """
    out: dict[str, tuple[float, bytes]] = {}
    for name, address in names.items():
        i = address - start
        pair = registers[i:i + 2]
        if i < 0 or len(pair) != 2:
            raise ValueError(f"{name} (address {address}) is not in the block read from {start}")
        raw = b"".join(int(r).to_bytes(2, "big") for r in pair)
        value = decode_float32(pair, word_order, byte_order)
        if not math.isfinite(value):
            raise ProtocolError(resource, f"{name} is not a number ({value}): the transmitter "
                                "reports a failed measurement", raw=raw)
        out[name] = (value, raw)
    return out


class MicroMotionMeter(FlowMeter):
    """A Coriolis transmitter on Modbus (TCP or RTU)."""

    def __init__(self, name: str, device: ModbusDevice, regmap: RegisterMap, *,
                 maker: str = "", model: str = "", serial: str = "") -> None:
        self.name = name
        self.device = device
        self.resource = device.resource
        self.map = regmap
        self._identity = Identity(maker=maker, model=model, serial=serial)

    # -- connection ----------------------------------------------------------------------

    def float_order(self) -> int:
        """The transmitter's float byte order code (register 521)."""
        code = self.device.read_holding(BYTE_ORDER_REGISTER - 1, 1)[0]
        if code not in FLOAT_ORDERS:
            raise ProtocolError(self.resource, f"register {BYTE_ORDER_REGISTER} (float byte "
                                f"order) holds {code}, not 0 … 3")
        return code

    def check_float_order(self) -> None:
        code = self.float_order()
        want = (self.device.word_order, self.device.byte_order)
        if FLOAT_ORDERS[code] != want:
            word, byte = FLOAT_ORDERS[code]
            error = InstrumentError(
                self.resource,
                f"the transmitter sends floats in byte order {ORDER_TEXT[code]} (register "
                f"{BYTE_ORDER_REGISTER} = {code}) but the bench file has word_order = "
                f"\"{want[0]}\", byte_order = \"{want[1]}\": set word_order = \"{word}\" and "
                f"byte_order = \"{byte}\" for this instrument")
            raise error

    def close(self) -> None:
        self.device.close()

    # -- readings -------------------------------------------------------------------------

    def identify(self) -> Identity:
        """Identity from the bench file; reads register 521 so a dead link shows."""
        self.float_order()
        return self._identity

    def read_values(self, *names: str) -> dict[str, Reading]:
        """Several quantities, in one request when their registers are contiguous."""
        if not names:
            raise ValueError("read_values needs at least one quantity name")
        block = self.map.block(*names)
        spans = [block] if block is not None else [(self.map.address(n), 2) for n in names]
        values: dict[str, tuple[float, bytes]] = {}
        for start, count in spans:
            regs = self.device.read_holding(start, count)
            wanted = {n: self.map.address(n) for n in names
                      if start <= self.map.address(n) < start + count}
            values.update(decode_block(regs, start, wanted, self.device.word_order,
                                       self.device.byte_order, self.resource))
        return {n: Reading(values[n][0], self.map.unit(n), raw=values[n][1],
                           instrument=self.name) for n in names}

    def read_totals(self) -> FlowTotals:
        r = self.read_values("mass_total", "volume_total")
        return FlowTotals(mass=r["mass_total"], volume=r["volume_total"])

    def read_now(self) -> Reading:
        """What ``benchctl read`` shows: the volume flow now."""
        return self.read_flow()

    def read_flow(self) -> Reading:
        return self.read_values("volume_flow")["volume_flow"]

    def read_mass_flow(self) -> Reading:
        return self.read_values("mass_flow")["mass_flow"]

    def read_density(self) -> Reading:
        return self.read_values("density")["density"]

    def read_temperature(self) -> Reading:
        return self.read_values("temperature")["temperature"]

    def reset_totals(self) -> None:
        self.device.write_coil(COIL_RESET_TOTALS - 1, True)

    def start_totals(self) -> None:
        self.device.write_coil(COIL_TOTALS_RUNNING - 1, True)

    def stop_totals(self) -> None:
        self.device.write_coil(COIL_TOTALS_RUNNING - 1, False)

    def __repr__(self) -> str:
        return f"MicroMotionMeter({self.name!r}, {self.resource!r})"


def connect(
    name: str, resource: str, options: dict[str, Any], *, operator: OperatorPort | None = None
) -> Instrument:
    opt = {key: options.get(key, default) for key, (_t, default, _d) in OPTIONS.items()}
    where = f"instruments.{name}"
    for key in ("word_order", "byte_order"):
        if opt[key] not in ("big", "little"):
            raise ConfigError("bench file", f"{where}.{key}", "\"big\" or \"little\"",
                              got=opt[key])
    regmap = RegisterMap.build(opt["registers"], opt["units"], f"bench file [{where}]")
    device = open_modbus(resource, timeout=float(opt["timeout"]),
                         word_order=str(opt["word_order"]), byte_order=str(opt["byte_order"]))
    meter = MicroMotionMeter(name, device, regmap, maker=str(opt["maker"]),
                             model=str(opt["model"]), serial=str(opt["serial"]))
    try:
        if opt["check_byte_order"]:
            meter.check_float_order()
    except BaseException:
        meter.close()
        raise
    return meter

"""Role interfaces: what a procedure may ask of an instrument, whoever made it.

A procedure knows roles, never a concrete driver or transport, so a Mettler balance, an A&D
balance and a balance read by the technician are interchangeable in one procedure.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field
from typing import Any


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Reading:
    """One value taken from one instrument, with the bytes it came from (kept for audit)."""

    value: float
    unit: str
    stable: bool = True
    timestamp: dt.datetime = field(default_factory=utcnow)
    raw: bytes = b""
    instrument: str = ""

    def with_instrument(self, name: str) -> Reading:
        return Reading(self.value, self.unit, self.stable, self.timestamp, self.raw, name)


@dataclass(frozen=True)
class Identity:
    """What the instrument says it is."""

    maker: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    raw: bytes = b""


@dataclass(frozen=True)
class Ambient:
    """Ambient conditions from an environment monitor."""

    temperature_c: float | None
    humidity_pct: float | None
    pressure_hpa: float | None
    timestamp: dt.datetime = field(default_factory=utcnow)
    raw: bytes = b""
    instrument: str = ""


class Instrument(abc.ABC):
    """Common to every instrument: a name (from the bench file) and a way to let go."""

    name: str = ""
    #: The resource string it talks to, for error messages and the record.
    resource: str = ""

    @abc.abstractmethod
    def identify(self) -> Identity: ...

    def close(self) -> None:  # noqa: B027 - optional for instruments with nothing to release
        """Release the transport."""


class Balance(Instrument):
    """A weighing instrument: the DUT of a balance bench."""

    @abc.abstractmethod
    def read_now(self) -> Reading:
        """The current indication, stable or not."""

    @abc.abstractmethod
    def read_stable(self, timeout: float) -> Reading:
        """The next stable indication; raise InstrumentBusy if none comes within ``timeout`` s."""

    @abc.abstractmethod
    def zero(self) -> None: ...

    @abc.abstractmethod
    def tare(self) -> Reading:
        """Tare and return the tare value."""


class EnvironmentMonitor(Instrument):
    """Ambient temperature, humidity and barometric pressure."""

    @abc.abstractmethod
    def read_ambient(self) -> Ambient: ...


class PressureIndicator(Instrument):
    """Anything that shows a pressure: a digital gauge, a transmitter read by a DMM, a dial
    gauge read by the technician."""

    @abc.abstractmethod
    def read(self) -> Reading:
        """The pressure now, in the instrument's unit (``Reading.unit``)."""


class PressureController(PressureIndicator):
    """A pressure controller/calibrator used as the reference standard."""

    @abc.abstractmethod
    def set_unit(self, unit: str) -> None:
        """Set the pressure unit (pint spelling, e.g. "kPa") and read it back."""

    @abc.abstractmethod
    def set_setpoint(self, value: float) -> None:
        """Set the setpoint in the current unit; raise if the instrument refuses it."""

    @abc.abstractmethod
    def set_control(self, on: bool) -> None:
        """Switch active control (output) on or off."""

    @abc.abstractmethod
    def read_in_limits(self) -> tuple[Reading, bool]:
        """The pressure and whether it has been within the in-limits band for the dwell."""

    @abc.abstractmethod
    def vent(self) -> None:
        """Vent to atmosphere (the safe state), control off."""


@dataclass(frozen=True)
class FlowTotals:
    mass: Reading
    volume: Reading


class FlowMeter(Instrument):
    """A master meter (e.g. Coriolis) used as the reference of a dispenser verification."""

    @abc.abstractmethod
    def read_totals(self) -> FlowTotals: ...

    @abc.abstractmethod
    def read_flow(self) -> Reading:
        """Volume flow rate now."""

    @abc.abstractmethod
    def read_density(self) -> Reading: ...

    @abc.abstractmethod
    def read_temperature(self) -> Reading: ...

    @abc.abstractmethod
    def reset_totals(self) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """What a dispenser shows for the current or last delivery."""

    volume: Reading
    amount: float | None
    unit_price: float | None
    flow: float | None
    raw: bytes = b""


@dataclass(frozen=True)
class DispenserTotals:
    """A dispenser's totalizers."""

    volume: Reading
    amount: float | None
    raw: bytes = b""


class FuelDispenser(Instrument):
    """A fuel dispenser (fuelling point) under test."""

    @abc.abstractmethod
    def state(self) -> str:
        """IFSF-style fuelling-point state: IDLE, CALLING, AUTHORISED, FUELLING, ..."""

    @abc.abstractmethod
    def authorise(self, preset_volume: float) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def delivery(self) -> Delivery: ...

    @abc.abstractmethod
    def totals(self) -> DispenserTotals:
        """The electronic totalizers (volume and amount), for the record before and after."""

    @abc.abstractmethod
    def set_price(self, unit_price: float) -> None:
        """Set the unit price (per litre) the price computer uses."""


ROLES: dict[str, Any] = {
    "balance": Balance,
    "environment_monitor": EnvironmentMonitor,
    "pressure_indicator": PressureIndicator,
    "pressure_controller": PressureController,
    "flow_meter": FlowMeter,
    "fuel_dispenser": FuelDispenser,
}

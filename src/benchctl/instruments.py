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


ROLES: dict[str, Any] = {
    "balance": Balance,
    "environment_monitor": EnvironmentMonitor,
}

"""Open a line-oriented transport from one resource string.

``open_resource`` is the only way drivers get a connection.  It dispatches on the form of the
resource string:

* pyserial device paths and URLs -> :class:`~benchctl.transport.serial.SerialTransport`
* VISA resource strings -> :class:`~benchctl.transport.visa.VisaTransport` (pyvisa, ``@py``)
* ``modbus-tcp://`` / ``modbus-rtu://`` -> not here: Modbus instruments are register based and
  are opened by :func:`benchctl.transport.modbus.open_modbus`.

pyserial and pyvisa are imported inside the functions that need them, so importing
``benchctl.transport`` (and running ``benchctl --help``) stays fast.
"""

from __future__ import annotations

import re
from typing import Any

from benchctl.errors import InstrumentConnectionError, InstrumentError
from benchctl.transport.base import SerialSettings, Transport

__all__ = [
    "ACCEPTED_FORMS",
    "SERIAL_OPTION_KEYS",
    "SerialSettings",
    "Transport",
    "is_serial_resource",
    "is_visa_resource",
    "open_resource",
    "serial_options",
    "serial_settings",
]

#: Shown to a person who wrote a resource string benchctl cannot open.
ACCEPTED_FORMS = (
    "serial device path (/dev/ttyUSB0, /dev/pts/7, COM3)",
    "pyserial URL (socket://HOST:PORT, rfc2217://HOST:PORT, loop://, spy://...)",
    "VISA resource (TCPIP::HOST::PORT::SOCKET, TCPIP0::HOST::inst0::INSTR, "
    "ASRL/dev/ttyUSB0::INSTR, ASRLsocket://HOST:PORT::INSTR, ASRL3::INSTR, GPIB0::22::INSTR, "
    "USB0::...::INSTR)",
    "Modbus (modbus-tcp://HOST:PORT?device_id=1, modbus-rtu:///dev/ttyUSB1?device_id=3), "
    "for Modbus drivers only",
)

_SERIAL_URL = re.compile(r"^(socket|rfc2217|loop|spy|hwgrep|alt|cp2110)://", re.IGNORECASE)
_WINDOWS_PORT = re.compile(r"^(COM\d+|\\\\\.\\COM\d+)$", re.IGNORECASE)
_VISA = re.compile(r"^(TCPIP\d*|ASRL|GPIB\d*|USB\d*|VXI\d*|PXI\d*)", re.IGNORECASE)
_MODBUS = re.compile(r"^modbus-(tcp|rtu)://", re.IGNORECASE)


def is_serial_resource(resource: str) -> bool:
    """A pyserial device path (``/dev/...``, ``COM3``) or URL (``socket://``...)."""
    return bool(
        _SERIAL_URL.match(resource) or resource.startswith("/") or _WINDOWS_PORT.match(resource)
    )


def is_visa_resource(resource: str) -> bool:
    """A VISA resource string (``TCPIP::...``, ``ASRL...::INSTR``, ``GPIB0::22::INSTR``...)."""
    return bool(_VISA.match(resource)) and "::" in resource


def open_resource(
    resource: str,
    *,
    timeout: float = 2.0,
    read_termination: bytes = b"\r\n",
    write_termination: bytes = b"\r\n",
    serial: SerialSettings | None = None,
) -> Transport:
    """Open ``resource`` and return a line transport; every failure names the resource.

    ``serial`` applies to serial lines (device paths, pyserial URLs, VISA ``ASRL``); it is
    harmless on ``socket://`` and ignored by VISA TCPIP/GPIB resources.
    """
    resource = resource.strip()
    if not read_termination:
        raise InstrumentError(resource, "read_termination must not be empty")
    settings = serial if serial is not None else SerialSettings()
    if _MODBUS.match(resource):
        raise InstrumentError(
            resource,
            "Modbus resources are register based and are opened by the Modbus transport "
            "(benchctl.transport.modbus.open_modbus), not as a line transport; use a Modbus "
            "driver for this instrument",
        )
    if is_visa_resource(resource):
        from benchctl.transport.visa import VisaTransport

        return VisaTransport(
            resource,
            timeout=timeout,
            read_termination=read_termination,
            write_termination=write_termination,
            serial=settings,
        )
    if is_serial_resource(resource):
        from benchctl.transport.serial import SerialTransport

        return SerialTransport(
            resource,
            timeout=timeout,
            read_termination=read_termination,
            write_termination=write_termination,
            serial=settings,
        )
    error = InstrumentConnectionError(
        resource or "(empty resource)",
        "not a resource string benchctl can open; accepted forms: " + "; ".join(ACCEPTED_FORMS),
    )
    error.transient = False  # retrying cannot fix a misspelt resource
    raise error


# -- serial options shared by the drivers' OPTIONS tables -------------------------------------

#: Option keys that describe a serial line (bench.toml, per instrument).
SERIAL_OPTION_KEYS = ("baudrate", "bytesize", "parity", "stopbits", "rtscts", "xonxoff")


def serial_options(default: SerialSettings) -> dict[str, tuple[type, Any, str]]:
    """The serial-line entries of a driver's ``OPTIONS`` table, with the driver's defaults."""
    return {
        "baudrate": (int, default.baudrate, "serial baud rate"),
        "bytesize": (int, default.bytesize, "serial data bits (5, 6, 7 or 8)"),
        "parity": (str, default.parity, "serial parity: N, E, O, M or S"),
        "stopbits": (float, float(default.stopbits), "serial stop bits (1, 1.5 or 2)"),
        "rtscts": (bool, default.rtscts, "RTS/CTS hardware handshake"),
        "xonxoff": (bool, default.xonxoff, "XON/XOFF software handshake"),
    }


def serial_settings(options: dict[str, Any], default: SerialSettings) -> SerialSettings:
    """SerialSettings from an instrument's options, falling back to the driver's defaults."""
    return SerialSettings(
        baudrate=int(options.get("baudrate", default.baudrate)),
        bytesize=int(options.get("bytesize", default.bytesize)),
        parity=str(options.get("parity", default.parity)).upper(),
        stopbits=float(options.get("stopbits", default.stopbits)),
        rtscts=bool(options.get("rtscts", default.rtscts)),
        xonxoff=bool(options.get("xonxoff", default.xonxoff)),
    )

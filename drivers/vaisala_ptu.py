"""Vaisala PTU300-family barometer / temperature / humidity transmitters (serial, 4800 7E1).

Commands: ``S`` (stop run mode, no reply), ``R`` (run mode), ``SEND`` (one reading), ``?``
(information lines), ``ERRS``.  A reading looks like::

    P=  1013.1 hPa T=  22.3 'C RH=  35.2 %RH

but ``FORM`` can change the layout, so :func:`parse_reply` (pure, no I/O) finds ``key=value
unit`` fields with a regular expression in any order and spacing, takes any subset of P, T
and RH, converts units (hPa/mbar/kPa/Pa/bar/psi/mmHg/inHg/torr, 'C/°C/'F/°F/K, %RH/%) and
ignores other fields (Td, a, x, ...).  A line with none of the three, or with a field whose
value is not a number (a failed sensor prints ``***``), is a ProtocolError carrying the bytes.

On connect the driver sends ``S`` (so run-mode output stops) and flushes the input; it also
flushes before every ``SEND`` and skips an echo of the command.

A reading line carries no sequence number, and a flush cannot drop a late ``SEND`` answer
still on its way. After a reply the driver gave up on (a timeout, or a line that is not a
reading) it is out of step: before its next command it sends ``VERS`` and drops every line up
to the ``<model> / <software>`` answer (:meth:`Transport.resync`), so an old reading is never
taken for the next one. ``VERS`` is also what the transmitter prints at power-up; taking that
line for the answer at worst leaves the real answer to be refused by the next ``SEND``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import replace
from typing import Any

from benchctl.errors import InstrumentCommandError, InstrumentTimeout, ProtocolError
from benchctl.instruments import Ambient, EnvironmentMonitor, Identity, Instrument
from benchctl.operator import OperatorPort
from benchctl.transport import SerialSettings, Transport, open_resource, serial_options
from benchctl.transport import serial_settings as _serial_settings

ROLE = "environment_monitor"

DEFAULT_SERIAL = SerialSettings(baudrate=4800, bytesize=7, parity="E", stopbits=1)

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 2.0, "seconds to wait for the reply to SEND and for the first ? line"),
    "info_timeout": (float, 0.3, "seconds of silence that end the ? information listing"),
    "settle": (float, 0.1, "seconds to wait after S (stop run mode) before flushing the input"),
    "write_termination": (str, "\r\n", "sent after each command (a PTU300 takes CR or CR LF)"),
    **serial_options(DEFAULT_SERIAL),
}

#: unit -> factor to hPa
PRESSURE_UNITS: dict[str, float] = {
    "hPa": 1.0,
    "mbar": 1.0,
    "kPa": 10.0,
    "Pa": 0.01,
    "bar": 1000.0,
    "psi": 68.94757293168361,
    "psia": 68.94757293168361,
    "mmHg": 1.3332236842105263,
    "torr": 1.3332236842105263,
    "inHg": 33.86388157894737,
}
TEMPERATURE_UNITS = ("'C", "°C", "C", "'F", "°F", "F", "K")
HUMIDITY_UNITS = ("%RH", "%")

_KEY = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z][A-Za-z0-9]*)\s*=")
_VALUE = re.compile(r"\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*(\S+)?")
_NAMES = {"P": "pressure", "T": "temperature", "RH": "humidity"}


def parse_reply(line: bytes, resource: str = "Vaisala PTU") -> Ambient:
    """Parse one ``SEND`` line into Ambient (°C, %RH, hPa); fields may be in any order."""
    text = _decode(line)
    if text.strip().lower() == "unknown command":
        raise InstrumentCommandError(resource, f"the transmitter says {line!r}", raw=line)
    keys = list(_KEY.finditer(text))
    found: dict[str, float] = {}
    for index, key in enumerate(keys):
        name = key.group(1)
        if name not in _NAMES:
            continue
        end = keys[index + 1].start() if index + 1 < len(keys) else len(text)
        segment = text[key.end() : end]
        if name in found:
            raise ProtocolError(resource, f"{name} appears twice: {line!r}", raw=line)
        found[name] = _field(name, segment, line, resource)
    if not found:
        raise ProtocolError(resource, f"no P=, T= or RH= reading in {line!r}", raw=line)
    return Ambient(
        temperature_c=found.get("T"),
        humidity_pct=found.get("RH"),
        pressure_hpa=found.get("P"),
        raw=line,
    )


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")  # a ° as a single byte (B0h)


def _field(name: str, segment: str, line: bytes, resource: str) -> float:
    m = _VALUE.match(segment)
    if m is None:
        raise ProtocolError(
            resource,
            f"{_NAMES[name]} {name}= is not a number ({segment.strip()!r}): {line!r}",
            raw=line,
        )
    value, unit = float(m.group(1)), m.group(2)
    if not math.isfinite(value):  # hundreds of digits: a broken line, not a reading
        raise ProtocolError(resource, f"{_NAMES[name]} {name}= is out of range: {line!r}",
                            raw=line)
    try:
        return _convert(name, value, unit)
    except ValueError:
        raise ProtocolError(
            resource, f"{name}= has an unknown unit {unit!r}: {line!r}", raw=line
        ) from None


def _convert(name: str, value: float, unit: str | None) -> float:
    if name == "P":
        if unit is None:
            return value
        if unit in PRESSURE_UNITS:
            return value * PRESSURE_UNITS[unit]
    elif name == "T":
        if unit is None or unit in ("'C", "°C", "C"):
            return value
        if unit in ("'F", "°F", "F"):
            return (value - 32.0) * 5.0 / 9.0
        if unit == "K":
            return value - 273.15
    elif name == "RH" and (unit is None or unit in HUMIDITY_UNITS):
        return value
    raise ValueError(unit)


def is_version(line: bytes) -> bool:
    """A ``VERS`` answer (``PTU300 / 5.10``, the resync marker): no reading has a slash
    between two words and nothing else."""
    return re.fullmatch(r"\S+\s*/\s*\S+", _decode(line).strip()) is not None


def parse_info(lines: list[bytes]) -> Identity:
    """``?`` output -> Identity: ``PTU300 / 5.10`` and ``Serial number  : A1234567``."""
    model = firmware = serial = ""
    for raw in lines:
        text = _decode(raw).strip()
        m = re.fullmatch(r"(\S+)\s*/\s*(\S+)", text)
        if m and not model:
            model, firmware = m.group(1), m.group(2)
            continue
        m = re.fullmatch(r"(?i)serial\s*(?:number|nr\.?|no\.?)?\s*:\s*(\S+)", text)
        if m:
            serial = m.group(1)
    return Identity(
        maker="Vaisala", model=model, serial=serial, firmware=firmware, raw=b"\r\n".join(lines)
    )


class VaisalaPtu(EnvironmentMonitor):
    """A Vaisala PTU transmitter on a line transport."""

    def __init__(self, name: str, transport: Transport, *, info_timeout: float = 0.3) -> None:
        self.name = name
        self.transport = transport
        self.resource = transport.resource
        self.info_timeout = info_timeout
        self._out_of_step = False

    def start(self, *, settle: float = 0.1) -> None:
        """``S``: stop run mode, then drop whatever it had sent."""
        self.stop_run_mode()
        if settle > 0:
            time.sleep(settle)
        self.transport.flush_input()

    def close(self) -> None:
        self.transport.close()

    # -- one short method per command ------------------------------------------------------

    def stop_run_mode(self) -> None:
        """``S`` (no reply)."""
        self.transport.write(b"S")

    def read_ambient(self) -> Ambient:
        """``SEND``: one reading."""
        line = self._query(b"SEND")
        try:
            ambient = parse_reply(line, self.resource)
        except ProtocolError:
            self._out_of_step = True  # a line that is not a reading may be anyone's answer
            raise
        return replace(ambient, instrument=self.name)

    def identify(self) -> Identity:
        """``?``: the information lines, until ``info_timeout`` s of silence."""
        lines = [self._query(b"?")]
        while True:
            try:
                lines.append(self.transport.read_line(self.info_timeout))
            except InstrumentTimeout:
                break
        return parse_info(lines)

    # -- plumbing --------------------------------------------------------------------------

    def _query(self, command: bytes) -> bytes:
        """The first line answering ``command`` (an echo skipped), in step first."""
        if self._out_of_step:
            # Within one timeout for the late reply and one for VERS.
            self.transport.resync(b"VERS", is_version, 2 * self.transport.timeout)
            self._out_of_step = False
        else:
            self.transport.flush_input()  # run-mode output, a power-up line
        try:
            line = self.transport.query(command)
            if line.strip() == command:  # echo on
                line = self.transport.read_line()
        except InstrumentTimeout:
            self._out_of_step = True
            raise
        return line

    def __repr__(self) -> str:
        return f"VaisalaPtu({self.name!r}, {self.resource!r})"


def connect(
    name: str, resource: str, options: dict[str, Any], *, operator: OperatorPort | None = None
) -> Instrument:
    opt = {key: options.get(key, default) for key, (_t, default, _d) in OPTIONS.items()}
    transport = open_resource(
        resource,
        timeout=float(opt["timeout"]),
        read_termination=b"\r\n",
        write_termination=str(opt["write_termination"]).encode("latin-1"),
        serial=_serial_settings(opt, DEFAULT_SERIAL),
    )
    ptu = VaisalaPtu(name, transport, info_timeout=float(opt["info_timeout"]))
    try:
        ptu.start(settle=float(opt["settle"]))
    except BaseException:
        transport.close()
        raise
    return ptu

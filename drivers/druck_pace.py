"""Druck PACE 5000/6000 pressure controllers (the reference standard), SCPI over VISA.

Raw socket TCP 5025 (``TCPIP::host::5025::SOCKET``) or RS-232 (``ASRL/dev/ttyUSB0::INSTR``),
LF both ways.  Every reply echoes its header: ``:SENS:PRES?`` -> ``:SENS:PRES 1000.512``; the
driver checks the header belongs to the command (a stale reply to an earlier command is not
taken for this one's) and strips it.  Parsing lives in pure functions (:func:`parse_reply`,
:func:`parse_error`, :func:`parse_in_limits`).

After a reply it gave up on (a timeout, or a line answering another command) the driver is
out of step: before its next command it sends ``*IDN?`` and drops every line up to the
``*IDN`` answer (:meth:`Transport.resync`). The header check alone cannot do this: the PACE
may still owe the answers to the abandoned ``:SENS:PRES?`` and to its retries, and those
carry the very header the next ``:SENS:PRES?`` expects (an old pressure recorded for the next
point). A resync that gets no answer is an InstrumentTimeout and the next command tries again.

Every setting is followed by ``:SYST:ERR?`` until the queue is empty, so a refused setpoint
(−222 data out of range), an unknown header or a syntax error is an InstrumentCommandError
naming the command, not a silent no-op.  Control sequence (PROTOCOLS.md): set and read back
the unit, slew, in-limits band and dwell, then setpoint, output on, poll ``:SENS:PRES:INL?``
(the procedure does the polling, on the run's clock).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from benchctl.errors import (
    InstrumentCommandError,
    InstrumentTimeout,
    ProtocolError,
)
from benchctl.instruments import Identity, Instrument, PressureController, Reading
from benchctl.operator import OperatorPort
from benchctl.transport import SerialSettings, Transport, open_resource, serial_options
from benchctl.transport import serial_settings as _serial_settings

ROLE = "pressure_controller"

DEFAULT_SERIAL = SerialSettings(baudrate=9600, bytesize=8, parity="N", stopbits=1)

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 2.0, "seconds to wait for a reply"),
    "slew": (float, None, "slew rate to set at connect, in the controller's unit per second "
              "(default: leave as set)"),
    "slew_mode": (str, None, "LIN (use slew) or MAX (fastest); default: leave"),
    "inl_band_pct": (float, None, "in-limits band to set, % of full scale (default: leave)"),
    "inl_time": (float, None, "in-limits dwell to set, seconds (default: leave)"),
    **serial_options(DEFAULT_SERIAL),
}

#: pint unit -> PACE unit mnemonic (``:UNIT:PRES``), and back.
UNITS: dict[str, str] = {"Pa": "PA", "kPa": "KPA", "MPa": "MPA", "mbar": "MBAR", "bar": "BAR",
                         "psi": "PSI"}
PINT_UNITS: dict[str, str] = {v: k for k, v in UNITS.items()}

ERROR_HEADER = ":SYST:ERR"
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class PaceReply:
    header: str
    value: str
    raw: bytes


def parse_reply(line: bytes, headers: tuple[str, ...], resource: str = "PACE") -> PaceReply:
    """Split ``<header> <value>`` and check the header is one of ``headers`` (case-insensitive).

    Raises ProtocolError (with ``raw``) for a reply that is not ASCII, has no value, or
    answers another command.
    """
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ProtocolError(resource, f"reply is not ASCII: {line!r}", raw=line) from None
    header, _, value = text.partition(" ")
    if not value.strip():
        raise ProtocolError(resource, f"reply without a value: {line!r}", raw=line)
    if header.upper() not in {h.upper() for h in headers}:
        raise ProtocolError(
            resource,
            f"reply {line!r} does not answer {headers[0]}? (header {header!r})",
            raw=line,
        )
    return PaceReply(header, value.strip(), line)


def parse_number(reply: PaceReply, resource: str = "PACE") -> float:
    text = reply.value.strip()
    if not _NUMBER.fullmatch(text):
        raise ProtocolError(resource, f"{reply.header}: {text!r} is not a number: "
                                      f"{reply.raw!r}", raw=reply.raw)
    value = float(text)
    if not math.isfinite(value):
        raise ProtocolError(resource, f"{reply.header}: not a finite number: {reply.raw!r}",
                            raw=reply.raw)
    return value


def parse_in_limits(reply: PaceReply, resource: str = "PACE") -> tuple[float, bool]:
    """``1000.5, 1`` -> (1000.5, True)."""
    parts = [p.strip() for p in reply.value.split(",")]
    if len(parts) != 2 or parts[1] not in ("0", "1"):
        raise ProtocolError(resource, f"expected '<pressure>, <0|1>': {reply.raw!r}",
                            raw=reply.raw)
    value = parse_number(PaceReply(reply.header, parts[0], reply.raw), resource)
    return value, parts[1] == "1"


def parse_error(reply: PaceReply, resource: str = "PACE") -> tuple[int, str]:
    """``0, No error`` -> (0, "No error"); ``-222, Data out of range`` -> (-222, ...)."""
    code_text, _, message = reply.value.partition(",")
    try:
        code = int(code_text.strip())
    except ValueError:
        raise ProtocolError(resource, f"error queue reply {reply.raw!r} has no error code",
                            raw=reply.raw) from None
    return code, message.strip().strip('"')


def is_identity(line: bytes) -> bool:
    """The answer to ``*IDN?`` (the resync marker): no other reply has the ``*IDN`` header."""
    return line.lstrip().upper().startswith(b"*IDN ")


class DruckPace(PressureController):
    """A PACE on a line transport (LF both ways)."""

    def __init__(self, name: str, transport: Transport) -> None:
        self.name = name
        self.transport = transport
        self.resource = transport.resource
        self.unit = "kPa"
        self.pace_unit = "KPA"
        self._out_of_step = False

    # -- connection -----------------------------------------------------------------------

    def start(self) -> None:
        """Flush, identify, learn the unit, and empty the error queue left by others."""
        self.transport.flush_input()
        self.identify()
        self._read_unit()
        self._drain_errors()

    def close(self) -> None:
        self.transport.close()

    # -- exchanges --------------------------------------------------------------------------

    def _query(self, command: str, *headers: str) -> PaceReply:
        if self._out_of_step:
            self._resync()
        try:
            line = self.transport.query(command.encode("ascii"))
        except InstrumentTimeout:
            self._out_of_step = True
            raise
        accepted = headers or (command.rstrip("?"),)
        try:
            return parse_reply(line, accepted, self.resource)
        except ProtocolError:
            self._out_of_step = True
            raise

    def _resync(self) -> None:
        """Drop the replies still owed (to the abandoned command and its retries) up to the
        answer to ``*IDN?``; within one timeout for the late reply plus one for ``*IDN?``."""
        self.transport.resync(b"*IDN?", is_identity, 2 * self.transport.timeout)
        self._out_of_step = False

    def _set(self, command: str, what: str) -> None:
        """Send a setting, then read the error queue until it is empty."""
        if self._out_of_step:
            self._resync()
        self.transport.write(command.encode("ascii"))
        errors = self._drain_errors()
        if errors:
            text = "; ".join(f"{code} {message}" for code, message in errors)
            raise InstrumentCommandError(
                self.resource, f"{what} refused ({command!r}): {text}",
                raw=command.encode("ascii"))

    def _drain_errors(self) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        for _ in range(8):  # the queue holds 5; a few more answers cannot loop for ever
            code, message = parse_error(self._query(":SYST:ERR?", ERROR_HEADER), self.resource)
            if code == 0:
                return found
            found.append((code, message))
        raise ProtocolError(self.resource, "the error queue does not empty: "
                            + "; ".join(f"{c} {m}" for c, m in found))

    def _read_unit(self) -> str:
        reply = self._query(":UNIT:PRES?")
        mnemonic = reply.value.strip().upper()
        if mnemonic not in PINT_UNITS:
            raise ProtocolError(self.resource, f"unknown pressure unit {reply.value!r}: "
                                               f"{reply.raw!r}", raw=reply.raw)
        self.pace_unit, self.unit = mnemonic, PINT_UNITS[mnemonic]
        return self.unit

    def _reading(self, value: float, raw: bytes, stable: bool = True) -> Reading:
        return Reading(value=value, unit=self.unit, stable=stable, raw=raw, instrument=self.name)

    # -- the role ---------------------------------------------------------------------------

    def identify(self) -> Identity:
        reply = self._query("*IDN?")
        fields = [f.strip() for f in reply.value.split(",")]
        fields += [""] * (4 - len(fields))
        return Identity(maker=fields[0], model=fields[1], serial=fields[2], firmware=fields[3],
                        raw=reply.raw)

    def set_unit(self, unit: str) -> None:
        mnemonic = UNITS.get(unit)
        if mnemonic is None:
            raise InstrumentCommandError(
                self.resource, f"the PACE has no unit {unit!r}; it offers "
                               f"{', '.join(UNITS)}")
        self._set(f":UNIT:PRES {mnemonic}", f"unit {unit}")
        if self._read_unit() != unit:
            raise InstrumentCommandError(
                self.resource, f"unit set to {unit} but the PACE reads back {self.unit}")

    def configure(self, *, slew: float | None = None, slew_mode: str | None = None,
                  inl_band_pct: float | None = None, inl_time: float | None = None) -> None:
        """Slew (current unit per second), slew mode, in-limits band (%FS) and dwell (s)."""
        if slew_mode is not None:
            mode = slew_mode.upper()
            if mode not in ("LIN", "MAX"):
                raise InstrumentCommandError(self.resource,
                                             f"slew mode must be LIN or MAX, got {slew_mode!r}")
            self._set(f":SOUR:PRES:SLEW:MODE {mode}", f"slew mode {mode}")
        if slew is not None:
            self._set(f":SOUR:PRES:SLEW {slew:.10g}", f"slew {slew:g} {self.unit}/s")
        if inl_band_pct is not None:
            self._set(f":SOUR:PRES:INL {inl_band_pct:.10g}", f"in-limits band {inl_band_pct:g} %FS")
        if inl_time is not None:
            self._set(f":SOUR:PRES:INL:TIME {inl_time:.10g}", f"in-limits time {inl_time:g} s")

    def set_setpoint(self, value: float) -> None:
        if not math.isfinite(value):
            raise InstrumentCommandError(self.resource, f"setpoint {value!r} is not a number")
        self._set(f":SOUR:PRES {value:.10g}", f"setpoint {value:g} {self.unit}")

    def setpoint(self) -> float:
        reply = self._query(":SOUR:PRES?", ":SOUR:PRES:LEV:IMM:AMPL", ":SOUR:PRES")
        return parse_number(reply, self.resource)

    def set_control(self, on: bool) -> None:
        self._set(f":OUTP:STAT {int(bool(on))}", f"control {'on' if on else 'off'}")
        reply = self._query(":OUTP:STAT?")
        if reply.value.strip() != str(int(bool(on))):
            raise InstrumentCommandError(
                self.resource, f"control {'on' if on else 'off'} asked, the PACE reports "
                               f"{reply.raw!r}", raw=reply.raw)

    def read(self) -> Reading:
        reply = self._query(":SENS:PRES?")
        return self._reading(parse_number(reply, self.resource), reply.raw)

    def read_in_limits(self) -> tuple[Reading, bool]:
        reply = self._query(":SENS:PRES:INL?")
        value, ok = parse_in_limits(reply, self.resource)
        return self._reading(value, reply.raw, stable=ok), ok

    def vent(self) -> None:
        """Control off and vent to atmosphere (the safe state); does not wait for the end."""
        self._set(":OUTP:STAT 0", "control off")
        self._set(":SOUR:PRES:LEV:IMM:AMPL:VENT 1", "vent")

    def vent_status(self) -> int:
        """0 ok (not venting), 1 venting, 2 vent complete."""
        reply = self._query(":SOUR:PRES:LEV:IMM:AMPL:VENT?", ":SOUR:PRES:LEV:IMM:AMPL:VENT",
                            ":SOUR:PRES:VENT")
        value = reply.value.strip()
        if value not in ("0", "1", "2"):
            raise ProtocolError(self.resource, f"vent status {reply.raw!r}", raw=reply.raw)
        return int(value)

    def full_scale(self) -> float:
        """The controller's full scale in the current unit (``:INST:LIM?``)."""
        return parse_number(self._query(":INST:LIM?"), self.resource)

    def __repr__(self) -> str:
        return f"DruckPace({self.name!r}, {self.resource!r})"


def connect(
    name: str, resource: str, options: dict[str, Any], *, operator: OperatorPort | None = None
) -> Instrument:
    opt = {key: options.get(key, default) for key, (_t, default, _d) in OPTIONS.items()}
    transport = open_resource(
        resource,
        timeout=float(opt["timeout"]),
        read_termination=b"\n",
        write_termination=b"\n",
        serial=_serial_settings(opt, DEFAULT_SERIAL),
    )
    pace = DruckPace(name, transport)
    try:
        pace.start()
        pace.configure(slew=opt["slew"], slew_mode=opt["slew_mode"],
                       inl_band_pct=opt["inl_band_pct"], inl_time=opt["inl_time"])
    except BaseException:
        transport.close()
        raise
    return pace

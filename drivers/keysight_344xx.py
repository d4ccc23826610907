"""A 4–20 mA pressure transmitter (the DUT) read through a Keysight 34461A/34465A DMM.

SCPI over TCP 5025 (``TCPIP::host::5025::SOCKET``) or RS-232, LF, no header echo.  On connect:
``*CLS``, ``CONF:CURR:DC <range>``, ``SENS:CURR:DC:NPLC <n>``, then ``SYST:ERR?`` must say
``+0,"No error"`` and ``CONF?`` must say the DMM measures current.  ``READ?`` ->
``+1.23456789E-02`` (A).

The loop current becomes a pressure through the transmitter's range (options ``range_low`` at
4 mA and ``range_high`` at 20 mA, in ``unit``): p = low + (I − 4 mA)/16 mA × (high − low)
(PROTOCOLS.md: % span = (I − 4 mA)/16 mA × 100).  A current outside 3.8 … 20.5 mA is not a
pressure: the transmitter signals a fault (NAMUR NE 43: ≤ 3.6 or ≥ 21 mA) or the loop is open
or shorted, and the reading is refused with that reason.  ``Reading.raw`` is the DMM's line.

The DMM's replies carry no header, so nothing tells a late ``READ?`` answer from a fresh one.
After a reply the driver gave up on (a timeout, or a line that is not the answer) it is out of
step: before its next command it sends ``*IDN?`` and drops every line up to the identity line
it read at connect (:meth:`Transport.resync`), so the answers the DMM still owes (to the
abandoned ``READ?`` and its retries) are never taken for the next reading.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from typing import Any

from benchctl.errors import ConfigError, InstrumentCommandError, InstrumentError, ProtocolError
from benchctl.instruments import Identity, Instrument, PressureIndicator, Reading
from benchctl.operator import OperatorPort
from benchctl.transport import SerialSettings, Transport, open_resource, serial_options
from benchctl.transport import serial_settings as _serial_settings

ROLE = "pressure_indicator"

DEFAULT_SERIAL = SerialSettings(baudrate=9600, bytesize=8, parity="N", stopbits=1)

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "range_low": (float, None, "required: transmitter pressure at 4 mA, in unit"),
    "range_high": (float, None, "required: transmitter pressure at 20 mA, in unit"),
    "unit": (str, None, "required: the transmitter's pressure unit (kPa, bar, MPa, ...)"),
    "timeout": (float, 3.0, "seconds to wait for a reply (a READ? takes NPLC/50 s more)"),
    "nplc": (float, 10.0, "integration time in power-line cycles"),
    "current_range": (float, 0.1, "DMM current range in A (0.1 covers 20 mA)"),
    "low_ma": (float, 3.8, "lowest loop current accepted as a measurement, mA"),
    "high_ma": (float, 20.5, "highest loop current accepted as a measurement, mA"),
    **serial_options(DEFAULT_SERIAL),
}

_READING = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_ERROR = re.compile(r"([-+]?\d{1,6})\s*,\s*\"(.*)\"")
#: The DMM's overload reading.
OVERLOAD = 9.9e37


def parse_reading(line: bytes, resource: str = "DMM") -> float:
    """``b"+1.23456789E-02"`` -> 0.0123456789 (A); ProtocolError for anything else."""
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ProtocolError(resource, f"reply is not ASCII: {line!r}", raw=line) from None
    if not _READING.fullmatch(text):
        raise ProtocolError(resource, f"not a DMM reading: {line!r}", raw=line)
    value = float(text)
    if abs(value) >= OVERLOAD or not math.isfinite(value):
        raise ProtocolError(resource, f"the DMM reports overload ({text}): wrong range or "
                                      "a short in the loop", raw=line)
    return value


def parse_error(line: bytes, resource: str = "DMM") -> tuple[int, str]:
    """``+0,"No error"`` -> (0, "No error")."""
    m = _ERROR.fullmatch(line.decode("ascii", "replace").strip())
    if m is None:
        raise ProtocolError(resource, f"not an error-queue reply: {line!r}", raw=line)
    return int(m.group(1)), m.group(2)


def current_to_pressure(current_ma: float, low: float, high: float) -> float:
    """The pressure a 4–20 mA transmitter of range ``low`` … ``high`` signals."""
    return low + (current_ma - 4.0) / 16.0 * (high - low)


def check_loop_current(current_ma: float, low_ma: float = 3.8, high_ma: float = 20.5) -> str:
    """"" when ``current_ma`` is a measurement, else why not (for the error message)."""
    if current_ma < 0.5:
        return f"{current_ma:.3f} mA: no loop current (open loop or transmitter unpowered)"
    if current_ma <= 3.6 + 1e-9:
        return f"{current_ma:.3f} mA: the transmitter signals a fault (NAMUR NE 43, ≤ 3.6 mA)"
    if current_ma >= 21.0 - 1e-9:
        return f"{current_ma:.3f} mA: the transmitter signals a fault (NAMUR NE 43, ≥ 21 mA)"
    if current_ma < low_ma:
        return f"{current_ma:.3f} mA: below {low_ma:g} mA (under range)"
    if current_ma > high_ma:
        return f"{current_ma:.3f} mA: above {high_ma:g} mA (over range)"
    return ""


class TransmitterDmm(PressureIndicator):
    """The transmitter as a pressure indicator, through the DMM."""

    def __init__(self, name: str, transport: Transport, *, range_low: float, range_high: float,
                 unit: str, nplc: float = 10.0, current_range: float = 0.1,
                 low_ma: float = 3.8, high_ma: float = 20.5) -> None:
        if not range_low < range_high:
            raise ValueError(f"range_low {range_low!r} must be below range_high {range_high!r}")
        self.name = name
        self.transport = transport
        self.resource = transport.resource
        self.range_low = range_low
        self.range_high = range_high
        self.unit = unit
        self.nplc = nplc
        self.current_range = current_range
        self.low_ma = low_ma
        self.high_ma = high_ma
        self._out_of_step = False
        self._abandoned_wait = 0.0
        #: The ``*IDN?`` line read at connect: the resync marker (no other reply looks like it).
        self.identity_line = b""

    def _query(self, command: bytes, timeout: float | None = None) -> bytes:
        if self._out_of_step:
            self._resync()
        try:
            return self.transport.query(command, timeout)
        except InstrumentError:
            self._out_of_step = True
            self._abandoned_wait = self.transport.timeout if timeout is None else timeout
            raise

    def _resync(self) -> None:
        """Drop what the DMM still owes up to its answer to ``*IDN?``: within the wait of the
        abandoned command (a READ? integrates for NPLC/50 s) plus one timeout for ``*IDN?``."""
        within = max(self._abandoned_wait, self.transport.timeout) + self.transport.timeout
        self.transport.resync(b"*IDN?", self._is_identity, within)
        self._out_of_step = False

    def _is_identity(self, line: bytes) -> bool:
        return bool(self.identity_line) and line.strip() == self.identity_line

    @contextlib.contextmanager
    def _reply(self) -> Iterator[None]:
        """A reply that is not the command's answer may be a stray line (the resync marker,
        a late answer): back in step before the next command."""
        try:
            yield
        except ProtocolError:
            self._out_of_step = True
            raise

    def _check_errors(self, after: str) -> None:
        found: list[tuple[int, str]] = []
        for _ in range(21):
            line = self._query(b"SYST:ERR?")
            with self._reply():
                code, text = parse_error(line, self.resource)
            if code == 0:
                break
            found.append((code, text))
        if found:
            raise InstrumentCommandError(
                self.resource, f"{after}: " + "; ".join(f"{c} {t}" for c, t in found))

    def start(self) -> None:
        self.transport.flush_input()
        self.identify()
        self.transport.write(b"*CLS")
        self.transport.write(f"CONF:CURR:DC {self.current_range:g}".encode())
        self.transport.write(f"SENS:CURR:DC:NPLC {self.nplc:g}".encode())
        self._check_errors("configuring DC current")
        conf = self._query(b"CONF?")
        if not conf.strip().strip(b'"').upper().startswith(b"CURR"):
            raise InstrumentCommandError(self.resource,
                                         f"the DMM is not measuring current: CONF? -> {conf!r}",
                                         raw=conf)

    def identify(self) -> Identity:
        line = self._query(b"*IDN?")
        fields = [f.strip() for f in line.decode("ascii", "replace").split(",")]
        if len(fields) < 3:
            self._out_of_step = True
            raise ProtocolError(self.resource, f"not an *IDN? reply: {line!r}", raw=line)
        self.identity_line = self.identity_line or line.strip()
        fields += [""] * (4 - len(fields))
        return Identity(maker=fields[0], model=fields[1], serial=fields[2], firmware=fields[3],
                        raw=line)

    def read_current(self) -> Reading:
        """The loop current in mA, as the DMM measured it."""
        line = self._query(b"READ?", self.transport.timeout + self.nplc / 50.0)
        with self._reply():
            amps = parse_reading(line, self.resource)
        return Reading(value=amps * 1000.0, unit="mA", raw=line, instrument=self.name)

    def read(self) -> Reading:
        current = self.read_current()
        why = check_loop_current(current.value, self.low_ma, self.high_ma)
        if why:
            raise ProtocolError(self.resource, f"loop current {why}; not a pressure reading",
                                raw=current.raw)
        pressure = current_to_pressure(current.value, self.range_low, self.range_high)
        return Reading(value=pressure, unit=self.unit, stable=True, raw=current.raw,
                       instrument=self.name)

    def close(self) -> None:
        self.transport.close()

    def __repr__(self) -> str:
        return f"TransmitterDmm({self.name!r}, {self.resource!r})"


def connect(
    name: str, resource: str, options: dict[str, Any], *, operator: OperatorPort | None = None
) -> Instrument:
    opt = {key: options.get(key, default) for key, (_t, default, _d) in OPTIONS.items()}
    where = f"instruments.{name}"
    for key in ("range_low", "range_high", "unit"):
        if opt[key] is None:
            raise ConfigError("bench file", f"{where}.{key}", OPTIONS[key][2])
    from benchctl.metrology.units import UnitError, convert

    try:
        convert(1.0, str(opt["unit"]), "kPa")
    except UnitError:
        raise ConfigError("bench file", f"{where}.unit", "a pressure unit", got=opt["unit"]
                          ) from None
    if not float(opt["range_low"]) < float(opt["range_high"]):
        raise ConfigError("bench file", f"{where}.range_high", "a value above range_low",
                          got=opt["range_high"])
    transport = open_resource(resource, timeout=float(opt["timeout"]), read_termination=b"\n",
                              write_termination=b"\n",
                              serial=_serial_settings(opt, DEFAULT_SERIAL))
    dmm = TransmitterDmm(name, transport, range_low=float(opt["range_low"]),
                         range_high=float(opt["range_high"]), unit=str(opt["unit"]),
                         nplc=float(opt["nplc"]), current_range=float(opt["current_range"]),
                         low_ma=float(opt["low_ma"]), high_ma=float(opt["high_ma"]))
    try:
        dmm.start()
    except BaseException:
        transport.close()
        raise
    return dmm

"""A&D balances in the A&D standard format (GX/GF/FX-i/FZ-i style; serial 2400 7E1 common).

Every line ends with CR LF.  A data line is exactly 15 characters::

    ST,+00123.45  g     header (ST stable, US unstable), comma, 9-character value (sign, then
    US,-00001.23 kg     8 zero-padded characters), 3-character right-aligned unit
    OL,+9999999E+19     overload (a minus sign: underload)
    QT,+0000123 PC      counting mode: not a weight

Commands: ``Q`` (weight now), ``S`` (next stable weight: the balance waits, silently, until
it is stable), ``C`` (cancel), ``R`` (re-zero), ``T`` (tare).  With the balance's "AK, error
code" setting on (option ``ack``), control commands answer ``<AK>`` (06h) CR LF (``R`` once
on receipt and once when done, ``T`` when done) and failures answer ``EC,Exx``.  Without it
``R``/``T`` are silent and their failure cannot be seen.  Details of AK/EC are [mem]: keep
them configurable.

A&D lines carry no command ID, so the driver discards stale input before every command and
skips stray ``<AK>`` lines where a weight is expected.  Unlike the other line drivers it
cannot resynchronise on a query's answer after a reply it gave up on: no A&D command has an
answer that cannot be confused with a weight line or a stray ``<AK>``.  So after a timeout or
an unexpected line it waits, before its next command, until the line has been quiet for one
``timeout`` (dropping whatever arrives): a reply later than the timeout is dropped there, not
taken for the next command's answer (tests/test_driver_and_balance.py).  A reply later than
twice the timeout would still be taken; a balance that slow is a broken link.
Parsing lives in :func:`parse_reply` (pure, no I/O).  A&D has no identity command on most
models: identify() reports "A&D" with the model and serial number given in the bench file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from benchctl.errors import (
    InstrumentBusy,
    InstrumentCommandError,
    InstrumentError,
    InstrumentTimeout,
    OverloadError,
    ProtocolError,
    UnderloadError,
)
from benchctl.instruments import Balance, Identity, Instrument, Reading
from benchctl.operator import OperatorPort
from benchctl.transport import SerialSettings, Transport, open_resource, serial_options
from benchctl.transport import serial_settings as _serial_settings

ROLE = "balance"

DEFAULT_SERIAL = SerialSettings(baudrate=2400, bytesize=7, parity="E", stopbits=1)

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 2.0, "seconds to wait for the reply to Q and for an <AK>"),
    "stability_timeout": (
        float,
        10.0,
        "seconds R and T may take to settle (with ack), and tare() waits for a stable weight",
    ),
    "ack": (bool, False, "the balance answers control commands with <AK>/EC (its AK setting)"),
    "unit": (str, "", "unit the balance must weigh in (g, mg, kg); empty accepts any"),
    "maker": (str, "A&D", "maker reported by identify()"),
    "model": (str, "", "model reported by identify() (A&D balances cannot say)"),
    "serial": (str, "", "serial number reported by identify()"),
    **serial_options(DEFAULT_SERIAL),
}

#: A&D unit field (right-aligned, 3 characters, stripped) -> pint unit string.
UNITS: dict[str, str] = {
    "g": "g",
    "kg": "kg",
    "mg": "mg",
    "ct": "ct",
    "oz": "oz",
    "lb": "lb",
    "ozt": "ozt",
    "dwt": "dwt",
    "GN": "grain",
}

ACK = b"\x06"
LINE_LENGTH = 15

_VALUE = re.compile(r"[+-](?=[0-9.]{8}$)[0-9]+(?:\.[0-9]+)?")
_ERROR = re.compile(r"EC,E([0-9]{1,2})")


@dataclass(frozen=True)
class AndReply:
    """One parsed A&D line: a weight (``ST``/``US``) or an acknowledgement (``AK``)."""

    header: str
    value: float | None = None
    unit: str | None = None
    """The unit as the balance wrote it, stripped (``g``, ``kg``...)."""
    raw: bytes = b""

    @property
    def stable(self) -> bool:
        return self.header == "ST"


def parse_reply(line: bytes, resource: str = "A&D") -> AndReply:
    """Parse one line (without CR LF).

    Returns a weight (``ST``/``US``) or an ``AK``; raises OverloadError / UnderloadError for
    ``OL``, the mapped error for ``EC,Exx`` and ProtocolError (with ``raw``) for anything else,
    including counting mode (``QT``).
    """

    def bad(why: str) -> ProtocolError:
        return ProtocolError(resource, f"{why}: {line!r}", raw=line)

    if line == ACK:
        return AndReply("AK", raw=line)
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise bad("reply is not ASCII") from None
    if not text.isprintable():
        raise bad("control characters in the reply")
    if text.startswith("OL,"):
        if text[3:4] == "-":
            raise UnderloadError(resource, f"underload: {line!r}", raw=line)
        raise OverloadError(resource, f"overload: {line!r}", raw=line)
    if text.startswith("QT,"):
        raise bad("balance is in counting mode")
    m = _ERROR.fullmatch(text)
    if m:
        raise error_code(int(m.group(1)), line, resource)
    header = text[:2]
    if header not in ("ST", "US"):
        raise bad("not an A&D data line")
    if len(text) != LINE_LENGTH or text[2] != ",":
        raise bad(f"data line is not {LINE_LENGTH} characters 'HH,+00000.00uuu'")
    field, unit_field = text[3:12], text[12:15]
    if not _VALUE.fullmatch(field):
        raise bad(f"value {field!r} is not a signed zero-padded number")
    unit = unit_field.lstrip(" ")
    if not unit or " " in unit:
        raise bad(f"unit field {unit_field!r} is not right-aligned")
    if unit in ("PC", "%"):
        raise bad("balance is in counting or percent mode")
    if unit not in UNITS:
        raise bad(f"unknown unit {unit!r}")
    return AndReply(header, float(field), unit, raw=line)


def error_code(code: int, line: bytes, resource: str = "A&D") -> InstrumentError:
    """``EC,Exx`` -> the typed error ([mem]: codes from the FX-i/GX manuals)."""
    what = {
        0: "communication error",
        1: "undefined command",
        2: "not ready",
        3: "timeout error (the balance did not receive the whole command)",
        4: "excess characters",
        6: "format error",
        7: "parameter setting error (zero or tare refused: out of range or overload)",
        11: "stability error (no stable weight within the balance's time limit)",
    }.get(code, "error")
    message = f"EC,E{code:02d} {what}: {line!r}"
    if code in (2, 11):
        return InstrumentBusy(resource, message, raw=line)
    if code in (0, 3, 4, 6):
        return ProtocolError(resource, message, raw=line)
    return InstrumentCommandError(resource, message, raw=line)


class AndBalance(Balance):
    """An A&D balance in standard format on a line transport (CR LF both ways)."""

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        ack: bool = False,
        unit: str = "",
        stability_timeout: float = 10.0,
        maker: str = "A&D",
        model: str = "",
        serial: str = "",
    ) -> None:
        self.name = name
        self.transport = transport
        self.resource = transport.resource
        self.ack = ack
        self.unit = unit
        self.stability_timeout = stability_timeout
        self.identity = Identity(maker=maker, model=model, serial=serial)
        #: A reply was given up on (timeout, cancel) or did not fit: the balance may still
        #: be talking, so the next command first waits for the line to fall quiet.
        self.out_of_step = False

    def start(self) -> None:
        self.transport.flush_input()

    def close(self) -> None:
        self.transport.close()

    # -- one short method per command ------------------------------------------------------

    def identify(self) -> Identity:
        return self.identity

    def read_now(self) -> Reading:
        """``Q``: the weight now."""
        self._send(b"Q")
        return self._reading(self._weight_reply(self.transport.timeout))

    def read_stable(self, timeout: float) -> Reading:
        """``S``: the next stable weight; InstrumentBusy if none within ``timeout`` s.

        The balance waits silently for stability, so silence means "not stable yet": we send
        ``C`` to cancel the pending ``S`` and raise InstrumentBusy.  A half line is a timeout.
        """
        self._send(b"S")
        try:
            reply = self._weight_reply(timeout)
        except InstrumentTimeout as exc:
            if exc.raw:
                raise
            self.transport.write(b"C")  # out_of_step is set: C's own answer, if any, drains
            raise InstrumentBusy(
                self.resource, f"S: no stable weight within {timeout:g} s"
            ) from exc
        if not reply.stable:
            raise ProtocolError(
                self.resource, f"S: unstable weight in reply to S: {reply.raw!r}", raw=reply.raw
            )
        return self._reading(reply)

    def zero(self) -> None:
        """``R``: re-zero (with ack: <AK> on receipt, <AK> or EC,Exx when done)."""
        self._send(b"R")
        if self.ack:
            self._expect_ack(self.transport.timeout)
            self._expect_ack(self._settle_wait())

    def tare(self) -> Reading:
        """``T``: tare.  A&D does not report the tare, so the tare value returned is the
        stable weight read (``S``) just before taring."""
        reading = self.read_stable(self.stability_timeout)
        self._send(b"T")
        if self.ack:
            self._expect_ack(self._settle_wait())
        return reading

    # -- plumbing --------------------------------------------------------------------------

    def _settle_wait(self) -> float:
        return self.stability_timeout + self.transport.timeout

    def _send(self, command: bytes) -> None:
        if self.out_of_step:
            timeout = self.transport.timeout
            self.transport.drain_until_quiet(quiet=timeout, within=4 * timeout)
            self.out_of_step = False
        self.transport.flush_input()  # no IDs: anything already here is stale
        self.transport.write(command)

    def _line(self, timeout: float) -> AndReply:
        """The next reply; any failure to get one that fits leaves the driver out of step."""
        try:
            return parse_reply(self.transport.read_line(timeout), self.resource)
        except (InstrumentTimeout, ProtocolError):  # an EC,Exx answer is in step
            self.out_of_step = True
            raise

    def _weight_reply(self, timeout: float) -> AndReply:
        for _ in range(3):  # skip stray <AK> (e.g. the completion of an earlier R)
            reply = self._line(timeout)
            if reply.header != "AK":
                return reply
        self.out_of_step = True
        raise ProtocolError(self.resource, "only <AK> lines where a weight was expected")

    def _expect_ack(self, timeout: float) -> None:
        reply = self._line(timeout)
        if reply.header != "AK":
            self.out_of_step = True
            raise ProtocolError(self.resource, f"expected <AK>, got {reply.raw!r}", raw=reply.raw)

    def _reading(self, reply: AndReply) -> Reading:
        assert reply.value is not None and reply.unit is not None
        if self.unit and reply.unit != self.unit:
            raise InstrumentError(
                self.resource,
                f"the balance weighs in {reply.unit} but the bench file says unit = "
                f"{self.unit!r}: {reply.raw!r}",
                raw=reply.raw,
            )
        return Reading(
            value=reply.value,
            unit=UNITS[reply.unit],
            stable=reply.stable,
            raw=reply.raw,
            instrument=self.name,
        )

    def __repr__(self) -> str:
        return f"AndBalance({self.name!r}, {self.resource!r})"


def connect(
    name: str, resource: str, options: dict[str, Any], *, operator: OperatorPort | None = None
) -> Instrument:
    opt = {key: options.get(key, default) for key, (_t, default, _d) in OPTIONS.items()}
    transport = open_resource(
        resource,
        timeout=float(opt["timeout"]),
        read_termination=b"\r\n",
        write_termination=b"\r\n",
        serial=_serial_settings(opt, DEFAULT_SERIAL),
    )
    balance = AndBalance(
        name,
        transport,
        ack=bool(opt["ack"]),
        unit=str(opt["unit"]),
        stability_timeout=float(opt["stability_timeout"]),
        maker=str(opt["maker"]),
        model=str(opt["model"]),
        serial=str(opt["serial"]),
    )
    try:
        balance.start()
    except BaseException:
        transport.close()
        raise
    return balance

"""Mettler Toledo balances speaking MT-SICS levels 0-1 (serial 9600 8N1 or raw TCP).

ASCII, CR LF after every command and reply.  A reply is ``<ID> <status> [params]`` with the
ID of the command (``SI`` is answered with ID ``S``, ``@`` with ``I4``), or a general error
without ID (``ES`` syntax, ``ET`` transmission, ``EL`` logical).  Weight replies carry a
10-character right-aligned value field (sign against the first digit), a space and the unit::

    S S     100.00 g        stable          S D    -12.34 g      dynamic
    S I                     not executable now (busy, or no stability within the balance's
                            stability timeout)
    S +  /  S -             overload / underload

Parsing lives in :func:`parse_reply` (pure, no I/O); :func:`reply_error` maps a parsed reply
to the typed error it means for a given command.  The driver raises; bounded retries of
transient errors are the engine's job.

Connecting flushes the input (a balance sends ``I4 A "<serial>"`` at power-up), optionally
sends ``@`` (reset: cancels pending commands, clears the tare), then asks ``I2`` and skips any
power-up line that arrives before its reply, so a late power-up line cannot be taken for the
answer to a later command.
"""

from __future__ import annotations

import math
import re
import time
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

DEFAULT_SERIAL = SerialSettings(baudrate=9600, bytesize=8, parity="N", stopbits=1)

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 2.0, "seconds to wait for the reply to a command that does not settle"),
    "stability_timeout": (
        float,
        10.0,
        "seconds the balance may take to settle for Z and T (its own stability timeout)",
    ),
    "stability_margin": (
        float,
        2.0,
        "seconds added to a stability wait before giving up on the reply (S, Z, T)",
    ),
    "reset": (bool, False, "send @ (reset: cancels pending commands, clears the tare) on connect"),
    "unit": (str, "", "unit the balance must weigh in (g, mg, kg); empty accepts any"),
    **serial_options(DEFAULT_SERIAL),
}

#: MT-SICS unit text (case-sensitive) -> pint unit string.
UNITS: dict[str, str] = {
    "g": "g",
    "mg": "mg",
    "kg": "kg",
    "ct": "ct",
    "lb": "lb",
    "oz": "oz",
    "ozt": "ozt",
    "GN": "grain",
    "dwt": "dwt",
}

WEIGHT_FIELD = 10
GENERAL_ERRORS = ("ES", "ET", "EL")
STATUSES = "ABSDIL+-"

_REPLY = re.compile(r"([A-Z][A-Z0-9]*) ([ABSDIL+-])(?: (.*))?")
_NUMBER = re.compile(r" *[-+]?[0-9]+(?:\.[0-9]+)?")
_QUOTED = re.compile(r'"([^"]*)"(?: +"([^"]*)")*')


@dataclass(frozen=True)
class SicsReply:
    """One parsed MT-SICS reply line."""

    id: str
    """Command ID of the reply (``S``, ``Z``, ``I2``...) or ``ES``/``ET``/``EL``."""
    status: str = ""
    """``A B S D I L + -``; empty for the general errors."""
    value: float | None = None
    unit: str | None = None
    """The unit as the balance wrote it (``g``, ``mg``, ``kg``...)."""
    texts: tuple[str, ...] = ()
    """The quoted strings of an ``I1``..``I4`` reply."""
    raw: bytes = b""

    @property
    def text(self) -> str:
        return " ".join(self.texts)


def parse_reply(line: bytes, resource: str = "MT-SICS") -> SicsReply:
    """Parse one reply line (without CR LF); raise ProtocolError (with ``raw``) on garbage."""

    def bad(why: str) -> ProtocolError:
        return ProtocolError(resource, f"{why}: {line!r}", raw=line)

    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise bad("reply is not ASCII") from None
    if not text.isprintable():
        raise bad("control characters in the reply")
    if text in GENERAL_ERRORS:
        return SicsReply(id=text, raw=line)
    m = _REPLY.fullmatch(text)
    if m is None:
        raise bad("not an MT-SICS reply")
    ident, status, params = m.group(1), m.group(2), m.group(3)
    if params is None:
        return SicsReply(id=ident, status=status, raw=line)
    if params.startswith('"'):
        if not _QUOTED.fullmatch(params):
            raise bad("badly quoted text")
        return SicsReply(
            id=ident, status=status, texts=tuple(re.findall(r'"([^"]*)"', params)), raw=line
        )
    value, unit = parse_weight(params, line, resource)
    return SicsReply(id=ident, status=status, value=value, unit=unit, raw=line)


def parse_weight(params: str, line: bytes, resource: str = "MT-SICS") -> tuple[float, str]:
    """``"    100.00 g"`` -> (100.0, "g"): 10-character right-aligned value, space, unit."""
    field, sep, unit = params[:WEIGHT_FIELD], params[WEIGHT_FIELD : WEIGHT_FIELD + 1], params[11:]
    if len(field) != WEIGHT_FIELD or sep != " " or not unit:
        raise ProtocolError(
            resource,
            f"weight is not a {WEIGHT_FIELD}-character field, a space and a unit: {line!r}",
            raw=line,
        )
    if not _NUMBER.fullmatch(field):
        raise ProtocolError(resource, f"weight field {field!r} is not a number: {line!r}", raw=line)
    if unit not in UNITS:
        raise ProtocolError(resource, f"unknown unit {unit!r}: {line!r}", raw=line)
    return float(field), unit


def is_power_up(reply: SicsReply) -> bool:
    """The line a balance sends when it (re)starts: ``I4 A "<serial>"``."""
    return reply.id == "I4" and reply.status == "A"


def reply_error(
    reply: SicsReply, command: str, expected_id: str, allowed: str, resource: str = "MT-SICS"
) -> InstrumentError | None:
    """The error ``reply`` means as the answer to ``command`` (None if it is a good answer).

    ``expected_id`` is the ID the answer must carry, ``allowed`` the statuses that are a
    success for this command (e.g. ``"SD"`` for ``SI``).
    """
    raw = reply.raw
    if reply.id == "ES":
        return InstrumentCommandError(
            resource, f"{command}: syntax error (the balance does not know the command)", raw=raw
        )
    if reply.id == "ET":
        return ProtocolError(
            resource, f"{command}: transmission error reported by the balance", raw=raw
        )
    if reply.id == "EL":
        return InstrumentCommandError(
            resource, f"{command}: logical error (the balance cannot execute it)", raw=raw
        )
    if reply.id != expected_id:
        if is_power_up(reply):
            return ProtocolError(
                resource,
                f"{command}: the balance sent its power-up line {raw!r}: it restarted "
                "(zero and tare are lost); input flushed",
                raw=raw,
            )
        return ProtocolError(
            resource, f"{command}: reply {raw!r} does not belong to this command", raw=raw
        )
    if reply.status in allowed:
        return None
    if reply.status == "I":
        return InstrumentBusy(
            resource,
            f"{command}: not executable now (balance busy, or not stable within its "
            "stability timeout)",
            raw=raw,
        )
    if reply.status == "L":
        return InstrumentCommandError(resource, f"{command}: bad parameter", raw=raw)
    if reply.status == "+":
        return OverloadError(resource, f"{command}: overload (above the range)", raw=raw)
    if reply.status == "-":
        return UnderloadError(resource, f"{command}: underload (below the zero range)", raw=raw)
    return ProtocolError(resource, f"{command}: unexpected status in {raw!r}", raw=raw)


class MettlerSicsBalance(Balance):
    """A Mettler Toledo balance on a line transport (CR LF both ways)."""

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        unit: str = "",
        stability_timeout: float = 10.0,
        stability_margin: float = 2.0,
    ) -> None:
        self.name = name
        self.transport = transport
        self.resource = transport.resource
        self.unit = unit
        self.stability_timeout = stability_timeout
        self.stability_margin = stability_margin
        #: Model and capacity from I2 (``("XS204 Excellence", 220.009, "g")``), once known.
        self.model: str = ""
        self.capacity: tuple[float, str] | None = None
        self._out_of_step = False
        self._abandoned_wait = 0.0

    # -- connection -----------------------------------------------------------------------

    def start(self, *, reset: bool = False) -> None:
        """Flush the power-up line, optionally reset, and synchronise on an I2 reply."""
        self.transport.flush_input()
        if reset:
            self._command(b"@", "I4", "A")
        line = self.transport.query(b"I2")
        for _ in range(3):  # a power-up line (or the @ reply) may precede the I2 reply
            if not is_power_up(parse_reply(line, self.resource)):
                break
            line = self.transport.read_line()
        self._remember_model(self._check(line, "I2", "I2", "A"))

    def close(self) -> None:
        self.transport.close()

    # -- one short method per command ------------------------------------------------------

    def identify(self) -> Identity:
        i2 = self._command(b"I2", "I2", "A")
        i3 = self._command(b"I3", "I3", "A")
        i4 = self._command(b"I4", "I4", "A")
        self._remember_model(i2)
        return Identity(
            maker="Mettler Toledo",
            model=self.model,
            serial=i4.text,
            firmware=i3.text,
            raw=b"\r\n".join((i2.raw, i3.raw, i4.raw)),
        )

    def read_now(self) -> Reading:
        """``SI``: the weight now, stable or dynamic."""
        return self._reading(self._command(b"SI", "S", "SD"))

    def read_stable(self, timeout: float) -> Reading:
        """``S``: the next stable weight.

        The balance answers ``S I`` (InstrumentBusy) when it does not settle within its own
        stability timeout; we wait ``timeout`` + ``stability_margin`` for that answer, and a
        balance that says nothing at all in that time raises InstrumentTimeout.
        """
        wait = max(timeout + self.stability_margin, self.transport.timeout)
        return self._reading(self._command(b"S", "S", "S", timeout=wait))

    def zero(self) -> None:
        """``Z``: zero when stable (``Z A``)."""
        self._command(b"Z", "Z", "A", timeout=self._settle_wait())

    def zero_immediately(self) -> bool:
        """``ZI``: zero now; True if the balance was stable when it zeroed."""
        return self._command(b"ZI", "ZI", "SD").status == "S"

    def tare(self) -> Reading:
        """``T``: tare when stable; returns the tare weight."""
        return self._reading(self._command(b"T", "T", "S", timeout=self._settle_wait()))

    # -- plumbing --------------------------------------------------------------------------

    def _settle_wait(self) -> float:
        return max(self.stability_timeout + self.stability_margin, self.transport.timeout)

    def _command(
        self, command: bytes, expected_id: str, allowed: str, timeout: float | None = None
    ) -> SicsReply:
        if self._out_of_step:
            self._resync()
        wait = self.transport.timeout if timeout is None else timeout
        try:
            line = self.transport.query(command, timeout)
        except InstrumentTimeout:
            self._out_of_step, self._abandoned_wait = True, wait
            raise
        try:
            return self._check(line, command.decode("ascii"), expected_id, allowed)
        except ProtocolError:
            # Not this command's answer (a stray I2 from a resync that timed out, a garbled
            # line): the answer may still come, and would be taken for the next command's.
            self._out_of_step, self._abandoned_wait = True, wait
            raise

    def _resync(self) -> None:
        """Back in step after a reply we gave up on.

        Flushing is not enough: the balance may still answer the abandoned command (and a
        retry queued behind it) after the next command is sent, and MT-SICS replies carry no
        sequence number, so a late weight would be taken for the next point's. The balance
        answers in order, so: ask I2 and drop every line up to its answer. A power-up line
        among them still reports the restart; silence leaves the driver out of step (the
        caller may retry).
        """
        self.transport.flush_input()
        self.transport.write(b"I2")
        # The balance answers I2 once it is done with the abandoned command.
        deadline = time.monotonic() + self._abandoned_wait + self.transport.timeout
        restarted: SicsReply | None = None
        while True:
            line = self.transport.read_line(max(0.0, deadline - time.monotonic()))
            try:
                reply = parse_reply(line, self.resource)
            except ProtocolError:
                continue  # a garbled stale line
            if reply.id == "I2" and reply.status == "A":
                break
            if is_power_up(reply):
                restarted = reply
        self._out_of_step = False
        if restarted is not None:
            error = reply_error(restarted, "I2", "I2", "A", self.resource)
            assert error is not None
            raise error

    def _check(self, line: bytes, command: str, expected_id: str, allowed: str) -> SicsReply:
        reply = parse_reply(line, self.resource)
        error = reply_error(reply, command, expected_id, allowed, self.resource)
        if error is None:
            return reply
        if is_power_up(reply) and expected_id != "I4":
            self.transport.flush_input()
        raise error

    def _reading(self, reply: SicsReply) -> Reading:
        if reply.value is None or reply.unit is None:
            raise ProtocolError(self.resource, f"no weight in {reply.raw!r}", raw=reply.raw)
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
            stable=reply.status == "S",
            raw=reply.raw,
            instrument=self.name,
        )

    def _remember_model(self, i2: SicsReply) -> None:
        self.model, self.capacity = parse_model(i2.texts)

    def __repr__(self) -> str:
        return f"MettlerSicsBalance({self.name!r}, {self.resource!r})"


def parse_model(texts: tuple[str, ...]) -> tuple[str, tuple[float, str] | None]:
    """I2 text -> (model, capacity): ``"XS204 Excellence 220.0090 g"`` or the quoted-field form
    ``"XS204" "220.0090 g"`` -> ("XS204 Excellence", (220.009, "g"))."""
    text = " ".join(t.strip() for t in texts if t.strip())
    m = re.fullmatch(r"(.*?)\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)", text)
    if m is None or m.group(3) not in UNITS or not math.isfinite(float(m.group(2))):
        return text, None  # no capacity we can trust (hundreds of digits make inf)
    return m.group(1), (float(m.group(2)), m.group(3))


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
    balance = MettlerSicsBalance(
        name,
        transport,
        unit=str(opt["unit"]),
        stability_timeout=float(opt["stability_timeout"]),
        stability_margin=float(opt["stability_margin"]),
    )
    try:
        balance.start(reset=bool(opt["reset"]))
    except BaseException:
        transport.close()
        raise
    return balance

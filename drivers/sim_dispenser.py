"""The simulated fuel dispenser's ASCII console protocol (PROTOCOLS.md "Fuel dispenser").

Real dispenser protocols (Gilbarco two-wire, Wayne DART, IFSF) are proprietary and in the
field a verification has no data link at all, so this driver exists for automated runs and
the demo: it speaks the small protocol of benchctl's simulated dispenser over TCP (a pyserial
``socket://`` URL or a VISA ``TCPIP::host::port::SOCKET`` resource). CR LF after every
command and reply::

    STATUS?        STATUS IDLE          (IDLE CALLING AUTHORISED FUELLING SUSPENDED COMPLETED)
    PRICE 23450    OK
    AUTH 20.00     OK                   (preset in L, two decimals)
    STOP           OK
    DELIVERY?      DELIVERY 19.96 468062 23450 37.8     (L, đồng, đồng/L, L/min)
    TOTALS?        TOTALS 123456.78 2894561234          (L, đồng)
    any            ERR <code> <text>    10 unknown command, 11 bad value, 12 not allowed in
                                        <STATE>, 13 busy, 90 internal error

Parsing lives in :func:`parse_reply` (pure); :func:`reply_error` maps an ``ERR`` reply to the
typed error it means. A connection the dispenser dropped is reopened on the next command
(a station's console link comes and goes; the transaction on the dispenser survives it).

Replies carry no sequence number: a late ``TOTALS`` line looks like a fresh one. After a reply
the driver gave up on (a timeout, or a line that answers another command) it is out of step:
before its next command it sends ``STATUS?`` and drops every line up to the ``STATUS`` answer
(:meth:`Transport.resync`), so an old totalizer is never taken for the next reading. A stray
``STATUS`` line left by a resync that timed out can only be taken by :meth:`state` (or
:meth:`identify`), and it is no older than the resync that asked for it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from benchctl.errors import (
    InstrumentBusy,
    InstrumentCommandError,
    InstrumentConnectionError,
    InstrumentError,
    InstrumentTimeout,
    ProtocolError,
)
from benchctl.instruments import (
    Delivery,
    DispenserTotals,
    FuelDispenser,
    Identity,
    Instrument,
    Reading,
)
from benchctl.operator import OperatorPort
from benchctl.transport import Transport, open_resource

ROLE = "fuel_dispenser"

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 2.0, "seconds to wait for a reply"),
    "maker": (str, "benchctl", "maker reported by identify() (the protocol does not say)"),
    "model": (str, "simulated dispenser", "model reported by identify()"),
    "serial": (str, "", "serial number reported by identify()"),
}

STATES = ("IDLE", "CALLING", "AUTHORISED", "FUELLING", "SUSPENDED", "COMPLETED")

#: ERR codes and what they mean to a technician.
ERROR_CODES: dict[int, str] = {
    10: "unknown command",
    11: "bad value",
    12: "not allowed in the dispenser's present state",
    13: "busy",
    90: "internal error",
}

_NUM = r"[0-9]+(?:\.[0-9]+)?"
_REPLIES: dict[str, re.Pattern[str]] = {
    "STATUS": re.compile(r"STATUS (" + "|".join(STATES) + r")"),
    "OK": re.compile(r"OK"),
    "DELIVERY": re.compile(rf"DELIVERY ({_NUM}) ({_NUM}) ({_NUM}) ({_NUM})"),
    "TOTALS": re.compile(rf"TOTALS ({_NUM}) ({_NUM})"),
    "ERR": re.compile(r"ERR ([0-9]{1,3}) (.+)"),
}


@dataclass(frozen=True)
class DispenserReply:
    """One parsed reply line."""

    kind: str
    """STATUS, OK, DELIVERY, TOTALS or ERR."""
    values: tuple[float, ...] = ()
    state: str = ""
    code: int | None = None
    text: str = ""
    raw: bytes = b""


def parse_reply(line: bytes, resource: str = "sim_dispenser") -> DispenserReply:
    """Parse one reply (without CR LF); ProtocolError (with ``raw``) for anything else."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(resource, f"reply is not ASCII: {line!r}", raw=line) from None
    if not text.isprintable():
        raise ProtocolError(resource, f"control characters in the reply: {line!r}", raw=line)
    kind = text.split(" ", 1)[0]
    pattern = _REPLIES.get(kind)
    m = pattern.fullmatch(text) if pattern is not None else None
    if m is None:
        raise ProtocolError(resource, f"not a dispenser reply: {line!r}", raw=line)
    if kind == "STATUS":
        return DispenserReply(kind, state=m.group(1), raw=line)
    if kind == "ERR":
        return DispenserReply(kind, code=int(m.group(1)), text=m.group(2), raw=line)
    values = tuple(float(g) for g in m.groups())
    if not all(math.isfinite(v) for v in values):  # hundreds of digits: a broken line
        raise ProtocolError(resource, f"{kind}: a number too large to be a reading: {line!r}",
                            raw=line)
    return DispenserReply(kind, values=values, raw=line)


def is_status(line: bytes) -> bool:
    """The answer to ``STATUS?`` (the resync marker): no other command's reply starts so."""
    return line.startswith(b"STATUS ")


def reply_error(reply: DispenserReply, command: str, expected: str,
                resource: str = "sim_dispenser") -> InstrumentError | None:
    """The error ``reply`` means as the answer to ``command`` (None when it is the answer)."""
    if reply.kind == expected:
        return None
    if reply.kind == "ERR":
        code = reply.code or 0
        meaning = ERROR_CODES.get(code, "unknown error code")
        message = f"{command}: the dispenser answered ERR {code} {reply.text} ({meaning})"
        if code == 13:
            return InstrumentBusy(resource, message, raw=reply.raw)
        error = InstrumentCommandError(resource, message, raw=reply.raw)
        error.transient = code == 90
        return error
    return ProtocolError(resource, f"{command}: reply {reply.raw!r} does not belong to this "
                         "command", raw=reply.raw)


class SimDispenser(FuelDispenser):
    """The simulated dispenser's console link."""

    def __init__(self, name: str, resource: str, *, timeout: float = 2.0, maker: str = "",
                 model: str = "", serial: str = "", transport: Transport | None = None
                 ) -> None:
        self.name = name
        self.resource = resource
        self.timeout = timeout
        self._identity = Identity(maker=maker, model=model, serial=serial)
        self.transport: Transport | None = transport
        self._out_of_step = False

    # -- connection -----------------------------------------------------------------------

    def _link(self) -> Transport:
        if self.transport is None:
            self.transport = open_resource(self.resource, timeout=self.timeout,
                                           read_termination=b"\r\n", write_termination=b"\r\n")
            self._out_of_step = False
        return self.transport

    def start(self) -> None:
        """Flush whatever is waiting and synchronise on a STATUS? reply."""
        self._link().flush_input()
        self.state()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # -- one method per command -----------------------------------------------------------

    def identify(self) -> Identity:
        """Identity from the bench file (the protocol has no identify command); asks STATUS?
        so that a dead link shows (the engine probes a paused instrument with this)."""
        reply = self._command(b"STATUS?", "STATUS")
        i = self._identity
        return Identity(maker=i.maker, model=i.model, serial=i.serial, raw=reply.raw)

    def state(self) -> str:
        return self._command(b"STATUS?", "STATUS").state

    def set_price(self, unit_price: float) -> None:
        if not 0 < unit_price <= 9_999_999:
            raise InstrumentCommandError(self.resource, f"unit price {unit_price:g} is outside "
                                         "0 … 9 999 999 đồng")
        self._command(f"PRICE {unit_price:g}".encode("ascii"), "OK")

    def authorise(self, preset_volume: float) -> None:
        if not 0 < preset_volume <= 999.99:
            raise InstrumentCommandError(self.resource, f"preset {preset_volume:g} L is outside "
                                         "0.01 … 999.99 L")
        self._command(f"AUTH {preset_volume:.2f}".encode("ascii"), "OK")

    def stop(self) -> None:
        self._command(b"STOP", "OK")

    def delivery(self) -> Delivery:
        reply = self._command(b"DELIVERY?", "DELIVERY")
        volume, amount, unit_price, flow = reply.values
        return Delivery(volume=Reading(volume, "L", raw=reply.raw, instrument=self.name),
                        amount=amount, unit_price=unit_price, flow=flow, raw=reply.raw)

    def read_now(self) -> Reading:
        """What ``benchctl read`` shows: the volume of the current or last delivery."""
        return self.delivery().volume

    def totals(self) -> DispenserTotals:
        reply = self._command(b"TOTALS?", "TOTALS")
        volume, amount = reply.values
        return DispenserTotals(volume=Reading(volume, "L", raw=reply.raw, instrument=self.name),
                               amount=amount, raw=reply.raw)

    # -- plumbing -------------------------------------------------------------------------

    def _command(self, command: bytes, expected: str) -> DispenserReply:
        link = self._link()
        if self._out_of_step:
            # Drop what the dispenser still owes, up to its answer to STATUS?: within one
            # timeout for the late reply and one for STATUS?.
            link.resync(b"STATUS?", is_status, 2 * link.timeout)
            self._out_of_step = False
        try:
            line = link.query(command)
        except InstrumentTimeout:
            self._out_of_step = True
            raise
        except InstrumentConnectionError:
            self.close()  # reopened by the next command
            raise
        try:
            reply = parse_reply(line, self.resource)
            error = reply_error(reply, command.decode("ascii"), expected, self.resource)
        except ProtocolError:
            self._out_of_step = True  # a garbled line may have been anyone's answer
            raise
        if error is not None:
            if isinstance(error, ProtocolError):
                self._out_of_step = True
            raise error
        return reply

    def __repr__(self) -> str:
        return f"SimDispenser({self.name!r}, {self.resource!r})"


def connect(
    name: str, resource: str, options: dict[str, Any], *, operator: OperatorPort | None = None
) -> Instrument:
    opt = {key: options.get(key, default) for key, (_t, default, _d) in OPTIONS.items()}
    dispenser = SimDispenser(name, resource, timeout=float(opt["timeout"]),
                             maker=str(opt["maker"]), model=str(opt["model"]),
                             serial=str(opt["serial"]))
    try:
        dispenser.start()
    except BaseException:
        dispenser.close()
        raise
    return dispenser

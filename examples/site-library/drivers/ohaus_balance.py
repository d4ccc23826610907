"""Ohaus-style balance, text protocol: the worked example of docs/extending.md.

A centre's own driver: it plays the ``balance`` role, so every balance procedure can use it.
Protocol (as on many Ohaus Scout/Explorer balances; check your balance's manual and keep the
details in OPTIONS where they differ): commands end with CR LF; ``IP`` prints the weight now,
``Z`` zeroes, ``T`` tares; the weight line is the value right-aligned in 10 characters, a space,
the unit, and `` ?`` when the weight is not stable, e.g. ``    100.00 g`` or ``    99.98 g ?``.

Late replies: a weight line carries no command ID, so a reply the driver gave up on (a timeout)
or could not read would pass for the answer to the next ``IP``. After either, the driver is out
of step, and before its next command it waits for the line to fall quiet
(``Transport.drain_until_quiet``). A protocol with a query whose answer cannot be mistaken for
anything else would use ``Transport.resync`` instead (see drivers/druck_pace.py).
"""

from __future__ import annotations

import re
import time
from typing import Any

from benchctl.errors import (
    InstrumentBusy,
    InstrumentCommandError,
    InstrumentTimeout,
    ProtocolError,
)
from benchctl.instruments import Balance, Identity, Reading
from benchctl.operator import OperatorPort
from benchctl.transport import open_resource
from benchctl.transport.base import SerialSettings, Transport

ROLE = "balance"
OPTIONS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 2.0, "seconds to wait for a reply"),
    "baudrate": (int, 9600, "serial speed"),
    "poll_interval": (float, 0.05, "seconds between IP requests while waiting for stability"),
    "model": (str, "", "model, for the record"),
    "serial": (str, "", "serial number, for the record"),
}
LINE = re.compile(rb"^ *(?P<value>-?\d+(\.\d+)?) (?P<unit>mg|g|kg)(?P<unstable> \?)?$")


def parse_weight(line: bytes, resource: str = "ohaus") -> Reading:
    """The one place replies are parsed: ``    100.00 g`` -> Reading."""
    m = LINE.match(line)
    if m is None:
        raise ProtocolError(resource, f"not a weight line: {line!r}", raw=line)
    return Reading(float(m["value"]), m["unit"].decode(), m["unstable"] is None, raw=line)


class OhausBalance(Balance):
    def __init__(self, name: str, transport: Transport, *, poll_interval: float = 0.05,
                 model: str = "", serial: str = "") -> None:
        self.name = name
        self.transport = transport
        self.resource = transport.resource
        self.poll_interval = poll_interval
        self.model = model
        self.serial = serial
        self.out_of_step = False

    def identify(self) -> Identity:
        return Identity(maker="Ohaus", model=self.model, serial=self.serial)

    def read_now(self) -> Reading:
        line = self._query(b"IP")
        try:
            return parse_weight(line, self.resource).with_instrument(self.name)
        except ProtocolError:
            self.out_of_step = True  # perhaps the tail of an older reply: wait for quiet
            raise

    def read_stable(self, timeout: float) -> Reading:
        deadline = time.monotonic() + timeout
        while True:
            reading = self.read_now()
            if reading.stable:
                return reading
            if time.monotonic() > deadline:
                raise InstrumentBusy(self.resource, f"no stable weight within {timeout:g} s")
            time.sleep(self.poll_interval)

    def zero(self) -> None:
        self._ok(b"Z")

    def tare(self) -> Reading:
        before = self.read_stable(self.transport.timeout)
        self._ok(b"T")
        return before

    def _ok(self, command: bytes) -> None:
        reply = self._query(command)
        if reply != b"OK":
            self.out_of_step = True
            raise InstrumentCommandError(self.resource, f"{command.decode()} answered {reply!r}")

    def _query(self, command: bytes) -> bytes:
        """One command and its reply line, in step with the balance."""
        if self.out_of_step:
            quiet = self.transport.timeout
            self.transport.drain_until_quiet(quiet=quiet, within=4 * quiet)
            self.out_of_step = False
        try:
            return self.transport.query(command)
        except InstrumentTimeout:
            self.out_of_step = True
            raise

    def close(self) -> None:
        self.transport.close()


def connect(name: str, resource: str, options: dict[str, Any], *,
            operator: OperatorPort | None = None) -> OhausBalance:
    transport = open_resource(resource, timeout=options["timeout"],
                              serial=SerialSettings(baudrate=options["baudrate"]))
    transport.flush_input()
    return OhausBalance(name, transport, poll_interval=options["poll_interval"],
                        model=options["model"], serial=options["serial"])

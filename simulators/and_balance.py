"""A&D standard format on a :class:`SimBalance` (GX/GF/FX-i style balances).

Every output line ends with CR LF. A weight line is::

    ST,+00123.45  g        header (ST stable, US unstable), comma, 9-character value (sign then
    US,-00001.23  g        8 characters, zero-padded, decimals of d), 3-character right-aligned
                           unit ("  g", " kg", " mg")
    OL,+9999999E+19        overload (OL,-9999999E+19 underload): no unit

Commands (upper case, ended by CR LF, CR or LF)::

    Q, SI    the weight now
    S        the next stable weight (waits up to stability_timeout; then EC,E11 when ack is on,
             nothing otherwise)
    SIR      weight lines every 1/sir_rate s until C (other commands are answered in between)
    C        cancel S/SIR
    R, Z     re-zero when stable (zero-setting range ±2 % Max)
    T        tare when stable

With ``ack=True`` (the balance's "AK, error code" setting, erCd 1; off by default as from the
factory) control commands (C, R, Z, T) answer ``<AK>`` = ``\\x06`` CR LF (R/Z: once on receipt
and once when done), and failures answer ``EC,Exx``: E1 unknown command, E11 stability timeout,
E7 zero/tare refused (out of range or overload). Without it those commands and failures are
silent, as on a real balance.

Faults: "error" → ``EC,E1``, "busy" → ``EC,E2``, "wrong_unit" → the weight in kg (g for a kg
balance), "power_cycle" → nothing is sent (an A&D balance says nothing at power-up).
"""

from __future__ import annotations

import random
import re
from collections.abc import Generator, Iterator

from .balance_physics import BalanceDisplay, SimBalance
from .mettler_sics import convert_weight_text, wait_stable
from .servers import Item, LineSession
from .world import FaultInjector, SimClock

__all__ = ["AndBalanceSession", "format_and_value"]

CRLF = b"\r\n"
AK = b"\x06" + CRLF
OVERLOAD = b"OL,+9999999E+19" + CRLF
UNDERLOAD = b"OL,-9999999E+19" + CRLF


def format_and_value(text: str) -> str:
    """``"123.45"`` → ``"+00123.45"``: sign, then the digits zero-padded to 8 characters."""
    sign = "-" if text.startswith("-") else "+"
    return sign + text.lstrip("-").zfill(8)


_DATA_LINE = re.compile(rb"^(ST|US),([+-])(\d+(?:\.\d+)?) *(mg|g|kg)\r\n$")


class AndBalanceSession(LineSession):
    """One client's A&D standard-format conversation with a simulated balance."""

    def __init__(
        self,
        balance: SimBalance,
        clock: SimClock | None = None,
        faults: FaultInjector | None = None,
        rnd: random.Random | None = None,
        *,
        stability_timeout: float = 10.0,
        sir_rate: float = 10.0,
        ack: bool = False,
    ) -> None:
        super().__init__(clock or balance.clock, faults, rnd)
        if stability_timeout < 0:
            raise ValueError("stability_timeout must be >= 0")
        if not sir_rate > 0:
            raise ValueError("sir_rate must be > 0")
        self.balance = balance
        self.stability_timeout = float(stability_timeout)
        self.sir_rate = float(sir_rate)
        self.ack = bool(ack)

    def data_line(self, reading: BalanceDisplay | None = None) -> bytes:
        r = reading or self.balance.reading()
        if r.state == "overload":
            return OVERLOAD
        if r.state == "underload":
            return UNDERLOAD
        header = "ST" if r.stable else "US"
        return f"{header},{format_and_value(r.text)}{r.unit:>3}".encode("ascii") + CRLF

    def _error(self, code: int) -> bytes:
        return f"EC,E{code}".encode("ascii") + CRLF if self.ack else b""

    # -- LineSession hooks --------------------------------------------------------------------
    def error_reply(self) -> bytes:
        return b"EC,E1" + CRLF

    def busy_reply(self, line: bytes) -> bytes:
        return b"EC,E2" + CRLF

    def power_cycle_physics(self) -> None:
        self.balance.power_cycle()

    def wrong_unit(self, line: bytes) -> bytes:
        m = _DATA_LINE.match(line)
        if not m:
            return line
        sign = "-" if m.group(2) == b"-" else ""
        text, unit = convert_weight_text(sign + m.group(3).decode(), m.group(4).decode())
        return m.group(1) + b"," + f"{format_and_value(text)}{unit:>3}".encode() + CRLF

    # -- commands -----------------------------------------------------------------------------
    def respond(self, line: bytes) -> Iterator[Item]:
        try:
            cmd = line.decode("ascii").strip(" ")
        except UnicodeDecodeError:
            cmd = ""
        if cmd in ("Q", "SI"):
            yield 0.0, self.data_line()
        elif cmd == "S":
            yield from self._stable_data()
        elif cmd == "SIR":
            self.stream = self._sir_stream
        elif cmd == "C":
            self.stream = None
            if self.ack:
                yield 0.0, AK
        elif cmd in ("R", "Z"):
            yield from self._rezero()
        elif cmd == "T":
            yield from self._tare()
        else:
            error = self._error(1)
            if error:
                yield 0.0, error

    def _stable_data(self) -> Generator[Item, None, None]:
        reading = yield from wait_stable(self.balance, self.clock, self.stability_timeout)
        if reading is not None:
            yield 0.0, self.data_line(reading)
        elif self.ack:
            yield 0.0, self._error(11)

    def _sir_stream(self) -> Iterator[Item]:
        period = 1.0 / self.sir_rate
        while True:
            yield 0.0, self.data_line()
            yield period, b""

    def _rezero(self) -> Generator[Item, None, None]:
        if self.ack:
            yield 0.0, AK
        reading = yield from wait_stable(self.balance, self.clock, self.stability_timeout)
        if reading is None:
            reply = self._error(11)
        elif reading.state != "ok" or self.balance.zero_now() != "ok":
            reply = self._error(7)
        else:
            reply = AK if self.ack else b""
        if reply:
            yield 0.0, reply

    def _tare(self) -> Generator[Item, None, None]:
        reading = yield from wait_stable(self.balance, self.clock, self.stability_timeout)
        if reading is None:
            reply = self._error(11)
        elif reading.state != "ok" or self.balance.tare_now()[0] != "ok":
            reply = self._error(7)
        else:
            reply = AK if self.ack else b""
        if reply:
            yield 0.0, reply

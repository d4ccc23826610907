"""Mettler Toledo MT-SICS levels 0 and 1 on a :class:`SimBalance`.

Framing: ASCII, every command and reply ends with CR LF (the simulator accepts CR, LF or CR LF
after a command). Commands are upper case; units are case-sensitive.

Replies (``<w>`` is the weight field: the value with the decimals of d, right-aligned in 10
characters with a minus sign directly before the first digit, then a space and the unit, e.g.
``S S     100.00 g``, ``S D    -12.34 g``)::

    on connect / power-up   I4 A "<serial>"           (option powerup_on_connect)
    @                       I4 A "<serial>"            reset: cancels SIR and a pending S/Z/T,
                                                       clears tare and display text
    I1                      I1 A "01" "2.20" "2.20" "" ""
    I2                      I2 A "<model> <Max with the decimals of d> <unit>"
    I3                      I3 A "<software>"
    I4                      I4 A "<serial>"
    S                       S S <w> | S I (no stability within stability_timeout) | S + | S -
    SI                      S S <w> | S D <w> | S + | S -
    SIR                     SI replies every 1/sir_rate s until any other command arrives
    Z                       Z A | Z I (timeout) | Z + | Z - (overload/underload or outside the
                            zero-setting range)
    ZI                      ZI S | ZI D (zeroed while dynamic) | ZI + | ZI -
    T                       T S <w tare> | T I | T + | T -
    TI                      TI S <w tare> | TI D <w tare> | TI + | TI -
    TA                      TA A <w tare>
    TA <value> <unit>       TA A <w tare> (preset tare) | TA L (bad value or unit)
    TAC                     TAC A
    D "<text>"              D A | D L (text not in double quotes)
    DW                      DW A
    a known command with parameters it does not take     <cmd> L
    an unknown command      ES          a line with non-ASCII bytes   ET
    a line longer than 256 characters                    EL

Injected faults (see ``world.FAULT_MODES``) replace reply lines; here "error" is ``ES`` and
"busy" is ``<ID> I`` (``S I``), "wrong_unit" shows the weight in kg (or g for a kg balance).
"""

from __future__ import annotations

import random
import re
from collections.abc import Generator, Iterator
from decimal import Decimal

from .balance_physics import BalanceDisplay, SimBalance, decimals_of, format_counts
from .servers import Item, LineSession
from .world import FaultInjector, SimClock

__all__ = ["MettlerSicsSession", "convert_weight_text", "wait_stable"]

CRLF = b"\r\n"
MAX_LINE = 256
_PARAMLESS = {"@", "I1", "I2", "I3", "I4", "S", "SI", "SIR", "Z", "ZI", "T", "TI", "TAC", "DW"}


def poll_interval(clock: SimClock) -> float:
    """Simulated seconds between stability checks: 50 ms, but never under 2 ms real."""
    return max(0.05, clock.speed * 0.002)


def wait_stable(balance: SimBalance, clock: SimClock,
                timeout: float) -> Generator[Item, None, BalanceDisplay | None]:
    """Wait (yielding waits) until the balance is stable, overloaded or underloaded; returns
    that reading, or None when ``timeout`` simulated seconds pass first."""
    deadline = clock.now() + timeout
    while True:
        reading = balance.reading()
        if reading.state != "ok" or reading.stable:
            return reading
        remaining = deadline - clock.now()
        if remaining <= 0:
            return None
        yield min(poll_interval(clock), remaining), b""


def convert_weight_text(text: str, unit: str) -> tuple[str, str]:
    """The same weight in the 'wrong' unit: g → kg (3 more decimals), kg → g, mg → g."""
    decimals = max(0, -int(Decimal(text).as_tuple().exponent))
    if unit == "g":
        value, new_unit, decimals = Decimal(text) / 1000, "kg", decimals + 3
    elif unit == "kg":
        value, new_unit, decimals = Decimal(text) * 1000, "g", max(0, decimals - 3)
    else:
        value, new_unit, decimals = Decimal(text) / 1000, "g", decimals + 3
    return f"{value.quantize(Decimal(1).scaleb(-decimals)):f}", new_unit


_WEIGHT_LINE = re.compile(rb"^(\S+ [SDA] ) *(-?\d+(?:\.\d+)?) (mg|g|kg)\r\n$")


class MettlerSicsSession(LineSession):
    """One client's MT-SICS conversation with a simulated balance."""

    def __init__(
        self,
        balance: SimBalance,
        clock: SimClock | None = None,
        faults: FaultInjector | None = None,
        rnd: random.Random | None = None,
        *,
        serial: str = "B123456789",
        model: str = "SimBalance",
        software: str = "1.00 benchctl-sim",
        stability_timeout: float = 10.0,
        sir_rate: float = 10.0,
        powerup_on_connect: bool = True,
    ) -> None:
        super().__init__(clock or balance.clock, faults, rnd)
        if stability_timeout < 0:
            raise ValueError("stability_timeout must be >= 0")
        if not sir_rate > 0:
            raise ValueError("sir_rate must be > 0")
        self.balance = balance
        self.serial = serial
        self.model = model
        self.software = software
        self.stability_timeout = float(stability_timeout)
        self.sir_rate = float(sir_rate)
        self.powerup_on_connect = powerup_on_connect

    # -- formatting ---------------------------------------------------------------------------
    @staticmethod
    def line(text: str) -> bytes:
        return text.encode("latin-1") + CRLF

    def weight(self, ident: str, status: str, text: str) -> bytes:
        return self.line(f"{ident} {status} {text:>10} {self.balance.unit}")

    def _tare_text(self) -> str:
        return format_counts(self.balance.tare_counts, self.balance.d)

    def _si(self, reading: BalanceDisplay | None = None) -> bytes:
        r = reading or self.balance.reading()
        if r.state == "overload":
            return self.line("S +")
        if r.state == "underload":
            return self.line("S -")
        return self.weight("S", "S" if r.stable else "D", r.text)

    # -- LineSession hooks --------------------------------------------------------------------
    def on_connect(self) -> bytes:
        return self.power_up_line() if self.powerup_on_connect else b""

    def power_up_line(self) -> bytes:
        return self.line(f'I4 A "{self.serial}"')

    def reset_line(self, line: bytes) -> bool:
        return line.strip() == b"@"

    def error_reply(self) -> bytes:
        return self.line("ES")

    def power_cycle_physics(self) -> None:
        self.balance.power_cycle()

    def wrong_unit(self, line: bytes) -> bytes:
        m = _WEIGHT_LINE.match(line)
        if not m:
            return line
        text, unit = convert_weight_text(m.group(2).decode(), m.group(3).decode())
        return m.group(1) + f"{text:>10} {unit}".encode() + CRLF

    # -- commands -----------------------------------------------------------------------------
    def respond(self, line: bytes) -> Iterator[Item]:
        self.stream = None  # SIR runs until any other command arrives
        if len(line) > MAX_LINE:
            yield 0.0, self.line("EL")
            return
        try:
            text = line.decode("ascii").strip(" ")
        except UnicodeDecodeError:
            yield 0.0, self.line("ET")
            return
        cmd, _, rest = text.partition(" ")
        rest = rest.strip(" ")
        if cmd in _PARAMLESS and rest:
            yield 0.0, self.line(f"{cmd} L")
            return
        handler = getattr(self, f"_cmd_{cmd.replace('@', 'reset')}", None)
        if handler is None or not cmd or not (cmd.isupper() or cmd == "@"):
            yield 0.0, self.line("ES")
            return
        yield from handler(rest)

    def _cmd_reset(self, rest: str) -> Iterator[Item]:
        self.balance.reset()
        yield 0.0, self.power_up_line()

    def _cmd_I1(self, rest: str) -> Iterator[Item]:
        yield 0.0, self.line('I1 A "01" "2.20" "2.20" "" ""')

    def _cmd_I2(self, rest: str) -> Iterator[Item]:
        b = self.balance
        capacity = f"{b.max:.{decimals_of(b.d)}f}"
        yield 0.0, self.line(f'I2 A "{self.model} {capacity} {b.unit}"')

    def _cmd_I3(self, rest: str) -> Iterator[Item]:
        yield 0.0, self.line(f'I3 A "{self.software}"')

    def _cmd_I4(self, rest: str) -> Iterator[Item]:
        yield 0.0, self.power_up_line()

    def _cmd_S(self, rest: str) -> Generator[Item, None, None]:
        reading = yield from wait_stable(self.balance, self.clock, self.stability_timeout)
        yield 0.0, self.line("S I") if reading is None else self._si(reading)

    def _cmd_SI(self, rest: str) -> Iterator[Item]:
        yield 0.0, self._si()

    def _cmd_SIR(self, rest: str) -> Iterator[Item]:
        self.stream = self._sir_stream
        return iter(())

    def _sir_stream(self) -> Iterator[Item]:
        period = 1.0 / self.sir_rate
        while True:
            yield 0.0, self._si()
            yield period, b""

    def _zero(self, ident: str, reading: BalanceDisplay) -> bytes:
        if reading.state == "overload":
            return self.line(f"{ident} +")
        if reading.state == "underload":
            return self.line(f"{ident} -")
        result = self.balance.zero_now()
        if result != "ok":
            return self.line(f"{ident} {result}")
        if ident == "Z":
            return self.line("Z A")
        return self.line(f"ZI {'S' if reading.stable else 'D'}")

    def _cmd_Z(self, rest: str) -> Generator[Item, None, None]:
        reading = yield from wait_stable(self.balance, self.clock, self.stability_timeout)
        yield 0.0, self.line("Z I") if reading is None else self._zero("Z", reading)

    def _cmd_ZI(self, rest: str) -> Iterator[Item]:
        yield 0.0, self._zero("ZI", self.balance.reading())

    def _tare(self, ident: str, reading: BalanceDisplay) -> bytes:
        if reading.state == "overload":
            return self.line(f"{ident} +")
        if reading.state == "underload":
            return self.line(f"{ident} -")
        result, _counts = self.balance.tare_now()
        if result != "ok":
            return self.line(f"{ident} {result}")
        status = "S" if (ident == "T" or reading.stable) else "D"
        return self.weight(ident, status, self._tare_text())

    def _cmd_T(self, rest: str) -> Generator[Item, None, None]:
        reading = yield from wait_stable(self.balance, self.clock, self.stability_timeout)
        yield 0.0, self.line("T I") if reading is None else self._tare("T", reading)

    def _cmd_TI(self, rest: str) -> Iterator[Item]:
        yield 0.0, self._tare("TI", self.balance.reading())

    def _cmd_TA(self, rest: str) -> Iterator[Item]:
        if rest:
            parts = rest.split()
            try:
                if len(parts) != 2 or parts[1] != self.balance.unit:
                    raise ValueError(rest)
                self.balance.set_preset_tare(float(parts[0]))
            except ValueError:
                yield 0.0, self.line("TA L")
                return
        yield 0.0, self.weight("TA", "A", self._tare_text())

    def _cmd_TAC(self, rest: str) -> Iterator[Item]:
        self.balance.clear_tare()
        yield 0.0, self.line("TAC A")

    def _cmd_D(self, rest: str) -> Iterator[Item]:
        if len(rest) < 2 or not (rest.startswith('"') and rest.endswith('"')):
            yield 0.0, self.line("D L")
            return
        self.balance.message = rest[1:-1]
        yield 0.0, self.line("D A")

    def _cmd_DW(self, rest: str) -> Iterator[Item]:
        self.balance.message = None
        yield 0.0, self.line("DW A")

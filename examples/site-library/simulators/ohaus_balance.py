"""Simulated Ohaus-style balance: the bundled balance physics behind the text protocol of
drivers/ohaus_balance.py. Registered as simulator type ``ohaus_balance`` on import."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .balance_physics import SimBalance
from .bench import BALANCE_PHYSICS, SimulatorType, register_simulator_type
from .servers import Item, LineSession
from .world import SimWorld


class OhausSession(LineSession):
    def __init__(self, balance: SimBalance, world: SimWorld, name: str) -> None:
        super().__init__(world.clock, world.faults(name), world.random_for(name))
        self.balance = balance

    def weight_line(self) -> bytes:
        r = self.balance.reading()
        if r.state != "ok":
            return b"ERR OL"
        decimals = max(0, len(f"{self.balance.d:g}".partition(".")[2]))
        text = f"{r.value:>10.{decimals}f} {r.unit}" + ("" if r.stable else " ?")
        return text.encode("ascii")

    def respond(self, line: bytes) -> Iterator[Item]:
        cmd = line.strip()
        if cmd == b"IP":
            yield 0.0, self.weight_line() + self.terminator
        elif cmd == b"Z":
            ok = self.balance.zero_now() == "ok"
            yield 0.0, (b"OK" if ok else b"ERR Z") + self.terminator
        elif cmd == b"T":
            ok = self.balance.tare_now()[0] == "ok"
            yield 0.0, (b"OK" if ok else b"ERR T") + self.terminator
        else:
            yield 0.0, b"ES" + self.terminator


def _build(world: SimWorld, name: str, options: dict[str, Any]) -> tuple[Any, Any]:
    balance = SimBalance(world.clock, world.rng_for(name), **options)
    return balance, lambda: OhausSession(balance, world, name)


register_simulator_type(SimulatorType("ohaus_balance", dict(BALANCE_PHYSICS), _build,
                                      "Ohaus-style text-protocol balance (site example)"))

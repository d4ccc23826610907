"""Figure 1: readings per second through benchctl's driver and transport, against the raw client
library on the same simulator.

Three wire protocols, three raw clients, each written the way the library's documentation
shows:

- MT-SICS ``SI`` over ``socket://`` against pyserial (``write`` + ``read_until(b"\\r\\n")``);
- Druck PACE ``:SENS:PRES?`` over a VISA TCPIP socket against pyvisa-py (``query``);
- a KELLER-style gauge's float32 at 0x0100 over Modbus TCP against pymodbus
  (``read_holding_registers`` + ``convert_from_registers``).

Both sides make the same exchange on the wire (the same command bytes, the same reply) with
the same simulator. The simulators run in a process of their own; both clients are connected
at once and take turns, round after round, in alternating order (benchctl first in one round,
the raw client first in the next), so a change of load on the machine hits both alike and
neither always runs right after the other. Every simulator thread runs on one CPU (where
there are two): a line simulator serves each connection from a thread of its own, and a
client whose server thread happens to share its CPU is up to twice as fast as the other,
whichever it is (see :func:`benchmarks.common.simulator_cpus`). The figure is the median
of the rounds' ratios:
each round's two measurements are adjacent in time, and a burst of load from another process
spoils a round or two, not the median. benchctl's side does everything a run relies on: typed
parsing, reply checks, raw bytes kept, timestamps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from .common import Context, Figure, SimProcess, interleaved, median, simulator_cpus

NAME = "driver"
NUMBER = 1
TITLE = "Driver overhead: readings per second, benchctl driver vs the raw client"

TARGET = 0.9

SIMULATORS: dict[str, dict[str, Any]] = {
    "balance": {"type": "mettler_sics", "transport": "tcp", "max": 220.0, "d": 0.0001,
                "unit": "g", "noise": 0.00005},
    "controller": {"type": "druck_pace", "transport": "tcp", "full_scale": 2000.0,
                   "unit": "kPa", "noise": 0.002},
    "gauge": {"type": "modbus_pressure_gauge", "transport": "tcp", "unit": "bar",
              "noise": 0.0002},
}


def _rate(read: Callable[[], Any], n: int, cpu: list[float] | None = None
          ) -> Callable[[], float]:
    """A measurement: readings per second over ``n`` reads (CPU µs per read into ``cpu``)."""
    def measure() -> float:
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            read()
        elapsed = time.perf_counter() - t0
        if cpu is not None:
            cpu.append((time.process_time() - c0) / n * 1e6)
        return n / elapsed
    return measure


# -- the raw clients --------------------------------------------------------------------------

def raw_sics(resource: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    import serial

    port = serial.serial_for_url(resource, timeout=2.0)
    port.read_until(b"\r\n")  # the power-up line the balance sends on connect

    def read() -> float:
        port.write(b"SI\r\n")
        line = port.read_until(b"\r\n")
        return float(line[4:14])
    return read, port.close


def raw_visa(resource: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    import pyvisa

    rm = pyvisa.ResourceManager("@py")
    inst: Any = rm.open_resource(resource, read_termination="\n", write_termination="\n",
                                 timeout=2000)

    def read() -> float:
        return float(inst.query(":SENS:PRES?").split()[1])

    # Not rm.close(): pyvisa's resource managers on one backend share their session, so
    # closing this one would close benchctl's too.
    return read, inst.close


def raw_modbus(resource: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    from pymodbus.client import ModbusTcpClient

    where = urlparse(resource.replace("modbus-tcp://", "tcp://"))
    client = ModbusTcpClient(where.hostname or "127.0.0.1", port=where.port or 502, timeout=2,
                             retries=0)
    if not client.connect():
        raise RuntimeError(f"pymodbus could not connect to {resource}")

    def read() -> float:
        rr = client.read_holding_registers(0x0100, count=2, device_id=1)
        if rr.isError():
            raise RuntimeError(f"Modbus error {rr}")
        value = client.convert_from_registers(rr.registers, client.DATATYPE.FLOAT32,
                                              word_order="big")
        return float(value)  # type: ignore[arg-type]
    return read, client.close


# -- benchctl -----------------------------------------------------------------------------------

def benchctl_reader(driver: str, name: str, resource: str, options: dict[str, Any],
                    method: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    from benchctl import library

    library.configure([])
    instrument = library.load("drivers", driver).connect(name, resource, options)
    read: Callable[[], Any] = getattr(instrument, method)
    return read, instrument.close


Reader = tuple[Callable[[], Any], Callable[[], None]]
CASES: tuple[tuple[str, str, str, dict[str, Any], str, Callable[[str], Reader], str, float],
             ...] = (
    # label, simulator, benchctl driver, options, method, raw client, raw label, and how far
    # apart the two sides' values may be (the simulator's noise is 10-20 times smaller)
    ("MT-SICS SI over socket://", "balance", "mettler_sics", {}, "read_now", raw_sics,
     "pyserial", 0.001),
    ("PACE :SENS:PRES? over VISA TCPIP socket", "controller", "druck_pace", {}, "read",
     raw_visa, "pyvisa", 0.05),
    ("gauge float32 over Modbus TCP", "gauge", "modbus_pressure_gauge", {"unit": "bar"},
     "read", raw_modbus, "pymodbus", 0.002),
)


def same_quantity(label: str, ours: Any, theirs: Any, tolerance: float) -> None:
    """Both sides read the same quantity of the same simulated instrument (a check that the
    two make the same exchange, not a benchmark of the value)."""
    value, raw = float(ours.value), float(theirs)
    if not abs(value - raw) <= tolerance:
        raise RuntimeError(f"{label}: benchctl read {value}, the raw client {raw}: the two do "
                           "not make the same exchange")


WARM_UP = 50
"""Readings each side takes before the rounds (connections, caches, lazy imports)."""


def run(ctx: Context) -> list[Figure]:
    # Many short rounds: a round's two measurements are a few ms apart, so they share the
    # load of the moment. On a loaded 2-core machine, A/A runs (a raw client against another
    # raw client) of 101 rounds of 75 readings repeated within 0.01-0.02 of each other; of
    # 31 rounds of 250, within 0.03.
    reads = ctx.size(75, 20)
    rounds = ctx.size(101, 2)
    figures: list[Figure] = []
    sim_cpus = simulator_cpus()
    placement = (f"simulators pinned to CPU {min(sim_cpus)}" if sim_cpus
                 else "simulators not pinned (fewer than two CPUs)")
    with SimProcess(SIMULATORS, speed=1.0, seed=1, cpus=sim_cpus) as sim:
        for label, slot, driver, options, method, raw_client, raw_label, tolerance in CASES:
            resource = sim.resources[slot]
            ours, close_ours = benchctl_reader(driver, slot, resource, options, method)
            theirs, close_theirs = raw_client(resource)
            try:
                for _ in range(WARM_UP if not ctx.quick else 5):
                    ours()
                    theirs()
                same_quantity(label, ours(), theirs(), tolerance)
                cpu_ours: list[float] = []
                cpu_raw: list[float] = []
                mine, raw = interleaved(rounds, _rate(ours, reads, cpu_ours),
                                        _rate(theirs, reads, cpu_raw), alternate=True)
            finally:
                close_ours()
                close_theirs()
            value, baseline = median(mine), median(raw)
            # Each round's two measurements are adjacent in time and share the machine's load
            # at that moment: the median of their ratios is steadier than a ratio of medians.
            ratio = median([m / r for m, r in zip(mine, raw, strict=True)])
            figures.append(Figure(
                NUMBER, f"driver overhead, {label}", value, "readings/s", baseline,
                f"raw {raw_label}", ratio, "benchctl ÷ raw", f"ratio ≥ {TARGET}",
                ratio >= TARGET,
                note=(f"{rounds} interleaved rounds of {reads} readings (order alternating), "
                      f"{placement}, ratio = median of the rounds' ratios; "
                      f"benchctl {min(mine):.0f}…{max(mine):.0f}, raw {raw_label} "
                      f"{min(raw):.0f}…{max(raw):.0f} readings/s; client CPU per reading "
                      f"{median(cpu_ours):.0f} µs (benchctl) and {median(cpu_raw):.0f} µs "
                      f"({raw_label})"),
                details={"benchctl": mine, "raw": raw}))
    return figures

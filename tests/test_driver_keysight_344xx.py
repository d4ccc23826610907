"""Keysight 344xx + 4–20 mA transmitter: byte-exact SCPI over VISA (TCPIP socket and ASRL),
the current → pressure mapping, NAMUR fault currents; then against the simulated DMM."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from replay import PtyReplay, ReplayServer, Script, load_driver
from simhelp import load

from benchctl.errors import ConfigError, InstrumentCommandError, InstrumentTimeout, ProtocolError
from benchctl.instruments import PressureIndicator

dmm = load_driver("keysight_344xx")
bench_mod = load("bench")
manifold_mod = load("manifold")

IDN = (b"*IDN?\n", b"Keysight Technologies,34465A,MY54321012,A.03.01-03.15-03.01-00.52-03-02\n")
SETUP: Script = [
    IDN, (b"*CLS\n", None), (b"CONF:CURR:DC 0.1\n", None), (b"SENS:CURR:DC:NPLC 10\n", None),
    (b"SYST:ERR?\n", b'+0,"No error"\n'),
    (b"CONF?\n", b'"CURR +1.000000E-01,+3.000000E-07"\n'),
]
RANGE = {"range_low": 0.0, "range_high": 1000.0, "unit": "kPa"}


@contextlib.contextmanager
def transmitter(script: Script, *, kind: str = "visa_socket", server: Any = ReplayServer,
                **options: Any) -> Iterator[Any]:
    with server([*SETUP, *script]) as srv:
        inst = dmm.connect("gauge", getattr(srv, kind), {"timeout": 0.5, **RANGE, **options})
        try:
            yield inst
        finally:
            inst.close()


# -- pure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ma", "kpa"), [(4.0, 0.0), (12.0, 500.0), (20.0, 1000.0),
                                         (3.8, -12.5), (20.5, 1031.25)])
def test_current_to_pressure(ma: float, kpa: float) -> None:
    assert dmm.current_to_pressure(ma, 0.0, 1000.0) == pytest.approx(kpa)
    assert dmm.current_to_pressure(ma, -100.0, 900.0) == pytest.approx(kpa - 100.0)


@pytest.mark.parametrize(("ma", "why"), [
    (0.0, "no loop current"), (3.6, "signals a fault (NAMUR NE 43, ≤ 3.6 mA)"),
    (3.7, "below 3.8 mA"), (20.7, "above 20.5 mA"), (21.5, "≥ 21 mA"),
])
def test_loop_currents_that_are_not_pressures(ma: float, why: str) -> None:
    assert why in dmm.check_loop_current(ma)
    assert dmm.check_loop_current(12.0) == ""


def test_parse_reading() -> None:
    assert dmm.parse_reading(b"+1.23456789E-02") == pytest.approx(0.0123456789)
    with pytest.raises(ProtocolError, match="overload"):
        dmm.parse_reading(b"+9.90000000E+37")
    with pytest.raises(ProtocolError, match="not a DMM reading"):
        dmm.parse_reading(b"+1.2E-02 A")
    assert dmm.parse_error(b'-113,"Undefined header"') == (-113, "Undefined header")


# -- byte-exact ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "server"), [("visa_socket", ReplayServer),
                                              ("visa_asrl", PtyReplay)])
def test_setup_and_reading_are_byte_exact(kind: str, server: Any) -> None:
    with transmitter([(b"READ?\n", b"+1.20000000E-02\n"), (b"READ?\n", b"+1.60000000E-02\n")],
                     kind=kind, server=server) as inst:
        assert isinstance(inst, PressureIndicator)
        reading = inst.read()
        assert (reading.value, reading.unit, reading.raw) == (pytest.approx(500.0), "kPa",
                                                              b"+1.20000000E-02")
        assert inst.read_current().value == pytest.approx(16.0)


def test_a_fault_current_is_refused_with_the_reason() -> None:
    with transmitter([(b"READ?\n", b"+3.60000000E-03\n")]) as inst, \
            pytest.raises(ProtocolError, match="transmitter signals a fault") as info:
        inst.read()
    assert info.value.raw == b"+3.60000000E-03"


def test_a_late_reading_is_dropped_by_the_resync() -> None:
    """READ? answered 1.1 s after it was sent (the driver waits 0.5 + NPLC/50 = 0.7 s): the
    late line has the shape of a reading, so only the *IDN? exchange can tell it is old."""
    script: Script = [
        (b"READ?\n", [1.1, b"+4.00000000E-03\n"]),
        IDN,  # sent while the late line is on its way; answered after it
        (b"READ?\n", b"+1.20000000E-02\n"),
    ]
    with transmitter(script, nplc=10) as inst:
        with pytest.raises(InstrumentTimeout):
            inst.read()
        assert inst.read().value == pytest.approx(500.0)


def test_a_stray_identity_line_is_not_a_reading_and_puts_the_driver_back_in_step() -> None:
    script: Script = [
        (b"READ?\n", None),
        (b"*IDN?\n", [1.6, IDN[1]]),  # after the resync's 0.7 + 0.5 s
        IDN,  # the second resync takes the first identity line; this one is stray
        (b"READ?\n", b"+1.60000000E-02\n"),  # never taken: the driver resyncs first
        IDN,
        (b"READ?\n", b"+1.20000000E-02\n"),
    ]
    with transmitter(script) as inst:
        with pytest.raises(InstrumentTimeout):
            inst.read()
        with pytest.raises(InstrumentTimeout, match=r"no answer to b'\*IDN\?' within 1.2 s"):
            inst.read()
        with pytest.raises(ProtocolError, match="not a DMM reading"):
            inst.read()
        assert inst.read().value == pytest.approx(500.0)


def test_an_error_queue_number_too_long_for_a_code_is_refused() -> None:
    line = b"+" + b"9" * 5000 + b',"x"'
    with pytest.raises(ProtocolError, match="not an error-queue reply"):
        dmm.parse_error(line)


def test_setup_errors_are_reported() -> None:
    script: Script = [IDN, (b"*CLS\n", None), (b"CONF:CURR:DC 0.1\n", None),
                      (b"SENS:CURR:DC:NPLC 10\n", None),
                      (b"SYST:ERR?\n", b'-222,"Data out of range"\n'),
                      (b"SYST:ERR?\n", b'+0,"No error"\n')]
    with ReplayServer(script) as srv, pytest.raises(InstrumentCommandError,
                                                    match='-222 Data out of range'):
        dmm.connect("gauge", srv.visa_socket, {"timeout": 0.5, **RANGE})
    script = [*SETUP[:-1], (b"CONF?\n", b'"VOLT +1.000000E+01,+3.000000E-05"\n')]
    with ReplayServer(script) as srv, pytest.raises(InstrumentCommandError,
                                                    match="not measuring current"):
        dmm.connect("gauge", srv.visa_socket, {"timeout": 0.5, **RANGE})


def test_the_range_is_required() -> None:
    with pytest.raises(ConfigError) as info:
        dmm.connect("gauge", "TCPIP::127.0.0.1::1::SOCKET", {"range_low": 0.0, "unit": "kPa"})
    assert info.value.key == "instruments.gauge.range_high"
    with pytest.raises(ConfigError, match="above range_low"):
        dmm.connect("gauge", "TCPIP::127.0.0.1::1::SOCKET",
                    {"range_low": 10.0, "range_high": 0.0, "unit": "kPa"})


# -- against the simulator -------------------------------------------------------------------------


def test_reads_the_simulated_transmitter() -> None:
    sim = bench_mod.start_simulation({"dmm": {
        "type": "keysight_344xx", "range_low": 0.0, "range_high": 1000.0, "unit": "kPa",
        "zero_offset": 1.5}}, speed=100.0, control=None)
    try:
        manifold = manifold_mod.manifold_for(sim.world)
        manifold.pump_time = 0.01
        manifold.pump_to(250_000.0)
        time.sleep(0.05)
        inst = dmm.connect("gauge", sim.resources["dmm"], RANGE)
        try:
            assert inst.read().value == pytest.approx(251.5, abs=1e-4)
        finally:
            inst.close()
    finally:
        sim.stop()

"""Druck PACE driver: byte-exact SCPI over a VISA TCPIP socket and VISA ASRL (pyvisa-py),
header checks, the error queue after every setting; then the full control sequence against
the simulator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from replay import PtyReplay, ReplayServer, Script, load_driver
from simhelp import load

from benchctl.errors import InstrumentCommandError, InstrumentTimeout, ProtocolError
from benchctl.instruments import PressureController

pace = load_driver("druck_pace")
bench_mod = load("bench")

IDN = (b"*IDN?\n", b"*IDN GE Druck,Pace5000 User Interface,58784,01.05.04\n")
UNIT_KPA = (b":UNIT:PRES?\n", b":UNIT:PRES KPA\n")
NO_ERROR = (b":SYST:ERR?\n", b":SYST:ERR 0, No error\n")
CONNECT: Script = [IDN, UNIT_KPA, NO_ERROR]


@contextlib.contextmanager
def controller(script: Script, *, kind: str = "visa_socket", server: Any = ReplayServer,
               **options: Any) -> Iterator[Any]:
    with server([*CONNECT, *script]) as srv:
        inst = pace.connect("controller", getattr(srv, kind), {"timeout": 0.5, **options})
        try:
            yield inst
        finally:
            inst.close()


# -- pure parsing --------------------------------------------------------------------------------


def test_parse_reply_strips_the_echoed_header() -> None:
    reply = pace.parse_reply(b":SENS:PRES 1000.512", (":SENS:PRES",))
    assert (reply.header, reply.value) == (":SENS:PRES", "1000.512")
    assert pace.parse_number(reply) == 1000.512
    inl = pace.parse_reply(b":SENS:PRES:INL 1000.5, 1", (":SENS:PRES:INL",))
    assert pace.parse_in_limits(inl) == (1000.5, True)
    err = pace.parse_reply(b":SYST:ERR -222, Data out of range", (":SYST:ERR",))
    assert pace.parse_error(err) == (-222, "Data out of range")


@pytest.mark.parametrize(("line", "expected"), [
    (b":SENS:PRES:INL 1000.5, 1", "does not answer :SENS:PRES?"),
    (b":SENS:PRES", "without a value"),
    (b":SENS:PRES \xff", "not ASCII"),
])
def test_parse_reply_refuses_what_does_not_answer_the_command(line: bytes,
                                                              expected: str) -> None:
    with pytest.raises(ProtocolError, match=expected) as info:
        pace.parse_reply(line, (":SENS:PRES",), "TCPIP::pace::5025::SOCKET")
    assert info.value.raw == line


def test_parse_number_and_in_limits_refuse_garbage() -> None:
    with pytest.raises(ProtocolError, match="is not a number"):
        pace.parse_number(pace.PaceReply(":SENS:PRES", "1e5x", b""))
    with pytest.raises(ProtocolError, match=r"<0\|1>"):
        pace.parse_in_limits(pace.PaceReply(":SENS:PRES:INL", "1000.5, 2", b""))


# -- byte-exact exchanges --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "server"), [("visa_socket", ReplayServer),
                                              ("visa_asrl", PtyReplay)])
def test_control_sequence_is_byte_exact(kind: str, server: Any) -> None:
    script: Script = [
        (b":UNIT:PRES BAR\n", None), NO_ERROR, (b":UNIT:PRES?\n", b":UNIT:PRES BAR\n"),
        (b":SOUR:PRES 5.5\n", None), NO_ERROR,
        (b":OUTP:STAT 1\n", None), NO_ERROR, (b":OUTP:STAT?\n", b":OUTP:STAT 1\n"),
        (b":SENS:PRES:INL?\n", b":SENS:PRES:INL 5.4998, 0\n"),
        (b":SENS:PRES:INL?\n", b":SENS:PRES:INL 5.5001, 1\n"),
        (b":SENS:PRES?\n", b":SENS:PRES 5.5002\n"),
        (b":OUTP:STAT 0\n", None), NO_ERROR,
        (b":SOUR:PRES:LEV:IMM:AMPL:VENT 1\n", None), NO_ERROR,
        (b":SOUR:PRES:LEV:IMM:AMPL:VENT?\n", b":SOUR:PRES:LEV:IMM:AMPL:VENT 2\n"),
    ]
    with controller(script, kind=kind, server=server) as inst:
        assert isinstance(inst, PressureController)
        assert inst.unit == "kPa"
        inst.set_unit("bar")
        inst.set_setpoint(5.5)
        inst.set_control(True)
        reading, ok = inst.read_in_limits()
        assert (reading.value, reading.unit, ok, reading.stable) == (5.4998, "bar", False, False)
        reading, ok = inst.read_in_limits()
        assert ok and reading.raw == b":SENS:PRES:INL 5.5001, 1"
        assert inst.read().value == 5.5002
        inst.vent()
        assert inst.vent_status() == 2


def test_connect_sets_slew_and_in_limits_when_asked() -> None:
    script: Script = [
        (b":SOUR:PRES:SLEW:MODE LIN\n", None), NO_ERROR,
        (b":SOUR:PRES:SLEW 20\n", None), NO_ERROR,
        (b":SOUR:PRES:INL 0.005\n", None), NO_ERROR,
        (b":SOUR:PRES:INL:TIME 3\n", None), NO_ERROR,
    ]
    with controller(script, slew=20.0, slew_mode="lin", inl_band_pct=0.005, inl_time=3.0):
        pass


def test_a_refused_setpoint_is_an_error_naming_the_command() -> None:
    script: Script = [
        (b":SOUR:PRES 2500\n", None),
        (b":SYST:ERR?\n", b":SYST:ERR -222, Data out of range\n"),
        (b":SYST:ERR?\n", b":SYST:ERR -350, Queue overflow\n"),
        NO_ERROR,
    ]
    with controller(script) as inst, pytest.raises(InstrumentCommandError) as info:
        inst.set_setpoint(2500.0)
    text = str(info.value)
    assert text.startswith("TCPIP::127.0.0.1::")
    assert "setpoint 2500 kPa refused (':SOUR:PRES 2500')" in text
    assert "-222 Data out of range; -350 Queue overflow" in text


def test_a_unit_the_controller_does_not_read_back_is_an_error() -> None:
    script: Script = [(b":UNIT:PRES PSI\n", None), NO_ERROR,
                      (b":UNIT:PRES?\n", b":UNIT:PRES KPA\n")]
    with controller(script) as inst, pytest.raises(InstrumentCommandError,
                                                   match="unit set to psi but the PACE reads "
                                                         "back kPa"):
        inst.set_unit("psi")
    with controller([]) as inst, pytest.raises(InstrumentCommandError,
                                               match="no unit 'kgf/cm2'"):
        inst.set_unit("kgf/cm2")


def test_a_stale_reply_is_not_taken_and_a_timeout_resynchronises() -> None:
    script: Script = [
        (b":SENS:PRES?\n", b":SENS:PRES:INL 3.0, 1\n"),  # answers another command
        IDN,  # back in step before the next command
        (b":SENS:PRES?\n", None),  # silence
        IDN,
        (b":SENS:PRES?\n", b":SENS:PRES 3.25\n"),
    ]
    with controller(script) as inst:
        with pytest.raises(ProtocolError, match=r"does not answer :SENS:PRES\?"):
            inst.read()
        with pytest.raises(InstrumentTimeout):
            inst.read()
        assert inst.read().value == 3.25


def test_a_late_answer_to_the_same_question_is_dropped_by_the_resync() -> None:
    """The PACE answers the abandoned :SENS:PRES? 0.3 s after the driver gave up: the header
    is the one the next :SENS:PRES? expects, so only the *IDN? exchange can tell it is old."""
    script: Script = [
        (b":SENS:PRES?\n", [0.8, b":SENS:PRES 0.000\n"]),  # the driver waits 0.5 s
        IDN,  # sent while the late line is on its way; answered after it
        (b":SENS:PRES?\n", b":SENS:PRES 500.012\n"),
    ]
    with controller(script) as inst:
        with pytest.raises(InstrumentTimeout):
            inst.read()
        assert inst.read().value == 500.012


def test_a_resync_without_answer_is_a_timeout_and_the_next_command_resyncs_again() -> None:
    script: Script = [
        (b":SENS:PRES?\n", None),
        (b"*IDN?\n", [1.5, IDN[1]]),  # answered after the resync's 1.0 s
        IDN,  # the second resync takes the first *IDN line; this one is stray...
        (b":SENS:PRES?\n", b":SENS:PRES 1.000\n"),  # ...and this answer is never taken
        IDN,
        (b":SENS:PRES?\n", b":SENS:PRES 2.000\n"),
    ]
    with controller(script) as inst:
        with pytest.raises(InstrumentTimeout):
            inst.read()
        with pytest.raises(InstrumentTimeout, match=r"no answer to b'\*IDN\?' within 1 s"):
            inst.read()
        with pytest.raises(ProtocolError, match=r"does not answer :SENS:PRES\?"):
            inst.read()  # the stray *IDN line
        assert inst.read().value == 2.0


def test_a_setting_after_a_timeout_waits_for_the_resync() -> None:
    script: Script = [
        (b":SENS:PRES?\n", None),
        IDN,
        (b":SOUR:PRES 100\n", None), NO_ERROR,
    ]
    with controller(script) as inst:
        with pytest.raises(InstrumentTimeout):
            inst.read()
        inst.set_setpoint(100.0)


def test_connect_refuses_a_unit_it_does_not_know() -> None:
    with ReplayServer([IDN, (b":UNIT:PRES?\n", b":UNIT:PRES INH2O\n")]) as srv, \
            pytest.raises(ProtocolError, match="unknown pressure unit 'INH2O'"):
        pace.connect("controller", srv.visa_socket, {"timeout": 0.5})


# -- against the simulator -------------------------------------------------------------------------


def test_reaches_in_limits_on_the_simulator() -> None:
    sim = bench_mod.start_simulation({"controller": {"type": "druck_pace", "noise": 0.0,
                                                     "inl_time": 2.0}}, speed=200.0,
                                     control=None)
    try:
        inst = pace.connect("controller", sim.resources["controller"],
                            {"slew": 100.0, "inl_band_pct": 0.01})
        try:
            inst.set_unit("kPa")
            assert inst.full_scale() == 2000.0
            with pytest.raises(InstrumentCommandError, match="-222 Data out of range"):
                inst.set_setpoint(2100.0)
            inst.set_setpoint(400.0)
            inst.set_control(True)
            polls = 0
            while not inst.read_in_limits()[1]:
                polls += 1
                assert polls < 10_000
            assert inst.read().value == pytest.approx(400.0, abs=0.2)
            assert inst.setpoint() == 400.0
        finally:
            inst.vent()
            inst.close()
    finally:
        sim.stop()

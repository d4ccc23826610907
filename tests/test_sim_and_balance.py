"""A&D standard-format simulator over real TCP sockets and a pty, byte for byte."""

from __future__ import annotations

import time

import pytest
import serial
import simhelp
from simhelp import LineClient

bench = simhelp.load("bench")
and_balance = simhelp.load("and_balance")

SPEED = 100.0
AK = b"\x06\r\n"


def start(**options):
    spec = {"type": "and_balance", "max": 200.0, "d": 0.01, "settle_time": 2.0}
    spec.update(options)
    return bench.start_simulation({"scale": spec}, speed=SPEED, seed=2, control=None)


@pytest.fixture
def sim():
    with start() as s:
        yield s


@pytest.fixture
def client(sim):
    with LineClient(sim.resources["scale"]) as c:
        yield c


def place(sim, value, unit="g"):
    assert sim.world.apply({"type": "place_load", "load": {"value": value, "unit": unit}})["ok"]


def test_value_field_format():
    f = and_balance.format_and_value
    assert f("123.45") == "+00123.45"
    assert f("-12.34") == "-00012.34"
    assert f("0.0000") == "+000.0000"
    assert f("6200") == "+00006200"


def test_nothing_on_connect_and_q(sim, client):
    assert client.read_for(0.05) == b""
    assert client.query(b"Q") == b"ST,+00000.00  g\r\n"
    place(sim, 123.45)
    time.sleep(0.1)
    assert client.query(b"Q") == b"ST,+00123.45  g\r\n"
    assert client.query(b"SI") == b"ST,+00123.45  g\r\n"


def test_unstable_header_and_s_waits():
    with start(settle_time=20.0, stability_timeout=60.0) as s, \
            LineClient(s.resources["scale"]) as c:
        place(s, 10)
        assert c.query(b"Q").startswith(b"US,+")
        assert c.query(b"S", timeout=2.0) == b"ST,+00010.00  g\r\n"


def test_negative_and_units():
    with start(zero_offset=-0.05) as s, LineClient(s.resources["scale"]) as c:
        assert c.query(b"S") == b"ST,-00000.05  g\r\n"
    with start(max=30.0, d=0.001, unit="kg") as s, LineClient(s.resources["scale"]) as c:
        place(s, 1234, "g")
        assert c.query(b"S") == b"ST,+0001.234 kg\r\n"
    with start(max=5000.0, d=0.1, unit="mg") as s, LineClient(s.resources["scale"]) as c:
        place(s, 1.5, "g")
        assert c.query(b"S") == b"ST,+001500.0 mg\r\n"


def test_overload_and_underload():
    with start(max=200.0, d=0.01, e=0.1) as s, LineClient(s.resources["scale"]) as c:
        place(s, 200.9)
        assert c.query(b"S") == b"ST,+00200.90  g\r\n"
        place(s, 0.01)
        assert c.query(b"S") == b"OL,+9999999E+19\r\n"
        assert c.query(b"Q") == b"OL,+9999999E+19\r\n"
    with start(zero_offset=-0.5) as s, LineClient(s.resources["scale"]) as c:
        assert c.query(b"Q") == b"OL,-9999999E+19\r\n"  # below -20 e


def test_sir_stream_c_cancels_and_q_is_answered_in_between(sim, client):
    place(sim, 5)
    client.query(b"S")
    client.send(b"SIR\r\n")
    lines = [client.read_line() for _ in range(4)]
    assert set(lines) == {b"ST,+00005.00  g\r\n"}
    client.send(b"Q\r\n")
    assert client.read_line() == b"ST,+00005.00  g\r\n"
    assert len(client.read_for(0.05)) > 0  # the stream goes on after Q
    client.send(b"C\r\n")
    client.read_for(0.1)
    assert client.read_for(0.1) == b""


def test_rezero_and_tare_silent_by_default():
    with start(zero_offset=0.3) as s, LineClient(s.resources["scale"]) as c:
        c.send(b"R\r\n")
        assert c.read_for(0.1) == b""
        assert c.query(b"Q") == b"ST,+00000.00  g\r\n"
        place(s, 25)
        c.send(b"T\r\n")
        assert c.read_for(0.15) == b""
        assert c.query(b"Q") == b"ST,+00000.00  g\r\n"
        place(s, 5)
        assert c.query(b"S") == b"ST,+00005.00  g\r\n"
        c.send(b"XX\r\n")
        assert c.read_for(0.05) == b""


def test_ack_and_error_codes():
    with start(ack=True, zero_offset=0.3) as s, LineClient(s.resources["scale"]) as c:
        c.send(b"R\r\n")
        assert c.read_line() == AK  # received
        assert c.read_line() == AK  # done
        assert c.query(b"Q") == b"ST,+00000.00  g\r\n"
        place(s, 5)
        assert c.query(b"T") == AK
        assert c.query(b"C") == AK
        assert c.query(b"XX") == b"EC,E1\r\n"
        place(s, 10)
        c.send(b"Z\r\n")
        assert c.read_line() == AK
        assert c.read_line() == b"EC,E7\r\n"  # 15 g gross: beyond the ±2 % zero range


def test_stability_timeout_with_ack():
    with start(ack=True, noise=0.05, stability_timeout=1.0) as s, \
            LineClient(s.resources["scale"]) as c:
        assert c.query(b"S") == b"EC,E11\r\n"
        assert c.query(b"Q").startswith(b"US,")
    with start(noise=0.05, stability_timeout=1.0) as s, LineClient(s.resources["scale"]) as c:
        c.send(b"S\r\n")
        assert c.read_for(0.1) == b""


def test_faults(sim, client):
    def fault(mode):
        assert sim.world.apply({"type": "fault", "instrument": "scale", "mode": mode})["ok"]

    place(sim, 100)
    client.query(b"S")
    fault("wrong_unit")
    assert client.query(b"Q") == b"ST,+00.10000 kg\r\n"
    fault("error")
    assert client.query(b"Q") == b"EC,E1\r\n"
    fault("busy")
    assert client.query(b"Q") == b"EC,E2\r\n"
    fault("power_cycle")
    client.send(b"Q\r\n")
    assert client.read_for(0.05) == b""
    assert client.query(b"Q") == b"ST,+00100.00  g\r\n"  # 100 g: beyond the power-up zero range
    sim.world.apply({"type": "remove_load"})
    place(sim, 8)  # within ±10 % of Max: the power-up zero takes it
    client.query(b"S")
    fault("power_cycle")
    client.send(b"Q\r\n")
    assert client.read_for(0.05) == b""
    assert client.query(b"S") == b"ST,+00000.00  g\r\n"


def test_pty_transport():
    spec = {"type": "and_balance", "transport": "pty", "max": 200.0, "d": 0.01}
    with bench.start_simulation({"scale": spec}, speed=SPEED, control=None) as s:
        port = serial.serial_for_url(s.resources["scale"], timeout=1.0)
        try:
            s.world.apply({"type": "place_load", "load": {"value": 2, "unit": "g"}})
            port.write(b"S\r\n")
            assert port.readline() == b"ST,+00002.00  g\r\n"
        finally:
            port.close()

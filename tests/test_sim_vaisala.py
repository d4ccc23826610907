"""Vaisala PTU300 simulator and the room's air, over TCP and a pty."""

from __future__ import annotations

import itertools
import re

import pytest
import serial
import simhelp
from simhelp import LineClient

bench = simhelp.load("bench")
vaisala = simhelp.load("vaisala_ptu")
world_mod = simhelp.load("world")

SPEED = 100.0
LINE = re.compile(rb"^P= *(-?\d+\.\d) hPa T= *(-?\d+\.\d) 'C RH= *(\d+\.\d) %RH\r\n$")


def start(**options):
    spec = {"type": "vaisala_ptu", "temperature_c": 23.5, "humidity_pct": 40.0,
            "pressure_hpa": 1013.2, "variation": 0.0, "noise": 0.0}
    spec.update(options)
    return bench.start_simulation({"room": spec}, speed=SPEED, seed=3, control=None)


@pytest.fixture
def sim():
    with start() as s:
        yield s


@pytest.fixture
def client(sim):
    with LineClient(sim.resources["room"]) as c:
        yield c


def test_format_exact():
    assert vaisala.format_ptu_line(1013.14, 22.26, 35.2) == \
        b"P=  1013.1 hPa T=  22.3 'C RH=  35.2 %RH\r\n"
    assert vaisala.format_ptu_line(998.0, -5.04, 100.0) == \
        b"P=   998.0 hPa T=  -5.0 'C RH= 100.0 %RH\r\n"


def test_send_exact(client):
    assert client.read_for(0.05) == b""  # nothing at connect by default
    assert client.query(b"SEND") == b"P=  1013.2 hPa T=  23.5 'C RH=  40.0 %RH\r\n"
    assert client.query(b"send 0") == b"P=  1013.2 hPa T=  23.5 'C RH=  40.0 %RH\r\n"


def test_set_ambient_and_offsets():
    with start(temperature_offset=0.2, humidity_offset=-1.0, pressure_offset=0.3) as s, \
            LineClient(s.resources["room"]) as c:
        assert c.query(b"SEND") == b"P=  1013.5 hPa T=  23.7 'C RH=  39.0 %RH\r\n"
        reply = s.world.apply({"type": "set_ambient", "temperature_c": 19.0,
                               "humidity_pct": 65.5, "pressure_hpa": 1002.0})
        assert reply["ok"] and reply["temperature_c"] == pytest.approx(19.0)
        assert c.query(b"SEND") == b"P=  1002.3 hPa T=  19.2 'C RH=  64.5 %RH\r\n"
        read = s.world.apply({"type": "read", "instrument": "room"})
        assert read["ok"] and read["temperature_c"] == pytest.approx(19.2)


def test_run_mode_streams_until_s(sim, client):
    client.send(b"INTV 1 s\r\n")
    assert client.read_line() == b"Output intrv. : 1 s\r\n"
    t0 = sim.world.clock.now()
    client.send(b"R\r\n")
    data = client.read_for(0.2)  # about 20 s simulated, one line a second
    elapsed = sim.world.clock.now() - t0
    lines = data.split(b"\r\n")[:-1]
    assert 0.4 * elapsed <= len(lines) <= elapsed + 2
    assert all(LINE.match(line + b"\r\n") for line in lines)
    client.send(b"ERRS\r\n")  # answered in run mode, which goes on
    assert b"No errors\r\n" in client.read_for(0.05)
    assert LINE.search(client.read_for(0.05).split(b"\r\n")[0] + b"\r\n")
    client.send(b"S\r\n")
    client.read_for(0.05)
    assert client.read_for(0.05) == b""


def test_info_commands(client):
    assert client.query(b"INTV") == b"Output intrv. : 2 s\r\n"
    assert client.query(b"INTV 5 min") == b"Output intrv. : 5 min\r\n"
    assert client.query(b"INTV 999") == b"Unknown command\r\n"
    assert client.query(b"ERRS") == b"No errors\r\n"
    assert client.query(b"VERS") == b"PTU300 / 5.10\r\n"
    assert client.query(b"FOO") == b"Unknown command\r\n"
    client.send(b"?\r\n")
    lines = [client.read_line() for _ in range(5)]
    assert lines == [b"PTU300 / 5.10\r\n", b"Serial number  : A1234567\r\n",
                     b"Output interval: 5 min\r\n", b"Pressure unit  : hPa\r\n",
                     b"Temperature unit: 'C\r\n"]


def test_faults(sim, client):
    def fault(mode):
        assert sim.world.apply({"type": "fault", "instrument": "room", "mode": mode})["ok"]

    fault("wrong_unit")
    assert client.query(b"SEND") == b"P=  1013.2 hPa T=  74.3 'F RH=  40.0 %RH\r\n"
    fault("power_cycle")
    assert client.query(b"SEND") == b"PTU300 / 5.10\r\n"
    fault("busy")
    client.send(b"SEND\r\n")
    assert client.read_for(0.05) == b""
    assert LINE.match(client.query(b"SEND"))


def test_pty_and_power_up_line():
    spec = {"type": "vaisala_ptu", "transport": "pty", "powerup_on_connect": True}
    with bench.start_simulation({"room": spec}, speed=SPEED, control=None) as s:
        port = serial.serial_for_url(s.resources["room"], baudrate=4800, timeout=1.0)
        try:
            port.write(b"SEND\r\n")
            m = LINE.match(port.readline())
            assert m and abs(float(m.group(2)) - 22.0) < 0.5
            s.world.apply({"type": "power_cycle", "instrument": "room"})
            assert port.readline() == b"PTU300 / 5.10\r\n"
        finally:
            port.close()


def test_environment_varies_slowly_and_is_seeded():
    def series(seed):
        clock = world_mod.ManualClock()
        import numpy as np

        env = vaisala.SimEnvironment(clock, np.random.default_rng(seed), noise=0.0)
        values = []
        for _ in range(24):
            clock.advance(300)
            values.append(env.sample()["temperature_c"])
        return values

    a = series(1)
    assert a == series(1)
    assert max(a) - min(a) > 0.05  # it moves …
    assert all(abs(v - 22.0) <= 0.61 for v in a)  # … slowly, within ±0.6 °C
    assert all(abs(x - y) < 0.2 for x, y in itertools.pairwise(a))

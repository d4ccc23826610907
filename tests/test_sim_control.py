"""The JSON-lines control server and start_simulation's checking of simulator specs."""

from __future__ import annotations

import json
import re
import socket

import pytest
import simhelp
from simhelp import LineClient

bench = simhelp.load("bench")
control = simhelp.load("control")

SPEED = 100.0
BENCH = {
    "balance": {"type": "mettler_sics", "transport": "tcp", "port": 0, "max": 220.0,
                "d": 0.001},
    "room": {"type": "vaisala_ptu", "transport": "pty", "noise": 0.0, "variation": 0.0},
}


@pytest.fixture
def sim():
    with bench.start_simulation(BENCH, speed=SPEED, seed=5) as s:
        yield s


def test_round_trip_over_a_raw_socket(sim):
    assert re.fullmatch(r"127\.0\.0\.1:\d+", sim.control_address)
    host, port = sim.control_address.split(":")
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        f = sock.makefile("rwb")
        action = {"type": "place_load", "load": {"value": 200, "unit": "g"},
                  "position": "centre", "instrument": "balance"}
        f.write(json.dumps(action).encode() + b"\n")
        f.flush()
        reply = json.loads(f.readline())
        assert reply == {"ok": True, "instrument": "balance",
                         "load": {"value": 200, "unit": "g"}, "position": "centre"}
        f.write(b"this is not json\r\n")
        f.flush()
        reply = json.loads(f.readline())
        assert reply["ok"] is False and "JSON" in reply["error"]
        f.write(b'{"type": "levitate"}\n')
        f.flush()
        reply = json.loads(f.readline())
        assert reply["ok"] is False and "levitate" in reply["error"]


def test_operator_in_another_process_drives_the_balance(sim):
    with control.ControlClient(sim.control_address) as operator, \
            LineClient(sim.resources["balance"]) as dut:
        dut.read_line()
        assert operator.apply({"type": "place_load",
                               "load": {"value": 100, "unit": "g"}})["ok"]
        assert dut.query(b"S") == b"S S    100.000 g\r\n"
        read = operator.apply({"type": "read", "instrument": "balance"})
        assert (read["value"], read["unit"], read["stable"]) == (100.0, "g", True)
        assert operator.apply({"type": "remove_load"})["ok"]
        assert dut.query(b"S") == b"S S      0.000 g\r\n"
        assert operator.apply({"type": "fault", "instrument": "balance", "mode": "error",
                               "count": 1})["ok"]
        assert dut.query(b"SI") == b"ES\r\n"
        assert operator.apply({"type": "power_cycle", "instrument": "balance"})["ok"]
        assert dut.read_line() == b'I4 A "B123456789"\r\n'


def test_set_ambient_reaches_the_ptu(sim):
    import serial

    reply = control.send_action(sim.control_address, {
        "type": "set_ambient", "temperature_c": 20.4, "humidity_pct": 55.0,
        "pressure_hpa": 1008.8})
    assert reply["ok"] and reply["temperature_c"] == pytest.approx(20.4)
    port = serial.serial_for_url(sim.resources["room"], timeout=1.0)
    try:
        port.write(b"SEND\r\n")
        assert port.readline() == b"P=  1008.8 hPa T=  20.4 'C RH=  55.0 %RH\r\n"
    finally:
        port.close()
    read = control.send_action(sim.control_address, {"type": "read", "instrument": "room"})
    assert read["ok"] and read["humidity_pct"] == 55.0


def test_control_disabled_and_context_manager():
    with bench.start_simulation({"b": {"type": "and_balance", "max": 10, "d": 0.001}},
                                control=None) as s:
        assert s.control_address is None and set(s.resources) == {"b"}
        resource = s.resources["b"]
    with pytest.raises(OSError):
        LineClient(resource, timeout=0.5)


def test_wait_returns_when_stopped():
    import threading

    s = bench.start_simulation({}, control=None)
    assert s.wait(0.01) is False
    threading.Timer(0.05, s.stop).start()
    assert s.wait(2.0) is True


def test_fixed_control_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with bench.start_simulation({}, control=f"127.0.0.1:{port}") as s:
        assert s.control_address == f"127.0.0.1:{port}"
        assert control.send_action(s.control_address, {"type": "remove_load"})["ok"] is False


@pytest.mark.parametrize(("spec", "words"), [
    ({"type": "ohaus"}, ["instruments.x.simulator.type", "'ohaus'", "mettler_sics"]),
    ({"max": 1, "d": 0.1}, ["instruments.x.simulator", "missing 'type'"]),
    ({"type": "mettler_sics", "d": 0.1}, ["instruments.x.simulator", "'max'"]),
    ({"type": "mettler_sics", "max": 1, "d": 0.1, "nosie": 1},
     ["instruments.x.simulator", "'nosie'", "noise"]),
    ({"type": "mettler_sics", "max": "big", "d": 0.1},
     ["instruments.x.simulator.max", "a number > 0", "'big'"]),
    ({"type": "mettler_sics", "max": 1, "d": 0.1, "eccentricity": {"middle": 1}},
     ["instruments.x.simulator.eccentricity", "front_left"]),
    ({"type": "mettler_sics", "max": 1, "d": 0.1, "linearity": [[1, 2, 3]]},
     ["instruments.x.simulator.linearity", "pairs"]),
    ({"type": "mettler_sics", "max": 1, "d": 0.1, "unit": "lb"},
     ["instruments.x.simulator.unit", "\"kg\""]),
    ({"type": "mettler_sics", "max": 1, "d": 0.1, "e": 0.01},
     ["instruments.x.simulator", "e (0.01) must be >= d"]),
    ({"type": "and_balance", "max": 1, "d": 0.1, "serial": "X"},
     ["instruments.x.simulator", "'serial'"]),
    ({"type": "vaisala_ptu", "transport": "pty", "port": 4001},
     ["instruments.x.simulator.port", "tcp"]),
    ({"type": "vaisala_ptu", "transport": "usb"},
     ["instruments.x.simulator.transport", "\"pty\""]),
    ({"type": "vaisala_ptu", "port": 70000}, ["instruments.x.simulator.port", "65535"]),
    ({"type": "vaisala_ptu", "humidity_pct": 150}, ["instruments.x.simulator", "humidity"]),
    ("mettler", ["instruments.x.simulator", "table"]),
])
def test_bad_specs_name_instrument_and_key(spec, words):
    with pytest.raises(ValueError) as info:
        bench.start_simulation({"x": spec}, control=None)
    message = str(info.value)
    for word in words:
        assert word in message, message


def test_serial_settings_accepted_and_ignored():
    spec = {"type": "vaisala_ptu", "transport": "pty", "baudrate": 4800, "bytesize": 7,
            "parity": "E", "stopbits": 1}
    with bench.start_simulation({"room": spec}, control=None) as s:
        assert s.resources["room"].startswith("/dev/")


def test_describe_options():
    options = bench.describe_options("mettler_sics")
    assert options["max"][0] == "required"
    assert options["stability_timeout"][0] == 10.0
    assert options["sir_rate"][0] == 10.0
    assert set(bench.SIMULATOR_TYPES) >= {"mettler_sics", "and_balance", "vaisala_ptu"}

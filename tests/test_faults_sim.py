"""The simulators' fault injection itself: the added modes on the wire (slow, refuse, exception,
queue_error), the room drifting out of a procedure's limits, bad fault actions refused, and
`benchctl sim --fault` / `benchctl fault` from another terminal."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from benchhelp import benchctl
from simhelp import LineClient, address, load

bench_mod = load("bench")
world_mod = load("world")


@pytest.fixture
def sim() -> Any:
    s = bench_mod.start_simulation({"balance": {"type": "mettler_sics", "max": 220.0,
                                                "d": 0.001, "settle_time": 0.0}},
                                   speed=100.0, seed=1)
    try:
        yield s
    finally:
        s.stop()


def _client(sim: Any) -> LineClient:
    c = LineClient(sim.resources["balance"], timeout=5.0)
    c.read_line()  # the power-up line sent on connect
    return c


def test_slow_reply_comes_whole_but_late(sim: Any) -> None:
    with _client(sim) as c:
        assert sim.world.apply({"type": "fault", "instrument": "balance", "mode": "slow",
                                "delay": 100.0})["ok"]  # 1 s real at speed 100
        c.send(b"SI\r\n")
        assert c.read_for(0.3) == b""  # nothing yet: not even part of the line
        assert re.fullmatch(rb"S S +-?\d+\.\d+ g\r\n", c.read_line(timeout=10.0))


def test_refuse_drops_the_connection_then_resets_new_ones(sim: Any) -> None:
    c = _client(sim)
    assert sim.world.apply({"type": "fault", "instrument": "balance", "mode": "refuse",
                            "count": 3})["ok"]
    c.send(b"SI\r\n")
    with pytest.raises((ConnectionError, OSError)):
        c.read_line(timeout=5.0)  # dropped instead of answered (1)
    c.close()
    for _ in range(2):  # (2), (3): reset at once, while connecting or at the first read
        where = address(sim.resources["balance"])
        with pytest.raises(ConnectionResetError), socket.create_connection(where, 5.0) as s:
            if s.recv(100) == b"":
                raise ConnectionResetError("closed")
    with _client(sim) as c2:  # plugged in again
        assert c2.query(b"SI").startswith(b"S ")


def test_exception_on_a_line_protocol_is_its_error_reply(sim: Any) -> None:
    with _client(sim) as c:
        sim.world.apply({"type": "fault", "instrument": "balance", "mode": "exception",
                         "code": 2})
        assert c.query(b"SI") == b"ES\r\n"


def test_queue_error_needs_an_instrument_with_an_error_queue(sim: Any) -> None:
    reply = sim.world.apply({"type": "fault", "instrument": "balance", "mode": "queue_error",
                             "code": -222})
    assert reply == {"ok": False, "error": "instrument 'balance' has no error queue"}


def test_queue_error_on_the_pace_is_read_from_its_queue() -> None:
    s = bench_mod.start_simulation({"controller": {"type": "druck_pace"}}, speed=100.0)
    try:
        assert s.world.apply({"type": "fault", "instrument": "controller",
                              "mode": "queue_error", "count": 2, "code": -222})["ok"]
        parts = s.resources["controller"].split("::")  # TCPIP::HOST::PORT::SOCKET
        with socket.create_connection((parts[1], int(parts[2])), timeout=5) as sock:
            f = sock.makefile("rwb")
            for expected in (b":SYST:ERR -222", b":SYST:ERR -222", b":SYST:ERR 0"):
                f.write(b":SYST:ERR?\n")
                f.flush()
                assert f.readline().startswith(expected)
    finally:
        s.stop()


@pytest.mark.parametrize("action, words", [
    ({"mode": "garbage", "count": -1}, "'count' must be a whole number"),
    ({"mode": "exception", "code": "2"}, "'code' must be a whole number"),
    ({"mode": "melt"}, "slow, refuse, exception, queue_error"),
    ({"mode": "slow", "delay": "later"}, "'delay' must be a number"),
])
def test_bad_fault_actions_are_refused_clearly(sim: Any, action: dict[str, Any],
                                               words: str) -> None:
    reply = sim.world.apply({"type": "fault", "instrument": "balance", **action})
    assert reply["ok"] is False and words in reply["error"], reply


def test_the_room_drifts_then_stops_where_it_is() -> None:
    clock = world_mod.ManualClock()
    world = world_mod.SimWorld(clock=clock, seed=2)
    world.environment.variation = 0.0
    assert world.apply({"type": "set_ambient", "temperature_c": 21.0,
                        "drift": {"temperature_c": 6.0, "humidity_pct": -10.0}})["ok"]
    clock.advance(1800.0)  # half an hour
    values = world.environment.true_values()
    assert values["temperature_c"] == pytest.approx(24.0)
    world.apply({"type": "set_ambient", "drift": {"temperature_c": 0.0}})
    clock.advance(3600.0)
    assert world.environment.true_values()["temperature_c"] == pytest.approx(24.0)
    assert world.environment.true_values()["humidity_pct"] == pytest.approx(45.0 - 15.0)
    bad = world.apply({"type": "set_ambient", "drift": {"colour": 1.0}})
    assert bad["ok"] is False and "drift" in bad["error"]


# -- from the command line -----------------------------------------------------------------------

BENCH = """
[bench]
name = "Fault bench"
[simulation]
control = "127.0.0.1:0"
[instruments.balance]
driver = "mettler_sics"
resource = "socket://127.0.0.1:0"
[instruments.balance.simulator]
type = "mettler_sics"
max = 220.0
d = 0.001
settle_time = 0.0
"""


def test_sim_with_faults_then_fault_from_another_terminal(tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH, encoding="utf-8")
    live = tmp_path / "live.toml"
    proc = subprocess.Popen([sys.executable, "-m", "benchctl.cli", "sim", "--bench", str(bench),
                             "--speed", "100", "--write-bench", str(live),
                             "--fault", "balance:error:2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("bench file") for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            lines.append(proc.stdout.readline())
        assert "fault on balance: error × 2" in "".join(lines)
        resource = re.search(r"balance\s+(socket://\S+)", "".join(lines))
        assert resource
        with LineClient(resource.group(1), timeout=5.0) as c:
            c.read_line()
            assert [c.query(b"SI"), c.query(b"SI")] == [b"ES\r\n", b"ES\r\n"]
            assert c.query(b"SI").startswith(b"S ")
            r = benchctl("fault", "balance", "busy", "--count", "1", "--bench", str(live))
            assert r.returncode == 0 and "fault on balance: busy × 1" in r.stdout, r.stderr
            assert c.query(b"SI") == b"S I\r\n"
            r = benchctl("fault", "ghost", "busy", "--bench", str(live))
            assert r.returncode == 2 and "no simulated instrument 'ghost'" in r.stderr
            r = benchctl("fault", "balance", "busy", "--control", "127.0.0.1:0")
            assert r.returncode == 2 and "port 0" in r.stderr and "Traceback" not in r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize("spec, words", [
    ("balance:melt", "unknown mode 'melt'"),
    ("ghost:garbage", "no simulated instrument 'ghost'"),
    ("balance", "expected NAME:MODE[:COUNT[:DELAY]]"),
    ("balance:garbage:many", "COUNT must be a whole number"),
])
def test_bad_fault_specs_on_the_command_line(spec: str, words: str, tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH, encoding="utf-8")
    r = benchctl("sim", "--bench", str(bench), "--duration", "0", "--fault", spec)
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr

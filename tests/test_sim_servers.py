"""The line servers: TCP and pty serving, timing, cancellation, unsolicited output, stop()."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
import serial
import simhelp
from simhelp import LineClient

servers = simhelp.load("servers")
world_mod = simhelp.load("world")


class Toy(servers.LineSession):
    """ECHO x → x; LATE → "late" after 1 simulated second; STREAM → "tick" every 0.1 s;
    SLOW → "slow" after 2 s (not interrupted except by RESET); BOOM → a handler error."""

    def respond(self, line):
        self.stream = None  # like MT-SICS SIR: any command ends the stream
        if line.startswith(b"ECHO "):
            yield 0.0, line[5:] + b"\r\n"
        elif line == b"LATE":
            yield 1.0, b"late\r\n"
        elif line == b"STREAM":
            self.stream = self._ticks
        elif line == b"SLOW":
            yield 2.0, b""
            yield 0.0, b"slow\r\n"
        elif line == b"RESET":
            self.stream = None
            yield 0.0, b"reset\r\n"
        elif line == b"BOOM":
            raise RuntimeError("handler bug")
        else:
            yield 0.0, b"?\r\n"

    def reset_line(self, line):
        return line == b"RESET"

    def on_connect(self):
        return b"hello\r\n"

    def power_up_line(self):
        return b"powered\r\n"

    def _ticks(self):
        while True:
            yield 0.0, b"tick\r\n"
            yield 0.1, b""


def toy_factory(speed=10.0, faults=None):
    clock = world_mod.SimClock(speed)
    return lambda: Toy(clock, faults)


@pytest.fixture
def server():
    s = servers.TcpLineServer(toy_factory(), name="toy")
    yield s
    s.stop()


def connect(server):
    c = LineClient(server.resource)
    assert c.read_line() == b"hello\r\n"
    return c


def test_split_lines_accepts_cr_lf_crlf():
    buf = bytearray(b"A\r\nB\rC\n\r\nD")
    assert servers.split_lines(buf) == [b"A", b"B", b"C"]
    assert buf == bytearray(b"D")


def test_ephemeral_port_and_resource(server):
    assert server.port > 0
    assert server.resource == f"socket://127.0.0.1:{server.port}"
    assert server.address == f"127.0.0.1:{server.port}"
    with connect(server) as c:
        assert c.query(b"ECHO hi") == b"hi\r\n"


def test_fixed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with servers.TcpLineServer(toy_factory(), port=port) as s:
        assert s.resource == f"socket://127.0.0.1:{port}"
        with connect(s) as c:
            assert c.query(b"ECHO x") == b"x\r\n"
        with pytest.raises(OSError):
            servers.TcpLineServer(toy_factory(), port=port)


def test_pyserial_socket_url(server):
    port = serial.serial_for_url(server.resource, timeout=1.0)
    try:
        time.sleep(0.05)
        port.reset_input_buffer()  # the greeting, if it was not already flushed on open
        port.write(b"ECHO via pyserial\r\n")
        assert port.readline() == b"via pyserial\r\n"
    finally:
        port.close()


def test_many_clients_at_once(server):
    errors = []

    def worker(i):
        try:
            with connect(server) as c:
                for j in range(20):
                    assert c.query(f"ECHO {i}-{j}".encode()) == f"{i}-{j}\r\n".encode()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []


def test_delays_are_simulated_seconds(server):
    with connect(server) as c:
        t0 = time.monotonic()
        assert c.query(b"LATE") == b"late\r\n"
        assert 0.08 <= time.monotonic() - t0 < 3.0  # 1 s simulated at speed 10


def test_stream_cancelled_by_any_line_and_queueing(server):
    with connect(server) as c:
        c.send(b"STREAM\r\n")
        assert c.read_line() == b"tick\r\n"
        assert c.read_line() == b"tick\r\n"
        c.send(b"ECHO stop\r\n")
        data = c.read_for(0.05)
        assert data.endswith(b"stop\r\n")
        assert c.read_for(0.05) == b""
        c.send(b"SLOW\r\nECHO after\r\n")  # queued behind SLOW, not cancelling it
        assert c.read_line() == b"slow\r\n"
        assert c.read_line() == b"after\r\n"
        c.send(b"SLOW\r\n")
        time.sleep(0.05)
        assert c.query(b"RESET") == b"reset\r\n"  # RESET cancels the pending reply
        assert c.read_for(0.3) == b""


def test_handler_error_keeps_connection(server):
    with connect(server) as c:
        c.send(b"BOOM\r\n")
        assert c.query(b"ECHO alive") == b"alive\r\n"


def test_unsolicited_push_and_power_on(server):
    with connect(server) as c:
        c.send(b"STREAM\r\n")
        c.read_line()
        server.broadcast_power_on()
        assert c.read_for(0.05).endswith(b"powered\r\n")
        assert c.read_for(0.05) == b""  # the stream was cancelled
        server.sessions[0].push(b"note\r\n")
        assert c.read_line() == b"note\r\n"


def test_faults_apply_generically():
    faults = world_mod.FaultInjector()
    with servers.TcpLineServer(toy_factory(faults=faults)) as s, connect(s) as c:
        faults.set("error", 1)
        assert c.query(b"ECHO a") == b"ES\r\n"
        faults.set("busy", 1)
        assert c.query(b"ECHO a") == b"a I\r\n"
        faults.set("garbage", 1)
        junk = c.query(b"ECHO a")
        assert junk.endswith(b"\r\n") and junk != b"a\r\n"
        faults.set("power_cycle", 1)
        assert c.query(b"ECHO a") == b"powered\r\n"
        assert c.query(b"ECHO ok") == b"ok\r\n"
        with pytest.raises(ValueError):
            faults.set("explode")


def test_stop_is_prompt_and_closes_clients():
    s = servers.TcpLineServer(toy_factory())
    clients = [connect(s) for _ in range(3)]
    clients[0].send(b"STREAM\r\n")
    clients[1].send(b"SLOW\r\n")
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 5.0  # stop() does not wait for slow or streaming clients
    for c in clients:
        with pytest.raises((ConnectionError, OSError)):
            for _ in range(1000):
                c.read_line(timeout=1.0)
        c.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=0.5)
    s.stop()  # idempotent


def test_stop_with_a_client_that_never_reads():
    clock = world_mod.SimClock(1e6)  # the stream floods as fast as it can
    s = servers.TcpLineServer(lambda: Toy(clock))
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"STREAM\r\n")
    time.sleep(0.2)
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 5.0
    sock.close()


def test_start_and_stop_many():
    # Only this test's threads count: other tests in the same process may still be closing.
    before = {t.ident for t in threading.enumerate()}
    for _ in range(30):
        s = servers.TcpLineServer(toy_factory())
        with connect(s) as c:
            assert c.query(b"ECHO 1") == b"1\r\n"
        s.stop()
        p = servers.PtyLineServer(toy_factory())
        p.stop()
    deadline = time.monotonic() + 10.0
    while True:
        leftovers = [t.name for t in threading.enumerate()
                     if t.name.startswith("sim-") and t.ident not in before]
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert leftovers == []


def test_pty_server_open_close_reopen():
    p = servers.PtyLineServer(toy_factory())
    try:
        assert os.path.exists(p.resource) and p.resource.startswith("/dev/")
        port = serial.serial_for_url(p.resource, baudrate=9600, timeout=1.0)
        port.write(b"ECHO one\r\n")
        assert port.readline() == b"one\r\n"
        port.close()
        port = serial.serial_for_url(p.resource, baudrate=19200, timeout=1.0)
        port.write(b"ECHO two\r")
        assert port.readline() == b"two\r\n"
        p.session.push(b"unprompted\r\n")
        assert port.readline() == b"unprompted\r\n"
        port.close()
    finally:
        p.stop()
    deadline = time.monotonic() + 1.0
    while os.path.exists(p.resource) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(p.resource)


def test_pty_disconnect_fault_is_silence():
    faults = world_mod.FaultInjector()
    p = servers.PtyLineServer(toy_factory(faults=faults))
    try:
        port = serial.serial_for_url(p.resource, timeout=0.2)
        faults.set("disconnect", 1)
        port.write(b"ECHO lost\r\n")
        assert port.readline() == b""
        port.timeout = 1.0
        port.write(b"ECHO kept\r\n")
        assert port.readline() == b"kept\r\n"
        port.close()
    finally:
        p.stop()

"""MT-SICS simulator over real TCP sockets and a real pty, byte for byte."""

from __future__ import annotations

import re
import time

import pytest
import serial
import simhelp
from simhelp import LineClient

bench = simhelp.load("bench")

SPEED = 100.0
WEIGHT = re.compile(rb"^S ([SD]) +(-?\d+\.\d+) g\r\n$")


def start(**options):
    spec = {"type": "mettler_sics", "transport": "tcp", "max": 200.0, "d": 0.01,
            "settle_time": 2.0}
    spec.update(options)
    return bench.start_simulation({"balance": spec}, speed=SPEED, seed=1, control=None)


@pytest.fixture
def sim():
    with start() as s:
        yield s


@pytest.fixture
def client(sim):
    with LineClient(sim.resources["balance"]) as c:
        assert c.read_line() == b'I4 A "B123456789"\r\n'
        yield c


def place(sim, value, position="centre", unit="g"):
    reply = sim.world.apply({"type": "place_load", "load": {"value": value, "unit": unit},
                             "position": position})
    assert reply["ok"], reply


def remove(sim):
    assert sim.world.apply({"type": "remove_load"})["ok"]


def test_resource_and_power_up_line(sim):
    assert re.fullmatch(r"socket://127\.0\.0\.1:\d+", sim.resources["balance"])
    with LineClient(sim.resources["balance"]) as c:
        assert c.read_line() == b'I4 A "B123456789"\r\n'
        assert c.read_for(0.05) == b""


def test_identification_replies(client):
    assert client.query(b"I1") == b'I1 A "01" "2.20" "2.20" "" ""\r\n'
    assert client.query(b"I2") == b'I2 A "SimBalance 200.00 g"\r\n'
    assert client.query(b"I3") == b'I3 A "1.00 benchctl-sim"\r\n'
    assert client.query(b"I4") == b'I4 A "B123456789"\r\n'


def test_options_change_identity():
    with start(serial="0123456789", model="XS204 Excellence", max=220.0, d=0.0001) as s, \
            LineClient(s.resources["balance"]) as c:
        assert c.read_line() == b'I4 A "0123456789"\r\n'
        assert c.query(b"I2") == b'I2 A "XS204 Excellence 220.0000 g"\r\n'
        assert c.query(b"S") == b"S S     0.0000 g\r\n"


def test_no_power_up_line_when_disabled():
    with start(powerup_on_connect=False) as s, LineClient(s.resources["balance"]) as c:
        assert c.read_for(0.05) == b""
        assert c.query(b"SI") == b"S S       0.00 g\r\n"


def test_stable_weight_exact_bytes(sim, client):
    assert client.query(b"S") == b"S S       0.00 g\r\n"
    place(sim, 100)
    assert client.query(b"S") == b"S S     100.00 g\r\n"
    place(sim, 23.456)
    assert client.query(b"S") == b"S S     123.46 g\r\n"  # 123.456 rounds half away


def test_si_is_dynamic_while_settling_and_s_waits():
    with start(settle_time=20.0, stability_timeout=60.0) as s, \
            LineClient(s.resources["balance"]) as c:
        c.read_line()
        place(s, 50)
        m = WEIGHT.match(c.query(b"SI"))
        assert m and m.group(1) == b"D"
        t0 = time.monotonic()
        assert c.query(b"S") == b"S S      50.00 g\r\n"
        elapsed_sim = (time.monotonic() - t0) * SPEED
        assert elapsed_sim > 10.0  # waited for the settle time (20 s from placing)
        assert c.query(b"SI") == b"S S      50.00 g\r\n"


def test_negative_weight_sign_against_digits(sim, client):
    place(sim, 12.34)
    assert client.query(b"T") == b"T S      12.34 g\r\n"
    remove(sim)
    assert client.query(b"S") == b"S S     -12.34 g\r\n"
    line = client.query(b"SI")
    assert line == b"S S     -12.34 g\r\n"
    assert len(line.split(b" ", 2)[2]) == 10 + len(b" g\r\n")


def test_overload_at_max_plus_9e():
    with start(max=200.0, d=0.01, e=0.1) as s, LineClient(s.resources["balance"]) as c:
        c.read_line()
        place(s, 200.9)
        assert c.query(b"S") == b"S S     200.90 g\r\n"
        place(s, 0.01)
        assert c.query(b"S") == b"S +\r\n"
        assert c.query(b"SI") == b"S +\r\n"
        assert c.query(b"Z") == b"Z +\r\n"
        assert c.query(b"T") == b"T +\r\n"


def test_underload(sim, client):
    place(sim, 1.0)
    assert client.query(b"Z") == b"Z A\r\n"
    remove(sim)
    assert client.query(b"S") == b"S -\r\n"
    assert client.query(b"SI") == b"S -\r\n"


def test_zero_in_and_out_of_range():
    with start(zero_offset=0.37) as s, LineClient(s.resources["balance"]) as c:
        c.read_line()
        assert c.query(b"S") == b"S S       0.37 g\r\n"
        assert c.query(b"Z") == b"Z A\r\n"
        assert c.query(b"S") == b"S S       0.00 g\r\n"
        place(s, 4.5)  # beyond +2 % of Max = 4 g
        assert c.query(b"Z") == b"Z +\r\n"
        assert c.query(b"ZI") == b"ZI +\r\n"
    with start(zero_offset=-4.2) as s, LineClient(s.resources["balance"]) as c:
        c.read_line()
        assert c.query(b"Z") == b"Z -\r\n"


def test_zero_immediately_while_dynamic():
    with start(settle_time=20.0) as s, LineClient(s.resources["balance"]) as c:
        c.read_line()
        place(s, 1.0)
        assert c.query(b"ZI") == b"ZI D\r\n"
        time.sleep(0.25)  # 25 s simulated: settled, a little above the dynamic zero
        assert c.query(b"ZI") == b"ZI S\r\n"
        assert c.query(b"SI") == b"S S       0.00 g\r\n"


def test_tare_commands(sim, client):
    place(sim, 50)
    assert client.query(b"T") == b"T S      50.00 g\r\n"
    assert client.query(b"S") == b"S S       0.00 g\r\n"
    assert client.query(b"TA") == b"TA A      50.00 g\r\n"
    assert client.query(b"TAC") == b"TAC A\r\n"
    assert client.query(b"S") == b"S S      50.00 g\r\n"
    assert client.query(b"TA 10.00 g") == b"TA A      10.00 g\r\n"
    assert client.query(b"S") == b"S S      40.00 g\r\n"
    assert client.query(b"TA 10.00 kg") == b"TA L\r\n"
    assert client.query(b"TA 999 g") == b"TA L\r\n"
    assert client.query(b"TI") == b"TI S      50.00 g\r\n"
    remove(sim)
    assert client.query(b"S") == b"S S     -50.00 g\r\n"
    assert client.query(b"T") == b"T S       0.00 g\r\n"  # the empty pan's gross is 0
    place(sim, 0.1)
    assert client.query(b"Z") == b"Z A\r\n"
    remove(sim)
    assert client.query(b"S") == b"S S      -0.10 g\r\n"
    assert client.query(b"T") == b"T -\r\n"  # negative gross cannot be tared


def test_display_and_error_replies(sim, client):
    assert client.query(b'D "HELLO"') == b"D A\r\n"
    assert sim.world.get("balance").message == "HELLO"
    assert client.query(b"D HELLO") == b"D L\r\n"
    assert client.query(b"DW") == b"DW A\r\n"
    assert sim.world.get("balance").message is None
    assert client.query(b"XYZ") == b"ES\r\n"
    assert client.query(b"si") == b"ES\r\n"
    assert client.query(b"S 5") == b"S L\r\n"
    assert client.query(b"S\xe9") == b"ET\r\n"
    assert client.query(b"S" * 300) == b"EL\r\n"


def test_terminators_cr_lf_crlf(client):
    client.send(b"I4\rI4\nI4\r\n")
    assert [client.read_line() for _ in range(3)] == [b'I4 A "B123456789"\r\n'] * 3


def test_stability_timeout_answers_s_i():
    with start(noise=0.05, stability_timeout=1.0) as s, LineClient(s.resources["balance"]) as c:
        c.read_line()
        t0 = time.monotonic()
        assert c.query(b"S") == b"S I\r\n"
        assert (time.monotonic() - t0) * SPEED >= 0.9
        assert c.query(b"Z") == b"Z I\r\n"
        assert c.query(b"T") == b"T I\r\n"
        assert WEIGHT.match(c.query(b"SI")).group(1) == b"D"


def test_s_i_while_loads_keep_coming():
    with start(settle_time=30.0, stability_timeout=5.0) as s, \
            LineClient(s.resources["balance"]) as c:
        c.read_line()
        place(s, 10.0)
        assert c.query(b"S") == b"S I\r\n"


def test_sir_streams_and_any_command_cancels(sim, client):
    place(sim, 100)
    client.query(b"S")
    client.send(b"SIR\r\n")
    lines = [client.read_line() for _ in range(5)]
    assert set(lines) == {b"S S     100.00 g\r\n"}
    client.send(b"TAC\r\n")
    tail = client.read_for(0.15)
    assert tail.endswith(b"TAC A\r\n")
    assert client.read_for(0.1) == b""


def test_sir_rate():
    with start(sir_rate=5.0) as s, LineClient(s.resources["balance"]) as c:
        c.read_line()
        t0 = s.world.clock.now()
        c.send(b"SIR\r\n")
        data = c.read_for(0.3)  # about 30 s simulated at 5 lines per second
        elapsed = s.world.clock.now() - t0
        c.send(b"@\r\n")
        count = data.count(b"\r\n")
        assert 0.4 * elapsed * 5 <= count <= elapsed * 5 + 2


def test_reset_cancels_sir_and_pending_s_and_clears_tare():
    with start(noise=0.05, stability_timeout=100.0) as s, LineClient(s.resources["balance"]) as c:
        c.read_line()
        s.world.get("balance").set_preset_tare(5.0)
        c.send(b"S\r\n")
        time.sleep(0.05)
        assert c.query(b"@") == b'I4 A "B123456789"\r\n'  # S abandoned, no S I first
        assert s.world.get("balance").tare == 0.0
        c.send(b"SIR\r\n")
        c.read_line()
        c.send(b"@\r\n")
        assert c.read_for(0.1).endswith(b'I4 A "B123456789"\r\n')
        assert c.read_for(0.05) == b""


def test_commands_queue_behind_a_pending_s():
    with start(settle_time=10.0, stability_timeout=60.0) as s, \
            LineClient(s.resources["balance"]) as c:
        c.read_line()
        place(s, 20)
        c.send(b"S\r\nI4\r\n")
        assert c.read_line() == b"S S      20.00 g\r\n"
        assert c.read_line() == b'I4 A "B123456789"\r\n'


def test_eccentricity_and_linearity_over_the_wire():
    ecc = {"front_left": 0.04, "back_right": -0.03}
    lin = [[100.0, 0.02], [200.0, -0.01]]
    with start(eccentricity=ecc, ecc_load=60.0, linearity=lin) as s, \
            LineClient(s.resources["balance"]) as c:
        c.read_line()
        balance = s.world.get("balance")
        for load, position in [(60.0, "front_left"), (60.0, "back_right"), (150.0, "centre")]:
            remove(s)
            place(s, load, position)
            m = WEIGHT.match(c.query(b"S"))
            assert m and m.group(1) == b"S"
            error = float(m.group(2)) - load
            assert abs(error - balance.injected_error(load, position)) <= 0.005 + 1e-9


def test_drift_shows_in_the_indication():
    with start(drift_per_hour=3600.0 * 0.01) as s, LineClient(s.resources["balance"]) as c:
        c.read_line()  # 0.01 g per simulated second, 1 g per real second at speed 100
        clock = s.world.clock
        before = clock.now()
        first = float(WEIGHT.match(c.query(b"SI")).group(2))
        after_first = clock.now()
        time.sleep(0.1)  # about 10 s simulated
        before_second = clock.now()
        second = float(WEIGHT.match(c.query(b"SI")).group(2))
        after = clock.now()
        assert (before_second - after_first) * 0.01 - 0.011 <= second - first
        assert second - first <= (after - before) * 0.01 + 0.011
        assert second - first >= 0.05


def test_two_clients_share_the_balance(sim):
    with LineClient(sim.resources["balance"]) as a, LineClient(sim.resources["balance"]) as b:
        a.read_line()
        b.read_line()
        place(sim, 42)
        assert a.query(b"S") == b"S S      42.00 g\r\n"
        assert b.query(b"S") == b"S S      42.00 g\r\n"
        a.send(b"SIR\r\n")
        assert b.query(b"I4") == b'I4 A "B123456789"\r\n'  # b unaffected by a's stream
        assert a.read_line() == b"S S      42.00 g\r\n"


def test_power_cycle_action_sends_power_up_line(sim, client):
    place(sim, 10)
    client.query(b"T")
    client.send(b"SIR\r\n")
    client.read_line()
    assert sim.world.apply({"type": "power_cycle", "instrument": "balance"})["ok"]
    assert client.read_for(0.1).endswith(b'I4 A "B123456789"\r\n')
    assert client.read_for(0.05) == b""  # SIR stopped by the reboot
    assert sim.world.get("balance").tare == 0.0


def test_pty_transport():
    spec = {"type": "mettler_sics", "transport": "pty", "max": 200.0, "d": 0.01}
    with bench.start_simulation({"balance": spec}, speed=SPEED, control=None) as s:
        path = s.resources["balance"]
        assert path.startswith("/dev/")
        # The power-up line went out when the simulator started, before the port was opened
        # (pyserial flushes the input on open), as with a balance switched on first.
        port = serial.serial_for_url(path, baudrate=9600, timeout=1.0)
        try:
            s.world.apply({"type": "place_load", "load": {"value": 7.5, "unit": "g"}})
            port.write(b"S\r\n")
            assert port.readline() == b"S S       7.50 g\r\n"
            s.world.apply({"type": "power_cycle", "instrument": "balance"})
            assert port.readline() == b'I4 A "B123456789"\r\n'
            port.close()
            port = serial.serial_for_url(path, timeout=1.0)  # reopen: still served
            port.write(b"SI\r\n")
            assert port.readline() == b"S S       0.00 g\r\n"  # power-up zeroed 7.5 g
        finally:
            port.close()


# -- faults ---------------------------------------------------------------------------------

def fault(sim, mode, count=1, **extra):
    reply = sim.world.apply({"type": "fault", "instrument": "balance", "mode": mode,
                             "count": count, **extra})
    assert reply["ok"], reply


def test_fault_silence_then_normal(sim, client):
    fault(sim, "silence", 2)
    client.send(b"SI\r\n")
    client.send(b"SI\r\n")
    assert client.read_for(0.1) == b""
    assert client.query(b"SI") == b"S S       0.00 g\r\n"


def test_fault_garbage(sim, client):
    fault(sim, "garbage")
    line = client.query(b"SI")
    assert line.endswith(b"\r\n") and not line.startswith(b"S ")
    assert any(b >= 0x80 or b < 0x20 for b in line[:-2])
    assert client.query(b"SI") == b"S S       0.00 g\r\n"


def test_fault_truncated(sim, client):
    fault(sim, "truncated")
    client.send(b"SI\r\n")
    assert client.read_for(0.1) == b"S S     "  # 8 of the 16 characters, no CR LF
    assert client.query(b"SI") == b"S S       0.00 g\r\n"


def test_fault_error_and_busy(sim, client):
    fault(sim, "error")
    assert client.query(b"SI") == b"ES\r\n"
    fault(sim, "busy")
    assert client.query(b"S") == b"S I\r\n"
    fault(sim, "busy")
    assert client.query(b"Z") == b"Z I\r\n"


def test_fault_stall(sim, client):
    fault(sim, "stall", delay=30.0)  # 0.3 s real
    client.send(b"SI\r\n")
    assert client.read_for(0.1) == b"S S     "
    assert client.read_line(timeout=1.0) == b"  0.00 g\r\n"


def test_fault_wrong_unit(sim, client):
    place(sim, 100)
    client.query(b"S")
    fault(sim, "wrong_unit")
    assert client.query(b"S") == b"S S    0.10000 kg\r\n"
    assert client.query(b"S") == b"S S     100.00 g\r\n"


def test_fault_disconnect(sim, client):
    fault(sim, "disconnect")
    client.send(b"SI\r\n")
    with pytest.raises(ConnectionError):
        client.read_line(timeout=1.0)
    with LineClient(sim.resources["balance"]) as again:
        assert again.read_line() == b'I4 A "B123456789"\r\n'
        assert again.query(b"SI") == b"S S       0.00 g\r\n"


def test_fault_power_cycle(sim, client):
    sim.world.get("balance").set_preset_tare(3.0)
    fault(sim, "power_cycle")
    assert client.query(b"SI") == b'I4 A "B123456789"\r\n'
    assert client.read_for(0.05) == b""
    assert sim.world.get("balance").tare == 0.0


def test_fault_in_sir_stream(sim, client):
    client.send(b"SIR\r\n")
    client.read_line()
    fault(sim, "error", 3)
    lines = [client.read_line() for _ in range(20)]
    client.send(b"@\r\n")
    assert lines.count(b"ES\r\n") == 3

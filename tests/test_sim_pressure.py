"""The pressure simulators: manifold physics on a manual clock, the PACE and DMM protocols
line by line, the Modbus gauge through plain pymodbus clients (TCP and RTU), the PACE through
plain pyvisa, and `benchctl sim` serving them all."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchhelp import ROOT, benchctl
from simhelp import load

world_mod = load("world")
manifold_mod = load("manifold")
pace_mod = load("pace_scpi")
dmm_mod = load("dmm_transmitter")
gauge_mod = load("modbus_gauge")
bench_mod = load("bench")

KPA = 1000.0  # Pa


@pytest.fixture
def clock() -> Any:
    return world_mod.ManualClock()


@pytest.fixture
def manifold(clock: Any) -> Any:
    return manifold_mod.Manifold(clock)


# -- manifold ------------------------------------------------------------------------------------


def test_controlled_slew_then_settle_without_overshoot(clock: Any, manifold: Any) -> None:
    manifold.control(500 * KPA, slew=100 * KPA, overshoot=0.0, tau=1.0)
    assert manifold.direction() == 1
    clock.advance(2.5)
    assert manifold.pressure() == pytest.approx(250 * KPA)
    clock.advance(2.5)
    assert manifold.pressure() == pytest.approx(500 * KPA)
    # Within ±0.2 kPa from 0.002 s before the end of the ramp, for good.
    assert manifold.settled_since(0.2 * KPA) == pytest.approx(5.0 - 0.002)


def test_overshoot_swings_past_the_setpoint_and_decays(clock: Any, manifold: Any) -> None:
    manifold.control(100 * KPA, slew=100 * KPA, overshoot=0.05, tau=1.0)  # 5 kPa overshoot
    clock.advance(1.0)
    samples = []
    for _ in range(400):
        clock.advance(0.01)
        samples.append(manifold.pressure() - 100 * KPA)
    assert max(samples) == pytest.approx(5 * KPA, rel=0.01)
    since = manifold.settled_since(0.1 * KPA)
    assert since == pytest.approx(1.0 + math.log(5 / 0.4452 / 0.1), rel=1e-6)
    clock.advance(since - clock.now())
    for _ in range(200):  # never out of the band again
        clock.advance(0.05)
        assert abs(manifold.pressure() - 100 * KPA) <= 0.1 * KPA


def test_hunting_never_settles(manifold: Any) -> None:
    manifold.hunting = 0.5 * KPA
    manifold.control(100 * KPA, slew=100 * KPA)
    assert manifold.settled_since(0.2 * KPA) is None
    assert manifold.settled_since(1.0 * KPA) is not None


def test_hold_leak_vent_and_hand_pump(clock: Any, manifold: Any) -> None:
    manifold.pump_time = 4.0
    manifold.pump_to(300 * KPA)
    clock.advance(2.0)
    assert manifold.pressure() == pytest.approx(150 * KPA)
    clock.advance(10.0)
    assert manifold.pressure() == pytest.approx(300 * KPA)
    manifold.leak_rate = 1 * KPA
    clock.advance(10.0)
    assert manifold.pressure() == pytest.approx(290 * KPA)
    manifold.vent()
    assert manifold.direction() == -1
    clock.advance(2.0)  # vent_tau 2 s
    assert manifold.pressure() == pytest.approx(290 * KPA * math.exp(-1.0), rel=1e-6)
    clock.advance(60.0)
    assert manifold.vented(50.0)


def test_gauge_model_zero_span_hysteresis_and_resolution(clock: Any, manifold: Any) -> None:
    gauge = manifold_mod.GaugeModel(manifold, np.random.default_rng(1), unit="kPa",
                                    zero_offset=0.3, span_error_pct=0.1, hysteresis=0.4,
                                    resolution=0.1)
    manifold.control(500 * KPA, slew=1000 * KPA)
    clock.advance(10)
    assert gauge.indicate() == pytest.approx(500 + 0.3 + 0.5 - 0.2)  # rising
    manifold.control(1000 * KPA, slew=1000 * KPA)
    clock.advance(10)
    manifold.control(500 * KPA, slew=1000 * KPA)
    clock.advance(10)
    assert gauge.indicate() == pytest.approx(500 + 0.3 + 0.5 + 0.2)  # falling
    assert gauge.injected_error(500, -1) == pytest.approx(1.0)
    bar = manifold_mod.GaugeModel(manifold, np.random.default_rng(1), unit="bar",
                                  resolution=0.001)
    assert bar.indicate() == 5.0
    assert str(bar.round(1.23456)) == "1.235"


# -- the PACE protocol ---------------------------------------------------------------------------


@pytest.fixture
def pace(clock: Any, manifold: Any) -> Any:
    controller = pace_mod.SimPace(manifold, clock, np.random.default_rng(0), full_scale=2000.0,
                                  slew=100.0, overshoot_pct=0.0, inl_band_pct=0.01,
                                  inl_time=5.0, decimals=3)
    return pace_mod.PaceScpiSession(controller, clock)


def ask(session: Any, line: str) -> list[str]:
    return [data.decode() for _, data in session.respond(line.encode()) if data]


def test_pace_replies_echo_their_header(pace: Any) -> None:
    assert ask(pace, "*IDN?") == ["*IDN GE Druck,Pace5000 User Interface,58784,01.05.04\n"]
    assert ask(pace, ":UNIT:PRES?") == [":UNIT:PRES KPA\n"]
    assert ask(pace, ":SENS:PRES?") == [":SENS:PRES 0.000\n"]
    assert ask(pace, ":SOUR:PRES 500") == []
    assert ask(pace, ":SOUR:PRES?") == [":SOUR:PRES:LEV:IMM:AMPL 500.0000000\n"]
    assert ask(pace, ":sense:pressure:inlimits?") == [":SENS:PRES:INL 0.000, 0\n"]
    assert ask(pace, ':SENS:PRES:RANG?') == [':SENS:PRES:RANG "2.00MPag"\n']
    assert ask(pace, ":INST:LIM?") == [":INST:LIM 2000.0000000\n"]
    assert ask(pace, ":OUTP:STAT?") == [":OUTP:STAT 0\n"]
    assert ask(pace, ":SYST:ERR?") == [":SYST:ERR 0, No error\n"]


def test_pace_control_in_limits_after_the_dwell(pace: Any, clock: Any) -> None:
    ask(pace, ":SOUR:PRES 500;:OUTP:STAT 1")
    assert ask(pace, ":OUTP:STAT?") == [":OUTP:STAT 1\n"]
    clock.advance(4.0)
    assert ask(pace, ":SENS:PRES:INL?") == [":SENS:PRES:INL 400.000, 0\n"]
    clock.advance(1.0 + 4.9)  # at the setpoint since 5.0 s (band ±0.2 kPa: since 4.998 s)
    assert ask(pace, ":SENS:PRES:INL?") == [":SENS:PRES:INL 500.000, 0\n"]
    clock.advance(0.1)
    assert ask(pace, ":SENS:PRES:INL?") == [":SENS:PRES:INL 500.000, 1\n"]
    ask(pace, ":UNIT:PRES BAR")
    assert ask(pace, ":SENS:PRES?") == [":SENS:PRES 5.000\n"]
    assert ask(pace, ":SOUR:PRES?") == [":SOUR:PRES:LEV:IMM:AMPL 5.0000000\n"]


def test_pace_errors_go_to_the_queue(pace: Any) -> None:
    ask(pace, ":SOUR:PRES 2500")  # above full scale
    ask(pace, ":SOUR:PRES fast")
    ask(pace, ":FOO:BAR 1")
    ask(pace, ":UNIT:PRES FURLONG")
    assert ask(pace, ":SYST:ERR?") == [":SYST:ERR -222, Data out of range\n"]
    assert ask(pace, ":SYST:ERR?") == [":SYST:ERR -102, Syntax error\n"]
    assert ask(pace, ":SYST:ERR?") == [":SYST:ERR -113, Undefined header\n"]
    assert ask(pace, ":SYST:ERR?") == [":SYST:ERR -222, Data out of range\n"]
    assert ask(pace, ":SYST:ERR?") == [":SYST:ERR 0, No error\n"]
    assert ask(pace, ":SOUR:PRES?") == [":SOUR:PRES:LEV:IMM:AMPL 0.0000000\n"]  # unchanged
    for _ in range(7):
        ask(pace, ":NOPE")
    replies = [ask(pace, ":SYST:ERR?")[0] for _ in range(6)]
    assert replies[3:] == [":SYST:ERR -113, Undefined header\n",
                           ":SYST:ERR -350, Queue overflow\n", ":SYST:ERR 0, No error\n"]


def test_pace_hunting_controller_never_in_limits_and_vent(pace: Any, clock: Any,
                                                          manifold: Any) -> None:
    manifold.hunting = 1.0 * KPA
    ask(pace, ":SOUR:PRES 100;:OUTP:STAT 1")
    for _ in range(20):
        clock.advance(30.0)
        assert ask(pace, ":SENS:PRES:INL?")[0].endswith(", 0\n")
    ask(pace, ":SOUR:PRES:LEV:IMM:AMPL:VENT 1")
    assert ask(pace, ":OUTP:STAT?") == [":OUTP:STAT 0\n"]
    assert ask(pace, ":SOUR:PRES:LEV:IMM:AMPL:VENT?") == [":SOUR:PRES:LEV:IMM:AMPL:VENT 1\n"]
    clock.advance(60.0)
    assert ask(pace, ":SOUR:PRES:LEV:IMM:AMPL:VENT?") == [":SOUR:PRES:LEV:IMM:AMPL:VENT 2\n"]


def test_canonical_headers() -> None:
    assert pace_mod.canonical_header(":SOURce:PRESsure:LEVel:IMMediate:AMPLitude?") == \
        ":SOUR:PRES?"
    assert pace_mod.canonical_header(":sour:pres:lev:imm:ampl:vent") == ":SOUR:PRES:VENT"
    assert pace_mod.canonical_header("*idn?") == "*IDN?"


# -- the DMM and its transmitter -----------------------------------------------------------------


def test_dmm_reads_the_loop_current_of_the_transmitter(clock: Any, manifold: Any) -> None:
    gauge = manifold_mod.GaugeModel(manifold, np.random.default_rng(0), unit="kPa",
                                    zero_offset=2.0)
    dmm = dmm_mod.SimTransmitterDmm(gauge, np.random.default_rng(0), range_low=0.0,
                                    range_high=1000.0)
    session = dmm_mod.DmmSession(dmm, clock)
    assert ask(session, "*IDN?")[0].startswith("Keysight Technologies,34465A,")
    assert ask(session, "CONF?") == ['"VOLT +1.000000E+01,+3.000000E-05"\n']
    ask(session, "CONF:CURR:DC 0.1;SENS:CURR:DC:NPLC 10")
    assert ask(session, "CONF?") == ['"CURR +1.000000E-01,+3.000000E-07"\n']
    assert ask(session, "CURR:DC:NPLC?") == ["+1.00000000E+01\n"]
    manifold.control(500 * KPA, slew=1e9)
    clock.advance(1.0)
    items = list(session.respond(b"READ?"))
    assert items[0] == (0.2, b"")  # the integration time passes first
    assert items[1][1] == b"+1.20320000E-02\n"  # 4 + 16 × 502/1000 mA
    ask(session, "SENS:CURR:DC:NPLC 1000")
    ask(session, "BOGUS")
    assert ask(session, "SYST:ERR?") == ['-222,"Data out of range"\n']
    assert ask(session, "SYST:ERR?") == ['-113,"Undefined header"\n']
    assert ask(session, "SYST:ERR?") == ['+0,"No error"\n']
    manifold.control(1500 * KPA, slew=1e9)
    clock.advance(1.0)
    assert dmm.loop_current_ma() == 20.5  # saturated (NAMUR NE 43)
    dmm.fault_current = 3.6
    assert dmm.loop_current_ma() == 3.6


# -- the Modbus gauge through plain pymodbus clients ----------------------------------------------


@pytest.fixture
def gauge_sim() -> Iterator[Any]:
    sim = bench_mod.start_simulation({
        "controller": {"type": "druck_pace", "noise": 0.0},
        "tcp": {"type": "modbus_pressure_gauge", "transport": "tcp", "unit": "kPa",
                "zero_offset": 0.5, "resolution": 0.1, "serial": 87654321},
        "rtu": {"type": "modbus_pressure_gauge", "transport": "rtu", "unit": "bar",
                "word_order": "little", "device_id": 7, "resolution": 0.001},
    }, speed=100.0, seed=2, control=None)
    try:
        yield sim
    finally:
        sim.stop()


def test_gauge_over_modbus_tcp_with_pymodbus(gauge_sim: Any) -> None:
    from pymodbus.client import ModbusTcpClient

    resource = gauge_sim.resources["tcp"]
    assert resource.startswith("modbus-tcp://127.0.0.1:") and resource.endswith("?device_id=1")
    port = int(resource.split(":")[2].split("?")[0])
    manifold = manifold_mod.manifold_for(gauge_sim.world)
    manifold.pump_time = 0.01
    manifold.pump_to(250 * KPA)
    time.sleep(0.05)
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    try:
        assert client.connect()
        regs = client.read_holding_registers(0x0100, count=2, device_id=1).registers
        value = client.convert_from_registers(regs, client.DATATYPE.FLOAT32)
        assert value == pytest.approx(250.5, abs=1e-4)
        serial = client.read_holding_registers(0x0202, count=2, device_id=1).registers
        assert (serial[0] << 16) | serial[1] == 87654321
        temperature = client.read_input_registers(0x0102, count=2, device_id=1).registers
        assert 10 < client.convert_from_registers(temperature, client.DATATYPE.FLOAT32) < 40
        missing = client.read_holding_registers(0x0300, count=1, device_id=1)
        assert missing.isError() and missing.exception_code == 2
        refused = client.write_registers(0x0100, [1, 2], device_id=1)
        assert refused.isError() and refused.exception_code == 1
    finally:
        client.close()


def test_gauge_over_modbus_rtu_with_pymodbus(gauge_sim: Any) -> None:
    from pymodbus.client import ModbusSerialClient
    from pymodbus.exceptions import ModbusIOException

    resource = gauge_sim.resources["rtu"]
    assert resource.startswith("modbus-rtu://socket://127.0.0.1:")
    url = resource[len("modbus-rtu://"):].split("?")[0]
    client = ModbusSerialClient(url, baudrate=115200, timeout=0.3, retries=0)
    try:
        assert client.connect()
        regs = client.read_holding_registers(0x0100, count=2, device_id=7).registers
        value = client.convert_from_registers(regs, client.DATATYPE.FLOAT32,
                                              word_order="little")
        assert value == pytest.approx(0.0, abs=1e-6)
        with pytest.raises(ModbusIOException):  # another slave's address: no answer
            client.read_holding_registers(0x0100, count=2, device_id=8)
    finally:
        client.close()


def test_pace_simulator_through_pyvisa(gauge_sim: Any) -> None:
    from benchctl.transport.visa import resource_manager

    resource = gauge_sim.resources["controller"]
    assert resource.startswith("TCPIP::127.0.0.1::") and resource.endswith("::SOCKET")
    inst: Any = resource_manager().open_resource(resource, read_termination="\n",
                                                 write_termination="\n", timeout=2000)
    try:
        assert inst.query("*IDN?").startswith("*IDN GE Druck,Pace5000")
        inst.write(":UNIT:PRES BAR")
        assert inst.query(":UNIT:PRES?") == ":UNIT:PRES BAR"
        assert inst.query(":SYST:ERR?") == ":SYST:ERR 0, No error"
    finally:
        inst.close()


def test_operator_actions_on_the_manifold(gauge_sim: Any) -> None:
    world = gauge_sim.world
    reply = world.apply({"type": "set_pressure", "pressure": {"value": 3, "unit": "bar"}})
    assert reply["ok"], reply
    time.sleep(0.1)  # 5 simulated seconds of hand pumping at speed 100
    assert manifold_mod.manifold_for(world).pressure() == pytest.approx(300 * KPA)
    dial = world.apply({"type": "read", "instrument": "dial", "unit": "kgf/cm2",
                        "resolution": 0.1})
    assert dial == {"ok": True, "instrument": "dial", "value": 3.1, "unit": "kgf/cm2",
                    "stable": True, "text": "3.1"}
    assert world.apply({"type": "set_manifold", "hunting": {"value": 2, "unit": "kPa"}})["ok"]
    bad = world.apply({"type": "set_pressure", "pressure": {"value": 3, "unit": "kg"}})
    assert not bad["ok"] and "not a pressure unit" in bad["error"]


def test_simulator_types_check_their_settings() -> None:
    with pytest.raises(ValueError, match=r"transport: expected \"tcp\" or \"rtu\""):
        bench_mod.start_simulation({"g": {"type": "modbus_pressure_gauge",
                                          "transport": "pty"}}, control=None)
    with pytest.raises(ValueError, match="unit: expected one of"):
        bench_mod.start_simulation({"g": {"type": "modbus_pressure_gauge", "unit": "furlong"}},
                                   control=None)
    with pytest.raises(ValueError, match="unknown key 'max'"):
        bench_mod.start_simulation({"c": {"type": "druck_pace", "max": 2.0}}, control=None)


# -- `benchctl sim` and `benchctl read` ----------------------------------------------------------


def test_benchctl_sim_serves_the_pressure_bench(tmp_path: Path) -> None:
    demo = ROOT / "src/benchctl/demo_data"
    for name in ("demo-pressure-bench.toml", "demo-pace-reference.toml"):
        (tmp_path / name).write_text((demo / name).read_text(encoding="utf-8"),
                                     encoding="utf-8")
    live = tmp_path / "live.toml"
    proc = subprocess.Popen([sys.executable, "-m", "benchctl.cli", "sim", "--bench",
                             str(tmp_path / "demo-pressure-bench.toml"), "--speed", "50",
                             "--write-bench", str(live)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout
        lines: list[str] = []
        while not any(line.startswith("bench file") for line in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr and proc.stderr.read()
            lines.append(line)
        text = "".join(lines)
        assert "TCPIP::127.0.0.1::" in text and "modbus-tcp://127.0.0.1:" in text
        gauge = benchctl("read", "gauge", "--bench", str(live), "--json", check=True)
        obj = json.loads(gauge.stdout)
        # zero offset +0.002 bar, rising: −hysteresis/2 = −0.0015 bar, noise, 0.001 bar digits
        assert obj["unit"] == "bar" and obj["value"] == pytest.approx(0.0005, abs=0.0011)
        assert len(obj["raw"]) == 4  # the two registers' bytes
        pace = benchctl("read", "controller", "--bench", str(live), "--json", check=True)
        assert json.loads(pace.stdout)["raw"].startswith(":SENS:PRES ")
    finally:
        proc.terminate()
        proc.wait(10)

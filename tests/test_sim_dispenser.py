"""Simulated dispenser, proving measures and Coriolis meter: physics on a manual clock, the
ASCII protocol, the register map, and the operator actions."""

from __future__ import annotations

import struct
import threading
from typing import Any

import pytest
import simhelp
from simhelp import LineClient

bench = simhelp.load("bench")
world_mod = simhelp.load("world")
disp = simhelp.load("dispenser")
cor = simhelp.load("coriolis")
ModbusReply = simhelp.load("modbus_server").ModbusReply


def make(**options: Any) -> tuple[Any, Any, Any]:
    """A world on a manual clock with a dispenser built as bench.py would."""
    world = world_mod.SimWorld(clock=world_mod.ManualClock(), seed=1)
    opts = {k: o.default for k, o in disp.DISPENSER_OPTIONS.items()}
    opts.update(options)
    dispenser, factory = disp._build(world, "dispenser", opts)
    world.add("dispenser", dispenser)
    return world, dispenser, factory


def answer(session: Any, line: bytes) -> bytes:
    return b"".join(data for _, data in session.handle(line) if data)


# -- physics ------------------------------------------------------------------------------------


def test_flat_error_curve_is_the_delivery_error() -> None:
    _world, d, _ = make(ramp_time=0.0, slowdown_volume=0.0, error_curve=[(0.0, 0.12)])
    record = d.deliver(20.0, 40.0)
    assert record.display == pytest.approx(20.0, abs=1e-12)  # stops exactly at the preset
    assert record.error_pct == pytest.approx(0.12, abs=1e-9)
    assert record.true_volume == pytest.approx(20.0 / 1.0012, rel=1e-12)
    assert record.duration == pytest.approx(record.true_volume / 40.0 * 60.0, rel=1e-9)
    assert d.status() == "IDLE" and d.history == [record]


def test_error_follows_the_curve_against_flow() -> None:
    curve = [(5.0, -0.20), (40.0, 0.12)]
    _world, d, _ = make(ramp_time=0.0, slowdown_volume=0.0, error_curve=curve)
    assert d.curve(5.0) == -0.20 and d.curve(40.0) == 0.12
    assert d.curve(22.5) == pytest.approx(-0.04)  # linear in between
    assert d.curve(1.0) == -0.20 and d.curve(60.0) == 0.12  # flat beyond the ends
    assert d.deliver(10.0, 5.0).error_pct == pytest.approx(-0.20, abs=1e-9)
    assert d.deliver(10.0, 40.0).error_pct == pytest.approx(0.12, abs=1e-9)


def test_flow_profile_ramp_steady_slowdown_and_preset() -> None:
    world, d, _ = make(ramp_time=2.0, slowdown_volume=0.5, slowdown_flow=5.0, max_flow=45.0)
    clock = world.clock
    assert d.authorise(20.0) is None and d.status() == "AUTHORISED"
    d.lift_nozzle()
    d.open_trigger(60.0)  # more than the pump gives: capped at max_flow
    clock.advance(1.0)
    assert d.status() == "FUELLING"
    assert d.flow_now() == pytest.approx(45.0 * 0.975 / 2, rel=1e-9)  # mid-step of the ramp
    clock.advance(9.0)
    assert d.flow_now() == pytest.approx(45.0)
    clock.advance(20.0)  # past 19.5 L: the slow-down valve
    assert 19.5 <= d.delivery()["volume"] < 20.0
    assert d.flow_now() == pytest.approx(5.0)
    clock.advance(60.0)
    assert d.status() == "COMPLETED"
    assert d.delivery() == {"volume": 20.0, "amount": 469000.0, "unit_price": 23450.0,
                            "flow": 0.0}
    d.hang_up()
    assert d.status() == "IDLE"


def test_states_calling_stop_suspend_and_standalone() -> None:
    world, d, _ = make(standalone=False)
    d.lift_nozzle()
    assert d.status() == "CALLING"
    with pytest.raises(world_mod.ActionError, match="does not deliver"):
        d.open_trigger(40.0)
    assert d.authorise(5.0) is None
    d.open_trigger(40.0)
    world.clock.advance(2.0)
    d.stop()
    assert d.status() == "SUSPENDED"
    assert d.authorise(5.0) == "SUSPENDED"  # refused while a transaction runs
    d.hang_up()
    assert d.status() == "IDLE"
    # In standalone mode lifting the nozzle with a keypad preset authorises.
    _world2, d2, _ = make(standalone=True)
    d2.lift_nozzle(preset=2.0)
    assert d2.status() == "AUTHORISED"


def test_hang_up_early_and_price_rounding() -> None:
    _world, d, _ = make(unit_price=23450.0, ramp_time=0.0)
    d.schedule_hang_up(8.0)
    record = d.deliver(20.0, 40.0)
    assert record.hung_up_early and record.display == pytest.approx(8.0)
    assert d.status() == "IDLE"
    _world2, d2, _ = make(unit_price=23456.0, ramp_time=0.0, slowdown_volume=0.0)
    d2.deliver(1.37, 40.0)
    # 1.37 L × 23 456 đ/L = 32 134.72 đ -> 32 135 (the price from the shown volume)
    assert d2.delivery()["amount"] == 32135.0


def test_proving_measure_neck_reading() -> None:
    world, _d, _ = make(fuel_temperature=28.0, measure_warming=0.4, measure_volume=20.004,
                       measure_gamma=5.2e-5, beta=1.2e-3, ramp_time=0.0, slowdown_volume=0.0,
                       error_curve=[(0.0, 0.1)])
    reply = world.apply({"type": "deliver", "volume": {"value": 20, "unit": "L"},
                         "flow": {"value": 40, "unit": "L/min"}, "into": "measure"})
    assert reply["ok"], reply
    true = 20.0 / 1.001
    in_measure = true * (1 + 1.2e-3 * 0.4)
    exact = (in_measure / (1 + 5.2e-5 * 8.4) - 20.004) * 1000
    m = world.get("measure")
    assert m.scale_value() == pytest.approx(exact, rel=1e-9)
    neck = world.apply({"type": "read", "instrument": "measure", "quantity": "neck_scale"})
    assert neck["value"] == 5 * round(exact / 5) and neck["unit"] == "mL" and neck["on_scale"]
    temp = world.apply({"type": "read", "instrument": "measure", "quantity": "temperature"})
    assert temp["value"] == 28.4 and temp["unit"] == "degC"
    # The next delivery starts with an emptied measure.
    world.apply({"type": "hang_up", "at": {"value": 8, "unit": "L"}})
    world.apply({"type": "deliver", "volume": 20, "flow": 40, "into": "measure"})
    neck = world.apply({"type": "read", "instrument": "measure"})
    assert neck["value"] < -11000 and neck["on_scale"] is False


def test_operator_reads_of_the_dispenser() -> None:
    world, _d, _ = make(fuel_temperature=27.84, ramp_time=0.0, slowdown_volume=0.0)
    world.apply({"type": "deliver", "volume": 20, "flow": 40})
    read = {q: world.apply({"type": "read", "instrument": "dispenser", "quantity": q})
            for q in ("volume", "amount", "temperature", "duration")}
    assert read["volume"]["value"] == 20.0 and read["volume"]["unit"] == "L"
    assert read["amount"]["value"] == 469000.0
    assert read["temperature"]["value"] == 27.8
    assert read["duration"]["value"] == pytest.approx(30.0, abs=0.1)
    bad = world.apply({"type": "read", "instrument": "dispenser", "quantity": "colour"})
    assert bad["ok"] is False and "not 'colour'" in bad["error"]
    # The alias "dispenser" finds the one dispenser whatever the bench calls it.
    world2 = world_mod.SimWorld(clock=world_mod.ManualClock())
    opts = {k: o.default for k, o in disp.DISPENSER_OPTIONS.items()}
    pump, _ = disp._build(world2, "pump7", opts)
    world2.add("pump7", pump)
    assert world2.apply({"type": "read", "instrument": "dispenser"})["value"] == 0.0


def test_actions_refuse_bad_input() -> None:
    world, _, _ = make()
    for action, message in [
        ({"type": "deliver", "volume": "lots", "flow": 40}, "'volume' must be a number"),
        ({"type": "deliver", "volume": {"value": 20, "unit": "gal"}, "flow": 40}, "unit 'gal'"),
        ({"type": "deliver", "volume": 20, "flow": 40, "into": "bucket"}, "no simulated proving"),
        ({"type": "deliver", "volume": 0, "flow": 40}, "cannot deliver"),
    ]:
        reply = world.apply(action)
        assert reply["ok"] is False and message in reply["error"], reply


def test_read_of_other_instruments_still_works() -> None:
    """The dispenser's read handler hands other instruments to the world's own read."""
    with bench.start_simulation({
        "balance": {"type": "mettler_sics", "max": 220, "d": 0.001},
        "pump": {"type": "sim_dispenser"},
    }, speed=100.0, control=None) as sim:
        sim.world.apply({"type": "place_load", "load": {"value": 100, "unit": "g"}})
        reply = sim.world.apply({"type": "read", "instrument": "balance"})
        assert reply["ok"] and reply["unit"] == "g"
        assert sim.world.apply({"type": "read", "instrument": "pump"})["value"] == 0.0


# -- the ASCII protocol -----------------------------------------------------------------------


def test_protocol_replies() -> None:
    world, d, factory = make(standalone=False)
    s = factory()
    assert answer(s, b"STATUS?") == b"STATUS IDLE\r\n"
    assert answer(s, b"TOTALS?") == b"TOTALS 123456.78 2894561234\r\n"
    assert answer(s, b"DELIVERY?") == b"DELIVERY 0.00 0 23450 0.0\r\n"
    assert answer(s, b"PRICE 24000") == b"OK\r\n"
    assert answer(s, b"PRICE -5") == b"ERR 11 bad value\r\n"
    assert answer(s, b"PRICE abc") == b"ERR 11 bad value\r\n"
    assert answer(s, b"AUTH 20.001") == b"ERR 11 bad value\r\n"
    assert answer(s, b"AUTH 1000.00") == b"ERR 11 bad value\r\n"
    assert answer(s, b"AUTH 20.00") == b"OK\r\n"
    assert answer(s, b"AUTH 20.00") == b"ERR 12 not allowed in AUTHORISED\r\n"
    assert answer(s, b"PRICE 23450") == b"ERR 12 not allowed in AUTHORISED\r\n"
    assert answer(s, b"status?") == b"ERR 10 unknown command\r\n"
    assert answer(s, b"\xff") == b"ERR 10 unknown command\r\n"
    d.lift_nozzle()
    d.open_trigger(40.0)
    world.clock.advance(10.0)
    assert answer(s, b"STATUS?") == b"STATUS FUELLING\r\n"
    line = answer(s, b"DELIVERY?")
    volume, amount, price, flow = (float(x) for x in line.split()[1:])
    assert 5.0 < volume < 7.0 and amount == round(volume * 24000) and price == 24000
    assert flow == pytest.approx(40.0, abs=0.1)
    assert answer(s, b"STOP") == b"OK\r\n"
    assert answer(s, b"STATUS?") == b"STATUS SUSPENDED\r\n"
    d.hang_up()
    assert answer(s, b"STATUS?") == b"STATUS IDLE\r\n"
    total = float(answer(s, b"TOTALS?").split()[1])
    assert total == pytest.approx(123456.78 + volume, abs=0.011)


def test_protocol_over_tcp_with_faults() -> None:
    with bench.start_simulation({"pump": {"type": "sim_dispenser"}}, speed=100.0,
                                control=None) as sim, LineClient(sim.resources["pump"]) as c:
        assert c.query(b"STATUS?") == b"STATUS IDLE\r\n"
        sim.world.faults("pump").set("error", 1)
        assert c.query(b"STATUS?") == b"ERR 90 internal error\r\n"
        sim.world.faults("pump").set("busy", 1)
        assert c.query(b"STATUS?") == b"ERR 13 busy\r\n"
        sim.world.faults("pump").set("garbage", 1)
        assert b"STATUS" not in c.query(b"STATUS?")
        assert c.query(b"STATUS?") == b"STATUS IDLE\r\n"


def test_a_delivery_blocks_the_technician_not_the_console() -> None:
    with bench.start_simulation({"pump": {"type": "sim_dispenser", "standalone": False}},
                                speed=200.0, control=None) as sim, \
            LineClient(sim.resources["pump"]) as c:
        assert c.query(b"AUTH 5.00") == b"OK\r\n"
        done: list[dict[str, Any]] = []
        t = threading.Thread(target=lambda: done.append(sim.world.apply(
            {"type": "deliver", "volume": 5, "flow": 5})))
        t.start()
        seen = set()
        while t.is_alive():
            seen.add(c.query(b"STATUS?"))
        t.join()
        assert b"STATUS FUELLING\r\n" in seen
        assert done[0]["ok"] and done[0]["volume"] == 5.0
        assert c.query(b"DELIVERY?").startswith(b"DELIVERY 5.00 117250 23450 ")


# -- the Coriolis meter ---------------------------------------------------------------------------


def test_float_orders_of_register_521() -> None:
    one = struct.pack(">f", 1.5)  # 3F C0 00 00
    assert one == b"\x3f\xc0\x00\x00"
    assert cor.encode_float(1.5, 0) == [0x3FC0, 0x0000]
    assert cor.encode_float(1.5, 1) == [0x0000, 0x3FC0]
    assert cor.encode_float(1.5, 2) == [0xC03F, 0x0000]
    assert cor.encode_float(1.5, 3) == [0x0000, 0xC03F]


def make_meter(**options: Any) -> tuple[Any, Any, Any, Any]:
    world, d, _ = make(ramp_time=0.0, slowdown_volume=0.0, error_curve=[(0.0, 0.12)],
                       fuel_temperature=28.0)
    meter = cor.SimCoriolis(world.clock, disp.fuel_line(world), **options)
    return world, d, meter, cor.CoriolisRegisters(meter)


def test_coriolis_totals_see_the_same_flow_with_their_own_error() -> None:
    world, d, meter, _ = make_meter(error_pct=0.02, temperature_offset=0.1)
    record = d.deliver(20.0, 40.0)
    line = disp.fuel_line(world)
    v = meter.values()
    assert v["mass_total"] == pytest.approx(line.density(28.0) * record.true_volume * 1.0002,
                                            rel=1e-9)
    assert v["volume_total"] == pytest.approx(record.true_volume * 1.0002, rel=1e-9)
    assert v["density"] == pytest.approx(745.0 / (1 + 1.2e-3 * 13) / 1000)
    assert v["temperature"] == pytest.approx(28.1)
    assert v["volume_flow"] == 0.0
    meter.reset_totals()
    assert meter.values()["mass_total"] == 0.0
    assert meter.values()["mass_inventory"] > 0  # inventories are not reset


def test_coriolis_flow_while_fuelling_and_totalizer_stop() -> None:
    world, d, meter, regs = make_meter()
    d.authorise(20.0)
    d.lift_nozzle()
    d.open_trigger(30.0)
    world.clock.advance(5.0)
    assert meter.values()["volume_flow"] * 60 == pytest.approx(30.0)
    regs.write_coil(cor.COIL_TOTALS_RUNNING - 1, False)
    before = meter.values()["volume_total"]
    world.clock.advance(5.0)
    assert meter.values()["volume_total"] == before
    regs.write_coil(cor.COIL_TOTALS_RUNNING - 1, True)
    world.clock.advance(5.0)
    assert meter.values()["volume_total"] > before
    regs.write_coil(cor.COIL_RESET_TOTALS - 1, True)
    assert meter.values()["volume_total"] < 0.1


def test_register_map() -> None:
    _world, _d, meter, regs = make_meter()
    block = regs.read(246, 8)  # 247 … 254: mass flow, density, temperature, volume flow
    assert len(block) == 8
    density = struct.unpack(">f", struct.pack(">HH", block[2], block[3]))[0]
    assert density == pytest.approx(meter.values()["density"], rel=1e-6)
    assert regs.read(520, 1) == [0]
    regs.write(520, [1])
    assert regs.read(520, 1) == [1]
    hi, lo = regs.read(250, 2)  # temperature, now 3-4 1-2
    assert struct.unpack(">f", struct.pack(">HH", lo, hi))[0] == pytest.approx(28.0)
    with pytest.raises(ModbusReply) as info:
        regs.read(254, 2)  # 255/256: not in the map
    assert info.value.code == 0x02
    with pytest.raises(ModbusReply) as info:
        regs.write(520, [7])
    assert info.value.code == 0x03
    with pytest.raises(ModbusReply) as info:
        regs.write(258, [0, 0])
    assert info.value.code == 0x02
    with pytest.raises(ModbusReply):
        regs.write_coil(9, True)


def test_simulator_options_are_checked() -> None:
    with pytest.raises(ValueError, match="float_order"):
        bench.start_simulation({"mm": {"type": "micromotion_modbus", "float_order": 7}},
                               control=None)
    with pytest.raises(ValueError, match="error_curve"):
        bench.start_simulation({"p": {"type": "sim_dispenser", "error_curve": [[5, 1], [5, 2]]}},
                               control=None)
    with pytest.raises(ValueError, match="unknown key 'colour'"):
        bench.start_simulation({"p": {"type": "sim_dispenser", "colour": "red"}}, control=None)

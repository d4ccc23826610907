"""Balance physics and the simulated world, on a manual clock (deterministic, no sleeping)."""

from __future__ import annotations

import math

import pytest
import simhelp

physics = simhelp.load("balance_physics")
world_mod = simhelp.load("world")
SimBalance = physics.SimBalance
ManualClock = world_mod.ManualClock


def make(clock=None, **options):
    clock = clock or ManualClock()
    options.setdefault("max", 200.0)
    options.setdefault("d", 0.01)
    return clock, SimBalance(clock, None, **options)


def settle(clock, balance, seconds=60.0):
    clock.advance(seconds)
    return balance.reading()


# -- rounding -------------------------------------------------------------------------------

@pytest.mark.parametrize(("x", "n"), [(2.5, 3), (-2.5, -3), (2.4999, 2), (0.0, 0), (-0.5, -1),
                                      (0.125 / 0.01, 13), (1234.4999999999998, 1235)])
def test_round_half_away_from_zero(x, n):
    assert physics.round_half_away(x) == n


@pytest.mark.parametrize(("counts", "d", "text"), [
    (-1234, 0.01, "-12.34"), (0, 0.01, "0.00"), (10000, 0.01, "100.00"), (5, 0.0001, "0.0005"),
    (3, 5, "15"), (7, 0.5, "3.5"), (-1, 0.1, "-0.1"), (2000000, 0.0001, "200.0000")])
def test_format_counts_exact(counts, d, text):
    assert physics.format_counts(counts, d) == text


@pytest.mark.parametrize(("mass", "shown"), [(12.345, "12.35"), (12.344, "12.34"),
                                              (0.005, "0.01"), (100.0, "100.00")])
def test_indication_rounds_half_away_to_d(mass, shown):
    clock, balance = make()
    balance.place_load(mass)
    assert settle(clock, balance).text == shown


def test_negative_half_rounds_away_from_zero():
    clock, balance = make(zero_offset=-0.125)
    r = settle(clock, balance)
    assert (r.text, r.counts, r.value) == ("-0.13", -13, -0.13)


def test_round_with_d_5_and_kg():
    clock, balance = make(max=30.0, d=0.005, unit="kg")
    balance.place_load(12.5, unit="kg")
    balance.place_load(2.5, unit="g")  # 0.0025 kg → half of d rounds up
    assert settle(clock, balance).text == "12.505"


# -- settling and stability -----------------------------------------------------------------

def test_exponential_approach_and_stability_after_settle_time():
    clock, balance = make(max=200.0, d=0.1, settle_time=2.0)  # tau 0.4 s
    balance.place_load(1.0)
    r0 = balance.reading()
    assert (r0.value, r0.stable) == (0.0, False)
    clock.advance(0.4)  # one time constant: 63 % of the way
    assert balance.reading().value == pytest.approx(0.6, abs=0.051)
    clock.advance(1.59)
    assert not balance.reading().stable  # 1.99 s < settle_time
    clock.advance(0.01)
    r = balance.reading()
    assert (r.text, r.stable, r.state) == ("1.0", True, "ok")


def test_large_load_on_fine_balance_needs_the_tail_to_die_out():
    clock, balance = make(max=220.0, d=0.0001, settle_time=2.0)
    balance.place_load(200.0)
    clock.advance(2.0)
    assert not balance.is_stable()  # 200 g·e^-5 still moving far beyond d/2
    clock.advance(3.0)
    assert not balance.is_stable()  # 200 g·e^-12.5 = 0.7 mg: still more than d/2
    clock.advance(2.0)
    r = balance.reading()
    assert r.stable and r.text == "200.0000"


def test_change_during_settling_starts_from_where_the_display_was():
    clock, balance = make(d=0.1, settle_time=2.0)
    balance.place_load(100.0)
    clock.advance(0.4)
    shown = balance.reading().value
    balance.place_load(50.0)
    assert balance.reading().value == pytest.approx(shown, abs=0.1)
    assert settle(clock, balance).text == "150.0"


def test_noise_too_large_never_stable_and_small_noise_is():
    clock, noisy = make(noise=0.01)  # 2σ = 2 d > band d/2
    noisy.place_load(10.0)
    clock.advance(100)
    assert not noisy.is_stable()
    clock2, quiet = make(noise=0.001)
    quiet.place_load(10.0)
    clock2.advance(100)
    assert quiet.is_stable()
    values = {quiet.reading().counts for _ in range(50)}
    assert values <= {999, 1000, 1001}


def test_noise_is_seeded():
    import numpy as np

    def run(seed):
        clock = ManualClock()
        b = SimBalance(clock, np.random.default_rng(seed), max=200.0, d=0.001, noise=0.01)
        b.place_load(5.0)
        clock.advance(10)
        return [b.reading().counts for _ in range(5)]

    assert run(1) == run(1)
    assert run(1) != run(2)


# -- overload and underload -----------------------------------------------------------------

def test_overload_just_above_max_plus_9e():
    clock, balance = make(max=200.0, d=0.01, e=0.1)
    balance.place_load(200.9)
    r = settle(clock, balance)
    assert (r.state, r.text) == ("ok", "200.90")
    balance.place_load(0.01)
    assert settle(clock, balance).state == "overload"
    assert balance.display()[2] == "overload"


def test_underload_below_minus_20e_after_zeroing():
    clock, balance = make(max=200.0, d=0.01)
    balance.place_load(1.0)
    settle(clock, balance)
    assert balance.zero_now() == "ok"
    balance.remove_load()
    r = settle(clock, balance)
    assert r.state == "underload"  # gross -1.00 g < -20 e = -0.20 g
    balance.place_load(0.85)
    r = settle(clock, balance)
    assert (r.state, r.text) == ("ok", "-0.15")


# -- zero and tare --------------------------------------------------------------------------

def test_zero_within_range_and_refused_outside():
    clock, balance = make(max=200.0, zero_offset=0.37)
    assert settle(clock, balance).text == "0.37"
    assert balance.zero_now() == "ok"
    assert balance.reading().text == "0.00"
    balance.place_load(4.1)  # above +2 % of Max (4 g) from the power-up zero
    settle(clock, balance)
    assert balance.zero_now() == "+"
    balance.remove_load()
    clock2, low = make(max=200.0, zero_offset=-4.5)
    settle(clock2, low)
    assert low.zero_now() == "-"


def test_tare_and_preset_tare():
    clock, balance = make()
    balance.place_load(50.0)
    settle(clock, balance)
    assert balance.tare_now() == ("ok", 5000)
    assert balance.reading().text == "0.00"
    balance.place_load(20.0)
    assert settle(clock, balance).text == "20.00"
    balance.remove_load()
    assert settle(clock, balance).text == "-50.00"
    assert balance.tare_now() == ("ok", 0)
    balance.clear_tare()
    balance.set_preset_tare(10.0)
    assert balance.reading().text == "-10.00"
    with pytest.raises(ValueError):
        balance.set_preset_tare(500.0)


def test_tare_refused_below_zero():
    clock, balance = make(zero_offset=-1.0)
    settle(clock, balance)
    assert balance.tare_now() == ("-", 0)


def test_zero_clears_tare_and_power_cycle_rezeroes():
    clock, balance = make(zero_offset=0.5)
    balance.place_load(10.0)
    settle(clock, balance)
    balance.tare_now()
    balance.remove_load()
    settle(clock, balance)
    assert balance.zero_now() == "ok"
    assert balance.tare == 0.0
    balance.place_load(3.0)
    settle(clock, balance)
    balance.set_preset_tare(1.0)
    balance.power_cycle()  # 3.5 g on the sensor: inside the ±10 % initial range → new zero
    assert (balance.tare, settle(clock, balance).text) == (0.0, "0.00")
    balance.remove_load()
    assert settle(clock, balance).text == "-3.00"


# -- error model ----------------------------------------------------------------------------

def test_eccentricity_and_linearity_show_as_injected():
    ecc = {"centre": 0.0, "front_left": 0.03, "back_left": -0.02, "back_right": 0.05,
           "front_right": -0.04}
    lin = [(50.0, 0.01), (100.0, 0.03), (200.0, -0.02)]
    clock, balance = make(max=200.0, d=0.01, eccentricity=ecc, ecc_load=60.0, linearity=lin)
    for load, position in [(60.0, "front_left"), (60.0, "back_right"), (60.0, "front_right"),
                           (75.0, "centre"), (150.0, "centre"), (200.0, "back_left"),
                           (20.0, "centre")]:
        balance.remove_load()
        balance.place_load(load, position)
        r = settle(clock, balance)
        injected = balance.injected_error(load, position)
        assert abs(r.value - load - injected) <= 0.005 + 1e-9, (load, position)
    assert balance.injected_error(60.0, "front_left") == pytest.approx(0.014 + 0.03)
    assert balance.linearity(75.0) == pytest.approx(0.02)
    assert balance.linearity(250.0) == pytest.approx(-0.02)  # held beyond the last point
    assert balance.linearity(-1.0) == 0.0


def test_eccentricity_scales_with_load():
    clock, balance = make(max=300.0, d=0.001, eccentricity={"back_left": 0.1})  # at Max/3
    balance.place_load(50.0, "back_left")
    assert settle(clock, balance).text == "50.050"
    assert balance.injected_error(50.0, "back_left") == pytest.approx(0.05)


def test_drift_proportional_to_time_and_removed_by_zero():
    clock, balance = make(d=0.01, drift_per_hour=0.36)
    clock.advance(100)
    assert balance.reading().text == "0.01"
    assert balance.injected_error(0.0) == pytest.approx(0.01)
    clock.advance(3500)
    assert balance.reading().text == "0.36"
    balance.zero_now()
    assert balance.injected_error(10.0) == pytest.approx(0.0)
    clock.advance(1800)
    assert balance.reading().text == "0.18"


def test_repeatability_offset_per_loading():
    import numpy as np

    clock = ManualClock()
    balance = SimBalance(clock, np.random.default_rng(3), max=200.0, d=0.001, repeatability=0.01)
    seen = set()
    for _ in range(6):
        balance.place_load(100.0)
        clock.advance(30)
        first = balance.reading().counts
        assert balance.reading().counts == first  # constant while the load sits
        seen.add(first)
        balance.remove_load()
        clock.advance(30)
    assert len(seen) > 2


def test_invalid_options_are_rejected():
    clock = ManualClock()
    for bad in [{"max": -1, "d": 0.1}, {"max": 10, "d": 0}, {"max": 10, "d": 0.1, "e": 0.01},
                {"max": 10, "d": 0.1, "unit": "lb"},
                {"max": 10, "d": 0.1, "eccentricity": {"middle": 0.1}},
                {"max": 10, "d": 0.1, "linearity": [(1.0,)]}]:
        with pytest.raises(ValueError):
            SimBalance(clock, None, **bad)
    _, balance = make()
    with pytest.raises(ValueError):
        balance.place_load(1.0, "left")


# -- clock and world ------------------------------------------------------------------------

def test_sim_clock_speed():
    import time

    clock = world_mod.SimClock(speed=50)
    t0 = clock.now()
    time.sleep(0.02)
    assert 0.9 <= clock.now() - t0 <= 5.0
    start = time.monotonic()
    clock.sleep(1.0)  # 20 ms real
    assert 0.015 <= time.monotonic() - start < 0.5
    with pytest.raises(ValueError):
        world_mod.SimClock(speed=0)


def make_world(**balance_options):
    world = world_mod.SimWorld(clock=ManualClock(), seed=1)
    balance_options.setdefault("max", 220.0)
    balance_options.setdefault("d", 0.01)
    balance = world.add("balance", SimBalance(world.clock, world.rng_for("balance"),
                                              **balance_options))
    return world, balance


def test_world_place_read_remove():
    world, _ = make_world()
    reply = world.apply({"type": "place_load", "load": {"value": 200, "unit": "g"},
                         "position": "centre", "instrument": "balance"})
    assert reply == {"ok": True, "instrument": "balance", "load": {"value": 200.0, "unit": "g"},
                     "position": "centre"}
    assert world.apply({"type": "place_load", "load": {"value": 500, "unit": "mg"}})["ok"]
    assert world.apply({"type": "place_load", "load": {"value": 0.01, "unit": "kg"},
                        "position": "front_left"})["ok"]
    world.clock.advance(30)
    read = world.apply({"type": "read"})
    assert read["ok"] and read["value"] == pytest.approx(210.5) and read["unit"] == "g"
    assert read["stable"] is True and read["text"] == "210.50"
    assert world.apply({"type": "remove_load"}) == {"ok": True, "instrument": "balance",
                                                     "removed": 3}
    world.clock.advance(30)
    assert world.apply({"type": "read", "instrument": "balance"})["value"] == 0.0


def test_world_overload_read_and_errors():
    world, _ = make_world()
    world.apply({"type": "place_load", "load": {"value": 1, "unit": "kg"}})
    world.clock.advance(30)
    read = world.apply({"type": "read"})
    assert read["state"] == "overload" and read["value"] is None
    for bad, words in [({"type": "juggle"}, "unknown action"),
                       ({"type": "place_load", "load": {"value": 1, "unit": "lb"}}, "lb"),
                       ({"type": "place_load", "load": {"value": "x"}}, "number"),
                       ({"type": "place_load", "load": {"value": 1}, "position": "left"},
                        "position"),
                       ({"type": "place_load", "load": {"value": 1}, "instrument": "nope"},
                        "nope"),
                       ({"type": "fault", "mode": "explode"}, "fault mode"),
                       ({"type": "set_ambient"}, "temperature_c"),
                       ({"type": "set_ambient", "humidity_pct": 120}, "humidity"),
                       ("not a dict", "object")]:
        reply = world.apply(bad)  # type: ignore[arg-type]
        assert reply["ok"] is False and words in reply["error"], (bad, reply)


def test_world_needs_instrument_with_two_balances():
    world, _ = make_world()
    world.add("other", SimBalance(world.clock, None, max=10.0, d=0.001))
    reply = world.apply({"type": "place_load", "load": {"value": 1}})
    assert not reply["ok"] and "balance, other" in reply["error"]
    assert world.apply({"type": "place_load", "load": {"value": 1}, "instrument": "other"})["ok"]


def test_world_fault_and_power_cycle_and_ambient():
    world, balance = make_world()
    reply = world.apply({"type": "fault", "instrument": "balance", "mode": "garbage",
                         "count": 2})
    assert reply == {"ok": True, "instrument": "balance", "mode": "garbage", "count": 2}
    faults = world.faults("balance")
    assert faults.pending == ("garbage", 2)
    assert faults.take().mode == "garbage"
    assert faults.take().mode == "garbage"
    assert faults.take() is None
    calls = []
    world.on_power_cycle("balance", lambda: calls.append(1))
    balance.set_preset_tare(5.0)
    assert world.apply({"type": "power_cycle", "instrument": "balance"})["ok"]
    assert calls == [1] and balance.tare == 0.0
    world.environment.noise = 0.0
    reply = world.apply({"type": "set_ambient", "temperature_c": 25.5, "humidity_pct": 60,
                         "pressure_hpa": 1001.0})
    assert reply["ok"] and reply["temperature_c"] == pytest.approx(25.5)
    world.clock.advance(600)
    values = world.environment.sample()
    assert math.isclose(values["temperature_c"], 25.5, abs_tol=0.6)
    assert math.isclose(values["pressure_hpa"], 1001.0, abs_tol=0.8)


def test_world_custom_action_and_registry():
    world, _ = make_world()
    world.register_action("deliver", lambda action: {"ok": True, "volume": action["volume"]})
    assert world.apply({"type": "deliver", "volume": 20}) == {"ok": True, "volume": 20}
    with pytest.raises(KeyError):
        world.get("nothing")
    assert world.get("balance") is not None and world.names() == ["balance"]

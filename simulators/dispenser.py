"""A fuel dispenser on a fuel line, the proving measures it fills, and its ASCII protocol.

Physics (simulated time, evaluated lazily in steps of at most ``STEP`` s when anything asks):

* The fuel line (:class:`FuelLine`, one per world, shared with the Coriolis master meter)
  carries a product with density ρ15 and cubical expansion β at a line temperature t_line;
  ρ(t) = ρ15 / (1 + β (t − 15)). Every flow step is offered to the line's meters.
* The dispenser's true flow q(t) ramps linearly from 0 to the requested rate (capped at
  ``max_flow``) over ``ramp_time``, stays there, and when a preset is within
  ``slowdown_volume`` of the display it drops to ``slowdown_flow`` (the slow-down valve); it
  stops exactly when the display reaches the preset (state COMPLETED).
* The meter's relative error e(q) (%) is a curve of [flow, error] points (linear between
  them, constant beyond the ends) plus ``error_offset`` plus, per delivery, a normal draw of
  standard deviation ``repeatability``. The display integrates q (1 + e/100); the true volume
  integrates q. The amount is the shown volume (``resolution``) times the unit price, rounded
  to ``amount_resolution`` (R117: the price is computed from the indicated volume).
* A proving measure (:class:`SimProvingMeasure`) receives the true volume of a delivery at
  the line temperature; in the measure the fuel is at t_line + ``measure_warming`` and expands
  by β; the measure itself expands by γ from its reference temperature. Its neck scale shows
  the fuel's volume at the reference temperature minus the measure's true volume to the
  nominal mark, read to the nearest division (what a technician would write down).

Fuelling-point states (IFSF): IDLE (nozzle in, not authorised), CALLING (nozzle out, not
authorised), AUTHORISED, FUELLING, SUSPENDED (stopped by the console), COMPLETED (preset
reached, nozzle still out). Hanging the nozzle up ends any transaction (→ IDLE). In
``standalone`` mode (no console: most dispensers at a station) the technician keys the preset
on the dispenser and lifting the nozzle authorises it.

Protocol (TCP, CR LF after every command and reply; commands are case-sensitive)::

    STATUS?          STATUS IDLE
    PRICE 23450      OK                       unit price in đồng per litre (not while fuelling)
    AUTH 20.00       OK                       authorise with a preset in L (IDLE or CALLING)
    STOP             OK                       FUELLING -> SUSPENDED; AUTHORISED -> IDLE/CALLING
    DELIVERY?        DELIVERY 19.96 468062 23450 37.8    volume L, amount đồng, unit price,
                                              flow now L/min (of the current or last delivery)
    TOTALS?          TOTALS 123456.78 2894561234          volume L, amount đồng
    errors           ERR 10 unknown command | ERR 11 bad value | ERR 12 not allowed in <STATE>
                     ERR 90 internal error (the "error" fault) | ERR 13 busy ("busy" fault)

Operator actions (DESIGN.md stdio-json; registered on the world by this module)::

    {"type": "deliver", "volume": {"value": 20, "unit": "L"}, "flow": {"value": 40,
     "unit": "L/min"}, "into": "measure", "instrument": "dispenser"}
        the technician empties the measure ``into`` (if given), lifts the nozzle, delivers at
        the flow until the dispenser stops (preset, or the volume keyed as preset in
        standalone mode) and hangs up; the reply comes when the delivery is over
    {"type": "hang_up", "instrument": "dispenser", "at": {"value": 8, "unit": "L"}}
        hang the nozzle up now, or (with ``at``) when the display next reaches that volume
    {"type": "read", "instrument": "dispenser", "quantity": "volume" | "amount" |
     "temperature" | "duration"}          the display, the fuel temperature at the nozzle,
                                          the stopwatch time of the last delivery
    {"type": "read", "instrument": "measure", "quantity": "neck_scale" | "temperature"}
"""

from __future__ import annotations

import itertools
import math
import random
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from .bench import Option, SimulatorType, register_simulator_type
from .servers import Item, LineSession
from .world import ActionError, FaultInjector, SimClock, SimWorld

__all__ = [
    "STATES",
    "DispenserSession",
    "ErrorCurve",
    "FuelLine",
    "SimDispenser",
    "SimProvingMeasure",
    "fuel_line",
]

STEP = 0.05  # simulated seconds per integration step
STATES = ("IDLE", "CALLING", "AUTHORISED", "FUELLING", "SUSPENDED", "COMPLETED")
CRLF = b"\r\n"
FUEL_LINE = "fuel_line"
MEASURES = ("measure", "mmq_measure")
#: Cubical expansion of products (per °C), as the simulated fuel's own physics.
PRODUCT_BETA = {"ron95": 1.2e-3, "ron92": 1.2e-3, "e5": 1.2e-3, "diesel": 8.3e-4,
                "kerosene": 9.0e-4}

FlowListener = Callable[[float, float, float], None]
"""(dt in s, true volume flow in L/min, line temperature in °C), called for every step."""


def round_to(value: float, step: float) -> float:
    """``value`` to the nearest multiple of ``step``, ties away from zero (a display)."""
    q = Decimal(repr(step))
    n = (Decimal(repr(value)) / q).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return float(n * q)


class ErrorCurve:
    """Meter error in % against flow: linear between [flow, error] points, flat beyond."""

    def __init__(self, points: Sequence[tuple[float, float]] = ()) -> None:
        pts = sorted((float(q), float(e)) for q, e in points)
        if len({q for q, _ in pts}) != len(pts):
            raise ValueError("error_curve: two points at the same flow rate")
        self.points = pts

    def __call__(self, flow: float) -> float:
        pts = self.points
        if not pts:
            return 0.0
        if flow <= pts[0][0]:
            return pts[0][1]
        if flow >= pts[-1][0]:
            return pts[-1][1]
        for (q0, e0), (q1, e1) in itertools.pairwise(pts):
            if q0 <= flow <= q1:
                return e0 + (e1 - e0) * (flow - q0) / (q1 - q0)
        return pts[-1][1]  # pragma: no cover - the loop covers the range


class FuelLine:
    """The product in the line, its temperature, and the meters that see its flow."""

    def __init__(self, *, product: str = "RON95", density15: float = 745.0,
                 beta: float | None = None, temperature_c: float = 28.0) -> None:
        if beta is None:
            try:
                beta = PRODUCT_BETA[product.strip().lower()]
            except KeyError:
                raise ValueError(f"product {product!r}: give beta (known products: "
                                 f"{', '.join(sorted(PRODUCT_BETA))})") from None
        if not 500.0 <= density15 <= 1100.0:
            raise ValueError(f"density15 {density15} g/L is not a liquid fuel's")
        self.product = product
        self.density15 = float(density15)
        self.beta = float(beta)
        self.temperature_c = float(temperature_c)
        self.listeners: list[FlowListener] = []
        #: What moves fuel (dispensers): ``advance()`` brings its physics up to now,
        #: ``flow_now()`` is its true flow in L/min.
        self.sources: list[Any] = []

    def sync(self) -> None:
        """Bring every source's lazy physics up to now (a meter about to answer calls it,
        without holding its own lock: the sources call the meters back)."""
        for source in list(self.sources):
            source.advance()

    def flow_now(self) -> float:
        """The true volume flow in the line now, L/min (after :meth:`sync`)."""
        return sum(float(source.flow_now()) for source in list(self.sources))

    def density(self, t: float | None = None) -> float:
        """g/L (= kg/m³) at ``t`` (the line temperature by default)."""
        t = self.temperature_c if t is None else t
        return self.density15 / (1.0 + self.beta * (t - 15.0))

    def flow(self, dt: float, q_lpm: float) -> None:
        for listener in list(self.listeners):
            listener(dt, q_lpm, self.temperature_c)


def fuel_line(world: SimWorld, options: Mapping[str, Any] | None = None) -> FuelLine:
    """The world's fuel line, made on first use (by the dispenser or the master meter)."""
    if FUEL_LINE in world.names():
        line: FuelLine = world.get(FUEL_LINE)
        return line
    opts = dict(options or {})
    line = FuelLine(product=str(opts.get("product", "RON95")),
                    density15=float(opts.get("density15", 745.0)), beta=opts.get("beta"),
                    temperature_c=float(opts.get("fuel_temperature", 28.0)))
    world.add(FUEL_LINE, line)
    _install_actions(world)
    return line


@dataclass
class DeliveryRecord:
    """One transaction as the simulation knows it (the truth a test compares with)."""

    preset: float
    requested_flow: float
    display: float = 0.0
    true_volume: float = 0.0
    started: float | None = None
    """Simulated time the flow started."""
    ended: float | None = None
    error_offset: float = 0.0
    """This delivery's random meter error (repeatability draw), %."""
    hung_up_early: bool = False

    @property
    def duration(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else self.started) - self.started

    @property
    def error_pct(self) -> float:
        """The meter's effective error over this delivery, %."""
        if self.true_volume <= 0:
            return 0.0
        return 100.0 * (self.display - self.true_volume) / self.true_volume


class SimProvingMeasure:
    """A proving measure with a neck scale, filled by the simulated technician."""

    def __init__(self, line: FuelLine, *, volume: float = 20.0, gamma: float = 5.2e-5,
                 reference_temperature: float = 20.0, scale_min: float = -100.0,
                 scale_max: float = 100.0, division: float = 5.0, warming: float = 0.3,
                 scale_unit: str = "mL") -> None:
        if not scale_min < scale_max or not division > 0:
            raise ValueError("measure scale: needs scale_min < scale_max and division > 0")
        self.line = line
        self.volume = float(volume)
        self.gamma = float(gamma)
        self.reference_temperature = float(reference_temperature)
        self.scale_min, self.scale_max = float(scale_min), float(scale_max)
        self.division = float(division)
        self.warming = float(warming)
        self.scale_unit = scale_unit
        self.content = 0.0  # fuel in the measure, L at its own temperature
        self.temperature_c = line.temperature_c
        self._lock = threading.Lock()

    def empty(self) -> None:
        with self._lock:
            self.content = 0.0

    def receive(self, true_volume: float) -> None:
        """Fuel delivered at line temperature flows in and takes the measure's temperature."""
        with self._lock:
            t_line = self.line.temperature_c
            self.temperature_c = t_line + self.warming
            self.content += true_volume * (1.0 + self.line.beta * (self.temperature_c - t_line))

    def scale_value(self) -> float:
        """The exact neck-scale position, in the scale unit (may be off the scale)."""
        with self._lock:
            at_ref = self.content / (1.0 + self.gamma * (self.temperature_c
                                                         - self.reference_temperature))
            factor = 1000.0 if self.scale_unit == "mL" else 1.0
            return (at_ref - self.volume) * factor

    def operator_read(self, quantity: str = "neck_scale") -> dict[str, Any]:
        if quantity == "neck_scale":
            exact = self.scale_value()
            on_scale = self.scale_min <= exact <= self.scale_max
            return {"value": round_to(exact, self.division), "unit": self.scale_unit,
                    "on_scale": on_scale, "quantity": quantity}
        if quantity == "temperature":
            return {"value": round(self.temperature_c, 1), "unit": "degC",
                    "quantity": quantity}
        raise ActionError(f"a proving measure shows neck_scale or temperature, not {quantity!r}")


class SimDispenser:
    """One fuelling point: nozzle, pump, meter, price computer, totalizers."""

    def __init__(self, clock: SimClock, line: FuelLine, rng: np.random.Generator, *,
                 max_flow: float = 45.0, ramp_time: float = 1.0, slowdown_volume: float = 0.2,
                 slowdown_flow: float = 5.0, error_curve: Sequence[tuple[float, float]] = (),
                 error_offset: float = 0.0, repeatability: float = 0.0,
                 unit_price: float = 23450.0, resolution: float = 0.01,
                 amount_resolution: float = 1.0, standalone: bool = True,
                 totals_volume: float = 123456.78, totals_amount: float = 2894561234.0,
                 max_preset: float = 999.99) -> None:
        self.clock = clock
        self.line = line
        self.rng = rng
        self.max_flow = float(max_flow)
        self.ramp_time = float(ramp_time)
        self.slowdown_volume = float(slowdown_volume)
        self.slowdown_flow = float(slowdown_flow)
        self.curve = ErrorCurve(error_curve)
        self.error_offset = float(error_offset)
        self.repeatability = float(repeatability)
        self.unit_price = float(unit_price)
        self.resolution = float(resolution)
        self.amount_resolution = float(amount_resolution)
        self.standalone = standalone
        self.max_preset = float(max_preset)
        self._totals_volume = float(totals_volume)
        self._totals_amount = float(totals_amount)
        self.state = "IDLE"
        self.nozzle_out = False
        self.trigger_flow = 0.0
        self.hang_up_at: float | None = None
        self.current: DeliveryRecord | None = None
        self.last: DeliveryRecord | None = None
        #: Every transaction that delivered fuel, oldest first (the truth tests compare with).
        self.history: list[DeliveryRecord] = []
        self._t = clock.now()
        self._flow_started: float | None = None
        self._flow_now = 0.0
        self._lock = threading.RLock()
        line.sources.append(self)

    def advance(self) -> None:
        with self._lock:
            self._advance()

    def flow_now(self) -> float:
        """The true flow now, L/min."""
        with self._lock:
            self._advance()
            return self._flow_now

    # -- physics ------------------------------------------------------------------------------
    def meter_error(self, flow: float) -> float:
        extra = self.current.error_offset if self.current is not None else 0.0
        return self.curve(flow) + self.error_offset + extra

    def _target_flow(self, now: float) -> float:
        d = self.current
        if self.state != "FUELLING" or d is None or self._flow_started is None:
            return 0.0
        q = min(self.trigger_flow, self.max_flow)
        if self.ramp_time > 0:
            q *= min(1.0, (now - self._flow_started) / self.ramp_time)
        if d.preset - d.display <= self.slowdown_volume:
            q = min(q, self.slowdown_flow)
        return q

    def _advance(self) -> None:
        """Integrate the flow up to the clock's now, in whole steps of a fixed grid from the
        flow's start: a delivery then comes out the same however often, and at whatever
        moments, it is looked at, so results do not depend on the simulation's speed."""
        now = self.clock.now()
        while self._t < now:
            if self.state != "FUELLING" or self.current is None:
                self._t = now
                self._flow_now = 0.0
                return
            if self._t + STEP > now + 1e-9:  # (sums of STEP are not exact in binary)
                return  # the step in progress is taken once it has passed
            dt = STEP
            d = self.current
            q = self._target_flow(self._t + dt / 2)
            self._flow_now = q
            shown_rate = q * (1.0 + self.meter_error(q) / 100.0) / 60.0  # L/s on the display
            step_display = shown_rate * dt
            stop_at = d.preset if self.hang_up_at is None else min(d.preset, self.hang_up_at)
            if q > 0 and d.display + step_display >= stop_at:
                dt = (stop_at - d.display) / shown_rate
                step_display = stop_at - d.display
                self._flow(d, q, dt, step_display)
                self._t += dt
                d.display = stop_at
                if self.hang_up_at is not None and stop_at < d.preset:
                    d.hung_up_early = True
                    self.hang_up_at = None
                    self._end(d, "IDLE")
                    self.nozzle_out = False
                else:
                    self._end(d, "COMPLETED")
                continue
            self._flow(d, q, dt, step_display)
            self._t += dt

    def _flow(self, d: DeliveryRecord, q: float, dt: float, step_display: float) -> None:
        d.display += step_display
        true = q / 60.0 * dt
        d.true_volume += true
        if q > 0:
            self.line.flow(dt, q)

    def _end(self, d: DeliveryRecord, state: str) -> None:
        d.ended = self._t
        self.state = state
        self.trigger_flow = 0.0
        self._flow_now = 0.0

    def _close_transaction(self) -> None:
        d = self.current
        if d is not None:
            self._totals_volume += self.shown_volume(d)
            self._totals_amount += self.amount(d)
            if d.ended is None:
                d.ended = self._t
            if d.true_volume > 0:
                self.history.append(d)
            self.last, self.current = d, None

    # -- what the display shows ---------------------------------------------------------------
    def shown_volume(self, d: DeliveryRecord | None = None) -> float:
        d = d or self.current or self.last
        return round_to(d.display, self.resolution) if d is not None else 0.0

    def amount(self, d: DeliveryRecord | None = None) -> float:
        d = d or self.current or self.last
        if d is None:
            return 0.0
        return round_to(self.shown_volume(d) * self.unit_price, self.amount_resolution)

    def delivery(self) -> dict[str, float]:
        with self._lock:
            self._advance()
            d = self.current or self.last
            return {"volume": self.shown_volume(d), "amount": self.amount(d),
                    "unit_price": self.unit_price, "flow": self._shown_flow()}

    def _shown_flow(self) -> float:
        q = self._flow_now
        return q * (1.0 + self.meter_error(q) / 100.0) if q > 0 else 0.0

    def totals(self) -> tuple[float, float]:
        with self._lock:
            self._advance()
            volume, amount = self._totals_volume, self._totals_amount
            if self.current is not None:
                volume += self.shown_volume(self.current)
                amount += self.amount(self.current)
            return volume, amount

    def status(self) -> str:
        with self._lock:
            self._advance()
            return self.state

    # -- the console (protocol) ---------------------------------------------------------------
    def set_price(self, price: float) -> str | None:
        """None, or why not."""
        with self._lock:
            self._advance()
            if self.state not in ("IDLE", "CALLING"):
                return self.state
            self.unit_price = float(price)
            return None

    def authorise(self, preset: float) -> str | None:
        with self._lock:
            self._advance()
            if self.state not in ("IDLE", "CALLING"):
                return self.state
            self._new_transaction(preset)
            self.state = "AUTHORISED"
            return None

    def stop(self) -> None:
        with self._lock:
            self._advance()
            if self.state == "FUELLING":
                self.state = "SUSPENDED"
                self.trigger_flow = 0.0
                self._flow_now = 0.0
            elif self.state == "AUTHORISED":
                self.state = "CALLING" if self.nozzle_out else "IDLE"
                self.current = None

    def _new_transaction(self, preset: float) -> None:
        if self.current is not None:
            self._close_transaction()
        extra = float(self.rng.normal(0.0, self.repeatability)) if self.repeatability else 0.0
        self.current = DeliveryRecord(preset=float(preset), requested_flow=0.0,
                                      error_offset=extra)

    # -- the nozzle (operator) ----------------------------------------------------------------
    def lift_nozzle(self, preset: float | None = None) -> None:
        with self._lock:
            self._advance()
            if self.nozzle_out:
                return
            self.nozzle_out = True
            if self.state == "IDLE":
                if self.standalone and preset is not None:
                    self._new_transaction(preset)
                    self.state = "AUTHORISED"
                else:
                    self.state = "CALLING"

    def open_trigger(self, flow: float) -> None:
        with self._lock:
            self._advance()
            if not self.nozzle_out or self.state != "AUTHORISED" or self.current is None:
                raise ActionError(f"the dispenser does not deliver: it is {self.state}")
            self.trigger_flow = float(flow)
            self.current.requested_flow = float(flow)
            self._flow_started = self.clock.now()
            self._t = self._flow_started
            self.current.started = self._flow_started
            self.state = "FUELLING"

    def hang_up(self) -> None:
        with self._lock:
            self._advance()
            if self.state == "FUELLING" and self.current is not None:
                self.current.hung_up_early = True
                self._end(self.current, "IDLE")
            self.nozzle_out = False
            self.trigger_flow = 0.0
            if self.state in ("FUELLING", "SUSPENDED", "COMPLETED", "CALLING"):
                self.state = "IDLE"
            if self.state == "IDLE":
                self._close_transaction()

    def schedule_hang_up(self, at_volume: float) -> None:
        with self._lock:
            self.hang_up_at = float(at_volume)

    def deliver(self, volume: float, flow: float, *, max_wait: float = 7200.0) -> DeliveryRecord:
        """The whole delivery as a technician does it; returns when the nozzle is back."""
        with self._lock:
            self._advance()
            if self.state == "FUELLING":
                raise ActionError("a delivery is already running on this dispenser")
            if self.state in ("SUSPENDED", "COMPLETED") or (
                    self.nozzle_out and self.state != "AUTHORISED"):
                self.hang_up()
            if self.state == "IDLE" and not self.standalone:
                raise ActionError("the dispenser is not authorised (it waits for the console)")
            self.lift_nozzle(preset=volume)
            self.open_trigger(flow)
            record = self.current
            assert record is not None
        deadline = self.clock.now() + max_wait
        suspended_since: float | None = None
        while True:
            with self._lock:
                self._advance()
                state = self.state
            if state != "FUELLING" and state != "SUSPENDED":
                break
            now = self.clock.now()
            if state == "SUSPENDED":
                suspended_since = suspended_since if suspended_since is not None else now
                if now - suspended_since > 5.0:
                    break  # the console stopped the pump: the technician gives up
            if now > deadline:
                raise ActionError("the delivery did not end within the time allowed")
            remaining = (record.preset - record.display) / max(record.requested_flow, 0.1) * 60
            self.clock.sleep(min(0.5, max(STEP, remaining / 2)))
        self.hang_up()
        return record

    def power_cycle(self) -> None:
        with self._lock:
            self._advance()
            if self.current is not None and self.state == "FUELLING":
                self._end(self.current, "IDLE")
            self.state = "CALLING" if self.nozzle_out else "IDLE"
            self._close_transaction()

    # -- the technician reading things --------------------------------------------------------
    def operator_read(self, quantity: str = "volume") -> dict[str, Any]:
        with self._lock:
            self._advance()
            d = self.current or self.last
            if quantity == "volume":
                return {"value": self.shown_volume(d), "unit": "L", "quantity": quantity,
                        "state": self.state}
            if quantity == "amount":
                return {"value": self.amount(d), "unit": "VND", "quantity": quantity}
            if quantity == "temperature":
                return {"value": round(self.line.temperature_c, 1), "unit": "degC",
                        "quantity": quantity}
            if quantity == "duration":
                return {"value": round(d.duration if d else 0.0, 1), "unit": "s",
                        "quantity": quantity}
        raise ActionError(f"a dispenser shows volume, amount, temperature (at the nozzle) or "
                          f"duration (stopwatch), not {quantity!r}")


# -- protocol ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _fmt_price(price: float) -> str:
    return str(int(price)) if float(price).is_integer() else f"{price:g}"


class DispenserSession(LineSession):
    """One console connection to the simulated dispenser."""

    def __init__(self, dispenser: SimDispenser, clock: SimClock | None = None,
                 faults: FaultInjector | None = None, rnd: random.Random | None = None) -> None:
        super().__init__(clock or dispenser.clock, faults, rnd)
        self.dispenser = dispenser

    @staticmethod
    def line(text: str) -> bytes:
        return text.encode("ascii") + CRLF

    def error_reply(self) -> bytes:
        return self.line("ERR 90 internal error")

    def busy_reply(self, line: bytes) -> bytes:
        return self.line("ERR 13 busy")

    def power_cycle_physics(self) -> None:
        self.dispenser.power_cycle()

    def respond(self, line: bytes) -> Iterator[Item]:
        yield 0.0, self.line(self._answer(line))

    def _answer(self, line: bytes) -> str:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            return "ERR 10 unknown command"
        d = self.dispenser
        cmd, _, arg = text.strip().partition(" ")
        if cmd == "STATUS?" and not arg:
            return f"STATUS {d.status()}"
        if cmd == "DELIVERY?" and not arg:
            v = d.delivery()
            return (f"DELIVERY {v['volume']:.2f} {v['amount']:.0f} {_fmt_price(v['unit_price'])} "
                    f"{v['flow']:.1f}")
        if cmd == "TOTALS?" and not arg:
            volume, amount = d.totals()
            return f"TOTALS {volume:.2f} {amount:.0f}"
        if cmd == "STOP" and not arg:
            d.stop()
            return "OK"
        if cmd == "PRICE":
            if not _NUMBER.fullmatch(arg) or not 0 < float(arg) <= 9_999_999:
                return "ERR 11 bad value"
            refused = d.set_price(float(arg))
            return "OK" if refused is None else f"ERR 12 not allowed in {refused}"
        if cmd == "AUTH":
            if not re.fullmatch(r"[0-9]+(?:\.[0-9]{1,2})?", arg) or not (
                    0 < float(arg) <= d.max_preset):
                return "ERR 11 bad value"
            refused = d.authorise(float(arg))
            return "OK" if refused is None else f"ERR 12 not allowed in {refused}"
        return "ERR 10 unknown command"


# -- operator actions --------------------------------------------------------------------------

_VOLUME_UNITS = {"L": 1.0, "l": 1.0, "mL": 0.001, "ml": 0.001}
_FLOW_UNITS = {"L/min": 1.0, "l/min": 1.0, "L/h": 1.0 / 60.0}


def _quantity(action: Mapping[str, Any], key: str, units: Mapping[str, float],
              default_unit: str) -> float:
    value = action.get(key)
    unit = default_unit
    if isinstance(value, Mapping):
        unit = str(value.get("unit", default_unit))
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ActionError(f"{key!r} must be a number or {{\"value\": ..., \"unit\": "
                          f"\"{default_unit}\"}}, got {action.get(key)!r}")
    if unit not in units:
        raise ActionError(f"{key!r}: unit {unit!r} is not one of {', '.join(units)}")
    return float(value) * units[unit]


def _find(world: SimWorld, action: Mapping[str, Any], cls: type, what: str,
          default: str | None = None) -> tuple[str, Any]:
    """The object an action means: by name, else the only one of its class."""
    name = action.get("instrument", default)
    names = world.names()
    if isinstance(name, str) and name in names and isinstance(world.get(name), cls):
        return name, world.get(name)
    found = [(n, world.get(n)) for n in names if isinstance(world.get(n), cls)]
    if len(found) == 1 and (name is None or name == default or name not in names):
        return found[0]
    if not found:
        raise ActionError(f"there is no simulated {what}")
    raise ActionError(f"no simulated {what} named {name!r} (known: "
                      f"{', '.join(n for n, _ in found)})")


def _install_actions(world: SimWorld) -> None:
    """Register deliver/hang_up and extend read (keeping the read of other instruments)."""
    previous_read = world._actions.get("read") or world._read

    def deliver(action: Mapping[str, Any]) -> dict[str, Any]:
        name, dispenser = _find(world, action, SimDispenser, "dispenser", "dispenser")
        volume = _quantity(action, "volume", _VOLUME_UNITS, "L")
        flow = _quantity(action, "flow", _FLOW_UNITS, "L/min")
        if not 0 < volume <= dispenser.max_preset or not flow > 0:
            raise ActionError(f"cannot deliver {volume:g} L at {flow:g} L/min")
        measure: SimProvingMeasure | None = None
        into = action.get("into")
        if into is not None:
            if into not in world.names() or not isinstance(world.get(into), SimProvingMeasure):
                raise ActionError(f"no simulated proving measure {into!r}")
            measure = world.get(into)
            measure.empty()
        record = dispenser.deliver(volume, flow)
        if measure is not None:
            measure.receive(record.true_volume)
        return {"ok": True, "instrument": name, "volume": dispenser.shown_volume(record),
                "duration": round(record.duration, 1), "hung_up_early": record.hung_up_early,
                "state": dispenser.status()}

    def hang_up(action: Mapping[str, Any]) -> dict[str, Any]:
        name, dispenser = _find(world, action, SimDispenser, "dispenser", "dispenser")
        if action.get("at") is not None:
            at = _quantity(action, "at", _VOLUME_UNITS, "L")
            dispenser.schedule_hang_up(at)
            return {"ok": True, "instrument": name, "at": at}
        dispenser.hang_up()
        return {"ok": True, "instrument": name, "state": dispenser.status()}

    def read(action: Mapping[str, Any]) -> dict[str, Any]:
        name = action.get("instrument")
        quantity = action.get("quantity")
        target: Any = None
        if isinstance(name, str) and name in world.names():
            obj = world.get(name)
            if isinstance(obj, SimDispenser | SimProvingMeasure):
                target = obj
        elif name == "dispenser" or (name is None and quantity in ("volume", "amount")):
            _, target = _find(world, {}, SimDispenser, "dispenser")
        if target is None:
            return previous_read(action)
        if quantity is None:
            quantity = "volume" if isinstance(target, SimDispenser) else "neck_scale"
        return {"ok": True, "instrument": name, **target.operator_read(str(quantity))}

    world.register_action("deliver", deliver)
    world.register_action("hang_up", hang_up)
    world.register_action("read", read)


# -- simulator type ----------------------------------------------------------------------------

def _measure_options(prefix: str, volume: float, lo: float, hi: float, division: float
                     ) -> dict[str, Option]:
    return {
        f"{prefix}_volume": Option("positive", volume, f"{prefix}: true volume to the nominal "
                                   "mark at its reference temperature, L"),
        f"{prefix}_gamma": Option("nonneg", 5.2e-5, f"{prefix}: cubical expansion, per °C"),
        f"{prefix}_reference_temperature": Option("number", 20.0,
                                                  f"{prefix}: reference temperature, °C"),
        f"{prefix}_scale_min": Option("number", lo, f"{prefix}: neck scale low end, mL"),
        f"{prefix}_scale_max": Option("number", hi, f"{prefix}: neck scale high end, mL"),
        f"{prefix}_division": Option("positive", division, f"{prefix}: neck scale division, mL"),
    }


DISPENSER_OPTIONS: dict[str, Option] = {
    "product": Option("str", "RON95", "product in the line (RON95, RON92, E5, diesel, ...)"),
    "density15": Option("positive", 745.0, "product density at 15 °C, g/L"),
    "beta": Option("nonneg", None, "product cubical expansion per °C (default by product)"),
    "fuel_temperature": Option("number", 28.0, "fuel temperature in the line, °C"),
    "measure_warming": Option("number", 0.3, "fuel warming in the proving measure, °C"),
    "max_flow": Option("positive", 45.0, "the pump's maximum flow, L/min"),
    "ramp_time": Option("nonneg", 1.0, "seconds from nozzle open to full flow"),
    "slowdown_volume": Option("nonneg", 0.2, "L before the preset where the flow slows down"),
    "slowdown_flow": Option("positive", 5.0, "slow-down flow before the preset, L/min"),
    "error_curve": Option("pairs", [], "[flow L/min, meter error %] points"),
    "error_offset": Option("number", 0.0, "meter error added at every flow, %"),
    "repeatability": Option("nonneg", 0.0, "standard deviation of the error per delivery, %"),
    "unit_price": Option("positive", 23450.0, "unit price, đồng per litre"),
    "resolution": Option("positive", 0.01, "volume display interval, L"),
    "amount_resolution": Option("positive", 1.0, "amount display interval, đồng"),
    "standalone": Option("bool", True, "no console needed: the keypad preset authorises"),
    "totals_volume": Option("nonneg", 123456.78, "volume totalizer at start, L"),
    "totals_amount": Option("nonneg", 2894561234.0, "amount totalizer at start, đồng"),
    **_measure_options("measure", 20.0, -100.0, 100.0, 5.0),
    **_measure_options("mmq_measure", 2.0, -50.0, 50.0, 5.0),
}

_LINE_KEYS = ("product", "density15", "beta", "fuel_temperature")
_DISPENSER_KEYS = ("max_flow", "ramp_time", "slowdown_volume", "slowdown_flow", "error_curve",
                   "error_offset", "repeatability", "unit_price", "resolution",
                   "amount_resolution", "standalone", "totals_volume", "totals_amount")


def _build(world: SimWorld, name: str, options: dict[str, Any]
           ) -> tuple[SimDispenser, Callable[[], LineSession]]:
    line = fuel_line(world, {k: options[k] for k in _LINE_KEYS if options.get(k) is not None})
    dispenser = SimDispenser(world.clock, line, world.rng_for(name),
                             **{k: options[k] for k in _DISPENSER_KEYS})
    for prefix in MEASURES:
        if prefix in world.names():
            continue
        world.add(prefix, SimProvingMeasure(
            line, volume=options[f"{prefix}_volume"], gamma=options[f"{prefix}_gamma"],
            reference_temperature=options[f"{prefix}_reference_temperature"],
            scale_min=options[f"{prefix}_scale_min"], scale_max=options[f"{prefix}_scale_max"],
            division=options[f"{prefix}_division"], warming=options["measure_warming"]))
    faults, rnd = world.faults(name), world.random_for(name)
    return dispenser, lambda: DispenserSession(dispenser, world.clock, faults, rnd)


register_simulator_type(SimulatorType(
    "sim_dispenser", DISPENSER_OPTIONS, _build,
    "fuel dispenser (IFSF states, flow profile, meter error curve) on an ASCII console "
    "protocol, with the proving measures it fills"))

"""Fuel dispenser (fuelling point): verification by the proving-measure or master-meter method.

Follows ĐLVN 10:2013 (the Vietnamese verification procedure, ±0.3 %) and OIML R117-1/-2
(MPE class 0.5, quantities below 2 L, E_min, the MMQ test), as modelled in benchctl's
METROLOGY.md §3. Profiles (``--param profile=dlvn|oiml``) are data in
:mod:`benchctl.metrology.fuel`.

Methods (``--param method=...``):

* ``proving_measure`` (the field method, the primary one): the technician delivers into a
  proving measure and types what he reads: the dispenser display (volume, amount), the
  stopwatch, the fuel temperature at the nozzle, the measure's neck scale and the fuel
  temperature in the measure. Every entry is a number request with its unit, range and the
  scale division as resolution, validated here as well as by the operator channel. A bench
  with a data link to the dispenser (``--param dispenser_reading=auto``, the default) reads the
  display through it instead, authorises each delivery with a preset and watches it.
* ``master_meter`` (automatic): a Coriolis master meter in line; its mass total divided by
  the line density is the reference volume (corrected for the meter's certified error).

Steps:
  1. Ambient conditions at start (when the bench has an environment monitor).
  2. Deliveries at Qmax (``qmax.delivery1`` …), at the intermediate rate when asked
     (``qint.…``), at Qmin (``qmin.…``): ``deliveries`` each (3 by default).
  3. The MMQ test (``mmq.delivery1`` …): deliveries of the minimum measured quantity (into a
     measure of that nominal volume, reference slot ``mmq_measure``).
  4. Ambient conditions at end; evaluation: per delivery E = 100 (V_d − V_ref)/V_ref, its U,
     the MPE and the verdict; per rate the repeatability (max − min ≤ 0.4 MPE); the price
     check; the overall verdict naming the failing rate(s).

A delivery that is interrupted (the nozzle hung up before the preset, the data link lost,
the technician reports it interrupted, a reading off the neck scale) is never counted: it is
recorded as its own point ``<rate>.delivery<n>.attempt<i>`` with ``discarded`` and the
reason, and the delivery is repeated. A link that stays lost pauses the run (retry/abort);
the run resumes at the delivery it was on.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from benchctl import i18n
from benchctl.assets import DutSpec, FlowMeterSpec, FuelDispenserSpec, ProvingMeasureSpec
from benchctl.engine.operators import check_number
from benchctl.errors import BenchctlError, DutParameterError, InstrumentError, RunAborted
from benchctl.instruments import Reading
from benchctl.metrology import fuel, gum
from benchctl.metrology.units import convert
from benchctl.operator import OperatorRequest

ID = "fuel_dispenser"
TITLE = "Fuel dispenser: verification (proving measure or master meter)"
VERSION = "1.0"
DOCUMENTS = "ĐLVN 10:2013; OIML R117-1:2007 and R117-2 (MID MI-005 class 0.5)"
DUT_KIND = "fuel_dispenser"
MODES = ("verify",)
INSTRUMENTS = {
    "dispenser": {"role": "fuel_dispenser", "dut": True, "optional": True},
    "master_meter": {"role": "flow_meter", "optional": True},
    "environment": {"role": "environment_monitor", "optional": True},
}
#: The proving-measure method with the MMQ test; see :func:`references_for`.
REFERENCES = {"measure": "proving_measure", "mmq_measure": "proving_measure"}
PARAMETERS: dict[str, tuple[type, Any, str]] = {
    "method": (str, "proving_measure", "proving_measure (operator entries) or master_meter "
               "(automatic)"),
    "profile": (str, "dlvn", "MPE profile: dlvn (ĐLVN 10, ±0.3 %) or oiml (R117 class 0.5)"),
    "rates": (str, "qmax,qmin", "the rates to test, comma-separated: qmax, qmin (qint comes "
              "with q_intermediate)"),
    "deliveries": (int, 3, "deliveries at each flow rate"),
    "volume": (float, None, "delivery volume in L (proving measure: its nominal volume; "
               "master meter: 20 L by default)"),
    "q_intermediate": (float, None, "also test at this intermediate flow rate, L/min"),
    "mmq_test": (bool, True, "deliveries of the minimum measured quantity (MMQ)"),
    "mmq_flow": (float, None, "flow rate of the MMQ deliveries, L/min (default Qmax)"),
    "repeatability_factor": (float, None, "repeatability limit as a fraction of the MPE "
                             "(default the profile's, 0.4)"),
    "beta": (float, None, "the product's cubical expansion per °C (default: the DUT's)"),
    "meter_temperature": (str, "entry", "entry: the technician measures the fuel temperature "
                          "at the nozzle too (fuel expansion correction); none: not measured"),
    "dispenser_reading": (str, "auto", "auto: the dispenser's data link when the bench has "
                          "one, else the technician; operator: always the technician; link"),
    "u_temperature": (float, 0.1, "standard uncertainty of a temperature measurement, °C"),
    "thermometer_resolution": (float, 0.1, "thermometer division, °C"),
    "stopwatch_resolution": (float, 0.1, "stopwatch resolution, s"),
    "max_attempts": (int, 5, "discarded attempts of one delivery before the operator is asked"),
    "poll_interval": (float, 0.5, "seconds between looks at the dispenser during a delivery "
                      "(the delivery time is known to one interval)"),
    "short_delivery_pct": (float, 2.0, "without a preset: a delivery this % short of the "
                           "volume asked is taken as interrupted"),
}
PARAMETER_CHOICES = {
    "method": ("proving_measure", "master_meter"),
    "profile": tuple(fuel.PROFILES),
    "meter_temperature": ("entry", "none"),
    "dispenser_reading": ("auto", "operator", "link"),
}

#: Attempts at one operator entry before the delivery is discarded.
ENTRY_ATTEMPTS = 3
#: Units of the numbers the technician types.
VOLUME_UNIT, AMOUNT_UNIT, TEMP_UNIT, TIME_UNIT = "L", "VND", "degC", "s"

MESSAGES: dict[str, dict[str, str]] = {
    "step.fuel.rate": {"en": "Deliveries at {rate} ({flow} L/min, {volume} L)",
                       "vi": "Các lần cấp tại {rate} ({flow} L/min, {volume} L)"},
    "fuel.deliver.measure": {
        "en": "{key}, delivery {n} of {total} at {rate}: empty the proving measure {measure} "
              "and let it drain, close its valve. Lift the nozzle and deliver {volume} L at "
              "{flow} L/min into the measure (time it with the stopwatch), then hang the nozzle "
              "up. Confirm when done; answer no if the delivery was interrupted (nozzle hung "
              "up early, spill, overflow).",
        "vi": "{key}, lần cấp {n}/{total} tại {rate}: xả hết bình chuẩn {measure}, để ráo, "
              "đóng van. Nhấc cò súng, cấp {volume} L với lưu lượng {flow} L/min vào bình "
              "chuẩn (bấm giờ bằng đồng hồ bấm giây), rồi gác cò súng. Xác nhận khi xong; trả "
              "lời không nếu lần cấp bị gián đoạn (gác cò giữa chừng, đổ, tràn)."},
    "fuel.deliver.meter": {
        "en": "{key}, delivery {n} of {total} at {rate}: lift the nozzle and deliver {volume} L "
              "at {flow} L/min through the master meter, then hang the nozzle up. Confirm when "
              "done; answer no if the delivery was interrupted.",
        "vi": "{key}, lần cấp {n}/{total} tại {rate}: nhấc cò súng, cấp {volume} L với lưu "
              "lượng {flow} L/min qua đồng hồ chuẩn, rồi gác cò súng. Xác nhận khi xong; trả "
              "lời không nếu lần cấp bị gián đoạn."},
    "fuel.read.volume": {
        "en": "Read the dispenser display: volume delivered, in L (display interval "
              "{resolution} L).",
        "vi": "Đọc chỉ thị của cột đo: thể tích đã cấp, theo L (giá trị độ chia {resolution} L)."},
    "fuel.read.amount": {
        "en": "Read the dispenser display: amount to pay, in đồng.",
        "vi": "Đọc chỉ thị của cột đo: số tiền, theo đồng."},
    "fuel.read.duration": {
        "en": "Enter the delivery time from the stopwatch, in s (nozzle opened to closed).",
        "vi": "Nhập thời gian cấp theo đồng hồ bấm giây, theo s (từ lúc mở đến lúc đóng cò)."},
    "fuel.read.meter_temperature": {
        "en": "Enter the fuel temperature at the nozzle, in °C (thermometer division "
              "{resolution} °C).",
        "vi": "Nhập nhiệt độ nhiên liệu tại vòi cấp, theo °C (giá trị độ chia nhiệt kế "
              "{resolution} °C)."},
    "fuel.read.neck": {
        "en": "Read the neck scale of proving measure {measure} at the bottom of the meniscus, "
              "in {unit} (division {division} {unit}, scale {low} … {high} {unit}).",
        "vi": "Đọc thang đo cổ bình chuẩn {measure} tại đáy mặt khum, theo {unit} (giá trị độ "
              "chia {division} {unit}, thang đo {low} … {high} {unit})."},
    "fuel.read.measure_temperature": {
        "en": "Enter the fuel temperature in proving measure {measure}, in °C (thermometer "
              "division {resolution} °C).",
        "vi": "Nhập nhiệt độ nhiên liệu trong bình chuẩn {measure}, theo °C (giá trị độ chia "
              "nhiệt kế {resolution} °C)."},
    "fuel.not_accepted": {"en": "Not accepted: {reason}.", "vi": "Không chấp nhận: {reason}."},
    "fuel.off_scale": {
        "en": "{value} {unit} is outside the neck scale ({low} … {high} {unit}): the level "
              "cannot be read. discard = discard this delivery and repeat it; re-enter = type "
              "the reading again.",
        "vi": "{value} {unit} nằm ngoài thang đo cổ bình ({low} … {high} {unit}): không đọc "
              "được mức. discard = hủy lần cấp này và cấp lại; re-enter = nhập lại số đọc."},
    "fuel.too_many": {
        "en": "{count} attempts of {key} were discarded (last: {reason}). retry = try again; "
              "abort = stop the run (it can be resumed).",
        "vi": "{count} lần thử của {key} đã bị hủy (lần cuối: {reason}). retry = thử lại; "
              "abort = dừng phép đo (có thể tiếp tục sau)."},
    "fuel.hang_up": {
        "en": "The dispenser is {state}: hang the nozzle up and confirm.",
        "vi": "Cột đo đang ở trạng thái {state}: gác cò súng rồi xác nhận."},
}
i18n.register(MESSAGES)


# -- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """One test flow rate and what is delivered at it."""

    key: str
    """qmax, qint, qmin or mmq: the prefix of the point keys."""
    label: str
    flow: float
    """L/min."""
    volume: float
    """L."""
    measure: str | None
    """Reference slot of the proving measure (None with the master meter)."""


def references_for(params: dict[str, Any]) -> dict[str, str]:
    """The reference standards a job needs: proving measures, or the master meter."""
    if params.get("method", "proving_measure") == "master_meter":
        return {"master_meter": "flow_meter"}
    refs = {"measure": "proving_measure"}
    if params.get("mmq_test", True):
        refs["mmq_measure"] = "proving_measure"
    return refs


def reference_range(dut: DutSpec, params: dict[str, Any]) -> dict[str, tuple[float, float, str]]:
    """The flow range the master meter is used over (checked against its certificate)."""
    if params.get("method", "proving_measure") != "master_meter":
        return {}
    flows = [r.flow for r in plan(FuelDispenserSpec.from_dut(dut), params)]
    return {"master_meter": (min(flows), max(flows), "L/min")}


def plan(spec: FuelDispenserSpec, params: dict[str, Any],
         measures: dict[str, ProvingMeasureSpec] | None = None) -> list[Rate]:
    """The rates and volumes of the job; refuses impossible combinations with the reason."""
    proving = params.get("method", "proving_measure") == "proving_measure"
    measures = measures or {}
    volume = params.get("volume")
    main = measures.get("measure")
    if proving and main is not None:
        if volume is not None and abs(float(volume) - main.nominal_volume) > 1e-9:
            raise DutParameterError(
                f"volume = {float(volume):g} L: with the proving-measure method each delivery "
                f"fills the measure {main.asset_id} to its nominal {main.nominal_volume:g} L")
        volume = main.nominal_volume
    volume = float(volume if volume is not None else 20.0)
    if volume < spec.mmq:
        raise DutParameterError(f"volume = {volume:g} L is below the dispenser's MMQ "
                                f"({spec.mmq:g} L)")
    if int(params.get("deliveries", 3)) < 1:
        raise DutParameterError("deliveries must be at least 1")
    slot = "measure" if proving else None
    chosen = [r.strip() for r in str(params.get("rates") or "qmax,qmin").split(",") if r.strip()]
    for r in chosen:
        if r not in ("qmax", "qint", "qmin"):
            raise DutParameterError(f"rates: {r!r} is not a rate; expected qmax, qint or qmin "
                                    "(comma-separated)")
    qi = params.get("q_intermediate")
    if "qint" in chosen and qi is None:
        raise DutParameterError("rates: qint needs q_intermediate = <flow in L/min>")
    rates = []
    if "qmax" in chosen:
        rates.append(Rate("qmax", "Qmax", spec.qmax, volume, slot))
    if qi is not None:
        if not spec.qmin < float(qi) < spec.qmax:
            raise DutParameterError(f"q_intermediate = {float(qi):g} L/min is not between Qmin "
                                    f"({spec.qmin:g}) and Qmax ({spec.qmax:g} L/min)")
        rates.append(Rate("qint", "Qint", float(qi), volume, slot))
    if "qmin" in chosen:
        rates.append(Rate("qmin", "Qmin", spec.qmin, volume, slot))
    if params.get("mmq_test", True):
        flow = float(params.get("mmq_flow") or spec.qmax)
        if not spec.qmin <= flow <= spec.qmax:
            raise DutParameterError(f"mmq_flow = {flow:g} L/min is outside Qmin … Qmax "
                                    f"({spec.qmin:g} … {spec.qmax:g} L/min)")
        small = measures.get("mmq_measure")
        if proving and small is not None and abs(small.nominal_volume - spec.mmq) > 1e-9:
            raise DutParameterError(
                f"the MMQ test delivers the MMQ ({spec.mmq:g} L) into a measure of that "
                f"nominal volume; reference mmq_measure ({small.asset_id}) holds "
                f"{small.nominal_volume:g} L")
        rates.append(Rate("mmq", "MMQ", flow, spec.mmq, "mmq_measure" if proving else None))
    if not rates:
        raise DutParameterError("nothing to test: no rates and no MMQ test")
    return rates


def validate(dut: DutSpec, params: dict[str, Any], mode: str) -> None:
    """Refuse a job before it starts: impossible DUT or parameters."""
    spec = FuelDispenserSpec.from_dut(dut)
    fuel.profile(str(params.get("profile", "dlvn")))
    plan(spec, params)
    for key in ("repeatability_factor", "beta", "u_temperature", "thermometer_resolution",
                "stopwatch_resolution", "poll_interval"):
        if params.get(key) is not None and not float(params[key]) > 0:
            raise DutParameterError(f"{key} must be a positive number, got {params[key]!r}")
    if int(params.get("max_attempts", 5)) < 1:
        raise DutParameterError("max_attempts must be at least 1")


# -- the run ---------------------------------------------------------------------------------


class _Discard(Exception):
    """An attempt that must not be counted: why, and what was taken before it ended."""

    def __init__(self, reason: str, data: dict[str, Any] | None = None,
                 readings: list[Reading] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.data = data or {}
        self.readings = readings or []


@dataclass
class _Watch:
    """What was seen of the dispenser and the master meter while a delivery ran."""

    states: list[str] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None
    flows: list[float] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None or self.ended <= self.started:
            return None
        return self.ended - self.started


def _num(x: float, lang: str) -> str:
    text = f"{x:g}"
    return text.replace(".", ",") if lang == "vi" else text


class _Job:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.params: dict[str, Any] = dict(ctx.params)
        self.spec = FuelDispenserSpec.from_dut(ctx.dut)
        self.method = str(self.params.get("method", "proving_measure"))
        self.measures = {slot: ProvingMeasureSpec.from_certificate(ctx.references[slot])
                         for slot in ("measure", "mmq_measure") if slot in ctx.references}
        self.meter: FlowMeterSpec | None = None
        if self.method == "master_meter":
            if not ctx.has("master_meter"):
                raise BenchctlError("method master_meter needs a master meter on the bench (an "
                                    "instrument whose driver plays flow_meter, e.g. "
                                    "micromotion_modbus)")
            if "master_meter" not in ctx.references:
                raise BenchctlError("method master_meter needs the master meter's certificate: "
                                    "add [references.master_meter] with its asset or file")
            self.meter = FlowMeterSpec.from_certificate(ctx.references["master_meter"])
        self.rates = plan(self.spec, self.params, self.measures)
        reading = str(self.params.get("dispenser_reading", "auto"))
        if reading == "link" and not ctx.has("dispenser"):
            raise BenchctlError("dispenser_reading = link, but the bench has no dispenser with a "
                                "data link (a driver that plays fuel_dispenser)")
        self.link = ctx.has("dispenser") and reading != "operator"
        self.dispenser_name = ctx.instrument("dispenser").name if ctx.has("dispenser") \
            else "dispenser"
        self.beta = float(self.params.get("beta") or self.spec.beta)
        self.deliveries = int(self.params.get("deliveries", 3))

    # -- texts -----------------------------------------------------------------------------

    def text(self, message_id: str, **params: Any) -> str:
        """Both languages, the bench's own first, numbers written the way each writes them."""
        primary = self.ctx.locale if self.ctx.locale in ("vi", "en") else "vi"
        other = "en" if primary == "vi" else "vi"

        def one(lang: str) -> str:
            shown = {k: _num(v, lang) if isinstance(v, float) else v for k, v in params.items()}
            return i18n.t(message_id, lang, **shown)

        return f"{one(primary)} / {one(other)}"

    # -- the job ---------------------------------------------------------------------------

    async def run(self) -> None:
        ctx = self.ctx
        step = 1
        await ctx.step(step, "step.ambient_start")
        await ctx.record_ambient("start")
        for rate in self.rates:
            step += 1
            ctx.current_step = (step, "step.fuel.rate")
            await ctx.emit({"event": "step", "step": step, "id": "step.fuel.rate",
                            "title": i18n.t("step.fuel.rate", ctx.locale, rate=rate.label,
                                            flow=f"{rate.flow:g}", volume=f"{rate.volume:g}")})
            for n in range(1, self.deliveries + 1):
                await self.delivery(rate, n)
        await ctx.step(step + 1, "step.ambient_end")
        await ctx.record_ambient("end")
        rows, verdict = evaluate(ctx.done, self.spec, self.params)
        failing = failing_rates(rows)
        await ctx.emit({"event": "verdict", "verdict": verdict, "failing_rates": failing})
        ctx.set_results(rows, verdict)

    async def delivery(self, rate: Rate, n: int) -> None:
        ctx = self.ctx
        key = f"{rate.key}.delivery{n}"
        if ctx.is_done(key):
            return
        max_attempts = int(self.params.get("max_attempts", 5))

        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            while True:
                attempt = 1 + sum(1 for k in ctx.done if k.startswith(f"{key}.attempt"))
                if attempt > 1 and (attempt - 1) % max_attempts == 0:
                    await self.too_many(key, attempt - 1)
                ctx.current_point = key
                try:
                    if self.method == "master_meter":
                        return await self.master_meter(rate, n, key, attempt)
                    return await self.proving(rate, n, key, attempt)
                except _Discard as why:
                    await self.discard(rate, n, key, attempt, why.reason, why.data,
                                       why.readings)
                except InstrumentError as exc:
                    await self.discard(rate, n, key, attempt, f"instrument fault during the "
                                       f"delivery attempt: {exc}", {}, [])
                    raise  # the run pauses; a retry starts a new attempt
                finally:
                    ctx.current_point = key

        await ctx.point(key, measure)

    def base(self, rate: Rate, n: int, attempt: int) -> dict[str, Any]:
        return {"test": "delivery", "rate": rate.key, "rate_label": rate.label, "delivery": n,
                "attempt": attempt, "method": self.method, "flow_nominal": rate.flow,
                "volume_nominal": rate.volume, "unit": VOLUME_UNIT}

    async def discard(self, rate: Rate, n: int, key: str, attempt: int, reason: str,
                      data: dict[str, Any], readings: list[Reading]) -> None:
        """Record the attempt, not counted, with its reason (it stays in the record)."""
        ctx = self.ctx
        akey = f"{key}.attempt{attempt}"
        payload = {**self.base(rate, n, attempt), **data, "discarded": True, "reason": reason}

        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            return payload, readings

        await ctx.point(akey, measure)
        await ctx.emit({"event": "warning", "key": akey,
                        "message": f"{akey} discarded ({reason}); the delivery is repeated"})

    async def too_many(self, key: str, count: int) -> None:
        last = self.ctx.done.get(f"{key}.attempt{count}", {}).get("reason", "")
        answer = await self.ctx.ask(OperatorRequest(
            kind="choice", key=key,
            text=self.text("fuel.too_many", count=count, key=key, reason=last),
            options=("retry", "abort"),
            action={"type": "discarded_deliveries", "key": key, "count": count}))
        if answer.value != "retry":
            raise RunAborted(f"aborted at {key} after {count} discarded deliveries ({last})")

    # -- delivering ------------------------------------------------------------------------

    async def ensure_idle(self, key: str) -> None:
        """Before authorising: the dispenser must be idle (nozzle hung up)."""
        for _ in range(3):
            state = await self.ctx.call("dispenser", "state")
            if state in ("IDLE", "CALLING"):
                return
            if state == "AUTHORISED":  # an authorisation left over (e.g. by a crash): cancel
                await self.ctx.call("dispenser", "stop")
                continue
            await self.ctx.ask(OperatorRequest(
                kind="instruction", key=key, text=self.text("fuel.hang_up", state=state),
                action={"type": "hang_up", "instrument": self.dispenser_name}))
        raise _Discard(f"the dispenser stayed {state} before the delivery")

    async def deliver(self, rate: Rate, n: int, key: str, into: str | None
                      ) -> tuple[bool, _Watch]:
        """Have the technician deliver; with a link authorise first and watch the delivery."""
        ctx = self.ctx
        if self.link:
            await self.ensure_idle(key)
            await ctx.call("dispenser", "authorise", rate.volume)
        action: dict[str, Any] = {
            "type": "deliver", "instrument": self.dispenser_name,
            "volume": {"value": rate.volume, "unit": VOLUME_UNIT},
            "flow": {"value": rate.flow, "unit": "L/min"}}
        if into is not None:
            action["into"] = into
        if into is not None:
            text = self.text("fuel.deliver.measure", key=key, n=n, total=self.deliveries,
                             rate=rate.label, measure=self.measures[into].asset_id,
                             volume=rate.volume, flow=rate.flow)
        else:
            text = self.text("fuel.deliver.meter", key=key, n=n, total=self.deliveries,
                             rate=rate.label, volume=rate.volume, flow=rate.flow)
        await ctx.emit({"event": "delivery_started", "key": key, "rate": rate.key,
                        "flow": rate.flow, "volume": rate.volume})
        ask = asyncio.ensure_future(ctx.ask(OperatorRequest(kind="confirm", key=key, text=text,
                                                            action=action)))
        watch = _Watch()
        try:
            if self.link or self.meter is not None:
                await self.watch(ask, watch)
        except BaseException:
            # The technician is still holding the nozzle: let the delivery end first.
            if not ask.done():
                await asyncio.wait({ask})
            if not ask.cancelled():
                ask.exception()  # seen: the instrument fault is what the run reports
            raise
        answer = await ask
        return bool(answer.ok), watch

    async def watch(self, ask: asyncio.Future[Any], watch: _Watch) -> None:
        ctx = self.ctx
        poll = ctx.clock.real_seconds(float(self.params.get("poll_interval", 0.5)))
        while True:
            state = await ctx.call("dispenser", "state") if self.link else None
            if state is not None and (not watch.states or watch.states[-1] != state):
                watch.states.append(state)
            flowing = state == "FUELLING"
            if self.meter is not None:
                flow: Reading = await ctx.call("master_meter", "read_flow")
                q = convert(flow.value, flow.unit, "L/min")
                if q > 0.05 * self.spec.qmin:
                    watch.flows.append(q)
                    flowing = flowing or state is None
            elif flowing:
                d = await ctx.call("dispenser", "delivery")
                if d.flow:
                    watch.flows.append(float(d.flow))
            # The delivery time (for Q = V·60/t) is known to one poll interval.
            now = ctx.clock.elapsed()
            if flowing:
                watch.started = now if watch.started is None else watch.started
                watch.ended = None
            elif watch.started is not None and watch.ended is None:
                watch.ended = now
            if ask.done() and not flowing:
                return
            await asyncio.wait({ask}, timeout=poll)

    def check_delivered(self, rate: Rate, v_d: float, watch: _Watch, data: dict[str, Any],
                        readings: list[Reading]) -> None:
        """A delivery that stopped short of its preset (or of the volume asked) is discarded."""
        if self.link:
            if v_d < rate.volume - self.spec.resolution / 2:
                seen = " → ".join(watch.states) or "?"
                raise _Discard(f"the nozzle was hung up at {v_d:.2f} L before the "
                               f"{rate.volume:g} L preset (states {seen})", data, readings)
            return
        short = float(self.params.get("short_delivery_pct", 2.0)) / 100.0
        if v_d < rate.volume * (1 - short):
            raise _Discard(f"the delivery ended at {v_d:.2f} L, short of the {rate.volume:g} L "
                           "asked (interrupted)", data, readings)

    # -- operator entries ------------------------------------------------------------------

    async def entry(self, key: str, instrument: str, quantity: str, text: str, *, unit: str,
                    resolution: float, minimum: float | None, maximum: float | None,
                    in_request: bool = True) -> tuple[float, Reading]:
        """One number typed by the technician, validated against range and division.

        Asked again (bounded) with the reason; still bad: the delivery is discarded.
        """
        reason = ""
        for _ in range(ENTRY_ATTEMPTS):
            shown = text if not reason else f"{self.text('fuel.not_accepted', reason=reason)} " \
                                              f"{text}"
            request = OperatorRequest(
                kind="number", key=key, text=shown,
                action={"type": "read", "instrument": instrument, "quantity": quantity,
                        "unit": unit},
                unit=unit, minimum=minimum if in_request else None,
                maximum=maximum if in_request else None, resolution=resolution)
            answer = await self.ctx.ask(request)
            value = answer.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                reason = f"{value!r} is not a number"
                continue
            # Without limits in the request the range is the caller's to judge (a reading
            # off a neck scale is a discarded delivery, not a typo to ask again).
            problem = check_number(request, float(value), answer.unit)
            if problem is None:
                raw = answer.raw or f"{float(value)!r} {unit}".encode()
                return float(value), Reading(float(value), unit, raw=raw,
                                             instrument=f"{instrument}.{quantity}")
            reason = problem
        raise _Discard(f"operator entry out of range: {instrument} {quantity}: {reason}")

    async def neck_reading(self, key: str, slot: str, readings: list[Reading],
                           data: dict[str, Any]) -> float:
        m = self.measures[slot]
        text = self.text("fuel.read.neck", measure=m.asset_id, unit=m.scale_unit,
                         division=m.scale_division, low=m.scale_min, high=m.scale_max)
        for _ in range(ENTRY_ATTEMPTS):
            value, reading = await self.entry(
                key, slot, "neck_scale", text, unit=m.scale_unit, resolution=m.scale_division,
                minimum=m.scale_min, maximum=m.scale_max, in_request=False)
            if m.scale_min <= value <= m.scale_max:
                readings.append(reading)
                return value
            choice = await self.ctx.ask(OperatorRequest(
                kind="choice", key=key,
                text=self.text("fuel.off_scale", value=value, unit=m.scale_unit,
                               low=m.scale_min, high=m.scale_max),
                options=("discard", "re-enter"),
                action={"type": "off_scale", "instrument": slot, "value": value,
                        "unit": m.scale_unit, "scale": [m.scale_min, m.scale_max]}))
            if choice.value != "re-enter":
                readings.append(reading)
                raise _Discard(
                    f"operator entry out of range: the neck-scale reading {value:g} "
                    f"{m.scale_unit} of {m.asset_id} is outside its scale {m.scale_min:g} … "
                    f"{m.scale_max:g} {m.scale_unit} (level off the scale)",
                    {**data, "neck_scale": value}, readings)
        raise _Discard(f"operator entry out of range: no neck-scale reading of {m.asset_id} "
                       "within its scale", data, readings)

    async def display_entries(self, rate: Rate, key: str, readings: list[Reading]
                              ) -> tuple[float, float]:
        spec = self.spec
        top = rate.volume * 1.1
        v_d, r = await self.entry(
            key, self.dispenser_name, "volume",
            self.text("fuel.read.volume", resolution=spec.resolution), unit=VOLUME_UNIT,
            resolution=spec.resolution, minimum=spec.resolution,
            maximum=math.ceil(top / spec.resolution) * spec.resolution)
        readings.append(r)
        most = math.ceil(top * spec.unit_price / spec.amount_resolution) * spec.amount_resolution
        amount, r = await self.entry(
            key, self.dispenser_name, "amount", self.text("fuel.read.amount"), unit=AMOUNT_UNIT,
            resolution=spec.amount_resolution, minimum=0.0, maximum=most)
        readings.append(r)
        return v_d, amount

    async def temperature(self, key: str, instrument: str, message_id: str,
                          readings: list[Reading], **params: Any) -> float:
        res = float(self.params.get("thermometer_resolution", 0.1))
        value, r = await self.entry(key, instrument, "temperature",
                                    self.text(message_id, resolution=res, **params),
                                    unit=TEMP_UNIT, resolution=res, minimum=-10.0, maximum=60.0)
        readings.append(r)
        return value

    # -- the two methods -------------------------------------------------------------------

    async def proving(self, rate: Rate, n: int, key: str, attempt: int
                      ) -> tuple[dict[str, Any], list[Reading]]:
        ctx = self.ctx
        assert rate.measure is not None
        m = self.measures[rate.measure]
        data = self.base(rate, n, attempt)
        data.update(measure=m.asset_id, certificate=m.certificate)
        readings: list[Reading] = []
        ok, watch = await self.deliver(rate, n, key, rate.measure)
        if not ok:
            raise _Discard("the technician reported the delivery as interrupted", data)
        if self.link:
            d = await ctx.call("dispenser", "delivery")
            v_d, amount, unit_price = d.volume.value, d.amount, d.unit_price or \
                self.spec.unit_price
            readings.append(d.volume)
            duration = watch.duration
            data["dispenser_states"] = watch.states
        else:
            v_d, amount = await self.display_entries(rate, key, readings)
            unit_price = self.spec.unit_price
            res = float(self.params.get("stopwatch_resolution", 0.1))
            duration, r = await self.entry(key, self.dispenser_name, "duration",
                                           self.text("fuel.read.duration"), unit=TIME_UNIT,
                                           resolution=res, minimum=res, maximum=7200.0)
            readings.append(r)
        data.update(indicated=v_d, amount=amount, unit_price=unit_price)
        self.check_delivered(rate, v_d, watch, data, readings)
        t_meter = None
        if self.params.get("meter_temperature", "entry") == "entry":
            t_meter = await self.temperature(key, self.dispenser_name,
                                             "fuel.read.meter_temperature", readings)
        neck = await self.neck_reading(key, rate.measure, readings, data)
        t_measure = await self.temperature(key, rate.measure, "fuel.read.measure_temperature",
                                           readings, measure=m.asset_id)
        scale_l = m.scale_to_l(neck)
        v_ref = fuel.reference_volume_proving(
            certified_volume=m.volume, scale_reading=scale_l, gamma=m.gamma,
            t_measure=t_measure, t_ref=m.reference_temperature, beta=self.beta, t_meter=t_meter)
        data.update(
            reference=v_ref, v_read=m.volume + scale_l, neck_scale=neck,
            scale_unit=m.scale_unit, t_measure=t_measure, t_meter=t_meter,
            duration_s=duration, flow_measured=self.flow(v_ref, duration, watch),
            gamma=m.gamma, beta=self.beta,
            reference_temperature=m.reference_temperature,
            u_reference_pct=m.u_rel_pct, reading_half_width_l=m.scale_to_l(m.scale_division) / 2,
            display_interval_l=self.spec.resolution,
            u_temperature_c=float(self.params.get("u_temperature", 0.1)))
        return data, readings

    async def master_meter(self, rate: Rate, n: int, key: str, attempt: int
                           ) -> tuple[dict[str, Any], list[Reading]]:
        ctx = self.ctx
        assert self.meter is not None
        data = self.base(rate, n, attempt)
        data.update(master_meter=self.meter.asset_id, certificate=self.meter.certificate)
        readings: list[Reading] = []
        await ctx.call("master_meter", "reset_totals")
        zero = await ctx.call("master_meter", "read_totals")
        if abs(convert(zero.volume.value, zero.volume.unit, "L")) > 0.001:
            raise _Discard(f"the master meter's totals did not reset "
                           f"({zero.volume.value:g} {zero.volume.unit})", data)
        ok, watch = await self.deliver(rate, n, key, None)
        if not ok:
            raise _Discard("the technician reported the delivery as interrupted", data)
        await self.settle()
        if self.link:
            d, totals = await ctx.read_together(("dispenser", "delivery"),
                                                ("master_meter", "read_totals"))
            v_d, amount, unit_price = d.volume.value, d.amount, d.unit_price or \
                self.spec.unit_price
            readings.append(d.volume)
            skew = abs((d.volume.timestamp - totals.mass.timestamp).total_seconds())
            data.update(skew_s=round(skew, 3), dispenser_states=watch.states)
        else:
            totals = await ctx.call("master_meter", "read_totals")
            v_d, amount = await self.display_entries(rate, key, readings)
            unit_price = self.spec.unit_price
        readings += [totals.mass, totals.volume]
        density: Reading = await ctx.call("master_meter", "read_density")
        temperature: Reading = await ctx.call("master_meter", "read_temperature")
        readings += [density, temperature]
        mass_g = convert(totals.mass.value, totals.mass.unit, "g")
        rho = convert(density.value, density.unit, "g/cm**3")
        v_ref = fuel.master_meter_volume(mass_g, rho, self.meter.error_pct)
        data.update(indicated=v_d, amount=amount, unit_price=unit_price)
        self.check_delivered(rate, v_d, watch, {**data, "reference": v_ref}, readings)
        duration = watch.duration
        data.update(
            reference=v_ref, mass_g=mass_g, density_g_cm3=rho,
            meter_volume_l=convert(totals.volume.value, totals.volume.unit, "L"),
            t_line=convert(temperature.value, temperature.unit, "degC"),
            meter_error_pct=self.meter.error_pct, duration_s=duration,
            flow_measured=self.flow(v_ref, duration, watch),
            u_reference_pct=self.meter.u_rel_pct, display_interval_l=self.spec.resolution)
        return data, readings

    @staticmethod
    def flow(volume: float, duration: float | None, watch: _Watch) -> float | None:
        """The delivery's flow rate, L/min: the median of the flow the instruments indicated
        while it ran (master meter, else the dispenser), else Q = V · 60 / t.

        Not V/t from the polls' timing: that is known only to a poll interval, and in a
        simulation run faster than real time it would depend on the speed.
        """
        if watch.flows:
            return float(statistics.median(watch.flows))
        return fuel.flow_rate(volume, duration) if duration else None

    async def settle(self, limit: float = 30.0) -> None:
        """Wait (procedure time) until the master meter sees no flow."""
        ctx = self.ctx
        waited = 0.0
        while waited < limit:
            flow: Reading = await ctx.call("master_meter", "read_flow")
            if abs(convert(flow.value, flow.unit, "L/min")) <= 0.01 * self.spec.qmin:
                return
            await ctx.clock.sleep(0.5)
            waited += 0.5
        raise _Discard(f"the master meter still saw flow {limit:g} s after the delivery")


async def run(ctx: Any) -> None:
    await _Job(ctx).run()


# -- evaluation (pure) ---------------------------------------------------------------------------

ORDER = ("qmax", "qint", "qmin", "mmq")
LABELS = {"qmax": "Qmax", "qint": "Qint", "qmin": "Qmin", "mmq": "MMQ"}


def _budget(v: dict[str, Any]) -> gum.BudgetResult:
    t_meter, t_measure = v.get("t_meter"), v.get("t_measure")
    two = t_meter is not None and t_measure is not None
    delta = float(t_meter) - float(t_measure) if t_meter is not None and t_measure is not None \
        else 0.0
    return fuel.delivery_budget(fuel.DeliveryUncertainty(
        volume_l=float(v["reference"]), reference_rel_pct=float(v["u_reference_pct"]),
        reference_reading_l=float(v.get("reading_half_width_l") or 0.0),
        display_interval_l=float(v.get("display_interval_l") or 0.0),
        u_temperature_c=float(v.get("u_temperature_c") or 0.0) if t_measure is not None
        else 0.0,
        gamma=float(v.get("gamma") or 0.0), beta=float(v.get("beta") or 0.0),
        delta_t_c=delta, two_temperatures=two))


def evaluate(points: dict[str, dict[str, Any]], spec: FuelDispenserSpec,
             params: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Pure: the recorded points -> result rows and the overall verdict."""
    prof = fuel.profile(str(params.get("profile", "dlvn")))
    factor = float(params.get("repeatability_factor") or prof.repeatability_factor)
    by_rate: dict[str, list[dict[str, Any]]] = {}
    price_rows: list[dict[str, Any]] = []
    for key, v in points.items():
        if v.get("test") != "delivery":
            continue
        rate = str(v["rate"])
        common: dict[str, Any] = {
            "key": key, "test": "delivery", "position": None, "direction": None,
            "series": v.get("delivery"), "flow": v.get("flow_nominal"),
            "nominal": v.get("volume_nominal"), "unit": VOLUME_UNIT, "error_unit": "%",
            "rate": rate, "rate_label": LABELS.get(rate, rate), "attempt": v.get("attempt"),
            "method": v.get("method")}
        if v.get("discarded"):
            by_rate.setdefault(rate, []).append({
                **common, "reference": v.get("reference"), "indicated": v.get("indicated"),
                "error": None, "U": None, "k": None, "mpe": None, "verdict": "discarded",
                "discarded": True, "reason": v.get("reason")})
            continue
        error = fuel.error_pct(float(v["indicated"]), float(v["reference"]))
        mpe = fuel.mpe_pct(float(v["indicated"]), prof, spec.mmq)
        budget = _budget(v)
        U = gum.round_uncertainty(budget.U)
        row = {**common, "reference": round(float(v["reference"]), 6),
               "indicated": v["indicated"], "error": round(error, 4), "U": U,
               "k": round(budget.k, 2), "mpe": round(mpe, 4),
               "verdict": "pass" if abs(error) <= mpe + 1e-9 else "fail",
               "flow_measured": (round(float(v["flow_measured"]), 2)
                                 if v.get("flow_measured") is not None else None),
               "t_measure": v.get("t_measure"), "t_meter": v.get("t_meter"),
               "t_line": v.get("t_line"), "neck_scale": v.get("neck_scale"),
               "amount": v.get("amount"), "unit_price": v.get("unit_price")}
        amount = v.get("amount")
        if amount is not None and v.get("unit_price"):
            p_error = fuel.price_error(float(amount), float(v["indicated"]),
                                       float(v["unit_price"]))
            row["price_error"] = round(p_error, 2)
            row["price_verdict"] = ("pass" if abs(p_error) <= spec.amount_resolution / 2 + 1e-6
                                    else "fail")
            price_rows.append(row)
        by_rate.setdefault(rate, []).append(row)
    rows: list[dict[str, Any]] = []
    rates = sorted(by_rate, key=lambda r: ORDER.index(r) if r in ORDER else len(ORDER))
    for rate in rates:
        deliveries = by_rate[rate]
        rows.extend(deliveries)
        counted = [r for r in deliveries if not r.get("discarded")]
        if not counted:
            continue
        errors = [float(r["error"]) for r in counted]
        mpe = min(float(r["mpe"]) for r in counted)
        spread = fuel.repeatability(errors)
        limit = factor * mpe
        rep_ok = len(errors) < 2 or spread <= limit + 1e-9
        failed = [r["key"] for r in counted if r["verdict"] == "fail"]
        rows.append({
            "key": rate, "test": "rate", "position": None, "direction": None, "series": None,
            "flow": counted[0]["flow"], "nominal": counted[0]["nominal"], "unit": VOLUME_UNIT,
            "reference": None, "indicated": None, "error": round(statistics.fmean(errors), 4),
            "error_unit": "%", "U": max(float(r["U"]) for r in counted), "k": None, "mpe": mpe,
            "verdict": "pass" if rep_ok and not failed else "fail",
            "rate": rate, "rate_label": LABELS.get(rate, rate), "n": len(counted),
            "discarded": len(deliveries) - len(counted), "range": round(spread, 4),
            "repeatability_limit": round(limit, 4),
            "repeatability_verdict": "pass" if rep_ok else "fail", "failed_deliveries": failed})
    if price_rows:
        worst = max(price_rows, key=lambda r: abs(float(r["price_error"])))
        rows.append({
            "key": "price", "test": "price", "position": None, "direction": None,
            "series": None, "flow": None, "nominal": None, "unit": AMOUNT_UNIT,
            "reference": None, "indicated": None, "error": worst["price_error"],
            "error_unit": AMOUNT_UNIT, "U": None, "k": None,
            "mpe": spec.amount_resolution / 2,
            "verdict": "pass" if all(r["price_verdict"] == "pass" for r in price_rows)
            else "fail", "worst_delivery": worst["key"], "checked": len(price_rows)})
    return rows, overall(r["verdict"] for r in rows if r["test"] in ("rate", "price"))


def overall(verdicts: Any) -> str:
    vs = set(verdicts)
    return "fail" if "fail" in vs else "pass"


def failing_rates(rows: list[dict[str, Any]]) -> list[str]:
    """The rates (Qmax, Qmin, ...) whose deliveries or repeatability failed."""
    return [str(r["rate_label"]) for r in rows if r["test"] == "rate" and r["verdict"] == "fail"]


# -- the result table ----------------------------------------------------------------------------


def _extra(p: dict[str, Any]) -> dict[str, Any]:
    return {**p, **(p.get("extra") or {})}


def _f(x: Any, fmt: str) -> str:
    return "—" if x is None else format(float(x), fmt)


def format_table(doc: dict[str, Any]) -> str:
    """Per delivery: rate, flow measured, V_dispenser, V_ref, temperatures, E, U, MPE, verdict;
    per rate the mean error and repeatability; the price check; the verdict and failing rate."""
    points = [_extra(p) for p in doc["points"]]
    dut = doc["dut"]
    params = doc.get("params", {})
    method = params.get("method", "proving_measure")
    by = "proving measure" if method == "proving_measure" else "master meter"
    head = (f"run {doc['run_id']} · {doc['procedure']} v{doc['procedure_version']} · "
            f"verification by {by}"
            f" · profile {params.get('profile', 'dlvn')} · {dut['maker']} {dut['model']} "
            f"s/n {dut['serial']} · state {doc['state']}")
    cols = ["delivery", "rate", "Q/(L/min)", "V_disp/L", "V_ref/L", "t/°C", "E/%", "U/%",
            "MPE/%", "verdict"]
    table: list[list[str]] = []
    notes: list[str] = []
    for p in points:
        if p["test"] != "delivery":
            continue
        rate = f"{p.get('rate_label', '')} {_f(p.get('flow'), 'g')}"
        if p.get("discarded"):
            table.append([p["key"], rate, "", _f(p.get("indicated"), ".2f"), "", "", "", "", "",
                          "DISCARDED"])
            notes.append(f"  {p['key']}: discarded, not counted: {p.get('reason')}")
            continue
        temps = [x for x in (p.get("t_measure"), p.get("t_meter"), p.get("t_line"))
                 if x is not None]
        table.append([
            p["key"], rate, _f(p.get("flow_measured"), ".1f"), _f(p["indicated"], ".2f"),
            _f(p["reference"], ".4f"), "/".join(f"{t:g}" for t in temps) or "—",
            _f(p["error"], "+.3f"), _f(p["U"], "g"), _f(p["mpe"], "g"),
            str(p["verdict"]).upper()])
    lines = [head, ""]
    widths = [max(len(str(r[i])) for r in [cols, *table]) for i in range(len(cols))]
    lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in table]
    if notes:
        lines += ["", *notes]
    lines.append("")
    for p in points:
        if p["test"] == "rate":
            lines.append(
                f"{p['rate_label']:<5} {_f(p['flow'], 'g')} L/min: mean E {_f(p['error'], '+.3f')}"
                f" % (MPE ±{_f(p['mpe'], 'g')} %), repeatability {_f(p.get('range'), '.3f')} % "
                f"(limit {_f(p.get('repeatability_limit'), 'g')} %), {p.get('n')} deliveries"
                f"{', ' + str(p['discarded']) + ' discarded' if p.get('discarded') else ''}: "
                f"{str(p['verdict']).upper()}")
        elif p["test"] == "price":
            lines.append(f"price check: {p.get('checked')} deliveries, largest amount − V × unit "
                         f"price = {_f(p['error'], 'g')} đồng (limit ±{_f(p['mpe'], 'g')}): "
                         f"{str(p['verdict']).upper()}")
    env = doc.get("environment", {})
    for label in ("start", "end"):
        e = env.get(label)
        if e and e.get("measured", True):
            lines.append(f"ambient {label}: {e.get('temperature_c')} °C, "
                         f"{e.get('humidity_pct')} %RH, {e.get('pressure_hpa')} hPa")
    refs = ", ".join(f"{r['asset']} (cert {r['certificate']}, due {r['due_date']})"
                     for r in doc["references"])
    lines.append(f"references: {refs}")
    verdict = (doc.get("verdict") or "—").upper()
    failing = [str(p["rate_label"]) for p in points
               if p["test"] == "rate" and p["verdict"] == "fail"]
    if any(p["test"] == "price" and p["verdict"] == "fail" for p in points):
        failing.append("price computation")
    tail = f" — failing: {', '.join(failing)}" if failing else ""
    lines.append(f"verdict: {verdict}{tail}")
    return "\n".join(lines)

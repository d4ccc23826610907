"""Pressure gauge: calibration (DKD-R 6-1) and verification (ĐLVN 08 / EN 837-1 MPE).

The reference is a pressure controller (a PACE), the DUT any pressure indicator: a digital
gauge on Modbus, a 4–20 mA transmitter read by a DMM, or a dial gauge read by the technician.
Follows METROLOGY.md §2 as implemented in :mod:`benchctl.metrology.pressure`.

Steps:
  1. Ambient conditions at start.
  2. Set-up: the technician mounts the gauge; the controller's unit (the DUT's when the
     controller has it, else kPa).
  3. Preloads: to the top and back to zero, as many times as the sequence says (A 3, B 2,
     C 1), holding at the top (``hold_max_s``) and at zero (``hold_s``).
  4. Series: rising and falling through evenly spread points (sequence A: up, down, up, down;
     B: up, down, up; C: up, down).  At each point the controller is set, the procedure polls
     in-limits on the run's clock (``inlimits_timeout_s``; no fixed sleeps), holds
     (``hold_s``; ``hold_max_s`` at the top), then reads the reference and the DUT at the same
     instant and stores the skew between their timestamps.  A point is approached from the
     side its series comes from (after a resume too), so hysteresis is measured, not
     invented.
  5. Zero after the series (for the zero deviation f0).
  6. Ambient conditions at end.
  7. Evaluation: per point mean indication up/down, error (the middle of the hysteresis
     loop: the mean of the rising and the falling means), b′, h, f0, U (k = 2) and the MPE
     of the profile; verdicts (verification: every reading and h within the MPE, simple
     acceptance; calibration: the job's decision rule on the mean error, and h ≤ MPE).

Whatever happens (abort, a fault, a crash), the controller is left safe: control off and
vented, in a ``finally``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchctl import i18n
from benchctl.assets import DutSpec, PressureGaugeSpec
from benchctl.errors import DutParameterError, InstrumentError
from benchctl.instruments import Reading
from benchctl.metrology import decision, gum
from benchctl.metrology import pressure as pm

ID = "pressure_gauge"
TITLE = "Pressure gauge: calibration and verification"
VERSION = "1.0"
DOCUMENTS = ("DKD-R 6-1:2014; EURAMET cg-17; EN 837-1 (classes, MPE); "
             "ĐLVN 08:2011 (verification)")
DUT_KIND = "pressure_gauge"
MODES = ("verify", "calibrate")
INSTRUMENTS = {
    "controller": {"role": "pressure_controller"},
    "gauge": {"role": "pressure_indicator", "dut": True},
    "environment": {"role": "environment_monitor", "optional": True},
}
REFERENCES = {"controller": "pressure_controller"}
PARAMETERS: dict[str, tuple[type, Any, str]] = {
    "sequence": (str, None, "A, B or C (default: from the class; C for verification)"),
    "points": (int, None, "points including zero (default: the sequence's)"),
    "decision_rule": (str, "simple", "simple or guarded (ILAC G8) for calibration conformity"),
    "profile": (str, "en837", "MPE profile: en837 (EN 837-1, ĐLVN 08) or in_service"),
    "hold_s": (float, 30.0, "hold at each point before reading, s"),
    "hold_max_s": (float, 120.0, "hold at the top (and at the top of each preload), s"),
    "inlimits_timeout_s": (float, 120.0, "longest wait for the controller's in-limits, s"),
    "poll_s": (float, 1.0, "interval between in-limits polls, s"),
    "head_height_m": (float, 0.0, "height of the reference level above the DUT's, m"),
    "medium_density": (float, 1.2, "density of the pressure medium, kg/m³ (head correction)"),
    "ref_drift": (float, None, "drift of the reference in its certificate's unit (default: "
                               "the certificate's drift, else 0)"),
}
PARAMETER_CHOICES = {"sequence": ("A", "B", "C"), "decision_rule": ("simple", "guarded"),
                     "profile": ("en837", "in_service")}

#: Units a pressure controller offers; another DUT unit is controlled in kPa and converted.
CONTROLLER_UNITS = ("Pa", "kPa", "MPa", "bar", "mbar", "psi")
#: How many times a reading that left the in-limits band is retaken before giving up.
READ_ATTEMPTS = 3

i18n.register({
    "pressure.step.setup": {"en": "Set-up of the controller and the gauge",
                            "vi": "Chuẩn bị bộ điều khiển áp suất và đồng hồ"},
    "pressure.step.preload": {"en": "Preloading to the maximum",
                              "vi": "Tạo áp trước đến giá trị lớn nhất"},
    "pressure.step.series_up": {"en": "Series with rising pressure",
                                "vi": "Loạt đo áp suất tăng"},
    "pressure.step.series_down": {"en": "Series with falling pressure",
                                  "vi": "Loạt đo áp suất giảm"},
    "pressure.step.zero_after": {"en": "Zero after the series",
                                 "vi": "Điểm không sau các loạt đo"},
    "pressure.step.evaluation": {"en": "Evaluation", "vi": "Đánh giá kết quả"},
    "pressure.mount": {
        "en": "Mount gauge {gauge} on the manifold (vertical, reference level {height} m below "
              "the controller's), open the valve, then confirm.",
        "vi": "Lắp đồng hồ {gauge} vào ống góp (thẳng đứng, mức chuẩn thấp hơn mức của bộ "
              "điều khiển {height} m), mở van, rồi xác nhận.",
    },
})


@dataclass(frozen=True)
class ReferenceStandard:
    """The controller's certificate as the evaluation needs it (pure data)."""

    certificate: str
    unit: str
    U: float
    k: float
    U_relative: bool  # U (and drift) in % of the reading
    drift: float = 0.0

    @classmethod
    def from_certificate(cls, cert: Any, drift: float | None = None) -> ReferenceStandard:
        data = dict(getattr(cert, "data", None) or {})
        asset = getattr(cert, "asset", None)
        unit = str(getattr(asset, "unit", "") or "kPa")
        U_unit = getattr(cert, "U_unit", None)
        U = getattr(cert, "U", None)
        if U is None:
            raise DutParameterError(f"reference certificate {getattr(cert, 'number', '?')} "
                                    "states no U: the calibration has no uncertainty budget")
        relative = U_unit == "%"
        if U_unit and not relative:
            unit = str(U_unit)
        return cls(certificate=str(getattr(cert, "number", "")), unit=unit, U=float(U),
                   k=float(getattr(cert, "k", None) or 2.0), U_relative=relative,
                   drift=float(drift if drift is not None else data.get("drift", 0.0)))

    def expanded(self, reference: float, dut_unit: str) -> tuple[float, float]:
        """(U, drift) of the reference at ``reference`` (in the DUT's unit), in that unit."""
        if self.U_relative:
            return abs(reference) * self.U / 100.0, abs(reference) * self.drift / 100.0
        return (abs(pm.to_unit(self.U, self.unit, dut_unit)),
                abs(pm.to_unit(self.drift, self.unit, dut_unit)))


def plan(spec: PressureGaugeSpec, params: dict[str, Any], mode: str) -> dict[str, Any]:
    """The sequence and its points (in the DUT's unit) from the DUT and the parameters."""
    name = params.get("sequence")
    if name:
        if name not in pm.SEQUENCES:
            raise DutParameterError(f"sequence {name!r}: expected A, B or C")
        seq = pm.SEQUENCES[name]
    else:
        seq = pm.SEQUENCES["C"] if mode == "verify" else pm.sequence_for_class(
            spec.accuracy_class)
    count = params.get("points") or pm.point_count(seq, spec.accuracy_class)
    pts = pm.points(spec.range_low, spec.range_high, int(count))
    for key in ("hold_s", "hold_max_s", "poll_s", "inlimits_timeout_s"):
        value = float(params.get(key, PARAMETERS[key][1]))
        strict = key in ("poll_s", "inlimits_timeout_s")
        if not (math.isfinite(value) and value >= 0) or (strict and value <= 0):
            raise DutParameterError(f"{key} = {value!r}: expected a number of seconds "
                                    f"{'> 0' if strict else '≥ 0'}")
    pm.head_correction(float(params.get("medium_density", 1.2)),
                       float(params.get("head_height_m", 0.0)))
    return {"sequence": seq, "points": pts}


def validate(dut: DutSpec, params: dict[str, Any], mode: str) -> None:
    """Refuse a job before it starts: an impossible gauge or parameters."""
    plan(PressureGaugeSpec.from_dut(dut), params, mode)
    decision.parse_rule(params.get("decision_rule", "simple"))
    pm.mpe_percent(PressureGaugeSpec.from_dut(dut).accuracy_class,
                   str(params.get("profile", "en837")))


def unit_key(unit: str) -> str:
    """A unit as it appears in point keys: ``kgf/cm²`` -> ``kgfcm2``."""
    return unit.replace("/", "").replace("²", "2").replace("**", "").replace(" ", "")


def point_key(series: int, direction: str, value: float, unit: str) -> str:
    return f"series{series}.{direction}.{value:g}{unit_key(unit)}"


async def run(ctx: Any) -> None:
    spec = PressureGaugeSpec.from_dut(ctx.dut)
    p = plan(spec, ctx.params, ctx.mode)
    seq: pm.PressureSequence = p["sequence"]
    pts: list[float] = p["points"]
    unit = spec.unit
    ctrl_unit = unit if unit in CONTROLLER_UNITS else "kPa"
    params = ctx.params
    hold = float(params.get("hold_s", 30.0))
    hold_max = float(params.get("hold_max_s", 120.0))
    timeout = float(params.get("inlimits_timeout_s", 120.0))
    poll = float(params.get("poll_s", 1.0))
    height = float(params.get("head_height_m", 0.0))
    head = pm.to_unit(pm.head_correction(float(params.get("medium_density", 1.2)), height),
                      "Pa", unit)
    top, bottom = pts[-1], pts[0]
    controller = ctx.instrument("controller").config.resource
    state: dict[str, Any] = {"prepared": False, "control": False, "last": None}

    def setpoint(target: float) -> float:
        """The controller setpoint that puts ``target`` (DUT unit) at the DUT."""
        return pm.to_unit(target - head, unit, ctrl_unit)

    async def prepare() -> None:
        if not state["prepared"]:
            await ctx.call("controller", "set_unit", ctrl_unit)
            state["prepared"], state["control"], state["last"] = True, False, None

    async def go(target: float) -> None:
        await ctx.call("controller", "set_setpoint", setpoint(target))
        if not state["control"]:
            await ctx.call("controller", "set_control", True)
            state["control"] = True
        state["last"] = target

    async def settle(target: float) -> Reading:
        """Poll in-limits on the run's clock until the controller is there, or give up."""
        start = ctx.clock.elapsed()
        while True:
            reading, ok = await ctx.call("controller", "read_in_limits")
            if ok:
                return reading
            if ctx.clock.elapsed() - start >= timeout:
                raise InstrumentError(
                    controller, f"controller did not reach in-limits at {target:g} {unit} "
                                f"within {timeout:g} s (it reads {reading.value:g} "
                                f"{reading.unit})")
            await ctx.clock.sleep(poll)

    async def reach(target: float, direction: str) -> None:
        """Set ``target``, approached from below (up) or above (down), and wait for it."""
        last = state["last"]
        if direction == "up" and (last is None or last > target) and target != bottom:
            await go(bottom)
            await settle(bottom)
        if direction == "down" and (last is None or last < target) and target != top:
            await go(top)
            await settle(top)
            await ctx.clock.sleep(hold)
        await go(target)
        await settle(target)

    async def read_pair(target: float) -> tuple[Reading, Reading]:
        """Reference and DUT at the same instant, with the controller still in limits."""
        for _ in range(READ_ATTEMPTS):
            (ref, ok), dut = await ctx.read_together(("controller", "read_in_limits"),
                                                    ("gauge", "read"))
            if ok:
                return ref, dut
            await settle(target)
        raise InstrumentError(controller, f"the pressure kept leaving the in-limits band at "
                                          f"{target:g} {unit} while the gauge was read")

    def in_dut_unit(reading: Reading) -> float:
        return pm.to_unit(reading.value, reading.unit, unit)

    async def series_point(key: str, series: int, direction: str, target: float,
                           test: str = "series") -> dict[str, Any]:
        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            await prepare()
            await reach(target, direction)
            await ctx.clock.sleep(hold_max if target == top and test == "series" else hold)
            ref, dut = await read_pair(target)
            skew = (dut.timestamp - ref.timestamp).total_seconds()
            data = {
                "test": test, "series": series, "direction": direction, "nominal": target,
                "unit": unit, "reference": in_dut_unit(ref) + head,
                "indicated": in_dut_unit(dut),
                "reference_reading": {"value": ref.value, "unit": ref.unit},
                "indicated_reading": {"value": dut.value, "unit": dut.unit},
                "skew_s": round(skew, 6), "head_correction": head,
                "setpoint": {"value": setpoint(target), "unit": ctrl_unit},
            }
            return data, [ref, dut]
        return dict(await ctx.point(key, measure))

    async def preload(i: int) -> None:
        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            await prepare()
            await go(top)
            ref = await settle(top)
            await ctx.clock.sleep(hold_max)
            await go(bottom)
            await settle(bottom)
            await ctx.clock.sleep(hold)
            data = {"test": "preload", "preload": i, "nominal": top, "unit": unit,
                    "reference": in_dut_unit(ref) + head}
            return data, [ref]
        await ctx.point(f"preload.{i}", measure)

    try:
        # 1. Ambient conditions at start
        await ctx.step(1, "step.ambient_start")
        await ctx.record_ambient("start")

        # 2. Set-up
        await ctx.step(2, "pressure.step.setup")
        if not ctx.is_done("preload.1"):
            await ctx.instruct("setup.mount", ctx.t("pressure.mount", gauge=ctx.instrument(
                "gauge").name, height=f"{height:g}"), {"type": "mount_gauge",
                                                        "instrument": ctx.instrument("gauge").name,
                                                        "head_height_m": height})

        # 3. Preloads
        await ctx.step(3, "pressure.step.preload")
        for i in range(1, seq.preloads + 1):
            await preload(i)

        # 4. Series
        for s, direction in enumerate(seq.series, start=1):
            await ctx.step(4, f"pressure.step.series_{direction}")
            order: Sequence[float] = pts if direction == "up" else list(reversed(pts))
            for target in order:
                await series_point(point_key(s, direction, target, unit), s, direction, target)

        # 5. Zero after
        await ctx.step(5, "pressure.step.zero_after")
        await series_point("zero.after", len(seq.series), "down", bottom, test="zero")

        # 6. Ambient conditions at end
        await ctx.step(6, "step.ambient_end")
        await ctx.record_ambient("end")
    finally:
        await _make_safe(ctx)

    # 7. Evaluation
    await ctx.step(7, "pressure.step.evaluation")
    ref_cert = ctx.references["controller"]
    drift = ctx.params.get("ref_drift")
    reference = ReferenceStandard.from_certificate(ref_cert, None if drift is None
                                                   else float(drift))
    results, verdict = evaluate(ctx.done, spec, reference, ctx.params, ctx.mode)
    ctx.set_results(results, verdict)


async def _make_safe(ctx: Any) -> None:
    """Control off and vent, whatever state the run is in; never hides the run's outcome."""
    if not ctx.has("controller"):
        return
    try:
        await ctx.call("controller", "vent")
    except Exception as exc:
        with contextlib.suppress(Exception):
            await ctx.emit({"event": "warning", "message": f"could not vent the controller: "
                                                           f"{exc}; vent it by hand"})


# -- evaluation (pure) -------------------------------------------------------------------------


def evaluate(points: dict[str, dict[str, Any]], spec: PressureGaugeSpec,
             reference: ReferenceStandard, params: dict[str, Any], mode: str,
             ) -> tuple[list[dict[str, Any]], str]:
    """The recorded points -> result rows (each reading, then one summary per point) and the
    overall verdict."""
    unit = spec.unit
    profile = str(params.get("profile", "en837"))
    limit = pm.mpe(spec.range_low, spec.range_high, spec.accuracy_class, profile)
    rule = decision.parse_rule(params.get("decision_rule", "simple"))
    if mode == "verify":
        rule = decision.DecisionRule.SIMPLE
    readings = {k: v for k, v in points.items() if v.get("test") == "series"}
    nominals = sorted({float(v["nominal"]) for v in readings.values()})
    bottom = min(nominals) if nominals else spec.range_low

    def error(v: dict[str, Any]) -> float:
        return float(v["indicated"]) - float(v["reference"])

    zero_rows = [v for v in readings.values() if v["nominal"] == bottom]
    first_zero = min(zero_rows, key=lambda v: (v["series"], v["direction"] != "up"),
                     default=None)
    zero_after = points.get("zero.after")
    f0 = (pm.zero_deviation(error(first_zero), error(zero_after))
          if first_zero is not None and zero_after is not None else 0.0)

    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for key, v in sorted(readings.items(), key=lambda kv: (kv[1]["series"],
                                                            kv[1]["direction"] != "up",
                                                            kv[1]["nominal"]
                                                            * (1 if kv[1]["direction"] == "up"
                                                               else -1))):
        e = error(v)
        rows.append({
            "key": key, "test": "series", "position": None, "direction": v["direction"],
            "series": v["series"], "flow": None, "nominal": v["nominal"], "unit": unit,
            "reference": v["reference"], "indicated": v["indicated"],
            "error": round(e, 9), "error_unit": unit, "U": None, "k": None, "mpe": limit,
            "verdict": "pass" if abs(e) <= limit * (1 + 1e-9) else "fail",
            "skew_s": v.get("skew_s"),
        })
    for nominal in nominals:
        at = [v for v in readings.values() if v["nominal"] == nominal]
        ups = sorted((v for v in at if v["direction"] == "up"), key=lambda v: v["series"])
        downs = sorted((v for v in at if v["direction"] == "down"), key=lambda v: v["series"])
        e_up = [error(v) for v in ups]
        e_down = [error(v) for v in downs]
        e_all = e_up + e_down
        h = pm.hysteresis(e_up, e_down)
        b = pm.repeatability(e_up[0], e_up[1]) if len(e_up) >= 2 else 0.0
        ref_mean = balanced([float(v["reference"]) for v in ups],
                            [float(v["reference"]) for v in downs])
        ind_mean = balanced([float(v["indicated"]) for v in ups],
                            [float(v["indicated"]) for v in downs])
        E = balanced(e_up, e_down)
        U_ref, drift = reference.expanded(ref_mean, unit)
        budget = pm.error_budget(U_ref=U_ref, k_ref=reference.k, resolution=spec.resolution,
                                 zero_dev=f0, repeat=b, hyst=h, drift=drift)
        U = gum.round_uncertainty(budget.U)
        summary: dict[str, Any] = {
            "key": f"point.{nominal:g}{unit_key(unit)}", "test": "point", "position": None,
            "direction": None, "series": None, "flow": None, "nominal": nominal, "unit": unit,
            "reference": ref_mean, "indicated": ind_mean, "error_unit": unit, "mpe": limit,
            "indication_up": pm.mean(float(v["indicated"]) for v in ups) if ups else None,
            "indication_down": pm.mean(float(v["indicated"]) for v in downs) if downs else None,
            "error_up": pm.mean(e_up) if e_up else None,
            "error_down": pm.mean(e_down) if e_down else None,
            "hysteresis": round(h, 9), "repeatability": round(b, 9), "zero_deviation": round(f0, 9),
            "hysteresis_ok": h <= limit * (1 + 1e-9),
            "budget": [[name, c] for name, c in budget.contributions],
            "u": budget.u,
        }
        if mode == "calibrate":
            verdict = decision.decide(E, U, limit, rule)
            if h > limit * (1 + 1e-9):
                verdict = decision.Verdict.FAIL
            summary.update(error=gum.round_value(E, U), U=U, k=round(budget.k, 2),
                           verdict=str(verdict))
        else:
            ok = all(abs(e) <= limit * (1 + 1e-9) for e in e_all) and summary["hysteresis_ok"]
            summary.update(error=round(E, 9), U=U, k=round(budget.k, 2),
                           verdict="pass" if ok else "fail")
        summaries.append(summary)
    rows.extend(summaries)
    return rows, overall(r["verdict"] for r in summaries)


def balanced(ups: Sequence[float], downs: Sequence[float]) -> float:
    """The mean of the rising mean and the falling mean (either alone when the other is
    missing): the middle of the hysteresis loop, whatever the number of series each way
    (sequence B has two rising series and one falling; a plain mean would move the error
    h/6 towards the rising side)."""
    means = [pm.mean(xs) for xs in (ups, downs) if xs]
    return pm.mean(means)


def overall(verdicts: Any) -> str:
    """The worst verdict wins: fail, conditional fail, conditional pass, pass (ILAC G8)."""
    order = ("fail", "conditional_fail", "conditional_pass", "pass")
    vs = set(verdicts)
    return next((v for v in order if v in vs), "pass")


# -- the terminal table ------------------------------------------------------------------------


def _fixed(x: Any, decimals: int) -> str:
    if x is None:
        return "-"
    return f"{float(x):.{max(0, decimals)}f}"


def format_table(doc: dict[str, Any]) -> str:
    """point, reference, indication up/down, error, hysteresis, U, MPE, verdict."""
    unit = doc["dut"].get("unit") or ""
    calib = doc["mode"] == "calibrate"
    head = (f"run {doc['run_id']} · {doc['procedure']} v{doc['procedure_version']} · "
            f"{'calibration' if calib else 'verification'} · {doc['dut']['maker']} "
            f"{doc['dut']['model']} s/n {doc['dut']['serial']} · state {doc['state']}")
    cols = ["point", f"ref/{unit}", f"up/{unit}", f"down/{unit}", f"error/{unit}",
            f"h/{unit}", f"U/{unit}", f"MPE/{unit}", "verdict"]
    resolution = float((doc["dut"].get("params") or {}).get("resolution") or 0.1)
    dec = max(0, -math.floor(math.log10(resolution) + 1e-9))
    table = []
    for p in doc["points"]:
        if p.get("test") != "point":
            continue
        ex = p.get("extra") or {}
        error = p["error"] if calib else (None if p["error"] is None
                                          else round(float(p["error"]), dec + 2))
        table.append([f"{p['nominal']:g}", _fixed(p["reference"], dec + 2),
                      _fixed(ex.get("indication_up"), dec + 1),
                      _fixed(ex.get("indication_down"), dec + 1),
                      "-" if error is None else f"{error:g}",
                      _fixed(ex.get("hysteresis"), dec + 2),
                      "-" if p["U"] is None else f"{p['U']:g}", f"{p['mpe']:g}",
                      (p.get("verdict") or "").upper()])
    lines = [head, ""]
    widths = [max(len(str(r[i])) for r in [cols, *table]) for i in range(len(cols))]
    lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for r in table:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    verdict = doc.get("verdict")
    if verdict:
        lines.append("")
        lines.append(f"verdict: {verdict.upper()}   "
                     f"({'decision rule ' + str(doc.get('decision_rule')) if calib else 'MPE'}"
                     f", profile {doc.get('params', {}).get('profile', 'en837')})")
    return "\n".join(lines)


def reference_range(dut: DutSpec, params: dict[str, Any]) -> dict[str, tuple[float, float, str]]:
    """The controller generates every pressure of the gauge's range: its certificate must
    cover that range (checked before the run, in the gauge's unit converted through pint)."""
    spec = PressureGaugeSpec.from_dut(dut)
    return {"controller": (spec.range_low, spec.range_high, spec.unit)}

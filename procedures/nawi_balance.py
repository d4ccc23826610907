"""Non-automatic weighing instrument (laboratory balance): verification and calibration.

Follows OIML R76-1:2006 (tests and MPE, as adopted by ĐLVN for verification) and EURAMET
cg-18 v4.0 (calibration and its uncertainty), as modelled in benchctl's METROLOGY.md §1.

Steps:
  1. Ambient conditions at start.
  2. Zero: empty pan, zero, record the zero indication.
  3. Eccentricity: load ≈ Max/3 at the centre, then front-left, back-left, back-right,
     front-right.
  4. Repeatability: the same load n times at the centre, the zero recorded between loadings.
  5. Weighing test with increasing loads from Min to Max, then decreasing loads back to zero.
  6. Ambient conditions at end.
  7. Evaluation: errors, MPE, (calibration) U and k per load, verdicts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from benchctl.assets import BalanceSpec, DutSpec
from benchctl.engine import ambient
from benchctl.errors import DutParameterError, InstrumentError
from benchctl.instruments import Reading
from benchctl.metrology import balance_budget, decision, gum, r76
from benchctl.metrology.test_loads import TestLoad, WeightSet, compose

ID = "nawi_balance"
TITLE = "Non-automatic weighing instrument: verification and calibration"
VERSION = "1.0"
DOCUMENTS = "OIML R76-1:2006; EURAMET cg-18 v4.0; ĐLVN (R76 MPE for verification)"
DUT_KIND = "balance"
MODES = ("verify", "calibrate")
INSTRUMENTS = {
    "balance": {"role": "balance", "dut": True},
    "environment": {"role": "environment_monitor", "optional": True},
}
REFERENCES = {"weights": "weight_set"}
# Laboratory conditions for class I/II balances (EURAMET cg-18 §4: stable room, no draughts);
# the run pauses outside them. A lab's own limits: --param ambient_temperature_c=20,25.
AMBIENT_LIMITS = {"temperature_c": (18.0, 27.0), "humidity_pct": (30.0, 80.0)}
PARAMETERS: dict[str, tuple[type, Any, str]] = {
    "decision_rule": (str, "simple", "simple or guarded (ILAC G8) for calibration conformity"),
    "mpe_level": (str, "initial", "initial (verification MPE) or in_service (2 × MPE)"),
    "loads": (list, None, "weighing-test loads in the DUT unit, comma-separated"),
    "ecc_load": (float, None, "eccentricity test load (default ≈ Max/3)"),
    "rep_load": (float, None, "repeatability test load (default ≈ Max/2; Max for III/IIII)"),
    "rep_n": (int, None, "number of repeatability loadings (default 6; 10 for class I)"),
    "down": (bool, True, "also take the decreasing-load series"),
    "stability_timeout": (float, 30.0, "seconds to wait for a stable indication"),
    **ambient.parameters(AMBIENT_LIMITS),
}
PARAMETER_CHOICES = {"decision_rule": ("simple", "guarded"),
                     "mpe_level": ("initial", "in_service")}
POSITIONS = ("centre", "front_left", "back_left", "back_right", "front_right")
UNIT_PER_G = {"mg": 1000.0, "g": 1.0, "kg": 0.001}


def _nice(x: float, step: float) -> float:
    """Round a load down to two significant digits, and to a multiple of ``step``."""
    if x <= 0:
        return step
    exp = math.floor(math.log10(x)) - 1
    v = math.floor(x / 10**exp) * 10**exp
    return max(step, round(v / step) * step)


def plan(spec: BalanceSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The loads of each test (in the DUT unit), from the DUT and the parameters."""
    cls = r76.parse_class(spec.accuracy_class)
    big = cls in (r76.AccuracyClass.III, r76.AccuracyClass.IIII)
    step = spec.e
    loads = params.get("loads")
    if not loads:
        minimum = r76.min_capacity(spec.e, cls)
        candidates = {_nice(minimum, step), spec.max}
        candidates.update(x for x in r76.mpe_step_loads(spec.e, cls) if x < spec.max)
        for frac in (0.5, 0.25, 0.75):
            if len(candidates) >= 5:
                break
            candidates.add(_nice(spec.max * frac, step))
        loads = sorted(candidates)
    loads = [float(x) for x in loads]
    for x in loads:
        if x <= 0 or x > spec.max:
            raise DutParameterError(f"test load {x:g} {spec.unit} is outside 0 … Max "
                                    f"({spec.max:g} {spec.unit})")
    return {
        "loads": sorted(set(loads)),
        "ecc_load": float(params.get("ecc_load") or _nice(spec.max / 3, step)),
        "rep_load": float(params.get("rep_load") or (spec.max if big
                                                      else _nice(spec.max / 2, step))),
        "rep_n": int(params.get("rep_n") or (10 if cls == r76.AccuracyClass.I else 6)),
    }


def validate(dut: DutSpec, params: dict[str, Any], mode: str) -> None:
    """Refuse a job before it starts: impossible DUT or loads the weight set cannot make."""
    plan(BalanceSpec.from_dut(dut), params)
    ambient.build(AMBIENT_LIMITS, params)


def _key_load(x: float, unit: str) -> str:
    return f"{x:g}{unit}"


async def run(ctx: Any) -> None:
    spec = BalanceSpec.from_dut(ctx.dut)
    p = plan(spec, ctx.params)
    weights: WeightSet = ctx.references["weights"]
    to_g = 1.0 / UNIT_PER_G[spec.unit]
    loads = {x: compose(weights, x * to_g) for x in
             {*p["loads"], p["ecc_load"], p["rep_load"]}}
    timeout = ctx.clock.real_seconds(float(ctx.params.get("stability_timeout", 30.0))) + 1.0

    async def place(key: str, load: float, position: str = "centre") -> None:
        tl = loads[load]
        await ctx.instruct(key, ctx.t("place_load", load=f"{load:g} {spec.unit} "
                                      f"({' + '.join(tl.weight_ids)})",
                                      position=ctx.t(f"position.{position}")),
                           {"type": "place_load", "load": {"value": load, "unit": spec.unit},
                            "position": position, "weights": list(tl.weight_ids)})

    async def empty(key: str) -> None:
        await ctx.instruct(key, ctx.t("remove_load"), {"type": "remove_load"})

    async def weigh(key: str, test: str, load: float, **where: Any) -> dict[str, Any]:
        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            if load:
                await place(key, load, where.get("position", "centre"))
            else:
                await empty(key)
            reading: Reading = await ctx.call("balance", "read_stable", timeout)
            tl = loads.get(load)
            ref = tl.conventional_mass_g * UNIT_PER_G[spec.unit] if tl else 0.0
            data = {"test": test, "nominal": load, "unit": spec.unit, "reference": ref,
                    "indicated": reading.value, "stable": reading.stable,
                    "weights": list(tl.weight_ids) if tl else [], **where}
            if reading.unit != spec.unit:
                # Not a value to record: pause so the technician can set the balance's unit.
                raise InstrumentError(ctx.instrument("balance").config.resource,
                                      f"the balance answers in {reading.unit}; the DUT is "
                                      f"calibrated in {spec.unit}: set its unit to {spec.unit}")
            return data, [reading]
        return dict(await ctx.point(key, measure))

    # 1. Ambient conditions at start
    await ctx.step(1, "step.ambient_start")
    await ctx.record_ambient("start")

    # 2. Zero
    await ctx.step(2, "step.zero")
    if not ctx.is_done("zero.start"):
        await empty("zero.start")
        await ctx.call("balance", "zero")
    await weigh("zero.start", "zero", 0.0)

    # 3. Eccentricity
    await ctx.step(3, "step.eccentricity")
    for position in POSITIONS:
        await weigh(f"eccentricity.{position}", "eccentricity", p["ecc_load"], position=position)

    # 4. Repeatability
    await ctx.step(4, "step.repeatability")
    for i in range(1, p["rep_n"] + 1):
        await weigh(f"repeatability.{i}", "repeatability", p["rep_load"], series=i)
        await weigh(f"repeatability.{i}.zero", "zero", 0.0, series=i)

    # 5. Weighing test, increasing then decreasing loads
    await ctx.step(5, "step.weighing_up")
    await weigh("weighing.zero_before", "zero", 0.0)
    for load in p["loads"]:
        await weigh(f"weighing.up.{_key_load(load, spec.unit)}", "weighing", load,
                    direction="up")
    if ctx.params.get("down", True):
        await ctx.step(5, "step.weighing_down")
        for load in reversed(p["loads"][:-1]):
            await weigh(f"weighing.down.{_key_load(load, spec.unit)}", "weighing", load,
                        direction="down")
    await weigh("weighing.zero_after", "zero", 0.0)

    # 6. Ambient conditions at end
    await ctx.step(6, "step.ambient_end")
    await ctx.record_ambient("end")

    # 7. Evaluation
    results, verdict = evaluate(ctx.done, spec, loads, ctx.params, ctx.mode)
    ctx.set_results(results, verdict)


def evaluate(points: dict[str, dict[str, Any]], spec: BalanceSpec,
             loads: dict[float, TestLoad], params: dict[str, Any], mode: str,
             ) -> tuple[list[dict[str, Any]], str]:
    """Pure: the recorded points -> result rows and the overall verdict."""
    cls = r76.parse_class(spec.accuracy_class)
    in_service = params.get("mpe_level", "initial") == "in_service"
    rule = decision.DecisionRule(params.get("decision_rule", "simple"))
    if mode == "verify":
        rule = decision.DecisionRule.SIMPLE
    per_g = UNIT_PER_G[spec.unit]

    def mpe(load: float) -> float:
        return r76.mpe(load, spec.e, cls, in_service=in_service)

    ecc = {k: v for k, v in points.items() if v.get("test") == "eccentricity"}
    rep = [v for k, v in points.items() if v.get("test") == "repeatability"]
    centre = ecc.get("eccentricity.centre")
    ecc_delta = max((abs(v["indicated"] - centre["indicated"]) for v in ecc.values()),
                    default=0.0) if centre else 0.0
    ecc_load = centre["nominal"] if centre else spec.max / 3
    rep_values = [v["indicated"] for v in rep]
    s_rep = statistics.stdev(rep_values) if len(rep_values) >= 2 else 0.0
    n_rep = len(rep_values)

    rows: list[dict[str, Any]] = []

    def row(key: str, v: dict[str, Any]) -> dict[str, Any]:
        error = v["indicated"] - v["reference"]
        limit = mpe(v["nominal"])
        out: dict[str, Any] = {
            "key": key, "test": v["test"], "position": v.get("position"),
            "direction": v.get("direction"), "series": v.get("series"), "flow": None,
            "nominal": v["nominal"], "unit": spec.unit, "reference": v["reference"],
            "indicated": v["indicated"], "error": error, "error_unit": spec.unit,
            "U": None, "k": None, "mpe": limit,
        }
        if mode == "calibrate" and v["test"] == "weighing":
            tl = loads.get(v["nominal"])
            U_ref = (tl.U_mg / 1000.0 * per_g) if tl else 0.0
            w_mpe = (tl.mpe_mg / 1000.0 * per_g) if tl else None
            budget = balance_budget.error_of_indication_budget(
                indication=v["indicated"], d0=spec.d, dL=spec.d, s_rep=s_rep,
                n_rep=max(n_rep, 2), ecc_delta_max=ecc_delta, ecc_load=ecc_load,
                U_ref=U_ref, k_ref=2.0, weight_mpe=w_mpe)
            U = gum.round_uncertainty(budget.U)
            nu_eff = budget.nu_eff if math.isfinite(budget.nu_eff) else None  # JSON has no ∞
            out.update(U=U, k=round(budget.k, 2), u=budget.u, nu_eff=nu_eff,
                       error=gum.round_value(error, U))
            out["verdict"] = str(decision.decide(error, U, limit, rule))
        else:
            out["error"] = round(error, 9)
            out["verdict"] = "pass" if abs(error) <= limit + 1e-12 else "fail"
        return out

    for key, v in points.items():
        if v.get("test") in ("eccentricity", "weighing"):
            rows.append(row(key, v))
    if rep_values:
        spread = max(rep_values) - min(rep_values)
        limit = mpe(rep[0]["nominal"])
        rows.append({
            "key": "repeatability", "test": "repeatability", "position": "centre",
            "direction": None, "series": None, "flow": None, "nominal": rep[0]["nominal"],
            "unit": spec.unit, "reference": rep[0]["reference"],
            "indicated": statistics.fmean(rep_values), "error": None,
            "error_unit": spec.unit, "U": None, "k": None, "mpe": limit,
            "range": round(spread, 9), "s": s_rep, "n": n_rep,
            "verdict": "pass" if spread <= limit + 1e-12 else "fail",
        })
    return rows, overall(r["verdict"] for r in rows)


def overall(verdicts: Sequence[str] | Any) -> str:
    """The worst verdict wins: fail, conditional fail, conditional pass, pass (ILAC G8)."""
    order = ("fail", "conditional_fail", "conditional_pass", "pass")
    vs = set(verdicts)
    return next((v for v in order if v in vs), "pass")


def preview(ctx: Any) -> tuple[list[dict[str, Any]], str]:
    """The results of the points taken so far, for a live display while the run goes on
    (the TUI calls it with a snapshot of the context after each point)."""
    spec = BalanceSpec.from_dut(ctx.dut)
    p = plan(spec, ctx.params)
    to_g = 1.0 / UNIT_PER_G[spec.unit]
    loads = {x: compose(ctx.references["weights"], x * to_g)
             for x in {*p["loads"], p["ecc_load"], p["rep_load"]}}
    return evaluate(ctx.done, spec, loads, ctx.params, ctx.mode)


def reference_range(dut: DutSpec, params: dict[str, Any]) -> dict[str, tuple[float, float, str]]:
    """The range each reference is used over, for the fitness check before the run: the
    weights make loads from zero to the largest test load (in the DUT's unit)."""
    p = plan(BalanceSpec.from_dut(dut), params)
    return {"weights": (0.0, max(*p["loads"], p["ecc_load"], p["rep_load"]), dut.unit)}

"""Intermediate check of a balance between calibrations (ISO/IEC 17025 7.7.1).

The worked example of docs/extending.md: a centre's own, short procedure.
  1. Zero the empty balance.
  2. Weigh each check load once (default Max/10, Max/2 and Max).
  3. Pass when every error is within the check limit (default: the R76 in-service MPE).
"""

from __future__ import annotations

from typing import Any

from benchctl.assets import BalanceSpec
from benchctl.i18n import register
from benchctl.instruments import Reading
from benchctl.metrology import r76
from benchctl.metrology.test_loads import compose

ID = "balance_check"
TITLE = "Balance intermediate check"
VERSION = "1.0"
DOCUMENTS = "ISO/IEC 17025:2017 7.7.1; limits from OIML R76-1:2006 Table 6 (in service)"
DUT_KIND = "balance"
MODES = ("verify",)
INSTRUMENTS = {"balance": {"role": "balance", "dut": True}}
REFERENCES = {"weights": "weight_set"}
PARAMETERS: dict[str, tuple[type, Any, str]] = {
    "loads": (list, None, "check loads in the DUT unit (default Max/10, Max/2, Max)"),
    "limit": (float, None, "check limit in the DUT unit (default: R76 in-service MPE)"),
}

register({
    "check.place": {"en": "Place the check load {load} on the centre of the pan.",
                    "vi": "Đặt tải kiểm tra {load} vào giữa đĩa cân."},
    "check.empty": {"en": "Empty the pan.", "vi": "Để trống đĩa cân."},
    "check.step.zero": {"en": "Zero", "vi": "Đặt về không"},
    "check.step.loads": {"en": "Check loads", "vi": "Các tải kiểm tra"},
})


def check_loads(spec: BalanceSpec, params: dict[str, Any]) -> list[float]:
    if params.get("loads"):
        return [float(x) for x in params["loads"]]
    return [round(spec.max * f / spec.e) * spec.e for f in (0.1, 0.5, 1.0)]


async def run(ctx: Any) -> None:
    spec = BalanceSpec.from_dut(ctx.dut)
    loads = check_loads(spec, ctx.params)
    weights = ctx.references["weights"]
    timeout = ctx.clock.real_seconds(30.0) + 1.0

    async def weigh(key: str, load: float) -> dict[str, Any]:
        async def measure() -> tuple[dict[str, Any], list[Reading]]:
            if load:
                await ctx.instruct(key, ctx.t("check.place", load=f"{load:g} {spec.unit}"),
                                   {"type": "place_load",
                                    "load": {"value": load, "unit": spec.unit}})
            else:
                await ctx.instruct(key, ctx.t("check.empty"), {"type": "remove_load"})
            reading: Reading = await ctx.call("balance", "read_stable", timeout)
            ref = compose(weights, load).conventional_mass_g if load else 0.0
            return ({"test": "weighing", "nominal": load, "unit": spec.unit,
                     "reference": ref, "indicated": reading.value}, [reading])
        return dict(await ctx.point(key, measure))

    await ctx.step(1, "check.step.zero")
    await weigh("check.zero", 0.0)
    await ctx.step(2, "check.step.loads")
    for load in loads:
        await weigh(f"check.{load:g}{spec.unit}", load)
    ctx.set_results(*evaluate(ctx.done, spec, ctx.params))


def evaluate(points: dict[str, dict[str, Any]], spec: BalanceSpec, params: dict[str, Any]
             ) -> tuple[list[dict[str, Any]], str]:
    rows = []
    for key, p in points.items():
        if not p.get("nominal"):
            continue
        limit = params.get("limit") or r76.mpe(p["nominal"], spec.e, spec.accuracy_class,
                                               in_service=True)
        error = p["indicated"] - p["reference"]
        rows.append({"key": key, "test": "weighing", "nominal": p["nominal"],
                     "unit": spec.unit, "reference": p["reference"],
                     "indicated": p["indicated"], "error": round(error, 9),
                     "error_unit": spec.unit, "U": None, "k": None, "mpe": limit,
                     "verdict": "pass" if abs(error) <= limit else "fail",
                     "position": "centre", "direction": "up", "series": None, "flow": None})
    verdict = "pass" if rows and all(r["verdict"] == "pass" for r in rows) else "fail"
    return rows, verdict

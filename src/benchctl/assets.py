"""DUT files and reference files -> typed specs (and from there into the register).

The same checks apply whether a DUT comes from a file or from the register, so a balance
with an impossible class/e/Max combination is refused before a run starts.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, DutParameterError

DUT_KINDS = ("balance",)
REFERENCE_KINDS = ("weight_set", "environment_monitor", "pressure_controller", "flow_meter",
                   "proving_measure")
COMMON_DUT_KEYS = {"asset", "kind", "maker", "model", "serial", "customer", "unit", "owner"}
BALANCE_KEYS = {"max", "min", "d", "e", "class"}


@dataclass(frozen=True)
class DutSpec:
    asset_id: str
    kind: str
    unit: str
    maker: str = ""
    model: str = ""
    serial: str = ""
    customer: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BalanceSpec:
    """What the procedure needs to know of a balance under test."""

    max: float
    d: float
    e: float
    accuracy_class: str
    unit: str

    @classmethod
    def from_dut(cls, dut: DutSpec, source: str = "DUT") -> BalanceSpec:
        from .metrology import r76

        p = dut.params
        for key in ("max", "d", "class"):
            if key not in p:
                raise ConfigError(source, key, "a value (required for a balance)")
        spec = cls(
            max=float(p["max"]), d=float(p["d"]), e=float(p.get("e", p["d"])),
            accuracy_class=str(p["class"]), unit=dut.unit,
        )
        if spec.unit not in ("mg", "g", "kg"):
            raise ConfigError(source, "unit", "mg, g or kg for a balance", got=spec.unit)
        r76.check_balance(spec.max, spec.e, spec.d, spec.accuracy_class, unit=spec.unit)
        return spec


@dataclass(frozen=True)
class CertifiedWeightSpec:
    weight_id: str
    nominal_g: float
    correction_mg: float
    U_mg: float
    k: float = 2.0
    weight_class: str = ""


@dataclass(frozen=True)
class CertificateSpec:
    number: str
    issuer: str
    issued_on: dt.date
    due_on: dt.date
    U: float | None = None
    k: float | None = None
    U_unit: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceSpec:
    asset_id: str
    kind: str
    maker: str
    model: str
    serial: str
    unit: str
    range: tuple[float, float] | None
    accuracy_class: str
    certificate: CertificateSpec
    weights: tuple[CertifiedWeightSpec, ...] = ()


def _load_toml(path: Path) -> dict[str, Any]:
    f = str(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f, "", "an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f, "", f"valid TOML ({exc})") from None


def _num(f: str, key: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f, key, "a number", got=value)
    if positive and value <= 0:
        raise ConfigError(f, key, "a positive number", got=value)
    return float(value)


def _str(f: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f, key, "text", got=value)
    return value


def _date(f: str, key: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f, key, "a date YYYY-MM-DD", got=value)


def load_dut_file(path: str | Path) -> DutSpec:
    p = Path(path)
    return parse_dut(_load_toml(p), str(p), default_id=p.stem)


def parse_dut(data: dict[str, Any], f: str, default_id: str = "DUT") -> DutSpec:
    kind = data.get("kind")
    if kind not in DUT_KINDS:
        raise ConfigError(f, "kind", " or ".join(DUT_KINDS), got=kind)
    allowed = COMMON_DUT_KEYS | (BALANCE_KEYS if kind == "balance" else set())
    for key in data:
        if key not in allowed:
            raise ConfigError(f, key, f"one of {', '.join(sorted(allowed))}")
    if "unit" not in data:
        raise ConfigError(f, "unit", "the DUT's unit (required)")
    unit = _str(f, "unit", data["unit"])
    text = {k: _str(f, k, data.get(k, "")) for k in ("maker", "model", "serial", "customer")}
    serial = text["serial"]
    asset_id = _str(f, "asset", data.get("asset", f"DUT-{serial}" if serial else default_id))
    params: dict[str, Any] = {}
    if kind == "balance":
        for key in ("max", "d"):
            if key not in data:
                raise ConfigError(f, key, "a positive number (required for a balance)")
            params[key] = _num(f, key, data[key], positive=True)
        params["e"] = _num(f, "e", data.get("e", params["d"]), positive=True)
        if "min" in data:
            params["min"] = _num(f, "min", data["min"], positive=True)
        if "class" not in data:
            raise ConfigError(f, "class", "an accuracy class I, II, III or IIII (required)")
        params["class"] = _str(f, "class", data["class"]).upper()
    dut = DutSpec(asset_id=asset_id, kind=kind, unit=unit, params=params, **text)
    if kind == "balance":
        try:
            BalanceSpec.from_dut(dut, f)
        except DutParameterError as exc:
            raise ConfigError(f, "class/max/e/d", f"a balance the R76 rules allow: {exc}") from None
    return dut


def load_reference_file(path: str | Path) -> ReferenceSpec:
    p = Path(path)
    return parse_reference(_load_toml(p), str(p))


def parse_reference(data: dict[str, Any], f: str) -> ReferenceSpec:
    allowed = {"asset", "kind", "maker", "model", "serial", "range", "unit", "class",
               "certificate", "weights"}
    for key in data:
        if key not in allowed:
            raise ConfigError(f, key, f"one of {', '.join(sorted(allowed))}")
    if "asset" not in data:
        raise ConfigError(f, "asset", "the reference's asset id (required)")
    asset_id = _str(f, "asset", data["asset"])
    kind = data.get("kind")
    if kind not in REFERENCE_KINDS:
        raise ConfigError(f, "kind", " or ".join(REFERENCE_KINDS), got=kind)
    unit = _str(f, "unit", data.get("unit", "g" if kind == "weight_set" else ""))
    rng = data.get("range")
    range_t: tuple[float, float] | None = None
    if rng is not None:
        if not (isinstance(rng, list) and len(rng) == 2):
            raise ConfigError(f, "range", "[low, high]", got=rng)
        range_t = (_num(f, "range[0]", rng[0]), _num(f, "range[1]", rng[1]))
    cert = data.get("certificate")
    if not isinstance(cert, dict):
        raise ConfigError(f, "certificate", "a [certificate] table")
    cert_allowed = {"number", "issuer", "date", "due", "U", "k", "U_unit"}
    for key in cert:
        if key not in cert_allowed and not key.startswith("x_"):
            raise ConfigError(f, f"certificate.{key}", f"one of {', '.join(sorted(cert_allowed))}")
    for key in ("number", "issuer", "date", "due"):
        if key not in cert:
            raise ConfigError(f, f"certificate.{key}", "a value (required)")
    issued = _date(f, "certificate.date", cert["date"])
    due = _date(f, "certificate.due", cert["due"])
    if due <= issued:
        raise ConfigError(f, "certificate.due", f"a date after certificate.date ({issued})",
                          got=str(due))
    certificate = CertificateSpec(
        number=_str(f, "certificate.number", cert["number"]),
        issuer=_str(f, "certificate.issuer", cert["issuer"]),
        issued_on=issued, due_on=due,
        U=_num(f, "certificate.U", cert["U"]) if "U" in cert else None,
        k=_num(f, "certificate.k", cert["k"], positive=True) if "k" in cert else None,
        U_unit=_str(f, "certificate.U_unit", cert["U_unit"]) if "U_unit" in cert else None,
    )
    weights: list[CertifiedWeightSpec] = []
    wclass = _str(f, "class", data.get("class", ""))
    if kind == "weight_set":
        from .metrology import r111

        rows = data.get("weights")
        if not isinstance(rows, list) or not rows:
            raise ConfigError(f, "weights", "one [[weights]] table per weight")
        seen: set[str] = set()
        for i, row in enumerate(rows):
            key = f"weights[{i}]"
            if not isinstance(row, dict):
                raise ConfigError(f, key, "a table")
            for k in row:
                if k not in ("id", "nominal_g", "correction_mg", "U_mg", "k", "class"):
                    raise ConfigError(f, f"{key}.{k}",
                                      "id, nominal_g, correction_mg, U_mg, k, class")
            for k in ("id", "nominal_g", "correction_mg", "U_mg"):
                if k not in row:
                    raise ConfigError(f, f"{key}.{k}", "a value (required)")
            wid = _str(f, f"{key}.id", row["id"])
            if wid in seen:
                raise ConfigError(f, f"{key}.id", "a unique weight id (mark duplicates 1000g*)",
                                  got=wid)
            seen.add(wid)
            w = CertifiedWeightSpec(
                weight_id=wid,
                nominal_g=_num(f, f"{key}.nominal_g", row["nominal_g"], positive=True),
                correction_mg=_num(f, f"{key}.correction_mg", row["correction_mg"]),
                U_mg=_num(f, f"{key}.U_mg", row["U_mg"], positive=True),
                k=_num(f, f"{key}.k", row.get("k", 2.0), positive=True),
                weight_class=_str(f, f"{key}.class", row.get("class", wclass)),
            )
            if not w.weight_class:
                raise ConfigError(f, f"{key}.class", "the weight's OIML class (or set class)")
            try:
                r111.weight_mpe_mg(w.nominal_g, w.weight_class)
            except DutParameterError as exc:
                raise ConfigError(f, f"{key}", f"a weight the R111 table covers: {exc}") from None
            weights.append(w)
    return ReferenceSpec(
        asset_id=asset_id, kind=kind, maker=_str(f, "maker", data.get("maker", "")),
        model=_str(f, "model", data.get("model", "")),
        serial=_str(f, "serial", data.get("serial", "")), unit=unit, range=range_t,
        accuracy_class=wclass, certificate=certificate, weights=tuple(weights),
    )

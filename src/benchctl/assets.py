"""DUT files and reference files -> typed specs (and from there into the register).

The same checks apply whether a DUT comes from a file or from the register, so a balance
with an impossible class/e/Max combination is refused before a run starts.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, DutParameterError

DUT_KINDS = ("balance", "fuel_dispenser", "pressure_gauge")
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
    except UnicodeDecodeError as exc:
        raise ConfigError(f, "", f"a text file in UTF-8 (byte {exc.start} is not)") from None
    except OSError as exc:
        raise ConfigError(f, "", f"a readable TOML file ({exc.strerror})") from None


def _num(f: str, key: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f, key, "a number", got=value)
    if not math.isfinite(value):  # TOML has nan and inf; no quantity of an asset is either
        raise ConfigError(f, key, "a finite number", got=value)
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
    allowed |= DUT_KIND_KEYS.get(str(kind), set())
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
    if kind == "fuel_dispenser":
        params = _parse_fuel_dispenser(data, f, unit)
    if kind == "pressure_gauge":
        params = _parse_pressure_gauge(data, f, unit)
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
    allowed |= REFERENCE_KIND_KEYS.get(str(data.get("kind")), set())
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
    cert_allowed |= CERTIFICATE_KIND_KEYS.get(str(kind), set())
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
        data=_reference_data(str(kind), data, cert, f),
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


# -- fuel dispensers and their references (proving measures, master meters) -------------------
#
# Kind-specific keys are looked up in these tables by parse_dut/parse_reference, so another
# kind adds its own entry instead of another branch in the common code.

FUEL_DISPENSER_KEYS = {"qmax", "qmin", "mmq", "unit_price", "product", "beta", "resolution",
                       "amount_resolution", "nozzle"}
DUT_KIND_KEYS: dict[str, set[str]] = {"fuel_dispenser": FUEL_DISPENSER_KEYS}
REFERENCE_KIND_KEYS: dict[str, set[str]] = {
    "proving_measure": {"nominal_volume", "scale", "scale_division", "scale_unit", "material",
                        "gamma"},
    "flow_meter": {"range_unit"},
}
CERTIFICATE_KIND_KEYS: dict[str, set[str]] = {
    "proving_measure": {"volume", "reference_temperature"},
    "flow_meter": {"error"},
}
SCALE_UNITS = {"mL": 0.001, "L": 1.0}


@dataclass(frozen=True)
class FuelDispenserSpec:
    """What the dispenser procedure needs to know of the dispenser (fuelling point) under test.

    Flow rates in L/min, volumes in L, prices in đồng (per L for ``unit_price``).
    """

    qmax: float
    qmin: float
    mmq: float
    unit_price: float
    product: str
    beta: float
    """Cubical expansion coefficient of the product, per °C."""
    resolution: float
    """Volume display interval, L."""
    amount_resolution: float
    """Amount display interval, đồng."""
    unit: str = "L"
    nozzle: str = ""

    @classmethod
    def from_dut(cls, dut: DutSpec, source: str = "DUT") -> FuelDispenserSpec:
        p = dut.params
        for key in ("qmax", "qmin", "mmq", "unit_price", "product", "beta", "resolution",
                    "amount_resolution"):
            if key not in p:
                raise ConfigError(source, key, "a value (required for a fuel dispenser)")
        return cls(qmax=float(p["qmax"]), qmin=float(p["qmin"]), mmq=float(p["mmq"]),
                   unit_price=float(p["unit_price"]), product=str(p["product"]),
                   beta=float(p["beta"]), resolution=float(p["resolution"]),
                   amount_resolution=float(p["amount_resolution"]), unit=dut.unit,
                   nozzle=str(p.get("nozzle", "")))


def _parse_fuel_dispenser(data: dict[str, Any], f: str, unit: str) -> dict[str, Any]:
    from .metrology import fuel

    if unit != "L":
        raise ConfigError(f, "unit", '"L" for a fuel dispenser (volumes in litres)', got=unit)
    params: dict[str, Any] = {}
    for key, what in (("qmax", "the maximum flow rate in L/min"),
                      ("qmin", "the minimum flow rate in L/min"),
                      ("mmq", "the minimum measured quantity in L"),
                      ("unit_price", "the unit price in đồng per litre")):
        if key not in data:
            raise ConfigError(f, key, f"{what} (required for a fuel dispenser)")
        params[key] = _num(f, key, data[key], positive=True)
    if params["qmin"] >= params["qmax"]:
        raise ConfigError(f, "qmin", f"a flow rate below qmax ({params['qmax']:g} L/min)",
                          got=params["qmin"])
    if "product" not in data:
        raise ConfigError(f, "product", 'the product dispensed, e.g. "RON95" or "diesel" '
                          "(required: its expansion coefficient corrects the volumes)")
    params["product"] = _str(f, "product", data["product"]).strip()
    if not params["product"]:
        raise ConfigError(f, "product", 'a product name such as "RON95"', got="")
    if "beta" in data:
        params["beta"] = _num(f, "beta", data["beta"], positive=True)
        if params["beta"] > 0.01:
            raise ConfigError(f, "beta", "a cubical expansion coefficient per °C "
                              "(about 0.0008 … 0.0013 for fuels)", got=data["beta"])
    else:
        try:
            params["beta"] = fuel.product_beta(params["product"])
        except DutParameterError:
            known = ", ".join(sorted(fuel.PRODUCTS))
            raise ConfigError(f, "beta", f"the product's expansion coefficient per °C: "
                              f"{params['product']!r} is not a product benchctl knows "
                              f"({known})") from None
    params["resolution"] = _num(f, "resolution", data.get("resolution", 0.01), positive=True)
    params["amount_resolution"] = _num(f, "amount_resolution",
                                       data.get("amount_resolution", 1.0), positive=True)
    if "nozzle" in data:
        params["nozzle"] = _str(f, "nozzle", data["nozzle"])
    # R117 condition 1 (E_min ≥ 2 × display interval) under the stricter profile.
    for prof in fuel.PROFILES.values():
        try:
            fuel.check_display_interval(params["resolution"], params["mmq"], prof)
        except DutParameterError as exc:
            raise ConfigError(f, "mmq/resolution", f"a dispenser the R117 rules allow "
                              f"({prof.title}): {exc}") from None
    return params


@dataclass(frozen=True)
class ProvingMeasureSpec:
    """A proving measure (capacity measure with a graduated neck) from its register record.

    Volumes in L; the neck scale in ``scale_unit`` (usually mL) reads the deviation from the
    nominal mark; ``volume`` is the certified volume to that mark at
    ``reference_temperature``.
    """

    asset_id: str
    certificate: str
    nominal_volume: float
    volume: float
    reference_temperature: float
    gamma: float
    material: str
    scale_min: float
    scale_max: float
    scale_division: float
    scale_unit: str
    U: float
    """Expanded uncertainty of ``volume``, L."""
    k: float

    @property
    def u_rel_pct(self) -> float:
        """Standard uncertainty of the certified volume, % of it."""
        return 100.0 * self.U / self.k / self.volume

    def scale_to_l(self, reading: float) -> float:
        return reading * SCALE_UNITS[self.scale_unit]

    @classmethod
    def from_certificate(cls, cert: Any) -> ProvingMeasureSpec:
        """From a register certificate (``data`` as stored by parse_reference)."""
        d = dict(cert.data or {})
        where = f"reference {cert.asset_id} certificate {cert.number}"
        missing = [k for k in ("nominal_volume", "volume", "scale", "scale_division", "gamma")
                   if k not in d]
        if missing or cert.U is None:
            raise ConfigError(where, ", ".join(missing) or "U",
                              "the proving measure's data (import its reference file again)")
        U = float(cert.U)
        if cert.U_unit == "%":
            U = U / 100.0 * float(d["volume"])
        return cls(asset_id=str(cert.asset_id), certificate=str(cert.number),
                   nominal_volume=float(d["nominal_volume"]), volume=float(d["volume"]),
                   reference_temperature=float(d.get("reference_temperature", 20.0)),
                   gamma=float(d["gamma"]), material=str(d.get("material", "")),
                   scale_min=float(d["scale"][0]), scale_max=float(d["scale"][1]),
                   scale_division=float(d["scale_division"]),
                   scale_unit=str(d.get("scale_unit", "mL")), U=U,
                   k=float(cert.k or 2.0))


@dataclass(frozen=True)
class FlowMeterSpec:
    """A master meter from its register record: its certified error and U, in %."""

    asset_id: str
    certificate: str
    error_pct: float
    U_pct: float
    k: float

    @property
    def u_rel_pct(self) -> float:
        return self.U_pct / self.k

    @classmethod
    def from_certificate(cls, cert: Any) -> FlowMeterSpec:
        d = dict(cert.data or {})
        if cert.U is None or cert.U_unit != "%":
            raise ConfigError(f"reference {cert.asset_id} certificate {cert.number}", "U",
                              "the master meter's relative expanded uncertainty "
                              '(U with U_unit = "%")')
        return cls(asset_id=str(cert.asset_id), certificate=str(cert.number),
                   error_pct=float(d.get("error", 0.0)), U_pct=float(cert.U),
                   k=float(cert.k or 2.0))


def _reference_data(kind: str, data: dict[str, Any], cert: dict[str, Any], f: str
                    ) -> dict[str, Any]:
    """The kind-specific part of a reference file, stored with its certificate."""
    if kind == "proving_measure":
        return _parse_proving_measure(data, cert, f)
    if kind == "flow_meter":
        return _parse_flow_meter(data, cert, f)
    if kind == "pressure_controller":
        return _parse_pressure_controller(cert, f)
    return {}


def _parse_proving_measure(data: dict[str, Any], cert: dict[str, Any], f: str
                           ) -> dict[str, Any]:
    from .metrology import fuel

    if data.get("unit", "L") != "L":
        raise ConfigError(f, "unit", '"L" for a proving measure', got=data.get("unit"))
    out: dict[str, Any] = {}
    if "nominal_volume" not in data:
        raise ConfigError(f, "nominal_volume", "the measure's nominal volume in L (required)")
    nominal = out["nominal_volume"] = _num(f, "nominal_volume", data["nominal_volume"],
                                           positive=True)
    scale_unit = out["scale_unit"] = _str(f, "scale_unit", data.get("scale_unit", "mL"))
    if scale_unit not in SCALE_UNITS:
        raise ConfigError(f, "scale_unit", '"mL" or "L"', got=scale_unit)
    scale = data.get("scale")
    if not (isinstance(scale, list) and len(scale) == 2):
        raise ConfigError(f, "scale", f"the neck scale range [low, high] in {scale_unit}, "
                          "around the nominal mark (required)", got=scale)
    low, high = _num(f, "scale[0]", scale[0]), _num(f, "scale[1]", scale[1])
    if not low <= 0.0 <= high or low == high:
        raise ConfigError(f, "scale", f"[low, high] in {scale_unit} with low ≤ 0 ≤ high "
                          "(the scale reads the deviation from the nominal mark)", got=scale)
    out["scale"] = [low, high]
    if "scale_division" not in data:
        raise ConfigError(f, "scale_division", f"the neck scale division in {scale_unit} "
                          "(required)")
    div = out["scale_division"] = _num(f, "scale_division", data["scale_division"],
                                       positive=True)
    for value, key in ((low, "scale[0]"), (high, "scale[1]")):
        steps = value / div
        if abs(steps - round(steps)) > 1e-6:
            raise ConfigError(f, key, f"a multiple of scale_division ({div:g} {scale_unit})",
                              got=value)
    out["material"] = _str(f, "material", data.get("material", ""))
    if "gamma" in data:
        out["gamma"] = _num(f, "gamma", data["gamma"])
    elif out["material"].strip().lower() in fuel.MATERIALS:
        out["gamma"] = fuel.MATERIALS[out["material"].strip().lower()]
    else:
        known = ", ".join(sorted(fuel.MATERIALS))
        raise ConfigError(f, "gamma", f"the cubical expansion coefficient of the measure per °C "
                          f"(or a material benchctl knows: {known})")
    if not 0 <= out["gamma"] < 1e-3:
        raise ConfigError(f, "gamma", "a cubical expansion coefficient per °C (about "
                          "3.5e-5 for carbon steel, 5.2e-5 for stainless 304)", got=out["gamma"])
    if "volume" not in cert:
        raise ConfigError(f, "certificate.volume", "the certified volume in L to the nominal "
                          "mark at the reference temperature (required)")
    volume = out["volume"] = _num(f, "certificate.volume", cert["volume"], positive=True)
    if abs(volume - nominal) > 0.01 * nominal:
        raise ConfigError(f, "certificate.volume", f"a volume within 1 % of nominal_volume "
                          f"({nominal:g} L)", got=volume)
    out["reference_temperature"] = _num(f, "certificate.reference_temperature",
                                        cert.get("reference_temperature", 20.0))
    if "U" not in cert or not (isinstance(cert["U"], int | float) and cert["U"] > 0):
        raise ConfigError(f, "certificate.U", "the expanded uncertainty of the certified "
                          "volume, > 0 (in L, or in % with U_unit = \"%\")", got=cert.get("U"))
    return out


def _parse_flow_meter(data: dict[str, Any], cert: dict[str, Any], f: str) -> dict[str, Any]:
    if "U" not in cert or cert.get("U_unit") != "%":
        raise ConfigError(f, "certificate.U", 'the master meter\'s relative expanded '
                          'uncertainty with U_unit = "%" (required)', got=cert.get("U"))
    _num(f, "certificate.U", cert["U"], positive=True)
    error = _num(f, "certificate.error", cert.get("error", 0.0))
    if abs(error) > 1.0:
        raise ConfigError(f, "certificate.error", "the meter's certified error in % "
                          "(a master meter is within ±1 %)", got=error)
    out: dict[str, Any] = {"error": error}
    # The flow range it was calibrated over: a run may only use it inside (ISO/IEC 17025).
    rng = data.get("range")
    if rng is not None:
        if not (isinstance(rng, list) and len(rng) == 2):
            raise ConfigError(f, "range", "[low, high] flow rates", got=rng)
        out["range"] = [_num(f, "range[0]", rng[0]), _num(f, "range[1]", rng[1])]
        out["range_unit"] = _str(f, "range_unit", data.get("range_unit", "L/min"))
    return out


# -- pressure gauges and their reference (a pressure controller) --------------------------------

PRESSURE_GAUGE_KEYS = {"range", "class", "resolution", "interface"}
DUT_KIND_KEYS["pressure_gauge"] = PRESSURE_GAUGE_KEYS
#: A pressure controller's certificate may state the drift allowed between calibrations
#: (± in the file's unit, or in % of reading with U_unit = "%"), a component of the budget.
CERTIFICATE_KIND_KEYS["pressure_controller"] = {"drift"}
#: How a pressure gauge is read: a Modbus/serial link, a 4–20 mA transmitter through a DMM,
#: or a dial the technician reads (informational: the bench file names the driver).
GAUGE_INTERFACES = ("modbus", "transmitter", "dial", "other")


@dataclass(frozen=True)
class PressureGaugeSpec:
    """What the procedure needs to know of a pressure gauge under test (EN 837-1)."""

    range_low: float
    range_high: float
    unit: str
    accuracy_class: float
    resolution: float
    interface: str = "modbus"

    @property
    def span(self) -> float:
        return self.range_high - self.range_low

    @classmethod
    def from_dut(cls, dut: DutSpec, source: str = "DUT") -> PressureGaugeSpec:
        """The spec, or ConfigError/DutParameterError naming what is impossible (a class
        EN 837-1 does not have, an empty range, a resolution coarser than the MPE)."""
        from .metrology import pressure

        p = dut.params
        for key in ("range", "class", "resolution"):
            if key not in p:
                raise ConfigError(source, key, "a value (required for a pressure gauge)")
        rng = p["range"]
        if not (isinstance(rng, list | tuple) and len(rng) == 2):
            raise ConfigError(source, "range", "[low, high] in the DUT's unit", got=rng)
        try:
            pressure.check_pressure_unit(dut.unit)
        except DutParameterError:
            raise ConfigError(source, "unit", "a pressure unit (kPa, MPa, bar, mbar, psi, "
                              "kgf/cm2, mmHg, mmH2O, ...)", got=dut.unit) from None
        spec = cls(range_low=float(rng[0]), range_high=float(rng[1]), unit=dut.unit,
                   accuracy_class=pressure.check_class(p["class"]),
                   resolution=float(p["resolution"]),
                   interface=str(p.get("interface", "modbus")))
        limit = pressure.mpe(spec.range_low, spec.range_high, spec.accuracy_class)
        if not 0 < spec.resolution <= limit:
            raise DutParameterError(
                f"resolution {spec.resolution:g} {spec.unit} must be > 0 and no coarser than "
                f"the MPE ({limit:g} {spec.unit} for class {spec.accuracy_class:g} over "
                f"{spec.range_low:g} … {spec.range_high:g} {spec.unit})")
        if spec.interface not in GAUGE_INTERFACES:
            raise ConfigError(source, "interface", " or ".join(GAUGE_INTERFACES),
                              got=spec.interface)
        return spec


def _parse_pressure_gauge(data: dict[str, Any], f: str, unit: str) -> dict[str, Any]:
    rng = data.get("range")
    if not (isinstance(rng, list) and len(rng) == 2):
        raise ConfigError(f, "range", "[low, high] in the DUT's unit (required for a pressure "
                          "gauge)", got=rng)
    low, high = _num(f, "range[0]", rng[0]), _num(f, "range[1]", rng[1])
    if high <= low:
        raise ConfigError(f, "range", "[low, high] with high above low", got=rng)
    if "class" not in data:
        raise ConfigError(f, "class", "an EN 837-1 accuracy class 0.1, 0.25, 0.6, 1, 1.6, 2.5 "
                          "or 4 (required)")
    if "resolution" not in data:
        raise ConfigError(f, "resolution", "the last digit step or scale division (required)")
    params: dict[str, Any] = {
        "range": [low, high],
        "class": _num(f, "class", data["class"], positive=True),
        "resolution": _num(f, "resolution", data["resolution"], positive=True),
    }
    if "interface" in data:
        iface = _str(f, "interface", data["interface"])
        if iface not in GAUGE_INTERFACES:
            raise ConfigError(f, "interface", " or ".join(GAUGE_INTERFACES), got=iface)
        params["interface"] = iface
    try:
        PressureGaugeSpec.from_dut(DutSpec("check", "pressure_gauge", unit, params=params), f)
    except DutParameterError as exc:
        raise ConfigError(f, "class/range/resolution",
                          f"a pressure gauge EN 837-1 allows: {exc}") from None
    return params


def _parse_pressure_controller(cert: dict[str, Any], f: str) -> dict[str, Any]:
    if "U" not in cert:
        raise ConfigError(f, "certificate.U", "the controller's expanded uncertainty (in the "
                          "file's unit, or in % of reading with U_unit = \"%\") (required)")
    out: dict[str, Any] = {}
    if "drift" in cert:
        drift = _num(f, "certificate.drift", cert["drift"])
        if drift < 0:
            raise ConfigError(f, "certificate.drift", "a drift bound ≥ 0", got=drift)
        out["drift"] = drift
    return out

"""The run as a PTB Digital Calibration Certificate (DCC 3.1.2 with D-SI 2.1.0; METROLOGY.md §6).

Built with the standard library's ElementTree, in the element order the schema's sequences
demand (the tests validate every output against the XSD carried in ``tests/data/dcc``).
Mapping of a run document:

- administrativeData: benchctl as the software; coreData (VN, the two languages, the
  certificate number as uniqueIdentifier, run id and procedure SHA-256 as identifications,
  performance dates); the DUT as the item; the laboratory; the people of the run as
  respPersons (the approver is the main signer); the customer; statements: the decision rule
  with the overall conformity, results relate only to the item, the verification stamp and
  validity (Circular 24/2013), overrides of past-due references, an amendment, and a draft.
- measurementResults: the procedure and (calibration) GUM as usedMethods; the reference
  standards with their certificates as measuringEquipments; ambient conditions as
  influenceConditions; one result per test, a list of realListXMLList quantities (nominal,
  flow, reference, indication, error with U and k), with conformity and the ±MPE acceptance
  limits as metadata.

Units are D-SI strings; a unit with no D-SI spelling (kgf/cm², psi, mmH2O, ...) is converted
with pint to kPa and the quantity says so, rather than writing a unit no machine can read.
A draft (no approval) is still a well-formed DCC, with "DRAFT" in its identifier and a
statement that it is not valid.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..metrology.decision import RULE_TEXT, DecisionRule
from .certificate import (
    LABELS,
    POSITIONS,
    certificate_number,
    is_final,
)
from .laboratory import Laboratory

DCC_NS = "https://ptb.de/dcc"
SI_NS = "https://ptb.de/si"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_VERSION = "3.1.2"
SCHEMA_LOCATION = f"{DCC_NS} https://ptb.de/dcc/v{SCHEMA_VERSION}/dcc.xsd"
#: Coverage probability of k = 2 for a normal distribution (JCGM 100 §G.1, t95.45).
COVERAGE_PROBABILITY = "0.9545"

ET.register_namespace("dcc", DCC_NS)
ET.register_namespace("si", SI_NS)
ET.register_namespace("xsi", XSI_NS)

#: Units written as they are, by their D-SI spelling (D-SI 2.1.0: SI and accepted units).
DSI_UNITS: dict[str, str] = {
    "g": r"\gram", "kg": r"\kilogram", "mg": r"\milli\gram", "t": r"\tonne",
    "Pa": r"\pascal", "hPa": r"\hecto\pascal", "kPa": r"\kilo\pascal", "MPa": r"\mega\pascal",
    "bar": r"\bar", "mbar": r"\milli\bar", "mmHg": r"\mmhg",
    "L": r"\litre", "l": r"\litre", "mL": r"\milli\litre", "ml": r"\milli\litre",
    "m3": r"\metre\tothe{3}", "m³": r"\metre\tothe{3}",
    "L/min": r"\litre\minute\tothe{-1}", "L/h": r"\litre\hour\tothe{-1}",
    "%": r"\percent", "°C": r"\degreecelsius", "degC": r"\degreecelsius", "K": r"\kelvin",
    "s": r"\second", "min": r"\minute",
}

#: Where a unit has no D-SI spelling: the units it may be converted to (by pint), in order.
CONVERT_TARGETS = ("kPa", "g", "L", "L/min")

VERDICT_DCC = {"pass": "pass", "fail": "fail", "conditional_pass": "conditionalPass",
               "conditional_fail": "conditionalFail"}

# XML 1.0 allows tab, LF, CR and everything from U+0020 except surrogates and U+FFFE/FFFF.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _d(tag: str) -> str:
    return f"{{{DCC_NS}}}{tag}"


def _s(tag: str) -> str:
    return f"{{{SI_NS}}}{tag}"


def clean(text: Any) -> str:
    """Text as XML can carry it: characters XML 1.0 forbids (control bytes from a garbled
    instrument name, say) become U+FFFD, so the DCC stays well-formed."""
    return _XML_ILLEGAL.sub("\ufffd", str(text))


def dec(value: float) -> str:
    """A number in D-SI's decimal pattern (no "nan", "inf" or thousands separators)."""
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{value!r} cannot be written in a DCC (not a finite number)")
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


@dataclass(frozen=True)
class DsiUnit:
    unit: str
    #: The pint unit the values must be converted to first (None: written as they are).
    convert_to: str | None = None
    #: The original unit, when the DCC cannot state it directly (converted, or a unit D-SI
    #: has no spelling for, such as a currency, written as \one with a nonSIUnit note).
    original: str | None = None


def dsi_unit(unit: str) -> DsiUnit:
    """The D-SI spelling of ``unit``, or how to get there."""
    from ..errors import BenchctlError
    from ..metrology.units import convert

    u = unit.strip()
    if u in DSI_UNITS:
        return DsiUnit(DSI_UNITS[u], original=u if DSI_UNITS[u] == r"\one" else None)
    for target in CONVERT_TARGETS:
        try:
            convert(1.0, u, target)
        except BenchctlError:
            continue
        return DsiUnit(DSI_UNITS[target], convert_to=target, original=u)
    return DsiUnit(r"\one", original=u or None)


def _in_unit(values: list[float], unit: str) -> tuple[list[float], str, str | None]:
    """Values in a D-SI unit: (values, D-SI unit, the original unit to note, if any)."""
    target = dsi_unit(unit)
    if target.convert_to is None:
        return values, target.unit, target.original
    from ..metrology.units import convert

    return [convert(v, unit, target.convert_to) for v in values], target.unit, target.original


# -- small builders --------------------------------------------------------------------------

def _text(parent: ET.Element, tag: str, texts: dict[str, str] | str) -> ET.Element:
    """A dcc:textType (or the content part of a richContentType): one content per language."""
    el = ET.SubElement(parent, _d(tag))
    if isinstance(texts, str):
        ET.SubElement(el, _d("content")).text = clean(texts)
        return el
    for lang, text in texts.items():
        c = ET.SubElement(el, _d("content"), {"lang": lang})
        c.text = clean(text)
    return el


def _label(key: str) -> dict[str, str]:
    return {"vi": LABELS[key]["vi"], "en": LABELS[key]["en"]}


def _sub(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = clean(text)
    return el


def _real(parent: ET.Element, value: float, unit: str, U: float | None = None,
          k: float | None = None) -> None:
    values, dsi, _ = _in_unit([value], unit)
    real = _sub(parent, _s("real"))
    _sub(real, _s("value"), dec(values[0]))
    _sub(real, _s("unit"), dsi)
    if U is not None and k is not None:
        unc = _sub(real, _s("expandedUnc"))
        _sub(unc, _s("uncertainty"), dec(_in_unit([abs(U)], unit)[0][0]))
        _sub(unc, _s("coverageFactor"), dec(k))
        _sub(unc, _s("coverageProbability"), COVERAGE_PROBABILITY)


def _real_list(parent: ET.Element, values: list[float], unit: str, *,
               labels: list[str] | None = None, U: list[float] | None = None,
               k: list[float] | None = None) -> str | None:
    """A si:realListXMLList; returns the original unit when the values were converted."""
    vals, dsi, converted = _in_unit(values, unit)
    el = _sub(parent, _s("realListXMLList"))
    if labels:
        _sub(el, _s("labelXMLList"), " ".join(re.sub(r"\s+", "_", x) or "_" for x in labels))
    _sub(el, _s("valueXMLList"), " ".join(dec(v) for v in vals))
    _sub(el, _s("unitXMLList"), dsi)
    if U is not None and k is not None:
        us = _in_unit([abs(u) for u in U], unit)[0]
        unc = _sub(el, _s("expandedUncXMLList"))
        _sub(unc, _s("uncertaintyXMLList"), " ".join(dec(u) for u in us))
        _sub(unc, _s("coverageFactorXMLList"), " ".join(dec(x) for x in k))
        _sub(unc, _s("coverageProbabilityXMLList"),
             " ".join(COVERAGE_PROBABILITY for _ in k))
        _sub(unc, _s("distributionXMLList"), " ".join("normal" for _ in k))
    return converted


def _contact(parent: ET.Element, tag: str, name: str, *, email: str = "", phone: str = "",
             location: dict[str, str] | None = None, strict: bool = True) -> ET.Element:
    el = _sub(parent, _d(tag))
    _text(el, "name", name)
    if strict or email:
        _sub(el, _d("eMail"), email)
    if phone:
        _sub(el, _d("phone"), phone)
    if strict or location:
        loc = _sub(el, _d("location"))
        for key, value in (location or {}).items():
            if key == "further":
                _text(loc, "further", value)
            elif value:
                _sub(loc, _d(key), value)
        if not len(loc):
            _text(loc, "further", {"vi": "không ghi", "en": "not stated"})
    return el


# -- the certificate -------------------------------------------------------------------------

def render_dcc(doc: dict[str, Any], *, laboratory: Laboratory | None = None,
               lang: str = "vi") -> bytes:
    """The DCC XML of a run document (UTF-8 bytes with the XML declaration)."""
    lab = laboratory or Laboratory()
    final = is_final(doc)
    root = ET.Element(_d("digitalCalibrationCertificate"),
                      {"schemaVersion": SCHEMA_VERSION,
                       f"{{{XSI_NS}}}schemaLocation": SCHEMA_LOCATION})
    admin = _sub(root, _d("administrativeData"))
    _administrative(admin, doc, lab, final, lang)
    results = _sub(root, _d("measurementResults"))
    _measurement_result(results, doc)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def unique_identifier(doc: dict[str, Any]) -> str:
    if is_final(doc):
        return certificate_number(doc)
    return f"DRAFT-run-{doc['run_id']}"


def _administrative(admin: ET.Element, doc: dict[str, Any], lab: Laboratory, final: bool,
                    lang: str) -> None:
    software = _sub(_sub(admin, _d("dccSoftware")), _d("software"))
    _text(software, "name", "benchctl")
    _sub(software, _d("release"), __version__)
    _sub(software, _d("type"), "application")

    core = _sub(admin, _d("coreData"))
    _sub(core, _d("countryCodeISO3166_1"), lab.country)
    for code in (lang, "en" if lang == "vi" else "vi"):
        _sub(core, _d("usedLangCodeISO639_1"), code)
    _sub(core, _d("mandatoryLangCodeISO639_1"), lang)
    _sub(core, _d("uniqueIdentifier"), unique_identifier(doc))
    idents = _sub(core, _d("identifications"))
    _identification(idents, "calibrationLaboratory", str(doc["run_id"]),
                    {"vi": "Lần đo (benchctl)", "en": "Run (benchctl)"})
    if doc.get("revision") and int(doc["revision"]) > 1:
        _identification(idents, "calibrationLaboratory", str(doc["revision"]), _label("revision"))
    start = str(doc.get("started_at") or "")[:10] or "1970-01-01"
    end = str(doc.get("ended_at") or "")[:10] or start
    _sub(core, _d("beginPerformanceDate"), start)
    _sub(core, _d("endPerformanceDate"), end)
    _sub(core, _d("performanceLocation"), "laboratory")

    dut = doc["dut"]
    items = _sub(admin, _d("items"))
    item = _sub(items, _d("item"))
    kind = str(dut.get("kind") or "")
    _text(item, "name", _label(kind) if kind in LABELS else kind or "—")
    params = "; ".join(f"{k} = {v}" for k, v in (dut.get("params") or {}).items())
    if params or dut.get("unit"):
        desc = _sub(item, _d("description"))
        ET.SubElement(desc, _d("content")).text = clean(
            f"{params}{'; ' if params else ''}unit = {dut.get('unit')}")
    _contact(item, "manufacturer", str(dut.get("maker") or "—"), strict=False)
    if dut.get("model"):
        _sub(item, _d("model"), dut["model"])
    ids = _sub(item, _d("identifications"))
    _identification(ids, "manufacturer", str(dut.get("serial") or "—"), _label("serial"))
    _identification(ids, "calibrationLaboratory", str(dut.get("asset") or "—"), _label("asset"))

    cal_lab = _sub(admin, _d("calibrationLaboratory"))
    if lab.code:
        _sub(cal_lab, _d("calibrationLaboratoryCode"), lab.code)
    _contact(cal_lab, "contact", lab.name, email=lab.email, phone=lab.phone,
             location={"city": lab.city, "countryCode": lab.country, "street": lab.address})

    resp = _sub(admin, _d("respPersons"))
    people = doc.get("people") or {}
    named = 0
    for role in ("performed_by", "reviewed_by", "approved_by"):
        who = people.get(role) or {}
        if not who.get("name"):
            continue
        named += 1
        rp = _sub(resp, _d("respPerson"))
        _contact(rp, "person", str(who["name"]), strict=False)
        if who.get("at"):
            d = _sub(rp, _d("description"))
            ET.SubElement(d, _d("content")).text = clean(str(who["at"]))
        _sub(rp, _d("role"), role)
        if role == "approved_by" and final:
            _sub(rp, _d("mainSigner"), "true")
    if not named:
        rp = _sub(resp, _d("respPerson"))
        _contact(rp, "person", f"benchctl operator channel {doc.get('operator')}", strict=False)
        _sub(rp, _d("role"), "performed_by")

    _contact(admin, "customer", str(dut.get("customer") or "—"))
    _statements(_sub(admin, _d("statements")), doc, final)


def _identification(parent: ET.Element, issuer: str, value: str,
                    name: dict[str, str]) -> None:
    ident = _sub(parent, _d("identification"))
    _sub(ident, _d("issuer"), issuer)
    _sub(ident, _d("value"), value)
    _text(ident, "name", name)


def _statement(parent: ET.Element, ref_type: str, texts: dict[str, str], *,
               norm: str | None = None, reference: str | None = None) -> ET.Element:
    st = _sub(parent, _d("statement"), refType=ref_type)
    if norm:
        _sub(st, _d("norm"), norm)
    if reference:
        _sub(st, _d("reference"), reference)
    _text(st, "declaration", texts)
    return st


def _statements(parent: ET.Element, doc: dict[str, Any], final: bool) -> None:
    _statement(parent, "basic_validityRange", _label("relate_only"),
               norm="ISO/IEC 17025:2017", reference="7.8.2.1")
    rule = str(doc.get("decision_rule") or "simple")
    texts: dict[str, str] = {}
    try:
        texts = dict(RULE_TEXT[DecisionRule(rule)])
    except (ValueError, KeyError):
        texts = {"en": rule, "vi": rule}
    scope = _label("conformity_scope")
    st = _statement(parent, "basic_conformity",
                    {lang: f"{texts.get(lang, rule)} {scope[lang]}" for lang in ("vi", "en")},
                    norm="ILAC G8:09/2019")
    verdict = VERDICT_DCC.get(str(doc.get("verdict") or ""))
    if verdict:
        _sub(st, _d("conformity"), verdict)
    if doc.get("mode") == "verify":
        stamp = doc.get("stamp_number")
        st = _statement(parent, "benchctl_verificationStamp", {
            "vi": f"{LABELS['stamp_number']['vi']}: {stamp or '—'}",
            "en": f"{LABELS['stamp_number']['en']}: {stamp or '—'}"},
            norm="Thông tư 24/2013/TT-BKHCN", reference="Art. 39-40")
        valid_until = str(doc.get("valid_until") or "")[:10]
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", valid_until):
            _sub(st, _d("date"), valid_until)
    for o in doc.get("overrides") or []:
        line = {lang: LABELS["override_line"][lang].format(
            asset=o.get("asset") or o.get("asset_id") or "—",
            certificate=o.get("certificate") or "—", due=o.get("due_date") or "—",
            problem=f" ({o['problem']})" if o.get("problem") else "",
            reason=o.get("reason") or o.get("override_reason") or "—") for lang in ("vi", "en")}
        if o.get("by"):
            line = {k: f"{v} ({o['by']}{', ' + str(o['at']) if o.get('at') else ''})"
                    for k, v in line.items()}
        _statement(parent, "benchctl_referenceOverride", line)
    if doc.get("replaces_run_id") or int(doc.get("revision") or 1) > 1:
        text = {lang: f"{LABELS['revision'][lang]} {doc.get('revision') or 1}; "
                      f"{LABELS['replaces_number'][lang]} "
                      f"{doc.get('replaces_certificate_number') or '—'} "
                      f"({LABELS['replaces'][lang]} {doc.get('replaces_run_id') or '—'}); "
                      f"{LABELS['amend_reason'][lang]}: {doc.get('amend_reason') or '—'}"
                for lang in ("vi", "en")}
        _statement(parent, "benchctl_amendment", text)
    if doc.get("replaced_by_run_id"):
        st = _statement(parent, "benchctl_superseded", {
            lang: LABELS["superseded"][lang].format(run=doc["replaced_by_run_id"])
            for lang in ("vi", "en")}, norm="ISO/IEC 17025:2017", reference="7.8.8")
        _sub(st, _d("valid"), "false")
    if not final:
        st = _statement(parent, "benchctl_draft", _label("draft"))
        # statementMetaDataType: declaration comes before valid.
        _sub(st, _d("valid"), "false")


def _measurement_result(parent: ET.Element, doc: dict[str, Any]) -> None:
    mr = _sub(parent, _d("measurementResult"))
    _text(mr, "name", _label("results"))
    methods = _sub(mr, _d("usedMethods"))
    m = _sub(methods, _d("usedMethod"), refType="benchctl_procedure")
    _text(m, "name", str(doc.get("procedure_title") or doc.get("procedure")))
    d = _sub(m, _d("description"))
    ET.SubElement(d, _d("content")).text = clean(
        f"{doc.get('procedure')} v{doc.get('procedure_version')}, SHA-256 "
        f"{doc.get('procedure_sha256')}")
    for norm in str(doc.get("procedure_documents") or "").split(";"):
        if norm.strip():
            _sub(m, _d("norm"), norm.strip())
    if doc.get("mode") == "calibrate":
        m = _sub(methods, _d("usedMethod"), refType="basic_uncertainty")
        _text(m, "name", {"vi": "Độ không đảm bảo đo mở rộng", "en": "Expanded uncertainty"})
        _text(m, "description", _label("uncertainty_note"))
        _sub(m, _d("norm"), "JCGM 100:2008")

    refs = doc.get("references") or []
    if refs:
        eqs = _sub(mr, _d("measuringEquipments"))
        for r in refs:
            eq = _sub(eqs, _d("measuringEquipment"), refType="basic_normalUsed")
            _text(eq, "name", " ".join(str(x) for x in (r.get("asset"), r.get("maker"),
                                                         r.get("model")) if x))
            lines = {lang: f"{LABELS['ref_cert'][lang]} {r.get('certificate')}, "
                           f"{LABELS['issuer'][lang]} {r.get('issuer')}, "
                           f"{LABELS['due'][lang]} {r.get('due_date')}"
                     for lang in ("vi", "en")}
            if r.get("U") is not None:
                u_unit = f" {r['U_unit']}" if r.get("U_unit") else ""
                for lang in lines:
                    lines[lang] += f", U = {r['U']}{u_unit} (k = {r.get('k')})"
            if r.get("overdue"):
                for lang in lines:
                    lines[lang] += (f"; {LABELS['overdue'][lang]}: "
                                    f"{r.get('override_reason') or '—'}")
            _text(eq, "description", lines)
            if r.get("maker"):
                _contact(eq, "manufacturer", str(r["maker"]), strict=False)
            if r.get("model"):
                _sub(eq, _d("model"), r["model"])
            ids = _sub(eq, _d("identifications"))
            _identification(ids, "calibrationLaboratory", str(r.get("asset")), _label("asset"))
            _identification(ids, "other", str(r.get("certificate")), _label("ref_cert"))
            if r.get("serial"):
                _identification(ids, "manufacturer", str(r["serial"]), _label("serial"))

    _influence(mr, doc)
    results = _sub(mr, _d("results"))
    groups = _groups(doc)
    if not groups:
        res = _sub(results, _d("result"), refType="benchctl_noResults")
        _text(res, "name", _label("results"))
        data = _sub(res, _d("data"))
        _text(data, "text", {"vi": "Không có kết quả", "en": "No results"})
    for (test, _), points in groups:
        _result(results, doc, test, points)


def _influence(mr: ET.Element, doc: dict[str, Any]) -> None:
    env = doc.get("environment") or {}
    measured = {n: e for n, e in env.items()
                if n in ("start", "end") and isinstance(e, dict) and e.get("measured", True)}
    conditions = [("temperature_c", "basic_temperature", "°C",
                   {"vi": "Nhiệt độ môi trường", "en": "Ambient temperature"}),
                  ("humidity_pct", "basic_humidityRelative", "%",
                   {"vi": "Độ ẩm tương đối", "en": "Relative humidity"}),
                  ("pressure_hpa", "basic_airPressure", "hPa",
                   {"vi": "Áp suất khí quyển", "en": "Atmospheric pressure"})]
    blocks = []
    for key, ref_type, unit, name in conditions:
        values = [(n, v) for n, e in measured.items() if (v := _num(e.get(key))) is not None]
        if values:
            blocks.append((ref_type, unit, name, values))
    if not blocks:
        return
    ic = _sub(mr, _d("influenceConditions"))
    for ref_type, unit, name, values in blocks:
        cond = _sub(ic, _d("influenceCondition"), refType=ref_type)
        _text(cond, "name", name)
        data = _sub(cond, _d("data"))
        for when, value in values:
            q = _sub(data, _d("quantity"), refType=f"benchctl_{when}")
            _text(q, "name", _label(when))
            _real(q, value, unit)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(float(v)) else None


#: The per-point fields a result list may carry, and their refType and names.
FIELDS = (("nominal", "basic_nominalValue", "nominal"), ("flow", "benchctl_flowRate", "flow"),
          ("reference", "basic_referenceValue", "reference"),
          ("indicated", "basic_measuredValue", "indication"),
          ("error", "basic_measurementError", "error"))


def _groups(doc: dict[str, Any]) -> list[tuple[tuple[str, tuple[str, ...]], list[dict[str, Any]]]]:
    """Points grouped by test and by which numeric fields they have, in order of first
    appearance: every list in a group then has a value for every point."""
    out: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    unit = str(doc["dut"].get("unit") or "")
    for p in doc.get("points") or []:
        present = tuple(f for f, _, _ in FIELDS if _num(p.get(f)) is not None)
        unc = "U" if _num(p.get("U")) is not None and _num(p.get("k")) is not None else ""
        mpe = "mpe" if _num(p.get("mpe")) is not None else ""
        verdict = "v" if p.get("verdict") in VERDICT_DCC else ""
        eu = str(p.get("error_unit") or unit)
        key = (str(p.get("test") or p.get("key")), (*present, unc, mpe, verdict, eu))
        out.setdefault(key, []).append(p)
    return list(out.items())


def _result(results: ET.Element, doc: dict[str, Any], test: str,
            points: list[dict[str, Any]]) -> None:
    unit = str(doc["dut"].get("unit") or "")
    res = _sub(results, _d("result"), refType=f"benchctl_{re.sub(r'[^A-Za-z0-9_]', '_', test)}")
    _text(res, "name", _label(test) if test in LABELS else test)
    desc = _sub(res, _d("description"))
    for p in points:
        where = [str(p.get(k)) for k in ("series", "direction") if p.get(k) not in (None, "")]
        pos = p.get("position")
        if pos:
            where.append(POSITIONS.get(str(pos), {}).get("en", str(pos)))
        ET.SubElement(desc, _d("content")).text = clean(
            f"{p['key']}: {' · '.join(where)}" if where else str(p["key"]))
    data = _sub(res, _d("data"))
    lst = _sub(data, _d("list"))
    keys = [str(p["key"]) for p in points]
    first = True
    for fld, ref_type, label in FIELDS:
        values = [_num(p.get(fld)) for p in points]
        if any(v is None for v in values):
            continue
        vals = [float(v) for v in values if v is not None]
        q = _sub(lst, _d("quantity"), refType=ref_type)
        _text(q, "name", _label(label))
        f_unit = "L/min" if fld == "flow" else unit
        if fld == "error":
            f_unit = str(points[0].get("error_unit") or unit)
        U = k = None
        if fld == "error":
            us = [_num(p.get("U")) for p in points]
            ks = [_num(p.get("k")) for p in points]
            if all(u is not None for u in us) and all(x is not None for x in ks):
                U = [float(u) for u in us if u is not None]
                k = [float(x) for x in ks if x is not None]
        converted = _real_list(q, vals, f_unit, labels=keys if first else None, U=U, k=k)
        first = False
        if converted:
            _converted_note(q, converted)
        if fld == "error":
            _conformity(q, points, f_unit)
    extra_stats = [("s", "benchctl_standardDeviation",
                    {"vi": "Độ lệch chuẩn", "en": "Standard deviation"}),
                   ("range", "benchctl_range", {"vi": "max − min", "en": "max − min"})]
    for key, ref_type, name in extra_stats:
        values = [_num((p.get("extra") or {}).get(key)) for p in points]
        if any(v is None for v in values):
            continue
        q = _sub(lst, _d("quantity"), refType=ref_type)
        _text(q, "name", name)
        _real_list(q, [float(v) for v in values if v is not None], unit,
                   labels=keys if first else None)
        first = False
        if not any(_num(p.get("error")) is not None for p in points):
            _conformity(q, points, unit)
    if first:
        # No numeric field at all: state the verdicts as text so the point is not lost.
        q = _sub(lst, _d("quantity"), refType="benchctl_point")
        _text(q, "name", " ".join(keys))
        _text(q, "noQuantity", {"vi": ", ".join(str(p.get("verdict")) for p in points),
                                "en": ", ".join(str(p.get("verdict")) for p in points)})


def _converted_note(q: ET.Element, original: str) -> None:
    """Say in the quantity's metadata which unit of the instrument the values came from."""
    meta = _sub(_sub(q, _d("measurementMetaData")), _d("metaData"),
                refType="benchctl_originalUnit")
    _text(meta, "declaration", {"vi": f"Đơn vị gốc của phương tiện đo: {original}",
                                "en": f"The instrument's own unit: {original}"})
    _sub(meta, _d("nonSIUnit"), original)


def _conformity(q: ET.Element, points: list[dict[str, Any]], unit: str) -> None:
    verdicts = [VERDICT_DCC.get(str(p.get("verdict") or "")) for p in points]
    mpes = [_num(p.get("mpe")) for p in points]
    have_verdicts = all(v is not None for v in verdicts)
    have_mpe = all(m is not None for m in mpes)
    if not have_verdicts and not have_mpe:
        return
    existing = q.find(_d("measurementMetaData"))
    holder = existing if existing is not None else _sub(q, _d("measurementMetaData"))
    meta = _sub(holder, _d("metaData"), refType="basic_conformity")
    _text(meta, "declaration", _label("verdict"))
    if have_verdicts:
        _sub(meta, _d("conformityXMLList"), " ".join(str(v) for v in verdicts))
    if have_mpe:
        limits = [abs(float(m)) for m in mpes if m is not None]
        data = _sub(meta, _d("data"))
        for ref_type, sign, name in (("basic_acceptanceLimitLower", -1.0,
                                      {"vi": "Giới hạn dưới (−MPE)", "en": "Lower limit (−MPE)"}),
                                     ("basic_acceptanceLimitUpper", 1.0,
                                      {"vi": "Giới hạn trên (+MPE)", "en": "Upper limit (+MPE)"})):
            lq = _sub(data, _d("quantity"), refType=ref_type)
            _text(lq, "name", name)
            _real_list(lq, [sign * m for m in limits], unit)


# -- reading a DCC back ----------------------------------------------------------------------

@dataclass(frozen=True)
class DccQuantity:
    ref_type: str
    names: dict[str, str]
    values: list[float]
    unit: str
    U: list[float]
    k: list[float]
    labels: list[str]


def parse_dcc(xml: bytes | str) -> tuple[dict[str, str], list[DccQuantity]]:
    """Read a DCC: (core facts, every quantity that holds a list or a real with its U and k).

    Enough to check what a DCC states (ours, or one a reference standard came with).
    Core facts: schemaVersion, uniqueIdentifier, beginPerformanceDate, endPerformanceDate.
    """
    root = ET.fromstring(xml)
    if root.tag != _d("digitalCalibrationCertificate"):
        raise ValueError(f"not a DCC: the root element is {root.tag}")
    facts = {"schemaVersion": root.get("schemaVersion", "")}
    core = root.find(f"{_d('administrativeData')}/{_d('coreData')}")
    if core is not None:
        for tag in ("uniqueIdentifier", "beginPerformanceDate", "endPerformanceDate"):
            el = core.find(_d(tag))
            if el is not None and el.text:
                facts[tag] = el.text.strip()
    quantities = []
    for q in root.iter(_d("quantity")):
        names = {c.get("lang", ""): (c.text or "").strip()
                 for c in q.findall(f"{_d('name')}/{_d('content')}")}
        for rl in q.findall(_s("realListXMLList")):
            quantities.append(DccQuantity(
                ref_type=q.get("refType", ""), names=names,
                values=_floats(rl.findtext(_s("valueXMLList"))),
                unit=(rl.findtext(_s("unitXMLList")) or "").strip(),
                U=_floats(rl.findtext(f"{_s('expandedUncXMLList')}/{_s('uncertaintyXMLList')}")),
                k=_floats(rl.findtext(
                    f"{_s('expandedUncXMLList')}/{_s('coverageFactorXMLList')}")),
                labels=(rl.findtext(_s("labelXMLList")) or "").split()))
        for real in q.findall(_s("real")):
            quantities.append(DccQuantity(
                ref_type=q.get("refType", ""), names=names,
                values=_floats(real.findtext(_s("value"))),
                unit=(real.findtext(_s("unit")) or "").strip(),
                U=_floats(real.findtext(f"{_s('expandedUnc')}/{_s('uncertainty')}")),
                k=_floats(real.findtext(f"{_s('expandedUnc')}/{_s('coverageFactor')}")),
                labels=[]))
    return facts, quantities


def _floats(text: str | None) -> list[float]:
    return [float(x) for x in (text or "").split()]

"""The DCC XML: valid against PTB's DCC 3.1.2 and D-SI 2.1.0 schemas (carried in tests/data/dcc
with their LGPL notice, so a fresh clone validates for real), and it says what the run says."""

from __future__ import annotations

import copy
import filecmp
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from reportshelp import (
    DCC_DIR,
    HOSTILE,
    ISSUER,
    SHARED_DCC_DIR,
    Runs,
    approved,
    dcc_schema,
    dispenser_doc,
    pressure_doc,
)

from benchctl.reports.dcc import DCC_NS, dec, parse_dcc, render_dcc

#: The session fixture ``runs`` (real balance runs, made once for all report tests).
pytest_plugins = ("reportsplugin",)

NS = {"dcc": DCC_NS, "si": "https://ptb.de/si"}


@pytest.fixture(scope="module")
def schema() -> Any:
    return dcc_schema()


def errors(schema: Any, xml: bytes) -> list[str]:
    return [f"{e.reason} at {e.path}" for e in schema.iter_errors(xml.decode())]


def error_quantity(xml: bytes, result_ref: str) -> Any:
    _, quantities = parse_dcc(xml)
    root = ET.fromstring(xml)
    res = root.find(f".//dcc:result[@refType='{result_ref}']", NS)
    assert res is not None, result_ref
    labels = res.findtext(".//si:labelXMLList", namespaces=NS).split()  # type: ignore[union-attr]
    q = next(q for q in quantities if q.ref_type == "basic_measurementError"
             and q.values and set(q.labels or labels) and len(q.values) == len(labels)
             and _values_of(res) == q.values)
    return labels, q


def _values_of(res: ET.Element) -> list[float]:
    q = res.find(".//dcc:quantity[@refType='basic_measurementError']/si:realListXMLList", NS)
    assert q is not None
    return [float(x) for x in (q.findtext("si:valueXMLList", namespaces=NS) or "").split()]


def test_ptb_example_parses_and_validates_as_3_1_2(schema: Any) -> None:
    xml = (DCC_DIR / "ptb_example_temperature_typical_v12.xml").read_bytes()
    # As published it says schemaVersion 3.1.1, which the 3.1.2 schema refuses ...
    assert any("schemaVersion" in e for e in errors(schema, xml))
    # ... and is valid once that attribute says 3.1.2 (README of ../shared/dcc).
    fixed = xml.replace(b'schemaVersion="3.1.1"', b'schemaVersion="3.1.2"')
    assert errors(schema, fixed) == []
    facts, quantities = parse_dcc(fixed)
    assert facts["uniqueIdentifier"] == "GP_DCC_temperature_typical_1.2"
    error = [q for q in quantities if q.ref_type == "basic_measurementError"]
    assert len(error) == 1
    assert error[0].values == [0.072, 0.089, 0.107, -0.009, -0.084]
    assert error[0].unit == r"\kelvin"
    assert error[0].U == [0.061] and error[0].k == [2.0]


def test_carried_schema_copy_matches_the_shared_one() -> None:
    assert "LGPL-3.0" in (DCC_DIR / "NOTICE").read_text(encoding="utf-8")
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (DCC_DIR / "COPYING.LESSER").read_text()
    if not SHARED_DCC_DIR.is_dir():
        pytest.skip(f"{SHARED_DCC_DIR} is absent (a fresh clone): the carried copy in "
                    f"{DCC_DIR} is what the other tests use")
    for name in ("dcc_3_1_2.xsd", "SI_Format_2_1_0.xsd",
                 "ptb_example_temperature_typical_v12.xml"):
        assert filecmp.cmp(DCC_DIR / name, SHARED_DCC_DIR / name, shallow=False), name


def test_calibration_dcc_validates_and_reads_back(runs: Runs, schema: Any) -> None:
    doc = runs.doc(runs.calibrate)
    for d in (doc, approved(doc)):
        xml = render_dcc(d)
        assert errors(schema, xml) == []
    xml = render_dcc(approved(doc))
    facts, _ = parse_dcc(xml)
    assert facts["schemaVersion"] == "3.1.2"
    assert facts["uniqueIdentifier"] == "HC-2025/0042"
    assert facts["beginPerformanceDate"] == doc["started_at"][:10]
    labels, q = error_quantity(xml, "benchctl_weighing")
    weighing = {p["key"]: p for p in doc["points"] if p["test"] == "weighing"}
    assert set(labels) == set(weighing)
    assert q.unit == r"\gram"
    assert q.values == [weighing[k]["error"] for k in labels]
    assert [weighing[k]["U"] for k in labels] == q.U
    assert q.k == [weighing[k]["k"] for k in labels]
    root = ET.fromstring(xml)
    conf = root.find(".//dcc:result[@refType='benchctl_weighing']//dcc:conformityXMLList", NS)
    assert conf is not None and conf.text == " ".join(weighing[k]["verdict"] for k in labels)
    upper = root.find(".//dcc:result[@refType='benchctl_weighing']"
                      "//dcc:quantity[@refType='basic_acceptanceLimitUpper']//si:valueXMLList",
                      NS)
    assert upper is not None
    assert [float(x) for x in (upper.text or "").split()] == [weighing[k]["mpe"] for k in labels]
    # The approver is the main signer; the reference standard and its certificate are named.
    signer = root.find(".//dcc:respPerson[dcc:mainSigner='true']/dcc:person/dcc:name/dcc:content",
                       NS)
    assert signer is not None and signer.text == "Lê Hoàng Cường"
    ref = doc["references"][0]
    ident = root.findall(".//dcc:measuringEquipment//dcc:identification/dcc:value", NS)
    assert {ref["asset"], ref["certificate"]} <= {i.text for i in ident}
    temp = root.find(".//dcc:influenceCondition[@refType='basic_temperature']//si:value", NS)
    assert temp is not None
    assert float(temp.text or "nan") == doc["environment"]["start"]["temperature_c"]


def test_draft_dcc_is_marked_and_not_valid(runs: Runs, schema: Any) -> None:
    xml = render_dcc(runs.doc(runs.calibrate))
    assert errors(schema, xml) == []
    root = ET.fromstring(xml)
    assert root.findtext(".//dcc:uniqueIdentifier", namespaces=NS) == (
        f"DRAFT-run-{runs.calibrate}")
    draft = root.find(".//dcc:statement[@refType='benchctl_draft']", NS)
    assert draft is not None and draft.findtext("dcc:valid", namespaces=NS) == "false"
    assert root.find(".//dcc:mainSigner", NS) is None


def test_verification_dcc_has_stamp_validity_and_overrides(runs: Runs, schema: Any) -> None:
    doc = approved(runs.doc(runs.verify), stamp="TKĐ-123456", valid_until="2026-11-20")
    doc["references"][0].update(overdue=True, override_reason="chuẩn mới đang hiệu chuẩn")
    doc["overrides"] = [{"asset": doc["references"][0]["asset"], "certificate": "KLC-2025-0412",
                         "due_date": "2025-01-01", "reason": "chuẩn mới đang hiệu chuẩn",
                         "by": "Lê Hoàng Cường", "at": "2025-11-20T07:55:00+00:00"}]
    doc.update(revision=2, replaces_run_id=3, amend_reason="sửa số tem")
    xml = render_dcc(doc, lang="en")
    assert errors(schema, xml) == []
    root = ET.fromstring(xml)
    assert root.findtext(".//dcc:mandatoryLangCodeISO639_1", namespaces=NS) == "en"
    stamp = root.find(".//dcc:statement[@refType='benchctl_verificationStamp']", NS)
    assert stamp is not None and stamp.findtext("dcc:date", namespaces=NS) == "2026-11-20"
    assert "TKĐ-123456" in ET.tostring(stamp, encoding="unicode")
    override = root.find(".//dcc:statement[@refType='benchctl_referenceOverride']", NS)
    assert override is not None
    assert "chuẩn mới đang hiệu chuẩn" in ET.tostring(override, encoding="unicode")
    assert root.find(".//dcc:statement[@refType='benchctl_amendment']", NS) is not None
    overall = root.find(".//dcc:statement[@refType='basic_conformity']/dcc:conformity", NS)
    assert overall is not None and overall.text == doc["verdict"]


def test_pressure_in_kgf_per_cm2_is_converted_to_kpa(schema: Any) -> None:
    doc = pressure_doc()
    xml = render_dcc(doc)
    assert errors(schema, xml) == []
    labels, q = error_quantity(xml, "benchctl_series")
    assert q.unit == r"\kilo\pascal"
    by_key = {p["key"]: p for p in doc["points"]}
    # pint: 1 kgf/cm² = 98.0665 kPa (exactly, from g_n).
    assert q.values == pytest.approx([by_key[k]["error"] * 98.0665 for k in labels], rel=1e-12)
    assert pytest.approx([0.031 * 98.0665] * len(labels), rel=1e-12) == q.U
    assert b"<dcc:nonSIUnit>kgf/cm\xc2\xb2</dcc:nonSIUnit>" in xml


def test_dispenser_errors_in_percent_with_flow(schema: Any) -> None:
    doc = dispenser_doc()
    xml = render_dcc(doc)
    assert errors(schema, xml) == []
    _, quantities = parse_dcc(xml)
    errors_pct = [q for q in quantities if q.ref_type == "basic_measurementError"
                  and q.unit == r"\percent"]
    assert errors_pct and errors_pct[0].values == [p["error"] for p in doc["points"][:6]]
    flows = [q for q in quantities if q.ref_type == "benchctl_flowRate"]
    assert flows[0].unit == r"\litre\minute\tothe{-1}" and flows[0].values[0] == 40.0
    # The price check keeps its own unit, stated as a non-SI unit.
    assert "<dcc:nonSIUnit>đồng</dcc:nonSIUnit>" in xml.decode()


def test_hostile_and_control_characters_stay_well_formed(runs: Runs, schema: Any) -> None:
    doc = copy.deepcopy(runs.doc(runs.calibrate))
    doc["dut"]["customer"] += "\x07\x1b[31m"  # a bell and an escape from a serial line
    xml = render_dcc(doc)
    assert errors(schema, xml) == []
    root = ET.fromstring(xml)
    item = root.find(".//dcc:item", NS)
    assert item is not None
    assert item.findtext("dcc:manufacturer/dcc:name/dcc:content", namespaces=NS) == (
        HOSTILE["maker"])
    assert item.findtext("dcc:model", namespaces=NS) == HOSTILE["model"]
    serials = [i.findtext("dcc:value", namespaces=NS)
               for i in item.findall(".//dcc:identification", NS)]
    assert HOSTILE["serial"] in serials
    equipment = ET.tostring(root.find(".//dcc:measuringEquipment", NS), encoding="unicode")
    assert ISSUER.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in equipment
    root = ET.fromstring(xml)
    customer = root.findtext(".//dcc:customer/dcc:name/dcc:content", namespaces=NS)
    assert customer == HOSTILE["customer"] + "\ufffd\ufffd[31m"
    assert root.find(".//script") is None


def test_the_schema_check_can_fail(runs: Runs, schema: Any) -> None:
    """The validation is real: a DCC missing a required ring, or with a number D-SI refuses,
    is reported."""
    xml = render_dcc(runs.doc(runs.calibrate))
    root = ET.fromstring(xml)
    admin = root.find("dcc:administrativeData", NS)
    assert admin is not None
    admin.remove(admin.find("dcc:customer", NS))  # type: ignore[arg-type]
    assert errors(schema, ET.tostring(root)) != []
    broken = xml.replace(b"<si:valueXMLList>", b"<si:valueXMLList>NaN ", 1)
    assert errors(schema, broken) != []
    with pytest.raises(ValueError, match="not a finite number"):
        dec(float("nan"))
    assert dec(1e-5) == "1e-05" and dec(2.0) == "2" and dec(-0.0098) == "-0.0098"

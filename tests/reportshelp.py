"""Shared data for the report tests (the ``runs`` fixture itself is in reportsplugin.py).

The DUT, the weight set's certificate and the bench name carry hostile and Vietnamese text,
so every report test also exercises escaping and diacritics on data that went through the
real store. Documents for a pressure gauge and a fuel dispenser follow the JSON contract of
DESIGN.md (their procedures are written in parallel); they feed the pure renderers.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DCC_DIR = ROOT / "tests" / "data" / "dcc"
SHARED_DCC_DIR = ROOT.parent / "shared" / "dcc"

SCRIPT = "<script>alert(1)</script>"
HOSTILE = {
    "customer": f'Công ty "Sông Hương" {SCRIPT} & Co',
    "maker": "Mettler \"Toledo\" onmouseover='alert(2)'",
    "model": "XS6002S</td><td onclick=alert(3)>",
    "serial": "B123'\"><img src=x onerror=alert(4)>",
}
ISSUER = 'Viện Đo lường Việt Nam <b>VMI</b> "&" <iframe src=x>'
BENCH_NAME = "Bàn cân <svg onload=alert(5)>"


def dut_text(**fields: str) -> str:
    from benchhelp import toml_value

    base = {"asset": "BAL-RPT-0001", "kind": "balance", **HOSTILE, **fields}
    lines = [f"{k} = {toml_value(v)}" for k, v in base.items()]
    lines += ['unit = "g"', "max = 6200.0", "d = 0.1", "e = 0.1", 'class = "II"']
    return "\n".join(lines) + "\n"


@dataclass
class Runs:
    folder: Path
    db_url: str
    calibrate: int
    verify: int

    def db(self) -> Any:
        from benchctl.store import open_database

        return open_database(self.db_url)

    def doc(self, run_id: int) -> dict[str, Any]:
        from benchctl.reports.document import run_document

        return run_document(self.db(), run_id)


def toml_text(s: str) -> str:
    from benchhelp import toml_value

    return toml_value(s)


def approved(doc: dict[str, Any], *, number: str = "HC-2025/0042", stamp: str | None = None,
             valid_until: str | None = None) -> dict[str, Any]:
    """The document as the store gives it once reviewed and approved (item 6 of the issue)."""
    d = copy.deepcopy(doc)
    at = dt.datetime(2025, 11, 21, 9, 30, tzinfo=dt.UTC)
    d.update(performed_by="Nguyễn Văn An", reviewed_by="Trần Thị Bình",
             reviewed_at=(at - dt.timedelta(hours=1)).isoformat(), approved_by="Lê Hoàng Cường",
             approved_at=at.isoformat(), certificate_number=number, approved=True,
             stamp_number=stamp, valid_until=valid_until)
    d["people"] = {"performed_by": {"name": "Nguyễn Văn An", "at": d["ended_at"]},
                   "reviewed_by": {"name": "Trần Thị Bình", "at": d["reviewed_at"]},
                   "approved_by": {"name": "Lê Hoàng Cường", "at": d["approved_at"]}}
    return d


def pressure_doc() -> dict[str, Any]:
    """A pressure-gauge calibration as the JSON contract describes it (sequence C, kgf/cm²)."""
    points = []
    for series, direction, loads in (("series1", "up", (0.0, 2.5, 5.0, 7.5, 10.0)),
                                     ("series1", "down", (10.0, 7.5, 5.0, 2.5, 0.0))):
        for i, p in enumerate(loads):
            err = round(0.02 * (i - 2) + (0.01 if direction == "down" else 0.0), 3)
            points.append({"key": f"{series}.{direction}.{p:g}kgf/cm2", "nominal": p,
                           "unit": "kgf/cm²", "reference": p, "indicated": p + err,
                           "error": err, "error_unit": "kgf/cm²", "U": 0.031, "k": 2.0,
                           "mpe": 0.16, "verdict": "pass", "test": "series", "position": None,
                           "direction": direction, "series": series, "flow": None})
    return _doc("pressure_gauge", "kgf/cm²", "pressure_gauge", points,
                {"range": [0.0, 10.0], "class": 1.6, "resolution": 0.05})


def dispenser_doc() -> dict[str, Any]:
    """A fuel-dispenser verification: errors in %, x = flow (contract: ``error_unit`` "%")."""
    points = []
    for rate, flow in (("qmax", 40.0), ("qmin", 5.0)):
        for n in (1, 2, 3):
            err = round(0.05 * n - (0.1 if rate == "qmin" else 0.0), 3)
            points.append({"key": f"{rate}.delivery{n}", "nominal": 20.0, "unit": "L",
                           "reference": 20.0, "indicated": round(20.0 * (1 + err / 100), 4),
                           "error": err, "error_unit": "%", "U": None, "k": None, "mpe": 0.3,
                           "verdict": "pass", "test": "delivery", "position": None,
                           "direction": None, "series": None, "flow": flow})
    points.append({"key": "price.check", "nominal": 20.0, "unit": "L", "reference": 469000.0,
                   "indicated": 469000.0, "error": 0.0, "error_unit": "đồng", "U": None,
                   "k": None, "mpe": 0.0, "verdict": "pass", "test": "price", "position": None,
                   "direction": None, "series": None, "flow": None})
    doc = _doc("fuel_dispenser", "L", "fuel_dispenser", points,
               {"qmax": 40.0, "qmin": 5.0, "mmq": 2.0, "unit_price": 23450})
    doc["mode"] = "verify"
    return doc


def _doc(procedure: str, unit: str, kind: str, points: list[dict[str, Any]],
         params: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": 77, "procedure": procedure, "procedure_version": "1.0",
        "procedure_title": f"{kind} procedure", "procedure_documents": "ĐLVN 08:2011; EN 837-1",
        "procedure_sha256": "ab" * 32, "mode": "calibrate", "decision_rule": "simple",
        "params": {}, "state": "completed", "state_message": None, "bench": "Bench 2",
        "operator": "sim", "started_at": "2025-11-20T08:00:00+00:00",
        "ended_at": "2025-11-20T09:10:00+00:00",
        "dut": {"asset": "DUT-1", "kind": kind, "maker": "Wika", "model": "M1", "serial": "S1",
                "customer": "Petrolimex Huế", "unit": unit, "params": params},
        "references": [{"asset": "REF-P-001", "role": "controller", "certificate": "P-2025-001",
                        "issuer": "VMI", "issued_on": "2025-06-01", "due_date": "2026-06-01",
                        "kind": "pressure_controller", "maker": "Druck", "model": "PACE5000",
                        "serial": "D1", "U": 0.02, "k": 2.0, "U_unit": None, "overdue": False,
                        "override_reason": None}],
        "environment": {"start": {"temperature_c": 22.0, "humidity_pct": 55.0,
                                  "pressure_hpa": 1008.0}},
        "verdict": "pass", "points": points, "measured_points": len(points),
        "readings": 2 * len(points), "performed_by": None, "reviewed_by": None,
        "reviewed_at": None, "approved_by": None, "approved_at": None,
        "certificate_number": None, "revision": 1, "replaces_run_id": None,
        "amend_reason": None, "stamp_number": None, "valid_until": None,
        "people": {"performed_by": {"name": None, "at": "2025-11-20T09:10:00+00:00"},
                   "reviewed_by": {"name": None, "at": None},
                   "approved_by": {"name": None, "at": None}},
        "overrides": [], "approved": False,
    }


def dcc_schema() -> Any:
    """The DCC 3.1.2 schema with D-SI 2.1.0 mapped to the local copy (no network)."""
    import xmlschema

    return xmlschema.XMLSchema(
        str(DCC_DIR / "dcc_3_1_2.xsd"),
        uri_mapper={"https://ptb.de/si/v2.1.0/SI_Format.xsd":
                    (DCC_DIR / "SI_Format_2_1_0.xsd").as_uri()},
        allow="local")

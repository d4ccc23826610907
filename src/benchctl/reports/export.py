"""A run's data as CSV and XLSX: every point with its result, every reading with its raw bytes.

CSV is one flat table (one row per reading, its point's result repeated; a result with no
reading of its own, such as repeatability, gets one row with the reading columns empty), so a
spreadsheet filter or pandas reads it without knowing benchctl. XLSX has three sheets: Run
(the facts of the certificate), Results (one row per point) and Readings (one per reading).

Raw bytes are shown safely, twice: ``raw_text`` escapes everything outside printable ASCII
(``S S      100.00 g\\r\\n``), ``raw_hex`` is exact. Text cells are protected against formula
injection: a customer name typed as ``=HYPERLINK(...)`` must stay text in Excel/LibreOffice.
In CSV such a cell gets a leading apostrophe (the OWASP advice; the only way CSV can say
"text"); in XLSX the cell is stored as a string with its text unchanged. Control characters,
which XLSX cannot hold, are escaped in both.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from .document import POINT_FIELDS

#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

RESULT_COLUMNS = [f for f in POINT_FIELDS if f != "key"]
READING_COLUMNS = ["reading_id", "instrument", "role", "value", "reading_unit", "stable",
                   "taken_at", "raw_text", "raw_hex"]
CSV_COLUMNS = ["run_id", "point_seq", "point_key", *RESULT_COLUMNS, "extra", *READING_COLUMNS]


def raw_text(raw: bytes) -> str:
    """Bytes as printable ASCII: \\r \\n \\t, \\\\ and \\xNN for everything else."""
    out = []
    for b in raw:
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _visible(text: str) -> str:
    """Control characters (which XLSX cannot store) as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    s = _visible(str(value))
    return "'" + s if s.startswith(FORMULA_START) else s


def _extra(row: dict[str, Any]) -> str:
    import json

    extra = row.get("extra")
    return json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str) if extra else ""


def table_rows(records: dict[str, Any]) -> list[dict[str, Any]]:
    """The flat table: one dict per reading (or per result without readings)."""
    doc = records["document"]
    results = {p["key"]: p for p in doc["points"]}
    seq = {p["key"]: p["seq"] for p in records["recorded_points"]}
    by_point: dict[str, list[dict[str, Any]]] = {}
    for rd in records["reading_rows"]:
        by_point.setdefault(rd["point_key"], []).append(rd)
    keys = list(dict.fromkeys([*(p["key"] for p in records["recorded_points"]),
                               *results, *by_point]))
    rows = []
    for key in keys:
        result = results.get(key, {})
        base = {"run_id": doc["run_id"], "point_seq": seq.get(key), "point_key": key,
                **{c: result.get(c) for c in RESULT_COLUMNS}, "extra": _extra(result)}
        readings: list[dict[str, Any] | None] = [*by_point.get(key, [])] or [None]
        for rd in readings:
            row = dict(base)
            if rd is not None:
                row.update({"reading_id": rd["id"], "instrument": rd["instrument"],
                            "role": rd["role"], "value": rd["value"], "reading_unit": rd["unit"],
                            "stable": rd["stable"], "taken_at": rd["taken_at"],
                            "raw_text": raw_text(rd["raw"]), "raw_hex": rd["raw"].hex(" ")})
            rows.append(row)
    return rows


def render_csv(records: dict[str, Any]) -> bytes:
    """UTF-8 with a BOM (so Excel opens Vietnamese text correctly), CRLF line ends (RFC 4180)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for row in table_rows(records):
        w.writerow([csv_text(row.get(c)) for c in CSV_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _run_facts(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    dut = doc["dut"]
    facts: list[tuple[str, Any]] = [
        ("run_id", doc["run_id"]), ("state", doc["state"]), ("mode", doc["mode"]),
        ("procedure", doc["procedure"]), ("procedure_version", doc["procedure_version"]),
        ("procedure_title", doc["procedure_title"]),
        ("procedure_documents", doc["procedure_documents"]),
        ("procedure_sha256", doc["procedure_sha256"]), ("decision_rule", doc["decision_rule"]),
        ("verdict", doc["verdict"]), ("started_at", doc["started_at"]),
        ("ended_at", doc["ended_at"]), ("bench", doc["bench"]), ("operator", doc["operator"]),
        ("certificate_number", doc.get("certificate_number")),
        ("revision", doc.get("revision")), ("replaces_run_id", doc.get("replaces_run_id")),
        ("amend_reason", doc.get("amend_reason")), ("stamp_number", doc.get("stamp_number")),
        ("valid_until", doc.get("valid_until")), ("approved", doc.get("approved")),
    ]
    for role, who in (doc.get("people") or {}).items():
        facts.append((role, who.get("name")))
        facts.append((role.replace("_by", "_at"), who.get("at")))
    for k in ("asset", "kind", "maker", "model", "serial", "customer", "unit"):
        facts.append((f"dut.{k}", dut.get(k)))
    for k, v in (dut.get("params") or {}).items():
        facts.append((f"dut.params.{k}", v if not isinstance(v, list | dict) else str(v)))
    for k, v in (doc.get("params") or {}).items():
        facts.append((f"params.{k}", v if not isinstance(v, list | dict) else str(v)))
    for i, r in enumerate(doc.get("references") or [], 1):
        for k in ("asset", "role", "certificate", "issuer", "issued_on", "due_date", "overdue",
                  "override_reason"):
            facts.append((f"reference{i}.{k}", r.get(k)))
    for when, e in (doc.get("environment") or {}).items():
        if isinstance(e, dict):
            for k, v in e.items():
                facts.append((f"environment.{when}.{k}", v))
    for i, o in enumerate(doc.get("overrides") or [], 1):
        for k, v in o.items():
            facts.append((f"override{i}.{k}", v))
    return facts


def render_xlsx(records: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    doc = records["document"]
    wb = Workbook()
    bold = Font(bold=True)

    def put(ws: Any, row: int, col: int, value: Any) -> None:
        cell = ws.cell(row=row, column=col)
        if value is None:
            return
        if isinstance(value, bool | int | float):
            cell.value = value
        else:
            cell.value = _visible(str(value))
            # openpyxl reads a leading "=" as a formula; force plain text.
            cell.data_type = "s"

    def sheet(ws: Any, head: list[str], rows: list[list[Any]]) -> None:
        for c, h in enumerate(head, 1):
            put(ws, 1, c, h)
            ws.cell(row=1, column=c).font = bold
        for r, values in enumerate(rows, 2):
            for c, v in enumerate(values, 1):
                put(ws, r, c, v)
        ws.freeze_panes = "A2"
        for c, h in enumerate(head, 1):
            width = max([len(str(h))] + [len(str(v[c - 1])) for v in rows[:200]
                                         if v[c - 1] is not None])
            ws.column_dimensions[ws.cell(row=1, column=c).column_letter].width = min(
                60, max(8, width + 2))

    ws = wb.active
    ws.title = "Run"
    sheet(ws, ["field", "value"], [[k, v] for k, v in _run_facts(doc)])
    seq = {p["key"]: p["seq"] for p in records["recorded_points"]}
    head = ["point_seq", "point_key", *RESULT_COLUMNS, "extra"]
    rows = [[seq.get(p["key"]), p["key"], *(p.get(c) for c in RESULT_COLUMNS), _extra(p)]
            for p in doc["points"]]
    sheet(wb.create_sheet("Results"), head, rows)
    head = ["point_seq", "point_key", *READING_COLUMNS]
    rows = [[rd["point_seq"], rd["point_key"], rd["id"], rd["instrument"], rd["role"],
             rd["value"], rd["unit"], rd["stable"], rd["taken_at"], raw_text(rd["raw"]),
             rd["raw"].hex(" ")] for rd in records["reading_rows"]]
    sheet(wb.create_sheet("Readings"), head, rows)
    wb.properties.title = f"benchctl run {doc['run_id']}"
    wb.properties.creator = "benchctl"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

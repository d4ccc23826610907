"""CSV and XLSX exports: every point and every reading of the run, raw bytes shown safely,
typed text that looks like a formula kept as text."""

from __future__ import annotations

import copy
import csv
import io
from typing import Any

from openpyxl import load_workbook
from reportshelp import HOSTILE, Runs

from benchctl.reports.document import run_records
from benchctl.reports.export import CSV_COLUMNS, csv_text, raw_text, render_csv, render_xlsx
from benchctl.store import repository as repo

#: The session fixture ``runs`` (real balance runs, made once for all report tests).
pytest_plugins = ("reportsplugin",)


def stored(bench_runs: Runs, run_id: int) -> tuple[list[Any], list[Any]]:
    """The points and readings as the store holds them (the truth the exports must match)."""
    with bench_runs.db().session() as s:
        points = list(repo.completed_points(s, run_id).values())
        readings = repo.readings_of(s, run_id)
        return ([(p.key, p.seq) for p in points],
                [(r.id, r.point_key, r.instrument, r.value, r.unit, bytes(r.raw))
                 for r in readings])


def test_csv_holds_every_point_and_reading(runs: Runs) -> None:
    records = run_records(runs.db(), runs.calibrate)
    data = render_csv(records)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert list(rows[0]) == CSV_COLUMNS
    points, readings = stored(runs, runs.calibrate)
    assert len(readings) > 20
    by_id = {int(r["reading_id"]): r for r in rows if r["reading_id"]}
    assert set(by_id) == {r[0] for r in readings}
    for rid, key, instrument, value, unit, raw in readings:
        row = by_id[rid]
        assert (row["point_key"], row["instrument"], row["reading_unit"]) == (key, instrument,
                                                                              unit)
        assert float(row["value"]) == value  # repr keeps every digit
        assert bytes.fromhex(row["raw_hex"]) == raw
        assert row["raw_text"] == raw_text(raw)
    # Every recorded point and every result appears (repeatability has no reading of its own).
    keys = {r["point_key"] for r in rows}
    assert {k for k, _ in points} <= keys
    doc = records["document"]
    assert {p["key"] for p in doc["points"]} <= keys
    # Result columns come from the results: the 6200 g error and its U, as stored.
    p6200 = next(p for p in doc["points"] if p["key"] == "weighing.up.6200g")
    row = next(r for r in rows if r["point_key"] == "weighing.up.6200g")
    assert float(row["error"]) == p6200["error"] and float(row["U"]) == p6200["U"]
    assert row["verdict"] == p6200["verdict"]


def test_raw_bytes_are_escaped_not_passed_through() -> None:
    raw = b"S S     100.00 g\r\n\x00\x1b[2J\xff\\"
    assert raw_text(raw) == "S S     100.00 g\\r\\n\\x00\\x1b[2J\\xff\\\\"
    assert raw_text(raw).isprintable() and raw_text(raw).isascii()


def test_formula_like_text_stays_text(runs: Runs) -> None:
    assert csv_text("=HYPERLINK(\"http://x\",\"click\")") == "'=HYPERLINK(\"http://x\",\"click\")"
    assert csv_text("@SUM(A1)") == "'@SUM(A1)" and csv_text("+1") == "'+1"
    assert csv_text(-0.003) == "-0.003"  # numbers are numbers
    assert csv_text("bell\x07") == "bell\\x07"
    records = run_records(runs.db(), runs.verify)
    records = copy.deepcopy(records)
    records["document"]["points"][0]["position"] = "=cmd|' /C calc'!A0"
    records["reading_rows"][0]["raw"] = b"=1+1\r\n"
    text = render_csv(records).decode("utf-8-sig")
    assert "'=cmd|' /C calc'!A0" in text and ",=cmd" not in text
    assert "'=1+1\\r\\n" in text
    wb = load_workbook(io.BytesIO(render_xlsx(records)))
    results = wb["Results"]
    head = [c.value for c in results[1]]
    cell = results.cell(row=2, column=head.index("position") + 1)
    assert cell.value == "=cmd|' /C calc'!A0" and cell.data_type == "s"
    readings = wb["Readings"]
    head = [c.value for c in readings[1]]
    cell = readings.cell(row=2, column=head.index("raw_text") + 1)
    assert cell.value == "=1+1\\r\\n" and cell.data_type == "s"


def test_xlsx_has_run_results_and_readings(runs: Runs) -> None:
    records = run_records(runs.db(), runs.calibrate)
    wb = load_workbook(io.BytesIO(render_xlsx(records)))
    assert wb.sheetnames == ["Run", "Results", "Readings"]
    facts = {r[0]: r[1] for r in wb["Run"].iter_rows(min_row=2, values_only=True)}
    doc = records["document"]
    assert facts["run_id"] == doc["run_id"] and facts["procedure_sha256"] == doc[
        "procedure_sha256"]
    assert facts["dut.customer"] == HOSTILE["customer"]
    assert facts["reference1.certificate"] == doc["references"][0]["certificate"]
    assert facts["approved"] is False
    results = list(wb["Results"].iter_rows(values_only=True))
    head = list(results[0])
    assert [r[head.index("point_key")] for r in results[1:]] == [p["key"] for p in doc["points"]]
    for row, p in zip(results[1:], doc["points"], strict=True):
        assert row[head.index("error")] == p["error"]  # a number cell, not text
        assert row[head.index("U")] == p["U"]
    readings = list(wb["Readings"].iter_rows(values_only=True))
    head = list(readings[0])
    _, stored_readings = stored(runs, runs.calibrate)
    assert len(readings) - 1 == len(stored_readings)
    for row, (rid, key, _, value, _, raw) in zip(readings[1:], stored_readings, strict=True):
        assert row[head.index("reading_id")] == rid and row[head.index("point_key")] == key
        assert row[head.index("value")] == value
        assert bytes.fromhex(str(row[head.index("raw_hex")])) == raw

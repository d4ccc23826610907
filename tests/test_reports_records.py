"""Certificates from the real records: an overdue reference refused, then used under an
override that the certificate states; review and approval turning the draft into the final
certificate with the store's number and the people with their times; the verification stamp;
an amendment that says which certificate it replaces.

Real engine, store and simulated bench; nothing set by hand in a document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from benchhelp import BALANCE_SIM, DUT, ROOM_SIM, WEIGHTS, bench_text
from reportshelp import dcc_schema

from benchctl.errors import BenchctlError
from benchctl.reports import render_report
from benchctl.reports.dcc import parse_dcc
from benchctl.reports.document import run_document

OPERATOR, REVIEWER, SIGNATORY = "Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường"
REASON = "Bộ quả cân thay thế đang hiệu chuẩn tại VMI; kiểm tra trước khi dùng đạt"
#: A balance with no injected error, so a verification passes and gets its stamp.
CLEAN_SIM = {**BALANCE_SIM, "linearity": [[0.0, 0.0], [6200.0, 0.0]],
             "eccentricity": dict.fromkeys(BALANCE_SIM["eccentricity"], 0.0)}


@dataclass
class Bench:
    folder: Path
    db: Any
    bench: Any
    control: str

    def run(self, mode: str, **kw: Any) -> int:
        from benchctl.engine.operators import SimulatedOperator
        from benchctl.engine.runner import RunOptions, start_run

        opts = RunOptions(bench=self.bench, operator=SimulatedOperator(self.control),
                          db=self.db, speed=100.0, handle_signals=False)
        outcome = start_run("nawi_balance", str(self.folder / "dut.toml"), mode,
                            ["loads=5,3100,6200", "rep_n=2", "down=false"], opts,
                            performed_by=OPERATOR, **kw)
        assert outcome.state == "completed", outcome.message
        return int(outcome.run_id)


@pytest.fixture(scope="module")
def overdue_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """A clean balance and a weight set whose certificate was due on 2025-01-01."""
    from benchctl import library
    from benchctl.config import load_bench
    from benchctl.store import open_database
    from benchctl.store import repository as repo

    folder = tmp_path_factory.mktemp("records")
    library.configure([])
    sim = library.load("simulators", "bench").start_simulation(
        {"balance": dict(CLEAN_SIM), "room": dict(ROOM_SIM)}, speed=100.0, seed=5)
    try:
        weights = WEIGHTS.replace('date = "2025-12-01"', 'date = "2024-01-02"').replace(
            'due = "2027-12-01"', 'due = "2025-01-01"')
        assert 'due = "2025-01-01"' in weights
        (folder / "weights.toml").write_text(weights, encoding="utf-8")
        (folder / "dut.toml").write_text(DUT, encoding="utf-8")
        db_url = f"sqlite:///{folder / 'bench.db'}"
        (folder / "bench.toml").write_text(
            bench_text(dict(sim.resources), control=sim.control_address, db=db_url),
            encoding="utf-8")
        db = open_database(db_url)
        with db.session() as s:
            repo.add_person(s, OPERATOR, ["operator"])
            repo.add_person(s, REVIEWER, ["reviewer"])
            repo.add_person(s, SIGNATORY, ["signatory"])
        yield Bench(folder, db, load_bench(folder / "bench.toml"), sim.control_address)
    finally:
        sim.stop()


def pdf_text(data: bytes) -> str:
    pdf = pdfium.PdfDocument(data)
    return " ".join(" ".join(pdf[i].get_textpage().get_text_range() for i in
                             range(len(pdf))).split())


def test_overdue_reference_refused_then_overridden_and_on_the_certificate(
        overdue_bench: Bench) -> None:
    from benchctl.records.approval import approve, review

    with pytest.raises(BenchctlError, match=r"WS-F1-DEMO \(certificate KLC-2025-0412\)"):
        overdue_bench.run("calibrate")
    run_id = overdue_bench.run("calibrate", override_reason=REASON)
    db = overdue_bench.db
    doc = run_document(db, run_id)
    ref = doc["references"][0]
    assert ref["overdue"] is True and ref["override_reason"] == REASON
    assert doc["overrides"] and doc["overrides"][0]["reason"] == REASON

    # Before approval: a draft, with the override stated.
    html = render_report(db, run_id, "html", lang="vi")[0].decode()
    assert 'id="draft"' in html and REASON in html
    assert "QUÁ HẠN — sử dụng ngoại lệ" in html and "2025-01-01" in html
    assert "chưa phê duyệt" in html

    review(db, run_id, REVIEWER)
    people = approve(db, run_id, SIGNATORY)
    number = people["certificate_number"]
    assert number

    doc = run_document(db, run_id)
    assert doc["approved"] is True and doc["certificate_number"] == number
    html = render_report(db, run_id, "html", lang="vi")[0].decode()
    assert 'id="draft"' not in html and number in html and REASON in html
    for name in (OPERATOR, REVIEWER, SIGNATORY):
        assert name in html
    approved_at = dt.datetime.fromisoformat(doc["people"]["approved_by"]["at"])
    assert approved_at.strftime("%Y-%m-%d %H:%M UTC") in html

    text = pdf_text(render_report(db, run_id, "pdf", lang="vi")[0])
    assert number in text and "BẢN NHÁP" not in text
    assert "Sử dụng chuẩn quá hạn (ngoại lệ đã ghi nhận)" in text
    assert " ".join(REASON.split()) in text
    assert f"Người phê duyệt / Approved by {SIGNATORY}" in text

    xml = render_report(db, run_id, "dcc", lang="vi")[0]
    assert list(dcc_schema().iter_errors(xml.decode())) == []
    facts, _ = parse_dcc(xml)
    assert facts["uniqueIdentifier"] == number
    assert REASON in xml.decode()


def test_verification_stamp_and_amendment_from_the_records(overdue_bench: Bench) -> None:
    from benchctl.records.amend import amend_run
    from benchctl.records.approval import approve, review

    db = overdue_bench.db
    run_id = overdue_bench.run("verify", override_reason=REASON)
    doc = run_document(db, run_id)
    assert doc["verdict"] == "pass", [p for p in doc["points"] if p["verdict"] != "pass"]
    review(db, run_id, REVIEWER)
    valid = dt.date.today() + dt.timedelta(days=365)
    people = approve(db, run_id, SIGNATORY, stamp_number="TKĐ-0099", valid_until=valid)
    html = render_report(db, run_id, "html", lang="en")[0].decode()
    assert "VERIFICATION CERTIFICATE" in html and "TKĐ-0099" in html
    assert valid.isoformat() in html

    new_id = amend_run(db, run_id, reason="Sửa tên khách hàng", by=SIGNATORY)
    amended = render_report(db, new_id, "html", lang="vi")[0].decode()
    assert 'id="draft"' in amended  # a new revision needs its own review and approval
    assert "Sửa tên khách hàng" in amended and people["certificate_number"] in amended
    old = render_report(db, run_id, "html", lang="vi")[0].decode()
    assert f"Đã được thay thế bởi bản sửa đổi của lần đo {new_id}" in old
    xml = render_report(db, run_id, "dcc")[0]
    assert list(dcc_schema().iter_errors(xml.decode())) == []
    assert b'refType="benchctl_superseded"' in xml

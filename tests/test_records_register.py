"""The register on the command line and in the repository: assets, reference certificates,
what falls due, traceability (forward and reverse), people. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from benchhelp import DUT, WEIGHTS

from benchctl import cli
from benchctl.store import Database
from benchctl.store import repository as repo

pytest_plugins = ["dbfixtures"]

TODAY = dt.date.today()


class Cli:
    """benchctl in this process, on the test's database, as a given person."""

    def __init__(self, db: Database, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = db.url.render_as_string(hide_password=False)
        self.capsys = capsys

    def __call__(self, *args: str, ok: bool = True) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = cli.main([*args, "--db", self.url])
        out = self.capsys.readouterr()
        if ok:
            assert rc == 0, out.err
        return rc, out.out, out.err

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json")[1])


@pytest.fixture
def run_cli(db: Database, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db, capsys)


def test_asset_add_list_show(run_cli: Cli) -> None:
    run_cli("asset", "add", "BAL-0007", "--kind", "balance", "--maker", "Mettler Toledo",
            "--serial", "B123", "--customer", "Công ty ABC", "--unit", "g",
            "--param", "max=6200", "--param", "d=0.1", "--param", "class=II", "--by", "QM")
    rc, _, err = run_cli("asset", "add", "BAL-0008", "--kind", "balance", "--unit", "g",
                         "--param", "max=6200", "--param", "d=0.1", "--param", "e=5",
                         "--param", "class=II", ok=False)
    assert rc == 2 and "class/max/e/d" in err and "BAL-0008" in err  # impossible: refused
    rc, _, err = run_cli("asset", "add", "BAL-0007", "--kind", "balance", "--unit", "g",
                         "--param", "max=6200", "--param", "d=0.1", "--param", "class=II",
                         ok=False)
    assert "already in the register; give --update" in err
    run_cli("asset", "add", "BAL-0007", "--kind", "balance", "--unit", "g", "--serial", "B124",
            "--param", "max=6200", "--param", "d=0.1", "--param", "class=II", "--update")
    rc, _, err = run_cli("asset", "add", "X-1", "--kind", "teapot", ok=False)
    assert "--kind 'teapot': expected one of balance" in err
    run_cli("asset", "add", "REF-P-001", "--kind", "pressure_controller", "--maker", "Druck",
            "--unit", "kPa", "--range", "0", "700")

    listed = run_cli.json("asset", "list")
    assert [a["asset"] for a in listed] == ["BAL-0007", "REF-P-001"]
    bal = listed[0]
    assert bal["serial"] == "B124" and bal["customer"] == "Công ty ABC"
    assert bal["params"] == {"max": 6200.0, "d": 0.1, "e": 0.1, "class": "II"}
    assert bal["range"] == [0.0, 6200.0] and bal["class"] == "II"
    assert [a["asset"] for a in run_cli.json("asset", "list", "--kind", "pressure_controller")
            ] == ["REF-P-001"]
    _, out, _ = run_cli("asset", "list")
    assert "BAL-0007" in out and "Công ty ABC" in out
    shown = run_cli.json("asset", "show", "REF-P-001")
    assert shown["range"] == [0.0, 700.0] and shown["certificates"] == []
    rc, _, err = run_cli("asset", "show", "NOPE", ok=False)
    assert rc == 2 and "asset NOPE is not in the register" in err


def test_asset_import_and_cert_add(run_cli: Cli, db: Database, tmp_path: Path) -> None:
    (tmp_path / "dut.toml").write_text(DUT, encoding="utf-8")
    (tmp_path / "weights.toml").write_text(WEIGHTS, encoding="utf-8")
    _, out, _ = run_cli("asset", "import", str(tmp_path / "dut.toml"),
                        str(tmp_path / "weights.toml"))
    assert "DUT BAL-DEMO-0001 (balance)" in out
    assert "reference WS-F1-DEMO (weight_set), certificate KLC-2025-0412 due 2027-12-01" in out
    shown = run_cli.json("asset", "show", "WS-F1-DEMO")
    [cert] = shown["certificates"]
    assert cert["certificate"] == "KLC-2025-0412" and cert["weights"] == 16
    # Importing again changes nothing; a different content under the same number is refused.
    run_cli("asset", "import", str(tmp_path / "weights.toml"))
    (tmp_path / "w2.toml").write_text(WEIGHTS.replace('due = "2027-12-01"',
                                                      'due = "2028-12-01"'), encoding="utf-8")
    rc, _, err = run_cli("cert", "add", str(tmp_path / "w2.toml"), ok=False)
    assert rc == 2
    assert "certificate KLC-2025-0412 is already registered with a different due_on" in err
    # A recalibration: a new number; it becomes the current certificate.
    (tmp_path / "w3.toml").write_text(
        WEIGHTS.replace("KLC-2025-0412", "KLC-2026-0100").replace('date = "2025-12-01"',
                                                                  'date = "2026-01-10"')
        .replace('due = "2027-12-01"', 'due = "2028-01-10"'), encoding="utf-8")
    run_cli("cert", "add", str(tmp_path / "w3.toml"))
    with db.session() as s:
        current = repo.current_certificate(s, "WS-F1-DEMO", dt.date(2026, 2, 1))
        assert current is not None and current.number == "KLC-2026-0100"
        assert [c.number for c in repo.list_certificates(s, "WS-F1-DEMO")] == [
            "KLC-2025-0412", "KLC-2026-0100"]

    # A certificate stated on the command line: per-point data come in a file; U and range here.
    run_cli("asset", "add", "REF-P-001", "--kind", "pressure_controller", "--unit", "kPa",
            "--range", "0", "1000")
    rc, _, err = run_cli("cert", "add", "REF-P-001", "--number", "P-1", ok=False)
    assert "needs --issuer, --date, --due" in err
    rc, _, err = run_cli("cert", "add", "REF-P-001", "--number", "P-1", "--issuer", "VMI",
                         "--date", "2025-06-01", "--due", "2026-06-01", "--point", "100:x",
                         ok=False)
    assert "--point '100:x': expected NOMINAL:CORRECTION" in err
    run_cli("cert", "add", "REF-P-001", "--number", "P-2025-001", "--issuer", "VMI",
            "--date", "2025-06-01", "--due", "2026-06-01", "--U", "0.02", "--k", "2",
            "--range", "0", "700", "--range-unit", "kPa", "--drift", "0.01",
            "--point", "700:-0.004:0.021", "--point", "0:0.001:0.02", "--point", "350:0.002")
    rc, _, err = run_cli("cert", "add", "NOPE", "--number", "1", "--issuer", "x", "--date",
                         "2025-01-01", "--due", "2026-01-01", ok=False)
    assert "asset NOPE is not in the register" in err
    rc, _, err = run_cli("cert", "add", "REF-P-001", "--number", "P-9", "--issuer", "VMI",
                         "--date", "2025-06-01", "--due", "2024-06-01", ok=False)
    assert "due date 2024-06-01 is before issue date 2025-06-01" in err
    with db.session() as s:
        cert = repo.find_certificate(s, "REF-P-001", "P-2025-001")
        assert cert is not None and (cert.U, cert.k) == (0.02, 2.0)
        assert cert.data == {
            "range": [0.0, 700.0], "range_unit": "kPa", "drift": 0.01,
            "points": [{"nominal": 0.0, "correction": 0.001, "U": 0.02},
                       {"nominal": 350.0, "correction": 0.002},
                       {"nominal": 700.0, "correction": -0.004, "U": 0.021}]}
        events = [e.actor for e in repo.audit_events(s, entity="certificate")]
        assert repo.verify_audit(s) == (True, None)
    assert events  # every certificate added is in the trail


def _register(db: Database) -> dict[str, int]:
    with db.session() as s:
        repo.upsert_asset(s, "WS-1", kind="weight_set", unit="g")
        old = repo.add_certificate(s, "WS-1", number="W-OLD", issuer="VMI",
                                   issued_on=dt.date(2023, 1, 1), due_on=dt.date(2024, 1, 1))
        new = repo.add_certificate(s, "WS-1", number="W-NEW", issuer="VMI",
                                   issued_on=dt.date(2024, 1, 1), due_on=dt.date(2026, 3, 1))
        repo.upsert_asset(s, "REF-P", kind="pressure_controller", unit="kPa")
        p = repo.add_certificate(s, "REF-P", number="P-1", issuer="VMI",
                                 issued_on=dt.date(2025, 6, 1), due_on=dt.date(2026, 6, 1))
        repo.upsert_asset(s, "ROOM", kind="environment_monitor")
        repo.add_certificate(s, "ROOM", number="E-1", issuer="VMI",
                             issued_on=dt.date(2025, 9, 1), due_on=dt.date(2027, 9, 1))
        return {"old": int(old.id), "new": int(new.id), "p": int(p.id)}


def test_what_falls_due(run_cli: Cli, db: Database) -> None:
    _register(db)
    with db.session() as s:
        on = dt.date(2026, 2, 20)
        assert [c.number for c in repo.due_certificates(s, 0, on)] == []
        assert [c.number for c in repo.due_certificates(s, 9, on)] == ["W-NEW"]
        assert [c.number for c in repo.due_certificates(s, 120, on)] == ["W-NEW", "P-1"]
        # Past due counts too; the replaced W-OLD never does.
        assert [c.number for c in repo.due_certificates(s, 0, dt.date(2026, 7, 1))] == [
            "W-NEW", "P-1"]
    rows = run_cli.json("due", "--days", "100", "--on", "2026-03-01")
    assert [(r["asset"], r["certificate"], r["days_left"], r["overdue"]) for r in rows] == [
        ("WS-1", "W-NEW", 0, False), ("REF-P", "P-1", 92, False)]
    _, out, _ = run_cli("due", "--days", "0", "--on", "2026-03-02")
    assert "WS-1" in out and "PAST DUE" in out and "REF-P" not in out
    _, out, _ = run_cli("due", "--days", "5", "--on", "2025-01-01")
    assert "no reference certificate is due within 5 days of 2025-01-01" in out


def _run(db: Database, dut: str, customer: str, certs: list[tuple[int, str]],
         verdict: str = "pass") -> int:
    with db.session() as s:
        if repo.get_asset(s, dut) is None:
            repo.upsert_asset(s, dut, kind="balance", unit="g", customer=customer,
                              serial=f"S-{dut}")
        proc = repo.register_procedure(s, "nawi_balance", "1.0", "NAWI", "R76", "text\n")
        refs = [(repo.get_certificate(s, cid), role) for cid, role in certs]
        run = repo.create_run(s, procedure=proc, dut_asset_id=dut, mode="calibrate", params={},
                              decision_rule="simple", bench="B1", operator_kind="sim",
                              references=refs, performed_by="Op A")  # type: ignore[arg-type]
        run_id = int(run.id)
    with db.session() as s:
        repo.save_results(s, run_id, [{"key": "p", "verdict": verdict}], verdict)
        repo.set_run_state(s, run_id, "completed")
    return run_id


def test_trace_a_reference_and_find_runs(run_cli: Cli, db: Database) -> None:
    ids = _register(db)
    a = _run(db, "BAL-1", "Công ty Sông Hương", [(ids["new"], "weights")])
    b = _run(db, "BAL-2", "Nhà máy Đường", [(ids["new"], "weights"), (ids["p"], "controller")],
             verdict="fail")
    c = _run(db, "BAL-1", "Công ty Sông Hương", [(ids["old"], "weights")])
    _run(db, "BAL-3", "Other", [(ids["p"], "controller")])
    with db.session() as s:
        traced = repo.trace_asset(s, "WS-1")
        assert [(t["run_id"], t["reference_certificate"]) for t in traced] == [
            (a, "W-NEW"), (b, "W-NEW"), (c, "W-OLD")]
        assert traced[1]["customer"] == "Nhà máy Đường" and traced[1]["dut_serial"] == "S-BAL-2"
        assert repo.trace_asset(s, "WS-1", since=TODAY + dt.timedelta(days=1)) == []
        assert len(repo.trace_asset(s, "WS-1", since=TODAY)) == 3
        # Forward: the exact certificates each run used.
        run = repo.get_run(s, b)
        assert run is not None
        assert sorted((r.role, r.certificate.number) for r in run.references) == [
            ("controller", "P-1"), ("weights", "W-NEW")]

        assert [r.id for r in repo.find_runs(s, dut="BAL-1")] == [c, a]
        assert [r.id for r in repo.find_runs(s, customer="sông hương")] == [c, a]
        assert [r.id for r in repo.find_runs(s, customer="ĐƯỜNG")] == [b]
        assert [r.id for r in repo.find_runs(s, verdict="fail")] == [b]
        assert len(repo.find_runs(s, since=TODAY, until=TODAY)) == 4
        assert repo.find_runs(s, until=TODAY - dt.timedelta(days=1)) == []
        assert [r.id for r in repo.find_runs(s, limit=1, offset=1)] == [c]
        assert repo.find_runs(s, customer="100%_") == []  # LIKE wildcards are literal

    out = run_cli.json("trace", "WS-1", "--since", TODAY.isoformat())
    assert [r["run_id"] for r in out["runs"]] == [a, b, c]
    assert [x["certificate"] for x in out["certificates"]] == ["W-NEW", "W-OLD"]
    _, text, _ = run_cli("trace", "WS-1")
    assert "WS-1 (weight_set) was used by 3 run(s), with certificate(s) W-NEW, W-OLD" in text
    _, text, _ = run_cli("trace", "WS-1", "--since", (TODAY + dt.timedelta(days=1)).isoformat())
    assert text.startswith("no run used WS-1 since")
    rc, _, err = run_cli("trace", "NOPE", ok=False)
    assert rc == 2 and "asset NOPE is not in the register" in err


def test_people_on_the_command_line(run_cli: Cli) -> None:
    run_cli("person", "add", "Trần Thị QM", "--role", "quality_manager", "--by", "setup")
    run_cli("person", "add", "Nguyễn Văn A", "--role", "operator", "--by", "Trần Thị QM")
    rc, _, err = run_cli("person", "add", "Mallory", "--role", "signatory", "--by",
                         "Nguyễn Văn A", ok=False)
    assert rc == 2 and "Nguyễn Văn A does not hold the role quality_manager" in err
    rc, _, err = run_cli("person", "add", "X", "--role", "boss", "--by", "Trần Thị QM",
                         ok=False)
    assert "unknown role(s) boss" in err
    run_cli("person", "add", "Nguyễn Văn A", "--role", "operator", "--role", "reviewer",
            "--by", "Trần Thị QM")
    run_cli("person", "add", "Lê Văn B", "--role", "signatory", "--inactive", "--by",
            "Trần Thị QM")
    people = run_cli.json("person", "list")
    assert people == [
        {"name": "Lê Văn B", "roles": ["signatory"], "active": False},
        {"name": "Nguyễn Văn A", "roles": ["operator", "reviewer"], "active": True},
        {"name": "Trần Thị QM", "roles": ["quality_manager"], "active": True},
    ]
    # Register changes are made by someone in the register once it has people.
    rc, _, err = run_cli("asset", "add", "B-1", "--kind", "weight_set", "--by", "Mallory",
                         ok=False)
    assert "'Mallory' is not in the person register" in err
    run_cli("asset", "add", "B-1", "--kind", "weight_set", "--by", "Nguyễn Văn A")
    log = run_cli.json("audit", "log", "--entity", "asset")
    assert [(e["action"], e["actor"]) for e in log] == [("asset.create", "Nguyễn Văn A")]
    assert "_rows" not in json.dumps(log) and log[0]["rows"] == 1

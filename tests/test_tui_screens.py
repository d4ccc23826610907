"""Pilot tests of each screen: bench (live, over real sockets and a pty), history (filters,
detail, export, in the locale's formats), register (due dates, add and edit through the
forms), help, the language switch and the mouse."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from benchhelp import BALANCE_SIM, DUT, ROOM_SIM, WEIGHTS, bench_text
from rich.text import Text
from textual.widgets import Button, DataTable, Input, Select
from tuihelp import drive_run, screen_text, start_from_setup, type_into, wait_for

from benchctl import i18n
from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, start_run
from benchctl.store import open_database
from benchctl.store import repository as repo
from benchctl.tui.app import BenchApp
from benchctl.tui.live import Status
from benchctl.tui.screens.help import HelpScreen
from benchctl.tui.widgets.forms import AssetForm, CertificateForm
from benchctl.tui.widgets.instrument_panel import InstrumentPanel

TODAY = dt.date(2026, 11, 21)


def _cell_text(table: DataTable[Any], row: str, column: str) -> Text:
    value = table.get_cell(row, column)
    return value if isinstance(value, Text) else Text(str(value))


# -- bench --------------------------------------------------------------------------------

def test_bench_screen_live_and_pty_held_during_a_run(tmp_path: Path) -> None:
    """Live values over TCP (balance) and a pty (room); during a run the pty, which cannot
    be shared, is let go for the run and taken back after it."""
    from benchctl import library

    library.configure([])
    sim_bench = library.load("simulators", "bench")
    sim = sim_bench.start_simulation(
        {"balance": dict(BALANCE_SIM), "room": {**ROOM_SIM, "transport": "pty"}},
        speed=100.0, seed=3)
    try:
        (tmp_path / "weights.toml").write_text(WEIGHTS, encoding="utf-8")
        (tmp_path / "dut.toml").write_text(DUT, encoding="utf-8")
        text = bench_text(dict(sim.resources), control=sim.control_address,
                          db=f"sqlite:///{tmp_path / 'bench.db'}")
        text = text.replace('[instruments.room]\ndriver = "vaisala_ptu"',
                            '[instruments.room]\ndriver = "vaisala_ptu"\nparity = "N"\n'
                            'bytesize = 8\nbaudrate = 4800')
        (tmp_path / "bench.toml").write_text(text, encoding="utf-8")
        bench = load_bench(tmp_path / "bench.toml")
        app = BenchApp(bench, open_database(bench.database), speed=100.0, lang="vi")
        seen: dict[str, Any] = {}

        async def scenario() -> None:
            async with app.run_test(size=(140, 30)) as pilot:
                live = app.live
                assert live is not None
                await wait_for(pilot, lambda: all(v.status == Status.CONNECTED and v.samples
                                                  for v in live.buffer.views()), "live values")
                sim.world.apply({"type": "place_load", "load": {"value": 200, "unit": "g"}})
                await wait_for(pilot, lambda: live.buffer.view("balance").last is not None
                               and live.buffer.view("balance").last.value == 200.0
                               and live.buffer.view("balance").stable is True, "200 g stable")
                await pilot.pause(0.3)
                seen["balance"] = app.screen.query_one(
                    "#inst-balance", InstrumentPanel).line.render().plain
                seen["room"] = app.screen.query_one(
                    "#inst-room", InstrumentPanel).line.render().plain
                sim.world.apply({"type": "remove_load"})
                await start_from_setup(pilot, app, params="loads=5 rep_n=2 down=false")
                await wait_for(pilot, lambda: live.buffer.view("room").status == Status.HELD,
                               "the pty let go")
                seen["balance_during"] = live.buffer.view("balance").status
                await drive_run(pilot, app, sim.world)
                await wait_for(pilot, lambda: live.buffer.view("room").status
                               == Status.CONNECTED, "the pty taken back")

        asyncio.run(scenario())
    finally:
        sim.stop()
    assert app.run_model.state == "completed", app.run_model.message
    assert "200,0 g" in seen["balance"] and "đã kết nối" in seen["balance"]
    assert "cân · PTĐ" in seen["balance"] and "●" in seen["balance"]
    assert "°C" in seen["room"] and "môi trường" in seen["room"]
    assert seen["balance_during"] == Status.CONNECTED  # TCP: shared with the run


# -- history ------------------------------------------------------------------------------

@pytest.fixture
def runs_db(bench_dir: Path, simulation: Any) -> Any:
    """Two stored runs of the simulated balance (the simulated operator, no TUI)."""
    bench = load_bench(bench_dir / "bench.toml")
    db = open_database(bench.database)
    for mode in ("verify", "calibrate"):
        opts = RunOptions(bench=bench, operator=SimulatedOperator(simulation.control_address),
                          db=db, speed=100.0, handle_signals=False)
        outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), mode,
                            ["loads=5,6200", "rep_n=2", "down=false"], opts)
        assert outcome.state == "completed", outcome.message
    return bench, db


def test_history_filters_detail_and_export(runs_db: Any, tmp_path: Path) -> None:
    bench, db = runs_db
    out = tmp_path / "exports"
    app = BenchApp(bench, db, lang="vi", poll=False, export_dir=out)
    seen: dict[str, Any] = {}
    today = dt.date.today()

    async def scenario() -> None:
        async with app.run_test(size=(150, 40)) as pilot:
            app.switch_mode("history")
            screen = app.screen
            await wait_for(pilot, lambda: len(screen.runs) == 2, "two runs")

            async def search(**values: str) -> list[int]:
                for wid in ("f-dut", "f-customer", "f-since", "f-until"):
                    screen.query_one(f"#{wid}", Input).value = values.get(wid, "")
                screen.runs = []
                screen.action_search()
                await pilot.pause(0.3)
                return [r.id for r in screen.runs]

            seen["dut"] = await search(**{"f-dut": "BAL-DEMO-0001"})
            seen["nodut"] = await search(**{"f-dut": "NO-SUCH"})
            seen["customer"] = await search(**{"f-customer": "sông hương"})
            seen["since"] = await search(**{"f-since": i18n.format_date(today, "vi")})
            seen["until"] = await search(**{"f-until": i18n.format_date(
                today - dt.timedelta(days=1), "vi")})
            screen.query_one("#f-verdict", Select).value = "pass"
            seen["pass"] = await search()
            screen.query_one("#f-verdict", Select).value = "fail"
            seen["fail"] = await search()
            # A date that is not one: said, nothing searched.
            screen.query_one("#f-since", Input).value = "2026-13-45"
            screen.action_search()
            await pilot.pause(0.2)
            seen["notes"] = [str(n.message) for n in app._notifications]
            screen.query_one("#f-since", Input).value = ""
            screen.query_one("#f-verdict", Select).clear()
            await search()
            table = screen.query_one("#runs", DataTable)
            seen["started_cell"] = str(table.get_cell("2", "started"))
            screen.open_run(2)
            await wait_for(pilot, lambda: screen.document is not None, "the detail")
            await pilot.pause(0.2)
            seen["summary"] = str(screen.query_one("#detail-summary").render())
            seen["points"] = screen.query_one("#detail-points").row_count
            screen.action_export("certificate")
            screen.action_export("data")
            await wait_for(pilot, lambda: len(list(out.glob("run-2-*"))) >= 5, "the exports")
            await pilot.pause(0.3)

    asyncio.run(scenario())
    assert seen["dut"] == [2, 1] and seen["nodut"] == [] and seen["customer"] == [2, 1]
    assert seen["since"] == [2, 1] and seen["until"] == []
    assert seen["pass"] == [] and sorted(seen["fail"]) == [1, 2]
    assert any("2026-13-45" in n for n in seen["notes"])
    assert seen["started_cell"].startswith(today.strftime("%d/%m/%Y"))
    assert "hiệu chuẩn" in seen["summary"] and "KHÔNG ĐẠT" in seen["summary"]
    assert "KLC-2025-0412" in seen["summary"] and "01/12/2027" in seen["summary"]
    assert seen["points"] >= 6
    cert = out / "run-2-certificate-vi.html"
    data = json.loads((out / "run-2-data.json").read_text(encoding="utf-8"))
    assert cert.is_file() and "BAL-DEMO-0001" in cert.read_text(encoding="utf-8")
    assert (out / "run-2-certificate-vi.pdf").read_bytes().startswith(b"%PDF")
    assert data["run_id"] == 2 and data["mode"] == "calibrate"
    csv_text = (out / "run-2-data.csv").read_text(encoding="utf-8-sig")
    assert "weighing.up.6200g" in csv_text
    assert (out / "run-2-data.xlsx").read_bytes().startswith(b"PK")


# -- register -----------------------------------------------------------------------------

@pytest.fixture
def register_db(tmp_path: Path) -> Any:
    db = open_database(f"sqlite:///{tmp_path / 'register.db'}")
    with db.session() as s:
        for asset, kind, due in (("WS-OLD", "weight_set", TODAY - dt.timedelta(days=3)),
                                 ("PC-SOON", "pressure_controller", TODAY + dt.timedelta(days=12)),
                                 ("PTU-OK", "environment_monitor", TODAY + dt.timedelta(days=300))):
            repo.upsert_asset(s, asset, kind=kind, maker="Maker", model="M1", serial="S1")
            repo.add_certificate(s, asset, number=f"C-{asset}", issuer="VMI",
                                 issued_on=due - dt.timedelta(days=365), due_on=due, U=0.02,
                                 k=2.0)
    return db


def test_register_due_dates_add_and_edit(register_db: Any) -> None:
    app = BenchApp(None, register_db, lang="en", poll=False, today=lambda: TODAY)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with app.run_test(size=(160, 40)) as pilot:
            app.switch_mode("register")
            screen = app.screen
            await wait_for(pilot, lambda: screen.data is not None, "the register")
            assets = screen.query_one("#assets", DataTable)
            seen["old"] = _cell_text(assets, "WS-OLD", "due")
            seen["soon"] = _cell_text(assets, "PC-SOON", "due")
            seen["ok"] = _cell_text(assets, "PTU-OK", "due")
            seen["summary"] = str(screen.query_one("#due-summary").render())

            # A new balance with an impossible d is refused in the form, then corrected.
            screen.action_new_asset()
            await wait_for(pilot, lambda: isinstance(app.screen, AssetForm), "the form")
            form = app.screen
            await pilot.pause(0.1)
            for field, value in (("id", "BAL-NEW-1"), ("maker", "A&D"), ("model", "GX-6002A"),
                                 ("customer", "Cty ABC"), ("unit", "g"),
                                 ("accuracy_class", "II"), ("resolution", "0.3"),
                                 ("range_max", "6,200")):
                await type_into(pilot, form.query_one(f"#f-{field}", Input), value)
            form.query_one("#form-save", Button).press()  # no kind chosen yet
            await pilot.pause(0.2)
            seen["kind_error"] = str(form.query_one("#form-error").render())
            form.query_one("#f-kind", Select).value = "balance"
            form.query_one("#form-save", Button).press()
            await pilot.pause(0.2)
            seen["form_error"] = str(form.query_one("#form-error").render())
            await type_into(pilot, form.query_one("#f-resolution", Input), "0.1")
            form.query_one("#form-save", Button).press()
            await wait_for(pilot, lambda: screen.data is not None and any(
                a.id == "BAL-NEW-1" for a in screen.data.assets), "the new asset")

            # Edit it: the id stays, the customer changes.
            screen.selected = "BAL-NEW-1"
            screen.action_edit_asset()
            await wait_for(pilot, lambda: isinstance(app.screen, AssetForm), "the edit form")
            form = app.screen
            await pilot.pause(0.1)
            seen["id_locked"] = form.query_one("#f-id", Input).disabled
            seen["params"] = form.query_one("#f-params", Input).value
            await type_into(pilot, form.query_one("#f-customer", Input), "Cty XYZ")
            form.query_one("#form-save", Button).press()
            await wait_for(pilot, lambda: any(a.id == "BAL-NEW-1" and a.customer == "Cty XYZ"
                                              for a in screen.data.assets), "the edit")

            # A certificate for the weight set: due before issue is refused.
            screen.selected = "WS-OLD"
            screen.action_new_certificate()
            await wait_for(pilot, lambda: isinstance(app.screen, CertificateForm), "cert form")
            form = app.screen
            await pilot.pause(0.1)
            for field, value in (("number", "C-NEW"), ("issuer", "VMI"),
                                 ("issued_on", "2026-11-20"), ("due_on", "2026-11-01")):
                await type_into(pilot, form.query_one(f"#f-{field}", Input), value)
            form.query_one("#form-save", Button).press()
            await pilot.pause(0.2)
            seen["cert_error"] = str(form.query_one("#form-error").render())
            await type_into(pilot, form.query_one("#f-due_on", Input), "2027-11-20")
            form.query_one("#form-save", Button).press()
            await wait_for(pilot, lambda: not isinstance(app.screen, CertificateForm)
                           and screen.data is not None
                           and any(c.number == "C-NEW" for a in screen.data.assets
                                   for c in a.certificates), "the new certificate")
            await pilot.pause(0.3)
            seen["new_due"] = _cell_text(assets, "WS-OLD", "due")

    asyncio.run(scenario())
    assert "PAST DUE" in seen["old"].plain and "red" in str(seen["old"].style)
    assert "due in 12 d" in seen["soon"].plain and "yellow" in str(seen["soon"].style)
    assert seen["ok"].plain == "2027-09-17" and "green" in str(seen["ok"].style)
    assert "Past due: 1" in seen["summary"] and "Due within 30 days: 1" in seen["summary"]
    assert seen["kind_error"] == i18n.t("tui.form.required", "en",
                                        field=i18n.t("tui.field.kind", "en"))
    assert "0.3" in seen["form_error"] or "0,3" in seen["form_error"]
    assert seen["id_locked"] is True and "d = 0.1" in seen["params"]
    assert "due date must come after" in seen["cert_error"]
    assert seen["new_due"].plain == "2027-11-20"
    with register_db.session() as s:
        asset = repo.get_asset(s, "BAL-NEW-1")
        assert asset.customer == "Cty XYZ" and asset.params["d"] == 0.1
        assert asset.params["max"] == 6200.0 and asset.params["class"] == "II"
        assert repo.current_certificate(s, "WS-OLD", TODAY).number == "C-NEW"


# -- help, language, mouse -----------------------------------------------------------------

def test_help_language_switch_and_mouse(register_db: Any) -> None:
    app = BenchApp(None, register_db, lang="en", poll=False, today=lambda: TODAY)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with app.run_test(size=(150, 40)) as pilot:
            app.switch_mode("register")
            await wait_for(pilot, lambda: app.screen.data is not None, "the register")
            await pilot.pause(0.2)
            seen["en"] = screen_text(app)
            app.action_toggle_language()  # F8
            await pilot.pause(0.3)
            seen["vi"] = screen_text(app)
            app.action_help()  # F1
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
            await pilot.pause(0.2)
            seen["help"] = screen_text(app)
            await pilot.click("#help-close")  # the mouse
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")
            await pilot.press("f4")  # a key, as a person presses it
            seen["mode"] = app.current_mode

    asyncio.run(scenario())
    assert "Certificate due" in seen["en"] and "2027-09-17" in seen["en"]
    assert "Hạn giấy chứng nhận" in seen["vi"] and "17/09/2027" in seen["vi"]
    assert "QUÁ HẠN" in seen["vi"] and "Thêm thiết bị" in seen["vi"]  # the footer too
    assert "benchctl — trợ giúp" in seen["help"] and "Tạm dừng" in seen["help"]
    assert seen["mode"] == "history"


def test_prepared_screens_switch_at_once_and_keep_their_styles(register_db: Any) -> None:
    """Built at start-up (as `benchctl tui` does), every screen is shown on the next frame
    of its key: no 50 ms hold of Textual's switch_mode, and a screen shown again keeps the
    styles it had; F8 translates the footer in place. Objects built at start-up are kept out
    of the garbage collector's way while the app runs, and given back when it ends."""
    import gc

    app = BenchApp(None, register_db, lang="en", poll=False, today=lambda: TODAY)
    app.PREPARE_SCREENS = True
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with app.run_test(size=(150, 40)) as pilot:
            await wait_for(pilot, lambda: all(
                app._mode_ready(m) for m in app.MODES), "every screen built")
            await wait_for(pilot, lambda: gc.get_freeze_count() > 0, "start-up objects kept")
            await pilot.pause(1.2)  # the screens are laid out off screen a second later
            for mode, title in (("register", "Register"), ("history", "History"),
                                ("run", "Run"), ("bench", "Bench")):
                app.switch_mode(mode)
                seen[f"{mode} held"] = app._batch_count  # Textual's switch holds 50 ms
                await pilot.pause(0.1)
                seen[f"{mode} shows"] = f"│ {title}" in screen_text(app)
            app.switch_mode("register")
            await pilot.pause(0.2)
            overdue = app.screen.query_one("#assets", DataTable)
            seen["styles"] = (overdue.styles.height, overdue.styles.background)
            app.switch_mode("bench")
            await pilot.pause(0.1)
            app.switch_mode("register")
            await pilot.pause(0.1)
            seen["styles again"] = (overdue.styles.height, overdue.styles.background)
            footer = app.screen.query_one("LocalFooter")
            await pilot.press("f8")
            await pilot.pause(0.2)
            seen["footer"] = app.screen.query_one("LocalFooter") is footer  # not rebuilt
            seen["vi"] = screen_text(app)
        seen["frozen after"] = gc.get_freeze_count()

    asyncio.run(scenario())
    for mode in ("register", "history", "run", "bench"):
        assert seen[f"{mode} held"] == 0, mode
        assert seen[f"{mode} shows"], mode
    assert seen["styles again"] == seen["styles"]
    assert seen["footer"] and "f1 Trợ giúp" in seen["vi"] and "│ Sổ thiết bị" in seen["vi"]
    assert seen["frozen after"] == 0


def test_history_export_by_keys_writes_the_reports(runs_db: Any, tmp_path: Path) -> None:
    """F4, Enter on a run, D and E, as a technician presses them: the data (CSV through
    benchctl.reports.write_report, XLSX, JSON) and the certificate (HTML, PDF) are written
    into the export folder; the CSV holds every result of the run."""
    import csv

    bench, db = runs_db
    out = tmp_path / "exports"
    app = BenchApp(bench, db, lang="en", poll=False, export_dir=out)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with app.run_test(size=(150, 40)) as pilot:
            await pilot.press("f4")
            screen = app.screen
            await wait_for(pilot, lambda: len(screen.runs) == 2, "two runs")
            seen["focus"] = app.focused.id if app.focused else None
            await pilot.press("enter")  # the highlighted run: the newest
            await wait_for(pilot, lambda: screen.document is not None, "the run")
            seen["run"] = screen.document["run_id"]
            await pilot.press("d")
            await wait_for(pilot, lambda: (out / "run-2-data.json").exists(), "the data")
            await pilot.press("e")
            await wait_for(pilot, lambda: (out / "run-2-certificate-en.pdf").exists(),
                           "the certificate")
            await pilot.pause(0.3)
            seen["notes"] = [str(n.message) for n in app._notifications]
            seen["points"] = {str(p["key"]) for p in screen.document["points"]}

    asyncio.run(scenario())
    assert seen["focus"] == "runs" and seen["run"] == 2
    names = sorted(p.name for p in out.iterdir())
    assert names == ["run-2-certificate-en.html", "run-2-certificate-en.pdf",
                     "run-2-data.csv", "run-2-data.json", "run-2-data.xlsx"]
    with (out / "run-2-data.csv").open(encoding="utf-8-sig", newline="") as fh:  # a BOM
        rows = list(csv.DictReader(fh))
    assert rows and {r["run_id"] for r in rows} == {"2"}
    assert seen["points"] and seen["points"] <= {r["point_key"] for r in rows}
    assert "<html" in (out / "run-2-certificate-en.html").read_text(encoding="utf-8").lower()
    assert (out / "run-2-certificate-en.pdf").read_bytes().startswith(b"%PDF")
    assert any("run-2-data.csv" in n for n in seen["notes"])


# -- run set-up --------------------------------------------------------------------------

def test_run_setup_shows_the_references_the_method_needs(tmp_path: Path) -> None:
    """A dispenser bench offers proving measures and a master meter; the run screen shows
    the references the procedure will use for the parameters typed (references_for):
    the two measures by default, the master meter with method=master_meter, one measure
    without the MMQ test."""
    from benchhelp import ROOT

    demo = ROOT / "src/benchctl/demo_data"
    for name in ("demo-dispenser.toml", "demo-measure-20L.toml", "demo-measure-2L.toml",
                 "demo-master-meter.toml"):
        (tmp_path / name).write_text((demo / name).read_text(encoding="utf-8"),
                                     encoding="utf-8")
    (tmp_path / "bench.toml").write_text(f"""[bench]
name = "Dispenser bench"
locale = "en"
database = "sqlite:///{tmp_path / 'bench.db'}"

[instruments.dispenser]
driver = "sim_dispenser"
resource = "socket://127.0.0.1:9"
role = "dut"

[instruments.master_meter]
driver = "micromotion_modbus"
resource = "modbus-tcp://127.0.0.1:9?device_id=1"

[references.coriolis]
file = "demo-master-meter.toml"

[references.measure]
file = "demo-measure-20L.toml"

[references.mmq_measure]
file = "demo-measure-2L.toml"
""", encoding="utf-8")
    bench = load_bench(tmp_path / "bench.toml")
    app = BenchApp(bench, open_database(bench.database), lang="en", poll=False)
    seen: dict[str, list[str]] = {}

    async def scenario() -> None:
        async with app.run_test(size=(150, 50)) as pilot:
            app.switch_mode("run")
            screen = app.screen
            await wait_for(pilot, lambda: getattr(screen, "setup", None) is not None, "setup")
            screen.query_one("#procedure", Select).value = "fuel_dispenser"
            params = screen.query_one("#params", Input)

            def shown() -> list[str]:
                return [str(w.render()).split()[0] for w in screen.query(".reference-line")]

            for label, text in (("default", ""), ("master", "method=master_meter"),
                                ("no mmq", "method=proving_measure mmq_test=false"),
                                ("typing", "method=mas")):
                params.value = text
                await pilot.pause(0.2)
                seen[label] = shown()

    asyncio.run(scenario())
    assert seen["default"] == ["measure", "mmq_measure"]
    assert seen["master"] == ["coriolis"]
    assert seen["no mmq"] == ["measure"]
    assert seen["typing"] == ["measure", "mmq_measure"]  # not a method yet: the default

"""Whole runs driven through the TUI: the simulated balance over real TCP, every question
answered in the run's dialog, the table and the chart checked against the stored run."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, Select
from tuihelp import (
    TERMINAL,
    answer,
    drive_run,
    screen_text,
    start_from_setup,
    type_into,
    wait_for,
)

from benchctl import i18n
from benchctl.config import load_bench
from benchctl.reports.document import run_document
from benchctl.store import open_database
from benchctl.tui.app import BenchApp
from benchctl.tui.widgets.error_chart import ErrorChart, chart_points
from benchctl.tui.widgets.points_table import PointsTable
from benchctl.tui.widgets.prompt_dialogs import OverrideReason, PromptDialog


def _app(bench_dir: Path, **kw: Any) -> BenchApp:
    bench = load_bench(bench_dir / "bench.toml")
    return BenchApp(bench, open_database(bench.database), speed=100.0, **kw)


def test_whole_calibration_through_the_tui(bench_dir: Path, simulation: Any) -> None:
    """A calibration with the procedure's default plan: every instruction is answered in
    the dialog, the points table fills in with the preview while the run goes on, and at
    the end shows exactly the stored results."""
    app = _app(bench_dir, lang="en")
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:

            async def watch(dialog: PromptDialog) -> bool:
                if "first" not in seen:  # the very first question, as the technician reads it
                    seen["first"] = (str(dialog.query_one("#prompt-title").render()),
                                     str(dialog.query_one("#prompt-text").render()),
                                     dialog.query_one("#prompt-no").display)
                # Halfway (first decreasing load), while the run waits for the technician,
                # the table shows errors, U, MPE and verdicts of the points taken: the live
                # preview (computed off the UI, so it may take a moment to arrive).
                if dialog.request.key.startswith("weighing.down") and "mid" not in seen:
                    await wait_for(pilot, lambda: "weighing.up.6200g" in app.run_model.results,
                                   "the preview of the increasing loads")
                    await pilot.pause(0.2)
                    seen["mid"] = {k: dict(v) for k, v in app.run_model.results.items()}
                    seen["mid_verdict"] = app.run_model.verdict
                    seen["mid_final"] = app.run_model.final
                    seen["mid_text"] = screen_text(app)
                return False

            await start_from_setup(pilot, app, mode="calibrate")
            seen["answered"] = await drive_run(pilot, app, simulation.world, on_prompt=watch)
            await wait_for(pilot, lambda: "verdict:" in screen_text(app), "the final verdict")
            seen["table"] = app.screen.query_one(PointsTable)
            seen["rows"] = {str(k.value): [str(c) for c in seen["table"].get_row(k)]
                            for k in seen["table"].rows}
            seen["chart"] = list(app.screen.query_one(ErrorChart).rows)
            seen["text"] = screen_text(app)

    asyncio.run(scenario())
    model = app.run_model
    assert model.state == "completed", model.message
    doc = run_document(app.db, model.run_id)  # type: ignore[arg-type]
    assert doc["state"] == "completed"
    measured = [k for k in model.points if not k.startswith("ambient.")]
    assert seen["answered"] >= len(measured) > 25  # one instruction per load at least

    title, text, no_button = seen["first"]
    assert title.startswith("Instruction") and "zero.start" in title
    assert text == "Remove all weights from the pan." and no_button is False

    # Live preview halfway: eccentricity and the increasing loads already evaluated.
    mid = seen["mid"]
    assert "eccentricity.back_right" in mid and "weighing.up.6200g" in mid
    assert mid["weighing.up.6200g"]["mpe"] == 0.15 and mid["weighing.up.6200g"]["U"] > 0
    assert mid["eccentricity.back_right"]["verdict"] == "fail"  # −0.3 g injected > 0.1 g
    assert seen["mid_verdict"] == "fail" and seen["mid_final"] is False
    assert "verdict so far: FAIL" in seen["mid_text"]

    # At the end the table is the stored run, to the digit, in the UI's number format.
    rows = seen["rows"]
    for p in doc["points"]:
        cells = rows[p["key"]]
        if p["error"] is not None:
            assert cells[4] == i18n.format_number(p["error"], "en", digits=4), p
        if p["U"] is not None:
            assert cells[5] == i18n.format_number(p["U"], "en", digits=2), p
        assert cells[6] == "±" + i18n.format_number(p["mpe"], "en", digits=4), p
        assert cells[7] == i18n.t(f"verdict.{p['verdict']}", "en"), p
    assert f"verdict: {i18n.t('verdict.' + doc['verdict'], 'en')}" in seen["text"], seen["text"]
    on_curve = chart_points(seen["chart"])
    assert {p["key"] for p in on_curve} == {p["key"] for p in doc["points"]
                                             if p["test"] == "weighing"}


def test_pause_resume_abort_then_resume_from_history(bench_dir: Path, simulation: Any) -> None:
    app = _app(bench_dir, lang="vi")
    states: list[str] = []

    async def scenario() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            await start_from_setup(pilot, app, params="loads=5,6200 rep_n=2 down=false")
            # Take a few points, then pause between points.
            await drive_run(pilot, app, simulation.world,
                            until=lambda: len(app.run_model.points) >= 3)
            run_screen = app.get_screen_stack("run")[0]
            run_screen.action_pause()  # the P key of the run screen
            await drive_run(pilot, app, simulation.world,
                            until=lambda: app.run_model.state == "paused")
            with app.db.session() as s:
                from benchctl.store import repository as repo

                states.append(repo.get_run(s, app.run_model.run_id).state)
            assert "tạm dừng" in screen_text(app)
            taken = len(app.run_model.points)
            await pilot.pause(0.3)
            assert len(app.run_model.points) == taken  # nothing measured while paused
            run_screen.action_resume()
            await drive_run(pilot, app, simulation.world,
                            until=lambda: len(app.run_model.points) >= taken + 2)
            # Abort: asked first, then confirmed.
            app.ask_abort()
            await wait_for(pilot, lambda: app.screen.query("#question-yes"), "the question")
            app.screen.query_one("#question-yes", Button).press()
            await drive_run(pilot, app, simulation.world)
            states.append(app.run_model.state)
            run_id = app.run_model.run_id
            # History: the aborted run is there; resume it from its detail.
            app.switch_mode("history")
            history = app.screen
            await wait_for(pilot, lambda: bool(history.runs), "the runs list")
            history.open_run(run_id)
            await wait_for(pilot, lambda: history.document is not None, "the run detail")
            assert history.document["state"] == "aborted"
            history.action_resume_run()
            await wait_for(pilot, lambda: app.run_model.state not in ("setup", "aborted"),
                           "the resumed run")
            await drive_run(pilot, app, simulation.world)
            states.append(app.run_model.state)
            assert app.run_model.run_id == run_id
            assert app.run_model.resumed_points >= taken + 2

    asyncio.run(scenario())
    assert states == ["paused", "aborted", "completed"]
    doc = run_document(app.db, app.run_model.run_id)  # type: ignore[arg-type]
    assert doc["state"] == "completed" and doc["verdict"] in ("pass", "fail")


def test_run_refused_for_an_impossible_dut_says_why(bench_dir: Path, simulation: Any) -> None:
    """A DUT file that breaks the R76 rules never starts a run: the reason is on screen."""
    (bench_dir / "dut.toml").write_text(
        (bench_dir / "dut.toml").read_text(encoding="utf-8").replace("d = 0.1", "d = 0.3"),
        encoding="utf-8")
    app = _app(bench_dir, lang="en")

    async def scenario() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            app.switch_mode("run")
            await wait_for(pilot, lambda: getattr(app.screen, "setup", None) is not None,
                           "setup")
            screen = app.screen
            # The broken file is not offered as a DUT; give it by path as the CLI does.
            from benchctl.tui.runctl import RunJob

            app.start_run(RunJob("nawi_balance", str(bench_dir / "dut.toml")))
            await wait_for(pilot, lambda: app.run_model.state in TERMINAL, "the refusal")
            assert screen is app.screen

    asyncio.run(scenario())
    assert app.run_model.state == "refused"
    assert "0.3" in (app.run_model.message or "")


def test_a_second_prompt_waits_for_the_first(bench_dir: Path, simulation: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Two questions at once (two manual instruments read together) come one after the
    other in the same dialog, each answered for itself; a press that comes too soon after a
    question appears (a double Enter) is not taken as its answer."""
    from benchctl.operator import OperatorRequest

    monkeypatch.setattr(PromptDialog, "DEBOUNCE_S", 0.3)
    app = _app(bench_dir, lang="en", poll=False)
    answers: list[Any] = []

    async def scenario() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            loop = asyncio.get_running_loop()
            asks = [loop.create_task(app.operator.ask(OperatorRequest(
                kind="confirm", key=f"k{i}", text=f"question {i}"))) for i in (1, 2)]
            await wait_for(pilot, lambda: app.prompt_dialog is not None
                           and app.prompt_dialog.ready, "first question")
            first = app.prompt_dialog
            assert first is not None and first.request.key == "k1"
            first.query_one("#prompt-ok", Button).press()  # at once: too soon
            await asyncio.sleep(0.05)
            assert first.prompt is not None and not first.prompt.answered
            await wait_for(pilot, first.accepting, "the question to be readable")
            await answer(pilot, first, "#prompt-no")
            await wait_for(pilot, lambda: app.prompt_dialog is not None
                           and app.prompt_dialog.ready
                           and app.prompt_dialog.request.key == "k2", "second question")
            await wait_for(pilot, app.prompt_dialog.accepting, "the second to be readable")
            await answer(pilot, app.prompt_dialog)  # type: ignore[arg-type]
            answers.extend(await asyncio.gather(*asks))

    asyncio.run(scenario())
    assert [a.ok for a in answers] == [False, True]


def test_reference_past_due_refused_then_used_with_a_recorded_reason(
        bench_dir: Path, simulation: Any) -> None:
    """The weights' certificate is due 2027-12-01; on 2028-01-05 the setup shows it past due
    and the run is refused: the TUI says why and asks for a reason to use them anyway (as
    ``run --override-reason``). Cancelled, the run stays refused; with a reason the same run
    starts again and goes, and the reason and who performs it are in the record."""
    app = _app(bench_dir, lang="en", today=lambda: dt.date(2028, 1, 5))
    seen: dict[str, Any] = {}
    reason = "recalibration booked for 2028-01-20; weights checked today"

    async def scenario() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            app.switch_mode("run")
            await wait_for(pilot, lambda: getattr(app.screen, "setup", None) is not None,
                           "setup")
            await wait_for(pilot, lambda: "PAST DUE" in screen_text(app), "the due date")
            seen["setup"] = screen_text(app)
            params = "loads=5 rep_n=2 down=false"
            fields = {"#performed-by": "Nguyễn Văn An"}
            await start_from_setup(pilot, app, params=params, fields=fields)
            await wait_for(pilot, lambda: isinstance(app.screen, OverrideReason), "the why")
            seen["refused"] = (app.run_model.state, app.run_model.message)
            await pilot.pause(0.1)
            seen["dialog"] = screen_text(app)
            seen["dialog_text"] = str(app.screen.query_one("#override-text").render())
            await pilot.press("f8")  # the technician reads it in Vietnamese
            await pilot.pause(0.2)
            seen["lang"] = app.lang
            seen["dialog_text_vi"] = str(app.screen.query_one("#override-text").render())
            await pilot.press("f8")
            await pilot.pause(0.2)
            app.screen.query_one("#override-cancel", Button).press()
            await wait_for(pilot, lambda: not isinstance(app.screen, OverrideReason),
                           "the dialog to close")
            await pilot.pause(0.2)
            seen["cancelled"] = app.run_model.state
            app.get_screen_stack("run")[0].action_new_run()
            await start_from_setup(pilot, app, params=params, fields=fields)
            await wait_for(pilot, lambda: isinstance(app.screen, OverrideReason), "asked again")
            dialog = app.screen
            await pilot.pause(0.1)
            dialog.query_one("#override-ok", Button).press()  # no reason: not accepted
            await pilot.pause(0.1)
            seen["empty"] = str(dialog.query_one("#override-error").render())
            await type_into(pilot, dialog.query_one("#override-reason", Input), reason)
            dialog.query_one("#override-ok", Button).press()
            await wait_for(pilot, lambda: app.run_model.state in ("running", "paused"),
                           "the run started again")
            await drive_run(pilot, app, simulation.world)

    asyncio.run(scenario())
    assert "KLC-2025-0412" in seen["setup"] and "2027-12-01 PAST DUE" in seen["setup"]
    state, message = seen["refused"]
    assert state == "refused" and "2027-12-01" in (message or "")
    assert "Reference refused for this run" in seen["dialog"] and "2027-12-01" in seen["dialog"]
    assert "printed on the certificate" in seen["dialog_text"]
    assert "was due for recalibration on 2027-12-01" in seen["dialog_text"]
    assert seen["lang"] == "vi"
    assert "đã đến hạn hiệu chuẩn lại ngày 2027-12-01" in seen["dialog_text_vi"]
    assert "in trên giấy chứng nhận" in seen["dialog_text_vi"]
    assert "was due" not in seen["dialog_text_vi"]
    assert seen["cancelled"] == "refused"
    assert "Give a reason" in seen["empty"]
    assert app.run_model.state == "completed", app.run_model.message
    doc = run_document(app.db, app.run_model.run_id)  # type: ignore[arg-type]
    assert doc["references"][0]["override_reason"] == reason
    assert doc["performed_by"] == "Nguyễn Văn An"


def test_resume_with_a_reference_that_fell_due_asks_a_reason_and_records_it(
        bench_dir: Path, simulation: Any) -> None:
    """A run stopped in 2026 is resumed from the TUI on 2028-01-05, after its weights'
    certificate fell due (2027-12-01): the resume is refused and the TUI asks for a reason,
    as at the start; with one, the same run goes on and the reason is in its record."""
    from benchhelp import aborted_after_a_point

    from benchctl.tui.runctl import RunJob

    stopped, opts = aborted_after_a_point(bench_dir, simulation)
    opts.db.dispose()
    app = _app(bench_dir, lang="en", today=lambda: dt.date(2028, 1, 5))
    reason = "new certificate due on 2028-01-20; weights checked against the working set"
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            app.start_run(RunJob("", "", resume_id=stopped.run_id))
            await wait_for(pilot, lambda: isinstance(app.screen, OverrideReason), "the why")

            def refusal() -> str:
                return str(app.screen.query_one("#override-text").render())

            await wait_for(pilot, lambda: bool(refusal()), "the refusal to be shown")
            seen["dialog_text"] = refusal()
            await type_into(pilot, app.screen.query_one("#override-reason", Input), reason)
            app.screen.query_one("#override-ok", Button).press()
            await wait_for(pilot, lambda: app.run_model.state in ("running", "paused"),
                           "the run to go on")
            await drive_run(pilot, app, simulation.world)

    asyncio.run(scenario())
    assert "was due for recalibration on 2027-12-01" in seen["dialog_text"]
    assert app.run_model.state == "completed", app.run_model.message
    assert app.run_model.run_id == stopped.run_id
    doc = run_document(app.db, stopped.run_id)
    assert doc["references"][0]["override_reason"] == reason


def test_performer_chosen_from_the_person_register(bench_dir: Path, simulation: Any) -> None:
    """Once the person register has people, who performs the run is chosen from its active
    operators (a reviewer is not offered); a run is not started without one, and the one
    chosen is recorded."""
    from benchctl.store import repository as repo

    app = _app(bench_dir, lang="vi")
    with app.db.session() as s:
        repo.add_person(s, "Trần Thị Bình", ["operator"])
        repo.add_person(s, "Nguyễn Văn An", ["operator", "reviewer"])
        repo.add_person(s, "Lê Văn Cường", ["reviewer"])
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            app.switch_mode("run")
            screen = app.screen
            await wait_for(pilot, lambda: getattr(screen, "setup", None) is not None, "setup")
            await pilot.pause(0.1)
            seen["switch"] = screen.query_one("#performer-switch").current
            choice = screen.query_one("#performer", Select)
            seen["offered"] = [str(label) for label, _v in choice._options if str(label)]
            choice.clear()
            screen.query_one("#procedure", Select).value = "nawi_balance"
            await pilot.pause(0.05)
            screen.query_one("#params", Input).value = "loads=5 rep_n=2 down=false"
            screen.query_one("#start", Button).press()
            await pilot.pause(0.1)
            seen["blank"] = (app.run_model.state,
                             str(screen.query_one("#setup-error").render()))
            choice.value = "Trần Thị Bình"
            dut = screen.query_one("#dut", Select)
            chosen_dut = dut.value
            dut.clear()
            screen.query_one("#start", Button).press()
            await pilot.pause(0.1)
            seen["no dut"] = (app.run_model.state,
                              str(screen.query_one("#setup-error").render()))
            dut.value = chosen_dut
            screen.query_one("#start", Button).press()
            await wait_for(pilot, lambda: app.run_model.state != "setup", "the run to start")
            await drive_run(pilot, app, simulation.world)

    asyncio.run(scenario())
    assert seen["switch"] == "performer"
    assert seen["offered"] == ["Nguyễn Văn An", "Trần Thị Bình"]
    assert seen["blank"] == ("setup", i18n.t("tui.run.choose_performer", "vi"))
    assert seen["no dut"] == ("setup", i18n.t("tui.run.choose_dut", "vi"))
    assert app.run_model.state == "completed", app.run_model.message
    doc = run_document(app.db, app.run_model.run_id)  # type: ignore[arg-type]
    assert doc["performed_by"] == "Trần Thị Bình"

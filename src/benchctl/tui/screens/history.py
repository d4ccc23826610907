"""History: runs filtered by DUT, customer, date and verdict; a run's detail; export of its
certificate and data; resume of an interrupted run."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Select, Static

from ... import i18n
from ..l10n import LButton, lang_of
from ..runctl import RunJob
from ..widgets.error_chart import ErrorChart
from ..widgets.points_table import PointsTable, verdict_text
from .base import BaseScreen

VERDICTS = ("pass", "fail", "conditional_pass", "conditional_fail")
RESUMABLE = ("aborted", "failed", "paused", "running")
#: (column key, catalogue id, width)
RUN_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "tui.history.col.run", 5),
    ("started", "tui.history.col.started", 17),
    ("procedure", "tui.history.col.procedure", 16),
    ("mode", "tui.history.col.mode", 12),
    ("dut", "tui.history.col.dut", 16),
    ("customer", "tui.history.col.customer", 24),
    ("state", "tui.history.col.state", 12),
    ("verdict", "tui.history.col.verdict", 18),
)


@dataclass(frozen=True)
class RunRow:
    id: int
    started: dt.datetime | None
    procedure: str
    mode: str
    dut: str
    customer: str
    state: str
    verdict: str | None


@dataclass(frozen=True)
class Filters:
    dut: str | None = None
    customer: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    verdict: str | None = None


def query_runs(db: Any, f: Filters, limit: int = 200) -> list[RunRow]:
    from ...store import repository as repo

    with db.session() as s:
        return [RunRow(r.id, r.started_at, r.procedure.procedure_id, r.mode, r.dut_asset_id,
                       r.dut.customer or "", r.state, r.verdict)
                for r in repo.find_runs(s, dut=f.dut, customer=f.customer, since=f.since,
                                        until=f.until, verdict=f.verdict, limit=limit)]


def export_run(db: Any, run_id: int, folder: Path, lang: str, what: str) -> list[Path]:
    """Write a run's certificate (``what="certificate"``: HTML and PDF, in ``lang``) or its
    data (``"data"``: CSV, XLSX and the JSON document) into ``folder``.

    Through the reports module's own writer, which keeps every file inside the folder; the
    names are made here, never typed by the technician.
    """
    from ...reports import write_report
    from ...reports.document import run_document

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if what == "certificate":
        for fmt in ("html", "pdf"):
            written.append(write_report(db, run_id, fmt, f"run-{run_id}-certificate-{lang}.{fmt}",
                                        lang=lang, folder=folder).path)
        return written
    for fmt in ("csv", "xlsx"):
        written.append(write_report(db, run_id, fmt, f"run-{run_id}-data.{fmt}", lang=lang,
                                    folder=folder).path)
    path = folder / f"run-{run_id}-data.json"
    path.write_text(json.dumps(run_document(db, run_id), ensure_ascii=False, indent=2,
                               default=str), encoding="utf-8")
    written.append(path)
    return written


class HistoryScreen(BaseScreen):
    title_id = "tui.screen.history"
    #: The list of runs has the keys (Enter, E, D, R): a filter field first would take
    #: them as typing. Tab or a click reaches the filters.
    AUTO_FOCUS = "#runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "show_run", "tui.key.details", show=False),
        Binding("e", "export('certificate')", "tui.key.export_certificate"),
        Binding("d", "export('data')", "tui.key.export_data"),
        Binding("r", "resume_run", "tui.key.resume_run"),
        Binding("ctrl+r", "search", "tui.key.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunRow] = []
        self.selected: int | None = None
        self.document: dict[str, Any] | None = None
        self._filled = False

    def compose(self) -> ComposeResult:
        yield self.top_bar()
        with Horizontal(id="history-filters", classes="filters"):
            yield Input(id="f-dut", classes="filter")
            yield Input(id="f-customer", classes="filter")
            yield Input(id="f-since", classes="filter date")
            yield Input(id="f-until", classes="filter date")
            yield Select([], id="f-verdict", allow_blank=True, prompt="—", classes="filter")
            yield LButton("tui.btn.search", id="search")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        with Vertical(id="run-detail"):
            yield Static(id="detail-summary", classes="run-status")
            with Horizontal(id="detail-body", classes="split"):
                yield PointsTable(id="detail-points")
                yield ErrorChart(id="detail-chart")
        yield self.footer()

    def on_ready(self) -> None:
        table = self.query_one("#runs", DataTable)
        for key, _m, width in RUN_COLUMNS:
            table.add_column(key, width=width, key=key)
        self.retranslate()
        self.action_search()

    def retranslate(self) -> None:
        if not self.ready:
            return
        super().retranslate()
        lang = self.lang
        placeholders = {"f-dut": "tui.history.filter.dut",
                        "f-customer": "tui.history.filter.customer",
                        "f-since": "tui.history.filter.since",
                        "f-until": "tui.history.filter.until"}
        for wid, message_id in placeholders.items():
            self.query_one(f"#{wid}", Input).placeholder = self.t(
                message_id, example=i18n.format_date(dt.date(2026, 11, 21), lang))
        verdict = self.query_one("#f-verdict", Select)
        value = verdict.value
        verdict.set_options([(i18n.t(f"verdict.{v}", lang), v) for v in VERDICTS])
        if value in VERDICTS:
            verdict.value = value
        table = self.query_one("#runs", DataTable)
        for key, message_id, _w in RUN_COLUMNS:
            col = table.columns.get(key)  # type: ignore[call-overload]
            if col is not None:
                col.label = Text(self.t(message_id))
        self.fill_runs()
        self.show_document()

    # -- query ---------------------------------------------------------------------------
    def filters(self) -> Filters | str:
        lang = self.lang

        def text(wid: str) -> str | None:
            return self.query_one(f"#{wid}", Input).value.strip() or None

        dates: dict[str, dt.date | None] = {}
        for wid in ("f-since", "f-until"):
            raw = text(wid)
            try:
                dates[wid] = i18n.parse_date(raw, lang) if raw else None
            except ValueError:
                return self.t("tui.history.bad_date", text=raw,
                              example=i18n.format_date(dt.date(2026, 11, 21), lang))
        verdict = self.query_one("#f-verdict", Select).value
        return Filters(text("f-dut"), text("f-customer"), dates["f-since"], dates["f-until"],
                       str(verdict) if verdict in VERDICTS else None)

    @on(Button.Pressed, "#search")
    @on(Input.Submitted, ".filter")
    def action_search(self) -> None:
        f = self.filters()
        if isinstance(f, str):
            self.notify(f, severity="error")
            return
        db = self.bench_app.db
        self.background(lambda: query_runs(db, f), self._runs_loaded, latest="runs")

    @on(Select.Changed, "#f-verdict")
    def _verdict_changed(self) -> None:
        if self.is_mounted:
            self.action_search()

    def _runs_loaded(self, rows: list[RunRow]) -> None:
        if rows == self.runs and self._filled:  # as shown: not rebuilt (nor laid out again)
            return
        self.runs = rows
        self._filled = True
        self.fill_runs()

    def fill_runs(self) -> None:
        table = self.query_one("#runs", DataTable)
        lang, tz = self.lang, self.bench_app.tz
        table.clear()
        for r in self.runs:
            table.add_row(
                str(r.id), i18n.format_datetime(r.started, lang, tz), r.procedure,
                self.t(f"tui.mode.{r.mode}"), r.dut, r.customer,
                self.t(f"tui.state.{r.state}"), verdict_text(r.verdict, lang), key=str(r.id))
        if self.selected is not None and str(self.selected) in table.rows:
            table.move_cursor(row=table.get_row_index(str(self.selected)))

    # -- detail --------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_run(int(str(event.row_key.value)))

    def action_show_run(self) -> None:
        table = self.query_one("#runs", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
            self.open_run(int(str(key.value)))

    def open_run(self, run_id: int) -> None:
        from ...reports.document import run_document

        self.selected = run_id
        db = self.bench_app.db
        self.background(lambda: run_document(db, run_id), self._document_loaded,
                        latest="document")

    def _document_loaded(self, doc: dict[str, Any]) -> None:
        self.document = doc
        self.show_document()

    def show_document(self) -> None:
        doc = self.document
        summary = self.query_one("#detail-summary", Static)
        table = self.query_one("#detail-points", PointsTable)
        chart = self.query_one("#detail-chart", ErrorChart)
        if doc is None:
            summary.update(Text(self.t("tui.history.pick"), style="dim"))
            return
        lang = lang_of(self)
        dut = doc.get("dut") or {}
        text = Text(no_wrap=False)
        text.append(self.t("tui.top.run", run=doc["run_id"]) + " ", style="bold")
        text.append(f"· {doc['procedure']} v{doc.get('procedure_version', '')} · "
                    f"{self.t('tui.mode.' + str(doc['mode']))} · {dut.get('asset')} "
                    f"({dut.get('maker') or ''} {dut.get('model') or ''}) · "
                    f"{self.t('tui.state.' + str(doc['state']))} · ")
        text.append(self.t("tui.run.verdict") + " ")
        text.append_text(verdict_text(doc.get("verdict"), lang) if doc.get("verdict")
                         else Text("—"))
        started = doc.get("started_at")
        if started:
            when = dt.datetime.fromisoformat(started)
            text.append("\n" + self.t("tui.history.started",
                                      at=i18n.format_datetime(when, lang, self.bench_app.tz)))
        if dut.get("customer"):
            text.append(" · " + self.t("tui.history.customer", customer=dut["customer"]))
        refs = ", ".join(f"{r['asset']} ({r['certificate']}, "
                         f"{self.t('tui.run.due')} "
                         f"{i18n.format_date(dt.date.fromisoformat(r['due_date']), lang)})"
                         for r in doc.get("references") or [] if r.get("due_date"))
        if refs:
            text.append("\n" + self.t("tui.history.references", refs=refs))
        if doc.get("state_message") and doc.get("state") != "completed":
            text.append("\n" + str(doc["state_message"]), style="yellow")
        summary.update(text)
        unit = dut.get("unit") or ""
        rows: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for p in doc.get("points") or []:
            row = dict(p)
            row.update(p.get("extra") or {})
            rows.append((str(p["key"]), {}, row))
        table.reset()
        table.set_unit(unit)
        table.show(rows)
        chart.show([r for _k, _p, r in rows if r is not None], unit)

    # -- export and resume ---------------------------------------------------------------
    def action_export(self, what: str) -> None:
        if self.selected is None:
            self.notify(self.t("tui.history.pick"), severity="warning")
            return
        run_id, lang = self.selected, self.lang
        folder, db = self.bench_app.export_dir, self.bench_app.db
        self.background(lambda: export_run(db, run_id, folder, lang, what), self._exported,
                        group="export")

    def _exported(self, paths: list[Path]) -> None:
        self.notify(self.t("tui.history.exported", files=", ".join(str(p) for p in paths)),
                    timeout=8)

    def action_resume_run(self) -> None:
        doc = self.document
        if doc is None:
            self.notify(self.t("tui.history.pick"), severity="warning")
            return
        if doc.get("state") not in RESUMABLE:
            self.notify(self.t("tui.history.not_resumable", state=self.t(
                "tui.state." + str(doc.get("state")))), severity="warning")
            return
        if self.bench_app.runs.active:
            self.notify(self.t("tui.run.busy"), severity="warning")
            return
        self.bench_app.start_run(RunJob(str(doc["procedure"]), str(doc["dut"]["asset"]),
                                        str(doc["mode"]), resume_id=int(doc["run_id"])))

    def on_shown(self) -> None:
        self.action_search()  # runs taken since the last visit

    def refresh_view(self) -> None:
        super().refresh_view()

"""The run: choose procedure, DUT and references (due dates shown), then follow the run.

Following a run: the steps so far, the points table filling in (error, U, MPE, verdict,
coloured), the verdict so far, a chart of error against load with U bars and the MPE
envelope, and pause / resume / abort. The procedure's questions come up as dialogs (the app
opens them, whatever screen the technician is on).
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, ContentSwitcher, Input, Select, Static

from ... import i18n
from ..l10n import LButton, Msg, show
from ..runctl import RunJob
from ..widgets.error_chart import ErrorChart
from ..widgets.points_table import PointsTable, verdict_text
from .base import BaseScreen

DUE_SOON_DAYS = 30


@dataclass
class ProcedureChoice:
    id: str
    title: str
    dut_kind: str | None
    modes: tuple[str, ...]
    references: dict[str, str]
    """The procedure's REFERENCES: what it needs with its default parameters."""
    parameters: dict[str, Any]
    slots: dict[str, str | None] = field(default_factory=dict)
    """Instrument slot -> the bench instrument playing it."""
    references_for: Callable[[dict[str, Any]], dict[str, str]] | None = field(
        default=None, compare=False, repr=False)
    """The procedure's ``references_for(params)``, when what it needs depends on them
    (a dispenser verified with proving measures or with a master meter)."""

    def wanted(self, params: dict[str, Any]) -> dict[str, str]:
        """Reference slot -> kind, for these parameters."""
        if self.references_for is not None:
            try:
                return dict(self.references_for(params))
            except Exception:  # parameters half typed: what it needs by default
                return dict(self.references)
        return dict(self.references)


@dataclass
class ReferenceRow:
    name: str
    """The bench file's reference entry."""
    kind: str
    asset: str
    certificate: str | None
    due_on: dt.date | None
    source: str
    """"file" or "register" (the bench's [references]), or "instrument" (an instrument
    of the bench with an asset: a reference standard with an interface)."""
    alternatives: list[tuple[str, str | None, dt.date | None]]
    """Other register assets of the same kind: (asset, certificate, due)."""


@dataclass
class SetupData:
    procedures: list[ProcedureChoice]
    duts: list[tuple[str, str, str]]
    """(value given to --dut, label, kind)."""
    references: list[ReferenceRow]
    errors: list[str]
    people: list[str]
    """Who may perform a run (the person register's operators); empty: anyone."""


def due_text(due: dt.date | None, today: dt.date, lang: str) -> Text:
    """A due date, red when past, marked when within 30 days."""
    if due is None:
        return Text(i18n.t("tui.due.none", lang), style="bold red")
    shown = i18n.format_date(due, lang)
    if due < today:
        return Text(f"{shown} {i18n.t('tui.due.past', lang)}", style="bold red")
    days = (due - today).days
    if days <= DUE_SOON_DAYS:
        return Text(f"{shown} {i18n.t('tui.due.soon', lang, days=days)}", style="bold yellow")
    return Text(shown, style="green")


def load_setup(app: Any) -> SetupData:
    """Everything the setup panel offers (runs in a worker thread: files and database)."""
    from ... import library
    from ...assets import load_dut_file, load_reference_file
    from ...errors import BenchctlError
    from ...store import repository as repo

    bench = app.bench
    errors: list[str] = []
    if bench is not None:
        library.configure(bench.library)
    from ...engine.handles import assign_slots

    procedures: list[ProcedureChoice] = []
    for pid in library.available("procedures"):
        try:
            m = library.load("procedures", pid)
        except Exception as exc:
            errors.append(f"procedure {pid}: {exc}")
            continue
        if not hasattr(m, "run"):
            continue
        slots: dict[str, str | None] = {}
        if bench is not None:
            try:  # only what this bench can run: its instruments play the roles needed
                slots = dict(assign_slots(bench, dict(getattr(m, "INSTRUMENTS", {}))))
            except BenchctlError:
                continue
        procedures.append(ProcedureChoice(
            str(getattr(m, "ID", pid)), str(getattr(m, "TITLE", pid)),
            getattr(m, "DUT_KIND", None), tuple(getattr(m, "MODES", ("verify", "calibrate"))),
            dict(getattr(m, "REFERENCES", {})), dict(getattr(m, "PARAMETERS", {})),
            slots, getattr(m, "references_for", None)))
    duts: list[tuple[str, str, str]] = []
    if bench is not None:
        folder = Path(bench.path).parent
        for f in sorted(folder.glob("*.toml")):
            if f.resolve() == Path(bench.path).resolve():
                continue
            try:
                dut = load_dut_file(f)
            except BenchctlError:
                continue
            label = f"{f.name} · {dut.asset_id} · {dut.maker} {dut.model}".strip()
            duts.append((str(f), label, dut.kind))
    references: list[ReferenceRow] = []
    lister = getattr(repo, "list_assets", None)
    with app.db.session() as s:
        if lister is not None:
            seen = {d[0] for d in duts}
            for a in lister(s):
                if a.id in seen or a.kind in _REFERENCE_KINDS:
                    continue
                label = f"{a.id} · {a.maker or ''} {a.model or ''} · {a.customer or ''}"
                duts.append((a.id, label, a.kind))
        if bench is not None:
            for ref in bench.references.values():
                try:
                    if ref.file is not None:
                        spec = load_reference_file(ref.file)
                        row = ReferenceRow(ref.name, spec.kind, spec.asset_id,
                                           spec.certificate.number, spec.certificate.due_on,
                                           "file", [])
                    else:
                        asset = repo.get_asset(s, str(ref.asset))
                        if asset is None:
                            errors.append(i18n.t("tui.run.no_asset", app.lang, asset=ref.asset))
                            continue
                        cert = repo.current_certificate(s, asset.id, app.today())
                        row = ReferenceRow(ref.name, asset.kind, asset.id,
                                           cert.number if cert else None,
                                           cert.due_on if cert else None, "register", [])
                except BenchctlError as exc:
                    errors.append(str(exc))
                    continue
                if lister is not None:
                    for a in lister(s, kind=row.kind):
                        if a.id == row.asset:
                            continue
                        cert = repo.current_certificate(s, a.id, app.today())
                        row.alternatives.append((a.id, cert.number if cert else None,
                                                 cert.due_on if cert else None))
                references.append(row)
            for name, inst in bench.instruments.items():
                if not inst.asset or inst.role == "dut" or name in bench.references:
                    continue
                asset = repo.get_asset(s, inst.asset)
                if asset is None:
                    errors.append(i18n.t("tui.run.no_asset", app.lang, asset=inst.asset))
                    continue
                cert = repo.current_certificate(s, asset.id, app.today())
                references.append(ReferenceRow(name, asset.kind, asset.id,
                                               cert.number if cert else None,
                                               cert.due_on if cert else None, "instrument", []))
    people: list[str] = []
    list_people = getattr(repo, "list_people", None)
    if list_people is not None:
        with app.db.session() as s:
            from ...records.approval import PERFORM_ROLES

            people = [p.name for p in list_people(s, active_only=True)
                      if set(PERFORM_ROLES) & set(p.roles or [])]
    return SetupData(procedures, duts, references, errors, people)


def procedure_params(p: ProcedureChoice, text: str) -> dict[str, Any]:
    """The parameters typed so far (``KEY=VALUE ...``), typed as the procedure declares
    them; what does not parse yet is left out (the run checks them all when it starts)."""
    try:
        items = shlex.split(text.replace(";", " "))
    except ValueError:
        return {}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in p.parameters:
            continue
        typ = p.parameters[key][0]
        try:
            if typ is bool:
                out[key] = value.lower() in ("1", "true", "yes", "on")
            elif typ is list:
                out[key] = [float(x) for x in value.replace(";", ",").split(",") if x.strip()]
            else:
                out[key] = typ(value)
        except (TypeError, ValueError):
            continue
    return out


def match_references(p: ProcedureChoice, params: dict[str, Any],
                     rows: list[ReferenceRow]) -> list[tuple[str, str, ReferenceRow | None]]:
    """(slot, kind, the bench's reference for it or None) for each reference standard the
    run will use, chosen as the runner chooses (``resolve_references``): the reference of
    the slot's own name, else the first of its kind; then instruments with an asset that
    play one of the procedure's instrument slots (the environment monitor)."""
    wanted = p.wanted(params)
    by_name = {r.name: r for r in rows}
    found: dict[str, ReferenceRow] = {}
    taken: set[str] = set()
    for slot, kind in wanted.items():
        row = by_name.get(slot)
        if row is not None and row.kind == kind:
            found[slot] = row
            taken.add(row.name)
    for slot, kind in wanted.items():
        if slot not in found:
            match = next((r for r in rows if r.kind == kind and r.name not in taken), None)
            if match is not None:
                found[slot] = match
                taken.add(match.name)
    out: list[tuple[str, str, ReferenceRow | None]] = [
        (slot, kind, found.get(slot)) for slot, kind in wanted.items()]
    for slot, inst in p.slots.items():
        row = by_name.get(inst) if inst else None
        if row is not None and row.source == "instrument" and slot not in found \
                and row.name not in taken:
            out.append((slot, row.kind, row))
            taken.add(row.name)
    return out


def _default_performer(people: list[str]) -> str:
    """$BENCHCTL_OPERATOR or the login name, as the command line does (the only operator of
    the register when there is exactly one)."""
    import getpass
    import os

    if len(people) == 1:
        return people[0]
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = ""
    return os.environ.get("BENCHCTL_OPERATOR", "") or login


_REFERENCE_KINDS = ("weight_set", "pressure_controller", "flow_meter", "proving_measure",
                    "environment_monitor")


class RunScreen(BaseScreen):
    title_id = "tui.screen.run"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "tui.key.start"),
        Binding("p", "pause", "tui.key.pause"),
        Binding("r", "resume", "tui.key.resume"),
        Binding("a", "abort", "tui.key.abort"),
        Binding("n", "new_run", "tui.key.new_run"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.setup: SetupData | None = None
        self._shown_version = -1
        self._setup_loaded = False
        self._bindings_key: tuple[str, bool] | None = None
        self._rows_shown = 0
        self._references_shown: list[tuple[str, str, ReferenceRow | None]] = []
        self._setup_day: dt.date | None = None

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield self.top_bar()
        with ContentSwitcher(initial="setup", id="run-switcher"):
            with VerticalScroll(id="setup"):
                yield Msg("tui.run.setup_title", classes="section-title")
                with Grid(id="setup-grid", classes="form-grid"):
                    yield Msg("tui.run.procedure", classes="form-label")
                    yield Select([], id="procedure", prompt="—", allow_blank=True)
                    yield Msg("tui.run.dut", classes="form-label")
                    yield Select([], id="dut", prompt="—", allow_blank=True)
                    yield Msg("tui.run.mode", classes="form-label")
                    yield Select([(self.t(f"tui.mode.{m}"), m) for m in ("verify", "calibrate")],
                                 id="mode", allow_blank=False)
                    yield Msg("tui.run.params", classes="form-label")
                    yield Input(id="params", classes="form-input")
                    yield Msg("tui.run.performed_by", classes="form-label")
                    # Typed in; once the person register has operators, chosen from them.
                    with ContentSwitcher(initial="performed-by", id="performer-switch"):
                        yield Input(id="performed-by", classes="form-input")
                        yield Select([], id="performer", prompt="—", allow_blank=True)
                yield Msg("tui.run.references", classes="section-title")
                yield Vertical(id="references")
                with Grid(classes="form-grid"):
                    yield Msg("tui.run.override", classes="form-label")
                    yield Input(id="override", classes="form-input")
                yield Static(id="setup-error", classes="form-error")
                with Horizontal(classes="dialog-buttons"):
                    yield LButton("tui.btn.start", id="start", variant="success")
            with Vertical(id="follow"):
                yield Static(id="run-status", classes="run-status")
                yield Static(id="run-steps", classes="run-steps")
                yield Static(id="run-message", classes="run-message")
                with Horizontal(id="run-body", classes="split"):
                    yield PointsTable(id="points")
                    yield ErrorChart(id="chart")
        yield self.footer()

    def on_ready(self) -> None:
        self.load_setup()
        self._shown_version = -1

    def on_shown(self) -> None:
        if self.bench_app.run_model.state == "setup" and self.setup is not None:
            self.load_setup()  # DUTs and references registered since (choices are kept)

    def load_setup(self) -> None:
        self.background(lambda: load_setup(self.bench_app), self._setup_loaded_cb,
                        latest="setup")

    def _setup_loaded_cb(self, data: SetupData) -> None:
        today = self.bench_app.today()
        if data == self.setup and today == self._setup_day:
            return  # as shown (each visit asks again): the form is not rebuilt
        self.setup, self._setup_day = data, today
        self._setup_loaded = True
        proc = self.query_one("#procedure", Select)
        before = proc.value  # a new run keeps the last choices where they still apply
        proc.set_options([(f"{p.id} · {p.title}", p.id) for p in data.procedures])
        if before in [p.id for p in data.procedures]:
            proc.value = before
        elif len(data.procedures) == 1:
            proc.value = data.procedures[0].id
        self._fill_for_procedure()
        self._fill_performer(data.people)
        if data.errors:
            self.query_one("#setup-error", Static).update(
                Text("\n".join(data.errors), style="red"))

    def _fill_performer(self, people: list[str]) -> None:
        """Who performs the run: the operators of the person register to choose from (the
        run is refused for anyone else), or, with no register, a name typed in."""
        switch = self.query_one("#performer-switch", ContentSwitcher)
        if not people:
            switch.current = "performed-by"
            who = self.query_one("#performed-by", Input)
            if not who.value:
                who.value = _default_performer(people)
            return
        choice = self.query_one("#performer", Select)
        before = choice.value
        choice.set_options([(name, name) for name in people])
        default = before if before in people else _default_performer(people)
        if default in people:
            choice.value = default
        switch.current = "performer"

    def performer(self) -> str | None:
        """The name chosen or typed (None: typed empty, the engine's default applies)."""
        if self.query_one("#performer-switch", ContentSwitcher).current == "performer":
            choice = self.query_one("#performer", Select)
            return None if choice.is_blank() or not choice.value else str(choice.value)
        return self.query_one("#performed-by", Input).value.strip() or None

    def procedure(self) -> Any:
        if self.setup is None:
            return None
        value = self.query_one("#procedure", Select).value
        return next((p for p in self.setup.procedures if p.id == value), None)

    def _fill_for_procedure(self) -> None:
        p = self.procedure()
        data = self.setup
        if data is None:
            return
        dut = self.query_one("#dut", Select)
        kind = p.dut_kind if p else None
        options = [(label, value) for value, label, k in data.duts if kind in (None, k)]
        current = dut.value
        dut.set_options(options)
        values = [v for _l, v in options]
        if current in values:
            dut.value = current
        elif len(values) == 1:
            dut.value = values[0]
        mode = self.query_one("#mode", Select)
        modes = p.modes if p else ("verify", "calibrate")
        chosen = mode.value
        mode.set_options([(self.t(f"tui.mode.{m}"), m) for m in modes])
        mode.value = chosen if chosen in modes else modes[0]
        if p and p.parameters:
            self.query_one("#params", Input).placeholder = " ".join(
                f"{k}=…" for k in list(p.parameters)[:4])
        self.query_one("#override", Input).placeholder = self.t("tui.run.override_hint")
        self._fill_references()

    def used_references(self) -> list[tuple[str, str, ReferenceRow | None]]:
        """The references the run set up on the screen will use (all the bench offers
        until a procedure is chosen)."""
        if self.setup is None:
            return []
        p = self.procedure()
        if p is None:
            return [(r.name, r.kind, r) for r in self.setup.references]
        params = procedure_params(p, self.query_one("#params", Input).value)
        return match_references(p, params, self.setup.references)

    @on(Input.Changed, "#params")
    def _params_changed(self) -> None:
        # method=master_meter and the like change which references the run needs.
        if self.setup is not None and self._references_shown != self.used_references():
            self._fill_references()

    def _fill_references(self) -> None:
        box = self.query_one("#references", Vertical)
        box.remove_children()
        if self.setup is None:
            return
        today = self.bench_app.today()
        widgets: list[Any] = []
        used = self.used_references()
        self._references_shown = used
        for slot, kind, found in used:
            if found is None:
                widgets.append(Static(Text(self.t("tui.run.reference_missing", slot=slot,
                                                  kind=kind), style="bold red"),
                                      classes="reference-line"))
                continue
            row = found
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{row.name:<12} ", style="bold")
            line.append(f"{row.asset:<16} ")
            line.append(self.t("tui.run.cert", number=row.certificate or "—") + "  ")
            line.append(self.t("tui.run.due") + " ")
            line.append_text(due_text(row.due_on, today, self.lang))
            line.append(f"  ({self.t('tui.run.source.' + row.source)})", style="dim")
            widgets.append(Static(line, classes="reference-line"))
            if row.alternatives and not any(
                    w.id == f"ref-{row.name}" for w in widgets if isinstance(w, Select)):
                options = [(self.t("tui.run.keep_reference", asset=row.asset), "")]
                for asset, number, due in row.alternatives:
                    label = (f"{asset} · {number or '—'} · "
                             f"{self.t('tui.run.due')} {i18n.format_date(due, self.lang)}")
                    options.append((label, asset))
                widgets.append(Select(options, id=f"ref-{row.name}", allow_blank=False,
                                      classes="reference-choice"))
        if not used:
            widgets.append(Msg("tui.run.no_references", classes="dim"))
        box.mount_all(widgets)

    def retranslate(self) -> None:
        if not self.ready:
            return
        super().retranslate()
        if self.setup is not None:
            mode = self.query_one("#mode", Select)
            value = mode.value
            p = self.procedure()
            modes = p.modes if p else ("verify", "calibrate")
            mode.set_options([(self.t(f"tui.mode.{m}"), m) for m in modes])
            if value in modes:
                mode.value = value
            self._fill_references()
        self._shown_version = -1
        self.refresh_view()

    @on(Select.Changed, "#procedure")
    def _procedure_changed(self) -> None:
        self._fill_for_procedure()

    # -- starting ------------------------------------------------------------------------
    def job(self) -> RunJob | str:
        """The run the technician set up, or why it cannot start (a catalogue id)."""
        p = self.procedure()
        if p is None:
            return "tui.run.choose_procedure"
        dut_choice = self.query_one("#dut", Select)
        dut = dut_choice.value
        if dut_choice.is_blank() or not dut:  # (the blank value is truthy: Select.NULL)
            return "tui.run.choose_dut"
        mode = self.query_one("#mode", Select).value
        try:
            params = shlex.split(self.query_one("#params", Input).value.replace(";", " "))
        except ValueError:
            return "tui.run.bad_params"
        chosen: dict[str, str] = {}
        for select in self.query(".reference-choice").results(Select):
            if not select.is_blank() and select.value:
                chosen[str(select.id)[len("ref-"):]] = str(select.value)
        who = self.performer()
        if who is None and self.setup is not None and self.setup.people:
            return "tui.run.choose_performer"
        reason = self.query_one("#override", Input).value.strip() or None
        return RunJob(p.id, str(dut), str(mode), params, chosen, performed_by=who,
                      override_reason=reason)

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        model = self.bench_app.run_model
        if model.active or self.bench_app.runs.active:
            return
        if self.bench_app.bench is None:
            self.query_one("#setup-error", Static).update(
                Text(self.t("tui.run.no_bench"), style="bold red"))
            return
        job = self.job()
        if isinstance(job, str):
            self.query_one("#setup-error", Static).update(Text(self.t(job), style="bold red"))
            return
        self.query_one("#setup-error", Static).update("")
        self.bench_app.start_run(job)

    def action_pause(self) -> None:
        self.bench_app.runs.pause()

    def action_resume(self) -> None:
        self.bench_app.runs.resume()

    def action_abort(self) -> None:
        self.bench_app.ask_abort()

    def action_new_run(self) -> None:
        if self.bench_app.run_model.active:
            return
        self.bench_app.run_model.reset()
        self.query_one(PointsTable).reset()
        self.query_one(ErrorChart).show([])
        self._shown_version = -1
        self._rows_shown = 0
        self.setup = None  # offered again from the files and the register as they are now
        self.load_setup()
        self.refresh_view()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        model = self.bench_app.run_model
        fault = any(p.is_fault for p in self.bench_app.operator.pending)
        if action == "start":
            return model.state == "setup"
        if action == "pause":
            return model.state == "running"
        if action == "resume":
            return None if fault else model.state == "paused"
        if action == "abort":
            return model.active
        if action == "new_run":
            return model.state not in ("setup", "starting", "running", "paused")
        return True

    # -- following -----------------------------------------------------------------------
    def refresh_view(self) -> None:
        super().refresh_view()
        if not self.ready:
            return
        model = self.bench_app.run_model
        # Checked on every tick: the switcher sets its initial page when it mounts, which
        # may come after the first events of a run.
        switcher = self.query_one("#run-switcher", ContentSwitcher)
        wanted = "setup" if model.state == "setup" else "follow"
        if switcher.current != wanted:
            switcher.current = wanted
            # Focus follows the page (the technician's keys go where they look; and what is
            # drawn does not depend on when Textual would have moved it).
            focus = "#procedure" if wanted == "setup" else "#points"
            self.query_one(focus).focus()
        if model.version == self._shown_version:
            return
        self._shown_version = model.version
        bindings_key = (model.state, any(p.is_fault for p in self.bench_app.operator.pending))
        if bindings_key != self._bindings_key:
            self._bindings_key = bindings_key
            self.refresh_bindings()
        if model.state == "setup":
            return
        show(self.query_one("#run-status", Static), self.status_text())
        show(self.query_one("#run-steps", Static), self.steps_text(), layout=True)
        message: Text | str = ""
        if model.message:
            style = {"error": "bold red", "warning": "yellow"}.get(model.message_kind, "")
            head = self.t("tui.run.paused_because") if model.state == "paused" else ""
            message = Text(f"{head}{model.message}", style=style)
        show(self.query_one("#run-message", Static), message, layout=True)
        table = self.query_one(PointsTable)
        table.set_unit(model.unit)
        rows = [(k, model.points.get(k, {}), model.results.get(k)) for k in model.row_keys()]
        table.show(rows)
        if rows and len(rows) != self._rows_shown:
            self._rows_shown = len(rows)
            table.move_cursor(row=len(rows) - 1, scroll=True)
        self.query_one(ErrorChart).show(list(model.results.values()), model.unit)

    def status_text(self) -> Text:
        model = self.bench_app.run_model
        lang = self.lang
        from .base import RUN_STATE_STYLE

        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(self.t("tui.top.run", run=model.run_id or "…") + " ", style="bold")
        text.append(f"· {model.procedure or ''} · ")
        if model.mode:
            text.append(self.t(f"tui.mode.{model.mode}") + " · ")
        if model.dut:
            text.append(f"{self.t('tui.run.dut')} {model.dut} · ")
        mark, style = RUN_STATE_STYLE.get(model.state, ("·", ""))
        text.append(f"{mark} {self.t(f'tui.state.{model.state}')}", style=style)
        measured = sum(1 for k in model.points if not k.startswith("ambient."))
        text.append(" · " + self.t("tui.run.points", count=measured))
        if model.state in ("running", "paused") and model.waiting:
            what = (self.t("tui.run.waiting_operator") if model.waiting == "operator"
                    else self.t("tui.run.waiting_instrument", what=model.waiting))
            text.append(f" · {what}", style="dim")
        text.append(" · ")
        label = "tui.run.verdict" if model.final else "tui.run.verdict_so_far"
        text.append(self.t(label) + " ")
        if model.verdict:
            text.append_text(verdict_text(model.verdict, lang))
        else:
            text.append("—", style="dim")
        return text

    def steps_text(self) -> Text:
        model = self.bench_app.run_model
        text = Text(no_wrap=False)
        last = len(model.steps) - 1
        for i, (number, message_id, title) in enumerate(model.steps):
            shown = i18n.t(message_id, self.lang) if message_id in i18n.CATALOGUE else title
            current = i == last and model.state in ("running", "paused", "starting")
            mark, style = ("▶", "bold cyan") if current else ("✓", "green")
            text.append(f"{mark} {number} {shown}", style=style)
            if i != last:
                text.append("   ")
        return text

"""The register: assets (reference standards and DUTs) and reference certificates with their
due dates. Past due in red, due within 30 days marked; add and edit assets, add
certificates (a certificate is never edited: a recalibration is a new certificate)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from ... import i18n
from ..l10n import Msg
from ..widgets.forms import AssetForm, CertificateForm
from .base import BaseScreen
from .run import DUE_SOON_DAYS, due_text

ASSET_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "tui.register.col.asset", 16),
    ("kind", "tui.register.col.kind", 19),
    ("due", "tui.register.col.next_due", 25),
    ("maker", "tui.register.col.maker_model", 20),
    ("serial", "tui.register.col.serial", 12),
    ("customer", "tui.register.col.customer", 22),
)
CERT_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("number", "tui.register.col.certificate", 14),
    ("due", "tui.register.col.due", 25),
    ("issued", "tui.register.col.issued", 10),
    ("issuer", "tui.register.col.issuer", 18),
    ("U", "tui.register.col.U", 14),
)


@dataclass(frozen=True)
class CertRow:
    id: int
    asset_id: str
    number: str
    issuer: str
    issued_on: dt.date
    due_on: dt.date
    U: float | None
    k: float | None
    U_unit: str | None


@dataclass
class AssetRow:
    id: str
    kind: str
    maker: str
    model: str
    serial: str
    customer: str
    owner: str
    unit: str
    accuracy_class: str
    resolution: float | None
    range_min: float | None
    range_max: float | None
    params: dict[str, Any]
    certificates: list[CertRow] = field(default_factory=list)

    def form_data(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "maker": self.maker, "model": self.model,
                "serial": self.serial, "customer": self.customer, "owner": self.owner,
                "unit": self.unit, "accuracy_class": self.accuracy_class,
                "resolution": self.resolution, "range_min": self.range_min,
                "range_max": self.range_max, "params": self.params}


@dataclass
class RegisterData:
    assets: list[AssetRow]
    due: list[CertRow]


def load_register(db: Any, today: dt.date) -> RegisterData:
    from ...store import repository as repo

    with db.session() as s:
        certs: dict[str, list[CertRow]] = {}
        for c in repo.list_certificates(s):
            certs.setdefault(c.asset_id, []).append(
                CertRow(c.id, c.asset_id, c.number, c.issuer, c.issued_on, c.due_on, c.U, c.k,
                        c.U_unit))
        assets = [AssetRow(a.id, a.kind, a.maker or "", a.model or "", a.serial or "",
                           a.customer or "", a.owner or "", a.unit or "", a.accuracy_class or "",
                           a.resolution, a.range_min, a.range_max, dict(a.params or {}),
                           certs.get(a.id, []))
                  for a in repo.list_assets(s)]
        due = [CertRow(c.id, c.asset_id, c.number, c.issuer, c.issued_on, c.due_on, c.U, c.k,
                       c.U_unit)
               for c in repo.due_certificates(s, DUE_SOON_DAYS, today)]
    return RegisterData(assets, due)


def current(row: AssetRow, today: dt.date) -> CertRow | None:
    """The newest certificate issued on or before today (what a run would use)."""
    issued = [c for c in row.certificates if c.issued_on <= today]
    return max(issued, key=lambda c: (c.issued_on, c.id)) if issued else None


def check_asset(data: dict[str, Any]) -> str | None:
    """A DUT's parameters must be possible (R76 rules for a balance) before it is saved."""
    from ...assets import BalanceSpec, DutSpec
    from ...errors import BenchctlError

    if data.get("kind") != "balance":
        return None
    params = dict(data.get("params") or {})
    if data.get("accuracy_class") and "class" not in params:
        params["class"] = data["accuracy_class"]
    if data.get("resolution") and "d" not in params:
        params["d"] = data["resolution"]
    if data.get("range_max") and "max" not in params:
        params["max"] = data["range_max"]
    spec = DutSpec(str(data.get("id")), "balance", str(data.get("unit") or ""), params=params)
    try:
        BalanceSpec.from_dut(spec, source=f"asset {data.get('id')}")
    except BenchctlError as exc:
        return str(exc)
    return None


def save_asset(db: Any, data: dict[str, Any], actor: str) -> str:
    from ...store import repository as repo

    fields = {k: v for k, v in data.items() if k != "id" and k in repo.ASSET_FIELDS}
    if fields.get("kind") == "balance":
        params = dict(fields.get("params") or {})
        if fields.get("accuracy_class"):
            params.setdefault("class", fields["accuracy_class"])
        if fields.get("resolution"):
            params.setdefault("d", fields["resolution"])
        if fields.get("range_max"):
            params.setdefault("max", fields["range_max"])
        fields["params"] = params
    with db.session() as s:
        repo.upsert_asset(s, str(data["id"]), actor=actor, **fields)
    return str(data["id"])


def save_certificate(db: Any, asset_id: str, data: dict[str, Any], actor: str) -> str:
    from ...store import repository as repo

    with db.session() as s:
        repo.add_certificate(s, asset_id, number=str(data["number"]), issuer=str(data["issuer"]),
                             issued_on=data["issued_on"], due_on=data["due_on"],
                             U=data.get("U"), k=data.get("k"), U_unit=data.get("U_unit"),
                             actor=actor)
    return asset_id


class RegisterScreen(BaseScreen):
    title_id = "tui.screen.register"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_asset", "tui.key.new_asset"),
        Binding("e", "edit_asset", "tui.key.edit_asset"),
        Binding("c", "new_certificate", "tui.key.new_certificate"),
        Binding("ctrl+r", "reload", "tui.key.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data: RegisterData | None = None
        self.selected: str | None = None
        self._shown_on: dt.date | None = None

    def compose(self) -> ComposeResult:
        yield self.top_bar()
        yield Static(id="due-summary", classes="section-title")
        with Horizontal(id="register-body"):
            with Vertical(id="assets-pane"):
                yield Msg("tui.register.assets", classes="section-title")
                yield DataTable(id="assets", cursor_type="row", zebra_stripes=True)
            with Vertical(id="certs-pane"):
                yield Static(id="certs-title", classes="section-title")
                yield DataTable(id="certs", cursor_type="row", zebra_stripes=True)
        yield self.footer()

    def on_ready(self) -> None:
        for table_id, columns in (("#assets", ASSET_COLUMNS), ("#certs", CERT_COLUMNS)):
            table = self.query_one(table_id, DataTable)
            for key, _m, width in columns:
                table.add_column(key, width=width, key=key)
        self.retranslate()
        self.action_reload()

    def retranslate(self) -> None:
        if not self.ready:
            return
        super().retranslate()
        for table_id, columns in (("#assets", ASSET_COLUMNS), ("#certs", CERT_COLUMNS)):
            table = self.query_one(table_id, DataTable)
            for key, message_id, _w in columns:
                col = table.columns.get(key)  # type: ignore[call-overload]
                if col is not None:
                    col.label = Text(self.t(message_id))
        self.fill()

    def on_shown(self) -> None:
        self.action_reload()  # assets and certificates a run imported since the last visit

    def action_reload(self) -> None:
        db, today = self.bench_app.db, self.bench_app.today()
        self.background(lambda: load_register(db, today), self._loaded, latest="register")

    def _loaded(self, data: RegisterData) -> None:
        if data == self.data and self._shown_on == self.bench_app.today():
            return  # as shown: the tables are not rebuilt (nor laid out again)
        self.data = data
        if self.selected is None and data.assets:
            self.selected = data.assets[0].id
        self.fill()

    def fill(self) -> None:
        data = self.data
        if data is None:
            return
        lang, today = self.lang, self.bench_app.today()
        self._shown_on = today
        past = sum(1 for c in data.due if c.due_on < today)
        soon = len(data.due) - past
        summary = Text()
        summary.append(self.t("tui.register.summary", assets=len(data.assets)) + "   ")
        summary.append(self.t("tui.register.past_due", count=past),
                       style="bold red" if past else "green")
        summary.append("   ")
        summary.append(self.t("tui.register.due_soon", count=soon, days=DUE_SOON_DAYS),
                       style="bold yellow" if soon else "green")
        self.query_one("#due-summary", Static).update(summary)
        table = self.query_one("#assets", DataTable)
        table.clear()
        for a in data.assets:
            cert = current(a, today)
            if a.certificates or a.kind not in _DUT_KINDS:
                due = due_text(cert.due_on if cert else None, today, lang)
            else:
                due = Text("")
            kind = (self.t(f"tui.kind.{a.kind}") if f"tui.kind.{a.kind}" in i18n.CATALOGUE
                    else a.kind)
            table.add_row(a.id, kind, due, f"{a.maker} {a.model}".strip(), a.serial,
                          a.customer or a.owner, key=a.id)
        if self.selected and self.selected in table.rows:
            table.move_cursor(row=table.get_row_index(self.selected))
        self.fill_certificates()

    def fill_certificates(self) -> None:
        data = self.data
        title = self.query_one("#certs-title", Static)
        table = self.query_one("#certs", DataTable)
        table.clear()
        asset = next((a for a in data.assets if a.id == self.selected), None) if data else None
        if asset is None:
            title.update(self.t("tui.register.certificates_none"))
            return
        title.update(Text(self.t("tui.register.certificates", asset=asset.id), style="bold"))
        lang, today = self.lang, self.bench_app.today()
        cur = current(asset, today)
        for c in sorted(asset.certificates, key=lambda c: (c.issued_on, c.id), reverse=True):
            if cur is not None and c.id == cur.id:
                due = due_text(c.due_on, today, lang)
            else:
                due = Text(i18n.format_date(c.due_on, lang) + " "
                           + self.t("tui.register.superseded"), style="dim")
            U = ""
            if c.U is not None:
                U = f"{i18n.format_number(c.U, lang)} {c.U_unit or asset.unit}".strip()
                if c.k:
                    U += f" (k={i18n.format_number(c.k, lang)})"
            table.add_row(c.number, due, i18n.format_date(c.issued_on, lang), c.issuer, U,
                          key=str(c.id))

    @on(DataTable.RowHighlighted, "#assets")
    def _asset_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = str(event.row_key.value)
        if key != self.selected:
            self.selected = key
            self.fill_certificates()

    # -- add and edit --------------------------------------------------------------------
    def _asset(self) -> AssetRow | None:
        if self.data is None:
            return None
        return next((a for a in self.data.assets if a.id == self.selected), None)

    def action_new_asset(self) -> None:
        self.app.push_screen(AssetForm(check=check_asset), self._asset_saved)

    def action_edit_asset(self) -> None:
        asset = self._asset()
        if asset is None:
            self.notify(self.t("tui.register.pick"), severity="warning")
            return
        self.app.push_screen(AssetForm(asset.form_data(), check=check_asset),
                             self._asset_saved)

    def _asset_saved(self, data: dict[str, Any] | None) -> None:
        if not data:
            return
        db, actor = self.bench_app.db, self.bench_app.actor

        def done(asset_id: str) -> None:
            self.selected = asset_id
            self.notify(self.t("tui.register.saved", asset=asset_id))
            self.action_reload()

        self.background(lambda: save_asset(db, data, actor), done)

    def action_new_certificate(self) -> None:
        asset = self._asset()
        if asset is None:
            self.notify(self.t("tui.register.pick"), severity="warning")
            return
        lang = self.lang

        def check(data: dict[str, Any]) -> str | None:
            if data["due_on"] <= data["issued_on"]:
                return i18n.t("tui.register.due_before_issue", lang)
            return None

        asset_id = asset.id
        self.app.push_screen(CertificateForm(asset_id, check=check),
                             lambda data: self._certificate_saved(asset_id, data))

    def _certificate_saved(self, asset_id: str, data: dict[str, Any] | None) -> None:
        if not data:
            return
        db, actor = self.bench_app.db, self.bench_app.actor

        def done(_asset: str) -> None:
            self.notify(self.t("tui.register.cert_saved", number=data["number"],
                               asset=asset_id))
            self.action_reload()

        self.background(lambda: save_certificate(db, asset_id, data, actor), done)


_DUT_KINDS = ("balance", "pressure_gauge", "fuel_dispenser")

"""Error against load (pressure, flow) with U bars and the MPE envelope, drawn in text cells.

The same picture as the certificate's chart, on any terminal (also over SSH): points are
coloured by verdict, a bar spans error ± U, the MPE envelope is a staircase through each
point's limit from zero load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widget import Widget

from ... import i18n
from ..l10n import lang_of
from .points_table import VERDICT_STYLE

#: Tests that are not a curve against load (kept out of the chart, as on the certificate).
NOT_ON_CURVE = ("eccentricity", "repeatability", "zero", "ambient")
Y_LABEL_WIDTH = 9


def chart_points(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that belong on the curve, with ``x`` set (flow for % errors, else nominal)."""
    out = []
    for r in rows:
        if r.get("test") in NOT_ON_CURVE or not isinstance(r.get("error"), int | float):
            continue
        x = r.get("flow") if r.get("error_unit") == "%" else r.get("nominal")
        if not isinstance(x, int | float):
            x = r.get("nominal")
        if isinstance(x, int | float):
            out.append({**r, "x": float(x)})
    return out


def mpe_at(envelope: Sequence[tuple[float, float]], x: float) -> float | None:
    """The limit that applies at ``x``: that of the first point at or above it."""
    for xe, m in envelope:
        if x <= xe + 1e-12:
            return m
    return envelope[-1][1] if envelope else None


def draw(rows: Sequence[dict[str, Any]], width: int, height: int, lang: str,
         unit: str = "") -> Text:
    """The chart as ``height`` lines of ``width`` cells (pure: tested without a terminal)."""
    pts = chart_points(rows)
    if width < Y_LABEL_WIDTH + 10 or height < 5:
        return Text("")
    if not pts:
        return Text(i18n.t("tui.chart.empty", lang), style="dim", justify="center")
    plot_w = width - Y_LABEL_WIDTH - 1
    plot_h = height - 3
    x_max = max(p["x"] for p in pts) * 1.05 or 1.0
    envelope = sorted({(p["x"], abs(float(p["mpe"]))) for p in pts
                       if isinstance(p.get("mpe"), int | float)})
    y_abs = max([abs(p["error"]) + float(p.get("U") or 0) for p in pts]
                + [m for _, m in envelope] + [1e-12]) * 1.15

    def col(x: float) -> int:
        return max(0, min(plot_w - 1, round(x / x_max * (plot_w - 1))))

    def row(y: float) -> int:
        return max(0, min(plot_h - 1, round((y_abs - y) / (2 * y_abs) * (plot_h - 1))))

    grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(plot_h)]

    def put(r: int, c: int, ch: str, style: str) -> None:
        grid[r][c] = (ch, style)

    zero = row(0.0)
    for c in range(plot_w):
        put(zero, c, "┄", "dim")
    if envelope:
        for c in range(plot_w):
            m = mpe_at(envelope, c / max(1, plot_w - 1) * x_max)
            if m is not None:
                put(row(m), c, "─", "red")
                put(row(-m), c, "─", "red")
    for p in pts:
        c = col(p["x"])
        U = float(p.get("U") or 0.0)
        if U > 0:
            top, bottom = row(p["error"] + U), row(p["error"] - U)
            for r in range(top, bottom + 1):
                put(r, c, "│", "cyan")
    for p in pts:
        put(row(p["error"]), col(p["x"]), "●", VERDICT_STYLE.get(p.get("verdict") or "", "bold"))

    def ylab(y: float) -> str:
        return i18n.format_number(y, lang, digits=2, sign=True).rjust(Y_LABEL_WIDTH - 1)[
            -(Y_LABEL_WIDTH - 1):]

    labels = {0: ylab(y_abs), zero: ylab(0.0).replace("+", " "), plot_h - 1: ylab(-y_abs)}
    u = i18n.display_unit(unit)
    title = Text(no_wrap=True, overflow="ellipsis")
    title.append(i18n.t("tui.chart.title", lang, unit=u), style="bold")
    title.append("   ● ", style="green")
    title.append(i18n.t("tui.chart.point", lang))
    title.append("  │ ", style="cyan")
    title.append("U")
    title.append("  ─ ", style="red")
    title.append(i18n.t("tui.col.mpe", lang))
    lines = [title]
    for r in range(plot_h):
        line = Text(no_wrap=True)
        line.append(labels.get(r, "").rjust(Y_LABEL_WIDTH - 1) + " ", style="dim")
        line.append("┤" if r in labels else "│", style="dim")
        for ch, style in grid[r]:
            line.append(ch, style=style)
        lines.append(line)
    axis = Text(" " * Y_LABEL_WIDTH + "└" + "─" * plot_w, style="dim", no_wrap=True)
    lines.append(axis)
    left = "0"
    right = i18n.format_number(x_max / 1.05, lang, digits=6)
    xlabel = i18n.t("tui.chart.x", lang, unit=u)
    gap = max(1, plot_w - len(left) - len(right) - len(xlabel))
    foot = Text(" " * (Y_LABEL_WIDTH + 1) + left + " " * (gap // 2) + xlabel
                + " " * (gap - gap // 2) + right, style="dim", no_wrap=True)
    lines.append(foot)
    return Text("\n").join(lines)


class ErrorChart(Widget):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.rows: list[dict[str, Any]] = []
        self.unit = ""

    def show(self, rows: Sequence[dict[str, Any]], unit: str = "") -> None:
        rows = list(rows)
        if rows != self.rows or unit != self.unit:
            self.rows, self.unit = rows, unit
            self.refresh()

    def retranslate(self) -> None:
        self.refresh()

    def render(self) -> Text:
        return draw(self.rows, self.size.width, self.size.height, lang_of(self), self.unit)

"""Error against load, pressure or flow, with U bars and the MPE envelope.

One model (:func:`chart_model`), two renderers: inline SVG for the HTML certificate (one
self-contained file any browser prints) and vector drawing in the PDF (:mod:`.pdf`), so the
two certificates plot the same points. The model works in data units and hands the renderers
positions normalised to 0…1, so no renderer does its own scaling.

Generic over the procedures through the JSON contract of the points: the x axis is ``flow``
for a fuel dispenser and ``nominal`` (load, pressure) otherwise; points that are not a function
of x (eccentricity positions, repeatability, a price check) stay out of the chart.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from typing import Any

#: Tests that do not belong on an error-against-x chart: the same load at several positions,
#: a spread statistic, a summary of points already plotted (a dispenser's per-rate mean), or
#: an error in another quantity.
EXCLUDED_TESTS = frozenset({"eccentricity", "repeatability", "zero", "price", "hysteresis",
                            "discrimination", "tare", "rate"})

X_QUANTITY: dict[str, dict[str, str]] = {
    "balance": {"vi": "Tải", "en": "Load"},
    "pressure_gauge": {"vi": "Áp suất", "en": "Pressure"},
    "fuel_dispenser": {"vi": "Lưu lượng", "en": "Flow rate"},
    "": {"vi": "Giá trị danh định", "en": "Nominal value"},
}
ERROR_WORD = {"vi": "Sai số", "en": "Error"}
GROUP_TEXT = {"up": {"vi": "tăng", "en": "up"}, "down": {"vi": "giảm", "en": "down"},
              "": {"vi": "kết quả", "en": "result"}}
#: The word before a numbered series in the legend ("series 2", a dispenser's "delivery 2").
SERIES_WORD = {"fuel_dispenser": {"vi": "lần", "en": "delivery"},
               "": {"vi": "loạt", "en": "series"}}
COLOURS = ("#1f5fa8", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")
ENVELOPE_COLOUR = "#c0392b"


@dataclass(frozen=True)
class ChartPoint:
    x: float
    error: float
    U: float | None
    group: str
    #: Index among the points drawn at the same x, and how many there are: renderers shift
    #: them apart a little so an up and a down point at one load are both visible.
    slot: int = 0
    slots: int = 1


@dataclass(frozen=True)
class Chart:
    points: list[ChartPoint]
    #: (x, MPE) for each x where the points state an MPE, ascending x.
    envelope: list[tuple[float, float]]
    x_label: str
    y_label: str
    x_max: float
    y_max: float
    x_ticks: list[float]
    y_ticks: list[float]
    groups: list[tuple[str, str, str]] = field(default_factory=list)
    """(group key, legend text, colour), in the order the groups first appear."""
    #: Where one x has several MPEs (a dispenser's 2 L and 20 L deliveries at one flow), the
    #: limit is not a function of x: each distinct MPE is drawn as its own level instead of a
    #: staircase (empty: draw the staircase).
    levels: list[float] = field(default_factory=list)

    def u(self, x: float) -> float:
        """x as a fraction of the plot width."""
        return x / self.x_max

    def v(self, y: float) -> float:
        """y as a fraction of the plot height, 0 at the bottom."""
        return (y + self.y_max) / (2 * self.y_max)

    def colour(self, group: str) -> str:
        for key, _, colour in self.groups:
            if key == group:
                return colour
        return COLOURS[0]

    def envelope_steps(self) -> list[tuple[float, float]]:
        """The upper MPE limit as a staircase from zero: the MPE stated at a point holds from
        the previous point (exclusive) up to it, as R76's steps do between the loads the
        procedure puts on each step boundary. Drawn only from the MPEs at the test points."""
        out: list[tuple[float, float]] = []
        prev_x = 0.0
        for x, m in self.envelope:
            out.append((prev_x, m))
            out.append((x, m))
            prev_x = x
        return out


def nice_step(span: float, target: int = 4) -> float:
    """A 1, 2 or 5 × 10^n step that cuts ``span`` into about ``target`` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    exp = math.floor(math.log10(raw))
    base = raw / 10**exp
    mult = 1.0 if base <= 1 else 2.0 if base <= 2 else 5.0 if base <= 5 else 10.0
    return mult * 10**exp


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _group_of(p: dict[str, Any]) -> str:
    parts = [str(p[k]) for k in ("series", "direction") if p.get(k) not in (None, "")]
    return ".".join(parts)


def chart_model(doc: dict[str, Any], lang: str = "vi") -> Chart | None:
    """The chart of a run document, or None when no point plots (e.g. only eccentricity)."""
    kind = str(doc.get("dut", {}).get("kind") or "")
    by_flow = kind == "fuel_dispenser"
    dut_unit = str(doc.get("dut", {}).get("unit") or "")
    candidates = []
    for p in doc.get("points", []):
        if p.get("test") in EXCLUDED_TESTS:
            continue
        x = _num(p.get("flow") if by_flow else p.get("nominal"))
        e = _num(p.get("error"))
        if x is None or e is None:
            continue
        candidates.append((x, e, p))
    if not candidates:
        return None
    # One error unit per chart: the commonest (a dispenser's % errors, a gauge's kPa).
    units = Counter(str(p.get("error_unit") or dut_unit) for _, _, p in candidates)
    error_unit = units.most_common(1)[0][0]
    chosen = [(x, e, p) for x, e, p in candidates
              if str(p.get("error_unit") or dut_unit) == error_unit]

    # Where the procedure states U (calibration, or an evaluated point), plot those results
    # with their U bars, not the raw series behind them (a gauge's per-series readings).
    if any(_num(p.get("U")) for _, _, p in chosen):
        chosen = [(x, e, p) for x, e, p in chosen if _num(p.get("U"))]

    groups: list[str] = []
    for _, _, p in chosen:
        g = _group_of(p)
        if g not in groups:
            groups.append(g)
    at_x: Counter[float] = Counter(x for x, _, _ in chosen)
    seen: Counter[float] = Counter()
    points = []
    for x, e, p in chosen:
        u = _num(p.get("U"))
        points.append(ChartPoint(x, e, abs(u) if u else None, _group_of(p), seen[x], at_x[x]))
        seen[x] += 1

    mpes: dict[float, set[float]] = {}
    for x, _, p in chosen:
        m = _num(p.get("mpe"))
        if m is not None and m > 0:
            mpes.setdefault(x, set()).add(abs(m))
    envelope = sorted((x, max(ms)) for x, ms in mpes.items())
    levels = sorted({m for ms in mpes.values() for m in ms}) if any(
        len(ms) > 1 for ms in mpes.values()) else []

    x_top = max(x for x, _, _ in chosen)
    x_top = x_top if x_top > 0 else 1.0
    x_step = nice_step(x_top)
    n_x = math.floor(x_top * 1.05 / x_step + 1e-9)
    x_max = max(x_top * 1.05, n_x * x_step)
    y_abs = max([abs(pt.error) + (pt.U or 0.0) for pt in points] + [m for _, m in envelope]
                + [1e-12])
    y_step = nice_step(y_abs, 2)
    y_max = math.ceil(y_abs * 1.1 / y_step) * y_step
    n_y = round(y_max / y_step)
    x_ticks = [round(i * x_step, 12) for i in range(n_x + 1)]
    y_ticks = [round(i * y_step, 12) for i in range(-n_y, n_y + 1)]

    quantity = X_QUANTITY.get(kind, X_QUANTITY[""])[lang]
    x_unit = "L/min" if by_flow else dut_unit
    series_word = SERIES_WORD.get(kind, SERIES_WORD[""])[lang]
    legend = []
    for i, g in enumerate(groups):
        words = []
        for part in g.split("."):
            if part in GROUP_TEXT:
                words.append(GROUP_TEXT[part][lang])
            elif part.isdigit():
                words.append(f"{series_word} {part}")
            elif part:
                words.append(part)
        legend.append((g, " · ".join(words) or GROUP_TEXT[""][lang], COLOURS[i % len(COLOURS)]))
    return Chart(points=points, envelope=envelope, levels=levels,
                 x_label=f"{quantity} ({x_unit})" if x_unit else quantity,
                 y_label=f"{ERROR_WORD[lang]} ({error_unit})" if error_unit else ERROR_WORD[lang],
                 x_max=x_max, y_max=y_max, x_ticks=x_ticks, y_ticks=y_ticks, groups=legend)


def tick_text(v: float) -> str:
    return f"{v:.6g}"


def error_chart_svg(chart: Chart | None, *, width: int = 640, height: int = 300) -> str:
    """The chart as an inline SVG element ("" when there is nothing to plot). Every text is
    escaped: the unit in a label comes from the DUT file."""
    if chart is None:
        return ""
    left, right, top, bottom = 70, 20, 28, 45
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float, slot: int = 0, slots: int = 1) -> float:
        return left + pw * chart.u(x) + (slot - (slots - 1) / 2) * 5

    def sy(y: float) -> float:
        return top + ph * (1 - chart.v(y))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(chart.y_label)}">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
             'stroke="#999"/>',
             f'<line x1="{left}" y1="{sy(0):.1f}" x2="{width - right}" y2="{sy(0):.1f}" '
             'stroke="#bbb" stroke-dasharray="4 3"/>']
    if chart.levels:
        for m in chart.levels:
            for sign in (1, -1):
                parts.append(f'<line x1="{left}" y1="{sy(sign * m):.1f}" x2="{width - right}" '
                             f'y2="{sy(sign * m):.1f}" stroke="{ENVELOPE_COLOUR}" '
                             'stroke-width="1.2" stroke-dasharray="6 3"/>')
            parts.append(f'<text x="{width - right - 3}" y="{sy(m) - 3:.1f}" font-size="10" '
                         f'text-anchor="end" fill="{ENVELOPE_COLOUR}">±{escape(tick_text(m))}'
                         '</text>')
    elif chart.envelope:
        steps = chart.envelope_steps()
        for sign in (1, -1):
            pts = " ".join(f"{sx(x):.1f},{sy(sign * m):.1f}" for x, m in steps)
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{ENVELOPE_COLOUR}" '
                         'stroke-width="1.5"/>')
    for pt in chart.points:
        x, colour = sx(pt.x, pt.slot, pt.slots), chart.colour(pt.group)
        if pt.U:
            parts.append(f'<line x1="{x:.1f}" y1="{sy(pt.error - pt.U):.1f}" x2="{x:.1f}" '
                         f'y2="{sy(pt.error + pt.U):.1f}" stroke="{colour}"/>')
            for y in (pt.error - pt.U, pt.error + pt.U):
                parts.append(f'<line x1="{x - 3:.1f}" y1="{sy(y):.1f}" x2="{x + 3:.1f}" '
                             f'y2="{sy(y):.1f}" stroke="{colour}"/>')
        parts.append(f'<circle cx="{x:.1f}" cy="{sy(pt.error):.1f}" r="3.5" fill="{colour}"/>')
    for t in chart.x_ticks:
        parts.append(f'<text x="{sx(t):.1f}" y="{height - bottom + 16}" font-size="11" '
                     f'text-anchor="middle">{escape(tick_text(t))}</text>')
    for t in chart.y_ticks:
        parts.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{escape(tick_text(t))}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 6}" font-size="12" '
                 f'text-anchor="middle">{escape(chart.x_label)}</text>')
    parts.append(f'<text x="14" y="{top + ph / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + ph / 2})">{escape(chart.y_label)}</text>')
    lx = left + 4
    for _, text, colour in chart.groups:
        parts.append(f'<circle cx="{lx + 4}" cy="{top - 12}" r="3.5" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 11}" y="{top - 8}" font-size="11">{escape(text)}</text>')
        lx += 20 + 7 * len(text)
    if chart.envelope:
        parts.append(f'<line x1="{lx}" y1="{top - 12}" x2="{lx + 16}" y2="{top - 12}" '
                     f'stroke="{ENVELOPE_COLOUR}" stroke-width="1.5"/>')
        parts.append(f'<text x="{lx + 20}" y="{top - 8}" font-size="11">MPE</text>')
    parts.append("</svg>")
    return "\n".join(parts)

"""Error against load (or pressure, or flow) with U bars and the MPE envelope, as inline SVG.

Plain SVG so the certificate stays one self-contained file that any browser prints.
"""

from __future__ import annotations

from html import escape
from typing import Any


def error_chart_svg(rows: list[dict[str, Any]], *, x_label: str, y_label: str,
                    width: int = 640, height: int = 280) -> str:
    pts = [r for r in rows if isinstance(r.get("error"), int | float)
           and isinstance(r.get("nominal"), int | float) and r.get("test") == "weighing"]
    if not pts:
        return ""
    left, right, top, bottom = 70, 20, 20, 45
    xs = [float(r["nominal"]) for r in pts]
    x_max = max(xs) or 1.0
    envelope = sorted({(float(r["nominal"]), float(r["mpe"])) for r in pts if r.get("mpe")})
    y_abs = max([abs(float(r["error"])) + float(r.get("U") or 0) for r in pts]
                + [m for _, m in envelope] + [1e-12])
    y_max = y_abs * 1.15

    def sx(x: float) -> float:
        return left + (width - left - right) * x / x_max

    def sy(y: float) -> float:
        return top + (height - top - bottom) * (1 - (y + y_max) / (2 * y_max))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(y_label)}">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" '
             f'height="{height - top - bottom}" fill="none" stroke="#999"/>',
             f'<line x1="{left}" y1="{sy(0):.1f}" x2="{width - right}" y2="{sy(0):.1f}" '
             'stroke="#bbb" stroke-dasharray="4 3"/>']
    if envelope:
        # MPE steps: a staircase through each load's limit, from zero load.
        upper, lower = [f"{sx(0):.1f},{sy(envelope[0][1]):.1f}"], [
            f"{sx(0):.1f},{sy(-envelope[0][1]):.1f}"]
        for x, m in envelope:
            upper.append(f"{sx(x):.1f},{sy(m):.1f}")
            lower.append(f"{sx(x):.1f},{sy(-m):.1f}")
        for line in (upper, lower):
            parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#c0392b" '
                         'stroke-width="1.5"/>')
    for r in pts:
        x, e, u = sx(float(r["nominal"])), float(r["error"]), float(r.get("U") or 0)
        colour = "#1f5fa8" if r.get("direction") != "down" else "#2e8b57"
        if u:
            parts.append(f'<line x1="{x:.1f}" y1="{sy(e - u):.1f}" x2="{x:.1f}" '
                         f'y2="{sy(e + u):.1f}" stroke="{colour}"/>')
        parts.append(f'<circle cx="{x:.1f}" cy="{sy(e):.1f}" r="3.5" fill="{colour}"/>')
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = x_max * frac
        parts.append(f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" font-size="11" '
                     f'text-anchor="middle">{x:g}</text>')
    for frac in (-1, 0, 1):
        y = y_abs * frac
        parts.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{y:.3g}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 6}" font-size="12" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{(top + height - bottom) / 2}" font-size="12" '
                 f'text-anchor="middle" transform="rotate(-90 14 '
                 f'{(top + height - bottom) / 2})">{escape(y_label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)

"""The last minute of one instrument as a sparkline: one time bucket per character cell.

Drawn as text (block characters, two rows: sixteen levels) inside the instrument's panel:
sixteen instruments redrawn five times a second cost one text render each, instead of a
Sparkline widget each with its reactive data and its own repaint.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from ..live import WINDOW_S, buckets

BARS = " ▁▂▃▄▅▆▇█"
LEVELS = 2 * (len(BARS) - 1)


def sparkline_rows(values: Sequence[float], width: int, height: int = 2) -> list[str]:
    """``values`` (one per cell, oldest first) as ``height`` rows of ``width`` cells, scaled
    between their minimum and maximum; a flat line sits on the floor. Right-aligned: the
    newest value is always in the last cell, so a new instrument's line grows from the
    right as time passes."""
    steps = len(BARS) - 1
    levels_total = steps * height
    cells = list(values)[-width:]
    if not cells:
        return [" " * width for _ in range(height)]
    lo, hi = min(cells), max(cells)
    span = hi - lo
    levels = [1 if span <= 0 else 1 + round((v - lo) / span * (levels_total - 1))
              for v in cells]
    rows = []
    for r in range(height - 1, -1, -1):  # top row first
        base = r * steps
        rows.append("".join(BARS[max(0, min(steps, lv - base))] for lv in levels)
                    .rjust(width))
    return rows


def sparkline_text(history: Sequence[tuple[float, float]], now: float, width: int,
                   *, window: float = WINDOW_S, height: int = 2, style: str = "dodger_blue1"
                   ) -> list[Text]:
    """The sparkline of ``history`` over the last ``window`` seconds, as styled rows."""
    rows = sparkline_rows(buckets(history, now, window, width), width, height)
    return [Text(row, style=style, no_wrap=True) for row in rows]

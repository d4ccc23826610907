"""Progress of a long run on the terminal: step, point, elapsed, and what it waits for."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class ProgressPrinter:
    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.step = ""
        self.point = ""
        self._width = 0

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        t = event.get("elapsed_s", 0.0)
        stamp = f"[{int(t) // 60:02d}:{t % 60:04.1f}]"
        if kind == "step":
            self.step = f"step {event['step']}: {event['title']}"
            self._line(f"{stamp} {self.step}", final=True)
        elif kind == "waiting":
            self._line(f"{stamp} {self.step} · {event.get('key', '')} · waiting for "
                       f"{event.get('for')}")
        elif kind == "point":
            data = event.get("data", {})
            value = data.get("indicated")
            unit = data.get("unit", "")
            shown = f" = {value:g} {unit}" if isinstance(value, int | float) else ""
            self._line(f"{stamp} point {event['seq']} {event['key']}{shown}", final=True)
        elif kind == "retry":
            self._line(f"{stamp} retry {event['attempt']} on {event['instrument']}: "
                       f"{event['error']}", final=True)
        elif kind in ("paused", "warning"):
            self._line(f"{stamp} {kind.upper()}: {event.get('reason') or event.get('message')}",
                       final=True)
        elif kind == "state":
            extra = f" ({event['reason']})" if event.get("reason") else ""
            if event.get("resumed_points"):
                extra += f", resumed after {event['resumed_points']} points already taken"
            self._line(f"{stamp} run {event.get('run_id')} {event['state']}{extra}", final=True)

    def _line(self, text: str, final: bool = False) -> None:
        if self.live:
            pad = " " * max(0, self._width - len(text))
            self.stream.write("\r" + text + pad + ("\n" if final else ""))
            self._width = 0 if final else len(text)
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()

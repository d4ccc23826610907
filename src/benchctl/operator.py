"""What a procedure (or a manual instrument) may ask the technician, and what comes back.

The request types are shared by every operator channel (TUI, terminal, stdio-json, answers
file, simulated operator) and by the manual driver, so they live below the engine.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Literal

RequestKind = Literal["instruction", "confirm", "number", "choice"]


@dataclass(frozen=True)
class OperatorRequest:
    kind: RequestKind
    key: str
    """The stable point key the request belongs to (e.g. ``weighing.up.2000g``)."""
    text: str
    """Localised text shown to the technician."""
    action: dict[str, Any] | None = None
    """Machine-readable action (stdio-json contract), e.g. ``{"type": "place_load", ...}``."""
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    resolution: float | None = None
    options: tuple[str, ...] = ()

    def to_json(self, request_id: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "request",
            "id": request_id,
            "kind": self.kind,
            "key": self.key,
            "text": self.text,
        }
        if self.action is not None:
            out["action"] = self.action
        if self.unit is not None:
            out["unit"] = self.unit
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.resolution is not None:
            out["resolution"] = self.resolution
        if self.options:
            out["options"] = list(self.options)
        return out


@dataclass(frozen=True)
class OperatorAnswer:
    ok: bool = True
    value: float | str | None = None
    unit: str | None = None
    abort: bool = False
    raw: bytes = field(default=b"", repr=False)
    """The answer as received (a typed line, a JSON line), kept with manual readings."""


class OperatorPort(abc.ABC):
    """Blocking access to the operator, for code that runs in an instrument worker thread."""

    @abc.abstractmethod
    def ask(self, request: OperatorRequest) -> OperatorAnswer: ...

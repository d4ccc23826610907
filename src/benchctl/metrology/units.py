"""Units through pint: one registry per process, created on first use (METROLOGY.md §2.3).

Why pint and not hand-rolled factors: the factors (kgf/cm² = 98.0665 kPa, psi, mmHg, mmH2O,
inHg) are defined once, in pint's definitions file, from the defining constants (g_n, the
conventional densities of water and mercury, the inch, the pound), and the same registry
checks that a conversion is between quantities of the same kind.

The registry is created lazily (building it takes ~0.4 s) and guarded by a lock, because
instrument worker threads may ask for it concurrently. Spellings used on Vietnamese gauges and
in bench files are accepted: "kgf/cm²", "kgf/cm2", "kgf/cm**2", "mmH2O", "mmHg", "inHg",
"psi", "bar", "mbar", "kPa", "MPa", "hPa", "at", "atm", "g", "mg", "kg", "L", "mL", "L/min",
"°C", "degC", "℃".
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, Final

from benchctl.errors import BenchctlError

if TYPE_CHECKING:
    import pint

__all__ = ["UnitError", "convert", "normalize_unit_text", "registry"]


class UnitError(BenchctlError):
    """A unit string that pint cannot parse, or a conversion between different quantities."""


_LOCK: Final = threading.Lock()
_REGISTRY: pint.UnitRegistry[Any] | None = None

# "cm2" -> "cm**2", "m3/h" -> "m**3/h"; "H2O" is left alone (the digit is followed by a letter).
_BARE_EXPONENT: Final = re.compile(r"(?<=[A-Za-z])([23])(?![0-9A-Za-z_])")
_REPLACEMENTS: Final = (
    ("℃", "degC"),  # U+2103 DEGREE CELSIUS, one character
    ("ºC", "degC"),  # masculine ordinal ("º") typed for a degree sign
)


def normalize_unit_text(text: str) -> str:
    """Rewrite the spellings pint does not know into ones it does ("kgf/cm2" -> "kgf/cm**2").

    Used as a pint preprocessor, so it applies to every string the registry parses.
    """
    out = text.strip()
    for old, new in _REPLACEMENTS:
        out = out.replace(old, new)
    return _BARE_EXPONENT.sub(r"**\1", out)


def registry() -> pint.UnitRegistry[Any]:
    """The process's pint UnitRegistry, created on the first call (thread-safe)."""
    global _REGISTRY
    reg = _REGISTRY
    if reg is None:
        with _LOCK:
            if _REGISTRY is None:
                import pint

                _REGISTRY = pint.UnitRegistry(preprocessors=[normalize_unit_text])
            reg = _REGISTRY
    return reg


def _parse(text: str) -> Any:
    if not isinstance(text, str) or not text.strip():
        raise UnitError(f"empty or missing unit: {text!r}")
    try:
        return registry().parse_units(text)
    except Exception as exc:  # pint raises several unrelated types for bad input
        raise UnitError(
            f"unknown unit {text!r}: pint cannot parse it ({type(exc).__name__}: {exc})",
            detail=str(exc),
        ) from exc


def convert(value: float, from_unit: str, to_unit: str, *, significant: int | None = 15) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``, e.g. convert(1, "kgf/cm²", "kPa")
    = 98.0665.

    Offset units (°C) are handled as absolute temperatures. The result is rounded to
    ``significant`` significant digits (default 15, None to keep the raw float) to drop the
    binary noise of the factor chain (1 L -> 1000.0000000000001 mL), far below any
    instrument's resolution. An unknown unit or a conversion between different kinds of
    quantity raises :class:`UnitError`.
    """
    src = _parse(from_unit)
    dst = _parse(to_unit)
    try:
        out = float(registry().Quantity(float(value), src).to(dst).magnitude)
    except Exception as exc:  # DimensionalityError, OffsetUnitCalculusError, ...
        raise UnitError(
            f"cannot convert {from_unit!r} to {to_unit!r}: {exc}", detail=str(exc)
        ) from exc
    if significant is not None:
        out = float(f"{out:.{significant}g}")
    return out

"""Whether a reference standard may be used for a run: in date, and inside what it was
calibrated for (ISO/IEC 17025 6.4 and 6.5: equipment used only when its calibration status is
known and fit for the measurement).

Pure: values in, problems out, so the rules are tested without a database. The runner asks
:func:`check_reference` for every reference a procedure uses; an unfit reference stops the run
before it starts, unless the technician gives a reason to override, which the run keeps with
that reference and prints on the certificate.

The range a reference is used over comes from the procedure: a procedure module may define
``reference_range(dut, params) -> {slot: (low, high, unit)}`` (e.g. the balance procedure: from
zero to its largest test load, in the DUT's unit). The range a certificate covers is, in this
order: the certificate's own ``range`` (``data["range"] = [low, high]``, in
``data["range_unit"]`` or the asset's unit), the total of a weight set's weights (in g), the
asset's range in the register. A reference with no known range cannot be shown fit for one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from benchctl.errors import BenchctlError

__all__ = [
    "FitnessError",
    "UseRange",
    "assess_reference",
    "certificate_range",
    "check_reference",
    "due_problem",
    "range_problem",
]

#: Relative slack when comparing ranges, so a load equal to the limit after a unit
#: conversion (1 kg vs 1000 g) is inside.
_REL_TOLERANCE = 1e-9


class FitnessError(BenchctlError):
    """A reference standard is unfit for the run: past due or used outside its range."""

    def __init__(self, asset_id: str, certificate: str, problems: list[str],
                 reasons: list[Problem] | None = None, *, context: str = "",
                 detail: str | None = None) -> None:
        self.asset_id = asset_id
        self.certificate = certificate
        self.problems = list(problems)
        self.reasons = list(reasons or [])
        super().__init__(
            f"{context}reference {asset_id} (certificate {certificate}) "
            f"{'; '.join(self.problems)}",
            detail=detail or "use another reference, or give --override-reason TEXT to use it "
                             "anyway (the reason is recorded with the run and printed on the "
                             "certificate)",
        )

    def message_in(self, lang: str) -> str:
        """The refusal in ``lang`` (what the TUI shows; the run records the English one)."""
        from benchctl import i18n

        if not self.reasons:
            return str(self)
        return i18n.t("fitness.refused", lang, asset=self.asset_id, certificate=self.certificate,
                      problems="; ".join(r.text(lang) for r in self.reasons))

    @property
    def summary(self) -> str:
        """The problems as one line (what the run records next to the override reason)."""
        return "; ".join(self.problems)


@dataclass(frozen=True)
class UseRange:
    """A closed interval of a quantity, ``low`` ≤ x ≤ ``high``, in ``unit`` (a pint unit)."""

    low: float
    high: float
    unit: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise BenchctlError(f"range [{self.low:g}, {self.high:g}] {self.unit}: expected "
                                "finite numbers with low ≤ high")

    def text(self) -> str:
        return f"{self.low:g} … {self.high:g} {self.unit}".rstrip()

    def to(self, unit: str) -> UseRange:
        """The same range in ``unit`` (raises :class:`~benchctl.metrology.units.UnitError`
        between different kinds of quantity)."""
        if unit == self.unit:
            return self
        from benchctl.metrology.units import convert

        return UseRange(convert(self.low, self.unit, unit), convert(self.high, self.unit, unit),
                        unit)


@dataclass(frozen=True)
class Problem:
    """Why a reference may not be used, as a message of the catalogue (``benchctl.i18n``):
    the run records the English text; the TUI shows it in the technician's language."""

    message_id: str
    params: tuple[tuple[str, str], ...] = ()

    def text(self, lang: str = "en") -> str:
        from benchctl import i18n

        return i18n.t(self.message_id, lang, **dict(self.params))


def due_reason(due_on: dt.date, on: dt.date) -> Problem | None:
    """Why a certificate due on ``due_on`` may not be used on ``on`` (None: it may; the due
    date itself is the last day of use)."""
    if on <= due_on:
        return None
    days = (on - due_on).days
    return Problem("fitness.past_due" if days != 1 else "fitness.past_due_1",
                   (("due", due_on.isoformat()), ("days", str(days)), ("on", on.isoformat())))


def due_problem(due_on: dt.date, on: dt.date) -> str | None:
    reason = due_reason(due_on, on)
    return reason.text() if reason else None


def range_reason(needed: UseRange, covered: UseRange | None) -> Problem | None:
    """Why a reference calibrated over ``covered`` may not be used over ``needed``."""
    if covered is None:
        return Problem("fitness.range_unstated", (("needed", needed.text()),))
    from benchctl.metrology.units import UnitError

    try:
        have = covered.to(needed.unit)
    except UnitError as exc:
        return Problem("fitness.range_incomparable", (
            ("needed", needed.text()), ("covered", covered.text()), ("why", str(exc))))
    slack = _REL_TOLERANCE * max(abs(have.low), abs(have.high), abs(needed.high), 1e-300)
    if needed.low < have.low - slack or needed.high > have.high + slack:
        return Problem("fitness.range_outside", (
            ("needed", needed.text()), ("covered", covered.text())))
    return None


def range_problem(needed: UseRange, covered: UseRange | None) -> str | None:
    reason = range_reason(needed, covered)
    return reason.text() if reason else None


def assess_reasons(*, due_on: dt.date, on: dt.date, needed: UseRange | None = None,
                   covered: UseRange | None = None) -> list[Problem]:
    """Every problem of one reference (empty when fit)."""
    reasons = [due_reason(due_on, on)]
    if needed is not None:
        reasons.append(range_reason(needed, covered))
    return [r for r in reasons if r is not None]


def assess_reference(*, due_on: dt.date, on: dt.date, needed: UseRange | None = None,
                     covered: UseRange | None = None) -> list[str]:
    """Every problem of one reference, in English (empty when fit)."""
    return [r.text() for r in assess_reasons(due_on=due_on, on=on, needed=needed,
                                             covered=covered)]


def check_reference(*, asset_id: str, certificate: str, due_on: dt.date, on: dt.date,
                    needed: UseRange | None = None, covered: UseRange | None = None) -> None:
    """Raise :class:`FitnessError` naming the asset, the certificate and the date or range
    when the reference may not be used on ``on`` over ``needed``."""
    reasons = assess_reasons(due_on=due_on, on=on, needed=needed, covered=covered)
    if reasons:
        raise FitnessError(asset_id, certificate, [r.text() for r in reasons], reasons)


def certificate_range(*, data: Mapping[str, Any] | None, weights_nominal_g: Iterable[float],
                      asset_range: tuple[float | None, float | None],
                      asset_unit: str | None) -> UseRange | None:
    """The range a reference's certificate covers (see the module docstring for the order)."""
    data = data or {}
    stated = data.get("range")
    if stated is not None:
        if not (isinstance(stated, list | tuple) and len(stated) == 2):
            raise BenchctlError(f"certificate range {stated!r}: expected [low, high]")
        unit = str(data.get("range_unit") or asset_unit or "")
        return UseRange(float(stated[0]), float(stated[1]), unit)
    total = math.fsum(weights_nominal_g)
    if total > 0:
        return UseRange(0.0, total, "g")
    low, high = asset_range
    if high is not None:
        return UseRange(0.0 if low is None else float(low), float(high), asset_unit or "")
    return None


def range_of(cert: Any) -> UseRange | None:
    """:func:`certificate_range` of a register certificate (its weights and asset loaded)."""
    asset = cert.asset
    return certificate_range(
        data=cert.data, weights_nominal_g=[w.nominal_g for w in cert.weights],
        asset_range=(asset.range_min, asset.range_max), asset_unit=asset.unit)


def needed_ranges(module: Any, dut: Any, params: Mapping[str, Any]) -> dict[str, UseRange]:
    """The procedure's ``reference_range(dut, params)`` as UseRanges ({} when it has none)."""
    fn = getattr(module, "reference_range", None)
    if fn is None:
        return {}
    out: dict[str, UseRange] = {}
    for slot, value in dict(fn(dut, dict(params))).items():
        try:
            low, high, unit = value
            out[str(slot)] = UseRange(float(low), float(high), str(unit))
        except (TypeError, ValueError) as exc:
            raise BenchctlError(
                f"procedure {getattr(module, 'ID', module)}: reference_range gave {value!r} "
                f"for {slot!r}; expected (low, high, unit)") from exc
    return out

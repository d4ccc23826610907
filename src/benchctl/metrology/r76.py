"""OIML R76-1:2006 non-automatic weighing instruments: accuracy classes and MPE.

Sources (METROLOGY.md §1.1 and §1.2, both [src]):

- R76-1:2006 Table 3: the accuracy classes, the range of the verification scale interval e,
  the number of verification scale intervals n = Max/e and the minimum capacity Min;
- R76-1:2006 §3.4 (summarised in METROLOGY.md §1.1): e and d are 1, 2 or 5 x 10^k; normally
  d = e; with an auxiliary indicating device (classes I and II only) d < e <= 10 d;
- R76-1:2006 Table 6: maximum permissible errors on initial verification; in service the
  MPE is twice these values.

Pure functions, no I/O, and no heavy imports (the command line lazy-loads metrology).

Units: Table 6 is written in multiples of e, so :func:`mpe` works in any mass unit as long as
``load`` and ``e`` share it. Table 3 is not scale-free: the class-II and class-III rows are
split at absolute values of e (100 mg, 2 g, 5 g), so :func:`check_balance` and
:func:`min_capacity` need to know the unit of ``e`` (argument ``unit``, "mg", "g" or "kg",
default "g") and convert to grams internally for those range checks only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from benchctl.errors import DutParameterError

__all__ = [
    "IN_SERVICE_FACTOR",
    "MASS_UNITS_IN_G",
    "REL_TOL",
    "TABLE_3",
    "TABLE_6",
    "AccuracyClass",
    "Table3Row",
    "Table6Steps",
    "check_balance",
    "is_125",
    "min_capacity",
    "mpe",
    "mpe_step_loads",
    "parse_class",
]

#: Relative tolerance used when comparing a float against a rule boundary (load/e against a
#: Table 6 bound, n against a Table 3 limit, a value against 1/2/5 x 10^k). Loads built by
#: adding weights or scaling by e (e.g. 5000 * 0.1) carry binary noise of a few 1e-16.
REL_TOL: Final = 1e-9

#: Mass units accepted by :func:`check_balance` and :func:`min_capacity`, in grams.
MASS_UNITS_IN_G: Final[dict[str, float]] = {"mg": 1e-3, "g": 1.0, "kg": 1e3}


class AccuracyClass(StrEnum):
    """R76-1:2006 §3.1 accuracy classes: special (I), high (II), medium (III), ordinary (IIII)."""

    I = "I"  # noqa: E741 - the name is the class's official symbol
    II = "II"
    III = "III"
    IIII = "IIII"


_UNICODE_ROMAN: Final[dict[str, str]] = {
    "\u2160": "I",  # Ⅰ
    "\u2161": "II",  # Ⅱ
    "\u2162": "III",  # Ⅲ
    "\u2163": "IV",  # Ⅳ (some labels print class IIII as IV; not accepted, see parse_class)
    "\u2170": "I",  # ⅰ
    "\u2171": "II",  # ⅱ
    "\u2172": "III",  # ⅲ
}


def parse_class(text: str | AccuracyClass) -> AccuracyClass:
    """Parse an R76 accuracy class written as on the data plate: "I", "II", "III", "IIII".

    Case-insensitive ("ii" is class II), surrounding spaces ignored, and the Unicode Roman
    numerals Ⅰ Ⅱ Ⅲ (U+2160..) accepted because some labels and PDFs use them. "IV" is refused
    on purpose: R76-1 §3.1 writes the ordinary class as IIII, and IV on a plate is more often a
    typo than a class.
    """
    if isinstance(text, AccuracyClass):
        return text
    raw = str(text).strip()
    norm = "".join(_UNICODE_ROMAN.get(ch, ch) for ch in raw).upper()
    try:
        return AccuracyClass(norm)
    except ValueError:
        raise DutParameterError(
            f"unknown accuracy class {text!r}: expected I, II, III or IIII (OIML R76-1 §3.1)"
        ) from None


def _cls(accuracy_class: str | AccuracyClass) -> AccuracyClass:
    return parse_class(accuracy_class)


def _unit_factor(unit: str) -> float:
    try:
        return MASS_UNITS_IN_G[unit]
    except KeyError:
        raise DutParameterError(
            f"unknown mass unit {unit!r} for the R76 class checks: expected mg, g or kg"
        ) from None


def _fmt(x: float) -> str:
    """Format a number for a message: integers grouped by thin spaces (5 000), else %g."""
    if math.isfinite(x) and abs(x) >= 1000 and math.isclose(x, round(x), rel_tol=REL_TOL):
        return f"{round(x):,}".replace(",", " ")
    return f"{x:g}"


def _fmt_mass_g(x_g: float) -> str:
    """Format a mass given in grams as a reader would write it in Table 3 (mg below 1 g)."""
    if x_g < 1.0:
        return f"{_fmt(x_g * 1e3)} mg"
    return f"{_fmt(x_g)} g"


def is_125(x: float) -> bool:
    """True when x = 1, 2 or 5 x 10^k (R76-1 §3.4, METROLOGY.md §1.1), tolerating float noise.

    0.1, 0.0001 and 0.02 qualify although none of them is exact in binary.
    """
    if not (math.isfinite(x) and x > 0):
        return False
    k = math.floor(math.log10(x))
    for kk in (k - 1, k, k + 1):  # log10 of e.g. 1e-3 may land just below -3
        mantissa = x / 10.0**kk
        for m in (1.0, 2.0, 5.0):
            if math.isclose(mantissa, m, rel_tol=REL_TOL):
                return True
    return False


@dataclass(frozen=True)
class Table3Row:
    """One row of R76-1:2006 Table 3 (e limits in grams, inclusive; None = no limit)."""

    accuracy_class: AccuracyClass
    e_min_g: float
    e_max_g: float | None
    n_min: int
    n_max: int | None
    min_in_e: int

    def e_range_text(self) -> str:
        lo = _fmt_mass_g(self.e_min_g)
        if self.e_max_g is None:
            return f"e ≥ {lo}"
        return f"{lo} ≤ e ≤ {_fmt_mass_g(self.e_max_g)}"


#: R76-1:2006 Table 3 (METROLOGY.md §1.1): class, e range (g), n = Max/e min/max, Min in e.
TABLE_3: Final[tuple[Table3Row, ...]] = (
    Table3Row(AccuracyClass.I, 0.001, None, 50_000, None, 100),
    Table3Row(AccuracyClass.II, 0.001, 0.05, 100, 100_000, 20),
    Table3Row(AccuracyClass.II, 0.1, None, 5_000, 100_000, 50),
    Table3Row(AccuracyClass.III, 0.1, 2.0, 100, 10_000, 20),
    Table3Row(AccuracyClass.III, 5.0, None, 500, 10_000, 20),
    Table3Row(AccuracyClass.IIII, 5.0, None, 100, 1_000, 10),
)


def _ge(x: float, bound: float) -> bool:
    return x >= bound * (1.0 - REL_TOL)


def _le(x: float, bound: float) -> bool:
    return x <= bound * (1.0 + REL_TOL)


def _table3_row(e_g: float, cls: AccuracyClass) -> Table3Row:
    """The Table 3 row for a class and an e in grams, or DutParameterError naming the ranges."""
    rows = [r for r in TABLE_3 if r.accuracy_class is cls]
    for row in rows:
        if _ge(e_g, row.e_min_g) and (row.e_max_g is None or _le(e_g, row.e_max_g)):
            return row
    allowed = " or ".join(r.e_range_text() for r in rows)
    raise DutParameterError(
        f"class {cls} with e = {_fmt_mass_g(e_g)}: e must be {allowed} (R76-1 Table 3)"
    )


def _check_positive(name: str, x: float) -> None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DutParameterError(f"{name} must be a positive number, got {x!r}")


def check_balance(
    max_capacity: float,
    e: float,
    d: float,
    accuracy_class: str | AccuracyClass,
    *,
    unit: str = "g",
) -> None:
    """Refuse DUT parameters that an R76 balance cannot have; return None when they are valid.

    ``max_capacity``, ``e`` and ``d`` are in ``unit`` ("mg", "g" or "kg"; default "g").
    Rules, each with its own message (METROLOGY.md §1.1):

    1. Max, e and d are positive.
    2. e and d are 1, 2 or 5 x 10^k (R76-1 §3.4).
    3. d <= e <= 10 d (R76-1 §3.4.2); d < e only with an auxiliary indicating device, which
       R76 allows for classes I and II only (R76-1 §3.4.2). Exception applied from
       R76-1 §3.4.2: a class I instrument with d < 1 mg has e = 1 mg and is not bound by
       e <= 10 d (semi-micro and micro balances, e.g. d = 0.01 mg, e = 1 mg).
    4. e lies in the class's range of Table 3 (checked in grams).
    5. n = Max/e lies between n_min and n_max of that Table 3 row (inclusive).

    Why refuse rather than warn: every MPE, test load and uncertainty downstream is a multiple
    of e; a wrong e silently produces a wrong verdict on a legal certificate.
    """
    cls = _cls(accuracy_class)
    to_g = _unit_factor(unit)
    _check_positive("Max", max_capacity)
    _check_positive("e", e)
    _check_positive("d", d)
    for name, value in (("e", e), ("d", d)):
        if not is_125(value):
            raise DutParameterError(
                f"{name} = {_fmt(value)} {unit} is not 1, 2 or 5 × 10^k "
                "(R76-1 §3.4, METROLOGY.md §1.1)"
            )
    if e < d * (1.0 - REL_TOL):
        raise DutParameterError(
            f"e = {_fmt(e)} {unit} is smaller than d = {_fmt(d)} {unit}: "
            "R76-1 §3.4.2 requires d ≤ e"
        )
    d_less_than_e = not math.isclose(e, d, rel_tol=REL_TOL)
    if d_less_than_e:
        if cls not in (AccuracyClass.I, AccuracyClass.II):
            raise DutParameterError(
                f"class {cls} with d = {_fmt(d)} {unit} < e = {_fmt(e)} {unit}: an auxiliary "
                "indicating device (d < e) is only allowed for classes I and II (R76-1 §3.4.2); "
                "classes III and IIII need d = e"
            )
        micro_exception = (
            cls is AccuracyClass.I
            and d * to_g < 0.001 * (1.0 - REL_TOL)
            and math.isclose(e * to_g, 0.001, rel_tol=REL_TOL)
        )
        if not micro_exception and e > 10.0 * d * (1.0 + REL_TOL):
            raise DutParameterError(
                f"e = {_fmt(e)} {unit} is more than 10 d (d = {_fmt(d)} {unit}): "
                "R76-1 §3.4.2 requires d < e ≤ 10 d"
            )
    row = _table3_row(e * to_g, cls)
    n = max_capacity / e
    if not _ge(n, row.n_min):
        raise DutParameterError(
            f"class {cls} with e = {_fmt(e)} {unit}: n = Max/e = {_fmt(n)} is below the "
            f"minimum {_fmt(row.n_min)} (R76-1 Table 3)"
        )
    if row.n_max is not None and not _le(n, row.n_max):
        raise DutParameterError(
            f"class {cls} with e = {_fmt(e)} {unit}: n = Max/e = {_fmt(n)} is above the "
            f"maximum {_fmt(row.n_max)} (R76-1 Table 3)"
        )


def _clean(x: float) -> float:
    """Remove binary noise from a product of a table factor and e (1.5 * 0.1 -> 0.15).

    The values are legal limits defined to a few significant digits; 12 digits keep every
    meaningful digit and drop the 1e-17 residue that would otherwise break equality tests
    and printing.
    """
    return float(f"{x:.12g}")


def min_capacity(e: float, cls: str | AccuracyClass, *, unit: str = "g") -> float:
    """Minimum capacity Min (R76-1:2006 Table 3, column Min), in the unit of ``e``.

    I: 100 e; II: 20 e for 1 mg <= e <= 50 mg, 50 e for e >= 100 mg; III: 20 e; IIII: 10 e.
    The class-II split is at an absolute e, hence ``unit`` ("mg", "g", "kg"; default "g"):
    e is converted to grams to pick the row. An e outside the class's Table 3 range, or not
    1, 2 or 5 x 10^k, raises DutParameterError.
    """
    klass = _cls(cls)
    to_g = _unit_factor(unit)
    _check_positive("e", e)
    if not is_125(e):
        raise DutParameterError(
            f"e = {_fmt(e)} {unit} is not 1, 2 or 5 × 10^k (R76-1 §3.4, METROLOGY.md §1.1)"
        )
    row = _table3_row(e * to_g, klass)
    return _clean(row.min_in_e * e)


@dataclass(frozen=True)
class Table6Steps:
    """R76-1:2006 Table 6 for one class: the upper bounds (inclusive, in e) of the 0.5 e and
    1 e bands; above the second bound the MPE is 1.5 e."""

    half_e_up_to: int
    one_e_up_to: int


#: R76-1:2006 Table 6 (METROLOGY.md §1.2), initial verification.
TABLE_6: Final[dict[AccuracyClass, Table6Steps]] = {
    AccuracyClass.I: Table6Steps(50_000, 200_000),
    AccuracyClass.II: Table6Steps(5_000, 20_000),
    AccuracyClass.III: Table6Steps(500, 2_000),
    AccuracyClass.IIII: Table6Steps(50, 200),
}

#: In-service MPE is twice the initial-verification MPE (R76-1:2006 §3.5.2).
IN_SERVICE_FACTOR: Final = 2.0


def mpe(
    load: float,
    e: float,
    cls: str | AccuracyClass,
    *,
    in_service: bool = False,
) -> float:
    """Maximum permissible error (a positive number, meaning ±) for a load (R76-1 Table 6).

    ``load`` and ``e`` in the same unit; the result is in that unit. Upper bounds are
    inclusive: for class III, 500 e gives 0.5 e and 2 000 e gives 1 e. Above the last step
    the MPE stays 1.5 e (Table 6 lists 1.5 e up to n_max; loads above Max are not the
    table's business). ``in_service=True`` doubles it (R76-1 §3.5.2). A negative load (a
    net indication below zero) uses |load|. The comparison of load/e with a bound has a
    relative tolerance :data:`REL_TOL`, so a load of 5 000 e summed from weights in g
    counts as 5 000 e even with float noise.
    """
    klass = _cls(cls)
    _check_positive("e", e)
    if not math.isfinite(load):
        raise DutParameterError(f"load must be a finite number, got {load!r}")
    steps = TABLE_6[klass]
    n = abs(load) / e
    if _le(n, steps.half_e_up_to):
        factor = 0.5
    elif _le(n, steps.one_e_up_to):
        factor = 1.0
    else:
        factor = 1.5
    if in_service:
        factor *= IN_SERVICE_FACTOR
    return _clean(factor * e)


def mpe_step_loads(e: float, cls: str | AccuracyClass) -> tuple[float, float]:
    """The two loads where the MPE steps (R76-1 Table 6), in the unit of ``e``.

    Class I: 50 000 e and 200 000 e; II: 5 000 e and 20 000 e; III: 500 e and 2 000 e;
    IIII: 50 e and 200 e. The MPE at each returned load is still the lower band (bounds are
    inclusive). The weighing test should include these loads when they are within Max
    (METROLOGY.md §1.3).
    """
    klass = _cls(cls)
    _check_positive("e", e)
    steps = TABLE_6[klass]
    return (_clean(steps.half_e_up_to * e), _clean(steps.one_e_up_to * e))

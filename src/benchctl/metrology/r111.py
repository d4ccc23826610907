"""OIML R111-1:2004 weights: maximum permissible errors (METROLOGY.md §1.4, [src]).

Why here: the balance budget (METROLOGY.md §1.5) takes the MPE of the test load for the air
buoyancy component u_B = MPE/(4√3), for the default drift D = MPE and, when only the class of
the weights is known, for the reference-mass component MPE/√3. The MPE of a load made of
several weights is the sum of their MPEs; that sum is the caller's job.

Only the nominal values and classes of METROLOGY.md §1.4 (1 g … 20 kg; E2, F1, F2, M1) are
tabulated: those are the weights the benches hold. Anything else is refused rather than
interpolated, because R111 defines the MPE per nominal value, not by a formula.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final

from benchctl.errors import DutParameterError

__all__ = ["TABLE_1_MG", "WeightClass", "parse_weight_class", "weight_mpe_mg"]

SOURCE: Final = "OIML R111-1:2004 Table 1 (as tabulated in benchctl METROLOGY.md §1.4)"


class WeightClass(StrEnum):
    """R111-1:2004 weight classes held by the benches (E2 is the most accurate here)."""

    E2 = "E2"
    F1 = "F1"
    F2 = "F2"
    M1 = "M1"


#: R111-1:2004 Table 1, MPE in mg, keyed by nominal value in grams (METROLOGY.md §1.4).
TABLE_1_MG: Final[dict[float, dict[WeightClass, float]]] = {
    nominal: dict(zip(WeightClass, row, strict=True))
    for nominal, row in (
        # nominal g   E2     F1    F2     M1
        (1.0, (0.030, 0.10, 0.3, 1.0)),
        (2.0, (0.040, 0.12, 0.4, 1.2)),
        (5.0, (0.050, 0.16, 0.5, 1.6)),
        (10.0, (0.060, 0.20, 0.6, 2.0)),
        (20.0, (0.080, 0.25, 0.8, 2.5)),
        (50.0, (0.10, 0.3, 1.0, 3.0)),
        (100.0, (0.16, 0.5, 1.6, 5.0)),
        (200.0, (0.30, 1.0, 3.0, 10.0)),
        (500.0, (0.8, 2.5, 8.0, 25.0)),
        (1_000.0, (1.6, 5.0, 16.0, 50.0)),
        (2_000.0, (3.0, 10.0, 30.0, 100.0)),
        (5_000.0, (8.0, 25.0, 80.0, 250.0)),
        (10_000.0, (16.0, 50.0, 160.0, 500.0)),
        (20_000.0, (30.0, 100.0, 300.0, 1_000.0)),
    )
}


def parse_weight_class(text: str | WeightClass) -> WeightClass:
    """Parse a weight class ("E2", "f1", " M1 "); other classes raise DutParameterError."""
    if isinstance(text, WeightClass):
        return text
    try:
        return WeightClass(str(text).strip().upper())
    except ValueError:
        raise DutParameterError(
            f"unknown weight class {text!r}: benchctl tabulates E2, F1, F2 and M1 ({SOURCE})"
        ) from None


def weight_mpe_mg(nominal_g: float, cls: str | WeightClass) -> float:
    """MPE in mg of one weight of nominal value ``nominal_g`` (grams) and class (R111-1 Table 1).

    The nominal is matched with a relative tolerance of 1e-9 (so 1000.0000000001 g is the
    1 kg weight). A nominal not in the table (e.g. 3 g, 50 kg, 0.5 g) raises
    DutParameterError naming the nominal and the table.
    """
    klass = parse_weight_class(cls)
    try:
        nominal = float(nominal_g)
    except (TypeError, ValueError):
        nominal = math.nan
    for key, row in TABLE_1_MG.items():
        if math.isclose(nominal, key, rel_tol=1e-9):
            return row[klass]
    raise DutParameterError(
        f"no MPE for a {nominal_g!r} g weight of class {klass}: the nominal is not in "
        f"{SOURCE}, which covers 1, 2, 5 × 10^k g from 1 g to 20 kg"
    )

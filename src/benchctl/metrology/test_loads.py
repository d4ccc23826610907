"""Test loads composed from a registered weight set (METROLOGY.md §1.4).

A test load's conventional mass and uncertainty are the sums over its weights; the weights
of one certificate are calibrated against the same standards, so their uncertainties are
correlated and add linearly, not in quadrature.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..errors import DutParameterError


@dataclass(frozen=True)
class CertifiedWeight:
    weight_id: str
    nominal_g: float
    correction_mg: float
    U_mg: float
    k: float
    weight_class: str

    @property
    def conventional_mass_g(self) -> float:
        return self.nominal_g + self.correction_mg / 1000.0


@dataclass(frozen=True)
class WeightSet:
    asset_id: str
    certificate: str
    due_on: dt.date
    weights: tuple[CertifiedWeight, ...]


@dataclass(frozen=True)
class TestLoad:
    nominal_g: float
    weights: tuple[CertifiedWeight, ...]

    __test__ = False  # not a pytest class

    @property
    def weight_ids(self) -> tuple[str, ...]:
        return tuple(w.weight_id for w in self.weights)

    @property
    def conventional_mass_g(self) -> float:
        return sum(w.nominal_g for w in self.weights) + sum(
            w.correction_mg for w in self.weights) / 1000.0

    @property
    def u_mg(self) -> float:
        """Standard uncertainty of the load's conventional mass (linear sum, correlated)."""
        return sum(w.U_mg / w.k for w in self.weights)

    @property
    def U_mg(self) -> float:
        """Expanded uncertainty (k = 2) of the load, for display."""
        return 2.0 * self.u_mg

    @property
    def mpe_mg(self) -> float:
        from .r111 import weight_mpe_mg

        return sum(weight_mpe_mg(w.nominal_g, w.weight_class) for w in self.weights)


def _key(x: float) -> int:
    """Nominal masses as integer micrograms so sums compare exactly."""
    return round(x * 1_000_000)


def compose(weight_set: WeightSet, nominal_g: float) -> TestLoad:
    """The fewest weights of the set whose nominals add up exactly to ``nominal_g``.

    Depth-first over the weights from the largest down, so the usual combination a
    technician would pick (2 kg + 1 kg + ...) comes first.
    """
    if nominal_g <= 0:
        raise DutParameterError(f"a test load must be positive, got {nominal_g} g")
    target = _key(nominal_g)
    weights = sorted(weight_set.weights, key=lambda w: (-w.nominal_g, w.weight_id))
    values = [_key(w.nominal_g) for w in weights]
    suffix = [0] * (len(values) + 1)
    for i in range(len(values) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + values[i]
    best: list[int] | None = None

    def search(i: int, remaining: int, chosen: list[int]) -> None:
        nonlocal best
        if remaining == 0:
            if best is None or len(chosen) < len(best):
                best = list(chosen)
            return
        if i >= len(values) or suffix[i] < remaining:
            return
        if best is not None and len(chosen) + 1 >= len(best):
            return
        if values[i] <= remaining:
            chosen.append(i)
            search(i + 1, remaining - values[i], chosen)
            chosen.pop()
        search(i + 1, remaining, chosen)

    search(0, target, [])
    if best is None:
        have = ", ".join(w.weight_id for w in weights)
        raise DutParameterError(
            f"weight set {weight_set.asset_id} cannot make a load of {nominal_g:g} g "
            f"from its weights ({have})")
    return TestLoad(nominal_g, tuple(weights[i] for i in best))

"""Putting DUT and reference files into the asset register, in the name of a person.

The file formats and their checks are :mod:`benchctl.assets`' (the same as for a run); this
module only stores what they give, so a register entry made with ``benchctl asset import``
and one made by a run's first use of the file are the same.
"""

from __future__ import annotations

from typing import Any

from benchctl.assets import DutSpec, ReferenceSpec

__all__ = ["store_dut", "store_reference"]


def store_dut(s: Any, dut: DutSpec, actor: str) -> Any:
    """Create or update the DUT's register entry; the asset."""
    from benchctl.store import repository as repo

    p = dut.params
    return repo.upsert_asset(
        s, dut.asset_id, actor=actor, kind=dut.kind, maker=dut.maker, model=dut.model,
        serial=dut.serial, customer=dut.customer, unit=dut.unit, params=p,
        accuracy_class=str(p.get("class", "")) or None,
        resolution=p.get("d", p.get("resolution")),
        range_min=0.0 if "max" in p else None, range_max=p.get("max"))


def store_reference(s: Any, ref: ReferenceSpec, actor: str) -> Any:
    """Create or update the reference's register entry and add its certificate (the same
    number with the same content is kept; a different content is refused); the certificate."""
    from benchctl.store import repository as repo

    c = ref.certificate
    repo.upsert_asset(s, ref.asset_id, actor=actor, kind=ref.kind, maker=ref.maker,
                      model=ref.model, serial=ref.serial, unit=ref.unit,
                      accuracy_class=ref.accuracy_class or None,
                      range_min=ref.range[0] if ref.range else None,
                      range_max=ref.range[1] if ref.range else None)
    return repo.add_certificate(
        s, ref.asset_id, number=c.number, issuer=c.issuer, issued_on=c.issued_on,
        due_on=c.due_on, U=c.U, k=c.k, U_unit=c.U_unit, data=dict(c.data), actor=actor,
        weights=[{"weight_id": w.weight_id, "nominal_g": w.nominal_g,
                  "correction_mg": w.correction_mg, "U_mg": w.U_mg, "k": w.k,
                  "weight_class": w.weight_class} for w in ref.weights])

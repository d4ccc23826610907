"""A run as one plain object: what ``--json``, ``runs show`` and the certificate all print.

One builder, so the JSON contract of DESIGN.md and the certificate can never disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import BenchctlError

POINT_FIELDS = ("key", "nominal", "unit", "reference", "indicated", "error", "error_unit", "U",
                "k", "mpe", "verdict", "test", "position", "direction", "series", "flow")


def _iso(t: dt.datetime | dt.date | None) -> str | None:
    return t.isoformat() if t is not None else None


def run_document(db: Any, run_id: int) -> dict[str, Any]:
    from ..store import repository as repo

    with db.session() as s:
        run = repo.get_run(s, run_id)
        if run is None:
            raise BenchctlError(f"run {run_id} does not exist in {db.url_masked}")
        return document_of(run, repo.completed_points(s, run_id),
                           repo.latest_results(s, run_id), repo.readings_of(s, run_id))


def document_of(run: Any, points: dict[str, Any], results: list[Any],
                readings: list[Any]) -> dict[str, Any]:
    pv = run.procedure
    dut = run.dut
    rows = []
    for r in results:
        data = dict(r.data)
        row = {f: data.get(f) for f in POINT_FIELDS}
        row["key"] = r.key
        extra = {k: v for k, v in data.items() if k not in POINT_FIELDS}
        if extra:
            row["extra"] = extra
        rows.append(row)
    params = {k: v for k, v in (run.params or {}).items() if not k.startswith("_")}
    return {
        "run_id": run.id,
        "procedure": pv.procedure_id,
        "procedure_version": pv.version,
        "procedure_title": pv.title,
        "procedure_documents": pv.documents,
        "procedure_sha256": pv.sha256,
        "mode": run.mode,
        "decision_rule": run.decision_rule,
        "params": params,
        "state": run.state,
        "state_message": run.state_message,
        "bench": run.bench,
        "operator": run.operator_kind,
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "dut": {
            "asset": dut.id, "kind": dut.kind, "maker": dut.maker, "model": dut.model,
            "serial": dut.serial, "customer": dut.customer, "unit": dut.unit,
            "params": dict(dut.params or {}),
        },
        "references": [
            {"asset": ref.certificate.asset_id, "role": ref.role,
             "certificate": ref.certificate.number, "issuer": ref.certificate.issuer,
             "issued_on": _iso(ref.certificate.issued_on),
             "due_date": _iso(ref.certificate.due_on)}
            for ref in run.references
        ],
        "environment": dict(run.environment or {}),
        "verdict": run.verdict,
        "points": rows,
        "measured_points": len(points),
        "readings": len(readings),
    }

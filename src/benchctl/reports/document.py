"""A run as one plain object: what ``--json``, ``runs show`` and the certificate all print.

One builder, so the JSON contract of DESIGN.md and the certificate can never disagree.

The store grows (people and approval, certificate numbers, amendments, reference overrides)
while the reports read it, so the newer columns are read with ``getattr`` and a document from
an older database simply has them as ``None``; the keys are always present, so automation can
rely on them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import BenchctlError

POINT_FIELDS = ("key", "nominal", "unit", "reference", "indicated", "error", "error_unit", "U",
                "k", "mpe", "verdict", "test", "position", "direction", "series", "flow")

#: Run columns copied into the document as they are (None when the store has no such column).
RUN_RECORD_FIELDS = ("performed_by", "reviewed_by", "reviewed_at", "approved_by", "approved_at",
                     "certificate_number", "revision", "replaces_run_id", "amend_reason",
                     "stamp_number", "valid_until")

#: The people of a certificate, in the order they sign (ISO/IEC 17025 7.8.2.1 o).
PEOPLE_ROLES = ("performed_by", "reviewed_by", "approved_by")


def _iso(t: dt.datetime | dt.date | None) -> str | None:
    return t.isoformat() if t is not None else None


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def run_document(db: Any, run_id: int) -> dict[str, Any]:
    from ..store import repository as repo

    with db.session() as s:
        run = repo.get_run(s, run_id)
        if run is None:
            raise BenchctlError(f"run {run_id} does not exist in {db.url_masked}")
        people = _call_optional(repo, "run_people", s, run_id)
        overrides = _call_optional(repo, "run_overrides", s, run_id)
        return document_of(run, repo.completed_points(s, run_id),
                           repo.latest_results(s, run_id), repo.readings_of(s, run_id),
                           people=people, overrides=overrides)


def _call_optional(module: Any, name: str, *args: Any) -> Any:
    """Call a repository function that a newer store provides; None where it does not."""
    fn = getattr(module, name, None)
    return fn(*args) if callable(fn) else None


def document_of(run: Any, points: dict[str, Any], results: list[Any], readings: list[Any],
                *, people: dict[str, Any] | None = None,
                overrides: list[dict[str, Any]] | None = None) -> dict[str, Any]:
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
    record = {f: _plain(getattr(run, f, None)) for f in RUN_RECORD_FIELDS}
    extra_people = people or {}
    references = [_reference(ref, run.started_at) for ref in run.references]
    the_people = _people(run, record, people)
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
        "references": references,
        "environment": dict(run.environment or {}),
        "verdict": run.verdict,
        "points": rows,
        "measured_points": len(points),
        "readings": len(readings),
        **record,
        "revision": record["revision"] or 1,
        "people": the_people,
        # The certificate this revision replaces, and the revision that replaced this run.
        "replaces_certificate_number": extra_people.get("replaces_certificate_number"),
        "replaced_by_run_id": extra_people.get("replaced_by_run_id"),
        "overrides": _overrides(references, overrides),
        "approved": bool(the_people["approved_by"]["name"] and the_people["approved_by"]["at"]),
    }


def _reference(ref: Any, started_at: dt.datetime | None) -> dict[str, Any]:
    cert = ref.certificate
    asset = getattr(cert, "asset", None)
    due = cert.due_on
    used_on = started_at.date() if started_at is not None else None
    return {
        "asset": cert.asset_id, "role": ref.role, "certificate": cert.number,
        "issuer": cert.issuer, "issued_on": _iso(cert.issued_on), "due_date": _iso(due),
        "kind": getattr(asset, "kind", None), "maker": getattr(asset, "maker", None),
        "model": getattr(asset, "model", None), "serial": getattr(asset, "serial", None),
        "U": cert.U, "k": cert.k, "U_unit": cert.U_unit,
        # Past due on the day the run started: only usable with an override and its reason.
        "overdue": bool(due is not None and used_on is not None and used_on > due),
        "override_reason": getattr(ref, "override_reason", None),
        "override_detail": getattr(ref, "override_detail", None),
    }


def _people(run: Any, record: dict[str, Any], people: dict[str, Any] | None
            ) -> dict[str, dict[str, Any]]:
    """Performed, reviewed and approved by, each with its time: from
    ``repository.run_people`` where the store has it, else from the run's columns.

    The run was performed when it ran (its end, else its start), whoever it names; a review
    or an approval has a time only once someone gave it.
    """
    given = people or {}

    def pick(key: str) -> Any:
        value = given.get(key)
        return _plain(value) if value is not None else record.get(key)

    performed_at = (given.get("completed_at") or _iso(run.ended_at)
                    or given.get("performed_at") or _iso(run.started_at))
    out = {"performed_by": {"name": pick("performed_by"), "at": _plain(performed_at)}}
    for role, at in (("reviewed_by", "reviewed_at"), ("approved_by", "approved_at")):
        name = pick(role)
        out[role] = {"name": name, "at": pick(at) if name else None}
    return out


def _overrides(references: list[dict[str, Any]], overrides: list[dict[str, Any]] | None
               ) -> list[dict[str, Any]]:
    """Every recorded override of an overdue reference, for the certificate to state."""
    out: list[dict[str, Any]] = [{k: _plain(v) for k, v in o.items()} for o in overrides or []]
    named = {(o.get("asset") or o.get("asset_id"), o.get("certificate")) for o in out}
    for r in references:
        if r["override_reason"] and (r["asset"], r["certificate"]) not in named:
            out.append({"asset": r["asset"], "certificate": r["certificate"],
                        "due_date": r["due_date"], "reason": r["override_reason"],
                        "problem": r.get("override_detail")})
    return out


def run_records(db: Any, run_id: int) -> dict[str, Any]:
    """The document plus every point as recorded and every reading with its raw bytes: what
    the CSV and XLSX exports hold (kept out of :func:`run_document`, whose ``readings`` is a
    count in the JSON contract)."""
    from ..store import repository as repo

    doc = run_document(db, run_id)
    with db.session() as s:
        points = repo.completed_points(s, run_id)
        readings = repo.readings_of(s, run_id)
        seq_of = {p.id: p.seq for p in points.values()}
        recorded = [{"key": p.key, "seq": p.seq, "data": dict(p.data or {}),
                     "at": _iso(p.created_at)} for p in points.values()]
        rows = [{"id": rd.id, "point_key": rd.point_key,
                 "point_seq": seq_of.get(rd.point_id) if rd.point_id is not None else None,
                 "instrument": rd.instrument, "role": rd.role, "value": rd.value,
                 "unit": rd.unit, "stable": rd.stable, "taken_at": _iso(rd.taken_at),
                 "raw": bytes(rd.raw or b"")} for rd in readings]
    return {"document": doc, "recorded_points": recorded, "reading_rows": rows}

"""Amendments: a correction is a new revision of a run, never an edit of the old one.

``benchctl runs amend RUN_ID --reason TEXT`` makes a new run that replaces RUN_ID: the same
procedure, DUT, references, people, times, points and readings, re-evaluated by the procedure
with what the amendment corrects:

- ``--param KEY=VALUE``: a procedure parameter that was wrong (e.g. ``mpe_level=in_service``);
- ``--point KEY.FIELD=VALUE``: a recorded value that was wrong (e.g. a manual reading typed
  as 50.2 instead of 52.0: ``--point weighing.up.50g.indicated=52.0``); the raw readings stay
  as the instrument gave them, and the audit trail keeps the value before and after;
- nothing: a re-issue (e.g. after the customer's name was corrected in the register).

Re-evaluation replays the procedure with every point already taken, exactly as ``resume``
does, against stand-ins that refuse any instrument or operator use; so the procedure file
must be the one the run used (same SHA-256). A procedure that must touch an instrument
outside its points cannot be re-evaluated this way; it may instead define
``reevaluate(points, dut, references, params, mode) -> (results, verdict)``.

The new revision must be reviewed and approved again; its certificate gets a new number and
says which certificate it replaces.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchctl.errors import BenchctlError

__all__ = ["AmendError", "Correction", "amend_run", "parse_correction"]


class AmendError(BenchctlError):
    """An amendment that cannot be made as asked."""


@dataclass(frozen=True)
class Correction:
    """``--point KEY.FIELD=VALUE``: set FIELD of recorded point KEY to VALUE."""

    key: str
    field: str
    value: Any

    def text(self) -> str:
        return f"{self.key}.{self.field}={self.value!r}"


def parse_correction(text: str) -> Correction:
    """``"weighing.up.50g.indicated=52.0"`` -> Correction (the point key may contain dots:
    the field is what follows the last one)."""
    target, sep, raw = text.partition("=")
    key, dot, field = target.strip().rpartition(".")
    if not sep or not dot or not key or not field:
        raise AmendError(f"--point {text!r}: expected POINT_KEY.FIELD=VALUE, e.g. "
                         "weighing.up.50g.indicated=52.0")
    raw = raw.strip()
    value: Any
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return Correction(key, field, value)


def _apply(points: dict[str, dict[str, Any]], corrections: Sequence[Correction]
           ) -> list[dict[str, Any]]:
    changed: list[dict[str, Any]] = []
    for c in corrections:
        if c.key not in points:
            raise AmendError(f"--point {c.text()}: the run has no point {c.key!r}")
        data = points[c.key]
        if c.field not in data:
            fields = ", ".join(sorted(data)) or "none"
            raise AmendError(f"--point {c.text()}: point {c.key} has no field {c.field!r} "
                             f"(it has {fields})")
        old = data[c.field]
        value = c.value
        numeric = isinstance(old, int | float) and not isinstance(old, bool)
        if numeric:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AmendError(f"--point {c.text()}: {c.field} is a number "
                                 f"(recorded {old!r})")
            value = float(value)
        elif old is not None and type(value) is not type(old):
            raise AmendError(f"--point {c.text()}: {c.field} is a {type(old).__name__} "
                             f"(recorded {old!r})")
        data[c.field] = value
        changed.append({"point": c.key, "field": c.field, "before": old, "after": value})
    return changed


class _ReplayRefused(BenchctlError):
    pass


class _NoInstrument:
    def __init__(self, slot: str) -> None:
        self._slot = slot

    def __getattr__(self, name: str) -> Any:
        raise _ReplayRefused(
            f"the procedure uses instrument '{self._slot}' ({name}) outside its recorded "
            "points; an amendment only re-evaluates what was recorded")


class _Stand:
    """An instrument handle that is there (so the procedure takes the same path as in the
    run) but refuses any use."""

    def __init__(self, slot: str) -> None:
        self.name = slot
        self.role = slot
        self.config = None
        self.instrument = _NoInstrument(slot)

    async def call(self, *args: Any, **kw: Any) -> Any:
        raise _ReplayRefused(f"the procedure uses instrument '{self.name}' outside its "
                             "recorded points")

    def close(self) -> None:
        pass


class _Store:
    """The run context's recorder: keeps the environment, refuses new points."""

    def __init__(self) -> None:
        self.environment: dict[str, Any] = {}

    pending = 0
    failure = None

    def submit_point(self, run_id: int, key: str, *args: Any) -> None:
        raise _ReplayRefused(f"the procedure wants a new point {key!r}; an amendment does "
                             "not measure (start a new run)")

    def wait_durable(self, *args: Any, **kw: Any) -> None:
        pass

    def must_catch_up(self) -> bool:
        return False

    def behind(self) -> float:
        return 0.0

    def oldest(self) -> None:
        return None

    def set_state(self, *args: Any) -> None:
        pass

    def set_environment(self, run_id: int, label: str, data: dict[str, Any]) -> None:
        self.environment[label] = data

    def save_results(self, *args: Any) -> None:
        pass


def _operator() -> Any:
    from benchctl.engine.operators import OperatorChannel

    class NoOperator(OperatorChannel):
        kind = "amendment"

        async def ask(self, request: Any) -> Any:
            raise _ReplayRefused(f"the procedure asks the operator at {request.key!r}; an "
                                 "amendment does not measure (start a new run)")

    return NoOperator()


def _reevaluate(module: Any, run_id: int, procedure_id: str, mode: str, params: dict[str, Any],
                locale: str, dut: Any, references: dict[str, Any],
                points: dict[str, dict[str, Any]], slots: set[str]
                ) -> tuple[list[dict[str, Any]], str | None, dict[str, Any]]:
    own = getattr(module, "reevaluate", None)
    if own is not None:
        results, verdict = own(points, dut, references, params, mode)
        return list(results), verdict, {}
    from benchctl.engine.clock import RunClock
    from benchctl.engine.context import RunContext, RunInfo
    from benchctl.engine.states import RunState, StateMachine

    store = _Store()
    info = RunInfo(run_id, procedure_id, mode, params, locale, dut, references)
    instruments: dict[str, Any] = {slot: _Stand(slot) for slot in slots}
    ctx = RunContext(info, clock=RunClock(1e6), operator=_operator(), instruments=instruments,
                     store=store, done=points, state=StateMachine(RunState.RUNNING))
    asyncio.run(module.run(ctx))
    if ctx.results is None:
        raise AmendError(f"procedure {procedure_id} finished without results")
    return list(ctx.results), ctx.verdict, store.environment


def amend_run(db: Any, run_id: int, *, reason: str, by: str | None,
              params: Sequence[str] = (), corrections: Sequence[str] = ()) -> int:
    """Make the new revision of completed run ``run_id``; returns its run id."""
    from benchctl import library
    from benchctl.engine import runner
    from benchctl.records.approval import check_person, default_person
    from benchctl.store import repository as repo
    from benchctl.store.models import PERSON_ROLES

    reason = (reason or "").strip()
    if not reason:
        raise AmendError(f"amendment of run {run_id}: --reason is required (it is printed on "
                         "the new certificate)")
    fixes = [parse_correction(c) for c in corrections]
    with db.session() as s:
        actor = (by or "").strip() or default_person()
        if repo.list_people(s):
            check_person(s, actor, PERSON_ROLES, f"amendment of run {run_id}")
        run = repo.get_run(s, run_id)
        if run is None:
            raise AmendError(f"run {run_id} does not exist")
        if run.state != "completed":
            raise AmendError(f"run {run_id} is {run.state}; only a completed run can be amended "
                             "(resume it first)")
        newer = repo.replaced_by(s, [run_id]).get(run_id)
        if newer is not None:
            raise AmendError(f"run {run_id} is already replaced by run {newer}; amend run "
                             f"{newer}")
        proc_id, sha, mode = run.procedure.procedure_id, run.procedure.sha256, run.mode
        stored = dict(run.params or {})
        dut = runner.dut_from_asset(run.dut)
        refs = {r.role: (r.certificate_id, r.role) for r in run.references}
        points = {k: dict(p.data) for k, p in repo.completed_points(s, run_id).items()}
        slots = {r.role for r in repo.readings_of(s, run_id) if r.role}
    bench, _ = runner.prepare_resume(db, run_id)
    library.configure(bench.library)
    procedure = runner.load_procedure(proc_id)
    if procedure.sha256 != sha:
        raise AmendError(
            f"run {run_id} was made with procedure {proc_id} sha256 {sha[:12]}…; the file now "
            f"has sha256 {procedure.sha256[:12]}…, so it cannot re-evaluate the run",
            detail="restore the procedure file the run used to amend this run")
    old_params = {k: v for k, v in stored.items() if not k.startswith("_")}
    changed_params = runner.parse_params(procedure, list(params))
    new_params = {**old_params, **changed_params}
    validate = getattr(procedure.module, "validate", None)
    if validate:
        validate(dut, new_params, mode)
    point_changes = _apply(points, fixes)
    references = runner.load_reference_objects(db, refs)
    try:
        results, verdict, environment = _reevaluate(
            procedure.module, run_id, proc_id, mode, new_params, bench.locale, dut, references,
            points, slots)
    except _ReplayRefused as exc:
        raise AmendError(f"cannot re-evaluate run {run_id}: {exc}") from None
    with db.session() as s:
        old_env = dict(repo.get_run(s, run_id).environment or {})  # type: ignore[union-attr]
        new = repo.create_revision(
            s, run_id, reason=reason, actor=actor,
            params={**{k: v for k, v in stored.items() if k.startswith("_")}, **new_params},
            points=points, results=results, verdict=verdict,
            environment={**old_env, **environment},
            changes={"params": {k: {"before": old_params.get(k), "after": v}
                                for k, v in changed_params.items()
                                if old_params.get(k) != v},
                     "points": point_changes})
        return int(new.id)

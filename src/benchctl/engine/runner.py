"""Start and resume runs: the glue between bench, register, procedure and store.

The runner owns the state table transitions at the run's edges (start, complete, abort,
fail); the context owns pause and resume between points.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import inspect
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import library
from ..assets import DutSpec, ReferenceSpec, load_dut_file, load_reference_file
from ..config import BenchConfig, load_bench, parse_bench
from ..errors import BenchctlError, ConfigError, InstrumentError, RunAborted
from .clock import RunClock
from .context import Listener, RunContext, RunInfo
from .handles import InstrumentHandle, assign_slots, open_instrument
from .heap import frozen_while_running
from .operators import LoopOperatorPort, OperatorChannel
from .recorder import RunRecorder
from .states import RESUMABLE, RunState, StateMachine


@dataclass
class Procedure:
    module: Any
    id: str
    title: str
    version: str
    documents: str
    text: str
    sha256: str
    path: Path

    @property
    def parameters(self) -> dict[str, tuple[type, Any, str]]:
        return dict(getattr(self.module, "PARAMETERS", {}))


def load_procedure(spec: str) -> Procedure:
    """A bundled procedure id (``nawi_balance``) or a path to a procedure file in the library."""
    if spec.endswith(".py") or os.sep in spec:
        module = library.load_file("procedures", spec)
    else:
        module = library.load("procedures", spec)
    path = Path(inspect.getfile(module))
    text = path.read_text(encoding="utf-8")
    for attr in ("ID", "TITLE", "VERSION", "run"):
        if not hasattr(module, attr):
            raise BenchctlError(f"procedure {path} lacks {attr}; see docs/extending.md")
    return Procedure(module, module.ID, module.TITLE, module.VERSION,
                     getattr(module, "DOCUMENTS", ""), text,
                     hashlib.sha256(text.encode("utf-8")).hexdigest(), path)


def parse_params(procedure: Procedure, raw: dict[str, str] | list[str]) -> dict[str, Any]:
    """``--param KEY=VALUE`` strings -> typed values, with the procedure's defaults."""
    declared = procedure.parameters
    items: dict[str, str] = {}
    if isinstance(raw, list):
        for item in raw:
            if "=" not in item:
                raise BenchctlError(f"--param {item!r}: expected KEY=VALUE")
            k, v = item.split("=", 1)
            items[k.strip()] = v.strip()
    else:
        items = dict(raw)
    out: dict[str, Any] = {}
    for key, text in items.items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise BenchctlError(f"procedure {procedure.id} has no parameter {key!r} "
                                f"(known: {known})")
        typ, _default, desc = declared[key]
        try:
            if typ is list:
                out[key] = [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
            elif typ is bool:
                out[key] = text.lower() in ("1", "true", "yes", "on")
            else:
                out[key] = typ(text)
        except ValueError:
            raise BenchctlError(f"--param {key}={text}: expected {typ.__name__} ({desc})"
                                ) from None
    choices = getattr(procedure.module, "PARAMETER_CHOICES", {})
    for key, value in out.items():
        if key in choices and value not in choices[key]:
            raise BenchctlError(f"--param {key}={value}: expected one of "
                                f"{', '.join(map(str, choices[key]))}")
    return out


@dataclass
class RunOutcome:
    run_id: int
    state: str
    message: str | None = None
    document: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunOptions:
    bench: BenchConfig
    operator: OperatorChannel
    db: Any
    speed: float | None = None
    listeners: list[Listener] = field(default_factory=list)
    handle_signals: bool = True
    on_context: Callable[[RunContext], None] | None = None
    """Called with the context once the run has started (the TUI keeps it to pause/abort)."""


def resolve_dut(db: Any, spec: str) -> DutSpec:
    """``--dut``: a DUT file (imported into the register) or an asset id already there."""
    from ..store import repository as repo

    path = Path(spec)
    if path.suffix == ".toml" or path.is_file():
        dut = load_dut_file(path)
        with db.session() as s:
            repo.upsert_asset(s, dut.asset_id, kind=dut.kind, maker=dut.maker, model=dut.model,
                              serial=dut.serial, customer=dut.customer, unit=dut.unit,
                              accuracy_class=str(dut.params.get("class", "")),
                              resolution=dut.params.get("d"), range_min=0.0,
                              range_max=dut.params.get("max"), params=dut.params)
        return dut
    with db.session() as s:
        asset = repo.get_asset(s, spec)
        if asset is None:
            raise BenchctlError(f"--dut {spec}: no such DUT file and no asset {spec!r} in the "
                                "register")
        return dut_from_asset(asset)


def dut_from_asset(asset: Any) -> DutSpec:
    return DutSpec(asset_id=asset.id, kind=asset.kind, unit=asset.unit or "",
                   maker=asset.maker or "", model=asset.model or "", serial=asset.serial or "",
                   customer=asset.customer or "", params=dict(asset.params or {}))


def import_reference(db: Any, ref: ReferenceSpec) -> int:
    """Put a reference file's asset and certificate into the register; the certificate id."""
    from ..store import repository as repo

    c = ref.certificate
    with db.session() as s:
        repo.upsert_asset(s, ref.asset_id, kind=ref.kind, maker=ref.maker, model=ref.model,
                          serial=ref.serial, unit=ref.unit, accuracy_class=ref.accuracy_class,
                          range_min=ref.range[0] if ref.range else None,
                          range_max=ref.range[1] if ref.range else None)
        cert = repo.add_certificate(
            s, ref.asset_id, number=c.number, issuer=c.issuer, issued_on=c.issued_on,
            due_on=c.due_on, U=c.U, k=c.k, U_unit=c.U_unit, data=c.data,
            weights=[{"weight_id": w.weight_id, "nominal_g": w.nominal_g,
                      "correction_mg": w.correction_mg, "U_mg": w.U_mg, "k": w.k,
                      "weight_class": w.weight_class} for w in ref.weights])
        return int(cert.id)


def resolve_references(db: Any, bench: BenchConfig, procedure: Procedure, today: dt.date,
                       *, dut: DutSpec | None = None, params: dict[str, Any] | None = None,
                       override_reason: str | None = None,
                       overrides: dict[str, tuple[str, str]] | None = None,
                       ) -> dict[str, tuple[int, str]]:
    """Procedure reference slots -> (certificate id, slot): the exact certificate of each
    reference standard the run will use, each checked fit for use (ISO/IEC 17025 6.4, 6.5).

    References come from the bench's ``[references.NAME]`` (a register asset or a reference
    file, imported on first use) and from instruments with an ``asset`` (a reference standard
    with an interface). A procedure's REFERENCES slot takes the reference of the same name,
    else the first of its kind; an instrument with an asset that fills one of the procedure's
    instrument slots is linked too (e.g. the environment monitor), under that slot's name.

    Fitness (benchctl.records.fitness): a certificate past its due date, or a reference used
    outside the range its certificate covers (the procedure's ``reference_range(dut, params)``
    says the range of use), is refused with a FitnessError naming the asset, the date or the
    range; unless ``override_reason`` is given: then ``overrides[slot]`` gets (reason, what was
    wrong), which the run records with that reference and in the audit trail.
    """
    from ..records import fitness

    # A procedure whose references depend on its parameters (a dispenser verified with
    # proving measures or with a master meter) says so with references_for(params).
    references_for = getattr(procedure.module, "references_for", None)
    wanted: dict[str, str] = dict(references_for(params or {}) if references_for
                                  else getattr(procedure.module, "REFERENCES", {}))
    # name -> (certificate id, kind): every reference the bench offers.
    offered: dict[str, tuple[int, str]] = {}
    for ref in bench.references.values():
        if ref.file is not None:
            spec = load_reference_file(ref.file)
            offered[ref.name] = (import_reference(db, spec), spec.kind)
        else:
            assert ref.asset is not None
            offered[ref.name] = _current(db, bench, ref.asset, f"references.{ref.name}.asset",
                                         today)
    for name, inst in bench.instruments.items():
        if inst.asset and inst.role != "dut" and name not in offered:
            offered[name] = _current(db, bench, inst.asset, f"instruments.{name}.asset", today)
    found: dict[str, tuple[int, str]] = {}
    taken: set[str] = set()
    for slot, kind in wanted.items():  # the reference of the slot's own name first
        if slot in offered and offered[slot][1] == kind:
            found[slot] = (offered[slot][0], slot)
            taken.add(slot)
    for slot, kind in wanted.items():
        if slot in found:
            continue
        match = next((n for n, (_, k) in offered.items() if k == kind and n not in taken), None)
        if match is not None:
            found[slot] = (offered[match][0], slot)
            taken.add(match)
    for slot, kind in wanted.items():
        if slot not in found:
            raise BenchctlError(f"{bench.path}: the procedure needs a reference '{slot}' "
                                f"({kind}); add [references.{slot}] with asset or file")
    slots = assign_slots(bench, getattr(procedure.module, "INSTRUMENTS", {}))
    linked = {cid for cid, _ in found.values()}
    for slot, inst_name in slots.items():
        if inst_name is not None and inst_name in offered and slot not in found \
                and offered[inst_name][0] not in linked:
            found[slot] = (offered[inst_name][0], slot)
            linked.add(offered[inst_name][0])

    needed = fitness.needed_ranges(procedure.module, dut, params or {}) if dut else {}
    reason = (override_reason or "").strip()
    with db.session() as s:
        for slot, (cert_id, _) in found.items():
            cert = _certificate(s, cert_id)
            try:
                fitness.check_reference(
                    asset_id=cert.asset_id, certificate=cert.number, due_on=cert.due_on,
                    on=today, needed=needed.get(slot),
                    covered=fitness.range_of(cert) if slot in needed else None)
            except fitness.FitnessError as exc:
                if not reason:
                    raise
                if overrides is not None:
                    overrides[slot] = (reason, exc.summary)
    return found


def _current(db: Any, bench: BenchConfig, asset_id: str, key: str, today: dt.date
             ) -> tuple[int, str]:
    """(certificate id, kind) of a register asset's current certificate."""
    from ..store import repository as repo

    with db.session() as s:
        asset = repo.get_asset(s, asset_id)
        if asset is None:
            raise ConfigError(str(bench.path), key, "an asset id in the register", got=asset_id)
        cert = repo.current_certificate(s, asset_id, today)
        if cert is None:
            raise BenchctlError(f"reference {asset_id} has no certificate in the register "
                                f"issued on or before {today.isoformat()}",
                                detail=f"add it: benchctl cert add {asset_id} ...")
        return int(cert.id), str(asset.kind)


def _certificate(s: Any, cert_id: int) -> Any:
    from ..store import repository as repo

    cert = repo.get_certificate(s, cert_id)
    if cert is None:
        raise BenchctlError(f"reference certificate {cert_id} is missing from the register")
    return cert


def load_reference_objects(db: Any, refs: dict[str, tuple[int, str]]) -> dict[str, Any]:
    """Certificate ids -> what procedures use (a weight set with its per-weight data)."""
    from ..metrology.test_loads import CertifiedWeight, WeightSet

    out: dict[str, Any] = {}
    with db.session() as s:
        for slot, (cert_id, _) in refs.items():
            cert = _certificate(s, cert_id)
            if cert.asset.kind == "weight_set":
                out[slot] = WeightSet(
                    asset_id=cert.asset_id, certificate=cert.number, due_on=cert.due_on,
                    weights=tuple(CertifiedWeight(w.weight_id, w.nominal_g, w.correction_mg,
                                                  w.U_mg, w.k, w.weight_class)
                                  for w in cert.weights))
            else:
                out[slot] = cert
    return out


async def _execute(run_id: int, procedure: Procedure, dut: DutSpec, mode: str,
                   params: dict[str, Any], refs: dict[str, Any], opts: RunOptions,
                   done: dict[str, dict[str, Any]]) -> RunOutcome:
    # The collector's full passes skip what the process held before the run (engine/heap.py).
    with frozen_while_running():
        return await _execute_run(run_id, procedure, dut, mode, params, refs, opts, done)


async def _execute_run(run_id: int, procedure: Procedure, dut: DutSpec, mode: str,
                       params: dict[str, Any], refs: dict[str, Any], opts: RunOptions,
                       done: dict[str, dict[str, Any]]) -> RunOutcome:
    bench = opts.bench
    recorder = RunRecorder(opts.db)
    machine = StateMachine(RunState.RUNNING)
    loop = asyncio.get_running_loop()
    port = LoopOperatorPort(opts.operator, loop)
    slots = assign_slots(bench, getattr(procedure.module, "INSTRUMENTS", {}))
    handles: dict[str, InstrumentHandle | None] = {}
    speed = opts.speed or bench.speed
    ctx: RunContext | None = None
    try:
        for slot, name in slots.items():
            handles[slot] = None if name is None else await asyncio.to_thread(
                open_instrument, bench, bench.instruments[name], port)
        info = RunInfo(run_id, procedure.id, mode, params, bench.locale, dut, refs)
        ctx = RunContext(info, clock=RunClock(speed), operator=opts.operator,
                         instruments=handles, store=recorder, done=done, state=machine,
                         listeners=opts.listeners)
        opts.operator.bind(ctx)
        if opts.on_context:
            opts.on_context(ctx)
        if opts.handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, ctx.request_abort)
        await ctx.emit({"event": "state", "state": "running", "procedure": procedure.id,
                        "resumed_points": len(done)})
        await procedure.module.run(ctx)
        if ctx.results is None:
            raise BenchctlError(f"procedure {procedure.id} finished without results")
        await ctx.durable()
        await asyncio.to_thread(recorder.save_results, run_id, ctx.results, ctx.verdict)
        machine.to(RunState.COMPLETED)
        await asyncio.to_thread(recorder.set_state, run_id, RunState.COMPLETED, None)
        await ctx.emit({"event": "state", "state": "completed", "verdict": ctx.verdict})
        return RunOutcome(run_id, "completed")
    except RunAborted as exc:
        if machine.state == RunState.PAUSED:
            machine.to(RunState.RUNNING)
        machine.to(RunState.ABORTING)
        if ctx:
            await ctx.durable(raise_failure=False)
        await asyncio.to_thread(recorder.set_state, run_id, RunState.ABORTING, str(exc))
        machine.to(RunState.ABORTED)
        await asyncio.to_thread(recorder.set_state, run_id, RunState.ABORTED, str(exc))
        if ctx:
            await ctx.emit({"event": "state", "state": "aborted", "reason": str(exc)})
        return RunOutcome(run_id, "aborted", str(exc))
    except (InstrumentError, BenchctlError) as exc:
        if machine.state == RunState.PAUSED:
            machine.to(RunState.RUNNING)
        if machine.can(RunState.FAILED):
            machine.to(RunState.FAILED)
        if ctx:
            await ctx.durable(raise_failure=False)
        await asyncio.to_thread(recorder.set_state, run_id, RunState.FAILED, str(exc))
        if ctx:
            await ctx.emit({"event": "state", "state": "failed", "reason": str(exc)})
        return RunOutcome(run_id, "failed", str(exc))
    finally:
        # Whatever ended the run (a crash included), the points it took are committed before
        # the process may exit: the writer thread would not outlive it.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(recorder.wait_durable, raise_failure=False)
        if ctx:
            ctx.close()
        # Instruments are closed while Ctrl-C still only asks for an abort: an impatient
        # burst of Ctrl-C must not interrupt the closing half-way.
        for h in handles.values():
            if h is not None:
                await asyncio.to_thread(h.close)
        if opts.handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)


def start_run(procedure_spec: str, dut_spec: str, mode: str, raw_params: list[str],
              opts: RunOptions, *, today: dt.date | None = None,
              performed_by: str | None = None, override_reason: str | None = None
              ) -> RunOutcome:
    """Start a run. ``performed_by`` names who performs it (default: ``$BENCHCTL_OPERATOR``,
    else the login name; once the person register has anyone, a registered operator).
    ``override_reason`` lets unfit references be used, recorded per reference."""
    from ..records.approval import resolve_performer
    from ..store import repository as repo

    bench = opts.bench
    library.configure(bench.library)
    procedure = load_procedure(procedure_spec)
    modes = getattr(procedure.module, "MODES", ("verify", "calibrate"))
    if mode not in modes:
        raise BenchctlError(f"--mode {mode}: procedure {procedure.id} offers "
                            f"{' or '.join(modes)}")
    params = parse_params(procedure, raw_params)
    dut = resolve_dut(opts.db, dut_spec)
    want_kind = getattr(procedure.module, "DUT_KIND", None)
    if want_kind and dut.kind != want_kind:
        raise BenchctlError(f"--dut {dut_spec} is a {dut.kind}; procedure {procedure.id} "
                            f"needs a {want_kind}")
    validate = getattr(procedure.module, "validate", None)
    if validate:
        validate(dut, params, mode)
    assign_slots(bench, getattr(procedure.module, "INSTRUMENTS", {}))
    with opts.db.session() as s:
        performer = resolve_performer(s, performed_by)
    overrides: dict[str, tuple[str, str]] = {}
    refs = resolve_references(opts.db, bench, procedure, today or dt.date.today(), dut=dut,
                              params=params, override_reason=override_reason,
                              overrides=overrides)
    stored = {**params, "_bench": {"path": str(bench.path), "text": bench.text},
              "_speed": opts.speed}
    with opts.db.session() as s:
        pv = repo.register_procedure(s, procedure.id, procedure.version, procedure.title,
                                     procedure.documents, procedure.text)
        certs = [(_certificate(s, cid), slot) for cid, slot in refs.values()]
        run = repo.create_run(
            s, procedure=pv, dut_asset_id=dut.asset_id, mode=mode, params=stored,
            decision_rule=str(params.get("decision_rule", "simple")), bench=bench.name,
            operator_kind=opts.operator.kind, references=certs, performed_by=performer,
            overrides=overrides)
        run_id = int(run.id)
    ref_objects = load_reference_objects(opts.db, refs)
    return asyncio.run(_execute(run_id, procedure, dut, mode, params, ref_objects, opts, {}))


def prepare_resume(db: Any, run_id: int, bench_path: str | None = None
                   ) -> tuple[BenchConfig, dict[str, Any]]:
    """The bench a stored run used (or the one given) and the run's stored parameters."""
    from ..store import repository as repo

    with db.session() as s:
        run = repo.get_run(s, run_id)
        if run is None:
            raise BenchctlError(f"run {run_id} does not exist")
        params = dict(run.params or {})
    stored = params.get("_bench") or {}
    if bench_path:
        bench = load_bench(bench_path)
    elif stored.get("text"):
        bench = parse_bench(stored["text"], Path(stored["path"]))
    else:
        raise BenchctlError(f"run {run_id} has no stored bench file; give --bench")
    return bench, params


def resume_run(run_id: int, opts: RunOptions, *, today: dt.date | None = None,
               override_reason: str | None = None) -> RunOutcome:
    """Go on with a stopped run at its first point not recorded. A reference whose
    certificate fell due since the run started is refused, unless ``override_reason`` is
    given: then the run records it with that reference and in the audit trail (and the
    certificate prints it), as ``start_run`` does for one unfit at the start."""
    from ..store import repository as repo

    library.configure(opts.bench.library)
    today = today or dt.date.today()
    with opts.db.session() as s:
        run = repo.get_run(s, run_id)
        if run is None:
            raise BenchctlError(f"run {run_id} does not exist")
        state = RunState(run.state)
        if state not in RESUMABLE:
            raise BenchctlError(f"run {run_id} is {state}; only an aborted, failed, paused or "
                                "interrupted run can be resumed")
        if state in (RunState.RUNNING, RunState.PAUSED, RunState.ABORTING) and _owner_alive(
                run.host, run.pid):
            raise BenchctlError(f"run {run_id} is still {state} in process {run.pid} on "
                                f"{run.host}; abort it there first")
        proc_id, sha = run.procedure.procedure_id, run.procedure.sha256
        mode = run.mode
        params = {k: v for k, v in (run.params or {}).items() if not k.startswith("_")}
        dut = dut_from_asset(run.dut)
        refs = {r.role: (r.certificate_id, r.role) for r in run.references}
        fell_due = _check_still_fit(run, today, override_reason)
        done = {key: dict(p.data) for key, p in repo.completed_points(s, run_id).items()}
        if fell_due:
            repo.override_references(s, run_id, fell_due)
        repo.set_run_state(s, run_id, RunState.RUNNING, f"resumed by pid {os.getpid()}")
        repo.claim_run(s, run_id, socket.gethostname(), os.getpid())
    procedure = load_procedure(proc_id)
    if procedure.sha256 != sha:
        raise BenchctlError(
            f"run {run_id} was started with procedure {proc_id} sha256 {sha[:12]}…; the file "
            f"now has sha256 {procedure.sha256[:12]}…, so its points would not be comparable",
            detail="restore the procedure file the run used, or start a new run")
    ref_objects = load_reference_objects(opts.db, refs)
    return asyncio.run(_execute(run_id, procedure, dut, mode, params, ref_objects, opts, done))


def _check_still_fit(run: Any, today: dt.date, override_reason: str | None = None
                     ) -> dict[str, tuple[str, str]]:
    """A run goes on only with references still fit for use (ISO/IEC 17025 6.4): one whose
    certificate fell due since the run started is refused, unless ``override_reason`` is
    given; then the overrides to record (role -> (reason, what is wrong)). (One already past
    due when the run started was used on a recorded override: that decision still stands. The
    range of use cannot have changed: same certificate, same parameters.)"""
    from ..records import fitness

    reason = (override_reason or "").strip()
    started = run.started_at.astimezone().date()  # the local day, as start_run judged it
    overrides: dict[str, tuple[str, str]] = {}
    for ref in run.references:
        cert = ref.certificate
        problem = fitness.due_reason(cert.due_on, today)
        if problem is None or fitness.due_reason(cert.due_on, started) is not None:
            continue
        if reason:
            overrides[ref.role] = (reason, f"{problem.text()}; valid when the run started on "
                                           f"{started.isoformat()}")
            continue
        raise fitness.FitnessError(
            cert.asset_id, cert.number, [problem.text()], [problem],
            context=f"run {run.id} cannot be resumed ({ref.role}): ",
            detail=f"the {len(run.points)} points taken before stay recorded, taken while the "
                   "certificate was valid; measure the rest in a new run with a current "
                   "certificate (benchctl cert add ...), or resume with --override-reason TEXT "
                   "to go on with it anyway (recorded, printed on the certificate)")
    return overrides


def _owner_alive(host: str | None, pid: int | None) -> bool:
    if not pid or host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped) is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True

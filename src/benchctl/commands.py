"""The command implementations behind cli.py (imported only once a command is chosen)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .cli import EXIT_ERROR, EXIT_OK, EXIT_RUN_NOT_COMPLETED, print_json
from .config import BenchConfig, load_bench
from .errors import BenchctlError


def _database(url: str | None, bench: BenchConfig | None = None) -> Any:
    from .store import open_database

    return open_database(url or (bench.database_url if bench else None))


# -- sim -------------------------------------------------------------------------------------

def start_bench_simulation(bench: BenchConfig, speed: float) -> Any:
    """Start the simulators a bench file names; returns the running simulation."""
    from . import library

    library.configure(bench.library)
    sim_bench = library.load("simulators", "bench")
    specs: dict[str, dict[str, Any]] = {}
    for name, inst in bench.instruments.items():
        if inst.simulator is None:
            continue
        spec = dict(inst.simulator)
        port = _port_of(inst.resource)
        if port is not None and "port" not in spec and spec.get("transport", "tcp") == "tcp":
            spec["port"] = port
        specs[name] = spec
    if not specs:
        raise BenchctlError(f"{bench.path}: no instrument has a [instruments.NAME.simulator] "
                            "table, so there is nothing to simulate")
    control = bench.simulation.control
    try:
        return sim_bench.start_simulation(specs, speed=speed, seed=bench.simulation.seed,
                                          control=control)
    except ValueError as exc:
        raise BenchctlError(f"{bench.path}: {exc}") from None
    except OSError as exc:
        raise BenchctlError(f"cannot start the simulators of {bench.path}: {exc}") from None


def _port_of(resource: str) -> int | None:
    if resource.startswith("socket://"):
        tail = resource[len("socket://"):].rsplit(":", 1)
        return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None
    parts = resource.split("::")
    if parts[0].upper().startswith("TCPIP") and len(parts) >= 3 and parts[2].isdigit():
        return int(parts[2])
    return None


def simulated_bench(bench: BenchConfig, sim: Any) -> BenchConfig:
    """The bench with resources and the control port of a running simulation."""
    from dataclasses import replace

    b = bench.with_resources(dict(sim.resources))
    return replace(b, simulation=replace(b.simulation, control=sim.control_address))


def cmd_sim(args: argparse.Namespace) -> int:
    bench = load_bench(args.bench)
    speed = args.speed or bench.speed
    sim = start_bench_simulation(bench, speed)
    try:
        print(f"simulated bench {bench.name!r} at speed {speed:g}")
        for name, resource in sim.resources.items():
            print(f"  {name:<14} {resource}")
        print(f"  {'control':<14} {sim.control_address}")
        from .commands_faults import apply_faults

        for line in apply_faults(sim, getattr(args, "fault", None) or []):
            print(line)
        if args.write_bench:
            _write_bench_copy(bench, sim, Path(args.write_bench))
            print(f"bench file with these resources: {args.write_bench}")
        sys.stdout.flush()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait(args.duration)
    finally:
        sim.stop()
    return EXIT_OK


def _replacer(value: str) -> Any:
    return lambda m: str(m.group(1)) + value


def _write_bench_copy(bench: BenchConfig, sim: Any, path: Path) -> None:
    import re

    text = bench.text
    for name, resource in sim.resources.items():
        pattern = re.compile(
            r"(\[instruments\." + re.escape(name) + r"\][^\[]*?resource\s*=\s*)\"[^\"]*\"",
            re.S)
        text = pattern.sub(_replacer(json.dumps(resource)), text, count=1)
    if "[simulation]" in text:
        control = json.dumps(sim.control_address)
        text = re.sub(r"(\[simulation\][^\[]*?control\s*=\s*)\"[^\"]*\"",
                      lambda m: str(m.group(1)) + control, text, count=1, flags=re.S)
        if f'"{sim.control_address}"' not in text:
            text = text.replace("[simulation]",
                                f"[simulation]\ncontrol = {json.dumps(sim.control_address)}", 1)
    else:
        text += f"\n[simulation]\ncontrol = {json.dumps(sim.control_address)}\n"
    # A relative SQLite path in the copy must still name the original bench's database.
    if bench.database:
        text = re.sub(r'(database\s*=\s*)"[^"]*"',
                      lambda m: m.group(1) + json.dumps(bench.database), text, count=1)
    path.write_text(text, encoding="utf-8")


def cmd_fault(args: argparse.Namespace) -> int:
    from .commands_faults import cmd_fault as inject

    return inject(args)


# -- read ------------------------------------------------------------------------------------

def cmd_read(args: argparse.Namespace) -> int:
    from . import library
    from .engine.handles import open_instrument
    from .engine.operators import LoopOperatorPort, TerminalOperator

    bench = load_bench(args.bench)
    library.configure(bench.library)
    if args.instrument not in bench.instruments:
        raise BenchctlError(f"{bench.path}: no instrument {args.instrument!r} "
                            f"(the bench has {', '.join(bench.instruments) or 'none'})")
    import asyncio

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    port = LoopOperatorPort(TerminalOperator(), loop)
    handle = open_instrument(bench, bench.instruments[args.instrument], port)
    inst = handle.instrument
    count = 0
    try:
        while True:
            if handle.role == "environment_monitor":
                amb = inst.read_ambient()  # type: ignore[attr-defined]
                obj = {"instrument": args.instrument, "temperature_c": amb.temperature_c,
                       "humidity_pct": amb.humidity_pct, "pressure_hpa": amb.pressure_hpa,
                       "timestamp": amb.timestamp.isoformat()}
                text = (f"{args.instrument}: t = {amb.temperature_c} °C, "
                        f"RH = {amb.humidity_pct} %, p = {amb.pressure_hpa} hPa")
            else:
                # a balance reads "now"; a pressure or flow indicator simply reads
                read = getattr(inst, "read_now", None) or getattr(inst, "read", None)
                if read is None:
                    raise BenchctlError(f"{args.instrument} ({handle.role}) has no reading")
                reading = read()
                obj = {"instrument": args.instrument, "value": reading.value,
                       "unit": reading.unit, "stable": reading.stable,
                       "timestamp": reading.timestamp.isoformat(),
                       "raw": reading.raw.decode("latin-1")}
                text = (f"{args.instrument}: {reading.value:g} {reading.unit}"
                        f"{'' if reading.stable else ' (not stable)'}")
            print(json.dumps(obj, ensure_ascii=False) if args.json else text, flush=True)
            count += 1
            if not args.watch or (args.count and count >= args.count):
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        handle.close()
        loop.call_soon_threadsafe(loop.stop)
    return EXIT_OK


# -- run / resume ----------------------------------------------------------------------------

def _operator(spec: str, bench: BenchConfig) -> Any:
    from .engine.operators import make_channel

    if spec == "tui":  # `run`/`resume --operator tui` go through _run_in_tui before this
        raise BenchctlError("--operator tui: the run is driven from `benchctl tui --bench "
                            "BENCH` (or `benchctl run ... --operator tui`)")
    control = bench.simulation.control
    if control.endswith(":0"):
        control = ""
    return make_channel(spec, control_address=control or None)


def _listeners(args: argparse.Namespace, operator_kind: str) -> list[Any]:
    from .progress import ProgressPrinter

    return [ProgressPrinter(sys.stderr)]


def _finish(outcome: Any, db: Any, args: argparse.Namespace, operator: Any) -> int:
    from .reports.document import run_document

    doc = run_document(db, outcome.run_id)
    if args.json:
        if getattr(operator, "kind", "") == "stdio-json":
            operator.write({"type": "result", **doc})
        else:
            print_json(doc)
    else:
        # With stdio-json, stdout is the protocol stream: the table goes to stderr.
        stdio = getattr(operator, "kind", "") == "stdio-json"
        print(format_table(doc), file=sys.stderr if stdio else sys.stdout)
        if outcome.state != "completed":
            print(f"run {outcome.run_id} {outcome.state}: {outcome.message}\n"
                  f"continue it with: benchctl resume {outcome.run_id}", file=sys.stderr)
    return EXIT_OK if outcome.state == "completed" else EXIT_RUN_NOT_COMPLETED


def cmd_run(args: argparse.Namespace) -> int:
    from .engine.runner import RunOptions, start_run

    if args.operator == "tui":
        return _run_in_tui(args)
    bench = load_bench(args.bench)
    db = _database(args.db, bench)
    operator = _operator(args.operator, bench)
    opts = RunOptions(bench=bench, operator=operator, db=db, speed=args.speed,
                      listeners=_listeners(args, args.operator))
    outcome = start_run(args.procedure, args.dut, args.mode, args.param, opts,
                        performed_by=args.performed_by, override_reason=args.override_reason)
    return _finish(outcome, db, args, operator)


def cmd_resume(args: argparse.Namespace) -> int:
    from .engine.runner import RunOptions, prepare_resume, resume_run

    if args.operator == "tui":
        return _run_in_tui(args, resume_id=args.run_id)
    db = _database(args.db)
    bench, params = prepare_resume(db, args.run_id, args.bench)
    if not args.db and bench.database_url:
        db = _database(bench.database_url)
    operator = _operator(args.operator, bench)
    speed = args.speed or params.get("_speed")
    opts = RunOptions(bench=bench, operator=operator, db=db, speed=speed,
                      listeners=_listeners(args, args.operator))
    outcome = resume_run(args.run_id, opts, override_reason=args.override_reason)
    return _finish(outcome, db, args, operator)


# -- runs / report / db ----------------------------------------------------------------------

def format_table(doc: dict[str, Any]) -> str:
    """The result table a technician reads on the terminal.

    A procedure may print its own (``format_table(doc)`` in its module: a pressure table has
    up and down columns, a dispenser table flow rates); otherwise the generic one.
    """
    from . import library

    try:
        module = library.load("procedures", str(doc["procedure"]))
    except BenchctlError:
        module = None
    own = getattr(module, "format_table", None)
    if own is not None:
        return str(own(doc))
    return generic_table(doc)


def generic_table(doc: dict[str, Any]) -> str:
    unit = doc["dut"].get("unit") or ""
    calib = doc["mode"] == "calibrate"
    head = (f"run {doc['run_id']} · {doc['procedure']} v{doc['procedure_version']} · "
            f"{'calibration' if calib else 'verification'} · {doc['dut']['maker']} "
            f"{doc['dut']['model']} s/n {doc['dut']['serial']} · state {doc['state']}")
    cols = ["point", f"load/{unit}", f"ref/{unit}", f"indication/{unit}", f"error/{unit}"]
    if calib:
        cols += [f"U/{unit}", "k"]
    cols += [f"MPE/{unit}", "verdict"]
    lines = [head, ""]
    table = []
    for p in doc["points"]:
        if p["test"] == "repeatability":
            ex: dict[str, Any] = p.get("extra") or {}
            ind = f"s={ex.get('s', 0):.3g} range={ex.get('range', 0):.3g}"
        else:
            ind = _g(p["indicated"])
        row = [p["key"], _g(p["nominal"]), _g(p["reference"], 9), ind, _g(p["error"], 4)]
        if calib:
            row += [_g(p["U"], 2), _g(p["k"], 3)]
        row += [_g(p["mpe"], 4), (p["verdict"] or "").upper()]
        table.append(row)
    widths = [max(len(str(r[i])) for r in [cols, *table]) for i in range(len(cols))]
    lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for r in table:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    lines.append("")
    env = doc.get("environment", {})
    for label in ("start", "end"):
        e = env.get(label)
        if e and e.get("measured", True):
            lines.append(f"ambient {label}: {e.get('temperature_c')} °C, "
                         f"{e.get('humidity_pct')} %RH, {e.get('pressure_hpa')} hPa")
    refs = ", ".join(f"{r['asset']} (cert {r['certificate']}, due {r['due_date']})"
                     for r in doc["references"])
    lines.append(f"references: {refs}")
    lines.append(f"decision rule: {doc['decision_rule']}   verdict: "
                 f"{(doc['verdict'] or '—').upper()}")
    return "\n".join(lines)


def _g(v: Any, digits: int = 7) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def cmd_runs(args: argparse.Namespace) -> int:
    from .reports.document import run_document
    from .store import repository as repo

    if args.runs_command not in ("list", "show"):
        raise BenchctlError("use `benchctl runs list` or `benchctl runs show RUN_ID`")
    db = _database(args.db)
    if args.runs_command == "list":
        with db.session() as s:
            rows: list[dict[str, Any]] = [{"run_id": r.id, "procedure": r.procedure.procedure_id,
                     "dut": r.dut_asset_id, "state": r.state,
                     "started_at": r.started_at.isoformat() if r.started_at else None,
                     "verdict": r.verdict, "mode": r.mode}
                    for r in repo.list_runs(s, limit=args.limit)]
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                print(f"{r['run_id']:>6}  {(r['started_at'] or '')[:19]:<19}  "
                      f"{r['procedure']:<16} {r['mode']:<9} {r['dut']:<16} {r['state']:<9} "
                      f"{r['verdict'] or ''}")
        return EXIT_OK
    doc = run_document(db, args.run_id)
    if args.json:
        print_json(doc)
    else:
        print(format_table(doc))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from .reports import write_report
    from .reports.laboratory import load_laboratory

    lab = load_laboratory(args.lab)
    db = _database(args.db)
    lang = args.lang or "vi"
    rep = write_report(db, args.run_id, args.format, args.output, lang=lang, laboratory=lab,
                       folder=args.reports_dir)
    if rep.format in ("csv", "xlsx"):
        print(f"run {args.run_id} data ({rep.points} points, {rep.readings} readings) "
              f"written to {rep.path}")
    else:
        status = "final" if rep.final else "DRAFT: the run is not approved"
        print(f"certificate ({rep.format}, {status}, {lang}) written to {rep.path}")
    return EXIT_OK


def cmd_db(args: argparse.Namespace) -> int:
    if args.db_command != "upgrade":
        raise BenchctlError("use `benchctl db upgrade`")
    db = _database(args.db)
    print(f"database {db.url_masked} is at the newest schema")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


# -- tui -------------------------------------------------------------------------------------

def _launch_tui(bench: BenchConfig | None, db: Any, args: argparse.Namespace,
                job: Any = None) -> Any:
    from .tui.app import BenchApp

    app = BenchApp(bench, db, lang=getattr(args, "lang", None),
                   speed=getattr(args, "speed", None), rate_hz=getattr(args, "rate", 5.0),
                   job=job)
    app.run()
    return app


def cmd_tui(args: argparse.Namespace) -> int:
    """``benchctl tui``: the technician's terminal UI on a bench file (optional: history and
    register work without one)."""
    path = args.bench
    if path is None and Path("bench.toml").is_file():
        path = "bench.toml"
    bench = load_bench(path) if path else None
    db = _database(args.db, bench)
    app = _launch_tui(bench, db, args)
    return int(app.return_code or EXIT_OK)


def _run_in_tui(args: argparse.Namespace, resume_id: int | None = None) -> int:
    """``run``/``resume --operator tui``: the run starts at once in the TUI; when the
    technician quits, the result is printed as ``run`` prints it (exit 0 only if completed)."""
    from .reports.document import run_document
    from .tui.runctl import RunJob

    if resume_id is None:
        bench = load_bench(args.bench)
        db = _database(args.db, bench)
        job = RunJob(args.procedure, args.dut, args.mode, list(args.param))
    else:
        from .engine.runner import prepare_resume

        db = _database(args.db)
        bench, _params = prepare_resume(db, resume_id, args.bench)
        if not args.db and bench.database_url:
            db = _database(bench.database_url)
        job = RunJob("", "", resume_id=resume_id,
                     override_reason=getattr(args, "override_reason", None))
    app = _launch_tui(bench, db, args, job)
    run_id = app.run_model.run_id
    if run_id is None:
        print("benchctl: the run did not start"
              + (f": {app.run_model.message}" if app.run_model.message else ""),
              file=sys.stderr)
        return EXIT_RUN_NOT_COMPLETED
    doc = run_document(db, run_id)
    if args.json:
        print_json(doc)
    else:
        print(format_table(doc))
    return EXIT_OK if doc["state"] == "completed" else EXIT_RUN_NOT_COMPLETED


__all__ = ["EXIT_ERROR", "EXIT_OK"]

"""The record-keeping commands: register, certificates, due dates, traceability, people, review
and approval, amendments, the audit trail.

``cli.main`` looks here before ``commands``: ``cmd_runs`` handles amend/review/approve and
hands list/show on. Heavy imports stay inside the functions, so ``benchctl --help`` is fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .cli import EXIT_OK, EXIT_RUN_NOT_COMPLETED, print_json
from .errors import BenchctlError

#: Exit status of ``audit verify`` when the trail or the records are not intact.
EXIT_AUDIT_BROKEN = EXIT_RUN_NOT_COMPLETED


# --------------------------------------------------------------------------------------------
# Parsers (called by cli.build_parser)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def add_parsers(sub: Any, runs_sub: Any, audit_sub: Any,
                add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the record-keeping sub-commands to benchctl's parser."""
    by_help = ("who makes the change (default: $BENCHCTL_OPERATOR, else the login name); "
               "recorded in the audit trail")

    p = sub.add_parser("asset", help="the asset register: add, import, list, show")
    asub = p.add_subparsers(dest="asset_command", metavar="add|import|list|show")
    q = asub.add_parser("add", help="register an instrument (a DUT or a reference standard)")
    q.add_argument("asset_id", metavar="ID")
    q.add_argument("--kind", required=True,
                   help="balance, fuel_dispenser, pressure_gauge, weight_set, "
                        "pressure_controller, flow_meter, proving_measure, environment_monitor")
    for name in ("maker", "model", "serial", "customer", "owner", "unit"):
        q.add_argument(f"--{name}")
    q.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"))
    q.add_argument("--resolution", type=float)
    q.add_argument("--class", dest="accuracy_class", metavar="CLASS")
    q.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a DUT parameter as in a DUT file (max=6200, d=0.1, e=0.1, ...)")
    q.add_argument("--update", action="store_true", help="change an asset already registered")
    q.add_argument("--by", metavar="NAME", help=by_help)
    add_db(q)
    q = asub.add_parser("import", help="register DUT files and reference files (with their "
                                       "certificates)")
    q.add_argument("files", nargs="+", metavar="FILE")
    q.add_argument("--by", metavar="NAME", help=by_help)
    add_db(q)
    q = asub.add_parser("list", help="list the register")
    q.add_argument("--kind")
    q.add_argument("--json", action="store_true")
    add_db(q)
    q = asub.add_parser("show", help="one asset with its certificates and runs")
    q.add_argument("asset_id", metavar="ID")
    q.add_argument("--json", action="store_true")
    add_db(q)

    p = sub.add_parser("cert", help="reference certificates")
    csub = p.add_subparsers(dest="cert_command", metavar="add")
    q = csub.add_parser(
        "add", help="add a reference certificate: a reference file (per-weight data, per-point "
                    "corrections, proving-measure data), or an asset id with the options")
    q.add_argument("source", metavar="FILE|ASSET")
    q.add_argument("--number")
    q.add_argument("--issuer")
    q.add_argument("--date", type=_date, metavar="YYYY-MM-DD", help="date of issue")
    q.add_argument("--due", type=_date, metavar="YYYY-MM-DD", help="due for recalibration")
    q.add_argument("--U", dest="U", type=float, help="expanded uncertainty")
    q.add_argument("--k", type=float, help="coverage factor")
    q.add_argument("--U-unit", dest="U_unit", help='unit of U when not the asset\'s, e.g. "%%"')
    q.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"),
                   help="the range the certificate covers")
    q.add_argument("--range-unit")
    q.add_argument("--point", action="append", default=[], metavar="NOMINAL:CORRECTION[:U]",
                   help="a calibrated point in the asset's unit: the correction to add to the "
                        "standard's reading there, and its expanded uncertainty; repeatable")
    q.add_argument("--drift", type=float, help="the standard's stated drift (in its unit)")
    q.add_argument("--by", metavar="NAME", help=by_help)
    add_db(q)

    p = sub.add_parser("due", help="reference certificates due for recalibration")
    p.add_argument("--days", type=int, default=30, help="due within this many days (and "
                                                        "everything already past due)")
    p.add_argument("--on", type=_date, default=None, metavar="YYYY-MM-DD",
                   help="count from this date (default today)")
    p.add_argument("--json", action="store_true")
    add_db(p)

    p = sub.add_parser("trace", help="every run and certificate that used a reference")
    p.add_argument("asset_id", metavar="ASSET")
    p.add_argument("--since", type=_date, default=None, metavar="YYYY-MM-DD")
    p.add_argument("--json", action="store_true")
    add_db(p)

    p = sub.add_parser("person", help="the person register: who performs, reviews, signs")
    psub = p.add_subparsers(dest="person_command", metavar="add|list")
    q = psub.add_parser("add", help="register a person or change their roles")
    q.add_argument("name")
    q.add_argument("--role", action="append", default=[], required=True,
                   help="operator, reviewer, signatory or quality_manager; repeatable")
    q.add_argument("--inactive", action="store_true", help="the person no longer works here")
    q.add_argument("--by", metavar="NAME", help=by_help)
    add_db(q)
    q = psub.add_parser("list")
    q.add_argument("--json", action="store_true")
    add_db(q)

    q = runs_sub.add_parser("amend", help="make a corrected revision of a completed run")
    q.add_argument("run_id", type=int)
    q.add_argument("--reason", required=True, help="why (printed on the new certificate)")
    q.add_argument("--by", metavar="NAME", help=by_help)
    q.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a corrected procedure parameter; repeatable")
    q.add_argument("--point", action="append", default=[], metavar="KEY.FIELD=VALUE",
                   help="a corrected recorded value, e.g. weighing.up.50g.indicated=52.0")
    q.add_argument("--json", action="store_true")
    add_db(q)
    q = runs_sub.add_parser("review", help="record the review of a completed run")
    q.add_argument("run_id", type=int)
    q.add_argument("--by", metavar="NAME", required=True, help="the reviewer")
    q.add_argument("--json", action="store_true")
    add_db(q)
    q = runs_sub.add_parser("approve", help="approve a reviewed run: issues its certificate "
                                            "number")
    q.add_argument("run_id", type=int)
    q.add_argument("--by", metavar="NAME", required=True, help="the signatory")
    q.add_argument("--stamp", metavar="S", help="verification stamp serial")
    q.add_argument("--valid-until", type=_date, metavar="YYYY-MM-DD",
                   help="end of the verification's validity")
    q.add_argument("--json", action="store_true")
    add_db(q)

    q = audit_sub.add_parser("log", help="read the audit trail")
    q.add_argument("--entity", help="run, asset, certificate, person, point, procedure, schema")
    q.add_argument("--id", dest="entity_id", help="one record of that entity, e.g. a run id")
    q.add_argument("--limit", type=int, default=100)
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--json", action="store_true")
    add_db(q)


# --------------------------------------------------------------------------------------------
# Helpers


def _database(url: str | None) -> Any:
    from .store import open_database

    return open_database(url)


def _actor(s: Any, by: str | None, roles: Sequence[str] | None = None, what: str = "") -> str:
    """Who makes a register change: checked against the person register once it has anyone
    (``roles``: the roles that may; None: any registered person)."""
    from .records.approval import check_person, default_person
    from .store import repository as repo
    from .store.models import PERSON_ROLES

    name = (by or "").strip() or default_person()
    if repo.list_people(s):
        check_person(s, name, roles or PERSON_ROLES, what or "change of the register")
    return name


def _iso(v: dt.date | dt.datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def _table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _asset_dict(a: Any) -> dict[str, Any]:
    return {"asset": a.id, "kind": a.kind, "maker": a.maker, "model": a.model,
            "serial": a.serial, "customer": a.customer, "owner": a.owner, "unit": a.unit,
            "range": [a.range_min, a.range_max] if a.range_max is not None else None,
            "resolution": a.resolution, "class": a.accuracy_class,
            "params": dict(a.params or {}), "created_at": _iso(a.created_at)}


def _cert_dict(c: Any, on: dt.date) -> dict[str, Any]:
    return {"asset": c.asset_id, "certificate": c.number, "issuer": c.issuer,
            "issued_on": _iso(c.issued_on), "due_date": _iso(c.due_on),
            "days_left": (c.due_on - on).days, "overdue": c.is_due(on), "U": c.U, "k": c.k,
            "U_unit": c.U_unit, "weights": len(c.weights), "data": dict(c.data or {})}


# --------------------------------------------------------------------------------------------
# asset


def cmd_asset(args: argparse.Namespace) -> int:
    handlers = {"add": _asset_add, "import": _asset_import, "list": _asset_list,
                "show": _asset_show}
    handler = handlers.get(args.asset_command or "")
    if handler is None:
        raise BenchctlError("use `benchctl asset add|import|list|show` (see --help)")
    return handler(args)


def _param_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _asset_add(args: argparse.Namespace) -> int:
    from . import assets
    from .store import repository as repo

    params: dict[str, Any] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchctlError(f"--param {item!r}: expected KEY=VALUE")
        params[key.strip()] = _param_value(value.strip())
    fields: dict[str, Any] = {"kind": args.kind}
    for name in ("maker", "model", "serial", "customer", "owner", "unit", "resolution",
                 "accuracy_class"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.range:
        fields["range_min"], fields["range_max"] = args.range
    where = f"benchctl asset add {args.asset_id}"
    if args.kind in assets.DUT_KINDS:
        # The same checks as a DUT file: an impossible balance is refused here too.
        data = {"asset": args.asset_id, "kind": args.kind,
                **{k: fields[k] for k in ("maker", "model", "serial", "customer", "owner",
                                          "unit") if k in fields},
                **params}
        if "accuracy_class" in fields:
            data.setdefault("class", fields["accuracy_class"])
        dut = assets.parse_dut(data, where)
        fields["params"] = dut.params
        fields.setdefault("accuracy_class", str(dut.params.get("class", "")) or None)
        if args.kind == "balance":
            fields.setdefault("resolution", dut.params.get("d"))
            fields.setdefault("range_min", 0.0)
            fields.setdefault("range_max", dut.params.get("max"))
    else:
        known = (*assets.DUT_KINDS, *assets.REFERENCE_KINDS, "pressure_gauge")
        if args.kind not in known:
            raise BenchctlError(f"{where}: --kind {args.kind!r}: expected one of "
                                f"{', '.join(dict.fromkeys(known))}")
        fields["params"] = params
    db = _database(args.db)
    with db.session() as s:
        actor = _actor(s, args.by, what=f"asset add {args.asset_id}")
        if repo.get_asset(s, args.asset_id) is not None and not args.update:
            raise BenchctlError(f"asset {args.asset_id} is already in the register; give "
                                "--update to change it")
        repo.upsert_asset(s, args.asset_id, actor=actor, **fields)
    print(f"asset {args.asset_id} ({args.kind}) {'updated' if args.update else 'registered'} "
          f"in {db.url_masked}")
    return EXIT_OK


def _load_toml(path: Path) -> dict[str, Any]:
    import tomllib

    from .errors import ConfigError

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"valid TOML ({exc})") from None


def _import_file(db: Any, path: Path, actor: str) -> str:
    """Register one DUT or reference file; what was done, for the technician."""
    from . import assets
    from .errors import ConfigError
    from .records.register import store_dut, store_reference

    data = _load_toml(path)
    kind = data.get("kind")
    if kind in assets.DUT_KINDS:
        dut = assets.parse_dut(data, str(path), default_id=path.stem)
        with db.session() as s:
            store_dut(s, dut, actor)
        return f"{path}: DUT {dut.asset_id} ({dut.kind})"
    if kind in assets.REFERENCE_KINDS:
        ref = assets.parse_reference(data, str(path))
        with db.session() as s:
            store_reference(s, ref, actor)
        return (f"{path}: reference {ref.asset_id} ({ref.kind}), certificate "
                f"{ref.certificate.number} due {ref.certificate.due_on.isoformat()}")
    raise ConfigError(str(path), "kind", "a DUT kind (" + ", ".join(assets.DUT_KINDS)
                      + ") or a reference kind (" + ", ".join(assets.REFERENCE_KINDS) + ")",
                      got=kind)


def _asset_import(args: argparse.Namespace) -> int:
    db = _database(args.db)
    with db.session() as s:
        actor = _actor(s, args.by, what="asset import")
    for f in args.files:
        print(_import_file(db, Path(f), actor))
    return EXIT_OK


def _asset_list(args: argparse.Namespace) -> int:
    from .store import repository as repo

    db = _database(args.db)
    with db.session() as s:
        rows = [_asset_dict(a) for a in repo.list_assets(s, kind=args.kind)]
    if args.json:
        print_json(rows)
        return EXIT_OK
    print(_table([[r["asset"], r["kind"], r["maker"] or "", r["model"] or "",
                   r["serial"] or "", r["customer"] or r["owner"] or ""] for r in rows],
                 ["asset", "kind", "maker", "model", "serial", "customer/owner"]))
    return EXIT_OK


def _asset_show(args: argparse.Namespace) -> int:
    from .store import repository as repo

    db = _database(args.db)
    today = dt.date.today()
    with db.session() as s:
        asset = repo.get_asset(s, args.asset_id)
        if asset is None:
            raise BenchctlError(f"asset {args.asset_id} is not in the register of "
                                f"{db.url_masked}")
        out = _asset_dict(asset)
        out["certificates"] = [_cert_dict(c, today)
                               for c in repo.list_certificates(s, asset_id=asset.id)]
        out["runs"] = [{"run_id": r.id, "started_at": _iso(r.started_at), "state": r.state,
                        "verdict": r.verdict, "certificate_number": r.certificate_number}
                       for r in repo.find_runs(s, dut=asset.id, limit=20)]
        out["used_by_runs"] = len(repo.trace_asset(s, asset.id))
    if args.json:
        print_json(out)
        return EXIT_OK
    print(f"asset {out['asset']} · {out['kind']} · {out['maker'] or ''} {out['model'] or ''} "
          f"s/n {out['serial'] or '—'}")
    for label, key in (("customer", "customer"), ("owner", "owner"), ("unit", "unit"),
                       ("class", "class"), ("resolution", "resolution"), ("range", "range")):
        if out[key] not in (None, "", []):
            print(f"  {label}: {out[key]}")
    if out["params"]:
        print(f"  parameters: {json.dumps(out['params'], ensure_ascii=False)}")
    if out["certificates"]:
        print("certificates:")
        for c in out["certificates"]:
            state = "PAST DUE" if c["overdue"] else f"{c['days_left']} days left"
            print(f"  {c['certificate']}  {c['issuer']}  issued {c['issued_on']}  "
                  f"due {c['due_date']} ({state})"
                  + (f"  {c['weights']} weights" if c["weights"] else ""))
    if out["runs"]:
        print("runs as DUT (newest first):")
        for r in out["runs"]:
            print(f"  run {r['run_id']}  {(r['started_at'] or '')[:19]}  {r['state']}  "
                  f"{r['verdict'] or ''}  {r['certificate_number'] or ''}".rstrip())
    if out["used_by_runs"]:
        print(f"used as a reference by {out['used_by_runs']} run(s): benchctl trace "
              f"{out['asset']}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# cert, due, trace


def cmd_cert(args: argparse.Namespace) -> int:
    from .store import repository as repo

    if args.cert_command != "add":
        raise BenchctlError("use `benchctl cert add FILE|ASSET ...` (see --help)")
    db = _database(args.db)
    source = Path(args.source)
    if source.suffix == ".toml" or source.is_file():
        given = [f"--{n.replace('_', '-')}"
                 for n in ("number", "issuer", "date", "due", "U", "k", "U_unit", "range",
                           "range_unit", "drift") if getattr(args, n) is not None]
        given += ["--point"] if args.point else []
        if given:
            raise BenchctlError(f"cert add {args.source}: the file states the certificate; "
                                f"{', '.join(given)} would be ignored")
        with db.session() as s:
            actor = _actor(s, args.by, what="cert add")
        print(_import_file(db, source, actor))
        return EXIT_OK
    missing = [f"--{n.replace('_', '-')}" for n in ("number", "issuer", "date", "due")
               if getattr(args, n) is None]
    if missing:
        raise BenchctlError(f"cert add {args.source}: {args.source} is not a file, so it is an "
                            f"asset id and the certificate needs {', '.join(missing)}")
    data: dict[str, Any] = {}
    if args.range:
        data["range"] = list(args.range)
    if args.range_unit:
        data["range_unit"] = args.range_unit
    if args.point:
        data["points"] = _cert_points(args.point)
    if args.drift is not None:
        data["drift"] = args.drift
    with db.session() as s:
        actor = _actor(s, args.by, what=f"cert add {args.source}")
        if repo.get_asset(s, args.source) is None:
            raise BenchctlError(f"cert add: asset {args.source} is not in the register "
                                "(benchctl asset add, or give a reference file)")
        cert = repo.add_certificate(s, args.source, number=args.number, issuer=args.issuer,
                                    issued_on=args.date, due_on=args.due, U=args.U, k=args.k,
                                    U_unit=args.U_unit, data=data, actor=actor)
        number, due = cert.number, cert.due_on
    print(f"certificate {number} of {args.source} registered, due {due.isoformat()}")
    return EXIT_OK


def _cert_points(items: Sequence[str]) -> list[dict[str, float]]:
    """``--point NOMINAL:CORRECTION[:U]`` -> the certificate's points, by nominal value."""
    out: dict[float, dict[str, float]] = {}
    for item in items:
        parts = item.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            numbers = [float(x) for x in parts]
        except ValueError:
            raise BenchctlError(f"--point {item!r}: expected NOMINAL:CORRECTION or "
                                "NOMINAL:CORRECTION:U, numbers in the asset's unit") from None
        point = {"nominal": numbers[0], "correction": numbers[1]}
        if len(numbers) == 3:
            if numbers[2] <= 0:
                raise BenchctlError(f"--point {item!r}: U must be positive")
            point["U"] = numbers[2]
        if numbers[0] in out:
            raise BenchctlError(f"--point {item!r}: nominal {numbers[0]:g} is given twice")
        out[numbers[0]] = point
    return [out[k] for k in sorted(out)]


def cmd_due(args: argparse.Namespace) -> int:
    from .store import repository as repo

    if args.days < 0:
        raise BenchctlError(f"--days {args.days}: expected 0 or more")
    on = args.on or dt.date.today()
    db = _database(args.db)
    with db.session() as s:
        rows = [{**_cert_dict(c, on), "kind": c.asset.kind, "maker": c.asset.maker,
                 "model": c.asset.model, "serial": c.asset.serial}
                for c in repo.due_certificates(s, args.days, on)]
    if args.json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        print(f"no reference certificate is due within {args.days} days of {on.isoformat()}")
        return EXIT_OK
    print(_table([[r["asset"], r["kind"], r["certificate"], r["due_date"],
                   "PAST DUE" if r["overdue"] else f"in {r['days_left']} days"] for r in rows],
                 ["asset", "kind", "certificate", "due", "status"]))
    return EXIT_OK


def cmd_trace(args: argparse.Namespace) -> int:
    from .store import repository as repo

    db = _database(args.db)
    with db.session() as s:
        asset = repo.get_asset(s, args.asset_id)
        if asset is None:
            raise BenchctlError(f"trace: asset {args.asset_id} is not in the register of "
                                f"{db.url_masked}")
        runs = repo.trace_asset(s, args.asset_id, since=args.since)
        certs = {c.number: _cert_dict(c, dt.date.today())
                 for c in repo.list_certificates(s, asset_id=args.asset_id)}
    used = sorted({r["reference_certificate"] for r in runs})
    out = {"asset": args.asset_id, "kind": asset.kind,
           "since": _iso(args.since), "certificates": [certs[n] for n in used if n in certs],
           "runs": runs}
    if args.json:
        print_json(out)
        return EXIT_OK
    since = f" since {args.since.isoformat()}" if args.since else ""
    if not runs:
        print(f"no run used {args.asset_id}{since}")
        return EXIT_OK
    print(f"{args.asset_id} ({asset.kind}) was used by {len(runs)} run(s){since}, with "
          f"certificate(s) {', '.join(used)}:")
    print(_table([[str(r["run_id"]), (r["started_at"] or "")[:10], r["procedure"], r["dut"],
                   r["customer"] or "", r["reference_certificate"],
                   r["certificate_number"] or "(not approved)",
                   f"rev {r['revision']}" + (f" → run {r['replaced_by_run_id']}"
                                             if r["replaced_by_run_id"] else ""),
                   "OVERRIDE" if r["override_reason"] else ""] for r in runs],
                 ["run", "date", "procedure", "DUT", "customer", "ref. certificate",
                  "certificate", "revision", ""]))
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# person


def cmd_person(args: argparse.Namespace) -> int:
    from .store import repository as repo

    db = _database(args.db)
    if args.person_command == "add":
        with db.session() as s:
            people = repo.list_people(s)
            managers = [p for p in people if "quality_manager" in p.roles and p.active]
            # Once the register has a quality manager, only one may change it.
            actor = _actor(s, args.by, ("quality_manager",) if managers else None,
                           f"person add {args.name}")
            existed = repo.get_person(s, args.name) is not None
            p = repo.add_person(s, args.name, args.role, active=not args.inactive, actor=actor)
            roles, active = list(p.roles), p.active
        print(f"{args.name}: {', '.join(roles)}{'' if active else ' (inactive)'} "
              f"{'updated' if existed else 'registered'}")
        return EXIT_OK
    if args.person_command == "list":
        with db.session() as s:
            rows: list[dict[str, Any]] = [
                {"name": p.name, "roles": list(p.roles), "active": p.active}
                for p in repo.list_people(s)]
        if args.json:
            print_json(rows)
        else:
            print(_table([[r["name"], ", ".join(r["roles"]), "" if r["active"] else "inactive"]
                          for r in rows], ["name", "roles", ""]))
        return EXIT_OK
    raise BenchctlError("use `benchctl person add NAME --role ROLE` or `benchctl person list`")


# --------------------------------------------------------------------------------------------
# runs amend / review / approve


def cmd_runs(args: argparse.Namespace) -> int:
    from . import commands

    if args.runs_command == "amend":
        return _runs_amend(args)
    if args.runs_command == "review":
        return _runs_review(args)
    if args.runs_command == "approve":
        return _runs_approve(args)
    return int(commands.cmd_runs(args))


def _print_people(people: dict[str, Any], args: argparse.Namespace, head: str) -> None:
    if args.json:
        print_json({"run_id": args.run_id, **people})
        return
    print(head)
    for label, who, when in (("performed by", "performed_by", "performed_at"),
                             ("reviewed by", "reviewed_by", "reviewed_at"),
                             ("approved by", "approved_by", "approved_at")):
        print(f"  {label:<13} {people[who] or '—'}  {people[when] or ''}".rstrip())
    if people["stamp_number"] or people["valid_until"]:
        print(f"  stamp {people['stamp_number'] or '—'}, valid until "
              f"{people['valid_until'] or '—'}")


def _runs_review(args: argparse.Namespace) -> int:
    from .records.approval import review

    db = _database(args.db)
    people = review(db, args.run_id, args.by)
    _print_people(people, args, f"run {args.run_id} reviewed by {args.by}; it now needs "
                                "approval by a signatory")
    return EXIT_OK


def _runs_approve(args: argparse.Namespace) -> int:
    from .records.approval import approve

    db = _database(args.db)
    people = approve(db, args.run_id, args.by, stamp_number=args.stamp,
                     valid_until=args.valid_until)
    _print_people(people, args, f"run {args.run_id} approved: certificate "
                                f"{people['certificate_number']}")
    return EXIT_OK


def _runs_amend(args: argparse.Namespace) -> int:
    from .records.amend import amend_run
    from .store import repository as repo

    db = _database(args.db)
    new_id = amend_run(db, args.run_id, reason=args.reason, by=args.by, params=args.param,
                       corrections=args.point)
    with db.session() as s:
        people = repo.run_people(s, new_id)
        run = repo.get_run(s, new_id)
        verdict = run.verdict if run else None
    if args.json:
        print_json({"run_id": new_id, "replaces_run_id": args.run_id, "verdict": verdict,
                    **people})
    else:
        print(f"run {new_id} is revision {people['revision']} of run {args.run_id} "
              f"(verdict {verdict or '—'}); it needs review and approval before its "
              "certificate is final")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# audit


def cmd_audit(args: argparse.Namespace) -> int:
    from .store import repository as repo

    if args.audit_command == "verify":
        db = _database(args.db)
        with db.session() as s:
            problems = repo.audit_problems(s)
            count, head = s.execute(_last_event()).one()
        if not problems:
            print(f"audit trail of {db.url_masked}: intact ({count or 0} events; every "
                  f"record matches it); last hash {head or repo.GENESIS_HASH}")
            return EXIT_OK
        print(f"audit trail of {db.url_masked}: BROKEN: {problems[0]}", file=sys.stderr)
        if len(problems) > 1:
            print(f"  and {len(problems) - 1} more problem(s):", file=sys.stderr)
            for p in problems[1:11]:
                print(f"  {p}", file=sys.stderr)
        return EXIT_AUDIT_BROKEN
    if args.audit_command == "log":
        return _audit_log(args)
    raise BenchctlError("use `benchctl audit verify` or `benchctl audit log`")


def _last_event() -> Any:
    from sqlalchemy import func, select

    from .store.models import AuditEvent

    newest = select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1).scalar_subquery()
    return select(func.count(AuditEvent.id), newest)


def _audit_log(args: argparse.Namespace) -> int:
    from .store import repository as repo
    from .store.integrity import rows_of, without_rows

    db = _database(args.db)
    with db.session() as s:
        rows = [{"id": e.id, "at": _iso(e.at), "actor": e.actor, "action": e.action,
                 "entity": e.entity, "entity_id": e.entity_id, "before": e.before,
                 "after": without_rows(e.after), "rows": len(rows_of(e.after)),
                 "hash": e.hash}
                for e in repo.audit_events(s, entity=args.entity, entity_id=args.entity_id,
                                           limit=args.limit, offset=args.offset)]
    if args.json:
        print_json(rows)
        return EXIT_OK
    for r in rows:
        print(f"{r['id']:>6}  {(r['at'] or '')[:19]}  {r['actor']:<20} {r['action']:<18} "
              f"{r['entity']}:{r['entity_id']}")
        if r["before"] is not None:
            print(f"        before: {json.dumps(r['before'], ensure_ascii=False)[:300]}")
        if r["after"] is not None:
            print(f"        after:  {json.dumps(r['after'], ensure_ascii=False)[:300]}")
    return EXIT_OK

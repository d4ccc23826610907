"""The one command-line entry. Thin: parse, then call into the modules that do the work.

Imports are deferred into each command so ``benchctl --help`` starts fast on a bench PC.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_RUN_NOT_COMPLETED = 1
EXIT_ERROR = 2


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="database URL (default: the bench file's, "
                   "then $BENCHCTL_DATABASE_URL, then sqlite:///benchctl.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchctl",
        description="Calibration-bench controller: instruments, procedures, records, "
                    "certificates.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="run the bundled procedures on the simulated bench")
    _add_db(p)
    p.add_argument("--out", default="demo-out", help="folder for the database and certificates")
    p.add_argument("--speed", type=float, default=50.0, help="simulated time factor")
    p.add_argument("--only", action="append", metavar="JOB",
                   help="run only this demo job (balance, pressure, dispenser); repeatable")

    p = sub.add_parser("sim", help="start the simulators a bench file names")
    p.add_argument("--bench", default="bench.toml")
    p.add_argument("--speed", type=float, default=None)
    p.add_argument("--write-bench", metavar="FILE",
                   help="write a copy of the bench file with the simulators' real resources")
    p.add_argument("--duration", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--fault", action="append", default=[], metavar="NAME:MODE[:COUNT]",
                   help="start with a fault pending on a simulated instrument (repeatable); "
                        "later ones: `benchctl fault`")
    from .commands_faults import add_parser as add_fault_parser

    add_fault_parser(sub)

    p = sub.add_parser("read", help="read one instrument of the bench")
    p.add_argument("instrument")
    p.add_argument("--bench", default="bench.toml")
    p.add_argument("--watch", action="store_true", help="keep reading until Ctrl-C")
    p.add_argument("--json", action="store_true")
    p.add_argument("--count", type=int, default=None, help=argparse.SUPPRESS)

    operator_help = "tui, terminal, stdio-json, answers:FILE or sim"
    p = sub.add_parser("run", help="run a procedure")
    p.add_argument("procedure", help="bundled procedure id (nawi_balance) or a file path")
    p.add_argument("--bench", default="bench.toml")
    p.add_argument("--dut", required=True, help="DUT file or asset id")
    p.add_argument("--operator", default="terminal", help=operator_help)
    p.add_argument("--mode", choices=("verify", "calibrate"), default="verify")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--speed", type=float, default=None)
    p.add_argument("--performed-by", metavar="NAME", default=None,
                   help="who performs the run (default $BENCHCTL_OPERATOR, then the login "
                        "name); a registered operator once the person register has anyone")
    p.add_argument("--override-reason", metavar="TEXT", default=None,
                   help="use a reference past its due date or outside its certificate's "
                        "range anyway, for this reason (recorded, printed on the certificate)")
    _add_db(p)
    p.add_argument("--json", action="store_true", help="print the run as one JSON object")

    p = sub.add_parser("resume", help="continue an aborted or interrupted run")
    p.add_argument("run_id", type=int)
    p.add_argument("--operator", default="terminal", help=operator_help)
    p.add_argument("--bench", default=None, help="bench file (default: the one the run used)")
    p.add_argument("--speed", type=float, default=None)
    p.add_argument("--override-reason", metavar="TEXT", default=None,
                   help="go on with a reference whose certificate fell due since the run "
                        "started, for this reason (recorded, printed on the certificate)")
    _add_db(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("runs", help="list or show runs")
    runs_sub = p.add_subparsers(dest="runs_command",
                                metavar="list|show|amend|review|approve")
    q = runs_sub.add_parser("list")
    q.add_argument("--limit", type=int, default=50)
    _add_db(q)
    q.add_argument("--json", action="store_true")
    q = runs_sub.add_parser("show")
    q.add_argument("run_id", type=int)
    _add_db(q)
    q.add_argument("--json", action="store_true")

    p = sub.add_parser("report", help="write a run's certificate or data")
    p.add_argument("run_id", type=int)
    p.add_argument("--format", choices=("html", "pdf", "dcc", "csv", "xlsx"), default="html",
                   help="certificate (html, pdf, dcc = PTB DCC XML) or the run's data (csv, "
                        "xlsx)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="file to write, inside the reports folder")
    p.add_argument("--lang", choices=("vi", "en"), default=None,
                   help="the certificate's first language (default vi)")
    p.add_argument("--reports-dir", metavar="DIR", default=None,
                   help="the reports folder FILE must stay inside (default "
                        "$BENCHCTL_REPORTS_DIR, then the current directory)")
    p.add_argument("--lab", metavar="FILE", default=None,
                   help="laboratory header file (TOML; default $BENCHCTL_LABORATORY)")
    _add_db(p)

    p = sub.add_parser("tui", help="the technician's terminal UI: live bench, runs, history, "
                                   "register")
    p.add_argument("--bench", default=None,
                   help="bench file (default: bench.toml in the current folder, if any)")
    _add_db(p)
    p.add_argument("--lang", choices=("vi", "en"), default=None,
                   help="language to start in (default: the bench file's locale); F8 switches")
    p.add_argument("--speed", type=float, default=None, help="simulated time factor of runs")
    p.add_argument("--rate", type=float, default=5.0, help="live readings per second and "
                   "instrument (environment monitors at most 1)")

    p = sub.add_parser("db", help="database maintenance")
    db_sub = p.add_subparsers(dest="db_command", metavar="upgrade")
    q = db_sub.add_parser("upgrade", help="bring the schema to the newest version")
    _add_db(q)

    p = sub.add_parser("audit", help="audit trail")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="verify|log")
    q = audit_sub.add_parser("verify", help="check the audit trail's hash chain and that every "
                                            "record matches it")
    _add_db(q)

    from .commands_records import add_parsers

    add_parsers(sub, runs_sub, audit_sub, _add_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_ERROR
    from .errors import BenchctlError

    try:
        from . import commands, commands_records

        name = "cmd_" + args.command
        handler = getattr(commands_records, name, None) or getattr(commands, name)
        return int(handler(args))
    except BenchctlError as exc:
        _print_error(str(exc), exc.detail)
        if args.debug:
            raise
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("benchctl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug or os.environ.get("BENCHCTL_DEBUG"):
            raise
        _print_error(f"unexpected {type(exc).__name__}: {exc}",
                     "this is a bug in benchctl; run again with --debug for the traceback")
        return EXIT_ERROR


def _print_error(message: str, detail: str | None) -> None:
    print(f"benchctl: error: {message}", file=sys.stderr)
    if detail:
        for line in detail.splitlines():
            print(f"  {line}", file=sys.stderr)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Fault injection from the command line: ``benchctl sim --fault`` and ``benchctl fault``.

A technician (or a test) proves what benchctl does when a cable comes loose by making it
happen on the simulated bench: ``benchctl sim --bench B --fault balance:garbage:3`` starts the
simulators with three garbled replies pending, and ``benchctl fault balance disconnect
--bench COPY`` injects one later, from another terminal, through the simulators' control port
(the bench copy written by ``benchctl sim --write-bench COPY`` names it).
"""

from __future__ import annotations

import argparse
import json
import socket
from typing import Any

from .errors import BenchctlError

#: What ``--fault``/``benchctl fault`` accept; the simulators' world checks the rest.
MODES = ("silence", "garbage", "truncated", "error", "busy", "stall", "wrong_unit",
         "disconnect", "power_cycle", "slow", "refuse", "exception", "queue_error", "clear")


def parse_fault(spec: str) -> dict[str, Any]:
    """``NAME:MODE[:COUNT[:DELAY]]`` -> the control port's fault action."""
    parts = spec.split(":")
    if not 2 <= len(parts) <= 4 or not parts[0] or not parts[1]:
        raise BenchctlError(f"--fault {spec!r}: expected NAME:MODE[:COUNT[:DELAY]], e.g. "
                            "balance:garbage:3")
    name, mode = parts[0], parts[1]
    if mode not in MODES:
        raise BenchctlError(f"--fault {spec!r}: unknown mode {mode!r}; expected one of "
                            f"{', '.join(MODES)}")
    action: dict[str, Any] = {"type": "fault", "instrument": name, "mode": mode}
    if len(parts) >= 3:
        if not parts[2].isdigit():
            raise BenchctlError(f"--fault {spec!r}: COUNT must be a whole number ≥ 0")
        action["count"] = int(parts[2])
    if len(parts) == 4:
        try:
            action["delay"] = float(parts[3])
        except ValueError:
            raise BenchctlError(f"--fault {spec!r}: DELAY must be simulated seconds") from None
    return action


def apply_faults(sim: Any, specs: list[str]) -> list[str]:
    """Inject ``--fault`` specs into a running simulation; one line of report per fault."""
    lines = []
    for spec in specs:
        action = parse_fault(spec)
        if action["instrument"] not in sim.resources:
            raise BenchctlError(f"--fault {spec!r}: no simulated instrument "
                                f"{action['instrument']!r} (this bench simulates "
                                f"{', '.join(sim.resources) or 'nothing'})")
        reply = sim.world.apply(action)
        if not reply.get("ok"):
            raise BenchctlError(f"--fault {spec!r}: {reply.get('error')}")
        lines.append(_describe(action))
    return lines


def _describe(action: dict[str, Any]) -> str:
    if action["mode"] == "clear":
        return f"fault on {action['instrument']}: cleared"
    count = action.get("count", 1)
    return f"fault on {action['instrument']}: {action['mode']} × {count}"


def send(address: str, action: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """One action to the simulators' control port (``HOST:PORT``) and its reply."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) == 0:
        raise BenchctlError(f"control address {address!r}: expected HOST:PORT of a running "
                            "`benchctl sim` (port 0 means it was not fixed)",
                            detail="use the address `benchctl sim` prints, or the bench copy "
                                   "it writes with --write-bench FILE")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout) as s:
            s.sendall(json.dumps(action).encode("utf-8") + b"\n")
            with s.makefile("rb") as f:
                line = f.readline()
    except OSError as exc:
        raise BenchctlError(f"cannot reach the simulators' control port {address}: {exc}",
                            detail="is `benchctl sim` running?") from None
    if not line:
        raise BenchctlError(f"the simulators' control port {address} closed the connection")
    try:
        reply: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        raise BenchctlError(f"the control port {address} answered {line[:80]!r}, not JSON"
                            ) from None
    return reply


def cmd_fault(args: argparse.Namespace) -> int:
    from .cli import EXIT_ERROR, EXIT_OK, print_json
    from .config import load_bench

    address = args.control
    if not address:
        bench = load_bench(args.bench)
        address = bench.simulation.control
    spec = f"{args.instrument}:{args.mode}"
    action = parse_fault(spec)
    action["count"] = args.count
    if args.delay is not None:
        action["delay"] = args.delay
    if args.code is not None:
        action["code"] = args.code
    reply = send(address, action)
    if args.json:
        print_json(reply)
    elif reply.get("ok"):
        print(_describe(action))
    if not reply.get("ok"):
        raise BenchctlError(f"the simulators refused the fault: {reply.get('error')}")
    return EXIT_OK if reply.get("ok") else EXIT_ERROR


def add_parser(sub: Any) -> None:
    """``benchctl fault`` (cli.py calls this: one line there)."""
    p = sub.add_parser("fault", help="inject a fault into a running `benchctl sim`",
                       description="Inject a fault into a simulated instrument through the "
                                   "control port of a running `benchctl sim`. Modes: "
                                   + ", ".join(MODES))
    p.add_argument("instrument", help="the simulated instrument's name in the bench file")
    p.add_argument("mode", choices=MODES, metavar="MODE", help=", ".join(MODES))
    p.add_argument("--count", type=int, default=1,
                   help="how many replies (or connections, or queue entries) it affects")
    p.add_argument("--delay", type=float, default=None,
                   help="simulated seconds for stall and slow (default 1)")
    p.add_argument("--code", type=int, default=None,
                   help="the exception code (Modbus) or the error-queue code (SCPI, e.g. -222)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--bench", default="bench.toml",
                       help="bench file whose [simulation] control names the port (the copy "
                            "`benchctl sim --write-bench` writes)")
    where.add_argument("--control", metavar="HOST:PORT", default=None,
                       help="the control address `benchctl sim` printed")
    p.add_argument("--json", action="store_true", help="print the simulators' reply")

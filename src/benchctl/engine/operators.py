"""Operator channels: the one way a procedure talks to the technician.

Implementations: a terminal prompt, ``stdio-json`` (for robots and automated runs), a
scripted answers file, and a simulated operator that acts on the simulated world. The TUI
brings its own. All validate numeric entries the same way.
"""

from __future__ import annotations

import abc
import asyncio
import fnmatch
import io
import json
import math
import socket
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any, TextIO

from ..errors import BenchctlError, ConfigError, OperatorAbort
from ..operator import OperatorAnswer, OperatorPort, OperatorRequest


def check_number(request: OperatorRequest, value: float, unit: str | None) -> str | None:
    """Why an entered number is not acceptable for ``request``, or None when it is."""
    if not math.isfinite(value):
        return "not a finite number"
    if request.unit and unit and unit != request.unit:
        return f"unit {unit!r} given, {request.unit!r} expected"
    if request.minimum is not None and value < request.minimum:
        return f"{value} is below the minimum {request.minimum} {request.unit or ''}".rstrip()
    if request.maximum is not None and value > request.maximum:
        return f"{value} is above the maximum {request.maximum} {request.unit or ''}".rstrip()
    if request.resolution:
        steps = value / request.resolution
        if abs(steps - round(steps)) > 1e-6:
            return f"{value} is not a multiple of the resolution {request.resolution}"
    return None


class OperatorChannel(abc.ABC):
    """Async access to the operator for procedures; events are progress for whoever watches."""

    kind: str = ""

    @abc.abstractmethod
    async def ask(self, request: OperatorRequest) -> OperatorAnswer: ...

    async def event(self, event: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Progress; channels without a watcher ignore it."""

    async def close(self) -> None:  # noqa: B027 - optional
        pass

    def bind(self, ctx: Any) -> None:  # noqa: B027 - optional
        """Called with the run context once the run starts (channels that can pause/abort)."""


class LoopOperatorPort(OperatorPort):
    """Blocking bridge for manual instruments, which run in their worker thread."""

    def __init__(self, channel: OperatorChannel, loop: asyncio.AbstractEventLoop) -> None:
        self.channel = channel
        self.loop = loop

    def ask(self, request: OperatorRequest) -> OperatorAnswer:
        return asyncio.run_coroutine_threadsafe(self.channel.ask(request), self.loop).result()


def undecodable(line: str) -> bool:
    """True for a line holding bytes its stream could not decode (kept as surrogates)."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class LineReader:
    """One thread reading lines from a stream into the event loop.

    A pending question can be withdrawn (the instrument came back by itself); with a single
    reader, a line typed for it is never stolen by a reader left behind by the withdrawn one.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._queue: asyncio.Queue[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            # Under a UTF-8 locale stdin decodes strictly: one byte that is not UTF-8 would
            # kill the reader thread (losing what it had buffered) and the run would wait for
            # ever. Keep such bytes as surrogates; the channel says so and asks again.
            stream.reconfigure(errors="surrogateescape")

    def _start(self) -> asyncio.Queue[str]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            queue: asyncio.Queue[str] = asyncio.Queue()
            self._queue = queue

            def pump() -> None:
                while True:
                    try:
                        line = self.stream.readline()
                    except UnicodeDecodeError as exc:  # a stream that cannot be reconfigured
                        bad = exc.object[exc.start:exc.end]
                        line = bytes(bad).decode("utf-8", "surrogateescape") + "\n"
                    except (OSError, ValueError):  # the terminal hung up (EIO), or closed
                        line = ""
                    try:
                        loop.call_soon_threadsafe(queue.put_nowait, line)
                    except RuntimeError:  # the loop has closed
                        return
                    if line == "":
                        return

            threading.Thread(target=pump, name="operator-input", daemon=True).start()
        return self._queue

    async def readline(self) -> str:
        """The next line ("" at end of input, and every time after)."""
        queue = self._start()
        line = await queue.get()
        if line == "":
            queue.put_nowait("")
        return line


class TerminalOperator(OperatorChannel):
    """A technician at the keyboard. Prompts go to stderr so ``--json`` keeps stdout clean."""

    kind = "terminal"

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stderr
        self.reader = LineReader(self.stdin)

    async def event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "request_withdrawn":
            self.out.write(f"\n  ({event.get('reason')}: continuing, no answer needed)\n")
            self.out.flush()

    async def _input(self, prompt: str) -> str:
        """The next line typed, stripped; a line that is not text is refused and asked again
        (the stdio-json channel answers such a line with ``invalid_answer`` the same way)."""
        while True:
            self.out.write(prompt)
            self.out.flush()
            line = await self.reader.readline()
            if line == "":
                raise OperatorAbort("the terminal closed (end of input)")
            if not undecodable(line):
                return line.strip()
            raw = line.rstrip("\n").encode("utf-8", "surrogateescape")
            self.out.write(f"  {raw!r} is not UTF-8 text (set the terminal to UTF-8); "
                           "type it again\n")

    async def ask(self, request: OperatorRequest) -> OperatorAnswer:
        self.out.write(f"\n[{request.key}] {request.text}\n")
        while True:
            if request.kind == "instruction":
                line = await self._input("  Enter = done, a = abort: ")
                if line.lower() in ("a", "abort"):
                    return OperatorAnswer(ok=False, abort=True, raw=line.encode())
                return OperatorAnswer(ok=True, raw=line.encode())
            if request.kind == "confirm":
                line = await self._input("  y = yes, n = no, a = abort: ")
                if line.lower() in ("a", "abort"):
                    return OperatorAnswer(ok=False, abort=True, raw=line.encode())
                if line.lower() in ("y", "yes", "c", "có", "co", ""):
                    return OperatorAnswer(ok=True, raw=line.encode())
                if line.lower() in ("n", "no", "không", "khong"):
                    return OperatorAnswer(ok=False, raw=line.encode())
                continue
            if request.kind == "choice":
                for i, option in enumerate(request.options, 1):
                    self.out.write(f"  {i}. {option}\n")
                line = await self._input("  number: ")
                if line.isdigit() and 1 <= int(line) <= len(request.options):
                    return OperatorAnswer(value=request.options[int(line) - 1], raw=line.encode())
                continue
            unit = f" [{request.unit}]" if request.unit else ""
            line = await self._input(f"  value{unit} (a = abort): ")
            if line.lower() in ("a", "abort"):
                return OperatorAnswer(ok=False, abort=True, raw=line.encode())
            try:
                value = float(line.replace(",", "."))
            except ValueError:
                self.out.write(f"  '{line}' is not a number\n")
                continue
            problem = check_number(request, value, request.unit)
            if problem:
                self.out.write(f"  {problem}\n")
                continue
            return OperatorAnswer(value=value, unit=request.unit, raw=line.encode())


class StdioJsonOperator(OperatorChannel):
    """One JSON object per line out, one answer per line in (DESIGN.md contract)."""

    kind = "stdio-json"

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.reader = LineReader(self.stdin)
        self._next_id = 0
        self._withdrawn: set[int] = set()
        self._pending: int | None = None
        self._answers: asyncio.Queue[str] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._ctx: Any = None

    def bind(self, ctx: Any) -> None:
        """Lines ``{"type": "pause"}``, ``{"type": "resume"}`` and ``{"type": "abort"}`` may
        arrive at any time and control the run."""
        self._ctx = ctx
        self._start_pump()

    def _start_pump(self) -> asyncio.Queue[str]:
        if self._answers is None:
            self._answers = asyncio.Queue()
            self._pump = asyncio.ensure_future(self._read_lines(self._answers))
        return self._answers

    async def _read_lines(self, answers: asyncio.Queue[str]) -> None:
        while True:
            line = await self.reader.readline()
            command = _control_command(line)
            if command and self._ctx is not None:
                {"pause": self._ctx.request_pause, "resume": self._ctx.request_resume,
                 "abort": self._ctx.request_abort}[command]()
                self.write({"type": "event", "event": "control", "command": command})
                continue
            answers.put_nowait(line)
            if line == "":
                return

    def write(self, obj: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stdout.flush()

    async def event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "request_withdrawn" and self._pending is not None:
            event = {**event, "id": self._pending}
        self.write({"type": "event", **event})

    async def ask(self, request: OperatorRequest) -> OperatorAnswer:
        self._next_id += 1
        rid = self._next_id
        self._pending = rid
        self.write(request.to_json(rid))
        answers = self._start_pump()
        try:
            while True:
                line = await answers.get()
                if line == "":
                    answers.put_nowait("")
                    raise OperatorAbort("stdio-json: the operator closed its input")
                if self._late(line):
                    continue
                problem, answer = self._parse(rid, request, line)
                if answer is not None:
                    return answer
                self.write({"type": "event", "event": "invalid_answer", "id": rid,
                            "message": problem})
                self.write(request.to_json(rid))
        except asyncio.CancelledError:
            self._withdrawn.add(rid)
            raise
        finally:
            self._pending = None

    def _late(self, line: str) -> bool:
        """An answer to a withdrawn request arrives after the fact: drop it quietly."""
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to be an answer
            return False
        return isinstance(obj, dict) and obj.get("id") in self._withdrawn

    @staticmethod
    def _parse(rid: int, request: OperatorRequest, line: str
               ) -> tuple[str, OperatorAnswer | None]:
        raw = line.rstrip("\n").encode("utf-8", "surrogateescape")  # bytes as received
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"not JSON: {exc.msg}", None
        except RecursionError:
            return "not JSON: nested too deeply", None
        if not isinstance(obj, dict):
            return "expected a JSON object", None
        if obj.get("id") != rid:
            return f"answer id {obj.get('id')!r} does not match request id {rid}", None
        if obj.get("abort") is True:
            return "", OperatorAnswer(ok=False, abort=True, raw=raw)
        if request.kind == "number":
            value, unit = obj.get("value"), obj.get("unit", request.unit)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return "expected a numeric \"value\"", None
            if unit is not None and not isinstance(unit, str):
                return "expected \"unit\" as text", None
            try:
                number = float(value)
            except OverflowError:  # an integer with hundreds of digits
                return "not a finite number", None
            problem = check_number(request, number, unit)
            if problem:
                return problem, None
            return "", OperatorAnswer(value=number, unit=unit, raw=raw)
        if request.kind == "choice":
            value = obj.get("value")
            if value not in request.options:
                return f"expected one of {list(request.options)}", None
            return "", OperatorAnswer(value=value, raw=raw)
        ok = obj.get("ok", True)
        if not isinstance(ok, bool):
            return "expected \"ok\": true or false", None
        return "", OperatorAnswer(ok=ok, raw=raw)


def _control_command(line: str) -> str | None:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if isinstance(obj, dict) and "id" not in obj and obj.get("type") in ("pause", "resume",
                                                                          "abort"):
        return str(obj["type"])
    return None


class AnswersFileOperator(OperatorChannel):
    """Scripted answers by point key (glob patterns), for unattended and repeatable runs.

    File (TOML or JSON)::

        confirm_all = true            # instructions and confirmations answered yes
        [answers."weighing.up.*"]     # first matching pattern wins, in file order
        value = 2000.0
        unit = "g"
    """

    kind = "answers"

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        f = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f, "", f"a readable answers file ({exc.strerror})") from None
        try:
            data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f, "", f"valid {'JSON' if p.suffix == '.json' else 'TOML'} ({exc})"
                              ) from None
        if not isinstance(data, dict):
            raise ConfigError(f, "", "a table of answers")
        self.file = f
        self.confirm_all = bool(data.get("confirm_all", True))
        answers = data.get("answers", {})
        if not isinstance(answers, dict):
            raise ConfigError(f, "answers", "a table pattern -> answer")
        self.answers: list[tuple[str, dict[str, Any]]] = []
        for pattern, ans in answers.items():
            if not isinstance(ans, dict):
                raise ConfigError(f, f"answers.{pattern}", "a table with value/unit, ok or abort")
            self.answers.append((pattern, ans))

    async def ask(self, request: OperatorRequest) -> OperatorAnswer:
        for pattern, ans in self.answers:
            if fnmatch.fnmatchcase(request.key, pattern):
                raw = json.dumps(ans, sort_keys=True).encode()
                if ans.get("abort"):
                    return OperatorAnswer(ok=False, abort=True, raw=raw)
                if request.kind == "number":
                    value = ans.get("value")
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        raise ConfigError(self.file, f"answers.{pattern}.value", "a number")
                    unit = ans.get("unit", request.unit)
                    problem = check_number(request, float(value), unit)
                    if problem:
                        raise BenchctlError(
                            f"{self.file}: answer for {request.key} rejected: {problem}")
                    return OperatorAnswer(value=float(value), unit=unit, raw=raw)
                if request.kind == "choice":
                    return OperatorAnswer(value=ans.get("value", request.options[0]), raw=raw)
                return OperatorAnswer(ok=bool(ans.get("ok", True)), raw=raw)
        if request.kind in ("instruction", "confirm") and self.confirm_all:
            return OperatorAnswer(ok=True, raw=b"confirm_all")
        if request.kind == "choice" and "abort" in request.options:
            return OperatorAnswer(value="abort", raw=b"default")
        raise OperatorAbort(f"{self.file}: no answer for {request.kind} request {request.key!r}")


class ControlClient:
    """JSON-lines client of the simulated world's control port."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self.timeout = timeout
        try:
            self.sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
        except (OSError, ValueError) as exc:
            raise BenchctlError(
                f"cannot reach the simulated world's control port {address}: {exc}",
                detail="start the simulators with `benchctl sim --bench BENCH` or use "
                "`benchctl demo`") from None
        self.file = self.sock.makefile("rwb")
        self.lock = threading.Lock()

    def apply(self, action: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            try:
                self.file.write(json.dumps(action).encode() + b"\n")
                self.file.flush()
                line = self.file.readline()
            except OSError as exc:
                raise BenchctlError(f"simulated world {self.address}: {exc}") from None
        if not line:
            raise BenchctlError(f"simulated world {self.address} closed the control connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


class SimulatedOperator(OperatorChannel):
    """A technician who does exactly what is asked, to the simulated world.

    ``place_load`` means "the pan now holds this load": the simulated technician clears the
    pan first, as a real one arranging a new combination of weights would.
    """

    kind = "sim"

    def __init__(self, control_address: str, *, max_retries: int = 3,
                 settle_timeout: float = 10.0, fault_patience: float = 0.3) -> None:
        self.client = ControlClient(control_address)
        self.fault_patience = fault_patience
        self.max_retries = max_retries
        self.settle_timeout = settle_timeout
        self._faults_seen: dict[str, int] = {}

    def _apply(self, action: dict[str, Any]) -> dict[str, Any]:
        reply = self.client.apply(action)
        if reply.get("ok") is False:
            raise BenchctlError(f"simulated world refused {action.get('type')}: "
                                f"{reply.get('error')}")
        return reply

    async def ask(self, request: OperatorRequest) -> OperatorAnswer:
        action = request.action or {}
        kind = action.get("type")
        if kind == "place_load":
            await asyncio.to_thread(self._apply, {"type": "remove_load", **_inst(action)})
            await asyncio.to_thread(self._apply, action)
        elif kind in ("remove_load", "set_ambient", "deliver", "set_pressure", "zero", "tare"):
            await asyncio.to_thread(self._apply, action)
        if request.kind == "number":
            if kind != "read":
                raise OperatorAbort(f"simulated operator cannot answer {request.key!r}: "
                                    "no read action")
            reply = await asyncio.to_thread(self._apply, action)
            # A technician waits for the display to settle (its stability mark) before reading.
            deadline = asyncio.get_running_loop().time() + self.settle_timeout
            while reply.get("stable") is False and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
                reply = await asyncio.to_thread(self._apply, action)
            if reply.get("value") is None:
                raise OperatorAbort(f"simulated operator cannot read {action.get('instrument')}: "
                                    f"the display shows {reply.get('text') or reply}")
            value = float(reply["value"])
            return OperatorAnswer(value=value, unit=reply.get("unit", request.unit),
                                  raw=json.dumps(reply, sort_keys=True).encode())
        if request.kind == "choice":
            # Instrument faults: look at the instrument for a moment (it may come back by
            # itself), then retry a few times, then abort (the run stays resumable).
            await asyncio.sleep(self.fault_patience)
            seen = self._faults_seen.get(request.key, 0) + 1
            self._faults_seen[request.key] = seen
            options = list(request.options)
            if "retry" in options and seen <= self.max_retries:
                return OperatorAnswer(value="retry")
            return OperatorAnswer(value="abort" if "abort" in options else options[0])
        return OperatorAnswer(ok=True)

    async def close(self) -> None:
        self.client.close()


def _inst(action: dict[str, Any]) -> dict[str, Any]:
    return {"instrument": action["instrument"]} if "instrument" in action else {}


def make_channel(spec: str, *, control_address: str | None = None) -> OperatorChannel:
    """``--operator`` value -> channel (``tui`` is made by the TUI itself)."""
    if spec == "terminal":
        return TerminalOperator()
    if spec == "stdio-json":
        return StdioJsonOperator()
    if spec.startswith("answers:"):
        return AnswersFileOperator(spec.split(":", 1)[1])
    if spec == "sim":
        if not control_address:
            raise BenchctlError(
                "--operator sim needs the simulated world: run it with `benchctl demo`, or give "
                "the control address printed by `benchctl sim` in bench.toml "
                "[simulation] control = \"127.0.0.1:PORT\"")
        return SimulatedOperator(control_address)
    raise BenchctlError(f"unknown operator {spec!r}; expected terminal, stdio-json, "
                        "answers:FILE, sim or tui")

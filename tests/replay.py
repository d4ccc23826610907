"""Test helper: replay an exact byte script to a driver, over TCP or a pty.

A script is a list of ``(expected_request, reply)`` pairs.  The server reads exactly
``len(expected_request)`` bytes, compares them with the expectation and, if they match, sends
the reply.  A reply is ``bytes`` or a list of steps: ``bytes`` (sent as is, so half lines are
easy), a ``float`` (a delay in seconds) or ``CLOSE`` (drop the connection).  ``b""`` or
``None`` is silence.  ``on_connect`` bytes are sent as soon as the client connects (a balance's
power-up line).

Use it as a context manager: on exit it stops and fails the test with a clear diff when a
request differed, the script was not finished or extra bytes arrived::

    with ReplayServer([(b"S\\r\\n", b"S S     100.00 g\\r\\n")]) as srv:
        bal = mettler.connect("bal", srv.socket_url, {})
        ...

``load_driver("mettler_sics")`` imports a module of the top-level ``drivers/`` folder as
``benchctl_drivers.mettler_sics`` (the way the engine's loader names it).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import select
import socket
import sys
import threading
import time
import tty
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class _Close:
    def __repr__(self) -> str:
        return "CLOSE"


#: A reply step that drops the connection.
CLOSE: Any = _Close()

Step = bytes | float | _Close
Reply = bytes | Sequence[Step] | None
Script = Sequence[tuple[bytes, Reply]]


class _Replayer:
    """The script logic, shared by the TCP and the pty servers."""

    io_timeout = 5.0

    def __init__(self, script: Script, on_connect: bytes = b"") -> None:
        self.script = list(script)
        self.on_connect = on_connect
        self.requests: list[bytes] = []
        self.extra = bytearray()
        self.errors: list[str] = []
        self.step = 0
        self.connected = threading.Event()
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._pushback = b""
        self._thread = threading.Thread(target=self._main, daemon=True)

    # -- channel primitives, provided by the subclasses ----------------------------------

    def _wait_client(self) -> bool:
        raise NotImplementedError

    def _recv(self, timeout: float) -> bytes | None:
        """Bytes received within ``timeout`` (b"" if none), None if the client went away."""
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    def _close_client(self) -> None:
        raise NotImplementedError

    def _cleanup(self) -> None:
        raise NotImplementedError

    # -- the replay ------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            if not self._wait_client():
                return
            if self.on_connect:
                self._send(self.on_connect)
            self.connected.set()
            for index, (expected, reply) in enumerate(self.script):
                self.step = index
                got = self._read_exactly(len(expected))
                self.requests.append(got)
                if got != expected and self._stop.is_set() and expected.startswith(got):
                    return  # stopped while waiting: reported as an unfinished script
                if got != expected:
                    got += self._read_available(0.05)
                    self.errors.append(self._diff(index, expected, got))
                    return
                if not self._reply(reply):
                    self.step = index + 1
                    return
            self.step = len(self.script)
            self.finished.set()
            while not self._stop.is_set() and not self._closed:
                data = self._recv(0.02)
                if data is None:
                    return
                self.extra += data
        except Exception as exc:  # a bug in the helper must fail the test, not hang it
            self.errors.append(f"replay server crashed: {type(exc).__name__}: {exc}")
        finally:
            self.finished.set()

    def _read_exactly(self, count: int) -> bytes:
        got = bytearray()
        deadline = time.monotonic() + self.io_timeout
        while len(got) < count and not self._stop.is_set() and time.monotonic() < deadline:
            data = self._recv(min(0.02, max(deadline - time.monotonic(), 0)))
            if data is None:
                break
            got += data
        if len(got) > count:  # keep the framing exact: the surplus belongs to the next request
            self._pushback = bytes(got[count:])
            del got[count:]
        return bytes(got)

    def _read_available(self, wait: float) -> bytes:
        data = self._recv(wait)
        return data or b""

    def _reply(self, reply: Reply) -> bool:
        """Send one reply; False when it closed the connection."""
        if reply is None:
            return True
        steps: Sequence[Step] = [reply] if isinstance(reply, bytes | _Close) else reply
        for step in steps:
            if isinstance(step, _Close):
                self._closed = True
                self._close_client()
                return False
            if isinstance(step, float | int):
                if self._stop.wait(float(step)):
                    return False
            elif step:
                self._send(step)
        return True

    def _diff(self, index: int, expected: bytes, got: bytes) -> str:
        before = ", ".join(repr(r) for r in self.requests[:-1]) or "none"
        return (
            f"replay step {index + 1} of {len(self.script)}: the request differs\n"
            f"  expected: {expected!r}\n"
            f"  received: {got!r}\n"
            f"  earlier requests (all matched): {before}"
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> _Replayer:
        self._thread.start()
        return self

    def stop(self) -> None:
        # A last request may still be in flight (a command without a reply): let it land.
        self.finished.wait(0.2)
        self._stop.set()
        self._thread.join(timeout=self.io_timeout + 1)
        self._cleanup()

    def problems(self) -> list[str]:
        out = list(self.errors)
        if not self.errors and self.step < len(self.script):
            expected = self.script[self.step][0]
            got = self.requests[self.step] if self.step < len(self.requests) else b""
            out.append(
                f"replay script not finished: step {self.step + 1} of {len(self.script)} "
                f"expected {expected!r}, received {got!r}"
            )
        if self.extra:
            out.append(f"unexpected bytes after the script: {bytes(self.extra)!r}")
        return out

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise AssertionError("\n".join(problems))

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.stop()
        if exc is None:
            self.check()
        elif self.errors:  # the request diff explains the failure better than a timeout
            raise AssertionError("\n".join(self.errors)) from exc


class ReplayServer(_Replayer):
    """Replay over TCP on 127.0.0.1 (an ephemeral port); one client connection."""

    def __init__(self, script: Script, on_connect: bytes = b"") -> None:
        super().__init__(script, on_connect)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self.port: int = self._listener.getsockname()[1]
        self._conn: socket.socket | None = None

    @property
    def socket_url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    @property
    def visa_socket(self) -> str:
        return f"TCPIP::127.0.0.1::{self.port}::SOCKET"

    @property
    def visa_asrl(self) -> str:
        return f"ASRLsocket://127.0.0.1:{self.port}::INSTR"

    def _wait_client(self) -> bool:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.02)
            if ready:
                self._conn, _ = self._listener.accept()
                return True
        return False

    def _recv(self, timeout: float) -> bytes | None:
        if self._pushback:
            data, self._pushback = self._pushback, b""
            return data
        if self._conn is None:
            return None
        ready, _, _ = select.select([self._conn], [], [], timeout)
        if not ready:
            return b""
        try:
            data = self._conn.recv(4096)
        except OSError:
            return None
        return data or None

    def _send(self, data: bytes) -> None:
        if self._conn is not None:
            self._conn.sendall(data)

    def _close_client(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _cleanup(self) -> None:
        self._close_client()
        self._listener.close()


class PtyReplay(_Replayer):
    """Replay over a pseudo-terminal; the driver opens ``device`` (e.g. ``/dev/pts/7``).

    The slave side is set raw and its fd is kept open for the server's lifetime (otherwise
    the master reads EIO whenever no client has the device open).  ``on_connect`` bytes are
    written at start, before the client opens the device.
    """

    def __init__(self, script: Script, on_connect: bytes = b"") -> None:
        super().__init__(script, on_connect)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.device: str = os.ttyname(self._slave)
        self._master_open = True

    @property
    def visa_asrl(self) -> str:
        return f"ASRL{self.device}::INSTR"

    def _wait_client(self) -> bool:
        return True

    def _recv(self, timeout: float) -> bytes | None:
        if self._pushback:
            data, self._pushback = self._pushback, b""
            return data
        if not self._master_open:
            return None
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self._master, 4096)
        except OSError:
            return None

    def _send(self, data: bytes) -> None:
        if self._master_open:
            os.write(self._master, data)

    def _close_client(self) -> None:
        if self._master_open:
            self._master_open = False
            os.close(self._master)

    def _cleanup(self) -> None:
        self._close_client()
        with contextlib.suppress(OSError):
            os.close(self._slave)


def free_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_drivers() -> ModuleType:
    """The ``drivers/`` folder as package ``benchctl_drivers`` (as the engine's loader does)."""
    existing = sys.modules.get("benchctl_drivers")
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(
        "benchctl_drivers",
        ROOT / "drivers" / "__init__.py",
        submodule_search_locations=[str(ROOT / "drivers")],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchctl_drivers"] = module
    spec.loader.exec_module(module)
    return module


def load_driver(name: str) -> ModuleType:
    load_drivers()
    return importlib.import_module(f"benchctl_drivers.{name}")

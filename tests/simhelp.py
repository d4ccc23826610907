"""Load the simulators/ folder as the package ``benchctl_simulators`` (as benchctl does) and
small socket helpers for the simulator tests."""

from __future__ import annotations

import importlib
import importlib.util
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "benchctl_simulators"


def load(module: str) -> ModuleType:
    """``load("bench")`` → the module ``benchctl_simulators.bench``."""
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, ROOT / "simulators" / "__init__.py",
            submodule_search_locations=[str(ROOT / "simulators")])
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.{module}")


def address(resource: str) -> tuple[str, int]:
    """``socket://127.0.0.1:1234`` → ("127.0.0.1", 1234)."""
    assert resource.startswith("socket://"), resource
    host, _, port = resource[len("socket://"):].rpartition(":")
    return host, int(port)


class LineClient:
    """A plain TCP client reading CR LF lines (or raw bytes) with timeouts."""

    def __init__(self, resource: str, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(address(resource), timeout=timeout)
        self.timeout = timeout
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(4096)
        except TimeoutError:
            return False
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk
        return True

    def read_line(self, timeout: float | None = None, terminator: bytes = b"\r\n") -> bytes:
        """One line including its terminator; TimeoutError when none arrives in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while terminator not in self.buffer:
            if not self._fill(deadline):
                raise TimeoutError(f"no line; got {self.buffer!r}")
        line, _, self.buffer = self.buffer.partition(terminator)
        return line + terminator

    def read_for(self, seconds: float) -> bytes:
        """Everything that arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while self._fill(deadline):
            pass
        data, self.buffer = self.buffer, b""
        return data

    def query(self, command: bytes, timeout: float | None = None) -> bytes:
        self.send(command + b"\r\n")
        return self.read_line(timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

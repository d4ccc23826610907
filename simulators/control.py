"""JSON-lines control server: how a simulated operator in another process acts on the world.

Each line a client sends is one JSON action object (DESIGN.md's ``stdio-json`` action, e.g.
``{"type": "place_load", "load": {"value": 200, "unit": "g"}, "position": "centre"}``); the
server answers one line with the JSON result of ``world.apply`` (``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``). Lines end with LF (CR LF accepted). Any number of clients.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from .servers import Item, LineSession, TcpLineServer
from .world import SimWorld

__all__ = ["ControlClient", "ControlSession", "send_action", "serve_control"]


class ControlSession(LineSession):
    terminator = b"\n"

    def __init__(self, world: SimWorld) -> None:
        super().__init__(world.clock)
        self.world = world

    def respond(self, line: bytes) -> Iterator[Item]:
        try:
            action = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reply: dict[str, Any] = {"ok": False, "error": f"not a JSON line: {exc}"}
        else:
            try:
                reply = self.world.apply(action)
            except Exception as exc:  # the control line must always answer
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        yield 0.0, json.dumps(reply, default=str).encode("utf-8") + b"\n"


def serve_control(world: SimWorld, host: str = "127.0.0.1", port: int = 0) -> TcpLineServer:
    """Start the control server; its ``address`` is ``"HOST:PORT"``."""
    return TcpLineServer(lambda: ControlSession(world), host, port, name="control")


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"control address must be HOST:PORT, got {address!r}")
    return host or "127.0.0.1", int(port)


class ControlClient:
    """A small blocking client: ``ControlClient("127.0.0.1:4100").apply({...}) -> dict``."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self._sock = socket.create_connection(_split_address(address), timeout=timeout)
        self._file = self._sock.makefile("rb")

    def apply(self, action: Mapping[str, Any]) -> dict[str, Any]:
        self._sock.sendall(json.dumps(dict(action)).encode("utf-8") + b"\n")
        line = self._file.readline()
        if not line:
            raise ConnectionError("the simulator control server closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_action(address: str, action: Mapping[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Open, send one action, read its reply, close."""
    with ControlClient(address, timeout) as client:
        return client.apply(action)

"""Serving line protocols over TCP sockets and pseudo-terminals.

A protocol is written as a :class:`LineSession` (one per client connection): ``on_connect()``
gives the bytes sent when a client connects (a power-up line), and ``handle(line)`` returns an
iterator of ``(delay, data)`` items: wait ``delay`` *simulated* seconds, then send ``data``
(``b""`` = just wait, ``None`` = close the connection). The iterator is consumed lazily, so a
generator computes each line at the moment it is sent; this is how ``S`` waits for stability
and ``SIR`` streams.

While a reply is running, new lines are queued behind it, except when
``session.interrupts(line)`` says the line cancels it (any line cancels an ``SIR`` stream,
``@`` cancels a pending ``S``). Sessions can also push unsolicited output (a power-up line after
a power cycle) through ``push``.

Servers: :class:`TcpLineServer` (``socket://127.0.0.1:PORT``, any number of clients, one session
each) and :class:`PtyLineServer` (a pseudo-terminal; the resource is the slave device path such
as ``/dev/pts/7``; one session for the life of the server, like a serial instrument that stays
powered while cables come and go). ``stop()`` closes everything within a fraction of a second.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import select
import socket
import struct
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator

from .world import FaultInjector, FaultSpec, SimClock

__all__ = [
    "Item",
    "LineServer",
    "LineSession",
    "PtyLineServer",
    "TcpLineServer",
    "split_lines",
]

log = logging.getLogger("benchctl_simulators.servers")

Item = tuple[float, bytes | None]
CRLF = b"\r\n"


def split_lines(buffer: bytearray) -> list[bytes]:
    """Take the complete lines out of ``buffer`` (terminated by CR, LF or CR LF); empty lines
    are dropped. The incomplete tail stays in the buffer."""
    lines: list[bytes] = []
    start = 0
    for i, byte in enumerate(buffer):
        if byte in (0x0D, 0x0A):
            if i > start:
                lines.append(bytes(buffer[start:i]))
            start = i + 1
    del buffer[:start]
    return lines


class LineSession:
    """Base class of one client's conversation with a simulated instrument.

    Subclasses implement ``respond(line)`` (a generator of items) and may set ``self.stream``
    to a callable returning an endless generator (``SIR``, run mode): it runs after each reply
    until the session clears it. Faults from the instrument's :class:`FaultInjector` are applied
    here to every reply line, so every protocol gets them for free.
    """

    terminator: bytes = CRLF
    stall_default = 1.0

    def __init__(self, clock: SimClock, faults: FaultInjector | None = None,
                 rnd: random.Random | None = None) -> None:
        self.clock = clock
        self.faults = faults
        self.rnd = rnd if rnd is not None else random.Random(0)
        self.stream: Callable[[], Iterator[Item]] | None = None
        self._in_stream = False
        self._lock = threading.Lock()
        self._outbox: deque[bytes] = deque()
        self._cancel = False
        self._notify: Callable[[], None] = lambda: None
        self.closed = False

    # -- what subclasses provide --------------------------------------------------------------
    def on_connect(self) -> bytes:
        """Bytes sent when a client connects (or the pty server starts)."""
        return b""

    def respond(self, line: bytes) -> Iterator[Item]:
        """The reply items to one command line."""
        return iter(())

    def power_up_line(self) -> bytes:
        """What the instrument sends by itself when it is switched on."""
        return b""

    def reset_line(self, line: bytes) -> bool:
        """True for a line that cancels a pending reply (MT-SICS ``@``)."""
        return False

    def error_reply(self) -> bytes:
        return b"ES" + self.terminator

    def busy_reply(self, line: bytes) -> bytes:
        return line.split(b" ", 1)[0].rstrip(b"\r\n") + b" I" + self.terminator

    def wrong_unit(self, line: bytes) -> bytes:
        return line

    def power_cycle_physics(self) -> None:
        """Switch the simulated instrument off and on (for the ``power_cycle`` fault)."""

    # -- the machinery ------------------------------------------------------------------------
    def interrupts(self, line: bytes) -> bool:
        """Does ``line``, arriving while a reply runs, cancel that reply?"""
        return self._in_stream or self.reset_line(line)

    def handle(self, line: bytes) -> Iterator[Item]:
        """All items for one command line: the reply, then the stream if one is running."""
        self._in_stream = False
        stopped = yield from self._faulted(self.respond(line))
        while not stopped and self.stream is not None:
            stream = self.stream
            self._in_stream = True
            stopped = yield from self._faulted(stream())
            if self.stream is stream:  # the stream ended by itself
                self.stream = None
        self._in_stream = False

    def _faulted(self, items: Iterable[Item]) -> Generator[Item, None, bool]:
        """Apply pending faults to each reply line; returns True when the reply was cut off
        (disconnect, power cycle)."""
        for delay, data in items:
            if not data:
                yield delay, data
                if data is None:
                    return True
                continue
            fault = self.faults.take() if self.faults is not None else None
            if fault is None:
                yield delay, data
                continue
            cut = yield from self._apply_fault(fault, delay, data)
            if cut:
                return True
        return False

    def _apply_fault(self, fault: FaultSpec, delay: float, data: bytes
                     ) -> Generator[Item, None, bool]:
        body = data[: -len(self.terminator)] if data.endswith(self.terminator) else data
        mode = fault.mode
        if mode == "silence":
            yield delay, b""
        elif mode == "garbage":
            alphabet = [b for b in range(0x80, 0x100)] + [0x00, 0x01, 0x07, 0x1B, 0x7F]
            junk = bytes(self.rnd.choice(alphabet) for _ in range(self.rnd.randint(4, 16)))
            yield delay, junk + self.terminator
        elif mode == "truncated":
            yield delay, body[: max(1, len(body) // 2)]
        elif mode == "error":
            yield delay, self.error_reply()
        elif mode == "busy":
            yield delay, self.busy_reply(data)
        elif mode == "stall":
            half = max(1, len(body) // 2)
            yield delay, data[:half]
            yield fault.delay, data[half:]
        elif mode == "wrong_unit":
            yield delay, self.wrong_unit(data)
        elif mode == "disconnect":
            yield delay, None
            return True
        elif mode == "slow":
            yield delay + fault.delay, data
        elif mode == "refuse":  # unplugged: the line is lost; the server resets new clients
            yield delay, None
            return True
        elif mode == "exception":  # a register-map fault; a line protocol says "error"
            yield delay, self.error_reply()
        elif mode == "power_cycle":
            self.stream = None
            self.power_cycle_physics()
            yield delay, self.power_up_line()
            return True
        else:  # pragma: no cover - FaultInjector validates modes
            yield delay, data
        return False

    # -- unsolicited output -------------------------------------------------------------------
    def attach(self, notify: Callable[[], None]) -> None:
        """The server's wake-up callback for unsolicited output."""
        self._notify = notify

    def push(self, data: bytes, *, cancel: bool = False) -> None:
        """Send ``data`` unprompted; with ``cancel`` also abandon the running reply/stream."""
        with self._lock:
            if cancel:
                self._cancel = True
                self.stream = None
            if data:
                self._outbox.append(data)
        self._notify()

    def take_unsolicited(self) -> tuple[list[bytes], bool]:
        with self._lock:
            out = list(self._outbox)
            self._outbox.clear()
            cancel, self._cancel = self._cancel, False
            return out, cancel

    def powered_on(self) -> None:
        """Called after the instrument was power-cycled: stop streams, send the power-up line."""
        self.push(self.power_up_line(), cancel=True)

    def close(self) -> None:
        self.closed = True


SessionFactory = Callable[[], LineSession]


class _Connection:
    """Runs one session over one byte channel (a TCP socket or a pty master) in a thread."""

    def __init__(self, session: LineSession, fd: int, send: Callable[[bytes], None],
                 recv: Callable[[], bytes], *, can_disconnect: bool, name: str,
                 on_exit: Callable[[], None] | None = None) -> None:
        self.session = session
        self.fd = fd
        self._send = send
        self._recv = recv
        self.can_disconnect = can_disconnect
        self._on_exit = on_exit
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_lock = threading.Lock()
        self._wake_open = True
        self._stop = threading.Event()
        self._buffer = bytearray()
        self._queue: deque[bytes] = deque()
        self._active: Iterator[Item] | None = None
        self._item: bytes | None = b""
        self._due: float | None = None  # monotonic time the current item is due; None = idle
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        session.attach(self.wake)

    def start(self, greeting: bytes = b"") -> None:
        if greeting and not self._safe_send(greeting):
            self._stop.set()
        self.thread.start()

    def wake(self) -> None:
        with self._wake_lock:
            if self._wake_open:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, b"x")

    def stop(self) -> None:
        self._stop.set()
        self.wake()

    def _safe_send(self, data: bytes) -> bool:
        try:
            self._send(data)
        except OSError:  # the client went away or stopped reading
            return False
        return True

    # -- reply machinery ----------------------------------------------------------------------
    def _start_reply(self, line: bytes) -> None:
        self._active = iter(self.session.handle(line))
        self._advance()

    def _advance(self) -> None:
        if self._active is None:
            self._due = None
            return
        try:
            delay, data = next(self._active)
        except StopIteration:
            self._active, self._due = None, None
            return
        except Exception:  # a bug in a protocol handler must not kill the connection
            log.exception("simulator protocol handler failed")
            self._active, self._due = None, None
            return
        self._item = data
        self._due = time.monotonic() + self.session.clock.real_seconds(delay)

    def _cancel_reply(self) -> None:
        if self._active is not None:
            close = getattr(self._active, "close", None)
            if close is not None:
                close()
        self._active, self._due = None, None
        self.session._in_stream = False

    def _feed(self, data: bytes) -> None:
        self._buffer.extend(data)
        if len(self._buffer) > 65536:  # a flood without terminators: drop it
            self._buffer.clear()
        for line in split_lines(self._buffer):
            if self._active is not None:
                if self.session.interrupts(line):
                    self._cancel_reply()
                    self._queue.clear()
                    self._start_reply(line)
                else:
                    self._queue.append(line)
            elif self._queue:
                self._queue.append(line)
            else:
                self._start_reply(line)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("simulator connection failed")
        finally:
            self._cancel_reply()
            self.session.close()
            with self._wake_lock:
                self._wake_open = False
                for fd in (self._wake_r, self._wake_w):
                    with contextlib.suppress(OSError):
                        os.close(fd)
            if self._on_exit is not None:
                self._on_exit()

    def _loop(self) -> None:
        while not self._stop.is_set():
            out, cancel = self.session.take_unsolicited()
            if cancel:
                self._cancel_reply()
                self._queue.clear()
            for data in out:
                if not self._safe_send(data):
                    return
            if self._active is None and self._queue:
                self._start_reply(self._queue.popleft())
                continue
            now = time.monotonic()
            if self._due is not None and self._due <= now:
                item = self._item
                if item is None:
                    if self.can_disconnect:
                        return
                elif item and not self._safe_send(item):
                    return
                self._advance()
                continue
            timeout = None if self._due is None else max(0.0, self._due - now)
            try:
                readable, _, _ = select.select([self.fd, self._wake_r], [], [], timeout)
            except (OSError, ValueError):
                return
            if self._wake_r in readable:
                with contextlib.suppress(OSError):
                    while os.read(self._wake_r, 4096):
                        pass
            if self.fd in readable:
                try:
                    data = self._recv()
                except BlockingIOError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                self._feed(data)


class LineServer:
    """Common interface: ``resource`` (what a benchctl transport opens), ``stop()``."""

    resource: str

    def stop(self) -> None:
        raise NotImplementedError

    def broadcast_power_on(self) -> None:
        """Tell every live session the instrument was power-cycled."""
        raise NotImplementedError

    def __enter__(self) -> LineServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TcpLineServer(LineServer):
    """Serve sessions over TCP; ``port=0`` picks a free port (see ``port``/``resource``)."""

    def __init__(self, factory: SessionFactory, host: str = "127.0.0.1", port: int = 0,
                 *, name: str = "sim") -> None:
        self.factory = factory
        self.name = name
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, int(port)))
        except OSError as exc:
            self._listener.close()
            raise OSError(exc.errno, f"simulator {name!r} cannot listen on {host}:{port}: "
                                     f"{exc.strerror}") from exc
        self._listener.listen(16)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self.resource = f"socket://{self.host}:{self.port}"
        self.address = f"{self.host}:{self.port}"
        self._connections: list[tuple[_Connection, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._accept_loop, name=f"sim-{name}-accept",
                                        daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([self._listener.fileno(), self._wake_r], [], [])
            except (OSError, ValueError):
                return
            if self._stop.is_set():
                return
            if self._listener.fileno() not in readable:
                continue
            try:
                conn, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.settimeout(5.0)  # a client that stops reading must not wedge the thread for ever
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            session = self.factory()
        except Exception:
            log.exception("simulator %s: cannot create a session", self.name)
            conn.close()
            return
        if session.faults is not None and session.faults.take_connection():
            # "refuse": reset at once (RST, not a polite close), as a port nobody serves.
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            session.close()
            return
        entry: list[tuple[_Connection, socket.socket]] = []

        def on_exit() -> None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            with self._lock:
                if entry and entry[0] in self._connections:
                    self._connections.remove(entry[0])

        connection = _Connection(session, conn.fileno(), conn.sendall, lambda: conn.recv(4096),
                                 can_disconnect=True, name=f"sim-{self.name}-conn",
                                 on_exit=on_exit)
        entry.append((connection, conn))
        with self._lock:
            if self._stop.is_set():
                conn.close()
                return
            self._connections.append(entry[0])
        connection.start(session.on_connect())

    @property
    def sessions(self) -> list[LineSession]:
        with self._lock:
            return [c.session for c, _ in self._connections if c.thread.is_alive()]

    def broadcast_power_on(self) -> None:
        for session in self.sessions:
            session.powered_on()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(2.0)
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection, conn in connections:
            connection.stop()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for connection, _ in connections:
            thread = connection.thread
            if thread.ident is not None and thread is not threading.current_thread():
                thread.join(2.0)
        self._listener.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


class PtyLineServer(LineServer):
    """Serve one session over a pseudo-terminal. ``resource`` is the slave's path; the server
    keeps its own slave descriptor open so clients may open and close it at will (without it,
    reads on the master fail with EIO). Output nobody reads is dropped once the pty buffer is
    full, as on a serial line with no one listening."""

    def __init__(self, factory: SessionFactory, *, name: str = "sim") -> None:
        self.name = name
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.resource = os.ttyname(self._slave)
        self.session = factory()
        self._closed = False
        self._connection = _Connection(self.session, self._master, self._send, self._recv,
                                       can_disconnect=False, name=f"sim-{name}-pty")
        self._connection.start(self.session.on_connect())

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                return  # nobody reading: the bytes are lost, like on an unattended serial line
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            view = view[written:]

    def _recv(self) -> bytes:
        try:
            return os.read(self._master, 4096)
        except OSError as exc:
            if exc.errno == errno.EIO:  # cannot happen while we hold the slave, but be safe
                time.sleep(0.01)
                raise BlockingIOError from exc
            raise

    def broadcast_power_on(self) -> None:
        self.session.powered_on()

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connection.stop()
        self._connection.thread.join(2.0)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

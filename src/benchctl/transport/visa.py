"""Line transport on pyvisa with the pure-Python backend (``ResourceManager("@py")``).

Reads return the exact bytes the instrument sent, minus the termination.  Terminations are
explicit on every resource (a TCPIP SOCKET without them hangs until the timeout).

TCPIP SOCKET resources: pyvisa opens the connection and closes it; the exchanges themselves go
straight to pyvisa-py's socket, and reads share pyvisa-py's own read buffer (so anything
pyvisa already buffered is read first and ``flush`` discards both).  A line ends at the last
byte of the read termination, as a VISA read with the termination character enabled does.
This path exists for three reasons pyvisa-py cannot give us:

* one overall deadline per line, and a half line that times out is discarded and attached to
  the InstrumentTimeout (``raw``);
* a connection the instrument closed is an InstrumentConnectionError at once, not a timeout
  (pyvisa-py spins on EOF until the deadline), also in the middle of a line;
* writes have a timeout too (pyvisa-py's wait for a full send buffer has none);

and it costs one ``select`` and one ``recv`` per reply and one ``send`` per command: less
client CPU per reading than a bare ``pyvisa`` query (figure 1, benchmarks/driver_overhead.py).
Other resources (ASRL, INSTR, GPIB, USB) read through pyvisa's ``read_raw``.

The ResourceManager is cached for the process.  pyvisa hands every ``ResourceManager("@py")``
the same object, so anyone in the process closing theirs closes ours (and every resource it
opened): :func:`resource_manager` notices the dead session and makes a new one, and a
transport whose resource was closed that way reports InstrumentConnectionError ("resource is
closed"), so the engine reopens it.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from benchctl.errors import (
    InstrumentConnectionError,
    InstrumentError,
    InstrumentTimeout,
    ProtocolError,
)
from benchctl.transport.base import SerialSettings, Transport, format_seconds

if TYPE_CHECKING:
    from pyvisa import ResourceManager
    from pyvisa.resources import MessageBasedResource

_rm: ResourceManager | None = None
_rm_lock = threading.Lock()

_CHUNK = 4096


def resource_manager() -> ResourceManager:
    """The process-wide pyvisa ResourceManager on pyvisa-py, created on first use and again
    when its session was closed (by anyone: every ``ResourceManager("@py")`` in the process
    is one object, so ``pyvisa.ResourceManager("@py").close()`` elsewhere closes ours)."""
    global _rm
    with _rm_lock:
        if _rm is None or not _rm_alive(_rm):
            import pyvisa

            _rm = pyvisa.ResourceManager("@py")
        return _rm


def _rm_alive(rm: ResourceManager) -> bool:
    import pyvisa

    try:
        rm.session  # noqa: B018 - the property raises InvalidSession once closed
    except pyvisa.errors.InvalidSession:
        return False
    return True


class VisaTransport(Transport):
    """A pyvisa message-based resource (TCPIP SOCKET/INSTR, ASRL, GPIB, USB)."""

    def __init__(
        self,
        resource: str,
        *,
        timeout: float = 2.0,
        read_termination: bytes = b"\r\n",
        write_termination: bytes = b"\r\n",
        serial: SerialSettings | None = None,
    ) -> None:
        import pyvisa
        from pyvisa import constants

        self.resource = resource
        self.timeout = timeout
        self.read_termination = read_termination
        self.write_termination = write_termination
        self.settings = serial if serial is not None else SerialSettings()
        self._is_asrl = resource.upper().startswith("ASRL")
        self._is_socket = resource.upper().endswith("::SOCKET")
        #: A VISA read ends at the last byte of the termination (VI_ATTR_TERMCHAR).
        self._term_byte = read_termination[-1:]
        #: SOCKET resources: pyvisa-py's socket and the session whose read buffer we share;
        #: None for other resources (and once closed), which go through pyvisa.
        self._sock: socket.socket | None = None
        self._visa_session: Any = None
        kwargs: dict[str, Any] = {
            "read_termination": read_termination.decode("latin-1"),
            "write_termination": write_termination.decode("latin-1"),
            "timeout": _ms(timeout),
        }
        try:
            if self._is_asrl:
                kwargs.update(_asrl_settings(self.settings))
            rm = resource_manager()
            inst: Any = rm.open_resource(resource, open_timeout=_ms(max(timeout, 5.0)), **kwargs)
        except pyvisa.errors.VisaIOError as exc:
            raise InstrumentConnectionError(resource, f"cannot open: {exc}") from exc
        except Exception as exc:  # pyvisa-py raises many kinds (ValueError, OSError, ...)
            error = InstrumentConnectionError(resource, f"cannot open: {type(exc).__name__}: {exc}")
            # ValueError: a missing backend library (GPIB, USB) or impossible settings, which
            # retrying cannot fix.
            error.transient = not isinstance(exc, ValueError)
            raise error from exc
        self._inst: MessageBasedResource = inst
        # The resource's timeout as last set here: reading it back from pyvisa costs a
        # backend attribute call on every line.
        self._timeout_ms = _ms(timeout)
        if self._is_socket:
            session = _visa_session(inst)
            sock = getattr(session, "interface", None)
            try:
                # pyvisa-py connects without blocking and reports success even when the port
                # refused the connection; ask the socket itself.
                refused = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                           if isinstance(sock, socket.socket) else 0)
                if refused:
                    raise OSError(refused, os.strerror(refused))
                # Should a read ever go through pyvisa-py, it must not hand back half a line
                # as if it were complete when the instrument pauses mid-line.
                inst.set_visa_attribute(constants.VI_ATTR_SUPPRESS_END_EN, True)
            except Exception as exc:
                self.close()
                raise InstrumentConnectionError(resource, f"cannot open: {exc}") from exc
            if isinstance(sock, socket.socket) and isinstance(
                getattr(session, "_pending_buffer", None), bytearray
            ):
                # Non-blocking: a send or recv never waits; select() does, with a deadline.
                # (pyvisa-py itself selects before every send and recv, so it is not upset.)
                sock.setblocking(False)
                self._sock, self._visa_session = sock, session

    # -- writing --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            try:
                self._inst.write_raw(data + self.write_termination)
            except Exception as exc:
                raise self._error(exc, "write") from exc
            return
        payload = data + self.write_termination
        try:
            sent = sock.send(payload)
        except BlockingIOError:
            sent = 0
        except (OSError, ValueError) as exc:
            raise self._lost(sock, exc, "write") from exc
        if sent < len(payload):
            self._send_rest(sock, memoryview(payload)[sent:])

    def _send_rest(self, sock: socket.socket, rest: memoryview) -> None:
        """The rest of a command the socket's send buffer could not take at once."""
        deadline = time.monotonic() + self.timeout
        while rest:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InstrumentTimeout(
                    self.resource, f"could not send within {format_seconds(self.timeout)} s")
            try:
                _, ready, _ = select.select([], [sock], [], remaining)
                if ready:
                    rest = rest[sock.send(rest):]
            except BlockingIOError:
                continue
            except (OSError, ValueError) as exc:
                raise self._lost(sock, exc, "write") from exc

    # -- reading --------------------------------------------------------------------------

    def read_line(self, timeout: float | None = None) -> bytes:
        if self._sock is None:
            return self._read_line_visa(timeout)
        buffer: bytearray = self._visa_session._pending_buffer
        end = buffer.find(self._term_byte)
        if end < 0:
            end = self._receive(self._sock, buffer, self.timeout if timeout is None else timeout)
        end += 1
        data = bytes(buffer[:end])
        del buffer[:end]
        return self._strip(data)

    def _receive(self, sock: socket.socket, buffer: bytearray, limit: float) -> int:
        """SOCKET: receive into ``buffer`` until it holds a termination byte (its index)."""
        term = self._term_byte
        deadline = time.monotonic() + limit
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.half_line_timeout(buffer, limit)
            try:
                ready, _, _ = select.select([sock], [], [], remaining)
                if not ready:
                    continue
                chunk = sock.recv(_CHUNK)
            except BlockingIOError:
                continue
            except (OSError, ValueError) as exc:
                buffer.clear()
                raise self._lost(sock, exc, "read") from exc
            if not chunk:
                partial = bytes(buffer)
                buffer.clear()
                where = f" in the middle of a reply: {partial!r}" if partial else ""
                raise InstrumentConnectionError(
                    self.resource, f"connection closed by the instrument{where}",
                    raw=partial or None)
            searched = len(buffer)
            buffer += chunk
            end = buffer.find(term, searched)
            if end >= 0:
                return end

    def _read_line_visa(self, timeout: float | None) -> bytes:
        """Not a SOCKET: one ``read_raw`` with pyvisa's timeout set to what is left."""
        limit = self.timeout if timeout is None else timeout
        wanted = _ms(limit)
        previous = self._timeout_ms
        try:
            if wanted != previous:
                self._inst.timeout = wanted
            data = bytes(self._inst.read_raw())
        except Exception as exc:
            raise self._error(exc, "read", limit) from exc
        finally:
            if wanted != previous:
                # the resource may be gone; the read already reported why
                with contextlib.suppress(Exception):
                    self._inst.timeout = previous
        return self._strip(data)

    def _strip(self, data: bytes) -> bytes:
        term = self.read_termination
        if data.endswith(term):
            return data[: -len(term)]
        if data.endswith(self._term_byte):  # VISA ends a read on the last termination byte
            return data[:-1]
        return data

    def _lost(self, sock: socket.socket, exc: Exception, what: str) -> InstrumentConnectionError:
        """An OSError on the SOCKET: closed under us (e.g. its ResourceManager was closed),
        or the connection broke."""
        if sock.fileno() < 0:
            return InstrumentConnectionError(self.resource, f"{what} failed: resource is closed")
        return InstrumentConnectionError(self.resource, f"connection lost ({what}): {exc}")

    def _error(self, exc: Exception, what: str, limit: float | None = None) -> InstrumentError:
        import pyvisa
        from pyvisa import constants

        if isinstance(exc, pyvisa.errors.VisaIOError):
            code = exc.error_code
            if code == constants.VI_ERROR_TMO:
                seconds = format_seconds(self.timeout if limit is None else limit)
                if what == "write":
                    return InstrumentTimeout(self.resource, f"could not send within {seconds} s")
                return InstrumentTimeout(self.resource, f"no complete reply within {seconds} s")
            if code in _TRANSMISSION_ERRORS:
                return ProtocolError(self.resource, f"{what} failed: {exc.abbreviation}")
            if code in _CONNECTION_ERRORS:
                return InstrumentConnectionError(self.resource, f"{what} failed: {exc}")
            return InstrumentError(self.resource, f"{what} failed: {exc}")
        if isinstance(exc, pyvisa.errors.InvalidSession):
            return InstrumentConnectionError(self.resource, f"{what} failed: resource is closed")
        if isinstance(exc, OSError):  # includes serial.SerialException (socket EOF on ASRL)
            return InstrumentConnectionError(self.resource, f"connection lost ({what}): {exc}")
        return InstrumentError(self.resource, f"{what} failed: {type(exc).__name__}: {exc}")

    # -- housekeeping ---------------------------------------------------------------------

    def flush_input(self) -> None:
        """Discard what is buffered and what the connection has received (no waiting)."""
        from pyvisa import constants

        sock = self._sock
        if sock is not None:
            self._visa_session._pending_buffer.clear()
            try:
                _drain(sock)
            except (OSError, ValueError) as exc:
                raise self._lost(sock, exc, "flush") from exc
            return
        try:
            self._inst.flush(constants.BufferOperation.discard_read_buffer)
        except Exception as exc:
            raise self._error(exc, "flush") from exc

    def close(self) -> None:
        self._sock = self._visa_session = None
        # closing a dead resource must not hide the error that killed it
        with contextlib.suppress(Exception):
            self._inst.close()

    def __repr__(self) -> str:
        return f"VisaTransport({self.resource!r})"


def _visa_session(inst: Any) -> Any:
    """pyvisa-py's session object behind ``inst`` (None if this backend has none)."""
    sessions = getattr(inst.visalib, "sessions", None)
    return sessions.get(inst.session) if isinstance(sessions, dict) else None


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _drain(sock: socket.socket) -> None:
    """Discard what a non-blocking socket has received, without waiting."""
    while True:
        try:
            chunk = sock.recv(_CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            return  # EOF: the next read reports the closed connection


def _asrl_settings(s: SerialSettings) -> dict[str, Any]:
    from pyvisa import constants

    parity = {
        "N": constants.Parity.none,
        "E": constants.Parity.even,
        "O": constants.Parity.odd,
        "M": constants.Parity.mark,
        "S": constants.Parity.space,
    }
    stop = {1.0: constants.StopBits.one, 1.5: constants.StopBits.one_and_a_half}
    stop[2.0] = constants.StopBits.two
    if s.parity.upper() not in parity or float(s.stopbits) not in stop:
        raise ValueError(f"bad serial settings: parity {s.parity!r}, stop bits {s.stopbits!r}")
    flow = constants.ControlFlow.none
    if s.rtscts:
        flow |= constants.ControlFlow.rts_cts
    if s.xonxoff:
        flow |= constants.ControlFlow.xon_xoff
    out: dict[str, Any] = {
        "baud_rate": s.baudrate,
        "data_bits": s.bytesize,
        "parity": parity[s.parity.upper()],
        "stop_bits": stop[float(s.stopbits)],
    }
    if flow != constants.ControlFlow.none:
        out["flow_control"] = flow
    return out


def _code_set(*names: str) -> frozenset[int]:
    from pyvisa import constants

    return frozenset(getattr(constants, n) for n in names if hasattr(constants, n))


_TRANSMISSION_ERRORS = _code_set(
    "VI_ERROR_ASRL_PARITY", "VI_ERROR_ASRL_FRAMING", "VI_ERROR_ASRL_OVERRUN"
)
_CONNECTION_ERRORS = _code_set(
    "VI_ERROR_CONN_LOST",
    "VI_ERROR_IO",
    "VI_ERROR_INV_OBJECT",
    "VI_ERROR_RSRC_NFOUND",
    "VI_ERROR_RSRC_BUSY",
    "VI_ERROR_NLISTENERS",
    "VI_ERROR_NCIC",
    "VI_ERROR_CLOSING_FAILED",
)

"""Line transport on pyvisa with the pure-Python backend (``ResourceManager("@py")``).

Reads return the exact bytes the instrument sent (``read_raw``), minus the termination.
Terminations are explicit on every resource (a TCPIP SOCKET without them hangs until the
timeout), and ``VI_ATTR_SUPPRESS_END_EN`` is set on SOCKET resources so pyvisa-py does not hand
back half a line as if it were complete when the instrument pauses mid-line.

Known pyvisa-py behaviour worked around here: a TCPIP SOCKET whose peer closed the connection
reads as a timeout (pyvisa-py spins on EOF until the deadline).  Before each read we wait on the
socket ourselves when pyvisa-py holds no buffered data, so a close is seen at once; a close
that happens in the middle of a line is detected right after the timeout.  Either way it is
reported as InstrumentConnectionError.
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
from benchctl.transport.base import SerialSettings, Transport
from benchctl.transport.serial import format_seconds

if TYPE_CHECKING:
    from pyvisa import ResourceManager
    from pyvisa.resources import MessageBasedResource

_rm: ResourceManager | None = None
_rm_lock = threading.Lock()


def resource_manager() -> ResourceManager:
    """The process-wide pyvisa ResourceManager on pyvisa-py, created on first use."""
    global _rm
    with _rm_lock:
        if _rm is None:
            import pyvisa

            _rm = pyvisa.ResourceManager("@py")
        return _rm


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
        # backend attribute call on every line (benchmarks/driver_overhead.py).
        self._timeout_ms = _ms(timeout)
        if self._is_socket:
            # pyvisa-py connects without blocking and reports success even when the port
            # refused the connection; ask the socket itself.
            refused = self._socket_error()
            try:
                if refused:
                    raise OSError(refused, os.strerror(refused))
                inst.set_visa_attribute(constants.VI_ATTR_SUPPRESS_END_EN, True)
            except Exception as exc:
                self.close()
                raise InstrumentConnectionError(resource, f"cannot open: {exc}") from exc

    # -- writing --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        try:
            self._inst.write_raw(data + self.write_termination)
        except Exception as exc:
            raise self._error(exc, "write") from exc

    # -- reading --------------------------------------------------------------------------

    def read_line(self, timeout: float | None = None) -> bytes:
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        self._wait_readable(deadline)
        wanted = _ms(max(deadline - time.monotonic(), 0.001))
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
        term = self.read_termination
        if data.endswith(term):
            return data[: -len(term)]
        if data.endswith(term[-1:]):  # VISA ends a read on the last termination byte only
            return data[:-1]
        return data

    def _wait_readable(self, deadline: float) -> None:
        """SOCKET only: block until data or EOF, so a closed connection is reported at once."""
        session = self._session()
        sock = getattr(session, "interface", None)
        pending = getattr(session, "_pending_buffer", None)
        if not isinstance(sock, socket.socket) or pending is None or len(pending):
            return
        remaining = deadline - time.monotonic()
        try:
            ready, _, _ = select.select([sock], [], [], max(remaining, 0.0))
        except (OSError, ValueError):
            return  # let pyvisa report it
        if ready and self._peer_closed():
            raise InstrumentConnectionError(self.resource, "connection closed by the instrument")

    def _socket_error(self) -> int:
        sock = getattr(self._session(), "interface", None)
        if not isinstance(sock, socket.socket):
            return 0
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    def _session(self) -> Any:
        sessions = getattr(self._inst.visalib, "sessions", None)
        if not isinstance(sessions, dict):
            return None
        return sessions.get(self._inst.session)

    def _peer_closed(self) -> bool:
        sock = getattr(self._session(), "interface", None)
        if not isinstance(sock, socket.socket):
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _error(self, exc: Exception, what: str, limit: float | None = None) -> InstrumentError:
        import pyvisa
        from pyvisa import constants

        if isinstance(exc, pyvisa.errors.VisaIOError):
            code = exc.error_code
            if code == constants.VI_ERROR_TMO:
                if self._is_socket and self._peer_closed():
                    return InstrumentConnectionError(
                        self.resource, "connection closed by the instrument"
                    )
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
        """Discard what pyvisa buffered and what the connection has received (no waiting)."""
        from pyvisa import constants

        try:
            session = self._session()
            sock = getattr(session, "interface", None)
            if self._is_socket and isinstance(sock, socket.socket):
                self._inst.flush(constants.BufferOperation.discard_read_buffer_no_io)
                _drain(sock)
            else:
                self._inst.flush(constants.BufferOperation.discard_read_buffer)
        except InstrumentError:
            raise
        except Exception as exc:
            raise self._error(exc, "flush") from exc

    def close(self) -> None:
        # closing a dead resource must not hide the error that killed it
        with contextlib.suppress(Exception):
            self._inst.close()

    def __repr__(self) -> str:
        return f"VisaTransport({self.resource!r})"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _drain(sock: socket.socket) -> None:
    while True:
        try:
            chunk = sock.recv(4096, socket.MSG_DONTWAIT)
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

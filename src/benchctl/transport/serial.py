"""Line transport on pyserial: device paths and pyserial URLs (``socket://``, ``rfc2217://``...).

The line framing is ours, not pyserial's: ``read_line`` keeps one buffer per connection, honours
one overall deadline per line (not a per-byte timeout), returns the line without its
termination and keeps whatever followed the terminator for the next read.
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import time
from typing import Any

from benchctl.errors import InstrumentConnectionError, InstrumentTimeout
from benchctl.transport.base import SerialSettings, Transport, format_seconds

_CHUNK = 4096


class SerialTransport(Transport):
    """A pyserial port (``serial.serial_for_url``) with line framing and typed errors."""

    def __init__(
        self,
        resource: str,
        *,
        timeout: float = 2.0,
        read_termination: bytes = b"\r\n",
        write_termination: bytes = b"\r\n",
        serial: SerialSettings | None = None,
    ) -> None:
        import serial as pyserial

        self.resource = resource
        self.timeout = timeout
        self.read_termination = read_termination
        self.write_termination = write_termination
        self.settings = serial if serial is not None else SerialSettings()
        self._buffer = bytearray()
        s = self.settings
        try:
            self._port: Any = pyserial.serial_for_url(
                resource,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=_stopbits(s.stopbits),
                rtscts=s.rtscts,
                xonxoff=s.xonxoff,
                timeout=0,  # reads never block inside pyserial; read_line waits
                write_timeout=timeout,
            )
        except ValueError as exc:  # impossible serial settings: retrying cannot fix them
            error = InstrumentConnectionError(resource, f"cannot open: {exc}")
            error.transient = False
            raise error from exc
        except Exception as exc:  # SerialException, OSError, termios.error (not a tty)...
            raise InstrumentConnectionError(resource, f"cannot open: {exc}") from exc
        self._fd = _fileno(self._port)

    # -- writing --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        import serial as pyserial

        try:
            self._port.write(data + self.write_termination)
        except pyserial.SerialTimeoutException as exc:
            raise InstrumentTimeout(
                self.resource, f"could not send within {format_seconds(self.timeout)} s"
            ) from exc
        except (pyserial.SerialException, OSError, AttributeError) as exc:
            # AttributeError: pyserial's socket handler after the socket was dropped.
            raise InstrumentConnectionError(self.resource, f"write failed: {exc}") from exc

    # -- reading --------------------------------------------------------------------------

    def read_line(self, timeout: float | None = None) -> bytes:
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        term = self.read_termination
        searched = 0  # bytes of the buffer already known not to start a terminator
        while True:
            index = self._buffer.find(term, searched)
            if index >= 0:
                line = bytes(self._buffer[:index])
                del self._buffer[: index + len(term)]
                return line
            searched = max(0, len(self._buffer) - len(term) + 1)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.half_line_timeout(self._buffer, limit)
            self._buffer += self._read_some(remaining)

    def _read_some(self, remaining: float) -> bytes:
        """Whatever arrives within ``remaining`` s: at least one byte, or b"" on timeout.

        A connection the other end closed raises InstrumentConnectionError at once (pyserial
        raises on a socket that reads EOF and on a device that hung up).
        """
        import serial as pyserial

        try:
            if self._fd is not None:
                # The port is non-blocking (timeout 0): wait here, then take what is there.
                ready, _, _ = select.select([self._fd], [], [], remaining)
                return bytes(self._port.read(_CHUNK)) if ready else b""
            # No file descriptor (loop://, rfc2217://): let pyserial wait for the first byte.
            self._port.timeout = remaining
            first = bytes(self._port.read(1))
            waiting = self._port.in_waiting if first else 0
            return first + bytes(self._port.read(min(waiting, _CHUNK))) if waiting else first
        except (pyserial.SerialException, OSError, ValueError, AttributeError) as exc:
            self._buffer.clear()
            raise InstrumentConnectionError(
                self.resource, f"connection lost while reading: {exc}"
            ) from exc

    # -- housekeeping ---------------------------------------------------------------------

    def flush_input(self) -> None:
        """Discard the line buffer and everything the port has received so far (no waiting)."""
        import serial as pyserial

        self._buffer.clear()
        try:
            self._port.reset_input_buffer()
        except (pyserial.SerialException, OSError, AttributeError) as exc:
            raise InstrumentConnectionError(self.resource, f"flush failed: {exc}") from exc

    def close(self) -> None:
        sock = getattr(self._port, "_socket", None)
        if isinstance(sock, socket.socket) and self._port.is_open:
            # pyserial's socket:// close() sleeps 0.3 s "for quick reconnects"; we never
            # reconnect through a closed transport, so close the socket without the wait.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            self._port._socket = None
            self._port.is_open = False
            return
        # closing a dead port must not hide the error that killed it
        with contextlib.suppress(Exception):
            self._port.close()

    def __repr__(self) -> str:
        return f"SerialTransport({self.resource!r})"


def _fileno(port: Any) -> int | None:
    """The port's file descriptor when it has one we can select() on (device or socket)."""
    try:
        fd = port.fileno()
    except (AttributeError, io.UnsupportedOperation, OSError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _stopbits(value: float) -> float | int:
    # pyserial compares against (1, 1.5, 2); keep ints as ints for its messages.
    return int(value) if float(value).is_integer() else value

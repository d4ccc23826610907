"""Modbus TCP and Modbus RTU on pymodbus's synchronous clients.

Resource strings (DESIGN.md)::

    modbus-tcp://HOST[:PORT]?device_id=N                       (port 502 by default)
    modbus-rtu:///dev/ttyUSB1?baudrate=19200&device_id=3       (a serial device path)
    modbus-rtu://COM3?baudrate=9600&parity=E&device_id=2
    modbus-rtu://socket://127.0.0.1:5021?device_id=1           (RTU framing over TCP)
    modbus-rtu://rfc2217://terminal-server:4001?device_id=1

After ``modbus-rtu://`` comes whatever pyserial opens (a device path or a pyserial URL), so RTU
through a terminal server, or through a TCP socket to a simulator, needs no second scheme.
Query keys: ``device_id`` (1 by default), and for RTU ``baudrate`` (9600), ``bytesize`` (8),
``parity`` (N), ``stopbits`` (1).  Float word and byte order are per device (keyword arguments
of :func:`open_modbus`), because devices from different makers share one RS-485 bus.

One physical port or bus is one pymodbus client and one lock, shared by every
:class:`ModbusDevice` opened on it (RS-485 multi-drop, or a TCP gateway with several unit ids):
a request and its reply are one critical section, so a TUI poll and a procedure can never
interleave frames, and :meth:`ModbusDevice.exclusive` holds the bus for a sequence of
requests.  The client is closed when the last device on it is closed.

Errors name the resource: a Modbus exception response is an InstrumentCommandError naming the
function, the address and what the exception code means (busy, acknowledge and gateway codes
are marked transient); no reply is an InstrumentTimeout; a refused or dropped connection is an
InstrumentConnectionError, and the next call connects again.  pymodbus's own retries are off
(``retries=0``): the engine's bounded retry policy decides, so a timeout costs one timeout.

A reply that comes after its timeout must not answer the next request.  On TCP the next
request goes out on a fresh connection (and its transaction id differs anyway); RTU frames
carry no id, so after a timeout the bus waits for the line to fall quiet, dropping what comes,
before it sends again (tests/test_transport_modbus.py).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from benchctl.errors import (
    InstrumentCommandError,
    InstrumentConnectionError,
    InstrumentTimeout,
    ProtocolError,
)
from benchctl.transport.base import format_seconds

__all__ = [
    "EXCEPTION_CODES",
    "ModbusDevice",
    "ModbusExceptionError",
    "ModbusResource",
    "bytes_to_registers",
    "open_modbus",
    "parse_modbus_resource",
    "registers_to_bytes",
]

# pymodbus logs failed connects and timeouts at ERROR; without a handler Python's last-resort
# handler would print them on the technician's terminal next to our own clear message.
logging.getLogger("pymodbus").addHandler(logging.NullHandler())

#: Modbus exception codes and what they mean to a technician.
EXCEPTION_CODES: dict[int, str] = {
    0x01: "illegal function (the device does not support this function code)",
    0x02: "illegal data address (the device has no such register)",
    0x03: "illegal data value (the device refused the value or the count)",
    0x04: "server device failure (the device could not do it)",
    0x05: "acknowledge (the device accepted a long-running request; ask again later)",
    0x06: "server device busy (the device is busy; ask again later)",
    0x07: "negative acknowledge",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable (the gateway cannot reach the device)",
    0x0B: "gateway target device failed to respond",
}

#: Exception codes that say "not now" rather than "never": the engine may retry them.
TRANSIENT_EXCEPTION_CODES = frozenset({0x05, 0x06, 0x0A, 0x0B})

FUNCTION_NAMES: dict[int, str] = {
    0x01: "read coils (01)",
    0x03: "read holding registers (03)",
    0x04: "read input registers (04)",
    0x05: "write single coil (05)",
    0x10: "write multiple registers (16)",
}

_ORDERS = ("big", "little")
_PAIR = struct.Struct(">2H")  # two registers as they travel on the wire
_RTU_DEFAULTS: dict[str, Any] = {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1}


class ModbusExceptionError(InstrumentCommandError):
    """The device answered with a Modbus exception response; ``exception_code`` says which.

    Busy, acknowledge and gateway codes are transient (the engine may retry); the others
    need a person."""

    def __init__(self, resource: str, message: str, exception_code: int, *,
                 raw: bytes | None = None) -> None:
        super().__init__(resource, message, raw=raw)
        self.exception_code = exception_code
        self.transient = exception_code in TRANSIENT_EXCEPTION_CODES


# -- resource strings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModbusResource:
    """A parsed Modbus resource string."""

    kind: str  # "tcp" or "rtu"
    device_id: int
    host: str = ""
    port: int = 502
    serial_port: str = ""  # rtu: device path or pyserial URL
    serial: dict[str, Any] = field(default_factory=dict)

    @property
    def bus_key(self) -> tuple[str, str]:
        """What identifies the physical port or bus (shared by every device on it)."""
        if self.kind == "tcp":
            return ("tcp", f"{self.host.lower()}:{self.port}")
        return ("rtu", self.serial_port)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}" if self.kind == "tcp" else self.serial_port


def _bad(resource: str, why: str) -> InstrumentConnectionError:
    error = InstrumentConnectionError(resource or "(empty resource)", why)
    error.transient = False  # a misspelt resource string does not heal by retrying
    return error


def parse_modbus_resource(resource: str) -> ModbusResource:
    """Parse a ``modbus-tcp://`` or ``modbus-rtu://`` string; errors say what is wrong."""
    text = resource.strip()
    lower = text.lower()
    if lower.startswith("modbus-tcp://"):
        kind, rest = "tcp", text[len("modbus-tcp://") :]
    elif lower.startswith("modbus-rtu://"):
        kind, rest = "rtu", text[len("modbus-rtu://") :]
    else:
        raise _bad(
            resource,
            "not a Modbus resource; expected modbus-tcp://HOST:PORT?device_id=N or "
            "modbus-rtu:///dev/ttyUSB1?baudrate=19200&device_id=N "
            "(or modbus-rtu://socket://HOST:PORT?device_id=N)",
        )
    location, _, query = rest.partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _bad(resource, f"cannot read the query {query!r}; expected key=value&...") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise _bad(resource, f"query key {key!r} is given twice")
        params[key] = value
    allowed = {"device_id"} | (set(_RTU_DEFAULTS) if kind == "rtu" else set())
    for key in params:
        if key not in allowed:
            raise _bad(
                resource, f"unknown query key {key!r}; expected {', '.join(sorted(allowed))}"
            )
    device_id = _int_param(resource, params, "device_id", 1, 0, 247)
    if kind == "tcp":
        if not location or "/" in location:
            raise _bad(resource, "expected modbus-tcp://HOST:PORT?device_id=N")
        host, sep, port_text = location.rpartition(":")
        if not sep:
            host, port_text = location, "502"
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _bad(resource, f"expected HOST:PORT with a port 1 … 65535, got {location!r}")
        return ModbusResource("tcp", device_id, host=host, port=int(port_text))
    if not location:
        raise _bad(resource, "no serial port after modbus-rtu:// (e.g. modbus-rtu:///dev/ttyUSB1)")
    serial = {
        "baudrate": _int_param(resource, params, "baudrate", 9600, 50, 4_000_000),
        "bytesize": _int_param(resource, params, "bytesize", 8, 5, 8),
        "parity": params.get("parity", "N").upper(),
        "stopbits": _int_param(resource, params, "stopbits", 1, 1, 2),
    }
    if serial["parity"] not in ("N", "E", "O", "M", "S"):
        raise _bad(resource, f"parity must be N, E, O, M or S, got {params['parity']!r}")
    return ModbusResource("rtu", device_id, serial_port=location, serial=serial)


def _int_param(
    resource: str, params: dict[str, str], key: str, default: int, low: int, high: int
) -> int:
    if key not in params:
        return default
    text = params[key]
    if not text.isdigit() or not low <= int(text) <= high:
        raise _bad(resource, f"{key} must be a whole number {low} … {high}, got {text!r}")
    return int(text)


# -- register <-> bytes (pure) ------------------------------------------------------------------


def registers_to_bytes(registers: list[int]) -> bytes:
    """The registers as they travel on the wire (each big-endian), for the audit record."""
    try:
        return struct.pack(f">{len(registers)}H", *registers)
    except struct.error:  # not plain 16-bit ints: say so as int.to_bytes does
        return b"".join(int(r).to_bytes(2, "big") for r in registers)


def bytes_to_registers(data: bytes) -> list[int]:
    if len(data) % 2:
        raise ValueError("an odd number of bytes is not a whole number of registers")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _to_abcd(wire: bytes, word_order: str, byte_order: str) -> bytes:
    """Wire bytes of a 32-bit value -> big-endian ABCD, undoing the device's orders.

    ``word_order="little"`` is CDAB (low word first), ``byte_order="little"`` swaps the two
    bytes in each register (BADC); both little is DCBA.
    """
    words = [wire[i : i + 2] for i in range(0, len(wire), 2)]
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        words = [w[::-1] for w in words]
    return b"".join(words)


def _from_abcd(abcd: bytes, word_order: str, byte_order: str) -> bytes:
    # The transformation is its own inverse (reverse words, swap bytes within words).
    return _to_abcd(abcd, word_order, byte_order)


def _unpack32(kind: str, wire: bytes, word_order: str, byte_order: str) -> Any:
    """A 32-bit ``kind`` (struct's ``f`` or ``I``) from its four wire bytes."""
    if word_order == byte_order:  # ABCD or DCBA: one struct call, no reordering
        return struct.unpack((">" if word_order == "big" else "<") + kind, wire)[0]
    return struct.unpack(">" + kind, _to_abcd(wire, word_order, byte_order))[0]


def decode_float32(registers: list[int], word_order: str = "big", byte_order: str = "big") -> float:
    value: float = _unpack32("f", registers_to_bytes(registers), word_order, byte_order)
    return value


def encode_float32(value: float, word_order: str = "big", byte_order: str = "big") -> list[int]:
    return bytes_to_registers(_from_abcd(struct.pack(">f", value), word_order, byte_order))


def decode_uint32(registers: list[int], word_order: str = "big", byte_order: str = "big") -> int:
    value: int = _unpack32("I", registers_to_bytes(registers), word_order, byte_order)
    return value


# -- buses ----------------------------------------------------------------------------------------


class _Bus:
    """One physical port or bus: one pymodbus client, one lock, a reference count."""

    def __init__(self, spec: ModbusResource, resource: str, timeout: float) -> None:
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient
        from pymodbus.framer import FramerType

        self.spec = spec
        self.lock = threading.RLock()
        self.refs = 0
        #: The reply timeout the client is set to (devices on one bus may differ).
        self.timeout = timeout
        self.last_sent = b""
        self.last_received = b""
        #: RTU only: a reply was given up on and may still be on its way; RTU frames carry
        #: no transaction id, so before the next request the line must fall quiet.
        self.out_of_step = False
        self.client: Any
        if spec.kind == "tcp":
            self.client = ModbusTcpClient(
                spec.host,
                port=spec.port,
                timeout=timeout,
                retries=0,
                trace_packet=self._trace,
            )
        else:
            s = spec.serial
            self.client = ModbusSerialClient(
                spec.serial_port,
                framer=FramerType.RTU,
                baudrate=s["baudrate"],
                bytesize=s["bytesize"],
                parity=s["parity"],
                stopbits=s["stopbits"],
                timeout=timeout,
                retries=0,
                trace_packet=self._trace,
            )

    def _trace(self, sending: bool, data: bytes) -> bytes:
        # pymodbus hands over bytes; copy anything else, so the record cannot change later
        frame = data if type(data) is bytes else bytes(data)
        if sending:
            self.last_sent, self.last_received = frame, b""
        else:
            self.last_received = frame
        return data

    def set_timeout(self, timeout: float) -> None:
        # The client and its transaction manager each keep a copy of the parameters.
        self.client.comm_params.timeout_connect = timeout
        self.client.transaction.comm_params.timeout_connect = timeout
        self.timeout = timeout

    def ensure_connected(self, resource: str, timeout: float) -> None:
        """Connect if not connected, with the operating system's reason on failure."""
        if self.client.connected:
            return
        spec = self.spec
        if spec.kind == "tcp":
            try:
                sock = socket.create_connection((spec.host, spec.port), timeout=timeout)
            except OSError as exc:
                reason = exc.strerror or str(exc) or type(exc).__name__
                raise InstrumentConnectionError(
                    resource, f"cannot connect to {spec.host}:{spec.port}: {reason}"
                ) from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.client.socket = sock
            return
        import serial as pyserial

        s = spec.serial
        try:
            port = pyserial.serial_for_url(
                spec.serial_port,
                baudrate=s["baudrate"],
                bytesize=s["bytesize"],
                parity=s["parity"],
                stopbits=s["stopbits"],
                timeout=timeout,
                write_timeout=timeout,
                exclusive=True,
            )
        except ValueError as exc:
            error = InstrumentConnectionError(resource, f"cannot open {spec.serial_port}: {exc}")
            error.transient = False
            raise error from exc
        except Exception as exc:  # SerialException, OSError, termios.error...
            raise InstrumentConnectionError(
                resource, f"cannot open {spec.serial_port}: {exc}"
            ) from exc
        port.inter_byte_timeout = self.client.inter_byte_timeout
        self.client.socket = port

    def drain_until_quiet(self, resource: str, quiet: float, within: float) -> None:
        """RTU after a timeout: drop whatever arrives until the line has been quiet for
        ``quiet`` seconds, so that a late reply is not taken for the next request's answer
        (pymodbus accepts any frame with the right device id and function code). Raises
        InstrumentTimeout when the line does not fall quiet within ``within`` seconds."""
        port = self.client.socket
        if port is None:  # reopened on the next call: nothing old can be read from it
            self.out_of_step = False
            return
        deadline = time.monotonic() + within
        saved = port.timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InstrumentTimeout(
                        resource, f"getting back in step after a reply given up on: the line "
                        f"did not fall quiet for {quiet:g} s within {within:g} s; the next "
                        "request tries again")
                port.timeout = min(quiet, left)
                if not port.read(4096) and left >= quiet:
                    break
            port.reset_input_buffer()
        except OSError as exc:
            self.drop()
            raise InstrumentConnectionError(resource, f"the serial line failed: {exc}") from exc
        finally:
            if self.client.socket is not None:
                port.timeout = saved
        self.out_of_step = False

    def drop(self) -> None:
        """Close the connection; the next call reconnects."""
        try:
            self.client.close()
        except Exception:  # closing a dead connection must not hide why it died
            self.client.socket = None


_buses: dict[tuple[str, str], _Bus] = {}
_buses_lock = threading.Lock()


def open_modbus(
    resource: str,
    *,
    timeout: float = 1.0,
    word_order: str = "big",
    byte_order: str = "big",
) -> ModbusDevice:
    """Open one Modbus device; the port or bus it is on is shared with other devices on it.

    The connection is made now, so a wrong address or a dead gateway is reported when the
    instrument is connected rather than at the first reading.
    """
    resource = resource.strip()
    spec = parse_modbus_resource(resource)
    for name, order in (("word_order", word_order), ("byte_order", byte_order)):
        if order not in _ORDERS:
            raise _bad(resource, f"{name} must be \"big\" or \"little\", got {order!r}")
    if not timeout > 0:
        raise _bad(resource, f"timeout must be > 0 s, got {timeout!r}")
    with _buses_lock:
        bus = _buses.get(spec.bus_key)
        if bus is None:
            bus = _Bus(spec, resource, timeout)
            _buses[spec.bus_key] = bus
        elif spec.kind == "rtu" and bus.spec.serial != spec.serial:
            raise _bad(
                resource,
                f"{spec.serial_port} is already open with {_describe_serial(bus.spec.serial)}; "
                f"every device on one bus must use the same line settings "
                f"(this one asks for {_describe_serial(spec.serial)})",
            )
        bus.refs += 1
    device = ModbusDevice(bus, resource, spec.device_id, timeout, word_order, byte_order)
    try:
        with bus.lock:
            bus.ensure_connected(resource, timeout)
    except BaseException:
        device.close()
        raise
    return device


def _describe_serial(s: dict[str, Any]) -> str:
    return f"{s['baudrate']} baud {s['bytesize']}{s['parity']}{s['stopbits']}"


class ModbusDevice:
    """One device (unit id) on a Modbus port or bus.  Thread-safe: calls take the bus lock."""

    def __init__(
        self,
        bus: _Bus,
        resource: str,
        device_id: int,
        timeout: float,
        word_order: str,
        byte_order: str,
    ) -> None:
        self._bus: _Bus | None = bus
        self.resource = resource
        self.device_id = device_id
        self.timeout = timeout
        self.word_order = word_order
        self.byte_order = byte_order

    # -- registers ------------------------------------------------------------------------

    def read_holding(self, address: int, count: int) -> list[int]:
        _check_span(address, count, 125)
        return self._read(0x03, address, count)

    def read_input(self, address: int, count: int) -> list[int]:
        _check_span(address, count, 125)
        return self._read(0x04, address, count)

    def read_coils(self, address: int, count: int) -> list[bool]:
        _check_span(address, count, 2000)
        response = self._execute(0x01, address, count, "read_coils", address, count=count,
                                 device_id=self.device_id)
        bits = list(getattr(response, "bits", []) or [])
        if len(bits) < count:
            raise self._protocol(0x01, address, f"{len(bits)} coils in the reply, {count} asked")
        return [bool(b) for b in bits[:count]]

    def write_registers(self, address: int, values: list[int]) -> None:
        _check_span(address, len(values), 123)
        for value in values:
            if not 0 <= int(value) <= 0xFFFF:
                raise ValueError(f"a register holds 0 … 65535, got {value!r}")
        words = [int(v) for v in values]
        self._execute(0x10, address, len(words), "write_registers", address, words,
                      device_id=self.device_id)

    def write_coil(self, address: int, value: bool) -> None:
        _check_span(address, 1, 1)
        self._execute(0x05, address, 1, "write_coil", address, bool(value),
                      device_id=self.device_id)

    # -- 32-bit values --------------------------------------------------------------------

    def read_float32(self, address: int, *, input_registers: bool = False) -> tuple[float, bytes]:
        """The value, and the two registers' bytes as they came off the wire (for audit).

        The registers become bytes once; the value is unpacked from those bytes."""
        if not 0 <= address <= 0xFFFE:
            _check_span(address, 2, 125)  # says what is wrong
        wire = _PAIR.pack(*self._read(0x04 if input_registers else 0x03, address, 2))
        value: float = _unpack32("f", wire, self.word_order, self.byte_order)
        return value, wire

    def read_uint32(self, address: int, *, input_registers: bool = False) -> tuple[int, bytes]:
        if not 0 <= address <= 0xFFFE:
            _check_span(address, 2, 125)
        wire = _PAIR.pack(*self._read(0x04 if input_registers else 0x03, address, 2))
        value: int = _unpack32("I", wire, self.word_order, self.byte_order)
        return value, wire

    def write_float32(self, address: int, value: float) -> None:
        self.write_registers(address, encode_float32(value, self.word_order, self.byte_order))

    # -- housekeeping ---------------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[ModbusDevice]:
        """Hold the bus for several requests in a row (e.g. write a command coil, then read
        what it produced): no other device or thread on the bus gets a frame in between."""
        bus = self._bus
        if bus is None:
            raise self._closed()
        with bus.lock:
            yield self

    @property
    def last_frames(self) -> tuple[bytes, bytes]:
        """The last request and reply frames on this device's bus (ADU bytes)."""
        bus = self._bus
        return (bus.last_sent, bus.last_received) if bus is not None else (b"", b"")

    def close(self) -> None:
        """Let go of the bus; the last device to let go closes the connection."""
        bus, self._bus = self._bus, None
        if bus is None:
            return
        with _buses_lock:
            bus.refs -= 1
            last = bus.refs <= 0
            if last and _buses.get(bus.spec.bus_key) is bus:
                del _buses[bus.spec.bus_key]
        if last:
            with bus.lock:
                bus.drop()

    def __enter__(self) -> ModbusDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ModbusDevice({self.resource!r})"

    # -- machinery ------------------------------------------------------------------------

    def _read(self, function: int, address: int, count: int) -> list[int]:
        """Registers by function 03 or 04: every reading comes this way, so this is
        :meth:`_execute` spelt out for the two calls (no arguments packed, no name looked up).
        Each register is 0 … 65535 (pymodbus decodes them from 16 bits)."""
        bus = self._bus
        if bus is None:
            raise self._closed()
        with bus.lock:
            client = bus.client
            if client.socket is None or bus.timeout != self.timeout or bus.out_of_step:
                self._prepare(bus)
            try:
                if function == 0x03:
                    response = client.read_holding_registers(
                        address, count=count, device_id=self.device_id)
                else:
                    response = client.read_input_registers(
                        address, count=count, device_id=self.device_id)
            except Exception as exc:
                error = self._failure(bus, exc, function, address, count)
                if error is None:
                    raise
                raise error from exc
            raw = bus.last_received
        if response is None or response.isError():
            raise self._refused(response, raw, function, address, count)
        registers: list[int] = getattr(response, "registers", None) or []
        if len(registers) != count:
            raise self._protocol(
                function, address, f"{len(registers)} registers in the reply, {count} asked"
            )
        return registers

    def _execute(self, function: int, address: int, count: int, method: str, /, *args: Any,
                 **kwargs: Any) -> Any:
        """One request (the pymodbus client's ``method``) and its reply, holding the bus;
        every failure is typed and names the resource, the function and the address.

        The way through builds no message and imports nothing: that is left to failures."""
        bus = self._bus
        if bus is None:
            raise self._closed()
        with bus.lock:
            client = bus.client
            if client.socket is None or bus.timeout != self.timeout or bus.out_of_step:
                self._prepare(bus)
            try:
                response = getattr(client, method)(*args, **kwargs)
            except Exception as exc:
                error = self._failure(bus, exc, function, address, count)
                if error is None:
                    raise
                raise error from exc
            raw = bus.last_received
        if response is None or response.isError():
            raise self._refused(response, raw, function, address, count)
        return response

    def _prepare(self, bus: _Bus) -> None:
        """With the bus held: connect if needed, get back in step after a reply given up on
        (RTU), and set this device's reply timeout."""
        bus.ensure_connected(self.resource, self.timeout)
        if bus.out_of_step:
            quiet = max(bus.timeout, self.timeout)
            bus.drain_until_quiet(self.resource, quiet=quiet, within=4 * quiet)
        if bus.timeout != self.timeout:
            bus.set_timeout(self.timeout)

    def _refused(
        self, response: Any, raw: bytes, function: int, address: int, count: int
    ) -> InstrumentTimeout | ModbusExceptionError:
        """No response object, or a Modbus exception response: the error that says which."""
        what = _what(function, address, count)
        if response is None:
            return InstrumentTimeout(self.resource, f"{what}: no reply", raw=raw or None)
        code = int(getattr(response, "exception_code", 0) or 0)
        meaning = EXCEPTION_CODES.get(code, "unknown exception code")
        return ModbusExceptionError(
            self.resource,
            f"{what}: device {self.device_id} answered Modbus exception {code:#04x}, {meaning}",
            code,
            raw=raw or None,
        )

    def _failure(
        self, bus: _Bus, exc: Exception, function: int, address: int, count: int
    ) -> InstrumentTimeout | InstrumentConnectionError | None:
        """What a pymodbus call that raised means (None: not a Modbus failure, re-raise it).

        Called with the bus held: a broken connection is dropped here, and the next call
        connects again."""
        from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

        what = _what(function, address, count)
        if isinstance(exc, ModbusIOException):
            # No (complete) reply.  On TCP a late reply would be taken for the answer to
            # the next request: start that one on a fresh connection.
            if bus.spec.kind == "tcp":
                bus.drop()
            else:  # RTU: no transaction id; the next request first waits for quiet
                bus.out_of_step = True
            return InstrumentTimeout(
                self.resource,
                f"{what}: no reply from device {self.device_id} within "
                f"{format_seconds(self.timeout)} s",
                raw=bus.last_received or None,
            )
        if isinstance(exc, ConnectionException):
            bus.drop()
            return InstrumentConnectionError(
                self.resource,
                f"{what}: connection to {bus.spec.where} lost (it will be reopened on the "
                "next call)",
            )
        if isinstance(exc, OSError):
            bus.drop()
            return InstrumentConnectionError(
                self.resource, f"{what}: connection to {bus.spec.where} lost "
                f"({exc.strerror or exc}; it will be reopened on the next call)",
            )
        if isinstance(exc, ModbusException):
            bus.drop()
            return InstrumentConnectionError(self.resource, f"{what}: {type(exc).__name__}: {exc}")
        return None

    def _closed(self) -> InstrumentConnectionError:
        error = InstrumentConnectionError(self.resource, "the Modbus device is closed")
        error.transient = False
        return error

    def _protocol(self, function: int, address: int, why: str) -> ProtocolError:
        name = FUNCTION_NAMES.get(function, f"function {function:02d}")
        bus = self._bus
        raw = bus.last_received if bus is not None else b""
        return ProtocolError(
            self.resource, f"{name} at address {_address(address)}: {why}", raw=raw or None
        )


def _address(address: int) -> str:
    return f"{address:#06x} ({address})"


def _what(function: int, address: int, count: int) -> str:
    """``read holding registers (03) at address 0x0100 (256) (count 2)``, for messages."""
    name = FUNCTION_NAMES.get(function) or f"function {function:02d}"
    return f"{name} at address {_address(address)}" + (f" (count {count})" if count > 1 else "")


def _check_span(address: int, count: int, most: int) -> None:
    if not 0 <= address <= 0xFFFF:
        raise ValueError(f"a Modbus address is 0 … 65535, got {address!r}")
    if not 1 <= count <= most:
        raise ValueError(f"count must be 1 … {most}, got {count!r}")
    if address + count > 0x10000:
        raise ValueError(f"registers {address} … {address + count - 1} run past 65535")

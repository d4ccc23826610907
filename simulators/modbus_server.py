"""A Modbus server (pymodbus) that answers from the simulated world, with injected faults.

::

    server = serve_modbus(transport="tcp", device_id=1,
                          read=lambda address, count: gauge.registers(address, count),
                          faults=world.faults("gauge"))
    server.resource     # "modbus-tcp://127.0.0.1:40125?device_id=1"
    server.stop()

``transport`` is ``"tcp"`` (Modbus TCP, MBAP framing) or ``"rtu"`` (RTU framing, CRC and all,
over a TCP socket: pymodbus's ``ModbusSerialServer(port="socket://HOST:PORT")``; the resource
is ``modbus-rtu://socket://HOST:PORT?device_id=N``, which benchctl's transport opens with its
serial client through pyserial's ``socket://`` handler, so the RTU bytes are the real ones).

Values are live: every request calls ``read(address, count) -> list[int]`` (holding registers,
function 03; ``read_input`` for function 04, defaulting to ``read``) at the moment it arrives,
and ``write(address, values)`` for functions 06/16 (no ``write``: exception 01).  Coils (01,
05, 15) are plain memory, with ``write_coil(address, value)`` called on each write.  A
callback raises :class:`ModbusReply` to answer with an exception code (an address the device
does not have: code 02); any other exception answers 04 (server device failure).

Requests for another device id are not answered on RTU (another slave on the bus would answer)
and get exception 0B (gateway target failed to respond) on TCP.

Faults, one per request, from the instrument's FaultInjector (``world.faults(name)``):
``silence`` and ``power_cycle`` (no reply), ``error`` (exception 04, server device failure),
``busy`` (exception 06, server device busy), ``exception`` (the fault's ``code``, 04 by
default), ``garbage`` (random bytes instead of the frame), ``truncated`` (half the frame),
``stall`` (half, then the rest after ``delay`` simulated seconds), ``slow`` (the whole reply
``delay`` simulated seconds late), ``disconnect`` (the server closes the client's connection),
``refuse`` (that, and new connections are closed at once while the count lasts).
``wrong_unit`` has no meaning on a register map and is answered normally.

The server runs in a background thread with its own asyncio event loop; ``stop()`` ends it
within a fraction of a second.  This module uses nothing from benchctl.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from .world import FaultInjector, SimClock

__all__ = ["ModbusReply", "ModbusSimServer", "serve_modbus"]

# Without a handler pymodbus's connection chatter would reach the last-resort handler (stderr).
logging.getLogger("pymodbus").addHandler(logging.NullHandler())
log = logging.getLogger("benchctl_simulators.modbus")

ReadFn = Callable[[int, int], list[int]]
WriteFn = Callable[[int, list[int]], None]
CoilFn = Callable[[int, bool], None]

ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03
DEVICE_FAILURE = 0x04
DEVICE_BUSY = 0x06
GATEWAY_NO_RESPONSE = 0x0B


class ModbusReply(Exception):
    """Raised by a read/write callback: answer the request with this exception code."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or f"Modbus exception {code:#04x}")
        self.code = int(code)


class _LiveContext:
    """What pymodbus's request PDUs ask for their data (``datastore_update(context, id)``):
    answered by the callbacks, at the moment of the request."""

    def __init__(self, read: ReadFn, read_input: ReadFn | None, write: WriteFn | None,
                 write_coil: CoilFn | None) -> None:
        self.read = read
        self.read_input = read_input or read
        self.write = write
        self.write_coil = write_coil
        self.coils: dict[int, bool] = {}

    async def async_getValues(self, device_id: int, func_code: int, address: int,
                              count: int = 1) -> Any:
        from pymodbus.constants import ExcCodes

        try:
            if func_code in (1, 2, 5, 15):
                return [self.coils.get(address + i, False) for i in range(count)]
            if func_code == 4:
                values = self.read_input(address, count)
            else:
                values = self.read(address, count)
        except ModbusReply as reply:
            return ExcCodes(reply.code)
        except Exception:
            log.exception("simulated Modbus device: read callback failed")
            return ExcCodes.DEVICE_FAILURE
        values = [int(v) for v in values]
        if len(values) != count or not all(0 <= v <= 0xFFFF for v in values):
            log.error("read callback gave %r for %d registers", values, count)
            return ExcCodes.DEVICE_FAILURE
        return values

    async def async_setValues(self, device_id: int, func_code: int, address: int,
                              values: list[int] | list[bool]) -> Any:
        from pymodbus.constants import ExcCodes

        try:
            if func_code in (5, 15):
                for i, bit in enumerate(values):
                    self.coils[address + i] = bool(bit)
                    if self.write_coil is not None:
                        self.write_coil(address + i, bool(bit))
                return None
            if self.write is None:
                return ExcCodes.ILLEGAL_FUNCTION
            self.write(address, [int(v) for v in values])
        except ModbusReply as reply:
            return ExcCodes(reply.code)
        except Exception:
            log.exception("simulated Modbus device: write callback failed")
            return ExcCodes.DEVICE_FAILURE
        return None

    def device_ids(self) -> list[int]:
        return []


class ModbusSimServer:
    """A running simulated Modbus device: ``resource`` to open it, ``stop()`` to end it."""

    def __init__(self, *, transport: str, host: str, port: int, device_id: int,
                 context: _LiveContext, faults: FaultInjector | None, clock: SimClock | None,
                 rnd: random.Random | None, name: str) -> None:
        if transport not in ("tcp", "rtu"):
            raise ValueError(f"Modbus transport must be \"tcp\" or \"rtu\", got {transport!r}")
        if not 0 < device_id <= 247:
            raise ValueError(f"device_id must be 1 … 247, got {device_id!r}")
        self.transport = transport
        self.device_id = device_id
        self.context = context
        self.faults = faults
        self.clock = clock
        self.rnd = rnd if rnd is not None else random.Random(0)
        self.name = name
        self.host = host
        self.port = port
        self.resource = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(host, port),
                                        name=f"sim-{name}-modbus", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            self.stop()
            raise OSError(f"simulator {name!r} cannot serve Modbus on {host}:{port}: "
                          f"{self._error}") from self._error
        if not self.resource:
            self.stop()
            raise OSError(f"simulator {name!r}: the Modbus server did not start")

    # -- the server thread ----------------------------------------------------------------------
    def _run(self, host: str, port: int) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._start(host, port))
        except BaseException as exc:  # report to the constructor, which raises
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._shutdown())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:  # replies still waiting (a "slow" fault)
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start(self, host: str, port: int) -> None:
        from pymodbus.framer import FramerType
        from pymodbus.server import ModbusSerialServer, ModbusTcpServer
        from pymodbus.server.requesthandler import ServerRequestHandler
        from pymodbus.simulator import DataType, SimData, SimDevice

        sim = self

        class Handler(ServerRequestHandler):
            _fault_mode: str | None = None
            _fault_delay = 1.0

            async def handle_request(self) -> None:
                await sim._handle(self)

            def callback_connected(self) -> None:
                super().callback_connected()
                take = getattr(sim.faults, "take_connection", None)
                if take is not None and take():
                    self.close()  # "refuse": the device is unplugged

            def server_send(self, pdu: Any, addr: Any) -> None:
                sim._send(self, pdu, addr)

        class Tcp(ModbusTcpServer):
            def callback_new_connection(self) -> Any:
                return Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)

        class Rtu(ModbusSerialServer):
            def callback_new_connection(self) -> Any:
                return Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)

        # The server's own datastore is never consulted (the handler answers from the live
        # context); pymodbus wants one to construct the server.
        placeholder = SimDevice(self.device_id, simdata=[SimData(0, datatype=DataType.REGISTERS)])
        server: Any
        if self.transport == "tcp":
            server = Tcp(placeholder, address=(host, port))
        else:
            server = Rtu(placeholder, framer=FramerType.RTU, port=f"socket://{host}:{port}")
        await server.serve_forever(background=True)
        listener = server.transport
        sockets = getattr(listener, "sockets", None)
        if not sockets:
            raise OSError("address in use or not available")
        self._server = server
        bound_host, bound_port = sockets[0].getsockname()[:2]
        self.host, self.port = bound_host, int(bound_port)
        if self.transport == "tcp":
            self.resource = f"modbus-tcp://{bound_host}:{bound_port}?device_id={self.device_id}"
        else:
            self.resource = (f"modbus-rtu://socket://{bound_host}:{bound_port}"
                             f"?device_id={self.device_id}")

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        for connection in list(getattr(server, "active_connections", {}).values()):
            with contextlib.suppress(Exception):
                connection.close()
        with contextlib.suppress(Exception):
            await server.shutdown()

    # -- requests -------------------------------------------------------------------------------
    async def _handle(self, handler: Any) -> None:
        from pymodbus.pdu import ExceptionResponse

        pdu = handler.last_pdu
        addr = handler.last_addr
        if pdu is None:
            return
        if pdu.dev_id != self.device_id:
            if self.transport == "rtu":
                return  # not ours: another slave on the bus would answer
            reply = ExceptionResponse(pdu.function_code, GATEWAY_NO_RESPONSE)
            self._reply(handler, pdu, reply, addr)
            return
        fault = self.faults.take() if self.faults is not None else None
        mode = fault.mode if fault is not None else None
        if mode in ("silence", "power_cycle"):
            return
        if mode in ("disconnect", "refuse"):
            handler.close()
            return
        if mode in ("error", "busy", "exception"):
            code = {"error": DEVICE_FAILURE, "busy": DEVICE_BUSY}.get(
                mode, getattr(fault, "code", None) or DEVICE_FAILURE)
            self._reply(handler, pdu, ExceptionResponse(pdu.function_code, code), addr)
            return
        try:
            response = await pdu.datastore_update(self.context, pdu.dev_id)
        except Exception:
            log.exception("simulated Modbus device %s: request failed", self.name)
            response = ExceptionResponse(pdu.function_code, DEVICE_FAILURE)
        if mode == "slow":  # the whole reply, late (a stale reply for a client that gave up)
            assert fault is not None
            await asyncio.sleep(self.clock.real_seconds(fault.delay) if self.clock is not None
                                else fault.delay)
        if mode in ("garbage", "truncated", "stall"):
            handler._fault_mode = mode
            handler._fault_delay = fault.delay if fault is not None else 1.0
        self._reply(handler, pdu, response, addr)

    def _reply(self, handler: Any, request: Any, response: Any, addr: Any) -> None:
        response.transaction_id = request.transaction_id
        response.dev_id = request.dev_id
        handler.server_send(response, addr)

    def _send(self, handler: Any, pdu: Any, addr: Any) -> None:
        """Frame and send ``pdu``, spoiled by a pending garbage/truncated/stall fault."""
        mode, handler._fault_mode = handler._fault_mode, None
        packet = handler.framer.buildFrame(pdu)
        if mode is None:
            handler.send(packet, addr=addr)
        elif mode == "garbage":
            junk = bytes(self.rnd.randrange(256) for _ in range(self.rnd.randint(4, 16)))
            handler.send(junk, addr=addr)
        elif mode == "truncated":
            handler.send(packet[: max(1, len(packet) // 2)], addr=addr)
        else:  # stall
            half = max(1, len(packet) // 2)
            handler.send(packet[:half], addr=addr)
            delay = handler._fault_delay
            real = self.clock.real_seconds(delay) if self.clock is not None else delay
            loop = asyncio.get_running_loop()
            loop.call_later(real, lambda: handler.send(packet[half:], addr=addr))

    # -- stopping -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving (idempotent): close every client connection and the listener."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def __enter__(self) -> ModbusSimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ModbusSimServer({self.resource!r})"


def serve_modbus(
    *,
    transport: str,
    host: str = "127.0.0.1",
    port: int = 0,
    device_id: int = 1,
    read: ReadFn,
    write: WriteFn | None = None,
    faults: FaultInjector | None = None,
    read_input: ReadFn | None = None,
    write_coil: CoilFn | None = None,
    clock: SimClock | None = None,
    rnd: random.Random | None = None,
    name: str = "modbus",
) -> ModbusSimServer:
    """Start a simulated Modbus device (``transport`` "tcp" or "rtu"; ``port=0`` picks a free
    port) answering from the callbacks; see the module docstring."""
    context = _LiveContext(read, read_input, write, write_coil)
    return ModbusSimServer(transport=transport, host=host, port=int(port), device_id=device_id,
                           context=context, faults=faults, clock=clock, rnd=rnd, name=name)
